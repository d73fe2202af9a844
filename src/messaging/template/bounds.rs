//! What one render may build (issue 12). Fuel bounds the instructions a render runs,
//! but one instruction can ask for gigabytes (`range(100000) | join("x" * 100000)`),
//! and an allocation that fails aborts the whole process. So every way a template
//! builds a string or a list checks the size of its result *before* building it:
//!
//! - the string operators `~`, `+` and `*` are rewritten into the filters below
//!   (see `operators`);
//! - the built-in filters that can build more than they are given (`join`, `replace`,
//!   `indent`, `format`, `batch`, `slice`, `chain`, `list`, `tojson`, `string`, `pprint`)
//!   are wrapped with a check, and `range` is capped;
//! - every `{{ … }}` of a render, in captures and macros too, counts toward
//!   [`MAX_EMITTED`];
//! - the rendered text goes through a writer that stops at [`MAX_RENDERED`].
//!
//! A render over a bound fails with a message naming the bound, like any other
//! render failure: the rule that sent the message fails, nothing else.

use std::fmt::{self, Write as _};
use std::io;
use std::sync::LazyLock;

use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::operators;

/// Bytes one rendered part (a subject, a body, a webhook body) may hold.
pub const MAX_RENDERED: usize = 256 * 1024;
/// Bytes any string a template builds along the way may hold.
pub const MAX_STRING: usize = 256 * 1024;
/// Items any list a template builds may hold (`range`, `*`, `+`, `chain`, `list`).
pub const MAX_ITEMS: usize = 10_000;
/// Bytes all the `{{ … }}` of one render may print, counting text captured by `set`
/// blocks and macro calls (which a later `{{ }}` may print again).
pub const MAX_EMITTED: usize = 1024 * 1024;

/// Where the running count of [`MAX_EMITTED`] lives during a render.
const EMITTED: &str = "rally_emitted";

fn too_big(what: &str, limit: usize, unit: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what} would be over the limit of {limit} {unit} a template may build"),
    )
}

fn string_too_big(what: &str) -> Error {
    too_big(what, MAX_STRING, "bytes")
}

fn list_too_big(what: &str) -> Error {
    too_big(what, MAX_ITEMS, "items")
}

/// A `fmt::Write` that keeps at most `limit` bytes and fails past them, so formatting
/// a value never builds more than the bound.
struct Capped {
    text: String,
    limit: usize,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.text.len() + s.len() > self.limit {
            return Err(fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// Counts the bytes a value prints as, stopping (with `None`) past `limit`.
fn printed_len(value: &Value, limit: usize) -> Option<usize> {
    if let Some(s) = value.as_str() {
        return (s.len() <= limit).then_some(s.len());
    }
    struct Count(usize, usize);
    impl fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            if self.0 > self.1 {
                Err(fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut count = Count(0, limit);
    write!(count, "{value}").ok().map(|_| count.0)
}

/// The number of items of a list-like value, or `None` past [`MAX_ITEMS`]. Iterates at
/// most `MAX_ITEMS + 1` items, so a lazy chain of chains cannot stall it.
fn items_within_limit(value: &Value) -> Option<usize> {
    if let Some(n) = value.len() {
        return (n <= MAX_ITEMS).then_some(n);
    }
    let n = value.try_iter().ok()?.take(MAX_ITEMS + 1).count();
    (n <= MAX_ITEMS).then_some(n)
}

fn is_list(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// Bytes a list prints as, roughly (its items' text), or `None` past [`MAX_STRING`].
fn list_bytes(value: &Value) -> Option<usize> {
    let mut total = 0usize;
    for item in value.try_iter().ok()?.take(MAX_ITEMS + 1) {
        total += printed_len(&item, MAX_STRING)? + 2;
        if total > MAX_STRING {
            return None;
        }
    }
    Some(total)
}

/// `a ~ b`.
fn concat(a: &Value, b: &Value) -> Result<Value, Error> {
    let mut out = Capped {
        text: String::new(),
        limit: MAX_STRING,
    };
    write!(out, "{a}{b}").map_err(|_| string_too_big("joining these strings with `~`"))?;
    Ok(Value::from(out.text))
}

/// minijinja's own `+` and `*`, for what is not a string or a list (numbers), so
/// arithmetic keeps its exact semantics.
static ARITHMETIC: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);

fn builtin_op(op: &str, a: &Value, b: &Value) -> Result<Value, Error> {
    let expr = ARITHMETIC.compile_expression(op)?;
    expr.eval(minijinja::context! { a => a, b => b })
}

/// `a + b`.
fn add(a: Value, b: Value) -> Result<Value, Error> {
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        if x.len() + y.len() > MAX_STRING {
            return Err(string_too_big("adding these strings with `+`"));
        }
        return Ok(Value::from([x, y].concat()));
    }
    if is_list(&a) && is_list(&b) {
        let items = items_within_limit(&a)
            .zip(items_within_limit(&b))
            .map(|(x, y)| x + y);
        if items.is_none_or(|n| n > MAX_ITEMS) {
            return Err(list_too_big("adding these lists with `+`"));
        }
        let bytes = list_bytes(&a).zip(list_bytes(&b)).map(|(x, y)| x + y);
        if bytes.is_none_or(|n| n > MAX_STRING) {
            return Err(string_too_big("adding these lists with `+`"));
        }
    }
    builtin_op("a + b", &a, &b)
}

/// `a * b`.
fn mul(a: Value, b: Value) -> Result<Value, Error> {
    let (thing, times) = if a.as_str().is_some() || is_list(&a) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if let (Some(s), Some(n)) = (thing.as_str(), times.as_usize()) {
        if s.len().saturating_mul(n) > MAX_STRING {
            return Err(string_too_big("repeating this string with `*`"));
        }
        return Ok(Value::from(s.repeat(n)));
    }
    if let (true, Some(n)) = (is_list(thing), times.as_usize()) {
        let items = items_within_limit(thing).map(|len| len.saturating_mul(n));
        if items.is_none_or(|n| n > MAX_ITEMS) {
            return Err(list_too_big("repeating this list with `*`"));
        }
        let bytes = list_bytes(thing).map(|len| len.saturating_mul(n));
        if bytes.is_none_or(|n| n > MAX_STRING) {
            return Err(string_too_big("repeating this list with `*`"));
        }
    }
    builtin_op("a * b", &a, &b)
}

/// `range`, capped at [`MAX_ITEMS`] (minijinja's own cap is 100,000).
fn range(lower: isize, upper: Option<isize>, step: Option<isize>) -> Result<Value, Error> {
    let value = minijinja::functions::range(lower, upper, step)?;
    if items_within_limit(&value).is_none() {
        return Err(list_too_big("this range"));
    }
    Ok(value)
}

/// A check on a built-in filter's arguments, before it runs.
type Check = fn(&[Value]) -> Result<(), Error>;

/// Registers `name` as built-in `builtin` behind `check`, and refuses a result over
/// the bounds too (a last line of defence: the check is what keeps it from being
/// built).
fn guard(env: &mut Environment<'static>, name: &'static str, builtin: Value, check: Check) {
    env.add_filter(name, move |state: &State, args: Rest<Value>| {
        check(&args)?;
        let result = builtin.call(state, &args)?;
        if printed_len(&result, MAX_STRING).is_none() && result.as_str().is_some() {
            return Err(string_too_big(&format!("the result of `{name}`")));
        }
        Ok(result)
    });
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::UNDEFINED)
}

/// A keyword argument, if the call has keywords (they come last, as a map).
fn kwarg(args: &[Value], name: &str) -> Option<Value> {
    let last = args.last()?;
    if last.kind() != ValueKind::Map {
        return None;
    }
    last.get_attr(name).ok().filter(|v| !v.is_undefined())
}

fn check_join(args: &[Value]) -> Result<(), Error> {
    let joiner = printed_len(&arg(args, 1), MAX_STRING).unwrap_or(0);
    let mut total = 0usize;
    let items = arg(args, 0).try_iter()?;
    for (i, item) in items.enumerate() {
        if i >= MAX_ITEMS {
            return Err(list_too_big("joining this list"));
        }
        let len = printed_len(&item, MAX_STRING).ok_or_else(|| string_too_big("this join"))?;
        total = total.saturating_add(len).saturating_add(joiner);
        if total > MAX_STRING {
            return Err(string_too_big("this join"));
        }
    }
    Ok(())
}

fn check_replace(args: &[Value]) -> Result<(), Error> {
    let text = arg(args, 0).to_string();
    let from = arg(args, 1).to_string();
    let to = printed_len(&arg(args, 2), MAX_STRING).ok_or_else(|| string_too_big("replace"))?;
    let count = if from.is_empty() {
        text.chars().count() + 1
    } else {
        text.matches(from.as_str()).count()
    };
    let size = text
        .len()
        .saturating_add(count.saturating_mul(to.saturating_sub(from.len())));
    if size > MAX_STRING {
        return Err(string_too_big("this replace"));
    }
    Ok(())
}

fn check_indent(args: &[Value]) -> Result<(), Error> {
    let text = arg(args, 0).to_string();
    let width = kwarg(args, "width").unwrap_or_else(|| arg(args, 1));
    let width = if width.is_undefined() {
        4
    } else {
        width.as_usize().unwrap_or(usize::MAX)
    };
    let lines = text.matches('\n').count() + 1;
    let size = text.len().saturating_add(width.saturating_mul(lines));
    if size > MAX_STRING {
        return Err(string_too_big("this indent"));
    }
    Ok(())
}

/// A printf width or precision (`%999999999s`) pads before any result can be checked.
fn check_format(args: &[Value]) -> Result<(), Error> {
    let format = arg(args, 0).to_string();
    let mut number = 0usize;
    for c in format.chars() {
        match c.to_digit(10) {
            Some(d) => {
                number = number.saturating_mul(10).saturating_add(d as usize);
                if number > MAX_STRING {
                    return Err(string_too_big("this format's width"));
                }
            }
            None => number = 0,
        }
    }
    Ok(())
}

/// `batch(n, fill)` and `slice(n, fill)` pad to `n` items.
fn check_count(args: &[Value]) -> Result<(), Error> {
    if arg(args, 1).as_usize().is_none_or(|n| n > MAX_ITEMS) {
        return Err(list_too_big("this batch or slice"));
    }
    Ok(())
}

fn check_chain(args: &[Value]) -> Result<(), Error> {
    let mut items = 0usize;
    for value in args.iter().filter(|v| is_list(v)) {
        items += items_within_limit(value).ok_or_else(|| list_too_big("this chain"))?;
        if items > MAX_ITEMS {
            return Err(list_too_big("this chain"));
        }
    }
    Ok(())
}

fn check_list(args: &[Value]) -> Result<(), Error> {
    items_within_limit(&arg(args, 0))
        .map(|_| ())
        .ok_or_else(|| list_too_big("this list"))
}

/// What a value prints as (`string`, `pprint`, `tojson`) is bounded by the value's
/// own size, but `tojson(indent=…)` multiplies it.
fn check_printed(args: &[Value]) -> Result<(), Error> {
    let indent = kwarg(args, "indent").unwrap_or_else(|| arg(args, 1));
    if indent.as_usize().is_some_and(|n| n > 16) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "a JSON indent over 16 spaces is refused",
        ));
    }
    printed_len(&arg(args, 0), MAX_STRING)
        .map(|_| ())
        .ok_or_else(|| string_too_big("printing this value"))
}

/// Every `{{ … }}` counts toward [`MAX_EMITTED`], then prints as usual.
fn formatter(out: &mut minijinja::Output, state: &State, value: &Value) -> Result<(), Error> {
    let so_far = state
        .get_temp(EMITTED)
        .and_then(|v| v.as_usize())
        .unwrap_or(0);
    let len = printed_len(value, MAX_EMITTED.saturating_sub(so_far))
        .ok_or_else(|| too_big("what this template prints", MAX_EMITTED, "bytes"))?;
    state.set_temp(EMITTED, Value::from(so_far + len));
    minijinja::escape_formatter(out, state, value)
}

/// Installs the bounded operators, filters, `range` and the counting formatter.
pub(super) fn install(env: &mut Environment<'static>) {
    use minijinja::filters as f;
    env.add_filter(operators::CONCAT, |a: Value, b: Value| concat(&a, &b));
    env.add_filter(operators::ADD, add);
    env.add_filter(operators::MUL, mul);
    env.add_function("range", range);
    guard(env, "join", Value::from_function(f::join), check_join);
    guard(
        env,
        "replace",
        Value::from_function(f::replace),
        check_replace,
    );
    guard(env, "indent", Value::from_function(f::indent), check_indent);
    guard(env, "format", Value::from_function(f::format), check_format);
    guard(env, "batch", Value::from_function(f::batch), check_count);
    guard(env, "slice", Value::from_function(f::slice), check_count);
    guard(env, "chain", Value::from_function(f::chain), check_chain);
    guard(env, "list", Value::from_function(f::list), check_list);
    guard(
        env,
        "string",
        Value::from_function(f::string),
        check_printed,
    );
    guard(
        env,
        "pprint",
        Value::from_function(f::pprint),
        check_printed,
    );
    guard(
        env,
        "tojson",
        Value::from_function(f::tojson),
        check_printed,
    );
    guard(env, "json", Value::from_function(f::tojson), check_printed);
    env.set_formatter(formatter);
}

/// Where a render writes: fails (and so fails the render) past [`MAX_RENDERED`].
#[derive(Default)]
pub(super) struct RenderedText {
    pub bytes: Vec<u8>,
    /// A write went past the bound (minijinja's own error only says "I/O error").
    pub overflowed: bool,
}

/// The message for a render that stopped at [`MAX_RENDERED`].
pub(super) fn overflow_message() -> String {
    format!("the rendered text would be over the limit of {MAX_RENDERED} bytes")
}

impl io::Write for RenderedText {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED {
            self.overflowed = true;
            return Err(io::Error::other(overflow_message()));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
