//! `rally test`: scenarios written next to the rules, in the rules directory's
//! top-level `tests/` folder, each run on a fresh store through `rally sim`'s
//! machinery and checked against what it expects (docs/testing.md).
//!
//! | module | owns |
//! |---|---|
//! | [`spec`] | what a test says, typed |
//! | [`parse`], [`expect`] | reading test files with `path:line:col` errors, names checked against the rules |
//! | [`time`] | `+1d`-style times relative to a test's start |
//! | [`run`] | one test: seeded store, fixed start, `sim`'s feed |
//! | [`verdict`] | expected vs got |
//! | [`report`] | `cargo test`-style output and JUnit XML |
//!
//! Tests are independent (each its own temporary store) and deterministic (a fixed
//! start; nothing reads the wall clock), and run in file-name order, then as written.

pub mod expect;
pub mod leaderboards;
pub mod parse;
pub mod report;
pub mod run;
pub mod spec;
pub mod time;
pub mod verdict;

use std::path::Path;
use std::sync::Arc;

use crate::rules::{RuleError, RuleSet, SourcePos};
pub use spec::{TestCase, TestFile};
pub use verdict::Mismatch;

/// Reads and checks every test file of `dir`. With `rules` (the set loaded from the
/// same directory), names in the tests are checked against it; without (the rules do
/// not load), only the files' own shape is.
pub fn load(dir: &Path, rules: Option<&RuleSet>) -> Result<Vec<TestFile>, Vec<RuleError>> {
    let paths = crate::rules::files::test_files(dir).map_err(|message| {
        vec![RuleError {
            at: None,
            message,
            hint: None,
        }]
    })?;
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for rel in paths {
        let path: Arc<str> = Arc::from(crate::rules::files::display(dir, &rel));
        let text = match std::fs::read_to_string(dir.join(&rel)) {
            Ok(text) => text,
            Err(e) => {
                errors.push(RuleError {
                    at: Some(SourcePos {
                        file: path.clone(),
                        line: 1,
                        col: 1,
                    }),
                    message: format!("cannot read the test file: {e}"),
                    hint: None,
                });
                continue;
            }
        };
        let tests = parse::file(path.clone(), &text, rules, &mut errors);
        let suite = rel
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(TestFile {
            path: path.to_string(),
            suite,
            tests,
        });
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        errors.sort();
        Err(errors)
    }
}

/// How one test came out.
pub struct Outcome {
    pub suite: String,
    pub name: String,
    pub at: SourcePos,
    pub verdict: Verdict,
}

pub enum Verdict {
    Passed,
    /// Expectations not met.
    Failed(Vec<Mismatch>),
    /// The test could not run (the store failed): a failure too.
    Broken(String),
}

impl Outcome {
    /// `points: first check-in earns 5 points`: how output names the test.
    pub fn title(&self) -> String {
        format!("{}: {}", self.suite, self.name)
    }

    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Passed)
    }
}

/// Runs every test whose title contains `filter` (all without one), in order,
/// calling `each` as each finishes.
pub fn run_all(
    rules: &Arc<RuleSet>,
    files: &[TestFile],
    filter: Option<&str>,
    mut each: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for file in files {
        for test in &file.tests {
            let title = format!("{}: {}", file.suite, test.name);
            if filter.is_some_and(|f| !title.contains(f)) {
                continue;
            }
            let verdict = match run::run(rules, test) {
                Ok(doc) => {
                    let mismatches = verdict::judge(test, &doc);
                    if mismatches.is_empty() {
                        Verdict::Passed
                    } else {
                        Verdict::Failed(mismatches)
                    }
                }
                Err(e) => Verdict::Broken(e),
            };
            let outcome = Outcome {
                suite: file.suite.clone(),
                name: test.name.clone(),
                at: test.at.clone(),
                verdict,
            };
            each(&outcome);
            outcomes.push(outcome);
        }
    }
    outcomes
}

/// Tests in `files`, all told.
pub fn count(files: &[TestFile]) -> usize {
    files.iter().map(|f| f.tests.len()).sum()
}
