//! The metrics registry: counters, gauges and histograms, optionally labelled,
//! updated with atomics and rendered as Prometheus text exposition format 0.0.4.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

/// Prometheus' default histogram buckets, in seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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

#[cfg(test)]
mod tests;
