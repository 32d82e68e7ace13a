//! Client allow/deny lists as prebuilt sorted interval sets: a lookup is a binary search, with
//! no allocation and no linear scan. Generic over the address width so IPv6 (u128) fits later.

use std::net::Ipv4Addr;

/// Disjoint, sorted, inclusive intervals of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntervalSet<T> {
    ranges: Vec<(T, T)>,
}

/// An address type the set can hold.
pub trait Addr: Copy + Ord {
    /// Number of bits.
    const BITS: u32;
    /// The network and broadcast ends of `addr/prefix`.
    fn span(self, prefix: u8) -> (Self, Self);
    /// The next address, if any.
    fn succ(self) -> Option<Self>;
}

impl Addr for u32 {
    const BITS: u32 = 32;
    fn span(self, prefix: u8) -> (u32, u32) {
        let host = if prefix == 0 { u32::MAX } else { u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0) };
        (self & !host, self | host)
    }
    fn succ(self) -> Option<u32> {
        self.checked_add(1)
    }
}

impl<T: Addr> IntervalSet<T> {
    /// Builds the set from (address, prefix length) entries; overlapping and adjacent prefixes
    /// merge.
    pub fn from_prefixes(entries: &[(T, u8)]) -> IntervalSet<T> {
        let mut r: Vec<(T, T)> = entries.iter().map(|(a, p)| a.span(u8::try_from(u32::from(*p).min(T::BITS)).unwrap_or(u8::MAX))).collect();
        r.sort_unstable();
        let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
        for (lo, hi) in r {
            if let Some(last) = out.last_mut() {
                if last.1 >= lo || last.1.succ() == Some(lo) {
                    if hi > last.1 {
                        last.1 = hi;
                    }
                    continue;
                }
            }
            out.push((lo, hi));
        }
        IntervalSet { ranges: out }
    }

    /// Whether `addr` is in the set.
    #[inline]
    pub fn contains(&self, addr: T) -> bool {
        let i = self.ranges.partition_point(|(lo, _)| *lo <= addr);
        i > 0 && addr <= self.ranges[i - 1].1
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of disjoint intervals.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }
}

/// Why a client was refused by a service's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclVerdict {
    Accept,
    /// An allow list exists and the client is not on it.
    NotAllowed,
    /// The client is on the deny list (and not on the allow list).
    Denied,
}

/// A service's client lists (EulerOS semantics: when both are set, allow wins).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientAcl {
    allow: IntervalSet<u32>,
    deny: IntervalSet<u32>,
}

impl ClientAcl {
    /// Builds the lists from (network, prefix) entries.
    pub fn new(allow: &[(Ipv4Addr, u8)], deny: &[(Ipv4Addr, u8)]) -> ClientAcl {
        let conv = |v: &[(Ipv4Addr, u8)]| v.iter().map(|(a, p)| (u32::from(*a), *p)).collect::<Vec<_>>();
        ClientAcl { allow: IntervalSet::from_prefixes(&conv(allow)), deny: IntervalSet::from_prefixes(&conv(deny)) }
    }

    /// Whether there are no lists at all (the check can be skipped).
    #[inline]
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// The verdict for a client address.
    #[inline]
    pub fn check(&self, client: Ipv4Addr) -> AclVerdict {
        let a = u32::from(client);
        if self.allow.contains(a) {
            AclVerdict::Accept
        } else if !self.allow.is_empty() {
            AclVerdict::NotAllowed
        } else if self.deny.contains(a) {
            AclVerdict::Denied
        } else {
            AclVerdict::Accept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn edge_prefixes() {
        let s = IntervalSet::from_prefixes(&[(u32::from(ip("128.0.0.0")), 1)]);
        assert!(s.contains(u32::from(ip("128.0.0.0"))) && s.contains(u32::from(ip("255.255.255.255"))));
        assert!(!s.contains(u32::from(ip("127.255.255.255"))));
        let s = IntervalSet::from_prefixes(&[(u32::from(ip("10.1.2.3")), 32)]);
        assert!(s.contains(u32::from(ip("10.1.2.3"))));
        assert!(!s.contains(u32::from(ip("10.1.2.4"))) && !s.contains(u32::from(ip("10.1.2.2"))));
        let all = IntervalSet::from_prefixes(&[(0u32, 0)]);
        assert!(all.contains(0) && all.contains(u32::MAX));
        // Host bits beyond the prefix are ignored.
        let s = IntervalSet::from_prefixes(&[(u32::from(ip("10.0.0.77")), 24)]);
        assert!(s.contains(u32::from(ip("10.0.0.0"))) && s.contains(u32::from(ip("10.0.0.255"))));
    }

    #[test]
    fn overlapping_and_adjacent_prefixes_merge() {
        let s = IntervalSet::from_prefixes(&[
            (u32::from(ip("10.0.0.0")), 24),
            (u32::from(ip("10.0.0.128")), 25),
            (u32::from(ip("10.0.1.0")), 24),
            (u32::from(ip("10.0.3.0")), 24),
        ]);
        assert_eq!(s.len(), 2);
        assert!(s.contains(u32::from(ip("10.0.1.255"))));
        assert!(!s.contains(u32::from(ip("10.0.2.0"))));
        assert!(s.contains(u32::from(ip("10.0.3.9"))));
    }

    #[test]
    fn allow_wins_over_deny() {
        let acl = ClientAcl::new(&[(ip("10.0.0.0"), 24)], &[(ip("10.0.0.0"), 8)]);
        assert_eq!(acl.check(ip("10.0.0.5")), AclVerdict::Accept);
        assert_eq!(acl.check(ip("10.9.0.5")), AclVerdict::NotAllowed);
        let deny_only = ClientAcl::new(&[], &[(ip("192.168.0.0"), 16)]);
        assert_eq!(deny_only.check(ip("192.168.3.3")), AclVerdict::Denied);
        assert_eq!(deny_only.check(ip("192.169.0.0")), AclVerdict::Accept);
        assert!(ClientAcl::new(&[], &[]).is_open());
    }

    #[test]
    fn thousand_entries_lookup() {
        let entries: Vec<(Ipv4Addr, u8)> = (0..1000u32).map(|i| (Ipv4Addr::from(0x0b00_0000 + i * 256), 24)).collect();
        let acl = ClientAcl::new(&[], &entries);
        assert_eq!(acl.check(Ipv4Addr::from(0x0b00_0000 + 999 * 256 + 7)), AclVerdict::Denied);
        assert_eq!(acl.check(Ipv4Addr::from(0x0b00_0000 + 1000 * 256)), AclVerdict::Accept);
    }
}
