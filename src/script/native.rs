//! Conditions simple enough to decide without Rhai: comparisons of `event.…` and
//! `member.…` fields with constants or each other, joined by `&&`, `||` and `!` —
//! what most rule files write (`event.data.amount >= 100 && member.tier != "vip"`),
//! and whether the member holds a tag or badge (`"vip" in member.tags`).
//! Building the Rhai bindings and running the interpreter costs far more than such a
//! condition's work, so the compiled AST is translated once, at load, into [`Native`],
//! which reads the member and the event directly.
//!
//! Amounts (`event.data.amount / 10`, `member.points * 2`) are translated the same
//! way, into [`Num`]: reads joined by `+`, `-`, `*` and `/`.
//!
//! The translation is an accelerator, never a second language: [`Native::eval`]
//! answers only when every value it meets has the type Rhai would give it and the
//! operator is one whose Rhai meaning is plain (integers and decimals, which Rhai
//! compares and computes as decimals when one side is; strings and booleans of the
//! same type). Anything else — a missing field (`()`), mixed types, a non-event
//! trigger, an overflow or a division by zero — answers `None`, and the caller
//! evaluates the text with Rhai as before, so results and error messages are Rhai's
//! own. Every value read is pure, so giving up half-way and starting again in Rhai
//! changes nothing.

use rhai::{ASTFlags, Expr, FnCallExpr, Stmt, AST};
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use crate::event::Event;
use crate::member::Member;
use crate::money::Decimal;

/// An expression translated from Rhai (see the module docs): as a condition, as an
/// amount, or both (`member.left` is either; Rhai decides which it must be).
#[derive(Debug, Clone, PartialEq)]
pub struct Native {
    condition: Option<Node>,
    amount: Option<Num>,
}

/// An amount: a read, or two amounts joined by an arithmetic operator.
#[derive(Debug, Clone, PartialEq)]
enum Num {
    Read(Operand),
    Arith(Arith, Box<Num>, Box<Num>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Rhai flattens `a && b && c` into one list; evaluated left to right, stopping at
    /// the first `false` as Rhai does.
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Compare(Op, Operand, Operand),
    /// A bare operand used as a boolean (`member.left`).
    Value(Operand),
    /// `"name" in member.tags` (or `.badges`): Rhai's `contains` on the member's
    /// array of strings, which compares each with `==`.
    Holds(Marks, String),
}

/// The member's lists of names that `in` can search.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Marks {
    Tags,
    Badges,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Int(i64),
    /// A decimal literal (`12.5`).
    Dec(Decimal),
    Str(String),
    Bool(bool),
    Event(EventField),
    Member(MemberField),
}

/// `event.<field>`, as `Bindings` builds it.
#[derive(Debug, Clone, PartialEq)]
enum EventField {
    Id,
    Type,
    Member,
    /// `event.data.<a>.<b>…`: through JSON objects.
    Data(Vec<String>),
}

/// `member.<field>`, as `Bindings` builds it (only the fields whose Rhai value is a
/// plain integer, string or boolean).
#[derive(Debug, Clone, PartialEq)]
enum MemberField {
    Id,
    Points,
    PointsLifetime,
    Tier,
    Left,
    Unsubscribed,
    /// A built-in counter read as `member.<name>`.
    Builtin(&'static str),
    /// `member.counters.<name>`.
    Counter(String),
    /// A profile attribute (any name that is not one of `MEMBER_FIELDS`).
    Attr(String),
}

/// A value as Rhai would see it, borrowed from the member, the event or the condition.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val<'a> {
    Int(i64),
    /// Rhai's `decimal`: a JSON number that is not an integer, a counter that is not
    /// whole.
    Dec(Decimal),
    Str(&'a str),
    Bool(bool),
}

impl Native {
    /// The translation of an expression's AST, or `None` when it uses anything
    /// outside the simple subset (then it always runs in Rhai).
    pub fn translate(ast: &AST) -> Option<Native> {
        if ast.iter_functions().next().is_some() {
            return None;
        }
        let native = match ast.statements() {
            [Stmt::Expr(expr)] => Native {
                condition: node(expr),
                amount: num(expr),
            },
            // Rhai's optimiser makes an expression that is one call a call statement.
            [Stmt::FnCall(call, _)] => Native {
                condition: operator(call),
                amount: arith(call),
            },
            _ => return None,
        };
        (native.condition.is_some() || native.amount.is_some()).then_some(native)
    }

    /// The condition's value for `member` and `event`; `None` when Rhai must decide.
    pub fn eval(&self, member: &Member, event: Option<&Event>) -> Option<bool> {
        self.condition.as_ref()?.eval(&Sources { member, event })
    }

    /// The amount's value for `member` and `event`, as `Sandbox::eval_number` gives
    /// it; `None` when Rhai must decide.
    pub fn amount(&self, member: &Member, event: Option<&Event>) -> Option<Decimal> {
        match self.amount.as_ref()?.eval(&Sources { member, event })? {
            Number::Int(i) => Some(Decimal::from(i)),
            Number::Dec(d) => Some(d),
        }
    }
}

/// An amount's value, typed as Rhai types it.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i64),
    Dec(Decimal),
}

impl Number {
    fn decimal(self) -> Decimal {
        match self {
            Number::Int(i) => Decimal::from(i),
            Number::Dec(d) => d,
        }
    }
}

impl Num {
    fn eval(&self, at: &Sources<'_>) -> Option<Number> {
        match self {
            Num::Read(operand) => match operand.read(at)? {
                Val::Int(i) => Some(Number::Int(i)),
                Val::Dec(d) => Some(Number::Dec(d)),
                Val::Str(_) | Val::Bool(_) => None,
            },
            Num::Arith(op, left, right) => compute(*op, left.eval(at)?, right.eval(at)?),
        }
    }
}

/// Rhai's built-in arithmetic: integers with integers (checked; `/` truncates),
/// otherwise both as decimals (checked). An overflow or a division by zero is an
/// error in Rhai: left to it, for its message.
fn compute(op: Arith, left: Number, right: Number) -> Option<Number> {
    if let (Number::Int(x), Number::Int(y)) = (left, right) {
        let value = match op {
            Arith::Add => x.checked_add(y),
            Arith::Sub => x.checked_sub(y),
            Arith::Mul => x.checked_mul(y),
            Arith::Div if y == 0 => None,
            Arith::Div => x.checked_div(y),
        };
        return value.map(Number::Int);
    }
    let (x, y) = (left.decimal(), right.decimal());
    let value = match op {
        Arith::Add => x.checked_add(y),
        Arith::Sub => x.checked_sub(y),
        Arith::Mul => x.checked_mul(y),
        Arith::Div if y.is_zero() => None,
        Arith::Div => x.checked_div(y),
    };
    value.map(Number::Dec)
}

struct Sources<'a> {
    member: &'a Member,
    event: Option<&'a Event>,
}

impl Node {
    fn eval(&self, at: &Sources<'_>) -> Option<bool> {
        match self {
            Node::And(items) => {
                for item in items {
                    if !item.eval(at)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            Node::Or(items) => {
                for item in items {
                    if item.eval(at)? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Node::Not(inner) => inner.eval(at).map(|b| !b),
            Node::Value(operand) => match operand.read(at)? {
                Val::Bool(b) => Some(b),
                Val::Int(_) | Val::Dec(_) | Val::Str(_) => None,
            },
            Node::Compare(op, left, right) => compare(*op, left.read(at)?, right.read(at)?),
            Node::Holds(Marks::Tags, name) => Some(at.member.tags.contains(name)),
            Node::Holds(Marks::Badges, name) => Some(at.member.badges.iter().any(|b| b == name)),
        }
    }
}

/// Only same-typed operands with an unambiguous meaning; Rhai decides the rest.
fn compare(op: Op, left: Val<'_>, right: Val<'_>) -> Option<bool> {
    match (left, right) {
        (Val::Int(a), Val::Int(b)) => Some(match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }),
        // Rhai compares an integer with a decimal as two decimals.
        (Val::Dec(a), Val::Dec(b)) => Some(order(op, a.cmp(&b))),
        (Val::Dec(a), Val::Int(b)) => Some(order(op, a.cmp(&Decimal::from(b)))),
        (Val::Int(a), Val::Dec(b)) => Some(order(op, Decimal::from(a).cmp(&b))),
        (Val::Str(a), Val::Str(b)) => equality(op, a == b),
        (Val::Bool(a), Val::Bool(b)) => equality(op, a == b),
        _ => None,
    }
}

fn order(op: Op, ordering: std::cmp::Ordering) -> bool {
    match op {
        Op::Eq => ordering.is_eq(),
        Op::Ne => ordering.is_ne(),
        Op::Lt => ordering.is_lt(),
        Op::Le => ordering.is_le(),
        Op::Gt => ordering.is_gt(),
        Op::Ge => ordering.is_ge(),
    }
}

fn equality(op: Op, equal: bool) -> Option<bool> {
    match op {
        Op::Eq => Some(equal),
        Op::Ne => Some(!equal),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => None,
    }
}

impl Operand {
    fn read<'a>(&'a self, at: &Sources<'a>) -> Option<Val<'a>> {
        match self {
            Operand::Int(i) => Some(Val::Int(*i)),
            Operand::Dec(d) => Some(Val::Dec(*d)),
            Operand::Str(s) => Some(Val::Str(s)),
            Operand::Bool(b) => Some(Val::Bool(*b)),
            Operand::Event(field) => field.read(at.event?),
            Operand::Member(field) => field.read(at.member),
        }
    }
}

impl EventField {
    fn read<'a>(&self, event: &'a Event) -> Option<Val<'a>> {
        match self {
            EventField::Id => Some(Val::Str(&event.id)),
            EventField::Type => Some(Val::Str(&event.kind)),
            EventField::Member => event.member.as_deref().map(Val::Str),
            EventField::Data(path) => {
                let (first, rest) = path.split_first()?;
                let mut value = field_of(&event.data, first)?;
                for key in rest {
                    value = field_of(value.as_object()?, key)?;
                }
                json(value)
            }
        }
    }
}

/// Objects up to this many fields are searched in order rather than through their
/// index: hashing the key (SipHash) costs more than comparing it with a few others.
const SCAN_FIELDS: usize = 16;

/// `object[key]`. The keys are unique, so the scan finds what the index would.
fn field_of<'a>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a serde_json::Value> {
    if object.len() <= SCAN_FIELDS {
        object
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        object.get(key)
    }
}

impl MemberField {
    fn read<'a>(&self, member: &'a Member) -> Option<Val<'a>> {
        match self {
            MemberField::Id => Some(Val::Str(&member.id)),
            MemberField::Points => Some(Val::Int(member.points)),
            MemberField::PointsLifetime => Some(Val::Int(member.points_lifetime)),
            MemberField::Tier => member.tier.as_deref().map(Val::Str),
            MemberField::Left => Some(Val::Bool(member.left)),
            MemberField::Unsubscribed => Some(Val::Bool(member.unsubscribed)),
            MemberField::Builtin(name) => counter(member.counter(name)),
            MemberField::Counter(name) => match member.counters.get(name) {
                Some(value) => counter(*value),
                // Built-in counters are in `member.counters` even at zero.
                None if super::bindings::BUILTIN_COUNTERS.contains(&name.as_str()) => {
                    Some(Val::Int(0))
                }
                None => None,
            },
            MemberField::Attr(name) => json(member.attrs.get(name)?),
        }
    }
}

/// A counter as `convert::number` gives it to Rhai: whole values are `INT`, others
/// decimals.
fn counter(value: Decimal) -> Option<Val<'static>> {
    Some(match value.is_integer().then(|| value.to_i64()).flatten() {
        Some(int) => Val::Int(int),
        None => Val::Dec(value.normalize()),
    })
}

/// A JSON value as `convert::json_to_dynamic` gives it to Rhai, when plain.
fn json(value: &Value) -> Option<Val<'_>> {
    match value {
        Value::Bool(b) => Some(Val::Bool(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(int) => Some(Val::Int(int)),
            None => crate::money::from_json(n).map(Val::Dec),
        },
        Value::String(s) => Some(Val::Str(s)),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn node(expr: &Expr) -> Option<Node> {
    match expr {
        Expr::And(items, _) => items.iter().map(node).collect::<Option<_>>().map(Node::And),
        Expr::Or(items, _) => items.iter().map(node).collect::<Option<_>>().map(Node::Or),
        Expr::FnCall(call, _) => operator(call),
        _ => operand(expr).map(Node::Value),
    }
}

/// `!`, `==`, `!=`, `<`, `<=`, `>`, `>=` as Rhai's own operators, and `in`.
fn operator(call: &FnCallExpr) -> Option<Node> {
    if call.name == "contains" {
        return holds(call);
    }
    call.op_token.as_ref()?;
    match (call.name.as_str(), call.args.as_slice()) {
        ("!", [inner]) => Some(Node::Not(Box::new(node(inner)?))),
        (name, [left, right]) => {
            let op = match name {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return None,
            };
            Some(Node::Compare(op, operand(left)?, operand(right)?))
        }
        _ => None,
    }
}

/// An amount: a read, or `+`, `-`, `*`, `/` as Rhai's own operators.
fn num(expr: &Expr) -> Option<Num> {
    match expr {
        Expr::FnCall(call, _) => arith(call),
        _ => operand(expr).map(Num::Read),
    }
}

fn arith(call: &FnCallExpr) -> Option<Num> {
    call.op_token.as_ref()?;
    let [left, right] = call.args.as_slice() else {
        return None;
    };
    let op = match call.name.as_str() {
        "+" => Arith::Add,
        "-" => Arith::Sub,
        "*" => Arith::Mul,
        "/" => Arith::Div,
        _ => return None,
    };
    Some(Num::Arith(op, Box::new(num(left)?), Box::new(num(right)?)))
}

/// `"name" in member.tags`: Rhai parses `a in b` as the call `contains(b, a)` (and
/// `a !in b` as `!contains(b, a)`). A script defining its own `contains` is never
/// translated (`Native::translate`), so the call is the built-in one.
fn holds(call: &FnCallExpr) -> Option<Node> {
    let ("contains", [Expr::Dot(dot, flags, _), Expr::StringConstant(name, _)]) =
        (call.name.as_str(), call.args.as_slice())
    else {
        return None;
    };
    if flags.contains(ASTFlags::NEGATED) {
        return None;
    }
    let Expr::Variable(var, ..) = &dot.lhs else {
        return None;
    };
    if var.1.as_str() != "member" {
        return None;
    }
    let marks = match properties(&dot.rhs)?.as_slice() {
        [one] if one == "tags" => Marks::Tags,
        [one] if one == "badges" => Marks::Badges,
        _ => return None,
    };
    Some(Node::Holds(marks, name.to_string()))
}

fn operand(expr: &Expr) -> Option<Operand> {
    match expr {
        Expr::IntegerConstant(i, _) => Some(Operand::Int(*i)),
        // Without floats, Rhai reads `12.5` as a decimal constant.
        Expr::DynamicConstant(value, _) => value.as_decimal().ok().map(Operand::Dec),
        Expr::StringConstant(s, _) => Some(Operand::Str(s.to_string())),
        Expr::BoolConstant(b, _) => Some(Operand::Bool(*b)),
        Expr::Dot(dot, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
            let Expr::Variable(var, ..) = &dot.lhs else {
                return None;
            };
            let path = properties(&dot.rhs)?;
            match var.1.as_str() {
                "event" => event_field(&path).map(Operand::Event),
                "member" => member_field(&path).map(Operand::Member),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `a.b.c` after the binding, when every step is a plain `.property`.
fn properties(rhs: &Expr) -> Option<Vec<String>> {
    match rhs {
        Expr::Property(prop, _) => Some(vec![prop.2.to_string()]),
        Expr::Dot(chain, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
            let Expr::Property(prop, _) = &chain.lhs else {
                return None;
            };
            let mut path = vec![prop.2.to_string()];
            path.extend(properties(&chain.rhs)?);
            Some(path)
        }
        _ => None,
    }
}

fn event_field(path: &[String]) -> Option<EventField> {
    match path {
        [one] => match one.as_str() {
            "id" => Some(EventField::Id),
            "type" => Some(EventField::Type),
            "member" => Some(EventField::Member),
            _ => None,
        },
        [data, rest @ ..] if data == "data" && !rest.is_empty() => {
            Some(EventField::Data(rest.to_vec()))
        }
        _ => None,
    }
}

fn member_field(path: &[String]) -> Option<MemberField> {
    match path {
        [one] => {
            let builtin = super::bindings::BUILTIN_COUNTERS
                .iter()
                .find(|name| **name == one.as_str());
            if let Some(name) = builtin {
                return Some(MemberField::Builtin(name));
            }
            match one.as_str() {
                "id" => Some(MemberField::Id),
                "points" => Some(MemberField::Points),
                "points_lifetime" => Some(MemberField::PointsLifetime),
                "tier" => Some(MemberField::Tier),
                "left" => Some(MemberField::Left),
                "unsubscribed" => Some(MemberField::Unsubscribed),
                name if super::MEMBER_FIELDS.contains(&name) => None,
                name => Some(MemberField::Attr(name.to_string())),
            }
        }
        [counters, name] if counters == "counters" => Some(MemberField::Counter(name.clone())),
        _ => None,
    }
}
