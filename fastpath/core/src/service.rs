//! Virtual services, real servers and local-address groups, as an immutable table that the
//! control thread builds and workers read (a snapshot; workers never lock).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use crate::flow::L4Proto;

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

/// How new connections pick a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin (LVS's interleaved algorithm).
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
}

/// Forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// Full NAT: source becomes a local address, destination the real server.
    Fnat,
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

/// A backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// 0 means "no new connections" (quiesced), as in LVS.
    pub weight: u32,
}

/// A virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    pub sched: Scheduler,
    pub mode: ForwardMode,
    pub real_servers: Vec<RealServer>,
    /// Local addresses (LIPs) used as sources toward the real servers.
    pub laddrs: Vec<Ipv4Addr>,
    pub toa: ToaMode,
}

/// Why a service table was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("virtual service {0} is defined twice")]
    Duplicate(ServiceKey),
    #[error("virtual service {0}: FNAT needs at least one local address (laddr_group_name)")]
    NoLaddr(ServiceKey),
    #[error("virtual service {key}: real server {addr}:{port} weight {weight} is above 65535")]
    Weight { key: ServiceKey, addr: Ipv4Addr, port: u16, weight: u32 },
    #[error("virtual service {key}: real server {addr}:{port} is listed twice")]
    DuplicateRs { key: ServiceKey, addr: Ipv4Addr, port: u16 },
    #[error("virtual service {key}: port 0 is not a valid {what} port")]
    PortZero { key: ServiceKey, what: &'static str },
    #[error("local address {0} is also a virtual IP")]
    LaddrIsVip(Ipv4Addr),
}

/// All services, indexed for the fast path. Immutable once built.
#[derive(Debug, Clone, Default)]
pub struct ServiceTable {
    services: Vec<Service>,
    index: HashMap<ServiceKey, u32, ahash::RandomState>,
    laddrs: Vec<Ipv4Addr>,
    laddr_set: HashSet<Ipv4Addr, ahash::RandomState>,
    vip_set: HashSet<Ipv4Addr, ahash::RandomState>,
    generation: u64,
}

impl ServiceTable {
    /// Validates and indexes `services`. `generation` tells snapshots apart.
    pub fn new(services: Vec<Service>, generation: u64) -> Result<ServiceTable, ServiceError> {
        let mut index = HashMap::with_hasher(ahash::RandomState::new());
        let mut laddrs: Vec<Ipv4Addr> = Vec::new();
        for (i, s) in services.iter().enumerate() {
            if s.key.port == 0 {
                return Err(ServiceError::PortZero { key: s.key, what: "virtual" });
            }
            if index.insert(s.key, u32::try_from(i).unwrap_or(u32::MAX)).is_some() {
                return Err(ServiceError::Duplicate(s.key));
            }
            if s.mode == ForwardMode::Fnat && s.laddrs.is_empty() {
                return Err(ServiceError::NoLaddr(s.key));
            }
            for (j, rs) in s.real_servers.iter().enumerate() {
                if rs.weight > 65535 {
                    return Err(ServiceError::Weight { key: s.key, addr: rs.addr, port: rs.port, weight: rs.weight });
                }
                if rs.port == 0 {
                    return Err(ServiceError::PortZero { key: s.key, what: "real-server" });
                }
                if s.real_servers[..j].iter().any(|o| o.addr == rs.addr && o.port == rs.port) {
                    return Err(ServiceError::DuplicateRs { key: s.key, addr: rs.addr, port: rs.port });
                }
            }
            for l in &s.laddrs {
                if !laddrs.contains(l) {
                    laddrs.push(*l);
                }
            }
        }
        if let Some(l) = laddrs.iter().find(|l| services.iter().any(|s| s.key.vip == **l)) {
            return Err(ServiceError::LaddrIsVip(*l));
        }
        let laddr_set = laddrs.iter().copied().collect();
        let vip_set = services.iter().map(|s| s.key.vip).collect();
        Ok(ServiceTable { services, index, laddrs, laddr_set, vip_set, generation })
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

    /// Whether `ip` is one of the local addresses (so traffic to it is return traffic).
    #[inline]
    pub fn is_laddr(&self, ip: Ipv4Addr) -> bool {
        self.laddr_set.contains(&ip)
    }

    /// Whether `ip` is a virtual IP of some service.
    #[inline]
    pub fn is_vip(&self, ip: Ipv4Addr) -> bool {
        self.vip_set.contains(&ip)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(port: u16, laddrs: Vec<Ipv4Addr>) -> Service {
        Service {
            key: ServiceKey { vip: Ipv4Addr::new(10, 0, 0, 100), port, proto: L4Proto::Tcp },
            sched: Scheduler::Rr,
            mode: ForwardMode::Fnat,
            real_servers: vec![RealServer { addr: Ipv4Addr::new(10, 0, 1, 1), port: 80, weight: 1 }],
            laddrs,
            toa: ToaMode::FirstAck,
        }
    }

    #[test]
    fn lookup_and_validation() {
        let l = vec![Ipv4Addr::new(10, 0, 1, 200)];
        let t = ServiceTable::new(vec![svc(80, l.clone()), svc(443, l.clone())], 1).unwrap();
        assert_eq!(t.lookup(&svc(443, vec![]).key).unwrap().0, 1);
        assert!(t.lookup(&ServiceKey { proto: L4Proto::Udp, ..svc(80, vec![]).key }).is_none());
        assert!(t.is_laddr(l[0]));
        assert_eq!(ServiceTable::new(vec![svc(80, l.clone()), svc(80, l.clone())], 1).unwrap_err(), ServiceError::Duplicate(svc(80, vec![]).key));
        assert!(matches!(ServiceTable::new(vec![svc(80, vec![])], 1), Err(ServiceError::NoLaddr(_))));
        let mut s = svc(80, l.clone());
        s.real_servers[0].weight = 70000;
        assert!(ServiceTable::new(vec![s], 1).unwrap_err().to_string().contains("weight 70000"));
        let s = svc(80, vec![Ipv4Addr::new(10, 0, 0, 100)]);
        assert!(matches!(ServiceTable::new(vec![s], 1), Err(ServiceError::LaddrIsVip(_))));
    }
}
