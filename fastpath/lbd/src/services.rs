//! Turns a keepalived.conf into the fast path's service table, and decides which port answers
//! ARP for each VIP and local address.
//!
//! This is the one place where a configuration is checked as a whole, for lbd's start, every
//! reload and every API change alike: what a single keyword's value may be is kaconf's (or
//! the API's) to check; what services, local addresses and lbd.toml's ports may be together
//! is checked here ([`checks`]) and by the fast path's table, and every refusal names the
//! object at its file:line (objects made through the API have no file, and no position).

mod checks;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::path::Path;

use fastpath::service::{FlowControl, ForwardMode, Persistence, RealServer, RefuseMode, Service, ServiceError, ServiceKey, ServiceTable, ToaMode};
use fastpath::{route, Interface, L4Proto};
use kaconf::VirtualServer;

use crate::config::{PortConfig, ToaSetting};
use crate::control::health::Health;
use crate::control::API_ORIGIN;

/// Why the services could not be loaded. The message carries file:line where it has one.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("{0}")]
    Parse(#[from] kaconf::Error),
    /// An object the director cannot serve: `file:line: object: why` (no position for an
    /// object made through the API).
    #[error("{}{object}: {msg}", prefix(at))]
    Refused { at: Option<String>, object: String, msg: String },
    /// Refused by the fast path's table, at the object the refusal names.
    #[error("{}{source}", prefix(at))]
    Table { at: Option<String>, source: ServiceError },
}

fn prefix(at: &Option<String>) -> String {
    at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default()
}

/// `file:line` of a keepalived object; `None` for one made through the API (it has no file).
fn position(file: &Path, line: u32) -> Option<String> {
    (line != 0 || file != Path::new(API_ORIGIN)).then(|| format!("{}:{line}", file.display()))
}

/// ` (file:line)` after the name of another object, or nothing for an API-made one.
fn place(file: &Path, line: u32) -> String {
    position(file, line).map(|p| format!(" ({p})")).unwrap_or_default()
}

/// A virtual server as keepalived.conf writes it.
fn vs_name(vs: &VirtualServer) -> String {
    format!("virtual_server {} {}", vs.vip, vs.port)
}

/// The refusal of the object `object` defined at `file:line`.
fn refused(file: &Path, line: u32, object: String, msg: String) -> ServicesError {
    ServicesError::Refused { at: position(file, line), object, msg }
}

/// A note about `object` defined at `file:line`.
fn note(file: &Path, line: u32, object: &str, msg: &str) -> String {
    format!("{}{object}: {msg}", prefix(&position(file, line)))
}

/// Services plus what was parsed but is not acted on yet.
#[derive(Debug)]
pub struct Loaded {
    pub table: ServiceTable,
    pub notes: Vec<String>,
    /// Local addresses with the interface name the file gave them (DPVS writes `ip dpdk0`).
    pub laddrs: Vec<(Ipv4Addr, Option<String>)>,
}

/// How services are turned into the fast path's form: settings from lbd.toml.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub toa: ToaSetting,
    /// What refused new connections get.
    pub refuse: RefuseMode,
    /// Most entries in one client_ipaddr_allow or client_ipaddr_exclude list.
    pub max_client_list: usize,
    /// What services with `syn_proxy` answer (lbd.toml `[synproxy]`).
    pub syn_proxy: fastpath::synproxy::SynProxyConf,
}

impl Default for Options {
    fn default() -> Self {
        Options { toa: ToaSetting::FirstAck, refuse: RefuseMode::Rst, max_client_list: 1000, syn_proxy: fastpath::synproxy::SynProxyConf::default() }
    }
}

/// Loads and converts `path` for a director with `ports`.
pub fn load(path: &Path, opts: Options, ports: &[PortConfig], generation: u64) -> Result<Loaded, ServicesError> {
    let cfg = kaconf::load(path)?;
    convert(&cfg, opts, ports, generation)
}

/// Converts a parsed keepalived.conf for a director with `ports`
/// (lbd.toml's: their addresses are the director's own, their prefixes its connected
/// subnets), with every checked real server in its initial health state (down under `alpha`,
/// else up) and fresh shared state.
pub fn convert(cfg: &kaconf::Config, opts: Options, ports: &[PortConfig], generation: u64) -> Result<Loaded, ServicesError> {
    convert_with(cfg, opts, ports, generation, None, &Health::default())
}

/// Converts with real servers' health and services' quorum from `health`; services whose
/// value `prev` already holds keep their compiled tables, and every service keeps its shared
/// flow-control state ([`ServiceTable::rebuild`]).
pub fn convert_with(cfg: &kaconf::Config, opts: Options, ports: &[PortConfig], generation: u64, prev: Option<&ServiceTable>, health: &Health) -> Result<Loaded, ServicesError> {
    let Options { toa, refuse, max_client_list, syn_proxy } = opts;
    let mut notes: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
    let toa = match toa {
        ToaSetting::Off => ToaMode::Off,
        ToaSetting::FirstAck => ToaMode::FirstAck,
        ToaSetting::SynAndFirstAck => ToaMode::SynAndFirstAck,
    };
    let mut services = Vec::new();
    let mut laddrs: Vec<(Ipv4Addr, Option<String>)> = Vec::new();
    let mut laddr_seen: std::collections::HashSet<Ipv4Addr> = std::collections::HashSet::new();
    for vs in &cfg.virtual_servers {
        let unsupported = |msg: String| refused(&vs.file, vs.line, vs_name(vs), msg);
        let (mode, sched) = (vs.lb_kind, vs.lb_algo);
        let mut laddr_ips = Vec::new();
        match (&vs.laddr_group_name, mode) {
            (None, ForwardMode::Fnat) => {
                let msg = "lb_kind FNAT without laddr_group_name: no local addresses, so new connections are refused (no_local_address) until some are added (lbctl --add-laddr)";
                notes.push(note(&vs.file, vs.line, &vs_name(vs), msg));
            }
            (Some(group), _) => {
                let Some(g) = cfg.local_address_groups.iter().find(|g| &g.name == group) else {
                    return Err(unsupported(format!("laddr_group_name {group:?} names no local_address_group")));
                };
                if mode == ForwardMode::Fnat {
                    for a in &g.addrs {
                        if laddr_seen.insert(a.ip) {
                            laddrs.push((a.ip, a.ifname.clone()));
                        }
                        laddr_ips.push(a.ip);
                    }
                } else {
                    notes.push(note(&vs.file, vs.line, &vs_name(vs), &format!("laddr_group_name is only used by FNAT; ignored for lb_kind {:?}", vs.lb_kind)));
                }
            }
            (None, _) => {}
        }
        if mode == ForwardMode::Dr {
            if let Some(r) = vs.real_servers.iter().find(|r| r.port != vs.port) {
                let msg = format!("real_server {} {}: direct routing cannot change the port (the VIP's is {})", r.ip, r.port, vs.port);
                return Err(refused(&r.file, r.line, vs_name(vs), msg));
            }
        }
        for (name, list) in [("client_ipaddr_allow", &vs.client_ipaddr_allow), ("client_ipaddr_exclude", &vs.client_ipaddr_exclude)] {
            if list.len() > max_client_list {
                return Err(unsupported(format!("{name} has {} entries; the limit is {max_client_list} (lbd.toml max_client_list)", list.len())));
            }
        }
        // Health checks, their scripts (notify_up/down, quorum_up/down, omega) run in
        // lb-slowpath, which reports verdicts and quorum through SetHealth.
        let key = ServiceKey {
            vip: vs.vip,
            port: vs.port,
            proto: vs.protocol,
        };
        let cidrs = |v: &[ipnetwork::Ipv4Network]| v.iter().map(|n| (n.network(), n.prefix())).collect::<Vec<_>>();
        services.push(Service {
            real_servers: vs
                .real_servers
                .iter()
                .map(|r| {
                    let (healthy, weight) = health.fastpath(vs, r);
                    RealServer { healthy, ..RealServer::new(r.ip, r.port, weight) }
                })
                .collect(),
            laddrs: laddr_ips,
            toa: if vs.protocol == L4Proto::Tcp && mode == ForwardMode::Fnat { toa } else { ToaMode::Off },
            persistence: vs.persistence_timeout.map(|t| Persistence { timeout_s: t, netmask: vs.persistence_granularity.unwrap_or(Ipv4Addr::BROADCAST) }),
            draining_timeout_s: vs.tcp_draining_timeout,
            sorry_server: vs.sorry_server,
            flow: FlowControl {
                cps: vs.flow_control_cps.unwrap_or(0),
                // kaconf and the API refuse 0: a window is at least 1 s.
                interval_s: vs.flow_control_interval.unwrap_or(1),
                max_conns: vs.flow_control_pc.unwrap_or(0),
                refuse,
            },
            allow: cidrs(&vs.client_ipaddr_allow),
            deny: cidrs(&vs.client_ipaddr_exclude),
            syn_proxy: vs.syn_proxy.then_some(syn_proxy),
            hash_port: vs.hash_port,
            ..Service::new(key, sched, mode)
        });
    }
    checks::addresses(cfg, ports, &mut notes)?;
    let table = ServiceTable::rebuild(prev, services, generation).map_err(|source| ServicesError::Table { at: locate(cfg, &source), source })?;
    Ok(Loaded { table, notes, laddrs })
}

/// `file:line` of the object a table refusal names (`None` when it was made through the API).
fn locate(cfg: &kaconf::Config, e: &ServiceError) -> Option<String> {
    let of = |k: ServiceKey| {
        let proto = k.proto;
        cfg.virtual_servers.iter().filter(move |v| (v.vip, v.port, v.protocol) == (k.vip, k.port, proto))
    };
    let at_vs = |v: &VirtualServer| position(&v.file, v.line);
    let at_rs = |r: &kaconf::RealServer| position(&r.file, r.line);
    match *e {
        // The first service past the limit.
        ServiceError::TooManyServices(_) => cfg.virtual_servers.get(fastpath::service::MAX_SERVICES).and_then(at_vs),
        ServiceError::TooManyRealServers { key, .. } => of(key).next().and_then(at_vs),
        // The second definition of a service.
        ServiceError::Duplicate(k) => of(k).next_back().and_then(at_vs),
        ServiceError::SynProxy { key: k, .. } | ServiceError::PortZero { key: k, what: "virtual" } => of(k).next().and_then(at_vs),
        ServiceError::PortZero { key, .. } => of(key).flat_map(|v| &v.real_servers).find(|r| r.port == 0).and_then(at_rs),
        ServiceError::Weight { key, addr, port, .. } => of(key).flat_map(|v| &v.real_servers).find(|r| (r.ip, r.port) == (addr, port)).and_then(at_rs),
        // The second one listed.
        ServiceError::DuplicateRs { key, addr, port } => of(key).flat_map(|v| &v.real_servers).rfind(|r| (r.ip, r.port) == (addr, port)).and_then(at_rs),
        ServiceError::LaddrIsVip(ip) => cfg.local_address_groups.iter().find(|g| g.addrs.iter().any(|a| a.ip == ip)).and_then(|g| position(&g.file, g.line)),
    }
}

/// Adds to each port's owned addresses the VIPs and local addresses it must answer ARP for:
/// a local address goes to the port its `ifname` names, else the port on its subnet, else the
/// port that reaches the real servers; a VIP to the port on its subnet, else the first port.
pub fn assign_addresses(ifaces: &mut [Interface], ports: &[PortConfig], loaded: &Loaded) {
    let subnet_port = |ifaces: &[Interface], ip: Ipv4Addr| ifaces.iter().position(|i| i.on_link(ip));
    for (ip, ifname) in &loaded.laddrs {
        let by_name = ifname.as_ref().and_then(|n| ports.iter().position(|p| &p.name == n || p.vdev.contains(&format!("iface={n}"))));
        let by_rs = || {
            loaded
                .table
                .services()
                .iter()
                .find(|s| s.laddrs.contains(ip))
                .and_then(|s| s.real_servers.first())
                .and_then(|rs| route(ifaces, rs.addr))
                .map(|(p, _)| usize::from(p))
        };
        if let Some(p) = by_name.or_else(|| subnet_port(ifaces, *ip)).or_else(by_rs) {
            if !ifaces[p].owns(*ip) {
                ifaces[p].addrs.push((*ip, 32));
            }
        }
    }
    for s in loaded.table.services() {
        let vip = s.key.vip;
        let p = subnet_port(ifaces, vip).unwrap_or(0);
        if let Some(iface) = ifaces.get_mut(p) {
            if !iface.owns(vip) {
                iface.addrs.push((vip, 32));
            }
        }
    }
}
