//! Message templates (SPEC §2 `templates`, §2.6): every template of a rule set and every
//! webhook body template, compiled once into one minijinja environment.
//!
//! Compiling catches what can be caught before any message is sent: syntax errors, and
//! top-level variables that no render context provides (`{{ membr.name }}`), each at its
//! file and line. Rendering is strict — an undefined attribute is an error, never an
//! empty string — and bounded by fuel, so no template can stall the dispatcher, and by
//! size (see `bounds`), so none can exhaust memory. Only the
//! bodies of HTML templates are auto-escaped: a subject is a header, and plain text or
//! a JSON webhook body must not come out full of `&amp;`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::rules::{Channel, ChannelKind, RuleError, SourcePos, Template};

/// Instructions one render may execute. Generous for any real message (a loop over a
/// few hundred items), small enough that a runaway template fails in milliseconds.
pub const FUEL: u64 = 200_000;

/// What message templates can refer to.
pub const MESSAGE_SCOPE: &[&str] = &["member", "event", "campaign", "ticket", "now"];

/// What webhook body templates can refer to: the message scope plus the rendered message.
pub const WEBHOOK_SCOPE: &[&str] = &[
    "member", "event", "campaign", "ticket", "now", "subject", "body", "to", "channel", "message",
];

/// Every template of a rule set, compiled. Immutable and `Send + Sync`: share it in an
/// `Arc` with the rule set it was compiled for.
pub struct Templates {
    env: Environment<'static>,
    /// Template id → whether its body is HTML.
    messages: BTreeMap<String, bool>,
    /// Webhook channels that have a body template.
    webhooks: BTreeSet<String>,
    /// Environment name → where its text starts, so a render error points at the file.
    starts: BTreeMap<String, SourcePos>,
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
    /// The body is HTML (sent as `text/html`).
    pub html: bool,
}

/// A template that does not compile, at the line of the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub at: SourcePos,
    pub message: String,
    /// e.g. `did you mean "member"?`
    pub hint: Option<String>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TemplateError {}

impl From<TemplateError> for RuleError {
    fn from(e: TemplateError) -> RuleError {
        RuleError {
            at: Some(e.at),
            message: e.message,
            hint: e.hint,
        }
    }
}

/// A render that failed; the message is not sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error("no template \"{0}\"")]
    UnknownTemplate(String),
    #[error("channel \"{0}\" has no body template")]
    NoBodyTemplate(String),
    /// `what` names the part: `template "welcome" subject`, `channel "wecom" body`;
    /// `at` is the failing line in the rule (or template) file.
    #[error("{at}: {what}: {message}")]
    Failed {
        what: String,
        at: SourcePos,
        message: String,
    },
    #[error("channel \"{channel}\" body is not valid JSON: {message}")]
    NotJson { channel: String, message: String },
}

/// The environment names of the parts. Ids are `[a-z0-9_-]`, so `/` cannot collide;
/// the `.html` suffix is what the auto-escape callback looks at.
fn subject_name(id: &str) -> String {
    format!("template/{id}/subject")
}

fn body_name(id: &str, html: bool) -> String {
    format!("template/{id}/body{}", if html { ".html" } else { "" })
}

fn webhook_name(channel: &str) -> String {
    format!("channel/{channel}/body")
}

impl Templates {
    /// Compiles every template and every webhook channel's body template, collecting all
    /// the errors so one `rally check` shows them all.
    pub fn compile(
        templates: &BTreeMap<String, Template>,
        channels: &BTreeMap<String, Channel>,
    ) -> Result<Templates, Vec<TemplateError>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        bounds::install(&mut env);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });

        let mut errors = Vec::new();
        let mut starts = BTreeMap::new();
        let mut messages = BTreeMap::new();
        for (id, template) in templates {
            messages.insert(id.clone(), template.html);
            let parts = [
                ("subject", subject_name(id), &template.subject),
                ("body", body_name(id, template.html), &template.body),
            ];
            for (part, name, source) in parts {
                starts.insert(name.clone(), template.at.clone());
                let part = Part {
                    what: format!("template \"{id}\" {part}"),
                    at: &template.at,
                    scope: MESSAGE_SCOPE,
                };
                add(&mut env, name, source, &part, &mut errors);
            }
        }
        let mut webhooks = BTreeSet::new();
        for (id, channel) in channels {
            if let ChannelKind::Webhook(hook) = &channel.kind {
                if let Some(body) = &hook.body {
                    webhooks.insert(id.clone());
                    starts.insert(webhook_name(id), channel.at.clone());
                    let part = Part {
                        what: format!("channel \"{id}\" body"),
                        at: &channel.at,
                        scope: WEBHOOK_SCOPE,
                    };
                    add(&mut env, webhook_name(id), body, &part, &mut errors);
                }
            }
        }
        if errors.is_empty() {
            Ok(Templates {
                env,
                messages,
                webhooks,
                starts,
            })
        } else {
            Err(errors)
        }
    }

    /// Renders template `template_id` with `ctx` (an object with `member`, `event`,
    /// `campaign`, `ticket`, `now`).
    pub fn render(
        &self,
        template_id: &str,
        ctx: &serde_json::Value,
    ) -> Result<Rendered, RenderError> {
        let html = *self
            .messages
            .get(template_id)
            .ok_or_else(|| RenderError::UnknownTemplate(template_id.to_string()))?;
        let subject = self.render_part(&subject_name(template_id), ctx, || {
            format!("template \"{template_id}\" subject")
        })?;
        let body = self.render_part(&body_name(template_id, html), ctx, || {
            format!("template \"{template_id}\" body")
        })?;
        Ok(Rendered {
            subject,
            body,
            html,
        })
    }

    /// Whether webhook channel `channel_id` has a body template (without one, delivery
    /// sends the default JSON body).
    pub fn has_webhook_body(&self, channel_id: &str) -> bool {
        self.webhooks.contains(channel_id)
    }

    /// Renders webhook channel `channel_id`'s body template with `ctx` (the message scope
    /// plus `subject`, `body`, `to`, `channel`, `message`). The result must be JSON,
    /// since it is sent as `application/json`.
    pub fn render_webhook_body(
        &self,
        channel_id: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, RenderError> {
        if !self.webhooks.contains(channel_id) {
            return Err(RenderError::NoBodyTemplate(channel_id.to_string()));
        }
        let text = self.render_part(&webhook_name(channel_id), ctx, || {
            format!("channel \"{channel_id}\" body")
        })?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            return Err(RenderError::NotJson {
                channel: channel_id.to_string(),
                message: e.to_string(),
            });
        }
        Ok(text)
    }

    fn render_part(
        &self,
        name: &str,
        ctx: &serde_json::Value,
        what: impl Fn() -> String,
    ) -> Result<String, RenderError> {
        let template = self.env.get_template(name);
        let failed = |e: &minijinja::Error| {
            let source = template.as_ref().map_or("", |t| t.source());
            let unknown = SourcePos {
                file: Arc::from(name),
                line: 1,
                col: 1,
            };
            let start = self.starts.get(name).unwrap_or(&unknown);
            RenderError::Failed {
                what: what(),
                at: position(start, source, e),
                message: describe(e),
            }
        };
        let t = template.as_ref().map_err(failed)?;
        let mut out = bounds::RenderedText::default();
        let rendered = t.render_captured_to(minijinja::Value::from_serialize(ctx), &mut out);
        let failure = |message: String| {
            let mut failure = failed(&minijinja::Error::new(
                minijinja::ErrorKind::WriteFailure,
                "",
            ));
            if let RenderError::Failed { message: m, .. } = &mut failure {
                *m = message;
            }
            failure
        };
        if out.overflowed {
            return Err(failure(bounds::overflow_message()));
        }
        rendered.map_err(|e| failed(&e))?;
        String::from_utf8(out.bytes)
            .map_err(|_| failure("the rendered text is not valid UTF-8".to_string()))
    }
}

/// One template text being compiled: what to call it, where it starts, what it sees.
struct Part<'a> {
    what: String,
    at: &'a SourcePos,
    scope: &'a [&'a str],
}

/// Adds one template source, recording a syntax error or an unknown variable.
fn add(
    env: &mut Environment<'static>,
    name: String,
    source: &str,
    part: &Part,
    errors: &mut Vec<TemplateError>,
) {
    let Part { what, at, scope } = part;
    // The text compiled is the one with bounded operators; one that does not parse is
    // compiled as written, for minijinja's own syntax error.
    let bounded = match operators::rewrite(source, &name) {
        Ok(text) => text,
        Err(operators::Unbounded::Syntax) => source.to_string(),
        Err(operators::Unbounded::Operator) => {
            errors.push(TemplateError {
                at: (*at).clone(),
                message: format!(
                    "{what}: an operator (`~`, `+` or `*`) could not be bounded; \
                     use filters (`join`, `format`) instead"
                ),
                hint: None,
            });
            return;
        }
    };
    if let Err(e) = env.add_template_owned(name.clone(), bounded) {
        errors.push(TemplateError {
            at: position(at, source, &e),
            message: format!("{what}: {}", describe(&e)),
            hint: None,
        });
        return;
    }
    let Ok(template) = env.get_template(&name) else {
        return;
    };
    let globals: BTreeSet<&str> = env.globals().map(|(name, _)| name).collect();
    let unknown: BTreeSet<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !scope.contains(&v.as_str()) && !globals.contains(v.as_str()))
        .collect();
    for variable in unknown {
        errors.push(TemplateError {
            at: variable_position(at, source, &variable),
            message: format!("{what}: unknown variable \"{variable}\""),
            hint: Some(hint(&variable, scope)),
        });
    }
}

/// minijinja's message without its own `(in name:line)`, with the failing expression
/// when minijinja knows it (a strict undefined error says only "undefined value").
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let (Some(source), Some(range)) = (e.template_source(), e.range()) {
        if let Some(expr) = source.get(range) {
            if e.detail().is_none() && !expr.is_empty() {
                text.push_str(&format!(" in `{expr}`"));
            }
        }
    }
    text
}

/// Where a template error is in the rule file: the template text starts at `at`, and
/// minijinja counts lines from 1 within the text.
fn position(at: &SourcePos, source: &str, e: &minijinja::Error) -> SourcePos {
    let line = e.line().unwrap_or(1);
    let offset = e
        .range()
        .map(|r| r.start)
        .or_else(|| line_start(source, line));
    offset_position(at, source, offset.unwrap_or(0))
}

/// The first use of `variable` in `source` (as a whole word), for the error position.
fn variable_position(at: &SourcePos, source: &str, variable: &str) -> SourcePos {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let offset = source.match_indices(variable).find_map(|(i, _)| {
        let before = source[..i].chars().next_back();
        let after = source[i + variable.len()..].chars().next();
        (!before.is_some_and(is_word) && !after.is_some_and(is_word)).then_some(i)
    });
    offset_position(at, source, offset.unwrap_or(0))
}

fn line_start(source: &str, line: usize) -> Option<usize> {
    if line <= 1 {
        return Some(0);
    }
    source.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)
}

fn offset_position(at: &SourcePos, source: &str, offset: usize) -> SourcePos {
    let before = source.get(..offset).unwrap_or(source);
    let lines_before = before.matches('\n').count();
    let col_in_line = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
    let lines_before = u32::try_from(lines_before).unwrap_or(u32::MAX);
    let col_in_line = u32::try_from(col_in_line).unwrap_or(u32::MAX);
    let line = at.line.saturating_add(lines_before);
    let col = if lines_before == 0 {
        at.col.saturating_add(col_in_line)
    } else {
        col_in_line.saturating_add(1)
    };
    SourcePos {
        file: Arc::clone(&at.file),
        line,
        col,
    }
}

/// `did you mean "member"?` for a near miss, else the names a template can use.
fn hint(variable: &str, scope: &[&str]) -> String {
    let closest = scope
        .iter()
        .map(|name| (strsim::damerau_levenshtein(variable, name), *name))
        .min();
    match closest {
        Some((distance, name)) if distance <= (name.len() / 3).max(1) => {
            format!("did you mean \"{name}\"?")
        }
        _ => format!("templates here can use: {}", scope.join(", ")),
    }
}

mod address;
mod bounds;
mod operators;
#[cfg(test)]
mod tests;
