//! Per-worker session table: one entry reachable from both directions, TCP state tracking with
//! LVS-style timeouts, aging by a timer wheel, a hard maximum. Storage is a slab plus one flow
//! index ([`index`]) holding each session twice, under its client key and under its
//! real-server key, as the slab id (4 bytes an entry, the direction in the top bit; keys are
//! compared against the slab entry, which forwarding reads anyway). The index starts at the
//! reserve and doubles when 7/8 full; steady-state traffic allocates nothing. (Sizing it for
//! the maximum up front was measured: a sparse 1M-entry index costs a cache miss per lookup,
//! 6.9 -> 4.4 Mpps.) A worker looks a burst up in stages: [`SessionTable::prefetch_index`] for
//! every packet, then the lookups proper.

mod index;

use std::net::Ipv4Addr;

use std::sync::Arc;

use index::FlowIndex;

use crate::flow::{FlowKey, L4Proto};
use crate::conncount::ConnCounts;
use crate::flowctl::ServiceShared;
use crate::service::ForwardMode;
use crate::synproxy::Splice;
use crate::wire::EthernetAddress;

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp` sets the first, the
/// fin-wait and the udp values). Defaults are LVS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_established: u32,
    pub tcp_syn_recv: u32,
    pub tcp_fin_wait: u32,
    pub tcp_close: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { tcp_established: 900, tcp_syn_recv: 60, tcp_fin_wait: 120, tcp_close: 10, udp: 300 }
    }
}

/// Connection state, as LVS tracks it (a subset: what the director can observe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Client SYN seen, handshake not complete.
    SynRecv,
    /// Handshake completed (or UDP traffic seen).
    Established,
    /// A FIN was seen from either side.
    FinWait,
    /// A RST was seen.
    Close,
    /// UDP flow.
    Udp,
}

impl ConnState {
    /// Whether ipvsadm would count it as an active connection.
    pub fn is_active(self) -> bool {
        self == ConnState::Established
    }

    /// Its name as ipvsadm -c shows it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::SynRecv => "SYN_RECV",
            ConnState::Established => "ESTABLISHED",
            ConnState::FinWait => "FIN_WAIT",
            ConnState::Close => "CLOSE",
            ConnState::Udp => "UDP",
        }
    }
}

/// One balanced connection. For FNAT `laddr` is the local address and port; for NAT and DR,
/// where the client's address is kept, it equals `client`, so the real-server-side key is the
/// reply's tuple.
#[derive(Debug, Clone)]
pub struct Session {
    pub proto: L4Proto,
    pub mode: ForwardMode,
    pub client: (Ipv4Addr, u16),
    pub vip: (Ipv4Addr, u16),
    pub laddr: (Ipv4Addr, u16),
    pub rs: (Ipv4Addr, u16),
    pub state: ConnState,
    /// Expiry in whole seconds of the worker clock, rounded up: the timer wheel ticks in
    /// seconds, so a session ends at the first tick at or after its time either way.
    expires_s: u32,
    /// Service and real-server indexes in the snapshot of `generation`
    /// (`ServiceTable::generation_tag`; a table holds at most `service::MAX_SERVICES` services
    /// of at most `service::MAX_REAL_SERVERS` real servers each).
    pub svc: u16,
    pub rs_idx: u16,
    pub generation: u32,
    /// Where replies to the client go: the port and MAC the client's packets came from.
    pub client_port: u8,
    pub client_mac: EthernetAddress,
    /// Toward the real server: the egress port and next-hop MAC, valid while the neighbour
    /// table's generation is `rs_l2_gen` (0: nothing cached).
    pub rs_port: u8,
    pub rs_mac: EthernetAddress,
    pub rs_l2_gen: u32,
    /// When a draining session must end, in whole seconds of the worker clock (0: not draining
    /// or no limit).
    pub drain_deadline_s: u32,
    /// The service's cross-worker counters (connection count), released when the session ends.
    pub shared: Option<Arc<ServiceShared>>,
    /// Packets each way, modulo 2^32 (as kernel LVS counts a connection's `in_pkts`); bytes
    /// are counted per service and real server only (`counts`).
    pub pkts_in: u32,
    pub pkts_out: u32,
    /// The state last sent to backups, and when: the worker clock's milliseconds modulo 2^32
    /// (compared by wrapping difference; session sync, see `sync`).
    pub synced_state: Option<ConnState>,
    pub synced_ms: u32,
    /// `pkts_in` when it was last synced, modulo 2^32 (compared likewise).
    pub synced_pkts: u32,
    /// SYN proxy: the table's splice slot for this session (`NO_SPLICE`: none). Only
    /// SYN-proxied sessions have one, and the rest should not pay its 36 bytes.
    splice: u32,
    /// The tick (second) of this session's earliest timer-wheel entry (`u32::MAX`: none known): a
    /// shorter timeout needs a new entry only when it falls before it.
    wheel_at: u32,
    /// The session's entry in the table's connection counts.
    slot: u32,
    /// Slab bookkeeping: bumped on free so stale timer entries are ignored.
    stamp: u32,
    /// `TOA_SENT`, `DRAINING`, `ADOPTED`, `LIVE`.
    flags: u8,
}

// Session flags (`Session::flags`).
/// TOA has been delivered to the real server.
const TOA_SENT: u8 = 1;
/// The session's real server was found gone or unavailable (draining).
const DRAINING: u8 = 2;
/// Installed from a sync record (listed in `Owners::synced` by its client tuple).
const ADOPTED: u8 = 4;
/// The slab entry holds a session.
const LIVE: u8 = 8;
/// `Session::splice` when the session has no splice.
const NO_SPLICE: u32 = u32::MAX;

/// Why a session could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFull {
    /// The configured maximum is reached.
    Full,
}

const WHEEL_SLOTS: usize = 1024;
/// Sessions the index is sized for up front at most (two entries each, ~5.3 bytes an entry).
const MAX_INDEX_RESERVE: usize = 1 << 21;
/// Bytes of index per entry at full load (a session has two entries): a 64-byte bucket holds 12.
pub const INDEX_BYTES_PER_ENTRY: f64 = index::BYTES_PER_ENTRY;
/// The index entry of a session under its real-server key has this bit set.
const RS_SIDE: u32 = 1 << 31;
/// Most sessions a table can hold (ids leave the top bit to the direction).
pub const MAX_SESSIONS: usize = (RS_SIDE - 1) as usize;
/// Most deferred real-server-side entries (`defer_rs_side`; a burst is 32 frames): beyond,
/// entries go in at once.
const MAX_PENDING: usize = 64;
/// Index buckets a growing index moves per `expire` call (besides one per insert).
const INDEX_MOVE_PER_PASS: usize = 2;
/// Wheel entries one `expire` call examines at most.
pub const EXPIRE_BUDGET: usize = 1024;
const TICK_MS: u64 = 1000;
/// How far expiry looks ahead in a wheel slot (see `prefetch_expiry`).
const EXPIRY_AHEAD: usize = 8;

/// The wheel slot of a tick.
#[inline]
fn wheel_slot(tick: u64) -> usize {
    usize::try_from(tick % 1024).unwrap_or(0) % WHEEL_SLOTS
}

/// What the burst stage worked out for one frame: its key (packed) and the key's hash. The
/// frame's lookups take the hash from here when their key is this one, instead of hashing
/// again. Two aligned words: the `Option<(FlowKey, u64)>` it replaced was copied per frame
/// through overlapping stack stores the CPU could not forward to the load that followed
/// (13 % of the burst loop's samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// `FlowKey::packed`; 0 means no hint (no key packs to 0: its protocol is never 0).
    key: u128,
    hash: u64,
}

impl Hint {
    /// No hint: every lookup hashes its key.
    pub const NONE: Hint = Hint { key: 0, hash: 0 };

    /// The key's hash (the session index's bucket choice).
    #[inline]
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// Sessions of one worker.
#[derive(Debug)]
pub struct SessionTable {
    slab: Vec<Session>,
    free: Vec<u32>,
    index: FlowIndex,
    /// The key and hash the burst stages computed for the packet being processed.
    hint: Hint,
    hasher: ahash::RandomState,
    wheel: Vec<Vec<(u32, u32)>>,
    /// The last tick the wheel processed; `None` until the first insert or expire.
    wheel_tick: Option<u64>,
    /// The tick whose slot is being drained, while `expire` runs.
    draining_tick: Option<u64>,
    max: usize,
    /// Real-server-side index entries of sessions inserted in this burst, with their hashes, when
    /// `defer` is on (see `defer_rs_side`).
    pending: Vec<(u64, u32)>,
    defer: bool,
    /// SYN-proxy splices by slot (`Session::splice`), and the free slots.
    splices: Vec<Splice>,
    splice_free: Vec<u32>,
    pub timeouts: Timeouts,
    /// Connection counts per (service, real server), kept as sessions come and go.
    pub counts: ConnCounts,
}

impl Session {
    /// Whether TOA has been delivered to the real server.
    #[inline]
    pub fn toa_sent(&self) -> bool {
        self.flags & TOA_SENT != 0
    }

    #[inline]
    pub fn set_toa_sent(&mut self) {
        self.flags |= TOA_SENT;
    }

    /// Whether the session's real server was found gone or unavailable (draining).
    #[inline]
    pub fn draining(&self) -> bool {
        self.flags & DRAINING != 0
    }

    #[inline]
    pub fn set_draining(&mut self, on: bool) {
        self.flags = if on { self.flags | DRAINING } else { self.flags & !DRAINING };
    }

    /// Whether it was installed from a sync record (listed in `Owners::synced`).
    #[inline]
    pub fn adopted(&self) -> bool {
        self.flags & ADOPTED != 0
    }

    #[inline]
    pub fn set_adopted(&mut self) {
        self.flags |= ADOPTED;
    }

    #[inline]
    fn live(&self) -> bool {
        self.flags & LIVE != 0
    }

    /// Whether the SYN proxy completed the handshake for it (it has a splice).
    #[inline]
    pub fn has_splice(&self) -> bool {
        self.splice != NO_SPLICE
    }

    /// Its expiry in milliseconds of the worker clock (a whole second).
    #[inline]
    pub fn expires_ms(&self) -> u64 {
        u64::from(self.expires_s) * 1000
    }

    /// Whether its time has come at `now_ms`.
    #[inline]
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms() <= now_ms
    }

    /// The key of packets from the client (cip:cport -> vip:vport).
    pub fn client_key(&self) -> FlowKey {
        FlowKey { src: self.client.0, dst: self.vip.0, sport: self.client.1, dport: self.vip.1, proto: self.proto }
    }

    /// The key of packets from the real server (rip:rport -> lip:lport).
    pub fn rs_key(&self) -> FlowKey {
        FlowKey { src: self.rs.0, dst: self.laddr.0, sport: self.rs.1, dport: self.laddr.1, proto: self.proto }
    }
}

/// What a session carries in when created.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub proto: L4Proto,
    pub mode: ForwardMode,
    pub shared: Option<Arc<ServiceShared>>,
    pub client: (Ipv4Addr, u16),
    pub vip: (Ipv4Addr, u16),
    pub laddr: (Ipv4Addr, u16),
    pub rs: (Ipv4Addr, u16),
    pub svc: u16,
    pub rs_idx: u16,
    pub generation: u32,
    pub client_port: u8,
    pub client_mac: EthernetAddress,
}

impl SessionTable {
    /// A table for at most `max` sessions; `reserve` entries are allocated up front.
    pub fn new(max: usize, reserve: usize, timeouts: Timeouts) -> SessionTable {
        let max = max.min(MAX_SESSIONS);
        let reserve = reserve.min(max);
        SessionTable {
            slab: Vec::with_capacity(reserve),
            free: Vec::with_capacity(reserve),
            index: FlowIndex::with_capacity(2 * reserve.min(MAX_INDEX_RESERVE)),
            hint: Hint::NONE,
            hasher: ahash::RandomState::new(),
            wheel: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            wheel_tick: None,
            draining_tick: None,
            max,
            pending: Vec::new(),
            defer: false,
            splices: Vec::new(),
            splice_free: Vec::new(),
            timeouts,
            counts: ConnCounts::default(),
        }
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        (self.index.len() + self.pending.len()) / 2
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0 && self.pending.is_empty()
    }

    /// Defers each new session's real-server-side index entry to `settle` (the worker calls it
    /// at the end of every burst): the entry's bucket is prefetched at insert and written once
    /// the rest of the burst has run, instead of a cache miss per new session. No reply can
    /// come before the burst's frames are sent; lookups and removals see pending entries anyway.
    pub fn defer_rs_side(&mut self, on: bool) {
        self.defer = on;
        if !on {
            self.settle();
        }
    }

    /// Writes the deferred real-server-side entries into the index.
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (slab, hasher, index) = (&self.slab, &self.hasher, &mut self.index);
        let rehash = |v: u32| entry_hash(slab, hasher, v);
        for (hash, id) in self.pending.drain(..) {
            index.insert(hash, id | RS_SIDE, rehash);
        }
    }

    /// The index hash of a flow key (either direction).
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// A frame's hint: its key and the key's hash (see [`Hint`]).
    #[inline]
    pub fn hint(&self, key: &FlowKey) -> Hint {
        Hint { key: key.packed(), hash: self.hash(key) }
    }

    /// First stage of a burst lookup: brings the index bucket of `hash` into the cache. (A
    /// second stage prefetching the sessions the bucket names was measured and dropped: it
    /// waits on the buckets it reads, and cost 8–12 % at 1 M flows; `WorkerState::stage_burst`.)
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Tells the lookups of the next packet the hash of its key (computed by the burst stages);
    /// a lookup of any other key hashes it itself.
    #[inline]
    pub fn set_hint(&mut self, hint: Hint) {
        self.hint = hint;
    }

    #[inline]
    fn hash_hinted(&self, key: &FlowKey) -> u64 {
        if key.packed() == self.hint.key {
            self.hint.hash
        } else {
            self.hash(key)
        }
    }

    /// The session a client packet belongs to.
    #[inline]
    pub fn find_client(&self, key: &FlowKey) -> Option<u32> {
        let slab = &self.slab;
        self.index.find(self.hash_hinted(key), |v| v & RS_SIDE == 0 && slab[v as usize].client_key() == *key)
    }

    /// The session a real-server packet belongs to.
    #[inline]
    pub fn find_rs(&self, key: &FlowKey) -> Option<u32> {
        let slab = &self.slab;
        let hash = self.hash_hinted(key);
        self.index.find(hash, |v| v & RS_SIDE != 0 && slab[(v & !RS_SIDE) as usize].rs_key() == *key).map(|v| v & !RS_SIDE).or_else(|| {
            if self.pending.is_empty() {
                return None;
            }
            self.pending.iter().find(|(h, id)| *h == hash && slab[*id as usize].rs_key() == *key).map(|(_, id)| *id)
        })
    }

    /// A session by id.
    #[inline]
    pub fn get(&self, id: u32) -> &Session {
        &self.slab[id as usize]
    }

    /// A session by id, writable.
    #[inline]
    pub fn get_mut(&mut self, id: u32) -> &mut Session {
        &mut self.slab[id as usize]
    }

    /// Counts a packet of `len` bytes from the client side of session `id`.
    #[inline]
    pub fn count_in(&mut self, id: u32, len: u64) {
        let s = &mut self.slab[id as usize];
        s.pkts_in = s.pkts_in.wrapping_add(1);
        if let Some(c) = self.counts.get_mut(s.slot) {
            c.pkts_in += 1;
            c.bytes_in += len;
        }
    }

    /// Counts a packet of `len` bytes from the real-server side of session `id`.
    #[inline]
    pub fn count_out(&mut self, id: u32, len: u64) {
        let s = &mut self.slab[id as usize];
        s.pkts_out = s.pkts_out.wrapping_add(1);
        if let Some(c) = self.counts.get_mut(s.slot) {
            c.pkts_out += 1;
            c.bytes_out += len;
        }
    }

    /// Iterates live sessions.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.slab.iter().filter(|s| s.live())
    }

    /// Live sessions from slab position `from` on, with their ids (a cursor for paged walks:
    /// the next page starts after the last id returned).
    pub fn iter_from(&self, from: u32) -> impl Iterator<Item = (u32, &Session)> {
        self.slab.iter().enumerate().skip(from as usize).filter(|(_, s)| s.live()).map(|(i, s)| (u32::try_from(i).unwrap_or(u32::MAX), s))
    }

    /// The timeout of `state`, in seconds.
    pub fn state_timeout_s(&self, state: ConnState) -> u32 {
        self.timeout_s(state)
    }

    /// Sets a session's state and expiry as given (a synced session keeps the master's
    /// remaining time).
    pub fn restore(&mut self, id: u32, state: ConnState, expires_ms: u64) {
        let s = &mut self.slab[id as usize];
        self.counts.state_changed(s.slot, s.state.is_active(), state.is_active());
        s.state = state;
        s.expires_s = whole_s(expires_ms);
        if s.expires_s < s.wheel_at {
            let at = s.expires_s;
            self.schedule(id, at);
        }
    }

    fn timeout_s(&self, state: ConnState) -> u32 {
        let t = &self.timeouts;
        match state {
            ConnState::SynRecv => t.tcp_syn_recv,
            ConnState::Established => t.tcp_established,
            ConnState::FinWait => t.tcp_fin_wait,
            ConnState::Close => t.tcp_close,
            ConnState::Udp => t.udp,
        }
    }

    /// Creates a session in its initial state (TCP: SYN_RECV, UDP: UDP), expiring from `now_ms`.
    pub fn insert(&mut self, n: NewSession, now_ms: u64) -> Result<u32, SessionFull> {
        self.start_wheel(now_ms);
        if self.len() >= self.max {
            return Err(SessionFull::Full);
        }
        let state = if n.proto == L4Proto::Tcp { ConnState::SynRecv } else { ConnState::Udp };
        let expires_s = whole_s(now_ms + u64::from(self.timeout_s(state)) * 1000);
        let slot = self.counts.slot((n.proto, n.vip, n.rs));
        if let Some(c) = self.counts.get_mut(slot) {
            c.conns += 1;
            if state.is_active() {
                c.active += 1;
            } else {
                c.inactive += 1;
            }
        }
        let fresh = |stamp| Session {
            proto: n.proto,
            mode: n.mode,
            shared: n.shared.clone(),
            drain_deadline_s: 0,
            client: n.client,
            vip: n.vip,
            laddr: n.laddr,
            rs: n.rs,
            state,
            expires_s,
            svc: n.svc,
            rs_idx: n.rs_idx,
            generation: n.generation,
            client_port: n.client_port,
            client_mac: n.client_mac,
            rs_port: 0,
            rs_mac: EthernetAddress::UNSPECIFIED,
            rs_l2_gen: 0,
            pkts_in: 0,
            pkts_out: 0,
            synced_state: None,
            synced_ms: 0,
            synced_pkts: 0,
            splice: NO_SPLICE,
            wheel_at: u32::MAX,
            slot,
            stamp,
            flags: LIVE,
        };
        let id = match self.free.pop() {
            Some(id) => {
                let stamp = self.slab[id as usize].stamp;
                self.slab[id as usize] = fresh(stamp);
                id
            }
            None => {
                let id = u32::try_from(self.slab.len()).map_err(|_| SessionFull::Full)?;
                self.slab.push(fresh(0));
                id
            }
        };
        let (slab, hasher, index) = (&self.slab, &self.hasher, &mut self.index);
        let rehash = |v: u32| entry_hash(slab, hasher, v);
        let s = &slab[id as usize];
        index.insert(hasher.hash_one(s.client_key()), id, rehash);
        let rs_hash = hasher.hash_one(s.rs_key());
        if self.defer && self.pending.len() < MAX_PENDING {
            index.prefetch(rs_hash);
            self.pending.push((rs_hash, id));
        } else {
            index.insert(rs_hash, id | RS_SIDE, rehash);
        }
        self.schedule(id, expires_s);
        Ok(id)
    }

    /// Starts the wheel at the clock's current tick (the clock need not start at zero).
    fn start_wheel(&mut self, now_ms: u64) {
        if self.wheel_tick.is_none() {
            self.wheel_tick = Some((now_ms / TICK_MS).saturating_sub(1));
        }
    }

    /// Adds a wheel entry for session `id` at the tick of `expires_s` (a session expiring at
    /// second t is due when the tick t slot drains: the clock has reached t * 1000).
    fn schedule(&mut self, id: u32, expires_s: u32) {
        let cur = self.wheel_tick.unwrap_or(0);
        let first = self.draining_tick.map_or(cur + 1, |t| t + 1);
        let tick = u64::from(expires_s).max(first);
        // Beyond the wheel's horizon: park in the farthest slot and re-check when it fires.
        let tick = tick.min(cur + WHEEL_SLOTS as u64 - 1);
        let s = &mut self.slab[id as usize];
        s.wheel_at = s.wheel_at.min(u32::try_from(tick).unwrap_or(u32::MAX));
        let stamp = s.stamp;
        self.wheel[wheel_slot(tick)].push((id, stamp));
    }

    /// Moves a session to `state` and pushes its expiry to `now + timeout(state)`.
    #[inline]
    pub fn touch(&mut self, id: u32, state: ConnState, now_ms: u64) {
        let t = u64::from(self.timeout_s(state)) * 1000;
        let s = &mut self.slab[id as usize];
        self.counts.state_changed(s.slot, s.state.is_active(), state.is_active());
        s.state = state;
        let new = whole_s(now_ms + t);
        s.expires_s = new;
        // The wheel entry is checked lazily and re-armed for later expiries; a shorter timeout
        // (a state change) needs an earlier entry of its own, once: a client alternating FIN and
        // RST does not add one per packet.
        if new < s.wheel_at {
            self.schedule(id, new);
        }
    }

    /// Expires sessions whose time has come, calling `on_expire` for each before removal.
    /// Call every poll-loop pass: each call examines at most `EXPIRE_BUDGET` wheel entries, so
    /// a second in which a million sessions fall due costs many short passes, not one stall.
    pub fn expire(&mut self, now_ms: u64, mut on_expire: impl FnMut(&Session)) -> usize {
        self.settle();
        if self.index.growing() {
            // A growing index finishes moving in passes, not only as sessions are inserted.
            let (slab, hasher) = (&self.slab, &self.hasher);
            self.index.move_buckets(INDEX_MOVE_PER_PASS, &|v: u32| entry_hash(slab, hasher, v));
        }
        let target = now_ms / TICK_MS;
        let (mut n, mut work) = (0, 0);
        self.start_wheel(now_ms);
        while let Some(done) = self.wheel_tick.filter(|t| *t < target) {
            let tick = done + 1;
            let slot = wheel_slot(tick);
            // Entries re-armed while this slot drains go to later slots.
            self.draining_tick = Some(tick);
            while let Some((id, stamp)) = self.wheel[slot].pop() {
                work += 1;
                self.prefetch_expiry(slot, now_ms);
                let s = &mut self.slab[id as usize];
                if s.live() && s.stamp == stamp {
                    // Entries fire in tick order: none of this session's is earlier any more.
                    if u64::from(s.wheel_at) <= tick {
                        s.wheel_at = u32::MAX;
                    }
                    let s = &self.slab[id as usize];
                    if s.expired(now_ms) {
                        on_expire(s);
                        self.remove(id);
                        n += 1;
                    } else {
                        let e = s.expires_s;
                        self.schedule(id, e);
                    }
                }
                if work >= EXPIRE_BUDGET {
                    // The slot is not finished: the next call goes on with it.
                    self.draining_tick = None;
                    return n;
                }
            }
            self.draining_tick = None;
            self.wheel_tick = Some(tick);
        }
        n
    }

    /// Expiry looks ahead in the wheel slot it drains (popped from the end): the session
    /// `EXPIRY_AHEAD` entries on is brought into the cache, and for the one half as far, now
    /// cached, the index buckets its removal will touch, if it is due.
    #[inline]
    fn prefetch_expiry(&self, slot: usize, now_ms: u64) {
        let w = &self.wheel[slot];
        if let Some(&(far, _)) = w.len().checked_sub(EXPIRY_AHEAD).and_then(|i| w.get(i)) {
            if let Some(s) = self.slab.get(far as usize) {
                lb_prefetch::prefetch(s);
            }
        }
        if let Some(&(near, _)) = w.len().checked_sub(EXPIRY_AHEAD / 2).and_then(|i| w.get(i)) {
            if let Some(s) = self.slab.get(near as usize).filter(|s| s.live() && s.expired(now_ms)) {
                self.index.prefetch(self.hasher.hash_one(s.client_key()));
                self.index.prefetch(self.hasher.hash_one(s.rs_key()));
            }
        }
    }

    /// Removes a session at once.
    pub fn remove(&mut self, id: u32) {
        let s = &mut self.slab[id as usize];
        if !s.live() {
            return;
        }
        s.flags = 0;
        s.shared = None;
        let splice = std::mem::replace(&mut s.splice, NO_SPLICE);
        self.counts.ended(s.slot, s.state.is_active());
        s.stamp = s.stamp.wrapping_add(1);
        let (ck, rk) = (s.client_key(), s.rs_key());
        self.index.remove(self.hasher.hash_one(ck), id);
        if !self.index.remove(self.hasher.hash_one(rk), id | RS_SIDE) {
            self.pending.retain(|(_, p)| *p != id);
        }
        self.free.push(id);
        if splice != NO_SPLICE {
            self.splice_free.push(splice);
        }
    }

    /// Session `id`'s SYN-proxy splice, if it has one (a copy).
    #[inline]
    pub fn splice(&self, id: u32) -> Option<Splice> {
        let at = self.slab.get(id as usize)?.splice;
        self.splices.get(at as usize).copied()
    }

    /// Sets session `id`'s splice, in its slot or a free one.
    #[inline]
    pub fn set_splice(&mut self, id: u32, sp: Splice) {
        let Some(s) = self.slab.get_mut(id as usize) else { return };
        if let Some(slot) = self.splices.get_mut(s.splice as usize) {
            *slot = sp;
        } else if let Some(at) = self.splice_free.pop() {
            self.splices[at as usize] = sp;
            s.splice = at;
        } else {
            // At most one slot per session: there are fewer than `MAX_SESSIONS` < u32::MAX.
            s.splice = u32::try_from(self.splices.len()).unwrap_or(NO_SPLICE);
            self.splices.push(sp);
        }
    }
}

/// The hash of index entry `v`: its session's client key, or its real-server key when `v` has
/// the `RS_SIDE` bit (to move entries when the index grows).
#[inline]
fn entry_hash(slab: &[Session], hasher: &ahash::RandomState, v: u32) -> u64 {
    let s = &slab[(v & !RS_SIDE) as usize];
    hasher.hash_one(if v & RS_SIDE == 0 { s.client_key() } else { s.rs_key() })
}

/// A service or real-server index as a session keeps it (`u16::MAX`: none; tables hold fewer,
/// see `service::MAX_SERVICES`).
#[inline]
pub fn index16(i: impl TryInto<u16>) -> u16 {
    i.try_into().unwrap_or(u16::MAX)
}

/// Milliseconds as whole seconds, rounded up (saturating): session expiry, draining deadlines,
/// the time a session has left.
#[inline]
pub fn whole_s(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(TICK_MS)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
