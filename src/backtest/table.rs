//! The terminal rendering of a [`Difference`]: sections of aligned columns, A's
//! figure then B's, only what changed unless `all`. Plain text, no colour, so it reads
//! the same in a terminal, a CI log and a pasted issue comment.

use std::fmt::Write;

use rust_decimal::Decimal;

use super::diff::{Change, Difference, MessageDiff, RuleChange, RuleDiff};
use super::fail_if::Verdict;
use super::members::Differing;

/// What the table is about, for its header.
pub struct Labels<'a> {
    pub a: &'a str,
    pub b: &'a str,
}

/// Rows of cells printed in columns two spaces apart, each as wide as its widest
/// cell, indented by `indent`; the columns in `right` (numbers) aligned right.
fn grid(out: &mut String, indent: &str, rows: &[Vec<String>], right: &[usize]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (c, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if right.contains(&c) {
                let _ = write!(line, "{cell:>width$}  ");
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn number(d: Decimal) -> String {
    d.normalize().to_string()
}

fn signed(d: Decimal) -> String {
    let d = d.normalize();
    if d.is_sign_positive() {
        format!("+{d}")
    } else {
        d.to_string()
    }
}

/// `7` when both sides agree, `7 → 14 (+7)` when they do not.
fn moved(change: &Change) -> String {
    if change.changed() {
        format!(
            "{} → {} ({})",
            number(change.a),
            number(change.b),
            signed(change.delta())
        )
    } else {
        number(change.a)
    }
}

/// A totals row: name, A, B, and the change with its percentage when there is one.
fn total_row(name: &str, change: &Change) -> Vec<String> {
    let delta = if !change.changed() {
        String::new()
    } else if let Some(pct) = change.pct() {
        format!("{} ({}%)", signed(change.delta()), signed(pct.round_dp(2)))
    } else {
        signed(change.delta())
    };
    vec![name.into(), number(change.a), number(change.b), delta]
}

fn message_label(m: &MessageDiff) -> String {
    let template = m.template.as_deref().unwrap_or("(no template)");
    format!("{template} ({})", m.status)
}

fn totals(out: &mut String, diff: &Difference) {
    let t = &diff.totals;
    let mut rows = vec![vec![
        "Totals".into(),
        "A".into(),
        "B".into(),
        "change".into(),
    ]];
    rows.push(total_row("members", &t.members));
    rows.push(total_row("firings", &t.firings));
    rows.push(total_row("points awarded", &t.points_awarded));
    rows.push(total_row("points deducted", &t.points_deducted));
    rows.push(total_row("points liability", &t.liability));
    rows.push(total_row("messages", &t.messages));
    for (status, change) in &t.messages_by_status {
        rows.push(total_row(&format!("  {status}"), change));
    }
    rows.push(total_row("tickets opened", &t.tickets_opened));
    rows.push(total_row("rule errors", &t.errors));
    grid(out, "", &rows, &[1, 2]);
}

fn change_word(change: RuleChange) -> &'static str {
    match change {
        RuleChange::Added => "only in B",
        RuleChange::Removed => "only in A",
        RuleChange::Changed => "changed",
        RuleChange::Same => "same",
    }
}

fn rules(out: &mut String, diff: &Difference, all: bool) {
    let count = |c| diff.rules_with(c);
    let same = count(RuleChange::Same);
    let hidden = if all || same == 0 {
        String::new()
    } else {
        " (not shown: --all shows them)".into()
    };
    let _ = writeln!(
        out,
        "\nRules: {} changed, {} only in B, {} only in A, {same} the same{hidden}",
        count(RuleChange::Changed),
        count(RuleChange::Added),
        count(RuleChange::Removed),
    );
    let shown: Vec<&RuleDiff> = diff
        .rules
        .iter()
        .filter(|r| all || r.change != RuleChange::Same)
        .collect();
    if shown.is_empty() {
        return;
    }
    let mut rows = vec![vec![
        "rule".into(),
        "".into(),
        "firings".into(),
        "points awarded".into(),
        "points deducted".into(),
        "errors".into(),
    ]];
    for rule in shown {
        rows.push(vec![
            rule.rule.clone(),
            change_word(rule.change).into(),
            moved(&rule.firings),
            moved(&rule.points_awarded),
            moved(&rule.points_deducted),
            moved(&rule.errors),
        ]);
        for m in rule.messages.iter().filter(|m| all || m.count.changed()) {
            rows.push(vec![
                format!("  message {}", message_label(m)),
                String::new(),
                moved(&m.count),
            ]);
        }
    }
    grid(out, "  ", &rows, &[]);
}

fn examples<E>(differing: &Differing<E>, show: impl Fn(&E) -> Vec<String>) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = differing.examples.iter().map(show).collect();
    let more = differing.count as usize - differing.examples.len().min(differing.count as usize);
    if more > 0 {
        rows.push(vec![format!("… and {more} more")]);
    }
    rows
}

fn set_change(added: &[String], removed: &[String]) -> String {
    let plus = added.iter().map(|s| format!("+{s}"));
    let minus = removed.iter().map(|s| format!("-{s}"));
    plus.chain(minus).collect::<Vec<_>>().join(" ")
}

fn tier_name(tier: &Option<String>) -> &str {
    tier.as_deref().unwrap_or("(no tier)")
}

fn members(out: &mut String, diff: &Difference) {
    let m = &diff.members;
    let _ = writeln!(
        out,
        "\nMembers: {} in both runs, {} of them differ; {} only in A, {} only in B",
        m.compared, m.changed, m.only_in_a.count, m.only_in_b.count
    );
    let mut kind = |name: &str, count: u64, examples: Vec<Vec<String>>| {
        if count > 0 {
            let _ = writeln!(out, "  {name}: {count}");
            grid(out, "    ", &examples, &[]);
        }
    };
    kind(
        "tier differs",
        m.tier.count,
        examples(&m.tier, |e| {
            vec![
                e.member.clone(),
                format!("{} → {}", tier_name(&e.a), tier_name(&e.b)),
            ]
        }),
    );
    kind(
        "badges differ",
        m.badges.count,
        examples(&m.badges, |e| {
            vec![e.member.clone(), set_change(&e.added, &e.removed)]
        }),
    );
    kind(
        "tags differ",
        m.tags.count,
        examples(&m.tags, |e| {
            vec![e.member.clone(), set_change(&e.added, &e.removed)]
        }),
    );
    kind(
        "points differ",
        m.points.count,
        examples(&m.points, |e| {
            vec![e.member.clone(), moved(&Change { a: e.a, b: e.b })]
        }),
    );
    kind(
        "only in A",
        m.only_in_a.count,
        examples(&m.only_in_a, |id| vec![id.clone()]),
    );
    kind(
        "only in B",
        m.only_in_b.count,
        examples(&m.only_in_b, |id| vec![id.clone()]),
    );
    if !m.tier_moves.is_empty() {
        let _ = writeln!(out, "  tier moves (A → B):");
        let rows: Vec<Vec<String>> = m
            .tier_moves
            .iter()
            .map(|t| {
                vec![
                    format!("{} → {}", tier_name(&t.from), tier_name(&t.to)),
                    t.count.to_string(),
                ]
            })
            .collect();
        grid(out, "    ", &rows, &[1]);
    }
}

fn campaigns(out: &mut String, diff: &Difference, all: bool) {
    let shown: Vec<_> = diff
        .campaigns
        .iter()
        .filter(|c| all || c.points_awarded.changed() || c.budget.a != c.budget.b)
        .collect();
    if shown.is_empty() {
        if !diff.campaigns.is_empty() {
            let _ = writeln!(out, "\nCampaigns: budgets used the same");
        }
        return;
    }
    let _ = writeln!(out, "\nCampaigns");
    let budget = |b: Option<Decimal>| b.map_or_else(|| "none".into(), number);
    let mut rows = vec![vec![
        "campaign".into(),
        "budget".into(),
        "budget used (points awarded)".into(),
    ]];
    for c in shown {
        let budgets = if c.budget.a == c.budget.b {
            budget(c.budget.a)
        } else {
            format!("{} → {}", budget(c.budget.a), budget(c.budget.b))
        };
        rows.push(vec![c.campaign.clone(), budgets, moved(&c.points_awarded)]);
    }
    grid(out, "  ", &rows, &[]);
}

fn tickets(out: &mut String, diff: &Difference, all: bool) {
    let shown: Vec<_> = diff
        .tickets
        .iter()
        .filter(|t| all || t.opened.changed() || t.by_status.values().any(Change::changed))
        .collect();
    if shown.is_empty() {
        if !diff.tickets.is_empty() {
            let _ = writeln!(out, "\nTickets: the same");
        }
        return;
    }
    let _ = writeln!(out, "\nTickets, by escalation policy");
    let mut rows = vec![vec!["policy".into(), "opened".into(), "at the end".into()]];
    for t in shown {
        let statuses = t
            .by_status
            .iter()
            .map(|(status, c)| format!("{status} {}", moved(c)))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![t.policy.clone(), moved(&t.opened), statuses]);
    }
    grid(out, "  ", &rows, &[]);
}

fn notifications(out: &mut String, diff: &Difference, all: bool) {
    let shown: Vec<_> = diff
        .notifications
        .iter()
        .filter(|m| all || m.count.changed())
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nEscalation notifications (messages no rule sent)");
    let rows: Vec<Vec<String>> = shown
        .into_iter()
        .map(|m| vec![message_label(m), moved(&m.count)])
        .collect();
    grid(out, "  ", &rows, &[]);
}

fn verdicts(out: &mut String, verdicts: &[Verdict]) {
    if verdicts.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nThresholds (--fail-if)");
    let rows: Vec<Vec<String>> = verdicts
        .iter()
        .map(|v| {
            let word = if v.tripped { "TRIPPED" } else { "ok" };
            vec![v.expr.clone(), word.into(), v.detail.clone()]
        })
        .collect();
    grid(out, "  ", &rows, &[]);
}

/// The whole table. `all` shows unchanged rules, messages, campaigns and tickets too.
pub fn render(labels: &Labels, diff: &Difference, judged: &[Verdict], all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {}\nB: {}\n", labels.a, labels.b);
    totals(&mut out, diff);
    rules(&mut out, diff, all);
    members(&mut out, diff);
    campaigns(&mut out, diff, all);
    tickets(&mut out, diff, all);
    notifications(&mut out, diff, all);
    verdicts(&mut out, judged);
    out
}
