//! A health flip (a real server's `healthy` going false in a new snapshot) takes the same path
//! as a removal: established sessions drain by the service's draining timeout, new connections
//! avoid the server, and flipping back lets it take new connections again.

#![allow(clippy::cast_possible_truncation)] // test fixtures build literal packets from small numbers

use std::net::Ipv4Addr;

use fastpath::neigh::NeighTable;
use fastpath::service::{ForwardMode, RealServer, Scheduler, Service, ServiceKey, ServiceTable};
use fastpath::session::Timeouts;
use fastpath::wire::{EthernetAddress, Ipv4Packet, TcpFlags, TcpPacket};
use fastpath::{pipeline, Ctx, DropReason, Interface, L4Proto, PacketBuf, TestBuf, Verdict, WorkerState};

const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 71, 1, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 71, 1, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 71, 2, 100);

fn rs(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 71, 2, 10 + i)
}

fn tcp(src: (Ipv4Addr, u16), flags: TcpFlags) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&WAN_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&VIP.octets());
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, flags.bits(), 0xff, 0xff, 0, 0, 0, 0]);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.fill_checksum();
    TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(src.0, VIP);
    f
}

struct Lab {
    ports: Vec<Interface>,
    services: ServiceTable,
    neigh: NeighTable,
    now: u64,
}

impl Lab {
    fn run(&self, st: &mut WorkerState, frame: &[u8]) -> (Verdict, u8) {
        let mut b = TestBuf::new(frame);
        let ctx = Ctx { ports: &self.ports, services: &self.services, neigh: &self.neigh, worker: 0, workers: 1, now_ms: self.now, owners: None, sync: None };
        let v = pipeline::process(&mut b, 0, &ctx, st);
        (v, b.data().get(5).copied().unwrap_or(0))
    }

    fn publish(&mut self, svc: Service) {
        let g = self.services.generation() + 1;
        self.services = ServiceTable::rebuild(Some(&self.services), vec![svc], g).unwrap();
    }
}

fn healthy(svc: &Service, i: u8, up: bool) -> Service {
    let mut s = svc.clone();
    s.real_servers[usize::from(i - 1)].healthy = up;
    s
}

#[test]
fn a_health_flip_drains_like_a_removal_and_flipping_back_restores() {
    for sched in [Scheduler::Rr, Scheduler::Mh] {
        let svc = Service {
            real_servers: (1..=2).map(|i| RealServer::new(rs(i), 80, 1)).collect(),
            laddrs: vec![LIP],
            draining_timeout_s: Some(10),
            ..Service::new(ServiceKey { vip: VIP, port: 80, proto: L4Proto::Tcp }, sched, ForwardMode::Fnat)
        };
        let wan = Interface::new(EthernetAddress(WAN_MAC), vec![(Ipv4Addr::new(10, 71, 1, 1), 24)], true);
        let lan = Interface::new(EthernetAddress(LAN_MAC), vec![(Ipv4Addr::new(10, 71, 2, 1), 24), (LIP, 32)], true);
        let updates: Vec<_> = (1..=2).map(|i| (rs(i), EthernetAddress([0x02, 0, 0, 0, 1, i]))).chain([(CLIENT, EthernetAddress(CLIENT_MAC))]).collect();
        let mut lab = Lab { ports: vec![wan, lan], services: ServiceTable::new(vec![svc.clone()], 1).unwrap(), neigh: NeighTable::default().with_updates(&updates).unwrap(), now: 100_000 };
        let mut st = WorkerState::new(0, 1, &lab.services, 1000, Timeouts::default());
        let (v, victim) = lab.run(&mut st, &tcp((CLIENT, 5000), TcpFlags::SYN));
        assert_eq!(v, Verdict::Tx(1), "{sched:?}");
        let ack = tcp((CLIENT, 5000), TcpFlags::ACK);
        lab.run(&mut st, &ack);
        // The chosen server goes down: only its health changes, not its weight or place.
        lab.publish(healthy(&svc, victim, false));
        let drained_before = st.counters.sessions_draining;
        assert_eq!(lab.run(&mut st, &ack), (Verdict::Tx(1), victim), "{sched:?}: the established session keeps flowing");
        assert_eq!(st.counters.sessions_draining, drained_before + 1, "{sched:?}: and is draining");
        for p in 6000..6020 {
            assert_ne!(lab.run(&mut st, &tcp((Ipv4Addr::new(10, 71, 1, 20 + (p % 7) as u8), p), TcpFlags::SYN)).1, victim, "{sched:?}: new connections avoid the down server");
        }
        lab.now += 11_000;
        assert_eq!(lab.run(&mut st, &ack).0, Verdict::Drop(DropReason::DrainTimeout), "{sched:?}: ended by tcp_draining_timeout");
        // Back up: it takes new connections again.
        lab.publish(svc.clone());
        let back = (7000..7040).any(|p| lab.run(&mut st, &tcp((Ipv4Addr::new(10, 71, 1, 20 + (p % 13) as u8), p), TcpFlags::SYN)).1 == victim);
        assert!(back, "{sched:?}: the server is used again once up");
    }
}
