//! The real `rally run` binary as a child process on a free loopback port, for tests
//! that talk to it over HTTP, stop it with signals, or kill it outright.
//!
//! The daemon is started with `--listen 127.0.0.1:0`; the port it got is read from its
//! startup log line (`listen=127.0.0.1:PORT`), so there is no race for a port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `rally` binary under test.
pub fn rally() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rally"));
    // The tests decide these; the developer's environment must not leak in.
    command
        .env_remove("RALLY_TOKEN")
        .env_remove("RALLY_RATE_LIMIT")
        .env_remove("RALLY_MAX_CONNECTIONS")
        .env_remove("RALLY_HEADER_TIMEOUT_MS")
        .env_remove("RALLY_BODY_TIMEOUT_MS")
        .env("RUST_LOG", "info");
    command
}

/// `rally ARGS` with `env`, killed if it has not finished within 60 s (a hang fails
/// the test instead of stalling the suite).
pub fn rally_within_a_minute(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = rally()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rally starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll rally").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("rally's output");
            panic!(
                "rally {args:?} still running after 60 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("rally's output")
}

/// `rally replay --data DIR`, the self-check: the journal must rebuild the live state.
pub fn assert_replay_reproduces(data: &Path) {
    let check = rally_within_a_minute(&["replay", "--data", data.to_str().expect("utf-8")], &[]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("reproduced exactly"), "{said}");
}

/// Runs `rally run` on the rules in `rules`, listening on `listen`, expecting it to
/// exit before serving (within a minute): its exit code and what it printed to stderr.
pub fn run_until_refused(rules: &Path, listen: &str) -> (Option<i32>, String) {
    let data = tempfile::tempdir().expect("a temporary data directory");
    let (rules, data) = (
        rules.to_string_lossy(),
        data.path().to_string_lossy().into_owned(),
    );
    let out = rally_within_a_minute(
        &[
            "run", "--rules", &rules, "--data", &data, "--listen", listen,
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `rally run` and waits until it listens. Panics, with its log, if it exits.
    pub fn start(rules: &Path, data: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut command = rally();
        command
            .arg("run")
            .arg("--rules")
            .arg(rules)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start rally run");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
            // Drains stderr for the life of the process, so the child never blocks on it.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line
                        .split_whitespace()
                        .find_map(|field| field.strip_prefix("listen="))
                    {
                        let _ = addr_tx.send(addr.to_string());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = addr_rx.recv_timeout(Duration::from_millis(50)) {
                return Daemon {
                    child,
                    base: format!("http://{addr}"),
                    log,
                };
            }
            if let Some(status) = child.try_wait().expect("poll the child") {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "rally run exited with {status} before listening:\n{}",
                    log.lock().unwrap()
                );
            }
            assert!(Instant::now() < deadline, "rally run did not start in 30 s");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` and waits (at most 30 s) for the process to exit.
    pub fn signal_and_wait(&mut self, signal: i32) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let sent = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(sent, 0, "kill({}, {signal})", self.pid());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "rally run did not exit within 30 s of signal {signal}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        self.signal_and_wait(libc::SIGKILL);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A rules directory holding `rules.yaml` with `yaml`; writable, for reload tests.
pub fn rules_dir(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary rules directory");
    std::fs::write(dir.path().join("rules.yaml"), yaml).expect("write rules.yaml");
    dir
}

/// A directory in `examples/`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A client that never waits forever.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// Posts `events` as one batch until a daemon at `base()` acknowledges it — whatever
/// the daemon goes through meanwhile (killed, restarting, cut off mid-answer) — and
/// returns the per-event statuses. `base` is read again on every try, so a restart on
/// a new port is followed.
pub async fn post_until_acknowledged(
    http: &reqwest::Client,
    base: impl Fn() -> String,
    events: &[serde_json::Value],
) -> Vec<String> {
    let body = serde_json::Value::from(events.to_vec()).to_string();
    loop {
        let url = format!("{}/v1/events", base());
        if let Ok(response) = http.post(url).body(body.clone()).send().await {
            if response.status().is_success() {
                if let Ok(text) = response.text().await {
                    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
                    return answer["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["status"].as_str().unwrap().to_string())
                        .collect();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET base + path` as JSON with its status; `None` while the daemon cannot answer.
pub async fn get_json(
    http: &reqwest::Client,
    base: &str,
    path: &str,
) -> Option<(u16, serde_json::Value)> {
    let response = http.get(format!("{base}{path}")).send().await.ok()?;
    let status = response.status().as_u16();
    let text = response.text().await.ok()?;
    Some((status, serde_json::from_str(&text).ok()?))
}

/// A daemon on its own rules and data directories, with a client to talk to it.
pub struct Session {
    pub rules: tempfile::TempDir,
    pub data: tempfile::TempDir,
    pub daemon: Daemon,
    pub http: reqwest::Client,
}

impl Session {
    /// Starts the binary on `yaml` (as `rules.yaml`) with `env` set.
    pub fn start(yaml: &str, env: &[(&str, &str)]) -> Session {
        let rules = rules_dir(yaml);
        let data = tempfile::tempdir().expect("a temporary data directory");
        let daemon = Daemon::start(rules.path(), data.path(), env);
        Session {
            rules,
            data,
            daemon,
            http: client(),
        }
    }

    /// POSTs `body` to `path`: the status and the body (JSON, or the text as a string).
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(self.daemon.url(path))
            .body(body.to_string())
            .send()
            .await
            .expect("the daemon answers");
        answer(response).await
    }

    /// GETs `path`: the status and the body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.daemon.url(path))
            .send()
            .await
            .expect("the daemon answers");
        answer(response).await
    }
}

/// A response's status and body: JSON when it parses, otherwise the text.
pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("a readable body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}
