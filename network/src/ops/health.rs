//! The node's health report, as `GET /healthz` serves it.

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
