//! The files of a rule set: finding the YAML files, reading the files they refer to,
//! and the version hash over everything read.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Directory nesting beyond which the walk stops: guards against symlink loops.
const MAX_DEPTH: usize = 32;

/// Every file read while loading, by path relative to the rules directory. The version
/// hash is computed over exactly these, so a change to a script or a template body
/// changes the version as surely as a change to a rule.
#[derive(Default)]
pub struct ReadFiles {
    pub contents: BTreeMap<PathBuf, Vec<u8>>,
    /// Files given in memory instead of a directory (tests of the pure core).
    pub memory: Option<BTreeMap<PathBuf, String>>,
}

impl ReadFiles {
    pub fn in_memory(files: BTreeMap<PathBuf, String>) -> Self {
        ReadFiles {
            contents: BTreeMap::new(),
            memory: Some(files),
        }
    }

    /// Reads `rel` (relative to `dir`) as UTF-8 text and remembers it.
    pub fn read(&mut self, dir: &Path, rel: &Path) -> Result<String, String> {
        if let Some(memory) = &self.memory {
            let text = memory
                .get(rel)
                .cloned()
                .ok_or_else(|| format!("file {:?} does not exist", display(dir, rel)))?;
            self.contents
                .insert(rel.to_path_buf(), text.clone().into_bytes());
            return Ok(text);
        }
        let bytes = fs::read(dir.join(rel)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("file {:?} does not exist", display(dir, rel)),
            _ => format!("cannot read {:?}: {e}", display(dir, rel)),
        })?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| format!("{:?} is not UTF-8 text", display(dir, rel)))?;
        self.contents.insert(rel.to_path_buf(), bytes);
        Ok(text)
    }

    /// The rule-set version: 12 hex digits of FNV-1a 64 over the sorted (path, content)
    /// pairs. Stable across runs and machines, unlike `std`'s randomly keyed hasher.
    pub fn version(&self) -> String {
        let mut hash = Fnv1a::new();
        for (path, content) in &self.contents {
            hash.write(path.to_string_lossy().as_bytes());
            hash.write(&[0]);
            hash.write(&(content.len() as u64).to_be_bytes());
            hash.write(content);
        }
        format!("{:016x}", hash.finish())[..12].to_string()
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        self.contents.keys().cloned().collect()
    }
}

/// How a file is named in messages: the rules directory joined with its relative path.
pub fn display(dir: &Path, rel: &Path) -> String {
    dir.join(rel).display().to_string()
}

/// A path written in a rule file, checked to stay inside the rules directory.
pub fn relative_inside(written: &str) -> Result<PathBuf, String> {
    let path = Path::new(written);
    if written.trim().is_empty() {
        return Err("the path is empty".into());
    }
    let escapes = path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(format!(
            "path {written:?} must be relative to the rules directory and stay inside it"
        ));
    }
    Ok(path.to_path_buf())
}

/// All `*.yaml`/`*.yml` files under `dir`, relative to it and sorted; hidden files and
/// folders (names starting with `.`) are skipped.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = fs::metadata(dir)
        .map_err(|e| format!("cannot read rules directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "rules directory {} is not a directory",
            dir.display()
        ));
    }
    let mut found = Vec::new();
    walk(dir, Path::new(""), 0, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk(root: &Path, rel: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let here = root.join(rel);
    let entries = fs::read_dir(&here)
        .map_err(|e| format!("cannot read directory {}: {e}", here.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read directory {}: {e}", here.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let child = rel.join(&name);
        // Follows symlinks: a rules folder assembled from links is a normal setup.
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_dir() {
            walk(root, &child, depth + 1, found)?;
        } else if meta.is_file() && is_yaml(&child) {
            found.push(child);
        }
    }
    Ok(())
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// FNV-1a, 64 bits.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        let mut h = Fnv1a::new();
        assert_eq!(h.finish(), 0xcbf29ce484222325);
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63dc4c8601ec8c);
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x85944171f73967e8);
    }

    #[test]
    fn the_version_changes_with_any_content_and_is_twelve_hex_digits() {
        let mut a = ReadFiles::default();
        a.contents.insert("r.yaml".into(), b"rules: []".to_vec());
        let mut b = ReadFiles::default();
        b.contents.insert("r.yaml".into(), b"rules: [ ]".to_vec());
        assert_eq!(a.version().len(), 12);
        assert!(a.version().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.version(), b.version());
    }

    #[test]
    fn paths_may_not_leave_the_rules_directory() {
        assert!(relative_inside("scripts/a.rhai").is_ok());
        assert!(relative_inside("../secret.rhai").is_err());
        assert!(relative_inside("/etc/passwd").is_err());
        assert!(relative_inside("").is_err());
    }
}
