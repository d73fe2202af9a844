use super::*;

#[test]
fn grants_add_up_per_pool() {
    let mut shares = Shares::default();
    for grant in [
        Grant::Budget {
            campaign: "launch".into(),
            points: 300,
        },
        Grant::Budget {
            campaign: "launch".into(),
            points: 50,
        },
        Grant::Stock {
            reward: "mug".into(),
            units: 2,
        },
        Grant::Codes {
            reward: "card".into(),
            codes: vec!["A".into(), "B".into()],
        },
    ] {
        shares.add(&grant);
    }
    assert_eq!(shares.budget("launch"), 350);
    assert_eq!(shares.budget("other"), 0);
    assert_eq!(shares.stock("mug"), 2);
    assert!(shares.has_code("card", "B"));
    assert!(!shares.has_code("card", "C"));
    assert!(!shares.has_code("mug", "A"));
}

#[test]
fn ticket_numbers_run_through_the_granted_runs_from_the_next_one() {
    let mut shares = Shares::default();
    assert_eq!(shares.ticket_number(1, 0), None);
    shares.add(&Grant::Tickets {
        first: 101,
        count: 3,
    });
    shares.add(&Grant::Tickets {
        first: 501,
        count: 2,
    });
    // Before the first run: its first number.
    assert_eq!(shares.ticket_number(1, 0), Some(101));
    assert_eq!(shares.ticket_number(1, 2), Some(103));
    // Across the gap into the next run.
    assert_eq!(shares.ticket_number(1, 3), Some(501));
    assert_eq!(shares.ticket_number(103, 1), Some(501));
    assert_eq!(shares.ticket_number(104, 0), Some(501));
    assert_eq!(shares.ticket_number(502, 0), Some(502));
    // Used up.
    assert_eq!(shares.ticket_number(503, 0), None);
    assert_eq!(shares.ticket_number(1, 5), None);
}

#[test]
fn a_grant_reads_back_from_its_json() {
    for grant in [
        Grant::Budget {
            campaign: "c".into(),
            points: 7,
        },
        Grant::Codes {
            reward: "r".into(),
            codes: vec!["X-1".into()],
        },
        Grant::Tickets {
            first: 1,
            count: 100,
        },
    ] {
        let text = serde_json::to_string(&grant).unwrap();
        assert_eq!(serde_json::from_str::<Grant>(&text).unwrap(), grant);
    }
}
