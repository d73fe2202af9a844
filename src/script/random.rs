//! `random()`, `random_int(a, b)` and `chance(p)`: draws that are fair, reproducible and
//! unpredictable to members.
//!
//! Every draw is SipHash-2-4 (a pseudo-random function under a secret key) of the
//! installation's [`RandomKey`], what triggered the step (an event id, a timer's due
//! time, a global occurrence, with the member), the rule evaluating and how many draws
//! that rule already made in the step. So `sim`, `run` and `replay` given the same key
//! and inputs draw the same numbers, and a member who knows every input but the key
//! cannot tell what a draw will give.
//!
//! The draws of one evaluation come from the [`Stream`] its [`Bindings`] carry, lent to
//! the running thread for the evaluation only (see [`lend`]): an expression, unlike a
//! script run, has no call tag to carry it. Outside an evaluation there is no stream and
//! a draw is an error.
//!
//! [`Bindings`]: super::Bindings

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::Hasher;

use rhai::{Dynamic, Engine, EvalAltResult, INT};
use rust_decimal::Decimal;
use siphasher::sip128::{Hasher128, SipHasher24};

/// Decimal places of `random()`: 18 digits, far below anything a rule compares with.
const RANDOM_SCALE: u32 = 18;
const RANDOM_RANGE: u128 = 1_000_000_000_000_000_000;

/// The installation's secret for draws: 128 bits, made at the first start and kept in
/// the store (and in the journal, so a replay draws the same). `sim` uses a fixed key
/// unless given `--seed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomKey(pub [u8; 16]);

impl RandomKey {
    /// A fresh key from the operating system's generator.
    pub fn generate() -> RandomKey {
        RandomKey(rand::random())
    }

    /// The key as 32 lowercase hex digits (how the store and journal keep it).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads [`RandomKey::to_hex`]; any other text (a `--seed` phrase) is hashed into a
    /// key, so a short memorable seed works too.
    pub fn parse(text: &str) -> RandomKey {
        let bytes = text.as_bytes();
        if bytes.len() == 32 && bytes.iter().all(u8::is_ascii_hexdigit) {
            let mut key = [0u8; 16];
            for (i, pair) in bytes.chunks(2).enumerate() {
                let hex = std::str::from_utf8(pair).unwrap_or("00");
                key[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
            }
            return RandomKey(key);
        }
        let mut hasher = SipHasher24::new_with_keys(0, 0);
        hasher.write(bytes);
        RandomKey(hasher.finish128().as_bytes())
    }
}

/// The draws of one step: the key, what triggered the step, and how many draws each
/// rule made so far (a rule that fires twice in a step continues its sequence).
#[derive(Clone, Debug, Default)]
pub struct Stream {
    key: RandomKey,
    input: String,
    rule: String,
    draws: BTreeMap<String, u64>,
}

impl Stream {
    /// `input` names what triggered the step, uniquely among steps (see
    /// `engine::Input::identity`).
    pub fn new(key: RandomKey, input: String) -> Stream {
        Stream {
            key,
            input,
            rule: String::new(),
            draws: BTreeMap::new(),
        }
    }

    /// The rule whose expressions and scripts evaluate next.
    pub fn enter_rule(&mut self, rule: &str) {
        if self.rule != rule {
            self.rule = rule.to_string();
        }
    }

    /// The next 128 pseudo-random bits.
    fn next(&mut self) -> u128 {
        let count = self.draws.entry(self.rule.clone()).or_insert(0);
        let (k0, k1) = self.key.0.split_at(8);
        let mut hasher = SipHasher24::new_with_keys(
            u64::from_le_bytes(k0.try_into().unwrap_or_default()),
            u64::from_le_bytes(k1.try_into().unwrap_or_default()),
        );
        // Length-prefixed, so no two (input, rule) pairs write the same bytes.
        for part in [self.input.as_bytes(), self.rule.as_bytes()] {
            hasher.write(&(part.len() as u64).to_le_bytes());
            hasher.write(part);
        }
        hasher.write(&count.to_le_bytes());
        *count += 1;
        hasher.finish128().into()
    }

    /// A decimal in [0, 1) with 18 places. A 128-bit value reduced modulo 10^18 is
    /// uniform to within 10^18 / 2^128.
    pub fn random(&mut self) -> Decimal {
        let n = (self.next() % RANDOM_RANGE) as i128;
        Decimal::from_i128_with_scale(n, RANDOM_SCALE)
    }

    /// An integer in [low, high], both included.
    pub fn random_int(&mut self, low: INT, high: INT) -> Result<INT, String> {
        if low > high {
            return Err(format!(
                "random_int({low}, {high}): the lower bound is above the upper bound"
            ));
        }
        let span = (i128::from(high) - i128::from(low) + 1) as u128;
        let offset = (self.next() % span) as i128;
        Ok((i128::from(low) + offset) as INT)
    }

    /// True with probability `p`, from 0 (never) to 1 (always).
    pub fn chance(&mut self, p: Decimal) -> Result<bool, String> {
        if p < Decimal::ZERO || p > Decimal::ONE {
            return Err(format!(
                "chance({p}): the probability must be between 0 and 1"
            ));
        }
        Ok(self.random() < p)
    }
}

thread_local! {
    /// The stream of the evaluation running on this thread, if any.
    static LENT: RefCell<Option<Stream>> = const { RefCell::new(None) };
}

/// Runs `evaluate` with `stream` lent to this thread, and takes it back after, so the
/// draw counts carry on to the next evaluation of the step.
pub(super) fn lend<T>(stream: &mut Stream, evaluate: impl FnOnce() -> T) -> T {
    let previous = LENT.with(|lent| lent.replace(Some(std::mem::take(stream))));
    let result = evaluate();
    LENT.with(|lent| {
        if let Some(back) = lent.replace(previous) {
            *stream = back;
        }
    });
    result
}

fn draw<T>(
    name: &str,
    f: impl FnOnce(&mut Stream) -> Result<T, String>,
) -> Result<T, Box<EvalAltResult>> {
    LENT.with(|lent| match lent.borrow_mut().as_mut() {
        Some(stream) => f(stream).map_err(Into::into),
        None => Err(format!("`{name}` can only be called while a rule runs").into()),
    })
}

fn probability(p: &Dynamic) -> Result<Decimal, String> {
    super::convert::to_decimal(p).ok_or_else(|| {
        format!(
            "chance expects a number between 0 and 1, not {}",
            p.type_name()
        )
    })
}

pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("random", || draw("random", |s| Ok(s.random())));
    engine.register_fn("random_int", |low: INT, high: INT| {
        draw("random_int", |s| s.random_int(low, high))
    });
    engine.register_fn("chance", |p: Dynamic| {
        draw("chance", |s| s.chance(probability(&p)?))
    });
}
