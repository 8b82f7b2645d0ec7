//! A criterion-free timing of the Avro decode paths, to back the choice of serde_avro_fast
//! for the hot path. Ignored by default; run optimized:
//! `cargo test --release --test codec_timing -- --ignored --nocapture`.
//! Last run (contended 2-core VM): Direct 2.3–2.9 µs, IgnoredAny parse 1.0 µs, apache-avro
//! `Value` 6.3–6.7 µs, Resolve 20–28 µs, serde_json 4.2–5.5 µs, encode 1.3–1.9 µs.

mod codec_fixtures;

use std::hint::black_box;
use std::time::Instant;

use apache_avro::reader::datum::GenericDatumReader;
use codec_fixtures as fx;
use shopstream::codec::avro::encode_datum_into;
use shopstream::codec::plan::{Plan, WriterSchema};
use shopstream::codec::{AvroRecord, JsonCodec};
use shopstream::model::Transaction;

const N: u32 = 200_000;

fn time(label: &str, mut f: impl FnMut()) -> f64 {
    for _ in 0..N / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..N {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / N as f64;
    println!("{label:<58} {ns:>8.0} ns/record");
    ns
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn avro_decode_paths() {
    let reader = Transaction::reader_schema();
    let tx = fx::transaction();
    let mut datum = Vec::new();
    encode_datum_into(&tx, &mut datum).unwrap();
    println!(
        "Transaction with 2 items, {} bytes of Avro datum",
        datum.len()
    );

    let same = WriterSchema::parse(1, reader.json).unwrap();
    let direct = Plan::choose(&same, reader).unwrap();
    assert!(matches!(direct, Plan::Direct));
    let fast = time("serde_avro_fast -> Transaction (Plan::Direct)", || {
        black_box(
            direct
                .decode::<Transaction>(&same, reader, black_box(&datum))
                .unwrap(),
        );
    });

    time("serde_avro_fast -> IgnoredAny (parse only)", || {
        black_box(
            shopstream::codec::plan::read_fast::<serde::de::IgnoredAny>(
                black_box(&datum),
                &reader.fast,
            )
            .unwrap(),
        );
    });
    let generic = GenericDatumReader::builder(&reader.avro).build().unwrap();
    let apache = time(
        "apache-avro -> Value, writer schema only (the converter)",
        || {
            black_box(generic.read_value(&mut black_box(&datum[..])).unwrap());
        },
    );
    time("  same, building the GenericDatumReader per record", || {
        let r = GenericDatumReader::builder(&reader.avro).build().unwrap();
        black_box(r.read_value(&mut black_box(&datum[..])).unwrap());
    });

    // A writer that is one version behind with a non-null default: needs resolution.
    let mut older: serde_json::Value = serde_json::from_str(reader.json).unwrap();
    older["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "channel");
    let mut with_default: serde_json::Value = serde_json::from_str(reader.json).unwrap();
    for f in with_default["fields"].as_array_mut().unwrap() {
        if f["name"] == "channel" {
            f["default"] = "web".into();
        }
    }
    let older = WriterSchema::parse(2, &older.to_string()).unwrap();
    let reader2: &'static _ = Box::leak(Box::new(shopstream::codec::ReaderSchema::parse(
        "transaction_default.avsc",
        Box::leak(with_default.to_string().into_boxed_str()),
    )));
    let resolve = Plan::choose(&older, reader2).unwrap();
    assert!(matches!(resolve, Plan::Resolve { .. }));
    let mut old_datum = Vec::new();
    {
        let mut config = serde_avro_fast::ser::SerializerConfig::new(&older.fast);
        let mut v = serde_json::to_value(&tx).unwrap();
        v.as_object_mut().unwrap().remove("channel");
        // serde_json's decimal strings and millis map onto the writer schema directly.
        old_datum = serde_avro_fast::to_datum(&v, old_datum, &mut config).unwrap();
    }
    let resolved = time(
        "apache-avro resolve + serde_avro_fast (Plan::Resolve)",
        || {
            black_box(
                resolve
                    .decode::<Transaction>(&older, reader2, black_box(&old_datum))
                    .unwrap(),
            );
        },
    );

    let json = JsonCodec::default();
    let text = json.encode(&tx).unwrap();
    time("serde_json -> Transaction (for reference)", || {
        black_box(json.decode::<Transaction>(black_box(&text)).unwrap());
    });
    let mut out = Vec::with_capacity(512);
    time("serde_avro_fast encode Transaction", || {
        out.clear();
        encode_datum_into(black_box(&tx), &mut out).unwrap();
    });
    println!(
        "apache-avro Value decode is {:.1}x and the resolve path {:.1}x the direct path",
        apache / fast,
        resolved / fast
    );
}
