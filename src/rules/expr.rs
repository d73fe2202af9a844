//! Compiling the Rhai written in rule files, with Rhai's own error positions turned
//! into `file:line:col` positions in the rule file or script file.

use super::convert::Diag;
use super::yaml::Value;
use super::SourcePos;
use crate::script::{Expr, Sandbox};

/// Which Rhai entry point to compile with.
#[derive(Clone, Copy)]
pub enum RhaiKind {
    Expression,
    Script,
}

/// Compiles Rhai text written in the YAML scalar `value`. A Rhai syntax error is
/// reported at its own place inside the scalar when that can be known.
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
    let result = match kind {
        RhaiKind::Expression => sandbox.compile_expr(text, at.clone()),
        RhaiKind::Script => sandbox.compile_script(text, at.clone()),
    };
    result
        .map_err(|message| {
            let (message, rhai_pos) = split_rhai_position(&message);
            let place = match rhai_pos {
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
            d.error(&place, format!("Rhai: {message}"));
        })
        .ok()
}

/// Compiles a script file: Rhai's positions are the file's own.
pub fn compile_script_file(
    d: &mut Diag,
    sandbox: &Sandbox,
    file: SourcePos,
    text: &str,
) -> Option<Expr> {
    sandbox
        .compile_script(text, file.clone())
        .map_err(|message| {
            let (message, rhai_pos) = split_rhai_position(&message);
            let (line, col) = rhai_pos.unwrap_or((1, 1));
            d.error(&SourcePos { line, col, ..file }, format!("Rhai: {message}"));
        })
        .ok()
}

/// Splits Rhai's trailing "(line L, position P)" off a message.
fn split_rhai_position(message: &str) -> (String, Option<(u32, u32)>) {
    let parsed = message.strip_suffix(')').and_then(|m| {
        let open = m.rfind(" (line ")?;
        let (line, pos) = m[open + 7..].split_once(", position ")?;
        Some((m[..open].to_string(), line.parse().ok()?, pos.parse().ok()?))
    });
    match parsed {
        Some((text, line, pos)) => (text, Some((line, pos))),
        None => (message.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhai_positions_are_split_from_the_message() {
        assert_eq!(
            split_rhai_position("Unknown operator: '@' (line 2, position 7)"),
            ("Unknown operator: '@'".to_string(), Some((2, 7)))
        );
        assert_eq!(split_rhai_position("boom"), ("boom".to_string(), None));
    }
}
