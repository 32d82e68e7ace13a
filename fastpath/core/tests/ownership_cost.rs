//! What the ownership check costs on the common path: an established FNAT session's client
//! segments and real-server replies, timed through the pipeline. Uses only APIs that predate
//! ownership, so the same file times the tree before the change. Run it in release:
//! `cargo test -p fastpath --release --test ownership_cost -- --ignored --nocapture`.

#![allow(clippy::cast_possible_truncation)] // test fixtures build literal packets from small numbers

use std::net::Ipv4Addr;
use std::time::Instant;

use fastpath::neigh::NeighTable;
use fastpath::service::{ForwardMode, RealServer, Scheduler, Service, ServiceKey, ServiceTable};
use fastpath::session::Timeouts;
use fastpath::wire::{EthernetAddress, Ipv4Packet, TcpFlags, TcpPacket};
use fastpath::{pipeline, Ctx, Interface, L4Proto, PacketBuf, Verdict, WorkerState};

/// A fixed buffer refilled per packet (a memcpy of the frame, nothing allocated).
struct Buf {
    bytes: [u8; 256],
    start: usize,
    end: usize,
}

impl Buf {
    fn load(&mut self, frame: &[u8]) {
        self.start = 128;
        self.end = 128 + frame.len();
        self.bytes[self.start..self.end].copy_from_slice(frame);
    }
}

impl PacketBuf for Buf {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> bool {
        n <= self.start && {
            self.start -= n;
            true
        }
    }
    fn adj(&mut self, n: usize) -> bool {
        n <= self.end - self.start && {
            self.start += n;
            true
        }
    }
    fn append(&mut self, n: usize) -> bool {
        self.end + n <= self.bytes.len() && {
            self.end += n;
            true
        }
    }
    fn trim(&mut self, n: usize) -> bool {
        n <= self.end - self.start && {
            self.end -= n;
            true
        }
    }
}

fn tcp(eth_dst: [u8; 6], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: TcpFlags) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&dst.0.octets());
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, flags.bits(), 0xff, 0xff, 0, 0, 0, 0]);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.fill_checksum();
    TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(src.0, dst.0);
    f
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn established_fnat_packets_per_second() {
    const WAN: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
    const LAN: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
    let (vip, lip, rs, client) = (Ipv4Addr::new(10, 70, 1, 100), Ipv4Addr::new(10, 70, 2, 100), Ipv4Addr::new(10, 70, 2, 11), Ipv4Addr::new(10, 70, 1, 10));
    // 64 VIPs and their local addresses, so the address map is not trivially small.
    let mut services = Vec::new();
    for i in 0..64u8 {
        let v = if i == 0 { vip } else { Ipv4Addr::new(10, 70, 3, i) };
        services.push(Service {
            real_servers: vec![RealServer::new(rs, 80, 1)],
            laddrs: vec![if i == 0 { lip } else { Ipv4Addr::new(10, 70, 4, i) }],
            ..Service::new(ServiceKey { vip: v, port: 80, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Fnat)
        });
    }
    let table = ServiceTable::new(services, 1).unwrap();
    let ports = [
        Interface::new(EthernetAddress(WAN), vec![(Ipv4Addr::new(10, 70, 1, 1), 24), (vip, 32)], true),
        Interface::new(EthernetAddress(LAN), vec![(Ipv4Addr::new(10, 70, 2, 1), 24), (lip, 32)], true),
    ];
    let neigh = NeighTable::default().with_updates(&[(rs, EthernetAddress([2, 0, 0, 0, 1, 1])), (client, EthernetAddress([2, 0, 0, 0, 0, 1]))]).unwrap();
    let ctx = Ctx { ports: &ports, services: &table, neigh: &neigh, worker: 0, workers: 1, now_ms: 100_000, owners: None, sync: None };
    let mut st = WorkerState::new(0, 1, &table, 4096, Timeouts::default());
    let mut b = Buf { bytes: [0; 256], start: 0, end: 0 };
    let mut ack = Vec::new();
    let mut replies = Vec::new();
    for cport in 1000..1256u16 {
        b.load(&tcp(WAN, (client, cport), (vip, 80), TcpFlags::SYN));
        assert_eq!(pipeline::process(&mut b, 0, &ctx, &mut st), Verdict::Tx(1));
        let lport = TcpPacket::new_checked(Ipv4Packet::new_checked(&b.data()[14..]).unwrap().payload()).unwrap().src_port();
        ack.push(tcp(WAN, (client, cport), (vip, 80), TcpFlags::ACK));
        replies.push(tcp(LAN, (rs, 80), (lip, lport), TcpFlags::ACK));
    }
    let rounds = 2000;
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..rounds {
            for (a, r) in ack.iter().zip(&replies) {
                b.load(a);
                assert!(matches!(pipeline::process(&mut b, 0, &ctx, &mut st), Verdict::Tx(1)));
                b.load(r);
                assert!(matches!(pipeline::process(&mut b, 1, &ctx, &mut st), Verdict::Tx(0)));
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(rounds * 2 * 256);
        best = best.min(ns);
    }
    println!("established FNAT, both directions: best of 7: {best:.1} ns/packet");
}
