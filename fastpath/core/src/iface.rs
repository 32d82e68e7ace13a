//! What the pipeline knows about a data port: its MAC, the addresses the director owns on it,
//! its connected subnets and gateway.

use std::net::Ipv4Addr;

use crate::wire::EthernetAddress;

/// A data port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The port's MAC (the exception TAP uses the same one).
    pub mac: EthernetAddress,
    /// Addresses the director answers ARP and ICMP echo for, with prefix lengths; the
    /// prefixes also define the port's connected subnets.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// Next hop for destinations on no connected subnet of any port.
    pub gateway: Option<Ipv4Addr>,
    /// Largest IPv4 packet the port sends.
    pub mtu: u16,
    /// Whether frames can be handed to the kernel on this port.
    pub has_kernel_path: bool,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl Interface {
    /// An interface with no gateway and a 1500-byte MTU.
    pub fn new(mac: EthernetAddress, addrs: Vec<(Ipv4Addr, u8)>, has_kernel_path: bool) -> Interface {
        Interface { mac, addrs, gateway: None, mtu: 1500, has_kernel_path }
    }

    /// Whether `ip` is one of the director's own addresses on this port.
    #[inline]
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|(a, _)| *a == ip)
    }

    /// Whether `ip` is on one of this port's connected subnets.
    #[inline]
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.source_for(ip).is_some()
    }

    /// Our address on the subnet that holds `ip` (the source for ARP toward it).
    pub fn source_for(&self, ip: Ipv4Addr) -> Option<Ipv4Addr> {
        let ip = u32::from(ip);
        self.addrs.iter().find(|(a, p)| *p < 32 && (u32::from(*a) & mask(*p)) == (ip & mask(*p))).map(|(a, _)| *a)
    }
}

/// The port and next hop toward `dst`: a connected subnet first, then a port's gateway.
pub fn route(ports: &[Interface], dst: Ipv4Addr) -> Option<(u8, Ipv4Addr)> {
    let idx = |i: usize| u8::try_from(i).ok();
    if let Some(i) = ports.iter().position(|p| p.on_link(dst)) {
        return Some((idx(i)?, dst));
    }
    let (i, p) = ports.iter().enumerate().find(|(_, p)| p.gateway.is_some())?;
    Some((idx(i)?, p.gateway?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_connected_first_then_gateway() {
        let wan = Interface { gateway: Some(Ipv4Addr::new(10, 1, 0, 254)), ..Interface::new(EthernetAddress([2; 6]), vec![(Ipv4Addr::new(10, 1, 0, 1), 24)], true) };
        let lan = Interface::new(EthernetAddress([3; 6]), vec![(Ipv4Addr::new(10, 2, 0, 1), 24), (Ipv4Addr::new(10, 9, 9, 9), 32)], true);
        let ports = [wan, lan];
        assert_eq!(route(&ports, Ipv4Addr::new(10, 2, 0, 77)), Some((1, Ipv4Addr::new(10, 2, 0, 77))));
        assert_eq!(route(&ports, Ipv4Addr::new(10, 1, 0, 9)), Some((0, Ipv4Addr::new(10, 1, 0, 9))));
        assert_eq!(route(&ports, Ipv4Addr::new(8, 8, 8, 8)), Some((0, Ipv4Addr::new(10, 1, 0, 254))));
        assert_eq!(route(&ports[1..], Ipv4Addr::new(8, 8, 8, 8)), None);
        assert!(ports[1].owns(Ipv4Addr::new(10, 9, 9, 9)));
        assert!(!ports[1].on_link(Ipv4Addr::new(10, 9, 9, 8)), "/32 host addresses make no subnet");
        assert_eq!(ports[1].source_for(Ipv4Addr::new(10, 2, 0, 5)), Some(Ipv4Addr::new(10, 2, 0, 1)));
    }
}
