//! Flow identifiers: the 5-tuple a session is found by.

use std::fmt;
use std::net::Ipv4Addr;

/// Transport protocols the director balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4Proto {
    Tcp,
    Udp,
}

impl fmt::Display for L4Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L4Proto::Tcp => "TCP",
            L4Proto::Udp => "UDP",
        })
    }
}

impl L4Proto {
    /// The IP protocol number.
    pub const fn ip_protocol(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
        }
    }

    /// From an IP protocol number (TCP and UDP only).
    pub const fn from_ip_protocol(p: u8) -> Option<L4Proto> {
        match p {
            6 => Some(L4Proto::Tcp),
            17 => Some(L4Proto::Udp),
            _ => None,
        }
    }
}

/// A directed 5-tuple, as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: L4Proto,
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{} -> {}:{}", self.proto, self.src, self.sport, self.dst, self.dport)
    }
}
