//! The digest a consortium's anchor-key quorum signs for one part of a
//! consumer reward batch, here so that the peers that sign it and the public
//! chain that checks it (`qcss_dpos::rewards`) share one definition.
//! Specified byte by byte in dpos/README.md ("Consumer rewards"); golden
//! vector in `qcss_dpos::reward_tests::golden_reward_digest`.

use crate::hash::{Hash32, hash_parts};

/// Domain tag of the digest (apart from anchor statements and key sets,
/// which the same keys sign).
pub const REWARD_DOMAIN: &[u8] = b"QCSS-DPOS-REWARD-v1";

/// `SHA-256(0x13 ‖ "QCSS-DPOS-REWARD-v1" ‖ chain_id[32] ‖ consortium_id[32]
/// ‖ u64_be(epoch) ‖ u32_be(part) ‖ u32_be(parts) ‖ u64_be(count)
/// ‖ count × (address[32] ‖ u64_be(amount)))`, entries as given (the chain
/// requires them sorted by address, without duplicates).
pub fn reward_digest(
    chain_id: &Hash32,
    consortium_id: &Hash32,
    epoch: u64,
    part: u32,
    parts: u32,
    entries: &[([u8; 32], u64)],
) -> Hash32 {
    let epoch = epoch.to_be_bytes();
    let part = part.to_be_bytes();
    let parts = parts.to_be_bytes();
    let count = (entries.len() as u64).to_be_bytes();
    let amounts: Vec<[u8; 8]> = entries.iter().map(|e| e.1.to_be_bytes()).collect();
    let mut v: Vec<&[u8]> = Vec::with_capacity(6 + 2 * entries.len());
    v.extend([
        &chain_id.0[..],
        &consortium_id.0,
        &epoch,
        &part,
        &parts,
        &count,
    ]);
    for (e, a) in entries.iter().zip(&amounts) {
        v.push(&e.0);
        v.push(a);
    }
    hash_parts(REWARD_DOMAIN, &v)
}
