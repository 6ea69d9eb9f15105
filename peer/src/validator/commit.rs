//! The committer: [`commit_block`] checks a delivered block's orderer
//! signature, validates it against a snapshot of the ledger and commits it;
//! [`commit_genesis`] commits the channel's (unsigned) genesis block.
//!
//! Call them from one committer per ledger (the Deliver loop). Validation
//! reads the state under one snapshot at height `n` and the ledger commits
//! only block `n`, so a block is never committed against state it was not
//! validated on: if another commit slipped in between, the ledger refuses.

use qcss_network::block::{check_data_hash, config_from_block, verify_block_signature};
use qcss_network::channel::Channel;
use qcss_proto::common::Block;
use qcss_proto::protos::TxValidationCode;

use crate::ledger::Ledger;
use crate::validator::{
    LedgerSnapshot, PolicyProvider, StaticPolicies, ValidateOptions, Validation, ValidatorError,
    validate_block_with,
};

/// Verifies, validates and commits the next block; returns the code of each
/// transaction, in block order.
///
/// Refused, with nothing committed: a block without a header, not signed by
/// a consenter of `channel` (or with a wrong signature), whose data does not
/// match its header's data hash, that is not the ledger's next block, or
/// that the ledger refuses (previous-hash link). Invalid transactions are
/// not refusals: they are committed with their codes and change no state.
pub fn commit_block<P: PolicyProvider + ?Sized>(
    ledger: &Ledger,
    block: &Block,
    channel: &Channel,
    policies: &P,
) -> Result<Vec<TxValidationCode>, ValidatorError> {
    let validation =
        commit_block_with(ledger, block, channel, policies, ValidateOptions::default())?;
    Ok(validation.updates.txs.iter().map(|u| u.code).collect())
}

/// [`commit_block`] with options, returning the updates and timings.
pub fn commit_block_with<P: PolicyProvider + ?Sized>(
    ledger: &Ledger,
    block: &Block,
    channel: &Channel,
    policies: &P,
    options: ValidateOptions<'_>,
) -> Result<Validation, ValidatorError> {
    let number = block
        .header
        .as_ref()
        .ok_or(ValidatorError::NoHeader)?
        .number;
    let refused = |source| ValidatorError::BlockRefused { number, source };
    verify_block_signature(block, channel).map_err(refused)?;
    check_data_hash(block).map_err(refused)?;
    // The anchoring root the orderers certified must be this ledger's own
    // (checked once the MMR is indexed up to here: always, after start-up).
    if let Some(certified) = qcss_network::block::block_mmr_root(block)
        && let Some(ours) = ledger
            .mmr_root(number)
            .map_err(|source| ValidatorError::Commit { number, source })?
        && ours.0 != certified
    {
        return Err(ValidatorError::MmrRootMismatch {
            number,
            certified: hex::encode(certified),
            ours: ours.to_hex(),
        });
    }
    let validation = validate_next(ledger, block, channel, policies, options)?;
    ledger
        .commit(block, &validation.updates)
        .map_err(|source| ValidatorError::Commit { number, source })?;
    Ok(validation)
}

/// Commits block 0 of `channel`, which the ordering service does not sign
/// (the peer trusts it because it was handed it to join the channel): it
/// must be a config block carrying exactly `channel`'s configuration, and
/// the ledger must be empty.
pub fn commit_genesis(
    ledger: &Ledger,
    block: &Block,
    channel: &Channel,
) -> Result<(), ValidatorError> {
    let number = block
        .header
        .as_ref()
        .ok_or(ValidatorError::NoHeader)?
        .number;
    let not = |reason: String| ValidatorError::NotGenesis { number, reason };
    if number != 0 {
        return Err(not("its number is not 0".into()));
    }
    let config = config_from_block(block).map_err(|e| not(e.to_string()))?;
    if &config != channel.config() {
        return Err(not("its configuration is not the channel's".into()));
    }
    let validation = validate_next(
        ledger,
        block,
        channel,
        &StaticPolicies::new(),
        ValidateOptions::default(),
    )?;
    if let Some(bad) = validation
        .updates
        .txs
        .iter()
        .find(|u| u.code != TxValidationCode::Valid)
    {
        return Err(not(format!(
            "its transaction is {}",
            bad.code.as_str_name()
        )));
    }
    ledger
        .commit(block, &validation.updates)
        .map_err(|source| ValidatorError::Commit { number, source })
}

/// Validates `block` under a snapshot of `ledger`, which must be at the
/// block's height. The snapshot is released before returning, so the
/// caller can commit.
fn validate_next<P: PolicyProvider + ?Sized>(
    ledger: &Ledger,
    block: &Block,
    channel: &Channel,
    policies: &P,
    options: ValidateOptions<'_>,
) -> Result<Validation, ValidatorError> {
    let number = block
        .header
        .as_ref()
        .ok_or(ValidatorError::NoHeader)?
        .number;
    let snapshot = LedgerSnapshot::new(ledger);
    if snapshot.height() != number {
        return Err(ValidatorError::NotNext {
            number,
            height: snapshot.height(),
        });
    }
    validate_block_with(block, channel, &snapshot, policies, options)
}
