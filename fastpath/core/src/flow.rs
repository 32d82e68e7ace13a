//! Flow identifiers: the 5-tuple a session is found by.

use std::fmt;
use std::net::Ipv4Addr;

/// Transport protocols the director balances (the one definition, shared with the parser and
/// the API).
pub use lb_model::Protocol as L4Proto;

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
