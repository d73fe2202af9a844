//! One queued message as the `outbox` tree stores it (JSON), and its delivery status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::member::rfc3339;
use crate::messaging::Outgoing;
use crate::store::Verdict;

/// A message queued by a step, and what became of it. Written by the engine in the
/// step's transaction; after that only the dispatcher changes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// The row's key in the `outbox` tree.
    pub seq: u64,
    /// `rule|trigger-instance|member`: the same message always gets the same key, so
    /// re-running a step cannot queue it twice, and receivers can drop a repeated
    /// delivery (it becomes the SMTP Message-ID and the webhook `Idempotency-Key`).
    pub key: String,
    pub member: Option<String>,
    /// The rule that sent it; `None` for escalation notifications.
    pub rule: Option<String>,
    pub channel: String,
    pub template: Option<String>,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `body` is HTML.
    pub html: bool,
    /// The channel's rendered JSON body, for webhooks with a body template.
    pub webhook_body: Option<String>,
    /// A marketing message: the member's consent is checked again when it goes out.
    /// (Staff notifications always go out. Rows stored before this field read false.)
    #[serde(default)]
    pub marketing: bool,
    pub status: Status,
    /// Not delivered before this instant: the end of quiet hours, or the next retry.
    pub due: DateTime<Utc>,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When the first attempt failed: retries stop the channel's `retry.for` after it.
    /// `None` until then, and again after a manual retry (which starts a new window).
    #[serde(default)]
    pub first_failed_at: Option<DateTime<Utc>>,
    /// Why the last failed attempt failed (kept after a later success).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// SPEC §2.6 message statuses, plus `pending` (waiting for its first or next attempt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting to be delivered at `due` (first attempt or a retry).
    Pending,
    /// Held by quiet hours until `due`.
    Deferred,
    Sent,
    /// Given up: a permanent error, or the last retry failed. See `last_error`.
    Failed,
    /// Over `max_per_day`: recorded, never delivered.
    Capped,
    /// The member unsubscribed or left: recorded, never delivered.
    Suppressed,
    /// Its channel was removed by a reload: kept, not delivered, and back to `pending`
    /// once a reload brings the channel back.
    Held,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Deferred => "deferred",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Capped => "capped",
            Status::Suppressed => "suppressed",
            Status::Held => "held",
        }
    }

    /// Still to be delivered: the dispatcher's business.
    pub fn is_waiting(self) -> bool {
        matches!(self, Status::Pending | Status::Deferred)
    }

    /// Not final: may still go out (waiting, or held until its channel returns).
    pub fn is_open(self) -> bool {
        self.is_waiting() || self == Status::Held
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("cannot encode outbox row {seq}: {source}")]
    Encode {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("corrupt outbox row {seq}: {source}")]
    Decode {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
}

impl OutboxRow {
    /// The bytes stored in the `outbox` tree.
    pub fn encode(&self) -> Result<Vec<u8>, RowError> {
        serde_json::to_vec(self).map_err(|source| RowError::Encode {
            seq: self.seq,
            source,
        })
    }

    /// Reads a stored row; `seq` is its key, and wins over a `seq` inside the value.
    pub fn decode(seq: u64, bytes: &[u8]) -> Result<OutboxRow, RowError> {
        let mut row: OutboxRow =
            serde_json::from_slice(bytes).map_err(|source| RowError::Decode { seq, source })?;
        row.seq = seq;
        Ok(row)
    }

    /// The member a stored row is addressed to, read without building the rest of the
    /// row: the store indexes rows by member as they are committed, so this runs for
    /// every message a step queues.
    pub fn member_of(bytes: &[u8]) -> Result<Option<String>, serde_json::Error> {
        #[derive(Deserialize)]
        struct Addressee {
            #[serde(default)]
            member: Option<String>,
        }
        serde_json::from_slice::<Addressee>(bytes).map(|row| row.member)
    }

    /// When the row reached its final status, the time retention counts from; `None`
    /// while it may still go out (waiting or held). Dated by the last thing that
    /// happened to it, not by when it was queued, so a message that failed after a
    /// week of retries, or was retried by hand, is kept for the full period after
    /// that: a failed row's last attempt was due at `due`, and a deferred row that
    /// was suppressed when it came due was suppressed at `due`.
    pub fn settled_at(&self) -> Option<DateTime<Utc>> {
        if self.status.is_open() {
            return None;
        }
        let latest = [self.sent_at, self.first_failed_at, Some(self.due)]
            .into_iter()
            .flatten()
            .fold(self.created_at, DateTime::max);
        Some(latest)
    }

    /// What retention does with the stored row `bytes` when messages settled before
    /// `before` are to go: a final row settled before then is removed; an open one is
    /// kept however old; a row queued at or after `before` ends the pass, since rows
    /// are numbered in the order steps queued them and nothing after it is older. A
    /// row that does not decode is kept (and is reported where it is read).
    pub fn retention(seq: u64, bytes: &[u8], before: DateTime<Utc>) -> Verdict {
        let Ok(row) = OutboxRow::decode(seq, bytes) else {
            return Verdict::Keep;
        };
        if row.created_at >= before {
            return Verdict::Stop;
        }
        match row.settled_at() {
            Some(settled) if settled < before => Verdict::Remove,
            _ => Verdict::Keep,
        }
    }

    /// What the channel delivers.
    pub fn to_outgoing(&self) -> Outgoing {
        Outgoing {
            key: self.key.clone(),
            channel: self.channel.clone(),
            to: self.to.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            html: self.html,
            member: self.member.clone(),
            webhook_body: self.webhook_body.clone(),
        }
    }

    /// The SPEC §3.1 `messages` entry: `at` is when it was sent, or, not sent yet,
    /// when it is due (for `capped`/`suppressed`, when it was recorded). A failed
    /// message also shows its attempts and last error.
    pub fn view(&self) -> Value {
        let at = match self.status {
            Status::Sent => self.sent_at.unwrap_or(self.due),
            Status::Pending | Status::Deferred | Status::Held => self.due,
            Status::Failed | Status::Capped | Status::Suppressed => {
                self.sent_at.unwrap_or(self.created_at)
            }
        };
        let mut view = json!({
            "member": self.member,
            "rule": self.rule,
            "channel": self.channel,
            "template": self.template,
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
            "at": rfc3339(at),
            "queued_at": rfc3339(self.created_at),
            "status": self.status.as_str(),
        });
        match self.status {
            Status::Failed => {
                view["attempts"] = json!(self.attempts);
                view["error"] = json!(self.last_error);
            }
            Status::Suppressed => view["error"] = json!(self.last_error),
            _ => {}
        }
        if self.status == Status::Held {
            view["held"] = json!("channel removed");
        }
        view
    }

    /// The entry in a member's history (`GET /v1/members/{id}/history`): the `sim`
    /// entry plus `id`, the outbox sequence number that `POST /v1/messages/{id}/retry`
    /// takes.
    pub fn history_view(&self) -> Value {
        let mut view = self.view();
        view["id"] = json!(self.seq);
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn row() -> OutboxRow {
        OutboxRow {
            seq: 7,
            key: "silent-7d|2026-11-10|m-42".to_string(),
            member: Some("m-42".to_string()),
            rule: Some("silent-7d".to_string()),
            channel: "email".to_string(),
            template: Some("miss_you".to_string()),
            to: "lin@example.com".to_string(),
            subject: "We miss you".to_string(),
            body: "Come back".to_string(),
            html: false,
            webhook_body: None,
            marketing: true,
            status: Status::Deferred,
            due: utc("2026-11-11T00:00:00Z"),
            attempts: 0,
            first_failed_at: None,
            last_error: None,
            created_at: utc("2026-11-10T15:00:00Z"),
            sent_at: None,
        }
    }

    #[test]
    fn a_row_survives_encoding_and_decoding() {
        let row = row();
        assert_eq!(OutboxRow::decode(7, &row.encode().unwrap()).unwrap(), row);
    }

    #[test]
    fn statuses_are_stored_in_lowercase() {
        let json: Value = serde_json::from_slice(&row().encode().unwrap()).unwrap();
        assert_eq!(json["status"], "deferred");
        assert_eq!(json["due"], "2026-11-11T00:00:00Z");
    }

    #[test]
    fn a_corrupt_row_names_its_sequence_number() {
        let err = OutboxRow::decode(9, b"{not json").unwrap_err();
        assert!(
            err.to_string().starts_with("corrupt outbox row 9:"),
            "{err}"
        );
    }

    #[test]
    fn the_outgoing_message_carries_the_key_and_content() {
        let out = row().to_outgoing();
        assert_eq!(out.key, "silent-7d|2026-11-10|m-42");
        assert_eq!(out.channel, "email");
        assert_eq!(out.to, "lin@example.com");
        assert_eq!(out.member.as_deref(), Some("m-42"));
    }

    #[test]
    fn the_view_of_a_deferred_message_is_dated_when_it_is_due() {
        let view = row().view();
        assert_eq!(view["status"], "deferred");
        assert_eq!(view["at"], "2026-11-11T00:00:00Z");
        assert_eq!(view["template"], "miss_you");
        assert!(view.get("error").is_none());
    }

    #[test]
    fn the_view_of_a_failed_message_shows_its_last_error() {
        let failed = OutboxRow {
            status: Status::Failed,
            attempts: 8,
            last_error: Some("smtp 127.0.0.1:25: connection refused".to_string()),
            ..row()
        };
        let view = failed.view();
        assert_eq!(view["status"], "failed");
        assert_eq!(view["attempts"], 8);
        assert_eq!(view["error"], "smtp 127.0.0.1:25: connection refused");
    }

    #[test]
    fn a_held_message_says_its_channel_was_removed() {
        let held = OutboxRow {
            status: Status::Held,
            ..row()
        };
        let view = held.view();
        assert_eq!(view["status"], "held");
        assert_eq!(view["held"], "channel removed");
        assert!(Status::Held.is_open() && !Status::Held.is_waiting());
    }

    #[test]
    fn the_history_entry_carries_the_message_id() {
        let view = row().history_view();
        assert_eq!(view["id"], 7);
        assert!(row().view().get("id").is_none(), "sim's entries have no id");
    }

    #[test]
    fn the_member_of_a_stored_row_is_read_without_the_rest() {
        let bytes = row().encode().unwrap();
        assert_eq!(
            OutboxRow::member_of(&bytes).unwrap().as_deref(),
            Some("m-42")
        );
        let staff = OutboxRow {
            member: None,
            ..row()
        };
        assert_eq!(
            OutboxRow::member_of(&staff.encode().unwrap()).unwrap(),
            None
        );
        assert!(OutboxRow::member_of(b"not json").is_err());
    }

    #[test]
    fn only_a_final_row_is_settled_and_it_is_dated_when_it_settled() {
        assert_eq!(row().settled_at(), None, "deferred");
        for status in [Status::Pending, Status::Held] {
            assert_eq!(OutboxRow { status, ..row() }.settled_at(), None);
        }
        let sent = OutboxRow {
            status: Status::Sent,
            sent_at: Some(utc("2026-11-12T08:00:00Z")),
            ..row()
        };
        assert_eq!(sent.settled_at(), Some(utc("2026-11-12T08:00:00Z")));
        let suppressed_when_due = OutboxRow {
            status: Status::Suppressed,
            ..row()
        };
        assert_eq!(
            suppressed_when_due.settled_at(),
            Some(utc("2026-11-11T00:00:00Z"))
        );
        let capped_when_queued = OutboxRow {
            status: Status::Capped,
            due: utc("2026-11-10T15:00:00Z"),
            ..row()
        };
        assert_eq!(
            capped_when_queued.settled_at(),
            Some(utc("2026-11-10T15:00:00Z"))
        );
    }

    #[test]
    fn retention_removes_only_final_rows_settled_before_the_cutoff() {
        let before = utc("2026-12-01T00:00:00Z");
        let verdict =
            |row: OutboxRow| OutboxRow::retention(row.seq, &row.encode().unwrap(), before);
        let sent = |at: &str| OutboxRow {
            status: Status::Sent,
            sent_at: Some(utc(at)),
            ..row()
        };
        assert_eq!(verdict(sent("2026-11-11T00:00:00Z")), Verdict::Remove);
        assert_eq!(
            verdict(sent("2026-12-02T00:00:00Z")),
            Verdict::Keep,
            "sent late"
        );
        for status in [Status::Pending, Status::Deferred, Status::Held] {
            assert_eq!(verdict(OutboxRow { status, ..row() }), Verdict::Keep);
        }
        for status in [Status::Failed, Status::Suppressed, Status::Capped] {
            assert_eq!(verdict(OutboxRow { status, ..row() }), Verdict::Remove);
        }
        let queued_later = OutboxRow {
            created_at: before,
            ..sent("2026-12-01T00:00:00Z")
        };
        assert_eq!(verdict(queued_later), Verdict::Stop);
        assert_eq!(OutboxRow::retention(1, b"{not json", before), Verdict::Keep);
    }

    #[test]
    fn a_row_stored_before_retry_windows_reads_as_never_failed() {
        let mut json: Value = serde_json::from_slice(&row().encode().unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("first_failed_at");
        let read = OutboxRow::decode(7, json.to_string().as_bytes()).unwrap();
        assert_eq!(read.first_failed_at, None);
    }
}
