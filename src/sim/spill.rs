//! What a simulation records, kept on disk instead of in memory: the ledger, firings,
//! errors and messages of a long run are most of its output document and grow with
//! the events, while what `sim` must hold in memory should grow with the members only.
//!
//! Records are appended to an unnamed temporary file (unlinked at once, so it goes away
//! with the process, however that ends) and read back one at a time when the document
//! is written: the document is serialized from them, never built.
//!
//! Each record is kept as the text it has in the output document: pretty JSON indented
//! for an element of a section (two levels deep), so writing the document copies it
//! instead of decoding and encoding it again (that was a third of a simulation's cost).
//! Strings in JSON hold no raw line break, so indenting after each `\n` is exact.
//! Written by a serializer other than serde_json's pretty one (a compact one, or into a
//! `Value`), a record is its JSON read back (see [`Text`]): the same value, but a compact writer keeps
//! its line breaks. Each record is preceded by its length (4 bytes, big-endian).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::ser::{Error as _, SerializeSeq, SerializeStruct, Serializer};
use serde::Serialize;

use super::text::RecordText;

/// What a record's text is indented by after each line break: two levels of the pretty
/// printer's two spaces (document → section → record).
const INDENT: &[u8] = b"    ";

/// Records of one kind, in the order they were pushed.
pub struct Spill<T> {
    /// `None` once writing failed: the error is kept and reported at serialization.
    file: RefCell<Option<BufWriter<File>>>,
    failed: RefCell<Option<String>>,
    len: usize,
    /// Reused by every push: a record's pretty text before it is indented.
    scratch: Vec<u8>,
    /// Reused by every push: the record as written, after its length.
    indented: Vec<u8>,
    kind: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned> Spill<T> {
    pub fn new() -> Self {
        let (file, failed) = match unnamed_file() {
            Ok(file) => (Some(BufWriter::with_capacity(super::IO_BUFFER, file)), None),
            Err(e) => (None, Some(format!("cannot create a temporary file: {e}"))),
        };
        Spill {
            file: RefCell::new(file),
            failed: RefCell::new(failed),
            len: 0,
            scratch: Vec::new(),
            indented: Vec::new(),
            kind: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned + RecordText> Spill<T> {
    pub fn push(&mut self, record: &T) {
        let mut file = self.file.borrow_mut();
        let Some(writer) = file.as_mut() else {
            return;
        };
        self.scratch.clear();
        self.indented.clear();
        let text = if record.write_text(&mut self.indented) {
            Ok(())
        } else {
            serde_json::to_writer_pretty(&mut self.scratch, record)
                .map(|()| indent(&self.scratch, &mut self.indented))
        };
        let written = text.map_err(io::Error::other).and_then(|()| {
            let len = u32::try_from(self.indented.len()).map_err(io::Error::other)?;
            writer.write_all(&len.to_be_bytes())?;
            writer.write_all(&self.indented)
        });
        match written {
            Ok(()) => self.len += 1,
            Err(e) => {
                *self.failed.borrow_mut() = Some(format!("cannot write a temporary file: {e}"));
                *file = None;
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned> Spill<T> {
    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Calls `each` with every record, in order, read back from the file (the tests'
    /// view of what was spilled).
    #[cfg(test)]
    pub fn for_each(&self, mut each: impl FnMut(T) -> Result<(), String>) -> Result<(), String> {
        self.for_each_text(|text| {
            let record = serde_json::from_str(text).map_err(|e| e.to_string())?;
            each(record)
        })
    }

    /// Calls `each` with every record's text as written, in order.
    fn for_each_text(
        &self,
        mut each: impl FnMut(&str) -> Result<(), String>,
    ) -> Result<(), String> {
        if let Some(failed) = self.failed.borrow().as_ref() {
            return Err(failed.clone());
        }
        let mut file = self.file.borrow_mut();
        let Some(writer) = file.as_mut() else {
            return Err("the temporary file is gone".into());
        };
        writer.flush().map_err(|e| e.to_string())?;
        let mut reader = writer.get_ref().try_clone().map_err(|e| e.to_string())?;
        reader.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        let mut records = BufReader::with_capacity(super::IO_BUFFER, &reader);
        let mut bytes = Vec::new();
        let short = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the temporary file is shorter than what was written".to_string()
            }
            _ => e.to_string(),
        };
        for _ in 0..self.len {
            let mut len = [0; 4];
            records.read_exact(&mut len).map_err(short)?;
            bytes.resize(u32::from_be_bytes(len) as usize, 0);
            records.read_exact(&mut bytes).map_err(short)?;
            let text = std::str::from_utf8(&bytes).map_err(|e| e.to_string())?;
            each(text)?;
        }
        // Appending goes on at the end, whatever reading did to the shared offset.
        writer
            .get_mut()
            .seek(SeekFrom::End(0))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Serializes the records as a sequence, each first passed through `view`.
    pub fn serialize_with<S: Serializer, V: Serialize>(
        &self,
        serializer: S,
        mut view: impl FnMut(T) -> V,
    ) -> Result<S::Ok, S::Error> {
        self.serialize_texts(serializer, |seq, text| {
            let record = serde_json::from_str(text).map_err(S::Error::custom)?;
            seq.serialize_element(&view(record))
        })
    }

    /// Serializes the records as a sequence, `element` writing each from its text.
    /// The first error, the serializer's or the file's, ends it.
    fn serialize_texts<S: Serializer>(
        &self,
        serializer: S,
        mut element: impl FnMut(&mut S::SerializeSeq, &str) -> Result<(), S::Error>,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        let mut failed = None;
        let read = self.for_each_text(|text| {
            element(&mut seq, text).map_err(|e| {
                let message = e.to_string();
                failed = Some(e);
                message
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(S::Error::custom)?;
        seq.end()
    }
}

impl<T: Serialize + DeserializeOwned> Default for Spill<T> {
    fn default() -> Self {
        Spill::new()
    }
}

impl<T: Serialize + DeserializeOwned> Serialize for Spill<T> {
    /// Each record as its text: serde_json's pretty printer copies it as it is.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_texts(serializer, |seq, text| seq.serialize_element(&Text(text)))
    }
}

/// A record's JSON text, serialized as serde_json serializes a [`RawValue`](serde_json::value::RawValue) (the same
/// private name, which its serializers look for) without checking it again as
/// `RawValue::from_str` would: this process wrote it from a record a moment ago, and
/// checking cost as much as the rest of writing the document.
pub(super) struct Text<'a>(pub(super) &'a str);

/// The name serde_json gives a `RawValue` to its serializers.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut raw = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        raw.serialize_field(RAW_VALUE_TOKEN, self.0)?;
        raw.end()
    }
}

/// Appends `text` to `out` with [`INDENT`] after each line break: a value's pretty
/// text, indented for an element of a section.
pub(super) fn indent(text: &[u8], out: &mut Vec<u8>) {
    let mut lines = text.split(|&b| b == b'\n');
    if let Some(first) = lines.next() {
        out.extend_from_slice(first);
    }
    for line in lines {
        out.push(b'\n');
        out.extend_from_slice(INDENT);
        out.extend_from_slice(line);
    }
}

/// A file in the temporary directory that has no name: removed as it is created.
fn unnamed_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..16u32 {
        let path = dir.join(format!(
            ".rally-sim-{}-{}-{attempt}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temporary file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_as_often_as_asked_and_appending_goes_on_after() {
        let mut spill: Spill<serde_json::Value> = Spill::new();
        for n in 0..1000 {
            spill.push(&serde_json::json!({"n": n, "text": "a\nb \"quoted\""}));
        }
        let first = serde_json::to_string(&spill).unwrap();
        assert_eq!(first, serde_json::to_string(&spill).unwrap());
        let back: Vec<serde_json::Value> = serde_json::from_str(&first).unwrap();
        assert_eq!(back.len(), 1000);
        assert_eq!(back[999]["n"], 999);
        assert_eq!(back[3]["text"], "a\nb \"quoted\"");
        spill.push(&serde_json::json!({"n": 1000}));
        let again: Vec<serde_json::Value> =
            serde_json::from_str(&serde_json::to_string(&spill).unwrap()).unwrap();
        assert_eq!(again.len(), 1001);
        assert_eq!(again[1000]["n"], 1000);
    }

    /// The shapes the spilled records use: optional fields left out, a flattened
    /// internally tagged enum (a redemption), times, and free JSON with numbers of
    /// every kind.
    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Shaped {
        member: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        #[serde(with = "crate::engine::outcome::utc")]
        at: chrono::DateTime<chrono::Utc>,
        #[serde(flatten)]
        verdict: Verdict,
        data: serde_json::Value,
    }

    impl crate::sim::text::RecordText for Shaped {}

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(tag = "status", rename_all = "lowercase")]
    enum Verdict {
        Granted {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            code: Option<String>,
        },
        Refused {
            reason: String,
        },
    }

    #[test]
    fn records_of_every_shape_come_back_exactly_as_they_went_in() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-11T02:00:00.250Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let rows = vec![
            Shaped {
                member: "m-1".into(),
                event: None,
                at,
                verdict: Verdict::Granted { code: None },
                data: serde_json::json!({"n": 1, "neg": -2, "x": 1.0, "y": 0.1, "big": u64::MAX}),
            },
            Shaped {
                member: "m-\"2\"\n".into(),
                event: Some("e-1".into()),
                at,
                verdict: Verdict::Refused {
                    reason: "out of stock".into(),
                },
                data: serde_json::json!([null, true, "text", {"deep": [1.5e300]}]),
            },
        ];
        let mut spill = Spill::new();
        for row in &rows {
            spill.push(row);
        }
        let mut back = Vec::new();
        spill
            .for_each(|row: Shaped| {
                back.push(row);
                Ok(())
            })
            .unwrap();
        assert_eq!(back, rows);
        assert_eq!(in_section(&spill), in_section(&rows));
    }

    /// `records` pretty-printed as a section of a document, where a simulation's
    /// records go.
    fn in_section(records: &impl Serialize) -> String {
        let doc = std::collections::BTreeMap::from([("section", records)]);
        serde_json::to_string_pretty(&doc).unwrap()
    }

    /// [`Text`] stands for serde_json's own raw value: should serde_json rename it, this
    /// fails instead of documents gaining a struct.
    #[test]
    fn text_is_written_as_serde_json_writes_a_raw_value() {
        let raw =
            serde_json::value::RawValue::from_string("{\n  \"a\": [1, 2.5]\n}".into()).unwrap();
        let text = Text(raw.get());
        assert_eq!(
            serde_json::to_string(&text).unwrap(),
            serde_json::to_string(&raw).unwrap()
        );
        assert_eq!(
            serde_json::to_value(&text).unwrap(),
            serde_json::json!({"a": [1, 2.5]})
        );
    }

    #[test]
    fn pretty_output_in_a_document_and_values_are_what_a_vector_gives() {
        let rows: Vec<serde_json::Value> = (0..5).map(|n| serde_json::json!({"n": n})).collect();
        let mut spill = Spill::new();
        for row in &rows {
            spill.push(row);
        }
        assert_eq!(in_section(&spill), in_section(&rows));
        let empty: Spill<serde_json::Value> = Spill::new();
        assert_eq!(
            in_section(&empty),
            in_section(&Vec::<serde_json::Value>::new())
        );
        assert_eq!(
            serde_json::to_value(&spill).unwrap(),
            serde_json::json!(rows)
        );
    }
}
