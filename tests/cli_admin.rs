//! The CLI's admin commands against the mock cluster and the fake registry: `topics
//! create` (idempotent, mismatch and unsupported-broker reporting), `schemas register`
//! (idempotent, incompatible change refused by subject), config errors and unbuilt commands.

mod support;

use std::process::Output;

use support::kafka::MockKafka;
use support::{shopstream, EmbeddedRegistry};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn topics_create_is_idempotent_on_existing_topics() {
    let k = MockKafka::with_topics(6);
    for _ in 0..2 {
        let o = shopstream()
            .args(["topics", "create", "--timeout", "5"])
            .env("SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS", k.bootstrap())
            .output()
            .unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(t.contains("exists   shop.transactions"), "{t}");
        assert!(!t.contains("created"), "{t}");
    }
}

#[test]
fn topics_create_reports_partition_mismatch() {
    let k = MockKafka::empty();
    k.cluster.create_topic("shop.transactions", 2, 1).unwrap();
    let o = shopstream()
        .args(["topics", "create", "--timeout", "5"])
        .env("SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS", k.bootstrap())
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("MISMATCH shop.transactions: has 2 partitions, defined 6"),
        "{t}"
    );
}

#[test]
fn topics_create_on_a_broker_without_create_topics_fails_clearly() {
    // librdkafka's mock broker has no CreateTopics API: the command must say so per topic
    // and exit non-zero rather than pretend.
    let k = MockKafka::empty();
    let o = shopstream()
        .args(["topics", "create", "--timeout", "5"])
        .env("SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS", k.bootstrap())
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("FAILED   shop.transactions"), "{t}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_register_is_idempotent_and_refuses_incompatible_changes() {
    let reg = EmbeddedRegistry::start().await.unwrap();
    let run = |args: &[&str]| {
        shopstream()
            .args(["schemas", "register", "--registry", reg.url()])
            .args(args)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", text(&first));
    let again = run(&[]);
    assert_eq!(
        first.stdout, again.stdout,
        "re-registering must return the same ids"
    );
    assert!(text(&first).contains("shop.transactions-value"));

    // v2 of Transaction with a new required field (no default): not BACKWARD compatible.
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/avro")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let path = dir.path().join("transaction.avsc");
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "loyalty_tier", "type": "string"}));
    std::fs::write(&path, schema.to_string()).unwrap();
    let bad = run(&["--dir", dir.path().to_str().unwrap()]);
    let t = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{t}");
    assert!(t.contains("shop.transactions-value"), "{t}");
    assert!(t.to_lowercase().contains("incompatible"), "{t}");
}

#[test]
fn bad_config_value_is_one_line_naming_the_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[processing]\ncommit_interval_ms = \"soon\"\n").unwrap();
    let o = shopstream()
        .args(["--config", path.to_str().unwrap(), "topics", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("processing.commit_interval_ms"), "{err}");

    let o = shopstream()
        .args(["topics", "list"])
        .env("SHOPSTREAM_PROCESSING__GUARANTEE", "maybe-once")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("guarantee"));
}

#[test]
fn run_takes_the_guarantee_from_the_command_line() {
    let o = shopstream()
        .args(["run", "--guarantee", "maybe-once"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exactly-once") && err.contains("at-least-once"),
        "{err}"
    );
    let help = shopstream().args(["run", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--guarantee"));
}
