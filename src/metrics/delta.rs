//! What one step changes of the metrics: derived from the outcome and what the member
//! was before it, so the engine's step knows nothing of them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::prelude::ToPrimitive;

use super::rows::{Kind, RuleCounts, Tally};
use crate::engine::Outcome;
use crate::localtime;
use crate::member::Member;
use crate::money::Decimal;
use crate::outbox::{OutboxRow, Status};
use crate::rules::{Campaign, RuleSet, Trigger};
use crate::tickets::Ticket;

/// A purchase within this long after the member's previous one is a repeat purchase.
pub const REPEAT_WITHIN: Duration = Duration::days(30);
/// `settings.metrics` (docs/rules.md, docs/report.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsSettings {
    /// A member active within this long after a re-engagement message came back to
    /// it (`reengaged_within`, default 7 days).
    pub reengaged_within: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            reengaged_within: Duration::days(7),
        }
    }
}

/// What the metrics need of a member before a step: taken by the runner as the step
/// starts, compared with the outcome's member after it.
#[derive(Clone, Debug, Default)]
pub struct Before {
    existed: bool,
    last_active: Option<DateTime<Utc>>,
    left: bool,
    points: i64,
    tier: Option<crate::member::Name>,
    purchases: Decimal,
    spend: Decimal,
}

impl Before {
    pub fn of(member: Option<&Member>) -> Before {
        match member {
            None => Before::default(),
            Some(member) => {
                let (purchases, spend) = sales(member);
                Before {
                    existed: true,
                    last_active: member.last_active,
                    left: member.left,
                    points: member.points,
                    tier: member.tier.clone(),
                    purchases,
                    spend,
                }
            }
        }
    }
}

/// The member's `purchases` and `spend_total` counters, read in one walk of their
/// counters (every step reads them before and after).
fn sales(member: &Member) -> (Decimal, Decimal) {
    let mut counters = member.sorted_counters(&["purchases", "spend_total"]);
    let purchases = counters.next().unwrap_or_default();
    let spend = counters.next().unwrap_or_default();
    (purchases, spend)
}

impl Tally {
    /// Counts what the step that produced `outcome` at `now` changed, and marks the
    /// outcome's member with what it was counted for.
    pub fn step(
        &mut self,
        rules: &RuleSet,
        before: &Before,
        outcome: &mut Outcome,
        now: DateTime<Utc>,
    ) {
        self.step_with(rules, &mut Phases::default(), before, outcome, now);
    }

    /// [`Tally::step`] with the campaigns' phases remembered across steps in
    /// `phases`, which must have been used with `rules` only (the runner's, cleared
    /// when its rules are replaced).
    pub fn step_with(
        &mut self,
        rules: &RuleSet,
        phases: &mut Phases,
        before: &Before,
        outcome: &mut Outcome,
        now: DateTime<Utc>,
    ) {
        let zone = rules.settings.timezone;
        let today = localtime::local_day(now, zone);
        if !before.existed {
            self.day(today).new += 1;
        }
        let member = &outcome.member;
        if member.left && !before.left {
            self.day(today).left += 1;
        }
        if before.tier != member.tier {
            let tiers = self.touch_tiers();
            if let Some(old) = &before.tier {
                if let Some(count) = tiers.get_mut(old.as_str()) {
                    *count = count.saturating_sub(1);
                }
            }
            if let Some(new) = &member.tier {
                *tiers.entry(new.to_string()).or_default() += 1;
            }
        }
        let active_at = member
            .last_active
            .filter(|at| before.last_active != Some(*at));
        if let Some(at) = active_at {
            self.activity(rules, before, &mut outcome.member, at, zone);
        }
        let (purchases, spend) = sales(&outcome.member);
        let purchases = purchases - before.purchases;
        let gmv = spend - before.spend;
        if purchases > Decimal::ZERO {
            self.purchase(&mut outcome.member, purchases, gmv, now, today);
        }
        let points = self.points(outcome, before, today);
        self.rules(outcome, today);
        self.winback_sent(rules, outcome, now);
        self.campaigns(
            rules,
            phases,
            outcome,
            active_at.is_some(),
            points,
            gmv,
            now,
        );
    }

    fn activity(
        &mut self,
        rules: &RuleSet,
        before: &Before,
        member: &mut Member,
        at: DateTime<Utc>,
        zone: Tz,
    ) {
        let day = localtime::local_day(at, zone);
        let silence = shortest_inactive(rules);
        let after_silence = before
            .last_active
            .zip(silence)
            .is_some_and(|(last, silence)| at - last >= silence);
        if before.left || after_silence {
            self.day(day).returned += 1;
        }
        if let Some((rule, template, sent)) = member.book.metrics.winback.take() {
            if at - sent <= rules.settings.metrics.reengaged_within {
                self.touch_reengagement()
                    .entry(rule)
                    .or_default()
                    .entry(template)
                    .or_default()
                    .returned += 1;
            }
        }
        let marks = &mut member.book.metrics;
        let previous = marks.active_day;
        if !self.present(Kind::Active, previous, day) {
            return;
        }
        marks.active_day = Some(day);
        let joined = *marks.joined_day.get_or_insert(day);
        let new_week = previous.is_none_or(|last| week_start(last) != week_start(day));
        if new_week {
            let weeks = ((week_start(day) - week_start(joined)).num_days() / 7) as usize;
            let cohort = self.touch_cohorts().entry(week_key(joined)).or_default();
            if weeks == 0 && previous.is_none() {
                cohort.size += 1;
            }
            if cohort.active.len() <= weeks {
                cohort.active.resize(weeks + 1, 0);
            }
            cohort.active[weeks] += 1;
        }
    }

    fn purchase(
        &mut self,
        member: &mut Member,
        purchases: Decimal,
        gmv: Decimal,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) {
        let row = self.day(today);
        row.purchases += purchases.trunc().to_u64().unwrap_or(0);
        row.gmv += gmv;
        let marks = &mut member.book.metrics;
        if self.present(Kind::Buyer, marks.bought_day, today) {
            marks.bought_day = Some(today);
        }
        let repeat = marks
            .last_purchase
            .is_some_and(|last| now - last <= REPEAT_WITHIN);
        if repeat && self.present(Kind::RepeatBuyer, marks.rebought_day, today) {
            marks.rebought_day = Some(today);
        }
        marks.last_purchase = Some(now);
    }

    /// Ledger and balance; returns the points awarded.
    fn points(&mut self, outcome: &Outcome, before: &Before, today: NaiveDate) -> i64 {
        let issued: i64 = outcome.ledger.iter().map(|e| e.amount.max(0)).sum();
        let taken: i64 = outcome.ledger.iter().map(|e| (-e.amount).max(0)).sum();
        let redeemed: i64 = outcome
            .redemptions
            .iter()
            .filter(|r| r.granted())
            .map(|r| r.cost)
            .sum::<i64>()
            .min(taken);
        let expired: i64 = outcome
            .ledger
            .iter()
            .filter(|e| e.rule == crate::engine::EXPIRY_RULE)
            .map(|e| (-e.amount).max(0))
            .sum();
        let change = outcome.member.points - before.points;
        if issued == 0 && taken == 0 && change == 0 {
            return 0;
        }
        let row = self.day(today);
        row.issued += issued;
        row.redeemed += redeemed;
        row.expired += expired;
        row.deducted += taken - redeemed - expired;
        row.balance_change += change;
        issued
    }

    fn rules(&mut self, outcome: &Outcome, today: NaiveDate) {
        if outcome.firings.is_empty() && outcome.failures.is_empty() && outcome.ledger.is_empty() {
            return;
        }
        let row = self.day(today);
        for firing in &outcome.firings {
            bump(&mut row.rules, &firing.rule, |counts| counts.firings += 1);
        }
        for failure in &outcome.failures {
            bump(&mut row.rules, &failure.rule, |counts| counts.failures += 1);
        }
        for entry in outcome
            .ledger
            .iter()
            .filter(|e| e.amount > 0 && !e.rule.is_empty())
        {
            bump(&mut row.rules, &entry.rule, |counts| {
                counts.points += entry.amount
            });
        }
    }

    /// A message from an `inactive` rule is a step of the re-engagement ladder: the
    /// member's next activity within the window is that step's success.
    fn winback_sent(&mut self, rules: &RuleSet, outcome: &mut Outcome, now: DateTime<Utc>) {
        for message in &outcome.messages {
            let (Some(rule), Some(template)) = (&message.rule, &message.template) else {
                continue;
            };
            let inactive = rules
                .rules
                .iter()
                .any(|r| &r.id == rule && matches!(r.trigger, Trigger::Inactive(_)));
            if !inactive {
                continue;
            }
            self.touch_reengagement()
                .entry(rule.clone())
                .or_default()
                .entry(template.clone())
                .or_default()
                .sent += 1;
            outcome.member.book.metrics.winback = Some((rule.clone(), template.clone(), now));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn campaigns(
        &mut self,
        rules: &RuleSet,
        phases: &mut Phases,
        outcome: &mut Outcome,
        active: bool,
        points: i64,
        gmv: Decimal,
        now: DateTime<Utc>,
    ) {
        for (index, campaign) in rules.campaigns.iter().enumerate() {
            let budget = outcome.budget_spent.get(&campaign.id).copied().unwrap_or(0);
            if !active && points == 0 && gmv == Decimal::ZERO && budget == 0 {
                continue;
            }
            let Some(phase) = phases.at(index, campaign, now) else {
                continue;
            };
            let since = &phase.since;
            let marks = &mut outcome.member.book.metrics;
            let counted = marks.phases.get(&campaign.id).map(|s| s.as_str());
            let joins = active && counted != Some(since.as_str());
            if joins {
                marks.phases.insert(&campaign.id, since.as_str().into());
            }
            // Every active step of every member passes here: the keys are copied
            // only the first time a campaign's phase is counted.
            let campaigns = self.touch_campaigns();
            with_entry(campaigns, &campaign.id, |by_phase| {
                with_entry(by_phase, since, |counts| {
                    if counts.name != phase.name {
                        counts.name = phase.name.clone();
                    }
                    counts.participants += u64::from(joins);
                    counts.points += points;
                    counts.gmv += gmv;
                    counts.budget_used += budget;
                })
            });
        }
    }

    /// Messages as queued, by their status then and their channel.
    pub fn queued(&mut self, rows: &[OutboxRow], zone: Tz) {
        for row in rows {
            let status = match row.status {
                Status::Capped => "capped",
                Status::Suppressed => "suppressed",
                _ => "queued",
            };
            let day = self.day(localtime::local_day(row.created_at, zone));
            *day.messages.entry(status.to_string()).or_default() += 1;
            *day.channels.entry(row.channel.clone()).or_default() += 1;
            *day.channel_statuses
                .entry(row.channel.clone())
                .or_default()
                .entry(status.to_string())
                .or_default() += 1;
        }
    }

    pub fn ticket_opened(&mut self, ticket: &Ticket, zone: Tz) {
        self.day(localtime::local_day(ticket.opened_at, zone))
            .tickets_opened += 1;
    }

    /// `ticket` was just acknowledged (`resolve: false`) or resolved at `now`.
    pub fn ticket_handled(&mut self, ticket: &Ticket, resolve: bool, now: DateTime<Utc>, zone: Tz) {
        let row = self.day(localtime::local_day(now, zone));
        if resolve {
            row.tickets_resolved += 1;
        } else {
            row.tickets_acknowledged += 1;
            let seconds = (now - ticket.opened_at).num_seconds().max(0);
            *row.ack_seconds.entry(seconds).or_default() += 1;
        }
    }

    /// The SLA of `level` ran out at `now`.
    pub fn breach(&mut self, level: usize, now: DateTime<Utc>, zone: Tz) {
        *self
            .day(localtime::local_day(now, zone))
            .breaches
            .entry(level)
            .or_default() += 1;
    }
}

/// Each campaign's phase as the metrics last found it, and until when it holds: a
/// campaign's phase changes only at its transitions, so working it out (and writing its
/// start as RFC 3339) once per phase rather than once per step is enough. Indexed like
/// `RuleSet::campaigns`, so only ever used with one rule set.
#[derive(Debug, Default)]
pub struct Phases {
    campaigns: Vec<Option<KnownPhase>>,
}

/// A campaign's phase over `[from, until)` (`until` `None`: from then on).
#[derive(Debug)]
struct KnownPhase {
    campaign: String,
    from: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    phase: Option<PhaseSince>,
}

/// A campaign phase and its start as the metrics rows key it.
#[derive(Debug, PartialEq)]
struct PhaseSince {
    name: String,
    /// The phase's start, RFC 3339.
    since: String,
}

impl Phases {
    /// `campaign`'s phase at `now`, as [`crate::campaign::phase_at`] gives it.
    fn at(&mut self, index: usize, campaign: &Campaign, now: DateTime<Utc>) -> Option<&PhaseSince> {
        if self.campaigns.len() <= index {
            self.campaigns.resize_with(index + 1, || None);
        }
        let slot = &mut self.campaigns[index];
        let holds = slot.as_ref().is_some_and(|known| {
            known.campaign == campaign.id
                && known.from <= now
                && known.until.is_none_or(|until| now < until)
        });
        if !holds {
            let phase = crate::campaign::phase_at(campaign, now).map(|phase| PhaseSince {
                since: crate::member::rfc3339(phase.since),
                name: phase.name,
            });
            let until = crate::campaign::next_transition_after(campaign, now).map(|next| next.at);
            *slot = Some(KnownPhase {
                campaign: campaign.id.clone(),
                from: now,
                until,
                phase,
            });
        }
        slot.as_ref().and_then(|known| known.phase.as_ref())
    }
}

/// The shortest silence an `inactive` rule waits for: activity after at least this
/// long is a return.
pub fn shortest_inactive(rules: &RuleSet) -> Option<Duration> {
    rules
        .rules
        .iter()
        .filter_map(|r| match r.trigger {
            Trigger::Inactive(d) => Some(d),
            _ => None,
        })
        .min()
}

/// The Monday of `day`'s ISO week.
pub fn week_start(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// The ISO week of `day` as reports name it: `2026-W45`.
pub fn week_key(day: NaiveDate) -> String {
    let mut key = String::with_capacity(8);
    localtime::write_period_key(localtime::Period::Week, day, &mut key);
    key
}

/// Changes `rule`'s counts by `change`, naming the rule anew only the first time
/// (most steps count rules the day's row already holds).
fn bump(
    rules: &mut HashMap<String, RuleCounts, foldhash::fast::RandomState>,
    rule: &str,
    change: impl FnOnce(&mut RuleCounts),
) {
    match rules.get_mut(rule) {
        Some(counts) => change(counts),
        None => change(rules.entry(rule.to_owned()).or_default()),
    }
}

/// Calls `f` with `map[key]`, made with its default first where it is missing: the
/// key is copied only then.
fn with_entry<V: Default>(map: &mut BTreeMap<String, V>, key: &str, f: impl FnOnce(&mut V)) {
    match map.get_mut(key) {
        Some(value) => f(value),
        None => f(map.entry(key.to_owned()).or_default()),
    }
}

#[cfg(test)]
mod phases_tests {
    use super::*;

    /// Recurring phases in a zone with daylight saving (both changes fall in the walk),
    /// an absolute one, and an end.
    const RULES: &str = r#"
settings: { timezone: America/New_York }
campaigns:
  - id: weekly
    phases:
      - { name: weekdays, start: "30 2 * * 1" }
      - { name: weekend, start: "0 18 * * 5" }
      - { name: late, start: "0 1 * * *" }
  - id: fixed
    phases:
      - { name: warmup, start: "2026-03-01T00:00:00" }
      - { name: peak, start: "2026-03-08T02:30:00" }
    end: "2026-11-01T01:30:00"
rules: []
"#;

    #[test]
    fn a_remembered_phase_is_the_phase_worked_out_afresh_at_every_step() {
        let rules = crate::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap();
        let mut phases = Phases::default();
        let mut now = DateTime::parse_from_rfc3339("2026-02-20T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let last = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut changes = 0;
        let mut previous = Vec::new();
        while now < last {
            let mut seen = Vec::new();
            for (index, campaign) in rules.campaigns.iter().enumerate() {
                let afresh = crate::campaign::phase_at(campaign, now).map(|p| PhaseSince {
                    since: crate::member::rfc3339(p.since),
                    name: p.name,
                });
                assert_eq!(phases.at(index, campaign, now), afresh.as_ref(), "{now}");
                seen.push(afresh.map(|p| p.since));
            }
            changes += usize::from(seen != previous);
            previous = seen;
            // Steps of 17 minutes: every hour of the day, and the instants around
            // each transition.
            now += Duration::minutes(17);
        }
        assert!(changes > 50, "the walk crossed {changes} phase changes");
    }
}
