//! Ports for nodes this machine is about to start (`qcss network up`, the
//! benches, the end-to-end tests): free now, never handed out twice by one
//! process, and **outside the kernel's ephemeral range**.
//!
//! A port found by binding port 0 and releasing it is an ephemeral port:
//! any outgoing connection on the machine (a node dialling a peer, a health
//! probe) may take it as its local port before the node that was given it
//! binds it, and that node fails with "address already in use". Under a
//! test suite that starts hundreds of nodes this happened. Ports below the
//! ephemeral range are only ever taken by something listening on them.

use std::collections::BTreeSet;
use std::io;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// Ports below the ephemeral range that are searched.
const SPAN: u16 = 12_000;

/// The lower end of the kernel's ephemeral range (32768 when unknown).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A port free on 127.0.0.1 now, below the ephemeral range, and not
/// returned before by this process. Processes start their search at
/// different places, so two of them rarely try the same port at once.
pub fn free_port() -> io::Result<u16> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let high = ephemeral_low();
    let low = high.saturating_sub(SPAN).max(1024);
    let span = high.saturating_sub(low);
    if span < 1_000 {
        // A machine whose ephemeral range starts very low: fall back to the
        // kernel's choice.
        for _ in 0..1000 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            if given.insert(port) {
                return Ok(port);
            }
        }
        return Err(io::Error::other(
            "no free port that was not handed out already",
        ));
    }
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    let start = (seed % u32::from(span)) as u16;
    for i in 0..span {
        let port = low + (start + i) % span;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    Err(io::Error::other(format!(
        "no free port in {low}..{high} that was not handed out already"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        let high = ephemeral_low();
        for p in &ports {
            assert!(*p < high && *p >= 1024, "{p} is not below {high}");
        }
        // What it returned is free to bind.
        TcpListener::bind(("127.0.0.1", ports[0])).unwrap();
    }
}
