//! Bounding minijinja's string operators. `~`, `+` and `*` build strings inside the
//! engine, where no hook can see them: `{% set s = s ~ s %}` thirty times asks for
//! gigabytes before fuel or any filter gets a say. So before a template is compiled its
//! text is rewritten so that every `a ~ b`, `a + b` and `a * b` becomes a call to a
//! filter of ours (`(a)|rally_concat(b)`), which refuses a result over
//! [`super::bounds::MAX_STRING`] before building it.
//!
//! The rewrite only inserts text on the lines it already occupies, so every line
//! number minijinja reports still points at the right line of the rule file.

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

/// The filters that replace the operators, by operator.
pub(super) const CONCAT: &str = "rally_concat";
pub(super) const ADD: &str = "rally_add";
pub(super) const MUL: &str = "rally_mul";

/// One edit to the source: at byte `at`, drop `remove` bytes and insert `text`.
struct Edit {
    at: usize,
    remove: usize,
    text: String,
}

/// Why a text was not rewritten.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unbounded {
    /// The text does not parse: compile it as written, so minijinja reports the
    /// syntax error exactly where it is.
    Syntax,
    /// An operator could not be rewritten (a shape this rewrite does not know).
    Operator,
}

/// `source` with every string-building operator turned into a bounded filter call.
pub(super) fn rewrite(source: &str, name: &str) -> Result<String, Unbounded> {
    let edits = edits_for(source, name).ok_or(Unbounded::Syntax)?;
    if edits.is_empty() {
        return Ok(source.to_string());
    }
    let rewritten = apply(source, edits).ok_or(Unbounded::Operator)?;
    // The rewritten text must parse and hold no operator left to rewrite.
    match edits_for(&rewritten, name) {
        Some(left) if left.is_empty() => Ok(rewritten),
        _ => Err(Unbounded::Operator),
    }
}

fn edits_for(source: &str, name: &str) -> Option<Vec<Edit>> {
    let ast = parse(source, name, SyntaxConfig, WhitespaceConfig::default()).ok()?;
    let mut edits = Vec::new();
    stmt(&ast, source, &mut edits);
    Some(edits)
}

fn apply(source: &str, mut edits: Vec<Edit>) -> Option<String> {
    // Stable sort: edits at one offset keep their order (all are `(` or `)` inserts,
    // which commute, or one operator replacement).
    edits.sort_by_key(|e| e.at);
    let mut out = String::with_capacity(source.len() + edits.len() * 16);
    let mut pos = 0;
    for edit in edits {
        out.push_str(source.get(pos..edit.at)?);
        out.push_str(&edit.text);
        pos = edit.at + edit.remove;
    }
    out.push_str(source.get(pos..)?);
    Some(out)
}

fn stmts(list: &[Stmt], source: &str, edits: &mut Vec<Edit>) {
    for s in list {
        stmt(s, source, edits);
    }
}

fn stmt(s: &Stmt, source: &str, edits: &mut Vec<Edit>) {
    match s {
        Stmt::Template(t) => stmts(&t.children, source, edits),
        Stmt::EmitExpr(x) => expr(&x.expr, source, edits),
        Stmt::EmitRaw(_) => {}
        Stmt::ForLoop(f) => {
            expr(&f.target, source, edits);
            expr(&f.iter, source, edits);
            if let Some(filter) = &f.filter_expr {
                expr(filter, source, edits);
            }
            stmts(&f.body, source, edits);
            stmts(&f.else_body, source, edits);
        }
        Stmt::IfCond(i) => {
            expr(&i.expr, source, edits);
            stmts(&i.true_body, source, edits);
            stmts(&i.false_body, source, edits);
        }
        Stmt::WithBlock(w) => {
            for (target, value) in &w.assignments {
                expr(target, source, edits);
                expr(value, source, edits);
            }
            stmts(&w.body, source, edits);
        }
        Stmt::Set(s) => {
            expr(&s.target, source, edits);
            expr(&s.expr, source, edits);
        }
        Stmt::SetBlock(s) => {
            if let Some(filter) = &s.filter {
                expr(filter, source, edits);
            }
            stmts(&s.body, source, edits);
        }
        Stmt::AutoEscape(a) => {
            expr(&a.enabled, source, edits);
            stmts(&a.body, source, edits);
        }
        Stmt::FilterBlock(f) => {
            expr(&f.filter, source, edits);
            stmts(&f.body, source, edits);
        }
        Stmt::Block(b) => stmts(&b.body, source, edits),
        Stmt::Import(i) => {
            expr(&i.expr, source, edits);
        }
        Stmt::FromImport(i) => expr(&i.expr, source, edits),
        Stmt::Extends(x) => expr(&x.name, source, edits),
        Stmt::Include(x) => expr(&x.name, source, edits),
        Stmt::Macro(m) => {
            for default in &m.defaults {
                expr(default, source, edits);
            }
            stmts(&m.body, source, edits);
        }
        Stmt::CallBlock(c) => {
            expr(&c.call.expr, source, edits);
            args(&c.call.args, source, edits);
            for default in &c.macro_decl.defaults {
                expr(default, source, edits);
            }
            stmts(&c.macro_decl.body, source, edits);
        }
        Stmt::Do(d) => {
            expr(&d.call.expr, source, edits);
            args(&d.call.args, source, edits);
        }
    }
}

fn args(list: &[CallArg], source: &str, edits: &mut Vec<Edit>) {
    for arg in list {
        match arg {
            CallArg::Pos(x)
            | CallArg::Kwarg(_, x)
            | CallArg::PosSplat(x)
            | CallArg::KwargSplat(x) => expr(x, source, edits),
        }
    }
}

fn opt(x: &Option<Expr>, source: &str, edits: &mut Vec<Edit>) {
    if let Some(x) = x {
        expr(x, source, edits);
    }
}

fn expr(x: &Expr, source: &str, edits: &mut Vec<Edit>) {
    match x {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(s) => {
            expr(&s.expr, source, edits);
            opt(&s.start, source, edits);
            opt(&s.stop, source, edits);
            opt(&s.step, source, edits);
        }
        Expr::UnaryOp(u) => expr(&u.expr, source, edits),
        Expr::BinOp(b) => {
            expr(&b.left, source, edits);
            expr(&b.right, source, edits);
            let (op, filter) = match b.op {
                BinOpKind::Concat => ('~', CONCAT),
                BinOpKind::Add => ('+', ADD),
                BinOpKind::Mul => ('*', MUL),
                _ => return,
            };
            operator(x, &b.left, &b.right, op, filter, source, edits);
        }
        Expr::Compare(c) => {
            expr(&c.expr, source, edits);
            for op in &c.ops {
                expr(&op.expr, source, edits);
            }
        }
        Expr::IfExpr(i) => {
            expr(&i.test_expr, source, edits);
            expr(&i.true_expr, source, edits);
            opt(&i.false_expr, source, edits);
        }
        Expr::Filter(f) => {
            opt(&f.expr, source, edits);
            args(&f.args, source, edits);
        }
        Expr::Test(t) => {
            expr(&t.expr, source, edits);
            args(&t.args, source, edits);
        }
        Expr::GetAttr(g) => expr(&g.expr, source, edits),
        Expr::GetItem(g) => {
            expr(&g.expr, source, edits);
            expr(&g.subscript_expr, source, edits);
        }
        Expr::Call(c) => {
            expr(&c.expr, source, edits);
            args(&c.args, source, edits);
        }
        Expr::List(l) => {
            for item in &l.items {
                expr(item, source, edits);
            }
        }
        Expr::Map(m) => {
            for item in m.keys.iter().chain(&m.values) {
                expr(item, source, edits);
            }
        }
    }
}

/// `L op R` → `(L )|filter( R)`: an opening parenthesis where the whole expression
/// starts, the operator character (the only one between the operands, besides
/// whitespace and parentheses) replaced, a closing one where it ends.
fn operator(
    whole: &Expr,
    left: &Expr,
    right: &Expr,
    op: char,
    filter: &str,
    source: &str,
    edits: &mut Vec<Edit>,
) {
    let whole = whole.span();
    let gap_start = left.span().end_offset as usize;
    let gap_end = right.span().start_offset as usize;
    let Some(gap) = source.get(gap_start..gap_end) else {
        return;
    };
    let Some(i) = gap.find(op) else {
        return;
    };
    edits.push(Edit {
        at: whole.start_offset as usize,
        remove: 0,
        text: "(".to_string(),
    });
    edits.push(Edit {
        at: gap_start + i,
        remove: op.len_utf8(),
        text: format!(")|{filter}("),
    });
    edits.push(Edit {
        at: whole.end_offset as usize,
        remove: 0,
        text: ")".to_string(),
    });
}
