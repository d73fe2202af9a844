//! What a rule attempt keeps to restore the member if one of its actions fails (all or
//! nothing, see `run.rs`). Cloning the whole member for every rule attempt cost more
//! than most rules' work; a rule whose only actions award or deduct points touches
//! four fields, so only those are kept for it; one that also tags, untags or gives
//! badges keeps the tags and badges besides, and checks their bounds alone: none of
//! those actions can touch the attributes, whose size (`Member::size`) is the costly
//! part to measure.

use std::collections::BTreeSet;

use crate::member::{Member, Size};
use crate::rules::{Action, Rule};

pub(super) enum Snapshot {
    /// The whole member, and its size for the growth bounds (`member::bounds`).
    Whole(Box<Member>, Size),
    /// The fields an award or a deduction changes (`Run::award`, `Run::move_points`):
    /// balance, lifetime points, the daily cap's day total and the expiry lots; and
    /// the tags and badges when the rule changes them. Points never make the member
    /// bigger, so only the tags' and badges' bounds apply.
    Points {
        points: i64,
        points_lifetime: i64,
        points_day: Option<(chrono::NaiveDate, i64)>,
        lots: crate::expiry::lots::Lots,
        marks: Option<Box<Marks>>,
    },
}

/// The tags and badges before a rule that changes them, and their size.
pub(super) struct Marks {
    tags: BTreeSet<String>,
    badges: Vec<String>,
    size: Size,
}

impl Snapshot {
    /// What `rule`'s actions could change of `member`, before they run.
    pub fn before(rule: &Rule, member: &Member) -> Snapshot {
        match touches(rule) {
            Touches::Points => Snapshot::points(member, None),
            Touches::PointsAndMarks => Snapshot::points(
                member,
                Some(Box::new(Marks {
                    tags: member.tags.clone(),
                    badges: member.badges.clone(),
                    size: member.marks_size(),
                })),
            ),
            Touches::Anything => Snapshot::Whole(Box::new(member.clone()), member.size()),
        }
    }

    fn points(member: &Member, marks: Option<Box<Marks>>) -> Snapshot {
        Snapshot::Points {
            points: member.points,
            points_lifetime: member.points_lifetime,
            points_day: member.book.points_day,
            lots: member.book.points_lots.clone(),
            marks,
        }
    }

    /// What the actions made the member grow past that it was not over before.
    pub fn grew_past_bounds(&self, member: &Member) -> Option<String> {
        match self {
            Snapshot::Whole(_, size) => member.size().grew_past_bounds(size),
            Snapshot::Points {
                marks: Some(marks), ..
            } => member.marks_size().grew_past_bounds(&marks.size),
            Snapshot::Points { marks: None, .. } => None,
        }
    }

    /// Puts the member back as it was before the actions.
    pub fn restore(self, member: &mut Member) {
        match self {
            Snapshot::Whole(before, _) => *member = *before,
            Snapshot::Points {
                points,
                points_lifetime,
                points_day,
                lots,
                marks,
            } => {
                member.points = points;
                member.points_lifetime = points_lifetime;
                member.book.points_day = points_day;
                member.book.points_lots = lots;
                if let Some(marks) = marks {
                    member.tags = marks.tags;
                    member.badges = marks.badges;
                }
            }
        }
    }
}

/// What of the member a rule's actions can change, as far as its snapshot goes.
enum Touches {
    /// Only awards and deductions, fixed or computed: the fields `Snapshot::Points`
    /// keeps. (Computing an amount reads the member and changes nothing; an amount
    /// that fails, or is too large, or would take the balance below zero, fails
    /// before anything moves.)
    Points,
    /// Those awards and tags, untags and badges: the tags and badges besides.
    PointsAndMarks,
    /// Anything else (attributes, scripts, credits, messages' counts...).
    Anything,
}

fn touches(rule: &Rule) -> Touches {
    let mut marks = false;
    for action in &rule.actions {
        match action {
            Action::Points { .. } => {}
            Action::Tag(_) | Action::Untag(_) | Action::Badge(_) => marks = true,
            _ => return Touches::Anything,
        }
    }
    if marks {
        Touches::PointsAndMarks
    } else {
        Touches::Points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn restoring_an_award_snapshot_undoes_everything_an_award_changes() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let mut member = Member::new("m-1");
        member.points = 40;
        member.points_lifetime = 90;
        member.book.points_day = Some((day, 40));
        member
            .book
            .points_lots
            .add(40, at, at + chrono::Duration::days(30));
        let before = member.clone();
        let snapshot = Snapshot::points(&member, None);
        member.points += 25;
        member.points_lifetime += 25;
        member.book.points_day = Some((day, 65));
        member
            .book
            .points_lots
            .add(25, at, at + chrono::Duration::days(30));
        assert_eq!(snapshot.grew_past_bounds(&member), None);
        snapshot.restore(&mut member);
        assert_eq!(member, before);
    }

    #[test]
    fn restoring_a_marks_snapshot_undoes_tags_badges_and_points() {
        let mut member = Member::new("m-1");
        member.points = 10;
        member.tags.insert("newcomer".into());
        member.badges.push("early".into());
        let before = member.clone();
        let snapshot = Snapshot::points(
            &member,
            Some(Box::new(Marks {
                tags: member.tags.clone(),
                badges: member.badges.clone(),
                size: member.marks_size(),
            })),
        );
        member.points += 5;
        member.tags.remove("newcomer");
        member
            .tags
            .insert("x".repeat(crate::member::MAX_NAME_BYTES + 1));
        member.badges.push("second".into());
        assert!(snapshot
            .grew_past_bounds(&member)
            .is_some_and(|problem| problem.contains("bytes in a tag or badge name")));
        snapshot.restore(&mut member);
        assert_eq!(member, before);
    }

    #[test]
    fn only_awards_tags_and_badges_keep_the_small_snapshot() {
        let set = crate::rules::from_sources(
            &[(
                "rules.yaml",
                r#"
rules:
  - id: award
    trigger: { event: a }
    actions: [ { points: 5 }, { points: "-event.data.n" }, { points: 2000000 } ]
  - id: marks
    trigger: { event: a }
    actions: [ { points: 5 }, { tag: t }, { untag: u }, { badge: b } ]
  - id: attrs
    trigger: { event: a }
    actions: [ { tag: t }, { set: { k: 1 } } ]
"#,
            )],
            &|_| None,
        )
        .unwrap_or_else(|_| panic!("rules load"));
        let kinds: Vec<_> = set.rules.iter().map(touches).collect();
        assert!(matches!(
            kinds[..],
            [Touches::Points, Touches::PointsAndMarks, Touches::Anything]
        ));
    }
}
