//! The `log` channel: the message goes to the log (target `rally::messages`) instead of
//! anywhere else. For trying rules out, and for operators who forward logs themselves.

use super::channel::Outgoing;

pub(super) fn send(msg: &Outgoing) {
    tracing::info!(
        target: "rally::messages",
        key = %msg.key,
        channel = %msg.channel,
        to = %msg.to,
        member = msg.member.as_deref().unwrap_or(""),
        subject = %msg.subject,
        html = msg.html,
        body = %msg.body,
        "message"
    );
}
