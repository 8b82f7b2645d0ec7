//! The consume loop shared by both stages: one consumer in the stage's group
//! (range assignment, auto-commit off, read_committed, a short fetch wait — see
//! `client::default_fetch_wait` — optionally a static member), driven from a dedicated
//! thread because librdkafka's transaction calls block. A [`Stage`] processes each record
//! and commits on the interval. The consumer context commits the open interval in the
//! revoke callback — on this same thread, inside `poll` — so partitions never move with
//! uncommitted work; a lost assignment aborts instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientConfig;
use tracing::{error, info, warn};

use super::backpressure::Backpressure;
use super::producer::MustAbort;

use rdkafka::message::BorrowedMessage;

/// One stage of the pipeline as the consume loop drives it.
pub trait Stage: Send + 'static {
    /// Processes one consumed record.
    fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        m: &BorrowedMessage<'_>,
    ) -> Result<()>;
    /// Ends the interval: commits everything processed so far with its offsets.
    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()>;
    /// Commits the open interval because partitions are being revoked.
    fn commit_on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        self.commit(consumer)
    }
    /// Aborts the open interval and rewinds to the committed offsets.
    fn abort_and_rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()>;
    /// Forgets the state of revoked partitions (after their work was committed).
    fn drop_partitions(&mut self, partitions: Vec<i32>);
    /// Records waiting in the stage's producer queue.
    fn in_flight(&self) -> u64;
    /// Counts a pause of the inputs for backpressure.
    fn paused(&mut self) {}
    /// Called on every turn of the loop, also while every input is paused: time-driven
    /// work such as retrying partitions held for a schema registry outage.
    fn tick<C: ConsumerContext>(&mut self, _consumer: &BaseConsumer<C>) -> Result<()> {
        Ok(())
    }
    /// True when a bounded run has processed everything it was given: the loop then
    /// commits and returns as if stopped.
    fn finished<C: ConsumerContext>(&self, _consumer: &BaseConsumer<C>) -> bool {
        false
    }
}

/// Shares the stage state with the rebalance callback.
struct ProcessorContext<S> {
    stage: Arc<Mutex<Option<S>>>,
    failure: Mutex<Option<anyhow::Error>>,
}

impl<S: Stage> ClientContext for ProcessorContext<S> {}

impl<S: Stage> ConsumerContext for ProcessorContext<S> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let Ok(mut guard) = self.stage.lock() else {
            return;
        };
        let Some(stage) = guard.as_mut() else {
            return;
        };
        let revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let result = if consumer.assignment_lost() {
            info!(?revoked, "assignment lost: aborting the open interval");
            stage.abort_and_rewind(consumer)
        } else {
            info!(
                ?revoked,
                "partitions revoked: committing the open interval first"
            );
            stage.commit_on_revoke(consumer)
        };
        stage.drop_partitions(revoked);
        if let Err(e) = result {
            error!(error = %format!("{e:#}"), "commit on revoke failed");
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert(e);
            }
        }
    }
}

/// The group's partition assignment strategy. Stage-1 task `p` consumes partition `p`
/// of shop.transactions and of shop.events together (one watermark, one changelog
/// partition, one partials source), so both must go to the same member: `range` assigns
/// equally partitioned topics' same partition numbers to the same member.
/// `cooperative-sticky` assigns topic-partitions independently: after a join it left
/// transactions-2..5 on one instance and events-2..5 on others, splitting those tasks in
/// two (tests/runtime_copartition.rs, tests/scale.rs).
pub const ASSIGNMENT_STRATEGY: &str = "range";

/// Which group a stage's consumer joins, as whom, and what it subscribes to.
pub struct Subscription<'a> {
    pub group: &'a str,
    /// `group.instance.id` for static membership, if any.
    pub static_member: Option<&'a str>,
    pub topics: &'a [String],
}

/// Runs `stage` on `sub.topics` until `stop` is raised (then commits the open interval) or a
/// fatal error, pausing the inputs under `backpressure`; returns the stage.
pub fn run<S: Stage>(
    base: &ClientConfig,
    sub: Subscription<'_>,
    stage: S,
    commit_interval: Duration,
    mut backpressure: Backpressure,
    stop: Arc<AtomicBool>,
) -> Result<S> {
    let shared = Arc::new(Mutex::new(Some(stage)));
    let mut config = base.clone();
    if let Some(id) = sub.static_member {
        config.set("group.instance.id", id);
    }
    super::client::default_fetch_wait(&mut config);
    let consumer: BaseConsumer<ProcessorContext<S>> = config
        .set("group.id", sub.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", ASSIGNMENT_STRATEGY)
        .create_with_context(ProcessorContext {
            stage: shared.clone(),
            failure: Mutex::new(None),
        })
        .with_context(|| format!("creating the consumer of group {}", sub.group))?;
    let names: Vec<&str> = sub.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .context("subscribing to the inputs")?;
    let mut next_commit = Instant::now() + commit_interval;
    let mut kept_up = false;
    let mut aborts_in_a_row = 0u32;
    while !stop.load(Ordering::Relaxed) {
        {
            let mut g = lock(&shared)?;
            let stage = g.as_mut().expect("present until the end");
            let pauses = backpressure.pauses;
            backpressure.apply(&consumer, stage.in_flight())?;
            if backpressure.pauses > pauses {
                stage.paused();
            }
            stage.tick(&consumer)?;
        }
        let wait = next_commit
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if let Some(m) = consumer.poll(wait) {
            let m = m.context("consuming")?;
            let mut g = lock(&shared)?;
            let stage = g.as_mut().expect("present until the end");
            let r = stage.process(&consumer, &m);
            abort_if_needed(stage, &consumer, r, &mut aborts_in_a_row)?;
        } else {
            kept_up = true;
        }
        if let Some(e) = consumer
            .context()
            .failure
            .lock()
            .ok()
            .and_then(|mut f| f.take())
        {
            return Err(e);
        }
        if lock(&shared)?
            .as_ref()
            .is_some_and(|s| s.finished(&consumer))
        {
            info!("bounded run finished: committing and stopping");
            break;
        }
        let started = Instant::now();
        if started >= next_commit {
            let mut g = lock(&shared)?;
            let stage = g.as_mut().expect("present until the end");
            let r = stage.commit(&consumer);
            if r.is_ok() {
                aborts_in_a_row = 0;
            }
            abort_if_needed(stage, &consumer, r, &mut aborts_in_a_row)?;
            next_commit = next_commit_at(started, Instant::now(), commit_interval, kept_up);
            kept_up = false;
        }
    }
    lock(&shared)?
        .as_mut()
        .expect("present until the end")
        .commit(&consumer)?;
    // Leave the group now so partitions move at once (the revoke callback finds no state
    // and has nothing left to commit).
    let stage = lock(&shared)?.take().expect("present until the end");
    consumer.unsubscribe();
    Ok(stage)
}

/// When the commit after one that started at `started` and ended at `now` is due. A stage
/// that kept up with its input during the interval (a poll found nothing) counts the
/// interval from the start of the commit, so a record waits at most about one interval for
/// the commit that makes its outputs visible, not an interval plus the commit's own time;
/// after a commit longer than half an interval, half an interval still passes first. A
/// stage that is behind counts from the end of the commit, so committing never takes time
/// from input that is waiting to be processed.
fn next_commit_at(started: Instant, now: Instant, interval: Duration, kept_up: bool) -> Instant {
    if kept_up {
        (started + interval).max(now + interval / 2)
    } else {
        now + interval
    }
}

/// Aborted transactions in a row after which a [`MustAbort`] is fatal (the cause lasts).
const MAX_ABORTS_IN_A_ROW: u32 = 5;

/// Passes `r` on, except a [`MustAbort`]: then the open transaction is aborted and the
/// consumer rewound to the committed offsets, and processing goes on — unless that has
/// happened [`MAX_ABORTS_IN_A_ROW`] times without a commit in between.
fn abort_if_needed<S: Stage, C: ConsumerContext>(
    stage: &mut S,
    consumer: &BaseConsumer<C>,
    r: Result<()>,
    aborts_in_a_row: &mut u32,
) -> Result<()> {
    match r {
        Err(e) if e.is::<MustAbort>() => {
            *aborts_in_a_row += 1;
            if *aborts_in_a_row > MAX_ABORTS_IN_A_ROW {
                return Err(e.context(format!(
                    "giving up after {MAX_ABORTS_IN_A_ROW} aborted transactions in a row"
                )));
            }
            warn!(error = %e, "aborting the open transaction and rewinding to the committed offsets");
            stage.abort_and_rewind(consumer)
        }
        r => r,
    }
}

fn lock<S>(s: &Mutex<Option<S>>) -> Result<std::sync::MutexGuard<'_, Option<S>>> {
    s.lock().map_err(|_| anyhow!("stage state poisoned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_counts_from_the_commit_start_only_for_a_stage_that_keeps_up() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let interval = ms(100);
        // Kept up, a 20 ms commit: due 100 ms after it started.
        assert_eq!(
            next_commit_at(t0, t0 + ms(20), interval, true),
            t0 + ms(100)
        );
        // Kept up, an 80 ms commit: half an interval after it ended.
        assert_eq!(
            next_commit_at(t0, t0 + ms(80), interval, true),
            t0 + ms(130)
        );
        // Behind: a whole interval after the commit ended.
        assert_eq!(
            next_commit_at(t0, t0 + ms(20), interval, false),
            t0 + ms(120)
        );
    }
}
