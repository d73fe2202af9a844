//! Messages (SPEC §2.6) at the edges: rendering templates and delivering the result
//! over SMTP, webhooks or the log. Which messages to send, and when, is decided by the
//! engine and the outbox dispatcher; this module only renders and sends, and tells the
//! dispatcher whether a failure is worth retrying.

pub mod channel;
mod log;
pub mod smtp;
pub mod template;
pub mod webhook;

pub use channel::{deliver, ChannelError, Channels, DeliveryError, DeliveryErrorKind, Outgoing};
pub use template::{RenderError, Rendered, TemplateError, Templates};
