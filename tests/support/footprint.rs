//! How much memory and disk a process under test holds, sampled while it runs: for soak
//! tests that demand both stay bounded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The resident set size of process `pid` (`VmRSS` in `/proc/PID/status`), in bytes;
/// `None` once the process is gone.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The disk space every file under `dir` occupies (allocated blocks, as `du` counts
/// them, so a sparse file counts for what it really holds).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            // A file removed between the listing and the look (sled's segments).
            Err(_) => 0,
        })
        .sum()
}

/// One look at the process: seconds since sampling began, RSS and data directory size.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub secs: f64,
    pub rss: u64,
    pub disk: u64,
}

/// Samples a process's RSS and a directory's size every `every` on a thread of its own,
/// until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    pub fn start(pid: i32, dir: PathBuf, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let began = Instant::now();
                let mut samples = Vec::new();
                let mut next = began;
                // Until told to stop; the look after the order is the last sample.
                while let Some(rss) = rss_bytes(pid) {
                    samples.push(Sample {
                        secs: began.elapsed().as_secs_f64(),
                        rss,
                        disk: disk_usage(&dir),
                    });
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    next += every;
                    while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                samples
            })
        };
        Sampler { stop, thread }
    }

    /// Takes a last sample and returns them all, in time order.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler thread")
    }
}

/// `bytes` in MiB, for printing.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
