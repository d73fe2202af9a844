//! The one writer: a dedicated thread that owns the [`Runner`] (sled is synchronous, and
//! the store wants exactly one writer).
//!
//! It loops: wait for a job, drain whatever else is queued up to [`GROUP_STEPS`] steps,
//! apply the events in arrival order, commit them in one transaction, make that
//! durable (`Store::sync`), and only then answer every waiting request. A request is
//! never split across groups, so it is answered once, for all its events; a group
//! therefore overshoots [`GROUP_STEPS`] by at most one request.
//!
//! Ticket acknowledgements and resolutions by API are jobs too: they change the store,
//! so they go through the one writer, commit in a group and are answered once durable.
//!
//! If the commit or the sync fails, every request of the group is answered
//! "unavailable": nothing of it was acknowledged, and a retry is safe (events already
//! stored come back as duplicates). The writer records each group's outcome in
//! [`Health`] for `/healthz`.
//!
//! Clock-driven work that fails (a timer that cannot be read, a commit of timer steps
//! that fails) is retried after a growing pause ([`Backoff`]) while the writer keeps
//! taking jobs: a store that fails must never stop requests from being answered.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::health::Health;
use super::telemetry::{EventStatus, Metrics};
use crate::event::Event;
use crate::rules::RuleSet;
use crate::runner::{Applied, Runner, SilencePass};

mod backoff;
mod tickets;

use backoff::Backoff;
pub use tickets::{TicketAnswer, TicketCommand};

/// Steps gathered into one transaction before the writer stops draining the queue:
/// large enough to amortise sled's per-transaction cost and the sync (DESIGN.md).
pub const GROUP_STEPS: usize = 128;

/// Jobs queued for the writer before senders wait: backpressure for HTTP handlers.
const QUEUE: usize = 1024;

/// What became of an event the writer took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    Accepted,
    Duplicate,
    /// Well-formed but refused, changing nothing (an ack of an unknown ticket).
    Rejected(String),
}

/// Where a rule swap is answered: with the silence pass it started, once that pass
/// has looked at every member, or `None` when the inactivity rules did not change.
type ReloadReply = oneshot::Sender<Result<Option<SilencePass>, Unavailable>>;

/// The events were not acknowledged; the reason is for the log and the client.
#[derive(Clone, Debug, Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

enum Job {
    Events {
        events: Vec<Event>,
        reply: oneshot::Sender<Result<Vec<Ack>, Unavailable>>,
    },
    Ticket {
        command: TicketCommand,
        reply: oneshot::Sender<Result<TicketAnswer, Unavailable>>,
    },
    SetRules {
        rules: Arc<RuleSet>,
        reply: ReloadReply,
    },
    Stop,
}

/// How the rest of the daemon talks to the writer. Cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    jobs: mpsc::Sender<Job>,
}

impl WriterHandle {
    /// Applies `events` in order and answers once they are durable.
    pub async fn apply(&self, events: Vec<Event>) -> Result<Vec<Ack>, Unavailable> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Events { events, reply }).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Acknowledges or resolves a ticket and answers once the change is durable.
    pub async fn ticket(&self, command: TicketCommand) -> Result<TicketAnswer, Unavailable> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Ticket { command, reply }).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Swaps the rule set between two steps and arms its campaigns and schedules;
    /// answers once that is durable and, when the inactivity rules changed, once the
    /// pass over every member is done — with whom each new or changed rule reaches.
    /// Events sent meanwhile use the new set (also when arming could not be stored:
    /// the error says so); the pass takes turns with them.
    pub async fn set_rules(&self, rules: Arc<RuleSet>) -> Result<Option<SilencePass>, Unavailable> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::SetRules { rules, reply }).await?;
        answer.await.map_err(|_| stopped())?
    }

    /// Asks the writer to finish the jobs queued so far and stop.
    pub async fn stop(&self) {
        // A writer that is already gone has nothing left to finish.
        let _ = self.jobs.send(Job::Stop).await;
    }

    async fn send(&self, job: Job) -> Result<(), Unavailable> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }
}

fn stopped() -> Unavailable {
    Unavailable("the writer has stopped (the daemon is shutting down or failed)".into())
}

/// Starts the writer thread. Joining the handle tells how it ended: `Err` if it panicked.
pub fn spawn(
    runner: Runner,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    outbox: Option<Arc<tokio::sync::Notify>>,
    clock: Arc<dyn crate::clock::Clock>,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (tx, jobs) = mpsc::channel(QUEUE);
    let clock_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let writer = Writer {
        runner,
        jobs,
        metrics,
        health,
        waiting: clock_runtime,
        outbox,
        clock,
        timers: Backoff::default(),
        reopen_needed: false,
        awaiting_pass: Vec::new(),
    };
    let thread = std::thread::Builder::new()
        .name("rally-writer".into())
        .spawn(move || writer.run())?;
    Ok((WriterHandle { jobs: tx }, thread))
}

struct Writer {
    runner: Runner,
    jobs: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    /// Where `/healthz` learns whether the last group was stored.
    health: Arc<Health>,
    /// Set while clock-driven work is failing: when to try it again.
    timers: Backoff,
    /// Set by an I/O error from the store: sled 0.34 returns that error from every
    /// later call until it is opened again, so the store is reopened once the group
    /// that met it is answered (see [`Writer::reopen_if_needed`]).
    reopen_needed: bool,
    /// A small runtime to wait for a job or the next deadline, whichever comes first.
    waiting: tokio::runtime::Runtime,
    /// The real clock: what is due is judged by it.
    clock: Arc<dyn crate::clock::Clock>,
    /// Poked after a commit that may have queued messages.
    outbox: Option<Arc<tokio::sync::Notify>>,
    /// Rule swaps whose arming is durable, waiting for the silence pass (by job seq)
    /// they started to finish.
    awaiting_pass: Vec<(u64, ReloadReply)>,
}

/// The longest the writer waits without looking at the timer index again (a reload
/// may have armed an earlier timer).
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The requests of one group, waiting for its commit.
#[derive(Default)]
struct Group {
    waiting: Vec<Waiting>,
    steps: usize,
    /// Rules that fired in this group, counted once the group is durable.
    firings: Vec<crate::engine::Name>,
    /// Ticket commands, answered once the group is durable.
    tickets: Vec<TicketWaiting>,
    /// Rule swaps, answered once their arming is durable (and their silence pass,
    /// if they started one, is done), with the pass they started, by job seq.
    reloads: Vec<(ReloadReply, Option<u64>)>,
    /// Set when the store failed while the group was being built: a commit inside it
    /// (before due timers, a fan-out batch or re-arming after a reload) may have
    /// dropped steps of any request in it, so none of them is acknowledged.
    broken: Option<Unavailable>,
}

struct TicketWaiting {
    reply: oneshot::Sender<Result<TicketAnswer, Unavailable>>,
    answer: Result<TicketAnswer, Unavailable>,
}

struct Waiting {
    reply: oneshot::Sender<Result<Vec<Ack>, Unavailable>>,
    /// Events in the request (a failed step leaves `acks` short).
    events: usize,
    acks: Vec<Ack>,
    error: Option<Unavailable>,
}

impl Writer {
    fn run(mut self) {
        while let Some(job) = self.next_job() {
            let mut group = Group::default();
            let mut stop = self.take(job, &mut group);
            while !stop && group.steps < GROUP_STEPS {
                match self.jobs.try_recv() {
                    Ok(job) => stop = self.take(job, &mut group),
                    Err(_) => break,
                }
            }
            self.finish(group);
            if stop {
                break;
            }
            self.between_groups();
        }
        tracing::debug!("writer stopped");
    }

    /// Waits for the next job; `None` once every handle is gone.
    ///
    /// Half of the seam for clock-driven work (see [`Writer::between_groups`]): a
    /// writer that also owns timers must stop waiting when the next one falls due.
    fn next_job(&mut self) -> Option<Job> {
        loop {
            // While timers fail, the backoff, not the timer index, says when to try
            // again: the index says "due now" until they run, which would spin.
            let wait = match self.timers.remaining() {
                Some(left) => left,
                None => match self.runner.next_due() {
                    Ok(Some(due)) => (due - self.clock.now()).to_std().unwrap_or_default(),
                    Ok(None) => IDLE_WAIT,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the timer index");
                        IDLE_WAIT
                    }
                },
            };
            if wait.is_zero() {
                // Work is due (a fan-out takes turns with jobs): a job already
                // waiting goes first, then one turn of the work.
                if let Ok(job) = self.jobs.try_recv() {
                    return Some(job);
                }
                self.between_groups();
                continue;
            }
            // A job, or the next timer falling due, whichever comes first.
            let waited = self.waiting.block_on(async {
                tokio::time::timeout(wait.min(IDLE_WAIT), self.jobs.recv()).await
            });
            match waited {
                Ok(job) => return job,
                Err(_) => self.between_groups(),
            }
        }
    }

    /// THE SEAM for clock-driven work (timers that fell due, campaign fan-out batches):
    /// it runs after every group is committed, synced and answered, and before the
    /// writer waits for the next job, so such work is serialised with events and never
    /// delays an acknowledgement already earned. After a failure it does nothing until
    /// the backoff is over (events still run what is due before them, and fail alike).
    fn between_groups(&mut self) {
        if self.timers.remaining().is_some_and(|left| !left.is_zero()) {
            return;
        }
        match self.run_timers() {
            Ok(()) => self.timers.succeeded(),
            Err(e) => {
                let pause = self.timers.failed();
                tracing::error!(error = %e, retry_in = ?pause, "clock-driven work failed; retrying later");
                self.health.failed(&e, self.clock.now());
                self.reopen_if_needed();
            }
        }
    }

    /// Notes a store error: an I/O error means the store must be opened again.
    fn store_failed(&mut self, e: &crate::store::StoreError) {
        if e.is_io() {
            self.reopen_needed = true;
        }
    }

    /// Opens the store again after an I/O error, between groups, so the first group
    /// after the cause is gone (a full disk freed) is stored. Until then every group
    /// fails at once with the same error, answered 503 without waiting.
    fn reopen_if_needed(&mut self) {
        if !self.reopen_needed {
            return;
        }
        match self.runner.reopen_store() {
            Ok(()) => self.reopen_needed = false,
            Err(e) => {
                tracing::error!(error = %e, "cannot open the store again; trying after the next group")
            }
        }
    }

    /// Runs what is due, commits and syncs it.
    fn run_timers(&mut self) -> Result<(), String> {
        let now = self.clock.now();
        let ran = match self.runner.run_background(now) {
            Ok(ran) => ran,
            Err(e) => {
                self.store_failed(&e);
                return Err(format!("cannot run due timers: {e}"));
            }
        };
        if ran == 0 {
            // A pass may have ended inside an arrival (at `Pace::ToEnd`), its last
            // batch committed with nothing to change.
            self.answer_finished_passes();
            return Ok(());
        }
        if let Err(e) = self.runner.commit() {
            self.store_failed(&e);
            return Err(format!("cannot commit timer steps: {e}"));
        }
        if let Err(e) = self.runner.store().sync() {
            self.store_failed(&e);
            return Err(format!("cannot sync after running timers: {e}"));
        }
        self.health.recovered();
        self.metrics.timer_steps(ran);
        if let Some(outbox) = &self.outbox {
            outbox.notify_one();
        }
        self.answer_finished_passes();
        Ok(())
    }

    /// Answers the rule swaps whose silence pass is done. Its batches were committed;
    /// should a crash lose the last ones before a sync, the pass runs on from the
    /// stored cursor at the next start.
    fn answer_finished_passes(&mut self) {
        for (seq, pass) in self.runner.take_finished_passes() {
            let (done, waiting) = std::mem::take(&mut self.awaiting_pass)
                .into_iter()
                .partition(|(waits_for, _)| *waits_for == seq);
            self.awaiting_pass = waiting;
            for (_, reply) in done {
                let _ = reply.send(Ok(Some(pass.clone())));
            }
        }
    }

    /// Adds a job to the group. Returns true for a stop request.
    fn take(&mut self, job: Job, group: &mut Group) -> bool {
        match job {
            Job::Events { events, reply } => {
                group.steps += events.len();
                let waiting = self.apply(&events, &mut group.firings, reply);
                if let Some(error) = &waiting.error {
                    group.broken.get_or_insert_with(|| error.clone());
                }
                group.waiting.push(waiting);
                false
            }
            Job::Ticket { command, reply } => {
                group.steps += 1;
                let answer = self.change_ticket(&command);
                if let Err(error) = &answer {
                    group.broken.get_or_insert_with(|| error.clone());
                }
                group.tickets.push(TicketWaiting { reply, answer });
                false
            }
            Job::SetRules { rules, reply } => {
                self.runner.set_rules(rules);
                let pass_before = self.runner.silence_pass().map(|(seq, _)| seq);
                // Campaigns and schedules are armed from their new definitions, in
                // this group: its commit is the arming's.
                if let Err(e) = self.runner.arm(self.clock.now()) {
                    tracing::error!(error = %e, "cannot arm the new rules' timers");
                    group
                        .broken
                        .get_or_insert_with(|| Unavailable(format!("cannot commit: {e}")));
                }
                let pass = self
                    .runner
                    .silence_pass()
                    .map(|(seq, _)| seq)
                    .filter(|seq| Some(*seq) != pass_before);
                group.reloads.push((reply, pass));
                false
            }
            Job::Stop => true,
        }
    }

    fn apply(
        &mut self,
        events: &[Event],
        firings: &mut Vec<crate::engine::Name>,
        reply: oneshot::Sender<Result<Vec<Ack>, Unavailable>>,
    ) -> Waiting {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let started = Instant::now();
            // The step runs at the clock's time when the writer applies it (SPEC §2.7),
            // after every timer due by then; `event.at` stays what the client said.
            let applied = self.runner.apply_event(event, self.clock.now());
            self.metrics.step(started.elapsed());
            match applied {
                Ok(Applied::Duplicate) => acks.push(Ack::Duplicate),
                Ok(Applied::Rejected(error)) => acks.push(Ack::Rejected(error)),
                Ok(Applied::Accepted(report)) => {
                    for failure in &report.failures {
                        // Ids and the error (a script may throw event data) come from
                        // clients: `?` escapes them, so none can forge a log line.
                        tracing::warn!(
                            rule = %failure.rule, at = %failure.at, member = ?failure.member,
                            event = ?event.id, error = ?failure.error, "rule failed"
                        );
                        self.metrics.rule_failure(&failure.rule);
                    }
                    firings.extend(report.fired);
                    acks.push(Ack::Accepted);
                }
                Err(e) => {
                    // The steps before this one stay in the group: if they commit, a
                    // retry of the request finds them as duplicates.
                    tracing::error!(event = ?event.id, error = %e, "cannot run a step");
                    self.store_failed(&e);
                    return Waiting {
                        reply,
                        events: events.len(),
                        acks,
                        error: Some(Unavailable(format!("store: {e}"))),
                    };
                }
            }
        }
        Waiting {
            reply,
            events: events.len(),
            acks,
            error: None,
        }
    }

    /// Commits and syncs the group, then answers every request in it.
    fn finish(&mut self, group: Group) {
        if group.waiting.is_empty() && group.tickets.is_empty() && group.reloads.is_empty() {
            return;
        }
        let mut durable = self.commit_and_sync(group.steps);
        if let (Ok(()), Some(broken)) = (&durable, group.broken) {
            durable = Err(broken);
        }
        match &durable {
            Ok(()) => self.health.recovered(),
            Err(e) => self.health.failed(&e.0, self.clock.now()),
        }
        if durable.is_ok() {
            for rule in &group.firings {
                self.metrics.firing(rule);
            }
        }
        for waiting in group.waiting {
            let answer = match (&durable, &waiting.error) {
                (Err(e), _) | (Ok(()), Some(e)) => {
                    self.metrics
                        .events(EventStatus::Unavailable, waiting.events);
                    Err(e.clone())
                }
                (Ok(()), None) => {
                    let count = |wanted: fn(&Ack) -> bool| {
                        waiting.acks.iter().filter(|a| wanted(a)).count()
                    };
                    self.metrics
                        .events(EventStatus::Accepted, count(|a| *a == Ack::Accepted));
                    self.metrics
                        .events(EventStatus::Duplicate, count(|a| *a == Ack::Duplicate));
                    self.metrics.events(
                        EventStatus::Rejected,
                        count(|a| matches!(a, Ack::Rejected(_))),
                    );
                    Ok(waiting.acks)
                }
            };
            // A client that went away still had its events stored; nothing to undo.
            let _ = waiting.reply.send(answer);
        }
        for waiting in group.tickets {
            let answer = match &durable {
                Err(e) => Err(e.clone()),
                Ok(()) => waiting.answer,
            };
            let _ = waiting.reply.send(answer);
        }
        for (reply, pass) in group.reloads {
            // The swap stands either way; the requester learns whether its campaigns
            // and schedules are armed durably (a later reload or restart arms again).
            match (&durable, pass) {
                (Err(e), _) => {
                    let _ = reply.send(Err(Unavailable(format!(
                        "the new rules run, but arming their campaigns and schedules could not be stored ({e}); the next reload or restart arms them again"
                    ))));
                }
                (Ok(()), None) => {
                    let _ = reply.send(Ok(None));
                }
                (Ok(()), Some(seq)) => {
                    // A newer pass replaced older ones: whoever waited for them now
                    // waits for it, which runs the rules in force.
                    for (waits_for, _) in &mut self.awaiting_pass {
                        *waits_for = seq;
                    }
                    self.awaiting_pass.push((seq, reply));
                }
            }
        }
        if durable.is_ok() {
            // A pass that ended inside this group (at `Pace::ToEnd`) is durable now.
            self.answer_finished_passes();
        }
        // After answering: the requests of a failed group wait for nothing more.
        self.reopen_if_needed();
    }

    fn commit_and_sync(&mut self, steps: usize) -> Result<(), Unavailable> {
        let pending = self.runner.pending();
        let started = Instant::now();
        if let Err(e) = self.runner.commit() {
            tracing::error!(error = %e, steps = pending, "commit failed; the group is not acknowledged");
            self.store_failed(&e);
            return Err(Unavailable(format!("cannot commit: {e}")));
        }
        let committed = Instant::now();
        self.metrics.commit(committed - started);
        // Also when every event was a duplicate: its earlier commit may not have been
        // synced (a failed sync answers "unavailable" but leaves the rows in sled).
        if let Err(e) = self.runner.store().sync() {
            tracing::error!(error = %e, "sync failed; the group is not acknowledged");
            self.store_failed(&e);
            return Err(Unavailable(format!("cannot make the events durable: {e}")));
        }
        self.metrics.sync(committed.elapsed());
        self.metrics.group(steps);
        if let Some(outbox) = &self.outbox {
            outbox.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
