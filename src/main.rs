//! The `rally` command line (SPEC §3): parse arguments, call one function per command.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use rally::rules::{self, RuleError};

#[derive(Parser)]
#[command(
    name = "rally",
    version,
    about = "A rules engine for running member communities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate every rule file; print `path:line:col: message` per problem.
    Check {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
    },
    /// Simulate events on a virtual clock and print the resulting state as JSON.
    Sim {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// A JSON Lines file of events, or `-` for stdin.
        #[arg(long)]
        events: String,
        /// Advance the virtual clock to this RFC 3339 time after the last event.
        #[arg(long, value_parser = parse_time)]
        until: Option<DateTime<Utc>>,
        /// Write the JSON document here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show a member's state, ledger and recent history from a data directory.
    Member {
        id: String,
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time with offset: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { rules } => check(&rules),
        Command::Sim {
            rules,
            events,
            until,
            out,
        } => sim(&rules, &events, until, out.as_deref()),
        Command::Member { id, data } => member(&id, &data),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("rally: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_rule_errors(errors: &[RuleError]) {
    let stderr = io::stderr();
    let mut out = stderr.lock();
    for error in errors {
        let _ = writeln!(out, "{error}");
    }
    let _ = writeln!(
        out,
        "{} problem{} found",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
}

fn check(dir: &Path) -> Result<ExitCode, String> {
    match rules::load(dir) {
        Ok(set) => {
            println!(
                "{}: ok — {} rule{}, {} file{} (version {})",
                dir.display(),
                set.rules.len(),
                if set.rules.len() == 1 { "" } else { "s" },
                set.files.len(),
                if set.files.len() == 1 { "" } else { "s" },
                set.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_rule_errors(&errors);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn sim(
    dir: &Path,
    events: &str,
    until: Option<DateTime<Utc>>,
    out: Option<&Path>,
) -> Result<ExitCode, String> {
    let set = match rules::load(dir) {
        Ok(set) => Arc::new(set),
        Err(errors) => {
            print_rule_errors(&errors);
            return Ok(ExitCode::FAILURE);
        }
    };
    let doc = if events == "-" {
        rally::sim::simulate(set, io::stdin().lock(), until)
    } else {
        let file = File::open(events).map_err(|e| format!("cannot open {events}: {e}"))?;
        rally::sim::simulate(set, BufReader::new(file), until)
    }
    .map_err(|e| e.to_string())?;
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    text.push('\n');
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing output: {e}"))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn member(id: &str, data: &Path) -> Result<ExitCode, String> {
    if !data.exists() {
        return Err(format!("no data directory at {}", data.display()));
    }
    let store = rally::store::Store::open(data).map_err(|e| {
        format!(
            "cannot open the store in {}: {e} (if the daemon is running, ask it: GET /v1/members/{id})",
            data.display()
        )
    })?;
    let Some(member) = store.member(id).map_err(|e| e.to_string())? else {
        return Err(format!("no member {id:?} in {}", data.display()));
    };
    let ledger = store.ledger(id).map_err(|e| e.to_string())?;
    let history = store.firings(id, 50).map_err(|e| e.to_string())?;
    let doc = serde_json::json!({
        "id": id,
        "member": member.view(),
        "ledger": ledger,
        "history": history,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
