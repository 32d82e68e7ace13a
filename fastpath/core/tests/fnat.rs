//! FNAT translation fixtures: both directions, checksums equal to full recomputation, TOA at
//! the edges, MSS lowering, local-port partitioning, ICMP error relay.

#![allow(clippy::cast_possible_truncation)] // test fixtures build literal packets from small numbers

use std::net::Ipv4Addr;

use fastpath::neigh::NeighTable;
use fastpath::service::{ForwardMode, RealServer, Scheduler, Service, ServiceKey, ServiceTable, ToaMode};
use fastpath::owners::Owners;
use fastpath::session::Timeouts;
use fastpath::sync::SyncParams;
use fastpath::wire::lvsync;
use fastpath::wire::{checksum, EthernetAddress, Ipv4Packet, TcpPacket, UdpPacket};
use fastpath::{pipeline, Ctx, DropReason, Interface, L4Proto, PacketBuf, TestBuf, Verdict, WorkerState};

const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const RS1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 100);
const RS1: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 12);

struct Lab {
    ports: Vec<Interface>,
    services: ServiceTable,
    neigh: NeighTable,
}

fn lab(toa: ToaMode) -> Lab {
    let wan = Interface::new(EthernetAddress(WAN_MAC), vec![(Ipv4Addr::new(10, 70, 1, 1), 24)], true);
    let lan = Interface::new(EthernetAddress(LAN_MAC), vec![(Ipv4Addr::new(10, 70, 2, 1), 24), (LIP, 32)], true);
    let svc = |proto| Service {
        real_servers: vec![RealServer::new(RS1, 8080, 1), RealServer::new(RS2, 8080, 1)],
        laddrs: vec![LIP],
        toa,
        ..Service::new(ServiceKey { vip: VIP, port: 80, proto }, Scheduler::Rr, ForwardMode::Fnat)
    };
    let services = ServiceTable::new(vec![svc(L4Proto::Tcp), svc(L4Proto::Udp)], 1).unwrap();
    let neigh = NeighTable::default().with_updates(&[(RS1, EthernetAddress(RS1_MAC))]).unwrap();
    Lab { ports: vec![wan, lan], services, neigh }
}

impl Lab {
    fn ctx(&self, worker: u16, workers: u16) -> Ctx<'_> {
        Ctx { ports: &self.ports, services: &self.services, neigh: &self.neigh, worker, workers, now_ms: 10_000, owners: None, sync: None }
    }
    fn state(&self, worker: u16, workers: u16) -> WorkerState {
        WorkerState::new(worker, workers, &self.services, 1000, Timeouts::default())
    }
}

/// Ethernet + IPv4 + TCP with the given options and payload; checksums filled.
fn tcp_frame(eth_dst: [u8; 6], eth_src: [u8; 6], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let tcp_len = 20 + options.len() + payload.len();
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + tcp_len) as u16;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&dst.0.octets());
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, (((20 + options.len()) / 4) << 4) as u8, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(options);
    f.extend_from_slice(payload);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.fill_checksum();
    TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(src.0, dst.0);
    f
}

fn udp_frame(eth_dst: [u8; 6], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (28 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&dst.0.octets());
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.fill_checksum();
    UdpPacket::new_unchecked(ip.payload_mut()).fill_checksum(src.0, dst.0);
    f
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const MSS_1460: [u8; 4] = [2, 4, 0x05, 0xb4];

/// Parses a frame's IPv4+TCP and checks both checksums against a full recomputation.
fn tcp_of(frame: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16, Vec<u8>) {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 checksum equals a full recomputation");
    let t = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(t.verify_checksum(ip.src_addr(), ip.dst_addr()), "TCP checksum equals a full recomputation");
    let mut full = TcpPacket::new_unchecked(ip.payload().to_vec());
    let before = full.checksum();
    full.fill_checksum(ip.src_addr(), ip.dst_addr());
    assert_eq!(full.checksum(), before, "incremental == full");
    (ip.src_addr(), t.src_port(), ip.dst_addr(), t.dst_port(), t.options().to_vec())
}

fn run(frame: &[u8], port: u8, lab: &Lab, st: &mut WorkerState, worker: u16, workers: u16) -> (Verdict, Vec<u8>) {
    let mut b = TestBuf::new(frame);
    let v = pipeline::process(&mut b, port, &lab.ctx(worker, workers), st);
    (v, b.data().to_vec())
}

#[test]
fn tcp_handshake_both_directions_with_toa_and_mss() {
    let lab = lab(ToaMode::FirstAck);
    let mut st = lab.state(0, 1);
    let syn = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 80), SYN, &MSS_1460, &[]);
    let (v, out) = run(&syn, 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(&out[0..6], &RS1_MAC);
    assert_eq!(&out[6..12], &LAN_MAC);
    let (s, sp, d, dp, _) = tcp_of(&out);
    assert_eq!((s, d, dp), (LIP, RS1, 8080));
    assert_eq!(out.len(), syn.len(), "no TOA in the SYN by default");
    let lport = sp;

    let synack = tcp_frame(LAN_MAC, RS1_MAC, (RS1, 8080), (LIP, lport), SYN | ACK, &MSS_1460, &[]);
    let (v, out) = run(&synack, 1, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[0..6], &CLIENT_MAC);
    assert_eq!(&out[6..12], &WAN_MAC);
    let (s, sp, d, dp, opts) = tcp_of(&out);
    assert_eq!((s, sp, d, dp), (VIP, 80, CLIENT, 40000));
    assert_eq!(opts, vec![2, 4, 0x05, 0xac], "MSS lowered by the TOA length (1460 -> 1452)");

    let ack = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 80), ACK, &[], &[]);
    let (v, out) = run(&ack, 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(out.len(), ack.len() + 8, "TOA grows the first ACK by 8 bytes");
    let (_, _, _, _, opts) = tcp_of(&out);
    assert_eq!(opts, vec![254, 8, 0x9c, 0x40, 10, 70, 1, 10], "TOA: kind 254, len 8, port 40000, 10.70.1.10");
    assert_eq!(st.counters.toa_inserted, 1);

    // Later segments carry no TOA.
    let data = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 80), ACK | 0x08, &[], b"GET / HTTP/1.0\r\n\r\n");
    let (v, out) = run(&data, 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(out.len(), data.len());
    assert_eq!(&out[out.len() - 18..], b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(st.sessions.len(), 1);
    assert_eq!(st.counters.sessions_created, 1);
}

#[test]
fn second_client_goes_to_the_next_server_and_waits_for_arp() {
    let lab = lab(ToaMode::Off);
    let mut st = lab.state(0, 1);
    run(&tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 1), (VIP, 80), SYN, &[], &[]), 0, &lab, &mut st, 0, 1);
    let (v, out) = run(&tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 2), (VIP, 80), SYN, &[], &[]), 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Hold { port: 1, next_hop: RS2 });
    let (_, _, d, _, _) = tcp_of(&out);
    assert_eq!(d, RS2, "translated before being held");
}

#[test]
fn segments_without_session_and_services_without_servers() {
    let lab = lab(ToaMode::Off);
    let mut st = lab.state(0, 1);
    let ack = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 9), (VIP, 80), ACK, &[], &[]);
    assert_eq!(run(&ack, 0, &lab, &mut st, 0, 1).0, Verdict::Drop(DropReason::NoSession));
    let stray = tcp_frame(LAN_MAC, RS1_MAC, (RS1, 8080), (LIP, 5000), ACK, &[], &[]);
    assert_eq!(run(&stray, 1, &lab, &mut st, 0, 1).0, Verdict::Drop(DropReason::NoSession));
    let other_port = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 9), (VIP, 81), SYN, &[], &[]);
    assert_eq!(run(&other_port, 0, &lab, &mut st, 0, 1).0, Verdict::ToKernel);
    let mut truncated = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 9), (VIP, 80), SYN, &[], &[]);
    truncated[14 + 20 + 12] = 0xf0; // data offset 60 > segment
    let (v, _) = run(&truncated, 0, &lab, &mut st, 0, 1);
    assert!(matches!(v, Verdict::Drop(DropReason::TcpMalformed)), "{v:?}");
}

#[test]
fn return_traffic_is_redirected_to_the_worker_owning_the_local_port() {
    let lab = lab(ToaMode::Off);
    let mut w0 = lab.state(0, 2);
    let mut w1 = lab.state(1, 2);
    let syn = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 80), SYN, &[], &[]);
    let (v, out) = run(&syn, 0, &lab, &mut w1, 1, 2);
    assert_eq!(v, Verdict::Tx(1));
    let (_, lport, _, _, _) = tcp_of(&out);
    assert_eq!(lport % 2, 1, "worker 1 allocates odd local ports");
    let synack = tcp_frame(LAN_MAC, RS1_MAC, (RS1, 8080), (LIP, lport), SYN | ACK, &[], &[]);
    assert_eq!(run(&synack, 1, &lab, &mut w0, 0, 2).0, Verdict::Redirect(1), "worker 0 hands it over");
    assert_eq!(run(&synack, 1, &lab, &mut w1, 1, 2).0, Verdict::Tx(0), "the owner translates it");
}

#[test]
fn toa_is_skipped_and_counted_at_the_edges() {
    let lab = lab(ToaMode::FirstAck);
    // Options already 36 bytes: no room for 8 more.
    let mut st = lab.state(0, 1);
    run(&tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 1), (VIP, 80), SYN, &[], &[]), 0, &lab, &mut st, 0, 1);
    let opts = [1u8; 36];
    let ack = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 1), (VIP, 80), ACK, &opts, &[]);
    let (v, out) = run(&ack, 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(out.len(), ack.len());
    assert_eq!(st.counters.toa_skipped_option_space, 1);
    // 32 bytes of options: exactly fits (header becomes 60 bytes).
    run(&tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 3), (VIP, 80), SYN, &[], &[]), 0, &lab, &mut st, 0, 1);
    let ack = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 3), (VIP, 80), ACK, &[1u8; 32], &[]);
    let (_, out) = run(&ack, 0, &lab, &mut st, 0, 1);
    assert_eq!(out.len(), ack.len() + 8);
    let (_, _, _, _, o) = tcp_of(&out);
    assert_eq!(o.len(), 40);
    // A full-size segment would exceed the MTU.
    run(&tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 2), (VIP, 80), SYN, &[], &[]), 0, &lab, &mut st, 0, 1);
    let big = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 2), (VIP, 80), ACK, &[], &[0x55; 1460]);
    let (v, out) = run(&big, 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(out.len(), big.len());
    assert_eq!(st.counters.toa_skipped_mtu, 1);
    tcp_of(&out);
}

#[test]
fn toa_without_headroom_is_skipped() {
    struct NoRoom(TestBuf);
    impl PacketBuf for NoRoom {
        fn data(&self) -> &[u8] { self.0.data() }
        fn data_mut(&mut self) -> &mut [u8] { self.0.data_mut() }
        fn prepend(&mut self, _: usize) -> bool { false }
        fn adj(&mut self, n: usize) -> bool { self.0.adj(n) }
        fn append(&mut self, n: usize) -> bool { self.0.append(n) }
        fn trim(&mut self, n: usize) -> bool { self.0.trim(n) }
    }
    let lab = lab(ToaMode::FirstAck);
    let mut st = lab.state(0, 1);
    run(&tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 1), (VIP, 80), SYN, &[], &[]), 0, &lab, &mut st, 0, 1);
    let mut b = NoRoom(TestBuf::new(&tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 1), (VIP, 80), ACK, &[], &[])));
    assert_eq!(pipeline::process(&mut b, 0, &lab.ctx(0, 1), &mut st), Verdict::Tx(1));
    assert_eq!(st.counters.toa_skipped_headroom, 1);
    tcp_of(b.data());
}

#[test]
fn udp_both_directions_and_icmp_port_unreachable_relay() {
    let lab = lab(ToaMode::Off);
    let mut st = lab.state(0, 1);
    let (v, out) = run(&udp_frame(WAN_MAC, (CLIENT, 5353), (VIP, 80), b"hello"), 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(1));
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert!(ip.verify_checksum());
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!(u.verify_checksum(ip.src_addr(), ip.dst_addr()));
    assert_eq!((ip.src_addr(), ip.dst_addr(), u.dst_port()), (LIP, RS1, 8080));
    let lport = u.src_port();
    let quoted: Vec<u8> = out[14..].to_vec();

    let mut reply = udp_frame(LAN_MAC, (RS1, 8080), (LIP, lport), b"hello");
    reply[6..12].copy_from_slice(&RS1_MAC);
    let mut b = TestBuf::new(&reply);
    // Fix checksums after changing the source MAC (L2 only: nothing to fix).
    let v = pipeline::process(&mut b, 1, &lab.ctx(0, 1), &mut st);
    assert_eq!(v, Verdict::Tx(0));
    let ip = Ipv4Packet::new_checked(&b.data()[14..]).unwrap();
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!(ip.verify_checksum() && u.verify_checksum(ip.src_addr(), ip.dst_addr()));
    assert_eq!((ip.src_addr(), u.src_port(), ip.dst_addr(), u.dst_port()), (VIP, 80, CLIENT, 5353));

    // The RS answers a later datagram with port unreachable, quoting what it received.
    let mut icmp = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&LAN_MAC);
    f.extend_from_slice(&RS1_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + icmp.len()) as u16;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 2, 0, 0, 64, 1, 0, 0]);
    f.extend_from_slice(&RS1.octets());
    f.extend_from_slice(&LIP.octets());
    f.extend_from_slice(&icmp);
    Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
    let (v, out) = run(&f, 1, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(st.counters.icmp_errors_relayed, 1);
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, CLIENT));
    assert_eq!(checksum::checksum(ip.payload()), 0, "ICMP checksum valid");
    let inner = Ipv4Packet::new_checked(&ip.payload()[8..]).unwrap();
    assert!(inner.verify_checksum());
    assert_eq!((inner.src_addr(), inner.dst_addr()), (CLIENT, VIP), "quoted packet is what the client sent");
    let iu = UdpPacket::new_checked(inner.payload()).unwrap();
    assert_eq!((iu.src_port(), iu.dst_port()), (5353, 80));
    assert!(iu.verify_checksum(inner.src_addr(), inner.dst_addr()));
}

/// Where and when a frame is run: worker `worker` of `workers`, at `now_ms`, session sync on or
/// off.
struct At {
    worker: u16,
    workers: u16,
    now_ms: u64,
    sync: bool,
}

/// Runs a frame through a worker with the shared owner maps.
fn run_synced(frame: &[u8], port: u8, lab: &Lab, st: &mut WorkerState, at: At, owners: &Owners) -> (Verdict, Vec<u8>) {
    let mut b = TestBuf::new(frame);
    let ctx = Ctx { owners: Some(owners), sync: at.sync.then(SyncParams::default), now_ms: at.now_ms, ..lab.ctx(at.worker, at.workers) };
    let v = pipeline::process(&mut b, port, &ctx, st);
    (v, b.data().to_vec())
}

#[test]
fn a_synced_session_is_forwarded_by_a_backup_with_another_worker_count() {
    let lab = lab(ToaMode::FirstAck);
    // The master: two workers, sync on; the connection lands on worker 0.
    let m_owners = Owners::default();
    let mut master = lab.state(0, 2);
    let syn = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 80), SYN, &MSS_1460, &[]);
    let (_, out) = run_synced(&syn, 0, &lab, &mut master, At { worker: 0, workers: 2, now_ms: 10_000, sync: true }, &m_owners);
    let (_, lport, _, _, _) = tcp_of(&out);
    assert_eq!(lport % 2, 0, "worker 0 of 2 hands out even local ports");
    assert!(master.sync_out.is_empty(), "SYN_RECV is not synced");
    let ack = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 80), ACK, &[], &[]);
    run_synced(&ack, 0, &lab, &mut master, At { worker: 0, workers: 2, now_ms: 10_000, sync: true }, &m_owners);
    assert_eq!(master.sync_out.len(), 1, "ESTABLISHED is synced at once");
    assert_eq!(master.counters.sync_queued, 1);

    // Over the wire and back.
    let mut msg = vec![0u8; lvsync::DEFAULT_MAXLEN];
    let mut w = lvsync::MessageWriter::new(&mut msg, 255).unwrap();
    assert!(w.push(&master.sync_out[0]));
    let n = w.finish();
    let (_, lvsync::Message::Conns(mut entries)) = lvsync::parse(&msg[..n], 255).unwrap() else { panic!("a conns message") };
    let rec = entries.next().unwrap().unwrap();
    assert_eq!(rec, master.sync_out[0]);
    assert_eq!(rec.fnat, Some(lvsync::FnatOption { laddr: LIP, lport, toa_sent: true, draining: false, persistent: false }));

    // The backup: three workers. The record's home is the owner of its local port there.
    let owners = Owners::default();
    let home = fastpath::sync::home_worker(&rec, 3);
    assert_eq!(home, lport % 3);
    let mut states: Vec<WorkerState> = (0..3).map(|w| lab.state(w, 3)).collect();
    let ctx = Ctx { owners: Some(&owners), now_ms: 20_000, ..lab.ctx(home, 3) };
    assert_eq!(states[usize::from(home)].adopt(&rec, &ctx), Ok(fastpath::sync::Adopted::Created));
    assert_eq!(states[usize::from(home)].adopt(&rec, &ctx), Ok(fastpath::sync::Adopted::Updated));
    assert_eq!(states[usize::from(home)].laddrs.reserve(LIP, lport, (rec.daddr, rec.dport)), Err(fastpath::laddr::ReserveError::Busy), "the local port is reserved");
    assert_eq!(owners.synced.len(), 1);
    let other = (home + 1) % 3;
    assert_eq!(states[usize::from(other)].adopt(&rec, &Ctx { owners: Some(&owners), now_ms: 20_000, ..lab.ctx(other, 3) }), Err(fastpath::sync::AdoptError::PortBusy), "only the port's owner can hold it");

    // The client's next segment reaches another worker: handed to the home worker, which
    // forwards it with the same local address and port, without TOA (already delivered).
    let data = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 80), ACK | 0x08, &[], b"GET / HTTP/1.0\r\n\r\n");
    let (v, _) = run_synced(&data, 0, &lab, &mut states[usize::from(other)], At { worker: other, workers: 3, now_ms: 20_100, sync: false }, &owners);
    assert_eq!(v, Verdict::Redirect(home));
    let (v, out) = run_synced(&data, 0, &lab, &mut states[usize::from(home)], At { worker: home, workers: 3, now_ms: 20_100, sync: false }, &owners);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(out.len(), data.len(), "no second TOA");
    let (s, sp, d, dp, _) = tcp_of(&out);
    assert_eq!((s, sp, d, dp), (LIP, lport, RS1, 8080));

    // The server's answer: steered by the local port, back to the client it came from.
    let reply = tcp_frame(LAN_MAC, RS1_MAC, (RS1, 8080), (LIP, lport), ACK | 0x08, &[], b"HTTP/1.0 200 OK\r\n\r\n");
    let (v, _) = run_synced(&reply, 1, &lab, &mut states[usize::from(other)], At { worker: other, workers: 3, now_ms: 20_200, sync: false }, &owners);
    assert_eq!(v, Verdict::Redirect(home));
    let (v, out) = run_synced(&reply, 1, &lab, &mut states[usize::from(home)], At { worker: home, workers: 3, now_ms: 20_200, sync: false }, &owners);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[0..6], &CLIENT_MAC, "learned from the client's segment");
    let (s, sp, d, dp, _) = tcp_of(&out);
    assert_eq!((s, sp, d, dp), (VIP, 80, CLIENT, 40000));

    // When it expires, the port and the owner entry are given back.
    states[usize::from(home)].expire(20_200 + 901_000, Some(&owners));
    assert!(states[usize::from(home)].sessions.is_empty());
    assert!(owners.synced.is_empty());
    assert_eq!(states[usize::from(home)].laddrs.reserve(LIP, lport, (rec.daddr, rec.dport)), Ok(()));
}

#[test]
fn sync_records_for_unknown_services_or_addresses_are_counted_drops() {
    let lab = lab(ToaMode::Off);
    let owners = Owners::default();
    let mut st = lab.state(0, 1);
    let ctx = Ctx { owners: Some(&owners), ..lab.ctx(0, 1) };
    let rec = lvsync::SyncConn {
        protocol: 6,
        flags: lvsync::flags::FWD_MASQ,
        state: lvsync::tcp_state::ESTABLISHED,
        cport: 5555,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout_s: 100,
        caddr: CLIENT,
        vaddr: VIP,
        daddr: RS1,
        seq: None,
        fnat: Some(lvsync::FnatOption { laddr: LIP, lport: 3000, toa_sent: false, draining: false, persistent: false }),
    };
    use fastpath::sync::AdoptError;
    assert_eq!(st.adopt(&lvsync::SyncConn { vport: 81, ..rec }, &ctx), Err(AdoptError::NoService));
    assert_eq!(st.adopt(&lvsync::SyncConn { fnat: None, ..rec }, &ctx), Err(AdoptError::NoService), "a NAT record for an FNAT service");
    let other_lip = lvsync::FnatOption { laddr: Ipv4Addr::new(9, 9, 9, 9), ..rec.fnat.unwrap() };
    assert_eq!(st.adopt(&lvsync::SyncConn { fnat: Some(other_lip), ..rec }, &ctx), Err(AdoptError::NoLaddr));
    assert_eq!(st.adopt(&lvsync::SyncConn { protocol: 1, ..rec }, &ctx), Err(AdoptError::BadRecord));
    assert_eq!(st.adopt(&lvsync::SyncConn { daddr: Ipv4Addr::new(6, 6, 6, 6), ..rec }, &ctx), Err(AdoptError::UnknownRealServer), "a record cannot send a client to an address the configuration does not name");
    assert_eq!(st.adopt(&lvsync::SyncConn { state: 9, ..rec }, &ctx), Err(AdoptError::BadRecord), "LISTEN is no session state");
    assert_eq!(st.adopt(&lvsync::SyncConn { timeout_s: u32::MAX, ..rec }, &ctx), Ok(fastpath::sync::Adopted::Created));
    let s = st.sessions.iter().next().unwrap();
    assert_eq!(s.expires_ms(), 10_000 + u64::from(fastpath::sync::MAX_SYNCED_TIMEOUT_S) * 1000, "a hostile timeout is capped");
    let c = &st.counters;
    assert_eq!((c.sync_no_service, c.sync_no_laddr, c.sync_bad_record, c.sync_unknown_rs, c.sync_adopted), (2, 1, 2, 1, 1));
}

#[test]
fn a_new_connection_from_one_of_our_own_addresses_is_dropped() {
    let lab = lab(ToaMode::Off);
    let mut st = lab.state(0, 1);
    for src in [LIP, VIP, Ipv4Addr::new(10, 70, 1, 1), Ipv4Addr::new(10, 70, 2, 1)] {
        let syn = tcp_frame(WAN_MAC, CLIENT_MAC, (src, 1025), (VIP, 80), SYN, &[], &[]);
        assert_eq!(run(&syn, 0, &lab, &mut st, 0, 1).0, Verdict::Drop(DropReason::SpoofedSource), "SYN from {src}");
        let dgram = udp_frame(WAN_MAC, (src, 1025), (VIP, 80), b"x");
        assert_eq!(run(&dgram, 0, &lab, &mut st, 0, 1).0, Verdict::Drop(DropReason::SpoofedSource), "datagram from {src}");
    }
    assert!(st.sessions.is_empty());
    let syn = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 1025), (VIP, 80), SYN, &[], &[]);
    assert_eq!(run(&syn, 0, &lab, &mut st, 0, 1).0, Verdict::Tx(1), "a client is still served");
}

#[test]
fn the_route_to_a_real_server_is_cached_until_neighbours_or_addresses_change() {
    let mut lab = lab(ToaMode::Off);
    // One real server, so every packet of every flow goes to RS1.
    lab.services = ServiceTable::new(
        vec![Service {
            real_servers: vec![RealServer::new(RS1, 8080, 1)],
            laddrs: vec![LIP],
            ..Service::new(ServiceKey { vip: VIP, port: 80, proto: L4Proto::Udp }, Scheduler::Rr, ForwardMode::Fnat)
        }],
        1,
    )
    .unwrap();
    let mut st = lab.state(0, 1);
    let frame = udp_frame(WAN_MAC, (CLIENT, 5000), (VIP, 80), b"q");
    let dst_mac = |f: &[u8]| <[u8; 6]>::try_from(&f[..6]).unwrap();
    let (v, out) = run(&frame, 0, &lab, &mut st, 0, 1);
    assert_eq!((v, dst_mac(&out)), (Verdict::Tx(1), RS1_MAC));
    // The real server moves to a new MAC: the next packet follows the new neighbour entry.
    let moved = [0x02, 0, 0, 0, 0, 0x77];
    lab.neigh = lab.neigh.with_updates(&[(RS1, EthernetAddress(moved))]).unwrap();
    let (v, out) = run(&frame, 0, &lab, &mut st, 0, 1);
    assert_eq!((v, dst_mac(&out)), (Verdict::Tx(1), moved));
    // The real server's subnet moves to the other port: a new neighbour generation (what the
    // control side publishes after the ports' addresses change) makes the session route again.
    lab.ports[1].addrs.retain(|(a, _)| *a == LIP);
    lab.ports[0].addrs.push((Ipv4Addr::new(10, 70, 2, 1), 24));
    let (v, _) = run(&frame, 0, &lab, &mut st, 0, 1);
    assert_eq!(v, Verdict::Tx(1), "same generation: the cached port is used");
    lab.neigh = lab.neigh.bumped();
    let (v, out) = run(&frame, 0, &lab, &mut st, 0, 1);
    assert_eq!((v, dst_mac(&out)), (Verdict::Tx(0), moved), "routed again from the new addresses");
    // An unresolved next hop is not cached: the packet is held each time until it resolves.
    let mut st = lab.state(0, 1);
    lab.neigh = NeighTable::default().bumped();
    for _ in 0..2 {
        let (v, _) = run(&frame, 0, &lab, &mut st, 0, 1);
        assert_eq!(v, Verdict::Hold { port: 0, next_hop: RS1 });
    }
}

/// The rule for scaling with cores (docs/ARCHITECTURE.md): FNAT connections — opened,
/// forwarded both ways, closed by expiry — write no cache line another worker writes, even
/// when the owner maps hold entries for other sessions; a lookup in those maps (a reply no
/// local session knows) is counted.
#[test]
fn fnat_connections_write_nothing_other_workers_write() {
    let mut lab = lab(ToaMode::FirstAck);
    const RS2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x12];
    lab.neigh = NeighTable::default().with_updates(&[(RS1, EthernetAddress(RS1_MAC)), (RS2, EthernetAddress(RS2_MAC))]).unwrap();
    let owners = Owners::default();
    let elsewhere = fastpath::FlowKey { src: Ipv4Addr::new(10, 70, 2, 50), dst: Ipv4Addr::new(10, 70, 1, 50), sport: 80, dport: 5000, proto: L4Proto::Tcp };
    owners.nat.insert(elsewhere, 1);
    owners.synced.insert(elsewhere, 1);
    let mut w = [lab.state(0, 2), lab.state(1, 2)];
    let at = |worker: u16, now_ms: u64| Ctx { owners: Some(&owners), now_ms, ..lab.ctx(worker, 2) };
    let step = |frame: &[u8], port: u8, st: &mut WorkerState, worker: u16| {
        let mut b = TestBuf::new(frame);
        let v = pipeline::process(&mut b, port, &at(worker, 10_000), st);
        (v, b.data().to_vec())
    };
    for i in 0..64u16 {
        let home = i % 2;
        let client = (CLIENT, 40_000 + i);
        let syn = tcp_frame(WAN_MAC, CLIENT_MAC, client, (VIP, 80), SYN, &MSS_1460, &[]);
        let (v, out) = step(&syn, 0, &mut w[usize::from(home)], home);
        assert_eq!(v, Verdict::Tx(1), "connection {i}");
        let (_, lport, rs, rport, _) = tcp_of(&out);
        let rs_mac = if rs == RS1 { RS1_MAC } else { RS2_MAC };
        let synack = tcp_frame(LAN_MAC, rs_mac, (rs, rport), (LIP, lport), SYN | ACK, &MSS_1460, &[]);
        assert_eq!(step(&synack, 1, &mut w[usize::from(1 - home)], 1 - home).0, Verdict::Redirect(home), "a reply on the other worker crosses the ring, by its local port");
        assert_eq!(step(&synack, 1, &mut w[usize::from(home)], home).0, Verdict::Tx(0));
        for flags in [ACK, ACK | 0x08, ACK | 0x01] {
            let seg = tcp_frame(WAN_MAC, CLIENT_MAC, client, (VIP, 80), flags, &[], b"x");
            assert_eq!(step(&seg, 0, &mut w[usize::from(home)], home).0, Verdict::Tx(1));
            let reply = tcp_frame(LAN_MAC, rs_mac, (rs, rport), (LIP, lport), flags, &[], b"y");
            assert_eq!(step(&reply, 1, &mut w[usize::from(home)], home).0, Verdict::Tx(0));
        }
    }
    for (i, st) in w.iter_mut().enumerate() {
        st.expire(10_000 + 3_600_000, Some(&owners));
        assert_eq!(st.counters.sessions_created, 32, "worker {i}");
        assert_eq!(st.counters.sessions_expired, 32, "worker {i}");
        assert_eq!(st.counters.shared_writes, 0, "worker {i}: FNAT touched a line other workers write");
    }
    // The counter counts: a client segment no session here knows (not a SYN) looks in the map
    // of synced sessions.
    let stray = tcp_frame(WAN_MAC, CLIENT_MAC, (CLIENT, 39_999), (VIP, 80), ACK, &[], &[]);
    let _ = step(&stray, 0, &mut w[0], 0);
    assert_eq!(w[0].counters.shared_writes, 1);
}
