//! The host functions of the `qcss` import module: the contract ABI
//! (documented in `chaincode/ABI.md`; keep the two in step). Every function
//! bounds-checks the guest pointers it receives, charges fuel, and turns
//! misuse into a [`HostFault`] that ends the invocation: the host never panics.

use wasmi::{Caller, Engine, Error, Linker, ValType, errors::LinkerError};

use crate::tx_context::{Fault, HOST_CALL_FUEL, HostFault, Meter, TxContext, panic_message};

/// The import module name.
pub(crate) const MODULE: &str = "qcss";

use ValType::{I32, I64};

/// Every host function and its wasm signature (params, results). `install`
/// refuses any other import; `tests::table_matches_linker` keeps this table
/// and [`linker`] in step.
pub(crate) const IMPORTS: &[(&str, &[ValType], &[ValType])] = &[
    ("input", &[], &[I64]),
    ("result_read", &[I32, I32], &[]),
    ("get_state", &[I32, I32], &[I64]),
    ("put_state", &[I32, I32, I32, I32], &[]),
    ("delete_state", &[I32, I32], &[]),
    ("get_state_range", &[I32, I32, I32, I32, I32], &[I64]),
    ("get_key_policy", &[I32, I32], &[I64]),
    ("set_key_policy", &[I32, I32, I32, I32], &[]),
    ("caller", &[], &[I64]),
    ("tx_id", &[], &[I64]),
    ("channel_id", &[], &[I64]),
    ("channel_orgs", &[], &[I64]),
    ("tx_timestamp", &[], &[I64]),
    ("tx_timestamp_nanos", &[], &[I32]),
    ("set_event", &[I32, I32, I32, I32], &[]),
    ("log", &[I32, I32, I32], &[]),
    ("output", &[I32, I32], &[]),
    ("panic", &[I32, I32], &[]),
    ("verify_ed25519", &[I32, I32, I32, I32, I32, I32], &[I32]),
];

/// Result of a data-returning call when there is no data (absent key, no policy).
const ABSENT: i64 = -1;
/// Range bounds may exceed `key_bytes` by this much (room for the U+10FFFF
/// that ends a partial composite key range).
const RANGE_BOUND_SLACK: usize = 4;

/// Fuel charged for one `verify_ed25519` on top of [`HOST_CALL_FUEL`] and
/// the bytes moved: about what the verification costs in host time, at
/// wasmi's measured rate (`chaincode/ABI.md`, "Fuel").
pub(crate) const VERIFY_ED25519_FUEL: u64 = 100_000;

type Cx<'c, 'a> = Caller<'c, TxContext<'a>>;

/// A linker holding every host function, for stores of one invocation.
pub(crate) fn linker<'a>(engine: &Engine) -> Result<Linker<TxContext<'a>>, LinkerError> {
    let mut l = Linker::<TxContext<'a>>::new(engine);
    l.func_wrap(MODULE, "input", |mut c: Cx<'_, 'a>| {
        call(&mut c, "input", |_, cx, m| {
            let data = encode_list(&cx.inv.args);
            m.charge_bytes(data.len())?;
            Ok(cx.stage(data))
        })
    })?;
    l.func_wrap(
        MODULE,
        "result_read",
        |mut c: Cx<'_, 'a>, ptr: i32, len: i32| {
            call(&mut c, "result_read", |mem, cx, m| {
                let dst = slice_mut(mem, ptr, len)?;
                let data = cx.take_staged(len as u32)?;
                m.charge_bytes(data.len())?;
                dst.copy_from_slice(&data);
                Ok(())
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "get_state",
        |mut c: Cx<'_, 'a>, kp: i32, kl: i32| {
            call(&mut c, "get_state", |mem, cx, m| {
                let key = cx.key(slice(mem, kp, kl)?)?;
                Ok(match cx.get_state(key, m)? {
                    Some(value) => cx.stage(value),
                    None => ABSENT,
                })
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "put_state",
        |mut c: Cx<'_, 'a>, kp: i32, kl: i32, vp: i32, vl: i32| {
            call(&mut c, "put_state", |mem, cx, m| {
                let key = cx.key(slice(mem, kp, kl)?)?;
                let value = slice(mem, vp, vl)?;
                m.charge_bytes(value.len())?;
                cx.write(key, Some(value.to_vec()))
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "delete_state",
        |mut c: Cx<'_, 'a>, kp: i32, kl: i32| {
            call(&mut c, "delete_state", |mem, cx, _| {
                let key = cx.key(slice(mem, kp, kl)?)?;
                cx.write(key, None)
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "get_state_range",
        |mut c: Cx<'_, 'a>, sp: i32, sl: i32, ep: i32, el: i32, limit: i32| {
            call(&mut c, "get_state_range", |mem, cx, m| {
                let start = range_bound(cx, slice(mem, sp, sl)?)?;
                let end = range_bound(cx, slice(mem, ep, el)?)?;
                let scan = cx.range(start, end, limit as u32, m)?;
                let mut data = vec![u8::from(scan.more)];
                data.extend(encode_list(
                    scan.rows
                        .iter()
                        .flat_map(|(k, v)| [k.as_bytes(), v.as_slice()]),
                ));
                Ok(cx.stage(data))
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "get_key_policy",
        |mut c: Cx<'_, 'a>, kp: i32, kl: i32| {
            call(&mut c, "get_key_policy", |mem, cx, m| {
                let key = cx.key(slice(mem, kp, kl)?)?;
                Ok(match cx.get_key_policy(key)? {
                    Some(policy) => {
                        m.charge_bytes(policy.len())?;
                        cx.stage(policy)
                    }
                    None => ABSENT,
                })
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "set_key_policy",
        |mut c: Cx<'_, 'a>, kp: i32, kl: i32, pp: i32, pl: i32| {
            call(&mut c, "set_key_policy", |mem, cx, m| {
                let key = cx.key(slice(mem, kp, kl)?)?;
                let policy = slice(mem, pp, pl)?;
                m.charge_bytes(policy.len())?;
                cx.set_key_policy(key, (!policy.is_empty()).then(|| policy.to_vec()))
            })
        },
    )?;
    l.func_wrap(MODULE, "caller", |mut c: Cx<'_, 'a>| {
        call(&mut c, "caller", |_, cx, m| {
            let data = cx.caller_json();
            m.charge_bytes(data.len())?;
            Ok(cx.stage(data))
        })
    })?;
    l.func_wrap(MODULE, "tx_id", |mut c: Cx<'_, 'a>| {
        call(&mut c, "tx_id", |_, cx, _| {
            Ok(cx.stage(cx.inv.tx_id.as_bytes().to_vec()))
        })
    })?;
    l.func_wrap(MODULE, "channel_id", |mut c: Cx<'_, 'a>| {
        call(&mut c, "channel_id", |_, cx, _| {
            Ok(cx.stage(cx.inv.channel.as_bytes().to_vec()))
        })
    })?;
    l.func_wrap(MODULE, "channel_orgs", |mut c: Cx<'_, 'a>| {
        call(&mut c, "channel_orgs", |_, cx, _| {
            // A JSON array of strings: serialising one cannot fail.
            let json = serde_json::to_vec(&cx.inv.channel_orgs).unwrap_or_default();
            Ok(cx.stage(json))
        })
    })?;
    l.func_wrap(MODULE, "tx_timestamp", |mut c: Cx<'_, 'a>| {
        call(&mut c, "tx_timestamp", |_, cx, _| {
            Ok(cx.inv.timestamp.seconds)
        })
    })?;
    l.func_wrap(MODULE, "tx_timestamp_nanos", |mut c: Cx<'_, 'a>| {
        call(&mut c, "tx_timestamp_nanos", |_, cx, _| {
            Ok(cx.inv.timestamp.nanos)
        })
    })?;
    l.func_wrap(
        MODULE,
        "set_event",
        |mut c: Cx<'_, 'a>, np: i32, nl: i32, pp: i32, pl: i32| {
            call(&mut c, "set_event", |mem, cx, m| {
                let (name, payload) = (slice(mem, np, nl)?, slice(mem, pp, pl)?);
                m.charge_bytes(name.len() + payload.len())?;
                cx.set_event(name, payload)
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "log",
        |mut c: Cx<'_, 'a>, level: i32, p: i32, len: i32| {
            call(&mut c, "log", |mem, cx, m| {
                let message = slice(mem, p, len)?;
                m.charge_bytes(message.len())?;
                cx.log(level as u32, message);
                Ok(())
            })
        },
    )?;
    l.func_wrap(MODULE, "output", |mut c: Cx<'_, 'a>, p: i32, len: i32| {
        call(&mut c, "output", |mem, cx, m| {
            let data = slice(mem, p, len)?;
            m.charge_bytes(data.len())?;
            cx.set_output(data)
        })
    })?;
    l.func_wrap(
        MODULE,
        "verify_ed25519",
        |mut c: Cx<'_, 'a>, kp: i32, kl: i32, mp: i32, ml: i32, sp: i32, sl: i32| {
            call(&mut c, "verify_ed25519", |mem, _, m| {
                let (key, msg, sig) = (
                    slice(mem, kp, kl)?,
                    slice(mem, mp, ml)?,
                    slice(mem, sp, sl)?,
                );
                m.charge(VERIFY_ED25519_FUEL)?;
                m.charge_bytes(key.len() + msg.len() + sig.len())?;
                Ok(i32::from(verify_ed25519(key, msg, sig)))
            })
        },
    )?;
    l.func_wrap(MODULE, "panic", |mut c: Cx<'_, 'a>, p: i32, len: i32| {
        call(&mut c, "panic", |mem, _, _| -> Result<(), Fault> {
            Err(Fault::Panic(panic_message(slice(mem, p, len)?)))
        })
    })?;
    Ok(l)
}

/// Runs one host call: charges [`HOST_CALL_FUEL`], hands `f` the guest
/// memory, the [`TxContext`] and a fuel meter, writes the fuel left back
/// into the store, and turns a [`Fault`] into a wasmi host error.
fn call<'a, R>(
    caller: &mut Cx<'_, 'a>,
    import: &'static str,
    f: impl FnOnce(&mut [u8], &mut TxContext<'a>, &mut Meter) -> Result<R, Fault>,
) -> Result<R, Error> {
    // Fuel metering is always on in the runtime's engine, so `get_fuel`
    // and `set_fuel` cannot fail; if they somehow did, we'd run on 0 fuel.
    let mut meter = Meter {
        remaining: caller.get_fuel().unwrap_or(0),
    };
    let result = with_memory(caller, &mut meter, f);
    let _ = caller.set_fuel(meter.remaining);
    result.map_err(|fault| Error::host(HostFault { import, fault }))
}

fn with_memory<'a, R>(
    caller: &mut Cx<'_, 'a>,
    meter: &mut Meter,
    f: impl FnOnce(&mut [u8], &mut TxContext<'a>, &mut Meter) -> Result<R, Fault>,
) -> Result<R, Fault> {
    meter.charge(HOST_CALL_FUEL)?;
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| Fault::Misuse("called before the instance was ready".into()))?;
    let (mem, cx) = memory.data_and_store_mut(&mut *caller);
    f(mem, cx, meter)
}

/// Checks an Ed25519 signature (RFC 8032, ring's strict verification:
/// a 32-byte key, a 64-byte signature with `s` reduced). Any malformed
/// input is simply "not valid": the contract decides what that means.
fn verify_ed25519(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(msg, sig)
        .is_ok()
}

/// The guest bytes `[ptr, ptr + len)`; wasm32 pointers and lengths are unsigned.
fn slice(mem: &[u8], ptr: i32, len: i32) -> Result<&[u8], Fault> {
    let range = bounds(mem.len(), ptr, len)?;
    Ok(&mem[range])
}

fn slice_mut(mem: &mut [u8], ptr: i32, len: i32) -> Result<&mut [u8], Fault> {
    let range = bounds(mem.len(), ptr, len)?;
    Ok(&mut mem[range])
}

fn bounds(memory_len: usize, ptr: i32, len: i32) -> Result<std::ops::Range<usize>, Fault> {
    let (p, l) = (ptr as u32, len as u32);
    let start = p as usize;
    match start.checked_add(l as usize) {
        Some(end) if end <= memory_len => Ok(start..end),
        _ => Err(Fault::BadPointer {
            ptr: p,
            len: l,
            memory_len: memory_len as u64,
        }),
    }
}

fn range_bound(cx: &TxContext<'_>, bytes: &[u8]) -> Result<String, Fault> {
    let max = usize::try_from(cx.limits.key_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(RANGE_BOUND_SLACK);
    if bytes.len() > max {
        return Err(Fault::Limit {
            limit: crate::Limit::KeyBytes,
            max: max as u64,
            actual: bytes.len() as u64,
        });
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| Fault::Misuse("range bound is not UTF-8".into()))
}

/// ABI list encoding: u32 LE count, then per item a u32 LE length and the bytes.
fn encode_list<I, B>(items: I) -> Vec<u8>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut out = vec![0; 4];
    let mut count: u32 = 0;
    for item in items {
        let item = item.as_ref();
        // Items are bounded by Limits (args_bytes, value_bytes), far below 4 GiB.
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
        count += 1;
    }
    out[..4].copy_from_slice(&count.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_without_overflow() {
        assert_eq!(bounds(10, 2, 8).unwrap(), 2..10);
        assert_eq!(bounds(10, 10, 0).unwrap(), 10..10);
        assert!(bounds(10, 2, 9).is_err());
        assert!(bounds(10, -1, 1).is_err());
        assert!(bounds(10, 1, -1).is_err());
        assert!(bounds(usize::MAX, -1, -1).is_ok() || usize::BITS < 64);
    }

    #[test]
    fn list_encoding() {
        assert_eq!(encode_list(Vec::<Vec<u8>>::new()), [0, 0, 0, 0]);
        assert_eq!(
            encode_list([b"ab".as_slice(), b""]),
            [2, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]
        );
    }

    #[test]
    fn ed25519_verification() {
        use ring::signature::{Ed25519KeyPair, KeyPair};
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let key = pair.public_key().as_ref();
        let sig = pair.sign(b"msg");
        assert!(verify_ed25519(key, b"msg", sig.as_ref()));
        assert!(!verify_ed25519(key, b"msh", sig.as_ref()));
        assert!(!verify_ed25519(&key[1..], b"msg", sig.as_ref()));
        assert!(!verify_ed25519(key, b"msg", &sig.as_ref()[..63]));
        assert!(!verify_ed25519(b"", b"", b""));
    }

    #[test]
    fn table_matches_linker() {
        // A module importing every table entry with the table's signature
        // must link; so the table and the linker agree.
        let engine = Engine::default();
        let mut wat = String::from("(module\n");
        for (name, params, results) in IMPORTS {
            let p: Vec<_> = params
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect();
            let r: Vec<_> = results
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect();
            wat.push_str(&format!(
                "(import \"qcss\" \"{name}\" (func (param {}) (result {})))\n",
                p.join(" "),
                r.join(" ")
            ));
        }
        wat.push_str("(memory (export \"memory\") 1))");
        let module = wasmi::Module::new(&engine, wat::parse_str(&wat).unwrap()).unwrap();
        let (state, inv, limits) = (
            crate::MemoryState::new(),
            crate::runtime::tests::invocation("f", &[]),
            crate::Limits::default(),
        );
        let mut store = wasmi::Store::new(&engine, TxContext::new(&state, &inv, &limits));
        let linker = linker(&engine).unwrap();
        linker.instantiate_and_start(&mut store, &module).unwrap();
        assert_eq!(module.imports().len(), IMPORTS.len());
    }
}
