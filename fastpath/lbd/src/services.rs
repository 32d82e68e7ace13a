//! Turns a keepalived.conf into the fast path's service table, and decides which port answers
//! ARP for each VIP and local address.

use std::net::Ipv4Addr;
use std::path::Path;

use fastpath::service::{ForwardMode, RealServer, Scheduler, Service, ServiceKey, ServiceTable, ToaMode};
use fastpath::{route, Interface, L4Proto};
use kaconf::{LbAlgo, LbKind, Protocol};

use crate::config::{PortConfig, ToaSetting};

/// Why the services could not be loaded. The message carries file:line where it has one.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("{0}")]
    Parse(#[from] kaconf::Error),
    #[error("{file}:{line}: virtual_server {vip} {port}: {msg}")]
    Unsupported { file: String, line: u32, vip: Ipv4Addr, port: u16, msg: String },
    #[error("{file}: {0}", file = .1)]
    Table(fastpath::service::ServiceError, String),
}

/// Services plus what was parsed but is not acted on yet.
#[derive(Debug)]
pub struct Loaded {
    pub table: ServiceTable,
    pub notes: Vec<String>,
    /// Local addresses with the interface name the file gave them (DPVS writes `ip dpdk0`).
    pub laddrs: Vec<(Ipv4Addr, Option<String>)>,
}

/// Loads and converts `path`.
pub fn load(path: &Path, toa: ToaSetting, generation: u64) -> Result<Loaded, ServicesError> {
    let cfg = kaconf::load(path)?;
    convert(&cfg, toa, generation, path)
}

fn convert(cfg: &kaconf::Config, toa: ToaSetting, generation: u64, path: &Path) -> Result<Loaded, ServicesError> {
    let mut notes: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
    let toa = match toa {
        ToaSetting::Off => ToaMode::Off,
        ToaSetting::FirstAck => ToaMode::FirstAck,
        ToaSetting::SynAndFirstAck => ToaMode::SynAndFirstAck,
    };
    let mut services = Vec::new();
    let mut laddrs: Vec<(Ipv4Addr, Option<String>)> = Vec::new();
    for vs in &cfg.virtual_servers {
        let file = vs.file.display().to_string();
        let unsupported = |msg: String| ServicesError::Unsupported { file: file.clone(), line: vs.line, vip: vs.vip, port: vs.port, msg };
        if vs.lb_kind != LbKind::Fnat {
            return Err(unsupported(format!("lb_kind {:?} is not supported yet (this director forwards FNAT)", vs.lb_kind)));
        }
        let sched = match vs.lb_algo {
            LbAlgo::Rr => Scheduler::Rr,
            LbAlgo::Wrr => Scheduler::Wrr,
            LbAlgo::Lc => Scheduler::Lc,
            LbAlgo::Wlc => Scheduler::Wlc,
            other => return Err(unsupported(format!("lb_algo {other:?} is not supported yet (rr, wrr, lc, wlc are)"))),
        };
        let Some(group) = &vs.laddr_group_name else {
            return Err(unsupported("lb_kind FNAT needs laddr_group_name (the local addresses toward the real servers)".into()));
        };
        let Some(g) = cfg.local_address_groups.iter().find(|g| &g.name == group) else {
            return Err(unsupported(format!("laddr_group_name {group:?} names no local_address_group")));
        };
        for a in &g.addrs {
            if !laddrs.iter().any(|(ip, _)| *ip == a.ip) {
                laddrs.push((a.ip, a.ifname.clone()));
            }
        }
        let at = format!("{file}:{}: virtual_server {} {}", vs.line, vs.vip, vs.port);
        let mut not_yet = Vec::new();
        if vs.persistence_timeout.is_some() {
            not_yet.push("persistence_timeout");
        }
        if vs.flow_control_cps.is_some() || vs.flow_control_pc.is_some() {
            not_yet.push("flow_control_*");
        }
        if !vs.client_ipaddr_allow.is_empty() || !vs.client_ipaddr_exclude.is_empty() {
            not_yet.push("client_ipaddr_allow/exclude");
        }
        if vs.sorry_server.is_some() {
            not_yet.push("sorry_server");
        }
        if vs.real_servers.iter().any(|r| r.check.is_some()) {
            not_yet.push("health checks (real servers are treated as up)");
        }
        if !not_yet.is_empty() {
            notes.push(format!("{at}: parsed but not acted on yet: {}", not_yet.join(", ")));
        }
        let key = ServiceKey {
            vip: vs.vip,
            port: vs.port,
            proto: match vs.protocol {
                Protocol::Tcp => L4Proto::Tcp,
                Protocol::Udp => L4Proto::Udp,
            },
        };
        services.push(Service {
            real_servers: vs.real_servers.iter().map(|r| RealServer::new(r.ip, r.port, r.weight)).collect(),
            laddrs: g.addrs.iter().map(|a| a.ip).collect(),
            toa: if vs.protocol == Protocol::Tcp { toa } else { ToaMode::Off },
            ..Service::new(key, sched, ForwardMode::Fnat)
        });
    }
    let table = ServiceTable::new(services, generation).map_err(|e| ServicesError::Table(e, path.display().to_string()))?;
    Ok(Loaded { table, notes, laddrs })
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
