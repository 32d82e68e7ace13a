//! Session sync, the data-plane half: which packets make a master send a session's state to its
//! backups (LVS's `sync_threshold` / `sync_period` / `sync_refresh_period`), the record it sends
//! (an LVS sync v1 connection entry, `wire::lvsync`, with our FNAT extension), and how a backup
//! installs one so that it can forward the connection when it becomes master.
//!
//! - A master's worker checks `needs_sync` after each packet of a session and appends the record
//!   to `WorkerState::sync_out` (bounded: `SYNC_OUT_MAX`, overflow is counted), which lbd's sync
//!   thread collects once per poll pass.
//! - A backup's sync thread sends each record to its home worker (`home_worker`): for FNAT the
//!   worker that owns the local port here (the real server's replies are steered by it, and the
//!   two directors may run different worker counts), otherwise one chosen by the client tuple.
//!   `adopt` installs or updates the session there, reserves its local port, and lists it in
//!   `Owners::synced` so that client packets reaching another worker are handed to it.

use crate::low32;
use crate::flow::{FlowKey, L4Proto};
use crate::laddr::{owner_of, ReserveError};
use crate::persist::{PersistTable, TemplateKey};
use crate::worker::{Ctx, WorkerState};
use crate::service::{ForwardMode, ServiceKey};
use crate::session::{ConnState, NewSession, Session};
use crate::wire::lvsync::{flags, tcp_state, FnatOption, Seq, SeqOption, SyncConn};
use crate::wire::EthernetAddress;

/// Records a worker keeps for the sync thread between two collections; more are counted
/// (`sync_queue_full`) and not sent.
pub const SYNC_OUT_MAX: usize = 4096;

/// Longest remaining time a synced session is given, in seconds, whatever a record says.
pub const MAX_SYNCED_TIMEOUT_S: u32 = 24 * 3600;

/// When a master syncs a session (LVS's sysctls of the same names). Defaults as LVS:
/// threshold 3, period 50, no refresh period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncParams {
    /// `sync_threshold`'s first value: the client packet count that triggers a sync.
    pub threshold: u32,
    /// `sync_threshold`'s second value: with a period, a session syncs again every `period`
    /// client packets (when `pkts % period == threshold`); 0 syncs once, at `threshold`.
    pub period: u32,
    /// `sync_refresh_period` in milliseconds: when set, a session in an unchanged state syncs
    /// at most once per period (and, with `period` 0, on any client packet after it).
    pub refresh_period_ms: u64,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams { threshold: 3, period: 50, refresh_period_ms: 0 }
    }
}

/// Whether a session should be synced after a packet that left it as it is now.
/// State changes of TCP sessions into ESTABLISHED, FIN_WAIT or CLOSE always sync (from either
/// side); other packets sync by the client-packet count (`from_client` only) and the refresh
/// period. SYN_RECV sessions are never synced, as in LVS.
pub fn needs_sync(p: &SyncParams, s: &Session, from_client: bool, now_ms: u64) -> bool {
    if s.proto == L4Proto::Tcp {
        if !matches!(s.state, ConnState::Established | ConnState::FinWait | ConnState::Close) {
            return false;
        }
        if s.synced_state != Some(s.state) {
            return true;
        }
    }
    if !from_client {
        return false;
    }
    if p.refresh_period_ms > 0 && s.synced_state.is_some() && u64::from(low32(now_ms).wrapping_sub(s.synced_ms)) < p.refresh_period_ms {
        return false;
    }
    let pkts = s.pkts_in;
    // A count-triggered sync right after another one (the state change into ESTABLISHED is
    // usually the packet before the threshold's third) would carry nothing new: skipped.
    if s.synced_state.is_some() && pkts.wrapping_sub(s.synced_pkts) < p.threshold.max(1) {
        return false;
    }
    if p.period > 0 {
        pkts % p.period == p.threshold
    } else {
        p.refresh_period_ms > 0 || pkts == p.threshold
    }
}

/// The LVS state number of a session state.
pub fn lvs_state(s: ConnState) -> u16 {
    match s {
        ConnState::SynRecv => tcp_state::SYN_RECV,
        ConnState::Established => tcp_state::ESTABLISHED,
        ConnState::FinWait => tcp_state::FIN_WAIT,
        ConnState::Close => tcp_state::CLOSE,
        ConnState::Udp => 0,
    }
}

/// A session state from an LVS state number (TCP), `None` for states this director does not
/// keep. LVS's TIME_WAIT, CLOSE_WAIT and LAST_ACK are closing states: FIN_WAIT here.
fn conn_state(proto: L4Proto, state: u16) -> Option<ConnState> {
    if proto == L4Proto::Udp {
        return Some(ConnState::Udp);
    }
    match state {
        tcp_state::ESTABLISHED => Some(ConnState::Established),
        tcp_state::SYN_RECV | tcp_state::SYN_SENT | tcp_state::SYNACK => Some(ConnState::SynRecv),
        tcp_state::FIN_WAIT | tcp_state::TIME_WAIT | tcp_state::CLOSE_WAIT | tcp_state::LAST_ACK => Some(ConnState::FinWait),
        tcp_state::CLOSE => Some(ConnState::Close),
        _ => None,
    }
}

/// The record a master sends for a session with its SYN-proxy splice at `now_ms` (the timeout
/// is the time it has left).
pub fn export(s: &Session, splice: Option<crate::synproxy::Splice>, persistent: bool, now_ms: u64) -> SyncConn {
    let left_ms = s.expires_ms().saturating_sub(now_ms);
    let timeout_s = crate::session::whole_s(left_ms);
    let fwd = if s.mode == ForwardMode::Dr { flags::FWD_DROUTE } else { flags::FWD_MASQ };
    let seq_flag = if splice.is_some_and(|sp| !sp.waiting) { flags::OUT_SEQ } else { 0 };
    SyncConn {
        protocol: s.proto.ip_protocol(),
        flags: fwd | seq_flag,
        state: lvs_state(s.state),
        cport: s.client.1,
        vport: s.vip.1,
        dport: s.rs.1,
        fwmark: 0,
        timeout_s,
        caddr: s.client.0,
        vaddr: s.vip.0,
        daddr: s.rs.0,
        seq: splice.filter(|sp| !sp.waiting).map(splice_seq),
        fnat: (s.mode == ForwardMode::Fnat).then_some(FnatOption { laddr: s.laddr.0, lport: s.laddr.1, toa_sent: s.toa_sent(), draining: s.draining(), persistent }),
    }
}

/// A SYN proxy splice as LVS's own sequence adjustment (the option its NAT helpers sync):
/// output sequence numbers from the real server's ISN on shift by `cookie - rs_isn`, and
/// acknowledgements coming in shift back by the same amount.
fn splice_seq(sp: crate::synproxy::Splice) -> SeqOption {
    let out_delta = 0u32.wrapping_sub(sp.delta);
    let rs_isn = sp.cookie.wrapping_add(sp.delta);
    SeqOption { in_seq: Seq::default(), out_seq: Seq { init_seq: rs_isn, delta: out_delta, previous_delta: out_delta } }
}

/// The splice a synced session carries (`None` without an output sequence adjustment).
fn seq_splice(c: &SyncConn, conf: Option<&crate::synproxy::SynProxyConf>) -> Option<crate::synproxy::Splice> {
    let seq = c.seq.filter(|_| c.flags & flags::OUT_SEQ != 0)?;
    let delta = 0u32.wrapping_sub(seq.out_seq.delta);
    let conf = conf.copied().unwrap_or_default();
    Some(crate::synproxy::Splice {
        waiting: false,
        client_isn: 0,
        cookie: seq.out_seq.init_seq.wrapping_sub(delta),
        delta,
        opts: crate::synproxy::SynOpts { mss_idx: 0, wscale: None, sack: false },
        our_wscale: None,
        client_win: 0,
        // Window rescaling is not in the record: it is (0, 0) unless `wscale` differs from
        // the real servers' own shift (docs/ARCHITECTURE.md, SYN proxy).
        to_rs_shift: (0, 0),
        to_client_shift: (0, 0),
        ttl: conf.ttl,
        retries_left: 0,
        storm_thresh: conf.ack_storm_thresh,
        dup_acks: 0,
        last_ack: 0,
    })
}

/// The worker that must hold a synced session on a director with `workers` workers.
pub fn home_worker(c: &SyncConn, workers: u16) -> u16 {
    let workers = workers.max(1);
    match c.fnat {
        Some(f) => owner_of(f.lport, workers),
        None => {
            // Any fixed function of the client tuple: both directions of NAT and DR are found
            // through the owner maps.
            let h = u32::from(c.caddr).wrapping_mul(0x9e37_79b1) ^ u32::from(c.cport).wrapping_mul(0x85eb_ca6b);
            u16::try_from((h >> 16) % u32::from(workers)).unwrap_or(0)
        }
    }
}

/// Why a sync record was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdoptError {
    /// No virtual service for it here, or one with another forwarding mode.
    NoService,
    /// FNAT: the local address is not one of the service's here.
    NoLaddr,
    /// The real server is neither one of the service's nor its sorry server here (a record
    /// must not send a client anywhere the configuration does not).
    UnknownRealServer,
    /// FNAT: the local port is held by another session here (or belongs to another worker).
    PortBusy,
    /// The session table is full.
    TableFull,
    /// A protocol or state this director does not keep, or a template.
    BadRecord,
}

/// What `adopt` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    Created,
    Updated,
}

impl WorkerState {
    /// Installs (or updates) the session a sync record describes, on this worker, which must be
    /// the record's `home_worker`. Counts the outcome.
    pub fn adopt(&mut self, c: &SyncConn, ctx: &Ctx<'_>) -> Result<Adopted, AdoptError> {
        let r = self.adopt_inner(c, ctx);
        let k = &mut self.counters;
        match r {
            Ok(Adopted::Created) => k.sync_adopted += 1,
            Ok(Adopted::Updated) => k.sync_updated += 1,
            Err(AdoptError::NoService) => k.sync_no_service += 1,
            Err(AdoptError::NoLaddr) => k.sync_no_laddr += 1,
            Err(AdoptError::UnknownRealServer) => k.sync_unknown_rs += 1,
            Err(AdoptError::PortBusy) => k.sync_port_busy += 1,
            Err(AdoptError::TableFull) => k.sync_table_full += 1,
            Err(AdoptError::BadRecord) => k.sync_bad_record += 1,
        }
        r
    }

    fn adopt_inner(&mut self, c: &SyncConn, ctx: &Ctx<'_>) -> Result<Adopted, AdoptError> {
        let proto = L4Proto::from_ip_protocol(c.protocol).ok_or(AdoptError::BadRecord)?;
        if c.flags & flags::TEMPLATE != 0 {
            return Err(AdoptError::BadRecord);
        }
        let state = conn_state(proto, c.state).ok_or(AdoptError::BadRecord)?;
        let skey = ServiceKey { vip: c.vaddr, port: c.vport, proto };
        let (svc_idx, svc) = ctx.services.lookup(&skey).ok_or(AdoptError::NoService)?;
        let mode = match (c.fnat, c.flags & flags::FWD_MASK) {
            (Some(_), _) => ForwardMode::Fnat,
            (None, flags::FWD_DROUTE) => ForwardMode::Dr,
            (None, _) => ForwardMode::Nat,
        };
        if mode != svc.mode {
            return Err(AdoptError::NoService);
        }
        let client = (c.caddr, c.cport);
        let rs = (c.daddr, c.dport);
        let laddr = c.fnat.map_or(client, |f| (f.laddr, f.lport));
        let left_s = c.timeout_s.min(MAX_SYNCED_TIMEOUT_S);
        let expires_ms = ctx.now_ms + u64::from(left_s) * 1000;
        let found = svc.real_servers.iter().position(|r| (r.addr, r.port) == rs);
        if found.is_none() && svc.sorry_server != Some(rs) {
            return Err(AdoptError::UnknownRealServer);
        }
        if mode == ForwardMode::Fnat && !svc.laddrs.contains(&laddr.0) {
            return Err(AdoptError::NoLaddr);
        }
        // A server that is down here drains, as it would after a health flip.
        let draining = c.fnat.is_some_and(|f| f.draining) || found.is_some_and(|i| !svc.real_servers[i].available());
        let rs_idx = found.and_then(|i| u32::try_from(i).ok()).unwrap_or(u32::MAX);
        let synced_splice = seq_splice(c, svc.syn_proxy.as_ref());
        let key = FlowKey { src: client.0, dst: c.vaddr, sport: client.1, dport: c.vport, proto };

        if let Some(id) = self.sessions.find_client(&key) {
            let s = self.sessions.get(id);
            if s.laddr == laddr && s.rs == rs {
                self.sessions.restore(id, state, expires_ms);
                let s = self.sessions.get_mut(id);
                if c.fnat.is_some_and(|f| f.toa_sent) {
                    s.set_toa_sent();
                }
                if draining {
                    s.set_draining(true);
                }
                if let Some(sp) = synced_splice.filter(|_| !s.has_splice()) {
                    self.sessions.set_splice(id, sp);
                }
                return Ok(Adopted::Updated);
            }
            // The master's record wins over what this director had for the same client.
            self.kill(id, ctx.owners);
        }
        if mode == ForwardMode::Fnat {
            match self.laddrs.reserve(laddr.0, laddr.1, rs) {
                Ok(()) => {}
                Err(ReserveError::NoAddr) => return Err(AdoptError::NoLaddr),
                Err(ReserveError::NotMine | ReserveError::Busy) => return Err(AdoptError::PortBusy),
            }
        }
        let n = NewSession {
            proto,
            mode,
            shared: None,
            client,
            vip: (c.vaddr, c.vport),
            laddr,
            rs,
            svc: crate::session::index16(svc_idx),
            rs_idx: crate::session::index16(rs_idx),
            generation: ctx.services.generation_tag(),
            client_port: 0,
            // Unknown until the client's first packet here: replies before it are routed.
            client_mac: EthernetAddress::UNSPECIFIED,
        };
        let Ok(id) = self.sessions.insert(n, ctx.now_ms) else {
            if mode == ForwardMode::Fnat {
                self.laddrs.release(laddr.0, laddr.1, rs);
            }
            return Err(AdoptError::TableFull);
        };
        self.sessions.restore(id, state, expires_ms);
        if let Some(sp) = synced_splice {
            self.sessions.set_splice(id, sp);
        }
        let s = self.sessions.get_mut(id);
        if c.fnat.is_some_and(|f| f.toa_sent) {
            s.set_toa_sent();
        }
        s.set_draining(draining);
        s.set_adopted();
        // Already known to the backups: do not echo it back at the first packet.
        s.synced_state = Some(state);
        s.synced_ms = low32(ctx.now_ms);
        s.synced_pkts = s.pkts_in;
        self.sync_sched(ctx.services);
        if self.sched_generation == ctx.services.generation() && found.is_some() {
            if let Some(st) = self.sched.get_mut(svc_idx as usize) {
                st.opened(rs_idx as usize);
            }
        }
        let s = self.sessions.get(id);
        if let Some(o) = ctx.owners {
            o.synced.insert(s.client_key(), ctx.worker);
            self.counters.shared_writes += 1;
            if mode == ForwardMode::Nat {
                o.nat.insert(s.rs_key(), ctx.worker);
                self.counters.shared_writes += 1;
            }
        }
        if let (Some(p), Some(_)) = (svc.persistence, found) {
            // The client keeps its real server for its next connections, as on the master.
            let tkey = TemplateKey { client_net: PersistTable::client_net(client.0, p.netmask), vip: c.vaddr, vport: c.vport, proto };
            if self.persist.get(&tkey, ctx.now_ms).is_none() {
                self.persist.put(tkey, rs, ctx.now_ms, p.timeout_s);
            }
        }
        Ok(Adopted::Created)
    }

    /// After a packet of session `id`: queues its record for the sync thread when it is due.
    #[inline]
    pub fn maybe_sync(&mut self, id: u32, from_client: bool, ctx: &Ctx<'_>) {
        let Some(p) = ctx.sync else { return };
        let s = self.sessions.get(id);
        if !needs_sync(&p, s, from_client, ctx.now_ms) {
            return;
        }
        let persistent = ctx.services.get(u32::from(s.svc)).is_some_and(|v| v.persistence.is_some() && v.key.vip == s.vip.0 && v.key.port == s.vip.1);
        if self.sync_out.len() >= SYNC_OUT_MAX {
            self.counters.sync_queue_full += 1;
            return;
        }
        let rec = export(s, self.sessions.splice(id), persistent, ctx.now_ms);
        self.sync_out.push(rec);
        self.counters.sync_queued += 1;
        let s = self.sessions.get_mut(id);
        s.synced_state = Some(s.state);
        s.synced_ms = low32(ctx.now_ms);
        s.synced_pkts = s.pkts_in;
    }

    /// Up to `max` records of this worker's live sessions from slab position `cursor` on (bulk
    /// sync); returns the cursor of the next page, `None` when the walk is done.
    pub fn export_page(&self, cursor: u32, max: usize, now_ms: u64, services: &crate::service::ServiceTable, out: &mut Vec<SyncConn>) -> Option<u32> {
        for (id, s) in self.sessions.iter_from(cursor) {
            if out.len() >= max {
                return Some(id);
            }
            if s.proto == L4Proto::Tcp && s.state == ConnState::SynRecv {
                continue;
            }
            let persistent = services.lookup(&ServiceKey { vip: s.vip.0, port: s.vip.1, proto: s.proto }).is_some_and(|(_, v)| v.persistence.is_some());
            out.push(export(s, self.sessions.splice(id), persistent, now_ms));
        }
        None
    }
}

/// The address a synced session's replies to the client leave toward when its client has not
/// been seen here yet.
pub fn unknown_client_mac(mac: EthernetAddress) -> bool {
    mac == EthernetAddress::UNSPECIFIED
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{SessionTable, Timeouts};
    use std::net::Ipv4Addr;

    fn table(proto: L4Proto) -> (SessionTable, u32) {
        let mut t = SessionTable::new(10, 10, Timeouts::default());
        let n = NewSession {
            proto,
            mode: ForwardMode::Fnat,
            shared: None,
            client: (Ipv4Addr::new(1, 1, 1, 1), 1000),
            vip: (Ipv4Addr::new(2, 2, 2, 2), 80),
            laddr: (Ipv4Addr::new(3, 3, 3, 3), 5000),
            rs: (Ipv4Addr::new(4, 4, 4, 4), 8080),
            svc: 0,
            rs_idx: 0,
            generation: 1,
            client_port: 0,
            client_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
        };
        let id = t.insert(n, 0).unwrap();
        (t, id)
    }

    /// Feeds client packets 1..=n; returns the packet numbers that synced.
    fn synced_at(p: &SyncParams, t: &mut SessionTable, id: u32, n: u64, ms_per_pkt: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for k in 1..=n {
            let now = k * ms_per_pkt;
            let s = t.get_mut(id);
            s.pkts_in = low32(k);
            if needs_sync(p, s, true, now) {
                s.synced_state = Some(s.state);
                s.synced_ms = low32(now);
                s.synced_pkts = low32(k);
                out.push(k);
            }
        }
        out
    }

    #[test]
    fn lvs_default_threshold_syncs_at_3_then_every_50() {
        let (mut t, id) = table(L4Proto::Udp);
        t.get_mut(id).state = ConnState::Udp;
        assert_eq!(synced_at(&SyncParams::default(), &mut t, id, 160, 10), vec![3, 53, 103, 153]);
        let once = SyncParams { threshold: 3, period: 0, refresh_period_ms: 0 };
        let (mut t, id) = table(L4Proto::Udp);
        assert_eq!(synced_at(&once, &mut t, id, 160, 10), vec![3], "period 0: once");
    }

    #[test]
    fn tcp_state_changes_always_sync_and_syn_recv_never_does() {
        let p = SyncParams::default();
        let (mut t, id) = table(L4Proto::Tcp);
        let s = t.get_mut(id);
        s.pkts_in = 3;
        assert!(!needs_sync(&p, s, true, 0), "SYN_RECV is not synced even at the threshold");
        for st in [ConnState::Established, ConnState::FinWait, ConnState::Close] {
            s.state = st;
            s.pkts_in = 7;
            assert!(needs_sync(&p, s, false, 0), "entering {st:?} syncs, from either side");
            s.synced_state = Some(st);
            assert!(!needs_sync(&p, s, false, 0), "an unchanged state from the server side does not");
            assert!(!needs_sync(&p, s, true, 0), "nor a client packet off the threshold");
        }
    }

    #[test]
    fn the_threshold_sync_right_after_entering_established_is_skipped() {
        let p = SyncParams::default();
        let (mut t, id) = table(L4Proto::Tcp);
        let s = t.get_mut(id);
        s.state = ConnState::Established;
        s.pkts_in = 2;
        assert!(needs_sync(&p, s, true, 0), "the handshake's ACK: ESTABLISHED");
        (s.synced_state, s.synced_pkts) = (Some(ConnState::Established), 2);
        s.pkts_in = 3;
        assert!(!needs_sync(&p, s, true, 0), "packet 3, one after the last sync: nothing new");
        s.pkts_in = 53;
        assert!(needs_sync(&p, s, true, 0), "packet 53: the period's next");
    }

    #[test]
    fn refresh_period_limits_syncs_with_a_fake_clock() {
        // Period 0 with a refresh period: any client packet once the period has passed.
        let p = SyncParams { threshold: 3, period: 0, refresh_period_ms: 1000 };
        let (mut t, id) = table(L4Proto::Udp);
        t.get_mut(id).state = ConnState::Udp;
        assert_eq!(synced_at(&p, &mut t, id, 50, 100), vec![1, 11, 21, 31, 41], "every second at 10 packets a second");
        // With a period too: both must hold.
        let p = SyncParams { threshold: 3, period: 5, refresh_period_ms: 1000 };
        let (mut t, id) = table(L4Proto::Udp);
        t.get_mut(id).state = ConnState::Udp;
        assert_eq!(synced_at(&p, &mut t, id, 40, 100), vec![3, 13, 23, 33]);
    }

    #[test]
    fn the_last_sync_is_compared_across_the_32_bit_wrap() {
        // Sessions keep the last sync's clock and packet count modulo 2^32.
        let p = SyncParams { threshold: 3, period: 0, refresh_period_ms: 1000 };
        let (mut t, id) = table(L4Proto::Udp);
        let s = t.get_mut(id);
        s.state = ConnState::Udp;
        let (ms, pkts) = ((1u64 << 32) - 400, u32::MAX);
        (s.synced_state, s.synced_ms, s.synced_pkts) = (Some(ConnState::Udp), low32(ms), pkts);
        s.pkts_in = pkts.wrapping_add(2);
        assert!(!needs_sync(&p, s, true, ms + 500), "500 ms later, past the wrap: within the refresh period");
        s.pkts_in = pkts.wrapping_add(5);
        assert!(needs_sync(&p, s, true, ms + 1000), "a second later, past the wrap: due");
    }

    #[test]
    fn records_carry_the_remaining_time_and_fnat_fields() {
        let (mut t, id) = table(L4Proto::Tcp);
        t.touch(id, ConnState::Established, 0);
        t.get_mut(id).set_toa_sent();
        let r = export(t.get(id), None, true, 100_500);
        assert_eq!(r.timeout_s, 800, "900 s minus 100.5 s, rounded up");
        assert_eq!((r.protocol, r.state, r.flags & flags::FWD_MASK), (6, tcp_state::ESTABLISHED, flags::FWD_MASQ));
        assert_eq!((r.caddr, r.cport, r.vaddr, r.vport, r.daddr, r.dport), (Ipv4Addr::new(1, 1, 1, 1), 1000, Ipv4Addr::new(2, 2, 2, 2), 80, Ipv4Addr::new(4, 4, 4, 4), 8080));
        assert_eq!(r.fnat, Some(FnatOption { laddr: Ipv4Addr::new(3, 3, 3, 3), lport: 5000, toa_sent: true, draining: false, persistent: true }));
        assert_eq!(home_worker(&r, 3), 5000 % 3);
        let mut dr = r;
        dr.fnat = None;
        let homes: std::collections::HashSet<u16> = (0..64u16).map(|p| home_worker(&SyncConn { cport: 1000 + p, ..dr }, 4)).collect();
        assert!(homes.len() > 1 && homes.iter().all(|w| *w < 4), "non-FNAT sessions spread over the workers: {homes:?}");
    }
}
