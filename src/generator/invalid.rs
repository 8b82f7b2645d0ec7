//! Turning a good record into an invalid one of a given kind. Semantic faults keep the
//! record typed and break one rule: a negative unit price (the amount still matches the
//! items), a malformed email, a malformed or unknown currency code, an amount that does not
//! match its items. Structural faults become raw bytes: the record's JSON with one required
//! field removed, or bytes no decoder accepts (truncated JSON, binary garbage, or a
//! Confluent-style frame with a bogus schema id).

use rand::seq::SliceRandom;
use rand::Rng;

use super::ids::money;
use super::orders;
use super::record::{InvalidKind, Payload, TopicKind};

const TX_KINDS: &[InvalidKind] = &[
    InvalidKind::NegativePrice,
    InvalidKind::BadEmail,
    InvalidKind::BadCurrency,
    InvalidKind::AmountMismatch,
    InvalidKind::MissingField,
    InvalidKind::Undecodable,
];
const EVENT_KINDS: &[InvalidKind] = &[InvalidKind::MissingField, InvalidKind::Undecodable];

const TX_REQUIRED: &[&str] = &[
    "transaction_id",
    "customer_id",
    "timestamp",
    "status",
    "currency",
    "amount",
    "items",
];
const EVENT_REQUIRED: &[&str] = &[
    "event_id",
    "customer_id",
    "session_id",
    "event_type",
    "timestamp",
];

const BAD_EMAILS: &[&str] = &[
    "jane.doe.example.com",
    "john@",
    "@example.com",
    "not an email",
    "bob@@example.com",
    "alice@example",
];
const BAD_CURRENCIES: &[&str] = &["usd", "US$", "EURO", "€", "12", "ZZZ", ""];

/// The invalid kinds that apply to records of `topic`.
pub fn kinds_for(topic: TopicKind) -> &'static [InvalidKind] {
    match topic {
        TopicKind::Transactions => TX_KINDS,
        TopicKind::Events => EVENT_KINDS,
        TopicKind::Products => &[],
    }
}

/// An invalid record and, for a missing field, which field was removed.
pub struct Corrupted {
    pub payload: Payload,
    pub field: Option<&'static str>,
}

/// Makes `payload` invalid in the way `kind` says.
pub fn corrupt(rng: &mut impl Rng, payload: Payload, kind: InvalidKind) -> Corrupted {
    let typed = |payload| Corrupted {
        payload,
        field: None,
    };
    match (kind, payload) {
        (InvalidKind::MissingField, p) => missing_field(rng, &p),
        (InvalidKind::Undecodable, p) => typed(Payload::Raw(undecodable(rng, &p))),
        (InvalidKind::NegativePrice, Payload::Transaction(mut tx)) => {
            let i = rng.gen_range(0..tx.items.len());
            tx.items[i].unit_price = -tx.items[i].unit_price;
            tx.amount = orders::amount(&tx.items);
            typed(Payload::Transaction(tx))
        }
        (InvalidKind::BadEmail, Payload::Transaction(mut tx)) => {
            tx.email = Some(BAD_EMAILS.choose(rng).expect("emails").to_string());
            typed(Payload::Transaction(tx))
        }
        (InvalidKind::BadCurrency, Payload::Transaction(mut tx)) => {
            tx.currency = BAD_CURRENCIES.choose(rng).expect("currencies").to_string();
            typed(Payload::Transaction(tx))
        }
        (InvalidKind::AmountMismatch, Payload::Transaction(mut tx)) => {
            let delta = money(rng.gen_range(5..5_000));
            if rng.gen_bool(0.5) && tx.amount > delta {
                tx.amount -= delta;
            } else {
                tx.amount += delta;
            }
            typed(Payload::Transaction(tx))
        }
        (_, p) => typed(p),
    }
}

fn to_json(p: &Payload) -> serde_json::Value {
    let v = match p {
        Payload::Transaction(tx) => serde_json::to_value(tx),
        Payload::Event(e) => serde_json::to_value(e),
        Payload::Product(pr) => serde_json::to_value(pr),
        Payload::Raw(_) => return serde_json::Value::Null,
    };
    v.expect("model types serialize")
}

fn missing_field(rng: &mut impl Rng, p: &Payload) -> Corrupted {
    let fields = match p {
        Payload::Transaction(_) => TX_REQUIRED,
        _ => EVENT_REQUIRED,
    };
    let field = *fields.choose(rng).expect("fields");
    let mut v = to_json(p);
    if let Some(obj) = v.as_object_mut() {
        obj.remove(field);
    }
    Corrupted {
        payload: Payload::Raw(serde_json::to_vec(&v).expect("json")),
        field: Some(field),
    }
}

fn undecodable(rng: &mut impl Rng, p: &Payload) -> Vec<u8> {
    match rng.gen_range(0..3) {
        0 => {
            let json = serde_json::to_vec(&to_json(p)).expect("json");
            let cut = rng.gen_range(1..json.len().max(2));
            json[..cut].to_vec()
        }
        1 => {
            let mut b = vec![0xff, 0xfe];
            b.extend((0..rng.gen_range(6..60)).map(|_| rng.gen::<u8>()));
            b
        }
        _ => {
            let mut b = vec![0x00, 0x7f, 0xff, 0xff, 0xff];
            b.extend((0..rng.gen_range(4..40)).map(|_| rng.gen::<u8>()));
            b
        }
    }
}
