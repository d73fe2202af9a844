//! `leaderboards:` — members ranked by what they gained of a counter (or an expression
//! over the member) within each day, week or month of `settings.timezone`.
//!
//! `by` is read exactly as `tiers.by` is: a bare name must be a counter (a typo is an
//! unknown counter, not a Rhai variable), anything else is a Rhai expression.
//! `size` is bounded so reading a board stays cheap whatever an operator writes.

use crate::localtime::Period;
use crate::rules::compile::{Ctx, Ids, Section};
use crate::rules::convert::{choice, fields, ident, positive};
use crate::rules::sections::counters::measure;
use crate::rules::yaml::Value;
use crate::rules::Leaderboard;

/// The largest `size` a board may show.
pub const MAX_SIZE: usize = 1000;

pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> Vec<Leaderboard> {
    let mut ids = Ids::new("leaderboard");
    let mut out = Vec::new();
    for section in sections {
        for item in section.list(&mut ctx.d) {
            if let Some(board) = leaderboard(ctx, &mut ids, item) {
                out.push(board);
            }
        }
    }
    out
}

fn leaderboard(ctx: &mut Ctx, ids: &mut Ids, item: &Value) -> Option<Leaderboard> {
    let f = fields(
        &mut ctx.d,
        item,
        "leaderboard",
        &["id", "by", "period", "size"],
    )?;
    let id_value = f.require(&mut ctx.d, "id");
    let id = id_value.and_then(|v| ident(&mut ctx.d, v, "leaderboard"));
    let claimed = match (&id, id_value) {
        (Some(id), Some(v)) => ids.claim(&mut ctx.d, id, &v.at),
        _ => false,
    };
    let by = f.require(&mut ctx.d, "by").and_then(|v| measure(ctx, v));
    let d = &mut ctx.d;
    let period = f.require(d, "period").and_then(|v| {
        choice(d, v, "period", &["daily", "weekly", "monthly"]).map(|p| match p {
            "daily" => Period::Day,
            "weekly" => Period::Week,
            _ => Period::Month,
        })
    });
    let size = f.require(d, "size").and_then(|v| {
        let size: usize = positive(d, v, "size")?;
        if size > MAX_SIZE {
            d.error(
                &v.at,
                format!("\"size\" must be at most {MAX_SIZE}, found {size}"),
            );
            return None;
        }
        Some(size)
    });
    Some(Leaderboard {
        id: id.filter(|_| claimed)?,
        by: by?,
        period: period?,
        size: size?,
        at: item.at.clone(),
    })
}

#[cfg(test)]
mod tests {
    use crate::localtime::Period;
    use crate::rules::{from_sources, Measure};

    fn errors(yaml: &str) -> Vec<String> {
        match from_sources(&[("rules.yaml", yaml)], &|_| None) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_board_by_a_counter_compiles_with_its_period_and_size() {
        let set = from_sources(
            &[(
                "rules.yaml",
                "leaderboards:\n  - { id: posters, by: events.post, period: weekly, size: 3 }\n",
            )],
            &|_| None,
        )
        .unwrap();
        let board = &set.leaderboards[0];
        assert_eq!(board.id, "posters");
        assert!(matches!(&board.by, Measure::Counter(c) if c == "events.post"));
        assert_eq!(board.period, Period::Week);
        assert_eq!(board.size, 3);
    }

    #[test]
    fn a_board_by_an_expression_compiles() {
        let set = from_sources(
            &[(
                "rules.yaml",
                "leaderboards:\n  - { id: mix, by: \"member.points + member.purchases\", period: daily, size: 10 }\n",
            )],
            &|_| None,
        )
        .unwrap();
        assert!(matches!(set.leaderboards[0].by, Measure::Expr(_)));
    }

    #[test]
    fn an_unknown_counter_is_reported_where_it_is_written() {
        let found = errors("leaderboards:\n  - { id: b, by: pionts, period: weekly, size: 3 }\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("rules.yaml:2:18: unknown counter \"pionts\""),
            "{found:?}"
        );
    }

    #[test]
    fn a_second_board_with_the_same_id_is_reported() {
        let found = errors(
            "leaderboards:\n  - { id: b, by: points, period: weekly, size: 3 }\n  - { id: b, by: points, period: daily, size: 3 }\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(
                "rules.yaml:3:11: leaderboard \"b\" is already defined at rules.yaml:2:11"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn size_must_be_between_one_and_the_maximum() {
        let zero = errors("leaderboards:\n  - { id: b, by: points, period: weekly, size: 0 }\n");
        assert!(
            zero[0].contains("rules.yaml:2:48: \"size\" must be a positive integer"),
            "{zero:?}"
        );
        let huge = errors("leaderboards:\n  - { id: b, by: points, period: weekly, size: 5000 }\n");
        assert!(
            huge[0].contains("\"size\" must be at most 1000, found 5000"),
            "{huge:?}"
        );
    }

    #[test]
    fn unknown_keys_and_periods_are_reported() {
        let found =
            errors("leaderboards:\n  - { id: b, by: points, period: yearly, size: 3, top: 3 }\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|e| e.contains("\"period\"")), "{found:?}");
        assert!(
            found
                .iter()
                .any(|e| e.contains("unknown key \"top\" in leaderboard")),
            "{found:?}"
        );
    }
}
