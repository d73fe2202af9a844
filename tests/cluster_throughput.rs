//! How many events per second a cluster of 1, 2 and 3 nodes takes and applies on this
//! machine, against one `rally run` — the figures in the README's "Cluster mode".
//! Ignored by default (it measures, it asserts nothing about time):
//!
//! ```sh
//! cargo test --release --test cluster_throughput -- --ignored --nocapture
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cluster_node::ClusterNode;
use support::daemon::{client, example, get_json, post_until_acknowledged, Daemon};
use support::nats::Nats;

const EVENTS: usize = 20_000;
const MEMBERS: usize = 200;
const CLIENTS: usize = 8;
const BATCH: usize = 50;

fn events() -> Vec<Value> {
    (0..EVENTS)
        .map(|n| {
            json!({"id": format!("e-{n}"), "type": "purchase", "member": format!("m-{}", n % MEMBERS),
                   "data": {"amount": 10}})
        })
        .collect()
}

/// Posts every event from CLIENTS concurrent clients, batches spread round robin
/// over `bases`; returns the seconds until the last acknowledgement.
async fn post_all(bases: &[String]) -> f64 {
    let http = client();
    let batches: Arc<Vec<Vec<Value>>> =
        Arc::new(events().chunks(BATCH).map(<[Value]>::to_vec).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (http, batches, bases) = (http.clone(), Arc::clone(&batches), bases.to_vec());
        tasks.push(tokio::spawn(async move {
            for i in (c..batches.len()).step_by(CLIENTS) {
                let base = bases[i % bases.len()].clone();
                post_until_acknowledged(&http, || base.clone(), &batches[i]).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed().as_secs_f64()
}

/// Waits until every member shows all its purchases, read through `base`.
async fn until_applied(base: &str) {
    let http = client();
    let per_member = (EVENTS / MEMBERS) as u64;
    loop {
        let mut done = true;
        for m in 0..MEMBERS {
            let path = format!("/v1/members/m-{m}");
            match get_json(&http, base, &path).await {
                Some((200, view)) if view["counters"]["purchases"] == per_member => {}
                _ => {
                    done = false;
                    break;
                }
            }
        }
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn cluster_throughput() {
    let rules = example("purchase-ladder");
    {
        let data = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(&rules, data.path(), &[]);
        let acked = post_all(std::slice::from_ref(&daemon.base)).await;
        println!(
            "single process: {EVENTS} events acknowledged (durable, applied) in {acked:.2} s = {:.0}/s",
            EVENTS as f64 / acked
        );
    }
    for nodes in 1..=3 {
        let nats = Nats::start();
        let dirs: Vec<tempfile::TempDir> =
            (0..nodes).map(|_| tempfile::tempdir().unwrap()).collect();
        let running: Vec<ClusterNode> = (0..nodes)
            .map(|n| {
                ClusterNode::start(
                    &nats.url,
                    &format!("n{n}"),
                    &rules,
                    dirs[n].path(),
                    12,
                    3000,
                )
            })
            .collect();
        let bases: Vec<String> = running.iter().map(|n| n.base.clone()).collect();
        // Every partition owned before the clock starts.
        let http = client();
        loop {
            let mut owned = 0;
            for base in &bases {
                if let Some((200, view)) = get_json(&http, base, "/v1/cluster").await {
                    owned += view["owned"].as_array().unwrap().len();
                }
            }
            let spread = nodes == 1 || owned == 12;
            if owned == 12 && spread {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let acked = post_all(&bases).await;
        until_applied(&bases[0]).await;
        let applied = started.elapsed().as_secs_f64();
        println!(
            "{nodes} node(s): {EVENTS} events acknowledged (in the stream) in {acked:.2} s = {:.0}/s; all applied after {applied:.2} s = {:.0}/s",
            EVENTS as f64 / acked,
            EVENTS as f64 / applied
        );
    }
}
