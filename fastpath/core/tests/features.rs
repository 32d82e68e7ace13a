//! Scheduling depth, persistence, draining, sorry server, client lists, flow control, and the
//! DR and NAT forwarding modes, through the pipeline with literal frames and a fake clock.

#![allow(clippy::cast_possible_truncation)] // test fixtures build literal packets from small numbers

use std::net::Ipv4Addr;

use fastpath::owners::Owners;
use fastpath::neigh::NeighTable;
use fastpath::service::{FlowControl, ForwardMode, Persistence, RealServer, RefuseMode, Scheduler, Service, ServiceKey, ServiceTable};
use fastpath::session::Timeouts;
use fastpath::wire::{EthernetAddress, Ipv4Packet, TcpFlags, TcpPacket};
use fastpath::{pipeline, Ctx, DropReason, Interface, L4Proto, PacketBuf, TestBuf, Verdict, WorkerState};

const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 100);

fn rs(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 70, 2, 10 + i)
}

fn rs_mac(i: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 1, i])
}

fn service(sched: Scheduler, mode: ForwardMode, n: u8) -> Service {
    Service {
        real_servers: (1..=n).map(|i| RealServer::new(rs(i), 80, 1)).collect(),
        laddrs: if mode == ForwardMode::Fnat { vec![LIP] } else { vec![] },
        ..Service::new(ServiceKey { vip: VIP, port: 80, proto: L4Proto::Tcp }, sched, mode)
    }
}

struct Lab {
    ports: Vec<Interface>,
    services: ServiceTable,
    neigh: NeighTable,
    owners: Owners,
    now: u64,
}

impl Lab {
    fn new(svc: Service) -> Lab {
        let wan = Interface::new(EthernetAddress(WAN_MAC), vec![(Ipv4Addr::new(10, 70, 1, 1), 24)], true);
        let lan = Interface::new(EthernetAddress(LAN_MAC), vec![(Ipv4Addr::new(10, 70, 2, 1), 24), (LIP, 32)], true);
        let updates: Vec<_> = (1..=20).map(|i| (rs(i), rs_mac(i))).chain([(Ipv4Addr::new(10, 70, 1, 10), EthernetAddress(CLIENT_MAC))]).collect();
        Lab {
            ports: vec![wan, lan],
            services: ServiceTable::new(vec![svc], 1).unwrap(),
            neigh: NeighTable::default().with_updates(&updates).unwrap(),
            owners: Owners::default(),
            now: 100_000,
        }
    }

    fn ctx(&self, worker: u16, workers: u16) -> Ctx<'_> {
        Ctx { ports: &self.ports, services: &self.services, neigh: &self.neigh, worker, workers, now_ms: self.now, owners: Some(&self.owners), sync: None }
    }

    fn state(&self) -> WorkerState {
        WorkerState::new(0, 1, &self.services, 10_000, Timeouts::default())
    }

    fn run(&self, st: &mut WorkerState, frame: &[u8], port: u8) -> (Verdict, Vec<u8>) {
        let mut b = TestBuf::new(frame);
        let v = pipeline::process(&mut b, port, &self.ctx(0, 1), st);
        (v, b.data().to_vec())
    }

    /// Replaces the service (a live change), keeping shared counters.
    fn replace(&mut self, svc: Service) {
        let g = self.services.generation() + 1;
        self.services = ServiceTable::rebuild(Some(&self.services), vec![svc], g).unwrap();
    }
}

fn tcp(eth_dst: [u8; 6], eth_src: [u8; 6], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: TcpFlags) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
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

fn syn(client: Ipv4Addr, port: u16) -> Vec<u8> {
    tcp(WAN_MAC, CLIENT_MAC, (client, port), (VIP, 80), TcpFlags::SYN)
}

/// The real server a forwarded frame goes to, by destination MAC.
fn to_which_rs(out: &[u8]) -> u8 {
    assert_eq!(&out[..5], &[0x02, 0, 0, 0, 1], "to a real server");
    out[5]
}

#[test]
fn hashing_schedulers_keep_a_client_on_one_server_across_connections_and_workers() {
    for sched in [Scheduler::Sh, Scheduler::Consh, Scheduler::Mh] {
        let lab = Lab::new(service(sched, ForwardMode::Fnat, 4));
        let client = Ipv4Addr::new(172, 16, 5, 9);
        let mut st = lab.state();
        let first = to_which_rs(&lab.run(&mut st, &syn(client, 1000), 0).1);
        for p in 1001..1020 {
            assert_eq!(to_which_rs(&lab.run(&mut st, &syn(client, p), 0).1), first, "{sched:?}: same client, same server");
        }
        // A second, independently built table (another director) agrees.
        let other = Lab::new(service(sched, ForwardMode::Fnat, 4));
        let mut st2 = other.state();
        assert_eq!(to_which_rs(&other.run(&mut st2, &syn(client, 5555), 0).1), first, "{sched:?}: two directors agree");
        // Different clients spread over the servers.
        let mut seen = std::collections::HashSet::new();
        for c in 0..64u32 {
            seen.insert(to_which_rs(&lab.run(&mut st, &syn(Ipv4Addr::from(0xac10_0000 + c * 7919), 2000), 0).1));
        }
        assert!(seen.len() >= 3, "{sched:?} spreads clients: {seen:?}");
    }
}

#[test]
fn maglev_removal_moves_only_about_the_removed_share() {
    let mut lab = Lab::new(service(Scheduler::Mh, ForwardMode::Fnat, 4));
    let clients: Vec<Ipv4Addr> = (0..2000u32).map(|c| Ipv4Addr::from(0xc0a8_0000 + c)).collect();
    let mut st = lab.state();
    let before: Vec<u8> = clients.iter().map(|c| to_which_rs(&lab.run(&mut st, &syn(*c, 40000), 0).1)).collect();
    let mut svc = service(Scheduler::Mh, ForwardMode::Fnat, 4);
    svc.real_servers.remove(1); // server 2 leaves
    lab.replace(svc);
    let mut st = lab.state();
    let after: Vec<u8> = clients.iter().map(|c| to_which_rs(&lab.run(&mut st, &syn(*c, 40001), 0).1)).collect();
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    let on_removed = before.iter().filter(|b| **b == 2).count();
    assert!(after.iter().all(|b| *b != 2));
    assert!(moved <= on_removed + clients.len() / 100, "moved {moved}, removed server had {on_removed}");
}

#[test]
fn persistence_keeps_a_client_network_and_expires() {
    let mut svc = service(Scheduler::Rr, ForwardMode::Fnat, 3);
    svc.persistence = Some(Persistence { timeout_s: 60, netmask: Ipv4Addr::new(255, 255, 255, 0) });
    let mut lab = Lab::new(svc);
    let mut st = lab.state();
    let first = to_which_rs(&lab.run(&mut st, &syn(Ipv4Addr::new(9, 9, 9, 1), 1), 0).1);
    for (i, host) in (2..22u8).enumerate() {
        let out = lab.run(&mut st, &syn(Ipv4Addr::new(9, 9, 9, host), 100 + i as u16), 0).1;
        assert_eq!(to_which_rs(&out), first, "rr would rotate; persistence keeps the /24 on one server");
    }
    // After the template expires (no new connection for 60 s) the choice is made afresh but
    // deterministically: the same server again from the consistent hash.
    lab.now += 61_000;
    st.expire(lab.now, None);
    assert_eq!(st.persist.len(), 0);
    assert_eq!(to_which_rs(&lab.run(&mut st, &syn(Ipv4Addr::new(9, 9, 9, 1), 7), 0).1), first);
}

#[test]
fn draining_keeps_established_sessions_and_sends_new_ones_elsewhere() {
    let mut svc = service(Scheduler::Rr, ForwardMode::Fnat, 2);
    svc.draining_timeout_s = Some(30);
    let mut lab = Lab::new(svc.clone());
    let mut st = lab.state();
    let client = Ipv4Addr::new(10, 70, 1, 10);
    let out = lab.run(&mut st, &syn(client, 5000), 0).1;
    let victim = to_which_rs(&out);
    // Weight 0 on that server: quiesced.
    svc.real_servers[usize::from(victim - 1)].weight = 0;
    lab.replace(svc.clone());
    let ack = tcp(WAN_MAC, CLIENT_MAC, (client, 5000), (VIP, 80), TcpFlags::ACK);
    let (v, out) = lab.run(&mut st, &ack, 0);
    assert_eq!(v, Verdict::Tx(1), "established session keeps flowing while draining");
    assert_eq!(to_which_rs(&out), victim);
    for p in 6000..6010 {
        assert_ne!(to_which_rs(&lab.run(&mut st, &syn(client, p), 0).1), victim, "new connections avoid the drained server");
    }
    lab.now += 29_000;
    assert_eq!(lab.run(&mut st, &ack, 0).0, Verdict::Tx(1));
    lab.now += 2_000;
    assert_eq!(lab.run(&mut st, &ack, 0).0, Verdict::Drop(DropReason::DrainTimeout), "ended after the draining timeout");
    assert_eq!(lab.run(&mut st, &ack, 0).0, Verdict::Drop(DropReason::NoSession), "and removed");
}

#[test]
fn draining_without_timeout_lasts_until_the_session_ends() {
    let svc = service(Scheduler::Rr, ForwardMode::Fnat, 2);
    let mut lab = Lab::new(svc.clone());
    let mut st = lab.state();
    let client = Ipv4Addr::new(10, 70, 1, 10);
    let victim = to_which_rs(&lab.run(&mut st, &syn(client, 5000), 0).1);
    let mut gone = svc;
    gone.real_servers.remove(usize::from(victim - 1));
    lab.replace(gone);
    lab.now += 600_000;
    let ack = tcp(WAN_MAC, CLIENT_MAC, (client, 5000), (VIP, 80), TcpFlags::ACK);
    let (v, out) = lab.run(&mut st, &ack, 0);
    assert_eq!((v, to_which_rs(&out)), (Verdict::Tx(1), victim), "removed server, no draining limit");
}

#[test]
fn sorry_server_serves_when_no_real_server_is_available() {
    let mut svc = service(Scheduler::Wrr, ForwardMode::Fnat, 2);
    for r in &mut svc.real_servers {
        r.healthy = false;
    }
    svc.sorry_server = Some((rs(9), 8080));
    let lab = Lab::new(svc);
    let mut st = lab.state();
    let (v, out) = lab.run(&mut st, &syn(Ipv4Addr::new(1, 2, 3, 4), 1), 0);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(to_which_rs(&out), 9);
    assert_eq!(st.counters.sorry_served, 1);
}

#[test]
fn client_lists_refuse_with_a_valid_reset() {
    let mut svc = service(Scheduler::Rr, ForwardMode::Fnat, 1);
    svc.allow = vec![(Ipv4Addr::new(10, 70, 1, 0), 24)];
    svc.deny = vec![(Ipv4Addr::new(10, 70, 1, 66), 32), (Ipv4Addr::new(203, 0, 113, 0), 24)];
    let lab = Lab::new(svc);
    let mut st = lab.state();
    // Allowed (allow wins over deny for 10.70.1.66).
    assert_eq!(lab.run(&mut st, &syn(Ipv4Addr::new(10, 70, 1, 66), 1), 0).0, Verdict::Tx(1));
    // Outside the allow list: a reset back to the client.
    let (v, out) = lab.run(&mut st, &syn(Ipv4Addr::new(203, 0, 113, 5), 4242), 0);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[0..6], &CLIENT_MAC);
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, Ipv4Addr::new(203, 0, 113, 5)));
    let t = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(t.verify_checksum(ip.src_addr(), ip.dst_addr()));
    assert_eq!((t.src_port(), t.dst_port()), (80, 4242));
    assert_eq!(t.flags(), TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(t.ack_number(), 0x1001, "acknowledges the SYN (seq 0x1000)");
    assert_eq!(st.counters.drops_for(DropReason::ClientNotAllowed), 1);
    assert_eq!(st.counters.rst_sent, 1);
    assert_eq!(st.sessions.len(), 1);
    // Denied sources get nothing, not even a reset.
    let mut svc = service(Scheduler::Rr, ForwardMode::Fnat, 1);
    svc.deny = vec![(Ipv4Addr::new(10, 70, 1, 66), 32)];
    let lab = Lab::new(svc);
    let mut st = lab.state();
    assert_eq!(lab.run(&mut st, &syn(Ipv4Addr::new(10, 70, 1, 66), 1), 0).0, Verdict::Drop(DropReason::ClientDenied));
    assert_eq!(lab.run(&mut st, &syn(Ipv4Addr::new(10, 70, 1, 67), 1), 0).0, Verdict::Tx(1));
}

#[test]
fn flow_control_limits_new_connections_not_existing_ones() {
    let mut svc = service(Scheduler::Rr, ForwardMode::Fnat, 2);
    svc.flow = FlowControl { cps: 5, interval_s: 1, max_conns: 0, refuse: RefuseMode::Drop };
    let mut lab = Lab::new(svc);
    let mut st = lab.state();
    let client = Ipv4Addr::new(10, 70, 1, 10);
    let verdicts: Vec<Verdict> = (0..20).map(|p| lab.run(&mut st, &syn(client, 100 + p), 0).0).collect();
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Tx(1)).count(), 5);
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Drop(DropReason::CpsLimit)).count(), 15, "silent drops, counted by reason");
    let ack = tcp(WAN_MAC, CLIENT_MAC, (client, 100), (VIP, 80), TcpFlags::ACK);
    assert_eq!(lab.run(&mut st, &ack, 0).0, Verdict::Tx(1), "existing sessions untouched");
    lab.now += 1000;
    assert!(matches!(lab.run(&mut st, &syn(client, 999), 0).0, Verdict::Tx(1)), "next window");

    let mut svc = service(Scheduler::Rr, ForwardMode::Fnat, 2);
    svc.flow = FlowControl { cps: 0, interval_s: 1, max_conns: 3, refuse: RefuseMode::Drop };
    let mut lab = Lab::new(svc);
    let mut st = lab.state();
    let verdicts: Vec<Verdict> = (0..5).map(|p| lab.run(&mut st, &syn(client, 100 + p), 0).0).collect();
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Tx(1)).count(), 3);
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Drop(DropReason::ConnLimit)).count(), 2);
    // A session ending frees a slot.
    lab.now += 61_000;
    st.expire(lab.now, None);
    assert!(matches!(lab.run(&mut st, &syn(client, 200), 0).0, Verdict::Tx(1)));
}

#[test]
fn dr_rewrites_only_the_mac() {
    let lab = Lab::new(service(Scheduler::Rr, ForwardMode::Dr, 1));
    let mut st = lab.state();
    let s = syn(Ipv4Addr::new(10, 70, 1, 10), 3333);
    let (v, out) = lab.run(&mut st, &s, 0);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(&out[0..6], rs_mac(1).as_bytes());
    assert_eq!(&out[6..12], &LAN_MAC);
    assert_eq!(&out[12..], &s[12..], "IP and TCP untouched: the real server holds the VIP");
}

#[test]
fn nat_rewrites_destination_and_translates_routed_replies() {
    let lab = Lab::new(service(Scheduler::Rr, ForwardMode::Nat, 1));
    let mut st = lab.state();
    let client = Ipv4Addr::new(172, 16, 0, 9);
    let (v, out) = lab.run(&mut st, &syn(client, 3333), 0);
    assert_eq!(v, Verdict::Tx(1));
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (client, rs(1)), "client address kept");
    let t = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(t.verify_checksum(ip.src_addr(), ip.dst_addr()));
    // The reply, routed through us (to our MAC, for the client's address).
    let reply = tcp(LAN_MAC, rs_mac(1).0, (rs(1), 80), (client, 3333), TcpFlags::SYN | TcpFlags::ACK);
    let (v, out) = lab.run(&mut st, &reply, 1);
    assert_eq!(v, Verdict::Tx(0));
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, client));
    let t = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(t.verify_checksum(ip.src_addr(), ip.dst_addr()));
    assert_eq!((t.src_port(), t.dst_port()), (80, 3333));
    // Another worker that sees the reply hands it to the owner.
    let mut other = WorkerState::new(1, 2, &lab.services, 100, Timeouts::default());
    let mut b = TestBuf::new(&reply);
    assert_eq!(pipeline::process(&mut b, 1, &lab.ctx(1, 2), &mut other), Verdict::Redirect(0));
    // Unrelated transit traffic still goes to the kernel.
    let stray = tcp(LAN_MAC, rs_mac(1).0, (rs(1), 80), (client, 4444), TcpFlags::ACK);
    assert_eq!(lab.run(&mut st, &stray, 1).0, Verdict::ToKernel);
}

#[test]
fn round_robin_position_survives_changes_to_other_services() {
    let a = service(Scheduler::Rr, ForwardMode::Fnat, 2);
    let mut lab = Lab::new(a.clone());
    let mut st = lab.state();
    let client = Ipv4Addr::new(10, 70, 1, 10);
    let first = to_which_rs(&lab.run(&mut st, &syn(client, 1), 0).1);
    // Another service is added: a new table generation.
    let b = Service { key: ServiceKey { vip: Ipv4Addr::new(10, 70, 1, 200), port: 443, proto: L4Proto::Tcp }, ..a.clone() };
    let g = lab.services.generation() + 1;
    lab.services = ServiceTable::rebuild(Some(&lab.services), vec![b, a], g).unwrap();
    let second = to_which_rs(&lab.run(&mut st, &syn(client, 2), 0).1);
    assert_ne!(first, second, "rr continues where it was, it does not restart");
}

/// DPVS's order: an FNAT service created before its local addresses refuses new connections
/// with a counted reason, and serves once a live change gives it one; a session opened then
/// keeps its local address after the service loses it again.
#[test]
fn fnat_without_local_addresses_refuses_until_it_gets_one() {
    let mut bare = service(Scheduler::Rr, ForwardMode::Fnat, 2);
    bare.laddrs.clear();
    let mut lab = Lab::new(bare.clone());
    let mut st = lab.state();
    assert_eq!(lab.run(&mut st, &syn(Ipv4Addr::new(1, 2, 3, 4), 1), 0).0, Verdict::Drop(DropReason::NoLocalAddress));
    lab.replace(service(Scheduler::Rr, ForwardMode::Fnat, 2));
    st.sync_laddrs(&lab.services);
    let (v, out) = lab.run(&mut st, &syn(Ipv4Addr::new(1, 2, 3, 4), 2), 0);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(Ipv4Packet::new_checked(&out[14..]).unwrap().src_addr(), LIP, "from the local address");
    lab.replace(bare);
    st.sync_laddrs(&lab.services);
    assert_eq!(lab.run(&mut st, &syn(Ipv4Addr::new(1, 2, 3, 4), 3), 0).0, Verdict::Drop(DropReason::NoLocalAddress));
    let ack = tcp(WAN_MAC, CLIENT_MAC, (Ipv4Addr::new(1, 2, 3, 4), 2), (VIP, 80), TcpFlags::ACK);
    let (v, out) = lab.run(&mut st, &ack, 0);
    assert_eq!(v, Verdict::Tx(1), "the open session goes on");
    assert_eq!(Ipv4Packet::new_checked(&out[14..]).unwrap().src_addr(), LIP);
}

/// sh-port / mh-port: with the flag, one client's connections from different ports spread
/// over the real servers; without it, they all go to one.
#[test]
fn hash_port_spreads_one_clients_ports() {
    for sched in [Scheduler::Sh, Scheduler::Mh, Scheduler::Consh] {
        for hash_port in [false, true] {
            let lab = Lab::new(Service { hash_port, ..service(sched, ForwardMode::Fnat, 4) });
            let mut st = lab.state();
            let mut servers = std::collections::BTreeSet::new();
            for port in 1000..1032 {
                let (v, out) = lab.run(&mut st, &syn(Ipv4Addr::new(1, 2, 3, 4), port), 0);
                assert_eq!(v, Verdict::Tx(1));
                servers.insert(to_which_rs(&out));
            }
            if hash_port {
                assert!(servers.len() >= 3, "{sched:?}: 32 ports reached only {servers:?}");
            } else {
                assert_eq!(servers.len(), 1, "{sched:?}: {servers:?}");
            }
        }
    }
}

/// FNAT keeps `lip:lport` unique per real server, not per local address (as DPVS's address
/// pool): one local address holds 64,511 sessions toward each destination bucket, so two real
/// servers in different buckets take twice that, and then new connections are refused with
/// `no_local_port`.
#[test]
fn local_ports_are_reused_per_real_server_so_capacity_grows_with_backends() {
    use fastpath::laddr::{bucket_of, MIN_PORT};
    let (a, b) = (1..=20u8).flat_map(|a| (1..=20u8).map(move |b| (a, b))).find(|(a, b)| bucket_of((rs(*a), 80)) != bucket_of((rs(*b), 80))).unwrap();
    let svc = Service { real_servers: vec![RealServer::new(rs(a), 80, 1), RealServer::new(rs(b), 80, 1)], ..service(Scheduler::Rr, ForwardMode::Fnat, 0) };
    let lab = Lab::new(svc);
    let mut st = WorkerState::new(0, 1, &lab.services, 200_000, Timeouts::default());
    let per_bucket = usize::from(u16::MAX - MIN_PORT) + 1;
    let (mut sent, mut no_port) = (0usize, 0usize);
    let mut by_laddr: std::collections::HashMap<u16, Vec<u8>> = std::collections::HashMap::new();
    for i in 0..(2 * per_bucket + 1000) as u32 {
        let client = Ipv4Addr::from(0x0b00_0000 + i / 50_000);
        match lab.run(&mut st, &syn(client, 1024 + (i % 50_000) as u16), 0) {
            (Verdict::Tx(1), out) => {
                sent += 1;
                let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
                assert_eq!(ip.src_addr(), LIP);
                let lport = TcpPacket::new_checked(ip.payload()).unwrap().src_port();
                by_laddr.entry(lport).or_default().push(to_which_rs(&out));
            }
            (Verdict::Drop(DropReason::NoLocalPort), _) => no_port += 1,
            (v, _) => panic!("connection {i}: {v:?}"),
        }
    }
    assert_eq!((sent, no_port), (2 * per_bucket, 1000), "twice one address's ports, then no_local_port");
    assert_eq!(st.sessions.len(), 2 * per_bucket);
    assert!(by_laddr.values().all(|v| v.len() == 2 && v[0] != v[1]), "each local port serves both real servers once");
}
