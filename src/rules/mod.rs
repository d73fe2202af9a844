//! Rule files (SPEC §2): every `*.yaml`/`*.yml` under the rules directory, merged,
//! validated and compiled into a [`RuleSet`] — except those in the top-level `tests/`
//! folder, which are `rally test` scenarios (see [`crate::ruletest`]).
//!
//! Loading happens in two stages, as in ripgrep's `LowArgs` → `HiArgs`: YAML is read
//! into a tree that remembers where every node was written, then compiled into the
//! types of [`model`]. Every problem found in either stage is collected, so one run of
//! `rally check` reports them all as `path:line:col: message`.
//!
//! Where SPEC §2 leaves a choice, the loader decides:
//! - `within` on the last escalation level is an error (there is nowhere to climb);
//! - `during` without `phase` scopes a rule to the whole campaign (`During::phases`
//!   empty); a counter without `add` adds 1; a template without `subject` has "";
//! - `tiers.by` that is a bare name (`points_lifetime`) must be a counter; anything
//!   else (`member.points + member.spend_total`) is compiled as a Rhai expression;
//! - `${NAME}` is substituted in every string value (not in keys, nor in files that
//!   values name); Rhai's own `${...}` interpolation only works when it is not a plain
//!   variable name;
//! - paths to scripts and template bodies must stay inside the rules directory.

pub mod error;
pub mod model;

mod compile;
pub(crate) mod convert;
mod expr;
pub(crate) mod files;
mod member_fields;
mod sections;
pub(crate) mod yaml;

pub use error::RuleError;
pub use model::*;

use std::path::Path;
use std::sync::Arc;

use crate::script::Sandbox;

/// Loads, validates and compiles the rule set in `dir`, reading `${NAME}` from the
/// process environment.
pub fn load(dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
    load_with_env(dir, &|name| std::env::var(name).ok())
}

/// As [`load`], with the environment supplied by the caller (tests).
pub fn load_with_env(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RuleSet, Vec<RuleError>> {
    let whole_dir = |message: String| {
        vec![RuleError {
            at: None,
            message,
            hint: None,
        }]
    };
    let found = files::rule_files(dir).map_err(whole_dir)?;
    if found.files.is_empty() && found.problems.is_empty() {
        return Err(whole_dir(format!(
            "no rule files (*.yaml, *.yml) in {}",
            dir.display()
        )));
    }
    let compiled = compile_files(dir, &found.files, files::ReadFiles::default(), env);
    if found.problems.is_empty() {
        return compiled;
    }
    // A loop refuses the set (the operator meant something by the link), but the files
    // that were found are still checked, so one `check` shows every problem.
    let mut errors: Vec<RuleError> = found.problems.into_iter().flat_map(whole_dir).collect();
    errors.extend(compiled.err().unwrap_or_default());
    Err(errors)
}

/// Compiles a rule set from files held in memory, `(relative path, content)`: the
/// pure core's tests use it to build rule sets without a disk.
pub fn from_sources(
    sources: &[(&str, &str)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RuleSet, Vec<RuleError>> {
    let memory: std::collections::BTreeMap<std::path::PathBuf, String> = sources
        .iter()
        .map(|(path, text)| (std::path::PathBuf::from(path), text.to_string()))
        .collect();
    let paths: Vec<std::path::PathBuf> = memory
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| !files::is_tests_dir(p))
        .cloned()
        .collect();
    compile_files(
        Path::new(""),
        &paths,
        files::ReadFiles::in_memory(memory),
        env,
    )
}

/// Every file of `set` as text, by its path relative to the rules directory: what
/// the event journal (`Arm` entries) and a cluster's stream (rules messages) carry so
/// that [`from_texts`] compiles the same rules elsewhere.
pub fn file_texts(set: &RuleSet) -> std::collections::BTreeMap<String, String> {
    set.sources
        .iter()
        .map(|(path, text)| {
            (
                path.display().to_string(),
                String::from_utf8_lossy(text).into_owned(),
            )
        })
        .collect()
}

/// The rule set that [`file_texts`] took down, `${NAME}` read from this process's
/// environment (a name it lacks reads as empty: channel secrets do not change what a
/// step does).
pub fn from_texts(
    files: &std::collections::BTreeMap<String, String>,
) -> Result<RuleSet, Vec<RuleError>> {
    let sources: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    let env = |name: &str| Some(std::env::var(name).unwrap_or_default());
    from_sources(&sources, &env)
}

fn compile_files(
    dir: &Path,
    paths: &[std::path::PathBuf],
    read: files::ReadFiles,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RuleSet, Vec<RuleError>> {
    let sandbox = Arc::new(Sandbox::new());
    let mut ctx = compile::Ctx {
        d: convert::Diag::default(),
        dir,
        sandbox: &sandbox,
        files: read,
        names: compile::Names::default(),
        messages: None,
    };
    let mut docs = Vec::new();
    for rel in paths {
        let file: Arc<str> = Arc::from(files::display(dir, rel));
        let text = match ctx.files.read(dir, rel) {
            Ok(text) => text,
            Err(message) => {
                ctx.d.errors.push(RuleError {
                    at: Some(SourcePos {
                        file,
                        line: 1,
                        col: 1,
                    }),
                    message,
                    hint: None,
                });
                continue;
            }
        };
        let source = yaml::Source {
            file,
            text: &text,
            env,
        };
        docs.extend(yaml::parse(&source, &mut ctx.d.errors));
    }
    compile::compile(ctx, &docs, sandbox.clone())
}
