//! The peer's signing certificate renewed without a restart (issue 15;
//! the watching is `qcss_network::identity_watch`): a new identity is
//! taken when the endorser accepts it — of this org, a valid *peer* under
//! the channel's current configuration. Endorsements in flight finish with
//! the old one; both verify, as both chain to the org's CA.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use qcss_network::identity_watch::{self, Renewal};
use qcss_network::ops::CertExpiry;

use crate::node::Peer;

/// Watches `dir` every `every` (and on SIGHUP) for a renewed identity.
pub(crate) fn watch(peer: Arc<Peer>, dir: PathBuf, every: Duration, expiry: CertExpiry) {
    let current = peer.clone();
    identity_watch::watch(
        dir,
        peer.msp_id().clone(),
        every,
        move || current.signer().cert_pem.clone(),
        move |identity| {
            let not_after = identity.cert.not_after;
            peer.endorser
                .set_signer(identity)
                .map_err(|e| e.to_string())?;
            expiry.set("signing", not_after);
            Ok(Renewal::InUse)
        },
    );
}
