//! Established-flow traffic (UDP or TCP) and session opening: the client side sends stamped
//! frames round-robin over the flow set; the server side counts what arrives and measures
//! one-way latency from the stamps.

use std::time::Duration;

use fastpath::wire::{EthernetAddress, TcpFlags};

use super::engine::{Action, Engine, Pacer, PortCounters, CLIENT, SERVER};
use super::{GenConfig, Mode, Stop};
use crate::flows::FlowCursor;
use crate::hist::Histogram;
use crate::packet::{Proto, Template};

/// What a stream run measured.
#[derive(Debug, Clone)]
pub struct StreamResult {
    /// Counters at the start and end of the measured window.
    pub before: [PortCounters; 2],
    pub after: [PortCounters; 2],
    /// Seconds actually measured.
    pub seconds: f64,
    /// One-way latency in TSC cycles (server-side arrivals in the window).
    pub latency: Histogram,
    /// Counters after the drain, for loss accounting over the whole run.
    pub end: [PortCounters; 2],
    /// Data frames sent while opening flows (before the window).
    pub opening_sent: u64,
}

/// Sends one frame per flow with `tpl` (all flows, rate-limited, with back-pressure),
/// serving receives meanwhile. Returns frames sent.
fn one_pass(
    e: &mut Engine,
    tpl: &Template,
    flows: &mut FlowCursor,
    count: u64,
    rate: u64,
    stop: &Stop,
) -> u64 {
    let mut pacer = Pacer::new(rate, e.hz, dpdk::tsc());
    let mut sent = 0u64;
    let len = tpl.len();
    while sent < count && !stop() {
        let now = dpdk::tsc();
        if e.has_pending(CLIENT) {
            e.push_pending(CLIENT);
        } else {
            let want = pacer.allowance(
                now,
                usize::try_from(count - sent)
                    .unwrap_or(usize::MAX)
                    .min(dpdk::BURST_SIZE),
            );
            if want > 0 {
                let n = e.send_new(CLIENT, want, len, |_, f| {
                    let (i, t) = flows.next_flow();
                    tpl.write(f, &t, u32::try_from(i & 0xffff_ffff).unwrap_or(0), now);
                });
                pacer.issued(n);
                sent += n as u64;
            }
        }
        for p in [SERVER, CLIENT] {
            e.poll(p, |_, _, _| Action::Free);
        }
    }
    while e.has_pending(CLIENT) && !stop() {
        e.push_pending(CLIENT);
    }
    sent
}

/// Opens every flow: UDP sends one datagram per flow, TCP a SYN and then the first ACK (the
/// one a director completes the handshake and inserts TOA on). The first few go alone so
/// the director can resolve the real servers' MACs before the rest arrive.
pub fn open_flows(
    e: &mut Engine,
    cfg: &GenConfig,
    macs: (EthernetAddress, EthernetAddress),
    stop: &Stop,
) -> u64 {
    let set = cfg.flows;
    let proto = cfg.mode.proto();
    let steps: &[TcpFlags] = if proto == Proto::Tcp {
        &[TcpFlags::SYN, TcpFlags::ACK]
    } else {
        &[TcpFlags::ACK]
    };
    let mut sent = 0;
    for &flags in steps {
        let tpl = Template::new(proto, 0, macs, set.tuple(0), flags, cfg.udp_checksum);
        let prime = set.count.min(16);
        let mut cursor = FlowCursor::new(set);
        sent += one_pass(e, &tpl, &mut cursor, prime, cfg.open_rate, stop);
        e.idle(Duration::from_millis(150), |_, _, _, _| Action::Free);
        sent += one_pass(e, &tpl, &mut cursor, set.count - prime, cfg.open_rate, stop);
        e.idle(Duration::from_millis(100), |_, _, _, _| Action::Free);
    }
    sent
}

/// Opens the flows (unless the mode only opens sessions), then streams for
/// `warmup + duration` and measures the last `duration`.
pub fn run(e: &mut Engine, cfg: &GenConfig, dut_mac: EthernetAddress, stop: &Stop) -> StreamResult {
    let macs = (e.ports[CLIENT].mac, dut_mac);
    let set = cfg.flows;
    if cfg.mode == Mode::Syn {
        // Session scale: exactly one SYN per flow, nothing else.
        let tpl = Template::new(Proto::Tcp, 0, macs, set.tuple(0), TcpFlags::SYN, false);
        let prime = set.count.min(16);
        let mut cursor = FlowCursor::new(set);
        let before = e.counters;
        let t0 = dpdk::tsc();
        let mut sent = one_pass(e, &tpl, &mut cursor, prime, cfg.open_rate, stop);
        e.idle(Duration::from_millis(150), |_, _, _, _| Action::Free);
        sent += one_pass(e, &tpl, &mut cursor, set.count - prime, cfg.rate_pps, stop);
        let seconds = (dpdk::tsc() - t0) as f64 / e.hz as f64;
        e.idle(Duration::from_millis(300), |_, _, _, _| Action::Free);
        let _ = sent;
        return StreamResult {
            before,
            after: e.counters,
            seconds,
            latency: Histogram::new(),
            end: e.counters,
            opening_sent: 0,
        };
    }
    let opening_sent = if cfg.skip_open {
        0
    } else {
        open_flows(e, cfg, macs, stop)
    };
    let tpl = Template::new(
        cfg.mode.proto(),
        cfg.frame_size,
        macs,
        set.tuple(0),
        TcpFlags::ACK | TcpFlags::PSH,
        cfg.udp_checksum,
    );
    let len = tpl.len();
    let mut cursor = FlowCursor::new(set);
    let mut hist = Histogram::new();
    let start = dpdk::tsc();
    let measure_at = start + e.cycles(cfg.warmup);
    let end_at = measure_at + e.cycles(cfg.duration);
    let mut pacer = Pacer::new(cfg.rate_pps, e.hz, start);
    let mut measuring = false;
    let mut before = e.counters;
    let mut t_measure = measure_at;
    let mut seq = 1u32;
    let payload = u32::try_from(len - crate::packet::header_len(cfg.mode.proto())).unwrap_or(0);
    loop {
        let now = dpdk::tsc();
        if !measuring && now >= measure_at {
            measuring = true;
            before = e.counters;
            hist.clear();
            t_measure = now;
        }
        if measuring && now >= end_at || stop() {
            break;
        }
        if e.has_pending(CLIENT) {
            e.push_pending(CLIENT);
        } else {
            let want = pacer.allowance(now, dpdk::BURST_SIZE);
            if want > 0 {
                let n = e.send_new(CLIENT, want, len, |_, f| {
                    let (_, t) = cursor.next_flow();
                    tpl.write(f, &t, seq, now);
                    seq = seq.wrapping_add(payload);
                });
                pacer.issued(n);
            }
        }
        let echo = cfg.echo;
        e.poll_stamps(SERVER, |m, stamp, now| {
            if let Some(s) = stamp {
                if now > s {
                    hist.record(now - s);
                }
            }
            if echo {
                crate::packet::echo_in_place(m.data_mut());
                Action::Reply
            } else {
                Action::Free
            }
        });
        e.poll_stamps(CLIENT, |_, _, _| Action::Free);
    }
    let after = e.counters;
    let seconds = (dpdk::tsc() - t_measure) as f64 / e.hz as f64;
    e.idle(Duration::from_millis(100), |_, _, _, _| Action::Free);
    StreamResult {
        before,
        after,
        seconds,
        latency: hist,
        end: e.counters,
        opening_sent,
    }
}
