//! The generator's I/O core: two ports (the client side, facing the director's WAN, and the
//! server side, facing its LAN), receive loops that answer ARP for the addresses each side
//! plays, transmit with back-pressure, rate pacing on the TSC, counters.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

use dpdk::{free_burst, Burst, Mbuf, Mempool, Port, PortStats, RxQueue, TxQueue, BURST_SIZE};
use fastpath::wire::{ArpOperation, ArpRepr, EthernetAddress};

use crate::flows::IpRange;
use crate::packet::{self, Parsed, Rx};

/// Index of the client-side port.
pub const CLIENT: usize = 0;
/// Index of the server-side port.
pub const SERVER: usize = 1;

/// One port with its queue pair and the addresses it answers ARP for.
#[derive(Debug)]
pub struct PortIo {
    pub port: Port,
    pub rx: RxQueue,
    pub tx: TxQueue,
    pub mac: EthernetAddress,
    pub owns: Vec<IpRange>,
    /// Frames the driver did not take yet (back-pressure: sent before anything new).
    pub pending: Burst,
    /// Retained replies beyond what `pending` holds, oldest first (`retain_replies`).
    pub backlog: VecDeque<Mbuf>,
    /// Replies built from received frames, sent at the end of the receive pass.
    pub out: Burst,
}

/// Per-port counters.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PortCounters {
    /// Frames handed to the driver.
    pub tx: u64,
    /// Frames the driver refused and that were dropped (replies only; generated traffic
    /// waits instead).
    pub tx_dropped: u64,
    /// TCP/UDP frames received.
    pub rx: u64,
    pub rx_bytes: u64,
    pub arp_in: u64,
    pub arp_replied: u64,
    pub rx_other: u64,
}

/// What a receive handler wants done with a data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Free it.
    Free,
    /// It was rewritten in place: send it back out of the port it came in on.
    Reply,
}

/// Two ports, a pool, counters and the TSC rate.
#[derive(Debug)]
pub struct Engine {
    pub ports: [PortIo; 2],
    pub pool: Mempool,
    pub counters: [PortCounters; 2],
    pub hz: u64,
    /// MACs learned from ARP replies (ip, mac), most recent last.
    pub learned: Vec<(Ipv4Addr, EthernetAddress)>,
    /// Replies the driver refuses wait in the port's pending burst and backlog (sent before
    /// anything new, up to [`MAX_BACKLOG`]) instead of being dropped: set while a flood
    /// shares the port or half-open connections are tracked, so the generator loses none of
    /// its own connections to a full ring.
    pub retain_replies: bool,
}

/// A transmit pacer: how many packets may go now to hold `rate` per second (0 = no limit).
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    rate: u64,
    hz: u64,
    start: u64,
    issued: u64,
    catch_up: u64,
}

/// Most retained replies per port beyond the pending burst.
pub const MAX_BACKLOG: usize = 8192;

/// Largest backlog a pacer lets accumulate after a stall (packets).
const MAX_CATCH_UP: u64 = 4 * BURST_SIZE as u64;

impl Pacer {
    /// A pacer for `rate` per second starting at TSC `now`.
    pub fn new(rate: u64, hz: u64, now: u64) -> Pacer {
        Pacer {
            rate,
            hz,
            start: now,
            issued: 0,
            catch_up: MAX_CATCH_UP,
        }
    }

    /// The same, catching up on at most `n` packets after a stall (instead of four bursts):
    /// for traffic that must hold its average rate through the port's busy spells.
    pub fn with_catch_up(mut self, n: u64) -> Pacer {
        self.catch_up = n.max(1);
        self
    }

    /// How many may be issued at TSC `now` (at most `cap`).
    #[inline]
    pub fn allowance(&mut self, now: u64, cap: usize) -> usize {
        if self.rate == 0 {
            return cap;
        }
        let due = u64::try_from(
            u128::from(now.saturating_sub(self.start)) * u128::from(self.rate)
                / u128::from(self.hz.max(1)),
        )
        .unwrap_or(u64::MAX);
        if due > self.issued + self.catch_up {
            self.issued = due - self.catch_up;
        }
        usize::try_from(due.saturating_sub(self.issued))
            .unwrap_or(cap)
            .min(cap)
    }

    /// Records that `n` were issued.
    #[inline]
    pub fn issued(&mut self, n: usize) {
        self.issued += n as u64;
    }
}

impl Engine {
    /// Cycles for a duration.
    pub fn cycles(&self, d: Duration) -> u64 {
        crate::f64_to_u64(d.as_secs_f64() * self.hz as f64)
    }

    /// Nanoseconds for a cycle count.
    pub fn ns(&self, cycles: u64) -> f64 {
        cycles as f64 * 1e9 / self.hz.max(1) as f64
    }

    /// Waits until both links are up; false on timeout.
    pub fn wait_links(&mut self, timeout: Duration, stop: &dyn Fn() -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.ports.iter().all(|p| p.port.link().is_ok_and(|l| l.up)) {
                return true;
            }
            if std::time::Instant::now() >= deadline || stop() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Port statistics of both ports.
    pub fn port_stats(&self) -> [PortStats; 2] {
        [0, 1].map(|i| self.ports[i].port.stats().unwrap_or_default())
    }

    /// Sends what is pending on port `p`; returns how many the driver took.
    #[inline]
    pub fn push_pending(&mut self, p: usize) -> usize {
        let io = &mut self.ports[p];
        while !io.pending.is_full() {
            let Some(m) = io.backlog.pop_front() else {
                break;
            };
            io.pending.push(m);
        }
        if io.pending.is_empty() {
            return 0;
        }
        let n = io.tx.tx_burst_retain(&mut io.pending);
        self.counters[p].tx += n as u64;
        n
    }

    /// Whether port `p` still has frames the driver has not taken.
    #[inline]
    pub fn has_pending(&self, p: usize) -> bool {
        !self.ports[p].pending.is_empty() || !self.ports[p].backlog.is_empty()
    }

    /// Allocates up to `n` frames of `len` bytes for port `p`, lets `fill(i, bytes)` write
    /// each, and sends them; those the driver refuses stay pending. Returns how many were
    /// built (0 when the pool is dry).
    #[inline]
    pub fn send_new(
        &mut self,
        p: usize,
        n: usize,
        len: usize,
        mut fill: impl FnMut(usize, &mut [u8]),
    ) -> usize {
        let io = &mut self.ports[p];
        let start = io.pending.len();
        let n = n.min(BURST_SIZE - start);
        if n == 0 || !self.pool.alloc_bulk(&mut io.pending, n) {
            return 0;
        }
        for (i, m) in io.pending[start..].iter_mut().enumerate() {
            match m.append(len) {
                Ok(bytes) => fill(i, bytes),
                Err(_) => return 0,
            }
        }
        self.push_pending(p);
        n
    }

    fn owns(&self, p: usize, ip: Ipv4Addr) -> bool {
        self.ports[p].owns.iter().any(|r| r.contains(ip))
    }

    /// Queues a reply frame on port `p`, flushing first if the reply burst is full.
    #[inline]
    fn queue_reply(&mut self, p: usize, m: Mbuf) {
        if self.ports[p].out.is_full() {
            self.flush_replies(p);
        }
        self.ports[p].out.push(m);
    }

    /// Sends the queued replies of port `p`; what the driver refuses is dropped and counted
    /// (or, with `retain_replies`, kept pending while there is room).
    pub fn flush_replies(&mut self, p: usize) {
        let io = &mut self.ports[p];
        if io.out.is_empty() {
            return;
        }
        if self.retain_replies {
            let sent = io.tx.tx_burst_retain(&mut io.out);
            self.counters[p].tx += sent as u64;
            for m in io.out.drain(..) {
                if !io.backlog.is_empty() || io.pending.is_full() {
                    if io.backlog.len() < MAX_BACKLOG {
                        io.backlog.push_back(m);
                    } else {
                        // Dropping the mbuf frees it.
                        self.counters[p].tx_dropped += 1;
                    }
                } else {
                    io.pending.push(m);
                }
            }
            return;
        }
        let r = io.tx.tx_burst(&mut io.out);
        self.counters[p].tx += r.sent as u64;
        self.counters[p].tx_dropped += r.dropped as u64;
    }

    /// Allocates up to `n` frames of `len` bytes for port `p`, lets `fill` write each and
    /// sends them once: nothing is kept for later (a flood's frames). Returns (taken by the
    /// driver, refused and freed); (0, 0) when the pool is dry.
    #[inline]
    pub fn send_drop(
        &mut self,
        p: usize,
        n: usize,
        len: usize,
        mut fill: impl FnMut(&mut [u8]),
    ) -> (usize, usize) {
        let mut burst = Burst::new();
        let n = n.min(BURST_SIZE);
        if n == 0 || !self.pool.alloc_bulk(&mut burst, n) {
            return (0, 0);
        }
        for m in &mut burst {
            match m.append(len) {
                Ok(bytes) => fill(bytes),
                Err(_) => return (0, 0),
            }
        }
        let r = self.ports[p].tx.tx_burst(&mut burst);
        self.counters[p].tx += r.sent as u64;
        (r.sent, r.dropped)
    }

    /// Receives one burst on port `p`: answers ARP, learns from ARP replies, hands TCP/UDP
    /// frames to `handler` (with the TSC read once per burst, after receiving), frees or sends
    /// back what it says. Returns the number of frames received.
    #[inline]
    pub fn poll(
        &mut self,
        p: usize,
        mut handler: impl FnMut(&mut Mbuf, &Parsed, u64) -> Action,
    ) -> usize {
        self.receive(p, |e, m, now, free| match packet::parse(m.data()) {
            Rx::Data(d) => e.data(p, m, free, |m| handler(m, &d, now)),
            rx => e.not_data(p, m, rx, free),
        })
    }

    /// [`poll`](Self::poll) for streams, whose handlers need no more of a data frame than its
    /// timestamp: plain data frames skip the full parse ([`packet::data_stamp`]); anything else
    /// (ARP, options, odd frames) is handled as `poll` does.
    #[inline]
    pub fn poll_stamps(
        &mut self,
        p: usize,
        mut handler: impl FnMut(&mut Mbuf, Option<u64>, u64) -> Action,
    ) -> usize {
        self.receive(p, |e, m, now, free| {
            let stamp = match packet::data_stamp(m.data()) {
                Some(s) => s,
                None => match packet::parse(m.data()) {
                    Rx::Data(d) => d.stamp,
                    rx => return e.not_data(p, m, rx, free),
                },
            };
            e.data(p, m, free, |m| handler(m, stamp, now));
        })
    }

    /// One burst from port `p`, each frame given to `each` with the TSC read after receiving
    /// and the burst of frames to free; then frees them and sends the queued replies.
    #[inline]
    fn receive(&mut self, p: usize, mut each: impl FnMut(&mut Self, Mbuf, u64, &mut Burst)) -> usize {
        let mut burst = Burst::new();
        let n = self.ports[p].rx.rx_burst(&mut burst);
        if n == 0 {
            return 0;
        }
        let now = dpdk::tsc();
        let mut free = Burst::new();
        for m in burst.drain(..) {
            each(self, m, now, &mut free);
        }
        free_burst(&mut free);
        self.flush_replies(p);
        n
    }

    /// A received data frame: counted, then handed to `handler`, and sent back or freed as it
    /// says.
    #[inline]
    fn data(&mut self, p: usize, mut m: Mbuf, free: &mut Burst, handler: impl FnOnce(&mut Mbuf) -> Action) {
        self.counters[p].rx += 1;
        self.counters[p].rx_bytes += m.data_len() as u64;
        if handler(&mut m) == Action::Reply {
            self.queue_reply(p, m);
        } else {
            free.push(m);
        }
    }

    /// A received frame that is not data: ARP is learned or answered, the rest counted.
    fn not_data(&mut self, p: usize, mut m: Mbuf, rx: Rx, free: &mut Burst) {
        match rx {
            Rx::Arp(a) => {
                self.counters[p].arp_in += 1;
                let ArpRepr::EthernetIpv4 {
                    operation,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } = a;
                if operation == ArpOperation::Reply {
                    self.learned.push((source_protocol_addr, source_hardware_addr));
                    free.push(m);
                } else if operation == ArpOperation::Request && self.owns(p, target_protocol_addr) {
                    let mac = self.ports[p].mac;
                    packet::arp_reply_in_place(m.data_mut(), &a, mac);
                    self.counters[p].arp_replied += 1;
                    self.queue_reply(p, m);
                } else {
                    free.push(m);
                }
            }
            // Callers count data themselves; only `Other` comes here.
            Rx::Other | Rx::Data(_) => {
                self.counters[p].rx_other += 1;
                free.push(m);
            }
        }
    }

    /// Resolves `target`'s MAC on port `p` by ARP (asking as `src`), retrying every 200 ms
    /// while answering ARP on both ports; `None` on timeout.
    pub fn resolve(
        &mut self,
        p: usize,
        src: Ipv4Addr,
        target: Ipv4Addr,
        timeout: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Option<EthernetAddress> {
        let deadline = dpdk::tsc() + self.cycles(timeout);
        let retry = self.cycles(Duration::from_millis(200));
        let mut next_ask = 0;
        loop {
            let now = dpdk::tsc();
            if let Some(&(_, mac)) = self.learned.iter().rev().find(|(ip, _)| *ip == target) {
                return Some(mac);
            }
            if now >= deadline || stop() {
                return None;
            }
            if now >= next_ask {
                let mac = self.ports[p].mac;
                self.send_new(p, 1, 60, |_, f| packet::arp_request(f, mac, src, target));
                next_ask = now + retry;
            }
            self.push_pending(p);
            for q in [CLIENT, SERVER] {
                self.poll(q, |_, _, _| Action::Free);
            }
        }
    }

    /// Receives (answering ARP, freeing data) on both ports for `d`.
    pub fn idle(
        &mut self,
        d: Duration,
        mut handler: impl FnMut(usize, &mut Mbuf, &Parsed, u64) -> Action,
    ) {
        let end = dpdk::tsc() + self.cycles(d);
        loop {
            let now = dpdk::tsc();
            if now >= end {
                return;
            }
            for p in [CLIENT, SERVER] {
                self.push_pending(p);
                self.poll(p, |m, d, t| handler(p, m, d, t));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacers_hold_their_rate_and_bound_catch_up() {
        // 1000 per second on a 1 kHz clock: one per tick.
        let mut p = Pacer::new(1000, 1000, 0);
        assert_eq!(p.allowance(10, usize::MAX), 10);
        p.issued(10);
        assert_eq!(p.allowance(10, usize::MAX), 0);
        // A long stall: at most four bursts are made up.
        assert_eq!(p.allowance(10_000, usize::MAX), 4 * BURST_SIZE);
        let mut q = Pacer::new(1000, 1000, 0).with_catch_up(500);
        assert_eq!(q.allowance(10_000, usize::MAX), 500);
        assert_eq!(q.allowance(10_000, 32), 32, "capped per call");
        assert_eq!(Pacer::new(0, 1000, 0).allowance(5, 7), 7, "no limit");
    }
}
