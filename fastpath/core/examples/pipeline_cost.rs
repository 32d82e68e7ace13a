//! lbd's own work per frame, in process: established FNAT UDP flows in both directions, each
//! burst of 32 staged and then processed with its hints as lbd's worker does, with no driver,
//! no generator on the other CPU and no memif. On a VM whose I/O swings 2× between modes this
//! is the steadier figure for comparing two builds of the pipeline; `make bench` measures the
//! whole path. A benchmark, not a test:
//! `cargo run --release -p fastpath --example pipeline_cost [-- FLOWS ...]` (default 100 10000
//! 1000000). Prints, per flow count, the best of nine rounds of at least 2 M frames in ns per
//! frame, after the cost of refilling the buffers (a 60-byte copy per frame, what a copying
//! driver also does) is taken off.

#![allow(clippy::cast_possible_truncation)] // fixtures build literal packets from small numbers

use std::net::Ipv4Addr;
use std::time::Instant;

use fastpath::neigh::NeighTable;
use fastpath::service::{ForwardMode, RealServer, Scheduler, Service, ServiceKey, ServiceTable};
use fastpath::session::{Hint, Timeouts};
use fastpath::wire::{EthernetAddress, Ipv4Packet, UdpPacket};
use fastpath::{pipeline, Ctx, Interface, L4Proto, PacketBuf, TestBuf, Verdict, WorkerState};

const BURST: usize = 32;
/// Measured rounds per flow count; the best one counts.
const ROUNDS: usize = 9;
const WAN: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const LAN: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

/// A 60-byte Ethernet/IPv4/UDP frame with valid checksums (64 B on the wire).
fn udp(eth_dst: [u8; 6], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&dst.0.octets());
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&[0, 26, 0, 0]);
    f.resize(60, 0);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.fill_checksum();
    UdpPacket::new_unchecked(ip.payload_mut()).fill_checksum(src.0, dst.0);
    f
}

/// One round over every frame, a burst at a time (`work`: stage and process, or only refill).
fn round(frames: &[(Vec<u8>, u8)], bufs: &mut [TestBuf], hints: &mut [Hint], ctx: &Ctx<'_>, st: &mut WorkerState, work: bool) -> u64 {
    let mut sent = 0;
    for chunk in frames.chunks(BURST) {
        for (b, (f, _)) in bufs.iter_mut().zip(chunk) {
            b.load(f);
        }
        if !work {
            sent += chunk.len() as u64;
            continue;
        }
        let staged = st.stage_burst(bufs.iter().take(chunk.len()).map(PacketBuf::data), hints);
        for (i, (b, (_, port))) in bufs.iter_mut().zip(chunk).enumerate() {
            if staged {
                st.sessions.set_hint(hints[i]);
            }
            if let Verdict::Tx(_) = pipeline::process(b, *port, ctx, st) {
                sent += 1;
            }
        }
        if staged {
            st.sessions.set_hint(Hint::NONE);
        }
        st.sessions.settle();
    }
    sent
}

fn measure(flows: u32) -> f64 {
    let (vip, rs) = (Ipv4Addr::new(10, 70, 1, 100), Ipv4Addr::new(10, 70, 2, 11));
    // 64 VIPs and their local addresses, so the address map is not trivially small; 16 local
    // addresses on the measured one, as a deployment needing more than 64k flows per real
    // server has.
    let mut services = Vec::new();
    for i in 0..64u8 {
        let v = if i == 0 { vip } else { Ipv4Addr::new(10, 70, 3, i) };
        let laddrs = if i == 0 { (0..16).map(|k| Ipv4Addr::new(10, 70, 2, 100 + k)).collect() } else { vec![Ipv4Addr::new(10, 70, 4, i)] };
        services.push(Service {
            real_servers: vec![RealServer::new(rs, 53, 1)],
            laddrs,
            ..Service::new(ServiceKey { vip: v, port: 53, proto: L4Proto::Udp }, Scheduler::Rr, ForwardMode::Fnat)
        });
    }
    let table = ServiceTable::new(services, 1).expect("the benchmark's services are valid");
    let lan_addrs = std::iter::once((Ipv4Addr::new(10, 70, 2, 1), 24)).chain((0..16).map(|k| (Ipv4Addr::new(10, 70, 2, 100 + k), 32))).collect();
    let ports = [
        Interface::new(EthernetAddress(WAN), vec![(Ipv4Addr::new(10, 70, 1, 1), 24), (vip, 32)], true),
        Interface::new(EthernetAddress(LAN), lan_addrs, true),
    ];
    let neigh = NeighTable::default().with_updates(&[(rs, EthernetAddress([2, 0, 0, 0, 1, 1]))]).expect("one neighbour");
    let ctx = Ctx { ports: &ports, services: &table, neigh: &neigh, worker: 0, workers: 1, now_ms: 100_000, owners: None, sync: None };
    let mut st = WorkerState::new(0, 1, &table, flows as usize + 1024, Timeouts::default());

    // Open every flow with its first datagram, and keep the real server's reply to it.
    let mut frames = Vec::with_capacity(2 * flows as usize);
    let mut b = TestBuf::new(&[]);
    for i in 0..flows {
        let client = (Ipv4Addr::from(0x0a50_0000 + i / 50_000), 10_000 + (i % 50_000) as u16);
        let first = udp(WAN, client, (vip, 53));
        b.load(&first);
        assert_eq!(pipeline::process(&mut b, 0, &ctx, &mut st), Verdict::Tx(1), "flow {i} did not open");
        let ip = Ipv4Packet::new_checked(&b.data()[14..]).expect("forwarded IPv4");
        let (l, lport) = (ip.src_addr(), UdpPacket::new_checked(ip.payload()).expect("forwarded UDP").src_port());
        frames.push((first, 0));
        frames.push((udp(LAN, (rs, 53), (l, lport)), 1));
    }
    // Client datagrams and replies interleave a burst at a time, as in lb-pktgen --echo; the
    // flows are visited round-robin, each burst's 32 frames from 16 different sessions.
    let mut bufs: Vec<TestBuf> = (0..BURST).map(|_| TestBuf::new(&[0; 60])).collect();
    let mut hints = [Hint::NONE; BURST];
    // Each measured round is at least 2 M frames, the frames gone through as often as it takes.
    let passes = (2_000_000 / frames.len()).max(1);
    let n = (frames.len() * passes) as f64;
    let (mut best, mut refill) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut sent = 0;
        for _ in 0..passes {
            sent += round(&frames, &mut bufs, &mut hints, &ctx, &mut st, true);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n);
        assert_eq!(sent, (frames.len() * passes) as u64, "every frame is forwarded");
        let t = Instant::now();
        for _ in 0..passes {
            round(&frames, &mut bufs, &mut hints, &ctx, &mut st, false);
        }
        refill = refill.min(t.elapsed().as_nanos() as f64 / n);
    }
    best - refill
}

fn main() {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).filter(|&n| n > 0).collect();
    let counts = if args.is_empty() { vec![100, 10_000, 1_000_000] } else { args };
    println!("| flows | ns per frame (best of {ROUNDS}, refill taken off) |");
    println!("|---:|---:|");
    for flows in counts {
        println!("| {flows} | {:.1} |", measure(flows));
    }
}
