//! Ticket commands in the writer: `POST /v1/tickets/{id}/ack` and `/resolve` change
//! the store, so they run here, between steps, and join the open group.

use super::{Unavailable, Writer};
use crate::tickets::{self, Ticket};

/// `POST /v1/tickets/{id}/ack` or `/resolve`: what `rally.ticket.ack` / `.resolve` do.
#[derive(Clone, Debug)]
pub struct TicketCommand {
    pub id: String,
    /// Resolve; otherwise acknowledge.
    pub resolve: bool,
    pub by: Option<String>,
    pub note: Option<String>,
}

/// What became of a [`TicketCommand`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketAnswer {
    /// Changed and durable: the ticket as it now is.
    Changed(Box<Ticket>),
    /// No ticket has that id (or it is not a ticket id at all).
    NotFound(String),
    /// The ticket is past that state (already acknowledged or resolved).
    Refused(String),
}

impl Writer {
    /// Runs a ticket command; a change joins the open group.
    pub(super) fn change_ticket(
        &mut self,
        command: &TicketCommand,
    ) -> Result<TicketAnswer, Unavailable> {
        let not_found = || TicketAnswer::NotFound(format!("no ticket {:?}", command.id));
        let Some(number) = tickets::parse_id(&command.id) else {
            return Ok(not_found());
        };
        match self.ticket_step(command, number) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Ok(not_found()),
            Err(e) => {
                tracing::error!(ticket = ?command.id, error = %e, "cannot change a ticket");
                self.store_failed(&e);
                Err(Unavailable(format!("cannot read the store: {e}")))
            }
        }
    }

    /// The command's step; `None` when there is no such ticket.
    fn ticket_step(
        &mut self,
        command: &TicketCommand,
        number: u64,
    ) -> Result<Option<TicketAnswer>, crate::store::StoreError> {
        // Like an event (SPEC §2.7): what fell due by now — an SLA climbing this very
        // ticket — runs first, and the change happens at the step clock.
        let now = self.runner.arrive(self.clock.now())?;
        if self.runner.ticket(number)?.is_none() {
            return Ok(None);
        }
        let change = self.runner.ticket_change(
            &command.id,
            command.resolve,
            command.by.as_deref(),
            command.note.as_deref(),
            now,
        )?;
        match change {
            Ok(mut write) => {
                let entry = crate::runner::Entry::Ticket {
                    at: now,
                    ticket: command.id.clone(),
                    resolve: command.resolve,
                    by: command.by.clone(),
                    note: command.note.clone(),
                };
                self.runner.record(&mut write, entry);
                self.runner.push_write(write);
                // The runner keeps the group's tickets: this is the one just changed.
                Ok(self
                    .runner
                    .ticket(number)?
                    .map(|ticket| TicketAnswer::Changed(Box::new(ticket))))
            }
            Err(refusal) => Ok(Some(TicketAnswer::Refused(refusal))),
        }
    }
}
