//! The operations endpoint every QCSS node (CA, orderer, peer) exposes:
//! `GET /healthz`, `GET /metrics` and `GET /version`, in the shape of
//! Fabric's operations service.
//!
//! Two halves. [`Registry`] is a small metrics registry (counters, gauges,
//! histograms, optionally labelled) rendered as Prometheus text exposition
//! format 0.0.4; updates are atomics, so instrumenting a hot path costs no
//! lock. [`serve`] answers HTTP on a bound listener until a shutdown future
//! resolves, reading liveness from an [`Ops`] health check.
//!
//! What it deliberately is not: a general HTTP server. It speaks only
//! HTTP/1.1 (and 1.0) `GET`, reads a request head of at most 8 KiB within
//! 2 s, ignores request headers and bodies, and closes the connection after
//! every response. It serves **plain HTTP, without TLS or authentication**:
//! bind it to localhost or a management network, never to the consortium
//! port. Nothing here is reachable from the gRPC services.
//!
//! Start at [`Registry::counter`] and [`serve`].

mod cert_expiry;
mod health;
mod http;
mod metrics;

pub use cert_expiry::{CertExpiry, DEFAULT_CERT_WARN_DAYS, watch_cert_expiry};
pub use health::{ComponentCheck, Health};
pub use http::{
    HeadError, HeadParts, MAX_HEAD, Ops, drain, read_head, reason_phrase, serve, split_head,
};
pub use metrics::{
    Counter, CounterVec, DEFAULT_BUCKETS, FloatCounter, Gauge, GaugeVec, Histogram, HistogramTimer,
    MetricsError, Registry,
};
