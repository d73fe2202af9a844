//! YAML → a tree that remembers where every node was written.
//!
//! serde-saphyr gives each node's position through [`Spanned`]; a hand-written visitor
//! wraps every child in one. The result is then rebuilt as a [`Value`] tree carrying
//! full `file:line:col` positions, with `${NAME}` substituted and duplicate keys
//! reported, so the compile stage can point at any key or value.
//! Booleans follow YAML 1.2: `on`, `yes` and `no` stay strings (`on:` is a counter key).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::{RuleError, SourcePos};

/// A YAML value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub at: SourcePos,
    pub node: Node,
    /// For strings: where the text itself starts (inside quotes, or on the first line
    /// of a block scalar), so errors inside an expression can point into it.
    pub text_start: TextStart,
    /// A `${NAME}` in this string was not set: that is already reported, so whoever
    /// reads the value should not report it again as malformed.
    pub unresolved: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Value>),
    /// Entries in the order written; keys are unique (duplicates are reported).
    Map(Vec<(Key, Value)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub at: SourcePos,
}

/// Where a string scalar's text begins. In a literal block (`|`) lines map one to one
/// onto file lines; in any other style only the first line does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextStart {
    pub line: u32,
    pub col: u32,
    pub literal_block: bool,
}

impl Value {
    /// What the value is, as a message says it: "found a list".
    pub fn kind(&self) -> &'static str {
        match self.node {
            Node::Null => "nothing",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.node {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Where the character `offset` characters into this string's text was written,
    /// so an error can point at the part of a value at fault (a cron field). Exact for
    /// text on one line without escapes, which is how such values are written; in a
    /// folded or escaped scalar it can be off by what folding or escapes changed.
    pub fn inside(&self, offset: usize) -> SourcePos {
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        SourcePos {
            file: self.at.file.clone(),
            line: self.text_start.line,
            col: self.text_start.col.saturating_add(offset),
        }
    }
}

/// One YAML file being turned into a [`Value`].
pub struct Source<'a> {
    pub file: Arc<str>,
    pub text: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Parses one file. `None` for an empty document (or one holding only comments);
/// problems go to `errors`. A syntax error stops the file; everything else is
/// collected and the tree is still returned.
pub fn parse(src: &Source, errors: &mut Vec<RuleError>) -> Option<Value> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    // Duplicates are reported by `build`, which can go on collecting other errors.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    match serde_saphyr::from_str_with_options::<Option<Spanned<Raw>>>(src.text, options) {
        Ok(Some(raw)) if raw.value != Raw::Null => Some(build(src, raw, errors)),
        Ok(_) => None,
        Err(e) => {
            let (line, col) = e
                .location()
                .map(|l| (l.line() as u32, l.column() as u32))
                .unwrap_or((1, 1));
            errors.push(RuleError {
                at: Some(pos(&src.file, line, col)),
                message: format!("invalid YAML: {}", plain_message(&e.to_string())),
                hint: None,
            });
            None
        }
    }
}

fn pos(file: &Arc<str>, line: u32, col: u32) -> SourcePos {
    SourcePos {
        file: file.clone(),
        line,
        col,
    }
}

fn at(src: &Source, loc: Location) -> SourcePos {
    pos(&src.file, loc.line() as u32, loc.column() as u32)
}

fn build(src: &Source, raw: Spanned<Raw>, errors: &mut Vec<RuleError>) -> Value {
    let here = at(src, raw.referenced);
    let mut text_start = TextStart {
        line: here.line,
        col: here.col,
        literal_block: false,
    };
    let mut unresolved = false;
    let node = match raw.value {
        Raw::Null => Node::Null,
        Raw::Bool(b) => Node::Bool(b),
        Raw::Int(i) => Node::Int(i),
        Raw::Float(f) => Node::Float(f),
        Raw::Str(s) => {
            text_start = locate_text(src.text, raw.referenced);
            let before = errors.len();
            let text = substitute(src, &here, &s, errors);
            unresolved = errors.len() > before;
            Node::Str(text)
        }
        Raw::Seq(items) => Node::Seq(items.into_iter().map(|i| build(src, i, errors)).collect()),
        Raw::Map(entries) => {
            let mut seen: HashMap<String, SourcePos> = HashMap::new();
            let mut out = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let key = Key {
                    at: at(src, key.referenced),
                    name: key.value,
                };
                if let Some(first) = seen.get(&key.name) {
                    errors.push(RuleError {
                        at: Some(key.at.clone()),
                        message: format!("duplicate key {:?} (first written at {first})", key.name),
                        hint: None,
                    });
                    continue;
                }
                seen.insert(key.name.clone(), key.at.clone());
                out.push((key, build(src, value, errors)));
            }
            Node::Map(out)
        }
    };
    Value {
        at: here,
        node,
        text_start,
        unresolved,
    }
}

/// Replaces every `${NAME}` from the environment; a missing variable is an error at
/// the scalar. Other uses of `$` are left alone.
fn substitute(src: &Source, here: &SourcePos, text: &str, errors: &mut Vec<RuleError>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after.find('}').filter(|&n| is_env_name(&after[..n]));
        match name_len {
            Some(n) => {
                let name = &after[..n];
                match (src.env)(name) {
                    Some(value) => out.push_str(&value),
                    None => errors.push(RuleError {
                        at: Some(here.clone()),
                        message: format!("environment variable {name} is not set"),
                        hint: None,
                    }),
                }
                rest = &after[n + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Finds where a scalar's text starts from its node position and the source text.
/// Quoted scalars are located at their opening quote; block scalars at their first
/// content line, with the `|` or `>` header on a line before.
fn locate_text(text: &str, loc: Location) -> TextStart {
    let plain = TextStart {
        line: loc.line() as u32,
        col: loc.column() as u32,
        literal_block: false,
    };
    let Some(offset) = loc.span().byte_offset() else {
        return plain;
    };
    let Some((before, rest)) = text.split_at_checked(offset as usize) else {
        return plain;
    };
    if rest.starts_with(['"', '\'']) {
        return TextStart {
            col: plain.col + 1,
            ..plain
        };
    }
    let header_line = before
        .trim_end_matches([' ', '\t', '\r', '\n'])
        .rsplit('\n')
        .next()
        .unwrap_or("");
    let header = header_line
        .split(" #")
        .next()
        .unwrap_or("")
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap_or("");
    let is_block_header = header.starts_with(['|', '>'])
        && header[1..]
            .chars()
            .all(|c| matches!(c, '+' | '-' | '1'..='9'))
        && before.ends_with(['\n', ' ']);
    TextStart {
        literal_block: is_block_header && header.starts_with('|'),
        ..plain
    }
}

/// serde-saphyr appends " at line L column C" to its messages; the position is
/// reported separately, so keep only the words.
fn plain_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text).trim();
    let cut = first.rfind(" at line ").unwrap_or(first.len());
    first[..cut].trim_end_matches(':').to_string()
}

/// The tree as serde-saphyr hands it over, before positions become `SourcePos`.
#[derive(Clone, Debug, PartialEq)]
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Raw>>()? {
            let value = map.next_value::<Spanned<Raw>>()?;
            let text = match key.value {
                Raw::Str(s) => s,
                Raw::Int(i) => i.to_string(),
                Raw::Float(f) => f.to_string(),
                Raw::Bool(b) => b.to_string(),
                Raw::Null => "null".to_string(),
                Raw::Seq(_) | Raw::Map(_) => {
                    return Err(de::Error::custom(
                        "a key must be a plain word, not a list or a mapping",
                    ))
                }
            };
            entries.push((Spanned::new(text, key.referenced, key.defined), value));
        }
        Ok(Raw::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (Option<Value>, Vec<RuleError>) {
        let src = Source {
            file: Arc::from("r.yaml"),
            text,
            env,
        };
        let mut errors = Vec::new();
        (parse(&src, &mut errors), errors)
    }

    fn parse_ok(text: &str) -> Value {
        let (value, errors) = parse_with(text, &|_| None);
        assert!(errors.is_empty(), "{errors:?}");
        value.unwrap()
    }

    fn entry<'a>(value: &'a Value, key: &str) -> &'a Value {
        match &value.node {
            Node::Map(entries) => &entries.iter().find(|(k, _)| k.name == key).unwrap().1,
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn every_key_and_value_knows_its_line_and_column() {
        let root = parse_ok("a: 1\nb:\n  - x\n  - { c: 2 }\n");
        let Node::Map(entries) = &root.node else {
            panic!()
        };
        assert_eq!((entries[1].0.at.line, entries[1].0.at.col), (2, 1));
        let Node::Seq(items) = &entry(&root, "b").node else {
            panic!()
        };
        assert_eq!((items[1].at.line, items[1].at.col), (4, 5));
        let c = entry(&items[1], "c");
        assert_eq!(c.node, Node::Int(2));
        assert_eq!((c.at.line, c.at.col, &*c.at.file), (4, 10, "r.yaml"));
    }

    #[test]
    fn yes_no_and_on_are_strings_but_true_is_a_boolean() {
        let root = parse_ok("on: yes\nx: no\ny: true\n");
        assert_eq!(entry(&root, "on").node, Node::Str("yes".into()));
        assert_eq!(entry(&root, "x").node, Node::Str("no".into()));
        assert_eq!(entry(&root, "y").node, Node::Bool(true));
    }

    #[test]
    fn environment_variables_are_substituted_in_strings() {
        let env = |name: &str| (name == "HOST").then(|| "mail.example".to_string());
        let (root, errors) = parse_with("host: \"${HOST}:25\"\nkeep: \"$HOME and ${ x }\"\n", &env);
        assert!(errors.is_empty());
        let root = root.unwrap();
        assert_eq!(
            entry(&root, "host").node,
            Node::Str("mail.example:25".into())
        );
        assert_eq!(
            entry(&root, "keep").node,
            Node::Str("$HOME and ${ x }".into())
        );
    }

    #[test]
    fn a_missing_variable_is_an_error_at_its_scalar() {
        let (_, errors) = parse_with("a:\n  b: x-${NOPE}\n", &|_| None);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "r.yaml:2:6: environment variable NOPE is not set"
        );
    }

    #[test]
    fn duplicate_keys_are_reported_and_parsing_goes_on() {
        let (root, errors) = parse_with("a: 1\nb: 2\na: 3\n", &|_| None);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "r.yaml:3:1: duplicate key \"a\" (first written at r.yaml:1:1)"
        );
        assert_eq!(entry(&root.unwrap(), "a").node, Node::Int(1));
    }

    #[test]
    fn text_starts_inside_quotes_and_on_the_first_line_of_a_block() {
        let root = parse_ok("q: \"abc\"\np: abc\nb: |\n    one\n    two\n");
        let q = entry(&root, "q").text_start;
        assert_eq!((q.line, q.col, q.literal_block), (1, 5, false));
        let p = entry(&root, "p").text_start;
        assert_eq!((p.line, p.col), (2, 4));
        let b = entry(&root, "b").text_start;
        assert_eq!((b.line, b.col, b.literal_block), (4, 5, true));
    }

    #[test]
    fn an_empty_file_is_no_document() {
        assert_eq!(parse_with("# only a comment\n", &|_| None).0, None);
        assert_eq!(parse_with("", &|_| None).0, None);
    }

    #[test]
    fn a_syntax_error_says_where() {
        let (value, errors) = parse_with("a: b: c\n", &|_| None);
        assert!(value.is_none());
        assert_eq!(
            errors[0].to_string(),
            "r.yaml:1:5: invalid YAML: mapping values are not allowed in this context"
        );
    }
}
