//! Unit tests: encodings round-trip and are canonical, a channel refuses
//! what does not continue it, signatures are domain-separated, and the
//! property that every reading's proof verifies against the settled root
//! and no other.

use qcss_anchor::mmr::MemStore;

use crate::keys::{Key, verify};
use crate::params::{ChannelParams, Measure, Schema, gateway_identity};
use crate::reading::MMR;
use crate::wire::Message;
use crate::{Channel, IotError, Party, Reading, ReadingProof, SignedState, State};

fn params(nonce: u64) -> ChannelParams {
    ChannelParams {
        ledger: "qcss".into(),
        device: "LogisticsMSP/truck-7".into(),
        device_key: Key::from_secret([1; 32]).public(),
        gateway: gateway_identity("LogisticsMSP", "-----BEGIN CERTIFICATE-----"),
        gateway_key: Key::from_secret([2; 32]).public(),
        batch: "06901234560022/LJ2026A".into(),
        schema: Schema(vec![
            Measure {
                kind: "gs1:Temperature".into(),
                unit: "CEL".into(),
                min: Some(0.0),
                max: Some(8.0),
            },
            Measure {
                kind: "gs1:RelativeHumidity".into(),
                unit: "P1".into(),
                min: None,
                max: Some(90.0),
            },
        ]),
        challenge_secs: 600,
        nonce,
    }
}

/// splitmix64: a fixed, dependency-free generator, so a failing case replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn reading(seq: u64, time: i64, t: f64) -> Reading {
    Reading {
        seq,
        time,
        values: vec![t, 50.0],
    }
}

#[test]
fn channel_id_commits_to_every_parameter() {
    let base = params(1);
    let id = base.id();
    let mut variants = Vec::new();
    let mut p = base.clone();
    p.ledger = "other".into();
    variants.push(p);
    let mut p = base.clone();
    p.nonce = 2;
    variants.push(p);
    let mut p = base.clone();
    p.batch = "06901234560022/LJ2026B".into();
    variants.push(p);
    let mut p = base.clone();
    p.challenge_secs = 601;
    variants.push(p);
    let mut p = base.clone();
    p.schema.0[0].max = Some(8.5);
    variants.push(p);
    let mut p = base.clone();
    p.gateway_key = Key::from_secret([3; 32]).public();
    variants.push(p);
    for v in variants {
        assert_ne!(v.id(), id, "{v:?}");
    }
    assert_eq!(ChannelParams::decode(&base.encode()).unwrap(), base);
    // Pinned: the encoding and the id are consensus-relevant (the contract
    // recomputes them), so any change must be deliberate.
    assert_eq!(
        id.to_string(),
        "487d4e0cb73bb2cb7d6322c285fc43c67689824d1eec04c3f3a07db006a2605c"
    );
}

#[test]
fn params_are_bounded() {
    let mut p = params(1);
    p.schema.0 = (0..9)
        .map(|i| Measure {
            kind: format!("m{i}"),
            unit: "CEL".into(),
            min: None,
            max: None,
        })
        .collect();
    assert!(matches!(p.check(), Err(IotError::Params(_))));
    let mut p = params(1);
    p.challenge_secs = 0;
    assert!(p.check().is_err());
    let mut p = params(1);
    p.schema.0[0].min = Some(9.0);
    assert!(p.check().unwrap_err().to_string().contains("above its max"));
}

#[test]
fn state_encoding_is_canonical_and_round_trips() {
    let mut ch = Channel::open(params(1)).unwrap();
    let s = ch
        .apply(&[reading(0, 100, 4.0), reading(1, 101, 9.5)], false)
        .unwrap()
        .clone();
    let bytes = s.encode();
    assert_eq!(bytes.len(), 1 + 32 + 8 + 8 + 32 + 8 + 1 + 2 * 16 + 1);
    assert_eq!(State::decode(&bytes).unwrap(), s);
    // Trailing bytes, a bad flag, a wrong version, min > max: refused.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(State::decode(&longer).is_err());
    let mut flag = bytes.clone();
    *flag.last_mut().unwrap() = 2;
    assert!(State::decode(&flag).is_err());
    let mut version = bytes.clone();
    version[0] = 2;
    assert!(
        State::decode(&version)
            .unwrap_err()
            .to_string()
            .contains("version 2")
    );
    assert!(State::decode(&vec![0u8; 10_000]).is_err());
    assert_eq!(s.min, vec![4.0, 50.0]);
    assert_eq!(s.max, vec![9.5, 50.0]);
    assert_eq!(s.violations(ch.params()), vec![(0, 9.5)]);
}

#[test]
fn channel_refuses_what_does_not_continue_it() {
    let mut ch = Channel::open(params(1)).unwrap();
    ch.apply(&[reading(0, 100, 4.0)], false).unwrap();
    let before = ch.state().clone();
    // Wrong number, time going back, wrong arity, NaN, empty non-final.
    assert!(ch.apply(&[reading(2, 101, 4.0)], false).is_err());
    assert!(ch.apply(&[reading(1, 99, 4.0)], false).is_err());
    let short = Reading {
        seq: 1,
        time: 101,
        values: vec![1.0],
    };
    assert!(ch.apply(&[short], false).is_err());
    assert!(ch.apply(&[reading(1, 101, f64::NAN)], false).is_err());
    assert!(ch.apply(&[], false).is_err());
    // A refused update in the middle of a batch changes nothing.
    assert!(
        ch.apply(&[reading(1, 101, 4.0), reading(3, 102, 4.0)], false)
            .is_err()
    );
    assert_eq!(ch.state(), &before);
    ch.apply(&[], true).unwrap();
    assert!(matches!(
        ch.apply(&[reading(1, 101, 4.0)], false),
        Err(IotError::Final(_))
    ));
}

#[test]
fn gateway_checks_the_proposed_state() {
    let mut device = Channel::open(params(1)).unwrap();
    let mut gateway = Channel::open(params(1)).unwrap();
    let rs = [reading(0, 100, 4.0), reading(1, 105, 5.0)];
    let proposed = device.apply(&rs, false).unwrap().clone();
    let mut lie = proposed.clone();
    lie.max[0] = 4.5;
    assert!(matches!(
        gateway.expect(&rs, &lie),
        Err(IotError::StateMismatch { .. })
    ));
    let mut lie = proposed.clone();
    lie.count = 3;
    assert!(gateway.expect(&rs, &lie).is_err());
    assert_eq!(gateway.expect(&rs, &proposed).unwrap(), &proposed);
}

#[test]
fn signatures_are_domain_separated() {
    let p = params(1);
    let (dk, gk) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    let mut ch = Channel::open(p.clone()).unwrap();
    let s = ch.apply(&[reading(0, 100, 4.0)], false).unwrap().clone();
    let signed = SignedState {
        state: s.clone(),
        device_sig: dk.sign(&s, Party::Device),
        gateway_sig: gk.sign(&s, Party::Gateway),
    };
    signed.check(&p, &verify).unwrap();
    // The device's signature is not the gateway's, nor the other way round.
    let swapped = SignedState {
        state: s.clone(),
        device_sig: dk.sign(&s, Party::Gateway),
        gateway_sig: gk.sign(&s, Party::Device),
    };
    assert!(matches!(
        swapped.check(&p, &verify),
        Err(IotError::BadSignature {
            party: Party::Device,
            ..
        })
    ));
    // The same state on another ledger's channel is another channel.
    let mut other = p.clone();
    other.ledger = "other".into();
    assert!(matches!(
        signed.check(&other, &verify),
        Err(IotError::WrongChannel { .. })
    ));
    // JSON round trip.
    let json = serde_json::to_string(&signed).unwrap();
    assert_eq!(serde_json::from_str::<SignedState>(&json).unwrap(), signed);
}

#[test]
fn wire_messages_round_trip_and_are_bounded() {
    let mut ch = Channel::open(params(1)).unwrap();
    let rs: Vec<Reading> = (0..10).map(|i| reading(i, 100 + i as i64, 3.0)).collect();
    let s = ch.apply(&rs, false).unwrap().clone();
    let sig = Key::from_secret([1; 32]).sign(&s, Party::Device);
    for m in [
        Message::Update {
            state: s.clone(),
            device_sig: sig,
            readings: rs.clone(),
        },
        Message::Ack {
            seq: 1,
            gateway_sig: sig,
        },
        Message::Refuse("no".into()),
    ] {
        let f = m.frame();
        let len = Message::frame_len(f[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, f.len() - 4);
        assert_eq!(Message::decode(&f[4..]).unwrap(), m);
    }
    assert!(Message::frame_len(u32::MAX.to_le_bytes()).is_err());
    assert!(Message::frame_len([0; 4]).is_err());
    // A count larger than the bound is refused before anything is allocated.
    let mut f = Message::Update {
        state: s,
        device_sig: sig,
        readings: vec![],
    }
    .frame();
    let n = f.len() - 4;
    f[n..].copy_from_slice(&(u32::MAX).to_le_bytes());
    assert!(matches!(
        Message::decode(&f[4..]),
        Err(IotError::TooLarge { .. })
    ));
}

/// Property: over random channels (sizes, batching, values), every
/// reading's proof verifies against the settled state, and against no
/// earlier state, no other channel's state, and not for a changed reading.
#[test]
fn every_reading_proves_against_the_settled_root_and_no_other() {
    let mut rng = Rng(0x5eed);
    for case in 0..60 {
        let p = params(case);
        let other_p = params(case + 1000);
        let mut ch = Channel::open(p.clone()).unwrap();
        let mut other = Channel::open(other_p).unwrap();
        let mut store = MemStore::default();
        let mut readings = Vec::new();
        let mut states = Vec::new();
        let n = 1 + rng.below(300);
        let mut time = 1_700_000_000i64;
        while (readings.len() as u64) < n {
            let k = (1 + rng.below(40)).min(n - readings.len() as u64);
            let batch: Vec<Reading> = (0..k)
                .map(|j| {
                    time += rng.below(3) as i64;
                    reading(
                        readings.len() as u64 + j,
                        time,
                        (rng.below(2000) as f64) / 100.0 - 5.0,
                    )
                })
                .collect();
            for r in &batch {
                store.append(&MMR, r.leaf(&ch.id()));
            }
            readings.extend(batch.iter().cloned());
            states.push(ch.apply(&batch, false).unwrap().clone());
            other.apply(&batch, false).unwrap();
        }
        let settled = ch.apply(&[], true).unwrap().clone();
        let other_settled = other.apply(&[], true).unwrap().clone();
        assert_eq!(settled.root, store.peaks.root(&MMR));
        for r in &readings {
            let proof = ReadingProof::build(&store, r.clone(), settled.count).unwrap();
            proof.verify(&settled).unwrap();
            assert!(proof.verify(&other_settled).is_err(), "case {case}");
            for s in &states[..states.len() - 1] {
                assert!(
                    proof.verify(s).is_err(),
                    "case {case}: earlier state {}",
                    s.seq
                );
                // Even a proof re-sized to the earlier state does not fit it.
                let mut resized = proof.clone();
                resized.proof.size = s.count;
                assert!(resized.verify(s).is_err());
            }
            let mut changed = proof.clone();
            changed.reading.values[0] += 0.01;
            assert!(changed.verify(&settled).is_err());
            let mut moved = proof.clone();
            moved.reading.seq = (r.seq + 1) % settled.count;
            moved.proof.leaf_index = moved.reading.seq;
            if moved.reading.seq != r.seq {
                assert!(moved.verify(&settled).is_err());
            }
        }
    }
}

#[test]
fn small_order_keys_are_refused_and_the_list_is_right() {
    use crate::params::SMALL_ORDER_KEYS;
    // Each listed encoding is weak to ed25519-dalek (or does not decode).
    for k in SMALL_ORDER_KEYS {
        let weak = ed25519_dalek::VerifyingKey::from_bytes(&k).map_or(true, |vk| vk.is_weak());
        assert!(weak, "{} is not a small-order key", hex::encode(k));
    }
    assert!(!Key::from_secret([1; 32]).public().is_small_order());
    // A channel with one is refused, naming the party.
    let mut p = params(1);
    p.gateway_key = crate::PublicKey(SMALL_ORDER_KEYS[2]);
    let e = p.check().unwrap_err().to_string();
    assert!(
        e.contains("gateway key") && e.contains("small-order"),
        "{e}"
    );
    // The identity key: a signature anyone can make (R = identity, s = 0)
    // is refused by the strict check the CLI uses.
    let mut forged = [0u8; 64];
    forged[0] = 1;
    assert!(!verify(
        &crate::PublicKey(SMALL_ORDER_KEYS[2]),
        b"any",
        &crate::Signature(forged)
    ));
}
