//! The worker lcore: polls its queues, runs the pipeline, transmits, hands return traffic to
//! the worker that owns it, holds packets while ARP resolves, relays the exception path.

mod clock;
mod idle;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue, BURST_SIZE};
use fastpath::neigh::{emit_arp_request, ARP_FRAME_LEN};
use fastpath::session::{Hint, Timeouts};
use fastpath::wire::EthernetFrame;
use fastpath::{pipeline, Ctx, DropReason, PacketBuf, Verdict, WorkerState};

use crate::control::mailbox::{self, Mailbox, Request};
use crate::shared::{pop_if_any, Shared, WorkerView};
use crate::stats::WorkerShared;

/// Loop iterations between counter publications while busy.
const PUBLISH_EVERY: u64 = 1024;
/// Packets held per worker while their next hop resolves.
const MAX_HELD: usize = 256;
/// How long a packet may wait for ARP.
const HOLD_MS: u64 = 1000;
/// Minimum interval between ARP requests for one address from one worker.
const ARP_RETRY_MS: u64 = 300;
/// Addresses `arp_sent` remembers before entries older than `ARP_RETRY_MS` are pruned (they
/// no longer hold anything back).
const ARP_SENT_PRUNE_AT: usize = 1024;
/// Sync records a worker collects before it hands them over at once; fewer wait at most until
/// the next millisecond (a few large batches rather than one per pass).
const SYNC_HANDOVER_AT: usize = 256;

/// One data port as a worker sees it: its own queue pair, and its own queue pair on the
/// port's exception TAP.
#[derive(Debug)]
pub struct WorkerPort {
    pub port_id: u16,
    pub rx: RxQueue,
    pub tx: TxQueue,
    pub tap: Option<(RxQueue, TxQueue)>,
}

/// Everything a worker is given at launch. It is `Send`; the worker's running state is not.
#[derive(Debug)]
pub struct WorkerPlan {
    pub index: u16,
    pub workers: u16,
    pub ports: Vec<WorkerPort>,
    pub shared: Arc<Shared>,
    pub stats: Arc<WorkerShared>,
    pub pool: Mempool,
    /// The longest sleep of an idle worker (`idle_sleep_us`; zero: busy-poll). See
    /// `worker::idle` for the adaptive policy.
    pub idle_sleep: Duration,
    pub max_sessions: usize,
    pub timeouts: Timeouts,
    /// The clock origin shared by all workers (flow-control windows compare their times).
    pub epoch: Instant,
}

struct Held {
    mbuf: Mbuf,
    port: u8,
    next_hop: Ipv4Addr,
    deadline_ms: u64,
}

/// The running worker: owned by one lcore, never sent elsewhere.
struct Worker {
    plan: WorkerPlan,
    state: WorkerState,
    /// Per-port output bursts, indexed like `plan.ports`.
    out: Vec<Burst>,
    /// Per-port bursts for the kernel.
    kernel: Vec<Burst>,
    /// Per-worker bursts for other workers' redirect rings.
    redirect: Vec<Burst>,
    held: Vec<Held>,
    /// Flow keys and hashes of the burst being processed (see `WorkerState::stage_burst`).
    hints: [Hint; BURST_SIZE],
    arp_sent: HashMap<Ipv4Addr, u64>,
    port_index: HashMap<u16, u8>,
    /// Generation of the service table whose local addresses the port pools cover.
    laddr_generation: u64,
    /// When sync records were last handed to the sync thread (worker clock, ms).
    sync_handover_ms: u64,
    epoch: Instant,
    /// The millisecond clock, from the TSC (re-anchored to `epoch` now and then).
    clock: clock::TscClock,
    _not_send: PhantomData<*const ()>,
}

/// An mbuf seen through the pipeline's buffer trait.
struct MbufBuf<'a>(&'a mut Mbuf);

impl PacketBuf for MbufBuf<'_> {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n).is_ok()
    }
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n).is_ok()
    }
    fn append(&mut self, n: usize) -> bool {
        self.0.append(n).is_ok()
    }
    fn trim(&mut self, n: usize) -> bool {
        self.0.trim(n).is_ok()
    }
}

/// Forgets ARP requests older than the retry interval: the map stays as small as the number of
/// next hops asked for within `ARP_RETRY_MS`, whatever the traffic.
fn prune_arp_sent(m: &mut HashMap<Ipv4Addr, u64>, now: u64) {
    m.retain(|_, t| now < *t + ARP_RETRY_MS);
}

/// Runs a worker until the stop flag is raised; returns 0.
pub fn run(plan: WorkerPlan) -> i32 {
    let services = plan.shared.services.load_full();
    let mut state = WorkerState::new(plan.index, plan.workers, &services, plan.max_sessions, plan.timeouts);
    // New sessions' real-server-side index entries are written at the end of each burst.
    state.sessions.defer_rs_side(true);
    let nports = plan.ports.len();
    let port_index = plan.ports.iter().enumerate().map(|(i, p)| (p.port_id, u8::try_from(i).unwrap_or(u8::MAX))).collect();
    let mut w = Worker {
        state,
        out: (0..nports).map(|_| Burst::new()).collect(),
        kernel: (0..nports).map(|_| Burst::new()).collect(),
        redirect: (0..plan.workers).map(|_| Burst::new()).collect(),
        held: Vec::with_capacity(MAX_HELD),
        hints: [Hint::NONE; BURST_SIZE],
        arp_sent: HashMap::new(),
        port_index,
        laddr_generation: services.generation(),
        sync_handover_ms: 0,
        epoch: plan.epoch,
        clock: clock::TscClock::new(dpdk::tsc_hz(), dpdk::tsc(), epoch_ms(plan.epoch)),
        plan,
        _not_send: PhantomData,
    };
    w.poll_loop();
    0
}

/// Milliseconds on the clock all workers share (1000 at `epoch`, so 0 never means "now").
fn epoch_ms(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1000
}

impl Worker {
    /// The worker clock: one TSC read per call, re-anchored to the shared monotonic clock every
    /// `clock::RESYNC_EVERY` calls.
    fn now_ms(&mut self) -> u64 {
        let tsc = dpdk::tsc();
        if self.clock.due() {
            return self.clock.resync(tsc, epoch_ms(self.epoch));
        }
        self.clock.now(tsc)
    }

    fn poll_loop(&mut self) {
        // One reference for the whole loop: cloning the `Arc` per pass would write its count,
        // a cache line every worker shares, on every pass.
        let shared = Arc::clone(&self.plan.shared);
        let mut view = WorkerView::new(&shared);
        let (mut loops, mut busy) = (0u64, 0u64);
        let max_sleep = u32::try_from(self.plan.idle_sleep.as_micros()).unwrap_or(u32::MAX);
        let mut idle = idle::IdlePolicy::new(max_sleep);
        if max_sleep > 0 {
            // Sleeps of a few microseconds: the default slack (50 us) would stretch each one.
            if let Err(e) = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1_000)) {
                tracing::warn!("worker {}: timer slack left at its default: {e}", self.plan.index);
            }
        }
        while !self.plan.shared.stop.load(Ordering::Relaxed) {
            loops += 1;
            let now = self.now_ms();
            let got = self.iteration(&shared, &mut view, now);
            if got > 0 {
                busy += 1;
            }
            self.state.expire(now, Some(&self.plan.shared.owners));
            if let Some(mail) = self.plan.shared.mailboxes.get(usize::from(self.plan.index)).and_then(Mailbox::pop) {
                let services = self.plan.shared.services.load();
                let reply = mailbox::serve(self.plan.index, &mut self.state, &mail.req, now, &services);
                let zeroed = matches!(mail.req, Request::ZeroCounters);
                mail.answer(self.plan.index, reply);
                if zeroed {
                    self.publish(loops, busy);
                }
            }
            if loops % PUBLISH_EVERY == 0 {
                self.publish(loops, busy);
            }
            if let idle::Idle::Sleep { length, first } = idle.after_pass(got) {
                if first {
                    self.publish(loops, busy);
                }
                std::thread::sleep(length);
            }
        }
        self.publish(loops, busy);
        // Held packets and partial bursts are freed on drop (counted as timeouts).
        let n = self.held.len() as u64;
        self.state.counters.add_drops(DropReason::NeighTimeout, n);
        self.held.clear();
    }

    fn publish(&mut self, loops: u64, busy: u64) {
        self.plan.stats.publish(&self.state.counters, loops, busy, self.state.sessions.len() as u64);
        for upd in self.state.learned.drain(..) {
            // A full queue only delays learning: the next ARP seen reports it again.
            let _ = self.plan.shared.learned.push(upd);
        }
    }

    /// One pass over every queue; returns how many frames were handled.
    fn iteration(&mut self, shared: &Shared, view: &mut WorkerView<'_>, now: u64) -> usize {
        let (neigh, ifaces, services) = view.load();
        if services.generation() != self.laddr_generation {
            // A new snapshot may bring new local addresses: give this worker their ports.
            self.state.sync_laddrs(services);
            self.laddr_generation = services.generation();
        }
        let ctx = Ctx {
            ports: ifaces,
            services,
            neigh,
            worker: self.plan.index,
            workers: self.plan.workers,
            now_ms: now,
            owners: Some(&shared.owners),
            sync: shared.sync.worker_params(),
        };
        let mut handled = 0;
        let mut rx = Burst::new();
        for i in 0..self.plan.ports.len() {
            let n = self.plan.ports[i].rx.rx_burst(&mut rx);
            self.state.counters.rx += n as u64;
            handled += n;
            self.handle_burst(&mut rx, Some(u8::try_from(i).unwrap_or(u8::MAX)), &ctx, now);
        }
        // Return traffic other workers received for sessions this worker owns.
        let n = self.plan.shared.rings[usize::from(self.plan.index)].dequeue_burst(&mut rx);
        self.state.counters.redirected_in += n as u64;
        handled += n;
        self.handle_burst(&mut rx, None, &ctx, now);
        if !self.held.is_empty() {
            self.release_held(&ctx, now);
        }
        if !self.state.emit.is_empty() {
            self.send_emitted();
        }
        self.exchange_sync(&ctx);
        self.flush();
        handled + self.poll_kernel()
    }

    /// Runs a burst through the pipeline, looked up in stages when the session table is large
    /// (`WorkerState::stage_burst`). `in_port`: the port it came in on; `None` for frames from
    /// the redirect ring, which carry their port.
    fn handle_burst(&mut self, rx: &mut Burst, in_port: Option<u8>, ctx: &Ctx<'_>, now: u64) {
        if rx.is_empty() {
            return;
        }
        let t0 = dpdk::tsc();
        let staged = self.state.stage_burst(rx.iter().map(Mbuf::data), &mut self.hints);
        for (i, m) in rx.drain(..).enumerate() {
            let port = in_port.unwrap_or_else(|| self.port_index.get(&m.port()).copied().unwrap_or(0));
            if staged {
                self.state.sessions.set_hint(self.hints.get(i).copied().unwrap_or(Hint::NONE));
            }
            self.handle(m, port, ctx, now);
        }
        if staged {
            self.state.sessions.set_hint(Hint::NONE);
        }
        self.state.sessions.settle();
        self.state.counters.pipeline_cycles += dpdk::tsc().wrapping_sub(t0);
    }

    /// Session sync: installs one batch of records from the sync thread, and hands this pass's
    /// records to it (one queue operation each, only when there is something to move).
    fn exchange_sync(&mut self, ctx: &Ctx<'_>) {
        let w = usize::from(self.plan.index);
        let sync = &self.plan.shared.sync;
        if let Some(batch) = sync.inbound.get(w).and_then(pop_if_any) {
            for rec in &batch {
                // Outcomes are counted by `adopt`.
                let _ = self.state.adopt(rec, ctx);
            }
        }
        let n = self.state.sync_out.len();
        if n == 0 || (n < SYNC_HANDOVER_AT && ctx.now_ms <= self.sync_handover_ms) {
            return;
        }
        self.sync_handover_ms = ctx.now_ms;
        let fresh = sync.spare.get(w).and_then(|q| q.pop()).unwrap_or_default();
        let full = std::mem::replace(&mut self.state.sync_out, fresh);
        if let Some(q) = sync.out.get(w) {
            if let Err(mut full) = q.push(full) {
                // The sync thread is behind: these records are lost (the next sync of each
                // session carries it again).
                self.state.counters.sync_queue_full += full.len() as u64;
                full.clear();
                self.state.sync_out = full;
            }
        }
    }

    fn handle(&mut self, mut m: Mbuf, in_port: u8, ctx: &Ctx<'_>, now: u64) {
        let verdict = if m.is_contiguous() {
            pipeline::process(&mut MbufBuf(&mut m), in_port, ctx, &mut self.state)
        } else {
            Verdict::Drop(DropReason::MultiSegment)
        };
        match verdict {
            Verdict::Tx(p) => self.push_out(p, m),
            Verdict::ToKernel => {
                let k = &mut self.kernel[usize::from(in_port)];
                if k.is_full() {
                    self.flush_kernel(usize::from(in_port));
                }
                self.kernel[usize::from(in_port)].push(m);
            }
            Verdict::Redirect(w) => {
                let b = &mut self.redirect[usize::from(w)];
                if b.is_full() {
                    self.flush_redirect(usize::from(w));
                }
                self.redirect[usize::from(w)].push(m);
            }
            Verdict::Hold { port, next_hop } => self.hold(m, port, next_hop, ctx, now),
            Verdict::Drop(reason) => self.state.counters.drop(reason),
        }
    }

    /// Frames the pipeline originated (SYN proxy window updates): copied into fresh mbufs.
    fn send_emitted(&mut self) {
        let mut emit = std::mem::take(&mut self.state.emit);
        for e in emit.drain(..) {
            let Some(mut m) = self.plan.pool.alloc() else {
                self.state.counters.drop(DropReason::NoMbuf);
                continue;
            };
            let Ok(buf) = m.append(e.bytes().len()) else {
                self.state.counters.drop(DropReason::NoMbuf);
                continue;
            };
            buf.copy_from_slice(e.bytes());
            self.push_out(e.port, m);
        }
        // The same vector again: nothing is allocated per pass.
        self.state.emit = emit;
    }

    fn push_out(&mut self, port: u8, m: Mbuf) {
        let p = usize::from(port);
        if p >= self.out.len() {
            self.state.counters.drop(DropReason::NoRoute);
            return;
        }
        if self.out[p].len() == BURST_SIZE {
            self.flush_port(p);
        }
        self.out[p].push(m);
    }

    fn hold(&mut self, m: Mbuf, port: u8, next_hop: Ipv4Addr, ctx: &Ctx<'_>, now: u64) {
        if self.held.len() >= MAX_HELD {
            self.state.counters.drop(DropReason::NeighHoldFull);
            return;
        }
        self.held.push(Held { mbuf: m, port, next_hop, deadline_ms: now + HOLD_MS });
        self.solicit(port, next_hop, ctx, now);
    }

    /// Sends an ARP request for `next_hop` out of `port`, at most every ARP_RETRY_MS.
    fn solicit(&mut self, port: u8, next_hop: Ipv4Addr, ctx: &Ctx<'_>, now: u64) {
        if self.arp_sent.get(&next_hop).is_some_and(|t| now < t + ARP_RETRY_MS) {
            return;
        }
        let Some(iface) = ctx.ports.get(usize::from(port)) else { return };
        let Some(src) = iface.source_for(next_hop).or_else(|| iface.addrs.first().map(|a| a.0)) else {
            return;
        };
        let Some(mut m) = self.plan.pool.alloc() else {
            self.state.counters.drop(DropReason::NoMbuf);
            return;
        };
        let Ok(buf) = m.append(ARP_FRAME_LEN) else {
            self.state.counters.drop(DropReason::NoMbuf);
            return;
        };
        emit_arp_request(buf, iface.mac, src, next_hop);
        if self.arp_sent.len() >= ARP_SENT_PRUNE_AT {
            prune_arp_sent(&mut self.arp_sent, now);
        }
        self.arp_sent.insert(next_hop, now);
        self.state.counters.arp_requests += 1;
        self.push_out(port, m);
    }

    fn release_held(&mut self, ctx: &Ctx<'_>, now: u64) {
        let mut i = 0;
        while i < self.held.len() {
            let h = &self.held[i];
            if let Some(mac) = ctx.neigh.get(h.next_hop) {
                let mut h = self.held.swap_remove(i);
                let src_mac = ctx.ports[usize::from(h.port)].mac;
                let mut eth = EthernetFrame::new_unchecked(h.mbuf.data_mut());
                eth.set_dst_addr(mac);
                eth.set_src_addr(src_mac);
                self.state.counters.neigh_released += 1;
                self.push_out(h.port, h.mbuf);
            } else if now >= h.deadline_ms {
                drop(self.held.swap_remove(i));
                self.state.counters.drop(DropReason::NeighTimeout);
            } else {
                let (port, nh) = (h.port, h.next_hop);
                self.solicit(port, nh, ctx, now);
                i += 1;
            }
        }
    }

    fn flush_port(&mut self, p: usize) {
        let r = self.plan.ports[p].tx.tx_burst(&mut self.out[p]);
        self.state.counters.tx += r.sent as u64;
        self.state.counters.add_drops(DropReason::TxFull, r.dropped as u64);
    }

    fn flush_kernel(&mut self, p: usize) {
        let burst = &mut self.kernel[p];
        match &mut self.plan.ports[p].tap {
            Some((_, tap_tx)) => {
                let r = tap_tx.tx_burst(burst);
                self.state.counters.to_kernel += r.sent as u64;
                self.state.counters.add_drops(DropReason::KernelTxFull, r.dropped as u64);
            }
            None => {
                self.state.counters.add_drops(DropReason::NoKernelPath, burst.len() as u64);
                burst.clear();
            }
        }
    }

    fn flush_redirect(&mut self, w: usize) {
        let burst = &mut self.redirect[w];
        let n = self.plan.shared.rings[w].enqueue_burst(burst);
        self.state.counters.redirected_out += n as u64;
        self.state.counters.add_drops(DropReason::RedirectFull, burst.len() as u64);
        burst.clear();
    }

    fn flush(&mut self) {
        for p in 0..self.out.len() {
            if !self.out[p].is_empty() {
                self.flush_port(p);
            }
            if !self.kernel[p].is_empty() {
                self.flush_kernel(p);
            }
        }
        for w in 0..self.redirect.len() {
            if !self.redirect[w].is_empty() {
                self.flush_redirect(w);
            }
        }
    }

    /// Frames the kernel sends out through each TAP leave by the matching data port.
    fn poll_kernel(&mut self) -> usize {
        let mut total = 0;
        let mut burst = Burst::new();
        for p in 0..self.plan.ports.len() {
            let port = &mut self.plan.ports[p];
            let Some((tap_rx, _)) = &mut port.tap else { continue };
            let n = tap_rx.rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            total += n;
            self.state.counters.from_kernel += n as u64;
            let r = port.tx.tx_burst(&mut burst);
            self.state.counters.tx += r.sent as u64;
            self.state.counters.add_drops(DropReason::FromKernelTxFull, r.dropped as u64);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_sent_is_pruned_of_expired_entries() {
        let mut m = HashMap::new();
        for i in 0..10_000u32 {
            let now = u64::from(i);
            if m.len() >= ARP_SENT_PRUNE_AT {
                prune_arp_sent(&mut m, now);
            }
            m.insert(Ipv4Addr::from(0x0a00_0000 + i), now);
        }
        assert!(m.len() <= ARP_SENT_PRUNE_AT, "{} entries", m.len());
        assert!(m.values().all(|t| *t + ARP_RETRY_MS + ARP_SENT_PRUNE_AT as u64 > 10_000), "only recent ones stay");
    }
}
