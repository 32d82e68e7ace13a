//! Connection counts per (protocol, virtual service, real server), kept up to date by the
//! session table as sessions open, change state and end, and by the forwarding code per
//! packet: what `ipvsadm -Ln` (ActiveConn, InActConn), `--stats` and the metrics read,
//! without walking the sessions. A worker hands a copy of these (one entry per pair, not per
//! session) to the control side on request.
//!
//! Entries are found by key once per new session (the session keeps its slot) and stay for
//! the worker's life, so their number is bounded by the pairs the configuration ever named.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::flow::L4Proto;

/// A service and real server, by value (indexes change with every snapshot).
pub type CountKey = (L4Proto, (Ipv4Addr, u16), (Ipv4Addr, u16));

/// The counts of one pair on one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCount {
    /// Live sessions that are established, and the other live ones.
    pub active: u64,
    pub inactive: u64,
    /// Sessions opened, packets and bytes both ways, since start or the last zeroing.
    pub conns: u64,
    pub pkts_in: u64,
    pub pkts_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Persistence templates pointing at the real server (LVS's `persistconns`); filled in
    /// from the worker's template table when counts are handed over.
    pub persistent: u64,
}

impl PairCount {
    /// Adds another count (several workers' into one).
    pub fn add(&mut self, o: &PairCount) {
        self.active += o.active;
        self.inactive += o.inactive;
        self.conns += o.conns;
        self.pkts_in += o.pkts_in;
        self.pkts_out += o.pkts_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.persistent += o.persistent;
    }
}

/// One worker's counts.
#[derive(Debug, Default)]
pub struct ConnCounts {
    slots: Vec<(CountKey, PairCount)>,
    /// By the key packed into one number: one hasher write per new session (the tuple's
    /// derived `Hash` made five).
    index: HashMap<u128, u32, ahash::RandomState>,
}

/// `key` as one number: distinct keys give distinct numbers.
fn packed((proto, vip, rs): CountKey) -> u128 {
    let proto = u128::from(proto.ip_protocol());
    let end = |(ip, port): (Ipv4Addr, u16)| (u128::from(ip.to_bits()) << 16) | u128::from(port);
    (proto << 96) | (end(vip) << 48) | end(rs)
}

impl ConnCounts {
    /// The slot of `key`, created on first use.
    pub fn slot(&mut self, key: CountKey) -> u32 {
        let k = packed(key);
        if let Some(s) = self.index.get(&k) {
            return *s;
        }
        let s = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push((key, PairCount::default()));
        self.index.insert(k, s);
        s
    }

    /// A slot's counts, writable (a slot this table handed out).
    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut PairCount> {
        self.slots.get_mut(slot as usize).map(|(_, c)| c)
    }

    /// Every pair and its counts.
    pub fn iter(&self) -> impl Iterator<Item = (&CountKey, &PairCount)> {
        self.slots.iter().map(|(k, c)| (k, c))
    }

    /// Zeroes the cumulative counts (connections, packets, bytes); live sessions stay counted.
    pub fn zero(&mut self) {
        for (_, c) in &mut self.slots {
            *c = PairCount { active: c.active, inactive: c.inactive, ..PairCount::default() };
        }
    }

    /// Moves one live session of `slot` between active and inactive.
    #[inline]
    pub(crate) fn state_changed(&mut self, slot: u32, was_active: bool, is_active: bool) {
        if was_active == is_active {
            return;
        }
        if let Some(c) = self.get_mut(slot) {
            if is_active {
                c.active += 1;
                c.inactive = c.inactive.saturating_sub(1);
            } else {
                c.inactive += 1;
                c.active = c.active.saturating_sub(1);
            }
        }
    }

    /// A live session of `slot` ended in a state that was (not) active.
    #[inline]
    pub(crate) fn ended(&mut self, slot: u32, was_active: bool) {
        if let Some(c) = self.get_mut(slot) {
            if was_active {
                c.active = c.active.saturating_sub(1);
            } else {
                c.inactive = c.inactive.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pair_has_one_slot_and_pairs_differing_anywhere_have_their_own() {
        let a = |d: u8| Ipv4Addr::new(10, 0, 0, d);
        let base: CountKey = (L4Proto::Tcp, (a(1), 80), (a(2), 8080));
        let others: [CountKey; 6] = [
            (L4Proto::Udp, (a(1), 80), (a(2), 8080)),
            (L4Proto::Tcp, (a(3), 80), (a(2), 8080)),
            (L4Proto::Tcp, (a(1), 81), (a(2), 8080)),
            (L4Proto::Tcp, (a(1), 80), (a(3), 8080)),
            (L4Proto::Tcp, (a(1), 80), (a(2), 8081)),
            // VIP and real server swapped.
            (L4Proto::Tcp, (a(2), 8080), (a(1), 80)),
        ];
        let mut c = ConnCounts::default();
        let s = c.slot(base);
        let mut seen = vec![s];
        for k in others {
            let t = c.slot(k);
            assert!(!seen.contains(&t), "{k:?} shares a slot");
            seen.push(t);
        }
        assert_eq!(c.slot(base), s, "the same pair, the same slot");
        assert_eq!(c.iter().count(), 7);
        assert_eq!(c.iter().nth(s as usize).map(|(k, _)| *k), Some(base));
    }
}
