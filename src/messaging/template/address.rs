//! `send.to` as a template: compiled into the rule set's environment next to the
//! message templates, with the same scope and strictness, and rendered with the same
//! context as the message it addresses.

use super::{add, Part, RenderError, TemplateError, Templates, MESSAGE_SCOPE};
use crate::rules::SourcePos;

/// A `send.to` is named by where it is written: two sends may write the same text
/// and still each report their own place.
fn address_name(at: &SourcePos) -> String {
    format!("to/{at}")
}

impl Templates {
    /// Compiles the `to` of a `send` action, written at `at`: the same syntax, scope and
    /// strictness as a message template.
    pub fn add_address(&mut self, text: &str, at: &SourcePos) -> Result<(), Vec<TemplateError>> {
        let name = address_name(at);
        self.starts.insert(name.clone(), at.clone());
        let part = Part {
            what: "send \"to\"".to_string(),
            at,
            scope: MESSAGE_SCOPE,
        };
        let mut errors = Vec::new();
        add(&mut self.env, name, text, &part, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Renders the `to` compiled by [`Templates::add_address`] at `at`, with the
    /// message context; surrounding whitespace is not part of an address, and an
    /// empty one is an error rather than a message to nobody.
    pub fn render_address(
        &self,
        at: &SourcePos,
        ctx: &serde_json::Value,
    ) -> Result<String, RenderError> {
        let what = || "send \"to\"".to_string();
        let text = self.render_part(&address_name(at), ctx, what)?;
        let address = text.trim();
        if address.is_empty() {
            return Err(RenderError::Failed {
                what: what(),
                at: at.clone(),
                message: "the address rendered empty".to_string(),
            });
        }
        Ok(address.to_string())
    }
}
