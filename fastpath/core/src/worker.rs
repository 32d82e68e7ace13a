//! What a worker reads ([`Ctx`], shared and immutable for a burst) and what it owns and the
//! pipeline changes ([`WorkerState`]): sessions, local ports, scheduler state, templates,
//! records for the sync thread, frames to originate. Connection counts per (service, real
//! server) live in the session table (`SessionTable::counts`).

use std::net::Ipv4Addr;

use crate::flow::FlowKey;
use crate::iface::Interface;
use crate::laddr::LaddrPool;
use crate::neigh::NeighTable;
use crate::owners::Owners;
use crate::persist::PersistTable;
use crate::sched::SchedState;
use crate::service::{ForwardMode, ServiceKey, ServiceTable};
use crate::session::{Hint, Session, SessionTable, Timeouts};
use crate::verdict::Counters;
use crate::wire::EthernetAddress;

/// TTL the director puts on packets it originates.
pub const DEFAULT_TTL: u8 = 64;

/// Sessions from which a worker looks bursts up in stages (each frame's index bucket
/// prefetched before the burst is processed). Below, the table stays in the L1/L2 cache and
/// the extra pass costs more than it saves. Measured on one worker, 64 B UDP through FNAT,
/// cycles per packet in the burst handler with and without it alternating every ~30 ms in one
/// process (perf/results/2026-12-04-stages.md): 1,000 flows +0–3 %, 3,000 flows −6 to −9 %,
/// 10,000 flows −19 to −34 %.
pub const STAGE_FROM: usize = 2_048;

/// Most neighbour updates a worker collects between two hand-overs to the control thread.
pub const MAX_LEARNED: usize = 64;

/// Largest frame a worker originates through [`WorkerState::emit`].
pub const EMIT_FRAME_MAX: usize = 64;
/// Frames originated between two hand-overs at most.
pub const MAX_EMIT: usize = 64;

/// A frame the pipeline originates besides the verdict of the packet it handled (the SYN
/// proxy's window update to the client); the worker sends it out of `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emit {
    pub port: u8,
    len: u8,
    frame: [u8; EMIT_FRAME_MAX],
}

impl Emit {
    /// A frame of `len` bytes written by `fill`; `None` if `len` is above [`EMIT_FRAME_MAX`].
    pub fn new(port: u8, len: usize, fill: impl FnOnce(&mut [u8])) -> Option<Emit> {
        let mut frame = [0u8; EMIT_FRAME_MAX];
        fill(frame.get_mut(..len)?);
        Some(Emit { port, len: u8::try_from(len).ok()?, frame })
    }

    /// The frame's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.frame[..usize::from(self.len)]
    }
}

/// What a worker reads, shared and immutable for the duration of a burst.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The worker's data ports, by index.
    pub ports: &'a [Interface],
    pub services: &'a ServiceTable,
    pub neigh: &'a NeighTable,
    /// This worker's index and the number of workers.
    pub worker: u16,
    pub workers: u16,
    /// Worker clock in milliseconds.
    pub now_ms: u64,
    /// Owners of NAT sessions and synced sessions (shared by all workers).
    pub owners: Option<&'a Owners>,
    /// Session sync as a master: when set, sessions are queued for the sync thread as LVS's
    /// thresholds say (`sync::needs_sync`).
    pub sync: Option<crate::sync::SyncParams>,
}

/// What a worker owns and the pipeline changes.
#[derive(Debug)]
pub struct WorkerState {
    pub sessions: SessionTable,
    pub laddrs: LaddrPool,
    /// Scheduler state per service index, for `sched_generation`'s service table.
    pub sched: Vec<SchedState>,
    pub sched_generation: u64,
    /// The service each `sched` entry belongs to, to carry state across table changes.
    sched_keys: Vec<ServiceKey>,
    pub counters: Counters,
    /// Neighbours seen in ARP since the last hand-over (bounded by `MAX_LEARNED`).
    pub learned: Vec<(Ipv4Addr, EthernetAddress)>,
    /// Persistence templates.
    pub persist: PersistTable,
    /// Session records for the sync thread (master), at most `sync::SYNC_OUT_MAX`.
    pub sync_out: Vec<crate::wire::lvsync::SyncConn>,
    /// Frames to originate, at most [`MAX_EMIT`]; the worker sends and clears them.
    pub emit: Vec<Emit>,
}

/// Gives back what a session held: its local port, its scheduler count, its service-wide
/// connection count, its NAT and sync owner entries. Returns the writes to shared cache lines
/// that took (`Counters::shared_writes`).
fn release(s: &Session, laddrs: &mut LaddrPool, sched: &mut [SchedState], sched_generation: u64, owners: Option<&Owners>) -> u64 {
    let mut shared_writes = 0;
    if s.mode == ForwardMode::Fnat {
        laddrs.release(s.laddr.0, s.laddr.1, s.rs);
    }
    // Sessions keep the generation's low 32 bits (`ServiceTable::generation_tag`).
    if s.generation == crate::low32(sched_generation) {
        if let Some(st) = sched.get_mut(s.svc as usize) {
            st.closed(s.rs_idx as usize);
        }
    }
    if let Some(shared) = &s.shared {
        shared.closed();
        shared_writes += 1;
    }
    if let Some(o) = owners {
        if s.mode == ForwardMode::Nat {
            o.nat.remove(&s.rs_key());
            shared_writes += 1;
        }
        if s.adopted() {
            o.synced.remove(&s.client_key());
            shared_writes += 1;
        }
    }
    shared_writes
}

impl WorkerState {
    /// Fresh state for worker `worker` of `workers`.
    pub fn new(worker: u16, workers: u16, services: &ServiceTable, max_sessions: usize, timeouts: Timeouts) -> WorkerState {
        WorkerState {
            sessions: SessionTable::new(max_sessions, max_sessions.min(1 << 16), timeouts),
            laddrs: LaddrPool::new(worker, workers, services.laddrs()),
            sched: vec![SchedState::default(); services.services().len()],
            sched_generation: services.generation(),
            sched_keys: services.services().iter().map(|s| s.key).collect(),
            counters: Counters::default(),
            learned: Vec::with_capacity(MAX_LEARNED),
            persist: PersistTable::new(max_sessions),
            sync_out: Vec::new(),
            emit: Vec::with_capacity(MAX_EMIT),
        }
    }

    /// The first stage of a burst lookup (see `session`): computes each frame's flow key and
    /// hash into `hints` and prefetches its index bucket. The worker hands each frame's hint to
    /// [`SessionTable::set_hint`] before processing it. Returns false, doing nothing, while
    /// the table has fewer than [`STAGE_FROM`] sessions.
    ///
    /// The sessions themselves are not prefetched in a second pass: that pass waits on the
    /// buckets it reads (the last ones of the burst were only just asked for), and on a VM
    /// each prefetch waits for its nested page walk. Without it, 1 M flows take 8–12 % and new
    /// connections 3–8 % fewer cycles per packet; the session's miss overlaps the frame's
    /// own work instead.
    pub fn stage_burst<'a>(&self, frames: impl Iterator<Item = &'a [u8]>, hints: &mut [Hint]) -> bool {
        if self.sessions.len() < STAGE_FROM {
            return false;
        }
        for (h, f) in hints.iter_mut().zip(frames) {
            *h = match FlowKey::of_frame(f) {
                Some(k) => {
                    let hint = self.sessions.hint(&k);
                    self.sessions.prefetch_index(hint.hash());
                    hint
                }
                None => Hint::NONE,
            };
        }
        true
    }

    /// Expires sessions and templates due at `now_ms`, giving back what they held.
    pub fn expire(&mut self, now_ms: u64, owners: Option<&Owners>) {
        let WorkerState { sessions, laddrs, sched, sched_generation, counters, persist, .. } = self;
        let mut shared_writes = 0;
        let n = sessions.expire(now_ms, |s| shared_writes += release(s, laddrs, sched, *sched_generation, owners));
        counters.sessions_expired += n as u64;
        counters.shared_writes += shared_writes;
        persist.sweep(now_ms);
    }


    /// Lines scheduler state up with `services` after a table change: each surviving service
    /// keeps its round-robin position, and its connection counts when its real-server list
    /// kept its length (counts are indexed by position).
    pub fn sync_sched(&mut self, services: &ServiceTable) {
        if self.sched_generation == services.generation() && self.sched.len() == services.services().len() {
            return;
        }
        let mut old: std::collections::HashMap<ServiceKey, SchedState> = self.sched_keys.drain(..).zip(self.sched.drain(..)).collect();
        self.sched = services
            .services()
            .iter()
            .map(|s| {
                let mut st = old.remove(&s.key).unwrap_or_default();
                if st.conns.len() != s.real_servers.len() {
                    st.conns = vec![0; s.real_servers.len()];
                }
                st
            })
            .collect();
        self.sched_keys = services.services().iter().map(|s| s.key).collect();
        self.sched_generation = services.generation();
    }

    /// Lines the local-port pools up with `services` after a table change: new local
    /// addresses get this worker's ports; a removed one goes once its last port is back.
    pub fn sync_laddrs(&mut self, services: &ServiceTable) {
        for l in services.laddrs() {
            self.laddrs.add_addr(*l);
        }
        self.laddrs.retain_addrs(services.laddrs());
    }

    /// Queues a frame to originate; counted as a drop when the queue is full.
    pub fn push_emit(&mut self, e: Emit) {
        if self.emit.len() < MAX_EMIT {
            self.emit.push(e);
        } else {
            self.counters.drop(crate::verdict::DropReason::EmitFull);
        }
    }

    /// Ends a session at once (draining deadline, refusal after creation).
    pub fn kill(&mut self, id: u32, owners: Option<&Owners>) {
        let s = self.sessions.get(id);
        self.counters.shared_writes += release(s, &mut self.laddrs, &mut self.sched, self.sched_generation, owners);
        self.sessions.remove(id);
    }
}
