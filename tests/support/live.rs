//! A daemon in this process (`rally::daemon::run`) on a test's clock and a test's
//! store faults, serving on a free loopback port; stopped by [`Live::stop`], or
//! aborted when dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rally::clock::Clock;
use rally::store::Faults;
use serde_json::Value;

pub struct Live {
    pub base: String,
    pub http: reqwest::Client,
    pub faults: Arc<Faults>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), rally::daemon::DaemonError>>>,
}

impl Live {
    /// Starts a daemon on the rules in `rules` and the data in `data`.
    ///
    /// A daemon this process stopped a moment ago on the same data may still hold
    /// the files' lock: sled lets go of it from a background thread some moments after
    /// the drop (spacejam/sled#1234; `Store::reopen` waits the same way). Under load
    /// that took long enough for a restart to fail, so the start is tried again while
    /// that is the reason, for a few seconds.
    pub async fn start(rules: &Path, data: &Path, clock: Arc<dyn Clock>) -> Live {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match Live::try_start(rules, data, Arc::clone(&clock)).await {
                Err(why)
                    if why.contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                started => return started.expect("the daemon starts"),
            }
        }
    }

    /// Like [`Live::start`], but a daemon that refuses to start says why.
    pub async fn try_start(
        rules: &Path,
        data: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Live, String> {
        let faults = Arc::new(Faults::default());
        let config = rally::daemon::Config {
            rules_dir: PathBuf::from(rules),
            data_dir: PathBuf::from(data),
            token: None,
            rate_limit: rally::daemon::DEFAULT_RATE_LIMIT,
            watch: false,
            clock,
            limits: rally::daemon::Limits::default(),
            faults: Arc::clone(&faults),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut done = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            rally::daemon::run(listener, config, shutdown).await
        });
        let http = super::daemon::client();
        // Up once `/healthz` answers; a daemon that ended meanwhile refused to start.
        loop {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            if done.is_finished() {
                let outcome = (&mut done).await.expect("the daemon task");
                return Err(match outcome {
                    Ok(()) => "the daemon stopped at once".to_string(),
                    Err(e) => e.to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Live {
            base,
            http,
            faults,
            stop: Some(stop),
            done: Some(done),
        })
    }

    /// POSTs `body` to `path`: the status and the body (JSON, or the text).
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body.to_string())
            .send()
            .await
            .expect("the daemon answers");
        super::daemon::answer(response).await
    }

    /// GETs `path`: the status and the body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the daemon answers");
        super::daemon::answer(response).await
    }

    /// Stops the daemon cleanly and waits for it (at most a minute).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(Duration::from_secs(60), done)
                .await
                .expect("the daemon stops within a minute")
                .expect("the daemon task")
                .expect("the daemon stops cleanly");
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(done) = &self.done {
            done.abort();
        }
    }
}
