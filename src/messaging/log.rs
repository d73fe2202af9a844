//! The `log` channel: the message goes to the log (target `rally::messages`) instead of
//! anywhere else. For trying rules out, and for operators who forward logs themselves.

use super::channel::Outgoing;

/// Everything but the channel id carries client data (ids, profile fields rendered
/// into the text): `?` writes it escaped, so a line break in a member's name cannot
/// forge a log line, and a multi-line body stays on the message's one line.
pub(super) fn send(msg: &Outgoing) {
    tracing::info!(
        target: "rally::messages",
        key = ?msg.key,
        channel = %msg.channel,
        to = ?msg.to,
        member = ?msg.member.as_deref().unwrap_or("-"),
        subject = ?msg.subject,
        html = msg.html,
        body = ?msg.body,
        "message"
    );
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `send` writes to the log for a message to m-42 with `subject` and `body`.
    fn logged(subject: &str, body: &str) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let msg = Outgoing {
            key: "out-1".to_string(),
            channel: "console".to_string(),
            to: "lin@example.com".to_string(),
            subject: subject.to_string(),
            body: body.to_string(),
            html: false,
            member: Some("m-42".to_string()),
            webhook_body: None,
        };
        tracing::subscriber::with_default(subscriber, || send(&msg));
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_logged_message_is_written_under_the_messages_target() {
        let logged = logged("Welcome", "Hello Lin");
        assert!(logged.contains("rally::messages"), "{logged}");
        assert!(logged.contains(r#"subject="Welcome""#), "{logged}");
        assert!(logged.contains(r#"body="Hello Lin""#), "{logged}");
        assert!(logged.contains(r#"member="m-42""#), "{logged}");
    }

    #[test]
    fn a_line_break_in_a_logged_message_is_escaped_onto_its_one_line() {
        let logged = logged("Hi Lin\nERROR rally: forged", "Hello\nLin");
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(logged.contains(r#"body="Hello\nLin""#), "{logged}");
    }
}
