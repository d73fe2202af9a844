//! Compiling the Rhai written in rule files, with Rhai's own error positions turned
//! into `file:line:col` positions in the rule file or script file.

use super::convert::Diag;
use super::yaml::Value;
use super::SourcePos;
use crate::script::{CompileError, Expr, Sandbox};

/// Which Rhai entry point to compile with.
#[derive(Clone, Copy)]
pub enum RhaiKind {
    Expression,
    Script,
}

/// Compiles Rhai text written in the YAML scalar `value`. A Rhai error is reported at
/// its own place inside the scalar when that can be known.
pub fn compile_rhai(
    d: &mut Diag,
    sandbox: &Sandbox,
    value: &Value,
    text: &str,
    kind: RhaiKind,
) -> Option<Expr> {
    let start = value.text_start;
    let at = SourcePos {
        file: value.at.file.clone(),
        line: start.line,
        col: start.col,
    };
    let place = |rhai_pos: Option<(u32, u32)>| match rhai_pos {
        Some((1, col)) => SourcePos {
            col: at.col + col.saturating_sub(1),
            ..at.clone()
        },
        Some((line, col)) if start.literal_block => SourcePos {
            line: at.line + line - 1,
            col: at.col + col.saturating_sub(1),
            ..at.clone()
        },
        _ => value.at.clone(),
    };
    let result = match kind {
        RhaiKind::Expression => sandbox.compile_expr(text, at.clone()),
        RhaiKind::Script => sandbox.compile_script(text, at.clone()),
    };
    finish(d, result, place)
}

/// Compiles a script file: Rhai's positions are the file's own.
pub fn compile_script_file(
    d: &mut Diag,
    sandbox: &Sandbox,
    file: SourcePos,
    text: &str,
) -> Option<Expr> {
    let place = |rhai_pos: Option<(u32, u32)>| {
        let (line, col) = rhai_pos.unwrap_or((1, 1));
        SourcePos {
            line,
            col,
            ..file.clone()
        }
    };
    let result = sandbox.compile_script(text, file.clone());
    finish(d, result, place)
}

/// Reports the errors of a compile, or records what the compiled text reads from and
/// writes to members for the check of misspelt member fields.
fn finish(
    d: &mut Diag,
    result: Result<Expr, Vec<CompileError>>,
    place: impl Fn(Option<(u32, u32)>) -> SourcePos,
) -> Option<Expr> {
    match result {
        Ok(expr) => {
            for read in expr.member_reads() {
                d.member_reads.push((read.name, place(read.pos)));
            }
            d.set_keys.extend(expr.literal_set_keys());
            d.reads.include(&expr.reads());
            Some(expr)
        }
        Err(errors) => {
            for e in errors {
                d.error_hint(&place(e.pos), format!("Rhai: {}", e.message), e.hint);
            }
            None
        }
    }
}
