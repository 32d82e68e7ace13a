//! The session table's flow index: hash -> slab id, one table for both directions.
//!
//! Why not `hashbrown`: a burst is looked up in stages (hash and prefetch every packet's bucket,
//! then prefetch the candidate sessions, then process), which needs the bucket's address from
//! the hash; and connection churn in `hashbrown` leaves tombstones that force whole-table
//! rehashes (8 % of the connection profile). Here a bucket is one cache line of 12 slots with a
//! 7-bit tag each, collisions spill to the next bucket, and each bucket counts the entries that
//! spilled past it (as folly's F14 does), so a lookup stops at the first bucket nothing spilled
//! past, and a removal leaves nothing behind: no tombstones, no rehash except to grow. Growing
//! is incremental: the table doubles at 7/8 and the old one's entries move a bucket per insert
//! (and two per poll pass, `SessionTable::expire`), with lookups trying both tables meanwhile,
//! so a growing table never stalls the worker (moving ~1 M entries at once took 100–200 ms: a
//! gap in the connection benchmark, and at line rate a full receive ring). For the same reason
//! a new table is a `ZeroedTable`, whose pages the kernel zeroes as they are first written:
//! `vec![EMPTY; n]` wrote all of it first (9.5 ms for the 16 MiB table of ~1.4 M sessions,
//! ~130 ms for the 256 MiB one of 20 M).

use lb_zeroed::ZeroedTable;

const SLOTS: usize = 12;
/// Bytes per entry in a full bucket.
#[allow(clippy::cast_precision_loss)]
pub(crate) const BYTES_PER_ENTRY: f64 = core::mem::size_of::<Bucket>() as f64 / SLOTS as f64;
/// A bucket's overflow count stops here and then never decreases (the bucket is probed past
/// until the table grows).
const OVERFLOW_STUCK: u8 = u8::MAX;

/// One cache line: slab ids, their tags (0: empty), and how many entries spilled past.
#[derive(Debug, Clone, Copy, zerocopy::FromZeros)]
#[repr(C, align(64))]
struct Bucket {
    ids: [u32; SLOTS],
    tags: [u8; SLOTS],
    overflow: u8,
    _pad: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<Bucket>() == 64);

/// The tag of a hash: 7 high bits, never 0.
#[inline]
fn tag(hash: u64) -> u8 {
    // Truncation intended: the top byte.
    #[allow(clippy::cast_possible_truncation)]
    let t = (hash >> 56) as u8;
    t | 0x80
}

/// Old buckets moved into the grown table per insert while it grows.
const MOVE_PER_INSERT: usize = 1;

#[derive(Debug, Clone)]
pub(crate) struct FlowIndex {
    buckets: ZeroedTable<Bucket>,
    mask: usize,
    /// Entries in both tables.
    len: usize,
    /// Entries before the table doubles (7/8 of its slots).
    grow_at: usize,
    /// While growing: the previous table, whose buckets from `moved` on still hold entries (empty
    /// when not growing). Each entry is in exactly one of the two tables.
    old: ZeroedTable<Bucket>,
    old_mask: usize,
    moved: usize,
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The slots of `b` whose tag is `t`, as a bit per slot (bit i: slot i), found a word at a
/// time: a scan slot by slot ended at a varying slot in a full bucket, a branch the CPU
/// mispredicted on most lookups at 1 M flows.
#[inline]
fn matching(b: &Bucket, t: u8) -> u32 {
    let lo = u64::from_le_bytes([b.tags[0], b.tags[1], b.tags[2], b.tags[3], b.tags[4], b.tags[5], b.tags[6], b.tags[7]]);
    let hi = u64::from(u32::from_le_bytes([b.tags[8], b.tags[9], b.tags[10], b.tags[11]]));
    let rep = u64::from(t) * 0x0101_0101_0101_0101;
    // The high bit of each byte that equals `t` (exact: no carries between bytes).
    let zero = |x: u64| !(((x & LOW7) + LOW7) | x | LOW7);
    let (ml, mh) = (zero(lo ^ rep), zero(hi ^ rep) & 0x8080_8080);
    // Gather one bit per byte: bit 7 of byte k moves to bit k.
    let gather = |m: u64| ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
    gather(ml) | (gather(mh) << 8)
}

/// The first id with a matching tag for which `eq` holds, probing `table` from `hash`'s home.
#[inline]
fn find_in(table: &[Bucket], mask: usize, hash: u64, eq: &mut impl FnMut(u32) -> bool) -> Option<u32> {
    let t = tag(hash);
    let mut at = home(hash, mask);
    for _ in 0..table.len() {
        let b = &table[at];
        let mut m = matching(b, t);
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            if let Some(&id) = b.ids.get(i) {
                if eq(id) {
                    return Some(id);
                }
            }
            m &= m - 1;
        }
        if b.overflow == 0 {
            return None;
        }
        at = (at + 1) & mask;
    }
    None
}

/// Puts `id` in the first free slot from `hash`'s home on (the table is never full).
fn place_in(table: &mut [Bucket], mask: usize, hash: u64, id: u32) {
    let t = tag(hash);
    let mut at = home(hash, mask);
    for _ in 0..table.len() {
        let b = &mut table[at];
        if let Some(i) = b.tags.iter().position(|x| *x == 0) {
            b.tags[i] = t;
            b.ids[i] = id;
            return;
        }
        if b.overflow != OVERFLOW_STUCK {
            b.overflow += 1;
        }
        at = (at + 1) & mask;
    }
}

/// Takes `id` out from under `hash`; false if it was not there.
fn remove_in(table: &mut [Bucket], mask: usize, hash: u64, id: u32) -> bool {
    let t = tag(hash);
    let start = home(hash, mask);
    let mut at = start;
    for _ in 0..table.len() {
        let b = &mut table[at];
        if let Some(i) = (0..SLOTS).find(|&i| b.tags[i] == t && b.ids[i] == id) {
            b.tags[i] = 0;
            // The buckets this entry spilled past count one entry fewer.
            let mut p = start;
            while p != at {
                let o = &mut table[p].overflow;
                if *o != OVERFLOW_STUCK {
                    // Never below 0: a count only over-states (see `FlowIndex::move_buckets`).
                    *o = o.saturating_sub(1);
                }
                p = (p + 1) & mask;
            }
            return true;
        }
        if b.overflow == 0 {
            return false;
        }
        at = (at + 1) & mask;
    }
    false
}

#[inline]
fn home(hash: u64, mask: usize) -> usize {
    // Truncation intended: the low bits pick the bucket.
    #[allow(clippy::cast_possible_truncation)]
    let h = hash as usize;
    h & mask
}

impl FlowIndex {
    /// An index for about `entries` entries before it first grows.
    pub(crate) fn with_capacity(entries: usize) -> FlowIndex {
        let buckets = (entries * 8 / 7).div_ceil(SLOTS).next_power_of_two().max(2);
        FlowIndex { buckets: ZeroedTable::new(buckets), mask: buckets - 1, len: 0, grow_at: buckets * SLOTS * 7 / 8, old: ZeroedTable::default(), old_mask: 0, moved: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether a previous table still holds entries (the index is growing).
    pub(crate) fn growing(&self) -> bool {
        !self.old.is_empty()
    }

    /// Brings the bucket `hash` starts at into the cache (in both tables while growing).
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        lb_prefetch::prefetch(&self.buckets[home(hash, self.mask)]);
        if let Some(b) = self.old.get(home(hash, self.old_mask)) {
            lb_prefetch::prefetch(b);
        }
    }

    /// The first id with a matching tag for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if !self.old.is_empty() && home(hash, self.old_mask) >= self.moved {
            // Its old bucket has not moved yet: an entry from before the growth is still there.
            return find_in(&self.old, self.old_mask, hash, &mut eq).or_else(|| find_in(&self.buckets, self.mask, hash, &mut eq));
        }
        find_in(&self.buckets, self.mask, hash, &mut eq).or_else(|| if self.old.is_empty() { None } else { find_in(&self.old, self.old_mask, hash, &mut eq) })
    }

    /// Adds `id` under `hash` (the caller knows it is not there). `rehash` gives the hash of
    /// any id already in the index, for growing: the table doubles when 7/8 full, and the
    /// entries of the old one move over a bucket per insert (and per `move_buckets` call), so
    /// no insert pays for the whole table.
    pub(crate) fn insert(&mut self, hash: u64, id: u32, rehash: impl Fn(u32) -> u64) {
        if self.len >= self.grow_at {
            self.grow(&rehash);
        }
        place_in(&mut self.buckets, self.mask, hash, id);
        self.len += 1;
        if self.growing() {
            self.move_buckets(MOVE_PER_INSERT, &rehash);
        }
    }

    fn grow(&mut self, rehash: &impl Fn(u32) -> u64) {
        // A growth still under way finishes first (it cannot be: the new table takes twice as
        // many inserts to fill as the old one has buckets to move).
        self.move_buckets(usize::MAX, rehash);
        let n = self.buckets.len() * 2;
        self.old = std::mem::replace(&mut self.buckets, ZeroedTable::new(n));
        self.old_mask = self.mask;
        self.moved = 0;
        self.mask = n - 1;
        self.grow_at = n * SLOTS * 7 / 8;
    }

    /// Moves up to `max` buckets of the old table into the new one; returns how many moved.
    /// A moved bucket is emptied but the overflow counts it and its neighbours carry stay: a
    /// count that over-states only makes a lookup in the old table probe one bucket further.
    pub(crate) fn move_buckets(&mut self, max: usize, rehash: &impl Fn(u32) -> u64) -> usize {
        let mut n = 0;
        while n < max && self.moved < self.old.len() {
            let b = &mut self.old[self.moved];
            let (ids, tags) = (b.ids, b.tags);
            b.tags = [0; SLOTS];
            for i in 0..SLOTS {
                if tags[i] != 0 {
                    place_in(&mut self.buckets, self.mask, rehash(ids[i]), ids[i]);
                }
            }
            self.moved += 1;
            n += 1;
        }
        if self.moved >= self.old.len() && !self.old.is_empty() {
            self.old = ZeroedTable::default();
        }
        n
    }

    /// Removes `id` from under `hash`; false if it was not there.
    pub(crate) fn remove(&mut self, hash: u64, id: u32) -> bool {
        let found = remove_in(&mut self.buckets, self.mask, hash, id) || (!self.old.is_empty() && remove_in(&mut self.old, self.old_mask, hash, id));
        if found {
            self.len -= 1;
        }
        found
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // random tags are the low bits of a random word
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A deliberately bad hash (few distinct buckets) so entries spill and chains form.
    fn crowded(id: u32) -> u64 {
        (u64::from(id) % 5) | (u64::from(id.wrapping_mul(2_654_435_761)) << 32)
    }

    #[test]
    fn the_word_at_a_time_tag_match_agrees_with_a_slot_by_slot_one() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let mut b = Bucket { ids: [0; SLOTS], tags: [0; SLOTS], overflow: 0, _pad: [0; 3] };
            // Few distinct tags, so buckets hold repeats; some slots empty.
            for t in &mut b.tags {
                let r = next();
                *t = if r % 4 == 0 { 0 } else { 0x80 | ((r >> 8) as u8 % 4) };
            }
            let t = if round % 3 == 0 { 0x80 | (next() as u8) } else { 0x80 | (next() as u8 % 4) };
            let want: u32 = (0..SLOTS).filter(|&i| b.tags[i] == t).map(|i| 1 << i).sum();
            assert_eq!(matching(&b, t), want, "tags {:02x?} tag {t:02x}", b.tags);
        }
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
    }

    #[test]
    fn growing_moves_a_bucket_per_insert_and_loses_nothing_meanwhile() {
        use std::cell::Cell;
        let calls = Cell::new(0usize);
        let h = |id: u32| {
            calls.set(calls.get() + 1);
            u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(9)
        };
        let mut ix = FlowIndex::with_capacity(10_000);
        let first = ix.grow_at;
        let mut id = 0u32;
        while !ix.growing() {
            ix.insert(h(id), id, h);
            id += 1;
        }
        assert_eq!(id as usize, first + 1, "it grows at 7/8");
        let old_buckets = ix.old.len();
        let mut worst = 0;
        let mut removed = Vec::new();
        while ix.growing() {
            calls.set(0);
            ix.insert(h(id), id, h);
            worst = worst.max(calls.get());
            // Meanwhile, entries come and go in either table, and every one is found.
            if id.is_multiple_of(3) {
                let gone = id / 2;
                assert!(ix.remove(h(gone), gone), "{gone} is in one of the tables");
                removed.push(gone);
            }
            id += 1;
            if id.is_multiple_of(97) {
                for probe in (0..id).step_by(101) {
                    assert_eq!(ix.find(h(probe), |v| v == probe).is_some(), !removed.contains(&probe), "{probe} while growing");
                }
            }
        }
        assert!(worst <= 1 + SLOTS, "an insert rehashes at most one bucket: {worst}");
        assert!(usize::try_from(id).unwrap() - first - 1 <= old_buckets, "done within one insert per old bucket");
        assert_eq!(ix.len(), usize::try_from(id).unwrap() - removed.len());
        for probe in 0..id {
            assert_eq!(ix.find(h(probe), |v| v == probe).is_some(), !removed.contains(&probe), "{probe} after growing");
        }
        // Explicit moves finish a growth without inserts.
        while !ix.growing() {
            ix.insert(h(id), id, h);
            id += 1;
        }
        while ix.move_buckets(8, &h) > 0 {}
        assert!(!ix.growing());
        assert_eq!(ix.len(), usize::try_from(id).unwrap() - removed.len());
        assert!((0..id).all(|p| ix.find(h(p), |v| v == p).is_some() != removed.contains(&p)));
    }
}
