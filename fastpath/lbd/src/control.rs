//! The `Control` facade: owns the running configuration (the keepalived.conf model: local
//! address groups and virtual servers, plus session timeouts), validates every change, and
//! publishes a new service-table snapshot with a new generation for each one. A change touches
//! only the services it names: the others are carried over value for value.
//!
//! Real-server health and service quorum ([`health`]) are state, not configuration: lb-slowpath
//! sets them, they survive changes for servers that stay, and a flip republishes only the
//! service it touches (the others keep their compiled tables and flow-control state).
//!
//! Address ownership ([`ownership`]) is state too: which VIPs and local addresses this director
//! serves now (VRRP master), set by lb-slowpath and folded into every published service table.
//!
//! Per-worker state (sessions, timeouts in each session table, counters) is reached through
//! the workers' mailboxes ([`mailbox`]), with bounded waits.

pub mod health;
pub mod mailbox;
pub mod ownership;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fastpath::service::{ServiceKey, ServiceTable};
use fastpath::session::Timeouts;
use fastpath::{Counters, Interface, L4Proto};
use kaconf::{ForwardMode, LocalAddr, LocalAddressGroup, Protocol, VirtualServer};

use crate::config::PortConfig;
use crate::services;
use crate::shared::Shared;
use crate::stats::WorkerShared;
use health::{now_unix_ms, Health};
use mailbox::{ask_all, ConnCount, ConnKey, MailError, Reply, Request, SessionFilter, SessionInfo};
use ownership::Ownership;

/// How long the control side waits for every worker to answer.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest timeout accepted (31 days), as in lbd.toml.
pub const MAX_TIMEOUT_S: u32 = 31 * 24 * 3600;

/// Where API-made services and groups say they were defined.
pub const API_ORIGIN: &str = "api";

/// Why a change was refused. Messages name the field or object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("{field}: {msg}")]
    Invalid { field: String, msg: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    InUse(String),
    /// The resulting configuration is not valid as a whole (the message says why).
    #[error("{0}")]
    Rejected(String),
    /// The services file is invalid; the running configuration is kept.
    #[error("{0} (the running configuration is unchanged)")]
    Reload(String),
    #[error("no services file is configured (services in lbd.toml); nothing to reload")]
    NoFile,
    #[error("{0}")]
    Workers(#[from] MailError),
}

impl ControlError {
    /// An invalid field.
    pub fn invalid(field: impl Into<String>, msg: impl Into<String>) -> ControlError {
        ControlError::Invalid { field: field.into(), msg: msg.into() }
    }
}

/// A virtual service's identity in the keepalived model.
pub type VsKey = (Ipv4Addr, u16, Protocol);

/// The key of a keepalived virtual server.
pub fn vs_key(vs: &VirtualServer) -> VsKey {
    (vs.vip, vs.port, vs.protocol)
}

/// The fast path's key for a keepalived key.
pub fn service_key(k: VsKey) -> ServiceKey {
    ServiceKey { vip: k.0, port: k.1, proto: if k.2 == Protocol::Tcp { L4Proto::Tcp } else { L4Proto::Udp } }
}

/// "TCP 10.0.0.1:80" for messages.
pub fn key_text(k: VsKey) -> String {
    format!("{} {}:{}", k.2, k.0, k.1)
}

/// Where local addresses go: a named group (keepalived's `local_address_group`), or a
/// service's own (DPVS's `ipvsadm --add-laddr -t VIP:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaddrTarget {
    Group(String),
    Service(VsKey),
}

/// A data port as the control side sees it (DPDK handles for statistics, when running).
#[derive(Debug, Clone)]
pub struct PortHandle {
    pub name: String,
    pub device: String,
    pub mac: String,
    pub addresses: Vec<String>,
    pub port: Option<dpdk::Port>,
    pub tap: Option<(String, dpdk::Port)>,
}

/// What the control side needs from start-up; fixed while the daemon runs.
#[derive(Debug)]
pub struct Env {
    pub services_file: Option<PathBuf>,
    /// How keepalived services become fast-path services (from lbd.toml).
    pub opts: services::Options,
    pub port_cfgs: Vec<PortConfig>,
    /// The ports' own addresses, before VIPs and local addresses are added.
    pub base_ifaces: Vec<Interface>,
    pub workers: Vec<Arc<WorkerShared>>,
    pub ports: Vec<PortHandle>,
    pub started: Instant,
    pub max_sessions: usize,
    pub api_socket: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
}

/// What a change did to the services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<ServiceKey>,
    pub removed: Vec<ServiceKey>,
    pub changed: Vec<ServiceKey>,
    pub unchanged: usize,
    pub generation: u64,
    pub notes: Vec<String>,
}

impl Change {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} added, {} removed, {} changed, {} unchanged (generation {})", self.added.len(), self.removed.len(), self.changed.len(), self.unchanged, self.generation)
    }
}

#[derive(Debug)]
struct Running {
    conf: kaconf::Config,
    /// Health of the checked real servers of `conf`, quorum of its services.
    health: Health,
    /// Which addresses this director owns (VRRP), and the instances' statuses.
    owner: Ownership,
    timeouts: Timeouts,
    generation: u64,
    /// Bumped whenever the running configuration changes, whether or not the fast path sees
    /// it (a health check's url does not change the table; lb-slowpath must still know).
    revision: u64,
}

/// The control facade, shared by the API thread and the daemon's control loop.
#[derive(Debug)]
pub struct Control {
    shared: Arc<Shared>,
    env: Env,
    run: Mutex<Running>,
    /// Random, chosen at start: tells lb-slowpath that lbd restarted (and lost health state).
    instance_id: u64,
    /// The last connection counts fetched for metrics, and when.
    counts_cache: Mutex<Option<(Instant, HashMap<ConnKey, ConnCount>)>>,
}

impl Control {
    /// Takes over the configuration lbd started with (already published as `generation`).
    /// Checked real servers start in their initial health (down under `alpha`), as
    /// [`services::convert`] published them.
    pub fn new(shared: Arc<Shared>, env: Env, conf: kaconf::Config, timeouts: Timeouts, generation: u64) -> Control {
        let mut health = Health::default();
        health.sync(&conf, now_unix_ms());
        Control { shared, env, run: Mutex::new(Running { conf, health, owner: Ownership::default(), timeouts, generation, revision: 1 }), instance_id: random_id(), counts_cache: Mutex::new(None) }
    }

    /// This lbd's instance id (random, chosen at start).
    pub fn instance_id(&self) -> u64 {
        self.instance_id
    }

    fn lock(&self) -> MutexGuard<'_, Running> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fixed environment.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// keepalived.conf's `lvs_sync_daemon`, as running now.
    pub fn lvs_sync_daemon(&self) -> Option<kaconf::LvsSyncDaemon> {
        self.lock().conf.global.lvs_sync_daemon.clone()
    }

    /// The state lb-slowpath last reported for a VRRP instance.
    pub fn vrrp_state(&self, instance: &str) -> Option<ownership::VrrpState> {
        self.lock().owner.instances.get(instance).map(|i| i.state)
    }

    /// The kernel interface (exception TAP) of an lbd port named by its name or its TAP's.
    pub fn tap_of(&self, name: &str) -> Result<String, String> {
        let p = self.env.port_cfgs.iter().find(|p| p.name == name || p.kernel_tap.as_deref() == Some(name)).ok_or_else(|| {
            let names: Vec<&str> = self.env.port_cfgs.iter().map(|p| p.name.as_str()).collect();
            format!("{name:?} is not one of lbd's ports ({})", names.join(", "))
        })?;
        p.kernel_tap.clone().ok_or_else(|| format!("port {} has no kernel_tap: sync messages go through the exception path", p.name))
    }

    /// The shared state (sync daemons, owner maps).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The published service table.
    pub fn table(&self) -> Arc<ServiceTable> {
        self.shared.services.load_full()
    }

    /// The published generation and the configuration revision, without copying anything.
    pub fn versions(&self) -> (u64, u64) {
        let run = self.lock();
        (run.generation, run.revision)
    }

    /// The running configuration and its generation.
    pub fn config(&self) -> (kaconf::Config, u64) {
        let run = self.lock();
        (run.conf.clone(), run.generation)
    }

    /// Validates `conf` as a whole, publishes it and makes it the running configuration. Health
    /// carries over for the real servers that stay.
    fn commit(&self, run: &mut Running, conf: kaconf::Config) -> Result<Change, ControlError> {
        let mut health = run.health.clone();
        health.sync(&conf, now_unix_ms());
        let change = self.publish(run, &conf, &health)?;
        if run.conf != conf {
            run.revision += 1;
        }
        run.conf = conf;
        run.health = health;
        Ok(change)
    }

    /// Converts `conf` with `health` and the ownership in `run`, and publishes the result when
    /// the fast path would see a difference. Unchanged services keep their compiled tables, and
    /// every service keeps its flow-control state ([`ServiceTable::rebuild`]).
    fn publish(&self, run: &mut Running, conf: &kaconf::Config, health: &Health) -> Result<Change, ControlError> {
        let generation = run.generation + 1;
        let old = self.shared.services.load_full();
        // Objects made through the API have no file: their refusals name them without one.
        let mut loaded = services::convert_with(conf, self.env.opts, &self.env.port_cfgs, generation, Some(&old), health).map_err(|e| ControlError::Rejected(e.to_string()))?;
        loaded.table.set_ownership(|ip| run.owner.owned(ip));
        let mut ifaces = self.env.base_ifaces.clone();
        services::assign_addresses(&mut ifaces, &self.env.port_cfgs, &loaded);
        let mut change = diff(&old, &loaded.table);
        change.notes = loaded.notes;
        if change.is_empty() && old.laddrs() == loaded.table.laddrs() && old.same_addresses(&loaded.table) {
            // Nothing the fast path sees changed: keep the snapshot (and the schedulers' state).
            change.generation = run.generation;
        } else {
            // The table first, then the ports' addresses; workers load the ports' addresses
            // first. So a worker that sees a new VIP on a port also sees its ownership, and a
            // backup never answers ARP for a VIP it does not own, not even for one pass.
            self.shared.services.store(Arc::new(loaded.table));
            self.shared.ifaces.store(Arc::new(ifaces));
            // Then a new neighbour generation, which workers load before the ports' addresses:
            // routes that sessions cached are computed again from the new addresses.
            self.shared.neigh.rcu(|t| Arc::new(t.bumped()));
            run.generation = generation;
            change.generation = generation;
        }
        Ok(change)
    }

    /// A virtual server by key.
    pub fn service(&self, key: VsKey) -> Result<VirtualServer, ControlError> {
        let run = self.lock();
        run.conf.virtual_servers.iter().find(|v| vs_key(v) == key).cloned().ok_or_else(|| not_found(key))
    }

    fn check_group(conf: &kaconf::Config, vs: &VirtualServer) -> Result<(), ControlError> {
        match &vs.laddr_group_name {
            Some(g) if conf.local_address_group(g).is_none() => {
                let known: Vec<&str> = conf.local_address_groups.iter().map(|g| g.name.as_str()).collect();
                Err(ControlError::invalid("service.laddr_group", format!("{g:?} names no local-address group (groups: {})", if known.is_empty() { "none".into() } else { known.join(", ") })))
            }
            _ => Ok(()),
        }
    }

    /// Adds one service.
    pub fn add_service(&self, vs: VirtualServer) -> Result<Change, ControlError> {
        let mut run = self.lock();
        let key = vs_key(&vs);
        if run.conf.virtual_servers.iter().any(|v| vs_key(v) == key) {
            return Err(ControlError::Exists(format!("service {} already exists", key_text(key))));
        }
        Self::check_group(&run.conf, &vs)?;
        let mut conf = run.conf.clone();
        conf.virtual_servers.push(vs);
        self.commit(&mut run, conf)
    }

    /// Changes one service with `f`; its key must stay the same.
    pub fn update_service(&self, key: VsKey, f: impl FnOnce(&mut VirtualServer) -> Result<(), ControlError>) -> Result<(Change, VirtualServer), ControlError> {
        let mut run = self.lock();
        let mut conf = run.conf.clone();
        let vs = conf.virtual_servers.iter_mut().find(|v| vs_key(v) == key).ok_or_else(|| not_found(key))?;
        f(vs)?;
        if vs_key(vs) != key {
            return Err(ControlError::invalid("service.key", "a service's address, port and protocol cannot be changed (delete and add it)"));
        }
        let vs = vs.clone();
        Self::check_group(&conf, &vs)?;
        Ok((self.commit(&mut run, conf)?, vs))
    }

    /// Deletes one service.
    pub fn delete_service(&self, key: VsKey) -> Result<Change, ControlError> {
        let mut run = self.lock();
        let mut conf = run.conf.clone();
        let before = conf.virtual_servers.len();
        conf.virtual_servers.retain(|v| vs_key(v) != key);
        if conf.virtual_servers.len() == before {
            return Err(not_found(key));
        }
        self.commit(&mut run, conf)
    }

    /// Deletes every service.
    pub fn clear_services(&self) -> Result<Change, ControlError> {
        let mut run = self.lock();
        let mut conf = run.conf.clone();
        conf.virtual_servers.clear();
        self.commit(&mut run, conf)
    }

    /// Local-address groups with the services that use each.
    pub fn groups(&self) -> Vec<(LocalAddressGroup, Vec<VsKey>)> {
        let run = self.lock();
        let used = |name: &str| run.conf.virtual_servers.iter().filter(|v| v.laddr_group_name.as_deref() == Some(name)).map(vs_key).collect();
        run.conf.local_address_groups.iter().map(|g| (g.clone(), used(&g.name))).collect()
    }

    /// Adds addresses to a group, creating it when needed; addresses already there are kept.
    /// For [`LaddrTarget::Service`] (DPVS's `--add-laddr`) the group is the service's; a
    /// service without one gets a group named after it, in the same change.
    pub fn add_laddrs(&self, target: &LaddrTarget, addrs: Vec<LocalAddr>) -> Result<LocalAddressGroup, ControlError> {
        let mut run = self.lock();
        let mut conf = run.conf.clone();
        if let Some(vs) = conf.virtual_servers.iter().find(|v| addrs.iter().any(|a| a.ip == v.vip)) {
            return Err(ControlError::invalid("addrs", format!("{} is the virtual IP of service {}", vs.vip, key_text(vs_key(vs)))));
        }
        let group = match target {
            LaddrTarget::Group(g) => g.clone(),
            LaddrTarget::Service(key) => {
                let vs = conf.virtual_servers.iter_mut().find(|v| vs_key(v) == *key).ok_or_else(|| not_found(*key))?;
                if vs.lb_kind != ForwardMode::Fnat {
                    return Err(ControlError::invalid("service", format!("service {} forwards by {:?}: local addresses are for FNAT", key_text(*key), vs.lb_kind)));
                }
                vs.laddr_group_name.get_or_insert_with(|| lb_api::service_group_name(&crate::api::convert::key_to_pb(*key))).clone()
            }
        };
        let idx = match conf.local_address_groups.iter().position(|g| g.name == group) {
            Some(i) => i,
            None => {
                conf.local_address_groups.push(LocalAddressGroup { name: group, addrs: Vec::new(), file: PathBuf::from(API_ORIGIN), line: 0 });
                conf.local_address_groups.len() - 1
            }
        };
        let g = &mut conf.local_address_groups[idx];
        for a in addrs {
            match g.addrs.iter_mut().find(|x| x.ip == a.ip) {
                Some(x) => x.ifname = a.ifname.or(x.ifname.take()),
                None => g.addrs.push(a),
            }
        }
        let g = g.clone();
        self.commit(&mut run, conf)?;
        Ok(g)
    }

    /// Removes addresses from a group, or a group itself when `addrs` is empty. A group may
    /// lose its last address while services use it (DPVS's `--del-laddr`): they keep their
    /// sessions and refuse new connections (`no_local_address`) until they get one again.
    pub fn delete_laddrs(&self, target: &LaddrTarget, addrs: &[Ipv4Addr]) -> Result<(), ControlError> {
        let mut run = self.lock();
        let mut conf = run.conf.clone();
        let group = match target {
            LaddrTarget::Group(g) => g.clone(),
            LaddrTarget::Service(key) => {
                let vs = conf.virtual_servers.iter().find(|v| vs_key(v) == *key).ok_or_else(|| not_found(*key))?;
                match &vs.laddr_group_name {
                    Some(g) => g.clone(),
                    None => return Err(ControlError::NotFound(format!("service {} has no local addresses", key_text(*key)))),
                }
            }
        };
        let idx = conf.local_address_groups.iter().position(|g| g.name == group).ok_or_else(|| ControlError::NotFound(format!("local-address group {group:?} does not exist")))?;
        if addrs.is_empty() {
            if matches!(target, LaddrTarget::Service(_)) {
                return Err(ControlError::invalid("addrs", "name the local addresses to remove from the service"));
            }
            let users: Vec<String> = conf.virtual_servers.iter().filter(|v| v.laddr_group_name.as_deref() == Some(group.as_str())).map(|v| key_text(vs_key(v))).collect();
            if !users.is_empty() {
                return Err(ControlError::InUse(format!("local-address group {group:?} is used by {}", users.join(", "))));
            }
            conf.local_address_groups.remove(idx);
        } else {
            let g = &mut conf.local_address_groups[idx];
            for a in addrs {
                let before = g.addrs.len();
                g.addrs.retain(|x| x.ip != *a);
                if g.addrs.len() == before {
                    return Err(ControlError::NotFound(format!("local address {a} is not in group {group:?}")));
                }
            }
        }
        self.commit(&mut run, conf).map(|_| ())
    }

    /// Replaces the groups and services (as `lbctl -R` does); unchanged services stay as they are.
    pub fn apply(&self, groups: Vec<LocalAddressGroup>, services: Vec<VirtualServer>) -> Result<Change, ControlError> {
        let mut run = self.lock();
        let mut conf = run.conf.clone();
        let mut seen: Vec<VsKey> = Vec::new();
        for vs in &services {
            if seen.contains(&vs_key(vs)) {
                return Err(ControlError::invalid("services", format!("service {} is given twice", key_text(vs_key(vs)))));
            }
            seen.push(vs_key(vs));
        }
        conf.local_address_groups = groups;
        conf.virtual_servers = services;
        for vs in &conf.virtual_servers {
            Self::check_group(&conf, vs)?;
        }
        self.commit(&mut run, conf)
    }

    /// Re-reads the services file and applies the difference; an invalid file changes nothing.
    pub fn reload(&self) -> Result<Change, ControlError> {
        let path = self.env.services_file.as_ref().ok_or(ControlError::NoFile)?;
        let conf = kaconf::load(path).map_err(|e| ControlError::Reload(e.to_string()))?;
        let mut run = self.lock();
        self.commit(&mut run, conf).map_err(|e| match e {
            ControlError::Rejected(m) => ControlError::Reload(m),
            other => other,
        })
    }

    /// The running configuration as keepalived.conf text.
    pub fn save(&self) -> String {
        self.lock().conf.to_keepalived_string()
    }

    /// The session timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.lock().timeouts
    }

    /// Sets tcp / tcpfin / udp timeouts (0 keeps a value) in every worker.
    pub fn set_timeouts(&self, tcp: u32, tcpfin: u32, udp: u32) -> Result<Timeouts, ControlError> {
        let mut run = self.lock();
        let mut t = run.timeouts;
        for (name, v, slot) in [("tcp", tcp, &mut t.tcp_established), ("tcpfin", tcpfin, &mut t.tcp_fin_wait), ("udp", udp, &mut t.udp)] {
            if v > MAX_TIMEOUT_S {
                return Err(ControlError::invalid(format!("timeouts.{name}"), format!("{v} s is out of range 1..={MAX_TIMEOUT_S} (0 keeps the current value)")));
            }
            if v != 0 {
                *slot = v;
            }
        }
        ask_all(&self.shared.mailboxes, &Request::SetTimeouts(t), WORKER_TIMEOUT)?;
        run.timeouts = t;
        Ok(t)
    }

    /// Sessions matching `filter`, at most `limit`, with how many matched in all.
    pub fn sessions(&self, filter: SessionFilter, limit: usize) -> Result<(Vec<SessionInfo>, u64), ControlError> {
        let replies = ask_all(&self.shared.mailboxes, &Request::Sessions { filter, limit }, WORKER_TIMEOUT)?;
        let (mut all, mut matched) = (Vec::new(), 0);
        for r in replies {
            if let Reply::Sessions { sessions, matched: m } = r {
                matched += m;
                all.extend(sessions);
            }
        }
        all.sort_by_key(|s| (s.vip, s.client, s.proto as u8));
        all.truncate(limit);
        Ok((all, matched))
    }

    /// Connection counts per (service, real server) over every worker.
    pub fn conn_counts(&self) -> Result<HashMap<ConnKey, ConnCount>, ControlError> {
        let mut total: HashMap<ConnKey, ConnCount> = HashMap::new();
        for r in ask_all(&self.shared.mailboxes, &Request::ConnCounts, WORKER_TIMEOUT)? {
            if let Reply::ConnCounts(m) = r {
                for (k, c) in m {
                    total.entry(k).or_default().add(&c);
                }
            }
        }
        Ok(total)
    }

    /// Connection counts no older than `max_age`: the last ones fetched if they are fresh
    /// enough, else fetched now. Callers at the same time wait for one fetch and share it, so
    /// however many scrapes arrive, the workers walk their tables at most once per `max_age`.
    pub fn conn_counts_cached(&self, max_age: Duration) -> Result<HashMap<ConnKey, ConnCount>, ControlError> {
        let mut cache = self.counts_cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, m)) = cache.as_ref() {
            if at.elapsed() < max_age {
                return Ok(m.clone());
            }
        }
        let m = self.conn_counts()?;
        *cache = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    /// Zeroes every worker's counters and the ports' statistics.
    pub fn zero_counters(&self) -> Result<(), ControlError> {
        ask_all(&self.shared.mailboxes, &Request::ZeroCounters, WORKER_TIMEOUT)?;
        for p in &self.env.ports {
            for port in p.port.iter().chain(p.tap.as_ref().map(|(_, t)| t)) {
                if let Err(e) = port.reset_stats() {
                    tracing::warn!(port = %p.name, "cannot zero the port's statistics: {e}");
                }
            }
        }
        Ok(())
    }

    /// Each worker's last published counters, with its session count and loop counts.
    pub fn worker_counters(&self) -> Vec<(&WorkerShared, Counters)> {
        self.env.workers.iter().map(|w| (w.as_ref(), w.read())).collect()
    }
}

/// A random id: std's hasher keys come from the OS's random source; the pid and the clock are
/// mixed in too. Never zero.
pub(crate) fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_i64(now_unix_ms());
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish().max(1)
}

fn not_found(key: VsKey) -> ControlError {
    ControlError::NotFound(format!("service {} does not exist", key_text(key)))
}

/// Which services differ between two tables.
fn diff(old: &ServiceTable, new: &ServiceTable) -> Change {
    let mut c = Change::default();
    for s in new.services() {
        match old.lookup(&s.key) {
            None => c.added.push(s.key),
            Some((_, o)) if o != s => c.changed.push(s.key),
            Some(_) => c.unchanged += 1,
        }
    }
    c.removed = old.services().iter().filter(|s| new.lookup(&s.key).is_none()).map(|s| s.key).collect();
    c
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod ownership_tests;
