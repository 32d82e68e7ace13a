//! Between the API's messages and the running configuration (the keepalived model). Every
//! value is checked here, and a refusal names the field: `service.port: 0 is not a valid port`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use fastpath::session::ConnState;
use fastpath::L4Proto;
use ipnetwork::Ipv4Network;
use kaconf::{Scheduler, ForwardMode, LocalAddr, LocalAddressGroup, Protocol, RealServer, VirtualServer};
use lb_api::pb;

use crate::control::health::{Health, HealthUpdate, QuorumUpdate, Status};
use crate::control::mailbox::{ConnCount, ConnKey, SessionFilter, SessionInfo};
use crate::control::{ControlError, VsKey, API_ORIGIN, MAX_TIMEOUT_S};

type R<T> = Result<T, ControlError>;

fn bad(field: &str, msg: impl Into<String>) -> ControlError {
    ControlError::invalid(field, msg)
}

/// A dotted IPv4 address.
pub fn ip(field: &str, s: &str) -> R<Ipv4Addr> {
    if s.is_empty() {
        return Err(bad(field, "is required (an IPv4 address)"));
    }
    s.parse().map_err(|_| bad(field, format!("{s:?} is not an IPv4 address")))
}

/// A port, 1..=65535.
pub fn port(field: &str, p: u32) -> R<u16> {
    match u16::try_from(p) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(bad(field, format!("{p} is not a valid port"))),
    }
}

fn protocol(field: &str, p: i32) -> R<Protocol> {
    lb_api::protocol_from_pb(p).ok_or_else(|| bad(field, format!("{p} is not a protocol (PROTOCOL_TCP or PROTOCOL_UDP)")))
}

fn network(field: &str, s: &str) -> R<Ipv4Network> {
    let n: Ipv4Network = s.parse().map_err(|_| bad(field, format!("{s:?} is not an IPv4 network (a.b.c.d/len)")))?;
    // Store the network address, as keepalived does.
    Ipv4Network::new(n.network(), n.prefix()).map_err(|e| bad(field, e.to_string()))
}

/// A service key; `prefix` names the message ("service", "real_server.service").
pub fn key(prefix: &str, k: Option<&pb::ServiceKey>) -> R<VsKey> {
    let k = k.ok_or_else(|| bad(prefix, "is required (vip, port, protocol)"))?;
    Ok((ip(&format!("{prefix}.vip"), &k.vip)?, port(&format!("{prefix}.port"), k.port)?, protocol(&format!("{prefix}.protocol"), k.protocol)?))
}

pub fn key_to_pb(k: VsKey) -> pb::ServiceKey {
    pb::ServiceKey { vip: k.0.to_string(), port: u32::from(k.1), protocol: proto_to_pb(k.2) as i32 }
}

pub fn proto_to_pb(p: L4Proto) -> pb::Protocol {
    lb_api::protocol_to_pb(p)
}

fn algo(field: &str, s: i32) -> R<Scheduler> {
    lb_api::scheduler_from_pb(s).ok_or_else(|| bad(field, format!("{s} is not a scheduler ({}); none is assumed", Scheduler::ALL.map(Scheduler::name).join(", "))))
}

/// A forwarding mode; unspecified is `None`.
pub fn kind(field: &str, f: i32) -> R<Option<ForwardMode>> {
    if f == pb::ForwardMode::Unspecified as i32 {
        return Ok(None);
    }
    lb_api::forward_from_pb(f).map(Some).ok_or_else(|| bad(field, format!("{f} is not a forwarding mode (fnat, dr, nat)")))
}

/// The ipvsadm name of a keepalived forwarding kind, for messages.
pub fn kind_name(k: ForwardMode) -> &'static str {
    k.ipvsadm_name()
}

/// Which service fields a change sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    pub scheduler: bool,
    pub forward: bool,
    pub persistence: bool,
    pub laddr_group: bool,
    pub flow: bool,
    pub allow: bool,
    pub deny: bool,
    pub draining_timeout_s: bool,
    pub sorry_server: bool,
    pub syn_proxy: bool,
    pub hash_port: bool,
    pub real_servers: bool,
}

impl Fields {
    /// Everything (a new service, or a replacement).
    pub const ALL: Fields = Fields { scheduler: true, forward: true, persistence: true, laddr_group: true, flow: true, allow: true, deny: true, draining_timeout_s: true, sorry_server: true, syn_proxy: true, hash_port: true, real_servers: true };

    /// The fields an edit names; empty means all but the real servers.
    pub fn from_mask(mask: &[String]) -> R<Fields> {
        if mask.is_empty() {
            return Ok(Fields { real_servers: false, ..Fields::ALL });
        }
        let mut f = Fields { scheduler: false, forward: false, persistence: false, laddr_group: false, flow: false, allow: false, deny: false, draining_timeout_s: false, sorry_server: false, syn_proxy: false, hash_port: false, real_servers: false };
        for (i, m) in mask.iter().enumerate() {
            let slot = match m.as_str() {
                "scheduler" => &mut f.scheduler,
                "forward" => &mut f.forward,
                "persistence" => &mut f.persistence,
                "laddr_group" => &mut f.laddr_group,
                "flow" => &mut f.flow,
                "allow" => &mut f.allow,
                "deny" => &mut f.deny,
                "draining_timeout_s" => &mut f.draining_timeout_s,
                "sorry_server" => &mut f.sorry_server,
                "syn_proxy" => &mut f.syn_proxy,
                "hash_port" => &mut f.hash_port,
                "real_servers" => &mut f.real_servers,
                other => return Err(bad(&format!("fields[{i}]"), format!("{other:?} is not a service field (scheduler, forward, persistence, laddr_group, flow, allow, deny, draining_timeout_s, sorry_server, syn_proxy, hash_port, real_servers)"))),
            };
            *slot = true;
        }
        Ok(f)
    }
}

/// A virtual server with keepalived's defaults and no real servers.
pub fn new_vs(k: VsKey, lb_algo: Scheduler, lb_kind: ForwardMode) -> VirtualServer {
    VirtualServer {
        vip: k.0,
        port: k.1,
        protocol: k.2,
        lb_algo,
        lb_kind,
        persistence_timeout: None,
        persistence_granularity: None,
        laddr_group_name: None,
        delay_loop: kaconf::DEFAULT_DELAY_LOOP,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        tcp_draining_timeout: None,
        flow_control_cps: None,
        flow_control_interval: None,
        flow_control_pc: None,
        client_ipaddr_allow: Vec::new(),
        client_ipaddr_exclude: Vec::new(),
        checker_off: false,
        checker_merge: false,
        sorry_server: None,
        syn_proxy: false,
        hash_port: false,
        real_servers: Vec::new(),
        file: PathBuf::from(API_ORIGIN),
        line: 0,
    }
}

/// A new real server (no health check).
pub fn new_rs(ip: Ipv4Addr, port: u16, weight: u32) -> RealServer {
    RealServer { ip, port, weight, inhibit_on_failure: false, check: None, file: PathBuf::from(API_ORIGIN), line: 0 }
}

/// A real server's address, port and weight.
pub fn rs(prefix: &str, r: Option<&pb::RealServer>) -> R<(Ipv4Addr, u16, u32)> {
    let r = r.ok_or_else(|| bad(prefix, "is required (addr, port, weight)"))?;
    let a = ip(&format!("{prefix}.addr"), &r.addr)?;
    let p = port(&format!("{prefix}.port"), r.port)?;
    if r.weight > 65535 {
        return Err(bad(&format!("{prefix}.weight"), format!("{} is out of range 0..=65535", r.weight)));
    }
    Ok((a, p, r.weight))
}

/// A service from its message: the key, and the settings applied onto `base` (or onto a new
/// virtual server). Real servers already in `base` keep their health checks.
pub fn service(s: &pb::Service, base: Option<&VirtualServer>, f: Fields) -> R<VirtualServer> {
    let k = key("service", s.key.as_ref())?;
    let mut vs = match base {
        Some(b) => b.clone(),
        None => new_vs(k, algo("service.scheduler", s.scheduler)?, ForwardMode::Fnat),
    };
    if f.scheduler {
        vs.lb_algo = algo("service.scheduler", s.scheduler)?;
    }
    if f.forward {
        vs.lb_kind = kind("service.forward", s.forward)?.unwrap_or(ForwardMode::Fnat);
    }
    if f.persistence {
        (vs.persistence_timeout, vs.persistence_granularity) = match &s.persistence {
            None => (None, None),
            Some(p) => {
                if p.timeout_s == 0 || p.timeout_s > MAX_TIMEOUT_S {
                    return Err(bad("service.persistence.timeout_s", format!("{} s is out of range 1..={MAX_TIMEOUT_S}", p.timeout_s)));
                }
                let mask = if p.netmask.is_empty() { None } else { Some(netmask("service.persistence.netmask", &p.netmask)?) };
                (Some(p.timeout_s), mask.filter(|m| *m != Ipv4Addr::BROADCAST))
            }
        };
    }
    if f.laddr_group {
        vs.laddr_group_name = if s.laddr_group.is_empty() { None } else { Some(group_name("service.laddr_group", &s.laddr_group)?) };
    }
    if f.flow {
        let fl = s.flow.unwrap_or_default();
        vs.flow_control_cps = (fl.cps != 0).then_some(fl.cps);
        vs.flow_control_interval = (fl.interval_s != 0).then_some(fl.interval_s);
        vs.flow_control_pc = (fl.max_conns != 0).then_some(fl.max_conns);
        if fl.interval_s > 3600 {
            return Err(bad("service.flow.interval_s", format!("{} s is out of range 1..=3600", fl.interval_s)));
        }
    }
    if f.allow {
        vs.client_ipaddr_allow = s.allow.iter().enumerate().map(|(i, n)| network(&format!("service.allow[{i}]"), n)).collect::<R<_>>()?;
    }
    if f.deny {
        vs.client_ipaddr_exclude = s.deny.iter().enumerate().map(|(i, n)| network(&format!("service.deny[{i}]"), n)).collect::<R<_>>()?;
    }
    if f.draining_timeout_s {
        vs.tcp_draining_timeout = s.draining_timeout_s;
    }
    if f.sorry_server {
        vs.sorry_server = if s.sorry_server.is_empty() { None } else { Some(addr_port("service.sorry_server", &s.sorry_server)?) };
    }
    if f.syn_proxy {
        vs.syn_proxy = s.syn_proxy;
    }
    if f.hash_port {
        vs.hash_port = s.hash_port;
    }
    // Judged on the result: an edit of `forward` alone may not leave SYN proxy on a DR service.
    if vs.syn_proxy {
        syn_proxy_fits(&vs)?;
    }
    if f.real_servers {
        let mut list = Vec::new();
        for (i, r) in s.real_servers.iter().enumerate() {
            let (a, p, w) = rs(&format!("service.real_servers[{i}]"), Some(r))?;
            if list.iter().any(|x: &RealServer| x.ip == a && x.port == p) {
                return Err(bad(&format!("service.real_servers[{i}]"), format!("{a}:{p} is listed twice")));
            }
            let mut new = vs.real_servers.iter().find(|x| x.ip == a && x.port == p).cloned().unwrap_or_else(|| new_rs(a, p, w));
            new.weight = w;
            list.push(new);
        }
        vs.real_servers = list;
    }
    Ok(vs)
}

/// SYN proxy needs a TCP service whose replies come back through the director.
fn syn_proxy_fits(vs: &VirtualServer) -> R<()> {
    if vs.protocol != Protocol::Tcp {
        return Err(bad("service.syn_proxy", "SYN proxy answers TCP handshakes; this service is UDP"));
    }
    if vs.lb_kind == ForwardMode::Dr {
        let why = format!("SYN proxy needs forward fnat or nat: with {} the real servers' replies bypass the director", vs.lb_kind);
        return Err(bad("service.syn_proxy", why));
    }
    Ok(())
}

fn netmask(field: &str, s: &str) -> R<Ipv4Addr> {
    let m: Ipv4Addr = ip(field, s)?;
    let v = u32::from(m);
    if v.leading_ones() + v.trailing_zeros() != 32 {
        return Err(bad(field, format!("{s:?} is not a contiguous netmask")));
    }
    Ok(m)
}

fn addr_port(field: &str, s: &str) -> R<(Ipv4Addr, u16)> {
    let (a, p) = s.rsplit_once(':').ok_or_else(|| bad(field, format!("{s:?} is not ip:port")))?;
    let p: u32 = p.parse().map_err(|_| bad(field, format!("{s:?} is not ip:port")))?;
    Ok((ip(field, a)?, port(field, p)?))
}

/// A group name as keepalived.conf can hold it.
pub fn group_name(field: &str, s: &str) -> R<String> {
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
        return Err(bad(field, format!("{s:?} is not a group name (1..=64 letters, digits, '_', '-', '.')")));
    }
    Ok(s.to_owned())
}

/// Local addresses of a request.
pub fn laddrs(field: &str, list: &[pb::LocalAddress]) -> R<Vec<LocalAddr>> {
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            let f = format!("{field}[{i}]");
            let ifname = if a.ifname.is_empty() {
                None
            } else if a.ifname.len() > 15 || !a.ifname.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(&format!("{f}.ifname"), format!("{:?} is not an interface name", a.ifname)));
            } else {
                Some(a.ifname.clone())
            };
            Ok(LocalAddr { ip: ip(&format!("{f}.addr"), &a.addr)?, ifname })
        })
        .collect()
}

/// A group of an `Apply`.
pub fn group(field: &str, g: &pb::LocalAddressGroup) -> R<LocalAddressGroup> {
    Ok(LocalAddressGroup { name: group_name(&format!("{field}.name"), &g.name)?, addrs: laddrs(&format!("{field}.addrs"), &g.addrs)?, file: PathBuf::from(API_ORIGIN), line: 0 })
}

pub fn group_to_pb(g: &LocalAddressGroup, used_by: &[VsKey]) -> pb::LocalAddressGroup {
    pb::LocalAddressGroup {
        name: g.name.clone(),
        addrs: g.addrs.iter().map(|a| pb::LocalAddress { addr: a.ip.to_string(), ifname: a.ifname.clone().unwrap_or_default() }).collect(),
        used_by: used_by.iter().map(|k| key_to_pb(*k)).collect(),
    }
}

fn counters(c: &ConnCount) -> pb::ConnCounters {
    pb::ConnCounters { active_conns: c.active, inactive_conns: c.inactive, pkts_in: c.pkts_in, pkts_out: c.pkts_out, conns: c.conns, bytes_in: c.bytes_in, bytes_out: c.bytes_out, persistent_conns: c.persistent }
}

/// A virtual server as a message, with its real servers' health from `health` and connection
/// counts when given.
pub fn service_to_pb(vs: &VirtualServer, health: &Health, counts: Option<&HashMap<ConnKey, ConnCount>>) -> pb::Service {
    let proto = vs.protocol;
    let vip = (vs.vip, vs.port);
    let svc_total = counts.map(|m| {
        let mut t = ConnCount::default();
        m.iter().filter(|((p, v, _), _)| *p == proto && *v == vip).for_each(|(_, c)| t.add(c));
        counters(&t)
    });
    pb::Service {
        key: Some(key_to_pb((vs.vip, vs.port, vs.protocol))),
        scheduler: lb_api::scheduler_to_pb(vs.lb_algo) as i32,
        forward: lb_api::forward_to_pb(vs.lb_kind) as i32,
        persistence: vs.persistence_timeout.map(|t| pb::Persistence { timeout_s: t, netmask: vs.persistence_granularity.map(|m| m.to_string()).unwrap_or_default() }),
        laddr_group: vs.laddr_group_name.clone().unwrap_or_default(),
        flow: Some(pb::FlowControl { cps: vs.flow_control_cps.unwrap_or(0), interval_s: vs.flow_control_interval.unwrap_or(0), max_conns: vs.flow_control_pc.unwrap_or(0) }),
        allow: vs.client_ipaddr_allow.iter().map(ToString::to_string).collect(),
        deny: vs.client_ipaddr_exclude.iter().map(ToString::to_string).collect(),
        real_servers: vs
            .real_servers
            .iter()
            .map(|r| {
                let h = health.view(vs, r);
                pb::RealServer {
                    addr: r.ip.to_string(),
                    port: u32::from(r.port),
                    weight: r.weight,
                    health_checked: r.check.is_some(),
                    stats: counts.map(|m| counters(&m.get(&(proto, vip, (r.ip, r.port))).copied().unwrap_or_default())),
                    health: health_to_pb(h.status) as i32,
                    health_since_unix_ms: h.since_ms,
                    last_error: h.last_error,
                    checker: h.checker,
                    inhibited: h.inhibited,
                    effective_weight: h.effective_weight,
                    health_source: h.source,
                }
            })
            .collect(),
        draining_timeout_s: vs.tcp_draining_timeout,
        sorry_server: vs.sorry_server.map(|(a, p)| format!("{a}:{p}")).unwrap_or_default(),
        stats: svc_total,
        quorum_up: health.quorum_up(vs),
        syn_proxy: vs.syn_proxy,
        hash_port: vs.hash_port,
    }
}

fn health_to_pb(s: Status) -> pb::HealthState {
    match s {
        Status::Up => pb::HealthState::Up,
        Status::Down => pb::HealthState::Down,
        Status::Unchecked => pb::HealthState::Unchecked,
    }
}

/// The updates of a `SetHealth` request, every value checked (fields named as
/// `servers[2].addr`, `quorum[0].service.protocol`).
pub fn health_updates(r: &pb::SetHealthRequest) -> R<(Vec<HealthUpdate>, Vec<QuorumUpdate>)> {
    let mut servers = Vec::with_capacity(r.servers.len());
    for (i, u) in r.servers.iter().enumerate() {
        let f = format!("servers[{i}]");
        let service = key(&format!("{f}.service"), u.service.as_ref())?;
        let addr = ip(&format!("{f}.addr"), &u.addr)?;
        let port = port(&format!("{f}.port"), u.port)?;
        if let Some(w) = u.weight.filter(|w| *w > 65535) {
            return Err(bad(&format!("{f}.weight"), format!("{w} is out of range 0..=65535")));
        }
        if u.checker.len() > 32 || !u.checker.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad(&format!("{f}.checker"), format!("{:?} is not a checker name (TCP_CHECK, HTTP_GET, ...)", u.checker)));
        }
        // A reason is a log line's worth; longer ones are cut, not refused.
        let reason: String = u.reason.chars().filter(|c| !c.is_control()).take(256).collect();
        servers.push(HealthUpdate { service, addr, port, up: u.up, checker: u.checker.clone(), reason, weight: u.weight, inhibit: u.inhibit });
    }
    let quorum = r.quorum.iter().enumerate().map(|(i, q)| Ok(QuorumUpdate { service: key(&format!("quorum[{i}].service"), q.service.as_ref())?, up: q.up })).collect::<R<Vec<_>>>()?;
    Ok((servers, quorum))
}

/// The session filter of a listing request.
pub fn session_filter(r: &pb::ListSessionsRequest) -> R<SessionFilter> {
    let opt_ip = |field: &str, s: &str| if s.is_empty() { Ok(None) } else { ip(field, s).map(Some) };
    let mut f = SessionFilter { client: opt_ip("client", &r.client)?, rs: opt_ip("real_server", &r.real_server)?, ..Default::default() };
    if let Some(k) = &r.service {
        f.vip = opt_ip("service.vip", &k.vip)?;
        f.vport = u16::try_from(k.port).map_err(|_| bad("service.port", format!("{} is not a valid port", k.port)))?;
        if k.protocol != 0 {
            f.proto = Some(protocol("service.protocol", k.protocol)?);
        }
    }
    if r.protocol != 0 {
        f.proto = Some(protocol("protocol", r.protocol)?);
    }
    if !r.state.is_empty() {
        let states = [ConnState::SynRecv, ConnState::Established, ConnState::FinWait, ConnState::Close, ConnState::Udp];
        f.state = Some(
            *states
                .iter()
                .find(|s| s.name().eq_ignore_ascii_case(&r.state))
                .ok_or_else(|| bad("state", format!("{:?} is not a session state (SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE, UDP)", r.state)))?,
        );
    }
    Ok(f)
}

pub fn session_to_pb(s: &SessionInfo) -> pb::Session {
    let ap = |(a, p): (Ipv4Addr, u16)| format!("{a}:{p}");
    pb::Session {
        worker: u32::from(s.worker),
        protocol: proto_to_pb(s.proto) as i32,
        client: ap(s.client),
        vip: ap(s.vip),
        laddr: ap(s.laddr),
        real_server: ap(s.rs),
        state: s.state.name().to_owned(),
        expires_in_s: s.expires_in_s,
        pkts_in: s.pkts_in,
        pkts_out: s.pkts_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> pb::Service {
        pb::Service {
            key: Some(pb::ServiceKey { vip: "10.0.0.1".into(), port: 80, protocol: pb::Protocol::Tcp as i32 }),
            scheduler: pb::Scheduler::Wrr as i32,
            forward: pb::ForwardMode::Fnat as i32,
            laddr_group: "lg".into(),
            persistence: Some(pb::Persistence { timeout_s: 300, netmask: "255.255.255.0".into() }),
            allow: vec!["10.1.2.3/8".into()],
            real_servers: vec![pb::RealServer { addr: "10.0.1.1".into(), port: 8080, weight: 3, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn a_service_round_trips() {
        let vs = service(&svc(), None, Fields::ALL).unwrap();
        assert_eq!(vs.lb_algo, Scheduler::Wrr);
        assert_eq!(vs.client_ipaddr_allow[0].to_string(), "10.0.0.0/8");
        let back = service_to_pb(&vs, &Health::default(), None);
        assert_eq!(back.persistence, svc().persistence);
        assert_eq!(back.real_servers[0].weight, 3);
        assert_eq!(back.allow, vec!["10.0.0.0/8".to_string()]);
        assert_eq!(service(&back, None, Fields::ALL).unwrap(), vs);
    }

    fn err(s: pb::Service) -> String {
        service(&s, None, Fields::ALL).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let mut s = svc();
        s.key.as_mut().unwrap().port = 0;
        assert_eq!(err(s), "service.port: 0 is not a valid port");
        let mut s = svc();
        s.key.as_mut().unwrap().vip = "10.0.0.300".into();
        assert_eq!(err(s), "service.vip: \"10.0.0.300\" is not an IPv4 address");
        let mut s = svc();
        s.scheduler = 0;
        assert!(err(s).starts_with("service.scheduler: 0 is not a scheduler"));
        let mut s = svc();
        s.laddr_group.clear();
        // DPVS's order: local addresses may come after the service.
        assert_eq!(service(&s, None, Fields::ALL).unwrap().laddr_group_name, None);
        let mut s = svc();
        s.real_servers[0].weight = 70000;
        assert_eq!(err(s), "service.real_servers[0].weight: 70000 is out of range 0..=65535");
        let mut s = svc();
        s.deny = vec!["x".into()];
        assert!(err(s).starts_with("service.deny[0]: \"x\""));
        let mut s = svc();
        s.persistence.as_mut().unwrap().netmask = "255.0.255.0".into();
        assert!(err(s).starts_with("service.persistence.netmask"));
        assert!(Fields::from_mask(&["weight".into()]).unwrap_err().to_string().starts_with("fields[0]: \"weight\""));
    }

    #[test]
    fn syn_proxy_round_trips_is_edited_by_name_and_needs_tcp_through_the_director() {
        let on = pb::Service { syn_proxy: true, ..svc() };
        let vs = service(&on, None, Fields::ALL).unwrap();
        assert!(vs.syn_proxy);
        assert!(service_to_pb(&vs, &Health::default(), None).syn_proxy);
        assert!(!service_to_pb(&service(&svc(), None, Fields::ALL).unwrap(), &Health::default(), None).syn_proxy);
        // Named in the mask: switched; not named: kept.
        let off = service(&svc(), Some(&vs), Fields::from_mask(&["syn_proxy".into()]).unwrap()).unwrap();
        assert!(!off.syn_proxy);
        let kept = service(&svc(), Some(&vs), Fields::from_mask(&["scheduler".into()]).unwrap()).unwrap();
        assert!(kept.syn_proxy);
        // UDP, and DR, refused (also when only forward is edited on a SYN-proxied service).
        let mut udp = on.clone();
        udp.key.as_mut().unwrap().protocol = pb::Protocol::Udp as i32;
        assert_eq!(err(udp), "service.syn_proxy: SYN proxy answers TCP handshakes; this service is UDP");
        let dr = pb::Service { forward: pb::ForwardMode::Dr as i32, ..svc() };
        let e = service(&dr, Some(&vs), Fields::from_mask(&["forward".into()]).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "service.syn_proxy: SYN proxy needs forward fnat or nat: with DR the real servers' replies bypass the director");
        assert!(matches!(e, ControlError::Invalid { .. }));
        let nat = pb::Service { forward: pb::ForwardMode::Nat as i32, laddr_group: String::new(), ..on };
        assert_eq!(service(&nat, None, Fields::ALL).unwrap().lb_kind, ForwardMode::Nat);
    }

    #[test]
    fn edits_keep_health_checks_of_existing_real_servers() {
        let mut vs = service(&svc(), None, Fields::ALL).unwrap();
        vs.real_servers[0].check = Some(kaconf::HealthCheck::Tcp(kaconf::ConnectOpts::default()));
        let mut s = svc();
        s.real_servers[0].weight = 9;
        s.real_servers.push(pb::RealServer { addr: "10.0.1.2".into(), port: 8080, weight: 1, ..Default::default() });
        let f = Fields::from_mask(&["real_servers".into()]).unwrap();
        let out = service(&s, Some(&vs), f).unwrap();
        assert_eq!(out.real_servers[0].weight, 9);
        assert!(out.real_servers[0].check.is_some());
        assert!(out.real_servers[1].check.is_none());
    }

    #[test]
    fn health_updates_name_the_field() {
        let k = Some(pb::ServiceKey { vip: "10.0.0.1".into(), port: 80, protocol: pb::Protocol::Tcp as i32 });
        let ok = pb::HealthUpdate { service: k.clone(), addr: "10.0.1.1".into(), port: 80, up: false, checker: "TCP_CHECK".into(), reason: "refused\n".into(), ..Default::default() };
        let req = |u: pb::HealthUpdate| pb::SetHealthRequest { servers: vec![ok.clone(), u], ..Default::default() };
        let (s, q) = health_updates(&req(ok.clone())).unwrap();
        assert_eq!((s.len(), q.len(), s[0].reason.as_str()), (2, 0, "refused"));
        let err = |u: pb::HealthUpdate| health_updates(&req(u)).unwrap_err().to_string();
        assert_eq!(err(pb::HealthUpdate { addr: "x".into(), ..ok.clone() }), "servers[1].addr: \"x\" is not an IPv4 address");
        assert_eq!(err(pb::HealthUpdate { port: 0, ..ok.clone() }), "servers[1].port: 0 is not a valid port");
        let udp9 = Some(pb::ServiceKey { protocol: 9, ..k.clone().unwrap() });
        assert!(err(pb::HealthUpdate { service: udp9, ..ok.clone() }).starts_with("servers[1].service.protocol: 9 is not a protocol"));
        assert_eq!(err(pb::HealthUpdate { weight: Some(65536), ..ok.clone() }), "servers[1].weight: 65536 is out of range 0..=65535");
        let r = pb::SetHealthRequest { quorum: vec![pb::QuorumUpdate { service: None, up: true }], ..Default::default() };
        assert!(health_updates(&r).unwrap_err().to_string().starts_with("quorum[0].service: is required"));
    }

    #[test]
    fn session_filters() {
        let r = pb::ListSessionsRequest { state: "established".into(), client: "1.2.3.4".into(), ..Default::default() };
        let f = session_filter(&r).unwrap();
        assert_eq!(f.state, Some(ConnState::Established));
        let r = pb::ListSessionsRequest { state: "x".into(), ..Default::default() };
        assert!(session_filter(&r).unwrap_err().to_string().starts_with("state: "));
    }
}
