//! Certificate-expiry watching: a scrape-time gauge and periodic warnings.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use super::Registry;

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
