//! A draw with a fixed number of winners (`draw: { winners: N }` on a global rule):
//! who is eligible, each member's score, and keeping the best `N` while members go by.
//!
//! A member's score is SipHash-2-4 under the installation's secret key of (rule,
//! occurrence, member id): the same in `sim`, the daemon and a replay, in whatever
//! order members are visited, and unknowable from a member's id without the key. The
//! `N` lowest scores win; equal scores (vanishingly rare) go to the smaller member id,
//! so the order is total.

use std::hash::Hasher;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher24;

use super::{run_step, Context, Input};
use crate::member::Member;
use crate::script::RandomKey;

/// A member's ticket in the draw of `rule` at `occurrence`: lower wins.
pub fn draw_score(key: RandomKey, rule: &str, occurrence: DateTime<Utc>, member: &str) -> u64 {
    let (k0, k1) = key.0.split_at(8);
    let mut hasher = SipHasher24::new_with_keys(
        u64::from_le_bytes(k0.try_into().unwrap_or_default()),
        u64::from_le_bytes(k1.try_into().unwrap_or_default()),
    );
    // Length-prefixed, and tagged apart from the Rhai draws' inputs.
    let occurrence = occurrence.timestamp_millis().to_string();
    for part in ["draw", rule, &occurrence, member] {
        hasher.write(&(part.len() as u64).to_le_bytes());
        hasher.write(part.as_bytes());
    }
    hasher.finish()
}

/// Whether the global rule `rule` fires for `member` at the context's time: the
/// member is in its audience, its `during`, `limit` and `if` hold and its actions
/// succeed — what makes a member eligible for the rule's draw. Nothing is kept and
/// nothing is traced: the winners' steps run later, for real.
pub fn would_fire(ctx: &Context<'_>, member: Member, rule: &str) -> bool {
    let id = member.id.clone();
    let input = Input::Global { member: &id, rule };
    let (outcome, _) = run_step(ctx, Some(member), &input, None);
    outcome.firings.iter().any(|firing| firing.rule == rule)
}

/// One eligible member and their score.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Candidate {
    pub score: u64,
    pub member: String,
}

/// The best `wanted` candidates seen so far, best first: bounded by `wanted` however
/// many members go by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Best {
    pub wanted: usize,
    pub kept: Vec<Candidate>,
}

impl Best {
    pub fn new(wanted: usize) -> Best {
        Best {
            wanted,
            kept: Vec::new(),
        }
    }

    /// Keeps `candidate` if it is among the best `wanted` so far. A member offered
    /// twice (a scan resumed at its last committed member) is kept once.
    pub fn offer(&mut self, candidate: Candidate) {
        let full = self.kept.len() >= self.wanted;
        if full && self.kept.last().is_some_and(|worst| *worst <= candidate) {
            return;
        }
        let Err(at) = self.kept.binary_search(&candidate) else {
            return;
        };
        self.kept.insert(at, candidate);
        self.kept.truncate(self.wanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> RandomKey {
        RandomKey([byte; 16])
    }

    fn at() -> DateTime<Utc> {
        "2026-03-02T09:00:00Z".parse().unwrap()
    }

    fn draw(key: RandomKey, members: &[String], wanted: usize) -> Vec<String> {
        let mut best = Best::new(wanted);
        for member in members {
            best.offer(Candidate {
                score: draw_score(key, "lottery", at(), member),
                member: member.clone(),
            });
        }
        best.kept.into_iter().map(|c| c.member).collect()
    }

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:04}")).collect()
    }

    #[test]
    fn a_draw_keeps_exactly_the_number_of_winners_asked_for() {
        let winners = draw(key(1), &members(500), 10);
        assert_eq!(winners.len(), 10);
        let mut distinct = winners.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn an_audience_smaller_than_the_winners_all_win() {
        let mut winners = draw(key(1), &members(4), 10);
        winners.sort();
        assert_eq!(winners, members(4));
    }

    #[test]
    fn the_winners_do_not_depend_on_the_order_members_are_visited_in() {
        let forward = members(300);
        let mut backward = forward.clone();
        backward.reverse();
        let mut shuffled = forward.clone();
        shuffled.sort_by_key(|m| draw_score(key(9), "x", at(), m));
        let expected = draw(key(1), &forward, 7);
        assert_eq!(draw(key(1), &backward, 7), expected);
        assert_eq!(draw(key(1), &shuffled, 7), expected);
    }

    #[test]
    fn a_member_offered_twice_is_kept_once() {
        let all = members(5);
        let mut twice = all.clone();
        twice.extend(all.iter().cloned());
        assert_eq!(draw(key(1), &twice, 10).len(), 5);
    }

    #[test]
    fn the_winners_are_the_lowest_scores() {
        let all = members(200);
        let mut scored: Vec<(u64, String)> = all
            .iter()
            .map(|m| (draw_score(key(1), "lottery", at(), m), m.clone()))
            .collect();
        scored.sort();
        let lowest: Vec<String> = scored.into_iter().take(5).map(|(_, m)| m).collect();
        assert_eq!(draw(key(1), &all, 5), lowest);
    }

    #[test]
    fn another_key_draws_other_winners() {
        let all = members(1000);
        assert_ne!(draw(key(1), &all, 10), draw(key(2), &all, 10));
    }

    #[test]
    fn another_occurrence_or_rule_scores_a_member_differently() {
        let later = at() + chrono::Duration::days(7);
        let score = draw_score(key(1), "lottery", at(), "ana");
        assert_ne!(draw_score(key(1), "lottery", later, "ana"), score);
        assert_ne!(draw_score(key(1), "raffle", at(), "ana"), score);
    }
}
