//! Fraud scoring quality on the generator's ground truth: generates the default shop
//! (default fraud mix and fault rates) for each seed, scores it in process with the
//! default rules (`fraud_rules.toml`) and prints precision, recall and F1 of the alerts,
//! recall per fraud pattern and false positives per top reason.
//!
//!     cargo run --release --example fraud_quality -- [--count N] [--seeds 1,2,3]
//!         [--rules FILE] [--csv FILE]
//!
//! `--csv` writes every scored transaction's features, score and label (for tuning).

use std::io::Write;

use anyhow::{bail, Context, Result};
use shopstream::engine::EngineConfig;
use shopstream::fraud::quality::evaluate;
use shopstream::fraud::FraudRules;
use shopstream::generator::GenerateArgs;

/// 2024-03-04 17:00 UTC, an ordinary Monday.
const START: i64 = 1_709_571_600_000;

fn main() -> Result<()> {
    let mut count = 1_000_000u64;
    let mut seeds = vec![1u64, 2, 3];
    let mut rules = FraudRules::default();
    let mut csv: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--count" => count = value()?.parse()?,
            "--seeds" => {
                seeds = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--rules" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path).context(path.clone())?;
                rules = FraudRules::from_toml(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            }
            "--csv" => csv = Some(std::io::BufWriter::new(std::fs::File::create(value()?)?)),
            _ => bail!("unknown argument {a}"),
        }
    }
    if let Some(w) = csv.as_mut() {
        writeln!(
            w,
            "seed,transaction_id,customer_id,status,amount,score,alert,label,reasons,{}",
            shopstream::fraud::Features::default()
                .snapshot()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        )?;
    }
    println!("threshold {} count {count}", rules.threshold);
    for seed in seeds {
        let mut gen = GenerateArgs::default().generator_config()?;
        gen.shop.seed = seed;
        gen.shop.start = START;
        gen.limit = Some(count);
        let engine = EngineConfig {
            fraud: rules.clone(),
            ..EngineConfig::default()
        };
        let t0 = std::time::Instant::now();
        let mut io_err = None;
        let rep = evaluate(&gen, engine, |t, v, label| {
            if let Some(w) = csv.as_mut() {
                let feats: Vec<String> = v
                    .features
                    .snapshot()
                    .values()
                    .map(|x| format!("{x:.3}"))
                    .collect();
                let r = writeln!(
                    w,
                    "{seed},{},{},{},{},{:.4},{},{},{},{}",
                    t.transaction_id,
                    t.customer_id,
                    t.status.as_str(),
                    t.amount,
                    v.score,
                    u8::from(v.alert),
                    label.unwrap_or(""),
                    v.reasons.join("|"),
                    feats.join(",")
                );
                if let Err(e) = r {
                    io_err.get_or_insert(e);
                }
            }
        })?;
        if let Some(e) = io_err {
            return Err(e.into());
        }
        println!(
            "seed {seed}: scored {} fraud {} alerts {} tp {} fp {} fn {} precision {:.4} recall {:.4} f1 {:.4} ({:.1} s)",
            rep.scored,
            rep.fraud,
            rep.alerts,
            rep.true_positives,
            rep.false_positives,
            rep.false_negatives,
            rep.precision(),
            rep.recall(),
            rep.f1(),
            t0.elapsed().as_secs_f64()
        );
        for (p, (caught, total)) in &rep.by_pattern {
            println!("  recall {p:<18} {caught:>5} / {total:<5}");
        }
        for (r, n) in &rep.false_by_reason {
            println!("  false positives by {r:<18} {n:>5}");
        }
    }
    Ok(())
}
