//! How big one member may grow (issue 12). Every per-value limit of the sandbox holds,
//! yet 5,000 `set()` calls of 32 KiB strings would put 160 MB on one member — written
//! back on every event of theirs. A rule whose actions would take the member over one
//! of these bounds fails (all or nothing) and changes nothing; a `profile` or `join`
//! event whose data would is not merged (the rest of the event still counts).
//!
//! Only growth is refused: a member already over a bound (stored before the bound
//! existed) can still be changed in every way that does not make it bigger.

use super::Member;

/// Bytes of a member's attributes, serialized as JSON.
pub const MAX_ATTRS_BYTES: usize = 256 * 1024;
/// Attributes on one member.
pub const MAX_ATTRS: usize = 1_000;
/// Tags on one member, and badges on one member.
pub const MAX_TAGS: usize = 1_000;
pub const MAX_BADGES: usize = 1_000;
/// Bytes in one tag or badge name.
pub const MAX_NAME_BYTES: usize = 128;

/// The measures the bounds apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    attrs_bytes: usize,
    attrs: usize,
    tags: usize,
    badges: usize,
    longest_name: usize,
}

impl Member {
    pub fn size(&self) -> Size {
        Size {
            attrs_bytes: serialized_len(&self.attrs),
            attrs: self.attrs.len(),
            ..self.marks_size()
        }
    }

    /// The tags' and badges' measures alone (the attributes' count as none): what a
    /// change that cannot touch the attributes is checked by, without serializing them.
    pub fn marks_size(&self) -> Size {
        Size {
            attrs_bytes: 0,
            attrs: 0,
            tags: self.tags.len(),
            badges: self.badges.len(),
            longest_name: self
                .tags
                .iter()
                .chain(&self.badges)
                .map(String::len)
                .max()
                .unwrap_or(0),
        }
    }
}

impl Size {
    /// What `self` (after a change) is over that `before` was not, in words; `None`
    /// when the change is within bounds or made nothing bigger.
    pub fn grew_past_bounds(&self, before: &Size) -> Option<String> {
        let checks = [
            (
                self.attrs_bytes,
                before.attrs_bytes,
                MAX_ATTRS_BYTES,
                "bytes of attributes",
            ),
            (self.attrs, before.attrs, MAX_ATTRS, "attributes"),
            (self.tags, before.tags, MAX_TAGS, "tags"),
            (self.badges, before.badges, MAX_BADGES, "badges"),
            (
                self.longest_name,
                before.longest_name,
                MAX_NAME_BYTES,
                "bytes in a tag or badge name",
            ),
        ];
        checks
            .iter()
            .find(|(after, before, limit, _)| after > limit && after > before)
            .map(|(after, _, limit, what)| {
                format!("the member would have {after} {what}, over the limit of {limit}")
            })
    }
}

/// The length of `value` as JSON, without building the text.
fn serialized_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing a JSON map into a counter cannot fail; count what it wrote if it did.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn attributes_over_the_byte_bound_are_reported_in_words() {
        let before = Member::new("m-1");
        let mut after = before.clone();
        after
            .attrs
            .insert("big".into(), Value::String("x".repeat(MAX_ATTRS_BYTES)));
        let problem = after.size().grew_past_bounds(&before.size()).unwrap();
        assert!(
            problem.contains("bytes of attributes, over the limit of 262144"),
            "{problem}"
        );
    }

    #[test]
    fn a_member_already_over_a_bound_may_still_shrink() {
        let mut before = Member::new("m-1");
        for i in 0..=MAX_TAGS {
            before.tags.insert(format!("t{i}"));
        }
        let mut after = before.clone();
        after.tags.remove("t0");
        assert_eq!(after.size().grew_past_bounds(&before.size()), None);
    }
}
