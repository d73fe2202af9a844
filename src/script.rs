//! The Rhai sandbox (SPEC §2.4): one engine per rule set, built with `Engine::new_raw`
//! plus only what expressions and scripts need, with bounds on operations, call depth,
//! expression depth and string/array/map sizes; no `import`, no `eval`, strict variables.
//!
//! Expressions and scripts see `member`, `event`, `campaign` and `now`. Scripts do not
//! change anything themselves: `award`, `tag`, `untag`, `badge`, `set`, `send` and
//! `escalate` append a [`ScriptAction`] to the run's list, and the step applies that
//! list atomically with the rest of the rule — or not at all if the script fails.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::event::Event;
use crate::member::Member;
use crate::rules::SourcePos;

/// A compiled expression or script, with where it was written.
pub struct Expr {
    pub ast: rhai::AST,
    /// The source text, for messages.
    pub text: String,
    pub at: SourcePos,
}

/// An action requested by a script, applied by the step.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptAction {
    Award {
        amount: i64,
        reason: Option<String>,
    },
    Tag(String),
    Untag(String),
    Badge(String),
    Set(String, Value),
    Send {
        template: String,
        channel: String,
    },
    Escalate {
        policy: String,
        severity: String,
        summary: String,
    },
}

/// A script or expression that failed at run time: what happened and on which line of
/// its source file (`Expr::at.file`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ScriptError {
    pub message: String,
    /// Line in the source file, when Rhai knows it.
    pub line: Option<u32>,
}

/// The sandboxed engine.
pub struct Sandbox {
    engine: rhai::Engine,
}

/// The variables an evaluation sees. Built once per step (and rebuilt only when the
/// member changed) and shared by every rule that runs.
pub struct Bindings {
    scope: rhai::Scope<'static>,
}

impl Sandbox {
    /// The engine every rule set compiles its expressions and scripts with.
    pub fn new() -> Self {
        let mut engine = rhai::Engine::new_raw();
        engine.set_strict_variables(true);
        Sandbox { engine }
    }

    /// Compiles a Rhai expression (an `if`, an amount, a `set` value, a tier measure).
    pub fn compile_expr(&self, text: &str, at: SourcePos) -> Result<Expr, String> {
        let ast = self
            .engine
            .compile_expression(text)
            .map_err(|e| e.to_string())?;
        Ok(Expr {
            ast,
            text: text.to_string(),
            at,
        })
    }

    /// Compiles a script (a `script:` action, inline or from a file).
    pub fn compile_script(&self, text: &str, at: SourcePos) -> Result<Expr, String> {
        let ast = self.engine.compile(text).map_err(|e| e.to_string())?;
        Ok(Expr {
            ast,
            text: text.to_string(),
            at,
        })
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

// TEMPORARY interface stubs (replaced by the sandbox branch).
impl Bindings {
    pub fn new(member: &Member, event: Option<&Event>, now: DateTime<Utc>, campaign: &Value) -> Bindings {
        let _ = (member, event, now, campaign);
        todo!()
    }
    pub fn set_member(&mut self, member: &Member) {
        let _ = member;
        let _ = &self.scope;
        todo!()
    }
}
impl Sandbox {
    pub fn eval_bool(&self, expr: &Expr, b: &mut Bindings) -> Result<bool, ScriptError> {
        let _ = (expr, b, &self.engine);
        todo!()
    }
    pub fn eval_number(&self, expr: &Expr, b: &mut Bindings) -> Result<f64, ScriptError> {
        let _ = (expr, b);
        todo!()
    }
    pub fn eval_value(&self, expr: &Expr, b: &mut Bindings) -> Result<Value, ScriptError> {
        let _ = (expr, b);
        todo!()
    }
    pub fn run_script(&self, expr: &Expr, b: &mut Bindings) -> Result<Vec<ScriptAction>, ScriptError> {
        let _ = (expr, b);
        todo!()
    }
}
impl ScriptError {
    pub fn location(&self, expr: &Expr) -> String {
        format!("{}:{}", expr.at.file, self.line.unwrap_or(expr.at.line))
    }
}
