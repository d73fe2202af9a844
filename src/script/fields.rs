//! What a compiled expression or script reads from `member` and which attributes it
//! writes, for the rule loader's check of misspelt member fields (`member.point`).
//! Rhai reads a missing map key as `()`, so the typo would otherwise go unnoticed.

use rhai::{ASTNode, Expr, Stmt, AST};

/// `member.<name>` as written, with Rhai's `(line, column)` of the name in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRead {
    pub name: String,
    pub pos: Option<(u32, u32)>,
}

/// Every `member.<name>` in `ast` (including the functions it defines), in the
/// order written. `member["name"]` is not included: a computed key is deliberate.
pub(super) fn member_reads(ast: &AST) -> Vec<FieldRead> {
    let mut reads = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(Expr::Dot(dot, ..))) = path.last() {
            let on_member = matches!(&dot.lhs, Expr::Variable(var, ..) if var.1 == "member");
            if let (true, Some((name, pos))) = (on_member, first_property(&dot.rhs)) {
                reads.push(FieldRead {
                    name: name.to_string(),
                    pos: super::errors::text_position(pos),
                });
            }
        }
        true
    });
    reads
}

/// Attribute names a script sets with a literal name: `set("vip_since", ..)`.
pub(super) fn literal_set_keys(ast: &AST) -> Vec<String> {
    let mut keys = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, _))) => call,
            Some(ASTNode::Stmt(Stmt::FnCall(call, _))) => call,
            _ => return true,
        };
        if call.name == "set" {
            if let Some(Expr::StringConstant(key, _)) = call.args.first() {
                keys.push(key.to_string());
            }
        }
        true
    });
    keys
}

/// The property right after the dot: `points` in `member.points`, `member.points.x`
/// or `member.tags[0]`; none for a method call (`member.len()`).
pub(super) fn first_property(rhs: &Expr) -> Option<(&str, rhai::Position)> {
    match rhs {
        Expr::Property(prop, pos) => Some((prop.2.as_str(), *pos)),
        Expr::Dot(chain, ..) | Expr::Index(chain, ..) => first_property(&chain.lhs),
        _ => None,
    }
}

/// Every path from a binding through literal properties the text reads, in the order
/// written, each once: `member.points`, `event.data.amount`, `campaign.double11.phase`,
/// `member.counters["posts"]` as `member.counters.posts`. What `rally explain` shows
/// next to a condition's value. A computed index or a method call ends the path there
/// (`member.tags.contains(..)` reads `member.tags`).
pub(super) fn binding_paths(ast: &AST) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(Expr::Dot(dot, ..))) = path.last() {
            if let Expr::Variable(var, ..) = &dot.lhs {
                if super::bindings::NAMES.contains(&var.1.as_str()) {
                    let mut segments = vec![var.1.to_string()];
                    property_chain(&dot.rhs, &mut segments);
                    let text = segments.join(".");
                    if segments.len() > 1 && !paths.contains(&text) {
                        paths.push(text);
                    }
                }
            }
        }
        true
    });
    paths
}

/// Appends the literal properties of a chain; whether the whole chain was literal (so
/// what follows it may be appended too).
fn property_chain(rhs: &Expr, segments: &mut Vec<String>) -> bool {
    match rhs {
        Expr::Property(prop, _) => {
            segments.push(prop.2.to_string());
            true
        }
        Expr::Dot(chain, ..) => {
            property_chain(&chain.lhs, segments) && property_chain(&chain.rhs, segments)
        }
        Expr::Index(chain, ..) => {
            if !property_chain(&chain.lhs, segments) {
                return false;
            }
            match &chain.rhs {
                Expr::StringConstant(key, _) => {
                    segments.push(key.to_string());
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}
