//! What a rule attempt keeps to restore the member if one of its actions fails (all or
//! nothing, see `run.rs`). Cloning the whole member for every rule attempt cost more
//! than most rules' work; a rule whose only actions are fixed awards of points touches
//! four fields, so only those are kept for it.

use super::actions::MAX_AWARD;
use crate::member::{Member, Size};
use crate::money::Decimal;
use crate::rules::{Action, Amount, Rule};

pub(super) enum Snapshot {
    /// The whole member, and its size for the growth bounds (`member::bounds`).
    Whole(Box<Member>, Size),
    /// The fields a fixed award changes (`Run::award`, `Run::move_points`): balance,
    /// lifetime points, the daily cap's day total and the expiry lots. Awards never
    /// make the member bigger, so no bounds apply.
    Points {
        points: i64,
        points_lifetime: i64,
        points_day: Option<(chrono::NaiveDate, i64)>,
        lots: crate::expiry::lots::Lots,
    },
}

impl Snapshot {
    /// What `rule`'s actions could change of `member`, before they run.
    pub fn before(rule: &Rule, member: &Member) -> Snapshot {
        if awards_only(rule) {
            Snapshot::points(member)
        } else {
            Snapshot::Whole(Box::new(member.clone()), member.size())
        }
    }

    fn points(member: &Member) -> Snapshot {
        Snapshot::Points {
            points: member.points,
            points_lifetime: member.points_lifetime,
            points_day: member.book.points_day,
            lots: member.book.points_lots.clone(),
        }
    }

    /// What the actions made the member grow past that it was not over before.
    pub fn grew_past_bounds(&self, member: &Member) -> Option<String> {
        match self {
            Snapshot::Whole(_, size) => member.size().grew_past_bounds(size),
            Snapshot::Points { .. } => None,
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
            } => {
                member.points = points;
                member.points_lifetime = points_lifetime;
                member.book.points_day = points_day;
                member.book.points_lots = lots;
            }
        }
    }
}

/// Whether every action of `rule` is a fixed award (`points: 5`, never a deduction)
/// within the largest one action may move, which cannot fail: such a rule changes only the fields `Snapshot::Points` keeps.
fn awards_only(rule: &Rule) -> bool {
    rule.actions.iter().all(|action| {
        matches!(
            action,
            Action::Points { amount: Amount::Fixed(n), .. }
                if *n >= Decimal::ZERO && *n <= Decimal::from(MAX_AWARD)
        )
    })
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
        let snapshot = Snapshot::points(&member);
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
}
