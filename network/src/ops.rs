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

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::slots::{SlotLimits, Slots};

/// Prometheus' default histogram buckets, in seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Largest request head (request line and headers) the server reads.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client gets to send its whole request head: scrapers and
/// health probes send theirs at once; a slow head is a slowloris.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client gets to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After responding, how long (and how much) unread input is discarded so
/// that closing does not reset the connection before the client reads.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const DRAIN_LIMIT: usize = 64 * 1024;
/// Connections served at once; a further one evicts the oldest.
const MAX_CONNECTIONS: usize = 64;
/// Connections at once from one address.
const MAX_CONNECTIONS_PER_IP: usize = 16;
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------
// Metrics registry
// ---------------------------------------------------------------------------

/// Why a metric could not be registered or a labelled child looked up.
///
/// Every variant is a mistake in the calling code (the node's own
/// instrumentation), never something a remote party can cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {name:?}")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with the
    /// reserved `__`, or appears twice.
    #[error("metric {metric}: invalid label name {label:?}")]
    InvalidLabelName {
        /// The metric being registered.
        metric: String,
        /// The rejected label name.
        label: String,
    },
    /// Histogram bounds are not finite and strictly increasing.
    #[error("metric {metric}: invalid buckets: {reason}")]
    InvalidBuckets {
        /// The metric being registered.
        metric: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The name is already registered with another type, other label names
    /// or other buckets (or as a [`Registry::gauge_fn`], which cannot be
    /// shared).
    #[error("metric {name} is already registered as {existing}, not {requested}")]
    Conflict {
        /// The metric name.
        name: String,
        /// The registered metric's shape, e.g. `counter{channel,code}`.
        existing: String,
        /// The shape that was asked for.
        requested: String,
    },
    /// The name's `_total` suffix contradicts the type: Prometheus (and
    /// `promtool check metrics`) reserve it for counters, and counters must
    /// carry it.
    #[error("metric {name}: {reason}")]
    TypeSuffix {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A labelled lookup gave the wrong number of label values.
    #[error("metric {metric}: expected {expected} label values, got {got}")]
    LabelCount {
        /// The metric being looked up.
        metric: String,
        /// How many label names the metric has.
        expected: usize,
        /// How many values were given.
        got: usize,
    },
}

/// A set of named metrics that renders as Prometheus text.
///
/// Cloning is cheap and every clone shares the same metrics, so one registry
/// is created per node and handed to each component. Registering a name that
/// already exists with the same type and shape returns the existing metric
/// (the first help text wins); any other reuse of a name is
/// [`MetricsError::Conflict`].
#[derive(Clone, Default)]
pub struct Registry {
    families: Arc<RwLock<BTreeMap<String, Family>>>,
}

/// One registered name: its help text and its metric.
#[derive(Clone)]
struct Family {
    help: String,
    metric: Metric,
}

/// A gauge computed at scrape time.
type GaugeFn = Arc<dyn Fn() -> f64 + Send + Sync>;

/// A labelled gauge computed at scrape time: label names and the function
/// giving every child's label values and value.
#[derive(Clone)]
struct GaugeVecFn {
    label_names: Vec<String>,
    f: Arc<dyn Fn() -> Vec<(Vec<String>, f64)> + Send + Sync>,
}

#[derive(Clone)]
enum Metric {
    Counter(Counter),
    FloatCounter(FloatCounter),
    CounterVec(CounterVec),
    Gauge(Gauge),
    GaugeVec(GaugeVec),
    GaugeFn(GaugeFn),
    GaugeVecFn(GaugeVecFn),
    Histogram(Histogram),
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or returns the existing) unlabelled counter `name`.
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, MetricsError> {
        self.register(
            name,
            help,
            Metric::Counter(Counter::default()),
            |m| match m {
                Metric::Counter(c) => Some(c.clone()),
                _ => None,
            },
        )
    }

    /// Registers (or returns the existing) unlabelled counter `name` that
    /// counts a non-integral amount, such as seconds spent in some work
    /// (rendered as a Prometheus counter; its name ends in `_total` like
    /// every counter's).
    pub fn float_counter(&self, name: &str, help: &str) -> Result<FloatCounter, MetricsError> {
        self.register(
            name,
            help,
            Metric::FloatCounter(FloatCounter::default()),
            |m| match m {
                Metric::FloatCounter(c) => Some(c.clone()),
                _ => None,
            },
        )
    }

    /// Registers (or returns the existing) counter `name` with the given
    /// label names; children are created by [`CounterVec::with`].
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<CounterVec, MetricsError> {
        let labels = checked_label_names(name, label_names)?;
        let new = Metric::CounterVec(CounterVec(Arc::new(MetricVec::new(name, labels))));
        self.register(name, help, new, |m| match m {
            Metric::CounterVec(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// Registers (or returns the existing) unlabelled gauge `name`.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, MetricsError> {
        self.register(name, help, Metric::Gauge(Gauge::default()), |m| match m {
            Metric::Gauge(g) => Some(g.clone()),
            _ => None,
        })
    }

    /// Registers (or returns the existing) gauge `name` with the given label
    /// names; children are created by [`GaugeVec::with`].
    pub fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<GaugeVec, MetricsError> {
        let labels = checked_label_names(name, label_names)?;
        let new = Metric::GaugeVec(GaugeVec(Arc::new(MetricVec::new(name, labels))));
        self.register(name, help, new, |m| match m {
            Metric::GaugeVec(g) => Some(g.clone()),
            _ => None,
        })
    }

    /// Registers a gauge whose value `f` computes at every scrape, such as
    /// seconds until a certificate expires or the current Raft term.
    ///
    /// `f` runs on the scraping task without any registry lock held, so it
    /// may read other state but must not block. Registering the same name
    /// twice is a [`MetricsError::Conflict`]: two closures cannot be merged.
    pub fn gauge_fn(
        &self,
        name: &str,
        help: &str,
        f: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        self.register(name, help, Metric::GaugeFn(Arc::new(f)), |_| Some(()))
    }

    /// Registers a labelled gauge whose children `f` computes at every
    /// scrape: each item is the label values (in `label_names` order) and
    /// the value. Items with the wrong number of values are dropped (and
    /// logged). As for [`Registry::gauge_fn`], `f` must not block and the
    /// name cannot be registered twice.
    pub fn gauge_vec_fn(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        f: impl Fn() -> Vec<(Vec<String>, f64)> + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        let label_names = checked_label_names(name, label_names)?;
        let new = Metric::GaugeVecFn(GaugeVecFn {
            label_names,
            f: Arc::new(f),
        });
        self.register(name, help, new, |_| Some(()))
    }

    /// Registers (or returns the existing) histogram `name` with the given
    /// upper bounds (e.g. [`DEFAULT_BUCKETS`]). Bounds must be finite and
    /// strictly increasing; the `+Inf` bucket is implicit (a trailing
    /// `f64::INFINITY` is accepted and dropped).
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Histogram, MetricsError> {
        let bounds = checked_bounds(name, buckets)?;
        self.register(
            name,
            help,
            Metric::Histogram(Histogram::new(bounds)),
            |m| match m {
                Metric::Histogram(h) => Some(h.clone()),
                _ => None,
            },
        )
    }

    /// Renders every metric as Prometheus text exposition format 0.0.4,
    /// sorted by metric name and then by label values, so that equal states
    /// render identically. Labelled metrics without children are omitted.
    pub fn render(&self) -> String {
        // Snapshot the handles and render without the lock, so a slow
        // `gauge_fn` never blocks registration elsewhere.
        let families: Vec<(String, Family)> = self
            .families
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, family)| (name.clone(), family.clone()))
            .collect();
        let mut out = String::new();
        for (name, family) in &families {
            family.render(name, &mut out);
        }
        out
    }

    fn register<T>(
        &self,
        name: &str,
        help: &str,
        new: Metric,
        pick: impl FnOnce(&Metric) -> Option<T>,
    ) -> Result<T, MetricsError> {
        if !is_metric_name(name) {
            return Err(MetricsError::InvalidName {
                name: name.to_owned(),
            });
        }
        let is_counter = new.type_name() == "counter";
        if is_counter != name.ends_with("_total") {
            return Err(MetricsError::TypeSuffix {
                name: name.to_owned(),
                reason: if is_counter {
                    "a counter's name must end in _total"
                } else {
                    "only a counter's name may end in _total"
                },
            });
        }
        // Poisoning cannot leave the map half-updated: every write below is a
        // single insert, so the data is usable after a panic elsewhere.
        let mut families = self
            .families
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let conflict = |existing: &Metric| MetricsError::Conflict {
            name: name.to_owned(),
            existing: existing.shape(),
            requested: new.shape(),
        };
        let metric = match families.entry(name.to_owned()) {
            Entry::Occupied(e) => {
                let existing = &e.into_mut().metric;
                if !existing.same_shape(&new) {
                    return Err(conflict(existing));
                }
                existing
            }
            Entry::Vacant(v) => {
                let family = v.insert(Family {
                    help: help.to_owned(),
                    metric: new.clone(),
                });
                &family.metric
            }
        };
        pick(metric).ok_or_else(|| conflict(metric))
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let families = self.families.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Registry")
            .field("metrics", &families.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Metric {
    /// Whether `other` may be handed out as this already-registered metric.
    fn same_shape(&self, other: &Metric) -> bool {
        match (self, other) {
            (Metric::Counter(_), Metric::Counter(_))
            | (Metric::FloatCounter(_), Metric::FloatCounter(_))
            | (Metric::Gauge(_), Metric::Gauge(_)) => true,
            (Metric::CounterVec(a), Metric::CounterVec(b)) => a.0.label_names == b.0.label_names,
            (Metric::GaugeVec(a), Metric::GaugeVec(b)) => a.0.label_names == b.0.label_names,
            (Metric::Histogram(a), Metric::Histogram(b)) => a.0.bounds == b.0.bounds,
            _ => false,
        }
    }

    /// A short description for [`MetricsError::Conflict`].
    fn shape(&self) -> String {
        match self {
            Metric::Counter(_) => "counter".to_owned(),
            Metric::FloatCounter(_) => "counter of a float".to_owned(),
            Metric::CounterVec(v) => format!("counter{{{}}}", v.0.label_names.join(",")),
            Metric::Gauge(_) => "gauge".to_owned(),
            Metric::GaugeVec(v) => format!("gauge{{{}}}", v.0.label_names.join(",")),
            Metric::GaugeFn(_) => "gauge computed at scrape time".to_owned(),
            Metric::GaugeVecFn(v) => format!(
                "gauge{{{}}} computed at scrape time",
                v.label_names.join(",")
            ),
            Metric::Histogram(h) => {
                let bounds: Vec<String> = h.0.bounds.iter().map(|b| fmt_value(*b)).collect();
                format!("histogram[{}]", bounds.join(","))
            }
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Metric::Counter(_) | Metric::FloatCounter(_) | Metric::CounterVec(_) => "counter",
            Metric::Gauge(_) | Metric::GaugeVec(_) | Metric::GaugeFn(_) | Metric::GaugeVecFn(_) => {
                "gauge"
            }
            Metric::Histogram(_) => "histogram",
        }
    }
}

impl Family {
    fn render(&self, name: &str, out: &mut String) {
        let mut body = String::new();
        match &self.metric {
            Metric::Counter(c) => sample(&mut body, name, &[], &c.get().to_string()),
            Metric::FloatCounter(c) => sample(&mut body, name, &[], &fmt_value(c.get())),
            Metric::CounterVec(v) => {
                for (values, c) in v.0.children() {
                    let labels = v.0.labels(&values);
                    sample(&mut body, name, &labels, &c.get().to_string());
                }
            }
            Metric::Gauge(g) => sample(&mut body, name, &[], &fmt_value(g.get())),
            Metric::GaugeVec(v) => {
                for (values, g) in v.0.children() {
                    let labels = v.0.labels(&values);
                    sample(&mut body, name, &labels, &fmt_value(g.get()));
                }
            }
            Metric::GaugeFn(f) => {
                // A panicking closure must not take the whole scrape down.
                let value = catch_unwind(AssertUnwindSafe(|| f())).unwrap_or(f64::NAN);
                sample(&mut body, name, &[], &fmt_value(value));
            }
            Metric::GaugeVecFn(v) => {
                let mut children = catch_unwind(AssertUnwindSafe(|| (v.f)())).unwrap_or_default();
                children.sort_by(|a, b| a.0.cmp(&b.0));
                for (values, value) in children {
                    if values.len() != v.label_names.len() {
                        tracing::error!(
                            metric = name,
                            "scrape-time gauge gave the wrong number of label values; child dropped"
                        );
                        continue;
                    }
                    let labels: Vec<(&str, &str)> = v
                        .label_names
                        .iter()
                        .zip(&values)
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    sample(&mut body, name, &labels, &fmt_value(value));
                }
            }
            Metric::Histogram(h) => h.render(name, &mut body),
        }
        if body.is_empty() {
            return;
        }
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_into(out, &self.help, false);
        out.push('\n');
        out.push_str("# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(self.metric.type_name());
        out.push('\n');
        out.push_str(&body);
    }
}

/// A monotonically increasing count. Cloning shares the value.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A monotonically increasing non-integral amount (e.g. seconds spent),
/// stored as `f64` bits. Cloning shares the value.
#[derive(Debug, Clone, Default)]
pub struct FloatCounter(Arc<AtomicU64>);

impl FloatCounter {
    /// Adds `amount`; negative or NaN amounts are ignored, since a counter
    /// never goes down.
    pub fn inc_by(&self, amount: f64) {
        if amount > 0.0 {
            add_f64(&self.0, amount);
        }
    }

    /// The current total.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// A value that goes up and down, stored as `f64` bits. Cloning shares the
/// value.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: f64) {
        add_f64(&self.0, delta);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// A family of counters told apart by label values.
///
/// Looking a child up takes a lock; on a hot path, keep the [`Counter`]
/// returned by [`CounterVec::with`] instead of looking it up every time.
#[derive(Debug, Clone)]
pub struct CounterVec(Arc<MetricVec<Counter>>);

impl CounterVec {
    /// The counter for these label values (in label-name order), created at
    /// zero on first use.
    ///
    /// Giving the wrong number of values is a bug in the caller: it is
    /// logged and a detached counter, never rendered, is returned so that
    /// instrumentation cannot crash the node. Use [`CounterVec::try_with`]
    /// to get the error instead.
    pub fn with(&self, label_values: &[&str]) -> Counter {
        self.0.with(label_values)
    }

    /// Like [`CounterVec::with`], but a wrong number of values is an error.
    pub fn try_with(&self, label_values: &[&str]) -> Result<Counter, MetricsError> {
        self.0.try_with(label_values)
    }
}

/// A family of gauges told apart by label values.
///
/// Looking a child up takes a lock; on a hot path, keep the [`Gauge`]
/// returned by [`GaugeVec::with`].
#[derive(Debug, Clone)]
pub struct GaugeVec(Arc<MetricVec<Gauge>>);

impl GaugeVec {
    /// The gauge for these label values (in label-name order), created at
    /// zero on first use. A wrong number of values is logged and yields a
    /// detached gauge, as for [`CounterVec::with`].
    pub fn with(&self, label_values: &[&str]) -> Gauge {
        self.0.with(label_values)
    }

    /// Like [`GaugeVec::with`], but a wrong number of values is an error.
    pub fn try_with(&self, label_values: &[&str]) -> Result<Gauge, MetricsError> {
        self.0.try_with(label_values)
    }
}

/// Children of a labelled metric, keyed by label values.
#[derive(Debug)]
struct MetricVec<T> {
    name: String,
    label_names: Vec<String>,
    children: RwLock<BTreeMap<Vec<String>, T>>,
}

impl<T: Clone + Default> MetricVec<T> {
    fn new(name: &str, label_names: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            label_names,
            children: RwLock::new(BTreeMap::new()),
        }
    }

    fn with(&self, label_values: &[&str]) -> T {
        self.try_with(label_values).unwrap_or_else(|e| {
            tracing::error!(error = %e, "metric label misuse; update dropped");
            T::default()
        })
    }

    fn try_with(&self, label_values: &[&str]) -> Result<T, MetricsError> {
        if label_values.len() != self.label_names.len() {
            return Err(MetricsError::LabelCount {
                metric: self.name.clone(),
                expected: self.label_names.len(),
                got: label_values.len(),
            });
        }
        let key: Vec<String> = label_values.iter().map(|v| (*v).to_owned()).collect();
        // Poison-tolerant as in `Registry::register`: single inserts only.
        if let Some(child) = self
            .children
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(child.clone());
        }
        let mut children = self
            .children
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(children.entry(key).or_default().clone())
    }

    fn children(&self) -> Vec<(Vec<String>, T)> {
        self.children
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn labels<'a>(&'a self, values: &'a [String]) -> Vec<(&'a str, &'a str)> {
        self.label_names
            .iter()
            .zip(values)
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// Observations counted into buckets by upper bound, with their sum.
/// Cloning shares the data.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<HistogramCore>);

#[derive(Debug)]
struct HistogramCore {
    /// Finite, strictly increasing upper bounds.
    bounds: Vec<f64>,
    /// Non-cumulative counts, one per bound plus the `+Inf` bucket.
    counts: Vec<AtomicU64>,
    /// Sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: Vec<f64>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(HistogramCore {
            bounds,
            counts,
            sum: AtomicU64::new(0),
        }))
    }

    /// Records one observation, in seconds for durations. A value equal to
    /// a bound counts in that bound's bucket (`le` is inclusive). NaN is
    /// ignored.
    pub fn observe(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let core = &self.0;
        let bucket = core.bounds.partition_point(|bound| *bound < value);
        if let Some(count) = core.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&core.sum, value);
    }

    /// Starts timing; the elapsed seconds are observed when the returned
    /// guard is dropped or [`HistogramTimer::observe_duration`] is called.
    #[must_use = "dropping the timer at once observes a duration of zero"]
    pub fn start_timer(&self) -> HistogramTimer {
        HistogramTimer {
            histogram: self.clone(),
            start: Instant::now(),
            done: false,
        }
    }

    /// How many values have been observed.
    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of observed values.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.0.sum.load(Ordering::Relaxed))
    }

    fn render(&self, name: &str, out: &mut String) {
        let bucket_name = format!("{name}_bucket");
        let mut cumulative = 0u64;
        let bounds = self.0.bounds.iter().map(|b| fmt_value(*b));
        let les = bounds.chain(std::iter::once("+Inf".to_owned()));
        for (le, count) in les.zip(&self.0.counts) {
            cumulative += count.load(Ordering::Relaxed);
            sample(
                out,
                &bucket_name,
                &[("le", le.as_str())],
                &cumulative.to_string(),
            );
        }
        sample(out, &format!("{name}_sum"), &[], &fmt_value(self.sum()));
        // `_count` is the `+Inf` bucket by construction, never a separate
        // atomic that a concurrent observation could make disagree.
        sample(out, &format!("{name}_count"), &[], &cumulative.to_string());
    }
}

/// Times a span of code into a [`Histogram`]; see [`Histogram::start_timer`].
#[derive(Debug)]
pub struct HistogramTimer {
    histogram: Histogram,
    start: Instant,
    done: bool,
}

impl HistogramTimer {
    /// Observes the elapsed time now and returns it in seconds.
    pub fn observe_duration(mut self) -> f64 {
        self.record()
    }

    /// Stops the timer without observing anything.
    pub fn stop_and_discard(mut self) {
        self.done = true;
    }

    fn record(&mut self) -> f64 {
        let seconds = self.start.elapsed().as_secs_f64();
        if !self.done {
            self.done = true;
            self.histogram.observe(seconds);
        }
        seconds
    }
}

impl Drop for HistogramTimer {
    fn drop(&mut self) {
        self.record();
    }
}

fn add_f64(cell: &AtomicU64, delta: f64) {
    // The closure always returns `Some`, so `fetch_update` cannot fail.
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        Some((f64::from_bits(bits) + delta).to_bits())
    });
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn checked_label_names(metric: &str, names: &[&str]) -> Result<Vec<String>, MetricsError> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !is_label_name(name) || out.iter().any(|n| n == name) {
            return Err(MetricsError::InvalidLabelName {
                metric: metric.to_owned(),
                label: (*name).to_owned(),
            });
        }
        out.push((*name).to_owned());
    }
    Ok(out)
}

fn checked_bounds(metric: &str, buckets: &[f64]) -> Result<Vec<f64>, MetricsError> {
    let mut bounds = buckets.to_vec();
    if bounds.last() == Some(&f64::INFINITY) {
        bounds.pop();
    }
    let invalid = |reason: &str| MetricsError::InvalidBuckets {
        metric: metric.to_owned(),
        reason: reason.to_owned(),
    };
    if bounds.iter().any(|b| !b.is_finite()) {
        return Err(invalid("bounds must be finite"));
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid("bounds must be strictly increasing"));
    }
    Ok(bounds)
}

/// Appends one sample line: `name{l="v",...} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_into(out, v, true);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Escapes `\` and newline (and `"` inside label values), as format 0.0.4
/// requires.
fn escape_into(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Formats a sample value the way Prometheus parses it.
fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // Rust's `Display` for f64 is the shortest round-tripping decimal
        // and never uses an exponent, both valid for Prometheus.
        let mut s = String::new();
        let _ = write!(s, "{v}");
        s
    }
}

// ---------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------

/// The node's health at one moment: one entry per checked component.
///
/// The node is healthy when every check passed; an empty `Health` is healthy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Every component checked, in report order.
    pub checks: Vec<ComponentCheck>,
}

/// The outcome of checking one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentCheck {
    /// What was checked, e.g. `ledger` or `raft`.
    pub component: String,
    /// `Err` carries the human-readable reason it is unhealthy.
    pub result: Result<(), String>,
}

impl Health {
    /// A health report with no checks (healthy).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the outcome for `component`.
    pub fn check(mut self, component: impl Into<String>, result: Result<(), String>) -> Self {
        self.checks.push(ComponentCheck {
            component: component.into(),
            result,
        });
        self
    }

    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|c| c.result.is_ok())
    }

    /// The failed checks as `(component, reason)`.
    pub fn failed_checks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.checks.iter().filter_map(|c| match &c.result {
            Ok(()) => None,
            Err(reason) => Some((c.component.as_str(), reason.as_str())),
        })
    }
}

/// What the operations endpoint serves: the node's metrics and its health
/// check. Cloning is cheap.
#[derive(Clone)]
pub struct Ops {
    registry: Registry,
    health: Arc<dyn Fn() -> Health + Send + Sync>,
}

impl Ops {
    /// Serves `registry` with a health check that always reports healthy.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            health: Arc::new(Health::new),
        }
    }

    /// Replaces the health check, called on every `GET /healthz`.
    ///
    /// It runs on the connection's task, so it must be quick and must not
    /// block (read flags or atomics kept up to date elsewhere). A panic in it
    /// is reported as an unhealthy `healthz` component.
    pub fn with_health_check(mut self, check: impl Fn() -> Health + Send + Sync + 'static) -> Self {
        self.health = Arc::new(check);
        self
    }

    /// The registry served at `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn health(&self) -> Health {
        catch_unwind(AssertUnwindSafe(|| (self.health)()))
            .unwrap_or_else(|_| Health::new().check("healthz", Err("health check panicked".into())))
    }
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// Serves the operations endpoint on `listener` until `shutdown` resolves.
///
/// Routes: `GET /healthz` (200 `{"status":"OK"}`, or 503 with
/// `"failed_checks"`), `GET /metrics` (200, `text/plain; version=0.0.4`),
/// `GET /version` (200 `{"version":...}`); any other path is 404 and any
/// other method 405. A request head over 8 KiB is 431, a malformed one 400,
/// one not complete within 2 s 408. Every response closes the connection.
///
/// Each connection runs in its own task, at most 64 at once and 16 from one
/// address; a new connection that finds a cap full evicts the oldest one in
/// it (see [`crate::slots`]), so slow clients cannot keep `/healthz` from
/// answering. On shutdown the server stops accepting and ends connections
/// still in flight.
pub async fn serve(listener: TcpListener, ops: Ops, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let slots = Slots::new(SlotLimits {
        total: MAX_CONNECTIONS,
        per_ip: MAX_CONNECTIONS_PER_IP,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "operations endpoint listening");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "operations endpoint accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let ops = ops.clone();
        let mut stop = stop_rx.clone();
        slots.spawn(peer.ip(), move |slot| async move {
            let _slot = slot;
            tokio::select! {
                () = handle_connection(stream, &ops) => {}
                _ = stop.changed() => {}
            }
            tracing::trace!(%peer, "operations connection closed");
        });
    }
    let _ = stop_tx.send(true);
    tracing::info!("operations endpoint stopped");
}

/// A parsed request line; headers are checked for shape and then ignored.
#[derive(Debug, PartialEq, Eq)]
struct RequestHead<'a> {
    method: &'a str,
    /// The target without its query string.
    path: &'a str,
}

/// How reading the request head ended, short of a complete head.
#[derive(Debug)]
pub enum HeadError {
    /// More than [`MAX_HEAD`] bytes without the blank line.
    TooLarge,
    /// The client closed first.
    Closed {
        /// It sent nothing at all.
        empty: bool,
    },
    /// The socket failed.
    Io,
}

/// A response about to be written.
#[derive(Debug)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }

    fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: value.to_string(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len(),
        );
        if self.status == 405 {
            head.push_str("Allow: GET\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

/// The HTTP reason phrase of the statuses QCSS's HTTP servers answer with
/// (this one and the peer's web server).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

async fn handle_connection(mut stream: TcpStream, ops: &Ops) {
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_elapsed) => Response::text(408, "request timeout"),
        Ok(Err(HeadError::TooLarge)) => Response::text(431, "request head too large"),
        Ok(Err(HeadError::Closed { empty: false })) => Response::text(400, "incomplete request"),
        Ok(Err(HeadError::Closed { empty: true } | HeadError::Io)) => return,
        Ok(Ok(head)) => match parse_head(&head) {
            Some(request) => route(&request, ops),
            None => Response::text(400, "malformed request"),
        },
    };
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response.to_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    drain(&mut stream, DRAIN_TIMEOUT).await;
}

/// Reads and discards what the client still sends (a body, the rest of an
/// oversize head), for at most `timeout` and 64 KiB, so that
/// closing with unread input does not reset the connection before the
/// client has read the response (also used by the peer's web server).
pub async fn drain<S: AsyncRead + Unpin>(stream: &mut S, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// Reads up to and excluding the blank line that ends an HTTP/1 request
/// head, at most [`MAX_HEAD`] bytes (also used by the peer's web server).
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut searched = 0;
    loop {
        // Resume the search where a terminator split across reads could start.
        if let Some(end) = find_head_end(&buf[searched..]) {
            buf.truncate(searched + end);
            return Ok(buf);
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let want = chunk.len().min(MAX_HEAD - buf.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) => {
                return Err(HeadError::Closed {
                    empty: buf.is_empty(),
                });
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(HeadError::Io),
        }
    }
}

/// The length of the head before its `\r\n\r\n`, if the buffer holds one.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// An HTTP/1 request head checked and split: `METHOD SP /target SP
/// HTTP/1.x`, then header lines with a non-empty name and a colon (values
/// untrimmed). `None` for anything else. Also used by the peer's web server.
pub fn split_head(head: &[u8]) -> Option<HeadParts<'_>> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
    {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        headers.push((name, value));
    }
    Some(HeadParts {
        method,
        target,
        headers,
    })
}

/// A request head as [`split_head`] returns it.
#[derive(Debug)]
pub struct HeadParts<'a> {
    /// The method (`GET`, `HEAD`, …).
    pub method: &'a str,
    /// The request target, query included.
    pub target: &'a str,
    /// Header lines in order: name, value as sent.
    pub headers: Vec<(&'a str, &'a str)>,
}

/// The method and path of a well-formed request head.
fn parse_head(head: &[u8]) -> Option<RequestHead<'_>> {
    let HeadParts { method, target, .. } = split_head(head)?;
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    Some(RequestHead { method, path })
}

fn route(request: &RequestHead<'_>, ops: &Ops) -> Response {
    if request.method != "GET" {
        return Response::text(405, "method not allowed");
    }
    match request.path {
        "/healthz" => healthz(&ops.health()),
        "/metrics" => match catch_unwind(AssertUnwindSafe(|| ops.registry.render())) {
            Ok(text) => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: text,
            },
            Err(_) => Response::text(500, "metrics rendering failed"),
        },
        "/version" => Response::json(
            200,
            &serde_json::json!({ "version": env!("CARGO_PKG_VERSION") }),
        ),
        _ => Response::text(404, "not found"),
    }
}

fn healthz(health: &Health) -> Response {
    if health.is_ok() {
        return Response::json(200, &serde_json::json!({ "status": "OK" }));
    }
    let failed: Vec<serde_json::Value> = health
        .failed_checks()
        .map(|(component, reason)| serde_json::json!({ "component": component, "reason": reason }))
        .collect();
    Response::json(
        503,
        &serde_json::json!({ "status": "Service Unavailable", "failed_checks": failed }),
    )
}

// ---------------------------------------------------------------------------
// Certificate expiry
// ---------------------------------------------------------------------------

/// Default window before expiry in which nodes warn, days.
pub const DEFAULT_CERT_WARN_DAYS: u64 = 30;

/// Exports `qcss_cert_expiry_seconds{cert}` for each `(label, not_after)`
/// (Unix seconds), computed at every scrape, and spawns a task (on the
/// current tokio runtime) that logs a warning, at start and then hourly, for
/// every certificate expiring within `warn_days` — expired certificates are
/// a classic cause of consortium outages. The handle updates a certificate's
/// date when it is renewed in place (a reloaded TLS pair).
pub fn watch_cert_expiry(
    registry: &Registry,
    certs: Vec<(String, i64)>,
    warn_days: u64,
) -> CertExpiry {
    let handle = CertExpiry(Arc::new(RwLock::new(certs)));
    let scraped = handle.clone();
    let registered = registry.gauge_vec_fn(
        "qcss_cert_expiry_seconds",
        "Seconds until this node's certificate expires (negative: expired)",
        &["cert"],
        move || {
            let now = crate::msp::unix_now();
            scraped
                .get()
                .iter()
                .map(|(label, not_after)| (vec![label.clone()], (not_after - now) as f64))
                .collect()
        },
    );
    if let Err(e) = registered {
        tracing::error!(error = %e, "cannot export certificate expiry");
    }
    let logged = handle.clone();
    tokio::spawn(async move {
        let window = (warn_days * 86_400) as i64;
        loop {
            for (label, not_after) in logged.get() {
                let left = not_after - crate::msp::unix_now();
                if left <= 0 {
                    tracing::error!(cert = %label, "certificate has EXPIRED: renew it (qcss ca reenroll; a TLS pair is picked up without a restart, a signing identity needs one)");
                } else if left < window {
                    tracing::warn!(
                        cert = %label,
                        days_left = left / 86_400,
                        "certificate expires soon: renew it (qcss ca reenroll; a TLS pair is picked up without a restart, a signing identity needs one)"
                    );
                }
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    handle
}

/// The certificates [`watch_cert_expiry`] reports, by label.
#[derive(Debug, Clone)]
pub struct CertExpiry(Arc<RwLock<Vec<(String, i64)>>>);

impl CertExpiry {
    fn get(&self) -> Vec<(String, i64)> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records that certificate `label` now expires at `not_after`.
    pub fn set(&self, label: &str, not_after: i64) {
        let mut certs = self.0.write().unwrap_or_else(PoisonError::into_inner);
        match certs.iter_mut().find(|(l, _)| l == label) {
            Some(c) => c.1 = not_after,
            None => certs.push((label.to_owned(), not_after)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_families_with_help_and_type() {
        let r = Registry::new();
        let b = r.counter("b_total", "Second.").unwrap();
        let a = r.gauge("a_gauge", "First.").unwrap();
        b.inc_by(3);
        a.set(-1.5);
        assert_eq!(
            r.render(),
            "# HELP a_gauge First.\n# TYPE a_gauge gauge\na_gauge -1.5\n\
             # HELP b_total Second.\n# TYPE b_total counter\nb_total 3\n"
        );
    }

    #[test]
    fn escapes_label_values_and_help() {
        let r = Registry::new();
        let v = r
            .counter_vec("esc_total", "Help with \\ and\nnewline \"kept\".", &["v"])
            .unwrap();
        v.with(&["a\\b\"c\nd"]).inc();
        assert_eq!(
            r.render(),
            "# HELP esc_total Help with \\\\ and\\nnewline \"kept\".\n\
             # TYPE esc_total counter\n\
             esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"
        );
    }

    #[test]
    fn labelled_children_sorted_and_empty_family_omitted() {
        let r = Registry::new();
        let v = r.gauge_vec("g", "G.", &["ch", "org"]).unwrap();
        r.counter_vec("unused_total", "Never used.", &["x"])
            .unwrap();
        v.with(&["b", "Org1"]).set(2.0);
        v.with(&["a", "Org2"]).inc();
        v.with(&["a", "Org2"]).inc();
        v.with(&["a", "Org2"]).dec();
        assert_eq!(
            r.render(),
            "# HELP g G.\n# TYPE g gauge\ng{ch=\"a\",org=\"Org2\"} 1\ng{ch=\"b\",org=\"Org1\"} 2\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_le_inclusive() {
        let r = Registry::new();
        let h = r
            .histogram("h_seconds", "H.", &[0.5, 1.0, f64::INFINITY])
            .unwrap();
        for v in [0.25, 0.5, 1.0, 4.0, f64::NAN] {
            h.observe(v);
        }
        assert_eq!(
            r.render(),
            "# HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"0.5\"} 2\nh_seconds_bucket{le=\"1\"} 3\n\
             h_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 5.75\nh_seconds_count 4\n"
        );
    }

    #[test]
    fn timer_observes_once() {
        let h = Registry::new()
            .histogram("t", "T.", DEFAULT_BUCKETS)
            .unwrap();
        let secs = h.start_timer().observe_duration();
        assert!(secs >= 0.0);
        {
            let _t = h.start_timer();
        }
        h.start_timer().stop_and_discard();
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn special_values_and_gauge_fn() {
        let r = Registry::new();
        r.gauge_fn("inf", "I.", || f64::INFINITY).unwrap();
        r.gauge_fn("nan", "N.", || f64::NAN).unwrap();
        r.gauge_fn("panics", "P.", || panic!("boom")).unwrap();
        let text = r.render();
        assert!(text.contains("\ninf +Inf\n"), "{text}");
        assert!(text.contains("\nnan NaN\n"), "{text}");
        assert!(text.contains("\npanics NaN\n"), "{text}");
    }

    #[test]
    fn reregistration_returns_existing_or_conflicts() {
        let r = Registry::new();
        let a = r.counter("c_total", "C.").unwrap();
        let b = r.counter("c_total", "Other help.").unwrap();
        b.inc();
        assert_eq!(a.get(), 1);
        assert!(matches!(
            r.float_counter("c_total", "C."),
            Err(MetricsError::Conflict { .. })
        ));
        r.gauge("g", "G.").unwrap();
        assert!(matches!(
            r.histogram("g", "G.", &[1.0]),
            Err(MetricsError::Conflict { .. })
        ));
        r.counter_vec("v_total", "V.", &["a"]).unwrap();
        assert!(r.counter_vec("v_total", "V.", &["a"]).is_ok());
        assert!(matches!(
            r.counter_vec("v_total", "V.", &["b"]),
            Err(MetricsError::Conflict { .. })
        ));
        r.histogram("h", "H.", &[1.0]).unwrap();
        assert!(r.histogram("h", "H.", &[2.0]).is_err());
        r.gauge_fn("f", "F.", || 1.0).unwrap();
        assert!(r.gauge_fn("f", "F.", || 2.0).is_err());
    }

    #[test]
    fn rejects_bad_names_labels_and_buckets() {
        let r = Registry::new();
        for bad in ["", "1abc", "a-b", "a b", "é"] {
            assert!(
                matches!(r.counter(bad, "x"), Err(MetricsError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(r.counter("ok:name_1_total", "x").is_ok());
        for bad in [&["a:b"][..], &["__x"], &["a", "a"], &[""]] {
            assert!(
                matches!(
                    r.counter_vec("l_total", "x", bad),
                    Err(MetricsError::InvalidLabelName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(r.histogram("b1", "x", &[1.0, 1.0]).is_err());
        assert!(r.histogram("b2", "x", &[f64::NAN]).is_err());
        assert!(r.histogram("b3", "x", &[]).is_ok());
    }

    #[test]
    fn total_suffix_is_for_counters_only() {
        let r = Registry::new();
        for (result, what) in [
            (r.counter("c", "x").map(drop), "counter without _total"),
            (
                r.float_counter("f_seconds", "x").map(drop),
                "float counter without _total",
            ),
            (
                r.counter_vec("v", "x", &["a"]).map(drop),
                "counter vec without _total",
            ),
            (r.gauge("g_total", "x").map(drop), "gauge with _total"),
            (r.gauge_fn("gf_total", "x", || 1.0), "gauge fn with _total"),
            (
                r.histogram("h_total", "x", &[1.0]).map(drop),
                "histogram with _total",
            ),
            (
                r.gauge_vec_fn("gv_total", "x", &["a"], Vec::new),
                "gauge vec fn with _total",
            ),
        ] {
            assert!(
                matches!(result, Err(MetricsError::TypeSuffix { .. })),
                "{what}: {result:?}"
            );
        }
    }

    #[test]
    fn float_counter_only_goes_up() {
        let r = Registry::new();
        let c = r.float_counter("work_seconds_total", "Work.").unwrap();
        c.inc_by(0.25);
        c.inc_by(-5.0);
        c.inc_by(f64::NAN);
        c.inc_by(0.5);
        assert_eq!(
            r.render(),
            "# HELP work_seconds_total Work.\n# TYPE work_seconds_total counter\nwork_seconds_total 0.75\n"
        );
    }

    #[test]
    fn gauge_vec_fn_is_computed_at_every_scrape() {
        let r = Registry::new();
        let n = Arc::new(AtomicU64::new(0));
        let n2 = n.clone();
        r.gauge_vec_fn("left_seconds", "Left.", &["cert"], move || {
            let v = n2.fetch_add(1, Ordering::Relaxed) as f64;
            vec![
                (vec!["tls".into()], v),
                (vec!["signing".into()], v),
                (vec!["bad".into(), "extra".into()], v),
            ]
        })
        .unwrap();
        let first = "# HELP left_seconds Left.\n# TYPE left_seconds gauge\n\
                     left_seconds{cert=\"signing\"} 0\nleft_seconds{cert=\"tls\"} 0\n";
        assert_eq!(r.render(), first);
        assert_eq!(r.render(), first.replace(" 0\n", " 1\n"));
        assert!(
            r.gauge_vec_fn("left_seconds", "Left.", &["cert"], Vec::new)
                .is_err()
        );
    }

    #[test]
    fn wrong_label_count_is_detached_or_error() {
        let r = Registry::new();
        let v = r.counter_vec("w_total", "W.", &["a", "b"]).unwrap();
        v.with(&["only-one"]).inc();
        assert_eq!(r.render(), "");
        assert_eq!(
            v.try_with(&["x"]).unwrap_err(),
            MetricsError::LabelCount {
                metric: "w_total".into(),
                expected: 2,
                got: 1
            }
        );
    }

    #[test]
    fn parses_request_heads() {
        let ok = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*");
        assert_eq!(
            ok,
            Some(RequestHead {
                method: "GET",
                path: "/metrics"
            })
        );
        for bad in [
            &b""[..],
            b"GET /metrics",
            b"GET metrics HTTP/1.1",
            b"GET /metrics HTTP/2.0",
            b"GET  /metrics HTTP/1.1",
            b"get /metrics HTTP/1.1",
            b"GET /metrics HTTP/1.1\r\nno colon",
            b"GET /metrics HTTP/1.1\r\n: empty name",
            b"\xff\xfe / HTTP/1.1",
        ] {
            assert_eq!(parse_head(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn failed_health_lists_only_failures() {
        let h = Health::new()
            .check("ledger", Ok(()))
            .check("raft", Err("no leader".into()));
        assert!(!h.is_ok());
        let r = healthz(&h);
        assert_eq!(r.status, 503);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "status": "Service Unavailable",
                "failed_checks": [{ "component": "raft", "reason": "no leader" }],
            })
        );
    }
}
