//! Health-check decisions with keepalived 2.2 semantics, free of I/O.
//!
//! The [`Engine`] is built from a keepalived.conf model and driven by a clock (milliseconds
//! since the shell started it) and probe results: [`Engine::due`] says which probes to start,
//! [`Engine::result`] takes what one found and returns the [`Event`]s to apply (server up or
//! down, with its `notify_up`/`notify_down`; quorum gained or lost, with `quorum_up` /
//! `quorum_down`). The shell performs probes, runs commands and tells lbd; it owns no policy.
//!
//! - [`plan`]: configuration → checks (with `checker_off` and `checker_merge`).
//! - [`checker`]: one check's retry/alpha state machine and timers.
//! - [`quorum`]: a virtual server's quorum with hysteresis.
//!
//! The initial state of every server is in [`Engine::snapshot`] (apply it to lbd first);
//! events produced while building are in [`Engine::take_events`].

mod checker;
mod plan;
mod quorum;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use checker::{Change, Checker};
use plan::{CheckKey, CheckSpec, Plan, ServerPlan, VsPlan};
use quorum::Quorum;

/// Monotonic time in milliseconds since the engine's clock started (fake in tests).
pub type Millis = u64;

/// A virtual server: address, port and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VsKey {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: kaconf::Protocol,
}

/// A real server of one virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RsKey {
    pub vs: VsKey,
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// One check; stable for the check's life, across reconfigurations that keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(pub u32);

/// A probe the shell must perform; every address is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Up when a TCP connection to `target` completes within `timeout`.
    Tcp {
        target: SocketAddrV4,
        bind: Option<SocketAddrV4>,
        timeout: Duration,
    },
    /// Up when every url answers as its `status_code` / `digest` say (keepalived: any 2xx
    /// when neither is given). A url's own `virtualhost` wins over `virtualhost`; `None`
    /// for both: the target address is the `Host:`.
    Http {
        target: SocketAddrV4,
        bind: Option<SocketAddrV4>,
        timeout: Duration,
        tls: bool,
        virtualhost: Option<String>,
        urls: Vec<kaconf::Url>,
        http_protocol: kaconf::HttpProtocol,
        /// TLS only: send the host name (SNI).
        enable_sni: bool,
    },
    /// Send `payload`; down on an ICMP error, or, with `require_reply`, without an answer
    /// within `timeout`. `ping`: DPVS's ICMP echo first (off with `ping_check_off`).
    Udp {
        target: SocketAddrV4,
        bind: Option<SocketAddrV4>,
        timeout: Duration,
        payload: Vec<u8>,
        require_reply: bool,
        ping: bool,
    },
    /// Run `command` (a shell command line); killed after `timeout`, which is a failure.
    /// Exit 0 up; with `dynamic`, 2..=255 up with weight code - 2 ([`Outcome::UpWithWeight`]);
    /// anything else down.
    Misc {
        command: String,
        timeout: Duration,
        dynamic: bool,
    },
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Up,
    /// `misc_dynamic`: up, with this weight instead of the configured one.
    UpWithWeight(u32),
    /// Down, and why (`connect 10.0.0.1:80: connection refused`).
    Down(String),
}

/// What lbd shows for a server when the engine starts (seeding after a slowpath restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    Up,
    Down,
    /// Start as keepalived does: down with alpha, up without.
    Unknown,
}

/// Something lbd (and the commands it names) must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A server's health. `weight`: the weight to use while up (`Some`: a `misc_dynamic`
    /// weight; `None`: the configured one). `inhibit`: keep a down server with weight 0
    /// instead of removing it. `notify`: the command to run. Health is not admin state: a
    /// server drained by an operator stays drained whatever this says.
    Server {
        rs: RsKey,
        up: bool,
        weight: Option<u32>,
        inhibit: bool,
        reason: String,
        notify: Option<String>,
    },
    /// The virtual server's quorum was gained (`up`) or lost. On loss with a sorry server,
    /// traffic goes to the sorry server until the quorum is back (keepalived); `command` is
    /// `quorum_up` / `quorum_down`.
    Quorum {
        vs: VsKey,
        up: bool,
        command: Option<String>,
    },
}

/// `reason` of the events for servers a reconfiguration removed (lbd may no longer know
/// them; only their `notify` matters).
pub const REMOVED: &str = "removed from the configuration";
/// `reason` of the events [`Engine::shutdown`] returns.
pub const SHUTTING_DOWN: &str = "shutting down";

/// One server as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    pub rs: RsKey,
    pub up: bool,
    /// `misc_dynamic` weight while up; `None`: the configured weight.
    pub weight: Option<u32>,
    /// When `up` last changed (or checking started).
    pub since: Millis,
    pub last_error: Option<String>,
    /// `TCP_CHECK`, `HTTP_GET`, ...; `None`: not checked (always up).
    pub checker: Option<&'static str>,
    pub inhibit: bool,
}

/// A small deterministic generator (splitmix64) for the start-up spread.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next() % n,
            None => self.next(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    key: CheckKey,
    checker: Checker,
    /// Indexes into `Engine::servers` driven by this check.
    servers: Vec<usize>,
}

#[derive(Debug)]
struct Server {
    plan: ServerPlan,
    check: Option<u32>,
}

#[derive(Debug)]
struct Vs {
    plan: VsPlan,
    quorum: Quorum,
}

/// The health-check decision engine.
#[derive(Debug)]
pub struct Engine {
    rng: Rng,
    started: Millis,
    next_id: u32,
    checks: BTreeMap<u32, Entry>,
    /// (due time, check); entries whose check moved on or vanished are skipped.
    timers: BTreeSet<(Millis, u32)>,
    servers: Vec<Server>,
    vss: Vec<Vs>,
    pending: Vec<Event>,
}

impl Engine {
    /// Builds the checks of `cfg` at `now`. Each check's first probe comes after a random
    /// delay up to its `warmup` (keepalived's default warmup is `delay_loop`), drawn from a
    /// generator seeded with `seed`. A server `prior` shows up starts up and one it shows
    /// down starts down (both as if checked already); `Prior::Unknown` follows alpha.
    pub fn new(
        cfg: &kaconf::Config,
        now: Millis,
        seed: u64,
        prior: &dyn Fn(&RsKey) -> Prior,
    ) -> Engine {
        let mut e = Engine {
            rng: Rng(seed),
            started: now,
            next_id: 0,
            checks: BTreeMap::new(),
            timers: BTreeSet::new(),
            servers: Vec::new(),
            vss: Vec::new(),
            pending: Vec::new(),
        };
        let plan = Plan::new(cfg);
        let subs = subscribers(&plan);
        let ids: Vec<u32> = plan
            .checks
            .into_iter()
            .zip(&subs)
            .map(|((key, spec), subs)| {
                let priors = subs.iter().map(|&s| prior(&plan.servers[s].key));
                e.add_check(key, spec, now, combine(priors))
            })
            .collect();
        e.install_servers(plan.servers, &ids);
        for v in plan.vss {
            let seeded = !v.servers.is_empty()
                && v.servers
                    .iter()
                    .all(|&s| prior(&e.servers[s].plan.key) != Prior::Unknown);
            let sum = e.alive_weight(&v.servers);
            let mut quorum = Quorum::start(sum, v.quorum, v.hysteresis);
            // After a slowpath restart lbd already did what the quorum asked for.
            quorum.sorry_active = seeded && !quorum.up && v.has_sorry_server;
            e.vss.push(Vs { plan: v, quorum });
            let i = e.vss.len() - 1;
            if let Some(ev) = e.update_quorum(i, true) {
                e.pending.push(ev);
            }
        }
        e
    }

    /// Events produced outside [`Engine::result`] and [`Engine::reconfigure`] (at start: a
    /// virtual server starting without quorum and with a sorry server).
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    /// The probes to start now; a check with a probe in flight is not due again until its
    /// result is in.
    pub fn due(&mut self, now: Millis) -> Vec<(CheckId, Probe)> {
        let mut out = Vec::new();
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            if let Some(entry) = self.checks.get_mut(&id) {
                let c = &mut entry.checker;
                if c.in_flight.is_none() && c.next == t {
                    c.start(now);
                    out.push((CheckId(id), c.spec.probe.clone()));
                }
            }
        }
        out
    }

    /// The result of check `id`'s probe. Results of checks that no longer exist, or that
    /// have no probe in flight, are ignored.
    pub fn result(&mut self, now: Millis, id: CheckId, outcome: Outcome) -> Vec<Event> {
        let Some(entry) = self.checks.get_mut(&id.0) else {
            return Vec::new();
        };
        if entry.checker.in_flight.is_none() {
            return Vec::new();
        }
        let change = entry.checker.result(now, outcome);
        self.timers.insert((entry.checker.next, id.0));
        if change == Change::None {
            return Vec::new();
        }
        let servers = entry.servers.clone();
        let mut events: Vec<Event> = servers
            .iter()
            .map(|&s| self.server_event(s, change))
            .collect();
        let mut vss: Vec<usize> = servers.iter().map(|&s| self.servers[s].plan.vs).collect();
        vss.dedup();
        events.extend(vss.into_iter().filter_map(|v| self.update_quorum(v, false)));
        events
    }

    /// When [`Engine::due`] next has something (or may: stale timers wake it for nothing).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.first().map(|&(t, _)| t)
    }

    /// Every server, checked or not, in configuration order.
    pub fn snapshot(&self) -> Vec<ServerState> {
        self.servers
            .iter()
            .map(|s| match s.check.and_then(|id| self.checks.get(&id)) {
                Some(e) => ServerState {
                    rs: s.plan.key,
                    up: e.checker.up,
                    weight: e.checker.weight.filter(|_| e.checker.up),
                    since: e.checker.since,
                    last_error: e.checker.last_error.clone(),
                    checker: Some(e.checker.spec.kind.name()),
                    inhibit: s.plan.inhibit,
                },
                None => ServerState {
                    rs: s.plan.key,
                    up: true,
                    weight: None,
                    since: self.started,
                    last_error: None,
                    checker: None,
                    inhibit: s.plan.inhibit,
                },
            })
            .collect()
    }

    /// Every virtual server and whether it has its quorum.
    pub fn quorum_snapshot(&self) -> Vec<(VsKey, bool)> {
        self.vss.iter().map(|v| (v.plan.key, v.quorum.up)).collect()
    }

    /// A reload. Checks whose key and settings did not change keep their state, timers and
    /// probe in flight. A changed check of a server that was up starts up; of a server that
    /// was down, it follows alpha (without alpha keepalived brings it up). New servers
    /// follow alpha; removed servers that were up get a [`REMOVED`] event with their
    /// `notify_down`. Quorums are carried over by virtual server and re-evaluated.
    pub fn reconfigure(&mut self, cfg: &kaconf::Config, now: Millis) -> Vec<Event> {
        let plan = Plan::new(cfg);
        let subs = subscribers(&plan);
        let old_up: HashMap<RsKey, bool> = (0..self.servers.len())
            .map(|s| (self.servers[s].plan.key, self.server_up(s)))
            .collect();
        let mut old_checks: HashMap<CheckKey, u32> = self
            .checks
            .iter()
            .map(|(id, e)| (e.key.clone(), *id))
            .collect();
        let mut kept = BTreeMap::new();
        let mut fresh = Vec::new();
        let mut ids = Vec::with_capacity(plan.checks.len());
        for ((key, spec), subs) in plan.checks.into_iter().zip(&subs) {
            if let Some(id) = old_checks.remove(&key) {
                if let Some(entry) = self.checks.remove(&id) {
                    if entry.checker.spec == spec {
                        kept.insert(id, entry);
                        ids.push(id);
                        continue;
                    }
                }
            }
            let was_up = subs
                .iter()
                .any(|&s| old_up.get(&plan.servers[s].key) == Some(&true));
            fresh.push((key, spec, if was_up { Prior::Up } else { Prior::Unknown }));
            ids.push(u32::MAX);
        }
        let removed: Vec<Server> = std::mem::take(&mut self.servers)
            .into_iter()
            .filter(|s| !plan.servers.iter().any(|n| n.key == s.plan.key))
            .collect();
        let mut events = Vec::new();
        for s in removed {
            if let Some(true) = old_up.get(&s.plan.key) {
                events.push(Event::Server {
                    rs: s.plan.key,
                    up: false,
                    weight: None,
                    inhibit: s.plan.inhibit,
                    reason: REMOVED.into(),
                    notify: s.plan.notify_down.clone(),
                });
            }
        }
        self.checks = kept;
        let mut fresh = fresh.into_iter();
        for id in ids.iter_mut().filter(|id| **id == u32::MAX) {
            if let Some((key, spec, prior)) = fresh.next() {
                *id = self.add_check(key, spec, now, prior);
            }
        }
        self.install_servers(plan.servers, &ids);
        for s in 0..self.servers.len() {
            let up = self.server_up(s);
            let p = &self.servers[s].plan;
            let event = |reason: &str, notify: Option<String>| Event::Server {
                rs: p.key,
                up,
                weight: None,
                inhibit: p.inhibit,
                reason: reason.into(),
                notify,
            };
            match old_up.get(&p.key) {
                Some(&was) if was != up => events.push(event(
                    "up after reload (no failed check)",
                    p.notify_up.clone(),
                )),
                None if !up => events.push(event("alpha: down until a check passes", None)),
                _ => {}
            }
        }
        let mut old_quorum: HashMap<VsKey, Quorum> =
            self.vss.drain(..).map(|v| (v.plan.key, v.quorum)).collect();
        for v in plan.vss {
            let quorum = old_quorum.remove(&v.key).unwrap_or_else(|| {
                Quorum::start(self.alive_weight(&v.servers), v.quorum, v.hysteresis)
            });
            self.vss.push(Vs { plan: v, quorum });
            let i = self.vss.len() - 1;
            events.extend(self.update_quorum(i, true));
        }
        events
    }

    /// What keepalived does when it stops: for virtual servers with `omega`, each server
    /// that is up gets its `notify_down` (reason [`SHUTTING_DOWN`]). keepalived runs
    /// `quorum_down` at stop only with `lvs_flush_on_stop`, which is not modelled. For the
    /// shell to run when the director itself stops, not when only the slowpath restarts.
    pub fn shutdown(&mut self, _now: Millis) -> Vec<Event> {
        let mut events = Vec::new();
        for v in &self.vss {
            if !v.plan.omega {
                continue;
            }
            for &s in &v.plan.servers {
                if self.server_up(s) {
                    let p = &self.servers[s].plan;
                    events.push(Event::Server {
                        rs: p.key,
                        up: false,
                        weight: None,
                        inhibit: p.inhibit,
                        reason: SHUTTING_DOWN.into(),
                        notify: p.notify_down.clone(),
                    });
                }
            }
        }
        events
    }

    fn add_check(&mut self, key: CheckKey, spec: CheckSpec, now: Millis, prior: Prior) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let first = now.saturating_add(self.rng.up_to(spec.timing.warmup));
        self.timers.insert((first, id));
        let checker = Checker::new(spec, now, first, prior);
        self.checks.insert(
            id,
            Entry {
                key,
                checker,
                servers: Vec::new(),
            },
        );
        id
    }

    /// Replaces the servers; `ids[i]` is the check id of the plan's check `i`.
    fn install_servers(&mut self, servers: Vec<ServerPlan>, ids: &[u32]) {
        self.servers = servers
            .into_iter()
            .map(|plan| Server {
                check: plan.check.and_then(|i| ids.get(i).copied()),
                plan,
            })
            .collect();
        for e in self.checks.values_mut() {
            e.servers.clear();
        }
        for (i, s) in self.servers.iter().enumerate() {
            if let Some(e) = s.check.and_then(|id| self.checks.get_mut(&id)) {
                e.servers.push(i);
            }
        }
    }

    fn server_up(&self, s: usize) -> bool {
        self.servers[s]
            .check
            .and_then(|id| self.checks.get(&id))
            .is_none_or(|e| e.checker.up)
    }

    /// Sum of the weights of the alive servers among `servers`.
    fn alive_weight(&self, servers: &[usize]) -> u64 {
        servers
            .iter()
            .map(|&s| {
                let srv = &self.servers[s];
                match srv.check.and_then(|id| self.checks.get(&id)) {
                    Some(e) if !e.checker.up => 0,
                    Some(e) => u64::from(e.checker.weight.unwrap_or(srv.plan.weight)),
                    None => u64::from(srv.plan.weight),
                }
            })
            .sum()
    }

    fn update_quorum(&mut self, v: usize, init: bool) -> Option<Event> {
        let sum = self.alive_weight(&self.vss[v].plan.servers);
        let vs = &mut self.vss[v];
        let p = &vs.plan;
        let up = vs
            .quorum
            .update(sum, p.quorum, p.hysteresis, p.has_sorry_server, init)?;
        Some(Event::Quorum {
            vs: p.key,
            up,
            command: if up {
                p.quorum_up.clone()
            } else {
                p.quorum_down.clone()
            },
        })
    }

    fn server_event(&self, s: usize, change: Change) -> Event {
        let srv = &self.servers[s];
        let c = srv
            .check
            .and_then(|id| self.checks.get(&id))
            .map(|e| &e.checker);
        let kind = c.map_or("check", |c| c.spec.kind.name());
        let weight = c.and_then(|c| c.weight);
        let (up, reason, notify) = match change {
            Change::Up => (true, format!("{kind} passed"), srv.plan.notify_up.clone()),
            Change::Weight => (
                true,
                match weight {
                    Some(w) => format!("{kind}: misc_dynamic weight {w}"),
                    None => format!("{kind}: configured weight"),
                },
                None,
            ),
            Change::Down | Change::ConfirmedDown | Change::None => (
                false,
                c.and_then(|c| c.last_error.clone())
                    .unwrap_or_else(|| format!("{kind} failed")),
                srv.plan.notify_down.clone(),
            ),
        };
        Event::Server {
            rs: srv.plan.key,
            up,
            weight: weight.filter(|_| up),
            inhibit: srv.plan.inhibit,
            reason,
            notify,
        }
    }
}

/// For each check of `plan`, the servers it drives.
fn subscribers(plan: &Plan) -> Vec<Vec<usize>> {
    let mut subs = vec![Vec::new(); plan.checks.len()];
    for (i, s) in plan.servers.iter().enumerate() {
        if let Some(c) = s.check {
            subs[c].push(i);
        }
    }
    subs
}

/// One prior for a check shared by several servers: up if lbd shows any up, else down if
/// it shows any down.
fn combine(priors: impl Iterator<Item = Prior>) -> Prior {
    priors.fold(Prior::Unknown, |acc, p| match (acc, p) {
        (Prior::Up, _) | (_, Prior::Up) => Prior::Up,
        (Prior::Down, _) | (_, Prior::Down) => Prior::Down,
        _ => Prior::Unknown,
    })
}
