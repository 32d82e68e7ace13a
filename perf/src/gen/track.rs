//! What the real servers played on the server port would hold in their SYN queues: every
//! SYN answered is half-open (SYN_RECV) until another segment of the same connection arrives
//! (the handshake's ACK, or a request carrying it). Tracked only when asked (a hash insert and
//! remove per connection).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::packet::Tuple;

/// A multiply-xorshift hasher for the packed tuple keys (std's SipHash is needlessly slow
/// here, and the keys are not attacker-chosen).
#[derive(Debug, Default, Clone, Copy)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let b = v.to_le_bytes();
        let lo = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let hi = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        self.0 = (self.0 ^ lo)
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(31)
            ^ hi;
    }
}

type Map = HashMap<u128, (), BuildHasherDefault<MixHasher>>;

/// Half-open connections seen on the server side.
#[derive(Debug)]
pub struct HalfOpen {
    map: Map,
    cap: usize,
    /// SYNs not tracked because `cap` entries were held.
    pub untracked: u64,
    /// SYNs for a connection already half-open (retransmissions).
    pub dup_syns: u64,
    /// Largest number held at once.
    pub peak: usize,
}

fn key(t: &Tuple) -> u128 {
    (u128::from(u32::from(t.src)) << 64)
        | (u128::from(u32::from(t.dst)) << 32)
        | (u128::from(t.sport) << 16)
        | u128::from(t.dport)
}

impl HalfOpen {
    /// A tracker holding at most `cap` half-open connections.
    pub fn new(cap: usize) -> HalfOpen {
        HalfOpen {
            map: Map::with_capacity_and_hasher(cap.min(1 << 16), BuildHasherDefault::default()),
            cap,
            untracked: 0,
            dup_syns: 0,
            peak: 0,
        }
    }

    /// A SYN arrived for `t` (the tuple as received).
    #[inline]
    pub fn syn(&mut self, t: &Tuple) {
        if self.map.len() >= self.cap {
            self.untracked += 1;
            return;
        }
        if self.map.insert(key(t), ()).is_some() {
            self.dup_syns += 1;
        }
        self.peak = self.peak.max(self.map.len());
    }

    /// A non-SYN segment arrived for `t`: the connection is no longer half-open. True if it
    /// was.
    #[inline]
    pub fn progressed(&mut self, t: &Tuple) -> bool {
        !self.map.is_empty() && self.map.remove(&key(t)).is_some()
    }

    /// Connections half-open now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn t(lport: u16, rs: u8) -> Tuple {
        Tuple {
            src: Ipv4Addr::new(10, 99, 2, 100),
            dst: Ipv4Addr::new(10, 99, 2, rs),
            sport: lport,
            dport: 80,
        }
    }

    #[test]
    fn syns_stay_half_open_until_another_segment() {
        let mut h = HalfOpen::new(3);
        h.syn(&t(1000, 11));
        h.syn(&t(1000, 12)); // same local port, another real server: another connection
        h.syn(&t(1001, 11));
        assert_eq!(h.len(), 3);
        h.syn(&t(1002, 11));
        assert_eq!((h.len(), h.untracked), (3, 1), "capped");
        assert!(h.progressed(&t(1000, 11)));
        assert!(!h.progressed(&t(1000, 11)), "only once");
        assert!(!h.progressed(&t(5, 11)), "never seen");
        h.syn(&t(1001, 11));
        assert_eq!(h.dup_syns, 1);
        assert_eq!((h.len(), h.peak), (2, 3));
        assert!(h.progressed(&t(1000, 12)) && h.progressed(&t(1001, 11)));
        assert!(h.is_empty());
    }
}
