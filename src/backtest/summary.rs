//! A compact [`Summary`] of one run: what each rule did, how every member ended, what
//! each campaign spent. Two summaries are compared by [`super::diff`].
//!
//! A summary is built by feeding it facts one at a time (`absorb_*` for what happened,
//! `set_*` for end states), so the same type serves a finished `rally sim` document
//! ([`super::document`]) and a run streamed from a runner's journal, which never
//! holds the whole run in memory. It keeps only counts and sums: its size grows with
//! the number of rules, templates and members, not with the number of events.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

/// What one rule did over a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleFigures {
    pub firings: u64,
    /// The sum of its positive ledger amounts.
    pub points_awarded: Decimal,
    /// The sum of its negative ledger amounts, as a positive number.
    pub points_deducted: Decimal,
    /// Times it failed and changed nothing (the document's `errors`).
    pub errors: u64,
    /// Messages it queued, by their status at the end of the run.
    pub messages: BTreeMap<MessageKind, u64>,
}

/// A message's template (`None` when the channel sends a plain body) and its status
/// at the end of the run, as written in output (`sent`, `suppressed`, `capped`, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageKind {
    pub template: Option<String>,
    pub status: String,
}

/// A member as the run left them: only what a rule change is judged by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberEnd {
    /// The balance: what the community owes the member.
    pub points: Decimal,
    pub tier: Option<String>,
    pub badges: BTreeSet<String>,
    pub tags: BTreeSet<String>,
}

/// A campaign at the end of the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CampaignEnd {
    /// Its points budget, if it has one.
    pub budget: Option<Decimal>,
    /// Points its rules awarded: the budget used.
    pub points_awarded: Decimal,
}

/// Tickets of one escalation policy. Tickets do not name the rule that opened them
/// (neither in the document nor in the journal), so they are counted per policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TicketFigures {
    pub opened: u64,
    /// By status at the end of the run (`open`, `acked`, `resolved`).
    pub by_status: BTreeMap<String, u64>,
}

/// One run, summarised. Every map is ordered by id, so whatever is printed from it
/// comes out in the same order every time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub rules: BTreeMap<String, RuleFigures>,
    /// Messages no rule sent (escalation notifications to staff).
    pub notifications: BTreeMap<MessageKind, u64>,
    pub tickets: BTreeMap<String, TicketFigures>,
    pub members: BTreeMap<String, MemberEnd>,
    pub campaigns: BTreeMap<String, CampaignEnd>,
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    fn rule(&mut self, rule: &str) -> &mut RuleFigures {
        self.rules.entry(rule.to_string()).or_default()
    }

    /// `rule` fired once.
    pub fn absorb_firing(&mut self, rule: &str) {
        self.rule(rule).firings += 1;
    }

    /// A ledger entry of `amount` points written by `rule`.
    pub fn absorb_ledger(&mut self, rule: &str, amount: Decimal) {
        let figures = self.rule(rule);
        if amount.is_sign_negative() {
            figures.points_deducted -= amount;
        } else {
            figures.points_awarded += amount;
        }
    }

    /// `rule` failed once (and changed nothing).
    pub fn absorb_failure(&mut self, rule: &str) {
        self.rule(rule).errors += 1;
    }

    /// A message queued by `rule` (`None`: an escalation notification), with the
    /// status it ended the run with. Each message is absorbed once: a streaming caller
    /// absorbs a deferred message when it settles, not when it is queued.
    pub fn absorb_message(&mut self, rule: Option<&str>, template: Option<&str>, status: &str) {
        let kind = MessageKind {
            template: template.map(str::to_string),
            status: status.to_string(),
        };
        let counts = match rule {
            Some(rule) => &mut self.rule(rule).messages,
            None => &mut self.notifications,
        };
        *counts.entry(kind).or_default() += 1;
    }

    /// A ticket of `policy` opened during the run, with its status at the end.
    pub fn absorb_ticket(&mut self, policy: &str, status: &str) {
        let figures = self.tickets.entry(policy.to_string()).or_default();
        figures.opened += 1;
        *figures.by_status.entry(status.to_string()).or_default() += 1;
    }

    /// How member `id` ended the run (replacing anything set before).
    pub fn set_member(&mut self, id: &str, end: MemberEnd) {
        self.members.insert(id.to_string(), end);
    }

    /// How campaign `id` ended the run (replacing anything set before).
    pub fn set_campaign(&mut self, id: &str, end: CampaignEnd) {
        self.campaigns.insert(id.to_string(), end);
    }

    /// The points liability: the sum of every member's balance at the end.
    pub fn liability(&self) -> Decimal {
        self.members.values().map(|m| m.points).sum()
    }

    pub fn firings(&self) -> u64 {
        self.rules.values().map(|r| r.firings).sum()
    }

    pub fn points_awarded(&self) -> Decimal {
        self.rules.values().map(|r| r.points_awarded).sum()
    }

    pub fn points_deducted(&self) -> Decimal {
        self.rules.values().map(|r| r.points_deducted).sum()
    }

    pub fn errors(&self) -> u64 {
        self.rules.values().map(|r| r.errors).sum()
    }

    pub fn tickets_opened(&self) -> u64 {
        self.tickets.values().map(|t| t.opened).sum()
    }

    /// Every message, rules' and notifications', by status.
    pub fn messages_by_status(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let all = self
            .rules
            .values()
            .flat_map(|r| r.messages.iter())
            .chain(self.notifications.iter());
        for (kind, count) in all {
            *out.entry(kind.status.clone()).or_default() += count;
        }
        out
    }
}
