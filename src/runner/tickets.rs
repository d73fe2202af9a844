//! Tickets and the outbox in the shell: numbering outbox rows and tickets, SLA timers,
//! and `rally.ticket.ack` / `rally.ticket.resolve`.

use chrono::{DateTime, Utc};

use super::Runner;
use crate::event::Event;
use crate::outbox::OutboxRow;
use crate::store::keys::TimerKey;
use crate::store::{StepWrite, Store, StoreError};
use crate::tickets::{self, Climb, Ticket, TicketStatus};

/// The timer kind of escalation SLA deadlines.
pub const SLA: &str = "sla";

/// A ticket command the ticket accepts: its change, and the member it runs for.
pub(super) struct AcceptedCommand {
    pub write: StepWrite,
    /// The ticket's member (the ticket exists, so it has one).
    pub member: String,
}

impl Runner {
    /// Numbers `rows` as the outbox's next rows, in place, and adds them to `write`:
    /// whatever records the rows afterwards (the journal) records them as the outbox
    /// holds them, number and all.
    pub(super) fn queue_messages(&mut self, write: &mut StepWrite, rows: &mut [OutboxRow]) {
        self.metrics.queued(rows, self.rules.settings.timezone);
        for row in rows {
            row.seq = self.next_outbox;
            self.next_outbox += 1;
            match row.encode() {
                Ok(bytes) => write.outbox_put.push((row.seq, bytes)),
                Err(e) => {
                    tracing::error!(key = %row.key, error = %e, "cannot encode an outbox row")
                }
            }
        }
    }

    /// Stores `ticket` in `write` and arms its SLA timer when it has a deadline.
    pub(super) fn put_ticket(
        &mut self,
        write: &mut StepWrite,
        ticket: Ticket,
        deadline: Option<DateTime<Utc>>,
    ) {
        if let Some(deadline) = deadline {
            write.timers_set.push((
                TimerKey::new(deadline.timestamp_millis(), SLA, ticket.id.clone()),
                Vec::new(),
            ));
        }
        if let Ok(bytes) = serde_json::to_vec(&ticket) {
            write.tickets_put.push((ticket.number, bytes));
        }
        self.open.put_ticket(ticket);
    }

    /// A ticket as the next step would see it.
    pub fn ticket(&self, number: u64) -> Result<Option<Ticket>, StoreError> {
        if let Some(ticket) = self.open.ticket(number) {
            return Ok(Some(ticket.clone()));
        }
        match self.store.ticket(number)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt("tickets", &number.to_be_bytes(), e)),
            None => Ok(None),
        }
    }

    /// Every ticket, oldest first.
    pub fn all_tickets(&self) -> Result<Vec<Ticket>, StoreError> {
        stored_tickets(&self.store)
    }

    /// For `rally.ticket.ack` / `rally.ticket.resolve`: the ticket's change and the
    /// ticket's member, or why the command is refused. `None` for any other event.
    /// A `member` on the event must be the ticket's: staff acting on a ticket send
    /// none, and an event naming someone else is most likely aimed at the wrong ticket.
    pub(super) fn ticket_command(
        &mut self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<Option<Result<AcceptedCommand, String>>, StoreError> {
        let resolve = match event.kind.as_str() {
            "rally.ticket.ack" => false,
            "rally.ticket.resolve" => true,
            _ => return Ok(None),
        };
        let id = event.data_str("ticket").unwrap_or_default();
        let owner = tickets::parse_id(id)
            .map(|number| self.ticket(number))
            .transpose()?
            .flatten()
            .map(|ticket| ticket.member);
        if let (Some(sent), Some(owner)) = (event.member.as_deref(), owner.as_deref()) {
            if sent != owner {
                return Ok(Some(Err(format!(
                    "member: {sent:?} is not the member of ticket {id} (leave member out, \
                     or give the ticket's own)"
                ))));
            }
        }
        let by = event.data_str("by");
        let note = event.data_str("note");
        let change = self.ticket_change(id, resolve, by, note, now)?;
        Ok(Some(change.map(|write| AcceptedCommand {
            write,
            member: owner.unwrap_or_default(),
        })))
    }

    /// Acknowledges or resolves ticket `id`: the write to commit, or why not.
    pub fn ticket_change(
        &mut self,
        id: &str,
        resolve: bool,
        by: Option<&str>,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<StepWrite, String>, StoreError> {
        let Some(number) = tickets::parse_id(id) else {
            return Ok(Err(format!(
                "data.ticket: {id:?} is not a ticket id (T-<n>)"
            )));
        };
        let Some(mut ticket) = self.ticket(number)? else {
            return Ok(Err(format!("data.ticket: no ticket {id}")));
        };
        let result = if resolve {
            tickets::resolve(&mut ticket, by, note, now)
        } else {
            tickets::ack(&mut ticket, by, note, now)
        };
        if let Err(e) = result {
            return Ok(Err(e.to_string()));
        }
        let mut write = StepWrite::default();
        self.metrics
            .ticket_handled(&ticket, resolve, now, self.rules.settings.timezone);
        self.put_ticket(&mut write, ticket, None);
        Ok(Ok(write))
    }

    /// An SLA deadline ran out: climb one level and notify it, if still open.
    pub(super) fn pop_sla(&mut self, key: TimerKey, due: DateTime<Utc>) -> Result<(), StoreError> {
        let mut write = StepWrite {
            timers_clear: vec![key.clone()],
            ..StepWrite::default()
        };
        let rules = self.rules.clone();
        let ticket = tickets::parse_id(&key.id)
            .map(|n| self.ticket(n))
            .transpose()?
            .flatten();
        if let Some(mut ticket) = ticket.filter(|t| t.status == TicketStatus::Open) {
            if let Some(policy) = rules.escalations.get(&ticket.policy) {
                if let Climb::Notified {
                    level,
                    next_deadline,
                } = tickets::climb(&mut ticket, policy, due)
                {
                    // Climbing to `level` means the SLA of the level below ran out.
                    self.metrics
                        .breach(level.saturating_sub(1), due, self.rules.settings.timezone);
                    let member = self
                        .member(&ticket.member)?
                        .unwrap_or_else(|| crate::member::Member::new(&ticket.member));
                    let mut rows: Vec<OutboxRow> =
                        crate::engine::notification(&self.rules, &member, &ticket, due)
                            .into_iter()
                            .collect();
                    self.queue_messages(&mut write, &mut rows);
                    if let Some(journal) = &mut self.journal {
                        journal.push(super::Journaled {
                            messages: rows,
                            ..super::Journaled::default()
                        });
                    }
                    self.put_ticket(&mut write, ticket, next_deadline);
                }
            }
        }
        self.open.push(write);
        Ok(())
    }
}

/// Every committed ticket in `store`, oldest first (for readers beside the runner).
pub fn stored_tickets(store: &Store) -> Result<Vec<Ticket>, StoreError> {
    store
        .tickets()?
        .into_iter()
        .map(|(number, bytes)| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("tickets", &number.to_be_bytes(), e))
        })
        .collect()
}
