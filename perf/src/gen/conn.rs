//! TCP connections through the director, both ends played here, statelessly:
//!
//! ```text
//! client                          director                         server
//! SYN  seq=isn (TSC)        ->    new session, TOA/MSS       ->   SYN-ACK seq=f(isn) ack=isn+1
//! ACK+request seq=isn+1     <-  ... SYN-ACK                         <-
//!                           ->    first ACK (TOA inserted)   ->   FIN+response
//! FIN-ACK                   <-  ... (connection time recorded)      <-
//!                           ->                               ->   ACK (closed)
//! ```
//!
//! Every reply is the received frame rewritten in place; the client recovers the SYN's TSC
//! from the acknowledgment numbers, so no per-connection state is kept. Connections per
//! second count fully closed connections (the server's last ACK reached the client).

use std::time::Duration;

use dpdk::Mbuf;
use fastpath::wire::{EthernetAddress, TcpFlags};

use super::engine::{Action, Engine, Pacer, PortCounters, CLIENT, SERVER};
use super::{GenConfig, Stop};
use crate::flows::FlowCursor;
use crate::hist::Histogram;
use crate::packet::{write_segment, Parsed, Proto, Segment};

/// Connection counters (client side unless named otherwise).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ConnCounters {
    pub syn_sent: u64,
    /// SYN-ACKs received.
    pub established: u64,
    /// Responses (with FIN) received.
    pub completed: u64,
    /// Final ACKs received: connections fully closed.
    pub closed: u64,
    /// Resets received on either side.
    pub resets: u64,
    /// Connections given up on (nothing closed for `STALL` while some were unfinished).
    pub lost: u64,
    /// Times nothing closed for more than 10 ms while connections were unfinished (the
    /// director stalled), and the longest such gap in microseconds.
    pub gaps_over_10ms: u64,
    pub max_gap_us: u64,
    /// Server side: SYNs, requests and FINs received.
    pub srv_syn: u64,
    pub srv_req: u64,
    pub srv_fin: u64,
}

/// What a connection run measured.
#[derive(Debug, Clone)]
pub struct ConnResult {
    pub before: ConnCounters,
    pub after: ConnCounters,
    pub ports_before: [PortCounters; 2],
    pub ports_after: [PortCounters; 2],
    pub seconds: f64,
    /// SYN sent to response received, TSC cycles.
    pub connect_latency: Histogram,
    /// SYN sent to SYN-ACK received.
    pub handshake_latency: Histogram,
    pub end: ConnCounters,
}

/// Connections made one at a time before opening the window (the director's scheduler
/// reaches every real server and ARP-resolves it; packets it holds meanwhile are bounded).
const PRIMING: u64 = 16;

/// Server's initial sequence number for a client ISN (any bijection works).
fn server_isn(client_isn: u32) -> u32 {
    client_isn ^ 0x5eed_cafe
}

/// Rewrites `m` into `seg` from `macs`; false (and the frame is freed) if it cannot grow.
fn rewrite(
    m: &mut Mbuf,
    macs: (EthernetAddress, EthernetAddress),
    seg: &Segment,
    now: u64,
) -> bool {
    let want = seg.frame_len();
    let have = m.data_len();
    let ok = if want > have {
        m.append(want - have).is_ok()
    } else {
        m.trim(have - want).is_ok()
    };
    if ok {
        write_segment(m.data_mut(), macs, seg, now);
    }
    ok
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct Client<'a> {
    c: &'a mut ConnCounters,
    connect: &'a mut Histogram,
    handshake: &'a mut Histogram,
    mac: EthernetAddress,
    req: usize,
    measuring: bool,
}

impl Client<'_> {
    fn on_frame(&mut self, m: &mut Mbuf, d: &Parsed, now: u64) -> Action {
        if d.proto != Proto::Tcp {
            return Action::Free;
        }
        let f = d.flags;
        let macs = (self.mac, d.src_mac);
        let back = d.tuple.reversed();
        let now32 = crate::low32(now);
        if f.contains(TcpFlags::RST) {
            self.c.resets += 1;
            Action::Free
        } else if f.contains(TcpFlags::SYN | TcpFlags::ACK) {
            self.c.established += 1;
            if self.measuring {
                self.handshake
                    .record(u64::from(now32.wrapping_sub(d.ack.wrapping_sub(1))));
            }
            let seg = Segment {
                tuple: back,
                seq: d.ack,
                ack: d.seq.wrapping_add(1),
                flags: TcpFlags::ACK | TcpFlags::PSH,
                payload_len: self.req,
                mss: false,
            };
            if rewrite(m, macs, &seg, now) {
                Action::Reply
            } else {
                Action::Free
            }
        } else if f.contains(TcpFlags::FIN) && d.payload_len > 0 {
            self.c.completed += 1;
            let isn = d.ack.wrapping_sub(1).wrapping_sub(u32_of(self.req));
            if self.measuring {
                self.connect.record(u64::from(now32.wrapping_sub(isn)));
            }
            let ack = d.seq.wrapping_add(u32_of(d.payload_len)).wrapping_add(1);
            let seg = Segment {
                tuple: back,
                seq: d.ack,
                ack,
                flags: TcpFlags::FIN | TcpFlags::ACK,
                payload_len: 0,
                mss: false,
            };
            if rewrite(m, macs, &seg, now) {
                Action::Reply
            } else {
                Action::Free
            }
        } else if f.contains(TcpFlags::ACK) && d.payload_len == 0 && !f.contains(TcpFlags::FIN) {
            self.c.closed += 1;
            Action::Free
        } else {
            Action::Free
        }
    }
}

fn server_frame(
    c: &mut ConnCounters,
    mac: EthernetAddress,
    resp: usize,
    m: &mut Mbuf,
    d: &Parsed,
    now: u64,
) -> Action {
    if d.proto != Proto::Tcp {
        return Action::Free;
    }
    let f = d.flags;
    let macs = (mac, d.src_mac);
    let back = d.tuple.reversed();
    let seg = if f.contains(TcpFlags::RST) {
        c.resets += 1;
        return Action::Free;
    } else if f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
        c.srv_syn += 1;
        Segment {
            tuple: back,
            seq: server_isn(d.seq),
            ack: d.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            payload_len: 0,
            mss: true,
        }
    } else if d.payload_len > 0 {
        c.srv_req += 1;
        let ack = d.seq.wrapping_add(u32_of(d.payload_len));
        Segment {
            tuple: back,
            seq: d.ack,
            ack,
            flags: TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK,
            payload_len: resp,
            mss: false,
        }
    } else if f.contains(TcpFlags::FIN) {
        c.srv_fin += 1;
        Segment {
            tuple: back,
            seq: d.ack,
            ack: d.seq.wrapping_add(1),
            flags: TcpFlags::ACK,
            payload_len: 0,
            mss: false,
        }
    } else {
        return Action::Free;
    };
    if rewrite(m, macs, &seg, now) {
        Action::Reply
    } else {
        Action::Free
    }
}

/// Opens connections at `cfg.rate_pps` per second (0: as fast as the window allows) with at
/// most `cfg.concurrency` unfinished, for `warmup + duration`; measures the last `duration`.
pub fn run(e: &mut Engine, cfg: &GenConfig, dut_mac: EthernetAddress, stop: &Stop) -> ConnResult {
    let cmac = e.ports[CLIENT].mac;
    let smac = e.ports[SERVER].mac;
    let set = cfg.flows;
    let mut cursor = FlowCursor::new(set);
    let mut c = ConnCounters::default();
    let mut connect = Histogram::new();
    let mut handshake = Histogram::new();
    let start = dpdk::tsc();
    // A first connection alone lets the director resolve the real servers' MACs.
    let measure_at = start + e.cycles(cfg.warmup);
    let end_at = measure_at + e.cycles(cfg.duration);
    // Connections still open after this long without any progress are counted lost.
    let stall = e.cycles(Duration::from_millis(250));
    let gap_10ms = e.cycles(Duration::from_millis(10));
    let mut in_gap = false;
    let mut pacer = Pacer::new(cfg.rate_pps, e.hz, start);
    let (mut measuring, mut t_measure) = (false, measure_at);
    let (mut before, mut ports_before) = (c, e.counters);
    let (mut last_closed, mut last_progress) = (0u64, start);
    let syn_len = Segment {
        tuple: set.tuple(0),
        seq: 0,
        ack: 0,
        flags: TcpFlags::SYN,
        payload_len: 0,
        mss: true,
    }
    .frame_len();
    loop {
        let now = dpdk::tsc();
        if !measuring && now >= measure_at {
            measuring = true;
            c.max_gap_us = 0;
            before = c;
            ports_before = e.counters;
            connect.clear();
            handshake.clear();
            t_measure = now;
        }
        if measuring && now >= end_at || stop() {
            break;
        }
        let inflight = c.syn_sent.saturating_sub(c.closed + c.lost);
        if c.closed != last_closed {
            last_closed = c.closed;
            last_progress = now;
            in_gap = false;
        } else if inflight > 0 && now - last_progress > gap_10ms {
            if !in_gap {
                c.gaps_over_10ms += 1;
                in_gap = true;
            }
            c.max_gap_us = c.max_gap_us.max(crate::f64_to_u64(
                (now - last_progress) as f64 / e.hz as f64 * 1e6,
            ));
        }
        if inflight > 0 && now - last_progress > stall {
            // Nothing closed for a while: count the window as lost and start afresh.
            c.lost += inflight;
            last_progress = now;
        }
        if e.has_pending(CLIENT) {
            e.push_pending(CLIENT);
        } else {
            // One connection at a time at first: the director resolves the servers' MACs.
            let cap = if c.closed < PRIMING {
                1
            } else {
                cfg.concurrency
            };
            let room =
                usize::try_from(cap.saturating_sub(c.syn_sent.saturating_sub(c.closed + c.lost)))
                    .unwrap_or(usize::MAX);
            let want = pacer.allowance(now, room.min(dpdk::BURST_SIZE));
            if want > 0 {
                let n = e.send_new(CLIENT, want, syn_len, |_, f| {
                    let (_, t) = cursor.next_flow();
                    let seg = Segment {
                        tuple: t,
                        seq: crate::low32(now),
                        ack: 0,
                        flags: TcpFlags::SYN,
                        payload_len: 0,
                        mss: true,
                    };
                    write_segment(f, (cmac, dut_mac), &seg, now);
                });
                pacer.issued(n);
                c.syn_sent += n as u64;
            }
        }
        let resp = cfg.resp_size;
        e.poll(SERVER, |m, d, now| {
            server_frame(&mut c, smac, resp, m, d, now)
        });
        let mut client = Client {
            c: &mut c,
            connect: &mut connect,
            handshake: &mut handshake,
            mac: cmac,
            req: cfg.req_size,
            measuring,
        };
        e.poll(CLIENT, |m, d, now| client.on_frame(m, d, now));
    }
    let (after, ports_after) = (c, e.counters);
    let seconds = (dpdk::tsc() - t_measure) as f64 / e.hz as f64;
    // Let the connections in flight finish (their packets are not in the window).
    let mut client = Client {
        c: &mut c,
        connect: &mut Histogram::new(),
        handshake: &mut Histogram::new(),
        mac: cmac,
        req: cfg.req_size,
        measuring: false,
    };
    let mut srv = ConnCounters::default();
    let resp = cfg.resp_size;
    e.idle(Duration::from_millis(100), |p, m, d, now| {
        if p == SERVER {
            server_frame(&mut srv, smac, resp, m, d, now)
        } else {
            client.on_frame(m, d, now)
        }
    });
    ConnResult {
        before,
        after,
        ports_before,
        ports_after,
        seconds,
        connect_latency: connect,
        handshake_latency: handshake,
        end: c,
    }
}
