//! Resolving function calls when rules load. Rhai looks functions up only when a call
//! runs, so `rand()` or `hash(x)` would compile and fail on the first member who
//! reaches it; here every call in a compiled AST is checked against what the sandbox
//! engine registers, Rhai's own keyword functions and the functions the script defines.
//!
//! Only names are checked, not argument counts or types: an overload chosen by type
//! (`contains` on a string, an array or a map) is Rhai's business at run time, and a
//! false alarm at load would block a rule set that works.

use std::collections::BTreeSet;

use rhai::{ASTNode, Engine, Expr, FnCallExpr, Position, Stmt, AST};

use super::CompileError;

/// Functions Rhai handles itself rather than through a registered function (see
/// `rhai::engine::KEYWORD_*`); `eval` is left out: the sandbox disables it.
const KEYWORD_FUNCTIONS: [&str; 9] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

/// Every function name a call may use in this sandbox.
pub(super) struct KnownFunctions {
    names: BTreeSet<String>,
}

impl KnownFunctions {
    /// The names `engine` resolves: its registered functions and packages, plus the
    /// keyword functions. Internal names (operators, `get$x` property getters, the
    /// script entry) are kept too, so a check never trips over them, but never offered
    /// as a suggestion.
    pub(super) fn of(engine: &Engine) -> Self {
        let mut names: BTreeSet<String> = engine
            .collect_fn_metadata(None, |info| Some(info.metadata.name.to_string()), true)
            .into_iter()
            .collect();
        names.extend(KEYWORD_FUNCTIONS.iter().map(|s| s.to_string()));
        KnownFunctions { names }
    }

    /// `did you mean "x"?` for the closest plain name within a typo's reach (a third
    /// of the length, at least one edit), preferring the script's own functions; else
    /// the shortest name the call abbreviates (`rand` → `random`).
    fn suggestion(&self, name: &str, defined: &BTreeSet<String>) -> Option<String> {
        let limit = (name.chars().count() / 3).max(1);
        let plain = || {
            defined
                .iter()
                .chain(self.names.iter())
                .filter(|k| rhai::is_valid_identifier(k) && k.as_str() != super::SCRIPT_ENTRY)
        };
        plain()
            .map(|k| (strsim::osa_distance(name, k), k))
            .filter(|(d, _)| *d <= limit)
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
            .or_else(|| {
                plain()
                    .filter(|k| name.len() >= 3 && k.starts_with(name))
                    .min_by_key(|k| k.len())
            })
            .map(|k| format!("did you mean {k:?}?"))
    }
}

/// One error per call, in the AST (`ast` after `ast.merge` includes the functions a
/// script defines) whose name nothing resolves.
pub(super) fn unknown_calls(known: &KnownFunctions, ast: &AST) -> Vec<CompileError> {
    let defined: BTreeSet<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
    // `obj.action(x)` calls a function pointer stored under a map key: a method name
    // that is a key of a map literal in the same text is taken to be one.
    let mut map_keys = BTreeSet::new();
    let mut calls: Vec<Call> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) => {
                calls.push(Call::new(call, *pos, false))
            }
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => {
                calls.push(Call::new(call, *pos, false))
            }
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => {
                calls.push(Call::new(call, *pos, true))
            }
            Some(ASTNode::Expr(Expr::Map(map, _))) => {
                map_keys.extend(map.0.iter().map(|(key, _)| key.name.to_string()));
            }
            // A map literal of constants (closures included) is folded into one.
            Some(ASTNode::Expr(Expr::DynamicConstant(value, _))) => {
                if let Some(map) = value.read_lock::<rhai::Map>() {
                    map_keys.extend(map.keys().map(|key| key.to_string()));
                }
            }
            _ => {}
        }
        true
    });
    let mut errors = Vec::new();
    for call in calls {
        let name = call.name.as_str();
        let resolved = call.operator
            || !rhai::is_valid_identifier(name)
            || known.names.contains(name)
            || defined.contains(name)
            || (call.method && map_keys.contains(name));
        if resolved {
            continue;
        }
        errors.push(CompileError {
            message: format!("unknown function {name:?}"),
            pos: super::errors::text_position(call.pos),
            hint: known.suggestion(name, &defined),
        });
    }
    errors
}

/// A call as written, copied out of the AST walk.
struct Call {
    name: String,
    pos: Position,
    /// `x.name(..)` rather than `name(x, ..)`.
    method: bool,
    /// `a + b`, `!a`, ...: operators are Rhai's own.
    operator: bool,
}

impl Call {
    fn new(call: &FnCallExpr, pos: Position, method: bool) -> Call {
        Call {
            name: call.name.to_string(),
            pos,
            method,
            operator: call.is_operator_call(),
        }
    }
}
