//! What the pipeline knows about a data port: its MAC and the addresses the director owns.

use std::net::Ipv4Addr;

use crate::wire::EthernetAddress;

/// A data port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The port's MAC (the exception TAP uses the same one).
    pub mac: EthernetAddress,
    /// Addresses the director answers ARP and ICMP echo for, with their prefix lengths.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// Whether frames can be handed to the kernel on this port.
    pub has_kernel_path: bool,
}

impl Interface {
    /// Whether `ip` is one of the director's own addresses on this port.
    #[inline]
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|(a, _)| *a == ip)
    }
}
