//! The document's `members` written as text on two threads. When a simulation ends,
//! its members' views are the one piece of work left that splits (each member's text
//! is its own), and the second core, busy until then reading events and spilling
//! records, is idle: a tenth of a big simulation's work moves off the critical path.
//!
//! Each view is pretty-printed and indented for its place in the document, as the
//! spilled records are (`spill.rs`), then written in as a raw value ([`Text`]): the
//! document reads exactly as it does serialized in one pass, which the tests hold it to.

use serde::ser::{Error as _, Serialize, SerializeMap, Serializer};

use super::spill::{indent, Text};
use crate::member::{Member, View};

/// Below this many members the second thread costs more than it saves.
const SPLIT_FROM: usize = 2_000;

/// Every member's view as document text, in member order.
pub(super) struct Views<'a> {
    members: &'a [Member],
    /// The views of each part, one after the other, and where each ends.
    parts: Vec<(Vec<u8>, Vec<usize>)>,
}

impl<'a> Views<'a> {
    /// Renders the views of `members`, on two threads when there are enough of them.
    pub(super) fn render(members: &'a [Member]) -> Result<Views<'a>, String> {
        let parts = if members.len() < SPLIT_FROM {
            vec![render_part(members)?]
        } else {
            let (front, back) = members.split_at(members.len() / 2);
            std::thread::scope(|scope| {
                let back = scope.spawn(|| render_part(back));
                let front = render_part(front);
                let back = back.join().map_err(|panic| {
                    format!(
                        "rendering the members panicked: {}",
                        crate::feed::panic_text(panic.as_ref())
                    )
                })?;
                Ok::<_, String>(vec![front?, back?])
            })?
        };
        Ok(Views { members, parts })
    }
}

/// The views of `members` as text, and where each ends.
fn render_part(members: &[Member]) -> Result<(Vec<u8>, Vec<usize>), String> {
    let mut text = Vec::with_capacity(members.len() * 256);
    let mut ends = Vec::with_capacity(members.len());
    let mut scratch = Vec::with_capacity(1024);
    for member in members {
        scratch.clear();
        serde_json::to_writer_pretty(&mut scratch, &View(member))
            .map_err(|e| format!("writing member {:?}: {e}", member.id))?;
        indent(&scratch, &mut text);
        ends.push(text.len());
    }
    Ok((text, ends))
}

impl Serialize for Views<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        let mut members = self.members.iter();
        for (text, ends) in &self.parts {
            let mut start = 0;
            for &end in ends {
                let Some(member) = members.next() else {
                    return Err(S::Error::custom("more views than members"));
                };
                let view = std::str::from_utf8(&text[start..end]).map_err(S::Error::custom)?;
                map.serialize_entry(&member.id, &Text(view))?;
                start = end;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::sim::simulate;

    /// `count` members on the shipped rules, in shapes the view writes differently:
    /// tiers, tags and badges, counters, names that need escaping, points that expire,
    /// members who unsubscribed or left.
    fn events(count: usize) -> String {
        let mut lines = String::new();
        for n in 0..count {
            // Some ids need escaping as the members' keys.
            let member = match n % 17 {
                0 => format!(r#"m-\"{n}\"-ü"#),
                _ => format!("m-{n}"),
            };
            let day = 1 + n % 20;
            let at = |hour: usize| format!("2026-11-{day:02}T{hour:02}:00:00+08:00");
            lines += &format!(
                r#"{{"id":"j-{n}","type":"join","member":"{member}","at":"{}","data":{{"name":"Zoë","email":"m{n}@example.com"}}}}"#,
                at(8)
            );
            lines.push('\n');
            for (k, kind) in ["checkin", "post", "purchase", "share"]
                .iter()
                .enumerate()
                .take(n % 5)
            {
                lines += &format!(
                    r#"{{"id":"e-{n}-{k}","type":"{kind}","member":"{member}","at":"{}","data":{{"amount":{}.5,"order":"o-{n}-{k}"}}}}"#,
                    at(9 + k),
                    100 * (n % 97)
                );
                lines.push('\n');
            }
            let last = match n % 13 {
                0 => "unsubscribe",
                1 => "leave",
                _ => continue,
            };
            lines += &format!(
                r#"{{"id":"x-{n}","type":"{last}","member":"{member}","at":"{}"}}"#,
                at(20)
            );
            lines.push('\n');
        }
        lines
    }

    /// The document written with the views rendered apart (on one thread, and split
    /// across two) is byte for byte the one serde_json writes in one pass.
    #[test]
    fn the_document_reads_as_serde_json_writes_it_whether_split_or_not() {
        let rules = Arc::new(crate::rules::load(std::path::Path::new("rules")).unwrap());
        for count in [3, super::SPLIT_FROM + 501] {
            let sim = simulate(Arc::clone(&rules), events(count).as_bytes(), None).unwrap();
            assert_eq!(sim.members().len(), count);
            let mut written = Vec::new();
            sim.write_pretty(&mut written).unwrap();
            let expected = serde_json::to_vec_pretty(&sim).unwrap();
            assert!(written == expected, "{count} members: the documents differ");
            let text = String::from_utf8(written).unwrap();
            for shape in ["\"unsubscribed\": true", "\"left\": true", "\\\"0\\\"-ü"] {
                assert!(
                    text.contains(shape),
                    "{count} members: no {shape} in the document"
                );
            }
            if count > super::SPLIT_FROM {
                assert!(text.contains("\"points_expiring\""));
            }
        }
    }
}
