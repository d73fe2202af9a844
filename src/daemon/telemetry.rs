//! The daemon's metrics, served at `GET /metrics` in the Prometheus text format.
//!
//! The daemon owns its recorder instead of installing a global one: two daemons in one
//! process (tests, `rally bench`) keep separate numbers, and nothing else in the
//! process can write into them. Every metric is recorded here, so the names and their
//! help texts live in one place.

use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

const EVENTS: &str = "rally_events_total";
const STEP: &str = "rally_step_seconds";
const GROUP: &str = "rally_group_steps";
const FIRINGS: &str = "rally_rule_firings_total";
const RULE_FAILURES: &str = "rally_rule_failures_total";
const RELOADS: &str = "rally_rule_reloads_total";
const COMMIT: &str = "rally_commit_seconds";
const SYNC: &str = "rally_store_sync_seconds";
const TIMER_STEPS: &str = "rally_timer_steps_total";
const CLUSTER_GROUP: &str = "rally_cluster_group_seconds";

/// Latency buckets, in seconds: from 50 µs (one step) to 2.5 s (a slow disk sync).
const SECONDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];
/// Steps per committed group: 1 to the largest request batch.
const STEPS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// What an event came to, as counted by `rally_events_total{status}`.
#[derive(Clone, Copy, Debug)]
pub enum EventStatus {
    Accepted,
    Duplicate,
    Rejected,
    /// Its group could not be committed or synced: not acknowledged.
    Unavailable,
}

impl EventStatus {
    fn label(self) -> &'static str {
        match self {
            EventStatus::Accepted => "accepted",
            EventStatus::Duplicate => "duplicate",
            EventStatus::Rejected => "rejected",
            EventStatus::Unavailable => "unavailable",
        }
    }
}

pub struct Metrics {
    recorder: PrometheusRecorder,
}

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

impl Metrics {
    pub fn new() -> Metrics {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(GROUP.into()), STEPS));
        // The bucket lists are constants and not empty, the only thing the builder checks.
        let builder = builder.unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let counter = |name: &'static str, help: &'static str| {
            recorder.describe_counter(name.into(), None, SharedString::const_str(help))
        };
        counter(EVENTS, "Events by what became of them");
        counter(FIRINGS, "Rule firings, by rule");
        counter(
            RULE_FAILURES,
            "Rules that failed for a step and changed nothing, by rule",
        );
        counter(RELOADS, "Rule set reloads, by result");
        counter(TIMER_STEPS, "Steps run because a timer fell due");
        let histogram = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_histogram(name.into(), unit, SharedString::const_str(help))
        };
        histogram(STEP, Some(Unit::Seconds), "Time to run one event's step");
        histogram(GROUP, Some(Unit::Count), "Steps committed together");
        histogram(COMMIT, Some(Unit::Seconds), "Time to commit one group");
        histogram(SYNC, Some(Unit::Seconds), "Time to make one group durable");
        histogram(
            CLUSTER_GROUP,
            Some(Unit::Seconds),
            "Cluster mode: time to apply one group of a partition's messages and commit it",
        );
        Metrics { recorder }
    }

    pub fn events(&self, status: EventStatus, count: usize) {
        self.counter(EVENTS, "status", status.label())
            .increment(count as u64);
    }

    pub fn firing(&self, rule: &str) {
        self.counter(FIRINGS, "rule", rule).increment(1);
    }

    /// Steps run because a timer fell due (inactivity, phases, schedules, SLAs).
    pub fn timer_steps(&self, steps: usize) {
        self.counter(TIMER_STEPS, "kind", "all")
            .increment(steps as u64);
    }

    pub fn rule_failure(&self, rule: &str) {
        self.counter(RULE_FAILURES, "rule", rule).increment(1);
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.counter(RELOADS, "result", result).increment(1);
    }

    pub fn step(&self, took: Duration) {
        self.histogram(STEP).record(took.as_secs_f64());
    }

    pub fn group(&self, steps: usize) {
        self.histogram(GROUP).record(steps as f64);
    }

    pub fn commit(&self, took: Duration) {
        self.histogram(COMMIT).record(took.as_secs_f64());
    }

    pub fn sync(&self, took: Duration) {
        self.histogram(SYNC).record(took.as_secs_f64());
    }

    /// Cluster mode: a group of a partition's messages applied and committed.
    pub fn cluster_group(&self, took: Duration) {
        self.histogram(CLUSTER_GROUP).record(took.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    fn counter(&self, name: &'static str, label: &'static str, value: &str) -> metrics::Counter {
        let key = Key::from_parts(name, vec![Label::new(label, value.to_string())]);
        self.recorder.register_counter(&key, &METADATA)
    }

    fn histogram(&self, name: &'static str) -> metrics::Histogram {
        self.recorder
            .register_histogram(&Key::from_static_name(name), &METADATA)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_labels() {
        let metrics = Metrics::new();
        metrics.events(EventStatus::Accepted, 3);
        metrics.firing("daily-checkin");
        let text = metrics.render();
        assert!(
            text.contains(r#"rally_events_total{status="accepted"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rally_rule_firings_total{rule="daily-checkin"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn latencies_render_as_histograms_with_buckets() {
        let metrics = Metrics::new();
        metrics.sync(Duration::from_millis(2));
        metrics.group(10);
        let text = metrics.render();
        assert!(
            text.contains(r#"rally_store_sync_seconds_bucket{le="0.0025"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rally_group_steps_bucket{le="16"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn two_daemons_in_one_process_keep_separate_numbers() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.events(EventStatus::Rejected, 1);
        assert!(!b.render().contains("rally_events_total"));
    }
}
