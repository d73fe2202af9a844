//! A real `rally run --cluster` node as a child process on a free loopback port (read
//! from its `listen=` log line), its log kept for assertions, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::daemon::get_json;

use super::daemon::rally;

pub struct ClusterNode {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl ClusterNode {
    pub fn start(
        nats: &str,
        name: &str,
        rules: &Path,
        data: &Path,
        partitions: u32,
        lease_ms: u64,
    ) -> ClusterNode {
        ClusterNode::start_with_env(nats, name, rules, data, partitions, lease_ms, &[])
    }

    /// As [`ClusterNode::start`], with these environment variables set for the node.
    pub fn start_with_env(
        nats: &str,
        name: &str,
        rules: &Path,
        data: &Path,
        partitions: u32,
        lease_ms: u64,
        env: &[(&str, &str)],
    ) -> ClusterNode {
        ClusterNode::start_with(nats, name, rules, data, partitions, lease_ms, env, &[])
    }

    /// As [`ClusterNode::start_with_env`], with more arguments for `rally run`.
    #[allow(clippy::too_many_arguments)]
    pub fn start_with(
        nats: &str,
        name: &str,
        rules: &Path,
        data: &Path,
        partitions: u32,
        lease_ms: u64,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> ClusterNode {
        let mut child = rally()
            .arg("run")
            .arg("--rules")
            .arg(rules)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--cluster", nats, "--node", name])
            .args(["--partitions", &partitions.to_string()])
            .args(["--lease-ms", &lease_ms.to_string()])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rally run --cluster");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
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
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => ClusterNode {
                child,
                base: format!("http://{addr}"),
                log,
            },
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "node {name} did not listen within 30 s:\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let sent = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(sent, 0, "kill({}, {signal})", self.child.id());
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        // A node left stopped (SIGSTOP) by a failed test still dies on SIGKILL.
        self.kill();
    }
}

/// The partitions `base` applies under a lease it holds.
pub async fn owned(http: &reqwest::Client, base: &str) -> Vec<(u32, u64)> {
    let Some((200, view)) = get_json(http, base, "/v1/cluster").await else {
        return Vec::new();
    };
    view["owned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["lease_held"] == true && p["caught_up"] == true)
        .map(|p| {
            (
                p["partition"].as_u64().unwrap() as u32,
                p["applied"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Waits until the nodes at `bases` hold every partition between them, each node
/// at least one, and returns who holds what.
pub async fn until_spread(
    http: &reqwest::Client,
    bases: &[String],
    partitions: u32,
) -> Vec<Vec<u32>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut held = Vec::new();
        for base in bases {
            held.push(
                owned(http, base)
                    .await
                    .into_iter()
                    .map(|(p, _)| p)
                    .collect::<Vec<_>>(),
            );
        }
        let mut all: Vec<u32> = held.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        let total: usize = held.iter().map(Vec::len).sum();
        if all.len() == partitions as usize
            && total == partitions as usize
            && held.iter().all(|h| !h.is_empty())
        {
            return held;
        }
        assert!(
            Instant::now() < deadline,
            "partitions never spread over {bases:?}: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
