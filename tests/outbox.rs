//! The outbox dispatcher against a real SMTP server (aiosmtpd) and real HTTP servers on
//! loopback: rows committed to a store come out as delivered messages and statuses.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use rally::messaging::Channels;
use rally::outbox::{Clock, DispatchConfig, Dispatcher, OutboxRow, Status};
use rally::rules::{Channel, ChannelKind, Retry, SmtpChannel, SourcePos, Tls, WebhookChannel};
use rally::store::{StepWrite, Store};
use support::http::{HookServer, Reply};
use support::smtp::{header, Blackhole, SmtpServer};

fn at() -> SourcePos {
    SourcePos {
        file: Arc::from("rules/channels.yaml"),
        line: 1,
        col: 1,
    }
}

fn smtp_settings(port: u16) -> SmtpChannel {
    SmtpChannel {
        host: "127.0.0.1".to_string(),
        port,
        tls: Tls::None,
        from: "Community <club@shop.example>".to_string(),
        username: None,
        password: None,
        timeout: Duration::seconds(5),
    }
}

fn smtp(port: u16) -> Channel {
    Channel {
        id: "email".to_string(),
        kind: ChannelKind::Smtp(smtp_settings(port)),
        retry: Retry::default(),
        at: at(),
    }
}

fn webhook(url: &str) -> Channel {
    Channel {
        id: "hook".to_string(),
        kind: ChannelKind::Webhook(WebhookChannel {
            url: url.to_string(),
            body: None,
            headers: BTreeMap::new(),
            timeout: Duration::seconds(5),
        }),
        retry: Retry::default(),
        at: at(),
    }
}

fn channels(list: Vec<Channel>) -> Arc<Channels> {
    let map = list.into_iter().map(|c| (c.id.clone(), c)).collect();
    Arc::new(Channels::new(&map).unwrap())
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-10T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(Mutex::new(t0())))
    }
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
    fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

fn row(seq: u64, channel: &str, to: &str) -> OutboxRow {
    OutboxRow {
        seq,
        key: format!("welcome|e-{seq}|m-{seq}"),
        member: Some(format!("m-{seq}")),
        rule: Some("welcome".to_string()),
        channel: channel.to_string(),
        template: Some("welcome".to_string()),
        to: to.to_string(),
        subject: "Welcome".to_string(),
        body: format!("Hello member {seq}"),
        html: false,
        webhook_body: None,
        marketing: true,
        status: Status::Pending,
        due: t0(),
        attempts: 0,
        first_failed_at: None,
        last_error: None,
        created_at: t0(),
        sent_at: None,
    }
}

fn enqueue(store: &Store, rows: &[OutboxRow]) {
    let step = StepWrite {
        outbox_put: rows.iter().map(|r| (r.seq, r.encode().unwrap())).collect(),
        ..StepWrite::default()
    };
    store.commit(&[step]).unwrap();
}

fn stored(store: &Store, seq: u64) -> OutboxRow {
    let (found, bytes) = store.outbox_scan(seq, 1).unwrap().remove(0);
    assert_eq!(found, seq);
    OutboxRow::decode(seq, &bytes).unwrap()
}

/// Small backoffs so retries are quick.
fn config() -> DispatchConfig {
    DispatchConfig {
        base_backoff: std::time::Duration::from_millis(10),
        ..DispatchConfig::default()
    }
}

struct Setup {
    store: Arc<Store>,
    clock: TestClock,
    dispatcher: Dispatcher,
}

fn setup(list: Vec<Channel>, config: DispatchConfig) -> Setup {
    let store = Arc::new(Store::open_temporary().unwrap());
    let clock = TestClock::new();
    let dispatcher =
        Dispatcher::with_clock(Arc::clone(&store), channels(list), config, clock.clock());
    Setup {
        store,
        clock,
        dispatcher,
    }
}

/// An HTTP server that answers with scripted statuses in turn (then 200), optionally
/// slowly, and keeps count of requests and of the most it had open at once.
#[derive(Clone, Default)]
struct Scripted {
    replies: Arc<Mutex<VecDeque<u16>>>,
    delay_ms: u64,
    requests: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    most_open: Arc<AtomicUsize>,
}

impl Scripted {
    async fn serve(self) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new().fallback(scripted_answer).with_state(self);
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, task)
    }
}

async fn scripted_answer(State(s): State<Scripted>) -> StatusCode {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let open = s.open.fetch_add(1, Ordering::SeqCst) + 1;
    s.most_open.fetch_max(open, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(s.delay_ms)).await;
    s.open.fetch_sub(1, Ordering::SeqCst);
    let code = s.replies.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

#[tokio::test]
async fn a_queued_email_is_delivered_and_marked_sent() {
    let server = SmtpServer::start();
    let s = setup(vec![smtp(server.port)], config());
    enqueue(&s.store, &[row(1, "email", "lin@example.com")]);
    s.clock.set(t0() + Duration::seconds(3));

    assert_eq!(s.dispatcher.drain_once().await, 1);

    let mail = server.messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(header(&mail[0], "To").unwrap(), "lin@example.com");
    assert_eq!(
        header(&mail[0], "Message-ID").unwrap(),
        "<welcome|e-1|m-1@rally>"
    );
    let row = stored(&s.store, 1);
    assert_eq!(row.status, Status::Sent);
    assert_eq!(row.sent_at, Some(t0() + Duration::seconds(3)));
    assert_eq!(row.attempts, 1);
    assert_eq!(s.dispatcher.drain_once().await, 0, "sent twice");
}

#[tokio::test]
async fn an_email_to_a_server_that_is_down_is_retried_for_a_day_with_capped_backoff_then_failed() {
    let port = support::free_port();
    let s = setup(vec![smtp(port)], DispatchConfig::default());
    enqueue(&s.store, &[row(1, "email", "lin@example.com")]);

    assert_eq!(s.dispatcher.drain_once().await, 1);
    let first = stored(&s.store, 1);
    assert_eq!((first.status, first.attempts), (Status::Pending, 1));
    assert!(first.due >= t0() && first.due <= t0() + Duration::seconds(1));

    // Not retried before its due time, retried at it.
    s.clock.set(first.due - Duration::milliseconds(1));
    assert_eq!(s.dispatcher.drain_once().await, 0);

    // The relay stays down: each retry at its due time, until the day is over.
    let mut row = first;
    let mut longest_wait = Duration::zero();
    while row.status == Status::Pending {
        assert!(row.attempts < 500, "still retrying: {row:?}");
        let tried_at = s.clock.now();
        s.clock.set(row.due);
        longest_wait = longest_wait.max(row.due - tried_at);
        assert_eq!(s.dispatcher.drain_once().await, 1);
        row = stored(&s.store, 1);
    }
    assert_eq!(row.status, Status::Failed);
    let gave_up = s.clock.now();
    assert!(gave_up - t0() >= Duration::hours(24), "failed at {gave_up}");
    assert!(gave_up - t0() <= Duration::hours(25), "failed at {gave_up}");
    assert!(longest_wait <= Duration::hours(1), "waited {longest_wait}");
    assert!(
        longest_wait >= Duration::minutes(10),
        "waited {longest_wait}"
    );
    let error = row.last_error.unwrap();
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");

    s.clock.set(t0() + Duration::days(3));
    assert_eq!(
        s.dispatcher.drain_once().await,
        0,
        "a failed row was retried"
    );
}

#[tokio::test]
async fn a_channel_retry_setting_shortens_the_retry_window() {
    let port = support::free_port();
    let email = Channel {
        retry: Retry {
            for_: Duration::minutes(10),
            max_backoff: Duration::minutes(1),
        },
        ..smtp(port)
    };
    let s = setup(vec![email], DispatchConfig::default());
    enqueue(&s.store, &[row(1, "email", "lin@example.com")]);
    let mut row = row(1, "email", "lin@example.com");
    while row.status.is_waiting() {
        s.clock.set(row.due);
        assert_eq!(s.dispatcher.drain_once().await, 1);
        let next = stored(&s.store, 1);
        if next.status == Status::Pending {
            assert!(next.due - row.due <= Duration::minutes(1));
        }
        row = next;
    }
    assert_eq!(row.status, Status::Failed);
    let gave_up = s.clock.now() - t0();
    assert!(gave_up >= Duration::minutes(10) && gave_up <= Duration::minutes(11));
}

#[tokio::test]
async fn a_webhook_answering_500_is_retried_and_sent_when_it_answers_200() {
    let script = Scripted {
        replies: Arc::new(Mutex::new(VecDeque::from([500]))),
        ..Scripted::default()
    };
    let (url, _server) = script.clone().serve().await;
    let s = setup(vec![webhook(&url)], config());
    enqueue(&s.store, &[row(1, "hook", "support-team")]);

    assert_eq!(s.dispatcher.drain_once().await, 1);
    let retried = stored(&s.store, 1);
    assert_eq!(retried.status, Status::Pending);
    assert!(retried.last_error.unwrap().contains("500"));

    s.clock.set(retried.due);
    assert_eq!(s.dispatcher.drain_once().await, 1);
    let sent = stored(&s.store, 1);
    assert_eq!((sent.status, sent.attempts), (Status::Sent, 2));
    assert_eq!(script.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_webhook_answering_400_fails_the_message_without_retrying() {
    let mut server = HookServer::start(Reply::Status(400)).await;
    let s = setup(vec![webhook(&server.url)], config());
    enqueue(&s.store, &[row(1, "hook", "support-team")]);

    assert_eq!(s.dispatcher.drain_once().await, 1);
    server.received().await;
    let row = stored(&s.store, 1);
    assert_eq!((row.status, row.attempts), (Status::Failed, 1));
    assert!(row.last_error.unwrap().contains("400"));
}

#[tokio::test]
async fn a_deferred_message_is_not_sent_before_quiet_hours_end() {
    let script = Scripted::default();
    let (url, _server) = script.clone().serve().await;
    let s = setup(vec![webhook(&url)], config());
    let morning = t0() + Duration::hours(8);
    let deferred = OutboxRow {
        status: Status::Deferred,
        due: morning,
        ..row(1, "hook", "support-team")
    };
    enqueue(&s.store, &[deferred]);

    s.clock.set(morning - Duration::seconds(1));
    assert_eq!(s.dispatcher.drain_once().await, 0);
    assert_eq!(script.requests.load(Ordering::SeqCst), 0);

    s.clock.set(morning);
    assert_eq!(s.dispatcher.drain_once().await, 1);
    assert_eq!(stored(&s.store, 1).status, Status::Sent);
    assert_eq!(script.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn capped_and_suppressed_messages_are_never_delivered() {
    let script = Scripted::default();
    let (url, _server) = script.clone().serve().await;
    let s = setup(vec![webhook(&url)], config());
    let capped = OutboxRow {
        status: Status::Capped,
        ..row(1, "hook", "a")
    };
    let suppressed = OutboxRow {
        status: Status::Suppressed,
        ..row(2, "hook", "b")
    };
    enqueue(&s.store, &[capped, suppressed]);

    assert_eq!(s.dispatcher.drain_once().await, 0);
    assert_eq!(script.requests.load(Ordering::SeqCst), 0);
    assert_eq!(stored(&s.store, 2).status, Status::Suppressed);
}

#[tokio::test]
async fn a_channel_never_has_more_deliveries_in_flight_than_its_concurrency() {
    let script = Scripted {
        delay_ms: 150,
        ..Scripted::default()
    };
    let (url, _server) = script.clone().serve().await;
    let limits = DispatchConfig {
        per_channel_concurrency: 2,
        per_channel_rate: 0.0,
        ..config()
    };
    let s = setup(vec![webhook(&url)], limits);
    let rows: Vec<OutboxRow> = (1..=6).map(|n| row(n, "hook", "team")).collect();
    enqueue(&s.store, &rows);

    assert_eq!(s.dispatcher.drain_once().await, 6);
    assert_eq!(script.requests.load(Ordering::SeqCst), 6);
    assert_eq!(script.most_open.load(Ordering::SeqCst), 2);
    for n in 1..=6 {
        assert_eq!(stored(&s.store, n).status, Status::Sent);
    }
}

/// Polls until row `seq` has `status` (up to 10 s).
async fn wait_for(store: &Store, seq: u64, status: Status) -> OutboxRow {
    for _ in 0..200 {
        let row = stored(store, seq);
        if row.status == status {
            return row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "row {seq} never became {status:?}: {:?}",
        stored(store, seq)
    );
}

#[tokio::test]
async fn the_running_dispatcher_delivers_a_row_it_is_poked_about_and_retries_on_its_own() {
    let script = Scripted {
        replies: Arc::new(Mutex::new(VecDeque::from([503]))),
        ..Scripted::default()
    };
    let (url, _server) = script.clone().serve().await;
    let store = Arc::new(Store::open_temporary().unwrap());
    let dispatcher = Dispatcher::new(Arc::clone(&store), channels(vec![webhook(&url)]), config());
    let poke = dispatcher.notifier();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(dispatcher.run(async {
        let _ = stopped.await;
    }));

    // Committed while the dispatcher sleeps with nothing to do: the poke wakes it,
    // the 503 puts the row back, and it wakes by itself for the retry.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    enqueue(
        &store,
        &[OutboxRow {
            due: Utc::now(),
            ..row(1, "hook", "team")
        }],
    );
    poke.notify_one();
    let sent = wait_for(&store, 1, Status::Sent).await;
    assert_eq!(sent.attempts, 2);

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), running)
        .await
        .expect("the dispatcher did not stop")
        .unwrap();
}

#[tokio::test]
async fn rows_queued_after_a_pass_are_found_alongside_an_older_row_awaiting_retry() {
    let script = Scripted {
        replies: Arc::new(Mutex::new(VecDeque::from([503]))),
        ..Scripted::default()
    };
    let (url, _server) = script.clone().serve().await;
    let limits = DispatchConfig {
        per_channel_concurrency: 1,
        ..config()
    };
    let s = setup(vec![webhook(&url)], limits);
    enqueue(&s.store, &[row(1, "hook", "a"), row(2, "hook", "b")]);
    assert_eq!(s.dispatcher.drain_once().await, 2);
    // One of the two got the 503.
    let (retry, sent): (Vec<OutboxRow>, Vec<OutboxRow>) = [1, 2]
        .into_iter()
        .map(|seq| stored(&s.store, seq))
        .partition(|row| row.status == Status::Pending);
    assert_eq!((retry.len(), sent.len()), (1, 1));
    assert_eq!(sent[0].status, Status::Sent);

    enqueue(&s.store, &[row(3, "hook", "c")]);
    s.clock.set(retry[0].due);
    assert_eq!(s.dispatcher.drain_once().await, 2);
    for seq in 1..=3 {
        assert_eq!(stored(&s.store, seq).status, Status::Sent);
    }
}

#[tokio::test]
async fn a_hung_smtp_relay_with_a_large_backlog_does_not_hold_back_webhook_messages() {
    let relay = Blackhole::start().await;
    let script = Scripted::default();
    let (url, _server) = script.clone().serve().await;
    // A relay timeout well above how long the webhooks may take to go out.
    let email = Channel {
        kind: ChannelKind::Smtp(SmtpChannel {
            timeout: Duration::seconds(10),
            ..smtp_settings(relay.port)
        }),
        ..smtp(relay.port)
    };
    let store = Arc::new(Store::open_temporary().unwrap());
    let dispatcher = Dispatcher::new(
        Arc::clone(&store),
        channels(vec![email, webhook(&url)]),
        DispatchConfig {
            // Hung sends are abandoned at the end of the test, not waited for.
            shutdown_grace: std::time::Duration::from_millis(100),
            ..DispatchConfig::default()
        },
    );
    // A broadcast queued first, then escalations behind it.
    let now = Utc::now();
    let mut rows: Vec<OutboxRow> = (1..=2000)
        .map(|n| OutboxRow {
            due: now,
            ..row(n, "email", "member@example.com")
        })
        .collect();
    rows.extend((2001..=2003).map(|n| OutboxRow {
        due: now,
        ..row(n, "hook", "support-team")
    }));
    enqueue(&store, &rows);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(dispatcher.run(async {
        let _ = stopped.await;
    }));

    for seq in 2001..=2003 {
        wait_for(&store, seq, Status::Sent).await;
    }
    // Out before the relay's first timeout: no email attempt has ended yet.
    let emails_tried = (1..=2000)
        .filter(|seq| stored(&store, *seq).attempts > 0)
        .count();
    assert_eq!(emails_tried, 0, "the webhooks waited for the relay");
    assert_eq!(script.requests.load(Ordering::SeqCst), 3);

    // Meanwhile the emails time out and wait for a retry.
    let mut retrying = None;
    for _ in 0..400 {
        retrying = (1..=256)
            .map(|seq| stored(&store, seq))
            .find(|row| row.attempts > 0);
        if retrying.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let retrying = retrying.expect("no email attempt ended within 20 s");
    assert_eq!(retrying.status, Status::Pending);
    let error = retrying.last_error.unwrap();
    assert!(error.contains("no answer"), "{error}");

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), running)
        .await
        .expect("the dispatcher did not stop")
        .unwrap();
}

#[tokio::test]
async fn a_channel_held_back_by_its_rate_limit_does_not_slow_another_channel() {
    let slow_script = Scripted::default();
    let (slow_url, _slow) = slow_script.clone().serve().await;
    let script = Scripted::default();
    let (url, _server) = script.clone().serve().await;
    let slow = Channel {
        id: "slow".to_string(),
        ..webhook(&slow_url)
    };
    let store = Arc::new(Store::open_temporary().unwrap());
    let dispatcher = Dispatcher::new(
        Arc::clone(&store),
        channels(vec![slow, webhook(&url)]),
        DispatchConfig {
            per_channel_rate: 1.0,
            shutdown_grace: std::time::Duration::from_millis(100),
            ..DispatchConfig::default()
        },
    );
    // Twenty messages at one a second on "slow", queued before two on "hook".
    let now = Utc::now();
    let mut rows: Vec<OutboxRow> = (1..=20)
        .map(|n| OutboxRow {
            due: now,
            ..row(n, "slow", "team")
        })
        .collect();
    rows.extend((21..=22).map(|n| OutboxRow {
        due: now,
        ..row(n, "hook", "team")
    }));
    enqueue(&store, &rows);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(dispatcher.run(async {
        let _ = stopped.await;
    }));

    wait_for(&store, 21, Status::Sent).await;
    wait_for(&store, 22, Status::Sent).await;
    let slow_sent = slow_script.requests.load(Ordering::SeqCst);
    assert!(
        slow_sent < 20,
        "hook waited for all of slow ({slow_sent} sent)"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), running)
        .await
        .expect("the dispatcher did not stop")
        .unwrap();
}

#[tokio::test]
async fn deliveries_are_counted_once_each_on_the_day_of_the_community_time_zone() {
    use rally::metrics::deliveries::{load, DeliveryDay};
    use rally::metrics::Delivered;

    let server = SmtpServer::start();
    let hook = HookServer::start(Reply::Status(503)).await;
    let s = setup(vec![smtp(server.port), webhook(&hook.url)], config());
    s.dispatcher.set_timezone(chrono_tz::Asia::Shanghai);
    // 16:30 UTC on 10 November is half past midnight on the 11th in Shanghai.
    let late = t0() + Duration::minutes(390);
    s.clock.set(late);
    enqueue(
        &s.store,
        &[row(1, "email", "a@example.com"), row(2, "hook", "-")],
    );
    assert_eq!(s.dispatcher.drain_once().await, 2);
    assert_eq!(stored(&s.store, 2).status, Status::Pending);

    // The receiver is back by the retry; a later pass finds nothing more to count.
    hook.reply_with(Reply::Status(200));
    s.clock.set(late + Duration::hours(1));
    assert_eq!(s.dispatcher.drain_once().await, 1);
    assert_eq!(s.dispatcher.drain_once().await, 0);

    let counts = load(&s.store).unwrap();
    let day = "2026-11-11".parse().unwrap();
    let expected: DeliveryDay = [
        (
            "email".to_string(),
            Delivered {
                sent: 1,
                ..Delivered::default()
            },
        ),
        (
            "hook".to_string(),
            Delivered {
                sent: 1,
                retried: 1,
                ..Delivered::default()
            },
        ),
    ]
    .into();
    assert_eq!(counts, [(day, expected)].into());
}
