//! Neighbours (IPv4 -> MAC), as a snapshot workers read. Workers report what they learn from
//! ARP; the control thread merges reports and publishes a new snapshot.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};

/// An immutable neighbour table.
#[derive(Debug, Clone, Default)]
pub struct NeighTable {
    map: HashMap<Ipv4Addr, EthernetAddress, ahash::RandomState>,
    /// Bumped by every change, and by every change of the ports' addresses (routes), so a
    /// session may keep its egress port and next-hop MAC while this stays the same.
    epoch: u32,
}

impl NeighTable {
    /// What a cached route and MAC are valid for (never 0, which means "nothing cached").
    #[inline]
    pub fn generation(&self) -> u32 {
        self.epoch.wrapping_add(1).max(1)
    }

    /// The same neighbours under a new generation: published after the ports' addresses
    /// change, so routes cached in sessions are computed again.
    #[must_use]
    pub fn bumped(&self) -> NeighTable {
        NeighTable { map: self.map.clone(), epoch: self.epoch.wrapping_add(1) }
    }

    /// The MAC of `ip`, if known.
    #[inline]
    pub fn get(&self, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.map.get(&ip).copied()
    }

    /// A copy with `updates` applied; `None` if nothing changed.
    pub fn with_updates(&self, updates: &[(Ipv4Addr, EthernetAddress)]) -> Option<NeighTable> {
        if updates.iter().all(|(ip, mac)| self.get(*ip) == Some(*mac)) {
            return None;
        }
        let mut t = self.clone();
        for (ip, mac) in updates {
            t.map.insert(*ip, *mac);
        }
        t.epoch = t.epoch.wrapping_add(1);
        Some(t)
    }

    /// Entries, for display.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, EthernetAddress)> + '_ {
        self.map.iter().map(|(k, v)| (*k, *v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Length of an ARP request frame (padded to the Ethernet minimum).
pub const ARP_FRAME_LEN: usize = 60;

/// Writes a broadcast ARP request "who has `target`, tell `src_ip`" into `frame` (at least
/// `ARP_FRAME_LEN` bytes) and returns its length.
pub fn emit_arp_request(frame: &mut [u8], mac: EthernetAddress, src_ip: Ipv4Addr, target: Ipv4Addr) -> usize {
    frame[..ARP_FRAME_LEN].fill(0);
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..ARP_FRAME_LEN]);
    EthernetRepr { src: mac, dst: EthernetAddress::BROADCAST, ethertype: EtherType::Arp }.emit(&mut eth);
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: src_ip,
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: target,
    };
    repr.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
    ARP_FRAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_moves_the_generation_and_nothing_else_does() {
        let t = NeighTable::default();
        let g0 = t.generation();
        assert_ne!(g0, 0);
        let a = (Ipv4Addr::new(10, 0, 0, 1), EthernetAddress([2, 0, 0, 0, 0, 1]));
        let t1 = t.with_updates(&[a]).unwrap();
        assert_ne!(t1.generation(), g0);
        assert!(t1.with_updates(&[a]).is_none(), "the same entry again changes nothing");
        let t2 = t1.bumped();
        assert_ne!(t2.generation(), t1.generation());
        assert_eq!(t2.get(a.0), Some(a.1));
    }
}
