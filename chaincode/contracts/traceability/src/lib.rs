//! The QCSS traceability contract: what the consortium exists for.
//!
//! Permits (`permit.rs`) gate who may register products and batches
//! (`catalog.rs`, with EPCIS transformations); batches carry EPCIS events
//! and custody (`events.rs`), aggregation into cases and pallets
//! (`aggregation.rs`), lab inspections endorsed by the lab's own peer
//! (`inspection.rs`), IoT readings and quality alerts (`iot.rs`), IoT state channels settled
//! from co-signed states (`iot_channel.rs`, with `qcss-iot`), unit
//! codes verified with no per-unit record plus consumer scans with clone
//! detection (`codes.rs`), recalls that run downstream (`recall.rs`), and
//! trace and audit queries (`trace.rs`). The consortium half of UCES:
//! the governed config (`governance.rs`), consumer evaluations voted on by
//! validators (`uces.rs`), the UCES coefficient and QCSS index per product
//! and enterprise (`index.rs`), and reward bindings and epoch batches
//! (`rewards.rs`). `store.rs` has the key layout and the caller's facts;
//! `ids.rs` parses GS1 identifiers.
//!
//! Deliberately absent: clocks (the transaction timestamp is "now"),
//! per-unit writes at issue time, and any edit of a recorded event —
//! corrections are new events. Every function and its JSON arguments are
//! documented in README.md.

mod aggregation;
mod catalog;
mod codes;
mod events;
mod governance;
mod ids;
mod index;
mod inspection;
mod iot;
mod iot_channel;
mod model;
mod permit;
mod recall;
mod rewards;
mod store;
mod trace;
mod uces;

use aggregation::{container_contents, pack, unpack};
use catalog::{
    get_batch, get_product, register_batch, register_product, set_code_key, set_limits, transform,
};
use codes::{claim, scan, verify_code};
use events::add_event;
use governance::{gov_approve, gov_get, gov_init, gov_propose};
use index::{index_explain, index_fold, index_get, index_pending};
use inspection::{accredit_lab, record_inspection};
use iot::{bind_device, submit_readings, unbind_device};
use iot_channel::{
    iot_alert, iot_challenge, iot_close, iot_evidence, iot_get_channel, iot_open, iot_settle,
};
use permit::{
    apply_permit, approve_permit, get_permit, reinstate_permit, reject_permit, suspend_permit,
};
use qcss_chaincode_sdk::contract;
use recall::recall;
use rewards::{bind_reward_address, rewards_epoch, rewards_get};
use trace::{audit, trace, trace_downstream, trace_upstream};
use uces::{uces_evaluate, uces_finalize, uces_get, uces_me, uces_vote};

contract!(
    apply_permit,
    approve_permit,
    reject_permit,
    suspend_permit,
    reinstate_permit,
    get_permit,
    accredit_lab,
    register_product,
    get_product,
    register_batch,
    get_batch,
    set_code_key,
    set_limits,
    transform,
    add_event,
    pack,
    unpack,
    container_contents,
    record_inspection,
    bind_device,
    unbind_device,
    submit_readings,
    iot_open,
    iot_close,
    iot_challenge,
    iot_settle,
    iot_alert,
    iot_evidence,
    iot_get_channel,
    verify_code,
    scan,
    claim,
    recall,
    trace,
    trace_upstream,
    trace_downstream,
    audit,
    gov_init,
    gov_propose,
    gov_approve,
    gov_get,
    uces_evaluate,
    uces_vote,
    uces_finalize,
    uces_get,
    uces_me,
    index_get,
    index_explain,
    index_fold,
    index_pending,
    bind_reward_address,
    rewards_epoch,
    rewards_get,
);
