//! `send` and `escalate` (SPEC §2.3, §2.5, §2.6): render the message now, decide its
//! fate under the member's messaging policy, and queue it as an outbox row committed
//! with the step. Delivery happens later, from the durable outbox.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::explain::Effect;
use super::run::{campaign_bindings, Failed, Run};
use crate::member::{rfc3339, Member};
use crate::outbox::{OutboxRow, Status};
use crate::policy::{self, Verdict};
use crate::rules::{Address, ChannelKind, Rule, RuleSet, Severity};
use crate::tickets::{self, Ticket};

/// A ticket a step opened, with the instant its first level's SLA runs out.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenedTicket {
    pub ticket: Ticket,
    pub deadline: Option<DateTime<Utc>>,
}

/// What templates see as `member`: the public view, the id, `left` and
/// `unsubscribed`, and every attribute at the top level (`member.name`,
/// `member.email`).
pub fn member_context(member: &Member) -> Value {
    let mut map = match member.view() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    // Always present, as in Rhai: `{% if not member.left %}` must not hit an undefined
    // value for the members who never left.
    map.insert("left".into(), Value::Bool(member.left));
    map.insert("unsubscribed".into(), Value::Bool(member.unsubscribed));
    map.insert(
        "points_expiring".into(),
        member.points_expiring_json().unwrap_or(Value::Null),
    );
    for (key, value) in &member.attrs {
        map.entry(key.clone()).or_insert_with(|| value.clone());
    }
    map.insert("id".into(), Value::String(member.id.to_string()));
    Value::Object(map)
}

/// What templates see: `member`, `event`, `campaign`, `ticket`, `now`.
fn message_context(
    rules: &RuleSet,
    member: &Member,
    event: Option<&crate::event::Event>,
    ticket: Option<&Ticket>,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "member": member_context(member),
        "event": event.map(|e| e.to_json()).unwrap_or(Value::Null),
        "campaign": campaign_bindings(rules, now),
        "ticket": ticket.map(|t| serde_json::to_value(t).unwrap_or(Value::Null)).unwrap_or(Value::Null),
        "now": rfc3339(now),
    })
}

impl Run<'_> {
    fn message_context(&self, ticket: Option<&Ticket>) -> Value {
        message_context(self.rules(), &self.member, self.event, ticket, self.now())
    }

    /// The trigger instance in outbox keys: the event, or the instant of a timer.
    fn instance(&self) -> String {
        match self.event {
            Some(event) => format!("e:{}", event.id),
            None => format!("t:{}", self.now().timestamp_millis()),
        }
    }

    /// Queues a message from `rule` to the member: marketing, or — `transactional` —
    /// one the member needs whatever their consent and the hour (a redemption code),
    /// which the messaging policy does not hold back and which counts against no cap.
    pub fn send(
        &mut self,
        rule: &Rule,
        template: &str,
        channel: &str,
        to: Option<&Address>,
        transactional: bool,
    ) -> Result<(), Failed> {
        let marketing = !transactional;
        let rules = self.rules();
        let Some(channel_def) = rules.channels.get(channel) else {
            return Err(Failed::new(format!("unknown channel {channel:?}")));
        };
        if !rules.templates.contains_key(template) {
            return Err(Failed::new(format!("unknown template {template:?}")));
        }
        let ctx = self.message_context(None);
        let rendered = rules
            .messages
            .render(template, &ctx)
            .map_err(|e| Failed::new(format!("template {template:?}: {e}")))?;
        let recipient = match (to, &channel_def.kind) {
            (Some(to), _) => Some(
                rules
                    .messages
                    .render_address(&to.at, &ctx)
                    .map_err(|e| Failed::new(e.to_string()))?,
            ),
            (None, ChannelKind::Smtp(_)) => self.member.attr_str("email").map(str::to_string),
            (None, _) => Some(self.member.id.to_string()),
        };
        let webhook_body = webhook_body(
            rules,
            channel,
            ctx,
            &rendered.subject,
            &rendered.body,
            recipient.as_deref(),
        )
        .map_err(Failed::new)?;
        let zone = self.zone();
        let now = self.now();
        let verdict = recipient.as_ref().map(|_| {
            policy::decide(
                &self.member,
                &rules.settings.messaging,
                zone,
                now,
                marketing,
            )
        });
        let (status, due, last_error) = match verdict {
            None => (
                Status::Failed,
                now,
                Some("the member has no `email` attribute to send to".to_string()),
            ),
            Some(Verdict::Send) => (Status::Pending, now, None),
            Some(Verdict::Defer { until }) => (Status::Deferred, until, None),
            Some(Verdict::Capped) => (Status::Capped, now, None),
            Some(Verdict::Suppressed(why)) => {
                (Status::Suppressed, now, Some(format!("member {why}")))
            }
        };
        self.effect(|_| Effect::Message {
            template: template.to_string(),
            channel: channel.to_string(),
            to: recipient.clone().unwrap_or_default(),
            status: status.as_str().to_string(),
            due,
            reason: policy_reason(&rules.settings.messaging, zone, verdict)
                .or_else(|| last_error.clone()),
        });
        if marketing && matches!(status, Status::Pending | Status::Deferred) {
            policy::count_sent(&mut self.member, zone, due);
        }
        let n = self.messages.len();
        self.messages.push(OutboxRow {
            seq: 0,
            key: format!("{}|{}|{}|{n}", rule.id, self.instance(), self.member.id),
            member: Some(self.member.id.to_string()),
            rule: Some(rule.id.clone()),
            channel: channel.to_string(),
            template: Some(template.to_string()),
            to: recipient.unwrap_or_default(),
            subject: rendered.subject,
            body: rendered.body,
            html: rendered.html,
            webhook_body,
            marketing,
            status,
            due,
            attempts: 0,
            first_failed_at: None,
            last_error,
            created_at: now,
            sent_at: None,
        });
        Ok(())
    }

    /// Opens a ticket for the member and notifies its policy's first level.
    pub fn escalate(
        &mut self,
        rule: &Rule,
        policy_id: &str,
        severity: Severity,
        summary: &str,
    ) -> Result<(), Failed> {
        let rules = self.rules();
        let Some(policy) = rules.escalations.get(policy_id) else {
            return Err(Failed::new(format!(
                "unknown escalation policy {policy_id:?}"
            )));
        };
        let Some(number) = self.ctx.ticket_number(self.tickets.len()) else {
            // Asked for: the step runs again with a number granted.
            self.shorts.push(crate::shares::Short::Tickets);
            return Err(Failed::new(
                "no ticket number is granted to this partition yet",
            ));
        };
        let (ticket, deadline) = tickets::open(
            number,
            &self.member.id,
            policy,
            severity,
            summary,
            self.now(),
        );
        let row = self.notification(&ticket, Some(&rule.id))?;
        self.effect(|_| Effect::Ticket {
            id: ticket.id.clone(),
            policy: policy_id.to_string(),
            severity: severity.as_str().to_string(),
        });
        self.messages.push(row);
        self.tickets.push(OpenedTicket { ticket, deadline });
        Ok(())
    }

    /// The staff notification of the level a ticket has reached.
    fn notification(&self, ticket: &Ticket, rule: Option<&str>) -> Result<OutboxRow, Failed> {
        notification_row(self.rules(), &self.member, ticket, rule, self.now()).map_err(Failed::new)
    }
}

/// The staff notification of the level `ticket` has reached (an SLA climb), or why it
/// cannot be built (the policy lost that level in a reload).
pub fn notification(
    rules: &RuleSet,
    member: &Member,
    ticket: &Ticket,
    now: DateTime<Utc>,
) -> Option<OutboxRow> {
    match notification_row(rules, member, ticket, None, now) {
        Ok(row) => Some(row),
        Err(message) => {
            tracing::warn!(ticket = %ticket.id, "cannot notify: {message}");
            None
        }
    }
}

/// Staff messages are not subject to members' messaging policies.
fn notification_row(
    rules: &RuleSet,
    member: &Member,
    ticket: &Ticket,
    rule: Option<&str>,
    now: DateTime<Utc>,
) -> Result<OutboxRow, String> {
    let policy = rules
        .escalations
        .get(&ticket.policy)
        .ok_or_else(|| format!("unknown escalation policy {:?}", ticket.policy))?;
    let level = tickets::current_level(ticket, policy)
        .ok_or_else(|| format!("policy {:?} has no level {}", ticket.policy, ticket.level))?;
    let (subject, body, html) = match &level.template {
        Some(template) => {
            let ctx = message_context(rules, member, None, Some(ticket), now);
            let rendered = rules
                .messages
                .render(template, &ctx)
                .map_err(|e| format!("template {template:?}: {e}"))?;
            (rendered.subject, rendered.body, rendered.html)
        }
        None => (
            format!("[{}] {} (level {}): {}", ticket.severity.as_str(), ticket.id, ticket.level, ticket.summary),
            format!(
                "Ticket {} for member {} ({} severity) needs attention: {}\nOpened {}; now at level {} of policy {}.",
                ticket.id,
                ticket.member,
                ticket.severity.as_str(),
                ticket.summary,
                rfc3339(ticket.opened_at),
                ticket.level,
                ticket.policy
            ),
            false,
        ),
    };
    // A hook such as WeCom's takes only its own JSON: notifications go out in the
    // channel's body template like every other message on it.
    let ctx = message_context(rules, member, None, Some(ticket), now);
    let webhook_body = webhook_body(rules, &level.channel, ctx, &subject, &body, Some(&level.to))?;
    Ok(OutboxRow {
        seq: 0,
        key: format!("{}|level{}|{}", ticket.id, ticket.level, ticket.member),
        member: Some(ticket.member.clone()),
        rule: rule.map(str::to_string),
        channel: level.channel.clone(),
        template: level.template.clone(),
        to: level.to.clone(),
        subject,
        body,
        html,
        webhook_body,
        marketing: false,
        status: Status::Pending,
        due: now,
        attempts: 0,
        first_failed_at: None,
        last_error: None,
        created_at: now,
        sent_at: None,
    })
}

/// The body a webhook channel with a body template sends for a message: the template
/// rendered with the message's scope plus `subject`, `body`, `to` and `channel`.
/// `None` for channels without one (delivery sends the default JSON).
fn webhook_body(
    rules: &RuleSet,
    channel: &str,
    mut ctx: Value,
    subject: &str,
    body: &str,
    to: Option<&str>,
) -> Result<Option<String>, String> {
    if !rules.messages.has_webhook_body(channel) {
        return Ok(None);
    }
    if let Value::Object(map) = &mut ctx {
        map.insert("subject".into(), Value::String(subject.to_string()));
        map.insert("body".into(), Value::String(body.to_string()));
        map.insert("to".into(), json!(to));
        map.insert("channel".into(), Value::String(channel.to_string()));
    }
    rules
        .messages
        .render_webhook_body(channel, &ctx)
        .map(Some)
        .map_err(|e| format!("channel {channel:?} body: {e}"))
}

/// Why the messaging policy decided as it did, in words, for the trace: the quiet
/// hours a message waits out, the `max_per_day` used up, the consent withheld.
fn policy_reason(
    policy: &crate::rules::MessagingPolicy,
    zone: chrono_tz::Tz,
    verdict: Option<Verdict>,
) -> Option<String> {
    let quiet = || {
        policy
            .quiet_hours
            .map(|(start, end)| format!("{}-{}", start.format("%H:%M"), end.format("%H:%M")))
            .unwrap_or_default()
    };
    match verdict? {
        Verdict::Send => None,
        Verdict::Defer { until } => Some(format!(
            "quiet hours {} in {zone}: held until {}",
            quiet(),
            rfc3339(until)
        )),
        Verdict::Capped => Some(format!(
            "max_per_day {} already reached for the member-local day ({zone})",
            policy.max_per_day.unwrap_or_default()
        )),
        Verdict::Suppressed(why) => Some(format!("no consent to marketing: the member {why}")),
    }
}
