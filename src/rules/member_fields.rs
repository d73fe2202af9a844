//! Misspelt member fields. Rhai reads a key a map does not have as `()`, so
//! `member.point > 100` is never true and nobody is told why.
//!
//! `member` also carries every profile attribute, and attributes are free-form (set by
//! `profile` events and `set` actions), so an unknown name cannot simply be an error:
//! `member.vip_since` may be set by an event Rally has not seen yet. The check flags
//! only a name that is within a typo's reach of a built-in field (the same reach as
//! every other "did you mean") and that the rule set gives no other meaning: not a
//! custom counter, not a key a `set` action or a script's `set("name", ..)` writes,
//! and not a profile field `join` fills in. An attribute that really is named like a
//! built-in field (`member.tiers`) can be read as `member["tiers"]`, which is not
//! checked.

use super::convert::{edit_distance, Diag};
use crate::script::MEMBER_FIELDS;

/// Profile fields the `join` event fills in (SPEC §1).
const PROFILE_FIELDS: [&str; 4] = ["name", "email", "timezone", "locale"];

/// Reports every `member.<name>` read in the rule set that looks like a misspelt
/// built-in field.
pub fn check(d: &mut Diag, counters: &[String]) {
    let reads = std::mem::take(&mut d.member_reads);
    for (name, at) in reads {
        let known = MEMBER_FIELDS.contains(&name.as_str())
            || PROFILE_FIELDS.contains(&name.as_str())
            || counters.contains(&name)
            || d.set_keys.contains(&name);
        if known {
            continue;
        }
        let limit = (name.chars().count() / 3).max(1);
        let closest = MEMBER_FIELDS
            .iter()
            .map(|field| (edit_distance(&name, field), *field))
            .filter(|(distance, _)| *distance <= limit)
            .min();
        if let Some((_, field)) = closest {
            d.error_hint(
                &at,
                format!("member has no field {name:?}: it would always read as ()"),
                Some(format!("did you mean {field:?}?")),
            );
        }
    }
}
