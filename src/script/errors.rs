//! Rhai errors turned into messages an operator can act on, with the line in the file
//! the text came from (not the line inside the text).

use rhai::{Engine, EvalAltResult, LexError, ParseError, ParseErrorType, Position};

use super::{
    CompileError, Expr, ScriptError, MAX_ARRAY_SIZE, MAX_CALL_LEVELS, MAX_EXPR_DEPTH,
    MAX_FN_EXPR_DEPTH, MAX_MAP_SIZE, MAX_OPERATIONS, MAX_STRING_SIZE, SCRIPT_ENTRY,
};
use crate::rules::SourcePos;

/// Rhai counts lines from the start of the text; the text starts at `at.line`.
pub(super) fn file_line(at: &SourcePos, pos: Position) -> Option<u32> {
    let line = u32::try_from(pos.line()?).ok()?;
    Some(at.line.saturating_add(line.saturating_sub(1)))
}

/// Rhai's position within the compiled text, as `(line, column)` from 1.
pub(super) fn text_position(pos: Position) -> Option<(u32, u32)> {
    let line = u32::try_from(pos.line()?).ok()?;
    let col = u32::try_from(pos.position()?).ok()?;
    Some((line, col))
}

pub(super) fn compile_error(err: &ParseError) -> CompileError {
    let mut hint = None;
    let message = match err.err_type() {
        ParseErrorType::ExprTooDeep => format!(
            "expression nested too deeply (the limit is {MAX_EXPR_DEPTH} levels, \
             {MAX_FN_EXPR_DEPTH} inside functions)"
        ),
        ParseErrorType::LiteralTooLarge(kind, max) => {
            format!("{} too large: over the limit of {max}", kind.to_lowercase())
        }
        ParseErrorType::VariableUndefined(name) => {
            format!("unknown variable `{name}` (rules see member, event, campaign and now)")
        }
        ParseErrorType::Reserved(word) if word == "import" => {
            "`import` is not allowed in rules: a script is one file".to_string()
        }
        // `'vip'` is a character literal that is too long: people coming from SQL,
        // Python or YAML reach for single quotes first.
        ParseErrorType::BadInput(LexError::MalformedChar(text)) => {
            hint = Some(format!("Rhai strings use double quotes: \"{text}\""));
            err.err_type().to_string()
        }
        other => other.to_string(),
    };
    CompileError {
        message,
        pos: text_position(err.position()),
        hint,
    }
}

pub(super) fn run_error(engine: &Engine, err: &EvalAltResult, expr: &Expr) -> ScriptError {
    // Report where the failure actually happened: inside the innermost function, with
    // the chain of calls that led there.
    let mut calls = Vec::new();
    let mut current = err;
    let mut pos = err.position();
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = current {
        calls.push(name.as_str());
        current = inner;
        if !inner.position().is_none() {
            pos = inner.position();
        }
    }
    let mut message = describe(engine, current);
    if !calls.is_empty() {
        message = format!("{message} (in function {})", calls.join(" → "));
    }
    ScriptError {
        message,
        line: file_line(&expr.at, pos),
    }
}

fn describe(engine: &Engine, err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorTooManyOperations(_) => {
            format!("script exceeded the limit of {MAX_OPERATIONS} operations")
        }
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "script exceeded the limit of {MAX_CALL_LEVELS} levels of call depth \
             (runaway recursion?)"
        ),
        EvalAltResult::ErrorDataTooLarge(kind, _) => match kind.as_str() {
            "Length of string" => {
                format!("string too long: over the limit of {MAX_STRING_SIZE} bytes")
            }
            k if k.starts_with("Size of array") => {
                format!("array too large: over the limit of {MAX_ARRAY_SIZE} elements")
            }
            "Size of object map" => {
                format!("map too large: over the limit of {MAX_MAP_SIZE} entries")
            }
            other => format!("{other} too large"),
        },
        EvalAltResult::ErrorArithmetic(text, _) => match text.strip_prefix("Division by zero") {
            Some(rest) => format!("division by zero{rest}"),
            None => text.clone(),
        },
        EvalAltResult::ErrorAssignmentToConstant(name, _) => format!(
            "`{name}` is read-only: scripts request changes with award, tag, untag, \
             badge, set, send and escalate"
        ),
        EvalAltResult::ErrorNonPureMethodCallOnConstant(method, _) => {
            format!("`{method}` would modify a read-only binding: copy it into a variable first")
        }
        EvalAltResult::ErrorFunctionNotFound(name, pos)
            if name == SCRIPT_ENTRY && pos.is_none() =>
        {
            "this expression was compiled as an expression, not a script".to_string()
        }
        EvalAltResult::ErrorMismatchOutputType(wanted, got, _) => {
            format!("expected {wanted}, got {}", engine.map_type_name(got))
        }
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        other => {
            // The position is reported separately, as a file line.
            let text = other.to_string();
            let suffix = format!(" ({})", other.position());
            match text.strip_suffix(&suffix) {
                Some(bare) => bare.to_string(),
                None => text,
            }
        }
    }
}
