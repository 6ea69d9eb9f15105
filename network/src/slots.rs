//! Connection slots for servers that read from strangers: a global cap and a
//! per-IP cap, where a new connection that finds its cap full **evicts the
//! oldest** connection in that cap instead of waiting.
//!
//! Why eviction and not a queue: a slowloris client opens connections and
//! never finishes a request. With a plain semaphore it holds every slot and
//! `/healthz` stops answering, so monitoring declares a healthy node down
//! (issue 15). Legitimate requests on these ports finish in milliseconds, so
//! the oldest connection in a full cap is almost always the attacker's; the
//! newest always gets served. A per-IP cap keeps one address from evicting
//! everyone else's connections.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;

/// The caps.
#[derive(Debug, Clone, Copy)]
pub struct SlotLimits {
    /// Connections at once, in all.
    pub total: usize,
    /// Connections at once from one IP address.
    pub per_ip: usize,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// Open connections by age (id order): their address and task.
    open: BTreeMap<u64, (IpAddr, Option<AbortHandle>)>,
    per_ip: HashMap<IpAddr, usize>,
    evicted: u64,
}

/// Shared slot table; clone it into each accept loop.
#[derive(Clone)]
pub struct Slots {
    limits: SlotLimits,
    inner: Arc<Mutex<Inner>>,
}

/// Held by a connection's task; frees the slot when dropped.
pub struct Slot {
    id: u64,
    ip: IpAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Slots {
    /// An empty table with `limits` (each at least 1).
    pub fn new(limits: SlotLimits) -> Self {
        Slots {
            limits: SlotLimits {
                total: limits.total.max(1),
                per_ip: limits.per_ip.max(1),
            },
            inner: Arc::default(),
        }
    }

    /// Connections evicted so far (for metrics and tests).
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Runs `conn` in a task of its own in a slot, first evicting the oldest
    /// connection from `ip` if that address is at its cap, or the oldest of
    /// all if the server is.
    pub fn spawn<F>(&self, ip: IpAddr, conn: impl FnOnce(Slot) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = {
            let mut g = self.lock();
            if g.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.per_ip {
                let oldest = g
                    .open
                    .iter()
                    .find(|(_, (a, _))| *a == ip)
                    .map(|(id, _)| *id);
                if let Some(id) = oldest {
                    g.evict(id);
                }
            }
            if g.open.len() >= self.limits.total
                && let Some(id) = g.open.keys().next().copied()
            {
                g.evict(id);
            }
            let id = g.next;
            g.next += 1;
            *g.per_ip.entry(ip).or_default() += 1;
            g.open.insert(id, (ip, None));
            id
        };
        // Built and spawned without the lock: the slot's Drop takes it.
        let slot = Slot {
            id,
            ip,
            inner: self.inner.clone(),
        };
        let handle = tokio::spawn(conn(slot)).abort_handle();
        let mut g = self.lock();
        match g.open.get_mut(&id) {
            Some(entry) => entry.1 = Some(handle),
            // Finished already (abort is a no-op) or evicted meanwhile.
            None => handle.abort(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned table only means a panic elsewhere; its data is intact.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn evict(&mut self, id: u64) {
        if let Some((ip, handle)) = self.open.remove(&id) {
            if let Some(handle) = handle {
                handle.abort();
            }
            self.release_ip(ip);
            self.evicted += 1;
        }
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.open.remove(&self.id).is_some() {
            g.release_ip(self.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[tokio::test]
    async fn a_full_server_evicts_its_oldest_connection_and_serves_the_new_one() {
        let slots = Slots::new(SlotLimits {
            total: 3,
            per_ip: 3,
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..3u8 {
            // Three slow clients that never finish.
            slots.spawn(ip(i), |slot| async move {
                let _slot = slot;
                std::future::pending::<()>().await;
            });
        }
        let t = tx.clone();
        slots.spawn(ip(9), move |slot| async move {
            let _slot = slot;
            let _ = t.send("served");
        });
        assert_eq!(rx.recv().await, Some("served"));
        assert_eq!(slots.evicted(), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            slots.open(),
            2,
            "the served one freed its slot, one slow one is gone"
        );
    }

    #[tokio::test]
    async fn one_address_at_its_cap_evicts_only_its_own_connections() {
        let slots = Slots::new(SlotLimits {
            total: 10,
            per_ip: 2,
        });
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<u8>();
        for who in [1u8, 2, 2, 2] {
            let d = done_tx.clone();
            struct Tell(u8, tokio::sync::mpsc::UnboundedSender<u8>);
            impl Drop for Tell {
                fn drop(&mut self) {
                    let _ = self.1.send(self.0);
                }
            }
            // Made outside the future: an evicted task may never have run.
            let tell = Tell(who, d);
            slots.spawn(ip(who), move |slot| async move {
                let _t = tell;
                let _slot = slot;
                std::future::pending::<()>().await;
            });
        }
        // The third connection from 10.0.0.2 evicted the first from 10.0.0.2.
        assert_eq!(done_rx.recv().await, Some(2));
        assert_eq!(slots.evicted(), 1);
        assert_eq!(slots.open(), 3);
    }
}
