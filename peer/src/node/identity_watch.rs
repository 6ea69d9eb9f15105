//! A renewed signing certificate taken into use without a restart (issue
//! 15): `qcss ca reenroll` writes a new `cert.pem`/`key.pem` into the
//! peer's `identity_dir`; on SIGHUP, or within `tls_reload_secs`, the peer
//! rereads them and, if they are a new pair that belongs together, is not
//! expired and is a valid *peer* of this org under the channel's current
//! configuration, endorses with it from then on (endorsements in flight
//! finish with the old one; both verify, as both chain to the org's CA).
//! Anything else is logged once, with the reason, and the identity in use
//! stays: a half-written renewal never stops a peer from endorsing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use qcss_network::SigningIdentity;
use qcss_network::ops::CertExpiry;

use crate::node::Peer;

/// Watches `dir` every `every` (and on SIGHUP) for a renewed identity.
pub(crate) fn watch(peer: Arc<Peer>, dir: PathBuf, every: Duration, expiry: CertExpiry) {
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The (certificate, key) files last refused, not to log them again
        // (a pair caught half-written is retried once the other file moves).
        let mut refused: Option<(Vec<u8>, Vec<u8>)> = None;
        loop {
            match hup.as_mut() {
                Some(h) => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = h.recv() => {}
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            let cert = std::fs::read(dir.join("cert.pem")).unwrap_or_default();
            if cert == peer.signer().cert_pem {
                continue;
            }
            let files = (cert, std::fs::read(dir.join("key.pem")).unwrap_or_default());
            if refused.as_ref() == Some(&files) {
                continue;
            }
            match renew(&peer, &dir) {
                Ok(identity) => {
                    tracing::info!(
                        serial = %identity.cert.serial_hex,
                        not_after = identity.cert.not_after,
                        "signing certificate renewed: endorsing with the new one"
                    );
                    expiry.set("signing", identity.cert.not_after);
                    refused = None;
                }
                Err(why) => {
                    tracing::error!(
                        dir = %dir.display(),
                        reason = %why,
                        "a new signing identity is not taken into use; keeping the current one"
                    );
                    refused = Some(files);
                }
            }
        }
    });
}

/// Loads the identity in `dir` and hands it to the endorser if it passes.
fn renew(peer: &Peer, dir: &std::path::Path) -> Result<Arc<SigningIdentity>, String> {
    let identity = SigningIdentity::load_dir(peer.msp_id().clone(), dir)
        .map_err(|e| format!("cannot load it: {e}"))?;
    let now = qcss_network::msp::unix_now();
    if identity.cert.not_after <= now {
        return Err(format!(
            "its certificate expired at Unix time {}",
            identity.cert.not_after
        ));
    }
    let identity = Arc::new(identity);
    peer.endorser
        .set_signer(identity.clone())
        .map_err(|e| e.to_string())?;
    Ok(identity)
}
