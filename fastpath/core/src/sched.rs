//! Schedulers: rr, wrr, lc, wlc. State is per worker lcore (no sharing, no atomics); the
//! connection counts lc/wlc use are the worker's own, as each worker balances its own share.

use crate::service::{RealServer, Scheduler, Service};

/// One worker's scheduling state for one service.
#[derive(Debug, Clone, Default)]
pub struct SchedState {
    /// rr/wrr position.
    next: usize,
    /// wrr current weight.
    cw: u32,
    /// Active connections this worker has on each real server (index as in the service).
    pub conns: Vec<u32>,
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

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl SchedState {
    /// Picks a real server index for a new connection; `None` if none is available. The
    /// hashing schedulers are handled by the service table's prebuilt tables instead.
    pub fn pick(&mut self, svc: &Service) -> Option<usize> {
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
            Scheduler::Sh | Scheduler::Dh | Scheduler::Consh | Scheduler::Mh => None,
        }
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
mod tests {
    use super::*;
    use crate::flow::L4Proto;
    use crate::service::{ForwardMode, ServiceKey};
    use std::net::Ipv4Addr;

    fn svc(sched: Scheduler, weights: &[u32]) -> Service {
        Service {
            real_servers: weights.iter().enumerate().map(|(i, w)| RealServer::new(Ipv4Addr::new(10, 0, 0, 1 + i as u8), 80, *w)).collect(),
            laddrs: vec![Ipv4Addr::new(10, 0, 0, 200)],
            ..Service::new(ServiceKey { vip: Ipv4Addr::new(1, 1, 1, 1), port: 80, proto: L4Proto::Tcp }, sched, ForwardMode::Fnat)
        }
    }

    fn picks(s: &Service, n: usize) -> Vec<usize> {
        let mut st = SchedState::default();
        (0..n).map(|_| st.pick(s).unwrap()).collect()
    }

    #[test]
    fn rr_cycles_and_skips_weight_zero() {
        assert_eq!(picks(&svc(Scheduler::Rr, &[1, 1, 1]), 6), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(picks(&svc(Scheduler::Rr, &[1, 0, 5]), 4), vec![0, 2, 0, 2]);
        assert_eq!(SchedState::default().pick(&svc(Scheduler::Rr, &[0, 0])), None);
    }

    #[test]
    fn wrr_distributes_by_weight_interleaved() {
        let p = picks(&svc(Scheduler::Wrr, &[4, 3, 2]), 9);
        let count = |i| p.iter().filter(|x| **x == i).count();
        assert_eq!((count(0), count(1), count(2)), (4, 3, 2));
        // LVS interleaving: the heaviest first, not all its picks in a row.
        assert_eq!(p, vec![0, 0, 1, 0, 1, 2, 0, 1, 2]);
        let p = picks(&svc(Scheduler::Wrr, &[100, 0, 50]), 300);
        assert_eq!(p.iter().filter(|x| **x == 0).count(), 200);
        assert_eq!(p.iter().filter(|x| **x == 1).count(), 0);
    }

    #[test]
    fn lc_and_wlc_follow_connection_counts() {
        let s = svc(Scheduler::Lc, &[1, 1, 1]);
        let mut st = SchedState::default();
        let a = st.pick(&s).unwrap();
        st.opened(a);
        let b = st.pick(&s).unwrap();
        assert_ne!(a, b);
        st.opened(b);
        let c = st.pick(&s).unwrap();
        assert!(c != a && c != b);
        st.opened(c);
        st.closed(b);
        assert_eq!(st.pick(&s), Some(b));

        let s = svc(Scheduler::Wlc, &[3, 1]);
        let mut st = SchedState::default();
        let mut n = [0; 2];
        for _ in 0..40 {
            let i = st.pick(&s).unwrap();
            st.opened(i);
            n[i] += 1;
        }
        assert_eq!(n, [30, 10]);
    }
}
