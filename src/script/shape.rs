//! What a rule set's Rhai reads of its bindings (`member`, `event`, `campaign`,
//! `now`). Building the whole `member` map for a
//! step costs more than most conditions that read it (every counter, tag, badge and
//! attribute becomes a Rhai value), and most rule sets read a handful of fields by
//! name. When every use of `member` in every expression and script is `member.<name>`,
//! the bindings carry only those fields; any other use (`member["x"]`, `let m =
//! member`, `member.keys()`, passing it to a function) needs the whole map.

use std::collections::BTreeSet;

use rhai::{ASTNode, Expr, AST};

/// Which bindings a rule set's Rhai reads, and how much of `member`: what a step's
/// bindings must build. A binding no text reads is left `()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub member: MemberShape,
    pub event: bool,
    pub campaign: bool,
    pub now: bool,
}

impl Reads {
    /// Reads everything: for evaluations outside a rule set (tools, tests).
    pub fn all() -> Reads {
        Reads {
            member: MemberShape::Whole,
            event: true,
            campaign: true,
            now: true,
        }
    }

    /// Adds what `other` reads.
    pub fn include(&mut self, other: &Reads) {
        self.member.include(&other.member);
        self.event |= other.event;
        self.campaign |= other.campaign;
        self.now |= other.now;
    }
}

/// The part of `member` the bindings must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberShape {
    /// Every field, counter and attribute.
    Whole,
    /// Only these names (built-in fields or attributes).
    Fields(BTreeSet<String>),
}

impl Default for MemberShape {
    /// Nothing read yet: what a rule set starts from before its Rhai is compiled.
    fn default() -> Self {
        MemberShape::Fields(BTreeSet::new())
    }
}

impl MemberShape {
    /// Adds what `other` reads.
    pub fn include(&mut self, other: &MemberShape) {
        match (&mut *self, other) {
            (MemberShape::Whole, _) => {}
            (_, MemberShape::Whole) => *self = MemberShape::Whole,
            (MemberShape::Fields(mine), MemberShape::Fields(theirs)) => {
                mine.extend(theirs.iter().cloned());
            }
        }
    }

    /// Whether the bindings must carry `name`.
    pub fn wants(&self, name: &str) -> bool {
        match self {
            MemberShape::Whole => true,
            MemberShape::Fields(names) => names.contains(name),
        }
    }
}

/// What `ast` reads of the bindings (including in the functions it defines).
pub(super) fn reads(ast: &AST) -> Reads {
    let mut names = BTreeSet::new();
    let mut whole = false;
    let mut reads = Reads::default();
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(Expr::Variable(var, ..))) = path.last() else {
            return true;
        };
        match var.1.as_str() {
            "event" => reads.event = true,
            "campaign" => reads.campaign = true,
            "now" => reads.now = true,
            "member" => {
                // Only `member.<name>…`, with this very variable on the left of the
                // dot, reads by name; anything else sees the whole map.
                let read = match path.len().checked_sub(2).map(|parent| &path[parent]) {
                    Some(ASTNode::Expr(Expr::Dot(dot, ..)))
                        if matches!(&dot.lhs, Expr::Variable(lhs, ..) if lhs.1 == "member") =>
                    {
                        super::fields::first_property(&dot.rhs)
                    }
                    _ => None,
                };
                match read {
                    Some((name, _)) => {
                        names.insert(name.to_string());
                    }
                    None => whole = true,
                }
            }
            _ => {}
        }
        true
    });
    reads.member = if whole {
        MemberShape::Whole
    } else {
        MemberShape::Fields(names)
    };
    reads
}
