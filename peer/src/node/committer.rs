//! Pulls blocks from the ordering service and commits them.
//!
//! One loop: connect to an orderer, ask `Deliver` for every block from the
//! ledger height on, forever; validate and commit each block as it arrives.
//! Anything wrong with an orderer — cannot connect, the stream breaks, a
//! block that does not chain or is not signed by a consenter — moves the
//! peer to the next orderer in the list after a short pause. Nothing is
//! committed from a block that fails its checks, so a faulty orderer can
//! delay the peer but not corrupt it.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use qcss_network::block::is_config_block;
use qcss_network::orderer_client::{OrdererClient, Seek};
use qcss_proto::common::Block;
use qcss_proto::protos::TxValidationCode;
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::node::Peer;
use crate::node::integrity::{Backoff, recover_store};
use crate::validator::{ValidateOptions, commit_block_with};

/// Pause before trying the next orderer.
const RETRY: Duration = Duration::from_millis(300);

/// Runs until `stop` turns true.
pub(crate) async fn run(peer: Arc<Peer>, mut stop: watch::Receiver<bool>) {
    let mut next = 0usize;
    let mut backoff = Backoff::default();
    // Height when the store last failed: the backoff restarts only once a
    // block was committed after a reopen.
    let mut failed_at: Option<u64> = None;
    loop {
        let orderers = peer.orderers();
        if orderers.is_empty() {
            tracing::error!("no orderer to pull blocks from");
        } else {
            let addr = orderers[next % orderers.len()].clone();
            let result = tokio::select! {
                r = pull(&peer, &addr) => Some(r),
                _ = stopped(&mut stop) => None,
            };
            let Some(r) = result else { return };
            if failed_at.is_some_and(|h| peer.ledger.height() > h) {
                backoff = Backoff::default();
                failed_at = None;
            }
            if peer.ledger.store_failure().is_some() {
                // Not the orderer's fault: stay with it, reopen the store.
                failed_at.get_or_insert(peer.ledger.height());
                if !recover_store(&peer, &mut backoff, &mut stop).await {
                    return;
                }
                continue;
            }
            let e = r.err().unwrap_or_else(|| "the stream ended".into());
            tracing::warn!(orderer = %addr, error = %e, "pulling blocks failed; trying the next orderer");
            peer.metrics.orderer_failovers.inc();
            {
                let mut s = peer.pull.write().unwrap_or_else(PoisonError::into_inner);
                s.orderer = None;
                s.last_error = Some(format!("{addr}: {e}"));
            }
            peer.disconnect(&addr).await;
        }
        next = next.wrapping_add(1);
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Streams and commits blocks from `addr` until something fails.
async fn pull(peer: &Arc<Peer>, addr: &str) -> Result<(), String> {
    let ch = peer.connect(addr).await?;
    let mut client = OrdererClient::from_channel(ch);
    let channel_id = peer.channel().id().to_owned();
    // How far the ordering service is, for /healthz's lag check.
    if let Ok(newest) = client
        .blocks(&peer.signer(), &channel_id, Seek::Newest, Seek::Newest)
        .await
        && let Some(h) = newest.first().and_then(|b| b.header.as_ref())
    {
        note_orderer_height(peer, h.number + 1);
    }
    let start = peer.ledger.height();
    let stream = client
        .deliver(
            &peer.signer(),
            &channel_id,
            Seek::Number(start),
            Seek::Forever,
        )
        .await?;
    {
        let mut s = peer.pull.write().unwrap_or_else(PoisonError::into_inner);
        s.orderer = Some(addr.to_owned());
        s.last_error = None;
    }
    tracing::info!(orderer = %addr, from = start, "pulling blocks");
    tokio::pin!(stream);
    while let Some(block) = stream.next().await {
        let block = block?;
        let number = block.header.as_ref().map_or(u64::MAX, |h| h.number);
        note_orderer_height(peer, number.saturating_add(1));
        let height = peer.ledger.height();
        if number < height {
            continue; // already committed (a reconnect overlapping)
        }
        if number > height {
            return Err(format!(
                "sent block {number} when block {height} was expected"
            ));
        }
        // Validation reads the state: not while it is known damaged (the
        // repairer rebuilds it from the blocks first).
        while peer.ledger.integrity().state.is_some() {
            tokio::time::sleep(RETRY).await;
        }
        commit(peer, block).await?;
    }
    Ok(())
}

fn note_orderer_height(peer: &Peer, height: u64) {
    let mut s = peer.pull.write().unwrap_or_else(PoisonError::into_inner);
    s.orderer_height = s.orderer_height.max(height);
}

/// Validates and commits one block (on a blocking thread: validation is
/// CPU-bound), then applies its consequences: config, lifecycle, height.
pub(crate) async fn commit(peer: &Arc<Peer>, block: Block) -> Result<(), String> {
    let p = peer.clone();
    let started = Instant::now();
    let (block, result) = tokio::task::spawn_blocking(move || {
        let channel = p.channel();
        let own = p.endorser.own_signatures();
        let r = commit_block_with(
            &p.ledger,
            &block,
            &channel,
            &*p.lifecycle,
            ValidateOptions {
                own: Some(&own),
                ..ValidateOptions::default()
            },
        );
        // The anchoring MMR follows the ledger; it is derived data, so a
        // failure here is logged and retried at the next block, never fatal.
        let mmr_started = Instant::now();
        if r.is_ok()
            && let Err(e) = p.ledger.mmr_sync()
        {
            tracing::warn!(error = %e, "cannot append to the anchoring MMR");
        }
        p.metrics
            .anchor_mmr_seconds
            .inc_by(mmr_started.elapsed().as_secs_f64());
        (block, r)
    })
    .await
    .map_err(|e| format!("commit task failed: {e}"))?;
    let validation = result.map_err(|e| e.to_string())?;
    let number = block.header.as_ref().map_or(0, |h| h.number);
    let m = &peer.metrics;
    m.validation_seconds
        .observe(started.elapsed().as_secs_f64());
    m.signature_seconds
        .inc_by(validation.stats.signature_time.as_secs_f64());
    for u in &validation.updates.txs {
        m.transactions.with(&[u.code.as_str_name()]).inc();
    }
    m.blocks.inc();
    if is_config_block(&block)
        && validation.updates.txs.first().map(|u| u.code) == Some(TxValidationCode::Valid)
    {
        peer.apply_config(&block);
    }
    if let Err(e) = peer.lifecycle.refresh() {
        tracing::error!(block = number, error = %e, "cannot refresh chaincode definitions");
    }
    tracing::debug!(
        block = number,
        txs = validation.updates.txs.len(),
        valid = validation.stats.valid,
        ms = started.elapsed().as_millis() as u64,
        "block committed"
    );
    peer.height.send_replace(peer.ledger.height());
    Ok(())
}
