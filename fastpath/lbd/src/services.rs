//! Turns a keepalived.conf into the fast path's service table, and decides which port answers
//! ARP for each VIP and local address.

use std::net::Ipv4Addr;
use std::path::Path;

use fastpath::service::{FlowControl, ForwardMode, Persistence, RealServer, RefuseMode, Scheduler, Service, ServiceKey, ServiceTable, ToaMode};
use fastpath::{route, Interface, L4Proto};
use kaconf::{LbAlgo, LbKind, Protocol};

use crate::config::{PortConfig, ToaSetting};
use crate::control::health::Health;

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

/// How services are turned into the fast path's form: settings from lbd.toml.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub toa: ToaSetting,
    /// What refused new connections get.
    pub refuse: RefuseMode,
    /// Most entries in one client_ipaddr_allow or client_ipaddr_exclude list.
    pub max_client_list: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { toa: ToaSetting::FirstAck, refuse: RefuseMode::Rst, max_client_list: 1000 }
    }
}

/// Loads and converts `path`.
pub fn load(path: &Path, opts: Options, generation: u64) -> Result<Loaded, ServicesError> {
    let cfg = kaconf::load(path)?;
    convert(&cfg, opts, generation, path)
}

/// Converts a parsed keepalived.conf (`path` names it in messages), with every checked real
/// server in its initial health state (down under `alpha`, else up) and fresh shared state.
pub fn convert(cfg: &kaconf::Config, opts: Options, generation: u64, path: &Path) -> Result<Loaded, ServicesError> {
    convert_with(cfg, opts, generation, path, None, &Health::default())
}

/// Converts with real servers' health and services' quorum from `health`; services whose
/// value `prev` already holds keep their compiled tables, and every service keeps its shared
/// flow-control state ([`ServiceTable::rebuild`]).
pub fn convert_with(cfg: &kaconf::Config, opts: Options, generation: u64, path: &Path, prev: Option<&ServiceTable>, health: &Health) -> Result<Loaded, ServicesError> {
    let Options { toa, refuse, max_client_list } = opts;
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
        let mode = match vs.lb_kind {
            LbKind::Fnat => ForwardMode::Fnat,
            LbKind::Dr => ForwardMode::Dr,
            LbKind::Nat => ForwardMode::Nat,
            LbKind::Tun => return Err(unsupported("lb_kind TUN is not supported (FNAT, DR and NAT are)".into())),
        };
        let sched = match vs.lb_algo {
            LbAlgo::Rr => Scheduler::Rr,
            LbAlgo::Wrr => Scheduler::Wrr,
            LbAlgo::Lc => Scheduler::Lc,
            LbAlgo::Wlc => Scheduler::Wlc,
            LbAlgo::Sh => Scheduler::Sh,
            LbAlgo::Dh => Scheduler::Dh,
            LbAlgo::Consh => Scheduler::Consh,
            LbAlgo::Mh => Scheduler::Mh,
        };
        let at = format!("{file}:{}: virtual_server {} {}", vs.line, vs.vip, vs.port);
        let mut laddr_ips = Vec::new();
        match (&vs.laddr_group_name, mode) {
            (None, ForwardMode::Fnat) => {
                return Err(unsupported("lb_kind FNAT needs laddr_group_name (the local addresses toward the real servers)".into()));
            }
            (Some(group), _) => {
                let Some(g) = cfg.local_address_groups.iter().find(|g| &g.name == group) else {
                    return Err(unsupported(format!("laddr_group_name {group:?} names no local_address_group")));
                };
                if mode == ForwardMode::Fnat {
                    for a in &g.addrs {
                        if !laddrs.iter().any(|(ip, _)| *ip == a.ip) {
                            laddrs.push((a.ip, a.ifname.clone()));
                        }
                        laddr_ips.push(a.ip);
                    }
                } else {
                    notes.push(format!("{at}: laddr_group_name is only used by FNAT; ignored for lb_kind {:?}", vs.lb_kind));
                }
            }
            (None, _) => {}
        }
        if mode == ForwardMode::Dr {
            if let Some(r) = vs.real_servers.iter().find(|r| r.port != vs.port) {
                return Err(ServicesError::Unsupported {
                    file: r.file.display().to_string(),
                    line: r.line,
                    vip: vs.vip,
                    port: vs.port,
                    msg: format!("real_server {} {}: direct routing cannot change the port (the VIP's is {})", r.ip, r.port, vs.port),
                });
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
            proto: match vs.protocol {
                Protocol::Tcp => L4Proto::Tcp,
                Protocol::Udp => L4Proto::Udp,
            },
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
            toa: if vs.protocol == Protocol::Tcp && mode == ForwardMode::Fnat { toa } else { ToaMode::Off },
            persistence: vs.persistence_timeout.map(|t| Persistence { timeout_s: t, netmask: vs.persistence_granularity.unwrap_or(Ipv4Addr::BROADCAST) }),
            draining_timeout_s: vs.tcp_draining_timeout,
            sorry_server: vs.sorry_server,
            flow: FlowControl {
                cps: vs.flow_control_cps.unwrap_or(0),
                interval_s: vs.flow_control_interval.unwrap_or(1).max(1),
                max_conns: vs.flow_control_pc.unwrap_or(0),
                refuse,
            },
            allow: cidrs(&vs.client_ipaddr_allow),
            deny: cidrs(&vs.client_ipaddr_exclude),
            ..Service::new(key, sched, mode)
        });
    }
    let table = ServiceTable::rebuild(prev, services, generation).map_err(|e| ServicesError::Table(e, path.display().to_string()))?;
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
