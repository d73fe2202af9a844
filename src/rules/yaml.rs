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
    let node = match raw.value {
        Raw::Null => Node::Null,
        Raw::Bool(b) => Node::Bool(b),
        Raw::Int(i) => Node::Int(i),
        Raw::Float(f) => Node::Float(f),
        Raw::Str(s) => {
            text_start = locate_text(src.text, raw.referenced);
            Node::Str(substitute(src, &here, &s, errors))
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
fn locate_text(text: &str, loc: Location) -> TextStart {
    let (line, col) = (loc.line() as u32, loc.column() as u32);
    let plain = TextStart {
        line,
        col,
        literal_block: false,
    };
    let Some(offset) = loc.span().byte_offset() else {
        return plain;
    };
    let rest = text.get(offset as usize..).unwrap_or("");
    match rest.chars().next() {
        Some('"' | '\'') => TextStart {
            col: col + 1,
            ..plain
        },
        Some(style @ ('|' | '>')) => {
            // The content starts on the first non-blank line after the header.
            let mut content_line = line;
            for body_line in rest.lines().skip(1) {
                content_line += 1;
                if !body_line.trim().is_empty() {
                    let indent = body_line.len() - body_line.trim_start_matches(' ').len();
                    return TextStart {
                        line: content_line,
                        col: indent as u32 + 1,
                        literal_block: style == '|',
                    };
                }
            }
            plain
        }
        _ => plain,
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
