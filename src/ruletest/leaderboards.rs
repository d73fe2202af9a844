//! `expect.leaderboards` in a test: a board's places in one period, in order.
//!
//! ```yaml
//! leaderboards:
//!   top_posters:
//!     2026-W02: [ { member: m-2, score: 3 }, { member: m-1, score: 2 } ]
//! ```
//!
//! The list is the whole ranking as `sim` prints it (at most the board's `size`):
//! a place more or a place less is a mismatch, so a test says who is *not* shown too.

use serde_json::Value as Json;

use super::parse::{entries, Ctx};
use super::verdict::Mismatch;
use crate::rules::convert::{self, fields};
use crate::rules::yaml::Value;
use crate::rules::SourcePos;

/// One period of one board, as the test expects it.
pub struct BoardExpect {
    pub board: String,
    pub period: String,
    pub at: SourcePos,
    /// `(member, score)` from the first place down, the score as `sim` prints it.
    pub places: Vec<(String, Json)>,
}

pub fn parse(cx: &mut Ctx, value: &Value) -> Vec<BoardExpect> {
    let mut out = Vec::new();
    for (board, periods) in entries(cx, value, "leaderboards") {
        for (period, list) in entries(cx, periods, "a leaderboard") {
            let Some(items) = cx.list(list, "places") else {
                continue;
            };
            let mut places = Vec::new();
            for item in items {
                let Some(f) = fields(&mut cx.d, item, "place", &["member", "score"]) else {
                    continue;
                };
                let member = f.req_str(&mut cx.d, "member").map(str::to_string);
                let score = f
                    .require(&mut cx.d, "score")
                    .and_then(|v| convert::decimal(&mut cx.d, v, "score"));
                if let (Some(member), Some(score)) = (member, score) {
                    places.push((member, crate::money::to_json(score)));
                }
            }
            out.push(BoardExpect {
                board: board.name.clone(),
                period: period.name.clone(),
                at: period.at.clone(),
                places,
            });
        }
    }
    out
}

pub fn judge(expected: &[BoardExpect], doc: &Json, out: &mut Vec<Mismatch>) {
    for want in expected {
        let got: Vec<(String, Json)> = doc["leaderboards"][&want.board][&want.period]
            .as_array()
            .map(|places| {
                places
                    .iter()
                    .map(|p| {
                        let member = p["member"].as_str().unwrap_or_default().to_string();
                        (member, p["score"].clone())
                    })
                    .collect()
            })
            .unwrap_or_default();
        if got != want.places {
            out.push(Mismatch {
                at: want.at.clone(),
                what: format!("leaderboards.{}.{}", want.board, want.period),
                expected: show(&want.places),
                got: show(&got),
            });
        }
    }
}

fn show(places: &[(String, Json)]) -> String {
    let places: Vec<String> = places
        .iter()
        .map(|(member, score)| format!("{member} {score}"))
        .collect();
    format!("[{}]", places.join(", "))
}
