//! The second stage: the YAML trees of every file, merged by section and compiled, in
//! dependency order, into a [`RuleSet`]. Sections that others refer to (counters,
//! tiers, templates, channels, escalations, campaigns) are compiled first, and a name
//! counts as defined even if its definition has errors, so one mistake is reported
//! once rather than again at every reference.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono_tz::Tz;

use super::convert::{fields, Diag};
use super::files::{display, relative_inside, ReadFiles};
use super::sections::{
    campaigns, channels, counters, escalations, leaderboards, rewards, rules, settings, templates,
};
use super::yaml::{Key, Node, Value};
use super::{RuleError, RuleIndex, RuleSet, SourcePos, Trigger};
use crate::script::Sandbox;

const SECTIONS: [&str; 10] = [
    "settings",
    "tiers",
    "counters",
    "templates",
    "channels",
    "escalations",
    "campaigns",
    "rewards",
    "leaderboards",
    "rules",
];

/// Everything a section compiler needs: where to report, where files are, the engine
/// expressions compile for, and the names defined so far.
pub struct Ctx<'a> {
    pub d: Diag,
    pub dir: &'a Path,
    pub sandbox: &'a Sandbox,
    pub files: ReadFiles,
    pub names: Names,
    /// The templates, once compiled (`None` before, or if they have errors): `send`
    /// actions add their `to` to them.
    pub messages: Option<crate::messaging::Templates>,
}

/// Names defined by the sections compiled so far, for resolving references.
#[derive(Default)]
pub struct Names {
    pub timezone: Option<Tz>,
    pub counters: Vec<String>,
    /// `None` when the rule set has no tiers.
    pub tier_levels: Option<Vec<String>>,
    pub templates: Vec<String>,
    pub channels: Vec<String>,
    pub escalations: Vec<String>,
    /// Campaign id → its phase names.
    pub campaigns: BTreeMap<String, Vec<String>>,
    /// Whether `settings.points.expire` is set (a `points_expiring` trigger needs it).
    pub points_expire: bool,
    /// Leaderboard id → its `size` (a close trigger's `top` is bounded by it).
    pub leaderboards: BTreeMap<String, usize>,
}

impl Ctx<'_> {
    /// Reads a file named in a rule file (a script, a template body), relative to the
    /// rules directory; problems are reported at `value`.
    pub fn read_file(&mut self, value: &Value, written: &str) -> Option<(SourcePos, String)> {
        let rel = relative_inside(written)
            .map_err(|e| self.d.error(&value.at, e))
            .ok()?;
        let text = self
            .files
            .read_named(self.dir, &rel)
            .map_err(|e| self.d.error(&value.at, e))
            .ok()?;
        let at = SourcePos {
            file: Arc::from(display(self.dir, &rel)),
            line: 1,
            col: 1,
        };
        Some((at, text))
    }
}

/// Remembers where each id was first defined; a second definition is reported there.
pub struct Ids {
    what: &'static str,
    seen: HashMap<String, SourcePos>,
}

impl Ids {
    pub fn new(what: &'static str) -> Self {
        Ids {
            what,
            seen: HashMap::new(),
        }
    }

    /// `false` (and an error at `at`) if `id` was defined before.
    pub fn claim(&mut self, d: &mut Diag, id: &str, at: &SourcePos) -> bool {
        if let Some(first) = self.seen.get(id) {
            d.error(
                at,
                format!("{} {id:?} is already defined at {first}", self.what),
            );
            return false;
        }
        self.seen.insert(id.to_string(), at.clone());
        true
    }
}

/// One top-level section as written in one file.
pub struct Section<'a> {
    pub key: &'a Key,
    pub value: &'a Value,
}

impl<'a> Section<'a> {
    /// The items of a list section (`rules:`, `counters:`, ...).
    pub fn list(&self, d: &mut Diag) -> &'a [Value] {
        match &self.value.node {
            Node::Seq(items) => items,
            Node::Null => &[],
            _ => {
                d.error(
                    &self.value.at,
                    format!(
                        "{} must be a list, found {}",
                        self.key.name,
                        self.value.kind()
                    ),
                );
                &[]
            }
        }
    }

    /// The entries of a mapping section (`templates:`, `channels:`).
    pub fn entries(&self, d: &mut Diag) -> &'a [(Key, Value)] {
        match &self.value.node {
            Node::Map(entries) => entries,
            Node::Null => &[],
            _ => {
                d.error(
                    &self.value.at,
                    format!(
                        "{} must be a mapping of ids, found {}",
                        self.key.name,
                        self.value.kind()
                    ),
                );
                &[]
            }
        }
    }
}

/// Compiles the parsed files (in path order) into a rule set, or every error found.
pub fn compile(
    mut ctx: Ctx,
    docs: &[Value],
    sandbox: Arc<Sandbox>,
) -> Result<RuleSet, Vec<RuleError>> {
    let mut by_name: BTreeMap<&str, Vec<Section>> = BTreeMap::new();
    for doc in docs {
        let Some(top) = fields(&mut ctx.d, doc, "a rule file", &SECTIONS) else {
            continue;
        };
        for (key, value) in top.entries {
            if SECTIONS.contains(&key.name.as_str()) {
                by_name
                    .entry(key.name.as_str())
                    .or_default()
                    .push(Section { key, value });
            }
        }
    }
    let mut take = |name: &str| by_name.remove(name).unwrap_or_default();
    let (settings_sections, tier_sections) = (take("settings"), take("tiers"));
    let (counter_sections, template_sections) = (take("counters"), take("templates"));
    let (channel_sections, escalation_sections) = (take("channels"), take("escalations"));
    let (campaign_sections, rule_sections) = (take("campaigns"), take("rules"));
    let reward_sections = take("rewards");
    let leaderboard_sections = take("leaderboards");

    let settings_section = single(&mut ctx.d, &settings_sections, "settings are");
    let settings = settings::compile(&mut ctx, settings_section);
    ctx.names.timezone = Some(settings.timezone);
    ctx.names.points_expire = settings.points_expiry.is_some();
    let counters = counters::compile(&mut ctx, &counter_sections);
    let tier_section = single(&mut ctx.d, &tier_sections, "tiers are");
    let tiers = counters::tiers(&mut ctx, tier_section);
    let templates = templates::compile(&mut ctx, &template_sections);
    let channels = channels::compile(&mut ctx, &channel_sections);
    ctx.messages = match crate::messaging::Templates::compile(&templates, &channels) {
        Ok(messages) => Some(messages),
        Err(errors) => {
            ctx.d.errors.extend(errors.into_iter().map(RuleError::from));
            None
        }
    };
    let escalations = escalations::compile(&mut ctx, &escalation_sections);
    let campaigns = campaigns::compile(&mut ctx, &campaign_sections);
    let leaderboards = leaderboards::compile(&mut ctx, &leaderboard_sections);
    ctx.names.leaderboards = leaderboards
        .iter()
        .map(|b| (b.id.clone(), b.size))
        .collect();
    let mut rules = rules::compile(&mut ctx, &rule_sections);
    let rewards = rewards::compile(&mut ctx, &reward_sections);
    super::member_fields::check(&mut ctx.d, &ctx.names.counters);

    if !ctx.d.errors.is_empty() {
        let mut errors = ctx.d.errors;
        errors.sort();
        errors.dedup();
        return Err(errors);
    }
    // Templates compile whenever nothing else is wrong with them.
    let Some(messages) = ctx.messages.take() else {
        return Err(Vec::new());
    };
    // Stable: equal priorities keep file-path-then-position order.
    rules.sort_by_key(|rule| std::cmp::Reverse(rule.priority));
    let index = index(&rules);
    Ok(RuleSet {
        version: ctx.files.version(),
        files: ctx.files.paths(),
        sources: Arc::new(ctx.files.contents.clone()),
        settings,
        tiers,
        counters,
        templates,
        channels,
        escalations,
        campaigns,
        rewards,
        leaderboards,
        rules,
        index,
        sandbox,
        messages: Arc::new(messages),
        reads: Arc::new(std::mem::take(&mut ctx.d.reads)),
        explain: None,
    })
}

/// A section that may be written only once across all files.
fn single<'s, 'a>(
    d: &mut Diag,
    sections: &'s [Section<'a>],
    what: &str,
) -> Option<&'s Section<'a>> {
    if let Some(first) = sections.first() {
        for again in &sections[1..] {
            d.error(
                &again.key.at,
                format!("{what} already defined at {}", first.key.at),
            );
        }
    }
    sections.first()
}

fn index(rules: &[super::Rule]) -> RuleIndex {
    let mut index = RuleIndex::default();
    for (i, rule) in rules.iter().enumerate() {
        match &rule.trigger {
            Trigger::Event(types) => {
                for t in types {
                    index.by_event_type.entry(t.clone()).or_default().push(i);
                }
            }
            Trigger::Milestone { counter, .. } => {
                if !index.milestone_counters.contains(counter) {
                    index.milestone_counters.push(counter.clone());
                }
            }
            Trigger::Tier(_) => index.tier.push(i),
            Trigger::Inactive(_) => index.inactive.push(i),
            Trigger::Returned(_) => index.returned.push(i),
            Trigger::After { events, .. } => {
                for t in events {
                    index
                        .after_by_event_type
                        .entry(t.clone())
                        .or_default()
                        .push(i);
                }
            }
            Trigger::Phase { .. } => index.phase.push(i),
            Trigger::Schedule(_) => index.schedule.push(i),
            Trigger::PointsExpiring(_) => index.points_expiring.push(i),
            Trigger::LeaderboardClose { board, .. } => index
                .leaderboard_close
                .entry(board.clone())
                .or_default()
                .push(i),
        }
    }
    index.milestone_counters.sort();
    for (i, rule) in rules.iter().enumerate() {
        if let Trigger::Milestone { counter, .. } = &rule.trigger {
            if let Ok(slot) = index.milestone_counters.binary_search(counter) {
                index.milestones.push((i, slot));
            }
        }
    }
    index
}
