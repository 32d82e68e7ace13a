//! The session table's flow index: hash -> slab id, one table for both directions.
//!
//! Why not `hashbrown`: a burst is looked up in stages (hash and prefetch every packet's bucket,
//! then prefetch the candidate sessions, then process), which needs the bucket's address from
//! the hash; and connection churn in `hashbrown` leaves tombstones that force whole-table
//! rehashes (8 % of the connection profile). Here a bucket is one cache line of 12 slots with a
//! 7-bit tag each, collisions spill to the next bucket, and each bucket counts the entries that
//! spilled past it (as folly's F14 does), so a lookup stops at the first bucket nothing spilled
//! past, and a removal leaves nothing behind: no tombstones, no rehash except to grow.

const SLOTS: usize = 12;
/// Bytes per entry in a full bucket.
#[allow(clippy::cast_precision_loss)]
pub(crate) const BYTES_PER_ENTRY: f64 = core::mem::size_of::<Bucket>() as f64 / SLOTS as f64;
/// A bucket's overflow count stops here and then never decreases (the bucket is probed past
/// until the table grows).
const OVERFLOW_STUCK: u8 = u8::MAX;

/// One cache line: slab ids, their tags (0: empty), and how many entries spilled past.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    ids: [u32; SLOTS],
    tags: [u8; SLOTS],
    overflow: u8,
    _pad: [u8; 3],
}

const EMPTY: Bucket = Bucket { ids: [0; SLOTS], tags: [0; SLOTS], overflow: 0, _pad: [0; 3] };
const _: () = assert!(core::mem::size_of::<Bucket>() == 64);

/// The tag of a hash: 7 high bits, never 0.
#[inline]
fn tag(hash: u64) -> u8 {
    // Truncation intended: the top byte.
    #[allow(clippy::cast_possible_truncation)]
    let t = (hash >> 56) as u8;
    t | 0x80
}

#[derive(Debug, Clone)]
pub(crate) struct FlowIndex {
    buckets: Vec<Bucket>,
    mask: usize,
    len: usize,
    /// Entries before the table doubles (7/8 of its slots).
    grow_at: usize,
}

impl FlowIndex {
    /// An index for about `entries` entries before it first grows.
    pub(crate) fn with_capacity(entries: usize) -> FlowIndex {
        let buckets = (entries * 8 / 7).div_ceil(SLOTS).next_power_of_two().max(2);
        FlowIndex { buckets: vec![EMPTY; buckets], mask: buckets - 1, len: 0, grow_at: buckets * SLOTS * 7 / 8 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // Truncation intended: the low bits pick the bucket.
        #[allow(clippy::cast_possible_truncation)]
        let h = hash as usize;
        h & self.mask
    }

    /// Brings the bucket `hash` starts at into the cache.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        lb_prefetch::prefetch(&self.buckets[self.home(hash)]);
    }

    /// Calls `f` with every id whose tag matches in the bucket `hash` starts at (to prefetch
    /// what the lookup will compare).
    #[inline]
    pub(crate) fn candidates(&self, hash: u64, mut f: impl FnMut(u32)) {
        let (b, t) = (&self.buckets[self.home(hash)], tag(hash));
        for i in 0..SLOTS {
            if b.tags[i] == t {
                f(b.ids[i]);
            }
        }
    }

    /// The first id with a matching tag for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut at = self.home(hash);
        for _ in 0..self.buckets.len() {
            let b = &self.buckets[at];
            for i in 0..SLOTS {
                if b.tags[i] == t && eq(b.ids[i]) {
                    return Some(b.ids[i]);
                }
            }
            if b.overflow == 0 {
                return None;
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    /// Adds `id` under `hash` (the caller knows it is not there). `rehash` gives the hash of
    /// any id already in the index, for growing.
    pub(crate) fn insert(&mut self, hash: u64, id: u32, rehash: impl Fn(u32) -> u64) {
        if self.len >= self.grow_at {
            self.grow(&rehash);
        }
        self.place(hash, id);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, id: u32) {
        let t = tag(hash);
        let mut at = self.home(hash);
        // The table is never full (it grows at 7/8), so an empty slot is found.
        loop {
            let b = &mut self.buckets[at];
            if let Some(i) = b.tags.iter().position(|x| *x == 0) {
                b.tags[i] = t;
                b.ids[i] = id;
                return;
            }
            if b.overflow != OVERFLOW_STUCK {
                b.overflow += 1;
            }
            at = (at + 1) & self.mask;
        }
    }

    fn grow(&mut self, rehash: &impl Fn(u32) -> u64) {
        let n = self.buckets.len() * 2;
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; n]);
        self.mask = n - 1;
        self.grow_at = n * SLOTS * 7 / 8;
        for b in &old {
            for i in 0..SLOTS {
                if b.tags[i] != 0 {
                    self.place(rehash(b.ids[i]), b.ids[i]);
                }
            }
        }
    }

    /// Removes `id` from under `hash`; false if it was not there.
    pub(crate) fn remove(&mut self, hash: u64, id: u32) -> bool {
        let t = tag(hash);
        let home = self.home(hash);
        let mut at = home;
        for _ in 0..self.buckets.len() {
            let b = &mut self.buckets[at];
            if let Some(i) = (0..SLOTS).find(|&i| b.tags[i] == t && b.ids[i] == id) {
                b.tags[i] = 0;
                self.len -= 1;
                // The buckets this entry spilled past count one entry fewer.
                let mut p = home;
                while p != at {
                    let o = &mut self.buckets[p].overflow;
                    if *o != OVERFLOW_STUCK {
                        *o -= 1;
                    }
                    p = (p + 1) & self.mask;
                }
                return true;
            }
            if b.overflow == 0 {
                return false;
            }
            at = (at + 1) & self.mask;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A deliberately bad hash (few distinct buckets) so entries spill and chains form.
    fn crowded(id: u32) -> u64 {
        (u64::from(id) % 5) | (u64::from(id.wrapping_mul(2_654_435_761)) << 32)
    }

    #[test]
    fn finds_what_was_inserted_and_nothing_after_removal() {
        let mut ix = FlowIndex::with_capacity(16);
        let mut live: HashMap<u32, u64> = HashMap::new();
        let mut x = 0x1234_5678u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200_000u32 {
            let id = u32::try_from(next() % 5_000).unwrap();
            if let Some(h) = live.remove(&id) {
                assert!(ix.remove(h, id), "round {round}: {id} was there");
                assert_eq!(ix.find(h, |v| v == id), None);
            } else {
                let h = crowded(id);
                ix.insert(h, id, crowded);
                live.insert(id, h);
                assert_eq!(ix.find(h, |v| v == id), Some(id));
            }
            assert_eq!(ix.len(), live.len());
        }
        for (id, h) in &live {
            assert_eq!(ix.find(*h, |v| v == *id), Some(*id));
        }
        assert!(!ix.remove(crowded(99_999), 99_999));
        // Nothing is left behind: removing everything leaves no overflow counts.
        for (id, h) in live.drain() {
            assert!(ix.remove(h, id));
        }
        assert_eq!(ix.len(), 0);
        assert!(ix.buckets.iter().all(|b| b.tags.iter().all(|t| *t == 0)), "no tombstones");
        // Counts that reached the cap stay (those buckets are probed past); all others are 0.
        assert!(ix.buckets.iter().all(|b| b.overflow == 0 || b.overflow == OVERFLOW_STUCK), "no stale counts");
    }

    #[test]
    fn churn_with_a_good_hash_leaves_every_count_at_zero() {
        let h = |id: u32| u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
        let mut ix = FlowIndex::with_capacity(64);
        for id in 0..50_000u32 {
            ix.insert(h(id), id, h);
            if id >= 40 {
                assert!(ix.remove(h(id - 40), id - 40));
            }
        }
        for id in 49_960..50_000u32 {
            assert!(ix.remove(h(id), id));
        }
        assert!(ix.buckets.iter().all(|b| b.overflow == 0 && b.tags.iter().all(|t| *t == 0)));
    }

    #[test]
    fn grows_at_seven_eighths_and_keeps_every_entry() {
        let mut ix = FlowIndex::with_capacity(100);
        let start = ix.buckets.len();
        let h = |id: u32| u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for id in 0..100_000u32 {
            ix.insert(h(id), id, h);
        }
        assert!(ix.buckets.len() > start);
        assert!(ix.len() * 8 <= ix.buckets.len() * SLOTS * 7 + 8, "load stays at or below 7/8");
        for id in 0..100_000u32 {
            assert_eq!(ix.find(h(id), |v| v == id), Some(id));
        }
        let mut seen = Vec::new();
        ix.candidates(h(7), |v| seen.push(v));
        assert!(seen.contains(&7));
    }
}
