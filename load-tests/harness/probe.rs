//! What the pipeline process observes about itself while the harness measures it: a
//! `metrics` recorder that keeps the pipeline's own end-to-end latency histogram (Kafka
//! produce timestamp to the commit that made the record's outputs visible, recorded by
//! stage 1 at every commit), the transaction commit times and the sink's batch times in
//! HDR histograms, so quantiles are exact to 3 significant digits instead of Prometheus
//! buckets; the engine's state-size gauges (keys per store); and a sampler of the
//! process's resident memory (VmRSS every 250 ms, VmHWM at the end) from
//! /proc/self/status, which also reads the state sizes at the end of the first quarter
//! of the run and at its end (what grows when memory grows).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram as Hdr;
use metrics::{
    Counter, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use shopstream::runtime::telemetry::{E2E_LATENCY, SINK_BATCH, STATE_KEYS, TXN_COMMIT};

/// One histogram in microseconds; values arrive in seconds.
#[derive(Default)]
pub struct Micros {
    hdr: Mutex<Option<Hdr<u64>>>,
    /// Samples are dropped until this is set (the warm-up of a latency run).
    pub enabled: AtomicBool,
    sum_us: Mutex<f64>,
}

impl HistogramFn for Micros {
    fn record(&self, seconds: f64) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let us = (seconds * 1e6).max(1.0);
        *self.sum_us.lock().unwrap() += us;
        let mut h = self.hdr.lock().unwrap();
        let h = h.get_or_insert_with(|| Hdr::new_with_bounds(1, 3_600_000_000, 3).unwrap());
        h.saturating_record(us as u64);
    }
}

impl Micros {
    /// Samples recorded so far.
    pub fn count(&self) -> u64 {
        self.hdr.lock().unwrap().as_ref().map_or(0, |h| h.len())
    }

    /// The quantile `q` in milliseconds (0 without samples).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let h = self.hdr.lock().unwrap();
        h.as_ref()
            .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
    }

    /// The sum of all samples in seconds.
    pub fn sum_seconds(&self) -> f64 {
        *self.sum_us.lock().unwrap() / 1e6
    }
}

/// The last value of one gauge (an f64's bits).
#[derive(Default)]
pub struct LastValue(AtomicU64);

impl GaugeFn for LastValue {
    fn increment(&self, v: f64) {
        self.set(self.get() + v);
    }
    fn decrement(&self, v: f64) {
        self.set(self.get() - v);
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

impl LastValue {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The state-size gauges (`shopstream_state_keys`), by their `store` label.
#[derive(Clone, Default)]
pub struct States(Arc<Mutex<BTreeMap<String, Arc<LastValue>>>>);

impl States {
    /// Every store's current size.
    pub fn snapshot(&self) -> BTreeMap<String, f64> {
        let m = self.0.lock().unwrap();
        m.iter().map(|(k, v)| (k.clone(), v.get())).collect()
    }
}

/// Keeps the three histograms and the state sizes the harness reads; every other metric
/// is discarded.
#[derive(Clone, Default)]
pub struct Probe {
    pub latency: Arc<Micros>,
    pub commit: Arc<Micros>,
    pub sink_batch: Arc<Micros>,
    pub states: States,
}

impl Probe {
    /// Installs the probe as the process's metrics recorder.
    pub fn install() -> Probe {
        let probe = Probe::default();
        probe.sink_batch.enabled.store(true, Ordering::Relaxed);
        metrics::set_global_recorder(probe.clone()).expect("no other recorder");
        probe
    }
}

impl Recorder for Probe {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let store = key.labels().find(|l| l.key() == "store");
        match (key.name(), store) {
            (STATE_KEYS, Some(store)) => {
                let mut m = self.states.0.lock().unwrap();
                Gauge::from_arc(m.entry(store.value().to_string()).or_default().clone())
            }
            _ => Gauge::noop(),
        }
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match key.name() {
            E2E_LATENCY => Histogram::from_arc(self.latency.clone()),
            TXN_COMMIT => Histogram::from_arc(self.commit.clone()),
            SINK_BATCH => Histogram::from_arc(self.sink_batch.clone()),
            _ => Histogram::noop(),
        }
    }
}

/// Resident memory of this process over a run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// VmHWM at the end (kB).
    pub peak_kb: u64,
    /// Mean VmRSS over the first, the third and the last quarter of the samples (kB).
    pub first_quarter_kb: u64,
    #[serde(default)]
    pub third_quarter_kb: u64,
    pub last_quarter_kb: u64,
    /// Samples taken (one every 250 ms).
    #[serde(default)]
    pub samples: u64,
    /// State sizes (keys per store) at the end of the first and the third quarter and at
    /// the end.
    #[serde(default)]
    pub states_first_quarter: BTreeMap<String, f64>,
    #[serde(default)]
    pub states_third_quarter: BTreeMap<String, f64>,
    #[serde(default)]
    pub states_end: BTreeMap<String, f64>,
}

/// Samples VmRSS every 250 ms on its own thread until [`RssSampler::finish`], with the
/// state sizes at each sample.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(u64, BTreeMap<String, f64>)>>,
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

impl RssSampler {
    pub fn start(states: States) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                samples.push((status_kb("VmRSS:"), states.snapshot()));
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        });
        RssSampler { stop, thread }
    }

    pub fn finish(self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        let rss: Vec<u64> = samples.iter().map(|s| s.0).collect();
        let q = (rss.len() / 4).max(1);
        let mean = |s: &[u64]| s.iter().sum::<u64>() / s.len().max(1) as u64;
        let states_at = |i: usize| samples.get(i).map(|s| s.1.clone()).unwrap_or_default();
        Memory {
            peak_kb: status_kb("VmHWM:"),
            first_quarter_kb: mean(&rss[..q.min(rss.len())]),
            third_quarter_kb: mean(&rss[(2 * q).min(rss.len())..(3 * q).min(rss.len())]),
            last_quarter_kb: mean(&rss[rss.len().saturating_sub(q)..]),
            samples: rss.len() as u64,
            states_first_quarter: states_at(q.saturating_sub(1)),
            states_third_quarter: states_at((3 * q).saturating_sub(1)),
            states_end: states_at(rss.len().saturating_sub(1)),
        }
    }
}
