//! A node's signing identity renewed in place (issue 15): `qcss ca
//! reenroll` writes a new `cert.pem` and `key.pem` into the node's identity
//! directory; on SIGHUP, or every `every`, the node rereads them and, if
//! they are a new pair that belongs together, of the node's MSP and not
//! expired, hands the identity to `apply` — the peer's endorser (which
//! also checks it is a peer of the org under the channel configuration)
//! or the orderer's chain (which signs with it once the configuration
//! names it for its consenter). A pair caught half-written, or refused, is
//! logged once with the reason and the identity in use stays: a renewal
//! never stops a node from signing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{MspId, SigningIdentity};

/// What the node did with a renewed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// It signs with it from now on.
    InUse,
    /// It holds it until something else happens (said here).
    Waiting(String),
}

/// Watches `dir` for a renewed identity of `msp_id`; `current` gives the
/// certificate (PEM) in use, `apply` takes a new one.
pub fn watch<C, A>(dir: PathBuf, msp_id: MspId, every: Duration, current: C, apply: A)
where
    C: Fn() -> Vec<u8> + Send + 'static,
    A: Fn(Arc<SigningIdentity>) -> Result<Renewal, String> + Send + 'static,
{
    tokio::spawn(async move {
        let mut rereads = crate::tls::Rereads::new(every, "signing identity files");
        // The (certificate, key) files last handled, not to handle them
        // again (a pair caught half-written is retried once a file moves).
        let mut seen: Option<(Vec<u8>, Vec<u8>)> = None;
        loop {
            rereads.next().await;
            let cert = std::fs::read(dir.join("cert.pem")).unwrap_or_default();
            if cert == current() {
                continue;
            }
            let files = (cert, std::fs::read(dir.join("key.pem")).unwrap_or_default());
            if seen.as_ref() == Some(&files) {
                continue;
            }
            seen = Some(files);
            match load(&dir, &msp_id).and_then(|id| {
                let (serial, not_after) = (id.cert.serial_hex.clone(), id.cert.not_after);
                apply(id).map(|r| (r, serial, not_after))
            }) {
                Ok((Renewal::InUse, serial, not_after)) => tracing::info!(
                    %serial,
                    not_after,
                    "signing certificate renewed: signing with the new one"
                ),
                Ok((Renewal::Waiting(why), serial, _)) => tracing::warn!(
                    %serial,
                    "renewed signing certificate not in use yet: {why}"
                ),
                Err(why) => tracing::error!(
                    dir = %dir.display(),
                    reason = %why,
                    "a new signing identity is not taken into use; keeping the current one"
                ),
            }
        }
    });
}

/// The identity in `dir`, if its key is its certificate's and it is valid
/// now.
fn load(dir: &std::path::Path, msp_id: &MspId) -> Result<Arc<SigningIdentity>, String> {
    let identity = SigningIdentity::load_dir(msp_id.clone(), dir)
        .map_err(|e| format!("cannot load it: {e}"))?;
    let now = crate::msp::unix_now();
    if identity.cert.not_after <= now {
        return Err(format!(
            "its certificate expired at Unix time {}",
            identity.cert.not_after
        ));
    }
    if identity.cert.not_before > now + 300 {
        return Err(format!(
            "its certificate is not valid before Unix time {}",
            identity.cert.not_before
        ));
    }
    Ok(Arc::new(identity))
}
