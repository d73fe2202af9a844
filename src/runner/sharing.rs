//! A cluster partition's shares of the pools every member shares (`crate::shares`),
//! and where more of them comes from: the runner asks its [`ShareSource`] when a step
//! ran short, and runs the step again with what was granted.

use std::collections::BTreeMap;

use crate::rules::RuleSet;
use crate::shares::{Grant, Shares, Short};

/// Most times one step is run again for more shares: each round grants something or
/// ends the asking, so only a source that keeps granting too little reaches it.
const MAX_ROUNDS: usize = 16;

/// Where a partition's runner gets more of a shared pool (the cluster's key-value
/// bucket). Called on the runner's thread, in the middle of a step's message.
pub trait ShareSource: Send {
    /// More of what a step of the message at stream sequence `at` ran short of
    /// ([`Grant::Spent`] when the pool has nothing left), recorded at `at` before it
    /// is returned, so a replay holds it from the same message and never asks; `Err`
    /// when it cannot be asked now (the group must not be committed).
    fn grant(&mut self, rules: &RuleSet, short: &Short, at: u64) -> Result<Grant, String>;
}

pub(super) struct Sharing {
    pub shares: Shares,
    source: Box<dyn ShareSource>,
    /// Grants recorded for messages not applied yet (by an owner that stopped before
    /// committing them), by the sequence they take effect at.
    pending: BTreeMap<u64, Vec<Grant>>,
    /// The sequence of the message being applied.
    at: u64,
    /// Rounds asked for the current step.
    rounds: usize,
    /// Whether the rules of this version can run short of anything, asked once per
    /// rule set: a step that cannot is run once, without a copy of its member.
    pools: Option<(String, bool)>,
}

/// What came of asking for more.
pub(super) enum Asked {
    /// Something was granted: run the step again.
    Grew,
    /// Nothing more to be had: the step's outcome stands.
    Spent,
}

impl Sharing {
    pub fn new(shares: Shares, pending: Vec<(u64, Grant)>, source: Box<dyn ShareSource>) -> Self {
        let mut by_sequence: BTreeMap<u64, Vec<Grant>> = BTreeMap::new();
        for (at, grant) in pending {
            by_sequence.entry(at).or_default().push(grant);
        }
        Sharing {
            shares,
            source,
            pending: by_sequence,
            at: 0,
            rounds: 0,
            pools: None,
        }
    }

    /// The message at `sequence` is next: the grants recorded for it (and any before
    /// it) take effect.
    pub fn reach(&mut self, sequence: u64) {
        self.at = sequence;
        let later = self.pending.split_off(&(sequence + 1));
        for grant in std::mem::replace(&mut self.pending, later)
            .into_values()
            .flatten()
        {
            self.shares.add(&grant);
        }
    }

    /// A step starts: whether it may run short (the rules have a budget, a stock, a
    /// codes pool or an escalation), so the runner keeps its member to run it again.
    pub fn start_step(&mut self, rules: &RuleSet) -> bool {
        self.rounds = 0;
        match &self.pools {
            Some((version, pools)) if *version == rules.version => *pools,
            _ => {
                let pools = rules.campaigns.iter().any(|c| c.budget_points.is_some())
                    || rules
                        .rewards
                        .iter()
                        .any(|r| r.stock.is_some() || r.codes.is_some())
                    || !rules.escalations.is_empty();
                self.pools = Some((rules.version.clone(), pools));
                pools
            }
        }
    }

    /// Asks for what `shorts` name.
    pub fn ask(&mut self, rules: &RuleSet, shorts: &[Short]) -> Result<Asked, String> {
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Err(format!(
                "a step ran short of its partition's shares {MAX_ROUNDS} times: {shorts:?}"
            ));
        }
        let mut grew = false;
        for short in shorts {
            if self.shares.is_spent(short, &rules.version) {
                continue;
            }
            let grant = self.source.grant(rules, short, self.at)?;
            grew |= !matches!(grant, Grant::Spent { .. });
            self.shares.add(&grant);
        }
        Ok(if grew { Asked::Grew } else { Asked::Spent })
    }
}
