//! Real servers for integration tests, each on a free loopback port and stopped when
//! its guard is dropped.

// Each test binary uses only part of the helpers.
#![allow(dead_code)]

pub mod daemon;
pub mod http;
pub mod live;
pub mod runner;
pub mod sim;
pub mod smtp;

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
