//! Neighbours (IPv4 -> MAC), as a snapshot workers read. Workers report what they learn from
//! ARP; the control thread merges reports and publishes a new snapshot.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};

/// An immutable neighbour table.
#[derive(Debug, Clone, Default)]
pub struct NeighTable {
    map: HashMap<Ipv4Addr, EthernetAddress, ahash::RandomState>,
}

impl NeighTable {
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
