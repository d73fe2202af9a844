//! The imperative shell around the pure step: loads the member, runs the step, and
//! gathers the results into groups that the store commits in one transaction each.
//! `sim` and the daemon both drive the engine through a `Runner`, so they cannot
//! disagree about what an event — or a timer — does.
//!
//! Steps in a group that is not yet committed must see each other: the runner keeps
//! the members and event ids of the open group in memory, so a second event for the
//! same member — or a duplicate id — within one group behaves exactly as if the first
//! had already been committed. Timers are read from the store, so the open group is
//! committed before due timers are looked up.

mod arming;
mod board_close;
mod committed;
mod credit;
mod draw;
mod fanout;
pub mod gather;
mod journal;
mod open_group;
pub mod rewards;
mod sharing;
mod tickets;
mod timers;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{StepClock, MAX_AHEAD};
use crate::engine::{self, Context, Input, Outcome};
use crate::event::Event;
use crate::member::Member;
use crate::metrics::{Before, Phases, Tally};
use crate::rules::RuleSet;
use crate::script::RandomKey;
use crate::store::{StepWrite, Store, StoreError};
pub use board_close::ClosedPlace;
use committed::Committed;
use open_group::OpenGroup;
pub use sharing::ShareSource;
use sharing::{Asked, Sharing};

pub use draw::{stored_draws, DrawJob, DrawRecord, DRAW_META};
pub use fanout::{stored_silence_passes, FanoutJob, Pace, Reach, SilencePass, Work};
pub use journal::{journal_lines, Entry, JournalLine};
pub use tickets::stored_tickets;

/// What happened to one event.
#[derive(Debug)]
pub enum Applied {
    /// Its id was seen before: nothing changed.
    Duplicate,
    /// Its step ran and joined the open group.
    Accepted(Report),
    /// Valid as an event but refused (an unknown ticket, an ack of a resolved one):
    /// nothing changed.
    Rejected(String),
}

/// What the caller of an accepted step learns: the rules that fired and the rules that
/// failed. (Everything else went into the open group.)
#[derive(Debug, Default)]
pub struct Report {
    pub fired: Vec<crate::engine::Name>,
    pub failures: Vec<crate::engine::RuleFailure>,
}

/// What one step recorded, as the journal keeps it (see [`Runner::keep_journal`]).
#[derive(Clone, Debug, Default)]
pub struct Journaled {
    pub ledger: Vec<crate::engine::LedgerEntry>,
    pub firings: Vec<crate::engine::Firing>,
    pub failures: Vec<crate::engine::RuleFailure>,
    pub messages: Vec<crate::outbox::OutboxRow>,
    pub redemptions: Vec<crate::rewards::Redemption>,
}

/// What Rally remembers about a campaign: every phase change it fired and the points
/// its rules awarded (what its budget is measured against).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub points_awarded: i64,
    pub transitions: Vec<TransitionRecord>,
}

impl CampaignRecord {
    /// How `sim` and `GET /v1/campaigns` show a campaign at `now`: its phase and since
    /// when, its budget, the points its rules awarded, and every phase change fired.
    pub fn view(
        &self,
        campaign: &crate::rules::Campaign,
        now: Option<DateTime<Utc>>,
    ) -> serde_json::Value {
        let phase = now.and_then(|t| crate::campaign::phase_at(campaign, t));
        serde_json::json!({
            "phase": phase.as_ref().map(|p| p.name.clone()),
            "since": phase.map(|p| crate::member::rfc3339(p.since)),
            "budget": campaign.budget_points,
            "points_awarded": self.points_awarded,
            "transitions": self.transitions,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    /// The phase entered; `None` when the campaign ended.
    pub phase: Option<String>,
    #[serde(with = "crate::engine::outcome::utc")]
    pub at: DateTime<Utc>,
}

pub struct Runner {
    /// The secret `random()` and friends draw under: the store's (`random.key`), or
    /// the zero key of a store that has none (sim, tests) until one is set.
    random_key: RandomKey,
    /// `random_key` is not in the store yet: the next arming writes it.
    random_key_unsaved: bool,
    /// Shared with the outbox dispatcher and the API's readers (sled is thread-safe).
    store: Arc<Store>,
    rules: Arc<RuleSet>,
    /// Steps not committed yet, and what later steps of the group must see of them
    /// ([`Runner::commit`] moves their members into `committed`).
    open: OpenGroup,
    /// What the runner knows of the committed store without reading it (members,
    /// the next timer); forgotten together when a commit fails.
    committed: Committed,
    campaigns: BTreeMap<String, CampaignRecord>,
    /// Campaigns whose records the open group's awards changed: their rows are
    /// written once, at the commit, not at each award (a record holds every phase
    /// change, and most steps of a campaign award points).
    campaigns_awarded: BTreeSet<String>,
    budget_used: BTreeMap<String, i64>,
    /// What has been issued of each reward, committed or in the open group.
    rewards: BTreeMap<String, crate::rewards::RewardRecord>,
    jobs: VecDeque<FanoutJob>,
    next_job: u64,
    /// How fan-out jobs share time with arrivals.
    pace: Pace,
    /// Silence passes finished (and committed) since the caller last asked.
    finished_passes: Vec<(u64, SilencePass)>,
    /// When this process started keeping time: occurrences due before it were missed
    /// while Rally was down (`catch_up`). `None` in `sim`, where nothing is missed.
    started_at: Option<DateTime<Utc>>,
    /// What every step recorded, in order, when the caller wants it (`sim`).
    journal: Option<Vec<Journaled>>,
    /// Whether the store keeps history rows, asked once when the journal starts: if
    /// not, a journaled step's ledger and firings are only counted for it.
    store_keeps_history: bool,
    /// The event journal kept in the store (the daemon, `import`): every input, with
    /// the step that took it.
    event_journal: Option<journal::Journal>,
    next_ticket: u64,
    next_outbox: u64,
    /// The first day (as [`crate::store::dedup::first_kept_day`] numbers it) whose
    /// event ids an in-memory store still holds: see `Runner::forget_old_event_ids`.
    ids_kept_from: u32,
    /// The one time every step runs at (SPEC §2.7): monotone, kept in the store with
    /// every commit so a restart (or an import) continues from it.
    clock: StepClock,
    /// What the credited members' steps (`runner/credit.rs`) fired and failed since
    /// the last event's [`Report`] took it.
    credited: Report,
    /// The community metrics, committed and in the open group (`src/metrics`):
    /// forgotten and read again whenever a group fails, like the campaign records.
    metrics: Tally,
    /// The member as the latest step found it, for the metrics of its outcome.
    before: Before,
    /// The campaigns' phases as the metrics last found them, for `rules`: replaced
    /// with them.
    phases: Phases,
    /// In a cluster partition: its shares of budgets, stock and ticket numbers.
    sharing: Option<Sharing>,
    /// In a cluster partition: where its draws' and closes' parts go (`gather.rs`).
    gatherer: Option<Box<dyn gather::Gatherer>>,
    /// Draws and closes waiting for the result over every partition.
    parked: Vec<FanoutJob>,
}

/// Meta name of the step clock: the time of the latest committed step or reading.
pub const CLOCK_META: &str = "clock";
/// The secret draws are keyed by, 32 hex digits, written at the first arming.
pub const RANDOM_KEY_META: &str = "random.key";

/// Meta names: `campaign.<id>` holds a [`CampaignRecord`].
pub const CAMPAIGN_META: &str = "campaign.";

impl Runner {
    /// Opens a runner over `store`, picking up campaign records and unfinished
    /// fan-outs left by an earlier process.
    pub fn new(store: Store, rules: Arc<RuleSet>) -> Result<Self, StoreError> {
        let campaigns = load_campaigns(&store)?;
        let budget_used = budgets(&campaigns);
        let rewards = rewards::load(&store)?;
        let (jobs, parked, next_job) = fanout::load_jobs(&store)?;
        let next_ticket = store.ticket_last()?.map_or(1, |n| n + 1);
        let next_outbox = store.outbox_last()?.map_or(1, |n| n + 1);
        let clock = load_clock(&store)?;
        let metrics = Tally::load(&store)?;
        let random_key = store
            .meta_get(RANDOM_KEY_META)?
            .map(|bytes| RandomKey::parse(&String::from_utf8_lossy(&bytes)));
        Ok(Runner {
            random_key_unsaved: false,
            random_key: random_key.unwrap_or_default(),
            clock,
            store: Arc::new(store),
            next_ticket,
            next_outbox,
            ids_kept_from: 0,
            rules,
            open: OpenGroup::default(),
            committed: Committed::default(),
            campaigns,
            campaigns_awarded: BTreeSet::new(),
            budget_used,
            rewards,
            jobs,
            next_job,
            pace: Pace::default(),
            finished_passes: Vec::new(),
            started_at: None,
            journal: None,
            store_keeps_history: true,
            event_journal: None,
            credited: Report::default(),
            metrics,
            before: Before::default(),
            phases: Phases::default(),
            sharing: None,
            gatherer: None,
            parked,
        })
    }

    /// Records what every step does from now on (see [`Runner::take_journal`]).
    pub fn keep_journal(&mut self) {
        self.journal = Some(Vec::new());
        self.store_keeps_history = self.store.keeps_history();
    }

    pub fn take_journal(&mut self) -> Vec<Journaled> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A daemon's first start: the store has no secret for draws yet, so one is made
    /// and stored with the next arming (and recorded in the journal for replays).
    pub fn make_random_key_if_missing(&mut self) -> Result<(), StoreError> {
        if self.store.meta_get(RANDOM_KEY_META)?.is_none() {
            self.set_random_key(RandomKey::generate());
        }
        Ok(())
    }

    /// Draws from now on use `key` (`sim --seed`, a replay of a journal that recorded
    /// one); the next arming stores it.
    pub fn set_random_key(&mut self, key: RandomKey) {
        if key == self.random_key {
            return;
        }
        self.random_key = key;
        self.random_key_unsaved = true;
    }

    /// The daemon's start time: `schedule` occurrences due before it were missed.
    pub fn set_started_at(&mut self, at: DateTime<Utc>) {
        self.started_at = Some(at);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, for the dispatcher and readers that outlive a borrow.
    pub fn shared_store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Replaces the rule set between steps (hot reload).
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.rules = rules;
        self.phases = Phases::default();
    }

    /// The step clock: the time of the latest step or reading, `None` before the first.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.clock.now()
    }

    /// Steps waiting in the open group.
    pub fn pending(&self) -> usize {
        self.open.len()
    }

    /// What has been issued of each reward.
    pub fn rewards(&self) -> &BTreeMap<String, crate::rewards::RewardRecord> {
        &self.rewards
    }

    /// Campaign records: transitions fired and points awarded.
    pub fn campaigns(&self) -> &BTreeMap<String, CampaignRecord> {
        &self.campaigns
    }

    /// The community metrics, the open group's steps included.
    pub fn metrics(&self) -> &Tally {
        &self.metrics
    }

    /// A member as the next step would see it.
    pub fn member(&self, id: &str) -> Result<Option<Member>, StoreError> {
        if let Some(member) = self.pending_member(id) {
            return Ok(Some(member.clone()));
        }
        match self.committed.member(id) {
            Some(member) => Ok(Some(member.clone())),
            None => self.store.member(id),
        }
    }

    /// What `read` makes of a member as the next step would see it, without copying
    /// the member when the runner holds it (the open group or the committed cache).
    pub fn read_member<T>(
        &self,
        id: &str,
        read: impl FnOnce(Option<&Member>) -> T,
    ) -> Result<T, StoreError> {
        if let Some(member) = self
            .pending_member(id)
            .or_else(|| self.committed.member(id))
        {
            return Ok(read(Some(member)));
        }
        Ok(read(self.store.member(id)?.as_ref()))
    }

    /// A member's state in the open group, if a step of it changed them.
    fn pending_member(&self, id: &str) -> Option<&Member> {
        self.open.member(id)
    }

    /// A member for a step that is about to run: taken out of the cache (or checked
    /// out of a memory store) rather than copied, since the step's outcome puts the new
    /// state back. (A member already changed by the open group is copied: that write
    /// still has to be committed.)
    fn take_member(&mut self, id: &str) -> Result<Option<Member>, StoreError> {
        if let Some(member) = self.pending_member(id) {
            return Ok(Some(member.clone()));
        }
        match self.committed.take_member(id) {
            Some(member) => Ok(Some(member)),
            // Every caller steps the member at once, so the new state is in the open
            // group before anything else looks for it.
            None => self.store.check_out_member(id),
        }
    }

    /// An event arrives when the clock reads `reading` (SPEC §2.7): the clock moves to
    /// it (never back), every timer due by then runs first, in due order, and then the
    /// event's step runs at the clock's time — for a late event, later than its `at`.
    /// This one function decides what runs before an arrival in `sim`, `import` and
    /// the daemon alike, so the same arrivals give the same state.
    ///
    /// Steps join the open group; the caller commits. An `at` more than
    /// [`MAX_AHEAD`] past the clock is refused.
    pub fn apply_event(
        &mut self,
        event: &Event,
        reading: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let now = self.arrive(reading)?;
        if self.open.holds_event(&event.id) || self.store.seen(&event.id)? {
            return Ok(Applied::Duplicate);
        }
        if event.at_utc() > now + MAX_AHEAD {
            return Ok(Applied::Rejected(format!(
                "at: {} is in the future: more than {} minutes after Rally's clock ({})",
                event.at.map(|at| at.to_rfc3339()).unwrap_or_default(),
                MAX_AHEAD.num_minutes(),
                crate::member::rfc3339(now)
            )));
        }
        let window = self.rules.settings.retention.event_ids;
        if let Some(too_old) = crate::store::dedup::too_old(event.at_utc(), now, window) {
            return Ok(Applied::Rejected(too_old.to_string()));
        }
        if let Some(refusal) = self.refused_adjustment(event)? {
            return Ok(Applied::Rejected(refusal.to_string()));
        }
        // A ticket command changes its ticket or nothing at all, and runs for the
        // ticket's member, never for whoever sent it.
        let (mut write, ticket_member) = match self.ticket_command(event, now)? {
            Some(Ok(command)) => (command.write, Some(command.member)),
            Some(Err(message)) => return Ok(Applied::Rejected(message)),
            None => (StepWrite::default(), None),
        };
        write.event_id = Some(event.id.as_str().into());
        write.event_at = Some(event.at_utc());
        self.record_event(&mut write, now, event);
        self.open.add_event(&event.id);
        let owned;
        let (event, member) = match ticket_member {
            Some(id) => {
                let Some(member) = self.take_member(&id)? else {
                    // Never create a member for a ticket command.
                    self.open.push(write);
                    return Ok(Applied::Accepted(Report::default()));
                };
                owned = Event {
                    member: Some(id),
                    ..event.clone()
                };
                (&owned, Some(member))
            }
            None => {
                let id = event.member.as_deref().unwrap_or_default();
                (event, self.take_member(id)?)
            }
        };
        let outcome = self.step(member, &Input::Event(event), now);
        let mut report = Report {
            fired: outcome.firings.iter().map(|f| f.rule.clone()).collect(),
            failures: outcome.failures.clone(),
        };
        self.credited = Report::default();
        self.absorb(outcome, write);
        let credited = std::mem::take(&mut self.credited);
        report.fired.extend(credited.fired);
        report.failures.extend(credited.failures);
        Ok(Applied::Accepted(report))
    }

    /// Why a manual adjustment (`rally.points`) must change nothing — an unknown
    /// member, a balance too small — judged on the member as the step would see it.
    fn refused_adjustment(&self, event: &Event) -> Result<Option<engine::Refusal>, StoreError> {
        if event.kind != crate::event::POINTS_ADJUSTMENT {
            return Ok(None);
        }
        let id = event.member.as_deref().unwrap_or_default();
        let stored;
        let member = match self
            .pending_member(id)
            .or_else(|| self.committed.member(id))
        {
            Some(member) => Some(member),
            None => {
                stored = self.store.member(id)?;
                stored.as_ref()
            }
        };
        Ok(engine::refuse_adjustment(member, event))
    }

    /// Time reaches `reading` for something that is about to happen (an event, a
    /// ticket command): every timer due by then runs first, and the time it happens at
    /// is returned — the clock's, which a reading behind it does not move back.
    pub fn arrive(&mut self, reading: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        self.run_due(reading)?;
        Ok(self.clock.advance(reading))
    }

    /// Runs one step at `at`, or at the clock if it is already later: the only way a
    /// step gets its time, so no step runs earlier than the one before it.
    fn step(&mut self, member: Option<Member>, input: &Input<'_>, at: DateTime<Utc>) -> Outcome {
        let now = self.clock.advance(at);
        self.before = Before::of(member.as_ref());
        let may_run_short = match &mut self.sharing {
            Some(sharing) => sharing.start_step(&self.rules),
            None => false,
        };
        if !may_run_short {
            return engine::step(&self.context(now), member, input);
        }
        loop {
            let outcome = engine::step(&self.context(now), member.clone(), input);
            let Some(sharing) = self.sharing.as_mut().filter(|_| !outcome.shorts.is_empty()) else {
                return outcome;
            };
            match sharing.ask(&self.rules, &outcome.shorts) {
                Ok(Asked::Grew) => continue,
                Ok(Asked::Spent) => return outcome,
                Err(why) => {
                    self.open.break_with(why);
                    return outcome;
                }
            }
        }
    }

    /// What a step at `now` sees besides its member.
    fn context(&self, now: DateTime<Utc>) -> Context<'_> {
        Context {
            rules: &self.rules,
            now,
            budget_used: &self.budget_used,
            rewards: &self.rewards,
            next_ticket: self.next_ticket,
            shares: self.sharing.as_ref().map(|sharing| &sharing.shares),
            random_key: self.random_key,
        }
    }

    /// Makes this runner a cluster partition's: its steps spend `shares` (with the
    /// grants `pending` take effect at their messages, [`Runner::reach_message`]),
    /// and ask `source` for more when they run short.
    pub fn share(
        &mut self,
        shares: crate::shares::Shares,
        pending: Vec<(u64, crate::shares::Grant)>,
        source: Box<dyn ShareSource>,
    ) {
        self.sharing = Some(Sharing::new(shares, pending, source));
    }

    /// The message at stream sequence `sequence` is applied next (a cluster
    /// partition's): what is granted from it on takes effect.
    pub fn reach_message(&mut self, sequence: u64) {
        if let Some(sharing) = &mut self.sharing {
            sharing.reach(sequence);
        }
    }

    /// A cluster partition's shares, as its steps see them now.
    pub fn shares(&self) -> Option<&crate::shares::Shares> {
        self.sharing.as_ref().map(|sharing| &sharing.shares)
    }

    /// Adds an outcome's writes to `write` — including the campaign records its awards
    /// changed — and `write` to the open group, where the next steps find the member's
    /// new state; journals the outcome when a journal is kept. Updates the in-memory
    /// budgets so the next step sees them.
    fn absorb(&mut self, mut outcome: Outcome, mut write: StepWrite) {
        let credits = std::mem::take(&mut outcome.credits);
        if let Some(now) = self.clock.now() {
            let before = std::mem::take(&mut self.before);
            self.metrics
                .step_with(&self.rules, &mut self.phases, &before, &mut outcome, now);
        }
        for (campaign, points) in &outcome.budget_spent {
            let record = self.campaigns.entry(campaign.clone()).or_default();
            record.points_awarded += points;
            *self.budget_used.entry(campaign.clone()).or_insert(0) += points;
            if !self.campaigns_awarded.contains(campaign) {
                self.campaigns_awarded.insert(campaign.clone());
            }
        }
        rewards::absorb(&mut self.rewards, &outcome.redemptions, &mut write);
        self.queue_messages(&mut write, &mut outcome.messages);
        for opened in &outcome.tickets {
            self.next_ticket = self.next_ticket.max(opened.ticket.number + 1);
            self.metrics
                .ticket_opened(&opened.ticket, self.rules.settings.timezone);
            self.put_ticket(&mut write, opened.ticket.clone(), opened.deadline);
        }
        let Outcome {
            member,
            mut ledger,
            mut firings,
            failures,
            mut timers_set,
            mut timers_clear,
            messages,
            redemptions,
            mut leaderboards,
            ..
        } = outcome;
        join(&mut write.leaderboards, &mut leaderboards);
        // Appended, not assigned: the write may already clear a popped timer, and
        // opening a ticket above armed its SLA timer.
        join(&mut write.timers_set, &mut timers_set);
        join(&mut write.timers_clear, &mut timers_clear);
        if let Some(journal) = &mut self.journal {
            if self.store_keeps_history {
                write.ledger.extend_from_slice(&ledger);
                write.firings.extend_from_slice(&firings);
            } else {
                // The journal has them; a copy would only be counted and dropped.
                write.history_rows += crate::store::history_row_count(&ledger, &firings);
            }
            journal.push(Journaled {
                ledger,
                firings,
                failures,
                messages,
                redemptions,
            });
        } else {
            join(&mut write.ledger, &mut ledger);
            join(&mut write.firings, &mut firings);
        }
        self.open.push_step(member, write);
        self.run_credits(credits);
    }

    /// Adds a write made outside a step (a ticket change by API) to the open group.
    pub fn push_write(&mut self, write: StepWrite) {
        self.open.push(write);
    }

    /// Commits the open group in one transaction. On error nothing of the group is
    /// stored and the group is dropped: its events were not acknowledged.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.open.is_empty() {
            return Ok(());
        }
        let awarded = std::mem::take(&mut self.campaigns_awarded);
        if let Some(why) = self.open.broken().map(str::to_string) {
            drop(self.open.close());
            self.committed.forget();
            self.reload_records()?;
            return Err(StoreError::GroupDropped(why));
        }
        if let Some(clock) = self.clock.encode() {
            self.open.push(StepWrite {
                meta_put: vec![(CLOCK_META.to_string(), clock)],
                ..StepWrite::default()
            });
        }
        // The campaign records the group's awards changed, as they stand after its
        // last step: a later write of the same row wins, so this is the row stored
        // whatever else of the group wrote it.
        let records = StepWrite {
            meta_put: awarded
                .iter()
                .filter_map(|id| Some(campaign_meta(id, self.campaigns.get(id)?)))
                .collect(),
            ..StepWrite::default()
        };
        if !records.meta_put.is_empty() {
            self.open.push(records);
        }
        // The metrics rows the group's steps changed, once each, in the same batch.
        let mut metrics = StepWrite::default();
        self.metrics.flush(&mut metrics);
        if !metrics.meta_put.is_empty() {
            self.open.push(metrics);
        }
        let mut writes = self.open.close();
        // A memory store takes the members (it keeps them as they are); what it
        // leaves (sled's) is cached.
        let result = self.store.commit_moving_members(&mut writes);
        if result.is_err() {
            // What the failed group changed in memory must not outlive it.
            self.committed.forget();
            self.reload_records()?;
            return result;
        }
        self.committed.committed(&mut writes);
        self.forget_old_event_ids();
        result
    }

    /// In a store held in memory (`sim`, replay, backtest, `rally test`), the ids of
    /// events past the de-duplication window are removed as the clock passes each day,
    /// as the daemon's retention removes them from its files: a run's memory then
    /// holds a window of ids, not one per event it ever applied. What is refused does
    /// not change — an event that old is refused by its `at` ([`crate::store::dedup`]).
    /// Forgetting only saves memory, so a failure to (an injected read fault) is not
    /// the commit's: the ids stay, and the next commit tries again.
    fn forget_old_event_ids(&mut self) {
        let Some(now) = self.clock.now() else {
            return;
        };
        let window = self.rules.settings.retention.event_ids;
        let first_kept = crate::store::dedup::first_kept_day(now, window);
        if first_kept <= self.ids_kept_from || !self.store.is_in_memory() {
            return;
        }
        loop {
            match self.store.trim_seen(1024, first_kept) {
                Ok(trimmed) if trimmed.next.is_some() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "forgetting old event ids; the next commit tries again");
                    return;
                }
            }
        }
        self.ids_kept_from = first_kept;
    }

    /// Opens the store again after an I/O error ([`Store::reopen`]) and forgets all
    /// it cached from the old one: the open group (nothing of it was acknowledged),
    /// committed members and the timer floor (a group committed but never synced may
    /// be gone from the files), and the records read at start.
    pub fn reopen_store(&mut self) -> Result<(), StoreError> {
        drop(self.open.close());
        self.campaigns_awarded.clear();
        self.committed.forget();
        self.store.reopen()?;
        self.reload_records()
    }

    fn reload_records(&mut self) -> Result<(), StoreError> {
        self.campaigns = load_campaigns(&self.store)?;
        self.budget_used = budgets(&self.campaigns);
        self.rewards = rewards::load(&self.store)?;
        (self.jobs, self.parked, self.next_job) = fanout::load_jobs(&self.store)?;
        self.next_ticket = self.store.ticket_last()?.map_or(1, |n| n + 1);
        self.next_outbox = self.store.outbox_last()?.map_or(1, |n| n + 1);
        self.clock = load_clock(&self.store)?;
        self.metrics = Tally::load(&self.store)?;
        self.reload_journal()
    }
}

/// The step clock stored in `store`: the time of its latest step or reading.
pub fn stored_clock(store: &Store) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(load_clock(store)?.now())
}

fn load_clock(store: &Store) -> Result<StepClock, StoreError> {
    match store.meta_get(CLOCK_META)? {
        None => Ok(StepClock::default()),
        Some(bytes) => StepClock::decode(&bytes).ok_or_else(|| {
            StoreError::corrupt(
                "meta",
                CLOCK_META.as_bytes(),
                "not a time in Unix milliseconds",
            )
        }),
    }
}

fn load_campaigns(store: &Store) -> Result<BTreeMap<String, CampaignRecord>, StoreError> {
    let mut campaigns = BTreeMap::new();
    for (name, bytes) in store.meta_scan(CAMPAIGN_META)? {
        let record: CampaignRecord = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e))?;
        campaigns.insert(name[CAMPAIGN_META.len()..].to_string(), record);
    }
    Ok(campaigns)
}

fn budgets(campaigns: &BTreeMap<String, CampaignRecord>) -> BTreeMap<String, i64> {
    campaigns
        .iter()
        .map(|(id, record)| (id.clone(), record.points_awarded))
        .collect()
}

/// Appends `more` to `into`, taking `more`'s buffer when `into` is empty (as it
/// mostly is): a step's writes start empty, and copying into them costs an allocation
/// per list per step.
fn join<T>(into: &mut Vec<T>, more: &mut Vec<T>) {
    if into.is_empty() {
        std::mem::swap(into, more);
    } else {
        into.append(more);
    }
}

fn campaign_meta(id: &str, record: &CampaignRecord) -> (String, Vec<u8>) {
    (
        format!("{CAMPAIGN_META}{id}"),
        serde_json::to_vec(record).unwrap_or_default(),
    )
}
