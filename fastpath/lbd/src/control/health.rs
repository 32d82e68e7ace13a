//! Real-server health and service quorum: state that lb-slowpath feeds in (`SetHealth`), kept
//! apart from the configuration. A real server with a health check (and no `checker_off`) is
//! "checked": it is up or down, starting down under a virtual server with `alpha` (keepalived's
//! rule) and up otherwise. Every other server is "unchecked": always up, and not settable.
//!
//! The state survives configuration changes for servers that still exist and is dropped for
//! the others ([`Health::sync`]). What the fast path sees of it is [`Health::fastpath`]: whether
//! a server takes new connections and with which weight.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use kaconf::{RealServer, VirtualServer};

use super::{key_text, vs_key, Control, ControlError, VsKey};

/// A real server of a service: service key, address, port.
pub type RsKey = (VsKey, Ipv4Addr, u16);

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What lbd was last told about one checked real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsHealth {
    pub up: bool,
    /// When it last went up or down (wall clock, Unix ms).
    pub since_ms: i64,
    /// Why the last check failed (empty when it passed).
    pub last_error: String,
    /// The checker kind ("TCP_CHECK", "HTTP_GET", "MISC_CHECK", ...).
    pub checker: String,
    /// Down shows weight 0 instead of disappearing (inhibit_on_failure).
    pub inhibit: bool,
    /// MISC_CHECK misc_dynamic: overrides the configured weight while set.
    pub weight: Option<u32>,
    /// Who said so last ("lb-slowpath"; "alpha" or "start" before anyone did).
    pub source: String,
}

/// A service's quorum as the slowpath reports it (up unless told otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    pub up: bool,
    pub since_ms: i64,
}

/// How a real server stands, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No health check: always up.
    Unchecked,
    Up,
    Down,
}

/// One real server as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsView {
    pub status: Status,
    pub since_ms: i64,
    pub last_error: String,
    pub checker: String,
    /// Down, but shown with weight 0 (inhibit_on_failure).
    pub inhibited: bool,
    /// The weight new connections see (0 when it takes none).
    pub effective_weight: u32,
    /// Who set it last ("lb-slowpath", or lbd's own "start"/"alpha" default).
    pub source: String,
}

/// Whether `rs` has a health check lbd takes verdicts for.
pub fn checked(vs: &VirtualServer, rs: &RealServer) -> bool {
    rs.check.is_some() && !vs.checker_off
}

/// The state a checked server starts in: down under `alpha`, up otherwise.
pub fn initial(vs: &VirtualServer, rs: &RealServer, now_ms: i64) -> RsHealth {
    let alpha = vs.alpha || rs.check.as_ref().is_some_and(|c| c.common().alpha);
    RsHealth {
        up: !alpha,
        since_ms: now_ms,
        last_error: if alpha { "alpha: down until a check passes".into() } else { String::new() },
        checker: rs.check.as_ref().map(|c| c.keyword().to_owned()).unwrap_or_default(),
        inhibit: rs.inhibit_on_failure,
        weight: None,
        source: if alpha { "alpha".into() } else { "start".into() },
    }
}

/// Health of every checked real server and quorum of every service that lost it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub servers: HashMap<RsKey, RsHealth>,
    pub quorum: HashMap<VsKey, Quorum>,
}

impl Health {
    /// Lines the state up with `conf`: servers that are still there and checked keep theirs,
    /// new checked servers start as [`initial`] says, everything else is dropped.
    pub fn sync(&mut self, conf: &kaconf::Config, now_ms: i64) {
        let mut servers = HashMap::new();
        let mut quorum = HashMap::new();
        for vs in &conf.virtual_servers {
            let k = vs_key(vs);
            if let Some(q) = self.quorum.remove(&k) {
                quorum.insert(k, q);
            }
            for rs in vs.real_servers.iter().filter(|r| checked(vs, r)) {
                let rk = (k, rs.ip, rs.port);
                let h = self.servers.remove(&rk).unwrap_or_else(|| initial(vs, rs, now_ms));
                servers.insert(rk, h);
            }
        }
        self.servers = servers;
        self.quorum = quorum;
    }

    /// A checked server's state (its initial one when none is recorded).
    pub fn get(&self, vs: &VirtualServer, rs: &RealServer) -> Option<RsHealth> {
        checked(vs, rs).then(|| self.servers.get(&(vs_key(vs), rs.ip, rs.port)).cloned().unwrap_or_else(|| initial(vs, rs, 0)))
    }

    /// Whether the service lost its quorum and has a sorry server to send clients to instead
    /// (without one, a lost quorum changes nothing: keepalived's behaviour).
    pub fn sorry_only(&self, vs: &VirtualServer) -> bool {
        vs.sorry_server.is_some() && self.quorum.get(&vs_key(vs)).is_some_and(|q| !q.up)
    }

    /// Whether the service has its quorum.
    pub fn quorum_up(&self, vs: &VirtualServer) -> bool {
        self.quorum.get(&vs_key(vs)).is_none_or(|q| q.up)
    }

    /// What the fast path gets for `rs`: (takes new connections, weight).
    pub fn fastpath(&self, vs: &VirtualServer, rs: &RealServer) -> (bool, u32) {
        let (up, weight) = match self.get(vs, rs) {
            None => (true, rs.weight),
            Some(h) => (h.up, h.weight.unwrap_or(rs.weight)),
        };
        (up && !self.sorry_only(vs), weight)
    }

    /// `rs` as listings show it.
    pub fn view(&self, vs: &VirtualServer, rs: &RealServer) -> RsView {
        let (takes, weight) = self.fastpath(vs, rs);
        let effective_weight = if takes { weight } else { 0 };
        match self.get(vs, rs) {
            None => RsView { status: Status::Unchecked, since_ms: 0, last_error: String::new(), checker: String::new(), inhibited: false, effective_weight, source: String::new() },
            Some(h) => RsView {
                status: if h.up { Status::Up } else { Status::Down },
                since_ms: h.since_ms,
                inhibited: !h.up && (h.inhibit || rs.inhibit_on_failure),
                last_error: h.last_error,
                checker: h.checker,
                effective_weight,
                source: h.source,
            },
        }
    }
}

/// One server's verdict in a `SetHealth` batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthUpdate {
    pub service: VsKey,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub up: bool,
    /// "TCP_CHECK", ...; empty keeps what is known.
    pub checker: String,
    /// Why the check failed (kept as the last error when down).
    pub reason: String,
    /// misc_dynamic weight; `None` clears it.
    pub weight: Option<u32>,
    pub inhibit: bool,
}

/// One service's quorum in a `SetHealth` batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumUpdate {
    pub service: VsKey,
    pub up: bool,
}

/// What a `SetHealth` batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthOutcome {
    /// The published generation (unchanged when the fast path saw no difference).
    pub generation: u64,
    /// Servers and services whose state changed (up/down, weight, inhibit, quorum).
    pub changed: u32,
    /// Updates naming no configured (or no checked) server or service.
    pub unknown: Vec<String>,
}

impl Control {
    /// Applies a batch of health verdicts and quorum states (from lb-slowpath): all of it or,
    /// when a value is invalid, none of it. Updates naming servers that are not configured or
    /// have no health check are listed in `unknown`. A new snapshot is published only when
    /// the fast path would see a difference; the other services keep their compiled tables.
    pub fn set_health(&self, servers: &[HealthUpdate], quorum: &[QuorumUpdate], source: &str) -> Result<HealthOutcome, ControlError> {
        for (i, u) in servers.iter().enumerate() {
            if u.port == 0 {
                return Err(ControlError::invalid(format!("servers[{i}].port"), "0 is not a valid port"));
            }
            if let Some(w) = u.weight.filter(|w| *w > 65535) {
                return Err(ControlError::invalid(format!("servers[{i}].weight"), format!("{w} is out of range 0..=65535")));
            }
        }
        let mut run = self.lock();
        let mut health = run.health.clone();
        let now = now_unix_ms();
        let source = if source.is_empty() { "api" } else { source };
        let mut out = HealthOutcome::default();
        let mut log = Vec::new();
        for u in servers {
            let name = format!("{} rs {}:{}", key_text(u.service), u.addr, u.port);
            let vs = run.conf.virtual_servers.iter().find(|v| vs_key(v) == u.service);
            let Some((vs, rs)) = vs.and_then(|v| v.real_servers.iter().find(|r| r.ip == u.addr && r.port == u.port).map(|r| (v, r))) else {
                out.unknown.push(name);
                continue;
            };
            if !checked(vs, rs) {
                out.unknown.push(format!("{name} (no health check: always up)"));
                continue;
            }
            let h = health.servers.entry((u.service, u.addr, u.port)).or_insert_with(|| initial(vs, rs, now));
            let before = (h.up, h.weight, h.inhibit);
            if h.up != u.up {
                h.since_ms = now;
                let why = if u.up || u.reason.is_empty() { String::new() } else { format!(" ({})", u.reason) };
                log.push(format!("health: {name} {}{why} [{source}]", if u.up { "up" } else { "down" }));
            }
            h.up = u.up;
            h.weight = u.weight;
            h.inhibit = u.inhibit;
            if !u.checker.is_empty() {
                h.checker.clone_from(&u.checker);
            }
            if u.up {
                h.last_error.clear();
            } else if !u.reason.is_empty() {
                h.last_error.clone_from(&u.reason);
            }
            h.source = source.to_owned();
            if before != (h.up, h.weight, h.inhibit) {
                out.changed += 1;
            }
        }
        for q in quorum {
            if !run.conf.virtual_servers.iter().any(|v| vs_key(v) == q.service) {
                out.unknown.push(format!("{} (quorum)", key_text(q.service)));
                continue;
            }
            let cur = health.quorum.get(&q.service).is_none_or(|x| x.up);
            if cur != q.up {
                out.changed += 1;
                log.push(format!("health: {} quorum {} [{source}]", key_text(q.service), if q.up { "up" } else { "lost" }));
            }
            if q.up {
                health.quorum.remove(&q.service);
            } else if cur {
                health.quorum.insert(q.service, Quorum { up: false, since_ms: now });
            }
        }
        let conf = run.conf.clone();
        let change = self.publish(&mut run, &conf, &health)?;
        run.health = health;
        drop(run);
        for l in log {
            tracing::info!("{l}");
        }
        out.generation = change.generation;
        Ok(out)
    }

    /// The health state.
    pub fn health(&self) -> Health {
        self.lock().health.clone()
    }

    /// The running configuration with its health state and generation, read together.
    pub fn config_with_health(&self) -> (kaconf::Config, Health, u64) {
        let run = self.lock();
        (run.conf.clone(), run.health.clone(), run.generation)
    }
}
