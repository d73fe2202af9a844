//! `settings:` — the rule set's time zone, what counts as activity, the daily point cap,
//! the messaging policy and how long records are kept.

use chrono::{Duration, NaiveTime};
use chrono_tz::Tz;

use crate::rules::compile::{Ctx, Section};
use crate::rules::convert::{duration, event_type, fields, one_or_many, positive, string, Diag};
use crate::rules::yaml::Value;
use crate::rules::{Activity, MessagingPolicy, Retention, Settings};

/// The shortest retention: anything shorter is almost surely a slip (`90m` for `90d`)
/// that would remove records within the hour.
const MIN_RETENTION: Duration = Duration::days(1);

pub fn compile(ctx: &mut Ctx, section: Option<&Section>) -> Settings {
    let mut settings = Settings {
        timezone: Tz::UTC,
        activity: Activity::Default,
        daily_cap: None,
        points_expiry: None,
        messaging: MessagingPolicy::default(),
        retention: Retention::default(),
        metrics: crate::metrics::MetricsSettings::default(),
    };
    let Some(section) = section else {
        return settings;
    };
    let d = &mut ctx.d;
    let allowed = [
        "timezone",
        "activity",
        "points",
        "messaging",
        "retention",
        "metrics",
    ];
    let Some(f) = fields(d, section.value, "settings", &allowed) else {
        return settings;
    };
    if let Some(tz) = f.get("timezone").and_then(|v| timezone(d, v)) {
        settings.timezone = tz;
    }
    if let Some(list) = f
        .get("activity")
        .and_then(|v| one_or_many(d, v, "activity"))
    {
        let types: foldhash::HashSet<String> =
            list.into_iter().filter_map(|v| event_type(d, v)).collect();
        settings.activity = Activity::Only(types);
    }
    if let Some(points) = f.get("points") {
        if let Some(p) = fields(d, points, "settings.points", &["daily_cap", "expire"]) {
            settings.daily_cap = p.get("daily_cap").and_then(|v| positive(d, v, "daily_cap"));
            settings.points_expiry = p.get("expire").and_then(|v| super::expiry::compile(d, v));
        }
    }
    if let Some(messaging) = f.get("messaging") {
        let allowed = ["quiet_hours", "max_per_day"];
        if let Some(m) = fields(d, messaging, "settings.messaging", &allowed) {
            settings.messaging = MessagingPolicy {
                quiet_hours: m.get("quiet_hours").and_then(|v| quiet_hours(d, v)),
                max_per_day: m
                    .get("max_per_day")
                    .and_then(|v| positive(d, v, "max_per_day")),
            };
        }
    }
    if let Some(retention) = f.get("retention") {
        let allowed = ["messages", "history", "journal", "event_ids"];
        if let Some(r) = fields(d, retention, "settings.retention", &allowed) {
            let defaults = Retention::default();
            settings.retention = Retention {
                messages: r.get("messages").and_then(|v| kept_for(d, v, "messages")),
                history: r.get("history").and_then(|v| kept_for(d, v, "history")),
                journal: r.get("journal").and_then(|v| kept_for(d, v, "journal")),
                event_ids: r
                    .get("event_ids")
                    .and_then(|v| kept_for(d, v, "event_ids"))
                    .unwrap_or(defaults.event_ids),
            };
        }
    }
    if let Some(metrics) = f.get("metrics") {
        if let Some(m) = fields(d, metrics, "settings.metrics", &["reengaged_within"]) {
            if let Some(within) = m
                .get("reengaged_within")
                .and_then(|v| duration(d, v, "reengaged_within"))
            {
                settings.metrics.reengaged_within = within;
            }
        }
    }
    settings
}

/// A retention period: a duration of at least [`MIN_RETENTION`].
fn kept_for(d: &mut Diag, value: &Value, name: &str) -> Option<Duration> {
    let kept = duration(d, value, name)?;
    if kept < MIN_RETENTION {
        d.error(
            &value.at,
            format!(
                "retention.{name} must be at least 1d: records older than it are deleted, \
                 so a shorter one is most likely a slip (\"90m\" for \"90d\")"
            ),
        );
        return None;
    }
    Some(kept)
}

/// An IANA time zone name, with the closest known one as a hint.
pub fn timezone(d: &mut Diag, value: &Value) -> Option<Tz> {
    let name = string(d, value, "timezone")?;
    match name.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            d.unknown(
                &value.at,
                format!("{name:?} is not an IANA time zone (e.g. \"Asia/Shanghai\")"),
                name,
                chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()),
            );
            None
        }
    }
}

/// `"22:00-08:00"`: a member-local window, which may wrap midnight.
fn quiet_hours(d: &mut Diag, value: &Value) -> Option<(NaiveTime, NaiveTime)> {
    let text = string(d, value, "quiet_hours")?;
    let parsed = text.split_once('-').and_then(|(a, b)| {
        let a = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
        let b = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
        Some((a, b))
    });
    match parsed {
        Some((a, b)) if a == b => {
            d.error(
                &value.at,
                format!("quiet_hours {text:?} starts and ends at the same time"),
            );
            None
        }
        Some(window) => Some(window),
        None => {
            d.error(
                &value.at,
                format!(
                    "quiet_hours must be \"HH:MM-HH:MM\" (e.g. \"22:00-08:00\"), found {text:?}"
                ),
            );
            None
        }
    }
}
