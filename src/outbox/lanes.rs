//! Per-channel pacing: how many deliveries a channel has in flight (a semaphore) and
//! how fast new ones start (a token bucket). One lane per channel name, made on first
//! use and kept across rule reloads so a reload does not reset the pacing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{sleep_until, Duration, Instant};

pub(super) struct Lanes {
    concurrency: usize,
    /// Tokens per second; `None` = unlimited.
    rate: Option<f64>,
    /// A std `Mutex`: held only to look a lane up, never across an await.
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
}

pub(super) struct Lane {
    slots: Semaphore,
    bucket: Option<Mutex<Bucket>>,
}

/// `tokens` as of `at`; it refills at `rate` per second up to `capacity`.
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Lanes {
    /// `concurrency` below 1 is taken as 1; a `rate` that is not a positive number
    /// means no rate limit.
    pub(super) fn new(concurrency: usize, rate: f64) -> Lanes {
        Lanes {
            concurrency: concurrency.max(1),
            rate: (rate > 0.0).then_some(rate),
            lanes: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn get(&self, channel: &str) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lane = lanes.entry(channel.to_string()).or_insert_with(|| {
            Arc::new(Lane {
                slots: Semaphore::new(self.concurrency),
                bucket: self.rate.map(|rate| Mutex::new(Bucket::full(rate))),
            })
        });
        Arc::clone(lane)
    }
}

impl Lane {
    /// Waits for a free slot, then for the rate to allow one more start. The slot is
    /// held until the returned permit drops.
    pub(super) async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed, so `acquire` fails only in theory.
        let permit = self.slots.acquire().await.ok()?;
        if let Some(bucket) = &self.bucket {
            loop {
                let wait = bucket
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(Instant::now());
                match wait {
                    None => break,
                    Some(until) => sleep_until(until).await,
                }
            }
        }
        Some(permit)
    }
}

impl Bucket {
    /// Bursts of up to one second's worth, and at least one token.
    fn full(rate: f64) -> Bucket {
        let capacity = rate.max(1.0);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            at: Instant::now(),
        }
    }

    /// Takes a token if there is one; otherwise says when there will be.
    fn take(&mut self, now: Instant) -> Option<Instant> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            let missing = (1.0 - self.tokens) / self.rate;
            Some(now + Duration::from_secs_f64(missing.min(3600.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_of_one_seconds_worth_then_paces() {
        let start = Instant::now();
        let mut bucket = Bucket::full(4.0);
        for _ in 0..4 {
            assert_eq!(bucket.take(start), None);
        }
        let until = bucket.take(start).unwrap();
        assert_eq!(until - start, Duration::from_millis(250));
        assert_eq!(bucket.take(start + Duration::from_millis(250)), None);
    }

    #[test]
    fn a_slow_rate_still_allows_one_message_at_once() {
        let start = Instant::now();
        let mut bucket = Bucket::full(0.5);
        assert_eq!(bucket.take(start), None);
        assert_eq!(bucket.take(start).unwrap() - start, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_lane_admits_no_more_than_its_concurrency() {
        let lanes = Lanes::new(2, 0.0);
        let lane = lanes.get("email");
        let first = lane.enter().await.unwrap();
        let _second = lane.enter().await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), lane.enter()).await;
        assert!(third.is_err(), "a third delivery started");
        drop(first);
        let third = tokio::time::timeout(Duration::from_millis(50), lane.enter()).await;
        assert!(third.is_ok());
    }

    #[test]
    fn channels_get_separate_lanes() {
        let lanes = Lanes::new(1, 0.0);
        assert!(!Arc::ptr_eq(&lanes.get("email"), &lanes.get("wecom")));
        assert!(Arc::ptr_eq(&lanes.get("email"), &lanes.get("email")));
    }
}
