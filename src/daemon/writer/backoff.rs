//! When to try failing clock-driven work again.
//!
//! A timer the store cannot read stays due, so without a pause the writer would try it
//! in a loop and never wait for a job. The pause doubles with each failure in a row, up
//! to [`MAX`], so a store that is down for long is not hammered, and one that comes
//! back is tried again soon.

use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_millis(50);
const MAX: Duration = Duration::from_secs(5);

/// Failures in a row, and when the next try is allowed. Only [`Backoff::failed`] and
/// [`Backoff::succeeded`] change it.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// Records a failure; returns the pause before the next try.
    pub(super) fn failed(&mut self) -> Duration {
        let pause = FIRST.saturating_mul(1u32 << self.failures.min(16)).min(MAX);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(Instant::now() + pause);
        pause
    }

    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// `None` when nothing failed; else the time left before the next try (zero once
    /// it may be tried).
    pub(super) fn remaining(&self) -> Option<Duration> {
        self.retry_at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_in_a_row_doubles_the_pause_up_to_the_cap() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.remaining(), None);
        assert_eq!(backoff.failed(), FIRST);
        assert_eq!(backoff.failed(), FIRST * 2);
        for _ in 0..40 {
            backoff.failed();
        }
        assert_eq!(backoff.failed(), MAX);
        assert!(backoff.remaining().is_some());
        backoff.succeeded();
        assert_eq!(backoff.remaining(), None);
        assert_eq!(backoff.failed(), FIRST);
    }
}
