//! The generated shop: reproducibility under a seed, and whether the records look like a
//! real shop (amounts, keys, funnels, customers, statuses, currencies, seasonality).

mod generator_common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use generator_common::*;
use shopstream::generator::{
    encoder_for, run_with, write_files, Emitted, Format, Generator, Outputs, Payload, TopicKind,
};
use shopstream::model::{EventType, Transaction, TxStatus, UserEvent};

fn stream() -> &'static [Emitted] {
    static S: OnceLock<Vec<Emitted>> = OnceLock::new();
    S.get_or_init(|| collect(&config(11, 40_000)))
}

fn clean_txs() -> impl Iterator<Item = &'static Transaction> {
    stream()
        .iter()
        .filter(|e| e.truth.is_none())
        .filter_map(|e| match &e.record.payload {
            Payload::Transaction(tx) => Some(tx),
            _ => None,
        })
}

fn clean_events() -> impl Iterator<Item = &'static UserEvent> {
    stream()
        .iter()
        .filter(|e| e.truth.is_none())
        .filter_map(|e| match &e.record.payload {
            Payload::Event(ev) => Some(ev),
            _ => None,
        })
}

fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn files_of(seed: u64, start: i64, rate: f64) -> BTreeMap<String, Vec<u8>> {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(seed, 6_000);
    cfg.shop.start = start;
    let outputs = Outputs {
        out_dir: Some(tmp.path().join("out")),
        truth: Some(tmp.path().join("out/truth.jsonl")),
        rate,
        ..Outputs::default()
    };
    let summary = run_with(
        &cfg,
        encoder_for(Format::Json).unwrap(),
        &outputs,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(summary.inputs, 6_000);
    dir_bytes(&tmp.path().join("out"))
}

#[test]
fn same_seed_gives_identical_bytes_and_truth() {
    let a = files_of(7, START, 0.0);
    let b = files_of(7, START, 0.0);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        [
            "shop.events.jsonl",
            "shop.products.jsonl",
            "shop.transactions.jsonl",
            "truth.jsonl"
        ]
    );
    assert!(a.values().all(|v| !v.is_empty()));
    assert!(a == b, "same seed, different output");
    let other_seed = files_of(8, START, 0.0);
    let other_start = files_of(7, START + 1000, 0.0);
    for k in a.keys() {
        assert_ne!(a[k], other_seed[k], "{k} did not change with the seed");
        if k != "shop.products.jsonl" {
            assert_ne!(a[k], other_start[k], "{k} did not change with the start");
        }
    }
}

#[test]
fn output_does_not_depend_on_the_sending_rate() {
    let fast = files_of(9, START, 0.0);
    let paced = files_of(9, START, 40_000.0);
    assert!(fast == paced, "--rate changed the stream");
}

#[test]
fn write_files_exports_jsonl_envelopes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(3, 2_000);
    let s = write_files(
        &cfg,
        tmp.path().join("input"),
        Some(tmp.path().join("input/truth.jsonl")),
    )
    .unwrap();
    let text = fs::read_to_string(tmp.path().join("input/shop.transactions.jsonl")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["key"].is_string() && v["seq"].is_u64() && v["timestamp"].is_i64());
        assert!(
            v.get("value").is_some() || v["value_b64"].is_string(),
            "{line}"
        );
        n += 1;
    }
    assert_eq!(n, s.per_topic["shop.transactions"]);
    let truth = fs::read_to_string(tmp.path().join("input/truth.jsonl")).unwrap();
    assert_eq!(truth.lines().count() as u64, s.truth_lines);
}

#[test]
fn amounts_equal_their_items_and_statuses_and_currencies_are_realistic() {
    let mut status: HashMap<TxStatus, usize> = HashMap::new();
    let mut currency: HashMap<String, usize> = HashMap::new();
    let mut n = 0;
    for tx in clean_txs() {
        n += 1;
        assert_eq!(tx.amount, items_total(tx), "{tx:?}");
        assert_eq!(tx.amount.scale(), 2);
        assert!(
            !tx.items.is_empty()
                && tx
                    .items
                    .iter()
                    .all(|i| i.quantity > 0 && i.discount >= 0.into())
        );
        assert_eq!(tx_problem(tx), None, "{tx:?}");
        *status.entry(tx.status).or_default() += 1;
        *currency.entry(tx.currency.clone()).or_default() += 1;
    }
    assert!(n > 500, "only {n} transactions");
    let share = |s| status.get(&s).copied().unwrap_or(0) as f64 / n as f64;
    assert!(share(TxStatus::Completed) > 0.8, "{status:?}");
    for s in [TxStatus::Failed, TxStatus::Pending, TxStatus::Refunded] {
        assert!(share(s) > 0.0 && share(s) < 0.1, "{status:?}");
    }
    assert!(currency["USD"] * 2 > n, "{currency:?}");
    assert!(currency["EUR"] > 0 && currency["GBP"] > 0, "{currency:?}");
}

#[test]
fn records_are_keyed_by_customer_and_the_catalog_comes_first() {
    let s = stream();
    let products: Vec<_> = s
        .iter()
        .take_while(|e| e.record.topic == TopicKind::Products)
        .collect();
    assert_eq!(products.len(), 303, "300 products and 3 gift cards first");
    let ids: HashSet<_> = products.iter().map(|e| e.record.key.clone()).collect();
    assert_eq!(ids.len(), products.len());
    for (i, e) in s.iter().enumerate() {
        assert_eq!(e.record.seq, i as u64);
        match &e.record.payload {
            Payload::Transaction(tx) => assert_eq!(e.record.key, tx.customer_id),
            Payload::Event(ev) => assert_eq!(e.record.key, ev.customer_id),
            Payload::Product(p) => {
                assert_eq!(e.record.key, p.product_id);
                assert!(p.reorder_point.is_some() || p.category == "gift_cards");
            }
            Payload::Raw(_) => assert!(e.truth.is_some(), "raw bytes are always labelled"),
        }
    }
    let updates = s
        .iter()
        .skip(products.len())
        .filter(|e| e.record.topic == TopicKind::Products)
        .count();
    assert!(updates > 0, "low-stock updates are published");
}

#[test]
fn sessions_follow_the_funnel() {
    let mut sessions: HashMap<&str, Vec<&UserEvent>> = HashMap::new();
    for ev in clean_events() {
        sessions.entry(&ev.session_id).or_default().push(ev);
    }
    // Sessions with a successful payment, faulted transactions included.
    let paid: HashSet<&str> = stream()
        .iter()
        .filter_map(|e| match &e.record.payload {
            Payload::Transaction(tx) if tx.status != TxStatus::Failed => {
                Some(tx.session_id.as_str())
            }
            _ => None,
        })
        .collect();
    let (mut purchases, mut unpaid) = (0, 0);
    for (id, evs) in &sessions {
        assert!(evs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(evs.iter().all(|e| e.customer_id == evs[0].customer_id));
        let pos = |t: EventType| evs.iter().position(|e| e.event_type == t);
        if let Some(buy) = pos(EventType::Purchase) {
            purchases += 1;
            if let Some(checkout) = pos(EventType::CheckoutStart) {
                assert!(checkout < buy);
            }
            // In sessions under way at the start, the payment may precede the stream.
            if evs[buy].timestamp > START + 5_000 {
                unpaid += usize::from(!paid.contains(id));
            }
        }
        for e in evs.iter().filter(|e| {
            matches!(
                e.event_type,
                EventType::AddToCart | EventType::RemoveFromCart
            )
        }) {
            assert!(e.product_id.is_some());
        }
    }
    // Undecodable payments are the only exception.
    assert!(
        unpaid * 200 < purchases,
        "{unpaid} of {purchases} purchases without a payment"
    );
    let views = clean_events()
        .filter(|e| e.event_type == EventType::PageView)
        .count();
    let carts = clean_events()
        .filter(|e| e.event_type == EventType::AddToCart)
        .count();
    let checkouts = clean_events()
        .filter(|e| e.event_type == EventType::CheckoutStart)
        .count();
    assert!(
        views > 4 * carts && carts > checkouts && checkouts > purchases && purchases > 100,
        "{views} {carts} {checkouts} {purchases}"
    );
}

#[test]
fn customers_look_real() {
    let mut devices: HashMap<&str, HashSet<&str>> = HashMap::new();
    for tx in clean_txs() {
        let id = &tx.customer_id;
        assert_eq!(id.len(), 36);
        assert!(id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert!(
            (-90.0..=90.0).contains(&tx.location.lat)
                && (-180.0..=180.0).contains(&tx.location.lon)
        );
        assert!(tx.ip_address.parse::<std::net::Ipv4Addr>().is_ok());
        assert!(email_ok(tx.email.as_deref().unwrap()));
        devices
            .entry(id)
            .or_default()
            .insert(&tx.device.fingerprint);
    }
    let repeat = devices.values().filter(|d| d.len() > 1).count();
    assert!(repeat > 0, "some customers use more than one device");
}

/// Event time covered by `n` input records starting at `start`.
fn span_ms(start: &str, n: u64) -> i64 {
    let mut cfg = config(5, n);
    cfg.shop.start = shopstream::model::time::parse_rfc3339(start).unwrap();
    let mut g = Generator::new(&cfg);
    g.by_ref().for_each(drop);
    g.stream_max().unwrap() - cfg.shop.start
}

#[test]
fn event_time_follows_the_event_rate_and_the_seasons() {
    // Monday 2024-03-04 10:00 shop time (UTC-5): intensity about 1.05 x 0.95.
    let normal = span_ms("2024-03-04T15:00:00Z", 10_000);
    let expected = 10_000.0 / 1000.0 / (1.05 / 0.924 * 0.95 / 1.004) * 1000.0;
    assert!(
        (normal as f64 - expected).abs() < 0.2 * expected,
        "{normal} ms vs {expected}"
    );
    let friday = span_ms("2024-11-22T20:00:00Z", 10_000);
    let black_friday = span_ms("2024-11-29T20:00:00Z", 10_000);
    assert!(
        (black_friday as f64) < 0.45 * friday as f64,
        "{black_friday} vs {friday}"
    );
    let night = span_ms("2024-03-05T09:00:00Z", 5_000);
    let evening = span_ms("2024-03-05T01:00:00Z", 5_000);
    assert!(night > 5 * evening, "night {night} vs evening {evening}");
}
