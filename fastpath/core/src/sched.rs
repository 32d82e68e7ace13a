//! Schedulers that keep state: rr, wrr, lc, wlc, sed, nq, fo, ovf, lblc, lblcr (the hashing
//! ones use the service table's prebuilt tables). State is per worker lcore (no sharing, no
//! atomics); the active-connection counts the least-connection family reads are the worker's
//! own, as each worker balances its own share.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::service::{RealServer, Scheduler, Service};

/// Destinations an lblc/lblcr table remembers per service and worker (LVS's table holds
/// 16 × 1024 before it prunes). Past it, idle entries go; a new destination that still finds
/// no room is scheduled without being remembered, as LVS does when it cannot add an entry.
pub const LOCALITY_MAX: usize = 16 * 1024;
/// An entry idle this long is pruned when the table is full (LVS's `ENTRY_TIMEOUT`).
const LOCALITY_IDLE_MS: u64 = 6 * 60 * 1000;
/// An lblcr set unchanged this long loses its busiest member (LVS's `lblcr_expiration`).
const LBLCR_SHRINK_MS: u64 = 24 * 3600 * 1000;

/// What lblc (one server) or lblcr (a set) remembers for a destination address. Servers are
/// kept by address, since indexes change with the configuration.
#[derive(Debug, Clone)]
struct Locality {
    servers: Vec<(Ipv4Addr, u16)>,
    last_use_ms: u64,
    last_change_ms: u64,
}

/// One worker's scheduling state for one service.
#[derive(Debug, Clone, Default)]
pub struct SchedState {
    /// rr/wrr position.
    next: usize,
    /// wrr current weight.
    cw: u32,
    /// Active connections this worker has on each real server (index as in the service).
    pub conns: Vec<u32>,
    /// lblc / lblcr: destination address → its server(s).
    locality: HashMap<Ipv4Addr, Locality, ahash::RandomState>,
}

/// The weight a scheduler sees: 0 for quiesced or unhealthy servers.
#[inline]
fn eff(r: &RealServer) -> u32 {
    if r.available() {
        r.weight
    } else {
        0
    }
}

/// fo / ovf: the heaviest available server that `fits` (the first of equal weights).
fn heaviest(rs: &[RealServer], fits: impl Fn(usize) -> bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for i in (0..rs.len()).filter(|i| eff(&rs[*i]) > 0 && fits(*i)) {
        if best.is_none_or(|b| eff(&rs[i]) > eff(&rs[b])) {
            best = Some(i);
        }
    }
    best
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl SchedState {
    /// Picks a real server index for a new connection to `dst` at `now_ms`; `None` if none is
    /// available. The hashing schedulers are handled by the service table's prebuilt tables
    /// instead.
    pub fn pick(&mut self, svc: &Service, dst: Ipv4Addr, now_ms: u64) -> Option<usize> {
        let rs = &svc.real_servers;
        if self.conns.len() != rs.len() {
            self.conns.resize(rs.len(), 0);
        }
        if rs.iter().all(|r| eff(r) == 0) {
            return None;
        }
        match svc.sched {
            Scheduler::Rr => self.rr(rs),
            Scheduler::Wrr => self.wrr(rs),
            Scheduler::Lc => self.least(rs, false),
            Scheduler::Wlc => self.least(rs, true),
            Scheduler::Sed => self.sed(rs, false),
            Scheduler::Nq => self.sed(rs, true),
            Scheduler::Fo => heaviest(rs, |_| true),
            Scheduler::Ovf => heaviest(rs, |i| u64::from(self.conns[i]) < u64::from(eff(&rs[i]))),
            Scheduler::Lblc => self.lblc(rs, dst, now_ms, false),
            Scheduler::Lblcr => self.lblc(rs, dst, now_ms, true),
            Scheduler::Sh | Scheduler::Dh | Scheduler::Consh | Scheduler::Mh => None,
        }
    }

    /// Shortest expected delay: fewest (active + 1) per unit of weight; with `never_queue`
    /// (nq), an idle server before any other.
    fn sed(&self, rs: &[RealServer], never_queue: bool) -> Option<usize> {
        if never_queue {
            if let Some(i) = (0..rs.len()).find(|i| eff(&rs[*i]) > 0 && self.conns[*i] == 0) {
                return Some(i);
            }
        }
        let mut best: Option<usize> = None;
        for i in (0..rs.len()).filter(|i| eff(&rs[*i]) > 0) {
            let better = best.is_none_or(|b| (u64::from(self.conns[i]) + 1) * u64::from(eff(&rs[b])) < (u64::from(self.conns[b]) + 1) * u64::from(eff(&rs[i])));
            if better {
                best = Some(i);
            }
        }
        best
    }

    /// LVS's `is_overloaded` for lblc/lblcr: more active connections than its weight while
    /// some other server is under half of its own.
    fn overloaded(&self, rs: &[RealServer], i: usize) -> bool {
        u64::from(self.conns[i]) > u64::from(eff(&rs[i])) && (0..rs.len()).any(|j| u64::from(self.conns[j]) * 2 < u64::from(eff(&rs[j])))
    }

    /// lblc: the destination's server while it is available and not overloaded, else the
    /// weighted least-connection choice, remembered. lblcr: the least loaded of the
    /// destination's set; an overloaded or empty set gains the weighted least-connection
    /// choice, and a set unchanged for a day loses its busiest member.
    fn lblc(&mut self, rs: &[RealServer], dst: Ipv4Addr, now_ms: u64, replicated: bool) -> Option<usize> {
        let index = |a: &(Ipv4Addr, u16)| rs.iter().position(|r| (r.addr, r.port) == *a).filter(|i| eff(&rs[*i]) > 0);
        if let Some(mut e) = self.locality.remove(&dst) {
            e.last_use_ms = now_ms;
            let mut members: Vec<usize> = e.servers.iter().filter_map(index).collect();
            if replicated && members.len() > 1 && now_ms.saturating_sub(e.last_change_ms) > LBLCR_SHRINK_MS {
                if let Some(busiest) = self.ratio_pick(rs, &members, false) {
                    members.retain(|m| *m != busiest);
                    e.servers.retain(|a| *a != (rs[busiest].addr, rs[busiest].port));
                    e.last_change_ms = now_ms;
                }
            }
            let current = self.ratio_pick(rs, &members, true);
            if let Some(i) = current.filter(|i| !self.overloaded(rs, *i)) {
                self.locality.insert(dst, e);
                return Some(i);
            }
            let chosen = self.least(rs, true);
            if let Some(i) = chosen {
                let a = (rs[i].addr, rs[i].port);
                if !replicated {
                    e.servers.clear();
                }
                if !e.servers.contains(&a) {
                    e.servers.push(a);
                    e.last_change_ms = now_ms;
                }
                self.locality.insert(dst, e);
            }
            return chosen;
        }
        let chosen = self.least(rs, true)?;
        if self.locality.len() >= LOCALITY_MAX {
            self.locality.retain(|_, e| now_ms.saturating_sub(e.last_use_ms) < LOCALITY_IDLE_MS);
        }
        if self.locality.len() < LOCALITY_MAX {
            let servers = vec![(rs[chosen].addr, rs[chosen].port)];
            self.locality.insert(dst, Locality { servers, last_use_ms: now_ms, last_change_ms: now_ms });
        }
        Some(chosen)
    }

    /// Among `members`, the fewest (`least`) or most active connections per unit of weight.
    fn ratio_pick(&self, rs: &[RealServer], members: &[usize], least: bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for &i in members {
            let better = best.is_none_or(|b| {
                let (lhs, rhs) = (u64::from(self.conns[i]) * u64::from(eff(&rs[b])), u64::from(self.conns[b]) * u64::from(eff(&rs[i])));
                if least {
                    lhs < rhs
                } else {
                    lhs > rhs
                }
            });
            if better {
                best = Some(i);
            }
        }
        best
    }

    /// Destinations lblc/lblcr remember (bounded by [`LOCALITY_MAX`]).
    pub fn locality_len(&self) -> usize {
        self.locality.len()
    }

    fn rr(&mut self, rs: &[RealServer]) -> Option<usize> {
        for _ in 0..rs.len() {
            let i = self.next % rs.len();
            self.next = (i + 1) % rs.len();
            if eff(&rs[i]) > 0 {
                return Some(i);
            }
        }
        None
    }

    /// LVS interleaved weighted round robin: walk the list, lowering the current weight by the
    /// weights' gcd each lap; pick servers whose weight reaches it.
    fn wrr(&mut self, rs: &[RealServer]) -> Option<usize> {
        let max = rs.iter().map(eff).max().unwrap_or(0);
        let g = rs.iter().map(eff).filter(|w| *w > 0).fold(0, gcd);
        if max == 0 || g == 0 {
            return None;
        }
        // Bounded: at most (max / g + 1) laps over the list.
        for _ in 0..rs.len() * (max / g + 1) as usize {
            let i = self.next % rs.len();
            self.next = (i + 1) % rs.len();
            if i == 0 {
                self.cw = if self.cw <= g { max } else { self.cw - g };
            }
            if eff(&rs[i]) >= self.cw && eff(&rs[i]) > 0 {
                return Some(i);
            }
        }
        None
    }

    fn least(&mut self, rs: &[RealServer], weighted: bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, r) in rs.iter().enumerate() {
            if eff(r) == 0 {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let (ci, cb) = (u64::from(self.conns[i]), u64::from(self.conns[b]));
                    let better = if weighted {
                        ci * u64::from(rs[b].weight) < cb * u64::from(r.weight)
                    } else {
                        ci < cb
                    };
                    if better {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        best
    }

    /// Records a connection to real server `i` opening.
    pub fn opened(&mut self, i: usize) {
        if let Some(c) = self.conns.get_mut(i) {
            *c += 1;
        }
    }

    /// Records a connection to real server `i` closing.
    pub fn closed(&mut self, i: usize) {
        if let Some(c) = self.conns.get_mut(i) {
            *c = c.saturating_sub(1);
        }
    }
}

#[cfg(test)]
#[path = "sched_tests.rs"]
mod tests;
