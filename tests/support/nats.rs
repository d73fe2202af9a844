//! A real `nats-server -js` (Debian's nats-server; `scripts/test.sh` installs it) on
//! 127.0.0.1 with a port it picks itself (`-p -1`, read back from its log) and its
//! JetStream store in a temporary directory, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Nats {
    child: Child,
    /// `nats://127.0.0.1:PORT`
    pub url: String,
    _store: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> Nats {
        let store = tempfile::tempdir().expect("a temporary JetStream directory");
        let mut child = Command::new(server())
            .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server starts (apt-get install nats-server, or run scripts/test.sh)");
        let stderr = child.stderr.take().expect("piped stderr");
        let (port_tx, port_rx) = mpsc::channel();
        // Drains the log for the life of the server, so it never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.split("Listening for client connections on ").nth(1) {
                    let _ = port_tx.send(at.trim().to_string());
                }
            }
        });
        let addr = port_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("nats-server listens within 30 s");
        Nats {
            child,
            url: format!("nats://{addr}"),
            _store: store,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian installs it in /usr/sbin, which is not on every user's PATH.
fn server() -> &'static str {
    if std::path::Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}
