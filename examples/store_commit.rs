//! Group-commit throughput of the store, run by hand:
//!
//! ```text
//! cargo run --example store_commit -- [GROUPS] [STEPS_PER_GROUP] [DIR]
//! ```
//!
//! Each step is what an ordinary accepted event writes: the member's whole state, one
//! ledger row, one firing, its inactivity timer moved, its seen record. Each group is
//! committed in one transaction and then made durable with `sync`, as the daemon's
//! writer loop does. DIR defaults to a fresh directory under the system temp dir (put it
//! on the disk you care about: /tmp may be memory).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rally::engine::{Firing, LedgerEntry};
use rally::member::Member;
use rally::store::{StepWrite, Store, TimerKey};

const MEMBERS: u64 = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let groups: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let per_group: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(128);
    let dir = match args.next() {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let store = Store::open(dir.path())?;

    let (mut committing, mut syncing) = (Duration::ZERO, Duration::ZERO);
    let mut worst = Duration::ZERO;
    for g in 0..groups {
        let group: Vec<StepWrite> = (0..per_group).map(|i| step(g * per_group + i)).collect();
        let started = Instant::now();
        store.commit(&group)?;
        let committed = Instant::now();
        store.sync()?;
        let synced = Instant::now();
        committing += committed - started;
        syncing += synced - committed;
        worst = worst.max(synced - started);
    }

    let steps = groups * per_group;
    let total = committing + syncing;
    println!("{groups} groups x {per_group} steps = {steps} steps in {dir:?}");
    println!(
        "per group: commit {:.2} ms + sync {:.2} ms = {:.2} ms (worst {:.2} ms)",
        ms(committing) / groups as f64,
        ms(syncing) / groups as f64,
        ms(total) / groups as f64,
        ms(worst),
    );
    println!(
        "throughput: {:.0} steps/s",
        steps as f64 / total.as_secs_f64()
    );
    Ok(())
}

fn step(n: u64) -> StepWrite {
    let id = format!("m-{}", n % MEMBERS);
    let now = Utc.timestamp_opt(1_800_000_000 + n as i64, 0).unwrap();
    let mut member = Member::new(&id);
    member.points = n as i64;
    member.points_lifetime = n as i64;
    member.tier = Some("silver".into());
    member.tags.insert("active".into());
    member.attrs.insert("name".into(), "Lin".into());
    member
        .attrs
        .insert("email".into(), format!("{id}@example.com").into());
    member.add_to_counter("events.checkin", n.into());
    member.add_to_counter("checkin_streak", 3.into());
    member.last_active = Some(now);
    let event = format!("e-{n}");
    let millis = now.timestamp_millis();
    StepWrite {
        event_id: Some(event.as_str().into()),
        ledger: vec![LedgerEntry {
            member: id.as_str().into(),
            amount: 5,
            balance: member.points,
            reason: "daily-checkin".into(),
            rule: "daily-checkin".into(),
            event: Some(event.as_str().into()),
            at: now,
            requested: None,
            clipped_by: None,
            operator: None,
            from: None,
        }],
        firings: vec![Firing {
            rule: "daily-checkin".into(),
            member: id.as_str().into(),
            trigger: "event".into(),
            at: now,
            event: Some(event.as_str().into()),
            version: "v1".into(),
        }],
        timers_clear: vec![TimerKey::new(millis - 1000, "inactive", id.clone())],
        timers_set: vec![(
            TimerKey::new(millis + 7 * 86_400_000, "inactive", id),
            vec![],
        )],
        members: vec![member],
        ..StepWrite::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
