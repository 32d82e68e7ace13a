//! Local-address (LIP) port pools. The local port space is partitioned between workers: worker
//! `w` of `n` owns the ports `p` with `p % n == w`, so return traffic to `lip:p` can be steered
//! (by hash or in software) to the worker that owns the session.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Lowest local port used (ports below are left to the kernel side and well-known services).
pub const MIN_PORT: u16 = 1025;

/// The worker that owns local port `port` when there are `workers` workers.
#[inline]
pub fn owner_of(port: u16, workers: u16) -> u16 {
    port % workers.max(1)
}

/// One worker's free local ports, per local address.
#[derive(Debug, Clone)]
pub struct LaddrPool {
    worker: u16,
    workers: u16,
    free: HashMap<Ipv4Addr, Vec<u16>, ahash::RandomState>,
    /// Round-robin position over a service's local addresses.
    next: usize,
}

impl LaddrPool {
    /// A pool for worker `worker` of `workers`, with every port it owns on each address free.
    pub fn new(worker: u16, workers: u16, addrs: &[Ipv4Addr]) -> LaddrPool {
        let mut p = LaddrPool { worker, workers: workers.max(1), free: HashMap::with_hasher(ahash::RandomState::new()), next: 0 };
        for a in addrs {
            p.add_addr(*a);
        }
        p
    }

    /// Adds an address (idempotent).
    pub fn add_addr(&mut self, addr: Ipv4Addr) {
        let (w, n) = (self.worker, self.workers);
        self.free.entry(addr).or_insert_with(|| {
            // Stack order: hand out low ports first.
            (MIN_PORT..=u16::MAX).rev().filter(|p| owner_of(*p, n) == w).collect()
        });
    }

    /// Takes a free `(lip, lport)` from one of `addrs`, rotating between them; `None` when all
    /// of them are exhausted.
    pub fn alloc(&mut self, addrs: &[Ipv4Addr]) -> Option<(Ipv4Addr, u16)> {
        for k in 0..addrs.len() {
            let a = addrs[(self.next + k) % addrs.len()];
            if let Some(port) = self.free.get_mut(&a).and_then(Vec::pop) {
                self.next = (self.next + k + 1) % addrs.len();
                return Some((a, port));
            }
        }
        None
    }

    /// Returns a port to the pool.
    pub fn release(&mut self, addr: Ipv4Addr, port: u16) {
        if owner_of(port, self.workers) != self.worker {
            return;
        }
        if let Some(v) = self.free.get_mut(&addr) {
            v.push(port);
        }
    }

    /// Free ports left on `addr`.
    pub fn available(&self, addr: Ipv4Addr) -> usize {
        self.free.get(&addr).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_partition_the_port_space() {
        let a = Ipv4Addr::new(10, 0, 0, 200);
        let mut pools: Vec<LaddrPool> = (0..3).map(|w| LaddrPool::new(w, 3, &[a])).collect();
        let total: usize = pools.iter().map(|p| p.available(a)).sum();
        assert_eq!(total, usize::from(u16::MAX - MIN_PORT) + 1);
        for (w, p) in pools.iter_mut().enumerate() {
            for _ in 0..1000 {
                let (_, port) = p.alloc(&[a]).unwrap();
                assert_eq!(owner_of(port, 3), w as u16);
            }
        }
    }

    #[test]
    fn rotates_addresses_exhausts_and_releases() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut p = LaddrPool::new(0, 1, &[a, b]);
        let x = p.alloc(&[a, b]).unwrap();
        let y = p.alloc(&[a, b]).unwrap();
        assert_ne!(x.0, y.0, "rotates between local addresses");
        let mut n = 2;
        while p.alloc(&[a, b]).is_some() {
            n += 1;
        }
        assert_eq!(n, 2 * (usize::from(u16::MAX - MIN_PORT) + 1));
        assert!(p.alloc(&[a]).is_none());
        p.release(x.0, x.1);
        assert_eq!(p.alloc(&[a, b]), Some(x));
        assert!(p.alloc(&[Ipv4Addr::new(9, 9, 9, 9)]).is_none());
    }
}
