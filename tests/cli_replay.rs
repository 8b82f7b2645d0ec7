//! The CLI of `replay`, `replay diff` and `dlq redrive`: bad arguments exit 2 with a
//! one-line error before anything is contacted; `replay diff` on a throw-away PostgreSQL
//! exits 0 when the shadow schema equals live and 1 (naming the table and the row) when
//! a row differs, is missing or is extra; and the binary runs a replay and a dry-run
//! redrive end to end on the mock cluster.

mod support;

use support::db::{start_pg, Db};
use support::{output_text as text, shopstream};

/// The binary, configured for database `shop` of `pg`.
fn shopstream_on(pg: &support::EmbeddedPostgres) -> std::process::Command {
    let mut c = shopstream();
    c.env("SHOPSTREAM_POSTGRES__PORT", pg.port().to_string())
        .env("SHOPSTREAM_POSTGRES__HOST", "127.0.0.1")
        .env("SHOPSTREAM_POSTGRES__USER", "shop")
        .env("SHOPSTREAM_POSTGRES__DBNAME", "shop")
        .env("SHOPSTREAM_POSTGRES__SSLMODE", "disable");
    c
}

#[test]
fn bad_replay_arguments_exit_2() {
    for args in [
        vec!["replay"],
        vec!["replay", "--from", "yesterday"],
        vec![
            "replay",
            "--from",
            "2026-01-02T00:00:00Z",
            "--to",
            "2026-01-01T00:00:00Z",
        ],
        vec!["replay", "--from", "0", "--schema", "shadow; drop table x"],
        vec!["replay", "--from", "0", "--run", "Bad.Run"],
        vec!["replay", "--from", "0", "--target", "elsewhere"],
        vec!["replay", "diff", "--schema", "Shadow"],
        vec!["replay", "--from", "0", "--schema", "public"],
        vec!["dlq", "redrive", "--bogus"],
        vec!["dlq", "redrive", "--reason", "Future Timestamp"],
    ] {
        let o = shopstream().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_diff_exits_1_on_a_difference() {
    let pg = start_pg();
    let db = Db::connect(&pg).await;
    // The sink's migrations in both schemas, as a live run and a shadow replay leave them.
    for schema in ["public", "shadow"] {
        let conn =
            shopstream::sink::schema::with_search_path(&pg.connection_string("shop"), schema)
                .unwrap();
        db.client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .unwrap();
        shopstream::sink::consumer::connect(&conn).await.unwrap();
        db.client
            .batch_execute(&format!(
                "INSERT INTO {schema}.dq_rejects VALUES ('shop.events', 0, 7, 'r', 'x', 'd', '\\x00', NULL)"
            ))
            .await
            .unwrap();
    }
    let diff = || {
        shopstream_on(&pg)
            .args(["replay", "diff"])
            .output()
            .unwrap()
    };
    let o = diff();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no differences"), "{}", text(&o));

    db.client
        .batch_execute(
            "UPDATE shadow.dq_rejects SET detail = 'changed';
             INSERT INTO public.dq_rejects VALUES ('shop.events', 1, 1, 'r', 'x', 'd', '\\x00', NULL)",
        )
        .await
        .unwrap();
    let o = diff();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("only_live=1") && t.contains("differing=1"),
        "{t}"
    );
    assert!(t.contains("2 rows differ between public and shadow"), "{t}");
}

/// The binary end to end on the mock: a shadow replay of everything (offsets from the
/// record timestamps, topics made through the mock), then a dry-run DLQ redrive.
#[test]
fn replay_and_redrive_commands_run_on_the_mock() {
    use support::kafka::MockKafka;
    let k = MockKafka::with_topics(3);
    let defs =
        shopstream::runtime::topics::parse(shopstream::runtime::topics::BUILTIN, Some(3)).unwrap();
    for d in shopstream::runtime::topology::Topology::replay("c1")
        .unwrap()
        .own_topics(&defs)
    {
        k.cluster.create_topic(&d.name, d.partitions, 1).unwrap();
    }
    let pg = start_pg();
    let dir = tempfile::tempdir().unwrap();
    let args = support::db::generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", "400"),
            ("rate", "0"),
            ("seed", "5"),
            ("start", "2026-01-01T00:00:00Z"),
            ("customers", "50"),
            ("products", "20"),
        ],
    );
    shopstream::generator::run(&args, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    let run = |args: &[&str]| {
        shopstream_on(&pg)
            .args(args)
            .env("SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS", k.bootstrap())
            .output()
            .unwrap()
    };
    let o = run(&[
        "replay",
        "--from",
        "2025-12-31T00:00:00Z",
        "--run",
        "c1",
        "--time-index",
        "scan",
        "--no-create-topics",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("replay c1: 400 records consumed"), "{t}");
    assert!(t.contains("shop.transactions/0: offsets 0.."), "{t}");
    let o = run(&["dlq", "redrive", "--dry-run"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("read 0 DLQ records; would re-submit 0"), "{t}");
}
