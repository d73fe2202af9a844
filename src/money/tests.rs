use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::*;

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

#[test]
fn a_json_number_reads_as_the_decimal_written() {
    let parsed: Value = serde_json::from_str("[0.1, 199.99, 7, 0.30000000000000004]").unwrap();
    let numbers: Vec<Decimal> = parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| from_json(v.as_number().unwrap()).unwrap())
        .collect();
    assert_eq!(
        numbers,
        [
            dec("0.1"),
            dec("199.99"),
            dec("7"),
            dec("0.30000000000000004")
        ]
    );
}

#[test]
fn ten_amounts_of_a_tenth_make_exactly_one() {
    let tenth = amount(&json!(0.1)).unwrap();
    let total: Decimal = (0..10).map(|_| tenth).sum();
    assert_eq!(total, Decimal::ONE);
}

#[test]
fn an_amount_may_have_four_decimal_places_but_not_five() {
    assert_eq!(amount(&json!(12.3456)), Ok(dec("12.3456")));
    let error = amount(&json!(12.34567)).unwrap_err();
    assert!(error.contains("decimal places"), "{error}");
}

#[test]
fn an_amount_is_between_zero_and_ten_billion() {
    assert_eq!(amount(&json!(0)), Ok(Decimal::ZERO));
    assert_eq!(amount(&json!(10_000_000_000u64)), Ok(MAX_AMOUNT));
    assert!(amount(&json!(-0.01)).unwrap_err().contains("negative"));
    assert!(amount(&json!(10_000_000_000.5))
        .unwrap_err()
        .contains("too large"));
    assert!(amount(&json!(1e300)).is_err());
    assert!(amount(&json!("12")).is_err());
}

#[test]
fn decimals_print_as_json_numbers_exactly() {
    assert_eq!(to_json(dec("7.000")), json!(7));
    assert_eq!(to_json(dec("199.5")), json!(199.5));
    assert_eq!(to_json(dec("0.1") + dec("0.2")).to_string(), "0.3");
    assert_eq!(
        to_json(dec("99999999999.9999")).to_string(),
        "99999999999.9999"
    );
}

#[test]
fn computed_points_are_rounded_toward_zero() {
    assert_eq!(whole_points(dec("19.99")), Some(19));
    assert_eq!(whole_points(dec("-2.5")), Some(-2));
    assert_eq!(whole_points(dec("0.8") * dec("10")), Some(8));
}

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(with = "counters")]
    counters: crate::member::Counters,
}

/// The row's form before counters were their own type: a map of each value's text.
#[derive(Serialize)]
struct StoredAsMap {
    counters: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct StoredAsFloats {
    counters: BTreeMap<String, f64>,
}

#[test]
fn counters_round_trip_through_messagepack_exactly() {
    let counters = [("spend_total", dec("0.3")), ("purchases", dec("3"))];
    let bytes = rmp_serde::to_vec(&Stored {
        counters: counters.into_iter().collect(),
    })
    .unwrap();
    let back: Stored = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back.counters, counters.into_iter().collect());
    // The same bytes as the sorted map of texts rows held before: stored members
    // read back, and new rows read in an older build.
    let as_map = StoredAsMap {
        counters: counters
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    };
    assert_eq!(bytes, rmp_serde::to_vec(&as_map).unwrap());
}

#[test]
fn counters_stored_as_floats_before_decimals_still_read() {
    let old = StoredAsFloats {
        counters: BTreeMap::from([
            ("spend_total".to_string(), 199.5),
            ("purchases".to_string(), 3.0),
        ]),
    };
    let bytes = rmp_serde::to_vec(&old).unwrap();
    let back: Stored = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back.counters.get("spend_total"), Some(&dec("199.5")));
    assert_eq!(back.counters.get("purchases"), Some(&dec("3")));
}

#[test]
fn same_bits_says_equal_only_for_decimals_stored_alike() {
    assert!(same_bits(dec("12.5"), dec("12.5")));
    assert!(!same_bits(dec("12.5"), dec("12.6")));
    assert!(!same_bits(dec("-1"), dec("1")));
    // Equal values, stored at two scales: not alike, so the caller compares values.
    assert!(!same_bits(dec("1.0"), dec("1")));
    assert_eq!(dec("1.0"), dec("1"));
}

#[test]
fn compare_orders_as_decimals_do() {
    let texts = [
        "0",
        "-0",
        "0.0",
        "1",
        "-1",
        "1.0",
        "0.1",
        "-0.1",
        "0.10",
        "12.5",
        "12.50",
        "12.49",
        "999",
        "1000",
        "1000.0001",
        "-1000",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "7922816251426433759354395033.5",
        "1e-28",
    ];
    let values: Vec<Decimal> = texts
        .iter()
        .map(|t| {
            Decimal::from_scientific(t)
                .or_else(|_| Decimal::from_str(t))
                .unwrap()
        })
        .collect();
    for a in &values {
        for b in &values {
            assert_eq!(compare(*a, *b), a.cmp(b), "{a} {b}");
        }
    }
}
