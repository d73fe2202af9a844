//! Rule reloads, by `POST /v1/rules/reload` or when files in the rules directory change.
//!
//! A reload compiles the whole directory again and builds a client for every channel.
//! Only a clean compile whose channels all work is swapped in, by the writer between
//! two steps, so no event ever sees half a rule set; a refused one
//! leaves the running set in place and is remembered (`last_reload_error`) and logged,
//! error by error, as `path:line:col: message`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::telemetry::Metrics;
use super::writer::WriterHandle;
use crate::member::rfc3339;
use crate::messaging::Channels;
use crate::outbox::Dispatcher;
use crate::rules::{self, RuleSet};

/// Editors save in bursts (write a temporary file, rename, touch): wait for quiet.
const DEBOUNCE: Duration = Duration::from_millis(300);

pub struct Reloader {
    dir: PathBuf,
    writer: WriterHandle,
    /// Delivers with the channels of the running rule set.
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    /// What `GET /v1/rules` shows. A std `Mutex`: never held across an await.
    running: Mutex<Running>,
    /// One reload at a time, so a slow compile cannot swap in after a newer one.
    serial: tokio::sync::Mutex<()>,
}

struct Running {
    /// The set itself, for readers that need its campaigns.
    set: Arc<RuleSet>,
    version: String,
    files: Vec<String>,
    rules: usize,
    loaded_at: DateTime<Utc>,
    last_reload_error: Vec<String>,
}

impl Running {
    fn of(set: &Arc<RuleSet>) -> Running {
        Running {
            set: Arc::clone(set),
            version: set.version.clone(),
            files: set.files.iter().map(|f| f.display().to_string()).collect(),
            rules: set.rules.len(),
            loaded_at: Utc::now(),
            last_reload_error: Vec::new(),
        }
    }
}

impl Reloader {
    /// `set` is the rule set the writer runs now, loaded from `dir`, and `dispatcher`
    /// delivers with its channels.
    pub fn new(
        dir: &Path,
        set: &Arc<RuleSet>,
        writer: WriterHandle,
        dispatcher: Dispatcher,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reloader {
            dir: dir.to_path_buf(),
            writer,
            dispatcher,
            metrics,
            running: Mutex::new(Running::of(set)),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// The running rule set: version, files, rule count, when it was loaded, and the
    /// errors of the last refused reload (empty when the last reload succeeded).
    pub fn info(&self) -> Value {
        let running = self.running();
        json!({
            "version": running.version,
            "files": running.files,
            "rules": running.rules,
            "loaded_at": rfc3339(running.loaded_at),
            "last_reload_error": running.last_reload_error,
        })
    }

    /// Compiles the directory, builds its channels and swaps both in. `Err` holds every
    /// problem as `path:line:col: message` (or `channel "id": message`); the running
    /// set then stays.
    pub async fn reload(&self, cause: &'static str) -> Result<Value, Vec<String>> {
        let _one_at_a_time = self.serial.lock().await;
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || compile(&dir))
            .await
            .unwrap_or_else(|e| Err(vec![format!("the rule compiler crashed: {e}")]));
        match loaded {
            Ok((set, channels)) => {
                let running = Running::of(&set);
                // Channels first: a step under the new rules may queue a message on a
                // channel only they have, and the dispatcher must know it by then. Old
                // rows keep working unless the new set dropped their channel.
                self.dispatcher.set_channels(Arc::new(channels));
                self.dispatcher.set_timezone(set.settings.timezone);
                // Swapped in before the writer answers: events it takes meanwhile
                // already run the new rules, which is what `GET /v1/rules` shows.
                *self.running() = running;
                let version = self.version();
                let pass = match self.writer.set_rules(set).await {
                    Ok(pass) => pass,
                    Err(e) => {
                        tracing::error!(cause, %version, error = %e, "rules reloaded, but not durably armed");
                        self.metrics.reload(false);
                        return Err(vec![e.to_string()]);
                    }
                };
                let mut info = self.info();
                tracing::info!(
                    cause, %version, rules = info["rules"].as_u64(),
                    files = info["files"].as_array().map(Vec::len),
                    "rules reloaded"
                );
                if let Some(pass) = &pass {
                    for (rule, reach) in &pass.reach {
                        tracing::info!(
                            rule = %rule, fired_now = reach.fired_now, waiting = reach.waiting,
                            "new or changed inactivity rule: members reached at the reload, and silent members it will reach"
                        );
                    }
                }
                info["inactivity_pass"] = serde_json::to_value(&pass).unwrap_or(Value::Null);
                self.metrics.reload(true);
                Ok(info)
            }
            Err(errors) => {
                let version = self.running().version.clone();
                tracing::warn!(
                    cause, problems = errors.len(), running = %version,
                    "rule set refused; the running rules stay"
                );
                for error in &errors {
                    tracing::warn!("{error}");
                }
                self.running().last_reload_error = errors.clone();
                self.metrics.reload(false);
                Err(errors)
            }
        }
    }

    /// The running rule set.
    pub fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.running().set)
    }

    /// The running version, for messages.
    pub fn version(&self) -> String {
        self.running().version.clone()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The rule set in `dir` and a client for each of its channels, or every problem.
fn compile(dir: &Path) -> Result<(Arc<RuleSet>, Channels), Vec<String>> {
    let set = rules::load(dir).map_err(strings)?;
    let channels = Channels::new(&set.channels).map_err(strings)?;
    Ok((Arc::new(set), channels))
}

fn strings<E: ToString>(errors: Vec<E>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Reloads whenever something under the rules directory changes, except inside
/// `data_dir` (which may sit inside it: sled writes there on every commit). Watching
/// stops when the returned watcher is dropped.
pub fn watch(reloader: Arc<Reloader>, data_dir: &Path) -> notify::Result<RecommendedWatcher> {
    let dir = reloader.dir.clone();
    watch_with(&dir, data_dir, move || {
        let reloader = Arc::clone(&reloader);
        async move {
            // Errors are logged and recorded by `reload`.
            let _ = reloader.reload("files changed").await;
        }
    })
}

/// Calls `changed` whenever something under `rules_dir` changes (outside `data_dir`),
/// once things have been quiet for [`DEBOUNCE`], one call at a time: the single
/// process reloads, a cluster node publishes the new rules (`cluster/rules.rs`).
///
/// notify reports opens and reads too, and a reload reads every file: those events are
/// dropped here, or each reload would trigger the next. (notify-debouncer-mini cannot
/// tell an open from a write, hence this small debounce of our own.)
pub(crate) fn watch_with<F, Fut>(
    rules_dir: &Path,
    data_dir: &Path,
    changed_now: F,
) -> notify::Result<RecommendedWatcher>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    // notify reports paths under the directory as it was given: compare canonical forms.
    let rules_dir = std::fs::canonicalize(rules_dir)?;
    let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let (changed, mut changes) = mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<Event>| match event {
            Ok(event) if is_change(&event.kind) => {
                if !event.paths.iter().all(|path| path.starts_with(&data_dir)) {
                    let _ = changed.send(());
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching the rules directory failed"),
        })?;
    watcher.watch(&rules_dir, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // Editors save in bursts: act once things have been quiet for a while.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
            changed_now().await;
        }
    });
    Ok(watcher)
}

fn is_change(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    )
}
