//! `rally run`: the daemon (SPEC §3, §4, §5).
//!
//! | module | owns |
//! |---|---|
//! | [`writer`] | the one writer thread: group commit, sync, then acknowledge |
//! | [`ingest`] | `POST /v1/events`: body formats, limits, per-event results |
//! | [`api`] | routes and the read-only handlers |
//! | [`json_errors`] | every error answered as JSON, axum's own rejections too |
//! | [`tickets`] | `GET /v1/tickets`, and acknowledging and resolving tickets |
//! | [`adjust`] | `POST /v1/members/{id}/points`: an operator's manual adjustment |
//! | [`rewards`] | `POST /v1/members/{id}/redeem` and `GET /v1/rewards` |
//! | [`member_command`] | what those two share: a body become an event, applied through the writer |
//! | [`draws`], [`leaderboards`], [`report`] | `GET /v1/draws`, `/v1/leaderboards/{id}`, `/v1/report` |
//! | [`journal`] | `GET /v1/journal` and a member's explanation from it |
//! | [`retention`] | `settings.retention`: removing old messages and history in the background |
//! | [`reload`] | rule reloads (rules and channels): by request and by watching the rules directory |
//! | [`guard`] | bearer token, body timeout and rate limit |
//! | [`dashboard`] | the web dashboard at `/`: embedded page and assets, login and logout |
//! | [`session`] | the dashboard's browser sessions (the cookie the login form sets) |
//! | [`serve`] | the accept loop: connection limit, header and idle timeouts |
//! | [`telemetry`] | the metrics behind `GET /metrics` |
//! | [`bench`] | `rally bench`: throughput and latency over real HTTP |
//!
//! [`run`] takes its listener and its shutdown signal as arguments (as mini-redis
//! does), so tests and `rally bench` bind `127.0.0.1:0` and stop it when they like.
//!
//! Shutdown: stop accepting, let in-flight requests finish (their events are committed
//! and synced by the writer before they are answered), then stop the writer after the
//! jobs already queued. Nothing acknowledged is ever left unsynced.

pub(crate) mod adjust;
pub(crate) mod api;
pub mod bench;
mod dashboard;
mod draws;
pub(crate) mod guard;
mod health;
pub mod ingest;
mod journal;
mod json_errors;
pub(crate) mod leaderboards;
pub(crate) mod member_command;
mod messages;
pub(crate) mod reload;
mod report;
mod retention;
pub(crate) mod rewards;
pub mod serve;
mod session;
pub(crate) mod telemetry;
pub(crate) mod tickets;
mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::rules::{self, RuleError};
use crate::runner::Runner;
use crate::store::{Faults, Store, StoreError};

pub use ingest::{MAX_BATCH, MAX_BODY_BYTES};
pub use serve::Limits;
pub use writer::GROUP_STEPS;

/// `RALLY_RATE_LIMIT` when unset: events per second across all clients. Far above
/// what one disk syncs, so it only stops a runaway client.
pub const DEFAULT_RATE_LIMIT: f64 = 100_000.0;

pub struct Config {
    pub rules_dir: PathBuf,
    pub data_dir: PathBuf,
    /// `RALLY_TOKEN`: required as a bearer token on every route but `/healthz`.
    pub token: Option<String>,
    /// `RALLY_RATE_LIMIT`: events per second, all clients together.
    pub rate_limit: f64,
    /// Reload when files under `rules_dir` change.
    pub watch: bool,
    /// Where "now" comes from: the system clock, or a test's.
    pub clock: Arc<dyn Clock>,
    /// `RALLY_MAX_CONNECTIONS`, `RALLY_HEADER_TIMEOUT_MS`, `RALLY_BODY_TIMEOUT_MS`.
    pub limits: Limits,
    /// The store's failure switches: inert (the default) except in tests that arm them.
    pub faults: Arc<Faults>,
}

impl Config {
    /// Defaults plus `RALLY_TOKEN`, `RALLY_RATE_LIMIT`, `RALLY_MAX_CONNECTIONS`,
    /// `RALLY_HEADER_TIMEOUT_MS` and `RALLY_BODY_TIMEOUT_MS` from the environment.
    pub fn from_env(rules_dir: PathBuf, data_dir: PathBuf) -> Result<Config, DaemonError> {
        let token = token_from_env()?;
        let rate_limit = match std::env::var("RALLY_RATE_LIMIT") {
            Err(_) => DEFAULT_RATE_LIMIT,
            Ok(text) => match text.trim().parse::<f64>() {
                Ok(rate) if rate.is_finite() && rate > 0.0 => rate,
                _ => {
                    return Err(DaemonError::Env {
                        name: "RALLY_RATE_LIMIT",
                        message: format!("{text:?} is not a positive number of events per second"),
                    })
                }
            },
        };
        let limits = Limits {
            max_connections: positive_env(
                "RALLY_MAX_CONNECTIONS",
                "connections",
                serve::default_max_connections() as u64,
            )? as usize,
            header_timeout: std::time::Duration::from_millis(positive_env(
                "RALLY_HEADER_TIMEOUT_MS",
                "milliseconds",
                serve::DEFAULT_HEADER_TIMEOUT.as_millis() as u64,
            )?),
            body_timeout: std::time::Duration::from_millis(positive_env(
                "RALLY_BODY_TIMEOUT_MS",
                "milliseconds",
                serve::DEFAULT_BODY_TIMEOUT.as_millis() as u64,
            )?),
            store_cache: crate::store::CacheSize::from_env().map_err(|message| {
                DaemonError::Env {
                    name: "RALLY_CACHE_MB",
                    message,
                }
            })?,
        };
        Ok(Config {
            rules_dir,
            data_dir,
            token,
            rate_limit,
            watch: true,
            clock: Arc::new(SystemClock),
            limits,
            faults: Arc::default(),
        })
    }
}

/// A positive whole number from the environment variable `name`, or `default`.
fn positive_env(name: &'static str, unit: &str, default: u64) -> Result<u64, DaemonError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(DaemonError::Env {
                name,
                message: format!("{text:?} is not a positive whole number of {unit}"),
            }),
        },
    }
}

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("the rules in {} have {} problem(s)", dir.display(), errors.len())]
    Rules {
        dir: PathBuf,
        errors: Vec<RuleError>,
    },
    #[error("cannot open the store in {}: {source}", dir.display())]
    Store {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error(
        "refusing to listen on {addr} without RALLY_TOKEN: anyone who can reach it could \
         post events; set RALLY_TOKEN or listen on a loopback address (127.0.0.1)"
    )]
    Exposed { addr: SocketAddr },
    #[error("cannot set up channels: {}", .0.join("; "))]
    Channels(Vec<String>),
    #[error("{name} {message}")]
    Env { name: &'static str, message: String },
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch the rules directory {}: {source}", dir.display())]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("the writer thread failed; events were no longer being stored")]
    WriterFailed,
}

/// `RALLY_TOKEN`, the bearer token every route but `/healthz` requires when set; an
/// empty one is refused rather than read as "no token".
pub fn token_from_env() -> Result<Option<String>, DaemonError> {
    match std::env::var("RALLY_TOKEN") {
        Ok(token) if token.trim().is_empty() => Err(DaemonError::Env {
            name: "RALLY_TOKEN",
            message: "is set but empty; unset it or give it a secret".into(),
        }),
        Ok(token) => Ok(Some(token)),
        Err(_) => Ok(None),
    }
}

/// Refuses a listener others can reach unless a token protects it.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> Result<(), DaemonError> {
    if addr.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(DaemonError::Exposed { addr })
    }
}

/// Runs the daemon on `listener` until `shutdown` completes, then shuts down cleanly.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let addr = listener.local_addr().map_err(|source| DaemonError::Io {
        context: "cannot read the listening address",
        source,
    })?;
    check_exposure(addr, config.token.as_deref())?;
    let set = load_rules(&config).await?;
    // The rule loader checks every channel setting, so this only fails when building a
    // client itself does; either way it fails before anything says "listening".
    let channels = crate::messaging::Channels::new(&set.channels)
        .map_err(|errors| DaemonError::Channels(errors.iter().map(|e| e.to_string()).collect()))?;
    let store = open_store(&config).await?;
    let metrics = Arc::new(telemetry::Metrics::new());
    let health = Arc::new(health::Health::default());
    // For the "listening" line, said once everything that can refuse has accepted.
    let (rule_count, file_count, version) = (set.rules.len(), set.files.len(), set.version.clone());
    let set = Arc::new(set);
    let store_error = |source| DaemonError::Store {
        dir: config.data_dir.clone(),
        source,
    };
    let mut runner = Runner::new(store, Arc::clone(&set)).map_err(store_error)?;
    // Time kept while the daemon was down: everything that fell due since fires now,
    // in time order; `schedule` rules apply their `catch_up` to what they missed.
    let started = config.clock.now();
    runner.set_started_at(started);
    // A fan-out over many members takes turns with events instead of holding them.
    runner.set_pace(crate::runner::Pace::Interleaved);
    // The secret draws are keyed by: made at the first start, kept in the store.
    runner.make_random_key_if_missing().map_err(store_error)?;
    runner.keep_event_journal().map_err(store_error)?;
    runner.arm(started).map_err(store_error)?;
    runner.commit().map_err(store_error)?;
    let store = runner.shared_store();
    let dispatcher = crate::outbox::Dispatcher::new(
        Arc::clone(&store),
        Arc::new(channels),
        crate::outbox::DispatchConfig::default(),
    );
    dispatcher.set_timezone(set.settings.timezone);
    let (writer, writer_thread) = writer::spawn(
        runner,
        Arc::clone(&metrics),
        Arc::clone(&health),
        Some(dispatcher.notifier()),
        Arc::clone(&config.clock),
    )
    .map_err(|source| DaemonError::Io {
        context: "cannot start the writer thread",
        source,
    })?;
    let reloader = Arc::new(reload::Reloader::new(
        &config.rules_dir,
        &set,
        writer.clone(),
        dispatcher.clone(),
        Arc::clone(&metrics),
    ));
    drop(set);
    let _watching = if config.watch {
        let watching =
            reload::watch(Arc::clone(&reloader), &config.data_dir).map_err(|source| {
                DaemonError::Watch {
                    dir: config.rules_dir.clone(),
                    source,
                }
            })?;
        Some(watching)
    } else {
        None
    };
    let retention = retention::Retention {
        store: Arc::clone(&store),
        reloader: Arc::clone(&reloader),
        clock: Arc::clone(&config.clock),
    };
    let app = Arc::new(api::App {
        clock: Arc::clone(&config.clock),
        store,
        writer: writer.clone(),
        metrics,
        health,
        reloader,
        dispatcher: dispatcher.clone(),
        limiter: guard::RateLimiter::new(config.rate_limit),
        explaining: Arc::new(tokio::sync::Semaphore::new(1)),
    });
    let router = api::router(
        app,
        config.token.as_deref().map(guard::Token::new),
        guard::BodyTimeout(config.limits.body_timeout),
    );

    // The writer ending on its own means it panicked: stop serving, do not pretend.
    let (writer_gone, writer_died) = tokio::sync::oneshot::channel::<()>();
    let watch_writer = tokio::task::spawn_blocking(move || {
        let outcome = writer_thread.join();
        let _ = writer_gone.send(());
        outcome.is_ok()
    });
    let stop = async move {
        tokio::select! {
            () = shutdown => tracing::info!("shutting down: finishing requests in flight"),
            _ = writer_died => tracing::error!("the writer stopped; shutting down"),
        }
    };
    // The outbox dispatcher delivers what steps queued; it stops after the writer.
    let (stop_dispatch, dispatch_stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatching = tokio::spawn(dispatcher.run(async move {
        let _ = dispatch_stopped.await;
    }));
    // Retention runs beside the writer, a small piece at a time; it stops between
    // pieces, before the store is let go.
    let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
    let retaining = tokio::spawn(retention.run(async move {
        let _ = retention_stopped.await;
    }));
    tracing::info!(
        rules = rule_count, files = file_count, %version,
        rules_dir = %config.rules_dir.display(), data_dir = %config.data_dir.display(),
        listen = %addr, auth = config.token.is_some(), "rally listening"
    );
    serve::serve(listener, router, config.limits, stop).await;
    writer.stop().await;
    let writer_ok = watch_writer.await.unwrap_or(false);
    let _ = stop_retention.send(());
    let _ = stop_dispatch.send(());
    let _ = retaining.await;
    let _ = dispatching.await;
    if !writer_ok {
        return Err(DaemonError::WriterFailed);
    }
    tracing::info!("stopped; every acknowledged event is on disk");
    Ok(())
}

async fn load_rules(config: &Config) -> Result<rules::RuleSet, DaemonError> {
    let dir = config.rules_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || rules::load(&dir)).await;
    let errors = match loaded {
        Ok(Ok(set)) => return Ok(set),
        Ok(Err(errors)) => errors,
        Err(e) => vec![RuleError {
            at: None,
            message: format!("the rule compiler crashed: {e}"),
            hint: None,
        }],
    };
    Err(DaemonError::Rules {
        dir: config.rules_dir.clone(),
        errors,
    })
}

async fn open_store(config: &Config) -> Result<Store, DaemonError> {
    let dir = config.data_dir.clone();
    let faults = Arc::clone(&config.faults);
    let cache = config.limits.store_cache;
    let opened = tokio::task::spawn_blocking(move || Store::open_with(&dir, cache, faults)).await;
    let error = |source| DaemonError::Store {
        dir: config.data_dir.clone(),
        source,
    };
    match opened {
        Ok(result) => result.map_err(error),
        Err(e) => Err(DaemonError::Io {
            context: "opening the store panicked",
            source: std::io::Error::other(e.to_string()),
        }),
    }
}
