//! Wall-clock pacing. Record n is due at start + n / rate, an absolute schedule, so
//! sleeping too long or stalling never lets the rate drift: the sender simply catches up.
//! It only waits when more than a millisecond ahead, so the rate holds exactly on average
//! with bursts of at most a millisecond's worth of records, without busy-waiting.

use std::time::{Duration, Instant};

/// Paces records to a fixed rate; rate 0 means no pacing.
#[derive(Debug, Clone)]
pub struct Pacer {
    per_record: Option<Duration>,
    start: Instant,
    sent: u64,
}

const SLACK: Duration = Duration::from_millis(1);

impl Pacer {
    pub fn new(rate: f64) -> Pacer {
        let per_record =
            (rate > 0.0 && rate.is_finite()).then(|| Duration::from_secs_f64(1.0 / rate));
        Pacer {
            per_record,
            start: Instant::now(),
            sent: 0,
        }
    }

    /// How long to wait before the next record may go, if at all.
    pub fn delay(&self) -> Option<Duration> {
        let per = self.per_record?;
        let due = self.start + per.mul_f64(self.sent as f64);
        let ahead = due.checked_duration_since(Instant::now())?;
        (ahead > SLACK).then_some(ahead)
    }

    /// Waits (through `wait`, e.g. a Kafka poll or a sleep) until the next record is due,
    /// then counts it.
    pub fn wait_turn(&mut self, mut wait: impl FnMut(Duration)) {
        while let Some(d) = self.delay() {
            wait(d);
        }
        self.sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_rate() {
        let mut p = Pacer::new(2000.0);
        let t = Instant::now();
        for _ in 0..200 {
            p.wait_turn(std::thread::sleep);
        }
        let ms = t.elapsed().as_millis();
        assert!(
            (95..400).contains(&ms),
            "200 records at 2000/s took {ms} ms"
        );
        let mut free = Pacer::new(0.0);
        free.wait_turn(|_| panic!("rate 0 never waits"));
    }
}
