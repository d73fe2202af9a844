//! `trigger: { leaderboard: top_posters, closes: true, top: 3 }`: a rule run at the
//! close of each period of a board, once for each of its first `top` places.
//!
//! `closes: true` is required: it names the moment, so a later kind of leaderboard
//! trigger (a member entering the board, say) has room next to it. `top` defaults to
//! the board's `size` and cannot pass it: the index keeps no more places than that
//! worth showing, and a close reads only what a board shows.

use crate::rules::compile::Ctx;
use crate::rules::convert::{positive, resolve, string};
use crate::rules::yaml::{Node, Value};
use crate::rules::Trigger;

pub fn compile(
    ctx: &mut Ctx,
    v: &Value,
    closes: Option<&Value>,
    top: Option<&Value>,
) -> Option<Trigger> {
    let d = &mut ctx.d;
    let known: Vec<String> = ctx.names.leaderboards.keys().cloned().collect();
    let board = string(d, v, "leaderboard").and_then(|name| {
        if known.is_empty() {
            d.error(
                &v.at,
                "a leaderboard trigger needs a \"leaderboards\" section, and there is none",
            );
            return None;
        }
        resolve(d, v, name, "leaderboard", &known)
    });
    let closes_ok = match closes {
        Some(Value {
            node: Node::Bool(true),
            ..
        }) => true,
        Some(other) => {
            let found = match other.node {
                Node::Bool(false) => "false".to_string(),
                _ => other.kind().to_string(),
            };
            d.error(
                &other.at,
                format!(
                    "a leaderboard trigger runs when the board's period closes: write \"closes: true\", found {found}"
                ),
            );
            false
        }
        None => {
            d.error(
                &v.at,
                "a leaderboard trigger needs \"closes: true\" (it runs when the board's period closes)",
            );
            false
        }
    };
    let board = board?;
    let size = ctx.names.leaderboards.get(&board).copied().unwrap_or(0);
    let top = match top {
        None => Some(size),
        Some(value) => positive::<usize>(d, value, "top").and_then(|top| {
            if top > size {
                d.error(
                    &value.at,
                    format!(
                        "\"top\" must be at most the size of leaderboard {board:?} ({size}), found {top}"
                    ),
                );
                return None;
            }
            Some(top)
        }),
    };
    if !closes_ok {
        return None;
    }
    Some(Trigger::LeaderboardClose { board, top: top? })
}

#[cfg(test)]
mod tests {
    use crate::rules::{from_sources, Trigger};

    const BOARD: &str =
        "leaderboards:\n  - { id: top_posters, by: events.post, period: weekly, size: 5 }\n";

    fn rules(trigger: &str) -> String {
        format!("{BOARD}rules:\n  - id: winners\n    trigger: {trigger}\n    actions: [ {{ points: 10 }} ]\n")
    }

    fn errors(trigger: &str) -> Vec<String> {
        match from_sources(&[("rules.yaml", &rules(trigger))], &|_| None) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn compiled(trigger: &str) -> (String, usize) {
        let set = from_sources(&[("rules.yaml", &rules(trigger))], &|_| None).unwrap();
        assert_eq!(set.index.leaderboard_close["top_posters"], vec![0]);
        match &set.rules[0].trigger {
            Trigger::LeaderboardClose { board, top } => (board.clone(), *top),
            _ => panic!("not a leaderboard trigger"),
        }
    }

    #[test]
    fn a_close_trigger_compiles_with_its_top() {
        let found = compiled("{ leaderboard: top_posters, closes: true, top: 3 }");
        assert_eq!(found, ("top_posters".to_string(), 3));
    }

    #[test]
    fn top_defaults_to_the_size_of_the_board() {
        let found = compiled("{ leaderboard: top_posters, closes: true }");
        assert_eq!(found, ("top_posters".to_string(), 5));
    }

    #[test]
    fn an_unknown_board_is_reported_with_a_suggestion() {
        let found = errors("{ leaderboard: top_poster, closes: true }");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("rules.yaml:5:29: unknown leaderboard \"top_poster\""),
            "{found:?}"
        );
        assert!(
            found[0].contains("did you mean \"top_posters\"?"),
            "{found:?}"
        );
    }

    #[test]
    fn top_beyond_the_size_of_the_board_is_reported() {
        let found = errors("{ leaderboard: top_posters, closes: true, top: 6 }");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("rules.yaml:5:61: \"top\" must be at most the size of leaderboard \"top_posters\" (5), found 6"),
            "{found:?}"
        );
    }

    #[test]
    fn top_zero_is_reported() {
        let found = errors("{ leaderboard: top_posters, closes: true, top: 0 }");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("\"top\" must be a positive integer"),
            "{found:?}"
        );
    }

    #[test]
    fn closes_must_be_written_and_true() {
        let missing = errors("{ leaderboard: top_posters }");
        assert!(missing[0].contains("needs \"closes: true\""), "{missing:?}");
        let other = errors("{ leaderboard: top_posters, closes: false }");
        assert!(
            other[0].starts_with("rules.yaml:5:50: a leaderboard trigger runs when the board's period closes: write \"closes: true\", found false"),
            "{other:?}"
        );
    }

    #[test]
    fn unknown_keys_and_keys_of_other_kinds_are_reported() {
        let unknown = errors("{ leaderboard: top_posters, closes: true, tpo: 3 }");
        assert!(unknown[0].contains("tpo"), "{unknown:?}");
        let misplaced = errors("{ event: post, top: 3 }");
        assert!(
            misplaced[0].contains("\"top\" only goes with a leaderboard trigger"),
            "{misplaced:?}"
        );
    }

    #[test]
    fn a_close_trigger_without_boards_is_reported() {
        let yaml = "rules:\n  - id: w\n    trigger: { leaderboard: b, closes: true }\n    actions: [ { points: 1 } ]\n";
        let found = match from_sources(&[("rules.yaml", yaml)], &|_| None) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
        };
        assert!(
            found[0].contains("needs a \"leaderboards\" section"),
            "{found:?}"
        );
    }
}
