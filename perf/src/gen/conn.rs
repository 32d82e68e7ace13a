//! TCP connections through the director, both ends played here (the state machines are in
//! [`super::peers`]), optionally beside a SYN flood from spoofed sources ([`super::flood`]).
//! Connections per second count fully closed connections (the server's last ACK reached the
//! client).

use std::time::Duration;

use dpdk::Mbuf;
use fastpath::wire::{EthernetAddress, TcpFlags};

use super::engine::{Action, Engine, Pacer, PortCounters, CLIENT, SERVER};
use super::flood::{FloodCounters, Rng};
use super::peers::{isn_at, Client, ConnCounters, Server};
use super::track::HalfOpen;
use super::{GenConfig, Mode, Stop};
use crate::flows::FlowCursor;
use crate::hist::Histogram;
use crate::packet::{write_segment, Parsed, Segment, WINDOW};

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
    /// SYN sent to a SYN proxy's window update received.
    pub window_update_latency: Histogram,
    pub end: ConnCounters,
    /// The flood's counters at the start and end of the window, and after the drain.
    pub flood_before: FloodCounters,
    pub flood_after: FloodCounters,
    pub flood_end: FloodCounters,
    /// Half-open connections at the servers after the drain, the most at once, SYNs not
    /// tracked (table full) and repeated SYNs; `None` without tracking.
    pub half_open: Option<HalfOpenReport>,
}

/// The server side's SYN queue at the end.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct HalfOpenReport {
    pub at_end: usize,
    pub peak: usize,
    pub untracked: u64,
    pub dup_syns: u64,
}

/// Connections made one at a time before opening the window (the director's scheduler
/// reaches every real server and ARP-resolves it; packets it holds meanwhile are bounded).
const PRIMING: u64 = 16;
/// Bursts read per port and pass while they come in full (when tracking half-open
/// connections).
const DRAIN_BURSTS: usize = 4;
/// Most half-open connections tracked.
const HALF_OPEN_CAP: usize = 1 << 21;

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

/// Sends `reply` back out of the port `m` came in on (from `mac` to the sender).
fn answer(
    m: &mut Mbuf,
    mac: EthernetAddress,
    d: &Parsed,
    reply: Option<Segment>,
    now: u64,
) -> Action {
    match reply {
        Some(seg) if rewrite(m, (mac, d.src_mac), &seg, now) => Action::Reply,
        _ => Action::Free,
    }
}

/// Opens connections at `cfg.rate_pps` per second (0: as fast as the window allows) with at
/// most `cfg.concurrency` unfinished, for `warmup + duration`, beside `cfg.flood` if set;
/// measures the last `duration`. `Mode::Flood` opens no connections (the flood alone).
pub fn run(e: &mut Engine, cfg: &GenConfig, dut_mac: EthernetAddress, stop: &Stop) -> ConnResult {
    let cmac = e.ports[CLIENT].mac;
    let smac = e.ports[SERVER].mac;
    let set = cfg.flows;
    let legit = cfg.mode != Mode::Flood;
    let flood = cfg.flood;
    let prefix = flood.map(|f| f.sources);
    let mut cursor = FlowCursor::new(set);
    let mut c = ConnCounters::default();
    let mut fc = FloodCounters::default();
    let mut half = (cfg.track_half_open || flood.is_some()).then(|| HalfOpen::new(HALF_OPEN_CAP));
    let mut connect = Histogram::new();
    let mut handshake = Histogram::new();
    let mut opened = Histogram::new();
    let start = dpdk::tsc();
    let mut rng = Rng::new(start);
    // A first connection alone lets the director resolve the real servers' MACs.
    let measure_at = start + e.cycles(cfg.warmup);
    let end_at = measure_at + e.cycles(cfg.duration);
    // Connections still open after this long without any progress are counted lost.
    let stall = e.cycles(Duration::from_millis(250));
    let gap_10ms = e.cycles(Duration::from_millis(10));
    let mut in_gap = false;
    let mut pacer = Pacer::new(cfg.rate_pps, e.hz, start);
    // A flood at a set rate holds it through the ring's full spells (up to 50 ms behind).
    let flood_pps = flood.map_or(0, |f| f.pps);
    let mut flood_pacer = Pacer::new(flood_pps, e.hz, start).with_catch_up(flood_pps / 20);
    // The generator's own replies wait (behind nothing new) instead of being dropped when
    // the ring toward the director is full: a flood fills it, and a dropped reply would leave
    // a half-open connection that is the generator's doing.
    let retain = flood.is_some() || cfg.track_half_open;
    e.retain_replies = retain;
    let (mut measuring, mut t_measure) = (false, measure_at);
    let (mut before, mut ports_before, mut flood_before) = (c, e.counters, fc);
    let (mut last_closed, mut last_progress) = (0u64, start);
    let syn = |tuple, seq| Segment {
        tuple,
        seq,
        ack: 0,
        flags: TcpFlags::SYN,
        payload_len: 0,
        mss: true,
        window: WINDOW,
    };
    let syn_len = syn(set.tuple(0), 0).frame_len();
    loop {
        let now = dpdk::tsc();
        if !measuring && now >= measure_at {
            measuring = true;
            c.max_gap_us = 0;
            before = c;
            ports_before = e.counters;
            flood_before = fc;
            connect.clear();
            handshake.clear();
            opened.clear();
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
        if retain {
            e.push_pending(SERVER);
        }
        // Order on the client port: retained replies, then a bounded flood (it arrives at its
        // rate whatever the real clients do), then new connections, then an unbounded flood
        // (it takes the room left). New frames wait while replies are backlogged.
        e.push_pending(CLIENT);
        let primed = !legit || c.closed >= PRIMING;
        let room_for_new =
            |e: &Engine| e.ports[CLIENT].backlog.is_empty() && !e.ports[CLIENT].pending.is_full();
        if let Some(f) = flood.as_ref().filter(|f| f.pps > 0 && primed) {
            if room_for_new(e) {
                let want = flood_pacer.allowance(now, dpdk::BURST_SIZE);
                if want > 0 {
                    let n = e.send_new(CLIENT, want, syn_len, |_, b| {
                        write_segment(b, (cmac, dut_mac), &f.segment(&mut rng), now);
                    });
                    flood_pacer.issued(n);
                    fc.sent += n as u64;
                }
            }
        }
        if legit && room_for_new(e) {
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
                    write_segment(f, (cmac, dut_mac), &syn(t, isn_at(now)), now);
                });
                pacer.issued(n);
                c.syn_sent += n as u64;
            }
        }
        if let Some(f) = flood
            .as_ref()
            .filter(|f| f.pps == 0 && primed && !e.has_pending(CLIENT))
        {
            let (sent, refused) = e.send_drop(CLIENT, dpdk::BURST_SIZE, syn_len, |b| {
                write_segment(b, (cmac, dut_mac), &f.segment(&mut rng), now);
            });
            fc.sent += sent as u64;
            fc.refused += refused as u64;
        }
        let mut server = Server {
            c: &mut c,
            resp: cfg.resp_size,
            flood: prefix,
            half_open: half.as_mut(),
        };
        // While tracking, keep reading while bursts come in full (at most a few): the
        // director drops what it cannot hand to a full ring, and nothing here retransmits.
        let passes = if retain { DRAIN_BURSTS } else { 1 };
        for _ in 0..passes {
            let n = e.poll(SERVER, |m, d, now| {
                let r = server.on_segment(d);
                answer(m, smac, d, r, now)
            });
            if n < dpdk::BURST_SIZE {
                break;
            }
        }
        let mut client = Client {
            c: &mut c,
            connect: &mut connect,
            handshake: &mut handshake,
            opened: &mut opened,
            flood: prefix.map(|p| (p, &mut fc)),
            req: cfg.req_size,
            measuring,
        };
        for _ in 0..passes {
            let n = e.poll(CLIENT, |m, d, now| {
                let r = client.on_segment(d, now);
                answer(m, cmac, d, r, now)
            });
            if n < dpdk::BURST_SIZE {
                break;
            }
        }
    }
    let (after, ports_after, flood_after) = (c, e.counters, fc);
    let seconds = (dpdk::tsc() - t_measure) as f64 / e.hz as f64;
    // Let the connections in flight finish (their packets are not in the window).
    let (mut h1, mut h2, mut h3) = (Histogram::new(), Histogram::new(), Histogram::new());
    let mut client = Client {
        c: &mut c,
        connect: &mut h1,
        handshake: &mut h2,
        opened: &mut h3,
        flood: prefix.map(|p| (p, &mut fc)),
        req: cfg.req_size,
        measuring: false,
    };
    let mut srv = ConnCounters::default();
    let mut server = Server {
        c: &mut srv,
        resp: cfg.resp_size,
        flood: prefix,
        half_open: half.as_mut(),
    };
    e.idle(Duration::from_millis(100), |p, m, d, now| {
        if p == SERVER {
            let r = server.on_segment(d);
            answer(m, smac, d, r, now)
        } else {
            let r = client.on_segment(d, now);
            answer(m, cmac, d, r, now)
        }
    });
    e.retain_replies = false;
    // Totals include what the servers saw while draining.
    c.srv_syn += srv.srv_syn;
    c.srv_ack += srv.srv_ack;
    c.srv_req += srv.srv_req;
    c.srv_fin += srv.srv_fin;
    c.srv_flood_seen += srv.srv_flood_seen;
    c.resets += srv.resets;
    ConnResult {
        before,
        after,
        ports_before,
        ports_after,
        seconds,
        connect_latency: connect,
        handshake_latency: handshake,
        window_update_latency: opened,
        end: c,
        flood_before,
        flood_after,
        flood_end: fc,
        half_open: half.map(|h| HalfOpenReport {
            at_end: h.len(),
            peak: h.peak,
            untracked: h.untracked,
            dup_syns: h.dup_syns,
        }),
    }
}
