//! What a topology consists of: a data structure that the default builder, the
//! CLI and the keepalived.conf translation ([`TopologySpec::from_keepalived`])
//! all fill in the same way.
//!
//! ```text
//!  client ns            director ns                      lan ns              rs-<addr> ns
//!  c0 10.70.1.10 ──veth── wan0 [lbd] lan0 ──veth── d0 ┐
//!                        tap-wan 10.70.1.2        br0 ├ rs0 ──veth── eth0 10.70.2.11
//!                        tap-lan 10.70.2.2            └ rs1 ──veth── eth0 10.70.2.12
//! ```

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// An IPv4 address with a prefix length, written `10.70.1.10/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `addr/prefix_len`; panics if `prefix_len > 32` (use `parse` for input).
    pub const fn new(addr: Ipv4Addr, prefix_len: u8) -> Self {
        assert!(prefix_len <= 32, "IPv4 prefix length above 32");
        Ipv4Cidr { addr, prefix_len }
    }

    /// The network mask as an integer.
    fn mask(self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n)),
        }
    }

    /// Whether `other` lies in this prefix.
    pub fn contains(self, other: Ipv4Addr) -> bool {
        u32::from(self.addr) & self.mask() == u32::from(other) & self.mask()
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidSpec {
            field: format!("address {s:?}"),
            reason: reason.to_owned(),
        };
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX_LEN"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix_len: u8 = len
            .parse()
            .map_err(|_| bad("prefix length is not a number"))?;
        if prefix_len > 32 {
            return Err(bad("prefix length above 32"));
        }
        Ok(Ipv4Cidr { addr, prefix_len })
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Shorthand for tests and builders: `cidr("10.70.1.10/24")`. Panics on bad input.
pub fn cidr(s: &str) -> Ipv4Cidr {
    match s.parse() {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// A static route: `ip route add <dest> via <via>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination prefix (e.g. a VIP as `/32`).
    pub dest: Ipv4Cidr,
    /// Next hop, on a directly connected subnet.
    pub via: Ipv4Addr,
}

/// The client host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// Its veth (peer of the director's WAN port).
    pub iface: String,
    /// Addresses on `iface`; the first is the primary one.
    pub addresses: Vec<Ipv4Cidr>,
    /// Default gateway (an lbd address on the WAN port), if any.
    pub gateway: Option<Ipv4Addr>,
    /// Extra routes, e.g. VIPs outside the WAN subnet via an lbd address.
    pub routes: Vec<Route>,
    /// Direct-routing return path: the client's address on a second veth (`c1`) plugged into
    /// the LAN bridge, so real servers answer DR connections without passing the director
    /// (as a real network's router would carry them). Reverse-path filtering is then off.
    #[serde(default)]
    pub dr_return: Option<Ipv4Cidr>,
}

/// One director data port: a veth end that lbd drives, plus the kernel TAP
/// interface lbd creates for its exception path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Port name in lbd.toml (`wan`, `lan`).
    pub name: String,
    /// The veth end in the director namespace that the DPDK vdev binds to.
    pub iface: String,
    /// Addresses lbd itself owns on this port (ARP, ping, VIPs, local addresses).
    pub lbd_addresses: Vec<Ipv4Cidr>,
    /// Name of the TAP interface lbd creates in the director namespace.
    pub kernel_tap: String,
    /// Addresses the testbed gives the kernel side of that TAP.
    pub tap_addresses: Vec<Ipv4Cidr>,
}

/// The director host (where lbd runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorSpec {
    /// Client-facing port (veth peer of the client).
    pub wan: PortSpec,
    /// Backend-facing port (veth peer of the lan switch).
    pub lan: PortSpec,
}

/// The switch namespace between the director and the backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanSpec {
    /// The bridge.
    pub bridge: String,
    /// The bridge port facing the director's LAN port.
    pub director_port: String,
}

/// One real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSpec {
    /// Its address on `eth0`; the node is named `rs-<address>`.
    pub address: Ipv4Cidr,
    /// Default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Port nginx listens on (all addresses); it also answers `/healthz` there.
    pub http_port: u16,
    /// Further ports the same nginx listens on.
    #[serde(default)]
    pub extra_http_ports: Vec<u16>,
    /// UDP ports a datagram echo server listens on (bound to `address`); empty: none runs.
    #[serde(default)]
    pub udp_echo_ports: Vec<u16>,
    /// Extra addresses on `lo` (e.g. VIPs for direct routing).
    pub loopback_addresses: Vec<Ipv4Cidr>,
    /// Extra routes.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Direct routing: replies sourced from a `lo` address (a VIP) take this route instead of
    /// the default gateway (policy routing: `ip rule from VIP table 100`), so DR replies go
    /// straight to the client while NAT and FNAT replies still return through the director.
    #[serde(default)]
    pub dr_reply_route: Option<Route>,
    /// Never answer ARP for `lo` addresses nor use them as ARP sources
    /// (`arp_ignore=1`, `arp_announce=2`), as direct-routing real servers must.
    #[serde(default)]
    pub arp_quiet: bool,
}

impl BackendSpec {
    /// A backend at `address` with gateway 10.70.2.1 and nginx on port 80.
    pub fn new(address: Ipv4Cidr) -> Self {
        BackendSpec {
            address,
            gateway: Some(Ipv4Addr::new(10, 70, 2, 1)),
            http_port: 80,
            extra_http_ports: vec![],
            udp_echo_ports: vec![],
            loopback_addresses: vec![],
            routes: vec![],
            dr_reply_route: None,
            arp_quiet: false,
        }
    }

    /// Every TCP port nginx listens on: `http_port`, then `extra_http_ports`.
    pub fn http_ports(&self) -> Vec<u16> {
        let mut ports = vec![self.http_port];
        for &p in &self.extra_http_ports {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        ports
    }

    /// The node name, `rs-<address>`.
    pub fn node(&self) -> String {
        format!("rs-{}", self.address.addr)
    }
}

/// A whole topology. `TopologySpec::default()` is the standard one: a client,
/// a director, a lan switch and two backends (10.70.2.11, 10.70.2.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologySpec {
    /// The client.
    pub client: ClientSpec,
    /// The director.
    pub director: DirectorSpec,
    /// The switch.
    pub lan: LanSpec,
    /// The backends, in order (bridge ports `rs0`, `rs1`, ...).
    pub backends: Vec<BackendSpec>,
}

impl Default for TopologySpec {
    fn default() -> Self {
        TopologySpec {
            client: ClientSpec {
                iface: "c0".into(),
                addresses: vec![cidr("10.70.1.10/24")],
                gateway: Some(Ipv4Addr::new(10, 70, 1, 1)),
                routes: vec![],
                dr_return: None,
            },
            director: DirectorSpec {
                wan: PortSpec {
                    name: "wan".into(),
                    iface: "wan0".into(),
                    lbd_addresses: vec![cidr("10.70.1.1/24")],
                    kernel_tap: "tap-wan".into(),
                    tap_addresses: vec![cidr("10.70.1.2/24")],
                },
                lan: PortSpec {
                    name: "lan".into(),
                    iface: "lan0".into(),
                    lbd_addresses: vec![cidr("10.70.2.1/24")],
                    kernel_tap: "tap-lan".into(),
                    tap_addresses: vec![cidr("10.70.2.2/24")],
                },
            },
            lan: LanSpec {
                bridge: "br0".into(),
                director_port: "d0".into(),
            },
            backends: Self::default_backends(2),
        }
    }
}

impl TopologySpec {
    /// Most backends [`TopologySpec::default_backends`] can number (10.70.2.11 ..= .254).
    pub const MAX_DEFAULT_BACKENDS: usize = 244;

    /// `n` backends 10.70.2.11, 10.70.2.12, ...; panics above
    /// [`TopologySpec::MAX_DEFAULT_BACKENDS`].
    pub fn default_backends(n: usize) -> Vec<BackendSpec> {
        assert!(
            n <= Self::MAX_DEFAULT_BACKENDS,
            "at most {} default backends",
            Self::MAX_DEFAULT_BACKENDS
        );
        (11..)
            .take(n)
            .map(|last: u8| BackendSpec::new(Ipv4Cidr::new(Ipv4Addr::new(10, 70, 2, last), 24)))
            .collect()
    }

    /// Replaces the backends with `n` default ones.
    pub fn with_backend_count(mut self, n: usize) -> Self {
        self.backends = Self::default_backends(n);
        self
    }

    /// Replaces the backends.
    pub fn with_backends(mut self, backends: Vec<BackendSpec>) -> Self {
        self.backends = backends;
        self
    }

    /// Adds an address to the client's interface.
    pub fn with_client_address(mut self, a: Ipv4Cidr) -> Self {
        self.client.addresses.push(a);
        self
    }

    /// Adds a client route (e.g. to a VIP).
    pub fn with_client_route(mut self, dest: Ipv4Cidr, via: Ipv4Addr) -> Self {
        self.client.routes.push(Route { dest, via });
        self
    }

    /// Adds an address lbd owns on its WAN port (e.g. a VIP).
    pub fn with_wan_address(mut self, a: Ipv4Cidr) -> Self {
        self.director.wan.lbd_addresses.push(a);
        self
    }

    /// Adds an address lbd owns on its LAN port (e.g. a FNAT local address).
    pub fn with_lan_address(mut self, a: Ipv4Cidr) -> Self {
        self.director.lan.lbd_addresses.push(a);
        self
    }

    /// The director ports, WAN first.
    pub fn ports(&self) -> [&PortSpec; 2] {
        [&self.director.wan, &self.director.lan]
    }

    /// Name of backend `index`'s bridge port in the lan namespace.
    pub fn backend_bridge_port(index: usize) -> String {
        format!("rs{index}")
    }

    /// Checks names and addresses; every error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: String, reason: String| Err(Error::InvalidSpec { field, reason });
        let ifaces = [
            ("client.iface", &self.client.iface),
            ("director.wan.iface", &self.director.wan.iface),
            ("director.wan.kernel_tap", &self.director.wan.kernel_tap),
            ("director.lan.iface", &self.director.lan.iface),
            ("director.lan.kernel_tap", &self.director.lan.kernel_tap),
            ("lan.bridge", &self.lan.bridge),
            ("lan.director_port", &self.lan.director_port),
        ];
        for (field, name) in ifaces {
            check_ifname(name).or_else(|reason| bad(field.into(), reason))?;
        }
        if self.director.wan.iface == self.director.lan.iface
            || self.director.wan.kernel_tap == self.director.lan.kernel_tap
        {
            return bad(
                "director".into(),
                "wan and lan must use different interface and tap names".into(),
            );
        }
        if self.lan.director_port == self.lan.bridge || self.lan.director_port.starts_with("rs") {
            return bad(
                "lan.director_port".into(),
                "must differ from the bridge and from rs<N>".into(),
            );
        }
        if self.client.addresses.is_empty() {
            return bad(
                "client.addresses".into(),
                "the client needs at least one address".into(),
            );
        }
        for (i, p) in self.ports().iter().enumerate() {
            if p.lbd_addresses.is_empty() {
                return bad(
                    format!("director.{}.lbd_addresses", p.name),
                    "lbd needs an address on every port".into(),
                );
            }
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return bad(
                    format!("director port {i} name"),
                    format!("{:?} is not a plain word", p.name),
                );
            }
        }
        if self.backends.len() > 1000 {
            return bad(
                "backends".into(),
                format!("{} backends is more than 1000", self.backends.len()),
            );
        }
        for (i, b) in self.backends.iter().enumerate() {
            if self.backends[..i]
                .iter()
                .any(|o| o.address.addr == b.address.addr)
            {
                return bad(
                    format!("backends[{i}].address"),
                    format!("{} is used twice", b.address.addr),
                );
            }
            if b.http_port == 0 || b.extra_http_ports.contains(&0) {
                return bad(format!("backends[{i}].http_port"), "port 0".into());
            }
            if b.udp_echo_ports.contains(&0) {
                return bad(format!("backends[{i}].udp_echo_ports"), "port 0".into());
            }
        }
        Ok(())
    }
}

fn check_ifname(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(format!(
            "interface name {name:?} must be 1..={MAX_IFNAME} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(format!(
            "interface name {name:?} may only hold letters, digits, '-', '_', '.'"
        ));
    }
    Ok(())
}

/// A host of the topology, addressed by its node name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// `client`
    Client,
    /// `director` (also spelt `director-1`): the director, or the first of a pair
    Director,
    /// `director-2`: the second director of a pair (see [`crate::pair`])
    Director2,
    /// `wan` (the client-facing switch of a director pair; it has no IP addresses)
    Wan,
    /// `lan` (the switch namespace; it has no IP addresses)
    Lan,
    /// `rs-<address>`
    Backend(Ipv4Addr),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Client => f.write_str("client"),
            Node::Director => f.write_str("director"),
            Node::Director2 => f.write_str("director-2"),
            Node::Wan => f.write_str("wan"),
            Node::Lan => f.write_str("lan"),
            Node::Backend(a) => write!(f, "rs-{a}"),
        }
    }
}

impl FromStr for Node {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "client" => Ok(Node::Client),
            "director" | "director-1" => Ok(Node::Director),
            "director-2" => Ok(Node::Director2),
            "wan" => Ok(Node::Wan),
            "lan" => Ok(Node::Lan),
            _ => s
                .strip_prefix("rs-")
                .and_then(|a| a.parse().ok())
                .map(Node::Backend)
                .ok_or_else(|| {
                    format!(
                        "{s:?} is not client, director (director-1), director-2, wan, lan or \
                         rs-<IPv4 address>"
                    )
                }),
        }
    }
}

impl Node {
    /// The namespace of this node in topology `name`: `lbt-<name>-<node>`.
    pub fn netns(&self, name: &str) -> String {
        format!("{}{self}", netns_prefix(name))
    }
}

/// The prefix shared by all namespaces of topology `name`: `lbt-<name>-`.
pub fn netns_prefix(name: &str) -> String {
    format!("lbt-{name}-")
}

/// Whether `netns` belongs to topology `name`. The part after the prefix must
/// be exactly a node name, so topology `lb` never claims `lbt-lb-2-client`.
pub fn netns_belongs_to(netns: &str, name: &str) -> bool {
    netns
        .strip_prefix(&netns_prefix(name))
        .is_some_and(|rest| rest.parse::<Node>().is_ok())
}

/// Checks a topology name: 1..=32 of `[A-Za-z0-9_-]`, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() || name.len() > 32 {
        return bad("must be 1 to 32 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad("may only hold letters, digits, '-' and '_'");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_round_trip_and_errors() {
        let c = cidr("10.70.1.10/24");
        assert_eq!(c.to_string(), "10.70.1.10/24");
        assert!(c.contains(Ipv4Addr::new(10, 70, 1, 1)));
        assert!(!c.contains(Ipv4Addr::new(10, 70, 2, 1)));
        assert!(cidr("0.0.0.0/0").contains(Ipv4Addr::new(1, 2, 3, 4)));
        for bad in ["10.70.1.10", "10.70.1/24", "10.70.1.10/33", "x/1"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"10.70.1.10/24\"");
        assert_eq!(serde_json::from_str::<Ipv4Cidr>(&json).unwrap(), c);
    }

    #[test]
    fn node_names() {
        for s in ["client", "director", "director-2", "wan", "lan", "rs-10.70.2.11"] {
            assert_eq!(s.parse::<Node>().unwrap().to_string(), s);
        }
        assert_eq!("director-1".parse::<Node>().unwrap(), Node::Director);
        assert_eq!(Node::Director2.netns("x"), "lbt-x-director-2");
        assert!("rs-10.70.2".parse::<Node>().is_err());
        assert!("server".parse::<Node>().is_err());
        assert_eq!(
            Node::Backend(Ipv4Addr::new(10, 70, 2, 11)).netns("x"),
            "lbt-x-rs-10.70.2.11"
        );
    }

    #[test]
    fn netns_ownership_is_exact() {
        assert!(netns_belongs_to("lbt-lb-client", "lb"));
        assert!(netns_belongs_to("lbt-lb-rs-10.70.2.11", "lb"));
        assert!(!netns_belongs_to("lbt-lb-2-client", "lb"));
        assert!(!netns_belongs_to("lbt-lb-rs-10.70.2.11-client", "lb"));
        assert!(!netns_belongs_to("lbt-lbx-client", "lb"));
        assert!(netns_belongs_to("lbt-lb-2-client", "lb-2"));
    }

    #[test]
    fn default_spec_is_valid_and_as_documented() {
        let s = TopologySpec::default();
        s.validate().unwrap();
        let nodes: Vec<String> = s.backends.iter().map(BackendSpec::node).collect();
        assert_eq!(nodes, ["rs-10.70.2.11", "rs-10.70.2.12"]);
        assert_eq!(
            TopologySpec::default().with_backend_count(5).backends.len(),
            5
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut s = TopologySpec::default();
        s.backends.push(s.backends[0].clone());
        let msg = s.validate().unwrap_err().to_string();
        assert!(msg.contains("backends[2].address"), "{msg}");
        let mut s = TopologySpec::default();
        s.director.wan.kernel_tap = "a-very-long-tap-name".into();
        let msg = s.validate().unwrap_err().to_string();
        assert!(msg.contains("director.wan.kernel_tap"), "{msg}");
    }

    #[test]
    fn names() {
        validate_name("lb").unwrap();
        validate_name("t123-4_x").unwrap();
        assert!(validate_name("").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(33)).is_err());
    }
}
