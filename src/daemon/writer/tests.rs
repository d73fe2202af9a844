//! The writer's unit tests: a real store in a temporary directory, no HTTP.

use super::*;
use crate::event::{parse_line, AtPolicy};
use crate::store::Store;
use crate::tickets::Ticket;

fn rules(points: i64) -> Arc<RuleSet> {
    let yaml = format!(
        "rules:\n  - id: checkin-points\n    trigger: {{ event: checkin }}\n    actions:\n      - points: {points}\n"
    );
    Arc::new(crate::rules::from_sources(&[("rules.yaml", &yaml)], &|_| None).unwrap())
}

fn checkin(id: &str) -> Event {
    let line =
        format!(r#"{{"id":"{id}","type":"checkin","member":"m-1","at":"2026-11-11T10:00:00Z"}}"#);
    parse_line(&line, AtPolicy::Required).unwrap()
}

fn start(points: i64) -> (WriterHandle, JoinHandle<()>, Arc<Store>) {
    let runner = Runner::new(Store::open_temporary().unwrap(), rules(points)).unwrap();
    let store = runner.shared_store();
    let (writer, thread) = spawn(
        runner,
        Arc::new(Metrics::new()),
        Arc::default(),
        None,
        Arc::new(crate::clock::SystemClock),
    )
    .unwrap();
    (writer, thread, store)
}

#[tokio::test]
async fn a_request_is_answered_in_order_and_sees_its_own_duplicates() {
    let (writer, _thread, store) = start(5);
    let acks = writer
        .apply(vec![checkin("e-1"), checkin("e-1"), checkin("e-2")])
        .await
        .unwrap();
    assert_eq!(acks, [Ack::Accepted, Ack::Duplicate, Ack::Accepted]);
    assert_eq!(store.member("m-1").unwrap().unwrap().points, 10);
}

#[tokio::test]
async fn a_rule_set_swapped_in_applies_to_the_events_sent_after_it() {
    let (writer, _thread, store) = start(5);
    writer.apply(vec![checkin("e-1")]).await.unwrap();
    writer.set_rules(rules(7)).await.unwrap();
    writer.apply(vec![checkin("e-2")]).await.unwrap();
    assert_eq!(store.member("m-1").unwrap().unwrap().points, 12);
}

#[tokio::test]
async fn stop_finishes_the_jobs_queued_before_it() {
    let (writer, thread, store) = start(5);
    let pending = tokio::spawn({
        let writer = writer.clone();
        async move { writer.apply(vec![checkin("e-1")]).await }
    });
    tokio::task::yield_now().await;
    writer.stop().await;
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), [Ack::Accepted]);
    assert!(store.seen("e-1").unwrap());
    assert!(writer.apply(vec![checkin("e-2")]).await.is_err());
}

const ESCALATION: &str = "
channels:
  staff: { kind: log }
escalations:
  - id: support
    levels:
      - { notify: { channel: staff, to: support-team }, within: 2h }
      - { notify: { channel: staff, to: lead } }
rules:
  - id: low-rating
    trigger: { event: feedback }
    actions:
      - escalate: { policy: support, severity: high, summary: low rating }
";

/// A writer whose store holds ticket T-1, open.
async fn start_with_ticket() -> (WriterHandle, JoinHandle<()>, Arc<Store>) {
    let set = crate::rules::from_sources(&[("rules.yaml", ESCALATION)], &|_| None).unwrap();
    let runner = Runner::new(Store::open_temporary().unwrap(), Arc::new(set)).unwrap();
    let store = runner.shared_store();
    let (writer, thread) = spawn(
        runner,
        Arc::new(Metrics::new()),
        Arc::default(),
        None,
        Arc::new(crate::clock::SystemClock),
    )
    .unwrap();
    let line = r#"{"id":"f-1","type":"feedback","member":"m-1","at":"2026-11-11T10:00:00Z"}"#;
    let feedback = parse_line(line, AtPolicy::Required).unwrap();
    assert_eq!(writer.apply(vec![feedback]).await.unwrap(), [Ack::Accepted]);
    (writer, thread, store)
}

fn command(id: &str, resolve: bool) -> TicketCommand {
    TicketCommand {
        id: id.into(),
        resolve,
        by: Some("lin".into()),
        note: None,
    }
}

fn stored_ticket(store: &Store, number: u64) -> Ticket {
    serde_json::from_slice(&store.ticket(number).unwrap().unwrap()).unwrap()
}

#[tokio::test]
async fn an_acknowledged_ticket_is_stored_when_the_answer_comes() {
    let (writer, _thread, store) = start_with_ticket().await;
    let answer = writer.ticket(command("T-1", false)).await.unwrap();
    let TicketAnswer::Changed(ticket) = answer else {
        panic!("expected a change, got {answer:?}");
    };
    assert_eq!(ticket.status, crate::tickets::TicketStatus::Acked);
    assert_eq!(ticket.acked_by.as_deref(), Some("lin"));
    assert_eq!(stored_ticket(&store, 1), *ticket);
}

#[tokio::test]
async fn of_two_acknowledgements_sent_together_only_one_changes_the_ticket() {
    let (writer, _thread, _store) = start_with_ticket().await;
    let (first, second) = tokio::join!(
        writer.ticket(command("T-1", false)),
        writer.ticket(command("T-1", false))
    );
    let mut answers = [first.unwrap(), second.unwrap()];
    answers.sort_by_key(|a| matches!(a, TicketAnswer::Refused(_)));
    assert!(
        matches!(answers[0], TicketAnswer::Changed(_)),
        "{answers:?}"
    );
    assert!(
        matches!(&answers[1], TicketAnswer::Refused(m) if m.contains("already acknowledged")),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_ticket_that_does_not_exist_is_not_found_and_nothing_is_stored() {
    let (writer, _thread, store) = start_with_ticket().await;
    for id in ["T-99", "ticket-1"] {
        let answer = writer.ticket(command(id, true)).await.unwrap();
        assert!(matches!(answer, TicketAnswer::NotFound(_)), "{answer:?}");
    }
    assert_eq!(
        stored_ticket(&store, 1).status,
        crate::tickets::TicketStatus::Open
    );
}
