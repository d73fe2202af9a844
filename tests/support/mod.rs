//! Real servers for integration tests, each on a free loopback port and stopped when
//! its guard is dropped.

// Each test binary uses only part of the helpers.
#![allow(dead_code)]

pub mod cluster_node;
pub mod daemon;
pub mod footprint;
pub mod http;
pub mod live;
pub mod nats;
pub mod runner;
pub mod sim;
pub mod smtp;
pub mod webdriver;

use std::net::TcpListener;
use std::path::PathBuf;

/// A port nothing listens on right now: bind port 0, note the port, release it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A file in `tests/support/`.
pub fn support_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// A template whose body asks for 3 GB (issue 12), sent on check-in next to a points
/// rule. The `send` is on line 12.
pub const JOIN_BOMB: &str = r#"
templates:
  bomb:
    subject: Hi
    body: '{{ range(100000) | join("x" * 100000) }}'
channels:
  console: { kind: log }
rules:
  - id: bomb
    trigger: { event: checkin }
    actions:
      - send: { template: bomb, channel: console }
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 5
"#;

/// Asks `check` every 50 ms until it answers `Ok`, and returns that; fails with its
/// last `Err` (what was seen instead) once `within` has passed.
pub async fn until<T>(
    within: std::time::Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(std::time::Instant::now() < deadline, "{seen}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
