//! One definition of what a virtual service is made of, shared by the keepalived.conf parser
//! (kaconf), the control API (lb-api maps its generated enums onto these, exhaustively) and the
//! data plane (fastpath): the transport protocol, the scheduler and the forwarding mode, each
//! with its spellings in keepalived.conf, ipvsadm and DPVS. Nothing here does I/O.
#![forbid(unsafe_code)]

use std::fmt;

/// Transport protocols the director balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 2] = [Protocol::Tcp, Protocol::Udp];

    /// keepalived's `protocol` value and ipvsadm's `Prot` column: TCP, UDP.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }

    /// The IP protocol number.
    pub const fn ip_protocol(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// From an IP protocol number (TCP and UDP only).
    pub const fn from_ip_protocol(p: u8) -> Option<Protocol> {
        match p {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// keepalived.conf's spellings (the written one first).
    pub const SPELLINGS: &'static [(&'static str, Protocol)] = &[("TCP", Protocol::Tcp), ("UDP", Protocol::Udp)];
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a new connection picks a real server: LVS's schedulers (ipvsadm `-s`, keepalived
/// `lb_algo`) and DPVS's consistent hash. What each does is in fastpath's `sched` and
/// `hashsched` modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin (LVS's interleaved algorithm).
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Locality-based least connections: one server per destination address while it is not
    /// overloaded.
    Lblc,
    /// Locality-based least connections with replication: a set of servers per destination.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay: fewest (active connections + 1) per weight.
    Sed,
    /// Never queue: an idle server first, else shortest expected delay.
    Nq,
    /// Weighted failover: the heaviest available server.
    Fo,
    /// Weighted overflow: the heaviest server whose active connections are below its weight.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Consistent hashing on a ring of weighted virtual nodes (DPVS's `conhash`).
    Consh,
}

impl Scheduler {
    /// Every scheduler, in ipvsadm's order.
    pub const ALL: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Consh,
    ];

    /// The ipvsadm / keepalived name.
    pub const fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Consh => "consh",
        }
    }

    /// Every spelling read as a scheduler: the names, then DPVS's `conhash`.
    pub const SPELLINGS: &'static [(&'static str, Scheduler)] = &[
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("lblc", Scheduler::Lblc),
        ("lblcr", Scheduler::Lblcr),
        ("dh", Scheduler::Dh),
        ("sh", Scheduler::Sh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fo", Scheduler::Fo),
        ("ovf", Scheduler::Ovf),
        ("mh", Scheduler::Mh),
        ("consh", Scheduler::Consh),
        ("conhash", Scheduler::Consh),
    ];

    /// keepalived.conf's spellings, the written one of each first: DPVS's keepalived writes the
    /// consistent hash `conhash`, and reads `consh` too.
    pub const KEEPALIVED_SPELLINGS: &'static [(&'static str, Scheduler)] = &[
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("lblc", Scheduler::Lblc),
        ("lblcr", Scheduler::Lblcr),
        ("dh", Scheduler::Dh),
        ("sh", Scheduler::Sh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fo", Scheduler::Fo),
        ("ovf", Scheduler::Ovf),
        ("mh", Scheduler::Mh),
        ("conhash", Scheduler::Consh),
        ("consh", Scheduler::Consh),
    ];

    /// The spellings alone (for usage text and completion).
    pub const NAMES: &'static [&'static str] =
        &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "consh", "conhash"];

    /// A scheduler by any of its spellings.
    pub fn from_name(name: &str) -> Option<Scheduler> {
        Self::SPELLINGS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// Whether the choice is a hash of the packet (a prebuilt table per service) rather than
    /// state each worker keeps.
    pub const fn is_hashing(self) -> bool {
        matches!(self, Scheduler::Sh | Scheduler::Dh | Scheduler::Mh | Scheduler::Consh)
    }

    /// Whether the scheduler reads the source port when asked to (`sh-port`, `mh-port`; the
    /// consistent hash likewise).
    pub const fn can_hash_port(self) -> bool {
        matches!(self, Scheduler::Sh | Scheduler::Mh | Scheduler::Consh)
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMode {
    /// Full NAT: source becomes a local address, destination the real server.
    Fnat,
    /// Direct routing: only the destination MAC changes.
    Dr,
    /// NAT (masquerade): destination becomes the real server; replies route back through us.
    Nat,
}

impl ForwardMode {
    /// Every mode.
    pub const ALL: [ForwardMode; 3] = [ForwardMode::Fnat, ForwardMode::Dr, ForwardMode::Nat];

    /// keepalived's `lb_kind` value: FNAT, DR, NAT.
    pub const fn name(self) -> &'static str {
        match self {
            ForwardMode::Fnat => "FNAT",
            ForwardMode::Dr => "DR",
            ForwardMode::Nat => "NAT",
        }
    }

    /// ipvsadm's `Forward` column (DPVS's for FNAT): FullNat, Route, Masq.
    pub const fn ipvsadm_name(self) -> &'static str {
        match self {
            ForwardMode::Fnat => "FullNat",
            ForwardMode::Dr => "Route",
            ForwardMode::Nat => "Masq",
        }
    }

    /// lbctl's short name: fnat, dr, nat.
    pub const fn short_name(self) -> &'static str {
        match self {
            ForwardMode::Fnat => "fnat",
            ForwardMode::Dr => "dr",
            ForwardMode::Nat => "nat",
        }
    }

    /// keepalived.conf's spellings (`lb_kind`, `lvs_method`).
    pub const SPELLINGS: &'static [(&'static str, ForwardMode)] = &[("FNAT", ForwardMode::Fnat), ("DR", ForwardMode::Dr), ("NAT", ForwardMode::Nat)];

    /// A mode by any name it goes by on a command line, in any case: the short name, the
    /// keepalived one or the ipvsadm column.
    pub fn from_any_name(name: &str) -> Option<ForwardMode> {
        let n = name.to_ascii_lowercase();
        Self::ALL.into_iter().find(|m| n == m.short_name() || n == m.ipvsadm_name().to_ascii_lowercase())
    }
}

impl fmt::Display for ForwardMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_spelt_and_read_back() {
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::from_name(s.name()), Some(s));
            assert_eq!(Scheduler::SPELLINGS.iter().find(|(_, v)| *v == s).map(|(n, _)| *n), Some(s.name()), "the written spelling comes first");
        }
        let names: Vec<&str> = Scheduler::SPELLINGS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, Scheduler::NAMES);
        let mut a = Scheduler::SPELLINGS.to_vec();
        let mut b = Scheduler::KEEPALIVED_SPELLINGS.to_vec();
        a.sort_by_key(|(n, _)| *n);
        b.sort_by_key(|(n, _)| *n);
        assert_eq!(a, b, "keepalived.conf reads the same spellings");
        assert_eq!(Scheduler::from_name("conhash"), Some(Scheduler::Consh));
        assert_eq!(Scheduler::from_name("twos"), None);
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_ip_protocol(p.ip_protocol()), Some(p));
            assert!(Protocol::SPELLINGS.contains(&(p.name(), p)));
        }
        for m in ForwardMode::ALL {
            assert!(ForwardMode::SPELLINGS.contains(&(m.name(), m)));
            for n in [m.name(), m.short_name(), m.ipvsadm_name()] {
                assert_eq!(ForwardMode::from_any_name(n), Some(m), "{n}");
            }
        }
        assert_eq!(ForwardMode::from_any_name("tun"), None);
    }
}
