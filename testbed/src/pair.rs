//! Director pairs (VRRP): two directors on one client-facing segment and one
//! backend segment, each with its own addresses, MACs, EAL file prefix, API
//! socket, lbd.toml, stats, logs and pid files, both serving the same VIPs.
//!
//! ```text
//!  client ns           wan ns (bridge br0)        director ns (director-1)
//!  c0 10.70.1.10 ──veth── client                  wan0 [lbd 10.70.1.1] lan0 ──┐
//!                         d1 ──veth───────────── ┘ tap-wan 10.70.1.2           │
//!                         d2 ──veth── wan0 [lbd 10.70.1.3] lan0 ──┐ (director-2)│
//!                                     tap-wan 10.70.1.4           │            │
//!  lan ns (bridge br0): d0 ◄──────────────────────────────────────┼────────────┘
//!                       d0-2 ◄────────────────────────────────────┘
//!                       rs0, rs1, ... ──veth── backends
//! ```
//!
//! Director 2's addresses are director 1's with the last octet moved:
//! `.1 → .3`, `.2 → .4`, `.254 → .252`, `.253 → .251` (lbd's port addresses
//! and the kernel side of its TAPs); other addresses (extra `--wan-address`
//! VIPs and `--lan-address` local addresses) are shared. In a pair every
//! data-port veth has a fixed MAC, [`mac`]: `02:4c:42:00:0N:01` (wan0) and
//! `02:4c:42:00:0N:02` (lan0) for director N. A keepalived peer has no lbd:
//! its wan0/lan0 are kernel interfaces holding director 2's port addresses.
//!
//! Backends keep their default route via director 1's LAN address, so FNAT
//! works through either director (replies go to the local address, which
//! the VRRP master owns), while NAT and DR return paths follow director 1
//! only: a pair does not move those yet.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::{DirectorSpec, Ipv4Cidr, TopologySpec};

/// The bridge in the `wan` namespace.
pub const WAN_BRIDGE: &str = "br0";
/// The `wan` bridge port facing the client's `c0`.
pub const WAN_CLIENT_PORT: &str = "client";

/// What director 2 of a pair runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// lbd and lb-slowpath, as director 1.
    #[default]
    Lbd,
    /// Debian's keepalived running only the file's `vrrp_instance`s
    /// (`keepalived -n -l -D --vrrp`), on kernel interfaces.
    Keepalived,
}

impl fmt::Display for PeerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerKind::Lbd => "lbd",
            PeerKind::Keepalived => "keepalived",
        })
    }
}

impl FromStr for PeerKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "lbd" => Ok(PeerKind::Lbd),
            "keepalived" => Ok(PeerKind::Keepalived),
            _ => Err(format!("unknown peer {s:?}; expected lbd or keepalived")),
        }
    }
}

/// Which keepalived.conf director 2 reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PeerConfig {
    /// The same file as director 1.
    #[default]
    Same,
    /// A copy of director 1's file with every `vrrp_instance`'s `state`
    /// flipped MASTER↔BACKUP and its `priority` set to this (1..=255).
    Priority(u8),
    /// Another file.
    File(PathBuf),
}

impl fmt::Display for PeerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerConfig::Same => f.write_str("the same file as director-1"),
            PeerConfig::Priority(p) => {
                write!(f, "director-1's file, states flipped, priority {p}")
            }
            PeerConfig::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What `topology.json` records of director 2 (`pair` in the record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRecord {
    /// What it runs.
    pub peer: PeerKind,
    /// Which file it reads (as [`PeerConfig`]'s `Display`).
    pub peer_config: String,
    /// Its ports (for a keepalived peer: its kernel interfaces).
    pub director: DirectorSpec,
    /// The namespace, `lbt-<name>-director-2`.
    pub netns: String,
    /// MACs of director 1's wan0 and lan0.
    pub director1_macs: [String; 2],
    /// MACs of director 2's wan0 and lan0.
    pub director2_macs: [String; 2],
    /// Whether lb-slowpath runs beside its lbd.
    pub slowpath: bool,
    /// The keepalived binary (keepalived peer).
    pub keepalived_path: Option<PathBuf>,
    /// Its lbd's pid while running.
    pub lbd_pid: Option<u32>,
    /// Its lb-slowpath's pid while running.
    pub slowpath_pid: Option<u32>,
    /// Its keepalived's pid while running.
    pub keepalived_pid: Option<u32>,
}

/// The MAC of director `director`'s data port `port` (0 wan, 1 lan) in a pair.
pub fn mac(director: u8, port: usize) -> String {
    format!("02:4c:42:00:{director:02x}:{:02x}", port + 1)
}

/// The `wan` bridge port facing director `n`'s wan0: `d<n>`.
pub fn wan_bridge_port(n: u8) -> String {
    format!("d{n}")
}

/// The LAN bridge port facing director `n`'s lan0: the spec's for director 1,
/// `<that>-<n>` for the others.
pub fn lan_bridge_port(spec: &TopologySpec, n: u8) -> String {
    match n {
        1 => spec.lan.director_port.clone(),
        n => format!("{}-{n}", spec.lan.director_port),
    }
}

/// Director 2's last octet for one of director 1's per-director addresses.
fn peer_host(a: Ipv4Addr) -> Option<Ipv4Addr> {
    let [a0, a1, a2, last] = a.octets();
    let moved = match last {
        1 => 3,
        2 => 4,
        254 => 252,
        253 => 251,
        _ => return None,
    };
    Some(Ipv4Addr::new(a0, a1, a2, moved))
}

/// Every address `spec` uses, with what it is.
fn used_addresses(spec: &TopologySpec) -> Vec<(Ipv4Addr, String)> {
    let mut used: Vec<(Ipv4Addr, String)> = Vec::new();
    let mut add = |cs: &[Ipv4Cidr], what: &str| {
        used.extend(cs.iter().map(|c| (c.addr, what.to_owned())));
    };
    add(&spec.client.addresses, "a client address");
    add(
        spec.client.dr_return.as_slice(),
        "the client's DR return address",
    );
    for p in spec.ports() {
        add(
            &p.lbd_addresses,
            &format!("director-1's lbd address on {}", p.name),
        );
        add(&p.tap_addresses, &format!("director-1's {}", p.kernel_tap));
    }
    for b in &spec.backends {
        add(&[b.address], &format!("backend {}", b.node()));
        add(
            &b.loopback_addresses,
            &format!("a loopback address of {}", b.node()),
        );
    }
    used
}

/// Director 2's ports: director 1's with the per-director addresses moved
/// (see the [module docs](self)). `reserved` are further addresses in use
/// (VIPs, local addresses of the keepalived.conf files); a moved address that
/// is already in use is an error naming both.
pub fn peer_director(spec: &TopologySpec, reserved: &[(Ipv4Addr, String)]) -> Result<DirectorSpec> {
    let mut used = used_addresses(spec);
    used.extend(reserved.iter().cloned());
    let mut d = spec.director.clone();
    for port in [&mut d.wan, &mut d.lan] {
        let name = port.name.clone();
        let first = port.lbd_addresses.first().map(|c| c.addr);
        for (kind, list) in [
            ("lbd", &mut port.lbd_addresses),
            ("tap", &mut port.tap_addresses),
        ] {
            for c in list.iter_mut() {
                let Some(moved) = peer_host(c.addr) else {
                    if kind == "lbd" && Some(c.addr) == first {
                        return Err(Error::InvalidSpec {
                            field: format!("director.{name}.lbd_addresses"),
                            reason: format!(
                                "director-2's port address cannot be derived from {} \
                                 (a pair needs director-1's at .1, .2, .253 or .254)",
                                c.addr
                            ),
                        });
                    }
                    continue;
                };
                if let Some((_, what)) = used.iter().find(|(a, _)| *a == moved) {
                    return Err(Error::InvalidSpec {
                        field: format!("director-2 {name} {kind} address"),
                        reason: format!(
                            "director-2 needs {moved} (director-1 has {}), but it is {what}",
                            c.addr
                        ),
                    });
                }
                used.push((moved, format!("director-2's {kind} address on {name}")));
                c.addr = moved;
            }
        }
    }
    Ok(d)
}

/// VIPs and local addresses of a keepalived.conf, for [`peer_director`].
pub fn reserved_addresses(cfg: &kaconf::Config) -> Vec<(Ipv4Addr, String)> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_servers {
        out.push((
            vs.vip,
            format!("the VIP of virtual_server {} {}", vs.vip, vs.port),
        ));
    }
    for g in &cfg.local_address_groups {
        out.extend(
            g.addrs
                .iter()
                .map(|a| (a.ip, format!("a local address of group {}", g.name))),
        );
    }
    for vi in &cfg.vrrp_instances {
        out.extend(vi.virtual_ipaddress.iter().map(|v| {
            (
                v.addr.ip(),
                format!("a virtual_ipaddress of vrrp_instance {}", vi.name),
            )
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::cidr;

    #[test]
    fn peer_addresses_move_and_collisions_are_named() {
        let spec = TopologySpec::default().with_wan_address(cidr("10.70.1.100/24"));
        let d = peer_director(&spec, &[]).unwrap();
        assert_eq!(
            d.wan.lbd_addresses,
            [cidr("10.70.1.3/24"), cidr("10.70.1.100/24")]
        );
        assert_eq!(d.wan.tap_addresses, [cidr("10.70.1.4/24")]);
        assert_eq!(d.lan.lbd_addresses, [cidr("10.70.2.3/24")]);
        assert_eq!(d.lan.tap_addresses, [cidr("10.70.2.4/24")]);
        assert_eq!(
            (d.wan.iface.as_str(), d.wan.kernel_tap.as_str()),
            ("wan0", "tap-wan")
        );
        let reserved = [(
            Ipv4Addr::new(10, 70, 2, 3),
            "a local address of group g".to_owned(),
        )];
        let msg = peer_director(&spec, &reserved).unwrap_err().to_string();
        assert!(
            msg.contains("needs 10.70.2.3") && msg.contains("group g"),
            "{msg}"
        );
        let mut odd = TopologySpec::default();
        odd.director.wan.lbd_addresses = vec![cidr("10.70.1.7/24")];
        let msg = peer_director(&odd, &[]).unwrap_err().to_string();
        assert!(msg.contains("director.wan.lbd_addresses"), "{msg}");
    }

    #[test]
    fn names_and_macs() {
        assert_eq!(mac(1, 0), "02:4c:42:00:01:01");
        assert_eq!(mac(2, 1), "02:4c:42:00:02:02");
        let spec = TopologySpec::default();
        assert_eq!(lan_bridge_port(&spec, 1), "d0");
        assert_eq!(lan_bridge_port(&spec, 2), "d0-2");
        assert_eq!(wan_bridge_port(2), "d2");
        assert_eq!(
            "keepalived".parse::<PeerKind>().unwrap(),
            PeerKind::Keepalived
        );
        assert!("vrrpd".parse::<PeerKind>().is_err());
    }
}
