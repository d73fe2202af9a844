//! Values crossing the sandbox boundary: JSON (member attributes, event data, campaign
//! state) into Rhai, and script results back out as JSON.
//!
//! Rhai has no floats here (`no_float`): numbers are `INT` or exact decimals (Rhai's
//! `decimal`, which is [`Decimal`]), literals included. Integral JSON numbers become
//! `INT` and others decimals, so `member.purchases == 10`, `member.spend_total * 10`
//! and `event.data.amount > 100.0` all read as written and compute exactly.

use rhai::{Array, Dynamic, Engine, ImmutableString, Map};
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use super::{MAX_ARRAY_SIZE, MAX_MAP_SIZE, MAX_STRING_SIZE};
use crate::money::{self, Decimal};

/// Deepest nesting `dynamic_to_json` follows: a script can build arrays nested
/// thousands deep within the size limits, and converting them must not exhaust the
/// native stack.
const MAX_VALUE_DEPTH: usize = 64;

/// A counter as Rhai sees it: whole values as `INT` (so `member.purchases / 3` is
/// integer division, as documented), others as an exact decimal.
pub(super) fn number(v: Decimal) -> Dynamic {
    match v.is_integer().then(|| v.to_i64()).flatten() {
        Some(int) => Dynamic::from_int(int),
        None => Dynamic::from_decimal(v.normalize()),
    }
}

/// A JSON value as Rhai sees it: `null` is `()`, integers are `INT`, other numbers
/// exact decimals (a number beyond a decimal's range, about 7.9e28, is `()`), objects
/// are object maps.
pub fn json_to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => money::from_json(n).map_or(Dynamic::UNIT, Dynamic::from_decimal),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => Dynamic::from_array(items.iter().map(json_to_dynamic).collect()),
        Value::Object(object) => Dynamic::from_map(
            object
                .iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect(),
        ),
    }
}

/// A Rhai value as JSON, for `set` and computed values. Only data converts: a function
/// pointer, a range or a non-finite number is an error naming what it got.
///
/// The sandbox's size limits are enforced again here, on the whole value: Rhai checks
/// them on most operations but not when a map grows key by key (`m[k] = v`), and
/// nothing oversized may leave the sandbox into a member's state.
pub fn dynamic_to_json(engine: &Engine, value: &Dynamic) -> Result<Value, String> {
    Budget {
        engine,
        array_items: 0,
        map_entries: 0,
        string_bytes: 0,
    }
    .convert(value, 0)
}

/// Totals over the whole value, nested parts included, as Rhai counts them.
struct Budget<'e> {
    engine: &'e Engine,
    array_items: usize,
    map_entries: usize,
    string_bytes: usize,
}

impl Budget<'_> {
    fn convert(&mut self, value: &Dynamic, depth: usize) -> Result<Value, String> {
        if depth > MAX_VALUE_DEPTH {
            return Err(format!(
                "value nested too deeply to store (over {MAX_VALUE_DEPTH} levels)"
            ));
        }
        if value.is_shared() {
            return self.convert(&value.flatten_clone(), depth);
        }
        if value.is_unit() {
            return Ok(Value::Null);
        }
        if let Ok(b) = value.as_bool() {
            return Ok(Value::Bool(b));
        }
        if let Ok(i) = value.as_int() {
            return Ok(Value::from(i));
        }
        if let Ok(d) = value.as_decimal() {
            return Ok(money::to_json(d));
        }
        if let Ok(c) = value.as_char() {
            return self.string(c.to_string());
        }
        if let Some(s) = value.read_lock::<ImmutableString>() {
            return self.string(s.to_string());
        }
        if let Some(items) = value.read_lock::<Array>() {
            self.array_items += items.len();
            if self.array_items > MAX_ARRAY_SIZE {
                return Err(format!(
                    "array too large: over the limit of {MAX_ARRAY_SIZE} elements"
                ));
            }
            return items
                .iter()
                .map(|item| self.convert(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array);
        }
        if let Some(map) = value.read_lock::<Map>() {
            self.map_entries += map.len();
            if self.map_entries > MAX_MAP_SIZE {
                return Err(format!(
                    "map too large: over the limit of {MAX_MAP_SIZE} entries"
                ));
            }
            let mut object = serde_json::Map::with_capacity(map.len());
            for (key, item) in map.iter() {
                self.count_bytes(key.len())?;
                object.insert(key.to_string(), self.convert(item, depth + 1)?);
            }
            return Ok(Value::Object(object));
        }
        Err(format!(
            "cannot store a value of type {}",
            self.engine.map_type_name(value.type_name())
        ))
    }

    fn string(&mut self, s: String) -> Result<Value, String> {
        self.count_bytes(s.len())?;
        Ok(Value::String(s))
    }

    fn count_bytes(&mut self, len: usize) -> Result<(), String> {
        self.string_bytes += len;
        if self.string_bytes > MAX_STRING_SIZE {
            return Err(format!(
                "string too long: over the limit of {MAX_STRING_SIZE} bytes"
            ));
        }
        Ok(())
    }
}

/// An amount computed by an expression, exactly: an integer or a decimal. `None`
/// for anything else.
pub(super) fn to_decimal(value: &Dynamic) -> Option<Decimal> {
    value
        .as_int()
        .map(Decimal::from)
        .or_else(|_| value.as_decimal())
        .ok()
}
