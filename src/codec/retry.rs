//! Exponential backoff for transient failures: the schema registry or a database being
//! unreachable for a while. [`Backoff`] hands out the next delay (doubling from a start
//! value up to a cap) and remembers when the trouble began, so the callers that wait —
//! stage 1 holding a partition, the sink and the catalog retrying a decode, start-up
//! waiting for the broker or the registry — log how long they have been waiting and share
//! one policy instead of each hand-rolling a loop.

use std::time::{Duration, Instant};

/// First delay of a new [`Backoff`].
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Delays between attempts: `first`, then doubling, never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    since: Instant,
    attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(FIRST_DELAY, MAX_DELAY)
    }
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            next: first.min(max),
            max,
            since: Instant::now(),
            attempts: 0,
        }
    }

    /// The delay before the next attempt (and counts a failed attempt).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempts += 1;
        d
    }

    /// Failed attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since the first failure.
    pub fn waited(&self) -> Duration {
        self.since.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_counts() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        assert_eq!(b.attempts(), 4);
    }
}
