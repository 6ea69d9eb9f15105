//! IoT state channel figures on one core (no network, no ledger): a device
//! and a gateway in one thread run the whole per-update protocol — the
//! device applies readings to its peaks-only channel and signs, the
//! update is framed and decoded, the gateway verifies the device's
//! signature, re-applies and compares, counter-signs, and the device
//! verifies that — for 100,000 readings at several update sizes. Prints a
//! table and one JSON line.
//!
//! `cargo run --release -p qcss-iot --example iot_bench`

use std::time::Instant;

use qcss_iot::keys::{Key, verify};
use qcss_iot::params::{ChannelParams, Measure, Schema};
use qcss_iot::state::check_sig;
use qcss_iot::wire::Message;
use qcss_iot::{Channel, Party, Reading};

const READINGS: u64 = 100_000;

fn params() -> ChannelParams {
    ChannelParams {
        ledger: "qcss".into(),
        device: "Org1MSP/truck-7".into(),
        device_key: Key::from_secret([1; 32]).public(),
        gateway: "Org1MSP:bench".into(),
        gateway_key: Key::from_secret([2; 32]).public(),
        batch: "06901234560039/CC2026A".into(),
        schema: Schema(vec![Measure {
            kind: "gs1:Temperature".into(),
            unit: "CEL".into(),
            min: Some(0.0),
            max: Some(8.0),
        }]),
        challenge_secs: 600,
        nonce: 1,
    }
}

struct Run {
    per_update: usize,
    readings: u64,
    updates: u64,
    seconds: f64,
    update_bytes: u64,
    ack_bytes: u64,
}

fn run(per_update: usize, readings: u64) -> Run {
    let (dk, gk) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    let p = params();
    let mut device = Channel::open(p.clone()).expect("params");
    let mut gateway = Channel::open(p.clone()).expect("params");
    let (mut updates, mut update_bytes, mut ack_bytes) = (0u64, 0u64, 0u64);
    let t = Instant::now();
    let mut next = 0u64;
    while next < readings {
        let end = (next + per_update as u64).min(readings);
        let rs: Vec<Reading> = (next..end)
            .map(|i| Reading {
                seq: i,
                time: 1_780_000_000 + i as i64,
                values: vec![4.0 + (i % 7) as f64 * 0.25],
            })
            .collect();
        next = end;
        // Device: apply, sign, send.
        let state = device.apply(&rs, false).expect("apply").clone();
        let device_sig = dk.sign(&state, Party::Device);
        let frame = Message::Update {
            state,
            device_sig,
            readings: rs,
        }
        .frame();
        update_bytes += frame.len() as u64;
        // Gateway: decode, verify, re-apply and compare, counter-sign.
        let Ok(Message::Update {
            state,
            device_sig,
            readings: rs,
        }) = Message::decode(&frame[4..])
        else {
            panic!("update decodes")
        };
        check_sig(&state, &p, Party::Device, &device_sig, &verify).expect("device sig");
        gateway.expect(&rs, &state).expect("same state");
        let gateway_sig = gk.sign(&state, Party::Gateway);
        let ack = Message::Ack {
            seq: state.seq,
            gateway_sig,
        }
        .frame();
        ack_bytes += ack.len() as u64;
        // Device: verify the counter-signature.
        let Ok(Message::Ack { gateway_sig, .. }) = Message::decode(&ack[4..]) else {
            panic!("ack decodes")
        };
        check_sig(device.state(), &p, Party::Gateway, &gateway_sig, &verify).expect("gw sig");
        updates += 1;
    }
    Run {
        per_update,
        readings,
        updates,
        seconds: t.elapsed().as_secs_f64(),
        update_bytes,
        ack_bytes,
    }
}

fn main() {
    let state_bytes = Channel::open(params())
        .expect("params")
        .apply(
            &[Reading {
                seq: 0,
                time: 0,
                values: vec![1.0],
            }],
            false,
        )
        .expect("apply")
        .encode()
        .len();
    println!("IoT state channel, one core, {READINGS} readings of 1 measure");
    println!(
        "state: {state_bytes} bytes encoded, {} bytes with both signatures",
        state_bytes + 128
    );
    println!(
        "{:>10} {:>9} {:>12} {:>14} {:>12} {:>10}",
        "per update", "updates", "seconds", "readings/s", "bytes/update", "ack bytes"
    );
    let mut rows = Vec::new();
    for per_update in [1usize, 10, 100, 1000] {
        let r = run(per_update, READINGS);
        let rate = r.readings as f64 / r.seconds;
        println!(
            "{:>10} {:>9} {:>12.3} {:>14.0} {:>12.1} {:>10}",
            r.per_update,
            r.updates,
            r.seconds,
            rate,
            r.update_bytes as f64 / r.updates as f64,
            r.ack_bytes / r.updates
        );
        rows.push(format!(
            "{{\"per_update\":{},\"updates\":{},\"seconds\":{:.4},\"readings_per_sec\":{:.0},\"update_frame_bytes\":{:.1},\"ack_frame_bytes\":{},\"wire_bytes_per_reading\":{:.2}}}",
            r.per_update,
            r.updates,
            r.seconds,
            rate,
            r.update_bytes as f64 / r.updates as f64,
            r.ack_bytes / r.updates,
            (r.update_bytes + r.ack_bytes) as f64 / r.readings as f64
        ));
    }
    // On the ledger: one transaction per reading, against a channel's open
    // and one cooperative close (a dispute adds a challenge and a settle;
    // each proven out-of-limit reading one more).
    let one_by_one = READINGS;
    let channel = 2u64;
    println!(
        "ledger transactions for {READINGS} readings: {one_by_one} one-reading-one-transaction, {channel} with a channel (open + cooperative close): {} saved ({:.3}%)",
        one_by_one - channel,
        100.0 * (one_by_one - channel) as f64 / one_by_one as f64
    );
    println!(
        "{{\"bench\":\"iot\",\"readings\":{READINGS},\"state_bytes\":{state_bytes},\"signed_state_bytes\":{},\"runs\":[{}],\"ledger_txs_one_by_one\":{one_by_one},\"ledger_txs_channel\":{channel},\"ledger_txs_saved\":{}}}",
        state_bytes + 128,
        rows.join(","),
        one_by_one - channel
    );
}
