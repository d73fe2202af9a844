//! The files of a rule set: finding the YAML files, reading the files they refer to,
//! and the version hash over everything read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Folder nesting beyond which the walk refuses to go (loops are found otherwise; this
/// bounds a deep but finite tree of links).
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
        self.read_from(dir, rel, &dir.join(rel))
    }

    /// Reads a file a rule names (a script, a template body) like [`ReadFiles::read`],
    /// but only if it is inside the rules directory once every symbolic link is
    /// resolved: `relative_inside` checks what was written, this checks where it leads,
    /// so a link such as `leak.txt -> /etc/passwd` cannot put a file into a message.
    pub fn read_named(&mut self, dir: &Path, rel: &Path) -> Result<String, String> {
        if self.memory.is_some() {
            return self.read(dir, rel);
        }
        let Ok(resolved) = fs::canonicalize(dir.join(rel)) else {
            // Missing or unreadable: `read` says which.
            return self.read(dir, rel);
        };
        let root = fs::canonicalize(dir)
            .map_err(|e| format!("cannot read rules directory {}: {e}", dir.display()))?;
        if !resolved.starts_with(&root) {
            return Err(format!(
                "{:?} leads to {}, outside the rules directory {}: a file a rule names \
                 must be inside it (copy the file in instead of linking to it)",
                display(dir, rel),
                resolved.display(),
                root.display()
            ));
        }
        // The resolved path, so what is read is what was checked.
        self.read_from(dir, rel, &resolved)
    }

    fn read_from(&mut self, dir: &Path, rel: &Path, path: &Path) -> Result<String, String> {
        let bytes = fs::read(path).map_err(|e| match e.kind() {
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

/// What the walk of the rules directory found.
#[derive(Debug, Default)]
pub struct Found {
    /// Every `*.yaml`/`*.yml` file, relative to the rules directory, sorted.
    pub files: Vec<PathBuf>,
    /// Links and folders the walk refused to enter, one message each, naming the path
    /// (`rules/a/loop: symbolic link loop ...`). Any of these refuses the rule set.
    pub problems: Vec<String>,
}

/// The folder at the top of a rules directory that holds test files (`rally test`),
/// not rules: its YAML describes scenarios and expectations, so the rule walk skips it.
pub const TESTS_DIR: &str = "tests";

/// All `*.yaml`/`*.yml` files under `dir`; hidden files and folders (names starting
/// with `.`) are skipped, and so is [`TESTS_DIR`] at the top. Symbolic links are followed (a rules folder assembled from
/// links is a normal setup), but a link back to a folder the walk is inside is a loop:
/// it is reported, not followed.
pub fn rule_files(dir: &Path) -> Result<Found, String> {
    let meta = fs::metadata(dir)
        .map_err(|e| format!("cannot read rules directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "rules directory {} is not a directory",
            dir.display()
        ));
    }
    let mut walk = Walk {
        root: dir,
        inside: Vec::new(),
        seen: BTreeSet::new(),
        found: Found::default(),
    };
    walk.folder(Path::new(""), &meta)?;
    walk.found.files.sort();
    Ok(walk.found)
}

/// A directory's identity whatever the path it is reached by: (device, inode).
type DirId = (u64, u64);

fn dir_id(meta: &fs::Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// One walk of the rules directory. Loops are found by identity, not by depth: two
/// `ln -s . loop` links would otherwise make a walk bounded only by depth visit
/// 2^depth folders.
struct Walk<'a> {
    root: &'a Path,
    /// The folders from the root down to the one being read, with their paths: a link
    /// to one of them is a loop.
    inside: Vec<(DirId, PathBuf)>,
    /// Every folder read so far. One reached again by another link (a link to a
    /// sibling folder) is not read twice: its files are already found under their
    /// first path in name order, and reading it again would define everything twice.
    seen: BTreeSet<DirId>,
    found: Found,
}

impl Walk<'_> {
    fn folder(&mut self, rel: &Path, meta: &fs::Metadata) -> Result<(), String> {
        let id = dir_id(meta);
        if let Some((_, target)) = self.inside.iter().find(|(inside, _)| *inside == id) {
            let message = format!(
                "{}: symbolic link loop (points back to {}); remove the link",
                self.name(rel),
                self.name(target)
            );
            self.found.problems.push(message);
            return Ok(());
        }
        if !self.seen.insert(id) {
            return Ok(());
        }
        if self.inside.len() > MAX_DEPTH {
            let message = format!(
                "{}: folders nested more than {MAX_DEPTH} deep; not read",
                self.name(rel)
            );
            self.found.problems.push(message);
            return Ok(());
        }
        let here = self.root.join(rel);
        let unreadable =
            |e: std::io::Error| format!("cannot read directory {}: {e}", here.display());
        let mut entries = fs::read_dir(&here)
            .map_err(unreadable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        // Name order, so which path a twice-linked folder is found under never
        // depends on the file system.
        entries.sort_by_key(fs::DirEntry::file_name);
        self.inside.push((id, rel.to_path_buf()));
        for entry in entries {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let child = rel.join(&name);
            let Ok(meta) = fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() && is_tests_dir(&child) {
                continue;
            }
            if meta.is_dir() {
                self.folder(&child, &meta)?;
            } else if meta.is_file() && is_yaml(&child) {
                self.found.files.push(child);
            }
        }
        self.inside.pop();
        Ok(())
    }

    /// A folder as messages name it; the root by itself, without a trailing `/`.
    fn name(&self, rel: &Path) -> String {
        if rel.as_os_str().is_empty() {
            self.root.display().to_string()
        } else {
            display(self.root, rel)
        }
    }
}

/// Whether `rel` (relative to the rules directory) is the top-level tests folder, or
/// inside it.
pub fn is_tests_dir(rel: &Path) -> bool {
    rel.components().next() == Some(Component::Normal(TESTS_DIR.as_ref()))
}

/// The test files of a rules directory: `tests/*.yaml` and `tests/*.yml`, relative to
/// `dir`, sorted by name. No tests folder is no test files; subfolders of it are not
/// read (a test file names what it tests; nesting would only hide one).
pub fn test_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let folder = dir.join(TESTS_DIR);
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let unreadable = |e: std::io::Error| format!("cannot read directory {}: {e}", folder.display());
    let mut files = Vec::new();
    for entry in fs::read_dir(&folder).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let rel = Path::new(TESTS_DIR).join(entry.file_name());
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && is_yaml(&rel) && fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            files.push(rel);
        }
    }
    files.sort();
    Ok(files)
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
    fn only_the_top_level_tests_folder_holds_tests() {
        assert!(is_tests_dir(Path::new("tests")));
        assert!(is_tests_dir(Path::new("tests/points.yaml")));
        assert!(!is_tests_dir(Path::new("shop/tests")));
        assert!(!is_tests_dir(Path::new("tests.yaml")));
    }

    #[test]
    fn paths_may_not_leave_the_rules_directory() {
        assert!(relative_inside("scripts/a.rhai").is_ok());
        assert!(relative_inside("../secret.rhai").is_err());
        assert!(relative_inside("/etc/passwd").is_err());
        assert!(relative_inside("").is_err());
    }
}
