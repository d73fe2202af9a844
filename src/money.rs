//! Exact amounts (SPEC §5 "Exact money"): counters, purchase amounts, milestone
//! thresholds and tier bounds are [`Decimal`]s, so ten purchases of 0.1 make exactly
//! 1 and `0.1 + 0.2 == 0.3`. Points stay integers: [`whole_points`] is the one place a
//! computed amount becomes points.
//!
//! Decimals rather than integer minor units: a counter's unit is the operator's
//! (yuan, words, kilometres), Rally cannot know how many minor units it has, and Rhai
//! computes in the same type (its `decimal` feature), so `member.spend_total * 10` is
//! exact inside scripts too.
//!
//! JSON numbers arrive as `f64` (serde_json without `arbitrary_precision`): a number
//! is read as the shortest decimal that reads back as the same `f64` ([`from_f64`]),
//! which is exactly what was written for any number of up to 15 significant digits —
//! every amount Rally accepts. The same holds on the way out ([`to_json`]).

use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
pub use rust_decimal::Decimal;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// Whether `a` and `b` are stored alike (so equal): cheaper than comparing their
/// values, which must bring them to one scale. Equal values may still be stored
/// differently (`1.0` and `1`), so `false` means only "compare them".
pub fn same_bits(a: Decimal, b: Decimal) -> bool {
    a.serialize() == b.serialize()
}

/// `a.cmp(&b)`. Decimals of one scale — integers most often: points, tier bounds,
/// counts — order as their integer mantissas, which is a few instructions against the
/// rescaling `Decimal`'s own comparison does first (a tier ladder compares every level
/// after every change to a member).
pub fn compare(a: Decimal, b: Decimal) -> std::cmp::Ordering {
    if a.scale() == b.scale() {
        a.mantissa().cmp(&b.mantissa())
    } else {
        a.cmp(&b)
    }
}

/// Largest purchase amount accepted: ten billion, far above any real order, small
/// enough that every accepted amount (with [`MAX_PLACES`]) has at most 14 significant
/// digits and prints exactly.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_410_065_408, 2, 0, false, 0);
/// Most decimal places a purchase amount may have.
pub const MAX_PLACES: u32 = 4;

/// The decimal written as `f`: the shortest text that reads back as `f`. `None` for
/// NaN, infinities and magnitudes beyond what a `Decimal` holds (about 7.9e28).
pub fn from_f64(f: f64) -> Option<Decimal> {
    if !f.is_finite() || f.abs() >= 7.9e28 {
        return None;
    }
    // `{}` of an f64 never uses exponent notation: it is plain digits.
    Decimal::from_str(&f.to_string())
        .ok()
        .map(|d| d.normalize())
}

/// A JSON number as a decimal: integers exactly, others as written (see module doc).
pub fn from_json(n: &serde_json::Number) -> Option<Decimal> {
    if let Some(i) = n.as_i64() {
        return Some(Decimal::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(Decimal::from(u));
    }
    from_f64(n.as_f64()?)
}

/// A purchase's `data.amount`: a number from 0 to [`MAX_AMOUNT`] with at most
/// [`MAX_PLACES`] decimal places. The error says what is wrong, for the event's
/// rejection message.
pub fn amount(value: &Value) -> Result<Decimal, String> {
    let wanted = || {
        format!("must be a number from 0 to {MAX_AMOUNT} with at most {MAX_PLACES} decimal places")
    };
    let Value::Number(n) = value else {
        return Err(wanted());
    };
    let amount = from_json(n).ok_or_else(wanted)?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(format!("{amount} is negative; {}", wanted()));
    }
    if amount > MAX_AMOUNT {
        return Err(format!("{amount} is too large; {}", wanted()));
    }
    if amount.scale() > MAX_PLACES {
        return Err(format!(
            "{amount} has too many decimal places; {}",
            wanted()
        ));
    }
    Ok(amount)
}

/// A decimal as a JSON number: whole values as integers (`7`, not `7.0`), others as
/// the shortest number that prints as the decimal (`199.5`, `0.3`).
pub fn to_json(d: Decimal) -> Value {
    let d = d.normalize();
    if d.is_integer() {
        if let Some(i) = d.to_i64() {
            return Value::from(i);
        }
    }
    d.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Points are integers: a computed amount is rounded toward zero, so neither an
/// award nor a deduction is ever larger than what was computed (`19.99` → 19, `-2.5`
/// → −2). `None` when the whole part does not fit in an `i64`.
pub fn whole_points(d: Decimal) -> Option<i64> {
    d.trunc().to_i64()
}

/// Serde for `Member::counters`: each value as its decimal text (MessagePack strings;
/// `"0.3"`, never `0.30000000000000004`). Reads that text, and also plain numbers:
/// members stored before counters were decimals hold `f64`s, read as the shortest
/// decimal that reads back as the same `f64` (what `sim` printed for them).
pub mod counters {
    use super::*;

    use crate::member::Counters;

    pub fn serialize<S: Serializer>(counters: &Counters, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(counters.len()))?;
        for (name, value) in counters {
            map.serialize_entry(name, &value.normalize().to_string())?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Counters, D::Error> {
        deserializer.deserialize_map(CountersVisitor)
    }

    struct CountersVisitor;

    impl<'de> Visitor<'de> for CountersVisitor {
        type Value = Counters;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of counter names to decimals")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut out = Counters::new();
            while let Some((name, Counter(value))) = access.next_entry::<String, Counter>()? {
                out.insert(&name, value);
            }
            Ok(out)
        }
    }

    struct Counter(Decimal);

    impl<'de> de::Deserialize<'de> for Counter {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(CounterVisitor)
        }
    }

    struct CounterVisitor;

    impl Visitor<'_> for CounterVisitor {
        type Value = Counter;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal as text, or a number")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Counter, E> {
            Decimal::from_str_exact(text)
                .map(Counter)
                .map_err(|e| E::custom(format!("counter {text:?} is not a decimal: {e}")))
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Counter, E> {
            Ok(Counter(Decimal::from(n)))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Counter, E> {
            Ok(Counter(Decimal::from(n)))
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Counter, E> {
            from_f64(n)
                .map(Counter)
                .ok_or_else(|| E::custom(format!("counter {n} is not a finite decimal")))
        }
    }
}

#[cfg(test)]
mod tests;
