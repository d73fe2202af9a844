//! The readable form of a trace: one block per step, one line per rule considered
//! (✓ fired, ✗ not, with what decided it), the checks and effects under it.

use std::fmt::Write;

use super::{Check, Decision, Effect, InputView, Read, RuleTrace, StepTrace, Why};
use crate::member::rfc3339;

/// Longest rendering of one value read by an expression before it is cut.
const MAX_VALUE_CHARS: usize = 80;

/// Every step, in order, separated by blank lines.
pub fn text(steps: &[StepTrace]) -> String {
    let mut out = String::new();
    for (n, step) in steps.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        write_step(&mut out, step);
    }
    out
}

/// One step.
pub fn step_text(step: &StepTrace) -> String {
    let mut out = String::new();
    write_step(&mut out, step);
    out
}

fn write_step(out: &mut String, step: &StepTrace) {
    let _ = writeln!(
        out,
        "{}  {}  member {}",
        rfc3339(step.at),
        input(&step.input),
        step.member
    );
    let tier = |t: &Option<String>| t.clone().unwrap_or_else(|| "none".to_string());
    let points = if step.before.points == step.after.points {
        format!("points {}", step.after.points)
    } else {
        format!("points {} → {}", step.before.points, step.after.points)
    };
    let tiers = if step.before.tier == step.after.tier {
        format!("tier {}", tier(&step.after.tier))
    } else {
        format!(
            "tier {} → {}",
            tier(&step.before.tier),
            tier(&step.after.tier)
        )
    };
    let _ = writeln!(out, "  {points}, {tiers}");
    for note in &step.builtin {
        let _ = writeln!(out, "  built-in: {note}");
    }
    for note in &step.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    for rule in &step.rules {
        write_rule(out, rule);
    }
    for error in &step.errors {
        let _ = writeln!(
            out,
            "  error ({}) at {}: {}",
            error.rule, error.at, error.error
        );
    }
    let not = &step.not_triggered;
    if not.count > 0 {
        let by = match &step.input {
            InputView::Event { event_type, .. } => format!("`{event_type}`"),
            _ => "this step".to_string(),
        };
        let plural = if not.count == 1 { "rule" } else { "rules" };
        if not.rules.is_empty() {
            let _ = writeln!(
                out,
                "  · {} {plural} not triggered by {by} (--explain-all lists them)",
                not.count
            );
        } else {
            let _ = writeln!(out, "  · {} {plural} not triggered by {by}:", not.count);
            for rule in &not.rules {
                let _ = writeln!(out, "      {}  {}  ({})", rule.rule, rule.at, rule.trigger);
            }
        }
    }
    for caveat in &step.caveats {
        let _ = writeln!(out, "  caveat: {caveat}");
    }
}

fn input(input: &InputView) -> String {
    match input {
        InputView::Event {
            id,
            event_type,
            event_at,
        } => format!("event {id} ({event_type}, at {})", rfc3339(*event_at)),
        InputView::Inactive { due } => format!("inactivity timer due {}", rfc3339(*due)),
        InputView::After { rule, event, due } => {
            format!(
                "delayed trigger {rule} for event {event}, due {}",
                rfc3339(*due)
            )
        }
        InputView::Global { rule } => format!("global rule {rule}"),
        InputView::SilenceRulesChanged => "pass after the inactivity rules changed".to_string(),
        InputView::Credit { from, rule } if rule == crate::engine::REFERRAL_RULE => {
            format!("referral: {from} joined naming this member")
        }
        InputView::Credit { from, rule } => format!("credit from {from} (rule {rule})"),
        InputView::PointsExpiry { due } => format!("points expiry timer due {}", rfc3339(*due)),
        InputView::LeaderboardClose {
            board,
            period,
            rank,
            score,
        } => format!("leaderboard {board} closed {period}: rank {rank}, score {score}"),
    }
}

fn write_rule(out: &mut String, rule: &RuleTrace) {
    let (mark, outcome) = match &rule.decision {
        Decision::Fired => ("✓", "fired".to_string()),
        Decision::Skipped { by } => ("✗", skipped(by, &rule.checks)),
        Decision::Failed { error, at } => (
            "✗",
            format!("failed at {at}: {error} (nothing it did was kept)"),
        ),
        Decision::Pending => ("?", "undecided".to_string()),
    };
    let _ = writeln!(
        out,
        "  {mark} {}  {}  [{}]  {outcome}",
        rule.rule,
        rule.at,
        why(&rule.why)
    );
    for check in &rule.checks {
        let _ = writeln!(out, "      {}", check_text(check));
    }
    for effect in &rule.effects {
        let _ = writeln!(out, "      {}", effect_text(effect));
    }
}

fn skipped(by: &str, checks: &[Check]) -> String {
    let failed = checks.iter().find(|c| !c.passed());
    match (by, failed) {
        (
            "phase",
            Some(Check::Phase {
                campaign, phase, ..
            }),
        ) => match phase {
            Some(phase) => format!("not fired: campaign {campaign} is in phase {phase}"),
            None => format!("not fired: campaign {campaign} is not running"),
        },
        ("limit", Some(Check::Limit { period: None, .. })) => {
            "not fired: its campaign has no current run to count the limit in".to_string()
        }
        ("limit", Some(Check::Limit { times, per, .. })) => {
            format!("not fired: limit {times} per {per} used up")
        }
        ("if", _) => "not fired: `if` is false".to_string(),
        ("audience", Some(Check::Audience { left: true, .. })) => {
            "not fired: the member left and the audience leaves them out".to_string()
        }
        ("audience", _) => "not fired: not in the audience".to_string(),
        ("threshold", Some(Check::Threshold { reached: true, .. })) => {
            "not fired: no new mark (the counter was past it already)".to_string()
        }
        ("threshold", _) => "not fired: the mark is not reached".to_string(),
        (other, _) => format!("not fired: {other}"),
    }
}

fn why(why: &Why) -> String {
    let after = |cause: &Option<String>| match cause {
        Some(rule) => format!(", caused by rule {rule}"),
        None => ", caused by the event".to_string(),
    };
    match why {
        Why::Event { event_type } => format!("event {event_type}"),
        Why::Milestone {
            counter,
            from,
            to,
            threshold,
            mark,
            cause,
        } => {
            let mark = match mark {
                Some(mark) if threshold.starts_with("every") => format!(", mark #{mark}"),
                _ => String::new(),
            };
            format!(
                "milestone {counter} {threshold}: {from} → {to}{mark}{}",
                after(cause)
            )
        }
        Why::Tier { to, up, cause } => format!(
            "tier {} to {to}{}",
            if *up { "up" } else { "down" },
            after(cause)
        ),
        Why::Inactive { after, deadline } => {
            format!("inactive {after}: deadline {}", rfc3339(*deadline))
        }
        Why::Returned { after } => format!("returned after {after} or more of silence"),
        Why::After { wait, event } => format!("{wait} after event {event}"),
        Why::Phase { campaign, enters } => format!("campaign {campaign} entered {enters}"),
        Why::Schedule => "schedule occurrence".to_string(),
        Why::LeaderboardClose {
            board,
            period,
            rank,
        } => format!("leaderboard {board} closed {period} with the member at rank {rank}"),
        Why::PointsExpiring {
            before,
            amount,
            due,
        } => format!("{amount} points expire {} (within {before})", rfc3339(*due)),
    }
}

fn mark(pass: bool) -> &'static str {
    if pass {
        "pass"
    } else {
        "FAIL"
    }
}

fn check_text(check: &Check) -> String {
    match check {
        Check::Phase {
            campaign,
            phase,
            wanted,
            pass,
        } => {
            let now = phase.as_deref().unwrap_or("(not running)");
            let wanted = if wanted.is_empty() {
                "any phase".to_string()
            } else {
                wanted.join(" or ")
            };
            format!(
                "{} during: campaign {campaign} is in {now}; wanted {wanted}",
                mark(*pass)
            )
        }
        Check::Limit {
            times,
            per,
            period,
            used,
            left,
            pass,
        } => match period {
            Some(period) => format!(
                "{} limit {times} per {per}: period {period}, used {used}, {left} left",
                mark(*pass)
            ),
            None => format!(
                "{} limit {times} per {per}: the campaign has no current run",
                mark(*pass)
            ),
        },
        Check::If {
            expr,
            value,
            reads,
            pass,
        } => {
            let value = match value {
                Some(v) => v.to_string(),
                None => "error".to_string(),
            };
            format!(
                "{} if `{}` → {value}{}",
                mark(*pass),
                one_line(expr),
                reads_text(reads)
            )
        }
        Check::Audience {
            expr,
            value,
            reads,
            left,
            pass,
        } => {
            if *left {
                return format!(
                    "{} audience: the member left (include_left is off)",
                    mark(*pass)
                );
            }
            match expr {
                Some(expr) => {
                    let value = value.map_or("error".to_string(), |v| v.to_string());
                    format!(
                        "{} audience `{}` → {value}{}",
                        mark(*pass),
                        one_line(expr),
                        reads_text(reads)
                    )
                }
                None => format!("{} audience: every member", mark(*pass)),
            }
        }
        Check::Threshold { reached, pass } => format!(
            "{} threshold: {}",
            mark(*pass),
            if *reached {
                "past the mark already, no new one reached"
            } else {
                "not reached"
            }
        ),
        Check::Loop {
            firings,
            depth,
            pass,
        } => format!(
            "{} loop bound: {firings} firings, {depth} cascades deep",
            mark(*pass)
        ),
    }
}

fn reads_text(reads: &[Read]) -> String {
    if reads.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = reads
        .iter()
        .map(|read| {
            let value = match &read.value {
                Some(value) => cut(&value.to_string()),
                None => "(not a map)".to_string(),
            };
            format!("{} = {value}", read.path)
        })
        .collect();
    format!("  with {}", parts.join(", "))
}

fn effect_text(effect: &Effect) -> String {
    match effect {
        Effect::Points {
            asked,
            awarded,
            balance,
            clipped_by,
            caps,
            from,
        } => {
            let mut text = if asked == awarded {
                format!("points {awarded:+} (balance {balance})")
            } else {
                format!(
                    "points asked {asked:+}, awarded {awarded:+} (balance {balance}), clipped by {}",
                    clipped_by.as_deref().unwrap_or("a cap")
                )
            };
            for cap in caps {
                let period = cap
                    .period
                    .as_ref()
                    .map(|p| format!(" on {p}"))
                    .unwrap_or_default();
                let _ = write!(
                    text,
                    "; {} {}: {} used{period}, {} left",
                    cap.cap, cap.limit, cap.used, cap.room
                );
            }
            if let Some(from) = from {
                let _ = write!(
                    text,
                    "; computed by `{}` {}",
                    one_line(&from.expr),
                    reads_text(&from.reads).trim_start()
                );
            }
            text
        }
        Effect::Message {
            template,
            channel,
            to,
            status,
            due,
            reason,
        } => {
            let fate = match status.as_str() {
                "pending" => "goes out now".to_string(),
                "deferred" => format!("deferred until {}", rfc3339(*due)),
                other => other.to_string(),
            };
            let reason = reason
                .as_ref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default();
            format!("message {template} via {channel} to {to:?}: {fate}{reason}")
        }
        Effect::Ticket {
            id,
            policy,
            severity,
        } => format!("ticket {id} opened ({severity}, policy {policy})"),
        Effect::Tag { name } => format!("tag {name}"),
        Effect::Untag { name } => format!("untag {name}"),
        Effect::Badge { name } => format!("badge {name}"),
        Effect::Set { key, value } => format!("set {key} = {}", cut(&value.to_string())),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
    cut.push('…');
    cut
}
