//! Stage-1 task `p` consumes partition `p` of shop.transactions and of shop.events
//! together, so the group's assignment must keep those two on one member. Consumers with
//! the runtime's assignment strategy (`processor::ASSIGNMENT_STRATEGY`) join one group on
//! the mock cluster one, then three at a time, and after each rebalance every member must
//! hold, for each partition number it has, both topics' partitions. With
//! cooperative-sticky, the first member kept transactions-2..5 and gave events-2..5 away.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use shopstream::runtime::processor::ASSIGNMENT_STRATEGY;

const TOPICS: [&str; 2] = ["shop.transactions", "shop.events"];

fn member(bootstrap: &str) -> BaseConsumer {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "copartition")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("partition.assignment.strategy", ASSIGNMENT_STRATEGY)
        .create()
        .unwrap();
    c.subscribe(&TOPICS).unwrap();
    c
}

/// Polls every member until each of the 12 input partitions is assigned once, or 30 s.
fn settle(members: &[&BaseConsumer]) -> Vec<BTreeSet<(String, i32)>> {
    let started = Instant::now();
    loop {
        for m in members {
            m.poll(Duration::from_millis(20));
        }
        let held: Vec<BTreeSet<(String, i32)>> = members
            .iter()
            .map(|m| {
                let a = m.assignment().unwrap();
                let held: BTreeSet<(String, i32)> = a
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                held
            })
            .collect();
        if held.iter().map(BTreeSet::len).sum::<usize>() == 12 && held.iter().all(|h| !h.is_empty())
            || started.elapsed() > Duration::from_secs(30)
        {
            return held;
        }
    }
}

fn assert_copartitioned(held: &[BTreeSet<(String, i32)>]) {
    assert_eq!(
        held.iter().map(BTreeSet::len).sum::<usize>(),
        12,
        "{held:?}"
    );
    for h in held {
        for (_, p) in h {
            for t in TOPICS {
                assert!(
                    h.contains(&(t.to_string(), *p)),
                    "a member holds partition {p} of one input without the other: {held:?}"
                );
            }
        }
    }
}

#[test]
fn each_member_holds_both_inputs_of_its_tasks() {
    let k = support::kafka::MockKafka::with_topics(6);
    let a = member(&k.bootstrap());
    assert_copartitioned(&settle(&[&a]));
    let (b, c) = (member(&k.bootstrap()), member(&k.bootstrap()));
    let held = settle(&[&a, &b, &c]);
    eprintln!("three members: {held:?}");
    assert_copartitioned(&held);
}
