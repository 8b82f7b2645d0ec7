//! What the pipeline process observes about itself while the harness measures it: a
//! `metrics` recorder that keeps the pipeline's own end-to-end latency histogram (Kafka
//! produce timestamp to the commit that made the record's outputs visible, recorded by
//! stage 1 at every commit), the transaction commit times and the sink's batch times in
//! HDR histograms, so quantiles are exact to 3 significant digits instead of Prometheus
//! buckets; and a sampler of the process's resident memory (VmRSS every 250 ms, VmHWM at
//! the end) from /proc/self/status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram as Hdr;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use shopstream::runtime::telemetry::{E2E_LATENCY, SINK_BATCH, TXN_COMMIT};

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

/// Keeps the three histograms the harness reads; every other metric is discarded.
#[derive(Clone, Default)]
pub struct Probe {
    pub latency: Arc<Micros>,
    pub commit: Arc<Micros>,
    pub sink_batch: Arc<Micros>,
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
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
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
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// VmHWM at the end (kB).
    pub peak_kb: u64,
    /// Mean VmRSS over the first and the last quarter of the samples (kB).
    pub first_quarter_kb: u64,
    pub last_quarter_kb: u64,
}

/// Samples VmRSS every 250 ms on its own thread until [`RssSampler::finish`].
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
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
    pub fn start() -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                samples.push(status_kb("VmRSS:"));
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        });
        RssSampler { stop, thread }
    }

    pub fn finish(self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        let q = (samples.len() / 4).max(1);
        let mean = |s: &[u64]| s.iter().sum::<u64>() / s.len().max(1) as u64;
        Memory {
            peak_kb: status_kb("VmHWM:"),
            first_quarter_kb: mean(&samples[..q.min(samples.len())]),
            last_quarter_kb: mean(&samples[samples.len().saturating_sub(q)..]),
        }
    }
}
