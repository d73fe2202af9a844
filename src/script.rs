//! The Rhai sandbox (SPEC §2.4): one engine per rule set, built with `Engine::new_raw`
//! plus only what expressions and scripts need, with bounds on operations, call depth,
//! expression depth and string/array/map sizes; no `import`, no `eval`, strict variables.
//!
//! Expressions and scripts see `member`, `event`, `campaign` and `now` ([`Bindings`]).
//! Scripts do not change anything themselves: `award`, `tag`, `untag`, `badge`, `set`,
//! `send` and `escalate` append a [`ScriptAction`] to the run's list, and the step
//! applies that list atomically with the rest of the rule — or not at all if the script
//! fails.
//!
//! Invariants:
//! - no run leaks into the next: the four bindings are constants (a script cannot modify
//!   them) and every variable a script declares is dropped when it ends;
//! - nothing a script can call reads the clock, the disk, the network or the process
//!   (no time, `sleep`, `print` output or module packages), so runs are deterministic.
//!
//! `random()`, `random_int(a, b)` and `chance(p)` draw from the stream the bindings
//! carry: keyed by the installation's secret and by what the step is, so deterministic
//! from the inputs (see `random`).
//!
//! Compiling resolves every function call against what this engine registers (see
//! `calls`): Rhai itself would only find a missing function when the call runs.
//!
//! As everywhere in Rhai, a function a script defines does not see the bindings: pass
//! what it needs as arguments (`fn bonus(points) { .. } award(bonus(member.points));`).

mod actions;
mod bindings;
mod calls;
mod convert;
mod errors;
mod fields;
mod native;
mod random;
mod shape;
#[cfg(test)]
mod tests;

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage,
    BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{CallFnOptions, Dynamic, Engine, OptimizationLevel, Scope};
use serde_json::Value;

use crate::rules::SourcePos;

pub use bindings::{Bindings, MEMBER_FIELDS};
pub use convert::{dynamic_to_json, json_to_dynamic};
pub use fields::FieldRead;
pub use random::{RandomKey, Stream as RandomStream};
pub use shape::{MemberShape, Reads};

/// Operations one evaluation may perform: enough for any real rule, small enough that
/// an endless loop fails in milliseconds.
pub const MAX_OPERATIONS: u64 = 100_000;
/// Nested function calls (recursion depth).
pub const MAX_CALL_LEVELS: usize = 32;
/// Nesting of expressions at the top level and inside functions.
pub const MAX_EXPR_DEPTH: usize = 64;
pub const MAX_FN_EXPR_DEPTH: usize = 32;
/// Bytes in one string.
pub const MAX_STRING_SIZE: usize = 64 * 1024;
/// Elements in one array (nested arrays count in full).
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Entries in one object map.
pub const MAX_MAP_SIZE: usize = 10_000;
/// Actions one script run may request: far above any real rule, and with the member
/// bounds (`member::MAX_ATTRS_BYTES` …) what keeps one step's effect small.
pub const MAX_SCRIPT_ACTIONS: usize = 1_000;

/// The no-op function every script AST carries, so a run can go through
/// `call_fn_with_options`, the only entry point that takes a per-call tag (where the
/// run's action collector travels).
const SCRIPT_ENTRY: &str = "rally_end_of_script";

/// A compiled expression or script, with where it was written.
pub struct Expr {
    pub ast: rhai::AST,
    /// The source text, for messages.
    pub text: String,
    /// Where the text's first line is: in a YAML file for an inline expression or
    /// script, line 1 column 1 of a `.rhai` file for a script file.
    pub at: SourcePos,
    /// The expression translated for evaluation without Rhai, when it is simple
    /// enough (see `native`); never for a script.
    native: Option<Box<native::Native>>,
}

impl Expr {
    /// Every `member.<name>` the text reads, for the loader's check of misspelt
    /// fields (positions are Rhai's, within the text).
    pub fn member_reads(&self) -> Vec<FieldRead> {
        fields::member_reads(&self.ast)
    }

    /// Every `member.…`, `event.…`, `campaign.…` and `now.…` path the text reads
    /// through literal properties, each once (see `fields::binding_paths`): what
    /// `rally explain` evaluates to show the values a condition read.
    pub fn binding_paths(&self) -> Vec<String> {
        fields::binding_paths(&self.ast)
    }

    /// Which bindings the text reads, and of `member` the names after `member.` or
    /// the whole map (see [`Reads`]).
    pub fn reads(&self) -> Reads {
        shape::reads(&self.ast)
    }

    /// The condition's value without Rhai, when the expression is simple enough and
    /// every value it reads is plain (see `native`); `None`: evaluate it with
    /// [`Sandbox::eval_bool`], which gives the same answer, only slower.
    pub fn native_bool(
        &self,
        member: &crate::member::Member,
        event: Option<&crate::event::Event>,
    ) -> Option<bool> {
        self.native.as_ref()?.eval(member, event)
    }

    /// The amount's value without Rhai, when the expression is simple enough and every
    /// value it reads is a plain number (see `native`); `None`: evaluate it with
    /// [`Sandbox::eval_number`], which gives the same answer, only slower.
    pub fn native_amount(
        &self,
        member: &crate::member::Member,
        event: Option<&crate::event::Event>,
    ) -> Option<crate::money::Decimal> {
        self.native.as_ref()?.amount(member, event)
    }

    /// Attribute names the text sets by a literal name (`set("vip_since", ..)`).
    pub fn literal_set_keys(&self) -> Vec<String> {
        fields::literal_set_keys(&self.ast)
    }
}

/// A problem found compiling Rhai text: what, where within the text, and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    /// Rhai's `(line, column)` within the compiled text, from 1, when known; the rule
    /// loader maps it onto the file (inside the YAML scalar or the script file).
    pub pos: Option<(u32, u32)>,
    /// e.g. `did you mean "round"?`
    pub hint: Option<String>,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        if let Some((line, col)) = self.pos {
            write!(f, " (line {line}, position {col})")?;
        }
        Ok(())
    }
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

impl ScriptError {
    /// `file:line` of the failure; the expression's own line when Rhai gave none.
    pub fn location(&self, expr: &Expr) -> String {
        format!("{}:{}", expr.at.file, self.line.unwrap_or(expr.at.line))
    }
}

/// The sandboxed engine.
pub struct Sandbox {
    engine: Engine,
    /// The names expressions may use, so strict variables reject anything else at
    /// compile time. Plain `()` variables, never constants: a constant in the compile
    /// scope could be folded into the AST.
    names: Scope<'static>,
    /// Every function a call may name, so an unknown one fails at load, not at run.
    functions: calls::KnownFunctions,
}

impl Sandbox {
    /// The engine every rule set compiles its expressions and scripts with.
    pub fn new() -> Self {
        let mut engine = Engine::new_raw();
        // Deliberately absent: LanguageCorePackage (`sleep` blocks the thread outside
        // the operation count), BasicTimePackage (reads the clock), BasicFnPackage and
        // the BLOB and bit-field packages (nothing a rule needs).
        engine.register_global_module(ArithmeticPackage::new().as_shared_module());
        engine.register_global_module(LogicPackage::new().as_shared_module());
        engine.register_global_module(BasicStringPackage::new().as_shared_module());
        engine.register_global_module(MoreStringPackage::new().as_shared_module());
        engine.register_global_module(BasicIteratorPackage::new().as_shared_module());
        engine.register_global_module(BasicArrayPackage::new().as_shared_module());
        engine.register_global_module(BasicMapPackage::new().as_shared_module());
        engine.register_global_module(BasicMathPackage::new().as_shared_module());
        actions::register(&mut engine);
        random::register(&mut engine);
        register_string_membership(&mut engine);

        engine.set_strict_variables(true);
        engine.disable_symbol("eval");
        engine.set_optimization_level(OptimizationLevel::Simple);
        engine.set_max_operations(MAX_OPERATIONS);
        engine.set_max_call_levels(MAX_CALL_LEVELS);
        engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH);
        engine.set_max_string_size(MAX_STRING_SIZE);
        engine.set_max_array_size(MAX_ARRAY_SIZE);
        engine.set_max_map_size(MAX_MAP_SIZE);

        let mut names = Scope::new();
        for name in bindings::NAMES {
            names.push_dynamic(name, Dynamic::UNIT);
        }
        let functions = calls::KnownFunctions::of(&engine);
        Sandbox {
            engine,
            names,
            functions,
        }
    }

    /// Compiles a Rhai expression (an `if`, an amount, a `set` value, a tier measure):
    /// a syntax error, or every call to a function that does not exist.
    pub fn compile_expr(&self, text: &str, at: SourcePos) -> Result<Expr, Vec<CompileError>> {
        let mut ast = self
            .engine
            .compile_expression_with_scope(&self.names, text)
            .map_err(|e| vec![errors::compile_error(&e)])?;
        self.resolve_calls(&ast)?;
        ast.set_source(&*at.file);
        let native = native::Native::translate(&ast).map(Box::new);
        Ok(Expr {
            ast,
            text: text.to_string(),
            at,
            native,
        })
    }

    /// Compiles a script (a `script:` action, inline or from a file).
    pub fn compile_script(&self, text: &str, at: SourcePos) -> Result<Expr, Vec<CompileError>> {
        let script = self
            .engine
            .compile_with_scope(&self.names, text)
            .map_err(|e| vec![errors::compile_error(&e)])?;
        self.resolve_calls(&script)?;
        let entry = self
            .engine
            .compile(format!("fn {SCRIPT_ENTRY}() {{}}"))
            .map_err(|e| {
                vec![CompileError {
                    message: format!("internal error building the script entry: {e}"),
                    pos: None,
                    hint: None,
                }]
            })?;
        let mut ast = script.merge(&entry);
        ast.set_source(&*at.file);
        Ok(Expr {
            ast,
            text: text.to_string(),
            at,
            native: None,
        })
    }

    fn resolve_calls(&self, ast: &rhai::AST) -> Result<(), Vec<CompileError>> {
        let unknown = calls::unknown_calls(&self.functions, ast);
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(unknown)
        }
    }

    /// Evaluates a condition (`if`, `audience`): anything but a boolean is an error.
    pub fn eval_bool(&self, expr: &Expr, bindings: &mut Bindings) -> Result<bool, ScriptError> {
        let value = self.eval_dynamic(expr, bindings)?;
        value
            .as_bool()
            .map_err(|_| self.mismatch(expr, "a boolean (true or false)", &value))
    }

    /// Evaluates an amount or a measure to an exact decimal (an integer or a decimal:
    /// Rhai has no floats here).
    pub fn eval_number(
        &self,
        expr: &Expr,
        bindings: &mut Bindings,
    ) -> Result<crate::money::Decimal, ScriptError> {
        let value = self.eval_dynamic(expr, bindings)?;
        convert::to_decimal(&value).ok_or_else(|| self.mismatch(expr, "a number", &value))
    }

    /// Evaluates a value to store (`set: { key: { expr: .. } }`).
    pub fn eval_value(&self, expr: &Expr, bindings: &mut Bindings) -> Result<Value, ScriptError> {
        let value = self.eval_dynamic(expr, bindings)?;
        dynamic_to_json(&self.engine, &value).map_err(|message| ScriptError {
            message,
            line: Some(expr.at.line),
        })
    }

    /// Runs a script compiled by [`Sandbox::compile_script`] and returns the actions it
    /// requested, in the order it requested them.
    pub fn run_script(
        &self,
        expr: &Expr,
        bindings: &mut Bindings,
    ) -> Result<Vec<ScriptAction>, ScriptError> {
        let collector = actions::Collector::default();
        let options = CallFnOptions::new()
            .eval_ast(true)
            .rewind_scope(true)
            .with_tag(collector.clone());
        let (scope, stream) = bindings.parts();
        random::lend(stream, || {
            self.engine
                .call_fn_with_options::<()>(options, scope, &expr.ast, SCRIPT_ENTRY, ())
        })
        .map_err(|e| errors::run_error(&self.engine, &e, expr))?;
        Ok(collector.take())
    }

    /// The value at a path from [`Expr::binding_paths`] in `bindings`, as JSON: `null`
    /// for a missing key (Rhai reads it as `()`), `None` when the path goes through
    /// something that is not a map. Only `rally explain` reads values this way.
    pub fn read_path(&self, bindings: &Bindings, path: &str) -> Option<Value> {
        let mut segments = path.split('.');
        let mut value = bindings.get(segments.next()?)?.clone();
        for segment in segments {
            let next = {
                let map = value.read_lock::<rhai::Map>()?;
                map.get(segment).cloned().unwrap_or(Dynamic::UNIT)
            };
            value = next;
        }
        dynamic_to_json(&self.engine, &value).ok()
    }

    fn eval_dynamic(&self, expr: &Expr, bindings: &mut Bindings) -> Result<Dynamic, ScriptError> {
        let (scope, stream) = bindings.parts();
        let len = scope.len();
        let result = random::lend(stream, || {
            self.engine.eval_ast_with_scope::<Dynamic>(scope, &expr.ast)
        });
        // An expression cannot declare variables, but an `Expr` from `compile_script`
        // can: never let one outlive the evaluation.
        scope.rewind(len);
        result.map_err(|e| errors::run_error(&self.engine, &e, expr))
    }

    fn mismatch(&self, expr: &Expr, wanted: &str, got: &Dynamic) -> ScriptError {
        ScriptError {
            message: format!(
                "expected {wanted}, got {}",
                self.engine.map_type_name(got.type_name())
            ),
            line: Some(expr.at.line),
        }
    }
}

/// `"vip" in member.tags` is the commonest segment test. The array package's
/// `contains` compares through a dynamically dispatched `==` call per element; this
/// overload for a string needle compares directly (functions registered on the engine
/// are found before package functions), with the same result: equal to a string of the
/// same text or to the same single character.
fn register_string_membership(engine: &mut Engine) {
    engine.register_fn("contains", |array: &mut rhai::Array, needle: &str| {
        array.iter().any(|item| {
            if let Some(s) = item.read_lock::<rhai::ImmutableString>() {
                return s.as_str() == needle;
            }
            match item.as_char() {
                Ok(c) => needle.chars().eq(std::iter::once(c)),
                Err(_) => false,
            }
        })
    });
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}
