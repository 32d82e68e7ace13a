//! Local-address (LIP) port pools. The local port space is partitioned between workers: worker
//! `w` of `n` owns the ports `p` with `p % n == w`, so return traffic to `lip:p` can be steered
//! (by hash or in software) to the worker that owns the session. Free ports are handed out in a
//! random order, so the next one cannot be predicted.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Lowest local port used (ports below are left to the kernel side and well-known services).
pub const MIN_PORT: u16 = 1025;

/// The worker that owns local port `port` when there are `workers` workers.
#[inline]
pub fn owner_of(port: u16, workers: u16) -> u16 {
    port % workers.max(1)
}

/// Why a given local port could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    /// The address is not one of this director's local addresses.
    NoAddr,
    /// Another worker owns the port here (`owner_of`), or it is below `MIN_PORT`.
    NotMine,
    /// The port is in use.
    Busy,
}

/// Marks a port that is not free in `PortSet::pos`.
const TAKEN: u16 = u16::MAX;

/// The free ports a worker owns on one address: a stack (allocation pops) plus each port's
/// position in it, so a given port can be taken out in O(1) (`reserve`). Ports are indexed by
/// `port / workers`: about 4 bytes per port this worker owns.
#[derive(Debug, Clone)]
struct PortSet {
    stack: Vec<u16>,
    pos: Vec<u16>,
    /// Ports this worker owns on the address (all free when `stack` holds them all).
    total: usize,
}

impl PortSet {
    fn new(worker: u16, workers: u16) -> PortSet {
        // Handed out in a random order (a new one per pool): a port cannot be guessed from the
        // ones seen before, so a spoofed packet cannot aim at the next connection's port.
        let mut stack: Vec<u16> = (MIN_PORT..=u16::MAX).filter(|p| owner_of(*p, workers) == worker).collect();
        let mut x = ahash::RandomState::new().hash_one(worker) | 1;
        for i in (1..stack.len()).rev() {
            // xorshift64*: plenty for shuffling, seeded from the process's random state.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let j = usize::try_from(x.wrapping_mul(0x2545_f491_4f6c_dd1d) % (i as u64 + 1)).unwrap_or(0);
            stack.swap(i, j);
        }
        let mut pos = vec![TAKEN; usize::from(u16::MAX / workers) + 1];
        for (i, p) in stack.iter().enumerate() {
            pos[usize::from(*p / workers)] = u16::try_from(i).unwrap_or(TAKEN);
        }
        let total = stack.len();
        PortSet { stack, pos, total }
    }

    fn all_free(&self) -> bool {
        self.stack.len() == self.total
    }

    fn pop(&mut self, workers: u16) -> Option<u16> {
        let p = self.stack.pop()?;
        self.pos[usize::from(p / workers)] = TAKEN;
        Some(p)
    }

    fn push(&mut self, port: u16, workers: u16) {
        let slot = usize::from(port / workers);
        if self.pos.get(slot) != Some(&TAKEN) {
            return; // already free: a double release changes nothing
        }
        self.pos[slot] = u16::try_from(self.stack.len()).unwrap_or(TAKEN);
        self.stack.push(port);
    }

    fn take(&mut self, port: u16, workers: u16) -> Result<(), ReserveError> {
        let slot = usize::from(port / workers);
        let i = match self.pos.get(slot) {
            Some(&TAKEN) | None => return Err(ReserveError::Busy),
            Some(&i) => usize::from(i),
        };
        let last = self.stack.len() - 1;
        self.stack.swap(i, last);
        let moved = self.stack[i];
        self.pos[usize::from(moved / workers)] = u16::try_from(i).unwrap_or(TAKEN);
        self.stack.pop();
        self.pos[slot] = TAKEN;
        Ok(())
    }
}

/// One worker's free local ports, per local address.
#[derive(Debug, Clone)]
pub struct LaddrPool {
    worker: u16,
    workers: u16,
    free: HashMap<Ipv4Addr, PortSet, ahash::RandomState>,
    /// Addresses no longer configured whose ports are still in use: dropped when the last one
    /// comes back (until then a port of theirs is never handed out twice).
    retired: Vec<Ipv4Addr>,
    /// Round-robin position over a service's local addresses.
    next: usize,
}

impl LaddrPool {
    /// A pool for worker `worker` of `workers`, with every port it owns on each address free.
    pub fn new(worker: u16, workers: u16, addrs: &[Ipv4Addr]) -> LaddrPool {
        let mut p = LaddrPool { worker, workers: workers.max(1), free: HashMap::with_hasher(ahash::RandomState::new()), retired: Vec::new(), next: 0 };
        for a in addrs {
            p.add_addr(*a);
        }
        p
    }

    /// Adds an address (idempotent; a retired address with ports in use comes back as it was).
    pub fn add_addr(&mut self, addr: Ipv4Addr) {
        let (w, n) = (self.worker, self.workers);
        self.retired.retain(|a| *a != addr);
        self.free.entry(addr).or_insert_with(|| PortSet::new(w, n));
    }

    /// Keeps only the addresses in `keep`: the others are dropped now when none of their ports
    /// is in use, else when the last one is released. Memory follows the configuration.
    pub fn retain_addrs(&mut self, keep: &[Ipv4Addr]) {
        let gone: Vec<Ipv4Addr> = self.free.keys().filter(|a| !keep.contains(a)).copied().collect();
        for a in gone {
            if self.free.get(&a).is_some_and(PortSet::all_free) {
                self.free.remove(&a);
            } else if !self.retired.contains(&a) {
                self.retired.push(a);
            }
        }
    }

    /// Addresses with a port pool (configured, or retired with ports in use).
    pub fn addr_count(&self) -> usize {
        self.free.len()
    }

    /// Takes a free `(lip, lport)` from one of `addrs`, rotating between them; `None` when all
    /// of them are exhausted.
    pub fn alloc(&mut self, addrs: &[Ipv4Addr]) -> Option<(Ipv4Addr, u16)> {
        let n = self.workers;
        for k in 0..addrs.len() {
            let a = addrs[(self.next + k) % addrs.len()];
            if let Some(port) = self.free.get_mut(&a).and_then(|s| s.pop(n)) {
                self.next = (self.next + k + 1) % addrs.len();
                return Some((a, port));
            }
        }
        None
    }

    /// Takes the given port (a session synced from another director keeps its local port).
    pub fn reserve(&mut self, addr: Ipv4Addr, port: u16) -> Result<(), ReserveError> {
        if port < MIN_PORT || owner_of(port, self.workers) != self.worker {
            return Err(ReserveError::NotMine);
        }
        let n = self.workers;
        self.free.get_mut(&addr).ok_or(ReserveError::NoAddr)?.take(port, n)
    }

    /// Returns a port to the pool (a port that is already free, or not this worker's, is ignored).
    pub fn release(&mut self, addr: Ipv4Addr, port: u16) {
        if port < MIN_PORT || owner_of(port, self.workers) != self.worker {
            return;
        }
        let n = self.workers;
        if let Some(v) = self.free.get_mut(&addr) {
            v.push(port, n);
            if v.all_free() && self.retired.contains(&addr) {
                self.free.remove(&addr);
                self.retired.retain(|a| *a != addr);
            }
        }
    }

    /// Free ports left on `addr`.
    pub fn available(&self, addr: Ipv4Addr) -> usize {
        self.free.get(&addr).map_or(0, |s| s.stack.len())
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

    #[test]
    fn a_given_port_can_be_reserved_once_and_is_never_handed_out() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = LaddrPool::new(1, 3, &[a]);
        let before = p.available(a);
        assert_eq!(p.reserve(a, 40_001), Err(ReserveError::NotMine), "40001 % 3 == 2: worker 2 owns it");
        let mine = (MIN_PORT..).find(|q| owner_of(*q, 3) == 1 && *q > 30_000).unwrap();
        assert_eq!(p.reserve(a, mine), Ok(()));
        assert_eq!(p.reserve(a, mine), Err(ReserveError::Busy));
        assert_eq!(p.available(a), before - 1);
        assert_eq!(p.reserve(Ipv4Addr::new(9, 9, 9, 9), mine), Err(ReserveError::NoAddr));
        assert_eq!(p.reserve(a, 1000), Err(ReserveError::NotMine), "below MIN_PORT");
        let mut seen = Vec::new();
        while let Some((_, q)) = p.alloc(&[a]) {
            assert_ne!(q, mine, "a reserved port is not allocated");
            seen.push(q);
        }
        assert_eq!(seen.len(), before - 1);
        p.release(a, mine);
        p.release(a, mine);
        assert_eq!(p.available(a), 1, "a double release frees it once");
        assert_eq!(p.alloc(&[a]), Some((a, mine)));
        // An allocated port cannot be reserved; released, it can.
        assert_eq!(p.reserve(a, mine), Err(ReserveError::Busy));
        p.release(a, seen[10]);
        assert_eq!(p.reserve(a, seen[10]), Ok(()));
    }

    #[test]
    fn ports_are_not_handed_out_in_order() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = LaddrPool::new(0, 1, &[a]);
        let first: Vec<u16> = (0..64).map(|_| p.alloc(&[a]).unwrap().1).collect();
        let ascending = first.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(ascending < 8, "consecutive ports follow each other {ascending} times in 64: {first:?}");
        let q = LaddrPool::new(0, 1, &[a]).alloc(&[a]).unwrap().1;
        let r = LaddrPool::new(0, 1, &[a]).alloc(&[a]).unwrap().1;
        let s = LaddrPool::new(0, 1, &[a]).alloc(&[a]).unwrap().1;
        assert!(q != r || r != s, "each pool has its own order: {q} {r} {s}");
    }

    #[test]
    fn removed_addresses_free_their_pools_once_their_ports_are_back() {
        let mut p = LaddrPool::new(0, 1, &[]);
        for round in 0..50u32 {
            let a = Ipv4Addr::from(0x0a00_0000 + round);
            p.add_addr(a);
            p.retain_addrs(&[a]);
        }
        assert_eq!(p.addr_count(), 1, "adding and removing addresses does not pile up pools");
        let (a, b) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2));
        p.add_addr(a);
        p.add_addr(b);
        let used = p.alloc(&[a]).unwrap();
        p.retain_addrs(&[b]);
        assert_eq!(p.addr_count(), 2, "a's port is still in use: its pool stays");
        p.add_addr(a);
        assert_eq!(p.reserve(a, used.1), Err(ReserveError::Busy), "re-added, the used port is still taken");
        p.retain_addrs(&[b]);
        p.release(used.0, used.1);
        assert_eq!(p.addr_count(), 1, "its last port back: a's pool is gone");
    }
}
