//! A `redeem` event that names a reward (`data.reward`): judged before the step runs
//! ([`crate::rewards::judge`]), the points deducted through the same path as a rule's
//! deduction, and the verdict put into the event the `redeem` rules see
//! (`event.data.result`, `code`, `reason`, `cost`). A `redeem` event without
//! `data.reward` is an ordinary event, as before the catalog existed.

use super::run::Run;
use super::{Context, Input};
use crate::event::Event;
use crate::member::Member;
use crate::rewards::{self, Grant, Redemption, Refusal, Verdict, REDEMPTION_RULE};
use crate::rules::{CatchUp, Rule, Trigger};
use crate::shares::Short;

/// A redemption judged: the verdict, and what a granted one changes on the member.
pub(super) struct Judged {
    pub redemption: Redemption,
    grant: Option<Grant>,
    /// Refused out of stock in a cluster partition: what its shares ran short of.
    pub shorts: Vec<Short>,
}

/// The redemption `input` asks for, judged on `member` as the step starts, with the
/// event as the step's rules see it; `None` for any other input.
pub(super) fn judge(
    ctx: &Context<'_>,
    member: &Member,
    input: &Input<'_>,
) -> Option<(Event, Judged)> {
    let Input::Event(event) = input else {
        return None;
    };
    if event.kind != rewards::REDEEM {
        return None;
    }
    let reward = event.data_str("reward")?;
    let mut judged = rewards::judge(ctx.rules, ctx.rewards, ctx.shares, member, reward, ctx.now);
    let mut shorts = Vec::new();
    if let (Err(Refusal::OutOfStock), Some(shares)) = (&judged, ctx.shares) {
        // Out of this cluster partition's share: more is asked for only for a
        // redemption that would otherwise go ahead; one refused for another reason
        // gets that reason, without taking stock from the pool.
        match rewards::judge(ctx.rules, ctx.rewards, None, member, reward, ctx.now) {
            Ok(_) => {
                let record = ctx.rewards.get(reward).cloned().unwrap_or_default();
                shorts = ctx
                    .rules
                    .rewards
                    .iter()
                    .find(|r| r.id == reward)
                    .map(|r| r.shorts(&record, shares))
                    .unwrap_or_default();
            }
            Err(Refusal::OutOfStock) => {}
            Err(other) => judged = Err(other),
        }
    }
    let cost = ctx
        .rules
        .rewards
        .iter()
        .find(|r| r.id == reward)
        .map_or(0, |r| r.cost);
    let (verdict, grant) = match judged {
        Ok(grant) => (
            Verdict::Granted {
                code: grant.code.clone(),
            },
            Some(grant),
        ),
        Err(refusal) => (
            Verdict::Refused {
                reason: refusal.to_string(),
            },
            None,
        ),
    };
    let redemption = Redemption {
        member: member.id.to_string(),
        reward: reward.to_string(),
        event: event.id.clone(),
        at: ctx.now,
        cost,
        verdict,
    };
    let mut seen = (*event).clone();
    for (key, value) in redemption.data() {
        seen.data.insert(key.to_string(), value);
    }
    Some((
        seen,
        Judged {
            redemption,
            grant,
            shorts,
        },
    ))
}

impl Run<'_> {
    /// Applies a granted redemption: the deduction (through [`Run::award`], like any
    /// rule's, so the ledger and the points lots see it) and the member's limit count.
    /// The judgment checked what the points path checks (balance, size), so the path
    /// refusing is a bug; should it happen the redemption is recorded as refused.
    pub(super) fn redeem(&mut self, judged: &mut Judged) {
        let Some(grant) = judged.grant.take() else {
            if let Verdict::Refused { reason } = &judged.redemption.verdict {
                let reward = &judged.redemption.reward;
                self.builtin_note(|_| format!("redemption of {reward} refused: {reason}"));
            }
            return;
        };
        let rule = ledger_rule(&judged.redemption);
        let reason = format!("redeemed {}", judged.redemption.reward);
        if let Err(failed) = self.award(&rule, -grant.cost, Some(&reason), false) {
            judged.redemption.verdict = Verdict::Refused {
                reason: failed.message,
            };
            return;
        }
        let (reward, balance) = (&judged.redemption.reward, self.member.points);
        let code = grant
            .code
            .as_ref()
            .map(|code| format!(", code {code}"))
            .unwrap_or_default();
        self.builtin_note(|_| {
            format!(
                "redeemed {reward} for {} points → balance {balance}{code}",
                grant.cost
            )
        });
        if let Some(count) = grant.limit {
            self.member
                .book
                .reward_limits
                .insert(&judged.redemption.reward, count);
        }
        self.member_changed();
    }
}

/// What the deduction's ledger entry names as its rule: no rule of the set made it.
fn ledger_rule(redemption: &Redemption) -> Rule {
    Rule {
        id: REDEMPTION_RULE.to_string(),
        description: None,
        priority: 0,
        trigger: Trigger::Event(vec![rewards::REDEEM.to_string()]),
        condition: None,
        during: None,
        limit: None,
        audience: None,
        catch_up: CatchUp::All,
        draw: None,
        actions: Vec::new(),
        at: crate::rules::SourcePos {
            file: std::sync::Arc::from(format!("reward {}", redemption.reward)),
            line: 0,
            col: 0,
        },
    }
}
