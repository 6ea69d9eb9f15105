//! Server-side latency of the web pages: from a complete request head to
//! the response written. Kept two ways — as Prometheus histograms on the
//! peer's operations endpoint (`qcss_peer_web_request_seconds` for every
//! request, `qcss_peer_web_verify_seconds` for the verify page) and as the
//! last samples in memory, so a benchmark can read exact percentiles.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use qcss_network::ops::{Histogram, Registry};

/// Samples kept per kind.
const KEEP: usize = 200_000;

/// Fine buckets: the verify page's target is tens of milliseconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// What a request was, for timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// The verify page (`/01/...`).
    Verify,
    /// Anything else.
    Other,
}

/// Latency samples and histograms.
#[derive(Debug)]
pub struct Timings {
    verify: Mutex<VecDeque<Duration>>,
    other: Mutex<VecDeque<Duration>>,
    all_hist: Option<Histogram>,
    verify_hist: Option<Histogram>,
}

impl Timings {
    /// Registers the histograms in `registry` (if given).
    pub(crate) fn new(registry: Option<&Registry>) -> Self {
        let hist = |name, help| registry.and_then(|r| r.histogram(name, help, BUCKETS).ok());
        Timings {
            verify: Mutex::new(VecDeque::new()),
            other: Mutex::new(VecDeque::new()),
            all_hist: hist(
                "qcss_peer_web_request_seconds",
                "Web requests, head read to response written",
            ),
            verify_hist: hist(
                "qcss_peer_web_verify_seconds",
                "Verify page requests, head read to response written",
            ),
        }
    }

    pub(crate) fn record(&self, kind: RequestKind, d: Duration) {
        if let Some(h) = &self.all_hist {
            h.observe(d.as_secs_f64());
        }
        let q = match kind {
            RequestKind::Verify => {
                if let Some(h) = &self.verify_hist {
                    h.observe(d.as_secs_f64());
                }
                &self.verify
            }
            RequestKind::Other => &self.other,
        };
        let mut q = q.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(d);
    }

    /// The samples of `kind` recorded so far (the last 200 000).
    pub fn samples(&self, kind: RequestKind) -> Vec<Duration> {
        let q = match kind {
            RequestKind::Verify => &self.verify,
            RequestKind::Other => &self.other,
        };
        q.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Forgets the samples (not the histograms).
    pub fn clear(&self) {
        for q in [&self.verify, &self.other] {
            q.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }
}

/// The `q` quantile (0..=1) of `samples`, nearest rank; zero if empty.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&s, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&s, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&s, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.99), Duration::ZERO);
    }
}
