//! An event's top-level fields as the JSON gave them, before validation: read straight
//! from a line (no `serde_json::Value` for the whole object, no map of it) or taken from
//! an object already parsed, so both paths reach the one validation in `event.rs`.
//!
//! Reading a line must refuse exactly what parsing it into a `Value` refuses, with the
//! same message: every value, known field or not, is still parsed in full as a `Value`
//! (so a bad number or a syntax error anywhere is reported where it is), a repeated
//! field keeps its last value, and the unknown field named is the first one written,
//! as the insertion-ordered map (`preserve_order`) iterated them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The fields of an event object. `None` is a field left out; `Some(Value::Null)` one
/// written as `null` (which validation treats alike).
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) id: Option<Value>,
    pub(super) kind: Option<Value>,
    pub(super) member: Option<Value>,
    pub(super) at: Option<Value>,
    pub(super) data: Option<Value>,
    /// The first field that is none of the above, in the order written.
    pub(super) unknown: Option<String>,
}

impl Fields {
    /// The fields of an object parsed already (a request body).
    pub(super) fn of_object(object: Map<String, Value>) -> Fields {
        let mut fields = Fields::default();
        for (key, value) in object {
            fields.set(Cow::Owned(key), value);
        }
        fields
    }

    fn set(&mut self, key: Cow<'_, str>, value: Value) {
        let slot = match key.as_ref() {
            "id" => &mut self.id,
            "type" => &mut self.kind,
            "member" => &mut self.member,
            "at" => &mut self.at,
            "data" => &mut self.data,
            _ => {
                if self.unknown.is_none() {
                    self.unknown = Some(key.into_owned());
                }
                return;
            }
        };
        *slot = Some(value);
    }
}

/// A line of JSON: an object's fields, or some other JSON value (refused by the caller
/// as not an object, once the whole line is known to be valid JSON).
#[derive(Debug)]
// Lives for the parse of one line: boxing the fields would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
pub(super) enum Line {
    Object(Fields),
    NotAnObject,
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Line, D::Error> {
        deserializer.deserialize_any(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
        let mut fields = Fields::default();
        while let Some(Key(key)) = map.next_key()? {
            let value: Value = map.next_value()?;
            fields.set(key, value);
        }
        Ok(Line::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Line, A::Error> {
        // Parsed in full, as a `Value` would be: a syntax error inside still wins.
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Line::NotAnObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Line, E> {
        Ok(Line::NotAnObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Line, E> {
        Ok(Line::NotAnObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Line, E> {
        Ok(Line::NotAnObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Line, E> {
        Ok(Line::NotAnObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Line, E> {
        Ok(Line::NotAnObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Line, E> {
        Ok(Line::NotAnObject)
    }
}

/// A field name, borrowed from the line unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(key)))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(key.to_string())))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &str) -> Fields {
        match serde_json::from_str::<Line>(line) {
            Ok(Line::Object(fields)) => fields,
            other => panic!("not an object's fields: {other:?}"),
        }
    }

    #[test]
    fn a_repeated_field_keeps_its_last_value_as_a_parsed_object_does() {
        let line = r#"{"id":"a","id":"b"}"#;
        assert_eq!(read(line).id, Some(Value::from("b")));
        let object: Map<String, Value> = serde_json::from_str(line).unwrap();
        assert_eq!(Fields::of_object(object).id, Some(Value::from("b")));
    }

    #[test]
    fn the_unknown_field_named_is_the_first_written_as_a_parsed_object_names_it() {
        let line = r#"{"zeta":1,"id":"a","alpha":2,"zeta":3}"#;
        assert_eq!(read(line).unknown.as_deref(), Some("zeta"));
        let object: Map<String, Value> = serde_json::from_str(line).unwrap();
        assert_eq!(Fields::of_object(object).unknown.as_deref(), Some("zeta"));
    }

    #[test]
    fn a_field_name_with_escapes_is_read_as_its_text() {
        assert_eq!(read(r#"{"\u0069d":"a"}"#).id, Some(Value::from("a")));
    }

    #[test]
    fn other_json_values_are_not_objects_but_must_still_be_valid() {
        for line in ["[1,{\"a\":2}]", "1", "-1", "1.5", "\"x\"", "true", "null"] {
            assert!(
                matches!(serde_json::from_str::<Line>(line), Ok(Line::NotAnObject)),
                "{line}"
            );
        }
        assert!(serde_json::from_str::<Line>("[1,{\"a\":}]").is_err());
    }
}
