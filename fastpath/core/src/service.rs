//! Virtual services, real servers and local-address groups, as an immutable table that the
//! control thread builds and workers read (a snapshot; workers never lock).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::acl::ClientAcl;
use crate::flow::L4Proto;
use crate::flowctl::ServiceShared;
use crate::hashsched::{build_buckets, build_maglev, build_ring, Backend, HashTable, MAGLEV_SIZE};

/// Identifies a virtual service: VIP, port and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub proto: L4Proto,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}:{}", self.proto, self.vip, self.port)
    }
}

/// Schedulers and forwarding modes: the one definition, shared with the parser and the API.
pub use lb_model::{ForwardMode, Scheduler};

/// Client persistence (LVS templates): a client keeps its real server across connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    /// Seconds an idle template lives.
    pub timeout_s: u32,
    /// Clients in the same masked network share a template (default 255.255.255.255).
    pub netmask: Ipv4Addr,
}

/// What refused new connections get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseMode {
    /// TCP reset (UDP: dropped).
    Rst,
    /// Silently dropped.
    Drop,
}

/// Per-service flow control; zero disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowControl {
    /// New connections per second allowed on average over `interval_s`.
    pub cps: u32,
    /// Window length in seconds (at most `cps * interval_s` new connections per window).
    pub interval_s: u32,
    /// Concurrent connections allowed.
    pub max_conns: u32,
    pub refuse: RefuseMode,
}

impl Default for FlowControl {
    fn default() -> Self {
        FlowControl { cps: 0, interval_s: 1, max_conns: 0, refuse: RefuseMode::Rst }
    }
}

/// When the client's address is written into TCP option 254 (TOA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToaMode {
    /// Never.
    Off,
    /// In the client's first ACK of the handshake (LVS FULLNAT behaviour).
    FirstAck,
    /// In the SYN and in the first ACK.
    SynAndFirstAck,
}

/// A backend. Admin state (weight) is separate from health (probe result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// 0 means "no new connections" (quiesced), as in LVS.
    pub weight: u32,
    /// Health-check verdict; an unhealthy server gets no new connections.
    pub healthy: bool,
}

impl RealServer {
    /// A healthy real server.
    pub fn new(addr: Ipv4Addr, port: u16, weight: u32) -> RealServer {
        RealServer { addr, port, weight, healthy: true }
    }

    /// Whether it may take new connections.
    #[inline]
    pub fn available(&self) -> bool {
        self.weight > 0 && self.healthy
    }
}

/// A virtual service. Build with [`Service::new`] and struct update syntax so new fields
/// keep their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    pub sched: Scheduler,
    pub mode: ForwardMode,
    pub real_servers: Vec<RealServer>,
    /// Local addresses (LIPs) used as sources toward the real servers (FNAT).
    pub laddrs: Vec<Ipv4Addr>,
    pub toa: ToaMode,
    pub persistence: Option<Persistence>,
    /// Seconds sessions to a removed or failed real server may go on (0 = no limit).
    pub draining_timeout_s: Option<u32>,
    /// Served when no real server is available.
    pub sorry_server: Option<(Ipv4Addr, u16)>,
    pub flow: FlowControl,
    /// Clients allowed (when non-empty, only these), as (network, prefix length).
    pub allow: Vec<(Ipv4Addr, u8)>,
    /// Clients refused (unless also allowed: allow wins).
    pub deny: Vec<(Ipv4Addr, u8)>,
    /// sh, mh and consh: hash the client's port with its address (keepalived's sh-port / mh-port).
    pub hash_port: bool,
    /// SYN proxy (TCP, FNAT and NAT): SYNs are answered with cookies, the real server sees
    /// only clients that completed the handshake.
    pub syn_proxy: Option<crate::synproxy::SynProxyConf>,
}

impl Service {
    /// A service with no real servers and default options.
    pub fn new(key: ServiceKey, sched: Scheduler, mode: ForwardMode) -> Service {
        Service {
            key,
            sched,
            mode,
            real_servers: Vec::new(),
            laddrs: Vec::new(),
            toa: ToaMode::Off,
            persistence: None,
            draining_timeout_s: None,
            sorry_server: None,
            flow: FlowControl::default(),
            allow: Vec::new(),
            deny: Vec::new(),
            hash_port: false,
            syn_proxy: None,
        }
    }
}

/// Most virtual services a table holds (a session keeps its service's index in 16 bits, the
/// last value meaning none).
pub const MAX_SERVICES: usize = u16::MAX as usize;
/// Most real servers a service has (likewise).
pub const MAX_REAL_SERVERS: usize = u16::MAX as usize;

/// Why a service table was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("{0} virtual services: a table holds at most {MAX_SERVICES}")]
    TooManyServices(usize),
    #[error("virtual service {key}: {count} real servers: a service has at most {MAX_REAL_SERVERS}")]
    TooManyRealServers { key: ServiceKey, count: usize },
    #[error("virtual service {0} is defined twice")]
    Duplicate(ServiceKey),
    #[error("virtual service {key}: real server {addr}:{port} weight {weight} is above 65535")]
    Weight { key: ServiceKey, addr: Ipv4Addr, port: u16, weight: u32 },
    #[error("virtual service {key}: real server {addr}:{port} is listed twice")]
    DuplicateRs { key: ServiceKey, addr: Ipv4Addr, port: u16 },
    #[error("virtual service {key}: port 0 is not a valid {what} port")]
    PortZero { key: ServiceKey, what: &'static str },
    #[error("local address {0} is also a virtual IP")]
    LaddrIsVip(Ipv4Addr),
    #[error("virtual service {key}: syn_proxy {why}")]
    SynProxy { key: ServiceKey, why: String },
}

/// What a destination address is to the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    /// A virtual IP: client traffic.
    Vip,
    /// A local address (FNAT): real-server replies.
    Laddr,
}

/// One VIP or local address as the fast path sees it: its kind, and whether this director
/// owns it now (VRRP master for it). Not owned: no ARP replies for it, and every packet to
/// it is dropped (`not_owner`). Addresses start owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrState {
    pub kind: AddrKind,
    pub owned: bool,
}

/// What the control side precomputes for each service: hashing tables over the available
/// real servers, the client lists, and the counters shared by all workers. A table holds it
/// behind an `Arc` so a rebuild carries an unchanged service's tables over without
/// recompiling them (a Maglev table is 65,537 entries).
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// sh/dh/consh/mh lookup table (indexes into `real_servers`).
    pub hash: HashTable,
    /// For persistent services: where a client without a template goes (Maglev on the
    /// masked client address), so all workers and directors agree.
    pub persist_hash: HashTable,
    pub acl: ClientAcl,
    pub shared: Arc<ServiceShared>,
}

fn backends(s: &Service) -> Vec<Backend> {
    s.real_servers
        .iter()
        .enumerate()
        .map(|(i, r)| Backend { index: u32::try_from(i).unwrap_or(u32::MAX), addr: r.addr, port: r.port, weight: if r.available() { r.weight } else { 0 } })
        .collect()
}

impl Compiled {
    fn build(s: &Service, shared: Arc<ServiceShared>) -> Compiled {
        let b = backends(s);
        let hash = match s.sched {
            Scheduler::Sh | Scheduler::Dh => build_buckets(&b),
            Scheduler::Consh => build_ring(&b),
            Scheduler::Mh => build_maglev(&b, MAGLEV_SIZE),
            _ => HashTable::None,
        };
        let persist_hash = if s.persistence.is_some() { build_maglev(&b, MAGLEV_SIZE) } else { HashTable::None };
        Compiled { hash, persist_hash, acl: ClientAcl::new(&s.allow, &s.deny), shared }
    }
}

/// All services, indexed for the fast path. Immutable once built.
#[derive(Debug, Clone, Default)]
pub struct ServiceTable {
    services: Vec<Service>,
    compiled: Vec<Arc<Compiled>>,
    has_nat: bool,
    index: HashMap<ServiceKey, u32, ahash::RandomState>,
    laddrs: Vec<Ipv4Addr>,
    /// What each VIP and local address is, and whether this director owns it now: one lookup
    /// classifies a destination and tells whether to serve it.
    addrs: HashMap<Ipv4Addr, AddrState, ahash::RandomState>,
    generation: u64,
}

impl ServiceTable {
    /// Validates and indexes `services`. `generation` tells snapshots apart.
    pub fn new(services: Vec<Service>, generation: u64) -> Result<ServiceTable, ServiceError> {
        ServiceTable::rebuild(None, services, generation)
    }

    /// Like `new`, reusing what `prev` already has: a service whose value is unchanged keeps
    /// its compiled tables (the same allocation); a changed one is recompiled but keeps its
    /// shared flow-control state (windows, concurrency counts), found by key.
    pub fn rebuild(prev: Option<&ServiceTable>, services: Vec<Service>, generation: u64) -> Result<ServiceTable, ServiceError> {
        let mut index = HashMap::with_hasher(ahash::RandomState::new());
        let mut laddrs: Vec<Ipv4Addr> = Vec::new();
        // Sets, not pairwise scans: a table of 60,000 real servers is checked in linear time.
        let mut seen_laddrs: std::collections::HashSet<Ipv4Addr, ahash::RandomState> = std::collections::HashSet::with_hasher(ahash::RandomState::new());
        let mut seen_rs: std::collections::HashSet<(Ipv4Addr, u16), ahash::RandomState> = std::collections::HashSet::with_hasher(ahash::RandomState::new());
        if services.len() > MAX_SERVICES {
            return Err(ServiceError::TooManyServices(services.len()));
        }
        for (i, s) in services.iter().enumerate() {
            if s.real_servers.len() > MAX_REAL_SERVERS {
                return Err(ServiceError::TooManyRealServers { key: s.key, count: s.real_servers.len() });
            }
            if s.key.port == 0 {
                return Err(ServiceError::PortZero { key: s.key, what: "virtual" });
            }
            if index.insert(s.key, u32::try_from(i).unwrap_or(u32::MAX)).is_some() {
                return Err(ServiceError::Duplicate(s.key));
            }
            if let Some(sp) = &s.syn_proxy {
                let why = if s.key.proto != L4Proto::Tcp {
                    Some("needs a TCP service".to_string())
                } else if s.mode == ForwardMode::Dr {
                    // Replies bypass the director in DR: it could not splice their sequence numbers.
                    Some("needs FNAT or NAT (DR replies bypass the director)".to_string())
                } else {
                    sp.validate().err().map(|e| e.to_string())
                };
                if let Some(why) = why {
                    return Err(ServiceError::SynProxy { key: s.key, why });
                }
            }
            seen_rs.clear();
            for rs in &s.real_servers {
                if rs.weight > 65535 {
                    return Err(ServiceError::Weight { key: s.key, addr: rs.addr, port: rs.port, weight: rs.weight });
                }
                if rs.port == 0 {
                    return Err(ServiceError::PortZero { key: s.key, what: "real-server" });
                }
                if !seen_rs.insert((rs.addr, rs.port)) {
                    return Err(ServiceError::DuplicateRs { key: s.key, addr: rs.addr, port: rs.port });
                }
            }
            for l in &s.laddrs {
                if seen_laddrs.insert(*l) {
                    laddrs.push(*l);
                }
            }
        }
        let vips: std::collections::HashSet<Ipv4Addr, ahash::RandomState> = services.iter().map(|s| s.key.vip).collect();
        if let Some(l) = laddrs.iter().find(|l| vips.contains(*l)) {
            return Err(ServiceError::LaddrIsVip(*l));
        }
        let mut addrs: HashMap<Ipv4Addr, AddrState, ahash::RandomState> = HashMap::with_hasher(ahash::RandomState::new());
        addrs.extend(services.iter().map(|s| (s.key.vip, AddrState { kind: AddrKind::Vip, owned: true })));
        addrs.extend(laddrs.iter().map(|l| (*l, AddrState { kind: AddrKind::Laddr, owned: true })));
        let compiled = services
            .iter()
            .map(|s| match prev.and_then(|p| p.lookup(&s.key).map(|(i, old)| (old, &p.compiled[i as usize]))) {
                Some((old, c)) if old == s => Arc::clone(c),
                Some((_, c)) => Arc::new(Compiled::build(s, Arc::clone(&c.shared))),
                None => Arc::new(Compiled::build(s, Arc::default())),
            })
            .collect();
        let has_nat = services.iter().any(|s| s.mode == ForwardMode::Nat);
        Ok(ServiceTable { services, compiled, has_nat, index, laddrs, addrs, generation })
    }

    /// The service for a destination, with its index.
    #[inline]
    pub fn lookup(&self, key: &ServiceKey) -> Option<(u32, &Service)> {
        let i = *self.index.get(key)?;
        self.services.get(i as usize).map(|s| (i, s))
    }

    /// A service by index.
    pub fn get(&self, i: u32) -> Option<&Service> {
        self.services.get(i as usize)
    }

    /// A service's precomputed tables by index.
    #[inline]
    pub fn compiled(&self, i: u32) -> &Compiled {
        &self.compiled[i as usize]
    }

    /// A service's precomputed tables as shared between snapshots (a rebuild that leaves the
    /// service unchanged hands the same `Arc` on).
    pub fn compiled_arc(&self, i: u32) -> &Arc<Compiled> {
        &self.compiled[i as usize]
    }

    /// Whether any service forwards in NAT mode (replies then need a session lookup).
    #[inline]
    pub fn has_nat(&self) -> bool {
        self.has_nat
    }

    /// Whether `ip` is one of the local addresses (so traffic to it is return traffic).
    #[inline]
    pub fn is_laddr(&self, ip: Ipv4Addr) -> bool {
        self.addr_kind(ip) == Some(AddrKind::Laddr)
    }

    /// Whether `ip` is a VIP or a local address (one hash lookup).
    #[inline]
    pub fn addr_kind(&self, ip: Ipv4Addr) -> Option<AddrKind> {
        self.addrs.get(&ip).map(|a| a.kind)
    }

    /// What `ip` is and whether this director owns it (the same single hash lookup as
    /// [`ServiceTable::addr_kind`]); `None` when it is neither a VIP nor a local address.
    #[inline]
    pub fn addr(&self, ip: Ipv4Addr) -> Option<AddrState> {
        self.addrs.get(&ip).copied()
    }

    /// Sets the ownership of every VIP and local address from `owned` (`None`: owned, the
    /// default). Done by the control side on a table it has not published yet.
    pub fn set_ownership(&mut self, owned: impl Fn(Ipv4Addr) -> Option<bool>) {
        for (ip, a) in &mut self.addrs {
            a.owned = owned(*ip).unwrap_or(true);
        }
    }

    /// Whether both tables have the same VIPs and local addresses with the same ownership.
    pub fn same_addresses(&self, other: &ServiceTable) -> bool {
        self.addrs == other.addrs
    }

    /// Every VIP and local address with its state, in address order.
    pub fn addresses(&self) -> Vec<(Ipv4Addr, AddrState)> {
        let mut v: Vec<_> = self.addrs.iter().map(|(ip, a)| (*ip, *a)).collect();
        v.sort_unstable_by_key(|(ip, _)| *ip);
        v
    }

    /// Whether `ip` is a virtual IP of some service.
    #[inline]
    pub fn is_vip(&self, ip: Ipv4Addr) -> bool {
        self.addr_kind(ip) == Some(AddrKind::Vip)
    }

    /// Every local address.
    pub fn laddrs(&self) -> &[Ipv4Addr] {
        &self.laddrs
    }

    /// Every service.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The snapshot's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The generation's low 32 bits, as sessions keep it (`Session::generation`): it tells a
    /// session's snapshot from the current one unless exactly a multiple of 2^32 reloads came
    /// between.
    pub fn generation_tag(&self) -> u32 {
        crate::low32(self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(port: u16, laddrs: Vec<Ipv4Addr>) -> Service {
        Service {
            real_servers: vec![RealServer::new(Ipv4Addr::new(10, 0, 1, 1), 80, 1)],
            laddrs,
            toa: ToaMode::FirstAck,
            ..Service::new(ServiceKey { vip: Ipv4Addr::new(10, 0, 0, 100), port, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Fnat)
        }
    }

    #[test]
    fn tables_past_the_session_index_limits_are_refused() {
        let many: Vec<Service> = (0..=MAX_SERVICES).map(|i| Service { key: ServiceKey { vip: Ipv4Addr::from(0x0b00_0000 + u32::try_from(i).unwrap()), ..svc(80, vec![]).key }, ..svc(80, vec![]) }).collect();
        assert!(ServiceTable::new(many[..MAX_SERVICES].to_vec(), 1).is_ok(), "65535 services are within the limit");
        let e = ServiceTable::new(many, 1).map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), "65536 virtual services: a table holds at most 65535");
        let mut s = svc(80, vec![]);
        s.real_servers = (0..=MAX_REAL_SERVERS).map(|i| RealServer::new(Ipv4Addr::from(0x0a01_0000 + u32::try_from(i).unwrap()), 80, 1)).collect();
        let e = ServiceTable::new(vec![s.clone()], 1).map(|_| ()).unwrap_err();
        assert_eq!(e, ServiceError::TooManyRealServers { key: s.key, count: 65536 });
        s.real_servers.pop();
        assert!(ServiceTable::new(vec![s], 1).is_ok(), "65535 real servers are within the limit");
    }

    /// Timing, not a pass/fail: `cargo test -p fastpath --release --lib one_change_among -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run by hand"]
    fn one_change_among_60k_real_servers() {
        let l = vec![Ipv4Addr::new(10, 0, 1, 200)];
        let mut s = svc(80, l);
        s.sched = Scheduler::Wrr;
        s.real_servers = (0..60_000u32).map(|i| RealServer::new(Ipv4Addr::from(0x0a01_0000 + i), 80, 1)).collect();
        let t = ServiceTable::new(vec![s.clone()], 1).unwrap();
        let t0 = std::time::Instant::now();
        s.real_servers[7].weight = 2;
        let t2 = ServiceTable::rebuild(Some(&t), vec![s], 2).unwrap();
        eprintln!("rebuild with one of 60,000 real servers changed: {:?}", t0.elapsed());
        assert_eq!(t2.services()[0].real_servers[7].weight, 2);
    }

    #[test]
    fn duplicate_real_servers_and_local_addresses_are_found_in_big_tables() {
        let l = vec![Ipv4Addr::new(10, 0, 1, 200)];
        let mut s = svc(80, l);
        s.real_servers = (0..5000u32).map(|i| RealServer::new(Ipv4Addr::from(0x0a01_0000 + i), 80, 1)).collect();
        s.real_servers.push(RealServer::new(Ipv4Addr::from(0x0a01_0000 + 4321), 80, 1));
        assert!(matches!(ServiceTable::new(vec![s], 1), Err(ServiceError::DuplicateRs { port: 80, .. })));
        let mut a = svc(80, vec![Ipv4Addr::new(10, 0, 1, 200), Ipv4Addr::new(10, 0, 1, 201)]);
        a.laddrs.push(Ipv4Addr::new(10, 0, 1, 200));
        let t = ServiceTable::new(vec![a], 1).unwrap();
        assert_eq!(t.laddrs(), &[Ipv4Addr::new(10, 0, 1, 200), Ipv4Addr::new(10, 0, 1, 201)], "listed once, in order");
    }

    #[test]
    fn lookup_and_validation() {
        let l = vec![Ipv4Addr::new(10, 0, 1, 200)];
        let t = ServiceTable::new(vec![svc(80, l.clone()), svc(443, l.clone())], 1).unwrap();
        assert_eq!(t.lookup(&svc(443, vec![]).key).unwrap().0, 1);
        assert!(t.lookup(&ServiceKey { proto: L4Proto::Udp, ..svc(80, vec![]).key }).is_none());
        assert!(t.is_laddr(l[0]));
        assert_eq!(ServiceTable::new(vec![svc(80, l.clone()), svc(80, l.clone())], 1).unwrap_err(), ServiceError::Duplicate(svc(80, vec![]).key));
        // DPVS's flow: an FNAT service may exist before its local addresses.
        assert!(ServiceTable::new(vec![svc(80, vec![])], 1).is_ok());
        let mut s = svc(80, l.clone());
        s.real_servers[0].weight = 70000;
        assert!(ServiceTable::new(vec![s], 1).unwrap_err().to_string().contains("weight 70000"));
        let s = svc(80, vec![Ipv4Addr::new(10, 0, 0, 100)]);
        assert!(matches!(ServiceTable::new(vec![s], 1), Err(ServiceError::LaddrIsVip(_))));
    }

    fn limited(port: u16) -> Service {
        let mut s = svc(port, vec![Ipv4Addr::new(10, 0, 1, 200)]);
        s.flow.max_conns = 5;
        s
    }

    #[test]
    fn adding_a_service_keeps_the_others_flow_control_counts() {
        let t = ServiceTable::new(vec![limited(80)], 1).unwrap();
        let shared = &t.compiled(0).shared;
        for _ in 0..5 {
            shared.admit(&t.get(0).unwrap().flow, 1000).unwrap();
        }
        let t2 = ServiceTable::rebuild(Some(&t), vec![limited(80), svc(8080, vec![Ipv4Addr::new(10, 0, 1, 200)])], 2).unwrap();
        let (i, s) = t2.lookup(&limited(80).key).unwrap();
        assert_eq!(t2.compiled(i).shared.conns.load(std::sync::atomic::Ordering::Relaxed), 5);
        assert!(t2.compiled(i).shared.admit(&s.flow, 1000).is_err(), "a sixth connection is still refused");
        assert!(Arc::ptr_eq(t.compiled_arc(0), t2.compiled_arc(i)), "an unchanged service is not recompiled");
    }

    #[test]
    fn a_changed_service_is_recompiled_and_keeps_its_shared_state() {
        let mut a = limited(80);
        a.sched = Scheduler::Mh;
        let t = ServiceTable::new(vec![a.clone(), limited(443)], 1).unwrap();
        a.real_servers[0].healthy = false;
        let t2 = ServiceTable::rebuild(Some(&t), vec![a.clone(), limited(443)], 2).unwrap();
        assert!(!Arc::ptr_eq(t.compiled_arc(0), t2.compiled_arc(0)), "recompiled");
        assert!(Arc::ptr_eq(&t.compiled(0).shared, &t2.compiled(0).shared), "same flow-control state");
        assert_eq!(t2.compiled(0).hash.lookup(7), None, "its only server is down");
        assert!(Arc::ptr_eq(t.compiled_arc(1), t2.compiled_arc(1)), "the other service is untouched");
        // Without a previous table every service starts fresh.
        let t3 = ServiceTable::new(vec![a, limited(443)], 3).unwrap();
        assert!(!Arc::ptr_eq(&t.compiled(1).shared, &t3.compiled(1).shared));
    }
}
