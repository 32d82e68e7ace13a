//! Addresses the director cannot serve, checked across every service, every local address and
//! lbd.toml's ports:
//!
//! - a virtual IP, real server, sorry server or local address is a host's address: not
//!   0.0.0.0, 255.255.255.255 or a multicast address;
//! - the director's own addresses (its ports', its VIPs, its local addresses) are never a real
//!   or sorry server (traffic "to" one would never leave the box), and a port's address is never
//!   a VIP or a local address (the port answers for it itself);
//! - direct routing only rewrites the MAC address, so its real servers are on a connected
//!   subnet of a port (an address with a prefix in lbd.toml).
//!
//! (A local address that is also a VIP is refused by the fast path's table.) A service without
//! real servers is accepted with a note. Refusals name the object at its file:line.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnetwork::Ipv4Network;
use kaconf::{ForwardMode, VirtualServer};

use super::{note, place, refused, vs_name, ServicesError};
use crate::config::PortConfig;

/// Why `ip` cannot be a host's address, if it cannot.
fn not_host(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip == Ipv4Addr::BROADCAST {
        Some("the broadcast address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// Where a virtual server sends connections: one of its real servers, or its sorry server.
struct Backend<'a> {
    vs: &'a VirtualServer,
    keyword: &'static str,
    ip: Ipv4Addr,
    port: u16,
    file: &'a Path,
    line: u32,
}

impl Backend<'_> {
    /// `real_server 10.0.0.2 80`, as keepalived.conf writes it.
    fn name(&self) -> String {
        format!("{} {} {}", self.keyword, self.ip, self.port)
    }

    fn refused(&self, msg: String) -> ServicesError {
        refused(self.file, self.line, vs_name(self.vs), msg)
    }
}

/// What the director owns and reaches, from lbd.toml's ports and the virtual servers.
struct Director<'a> {
    /// Each port address, with its port's name.
    port_addrs: HashMap<Ipv4Addr, &'a str>,
    /// Each VIP, with the first virtual server on it.
    vips: HashMap<Ipv4Addr, &'a VirtualServer>,
    /// Connected subnets (addresses with a prefix shorter than /32), with their port's name.
    subnets: Vec<(&'a str, Ipv4Network)>,
}

impl Director<'_> {
    /// The connected subnets for a message: `wan 10.70.1.0/24, lan 10.70.2.0/24`.
    fn subnets_text(&self) -> String {
        let text: Vec<String> = self.subnets.iter().map(|(name, n)| format!("{name} {}/{}", n.network(), n.prefix())).collect();
        text.join(", ")
    }

    fn check_backend(&self, b: &Backend<'_>) -> Result<(), ServicesError> {
        let why = |msg: String| b.refused(format!("{}: {msg}", b.name()));
        if let Some(what) = not_host(b.ip) {
            return Err(why(format!("{} is {what}, not a host address", b.ip)));
        }
        if b.ip == b.vs.vip {
            if b.port == b.vs.port {
                return Err(b.refused(format!("{} is the virtual server itself", b.name())));
            }
            return Err(why(format!("{} is this virtual server's own virtual IP", b.ip)));
        }
        if let Some(other) = self.vips.get(&b.ip) {
            return Err(why(format!("{} is the virtual IP of {}{}", b.ip, vs_name(other), place(&other.file, other.line))));
        }
        if let Some(port) = self.port_addrs.get(&b.ip) {
            return Err(why(format!("{} is port {port}'s own address (lbd.toml addresses)", b.ip)));
        }
        if b.vs.lb_kind == ForwardMode::Dr && !self.subnets.is_empty() && !self.subnets.iter().any(|(_, n)| n.contains(b.ip)) {
            return Err(why(format!(
                "direct routing only rewrites the MAC address, so the server must be on a connected subnet of a port ({}); {} is on none",
                self.subnets_text(),
                b.ip
            )));
        }
        Ok(())
    }
}

/// Checks the addresses of `cfg` against each other and against `ports`; adds notes for what
/// is accepted but worth knowing.
pub(super) fn addresses(cfg: &kaconf::Config, ports: &[PortConfig], notes: &mut Vec<String>) -> Result<(), ServicesError> {
    let mut d = Director { port_addrs: HashMap::new(), vips: HashMap::new(), subnets: Vec::new() };
    for p in ports {
        for n in &p.addresses {
            d.port_addrs.entry(n.ip()).or_insert(&p.name);
            if n.prefix() < 32 {
                d.subnets.push((&p.name, *n));
            }
        }
    }
    for vs in &cfg.virtual_servers {
        d.vips.entry(vs.vip).or_insert(vs);
    }
    // Real and sorry servers by address, for the local addresses' check.
    let mut backends: HashMap<Ipv4Addr, Backend<'_>> = HashMap::new();
    let mut unchecked_dr: Vec<&VirtualServer> = Vec::new();
    for vs in &cfg.virtual_servers {
        if let Some(what) = not_host(vs.vip) {
            return Err(refused(&vs.file, vs.line, vs_name(vs), format!("the virtual IP {} is {what}, not a host address", vs.vip)));
        }
        if let Some(port) = d.port_addrs.get(&vs.vip) {
            return Err(refused(&vs.file, vs.line, vs_name(vs), format!("the virtual IP {} is port {port}'s own address (lbd.toml addresses)", vs.vip)));
        }
        if vs.real_servers.is_empty() {
            let msg = match vs.sorry_server {
                Some((ip, port)) => format!("no real_server: new connections go to sorry_server {ip} {port}"),
                None => "no real_server: new connections are dropped (no_real_server) until one is added".into(),
            };
            notes.push(note(&vs.file, vs.line, &vs_name(vs), &msg));
        }
        if vs.lb_kind == ForwardMode::Dr && d.subnets.is_empty() {
            unchecked_dr.push(vs);
        }
        let real = vs.real_servers.iter().map(|r| Backend { vs, keyword: "real_server", ip: r.ip, port: r.port, file: &r.file, line: r.line });
        let sorry = vs.sorry_server.map(|(ip, port)| Backend { vs, keyword: "sorry_server", ip, port, file: &vs.file, line: vs.line });
        for b in real.chain(sorry) {
            d.check_backend(&b)?;
            backends.entry(b.ip).or_insert(b);
        }
    }
    for g in &cfg.local_address_groups {
        let why = |msg: String| refused(&g.file, g.line, format!("local_address_group {}", g.name), msg);
        for a in &g.addrs {
            if let Some(what) = not_host(a.ip) {
                return Err(why(format!("local address {} is {what}, not a host address", a.ip)));
            }
            if let Some(port) = d.port_addrs.get(&a.ip) {
                return Err(why(format!("local address {} is port {port}'s own address (lbd.toml addresses)", a.ip)));
            }
            if let Some(b) = backends.get(&a.ip) {
                return Err(why(format!("local address {} is {} of {}{}", a.ip, b.name(), vs_name(b.vs), place(b.file, b.line))));
            }
        }
    }
    if let Some(first) = unchecked_dr.first() {
        let more = match unchecked_dr.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more lb_kind DR virtual servers)"),
        };
        let msg = "no port has a connected subnet (lbd.toml addresses with a prefix shorter than /32), so direct-routing real servers are not checked for being on one";
        notes.push(note(&first.file, first.line, &format!("{}{more}", vs_name(first)), msg));
    }
    Ok(())
}
