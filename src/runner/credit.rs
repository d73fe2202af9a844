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
