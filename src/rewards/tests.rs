use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::*;
use crate::rules::RuleSet;

const RULES: &str = r#"
settings: { timezone: UTC }
tiers:
  by: points_lifetime
  levels:
    - { name: member, from: 0 }
    - { name: gold, from: 5000 }
campaigns:
  - id: d11
    timezone: UTC
    phases:
      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: peak, start: "2026-11-11T00:00:00" }
    end: "2026-11-12T00:00:00"
rewards:
  - { id: mug, name: A mug, cost: 300, stock: 2, limit: { times: 1, per: month } }
  - { id: gift, name: Gift, cost: 100, stock: 5, codes: codes.txt }
  - { id: lounge, name: Lounge, cost: 10, tiers: [gold] }
  - { id: box, name: Box, cost: 10, during: { campaign: d11, phase: peak } }
"#;

fn rules(codes: &str) -> RuleSet {
    crate::rules::from_sources(&[("r.yaml", RULES), ("codes.txt", codes)], &|_| None)
        .unwrap_or_else(|e| panic!("{e:#?}"))
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn member(points: i64) -> Member {
    let mut member = Member::new("m-1");
    member.points = points;
    member.tier = Some("member".into());
    member
}

fn record(issued: u64, codes: &[&str]) -> BTreeMap<String, RewardRecord> {
    let codes = codes.iter().map(|c| c.to_string()).collect();
    BTreeMap::from([("gift".to_string(), RewardRecord { issued, codes })])
}

const NOV_5: &str = "2026-11-05T10:00:00Z";

/// [`super::judge`] in the single process: no shares.
fn judge(
    rules: &RuleSet,
    records: &BTreeMap<String, RewardRecord>,
    member: &Member,
    reward: &str,
    now: DateTime<Utc>,
) -> Result<Grant, Refusal> {
    super::judge(rules, records, None, member, reward, now)
}

#[test]
fn a_cluster_partition_hands_out_only_the_units_and_codes_granted_to_it() {
    let rules = rules("A\nB\nC\nD\n");
    let gift = rules.rewards.iter().find(|r| r.id == "gift").unwrap();
    let mut shares = Shares::default();
    let none = super::judge(
        &rules,
        &BTreeMap::new(),
        Some(&shares),
        &member(500),
        "gift",
        at(NOV_5),
    );
    assert_eq!(none.unwrap_err(), Refusal::OutOfStock);
    let nothing_issued = RewardRecord::default();
    assert_eq!(
        gift.shorts(&nothing_issued, &shares),
        [
            Short::Stock {
                reward: "gift".into()
            },
            Short::Codes {
                reward: "gift".into()
            }
        ]
    );
    // Two units and the codes C and D: C first, as the file orders them.
    shares.add(&crate::shares::Grant::Stock {
        reward: "gift".into(),
        units: 2,
    });
    shares.add(&crate::shares::Grant::Codes {
        reward: "gift".into(),
        codes: vec!["D".into(), "C".into()],
    });
    let grant = super::judge(
        &rules,
        &BTreeMap::new(),
        Some(&shares),
        &member(500),
        "gift",
        at(NOV_5),
    )
    .unwrap();
    assert_eq!(grant.code.as_deref(), Some("C"));
    assert_eq!(gift.left_in(&nothing_issued, Some(&shares)), Some(2));
    // With C issued here, D is next; with both units issued, the stock is the short.
    let one = record(1, &["C"]);
    let grant = super::judge(&rules, &one, Some(&shares), &member(500), "gift", at(NOV_5)).unwrap();
    assert_eq!(grant.code.as_deref(), Some("D"));
    let two = &record(2, &["C", "D"])["gift"];
    assert_eq!(gift.left_in(two, Some(&shares)), Some(0));
    assert_eq!(gift.shorts(two, &shares).len(), 2);
    // The stock lowered by a reload below what was granted bounds it too.
    assert_eq!(
        gift.left_in(&record(4, &[])["gift"], Some(&shares)),
        Some(0)
    );
}

#[test]
fn a_redemption_within_every_bound_is_granted_with_the_first_code_not_yet_issued() {
    let rules = rules("A\nB\nC\n");
    let grant = judge(&rules, &record(1, &["A"]), &member(500), "gift", at(NOV_5)).unwrap();
    assert_eq!(grant.cost, 100);
    assert_eq!(grant.code.as_deref(), Some("B"));
}

#[test]
fn a_code_issued_before_a_reload_reordered_the_file_is_never_issued_again() {
    let rules = rules("C\nA\nB\n");
    let issued = record(2, &["A", "C"]);
    let grant = judge(&rules, &issued, &member(500), "gift", at(NOV_5)).unwrap();
    assert_eq!(grant.code.as_deref(), Some("B"));
    let gift = &rules.rewards[1];
    assert_eq!(gift.codes_left(&issued["gift"]), Some(1));
    assert_eq!(
        gift.left(&issued["gift"]),
        Some(1),
        "the pool is smaller than stock"
    );
}

#[test]
fn an_exhausted_codes_pool_is_out_of_stock_though_stock_is_left() {
    let rules = rules("A\n");
    let refusal = judge(&rules, &record(1, &["A"]), &member(500), "gift", at(NOV_5));
    assert_eq!(refusal, Err(Refusal::OutOfStock));
}

#[test]
fn out_of_stock_is_said_before_the_balance_is_looked_at() {
    let rules = rules("A\n");
    let issued = BTreeMap::from([(
        "mug".to_string(),
        RewardRecord {
            issued: 2,
            ..RewardRecord::default()
        },
    )]);
    let refusal = judge(&rules, &issued, &member(0), "mug", at(NOV_5));
    assert_eq!(refusal, Err(Refusal::OutOfStock));
}

#[test]
fn a_balance_below_the_cost_is_refused_naming_both() {
    let refusal = judge(
        &rules("A\n"),
        &BTreeMap::new(),
        &member(120),
        "mug",
        at(NOV_5),
    )
    .unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "insufficient points: balance 120, cost 300"
    );
}

#[test]
fn the_limit_counts_in_the_members_period_and_a_new_period_starts_afresh() {
    let rules = rules("A\n");
    let mut m = member(1000);
    m.book.reward_limits.insert("mug", ("2026-11".into(), 1));
    let refusal = judge(&rules, &BTreeMap::new(), &m, "mug", at(NOV_5)).unwrap_err();
    assert_eq!(refusal.to_string(), "limit reached: 1 per month");
    let december = judge(
        &rules,
        &BTreeMap::new(),
        &m,
        "mug",
        at("2026-12-01T10:00:00Z"),
    );
    assert_eq!(december.unwrap().limit, Some(("2026-12".to_string(), 1)));
}

#[test]
fn a_tier_restriction_refuses_other_tiers() {
    let refusal = judge(
        &rules("A\n"),
        &BTreeMap::new(),
        &member(50),
        "lounge",
        at(NOV_5),
    )
    .unwrap_err();
    assert_eq!(refusal.to_string(), "not for tier member: only gold");
    let mut gold = member(50);
    gold.tier = Some("gold".into());
    assert!(judge(&rules("A\n"), &BTreeMap::new(), &gold, "lounge", at(NOV_5)).is_ok());
}

#[test]
fn a_campaign_restriction_holds_only_in_its_phase() {
    let rules = rules("A\n");
    let none = BTreeMap::new();
    let warmup = judge(&rules, &none, &member(50), "box", at(NOV_5)).unwrap_err();
    assert_eq!(
        warmup.to_string(),
        "not available now: campaign d11 is not in phase peak"
    );
    assert!(judge(
        &rules,
        &none,
        &member(50),
        "box",
        at("2026-11-11T10:00:00Z")
    )
    .is_ok());
    let over = judge(
        &rules,
        &none,
        &member(50),
        "box",
        at("2026-11-12T10:00:00Z"),
    );
    assert!(over.is_err());
}

#[test]
fn an_unknown_reward_is_refused_by_name() {
    let refusal = judge(
        &rules("A\n"),
        &BTreeMap::new(),
        &member(50),
        "nope",
        at(NOV_5),
    );
    assert_eq!(refusal, Err(Refusal::UnknownReward("nope".into())));
}

#[test]
fn a_redemption_record_reads_back_with_its_verdict() {
    let redemption = Redemption {
        member: "m-1".into(),
        reward: "gift".into(),
        event: "r-1".into(),
        at: at(NOV_5),
        cost: 100,
        verdict: Verdict::Granted {
            code: Some("A".into()),
        },
    };
    let json = serde_json::to_value(&redemption).unwrap();
    assert_eq!(json["status"], "granted");
    assert_eq!(json["code"], "A");
    assert_eq!(
        serde_json::from_value::<Redemption>(json).unwrap(),
        redemption
    );
}
