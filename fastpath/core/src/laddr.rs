//! Local-address (LIP) port pools. The local port space is partitioned between workers: worker
//! `w` of `n` owns the ports `p` with `p % n == w`, so return traffic to `lip:p` can be steered
//! (by hash or in software) to the worker that owns the session.
//!
//! FNAT needs `lip:lport` unique per real server only (the reply's tuple is `rip:rport ->
//! lip:lport`), so, as DPVS's address pool does, the ports of each local address are kept per
//! destination bucket: real servers hash into [`BUCKETS`] buckets and each bucket hands out
//! every port once. Concurrent sessions grow with the backends (up to `BUCKETS` × 64,511 per
//! local address and worker share) instead of stopping at 64,511 per local address.
//!
//! A bucket is a bitmap of the ports this worker owns (8 KiB for one worker), made on first
//! use and dropped when its last port comes back, so memory follows the sessions and is
//! bounded by the configuration (addresses × buckets). Ports are picked by RFC 6056's
//! algorithm 5, "random increments": a cursor, starting at a random port, moves on by a random
//! 1..=[`MAX_STEP`] to the next free port. Each port carries 4 random bits; a port that comes
//! back is handed out again only after the cursor has gone round (about 7,600 allocations from
//! that address and bucket later, where random positions reused it after a geometric wait),
//! which keeps clear of the real server's TIME_WAIT; and the bitmap word in use stays in the
//! cache (random positions cost a cache miss per allocation and per release: 15 % of the
//! connection profile).

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Most the cursor of a bucket moves on per allocation (RFC 6056's N).
pub const MAX_STEP: u64 = 16;

/// Lowest local port used (ports below are left to the kernel side and well-known services).
pub const MIN_PORT: u16 = 1025;

/// Destination buckets per local address (DPVS's default address-pool hash size).
pub const BUCKETS: usize = 16;

/// The worker that owns local port `port` when there are `workers` workers.
#[inline]
pub fn owner_of(port: u16, workers: u16) -> u16 {
    port % workers.max(1)
}

/// The bucket of a real server.
#[inline]
pub fn bucket_of(rs: (Ipv4Addr, u16)) -> usize {
    let h = (u32::from(rs.0) ^ u32::from(rs.1).rotate_left(16)).wrapping_mul(0x9e37_79b1);
    (h >> 28) as usize % BUCKETS
}

/// Why a given local port could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    /// The address is not one of this director's local addresses.
    NoAddr,
    /// Another worker owns the port here (`owner_of`), or it is below `MIN_PORT`.
    NotMine,
    /// The port is in use toward that real server's bucket.
    Busy,
}

/// Which ports of one address and bucket are in use: one bit per port this worker owns
/// (index `port / workers - first`).
#[derive(Debug, Clone)]
struct PortBits {
    used: Vec<u64>,
    in_use: u32,
    /// Ports in the bitmap: a full bucket answers at once instead of being scanned.
    capacity: u32,
    /// The index handed out last (or the random start).
    cursor: u32,
}

/// The slots (`port / workers`) this worker owns: `first..first + count`.
#[derive(Debug, Clone, Copy)]
struct Slots {
    worker: u16,
    workers: u16,
    first: u32,
    count: u32,
}

impl Slots {
    fn new(worker: u16, workers: u16) -> Slots {
        let (w, n) = (u32::from(worker), u32::from(workers));
        let first = (u32::from(MIN_PORT) + n - 1 - w) / n;
        let last = (u32::from(u16::MAX) - w) / n;
        Slots { worker, workers, first, count: last + 1 - first }
    }

    fn index(&self, port: u16) -> Option<usize> {
        if port < MIN_PORT || owner_of(port, self.workers) != self.worker {
            return None;
        }
        Some((u32::from(port) / u32::from(self.workers) - self.first) as usize)
    }

    fn port(&self, index: usize) -> u16 {
        let p = (self.first + u32::try_from(index).unwrap_or(u32::MAX)) * u32::from(self.workers) + u32::from(self.worker);
        u16::try_from(p).unwrap_or(u16::MAX)
    }
}

impl PortBits {
    /// A bitmap with every port free and its cursor at `start` (modulo the ports).
    fn new(s: &Slots, start: u64) -> PortBits {
        let words = (s.count as usize).div_ceil(64);
        let mut used = vec![0u64; words];
        // Bits past the last slot are marked used so they are never picked.
        let tail = s.count as usize % 64;
        if tail != 0 {
            used[words - 1] = !0u64 << tail;
        }
        let cursor = u32::try_from(start % u64::from(s.count.max(1))).unwrap_or(0);
        PortBits { used, in_use: 0, capacity: s.count, cursor }
    }

    /// The next index: the first free one at least 1 + `r % MAX_STEP` past the cursor
    /// (wrapping), which becomes the cursor; `None` when all are used.
    fn take_next(&mut self, r: u64) -> Option<usize> {
        if self.in_use >= self.capacity {
            return None;
        }
        let step = u32::try_from(1 + r % MAX_STEP).unwrap_or(1);
        let from = (self.cursor + step) % self.capacity;
        let words = self.used.len();
        let (first, bit0) = (from as usize / 64, from % 64);
        // The first word from `from`'s bit on, the others whole, then the first word's low bits.
        for k in 0..=words {
            let w = (first + k) % words;
            let mut free = !self.used[w];
            if k == 0 {
                free &= !0u64 << bit0;
            }
            if free != 0 {
                let bit = free.trailing_zeros() as usize;
                self.used[w] |= 1 << bit;
                self.in_use += 1;
                let i = w * 64 + bit;
                self.cursor = u32::try_from(i).unwrap_or(0);
                return Some(i);
            }
        }
        None
    }

    fn take(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, i % 64);
        if self.used[w] & (1 << b) != 0 {
            return false;
        }
        self.used[w] |= 1 << b;
        self.in_use += 1;
        true
    }

    /// Frees index `i`; false when it was free already.
    fn give(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, i % 64);
        if self.used[w] & (1 << b) == 0 {
            return false;
        }
        self.used[w] &= !(1 << b);
        self.in_use -= 1;
        true
    }
}

/// The buckets of one address (each made on first use).
type AddrPool = [Option<Box<PortBits>>; BUCKETS];

/// One worker's local ports, per local address and destination bucket.
#[derive(Debug, Clone)]
pub struct LaddrPool {
    slots: Slots,
    free: HashMap<Ipv4Addr, AddrPool, ahash::RandomState>,
    /// Addresses no longer configured whose ports are still in use: dropped when the last one
    /// comes back (until then a port of theirs is never handed out twice).
    retired: Vec<Ipv4Addr>,
    /// Round-robin position over a service's local addresses.
    next: usize,
    /// xorshift64* state for the positions ports are picked at.
    rng: u64,
}

fn all_free(p: &AddrPool) -> bool {
    p.iter().all(Option::is_none)
}

impl LaddrPool {
    /// A pool for worker `worker` of `workers`, with every port it owns on each address free.
    pub fn new(worker: u16, workers: u16, addrs: &[Ipv4Addr]) -> LaddrPool {
        let workers = workers.max(1);
        let rng = ahash::RandomState::new().hash_one(worker) | 1;
        let mut p = LaddrPool { slots: Slots::new(worker, workers), free: HashMap::with_hasher(ahash::RandomState::new()), retired: Vec::new(), next: 0, rng };
        for a in addrs {
            p.add_addr(*a);
        }
        p
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Adds an address (idempotent; a retired address with ports in use comes back as it was).
    pub fn add_addr(&mut self, addr: Ipv4Addr) {
        self.retired.retain(|a| *a != addr);
        self.free.entry(addr).or_insert_with(|| std::array::from_fn(|_| None));
    }

    /// Keeps only the addresses in `keep`: the others are dropped now when none of their ports
    /// is in use, else when the last one is released. Memory follows the configuration.
    pub fn retain_addrs(&mut self, keep: &[Ipv4Addr]) {
        let gone: Vec<Ipv4Addr> = self.free.keys().filter(|a| !keep.contains(a)).copied().collect();
        for a in gone {
            if self.free.get(&a).is_some_and(all_free) {
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

    /// Port bitmaps in memory (buckets with a port in use), over every address.
    pub fn bucket_count(&self) -> usize {
        self.free.values().map(|p| p.iter().filter(|b| b.is_some()).count()).sum()
    }

    /// Takes a `(lip, lport)` free toward real server `rs` from one of `addrs`, rotating
    /// between them; `None` when all of them are exhausted for `rs`'s bucket.
    pub fn alloc(&mut self, addrs: &[Ipv4Addr], rs: (Ipv4Addr, u16)) -> Option<(Ipv4Addr, u16)> {
        let b = bucket_of(rs);
        let slots = self.slots;
        for k in 0..addrs.len() {
            let a = addrs[(self.next + k) % addrs.len()];
            let r = self.random();
            let Some(pool) = self.free.get_mut(&a) else { continue };
            let bits = pool[b].get_or_insert_with(|| Box::new(PortBits::new(&slots, r >> 16)));
            if let Some(i) = bits.take_next(r) {
                self.next = (self.next + k + 1) % addrs.len();
                return Some((a, slots.port(i)));
            }
        }
        None
    }

    /// Takes the given port toward `rs` (a session synced from another director keeps its
    /// local port).
    pub fn reserve(&mut self, addr: Ipv4Addr, port: u16, rs: (Ipv4Addr, u16)) -> Result<(), ReserveError> {
        let i = self.slots.index(port).ok_or(ReserveError::NotMine)?;
        let slots = self.slots;
        let start = self.random();
        let pool = self.free.get_mut(&addr).ok_or(ReserveError::NoAddr)?;
        let bits = pool[bucket_of(rs)].get_or_insert_with(|| Box::new(PortBits::new(&slots, start)));
        if bits.take(i) {
            Ok(())
        } else {
            Err(ReserveError::Busy)
        }
    }

    /// Returns a port taken toward `rs` (a port that is already free, or not this worker's,
    /// is ignored).
    pub fn release(&mut self, addr: Ipv4Addr, port: u16, rs: (Ipv4Addr, u16)) {
        let Some(i) = self.slots.index(port) else { return };
        let Some(pool) = self.free.get_mut(&addr) else { return };
        let b = bucket_of(rs);
        let Some(bits) = pool[b].as_mut() else { return };
        if bits.give(i) && bits.in_use == 0 {
            pool[b] = None;
            if all_free(pool) && self.retired.contains(&addr) {
                self.free.remove(&addr);
                self.retired.retain(|a| *a != addr);
            }
        }
    }

    /// Ports left on `addr` toward `rs`'s bucket.
    pub fn available(&self, addr: Ipv4Addr, rs: (Ipv4Addr, u16)) -> usize {
        match self.free.get(&addr) {
            None => 0,
            Some(p) => self.slots.count as usize - p[bucket_of(rs)].as_ref().map_or(0, |b| b.in_use as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::cast_possible_truncation)] // worker numbers in tests are tiny
    use super::*;

    const RS: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 1, 11), 80);
    const PORTS: usize = (u16::MAX - MIN_PORT) as usize + 1;

    /// A real server in another bucket than `rs`.
    fn other_bucket(rs: (Ipv4Addr, u16)) -> (Ipv4Addr, u16) {
        (1..=255).map(|d| (Ipv4Addr::new(10, 0, 2, d), 80)).find(|o| bucket_of(*o) != bucket_of(rs)).unwrap()
    }

    #[test]
    fn workers_partition_the_port_space() {
        let a = Ipv4Addr::new(10, 0, 0, 200);
        let mut pools: Vec<LaddrPool> = (0..3).map(|w| LaddrPool::new(w, 3, &[a])).collect();
        let total: usize = pools.iter().map(|p| p.available(a, RS)).sum();
        assert_eq!(total, PORTS);
        for (w, p) in pools.iter_mut().enumerate() {
            let mut seen = std::collections::HashSet::new();
            while let Some((_, port)) = p.alloc(&[a], RS) {
                assert_eq!(owner_of(port, 3), w as u16);
                assert!(port >= MIN_PORT && seen.insert(port), "{port} handed out twice");
            }
            assert_eq!(seen.len(), (MIN_PORT..=u16::MAX).filter(|q| owner_of(*q, 3) == w as u16).count());
        }
    }

    #[test]
    fn rotates_addresses_exhausts_and_releases() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut p = LaddrPool::new(0, 1, &[a, b]);
        let x = p.alloc(&[a, b], RS).unwrap();
        let y = p.alloc(&[a, b], RS).unwrap();
        assert_ne!(x.0, y.0, "rotates between local addresses");
        let mut n = 2;
        while p.alloc(&[a, b], RS).is_some() {
            n += 1;
        }
        assert_eq!(n, 2 * PORTS);
        assert!(p.alloc(&[a], RS).is_none());
        p.release(x.0, x.1, RS);
        assert_eq!(p.alloc(&[a, b], RS), Some(x));
        assert!(p.alloc(&[Ipv4Addr::new(9, 9, 9, 9)], RS).is_none());
    }

    /// The port space is per destination bucket: one local address that has handed out all
    /// its ports toward one real server still has all of them toward a real server in another
    /// bucket, and the same `lip:lport` serves both (the reply tuples differ).
    #[test]
    fn ports_are_reused_toward_other_real_servers() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let other = other_bucket(RS);
        let mut p = LaddrPool::new(0, 1, &[a]);
        let mut toward_rs = std::collections::HashSet::new();
        while let Some((_, port)) = p.alloc(&[a], RS) {
            toward_rs.insert(port);
        }
        assert_eq!(toward_rs.len(), PORTS);
        assert_eq!(p.available(a, other), PORTS, "another bucket is untouched");
        let mut toward_other = 0;
        while let Some((_, port)) = p.alloc(&[a], other) {
            assert!(toward_rs.contains(&port));
            toward_other += 1;
        }
        assert_eq!(toward_other, PORTS, "twice the sessions on one local address");
        // A real server of the same bucket shares it.
        let same = (1..=255).map(|d| (Ipv4Addr::new(10, 0, 3, d), 8080)).find(|o| bucket_of(*o) == bucket_of(RS)).unwrap();
        assert!(p.alloc(&[a], same).is_none());
        // Buckets spread real servers: 64 of them use most of the 16.
        let used: std::collections::HashSet<usize> = (1..=64).map(|d| bucket_of((Ipv4Addr::new(10, 0, 4, d), 80))).collect();
        assert!(used.len() >= 12, "{used:?}");
    }

    #[test]
    fn a_given_port_can_be_reserved_once_and_is_never_handed_out() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = LaddrPool::new(1, 3, &[a]);
        let before = p.available(a, RS);
        assert_eq!(p.reserve(a, 40_001, RS), Err(ReserveError::NotMine), "40001 % 3 == 2: worker 2 owns it");
        let mine = (MIN_PORT..).find(|q| owner_of(*q, 3) == 1 && *q > 30_000).unwrap();
        assert_eq!(p.reserve(a, mine, RS), Ok(()));
        assert_eq!(p.reserve(a, mine, RS), Err(ReserveError::Busy));
        assert_eq!(p.reserve(a, mine, other_bucket(RS)), Ok(()), "free toward another bucket");
        assert_eq!(p.available(a, RS), before - 1);
        assert_eq!(p.reserve(Ipv4Addr::new(9, 9, 9, 9), mine, RS), Err(ReserveError::NoAddr));
        assert_eq!(p.reserve(a, 1000, RS), Err(ReserveError::NotMine), "below MIN_PORT");
        let mut seen = Vec::new();
        while let Some((_, q)) = p.alloc(&[a], RS) {
            assert_ne!(q, mine, "a reserved port is not allocated");
            seen.push(q);
        }
        assert_eq!(seen.len(), before - 1);
        p.release(a, mine, RS);
        p.release(a, mine, RS);
        assert_eq!(p.available(a, RS), 1, "a double release frees it once");
        assert_eq!(p.alloc(&[a], RS), Some((a, mine)));
        // An allocated port cannot be reserved; released, it can.
        assert_eq!(p.reserve(a, mine, RS), Err(ReserveError::Busy));
        p.release(a, seen[10], RS);
        assert_eq!(p.reserve(a, seen[10], RS), Ok(()));
    }

    #[test]
    fn ports_are_not_handed_out_in_order() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = LaddrPool::new(0, 1, &[a]);
        let first: Vec<u16> = (0..64).map(|_| p.alloc(&[a], RS).unwrap().1).collect();
        // Random increments of 1..=16: a step of 1 has odds 1/16 (about 4 in 63; 20 or more
        // has odds below 1e-7), and the steps take many values.
        let steps: Vec<u16> = first.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        let ones = steps.iter().filter(|d| **d == 1).count();
        assert!(ones < 20, "consecutive ports follow each other {ones} times in 64: {first:?}");
        let distinct: std::collections::HashSet<u16> = steps.iter().copied().collect();
        assert!(distinct.len() >= 6, "steps {steps:?}");
        assert!(steps.iter().all(|d| (1..=16).contains(d)), "nothing taken yet, so each step is the increment: {steps:?}");
        let q = LaddrPool::new(0, 1, &[a]).alloc(&[a], RS).unwrap().1;
        let r = LaddrPool::new(0, 1, &[a]).alloc(&[a], RS).unwrap().1;
        let s = LaddrPool::new(0, 1, &[a]).alloc(&[a], RS).unwrap().1;
        assert!(q != r || r != s, "each pool has its own order: {q} {r} {s}");
    }

    #[test]
    fn a_port_that_comes_back_waits_for_the_cursor_to_go_round() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = LaddrPool::new(0, 1, &[a]);
        let keep = p.alloc(&[a], RS).unwrap(); // the bucket stays in use
        let back = p.alloc(&[a], RS).unwrap().1;
        p.release(a, back, RS);
        // 3,000 allocations move the cursor at most 48,000 ports: it cannot wrap onto `back`
        // (64,511 ports), however the increments fall.
        let mut all: Vec<u16> = (0..3000).map(|_| p.alloc(&[a], RS).unwrap().1).collect();
        assert!(!all.contains(&back), "port {back} was handed out again too soon");
        // Going on to exhaustion hands out every port once, `back` included.
        while let Some((_, port)) = p.alloc(&[a], RS) {
            all.push(port);
        }
        all.extend([keep.1]);
        let distinct: std::collections::HashSet<u16> = all.iter().copied().collect();
        assert_eq!((all.len(), distinct.len()), (64_511, 64_511), "every port once");
        assert!(distinct.contains(&back));
    }

    #[test]
    fn removed_addresses_and_idle_buckets_free_their_memory() {
        let mut p = LaddrPool::new(0, 1, &[]);
        for round in 0..50u32 {
            let a = Ipv4Addr::from(0x0a00_0000 + round);
            p.add_addr(a);
            let x = p.alloc(&[a], RS).unwrap();
            p.release(x.0, x.1, RS);
            p.retain_addrs(&[a]);
        }
        assert_eq!((p.addr_count(), p.bucket_count()), (1, 0), "adding and removing addresses does not pile up pools");
        let (a, b) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2));
        p.add_addr(a);
        p.add_addr(b);
        let used = p.alloc(&[a], RS).unwrap();
        assert_eq!(p.bucket_count(), 1, "one bucket in use");
        p.retain_addrs(&[b]);
        assert_eq!(p.addr_count(), 2, "a's port is still in use: its pool stays");
        p.add_addr(a);
        assert_eq!(p.reserve(a, used.1, RS), Err(ReserveError::Busy), "re-added, the used port is still taken");
        p.retain_addrs(&[b]);
        p.release(used.0, used.1, RS);
        assert_eq!((p.addr_count(), p.bucket_count()), (1, 0), "its last port back: a's pool is gone");
    }
}
