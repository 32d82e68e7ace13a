//! Hashing schedulers, built off the fast path into immutable tables: source/destination
//! hashing (LVS sh/dh: 256 weighted buckets), consistent hashing on a ring of weighted virtual
//! nodes (consh), and Maglev (mh). Hashes are fixed functions of addresses, so every worker and
//! every director with the same configuration makes the same choice.

use std::net::Ipv4Addr;

/// Maglev table size: prime, as the paper requires (65537 is the usual default).
pub const MAGLEV_SIZE: usize = 65537;
/// Virtual nodes per unit of weight on the consh ring.
pub const RING_VNODES: u32 = 160;
/// Buckets of the sh/dh table (as LVS).
pub const SH_BUCKETS: usize = 256;

/// A stable 64-bit hash (splitmix64 finaliser over the input words); the same on every host.
#[inline]
pub fn stable_hash(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for w in words {
        h ^= *w;
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
    }
    h
}

/// The hash of a client (address, optionally port) used by sh, consh and mh.
#[inline]
pub fn client_hash(addr: Ipv4Addr, port: Option<u16>) -> u64 {
    match port {
        Some(p) => stable_hash(&[u64::from(u32::from(addr)), u64::from(p)]),
        None => stable_hash(&[u64::from(u32::from(addr))]),
    }
}

/// A backend's identity for table building: its address and port, not its position in the
/// list, so reordering the configuration changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Index in the service's real-server list (what a lookup returns).
    pub index: u32,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
}

impl Backend {
    fn id(&self, salt: u64) -> u64 {
        stable_hash(&[u64::from(u32::from(self.addr)), u64::from(self.port), salt])
    }
}

/// `hash` reduced to an index below `len` (0 for an empty table).
#[inline]
fn slot(hash: u64, len: usize) -> usize {
    let len = u64::try_from(len).unwrap_or(u64::MAX).max(1);
    usize::try_from(hash % len).unwrap_or(0)
}

/// A prebuilt lookup table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HashTable {
    /// The scheduler needs no table.
    #[default]
    None,
    /// sh/dh buckets: backend index per bucket.
    Buckets(Vec<u32>),
    /// consh ring: sorted (position, backend index).
    Ring(Vec<(u64, u32)>),
    /// Maglev lookup table: backend index per entry.
    Maglev(Vec<u32>),
}

impl HashTable {
    /// The backend index for `hash`, if the table has any backend.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        match self {
            HashTable::None => None,
            HashTable::Buckets(b) => b.get(slot(hash, b.len())).copied(),
            HashTable::Ring(r) => {
                if r.is_empty() {
                    return None;
                }
                let i = r.partition_point(|(pos, _)| *pos < hash);
                Some(r[if i == r.len() { 0 } else { i }].1)
            }
            HashTable::Maglev(t) => t.get(slot(hash, t.len())).copied(),
        }
    }
}

/// Backends with weight, in address order, so the configuration's list order changes nothing.
fn live_sorted(backends: &[Backend]) -> Vec<&Backend> {
    let mut live: Vec<&Backend> = backends.iter().filter(|b| b.weight > 0).collect();
    live.sort_by_key(|b| (b.addr, b.port));
    live
}

/// sh/dh buckets: backends take `weight` buckets in turn (LVS's assignment), skipping those
/// with weight 0. Empty when no backend has weight.
pub fn build_buckets(backends: &[Backend]) -> HashTable {
    let live = live_sorted(backends);
    if live.is_empty() {
        return HashTable::Buckets(Vec::new());
    }
    let mut out = Vec::with_capacity(SH_BUCKETS);
    let (mut i, mut used) = (0usize, 0u32);
    while out.len() < SH_BUCKETS {
        out.push(live[i].index);
        used += 1;
        if used >= live[i].weight {
            used = 0;
            i = (i + 1) % live.len();
        }
    }
    HashTable::Buckets(out)
}

/// Most points on a consh ring (4 MiB of 16-byte points): many heavy servers share it in
/// proportion to their weights instead of growing it without bound.
pub const RING_MAX_POINTS: u64 = 1 << 18;

/// The consh ring: `weight * RING_VNODES` points per backend, scaled down in proportion when
/// that would exceed `RING_MAX_POINTS` (each backend keeps at least one).
pub fn build_ring(backends: &[Backend]) -> HashTable {
    let live = || backends.iter().filter(|b| b.weight > 0);
    let want = |b: &Backend| u64::from(b.weight.min(1000) * RING_VNODES);
    let total: u64 = live().map(want).sum();
    let mut ring = Vec::with_capacity(usize::try_from(total.min(RING_MAX_POINTS)).unwrap_or(0));
    for b in live() {
        let points = if total <= RING_MAX_POINTS { want(b) } else { (want(b) * RING_MAX_POINTS / total).max(1) };
        for v in 0..points {
            ring.push((b.id(v), b.index));
        }
    }
    ring.sort_unstable();
    HashTable::Ring(ring)
}

/// Maglev with weights: backends fill their preference lists in turn; in each round a
/// backend claims an entry when its accumulated share (weight / max weight) reaches one.
pub fn build_maglev(backends: &[Backend], size: usize) -> HashTable {
    let live = live_sorted(backends);
    if live.is_empty() || size < 2 {
        return HashTable::Maglev(Vec::new());
    }
    let m = size as u64;
    let max_w = live.iter().map(|b| b.weight).max().unwrap_or(1);
    let offsets: Vec<u64> = live.iter().map(|b| b.id(0x6f66_6673) % m).collect();
    let skips: Vec<u64> = live.iter().map(|b| b.id(0x736b_6970) % (m - 1) + 1).collect();
    let mut next = vec![0u64; live.len()];
    let mut credit = vec![0u64; live.len()];
    let mut table = vec![u32::MAX; size];
    let mut filled = 0;
    'fill: loop {
        for (i, b) in live.iter().enumerate() {
            credit[i] += u64::from(b.weight);
            if credit[i] < u64::from(max_w) {
                continue;
            }
            credit[i] -= u64::from(max_w);
            let mut c = slot(offsets[i] + next[i] * skips[i], size);
            while table[c] != u32::MAX {
                next[i] += 1;
                c = slot(offsets[i] + next[i] * skips[i], size);
            }
            table[c] = b.index;
            next[i] += 1;
            filled += 1;
            if filled == size {
                break 'fill;
            }
        }
    }
    HashTable::Maglev(table)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // fixtures number backends from small counts
mod tests {
    use super::*;

    fn backends(n: u32, weight: impl Fn(u32) -> u32) -> Vec<Backend> {
        (0..n).map(|i| Backend { index: i, addr: Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8), port: 80, weight: weight(i) }).collect()
    }

    fn counts(t: &HashTable, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        if let HashTable::Maglev(v) | HashTable::Buckets(v) = t {
            for i in v {
                c[*i as usize] += 1;
            }
        }
        c
    }

    #[test]
    fn maglev_is_balanced_for_equal_weights() {
        for n in [2u32, 3, 7, 10, 31] {
            let t = build_maglev(&backends(n, |_| 1), MAGLEV_SIZE);
            let c = counts(&t, n as usize);
            let max = *c.iter().max().unwrap() as f64;
            let avg = MAGLEV_SIZE as f64 / f64::from(n);
            assert!(max / avg <= 1.01, "n={n}: max/avg {}", max / avg);
        }
    }

    #[test]
    fn maglev_follows_weights() {
        let t = build_maglev(&backends(3, |i| i + 1), MAGLEV_SIZE);
        let c = counts(&t, 3);
        let total: usize = c.iter().sum();
        for (i, n) in c.iter().enumerate() {
            let want = (i + 1) as f64 / 6.0;
            let got = *n as f64 / total as f64;
            assert!((got - want).abs() < 0.01, "backend {i}: {got} vs {want}");
        }
    }

    /// Share of 100k clients that change backend when backend `gone` leaves, and the share of
    /// those that were not on `gone` (collateral moves).
    fn disruption(build: impl Fn(&[Backend]) -> HashTable, n: u32, gone: u32) -> (f64, f64) {
        let all = backends(n, |_| 1);
        let rest: Vec<Backend> = all.iter().copied().filter(|b| b.index != gone).collect();
        let (a, b) = (build(&all), build(&rest));
        let (mut moved, mut collateral) = (0, 0);
        for c in 0..100_000u32 {
            let h = client_hash(Ipv4Addr::from(0x0a00_0000 + c), None);
            let (x, y) = (a.lookup(h).unwrap(), b.lookup(h).unwrap());
            if x != y {
                moved += 1;
                if x != gone {
                    collateral += 1;
                }
            }
        }
        (f64::from(moved) / 100_000.0, f64::from(collateral) / 100_000.0)
    }

    #[test]
    fn removing_one_of_n_moves_about_its_share() {
        for n in [4u32, 10, 20] {
            let (m, _) = disruption(|b| build_maglev(b, MAGLEV_SIZE), n, 1);
            assert!(m <= 1.0 / f64::from(n) + 0.01, "maglev n={n}: moved {m}");
            // A ring moves only the leaving backend's clients (its share varies with the ring).
            let (r, collateral) = disruption(build_ring, n, 1);
            assert_eq!(collateral, 0.0, "consh n={n}: clients of other backends moved");
            assert!(r <= 1.0 / f64::from(n) * 1.3, "consh n={n}: moved {r}");
        }
    }

    #[test]
    fn a_ring_of_many_heavy_servers_stays_bounded_and_proportional() {
        let many = backends(200, |i| if i < 100 { 1000 } else { 500 });
        let HashTable::Ring(r) = build_ring(&many) else { panic!("a ring") };
        assert!(r.len() as u64 <= RING_MAX_POINTS, "{} points", r.len());
        let heavy = r.iter().filter(|(_, i)| *i < 100).count() as f64;
        let light = r.len() as f64 - heavy;
        assert!((heavy / light - 2.0).abs() < 0.05, "weights 1000:500 keep their 2:1 share: {heavy} / {light}");
        let HashTable::Ring(small) = build_ring(&backends(3, |_| 1)) else { panic!("a ring") };
        assert_eq!(small.len() as u32, 3 * RING_VNODES, "small rings are unchanged");
    }

    #[test]
    fn ring_balance_is_reasonable() {
        let t = build_ring(&backends(8, |_| 1));
        let mut c = [0u32; 8];
        for x in 0..80_000u32 {
            c[t.lookup(client_hash(Ipv4Addr::from(x), None)).unwrap() as usize] += 1;
        }
        let max = *c.iter().max().unwrap();
        assert!(f64::from(max) / 10_000.0 < 1.25, "{c:?}");
    }

    #[test]
    fn independent_builds_agree_and_order_does_not_matter() {
        let a = backends(5, |i| 1 + i % 2);
        let mut b = a.clone();
        b.reverse();
        for (x, y) in [(build_maglev(&a, 251), build_maglev(&a, 251)), (build_ring(&a), build_ring(&b))] {
            for c in 0..1000u32 {
                let h = client_hash(Ipv4Addr::from(c), Some(7));
                assert_eq!(x.lookup(h), y.lookup(h));
            }
        }
        let (x, y) = (build_maglev(&a, 251), build_maglev(&b, 251));
        for c in 0..1000u32 {
            let h = client_hash(Ipv4Addr::from(c), None);
            assert_eq!(x.lookup(h), y.lookup(h), "maglev does not depend on list order");
        }
    }

    #[test]
    fn buckets_follow_weights_and_skip_zero() {
        let t = build_buckets(&backends(3, |i| [2, 0, 1][i as usize]));
        let c = counts(&t, 3);
        assert_eq!(c[1], 0);
        assert!(c[0] > c[2] && c[0] + c[2] == SH_BUCKETS);
        assert_eq!(build_buckets(&backends(2, |_| 0)).lookup(5), None);
        assert_eq!(build_maglev(&backends(2, |_| 0), 251).lookup(5), None);
        assert_eq!(build_ring(&[]).lookup(5), None);
    }
}
