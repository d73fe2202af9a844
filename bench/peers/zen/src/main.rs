//! peer50 through zen-expression 2.1.6, the expression VM of GoRules' zen-engine.
//!
//! Each of the 50 rules becomes one zen expression, its event type test and its `if`
//! joined by `and`, compiled once. Every event is then evaluated against all 50, as the
//! other peers do (no rule is skipped because its event type differs), with one VM
//! reused throughout: the fastest way 2.1.6 offers to run compiled expressions many times.
//!
//! The event itself is zen's environment, so Rally's `event.data.amount` is zen's
//! `data.amount` and the type test is `type == "purchase"`. Two modes, both timed over
//! the events already parsed from JSON:
//! - `converted`: each event's JSON value is converted to a zen `Variable` inside the
//!   timed loop, as an engine fed JSON must;
//! - `prebuilt`: the variables are built before timing, so only evaluation is timed.
//!
//! usage: peer50-zen RULES_YAML EVENTS_JSONL [converted|prebuilt]   (both by default)
//! Prints `zen-expression, <mode>: N events/s (F firings)` per mode, and exits 1 if
//! the firings are not the 40,130 that every engine gives on this workload.

use std::process::ExitCode;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;
use zen_expression::expression::Standard;
use zen_expression::vm::VM;
use zen_expression::{Expression, Isolate, Scope, Variable};

/// What every engine fires on this workload.
const PEER_FIRINGS: usize = 40_130;

/// The parts of Rally's rule file this harness reads; actions and settings are Rally's
/// business, so everything else is ignored.
#[derive(Deserialize)]
struct RuleFile {
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    id: String,
    trigger: Trigger,
    #[serde(rename = "if")]
    condition: Option<String>,
}

#[derive(Deserialize)]
struct Trigger {
    event: String,
}

#[derive(Clone, Copy)]
enum Mode {
    Converted,
    Prebuilt,
}

impl Mode {
    fn parse(word: &str) -> Option<Mode> {
        match word {
            "converted" => Some(Mode::Converted),
            "prebuilt" => Some(Mode::Prebuilt),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::Converted => "JSON converted per event",
            Mode::Prebuilt => "variables prebuilt",
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rules_path, events_path, modes) = match args.as_slice() {
        [rules, events] => (rules, events, vec![Mode::Converted, Mode::Prebuilt]),
        [rules, events, mode] => match Mode::parse(mode) {
            Some(mode) => (rules, events, vec![mode]),
            None => return usage(),
        },
        _ => return usage(),
    };
    let rules = match load_rules(rules_path) {
        Ok(rules) => rules,
        Err(message) => return fail(&message),
    };
    let events = match load_events(events_path) {
        Ok(events) => events,
        Err(message) => return fail(&message),
    };
    let mut vm = VM::new();
    let mut wrong = false;
    for mode in modes {
        let (firings, seconds) = match run(mode, &rules, &events, &mut vm) {
            Ok(result) => result,
            Err(message) => return fail(&message),
        };
        println!(
            "zen-expression, {}: {} events/s ({firings} firings)",
            mode.label(),
            thousands(events.len() as f64 / seconds)
        );
        if firings != PEER_FIRINGS {
            eprintln!(
                "peer50-zen: {} fired {firings} times, not {PEER_FIRINGS}",
                mode.label()
            );
            wrong = true;
        }
    }
    if wrong {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Evaluates all rules on every event, returning the firings and the seconds taken.
fn run(
    mode: Mode,
    rules: &[Expression<Standard>],
    events: &[Value],
    vm: &mut VM,
) -> Result<(usize, f64), String> {
    // Built before the clock starts in both modes, and left unused by `converted`, so
    // the two modes differ only by the conversion inside the loop.
    let prebuilt: Vec<Variable> = match mode {
        Mode::Converted => Vec::new(),
        Mode::Prebuilt => events.iter().map(Variable::from).collect(),
    };
    let mut firings = 0;
    let start = Instant::now();
    for (i, event) in events.iter().enumerate() {
        let scope = Scope::new(match mode {
            Mode::Converted => Variable::from(event),
            Mode::Prebuilt => prebuilt[i].clone(),
        });
        for rule in rules {
            let result = rule
                .evaluate_with_scope(&scope, vm)
                .map_err(|e| format!("event {}: {e}", i + 1))?;
            if matches!(result, Variable::Bool(true)) {
                firings += 1;
            }
        }
    }
    Ok((firings, start.elapsed().as_secs_f64()))
}

/// Reads Rally's rule file and compiles each rule to one zen expression.
fn load_rules(path: &str) -> Result<Vec<Expression<Standard>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let file: RuleFile = serde_yaml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let mut isolate = Isolate::new();
    file.rules
        .iter()
        .map(|rule| {
            let source = to_zen(rule).map_err(|e| format!("{path}: rule {}: {e}", rule.id))?;
            isolate
                .compile_standard(&source)
                .map_err(|e| format!("{path}: rule {}: zen refuses `{source}`: {e}", rule.id))
        })
        .collect()
}

/// Reads one JSON event per non-blank line.
fn load_events(path: &str) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| serde_json::from_str(line).map_err(|e| format!("{path}:{}: {e}", n + 1)))
        .collect()
}

/// The rule as one zen expression: its event type test, then its condition.
fn to_zen(rule: &RawRule) -> Result<String, String> {
    let type_test = format!("type == {}", quoted(&rule.trigger.event));
    match &rule.condition {
        None => Ok(type_test),
        Some(condition) => Ok(format!("{type_test} and ({})", translate(condition)?)),
    }
}

/// Rally's condition syntax in zen's: `&&`, `||` and `!` become `and`, `or` and `not`,
/// and `event.` paths lose their root, since the event is zen's environment. String
/// literals are copied as they are; a path outside `event` is refused, as this
/// environment holds nothing else.
fn translate(condition: &str) -> Result<String, String> {
    let mut out = String::with_capacity(condition.len() + 16);
    let mut chars = condition.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == '\\' {
                        out.extend(chars.next());
                    } else if inner == c {
                        break;
                    }
                }
            }
            '&' if chars.next_if_eq(&'&').is_some() => out.push_str(" and "),
            '|' if chars.next_if_eq(&'|').is_some() => out.push_str(" or "),
            '!' if chars.peek() != Some(&'=') => out.push_str(" not "),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut path = String::from(c);
                while let Some(next) =
                    chars.next_if(|n| n.is_ascii_alphanumeric() || *n == '_' || *n == '.')
                {
                    path.push(next);
                }
                match path.strip_prefix("event.") {
                    Some(rest) => out.push_str(rest),
                    None if matches!(path.as_str(), "true" | "false" | "null") => {
                        out.push_str(&path)
                    }
                    None => return Err(format!("`{path}` is not under `event.`")),
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// A zen string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// 95432.7 as `95,433`, the way the README writes figures.
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn usage() -> ExitCode {
    fail("usage: peer50-zen RULES_YAML EVENTS_JSONL [converted|prebuilt]")
}

fn fail(message: &str) -> ExitCode {
    eprintln!("peer50-zen: {message}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conjunctions_become_words_and_paths_lose_the_event_root() {
        assert_eq!(
            translate(r#"event.data.amount >= 279 && event.data.m_tier != "vip""#).unwrap(),
            r#"data.amount >= 279  and  data.m_tier != "vip""#
        );
    }

    #[test]
    fn disjunction_and_negation_become_or_and_not() {
        let zen = translate("!(event.data.a > 1) || event.data.b == true").unwrap();
        assert_eq!(zen, " not (data.a > 1)  or  data.b == true");
        assert!(Isolate::new().compile_standard(&zen).is_ok());
    }

    #[test]
    fn string_literals_are_copied_untouched() {
        assert_eq!(
            translate(r#"event.data.channel == "a && !b \" event.x""#).unwrap(),
            r#"data.channel == "a && !b \" event.x""#
        );
    }

    #[test]
    fn a_path_outside_the_event_is_refused() {
        assert!(translate("member.points > 3").is_err());
    }

    #[test]
    fn the_rule_tests_its_event_type_before_its_condition() {
        let rule = RawRule {
            id: "r1".into(),
            trigger: Trigger {
                event: "check-in".into(),
            },
            condition: Some("event.data.amount > 1".into()),
        };
        assert_eq!(
            to_zen(&rule).unwrap(),
            r#"type == "check-in" and (data.amount > 1)"#
        );
    }
}
