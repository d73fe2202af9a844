//! The `rally` command line (SPEC §3): parse arguments, call one function per command.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use clap::{Args, Parser, Subcommand};

use rally::daemon::bench::BenchConfig;
use rally::daemon::{self, DaemonError};
use rally::rules::{self, RuleError};
use rally::script::RandomKey;

/// sled allocates on every transaction and read; glibc's allocator was a third of
/// `rally sim`'s profile. mimalloc, called as `src/allocator.rs` says.
#[global_allocator]
static ALLOCATOR: rally::allocator::Allocator = rally::allocator::Allocator;

/// Raises this process's soft open-files limit to its hard limit, for the daemon's
/// client connections (whose default cap follows it). The soft limit is often 1,024
/// while the hard one is far higher; servers and Go's runtime raise it the same way.
/// Not fatal: the connection cap then follows the lower limit.
fn raise_open_files_limit() -> io::Result<()> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit(2)/setrlimit(2) read and write one plain struct we own.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            if limit.rlim_cur < limit.rlim_max {
                limit.rlim_cur = limit.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
    }
    Ok(())
}

/// Turns transparent huge pages off for this process, for the daemon's latency.
///
/// mimalloc marks its arenas `MADV_HUGEPAGE`, so the first write to each fresh 2 MiB of
/// heap makes the kernel zero a whole huge page inside that one page fault. The daemon's
/// heap grows with the store (sled's cached tree nodes, a new log buffer per segment),
/// and the thread that takes the fault is often the writer, mid-commit: measured here,
/// one such fault stalled a commit of a single step for 4–6 ms, twice a second, and every
/// request waiting on that group waited with it (README, Performance). With 4 KiB pages
/// the same zeroing is spread over 512 faults of a few microseconds. Redis turns them
/// off the same way (`disable-thp`).
///
/// Not fatal: without it the daemon is only slower in its tail.
fn without_transparent_huge_pages() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(2) with integer arguments only; it changes a flag of this
        // process's memory map and touches no memory of ours.
        let status = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

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
    /// Run the test files of a rules directory (`tests/*.yaml` in it) and report each
    /// test `ok` or `FAILED`. Exit 0 when all pass, 1 when any fails, 2 when the rules
    /// or the test files do not load.
    Test {
        /// The rules directory (default `rules`; or give it with --rules).
        #[arg(conflicts_with = "rules")]
        dir: Option<PathBuf>,
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Also write the results as JUnit XML here, for CI.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Run only the tests whose `file: name` contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Simulate events on a virtual clock and print the resulting state as JSON.
    Sim {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// A JSON Lines file of events, or `-` for stdin.
        #[arg(long)]
        events: String,
        /// Advance the virtual clock to this time after the last event: RFC 3339 with
        /// an offset, or a local time as rule files write it (`2026-11-15T00:00:00`,
        /// `2026-11-15 00:00`, `2026-11-15`), read in settings.timezone.
        #[arg(long, value_parser = parse_until)]
        until: Option<Until>,
        /// Write the JSON document here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The secret `random()`, `random_int` and `chance` draw under: 32 hex digits
        /// (a daemon's `random.key`) or any phrase. Without it, a fixed key: every run
        /// draws the same.
        #[arg(long)]
        seed: Option<String>,
        /// Explain every step of this member: each rule considered and what decided
        /// it (docs/explain.md). Written to stderr (or --explain-out); the JSON
        /// document is unchanged.
        #[arg(long, value_name = "MEMBER")]
        explain: Option<String>,
        /// With --explain: list every rule not triggered by a step, not just how many.
        #[arg(long, requires = "explain")]
        explain_all: bool,
        /// With --explain: write the explanation to this file instead of stderr.
        #[arg(long, requires = "explain", value_name = "FILE")]
        explain_out: Option<PathBuf>,
        /// With --explain: write the explanation as JSON (schema in docs/explain.md).
        #[arg(long, requires = "explain")]
        explain_json: bool,
    },
    /// Compare two `rally sim` documents of the same events under two rule sets (A the
    /// baseline, B the candidate): per rule firings, points and messages; members whose
    /// tier, badges, tags or points differ; campaign budgets; the points liability.
    /// Exit 0, or 1 when a --fail-if threshold trips, or 2 for bad input.
    /// See docs/backtest.md.
    Diff {
        /// The baseline's `rally sim` output.
        a: PathBuf,
        /// The candidate's `rally sim` output.
        b: PathBuf,
        #[command(flatten)]
        report: Report,
    },
    /// What candidate rules would have done: replays the event journal of a data
    /// directory under the rules it recorded and under --rules, and prints the
    /// difference as `rally diff` does (see docs/backtest.md).
    Backtest {
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// The candidate rules.
        #[arg(long)]
        rules: PathBuf,
        /// Compare from this time on (RFC 3339, or `30d` back from now); what happened
        /// before builds the state both start from. Default: the whole journal.
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        #[command(flatten)]
        report: Report,
    },
    /// Run the daemon: the HTTP API on --listen, state in --data, rules from --rules
    /// (reloaded when they change). Honours RALLY_TOKEN, RALLY_RATE_LIMIT and RUST_LOG.
    Run {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Address to listen on; a non-loopback address requires RALLY_TOKEN.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: String,
        #[command(flatten)]
        cluster: rally::cluster::Flags,
    },
    /// Measure the daemon over HTTP on loopback with a temporary data directory:
    /// durable events/s at saturation, then ack latency at a fixed offered load.
    Bench {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Events posted in the saturation run.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Clients posting at once in the saturation run.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Events per request in the saturation run.
        #[arg(long, default_value_t = 50)]
        batch: usize,
        /// Offered load of the latency run, in single-event requests per second.
        #[arg(long, default_value_t = 5000.0)]
        rate: f64,
        /// Length of the latency run, in seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Load history (a JSON Lines file of events) into a data directory that no daemon
    /// holds, applying it on `sim`'s virtual clock; a daemon started on the directory
    /// then continues from it.
    Import {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// A JSON Lines file of events, or `-` for stdin.
        #[arg(long)]
        events: String,
    },
    /// Print a data directory's event journal as JSON Lines (see docs/journal.md).
    Export {
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Only entries from this time on (RFC 3339, or `30d` for the last 30 days);
        /// the window opens with the rule set in force at its start.
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
    },
    /// Run the event journal again on a fresh store. With only --data: check that it
    /// reproduces the live state exactly (exit 1 and the differences if not). With
    /// --rules (other rules) or --journal (an export): print `sim`'s document.
    Replay {
        #[arg(long)]
        data: Option<PathBuf>,
        /// A journal written by `rally export` or GET /v1/journal.
        #[arg(long)]
        journal: Option<PathBuf>,
        /// Run these rules instead of those the journal recorded.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Advance the clock to this time after the last entry (RFC 3339).
        #[arg(long, value_parser = parse_since)]
        until: Option<DateTime<Utc>>,
    },
    /// Why a member got — or did not get — what they got: every step of the member,
    /// re-run from the data directory's event journal, with each rule considered and
    /// what decided it (docs/explain.md).
    Explain {
        member: String,
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Only the step that applied this event.
        #[arg(long)]
        event: Option<String>,
        /// List the rules the steps did not trigger too.
        #[arg(long)]
        all: bool,
        /// The JSON document (docs/explain.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The community report (docs/report.md): members, commerce, points, messages,
    /// tickets, campaigns, cohorts — from a stopped daemon's data directory, or from
    /// events run as `rally sim` runs them.
    #[command(name = "report")]
    CommunityReport {
        /// A data directory (the daemon's, stopped; while it runs, GET /v1/report).
        #[arg(
            long,
            conflicts_with = "events",
            required_unless_present_any = ["events", "sim"]
        )]
        data: Option<PathBuf>,
        /// A `rally sim` output document: the report of that run, from its `metrics`.
        #[arg(long, conflicts_with_all = ["data", "events"])]
        sim: Option<PathBuf>,
        /// The rules: their time zone, `inactive` rules, tiers and campaigns shape the
        /// report (with --data, give the daemon's); with --events they run.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Events to run on `sim`'s virtual clock (a JSON Lines file, or `-`).
        #[arg(long)]
        events: Option<String>,
        /// With --events: advance the clock to this time after the last event (as
        /// `rally sim --until`).
        #[arg(long, value_parser = parse_until, requires = "events")]
        until: Option<Until>,
        /// The first day (YYYY-MM-DD, settings.timezone); default 29 days before --to.
        #[arg(long)]
        from: Option<String>,
        /// The last day; default Rally's clock's day.
        #[arg(long)]
        to: Option<String>,
        /// day, week or month (default day).
        #[arg(long)]
        by: Option<String>,
        /// Print the JSON document of GET /v1/report instead of tables.
        #[arg(long)]
        json: bool,
        /// Also write the report as one self-contained HTML page here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Show a member's state, ledger and recent history from a data directory.
    Member {
        id: String,
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
    /// Rewrite a data directory no daemon holds with only its live rows, giving the
    /// space retention freed back to the file system.
    Compact {
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
}

/// How `rally diff` and `rally backtest` report a difference.
#[derive(Args)]
struct Report {
    /// Print the difference as JSON (schema in docs/backtest.md) instead of a table.
    #[arg(long)]
    json: bool,
    /// Show unchanged rules, messages, campaigns and tickets in the table too.
    #[arg(long)]
    all: bool,
    /// Fail (exit 1) when METRIC OP VALUE holds, e.g. `points_awarded>+10%`,
    /// `messages_sent>+500`, `liability>+5%`, `members_changed_tier>100`. A signed
    /// value compares the change from A to B; an unsigned one, B's figure (or the
    /// count of differences). Repeatable. Metrics: docs/backtest.md.
    #[arg(long = "fail-if", value_name = "EXPR")]
    fail_if: Vec<String>,
}

/// `sim --until` as written: an instant, or a local time that only the rule set's
/// `settings.timezone` turns into one.
#[derive(Clone, Copy, Debug)]
enum Until {
    At(DateTime<Utc>),
    Local(NaiveDateTime),
}

impl Until {
    fn instant(self, zone: chrono_tz::Tz) -> DateTime<Utc> {
        match self {
            Until::At(at) => at,
            Until::Local(local) => rally::campaign::local_to_utc(local, zone),
        }
    }
}

fn parse_until(text: &str) -> Result<Until, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Until::At(at.with_timezone(&Utc)));
    }
    rally::localtime::parse_local(text)
        .map(Until::Local)
        .ok_or_else(|| {
            format!(
                "{text:?} is not a time: write RFC 3339 with an offset \
                 (\"2026-11-15T00:00:00+08:00\") or a local time in settings.timezone ({})",
                rally::localtime::LOCAL_TIME_FORMS
            )
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. } | Command::Bench { .. }) {
        rally::allocator::keep_freed_pages();
    }
    let result = match cli.command {
        Command::Check { rules } => check(&rules),
        Command::Test {
            dir,
            rules,
            junit,
            filter,
        } => test(
            &dir.or(rules).unwrap_or_else(|| PathBuf::from("rules")),
            junit.as_deref(),
            filter.as_deref(),
        ),
        Command::Sim {
            rules,
            events,
            until,
            out,
            seed,
            explain,
            explain_all,
            explain_out,
            explain_json,
        } => {
            let explain = explain.map(|member| Explain {
                member,
                options: rally::engine::explain::Options { all: explain_all },
                out: explain_out,
                json: explain_json,
            });
            let key = seed.map_or_else(RandomKey::default, |seed| RandomKey::parse(&seed));
            sim(&rules, &events, until, out.as_deref(), key, explain)
        }
        Command::Member { id, data } => member(&id, &data),
        Command::Compact { data } => compact(&data),
        Command::CommunityReport {
            data,
            sim,
            rules,
            events,
            until,
            from,
            to,
            by,
            json,
            html,
        } => community_report(
            ReportOf {
                data: data.as_deref(),
                sim: sim.as_deref(),
                events: events.as_deref(),
                until,
            },
            &rules,
            rally::report::Params { from, to, by },
            json,
            html.as_deref(),
        ),
        Command::Explain {
            member,
            data,
            event,
            all,
            json,
        } => rally::replay::cli::explain(
            &data,
            &member,
            event.as_deref(),
            all,
            json,
            &mut BufWriter::new(io::stdout().lock()),
        )
        .map(|()| ExitCode::SUCCESS),
        Command::Export { data, since } => {
            rally::replay::cli::export(&data, since, &mut io::stdout().lock())
                .map(|_| ExitCode::SUCCESS)
        }
        Command::Replay {
            data,
            journal,
            rules,
            until,
        } => replay(data.as_deref(), journal.as_deref(), rules.as_deref(), until),
        Command::Diff { a, b, report } => Ok(diff(&a, &b, &report)),
        Command::Backtest {
            data,
            rules,
            since,
            report,
        } => backtest(&data, &rules, since, &report),
        Command::Import {
            rules,
            data,
            events,
        } => import(&rules, &data, &events),
        Command::Run {
            rules,
            data,
            listen,
            cluster,
        } if cluster.cluster.is_some() => run_cluster(rules, data, &listen, cluster),
        Command::Run {
            rules,
            data,
            listen,
            cluster: _,
        } => run(rules, data, &listen),
        Command::Bench {
            rules,
            events,
            concurrency,
            batch,
            rate,
            seconds,
        } => bench(BenchConfig {
            rules_dir: rules,
            events,
            concurrency,
            batch,
            rate,
            duration: std::time::Duration::from_secs_f64(seconds.max(0.0)),
        }),
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

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `rally compact`: prints the rows copied and the data file's size before and after.
fn compact(data: &Path) -> Result<ExitCode, String> {
    let done = rally::store::compact::compact(data).map_err(|e| e.to_string())?;
    println!(
        "{{\"rows\": {}, \"bytes_before\": {}, \"bytes_after\": {}}}",
        done.rows, done.before, done.after
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks the rule files and the test files beside them (names in the tests against
/// the rules, when the rules load).
fn check(dir: &Path) -> Result<ExitCode, String> {
    let loaded = rules::load(dir);
    let tests = rally::ruletest::load(dir, loaded.as_ref().ok());
    match (loaded, tests) {
        (Ok(set), Ok(tests)) => {
            let count = rally::ruletest::count(&tests);
            let tests = if tests.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} in {}",
                    plural(count, "test"),
                    plural(tests.len(), "test file")
                )
            };
            println!(
                "{}: ok — {}, {}{tests} (version {})",
                dir.display(),
                plural(set.rules.len(), "rule"),
                plural(set.files.len(), "file"),
                set.version
            );
            Ok(ExitCode::SUCCESS)
        }
        (loaded, tests) => {
            let mut errors = loaded.err().unwrap_or_default();
            errors.extend(tests.err().unwrap_or_default());
            print_rule_errors(&errors);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `rally test`: exit 0 when every test passes, 1 when one fails, 2 when the rules or
/// the tests do not load (nothing was run).
fn test(dir: &Path, junit: Option<&Path>, filter: Option<&str>) -> Result<ExitCode, String> {
    use rally::ruletest::{self, report};
    let invalid = ExitCode::from(2);
    let set = match rules::load(dir) {
        Ok(set) => Arc::new(set),
        Err(errors) => {
            let mut errors = errors;
            errors.extend(ruletest::load(dir, None).err().unwrap_or_default());
            print_rule_errors(&errors);
            return Ok(invalid);
        }
    };
    let files = match ruletest::load(dir, Some(&set)) {
        Ok(files) => files,
        Err(errors) => {
            print_rule_errors(&errors);
            return Ok(invalid);
        }
    };
    if files.is_empty() {
        println!(
            "no test files in {} (write them as tests/*.yaml there: see docs/testing.md)",
            dir.display()
        );
    }
    println!(
        "\nrunning {} from {}",
        plural(ruletest::count(&files), "test"),
        plural(files.len(), "test file")
    );
    let outcomes = ruletest::run_all(&set, &files, filter, |outcome| {
        println!("{}", report::line(outcome));
    });
    print!("{}", report::summary(&outcomes));
    if let Some(path) = junit {
        std::fs::write(path, report::junit(&outcomes))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if outcomes.iter().all(ruletest::Outcome::passed) {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// `sim --explain` as asked.
struct Explain {
    member: String,
    options: rally::engine::explain::Options,
    out: Option<PathBuf>,
    json: bool,
}

fn sim(
    dir: &Path,
    events: &str,
    until: Option<Until>,
    out: Option<&Path>,
    key: RandomKey,
    explain: Option<Explain>,
) -> Result<ExitCode, String> {
    let mut set = match rules::load(dir) {
        Ok(set) => set,
        Err(errors) => {
            print_rule_errors(&errors);
            return Ok(ExitCode::FAILURE);
        }
    };
    let tap = explain.as_ref().map(|explain| {
        Arc::new(rally::engine::explain::Tap::new(
            explain.member.clone(),
            explain.options,
        ))
    });
    set.explain = tap.clone();
    let set = Arc::new(set);
    let until = until.map(|until| until.instant(set.settings.timezone));
    let doc = if events == "-" {
        // Not `stdin().lock()`: the lines are read on a thread of their own, and a lock
        // stays on the thread that took it.
        rally::sim::simulate_seeded(
            set,
            BufReader::with_capacity(rally::sim::IO_BUFFER, io::stdin()),
            until,
            key,
        )
    } else {
        let file = File::open(events).map_err(|e| format!("cannot open {events}: {e}"))?;
        rally::sim::simulate_seeded(
            set,
            BufReader::with_capacity(rally::sim::IO_BUFFER, file),
            until,
            key,
        )
    }
    .map_err(|e| e.to_string())?;
    let written = match out {
        Some(path) => File::create(path)
            .and_then(|file| {
                write_document(&doc, BufWriter::with_capacity(rally::sim::IO_BUFFER, file))
            })
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => write_document(
            &doc,
            BufWriter::with_capacity(rally::sim::IO_BUFFER, io::stdout().lock()),
        )
        .map_err(|e| format!("writing output: {e}")),
    };
    written?;
    if let (Some(explain), Some(tap)) = (explain, tap) {
        write_explanation(&explain, tap.take())?;
    }
    // The process ends here: freeing every member one by one would only delay the
    // exit (the operating system takes the memory back whole).
    std::mem::forget(doc);
    Ok(ExitCode::SUCCESS)
}

/// The explanation of `sim --explain`: text or JSON, to stderr or a file.
fn write_explanation(
    explain: &Explain,
    steps: Vec<rally::engine::explain::StepTrace>,
) -> Result<(), String> {
    use rally::engine::explain::{render, Explanation};
    let text = if explain.json {
        let doc = Explanation::new(explain.member.clone(), steps);
        let mut text = serde_json::to_string_pretty(&doc)
            .map_err(|e| format!("writing the explanation: {e}"))?;
        text.push('\n');
        text
    } else if steps.is_empty() {
        format!("no step ran for member {:?}\n", explain.member)
    } else {
        render::text(&steps)
    };
    match &explain.out {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => io::stderr()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing the explanation: {e}")),
    }
}

/// The document, pretty-printed, with a final newline.
fn write_document(doc: &rally::sim::Simulation, mut out: impl Write) -> io::Result<()> {
    doc.write_pretty(&mut out)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `--since`: an RFC 3339 time, or a duration back from now (`30d`, `12h`).
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    match rally::duration::parse(text) {
        Ok(back) => Ok(Utc::now() - back),
        Err(_) => Err(format!(
            "{text:?} is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor a duration back from now (30d)"
        )),
    }
}

fn replay(
    data: Option<&Path>,
    journal: Option<&Path>,
    rules_dir: Option<&Path>,
    until: Option<DateTime<Utc>>,
) -> Result<ExitCode, String> {
    let candidate = match rules_dir.map(rules::load) {
        None => None,
        Some(Ok(set)) => Some(Arc::new(set)),
        Some(Err(errors)) => {
            print_rule_errors(&errors);
            return Ok(ExitCode::FAILURE);
        }
    };
    let reproduced = rally::replay::cli::replay(
        data,
        journal,
        candidate,
        until,
        &mut BufWriter::new(io::stdout().lock()),
    )?;
    Ok(if reproduced {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `rally backtest`: exit as `rally diff` does.
fn backtest(
    data: &Path,
    rules_dir: &Path,
    since: Option<DateTime<Utc>>,
    report: &Report,
) -> Result<ExitCode, String> {
    let thresholds = match report.thresholds("backtest") {
        Ok(thresholds) => thresholds,
        Err(invalid) => return Ok(invalid),
    };
    let candidate = match rules::load(rules_dir) {
        Ok(set) => Arc::new(set),
        Err(errors) => {
            print_rule_errors(&errors);
            return Ok(ExitCode::from(2));
        }
    };
    let (recorded, proposed) = rally::replay::cli::backtest(data, candidate, since)?;
    let labels = (
        format!("recorded rules ({})", data.display()),
        format!("candidate rules ({})", rules_dir.display()),
    );
    Ok(report_difference(
        labels,
        &recorded,
        &proposed,
        report,
        &thresholds,
    ))
}

impl Report {
    /// The `--fail-if` thresholds, or exit 2 after saying which one is bad.
    fn thresholds(&self, command: &str) -> Result<Vec<rally::backtest::Threshold>, ExitCode> {
        self.fail_if
            .iter()
            .map(|t| t.parse())
            .collect::<Result<_, rally::backtest::ThresholdError>>()
            .map_err(|e| {
                eprintln!("rally {command}: {e}");
                ExitCode::from(2)
            })
    }
}

/// `rally diff`: exit 0, 1 when a threshold trips, 2 when an input or a threshold is
/// bad (nothing is compared then).
fn diff(a: &Path, b: &Path, report: &Report) -> ExitCode {
    use rally::backtest;
    let invalid = ExitCode::from(2);
    let thresholds = match report.thresholds("diff") {
        Ok(thresholds) => thresholds,
        Err(invalid) => return invalid,
    };
    let (summary_a, summary_b) = match (backtest::load(a), backtest::load(b)) {
        (Ok(sa), Ok(sb)) => (sa, sb),
        (ra, rb) => {
            for e in [ra.err(), rb.err()].into_iter().flatten() {
                eprintln!("rally diff: {e}");
            }
            return invalid;
        }
    };
    let labels = (a.display().to_string(), b.display().to_string());
    report_difference(labels, &summary_a, &summary_b, report, &thresholds)
}

/// Prints the difference between two runs as `rally diff` and `rally backtest` do,
/// and judges the thresholds: exit 0, 1 when one trips, 2 when output fails.
fn report_difference(
    (label_a, label_b): (String, String),
    summary_a: &rally::backtest::Summary,
    summary_b: &rally::backtest::Summary,
    report: &Report,
    thresholds: &[rally::backtest::Threshold],
) -> ExitCode {
    let (json, all) = (report.json, report.all);
    use rally::backtest::{self, table, Difference};
    let invalid = ExitCode::from(2);
    let difference = Difference::between(summary_a, summary_b);
    let verdicts: Vec<_> = thresholds.iter().map(|t| t.judge(&difference)).collect();
    let printed = if json {
        let doc = backtest::json_report(&label_a, &label_b, &difference, &verdicts);
        serde_json::to_string_pretty(&doc).map(|text| text + "\n")
    } else {
        let labels = table::Labels {
            a: &label_a,
            b: &label_b,
        };
        Ok(table::render(&labels, &difference, &verdicts, all))
    };
    match printed {
        Ok(text) => {
            let mut out = io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                eprintln!("rally diff: writing output: {e}");
                return invalid;
            }
        }
        Err(e) => {
            eprintln!("rally diff: {e}");
            return invalid;
        }
    }
    let tripped: Vec<_> = verdicts.iter().filter(|v| v.tripped).collect();
    for verdict in &tripped {
        eprintln!(
            "rally diff: threshold tripped: {}: {}",
            verdict.expr, verdict.detail
        );
    }
    if tripped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn import(dir: &Path, data: &Path, events: &str) -> Result<ExitCode, String> {
    let set = match rules::load(dir) {
        Ok(set) => Arc::new(set),
        Err(errors) => {
            print_rule_errors(&errors);
            return Ok(ExitCode::FAILURE);
        }
    };
    let progress = |done: &rally::import::Imported| {
        eprintln!(
            "rally: {} lines: {} accepted, {} duplicate, {} rejected",
            done.lines,
            done.accepted,
            done.duplicates,
            done.rejected.len()
        );
    };
    let wall = Utc::now();
    let cache = rally::store::CacheSize::from_env().map_err(|e| format!("RALLY_CACHE_MB {e}"))?;
    let done = if events == "-" {
        rally::import::import_with_cache(cache, set, data, io::stdin().lock(), wall, progress)
    } else {
        let file = File::open(events).map_err(|e| format!("cannot open {events}: {e}"))?;
        rally::import::import_with_cache(
            cache,
            set,
            data,
            BufReader::with_capacity(rally::sim::IO_BUFFER, file),
            wall,
            progress,
        )
    }
    .map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&done).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// What `rally report` reports on: one of the three is given (clap sees to it).
struct ReportOf<'a> {
    data: Option<&'a Path>,
    sim: Option<&'a Path>,
    events: Option<&'a str>,
    until: Option<Until>,
}

fn community_report(
    of: ReportOf<'_>,
    dir: &Path,
    params: rally::report::Params,
    json: bool,
    html: Option<&Path>,
) -> Result<ExitCode, String> {
    let set = match rules::load(dir) {
        Ok(set) => Arc::new(set),
        Err(errors) => {
            print_rule_errors(&errors);
            return Ok(ExitCode::FAILURE);
        }
    };
    let ReportOf {
        data,
        sim,
        events,
        until,
    } = of;
    let doc = match (data, sim, events) {
        (Some(data), _, _) => rally::report::from_data(data, &set, &params),
        (None, Some(sim), _) => rally::report::from_sim(sim, &set, &params),
        (None, None, Some(events)) => {
            let until = until.map(|until| until.instant(set.settings.timezone));
            if events == "-" {
                rally::report::from_events(set, io::stdin().lock(), until, &params)
            } else {
                let file = File::open(events).map_err(|e| format!("cannot open {events}: {e}"))?;
                rally::report::from_events(
                    set,
                    BufReader::with_capacity(rally::sim::IO_BUFFER, file),
                    until,
                    &params,
                )
            }
        }
        (None, None, None) => {
            return Err("give --data DIR, --sim FILE or --events FILE".to_string())
        }
    }
    .map_err(|e| e.to_string())?;
    if let Some(path) = html {
        std::fs::write(path, rally::metrics::render::html(&doc))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let text = if json {
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n"
    } else {
        rally::metrics::render::text(&doc)
    };
    io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot write the report: {e}"))?;
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

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn run(rules_dir: PathBuf, data_dir: PathBuf, listen: &str) -> Result<ExitCode, String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    if let Err(e) = without_transparent_huge_pages() {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off; acknowledgement latency may have multi-millisecond spikes");
    }
    if let Err(e) = raise_open_files_limit() {
        tracing::warn!(error = %e, "cannot raise the open-files limit; client connections are capped by the current one");
    }
    let config = daemon::Config::from_env(rules_dir, data_dir).map_err(|e| e.to_string())?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        // Handlers are installed before the daemon is ready, so an early SIGTERM is a
        // clean shutdown rather than the default kill.
        let shutdown = shutdown_signal().map_err(|e| format!("cannot handle signals: {e}"))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        Ok::<_, String>(daemon::run(listener, config, shutdown).await)
    })?;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(DaemonError::Rules { dir, errors }) => {
            eprintln!(
                "rally: cannot start: the rules in {} do not load",
                dir.display()
            );
            print_rule_errors(&errors);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `rally run --cluster`: a node of a Rally cluster on NATS JetStream (docs/cluster.md).
fn run_cluster(
    rules_dir: PathBuf,
    data_dir: PathBuf,
    listen: &str,
    flags: rally::cluster::Flags,
) -> Result<ExitCode, String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal().map_err(|e| format!("cannot handle signals: {e}"))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        Ok::<_, String>(rally::cluster::run(listener, flags, rules_dir, data_dir, shutdown).await)
    })?;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(rally::cluster::ClusterError::Rules { dir, errors }) => {
            eprintln!(
                "rally: cannot start: the rules in {} do not load",
                dir.display()
            );
            print_rule_errors(&errors);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(format!("cannot run the cluster node: {e}")),
    }
}

/// Completes on SIGTERM or SIGINT.
fn shutdown_signal() -> io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn bench(config: BenchConfig) -> Result<ExitCode, String> {
    // The daemon measured is the daemon as `rally run` runs it.
    if let Err(e) = without_transparent_huge_pages() {
        eprintln!(
            "rally bench: cannot turn transparent huge pages off ({e}); expect a longer tail"
        );
    }
    if let Err(e) = raise_open_files_limit() {
        eprintln!("rally bench: cannot raise the open-files limit ({e})");
    }
    let runtime = runtime()?;
    println!(
        "rally bench: rules {}, in-process daemon on loopback, temporary data directory",
        config.rules_dir.display()
    );
    let (saturation, latency) = runtime
        .block_on(daemon::bench::bench(&config))
        .map_err(|e| e.to_string())?;
    let seconds = saturation.elapsed.as_secs_f64();
    println!(
        "saturation: {} events in batches of {} from {} clients in {:.2} s = {:.0} durable events/s",
        saturation.events,
        config.batch,
        config.concurrency,
        seconds,
        saturation.events as f64 / seconds
    );
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let inside = |i: &daemon::bench::Inside| {
        format!(
            "  inside the daemon: {} groups of {:.1} steps on average; mean step {:.3} ms, \
             commit {:.2} ms, sync {:.2} ms",
            i.groups,
            i.group,
            ms(i.step),
            ms(i.commit),
            ms(i.sync)
        )
    };
    println!("{}", inside(&saturation.inside));
    println!(
        "fixed load: {:.0} events/s offered (one per request) for {:.1} s: {} sent, {} failed; \
         ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latency.offered,
        latency.elapsed.as_secs_f64(),
        latency.sent,
        latency.failed,
        ms(latency.p50),
        ms(latency.p99),
        ms(latency.max)
    );
    println!("{}", inside(&latency.inside));
    if let Some(error) = &latency.first_error {
        println!("  first failure: {error}");
    }
    Ok(ExitCode::SUCCESS)
}
