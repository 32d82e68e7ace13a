//! A topology shaped by a keepalived.conf: one backend per real-server
//! address, serving every port and protocol its virtual services use, and lbd
//! reading the same file (`services = ...` in lbd.toml).
//!
//! The translation ([`TopologySpec::from_keepalived`]):
//! - backend `rs-<addr>` per distinct real-server address, `<addr>/24`, its
//!   default gateway lbd's LAN address in that /24; nginx on every TCP port
//!   and a UDP echo server on every UDP port a virtual service sends it;
//! - the director's `lan` port: lbd owns `.1/24` in every real-server /24
//!   (`.254` where `.1` is taken), and the kernel side of `tap-lan` gets `.2/24`
//!   (`.253` where taken) in the first one;
//! - client and WAN side as in [`TopologySpec::default`]: client
//!   10.70.1.10/24, default route via lbd's 10.70.1.1, which covers every VIP.
//!   A VIP inside 10.70.1.0/24 is fine (lbd answers ARP for it); a real server
//!   there is an error.
//!
//! VIPs and local addresses are not added to the spec's lbd addresses: lbd
//! reads them from the file itself and answers ARP for them.
//!
//! The file lbd reads is `<state>/keepalived.conf` ([`install`]): a verbatim
//! copy when the file stands alone; when it uses `include`s (which resolve
//! from the including file's directory), a one-line file that includes the
//! original by its absolute path, so includes resolve as they do for the
//! original and positions in lbd's messages name the original files.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use kaconf::{Config, ForwardMode, Protocol};

use crate::error::{Error, Result};
use crate::spec::{cidr, BackendSpec, Ipv4Cidr, Route, TopologySpec};
use crate::state;

/// The client's subnet, where no real server may live.
const CLIENT_SUBNET: &str = "10.70.1.0/24";

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidSpec {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `addr` with its last octet replaced.
fn host(net: Ipv4Cidr, last: u8) -> Ipv4Addr {
    let [a, b, c, _] = net.addr.octets();
    Ipv4Addr::new(a, b, c, last)
}

/// The /24 holding `addr`, as `a.b.c.0/24`.
fn subnet_of(addr: Ipv4Addr) -> Ipv4Cidr {
    Ipv4Cidr::new(host(Ipv4Cidr::new(addr, 24), 0), 24)
}

/// Ports and protocols one real-server address serves, in first-use order, and the VIPs it
/// must hold itself (direct routing).
#[derive(Default)]
struct Serves {
    tcp: Vec<u16>,
    udp: Vec<u16>,
    dr_vips: Vec<Ipv4Addr>,
}

impl TopologySpec {
    /// Reads the keepalived.conf at `path` and translates it with
    /// [`TopologySpec::from_keepalived`].
    pub fn from_keepalived_file(path: &Path) -> Result<TopologySpec> {
        TopologySpec::from_keepalived(&kaconf::load(path)?)
    }

    /// The topology for `cfg` (see the [module docs](crate::keepalived)).
    /// Errors name the real server, VIP or local address at fault and where
    /// it is defined.
    pub fn from_keepalived(cfg: &Config) -> Result<TopologySpec> {
        let mut spec = TopologySpec::default();
        let client_subnet = cidr(CLIENT_SUBNET);
        // What each address already is, for choosing the director's addresses.
        let mut taken: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let mut servers: Vec<(Ipv4Addr, Serves)> = Vec::new();
        for vs in &cfg.virtual_servers {
            let at = format!("{}:{}", vs.file.display(), vs.line);
            let vip_field = format!("virtual_server {} {} ({at})", vs.vip, vs.port);
            for fixed in [10, 2] {
                if vs.vip == host(client_subnet, fixed) {
                    return Err(invalid(
                        vip_field,
                        format!("VIP {} is the testbed's own client-side address", vs.vip),
                    ));
                }
            }
            taken
                .entry(vs.vip)
                .or_insert_with(|| format!("the VIP of {vip_field}"));
            for rs in &vs.real_servers {
                let field = format!(
                    "real_server {} {} ({}:{}, in virtual_server {} {})",
                    rs.ip,
                    rs.port,
                    rs.file.display(),
                    rs.line,
                    vs.vip,
                    vs.port
                );
                if client_subnet.contains(rs.ip) {
                    return Err(invalid(
                        field,
                        format!(
                            "real server {} is in the client subnet {CLIENT_SUBNET}; \
                             the testbed needs real servers behind the director's LAN port, \
                             in another /24",
                            rs.ip
                        ),
                    ));
                }
                let last = rs.ip.octets()[3];
                if last == 0 || last == 255 {
                    return Err(invalid(
                        field,
                        format!("{} is the network or broadcast address of its /24", rs.ip),
                    ));
                }
                if rs.port == 0 {
                    return Err(invalid(field, "port 0 cannot be served"));
                }
                let i = match servers.iter().position(|(a, _)| *a == rs.ip) {
                    Some(i) => i,
                    None => {
                        servers.push((rs.ip, Serves::default()));
                        servers.len() - 1
                    }
                };
                if vs.lb_kind == ForwardMode::Dr {
                    if rs.port != vs.port {
                        return Err(invalid(field, format!("direct routing cannot change the port: real server port {} differs from the VIP's {}", rs.port, vs.port)));
                    }
                    if !servers[i].1.dr_vips.contains(&vs.vip) {
                        servers[i].1.dr_vips.push(vs.vip);
                    }
                }
                let ports = match vs.protocol {
                    Protocol::Tcp => &mut servers[i].1.tcp,
                    Protocol::Udp => &mut servers[i].1.udp,
                };
                if !ports.contains(&rs.port) {
                    ports.push(rs.port);
                }
            }
        }
        for (ip, _) in &servers {
            if let Some(what) = taken.get(ip) {
                return Err(invalid(
                    format!("real_server {ip}"),
                    format!("{ip} is also {what}"),
                ));
            }
        }
        for g in &cfg.local_address_groups {
            for a in &g.addrs {
                let field = format!(
                    "local_address_group {} ({}:{}) address {}",
                    g.name,
                    g.file.display(),
                    g.line,
                    a.ip
                );
                if servers.iter().any(|(ip, _)| *ip == a.ip) {
                    return Err(invalid(field, format!("{} is also a real server", a.ip)));
                }
                if a.ip == host(client_subnet, 10) || a.ip == host(client_subnet, 2) {
                    return Err(invalid(
                        field,
                        format!("{} is the testbed's own client-side address", a.ip),
                    ));
                }
                taken
                    .entry(a.ip)
                    .or_insert_with(|| format!("a local address of group {}", g.name));
            }
        }
        for (ip, _) in &servers {
            taken.insert(*ip, "a real server".into());
        }
        if servers.is_empty() {
            // Nothing to serve: keep the default LAN addresses, no backends.
            spec.backends.clear();
            return Ok(spec);
        }

        let mut subnets: Vec<Ipv4Cidr> = Vec::new();
        for (ip, _) in &servers {
            let net = subnet_of(*ip);
            if !subnets.contains(&net) {
                subnets.push(net);
            }
        }
        let pick = |net: Ipv4Cidr, first: u8, second: u8, role: &str| -> Result<Ipv4Addr> {
            let (a, b) = (host(net, first), host(net, second));
            match (taken.get(&a), taken.get(&b)) {
                (None, _) => Ok(a),
                (Some(_), None) => Ok(b),
                (Some(wa), Some(wb)) => Err(invalid(
                    format!("subnet {net}"),
                    format!(
                        "the testbed needs {a} or {b} for {role}, but {a} is {wa} and {b} is {wb}"
                    ),
                )),
            }
        };
        let mut gateways = BTreeMap::new();
        let mut lbd_addresses = Vec::new();
        for &net in &subnets {
            let gw = pick(net, 1, 254, "lbd's address on its LAN port")?;
            gateways.insert(net, gw);
            lbd_addresses.push(Ipv4Cidr::new(gw, 24));
        }
        let tap = pick(subnets[0], 2, 253, "the kernel side of tap-lan")?;
        spec.director.lan.lbd_addresses = lbd_addresses;
        spec.director.lan.tap_addresses = vec![Ipv4Cidr::new(tap, 24)];
        // Direct routing: real servers answer straight to the client, over a second client
        // leg on the LAN bridge (what a router does in a real network).
        let dr_return = if servers.iter().any(|(_, s)| !s.dr_vips.is_empty()) {
            let a = pick(subnets[0], 250, 249, "the client's direct-routing return leg")?;
            spec.client.dr_return = Some(Ipv4Cidr::new(a, 24));
            Some(a)
        } else {
            None
        };

        spec.backends = servers
            .into_iter()
            .map(|(ip, serves)| {
                let mut b = BackendSpec::new(Ipv4Cidr::new(ip, 24));
                b.gateway = gateways.get(&subnet_of(ip)).copied();
                // nginx always runs (its /healthz shows the backend is up);
                // on port 80 when no TCP service uses this address.
                if let Some((&first, rest)) = serves.tcp.split_first() {
                    b.http_port = first;
                    b.extra_http_ports = rest.to_vec();
                }
                b.udp_echo_ports = serves.udp;
                if let Some(via) = dr_return.filter(|_| !serves.dr_vips.is_empty()) {
                    b.loopback_addresses = serves.dr_vips.iter().map(|v| Ipv4Cidr::new(*v, 32)).collect();
                    b.arp_quiet = true;
                    if subnet_of(via) == subnet_of(ip) {
                        b.dr_reply_route = Some(Route { dest: client_subnet, via });
                    }
                }
                b
            })
            .collect();
        spec.validate()?;
        Ok(spec)
    }
}

/// Checks that `src` is a valid keepalived.conf and writes the file lbd reads
/// to `dest` (see the [module docs](crate::keepalived)): a verbatim copy if
/// that copy loads to the same configuration on its own, else a file that
/// includes `src` by its absolute path.
pub fn install(src: &Path, dest: &Path) -> Result<()> {
    let original = kaconf::load(src)?;
    let text = std::fs::read(src).map_err(|e| Error::io("reading", src, e))?;
    state::write(dest, &text)?;
    if kaconf::load(dest).is_ok_and(|copy| copy.same_settings(&original)) {
        return Ok(());
    }
    let abs = src
        .canonicalize()
        .map_err(|e| Error::io("resolving", src, e))?;
    let shown = abs.to_string_lossy();
    if shown.contains(['"', '\n']) {
        return Err(invalid(
            "keepalived_conf",
            format!("{shown:?} uses include and its path cannot be quoted in an include"),
        ));
    }
    let wrapper = format!(
        "# Generated by lb-testbed: {shown} uses `include`, which resolves from its own\n\
         # directory, so this file includes the original rather than copying it.\n\
         include \"{shown}\"\n"
    );
    state::write(dest, wrapper.as_bytes())?;
    match kaconf::load(dest) {
        Ok(c) if c.same_settings(&original) => Ok(()),
        Ok(_) => Err(invalid(
            "keepalived_conf",
            format!(
                "{} reads differently through an include of {shown}",
                dest.display()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        kaconf::parse_str(text, Path::new("test.conf")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn vs(vip: &str, port: u16, proto: &str, rs: &[(&str, u16)]) -> String {
        let mut s = format!(
            "virtual_server {vip} {port} {{\n  lb_algo rr\n  lb_kind FNAT\n  protocol {proto}\n  \
             laddr_group_name g\n"
        );
        for (ip, p) in rs {
            s.push_str(&format!("  real_server {ip} {p} {{\n    weight 1\n  }}\n"));
        }
        s + "}\n"
    }

    const LADDRS: &str = "local_address_group g {\n  10.70.2.100 lan\n}\n";

    #[test]
    fn backends_ports_and_director_addresses() {
        let text = [
            LADDRS.to_owned(),
            vs(
                "10.70.1.100",
                80,
                "TCP",
                &[("10.70.2.11", 80), ("10.70.3.1", 80)],
            ),
            vs("10.70.1.100", 8080, "TCP", &[("10.70.2.11", 8080)]),
            vs(
                "10.70.1.100",
                53,
                "UDP",
                &[("10.70.2.11", 5353), ("10.70.3.1", 5353)],
            ),
        ]
        .concat();
        let spec = TopologySpec::from_keepalived(&parse(&text)).unwrap();
        let b: Vec<_> = spec.backends.iter().map(|b| b.node()).collect();
        assert_eq!(b, ["rs-10.70.2.11", "rs-10.70.3.1"]);
        assert_eq!(spec.backends[0].http_ports(), [80, 8080]);
        assert_eq!(spec.backends[0].udp_echo_ports, [5353]);
        assert_eq!(spec.backends[0].gateway, Some(Ipv4Addr::new(10, 70, 2, 1)));
        assert_eq!(spec.backends[1].address, cidr("10.70.3.1/24"));
        assert_eq!(
            spec.backends[1].gateway,
            Some(Ipv4Addr::new(10, 70, 3, 254))
        );
        let lan = &spec.director.lan;
        assert_eq!(
            lan.lbd_addresses,
            [cidr("10.70.2.1/24"), cidr("10.70.3.254/24")]
        );
        assert_eq!(lan.tap_addresses, [cidr("10.70.2.2/24")]);
        assert_eq!(spec.director.wan, TopologySpec::default().director.wan);
        assert_eq!(spec.client, TopologySpec::default().client);
    }

    #[test]
    fn udp_only_backend_keeps_nginx_on_80() {
        let text = LADDRS.to_owned() + &vs("192.0.2.1", 53, "UDP", &[("10.70.2.2", 53)]);
        let spec = TopologySpec::from_keepalived(&parse(&text)).unwrap();
        assert_eq!(spec.backends[0].http_ports(), [80]);
        assert_eq!(spec.backends[0].udp_echo_ports, [53]);
        // .2 is a real server: the tap takes .253.
        assert_eq!(spec.director.lan.tap_addresses, [cidr("10.70.2.253/24")]);
    }

    #[test]
    fn errors_name_the_culprit() {
        let err = |text: String| {
            TopologySpec::from_keepalived(&parse(&(LADDRS.to_owned() + &text)))
                .unwrap_err()
                .to_string()
        };
        let msg = err(vs("10.70.1.100", 80, "TCP", &[("10.70.1.20", 80)]));
        assert!(
            msg.contains("real_server 10.70.1.20 80 (test.conf:"),
            "{msg}"
        );
        assert!(msg.contains("client subnet 10.70.1.0/24"), "{msg}");
        let msg = err(vs(
            "10.70.1.100",
            80,
            "TCP",
            &[("10.70.5.1", 80), ("10.70.5.254", 80)],
        ));
        assert!(msg.contains("subnet 10.70.5.0/24"), "{msg}");
        assert!(
            msg.contains("10.70.5.1 is a real server and 10.70.5.254 is a real server"),
            "{msg}"
        );
        let msg = err(vs("10.70.1.100", 80, "TCP", &[("10.70.2.100", 80)]));
        assert!(msg.contains("10.70.2.100 is also a real server"), "{msg}");
        let msg = err(vs("10.70.2.11", 80, "TCP", &[("10.70.2.11", 80)]));
        assert!(
            msg.contains("also the VIP of virtual_server 10.70.2.11 80"),
            "{msg}"
        );
    }

    #[test]
    fn no_real_servers_keeps_the_default_lan() {
        let spec = TopologySpec::from_keepalived(&parse(LADDRS)).unwrap();
        assert!(spec.backends.is_empty());
        assert_eq!(spec.director, TopologySpec::default().director);
    }

    #[test]
    fn install_copies_or_includes_the_original() {
        let dir = std::env::temp_dir().join(crate::unique_name("lbt-kaconf-"));
        std::fs::create_dir_all(dir.join("vs.d")).unwrap();
        let plain = dir.join("plain.conf");
        let body = LADDRS.to_owned() + &vs("10.70.1.100", 80, "TCP", &[("10.70.2.11", 80)]);
        std::fs::write(&plain, &body).unwrap();
        std::fs::write(
            dir.join("vs.d/a.conf"),
            vs("10.70.1.100", 80, "TCP", &[("10.70.2.11", 80)]),
        )
        .unwrap();
        let with_include = dir.join("main.conf");
        std::fs::write(&with_include, LADDRS.to_owned() + "include vs.d/*.conf\n").unwrap();
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();

        let dest = out.join("keepalived.conf");
        install(&plain, &dest).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), body);
        install(&with_include, &dest).unwrap();
        let text = std::fs::read_to_string(&dest).unwrap();
        assert!(
            text.contains(&format!("include \"{}\"", with_include.display())),
            "{text}"
        );
        let loaded = kaconf::load(&dest).unwrap();
        assert!(loaded.same_settings(&kaconf::load(&plain).unwrap()));
        let bad = dir.join("bad.conf");
        std::fs::write(&bad, "virtual_server 10.70.1.100 80 {\n  lb_kind FNAT\n").unwrap();
        let msg = install(&bad, &dest).unwrap_err().to_string();
        assert!(msg.contains("bad.conf:"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
