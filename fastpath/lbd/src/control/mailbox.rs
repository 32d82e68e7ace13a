//! Per-worker mailboxes: the control side asks for what only a worker can read or change (its
//! sessions, its session timeouts, its counters). A worker pops at most one request per
//! poll-loop pass (one atomic load when empty) and answers on the request's own channel
//! without blocking; the control side waits a bounded time for every worker's answer.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use fastpath::session::{ConnState, Session, Timeouts};
use fastpath::service::ServiceTable;
use fastpath::wire::lvsync::SyncConn;
use fastpath::{Counters, L4Proto, WorkerState};

/// Requests waiting per worker; more are refused (the control side reports the worker busy).
const DEPTH: usize = 16;

/// Which sessions a listing wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub proto: Option<L4Proto>,
    pub vip: Option<Ipv4Addr>,
    /// 0: any port.
    pub vport: u16,
    pub client: Option<Ipv4Addr>,
    pub rs: Option<Ipv4Addr>,
    pub state: Option<ConnState>,
}

impl SessionFilter {
    fn matches(&self, s: &Session) -> bool {
        /// A filter that is not set matches everything.
        fn is<T: PartialEq>(want: Option<T>, got: T) -> bool {
            match want {
                None => true,
                Some(w) => w == got,
            }
        }
        is(self.proto, s.proto)
            && is(self.vip, s.vip.0)
            && (self.vport == 0 || self.vport == s.vip.1)
            && is(self.client, s.client.0)
            && is(self.rs, s.rs.0)
            && is(self.state, s.state)
    }
}

/// One session as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub worker: u16,
    pub proto: L4Proto,
    pub client: (Ipv4Addr, u16),
    pub vip: (Ipv4Addr, u16),
    pub laddr: (Ipv4Addr, u16),
    pub rs: (Ipv4Addr, u16),
    pub state: ConnState,
    pub expires_in_s: u32,
    pub pkts_in: u64,
    pub pkts_out: u64,
}

/// A service and real server, by value, and its connection counts in one worker (kept by
/// the worker's session table as sessions come and go: reading them walks no sessions).
pub use fastpath::conncount::{CountKey as ConnKey, PairCount as ConnCount};

/// What the control side may ask a worker.
#[derive(Debug, Clone)]
pub enum Request {
    /// Sessions matching the filter, at most `limit`.
    Sessions { filter: SessionFilter, limit: usize },
    /// Connection counts per service and real server (one pass over the session table).
    ConnCounts,
    /// New timeouts for sessions from now on (existing ones keep their expiry until touched).
    SetTimeouts(Timeouts),
    /// Zero the worker's counters.
    ZeroCounters,
    /// Sync records of up to `max` live sessions from slab position `cursor` on (bulk sync).
    ExportSessions { cursor: u32, max: usize },
}

/// A worker's answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Sessions { sessions: Vec<SessionInfo>, matched: u64 },
    ConnCounts(HashMap<ConnKey, ConnCount>),
    /// A page of sync records and where the next page starts (`None`: the walk is done).
    Export { records: Vec<SyncConn>, next: Option<u32> },
    Done,
}

/// A request with the channel its answer goes to.
#[derive(Debug)]
pub struct Mail {
    pub req: Request,
    reply: SyncSender<(u16, Reply)>,
}

impl Mail {
    /// Sends the answer; never blocks (the channel has room for every worker's answer, and a
    /// caller that stopped waiting has dropped it).
    pub fn answer(self, worker: u16, reply: Reply) {
        let _ = self.reply.try_send((worker, reply));
    }
}

/// One worker's mailbox.
#[derive(Debug)]
pub struct Mailbox {
    queue: ArrayQueue<Mail>,
}

impl Default for Mailbox {
    fn default() -> Self {
        Mailbox { queue: ArrayQueue::new(DEPTH) }
    }
}

impl Mailbox {
    /// The next request, if any (the worker calls this once per pass).
    #[inline]
    pub fn pop(&self) -> Option<Mail> {
        crate::shared::pop_if_any(&self.queue)
    }
}

/// Why the workers could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("worker {0} has too many requests waiting")]
    Busy(usize),
    #[error("worker {worker} did not answer within {ms} ms")]
    Timeout { worker: usize, ms: u128 },
}

/// Sends `req` to every worker and collects their answers, in worker order, waiting at most
/// `timeout` in all.
pub fn ask_all(boxes: &[Mailbox], req: &Request, timeout: Duration) -> Result<Vec<Reply>, MailError> {
    let (tx, rx) = sync_channel::<(u16, Reply)>(boxes.len().max(1));
    for (w, b) in boxes.iter().enumerate() {
        b.queue.push(Mail { req: req.clone(), reply: tx.clone() }).map_err(|_| MailError::Busy(w))?;
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let mut replies: Vec<Option<Reply>> = boxes.iter().map(|_| None).collect();
    let mut got = 0;
    while got < boxes.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((w, r)) => {
                if let Some(slot) = replies.get_mut(usize::from(w)) {
                    if slot.replace(r).is_none() {
                        got += 1;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                let worker = replies.iter().position(Option::is_none).unwrap_or(0);
                return Err(MailError::Timeout { worker, ms: timeout.as_millis() });
            }
        }
    }
    Ok(replies.into_iter().map(|r| r.unwrap_or(Reply::Done)).collect())
}

/// Sends `req` to worker `worker` alone and waits at most `timeout` for its answer.
pub fn ask_one(boxes: &[Mailbox], worker: usize, req: Request, timeout: Duration) -> Result<Reply, MailError> {
    let b = boxes.get(worker).ok_or(MailError::Busy(worker))?;
    let (tx, rx) = sync_channel::<(u16, Reply)>(1);
    b.queue.push(Mail { req, reply: tx }).map_err(|_| MailError::Busy(worker))?;
    rx.recv_timeout(timeout).map(|(_, r)| r).map_err(|_| MailError::Timeout { worker, ms: timeout.as_millis() })
}

/// Serves one request on the worker (called from the poll loop; `now_ms` is the worker clock).
pub fn serve(worker: u16, state: &mut WorkerState, req: &Request, now_ms: u64, services: &ServiceTable) -> Reply {
    match req {
        Request::ExportSessions { cursor, max } => {
            let mut records = Vec::with_capacity((*max).min(4096));
            let next = state.export_page(*cursor, *max, now_ms, services, &mut records);
            Reply::Export { records, next }
        }
        Request::Sessions { filter, limit } => {
            let mut sessions = Vec::new();
            let mut matched = 0u64;
            for s in state.sessions.iter().filter(|s| filter.matches(s)) {
                matched += 1;
                if sessions.len() < *limit {
                    sessions.push(SessionInfo {
                        worker,
                        proto: s.proto,
                        client: s.client,
                        vip: s.vip,
                        laddr: s.laddr,
                        rs: s.rs,
                        state: s.state,
                        expires_in_s: fastpath::session::whole_s(s.expires_ms().saturating_sub(now_ms)),
                        pkts_in: u64::from(s.pkts_in),
                        pkts_out: u64::from(s.pkts_out),
                    });
                }
            }
            Reply::Sessions { sessions, matched }
        }
        Request::ConnCounts => {
            // One entry per (service, real server) pair this worker has seen, not per session,
            // with the templates that point at it.
            let mut m: HashMap<ConnKey, ConnCount> = state.sessions.counts.iter().map(|(k, c)| (*k, *c)).collect();
            for (k, n) in state.persist.per_server() {
                m.entry(*k).or_default().persistent = n;
            }
            Reply::ConnCounts(m)
        }
        Request::SetTimeouts(t) => {
            state.sessions.timeouts = *t;
            Reply::Done
        }
        Request::ZeroCounters => {
            state.counters = Counters::default();
            state.sessions.counts.zero();
            Reply::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::session::NewSession;
    use fastpath::wire::EthernetAddress;

    fn state() -> WorkerState {
        let mut st = WorkerState::new(0, 1, &ServiceTable::default(), 100, Timeouts::default());
        for i in 0..3u16 {
            let n = NewSession {
                proto: L4Proto::Tcp,
                mode: fastpath::service::ForwardMode::Fnat,
                shared: None,
                client: (Ipv4Addr::new(1, 1, 1, 1), 1000 + i),
                vip: (Ipv4Addr::new(2, 2, 2, 2), 80),
                laddr: (Ipv4Addr::new(3, 3, 3, 3), 5000 + i),
                rs: (Ipv4Addr::new(4, 4, 4, u8::try_from(i % 2).unwrap()), 80),
                svc: 0,
                rs_idx: 0,
                generation: 1,
                client_port: 0,
                client_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            };
            let id = st.sessions.insert(n, 1000).unwrap();
            if i == 0 {
                st.sessions.touch(id, ConnState::Established, 1000);
            }
        }
        st
    }

    #[test]
    fn sessions_are_filtered_and_limited() {
        let mut st = state();
        let f = SessionFilter { rs: Some(Ipv4Addr::new(4, 4, 4, 0)), ..Default::default() };
        let Reply::Sessions { sessions, matched } = serve(3, &mut st, &Request::Sessions { filter: f, limit: 1 }, 1000, &ServiceTable::default()) else { panic!() };
        assert_eq!(matched, 2);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].worker, 3);
        assert_eq!(sessions[0].expires_in_s, 900);
        let f = SessionFilter { state: Some(ConnState::SynRecv), vport: 81, ..Default::default() };
        let Reply::Sessions { matched, .. } = serve(0, &mut st, &Request::Sessions { filter: f, limit: 10 }, 1000, &ServiceTable::default()) else { panic!() };
        assert_eq!(matched, 0);
    }

    #[test]
    fn conn_counts_split_active_and_inactive() {
        let mut st = state();
        let Reply::ConnCounts(m) = serve(0, &mut st, &Request::ConnCounts, 1000, &ServiceTable::default()) else { panic!() };
        let k0 = (L4Proto::Tcp, (Ipv4Addr::new(2, 2, 2, 2), 80), (Ipv4Addr::new(4, 4, 4, 0), 80));
        assert_eq!(m[&k0], ConnCount { active: 1, inactive: 1, conns: 2, ..ConnCount::default() });
        // A session that ends keeps counting in the totals, no longer in active/inactive.
        let id = st.sessions.iter().position(|s| s.rs.0 == Ipv4Addr::new(4, 4, 4, 0)).and_then(|i| u32::try_from(i).ok()).unwrap();
        for _ in 0..3 {
            st.sessions.count_in(id, 100);
        }
        st.kill(id, None);
        let Reply::ConnCounts(m) = serve(0, &mut st, &Request::ConnCounts, 1000, &ServiceTable::default()) else { panic!() };
        assert_eq!(m[&k0].conns, 2);
        assert_eq!(m[&k0].active + m[&k0].inactive, 1);
        assert_eq!((m[&k0].pkts_in, m[&k0].bytes_in), (3, 300));
        st.counters.rx = 5;
        serve(0, &mut st, &Request::ZeroCounters, 0, &ServiceTable::default());
        assert_eq!(st.counters.rx, 0);
        let Reply::ConnCounts(m) = serve(0, &mut st, &Request::ConnCounts, 1000, &ServiceTable::default()) else { panic!() };
        assert_eq!((m[&k0].conns, m[&k0].pkts_in, m[&k0].active + m[&k0].inactive), (0, 0, 1), "zeroing keeps the live session counted");
        let t = Timeouts { udp: 7, ..Timeouts::default() };
        serve(0, &mut st, &Request::SetTimeouts(t), 0, &ServiceTable::default());
        assert_eq!(st.sessions.timeouts.udp, 7);
    }

    #[test]
    fn ask_all_collects_answers_and_times_out() {
        let boxes: Vec<Mailbox> = (0..2).map(|_| Mailbox::default()).collect();
        let boxes = std::sync::Arc::new(boxes);
        let b2 = std::sync::Arc::clone(&boxes);
        let t = std::thread::spawn(move || {
            let mut served = 0;
            while served < 2 {
                for (w, b) in b2.iter().enumerate() {
                    if let Some(m) = b.pop() {
                        m.answer(u16::try_from(w).unwrap(), Reply::Done);
                        served += 1;
                    }
                }
            }
        });
        let r = ask_all(&boxes, &Request::ZeroCounters, Duration::from_secs(5)).unwrap();
        assert_eq!(r.len(), 2);
        t.join().unwrap();
        let e = ask_all(&boxes, &Request::ZeroCounters, Duration::from_millis(20)).unwrap_err();
        assert_eq!(e, MailError::Timeout { worker: 0, ms: 20 });
    }
}
