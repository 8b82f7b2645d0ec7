//! Injected faults and fraud against their ground truth: rates within statistical
//! tolerance of the configuration, and every truth label borne out by the record itself.

mod generator_common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use generator_common::*;
use shopstream::generator::geo::{haversine_km, HIGH_RISK_COUNTRIES};
use shopstream::generator::{Emitted, FaultConfig, GeneratorConfig, TopicKind, TruthEntry};
use shopstream::model::{Transaction, TxStatus, UserEvent};

const N: u64 = 60_000;

fn cfg() -> GeneratorConfig {
    let mut c = config(21, N);
    c.faults = FaultConfig {
        duplicate_rate: 0.1,
        out_of_order_rate: 0.05,
        late_rate: 0.03,
        invalid_rate: 0.04,
        max_out_of_order_ms: 4_000,
        lateness_ms: 120_000,
        duplicate_max_delay_ms: 20_000,
        // Unknown products are checked end to end in pipeline_mock.
        unknown_product_rate: 0.0,
    };
    // Many fraud episodes, over half an hour of event time so most run their course.
    c.shop.fraud_rate = 0.2;
    c.shop.event_rate = 25.0;
    c
}

fn stream() -> &'static [Emitted] {
    static S: OnceLock<Vec<Emitted>> = OnceLock::new();
    S.get_or_init(|| collect(&cfg()))
}

fn inputs() -> impl Iterator<Item = &'static Emitted> {
    stream().iter().filter(|e| e.record.topic.is_input())
}

fn has(t: &Option<TruthEntry>, prefix: &str) -> bool {
    t.as_ref()
        .is_some_and(|t| t.labels.iter().any(|l| l.starts_with(prefix)))
}

fn count(prefix: &str) -> u64 {
    inputs().filter(|e| has(&e.truth, prefix)).count() as u64
}

/// |observed - n p| within 4 binomial standard deviations.
fn assert_rate(what: &str, observed: u64, n: u64, p: f64) {
    let mean = n as f64 * p;
    let tol = 4.0 * (n as f64 * p * (1.0 - p)).sqrt() + 1.0;
    assert!(
        (observed as f64 - mean).abs() <= tol,
        "{what}: {observed} of {n}, expected {mean:.0} ± {tol:.0}"
    );
}

enum Decoded {
    Tx(Transaction),
    Event(UserEvent),
    Bad,
}

fn decode(e: &Emitted) -> Decoded {
    let bytes = json(e);
    match e.record.topic {
        TopicKind::Transactions => serde_json::from_slice(&bytes).map_or(Decoded::Bad, Decoded::Tx),
        TopicKind::Events => serde_json::from_slice(&bytes).map_or(Decoded::Bad, Decoded::Event),
        TopicKind::Products => Decoded::Bad,
    }
}

#[test]
fn fault_rates_match_the_configuration() {
    let c = cfg().faults;
    assert_eq!(inputs().count() as u64, N);
    let dups = count("duplicate");
    let fraud = count("fraud:");
    // Per-record faults apply to every input record that is neither a duplicate nor fraud.
    let eligible = N - dups - fraud - legit_fraud_episode_txs();
    assert_rate("invalid", count("invalid:"), eligible, c.invalid_rate);
    assert_rate("late", count("late"), eligible, c.late_rate);
    assert_rate(
        "out_of_order",
        count("out_of_order"),
        eligible,
        c.out_of_order_rate,
    );
    // Duplicates: a share of the clean transactions.
    let clean_tx = inputs()
        .filter(|e| e.record.topic == TopicKind::Transactions && e.truth.is_none())
        .count() as u64
        - legit_fraud_episode_txs();
    assert_rate("duplicate", dups, clean_tx, c.duplicate_rate);
    // Fraud comes in episodes of up to 20 transactions: a looser bound.
    let txs = inputs()
        .filter(|e| e.record.topic == TopicKind::Transactions)
        .count() as u64
        - dups;
    let share = fraud as f64 / txs as f64;
    assert!(
        (0.1..0.3).contains(&share),
        "fraud share {share:.3} of {txs} for rate 0.2"
    );
    // Every invalid kind and fraud pattern occurs.
    let labels: HashSet<String> = inputs()
        .filter_map(|e| e.truth.as_ref())
        .flat_map(|t| t.labels.clone())
        .collect();
    for kind in [
        "negative_price",
        "bad_email",
        "bad_currency",
        "amount_mismatch",
        "missing_field",
        "undecodable",
    ] {
        assert!(
            labels.contains(&format!("invalid:{kind}")),
            "no invalid:{kind} in {labels:?}"
        );
    }
    for p in [
        "velocity_burst",
        "impossible_travel",
        "card_testing",
        "amount_outlier",
        "new_device",
        "high_risk_country",
    ] {
        assert!(
            labels.contains(&format!("fraud:{p}")),
            "no fraud:{p} in {labels:?}"
        );
    }
}

/// The unlabelled home purchases that open impossible-travel episodes (exempt from faults).
fn legit_fraud_episode_txs() -> u64 {
    inputs()
        .filter(|e| has(&e.truth, "fraud:impossible_travel"))
        .count() as u64
}

#[test]
fn duplicates_are_exact_resends_of_earlier_transactions() {
    let s = stream();
    let mut n = 0;
    for e in inputs().filter(|e| has(&e.truth, "duplicate")) {
        let t = e.truth.as_ref().unwrap();
        let orig = &s[t.original_seq.unwrap() as usize];
        assert!(orig.record.seq < e.record.seq);
        assert!(
            orig.truth.is_none(),
            "only clean transactions are duplicated"
        );
        assert_eq!(json(orig), json(e), "a duplicate re-sends the same bytes");
        assert_eq!(orig.record.key, e.record.key);
        let Decoded::Tx(tx) = decode(e) else {
            panic!("duplicate is not a transaction")
        };
        assert_eq!(
            t.transaction_id.as_deref(),
            Some(tx.transaction_id.as_str())
        );
        n += 1;
    }
    assert!(n > 50);
    // No transaction_id occurs twice except as a labelled duplicate.
    let mut seen = HashSet::new();
    for e in inputs().filter(|e| !has(&e.truth, "duplicate")) {
        if let Decoded::Tx(tx) = decode(e) {
            assert!(
                seen.insert(tx.transaction_id.clone()),
                "unlabelled repeat {}",
                tx.transaction_id
            );
        }
    }
}

#[test]
fn invalid_records_fail_simple_checks_and_the_rest_pass_them() {
    for e in inputs() {
        let label = e
            .truth
            .as_ref()
            .and_then(|t| t.labels.iter().find_map(|l| l.strip_prefix("invalid:")));
        let bytes = json(e);
        match (label, decode(e)) {
            (Some("undecodable"), d) => {
                assert!(matches!(d, Decoded::Bad));
                assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
            }
            (Some("missing_field"), d) => {
                assert!(matches!(d, Decoded::Bad), "decodes despite a missing field");
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let field = e.truth.as_ref().unwrap().field.as_deref().unwrap();
                assert!(v.get(field).is_none());
            }
            (Some(kind), Decoded::Tx(tx)) => assert_eq!(tx_problem(&tx), Some(kind), "{tx:?}"),
            (Some(kind), _) => panic!("{kind} on an undecodable or non-transaction record"),
            (None, Decoded::Tx(tx)) => assert_eq!(tx_problem(&tx), None, "{tx:?}"),
            (None, Decoded::Event(_)) => {}
            (None, Decoded::Bad) => panic!(
                "unlabelled record does not decode: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}

#[test]
fn late_and_out_of_order_records_are_behind_the_stream_and_the_rest_in_order() {
    let c = cfg().faults;
    let mut max: Option<i64> = None;
    let (mut late, mut ooo) = (0, 0);
    for e in inputs() {
        let ts = match decode(e) {
            Decoded::Tx(tx) => tx.timestamp,
            Decoded::Event(ev) => ev.timestamp,
            Decoded::Bad => e.truth.as_ref().unwrap().event_time,
        };
        if let Some(m) = max {
            let lag = m - ts;
            if has(&e.truth, "late") {
                late += 1;
                assert!(lag >= 2 * c.lateness_ms, "late record only {lag} ms behind");
            } else if has(&e.truth, "out_of_order") {
                ooo += 1;
                assert!(
                    lag > 0 && lag <= c.max_out_of_order_ms,
                    "out-of-order lag {lag}"
                );
            } else if !has(&e.truth, "duplicate") {
                assert!(
                    lag <= 0,
                    "unlabelled record {} is {lag} ms behind",
                    e.record.seq
                );
            }
            if let Some(t) = &e.truth {
                if let Some(l) = t.lag_ms {
                    assert_eq!(l, lag, "truth lag of {}", e.record.seq);
                }
            }
        }
        max = Some(max.map_or(ts, |m| m.max(ts)));
    }
    assert!(late > 100 && ooo > 100);
}

#[test]
fn fraud_patterns_have_their_shape() {
    let txs: Vec<(&Emitted, Transaction)> = inputs()
        .filter_map(|e| match decode(e) {
            Decoded::Tx(tx) => Some((e, tx)),
            _ => None,
        })
        .collect();
    let mut episodes: BTreeMap<u64, (String, Vec<&Transaction>)> = BTreeMap::new();
    for (e, tx) in &txs {
        if let Some(t) = e
            .truth
            .as_ref()
            .filter(|t| t.labels[0].starts_with("fraud:"))
        {
            let ep = episodes
                .entry(t.episode.unwrap())
                .or_insert_with(|| (t.labels[0].clone(), vec![]));
            assert_eq!(ep.0, t.labels[0], "one pattern per episode");
            ep.1.push(tx);
        }
    }
    let mut amounts: Vec<_> = txs
        .iter()
        .filter(|(e, _)| e.truth.is_none())
        .map(|(_, t)| t.amount)
        .collect();
    amounts.sort();
    let median = amounts[amounts.len() / 2];
    let known_devices: HashMap<&str, HashSet<&str>> = txs
        .iter()
        .filter(|(e, _)| e.truth.is_none())
        .fold(HashMap::new(), |mut m, (_, t)| {
            m.entry(t.customer_id.as_str())
                .or_default()
                .insert(t.device.fingerprint.as_str());
            m
        });
    let end = txs.iter().map(|(_, t)| t.timestamp).max().unwrap();
    let mut checked: HashMap<&str, usize> = HashMap::new();
    for (id, (label, list)) in &episodes {
        let first = list[0];
        if first.timestamp > end - 12 * 60_000 {
            continue; // may be cut short by the end of the stream
        }
        *checked.entry(label.as_str()).or_default() += 1;
        assert!(
            list.iter().all(|t| t.customer_id == first.customer_id),
            "episode {id}"
        );
        let span = list.last().unwrap().timestamp - first.timestamp;
        match label.as_str() {
            "fraud:velocity_burst" => assert!(
                list.len() >= 6 && span <= 20 * 60_000,
                "{id}: {} in {span} ms",
                list.len()
            ),
            "fraud:card_testing" => {
                assert!(list.len() >= 8 && span <= 15 * 60_000);
                assert!(list
                    .iter()
                    .all(|t| t.amount <= 5.into() && t.items[0].category == "gift_cards"));
                assert!(list.iter().any(|t| t.status == TxStatus::Failed));
            }
            "fraud:impossible_travel" => {
                let prev = txs
                    .iter()
                    .filter(|(_, t)| {
                        t.customer_id == first.customer_id && t.timestamp < first.timestamp
                    })
                    .max_by_key(|(_, t)| t.timestamp)
                    .map(|(_, t)| t)
                    .expect("a purchase before the impossible one");
                let km = haversine_km(
                    prev.location.lat,
                    prev.location.lon,
                    first.location.lat,
                    first.location.lon,
                );
                let hours = (first.timestamp - prev.timestamp) as f64 / 3.6e6;
                assert!(km / hours > 1_000.0, "{id}: {km:.0} km in {hours:.2} h");
            }
            "fraud:amount_outlier" => assert!(
                first.amount >= median * rust_decimal::Decimal::from(10),
                "{} vs median {median}",
                first.amount
            ),
            "fraud:new_device" => {
                let known = known_devices.get(first.customer_id.as_str());
                assert!(!known.is_some_and(|k| k.contains(first.device.fingerprint.as_str())));
            }
            "fraud:high_risk_country" => {
                assert!(HIGH_RISK_COUNTRIES.contains(&first.location.country.as_str()))
            }
            other => panic!("unknown pattern {other}"),
        }
    }
    assert_eq!(
        checked.len(),
        6,
        "episodes checked per pattern: {checked:?}"
    );
}

#[test]
fn labels_stay_out_of_the_records() {
    let tx_fields: HashSet<&str> = [
        "transaction_id",
        "customer_id",
        "session_id",
        "timestamp",
        "status",
        "currency",
        "amount",
        "payment_method",
        "items",
        "location",
        "device",
        "ip_address",
        "channel",
        "email",
    ]
    .into();
    let ev_fields: HashSet<&str> = [
        "event_id",
        "customer_id",
        "session_id",
        "event_type",
        "product_id",
        "timestamp",
        "page_url",
        "device",
        "referrer",
    ]
    .into();
    for e in inputs().filter(|e| !has(&e.truth, "invalid:")) {
        let v: serde_json::Value = serde_json::from_slice(&json(e)).unwrap();
        let allowed = if e.record.topic == TopicKind::Transactions {
            &tx_fields
        } else {
            &ev_fields
        };
        for k in v.as_object().unwrap().keys() {
            assert!(allowed.contains(k.as_str()), "unexpected field {k}");
        }
    }
}
