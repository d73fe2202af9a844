//! Credits to other members (`credit`, referrals): each credited member's step runs
//! right after the step that made the credit, into the same open group — so the
//! group's one commit stores both members or neither, and the next steps see both.
//!
//! Nothing about a credit is journaled: the journal keeps the input that started the
//! chain, and a replay of it makes the same credits again, in the same order.

use super::Runner;
use crate::engine::{Credit, Input};
use crate::store::StepWrite;

impl Runner {
    /// Runs the credited members' steps, in the order the credits were made; a credit
    /// made by one of them runs before the next credit here (depth first). The engine
    /// bounds the depth ([`crate::engine::MAX_CREDIT_DEPTH`]).
    ///
    /// The crediting step is already in the open group: a credited member that cannot
    /// be read breaks the group, so its commit drops all of it rather than store one
    /// member's side of the credit.
    pub(super) fn run_credits(&mut self, credits: Vec<Credit>) {
        for credit in credits {
            let member = match self.take_member(&credit.member) {
                Ok(member) => member,
                Err(e) => {
                    self.open.break_with(format!(
                        "cannot read member {:?}, credited by {:?}: {e}",
                        credit.member, credit.from
                    ));
                    return;
                }
            };
            let outcome = self.step(member, &Input::Credit(&credit), credit.at);
            self.credited
                .fired
                .extend(outcome.firings.iter().map(|f| f.rule.clone()));
            self.credited
                .failures
                .extend(outcome.failures.iter().cloned());
            self.absorb(outcome, StepWrite::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::event::{parse_line, AtPolicy};
    use crate::store::{Fault, Store, StoreError, UNTIL_CLEARED};

    #[test]
    fn a_credited_member_that_cannot_be_read_drops_the_whole_group_at_its_commit() {
        let rules = crate::rules::from_sources(
            &[(
                "rules.yaml",
                "rules:\n  - id: r\n    trigger: { event: join }\n    actions: [ { points: 5 } ]\n",
            )],
            &|_| None,
        )
        .unwrap();
        let mut runner = Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap();
        let at: DateTime<Utc> = "2026-06-01T09:00:00Z".parse().unwrap();
        let join = r#"{"id":"j-1","type":"join","member":"m-bo","at":"2026-06-01T09:00:00Z"}"#;
        runner
            .apply_event(&parse_line(join, AtPolicy::Required).unwrap(), at)
            .unwrap();
        // The crediting step is in the open group; the credited member's read fails.
        runner.store().faults().inject(Fault::Read, UNTIL_CLEARED);
        runner.run_credits(vec![Credit {
            member: "m-ada".into(),
            from: "m-bo".into(),
            rule: "r".into(),
            points: 50,
            reason: None,
            daily_cap: true,
            tag: None,
            badge: None,
            referral: false,
            depth: 1,
            event: Some("j-1".into()),
            at,
            identity: "event\u{1f}j-1\u{1f}0".into(),
        }]);
        runner.store().faults().clear(Fault::Read);

        assert!(matches!(runner.commit(), Err(StoreError::GroupDropped(_))));
        assert!(runner.store().member("m-bo").unwrap().is_none());
        assert!(!runner.store().seen("j-1").unwrap());
        // The next group starts clean and commits.
        runner
            .apply_event(&parse_line(join, AtPolicy::Required).unwrap(), at)
            .unwrap();
        runner.commit().unwrap();
        assert_eq!(runner.store().member("m-bo").unwrap().unwrap().points, 5);
    }
}
