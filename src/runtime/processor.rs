//! The stage-1 processor: one consumer in group `shopstream` (cooperative-sticky,
//! auto-commit off, read_committed) over shop.transactions and shop.events, driven from a
//! dedicated thread because librdkafka's transaction calls block. The consumer context
//! commits the open interval in the revoke callback — on this same thread, inside `poll` —
//! so partitions never move with uncommitted work; a lost assignment aborts instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientConfig;
use tracing::{error, info};

use super::stage1::{Stage1, Stage1Totals};

/// Shares the stage-1 state with the rebalance callback.
struct ProcessorContext {
    stage: Arc<Mutex<Option<Stage1>>>,
    failure: Mutex<Option<anyhow::Error>>,
}

impl ClientContext for ProcessorContext {}

impl ConsumerContext for ProcessorContext {
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
            stage.commit(consumer)
        };
        stage.drop_tasks(revoked);
        if let Err(e) = result {
            error!(error = %format!("{e:#}"), "commit on revoke failed");
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert(e);
            }
        }
    }
}

/// Runs stage 1 until `stop` is raised (then commits the open interval) or a fatal error.
pub fn run(
    base: &ClientConfig,
    group: &str,
    static_member: Option<&str>,
    stage: Stage1,
    commit_interval: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Stage1Totals> {
    let topics = [
        stage.settings.transactions.clone(),
        stage.settings.events.clone(),
    ];
    let shared = Arc::new(Mutex::new(Some(stage)));
    let mut config = base.clone();
    if let Some(id) = static_member {
        config.set("group.instance.id", id);
    }
    let consumer: BaseConsumer<ProcessorContext> = config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(ProcessorContext {
            stage: shared.clone(),
            failure: Mutex::new(None),
        })
        .context("creating the stage-1 consumer")?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .context("subscribing to the inputs")?;
    let mut next_commit = Instant::now() + commit_interval;
    while !stop.load(Ordering::Relaxed) {
        let wait = next_commit.saturating_duration_since(Instant::now());
        if let Some(m) = consumer.poll(wait) {
            let m = m.context("consuming")?;
            let mut g = lock(&shared)?;
            let stage = g.as_mut().expect("present until the end");
            stage.process(&consumer, &m)?;
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
        if Instant::now() >= next_commit {
            let mut g = lock(&shared)?;
            g.as_mut()
                .expect("present until the end")
                .commit(&consumer)?;
            next_commit = Instant::now() + commit_interval;
        }
    }
    let mut g = lock(&shared)?;
    let stage = g.as_mut().expect("present until the end");
    stage.commit(&consumer)?;
    let totals = stage.totals;
    drop(g);
    // Leave the group now so partitions move at once (the revoke callback has nothing left
    // to commit).
    consumer.unsubscribe();
    shared.lock().map_err(|_| anyhow!("poisoned"))?.take();
    Ok(totals)
}

fn lock(s: &Mutex<Option<Stage1>>) -> Result<std::sync::MutexGuard<'_, Option<Stage1>>> {
    s.lock().map_err(|_| anyhow!("stage-1 state poisoned"))
}
