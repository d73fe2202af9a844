//! `rally bench`: the daemon, in process on loopback with a fresh data directory,
//! driven over real HTTP. Two measurements:
//!
//! - **saturation**: `concurrency` clients post batches back to back; every event is
//!   acknowledged only once durable, so this is durable events per second;
//! - **latency at a fixed load**: one event per request, sent on a fixed schedule
//!   (open loop: a slow answer does not delay the next request), timed from when each
//!   request was *due*, so a stall shows in the percentiles instead of hiding.
//!
//! Client and daemon share the machine; the numbers are a floor for the daemon alone.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{run, Config, DaemonError};

pub struct BenchConfig {
    pub rules_dir: PathBuf,
    /// Events posted in the saturation run.
    pub events: usize,
    /// Clients posting at once in the saturation run.
    pub concurrency: usize,
    /// Events per request in the saturation run.
    pub batch: usize,
    /// Offered load of the latency run, events (= requests) per second.
    pub rate: f64,
    /// Length of the latency run.
    pub duration: Duration,
}

#[derive(Debug, Error)]
pub enum BenchError {
    #[error("the daemon failed: {0}")]
    Daemon(#[from] DaemonError),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the daemon answered {status}: {body}")]
    Refused { status: u16, body: String },
}

#[derive(Debug)]
pub struct Saturation {
    pub events: usize,
    pub elapsed: Duration,
    pub inside: Inside,
}

#[derive(Debug)]
pub struct Latency {
    pub offered: f64,
    pub sent: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// The first failure, to tell a daemon error from an exhausted client.
    pub first_error: Option<String>,
    pub inside: Inside,
}

/// Where the daemon spent its time during a run, from its own metrics: mean step,
/// commit and sync time, and mean steps per group.
#[derive(Debug, Default)]
pub struct Inside {
    pub step: Duration,
    pub commit: Duration,
    pub sync: Duration,
    pub group: f64,
    pub groups: u64,
}

/// `(sum, count)` of each histogram the bench reports, read from `/metrics`.
#[derive(Clone, Copy, Default)]
struct Totals {
    step: (f64, f64),
    commit: (f64, f64),
    sync: (f64, f64),
    group: (f64, f64),
}

impl Totals {
    async fn read(client: &reqwest::Client, base: &str) -> Result<Totals, BenchError> {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or(0.0)
        };
        let pair = |name: &str| {
            (
                value(&format!("{name}_sum")),
                value(&format!("{name}_count")),
            )
        };
        Ok(Totals {
            step: pair("rally_step_seconds"),
            commit: pair("rally_commit_seconds"),
            sync: pair("rally_store_sync_seconds"),
            group: pair("rally_group_steps"),
        })
    }

    /// What happened between `before` and `self`.
    fn since(self, before: Totals) -> Inside {
        let mean = |now: (f64, f64), then: (f64, f64)| {
            let count = now.1 - then.1;
            if count > 0.0 {
                (now.0 - then.0) / count
            } else {
                0.0
            }
        };
        let seconds = |now, then| Duration::from_secs_f64(mean(now, then).max(0.0));
        Inside {
            step: seconds(self.step, before.step),
            commit: seconds(self.commit, before.commit),
            sync: seconds(self.sync, before.sync),
            group: mean(self.group, before.group),
            groups: (self.group.1 - before.group.1).max(0.0) as u64,
        }
    }
}

/// Runs both measurements against a fresh daemon and returns what they found.
pub async fn bench(config: &BenchConfig) -> Result<(Saturation, Latency), BenchError> {
    let data_dir = std::env::temp_dir().join(format!(
        "rally-bench-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ));
    let result = against_daemon(config, data_dir.clone()).await;
    // Best effort: a leftover temporary directory is not worth failing the bench.
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

async fn against_daemon(
    config: &BenchConfig,
    data_dir: PathBuf,
) -> Result<(Saturation, Latency), BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| BenchError::Io {
            context: "cannot bind 127.0.0.1:0",
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| BenchError::Io {
        context: "cannot read the bound address",
        source,
    })?;
    let daemon_config = Config {
        rules_dir: config.rules_dir.clone(),
        data_dir,
        token: None,
        rate_limit: f64::MAX,
        watch: false,
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        limits: crate::daemon::Limits::default(),
        faults: std::sync::Arc::default(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(run(listener, daemon_config, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let measured = async {
        wait_healthy(&client, &base).await?;
        let start = Totals::read(&client, &base).await?;
        let mut saturation = saturate(config, &client, &base).await?;
        let middle = Totals::read(&client, &base).await?;
        saturation.inside = middle.since(start);
        let mut latency = fixed_load(config, &client, &base).await?;
        latency.inside = Totals::read(&client, &base).await?.since(middle);
        Ok::<_, BenchError>((saturation, latency))
    }
    .await;
    let _ = stop.send(());
    match daemon.await {
        Ok(Ok(())) => measured,
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(BenchError::Io {
            context: "the daemon task failed",
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> Result<(), BenchError> {
    let mut attempts = 0;
    loop {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Err(e) if attempts >= 200 => return Err(e.into()),
            _ => {}
        }
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A realistic mix for the shipped rules: check-ins, purchases, posts.
fn event(prefix: &str, n: usize) -> Value {
    let member = format!("bench-{}", n % 5000);
    match n % 4 {
        0 => json!({"id": format!("{prefix}-{n}"), "type": "checkin", "member": member}),
        1 => json!({"id": format!("{prefix}-{n}"), "type": "purchase", "member": member,
                    "data": {"amount": (n % 500) as f64 + 9.9}}),
        _ => json!({"id": format!("{prefix}-{n}"), "type": "post", "member": member}),
    }
}

async fn post(client: &reqwest::Client, base: &str, body: String) -> Result<(), BenchError> {
    let response = client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(BenchError::Refused {
            status: status.as_u16(),
            body: response.text().await.unwrap_or_default(),
        })
    }
}

async fn saturate(
    config: &BenchConfig,
    client: &reqwest::Client,
    base: &str,
) -> Result<Saturation, BenchError> {
    let batch = config.batch.max(1);
    let batches = config.events.div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..config.concurrency.max(1) {
        let (client, base, next) = (client.clone(), base.to_string(), Arc::clone(&next));
        let total = config.events;
        clients.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<(), BenchError>(());
                }
                let events: Vec<Value> = (b * batch..((b + 1) * batch).min(total))
                    .map(|n| event("sat", n))
                    .collect();
                post(&client, &base, Value::Array(events).to_string()).await?;
            }
        }));
    }
    for client in clients {
        client.await.map_err(|e| BenchError::Io {
            context: "a client task failed",
            source: std::io::Error::other(e.to_string()),
        })??;
    }
    Ok(Saturation {
        events: config.events,
        elapsed: started.elapsed(),
        inside: Inside::default(),
    })
}

async fn fixed_load(
    config: &BenchConfig,
    client: &reqwest::Client,
    base: &str,
) -> Result<Latency, BenchError> {
    let total = (config.rate * config.duration.as_secs_f64()) as usize;
    let rate = config.rate;
    let started = Instant::now();
    // Paced by a thread of its own: tokio's timers round up to the millisecond, which
    // would add up to 1 ms of the generator's own rounding to every figure measured.
    let runtime = tokio::runtime::Handle::current();
    let (client, base) = (client.clone(), base.to_string());
    let pacer = tokio::task::spawn_blocking(move || {
        (0..total)
            .map(|n| {
                let due = started + Duration::from_secs_f64(n as f64 / rate);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let (client, base) = (client.clone(), base.clone());
                runtime.spawn(async move {
                    let outcome = post(&client, &base, event("lat", n).to_string()).await;
                    outcome.map(|()| due.elapsed())
                })
            })
            .collect::<Vec<_>>()
    });
    let requests = pacer.await.map_err(|e| BenchError::Io {
        context: "the load generator failed",
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    let mut first_error = None;
    for request in requests {
        match request.await {
            Ok(Ok(latency)) => latencies.push(latency),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Latency {
        offered: config.rate,
        sent: total,
        failed,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        first_error,
        inside: Inside::default(),
    })
}

/// The `p` quantile of sorted values (nearest rank).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }
}
