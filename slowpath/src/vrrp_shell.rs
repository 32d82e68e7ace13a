//! The I/O around the VRRP engine: one raw socket per interface in use (the exception TAPs),
//! a receiver task per socket, the engine's actions carried out (adverts sent, gratuitous ARPs
//! written into the TAP, ownership told to lbd, notify scripts run), and link states polled for
//! `track_interface`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_api::pb;
use lb_logging::RateLimited;
use tokio::sync::mpsc;

use crate::netif::{self, Port};
use crate::vrrp::{Action, InstanceStatus, Millis, State, Vrrp};
use crate::vrrp_net::{self, Heard, VrrpSocket};

/// An advert heard on a configured interface.
pub type Rx = (String, Heard);

/// Trouble that repeats with every advert or gratuitous ARP (a send that fails, a peer whose
/// adverts are refused) is logged at most this often per kind and place.
const TROUBLE_LOG_EVERY: Duration = Duration::from_secs(60);

/// The VRRP side of lb-slowpath.
#[derive(Debug)]
pub struct VrrpShell {
    engine: Vrrp,
    /// Configured interface name → its kernel interface (a TAP).
    kernel: HashMap<String, String>,
    sockets: HashMap<String, Arc<VrrpSocket>>,
    links: HashMap<String, bool>,
    /// Address → (owned, instance), as lbd must have it.
    owned: BTreeMap<Ipv4Addr, (bool, String)>,
    /// Something changed that lbd has not been told.
    dirty: bool,
    /// Per instance: what it was, for listings (configured priority, interface, vrid, addresses).
    meta: Vec<(String, u8, String, u8, Vec<String>, String)>,
    /// Repeating trouble, by kind and place.
    trouble: RateLimited<String>,
}

/// What the shell asks the event loop to do.
#[derive(Debug)]
pub enum Todo {
    Commands(Vec<String>),
}

impl VrrpShell {
    /// Builds the engine for `cfg`'s `vrrp_instance`s (`None` when there are none), opens a
    /// socket on each interface they use and starts a receiver per socket feeding `tx`.
    pub fn start(cfg: &kaconf::Config, ports: &[Port], now: Millis, tx: &mpsc::Sender<Rx>) -> Result<Option<VrrpShell>, String> {
        if cfg.vrrp_instances.is_empty() {
            return Ok(None);
        }
        let mut kernel = HashMap::new();
        for vi in &cfg.vrrp_instances {
            let k = netif::resolve(&vi.interface, ports, &netif::exists).map_err(|e| format!("vrrp_instance {}: {e}", vi.name))?;
            kernel.insert(vi.interface.clone(), k);
            for t in &vi.track_interface {
                let k = netif::resolve(&t.name, ports, &netif::exists).map_err(|e| format!("vrrp_instance {} track_interface: {e}", vi.name))?;
                kernel.insert(t.name.clone(), k);
            }
        }
        // Local addresses that move with an instance are announced on their own port (`lan`).
        for (inst, addrs) in crate::vrrp::group::moving_local_addresses(cfg)? {
            for (iface, _) in addrs {
                let k = netif::resolve(&iface, ports, &netif::exists).map_err(|e| format!("vrrp_instance {inst}: local addresses: {e}"))?;
                kernel.insert(iface, k);
            }
        }
        let primary = |iface: &str| kernel.get(iface).and_then(|k| netif::primary_ip(k));
        let engine = Vrrp::new(cfg, now, &primary)?;
        let mut sockets = HashMap::new();
        for vi in &cfg.vrrp_instances {
            let k = &kernel[&vi.interface];
            if sockets.contains_key(k) {
                continue;
            }
            let local = netif::primary_ip(k).ok_or_else(|| format!("vrrp_instance {}: interface {k} has no IPv4 address", vi.name))?;
            let s = Arc::new(VrrpSocket::open(k, local).map_err(|e| format!("vrrp_instance {}: VRRP socket on {k}: {e}", vi.name))?);
            let (rx_sock, tx, conf_iface) = (Arc::clone(&s), tx.clone(), vi.interface.clone());
            tokio::spawn(async move {
                while let Ok(h) = rx_sock.recv().await {
                    if tx.send((conf_iface.clone(), h)).await.is_err() {
                        break;
                    }
                }
            });
            sockets.insert(k.clone(), s);
        }
        let meta = cfg
            .vrrp_instances
            .iter()
            .map(|vi| {
                let group = cfg.vrrp_sync_groups.iter().find(|g| g.group.contains(&vi.name)).map(|g| g.name.clone()).unwrap_or_default();
                (vi.name.clone(), vi.priority, vi.interface.clone(), vi.virtual_router_id, vi.virtual_ipaddress.iter().map(|v| v.addr.to_string()).collect(), group)
            })
            .collect();
        let links = kernel.values().map(|k| (k.clone(), netif::link_up(k))).collect();
        // Until an instance is MASTER its addresses are not ours: say so at once, or a
        // restarted backup's lbd (which owns everything by default) would answer ARP for them.
        let mut owned = BTreeMap::new();
        let moving = crate::vrrp::group::moving_local_addresses(cfg)?;
        for vi in &cfg.vrrp_instances {
            let vips = vi.virtual_ipaddress.iter().chain(&vi.virtual_ipaddress_excluded).map(|v| v.addr.ip());
            let lips = moving.get(&vi.name).into_iter().flatten().map(|(_, a)| *a);
            for a in vips.chain(lips) {
                owned.insert(a, (false, vi.name.clone()));
            }
        }
        Ok(Some(VrrpShell { engine, kernel, sockets, links, owned, dirty: true, meta, trouble: RateLimited::new(TROUBLE_LOG_EVERY) }))
    }

    /// Holds (or allows again) preemption of a lower-priority master, as lbd's session sync
    /// asks: a director whose bulk sync has not finished must not take the addresses.
    pub fn hold_preemption(&mut self, hold: bool) {
        if self.engine.hold_preemption(hold) {
            tracing::info!("{}", if hold { "vrrp: preemption held until lbd's bulk session sync is done" } else { "vrrp: lbd's bulk session sync is done: preemption allowed" });
        }
    }

    /// The engine's next timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.engine.next_deadline()
    }

    /// Timers due.
    pub async fn tick(&mut self, now: Millis) -> Vec<Todo> {
        let a = self.engine.tick(now);
        self.act(a).await
    }

    /// An advert heard.
    pub async fn heard(&mut self, now: Millis, (iface, h): Rx) -> Vec<Todo> {
        let a = self.engine.received(now, &iface, h.src, h.dst, h.ttl, &h.vrrp);
        self.act(a).await
    }

    /// Polls the links `track_interface` and the instances' interfaces depend on.
    pub async fn poll_links(&mut self, now: Millis) -> Vec<Todo> {
        let mut out = Vec::new();
        let changed: Vec<(String, bool)> = self.links.iter().filter_map(|(k, was)| {
            let up = netif::link_up(k);
            (up != *was).then(|| (k.clone(), up))
        }).collect();
        for (k, up) in changed {
            self.links.insert(k.clone(), up);
            for (conf, kern) in self.kernel.clone() {
                if kern == k {
                    let a = self.engine.link(now, &conf, up);
                    out.extend(self.act(a).await);
                }
            }
        }
        out
    }

    /// Graceful stop: priority-0 adverts from the masters, notify_stop scripts.
    pub async fn shutdown(&mut self, now: Millis) -> Vec<Todo> {
        let a = self.engine.shutdown(now);
        self.act(a).await
    }

    /// Logs repeating trouble at most once per [`TROUBLE_LOG_EVERY`] per `key`.
    fn trouble(&mut self, key: String, msg: &str) {
        if let Some(n) = self.trouble.hit(key, Instant::now()) {
            tracing::warn!("vrrp: {msg}{n}");
        }
    }

    async fn act(&mut self, actions: Vec<Action>) -> Vec<Todo> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                Action::Send { iface, src, dst, bytes } => {
                    let Some(s) = self.kernel.get(&iface).and_then(|k| self.sockets.get(k)) else {
                        self.trouble(format!("socket {iface}"), &format!("no socket for interface {iface}"));
                        continue;
                    };
                    if let Err(e) = s.send(src, dst, &bytes).await {
                        self.trouble(format!("advert {iface} {dst}"), &format!("advert on {iface} to {dst}: {e}"));
                    }
                }
                Action::Garp { iface, addrs } => {
                    let Some(k) = self.kernel.get(&iface).cloned() else {
                        self.trouble(format!("garp {iface}"), &format!("gratuitous ARP: interface {iface} is none of lbd's ports"));
                        continue;
                    };
                    let Some(mac) = netif::mac(&k) else {
                        self.trouble(format!("garp {k}"), &format!("gratuitous ARP: no MAC for {k}"));
                        continue;
                    };
                    let r = tokio::task::spawn_blocking(move || vrrp_net::send_garps(&k, mac, &addrs)).await;
                    if let Ok(Err(e)) = r {
                        self.trouble(format!("garp {iface}"), &e.to_string());
                    }
                }
                Action::Owned { instance, addrs, owned } => {
                    for a in addrs {
                        self.owned.insert(a, (owned, instance.clone()));
                    }
                    self.dirty = true;
                }
                Action::Notify { instance, state, commands } => {
                    tracing::info!("vrrp: {instance} {}", state.keyword());
                    self.dirty = true;
                    out.push(Todo::Commands(commands));
                }
                Action::Log(m) => tracing::info!("vrrp: {m}"),
                Action::Refused(m) => self.trouble(m.clone(), &m),
            }
        }
        out
    }

    /// Whether lbd needs telling.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the state sent (or to be sent again, after a failure or an lbd restart).
    pub fn set_dirty(&mut self, dirty: bool) {
        self.dirty = dirty;
    }

    /// The whole ownership and instance state, as lbd's `SetOwnership` takes it.
    pub fn request(&self, start_unix_ms: i64) -> pb::SetOwnershipRequest {
        let addresses = self.owned.iter().map(|(a, (owned, inst))| pb::AddressOwnership { addr: a.to_string(), owned: *owned, instance: inst.clone(), ..Default::default() }).collect();
        let instances = self.engine.status().iter().map(|s| self.status_pb(s, start_unix_ms)).collect();
        pb::SetOwnershipRequest { addresses, instances, source: crate::lbd::SOURCE.into(), replace_instances: true }
    }

    fn status_pb(&self, s: &InstanceStatus, start_unix_ms: i64) -> pb::VrrpInstanceStatus {
        let m = self.meta.iter().find(|m| m.0 == s.name);
        pb::VrrpInstanceStatus {
            name: s.name.clone(),
            state: match s.state {
                State::Master => "MASTER",
                State::Backup => "BACKUP",
                State::Fault => "FAULT",
                State::Stopped => "INIT",
            }
            .into(),
            priority: m.map_or(0, |m| u32::from(m.1)),
            effective_priority: u32::from(s.priority),
            master_addr: s.master_ip.map(|a| a.to_string()).unwrap_or_default(),
            since_unix_ms: start_unix_ms + i64::try_from(s.since).unwrap_or(0),
            transitions: s.transitions,
            interface: m.map(|m| m.2.clone()).unwrap_or_default(),
            vrid: m.map_or(0, |m| u32::from(m.3)),
            addresses: m.map(|m| m.4.clone()).unwrap_or_default(),
            adverts_sent: s.counters.adverts_sent,
            adverts_received: s.counters.adverts_received,
            auth_errors: s.counters.auth_errors,
            other_errors: s.counters.version_errors + s.counters.interval_errors + s.counters.ttl_errors + s.counters.address_list_errors + s.counters.packet_errors,
            sync_group: m.map(|m| m.5.clone()).unwrap_or_default(),
        }
    }
}
