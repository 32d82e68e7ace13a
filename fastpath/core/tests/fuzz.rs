//! Fuzz targets (bounded, deterministic; fuzz/README.md): the wire views, LVS sync messages,
//! the packet pipeline with a configured service table, and `WorkerState::adopt` with
//! arbitrary sync records. None may panic; each asserts that a share of its inputs go deep.

#![allow(clippy::cast_possible_truncation)] // fixtures build literal packets from small numbers

#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::net::Ipv4Addr;

use fastpath::neigh::NeighTable;
use fastpath::service::{ForwardMode, Persistence, RealServer, Scheduler, Service, ServiceKey, ServiceTable, ToaMode};
use fastpath::session::Timeouts;
use fastpath::sync::SyncParams;
use fastpath::synproxy::SynProxyConf;
use fastpath::wire::lvsync::{self, Control, FnatOption, Seq, SeqOption, SyncConn};
use fastpath::wire::{
    ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpPacket, TcpRepr, ToaRepr, UdpPacket, UdpRepr,
};
use fastpath::{pipeline, Ctx, Interface, L4Proto, PacketBuf, TestBuf, Verdict, WorkerState};

/// Mutants per target under `cargo test` (FUZZ_ITERS overrides).
const ITERS: usize = 200_000;
const MAX_FRAME: usize = 1600;
const MAX_SESSIONS: usize = 64;

const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const RS1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 10);
const FAR_CLIENT: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 9);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 100);
const VIP_NAT: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 101);
const VIP_DR: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 102);
const VIP_SP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 103);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 100);
const RS1: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 12);
const RS_NAT: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 21);
const RS_DR: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 31);

// ---- frames ----

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ip_frame(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = eth(dst_mac, src_mac, 0x0800);
    let total = (20 + l4.len()) as u16;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(l4);
    repair(&mut f);
    f
}

fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8, options: &[u8], payload: &[u8], port: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&src.1.to_be_bytes());
    t.extend_from_slice(&dst.1.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, (((20 + options.len()) / 4) << 4) as u8, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(options);
    t.extend_from_slice(payload);
    let (d, s) = if port == 0 { (WAN_MAC, CLIENT_MAC) } else { (LAN_MAC, RS1_MAC) };
    with_port(port, ip_frame(d, s, src.0, dst.0, 6, &t))
}

fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.1.to_be_bytes());
    u.extend_from_slice(&dst.1.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    with_port(0, ip_frame(WAN_MAC, CLIENT_MAC, src.0, dst.0, 17, &u))
}

fn with_port(port: u8, frame: Vec<u8>) -> Vec<u8> {
    let mut v = vec![port];
    v.extend(frame);
    v
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const MSS_1460: [u8; 4] = [2, 4, 0x05, 0xb4];
/// MSS, SACK permitted, timestamps, NOP, window scale.
const SYN_OPTIONS: [u8; 20] = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

/// Fixes the IPv4 header checksum and the TCP/UDP/ICMP checksum of an Ethernet frame, where
/// the views accept it. Never panics on any input.
fn repair(frame: &mut [u8]) {
    let Ok(mut e) = EthernetFrame::new_checked(&mut frame[..]) else { return };
    if e.ethertype() != EtherType::Ipv4 {
        return;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(e.payload_mut()) else { return };
    ip.fill_checksum();
    let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    let payload = ip.payload_mut();
    match proto {
        IpProtocol::Tcp => {
            if let Ok(mut t) = TcpPacket::new_checked(payload) {
                t.fill_checksum(src, dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut u) = UdpPacket::new_checked(payload) {
                u.fill_checksum(src, dst);
            }
        }
        IpProtocol::Icmp => {
            if let Ok(mut i) = Icmpv4Packet::new_checked(payload) {
                if let Ok(mut inner) = i.embedded_packet_mut() {
                    inner.fill_checksum();
                }
                i.fill_checksum();
            }
        }
        _ => {}
    }
}

/// The seeds of the pipeline target: a port byte, then a frame.
fn pipeline_seeds() -> Vec<Vec<u8>> {
    let mut arp = eth([0xff; 6], CLIENT_MAC, 0x0806);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&CLIENT.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&VIP.octets());
    let echo = ip_frame(WAN_MAC, CLIENT_MAC, CLIENT, VIP, 1, &[8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g']);
    // A router says a client is unreachable, quoting an FNAT reply (VIP:80 -> client).
    let quoted = &tcp((VIP, 80), (CLIENT, 40000), SYN | ACK, &[], &[], 0)[15..];
    let mut unreach = vec![3, 1, 0, 0, 0, 0, 0, 0];
    unreach.extend_from_slice(&quoted[..28]);
    let unreach = ip_frame(WAN_MAC, CLIENT_MAC, Ipv4Addr::new(10, 70, 1, 254), VIP, 1, &unreach);
    // The real server says frag needed, quoting an FNAT packet towards it.
    let quoted = &tcp((LIP, 1025), (RS1, 8080), ACK, &[], b"data", 1)[15..];
    let mut frag = vec![3, 4, 0, 0, 0, 0, 0x05, 0x00];
    frag.extend_from_slice(quoted);
    let frag = ip_frame(LAN_MAC, RS1_MAC, RS1, LIP, 1, &frag);
    vec![
        tcp((CLIENT, 40000), (VIP, 80), SYN, &MSS_1460, &[], 0),
        tcp((CLIENT, 40001), (VIP, 80), SYN, &SYN_OPTIONS, &[], 0),
        tcp((CLIENT, 40000), (VIP, 80), ACK, &[], &[], 0),
        tcp((CLIENT, 40000), (VIP, 80), ACK | PSH, &[], b"GET / HTTP/1.0\r\n\r\n", 0),
        tcp((CLIENT, 40000), (VIP, 80), FIN | ACK, &[], &[], 0),
        tcp((CLIENT, 40000), (VIP, 80), RST, &[], &[], 0),
        tcp((RS1, 8080), (LIP, 1025), SYN | ACK, &MSS_1460, &[], 1),
        tcp((FAR_CLIENT, 3333), (VIP_NAT, 80), SYN, &MSS_1460, &[], 0),
        tcp((RS_NAT, 8080), (FAR_CLIENT, 3333), SYN | ACK, &MSS_1460, &[], 1),
        tcp((CLIENT, 3334), (VIP_DR, 80), SYN, &MSS_1460, &[], 0),
        tcp((CLIENT, 3335), (VIP_SP, 80), SYN, &SYN_OPTIONS, &[], 0),
        tcp((CLIENT, 3335), (VIP_SP, 80), ACK, &[], &[], 0),
        udp((CLIENT, 5353), (VIP, 80), b"query"),
        with_port(0, arp),
        with_port(0, echo),
        with_port(0, unreach),
        with_port(1, frag),
    ]
}

// ---- the lab ----

struct Lab {
    ports: Vec<Interface>,
    services: ServiceTable,
    neigh: NeighTable,
}

fn lab() -> Lab {
    let wan = Interface::new(EthernetAddress(WAN_MAC), vec![(Ipv4Addr::new(10, 70, 1, 1), 24)], true);
    let lan = Interface::new(EthernetAddress(LAN_MAC), vec![(Ipv4Addr::new(10, 70, 2, 1), 24), (LIP, 32)], true);
    let fnat = |proto| Service {
        real_servers: vec![RealServer::new(RS1, 8080, 1), RealServer::new(RS2, 8080, 1)],
        laddrs: vec![LIP],
        toa: ToaMode::FirstAck,
        ..Service::new(ServiceKey { vip: VIP, port: 80, proto }, Scheduler::Rr, ForwardMode::Fnat)
    };
    let nat = Service {
        real_servers: vec![RealServer::new(RS_NAT, 8080, 1)],
        persistence: Some(Persistence { timeout_s: 60, netmask: Ipv4Addr::new(255, 255, 255, 0) }),
        ..Service::new(ServiceKey { vip: VIP_NAT, port: 80, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Nat)
    };
    let dr = Service {
        real_servers: vec![RealServer::new(RS_DR, 80, 1)],
        ..Service::new(ServiceKey { vip: VIP_DR, port: 80, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Dr)
    };
    let sp = Service { syn_proxy: Some(SynProxyConf { wscale: Some(7), ..SynProxyConf::default() }), ..fnat(L4Proto::Tcp) };
    let sp = Service { key: ServiceKey { vip: VIP_SP, port: 80, proto: L4Proto::Tcp }, ..sp };
    let services = ServiceTable::new(vec![fnat(L4Proto::Tcp), fnat(L4Proto::Udp), nat, dr, sp], 1).unwrap();
    let neigh = NeighTable::default()
        .with_updates(&[(RS1, EthernetAddress(RS1_MAC)), (RS_NAT, EthernetAddress(RS1_MAC)), (CLIENT, EthernetAddress(CLIENT_MAC))])
        .unwrap();
    Lab { ports: vec![wan, lan], services, neigh }
}

impl Lab {
    fn ctx(&self, now_ms: u64) -> Ctx<'_> {
        Ctx {
            ports: &self.ports,
            services: &self.services,
            neigh: &self.neigh,
            worker: 0,
            workers: 1,
            now_ms,
            owners: None,
            sync: Some(SyncParams { threshold: 1, period: 2, refresh_period_ms: 0 }),
        }
    }
}

/// The reply a peer would send to `out` (sent out of `port`): addresses and ports swapped.
fn reply(out: &[u8], port: u8) -> Option<Vec<u8>> {
    let mut f = out.to_vec();
    if f.len() < 14 + 20 + 4 {
        return None;
    }
    let (dst, src) = (f[0..6].to_vec(), f[6..12].to_vec());
    f[0..6].copy_from_slice(&src);
    f[6..12].copy_from_slice(&dst);
    let ihl = usize::from(f[14] & 0x0f) * 4;
    if ihl < 20 || f.len() < 14 + ihl + 4 {
        return None;
    }
    let (s, d) = (f[26..30].to_vec(), f[30..34].to_vec());
    f[26..30].copy_from_slice(&d);
    f[30..34].copy_from_slice(&s);
    let l4 = 14 + ihl;
    let (sp, dp) = (f[l4..l4 + 2].to_vec(), f[l4 + 2..l4 + 4].to_vec());
    f[l4..l4 + 2].copy_from_slice(&dp);
    f[l4 + 2..l4 + 4].copy_from_slice(&sp);
    if f[14 + 9] == 6 && f.len() >= l4 + 14 {
        // A peer's answer: SYN -> SYN-ACK, SYN-ACK -> ACK, acknowledging what it answers.
        let flags = f[l4 + 13];
        let (seq, ack) = (f[l4 + 4..l4 + 8].to_vec(), f[l4 + 8..l4 + 12].to_vec());
        let next = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]).wrapping_add(1).to_be_bytes();
        f[l4 + 13] = match (flags & SYN != 0, flags & ACK != 0) {
            (true, false) => SYN | ACK,
            (true, true) => ACK,
            _ => flags | ACK,
        };
        if flags & SYN != 0 {
            f[l4 + 8..l4 + 12].copy_from_slice(&next);
            if flags & ACK != 0 {
                f[l4 + 4..l4 + 8].copy_from_slice(&ack);
            }
        }
    }
    repair(&mut f);
    let mut v = vec![port];
    v.extend(f);
    Some(v)
}

// ---- targets ----

/// Every view and accessor on an Ethernet frame (ARP, IPv4, TCP, UDP, ICMP and its quote).
fn wire_one(frame: &[u8]) -> bool {
    let Ok(e) = EthernetFrame::new_checked(frame) else { return false };
    let _ = (e.dst_addr(), e.src_addr(), e.ethertype(), EthernetRepr::parse(&e));
    match e.ethertype() {
        EtherType::Arp => {
            let Ok(a) = ArpPacket::new_checked(e.payload()) else { return false };
            let _ = (a.hardware_type(), a.protocol_type(), a.hardware_len(), a.protocol_len(), a.operation());
            let _ = (a.source_hardware_addr(), a.source_protocol_addr(), a.target_hardware_addr(), a.target_protocol_addr());
            ArpRepr::parse(&a).is_ok()
        }
        EtherType::Ipv4 => ipv4_one(e.payload(), false),
        _ => false,
    }
}

fn ipv4_one(bytes: &[u8], quoted: bool) -> bool {
    let ip = if quoted { Ipv4Packet::new_checked_quoted(bytes) } else { Ipv4Packet::new_checked(bytes) };
    let Ok(ip) = ip else { return false };
    let _ = (ip.version(), ip.header_len(), ip.dscp(), ip.ecn(), ip.total_len(), ip.ident(), ip.dont_frag(), ip.more_frags());
    let _ = (ip.frag_offset(), ip.is_fragment(), ip.ttl(), ip.protocol(), ip.checksum(), ip.header(), ip.options());
    let _ = (ip.verify_checksum(), Ipv4Repr::parse(&ip));
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload();
    match ip.protocol() {
        IpProtocol::Tcp => {
            let Ok(t) = TcpPacket::new_checked(payload) else { return false };
            let _ = (t.src_port(), t.dst_port(), t.seq_number(), t.ack_number(), t.header_len(), t.flags(), t.window_len());
            let _ = (t.checksum(), t.urgent_at(), t.payload(), t.segment_len(), t.mss(), t.verify_checksum(src, dst));
            for o in t.options_iter().flatten() {
                let _ = ToaRepr::from_tcp_option(&o);
            }
            let _ = ToaRepr::find(t.options());
            TcpRepr::parse(&t, src, dst).is_ok()
        }
        IpProtocol::Udp => {
            let Ok(u) = UdpPacket::new_checked(payload) else { return false };
            let _ = (u.src_port(), u.dst_port(), u.len(), u.checksum(), u.payload(), u.verify_checksum(src, dst));
            UdpRepr::parse(&u, src, dst).is_ok()
        }
        IpProtocol::Icmp => {
            let Ok(i) = Icmpv4Packet::new_checked(payload) else { return false };
            let _ = (i.msg_type(), i.msg_code(), i.checksum(), i.echo_ident(), i.echo_seq_no(), i.next_hop_mtu(), i.data());
            let _ = i.verify_checksum();
            if let Ok(inner) = i.embedded_packet() {
                let _ = ipv4_one(inner.into_inner(), true);
            }
            Icmpv4Repr::parse(&i).is_ok()
        }
        _ => false,
    }
}

#[test]
fn fuzz_wire() {
    let seeds: Vec<Vec<u8>> = pipeline_seeds().into_iter().map(|s| s[1..].to_vec()).collect();
    let stats = harness::run("wire", &seeds, ITERS, MAX_FRAME, |input, fix| {
        let mut f = input.to_vec();
        if fix {
            repair(&mut f);
        }
        wire_one(&f)
    });
    stats.assert_deep("wire", 15);
}

fn sync_seeds() -> Vec<Vec<u8>> {
    let fnat = SyncConn {
        protocol: 6,
        flags: lvsync::flags::SYNC,
        state: lvsync::tcp_state::ESTABLISHED,
        cport: 40000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout_s: 900,
        caddr: CLIENT,
        vaddr: VIP,
        daddr: RS1,
        seq: None,
        fnat: Some(FnatOption { laddr: LIP, lport: 1025, toa_sent: true, draining: false, persistent: false }),
    };
    let seq = Seq { init_seq: 1000, delta: 12, previous_delta: 4 };
    let nat = SyncConn {
        flags: lvsync::flags::SYNC | lvsync::flags::SEQ_MASK,
        caddr: FAR_CLIENT,
        vaddr: VIP_NAT,
        daddr: RS_NAT,
        seq: Some(SeqOption { in_seq: seq, out_seq: seq }),
        fnat: None,
        ..fnat
    };
    let dr = SyncConn { flags: lvsync::flags::FWD_DROUTE, vaddr: VIP_DR, daddr: RS_DR, dport: 80, fnat: None, ..fnat };
    let udp = SyncConn { protocol: 17, state: 0, ..fnat };
    let msg = |conns: &[SyncConn]| {
        let mut buf = vec![0u8; lvsync::DEFAULT_MAXLEN];
        let mut w = lvsync::MessageWriter::new(&mut buf, 7).unwrap();
        for c in conns {
            assert!(w.push(c));
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    };
    let control = |c: Control| {
        let mut buf = vec![0u8; 64];
        let n = lvsync::emit_control(&mut buf, 7, &c).unwrap();
        buf.truncate(n);
        buf
    };
    vec![
        msg(&[fnat]),
        msg(&[nat, dr]),
        msg(&[udp, fnat, nat, dr]),
        msg(&[]),
        control(Control::BulkRequest { nonce: 0x1234_5678 }),
        control(Control::BulkEnd { nonce: 0x1234_5678, conns: 3 }),
    ]
}

#[test]
fn fuzz_lvsync() {
    let lab = lab();
    let mut st = WorkerState::new(0, 1, &lab.services, MAX_SESSIONS, Timeouts::default());
    let mut now = 10_000;
    let stats = harness::run("lvsync", &sync_seeds(), ITERS, 2048, |input, fix| {
        let mut m = input.to_vec();
        if fix && m.len() >= 4 {
            let n = (m.len().min(0xffff) as u16).to_be_bytes();
            m[2..4].copy_from_slice(&n);
        }
        let accept = if m.len() > 1 && fix { m[1] } else { 0 };
        let mut deep = false;
        if let Ok(h) = lvsync::SyncHeader::new_checked(&m[..]) {
            let _ = (h.reserved(), h.syncid(), h.size(), h.nr_conns(), h.version(), h.spare(), h.is_v1());
        }
        match lvsync::parse(&m, accept) {
            Ok((_, lvsync::Message::Conns(entries))) => {
                let max = entries.remaining();
                let mut n = 0;
                for e in entries {
                    n += 1;
                    if let Ok(c) = e {
                        deep = true;
                        now += 1;
                        let _ = st.adopt(&c, &lab.ctx(now));
                        assert!(st.sessions.len() <= MAX_SESSIONS);
                    }
                }
                assert!(n <= max, "at most nr_conns items");
            }
            Ok((_, lvsync::Message::Control(_))) => deep = true,
            Err(e) => {
                let _ = e.reason();
            }
        }
        deep
    });
    stats.assert_deep("lvsync", 10);
}

#[test]
fn fuzz_pipeline() {
    let lab = lab();
    let mut st = WorkerState::new(0, 1, &lab.services, MAX_SESSIONS, Timeouts::default());
    let mut now: u64 = 100_000;
    let mut last_out: Option<(Vec<u8>, u8)> = None;
    let mut max_seen = 0;
    let stats = harness::run("pipeline", &pipeline_seeds(), ITERS, MAX_FRAME, |input, fix| {
        let Some((&ctl, frame)) = input.split_first() else { return false };
        let mut frame = frame.to_vec();
        if fix {
            repair(&mut frame);
        }
        let mut inputs = vec![(frame, ctl & 1)];
        // Now and then the peer answers the last forwarded frame, so sessions see both ways.
        if ctl & 0x06 == 0x06 {
            if let Some(r) = last_out.as_ref().and_then(|(out, port)| reply(out, *port)) {
                inputs.push((r[1..].to_vec(), r[0]));
            }
        }
        now += u64::from(ctl >> 4) * 500;
        if ctl & 0xf8 == 0xf8 {
            now += 3_600_000;
            st.expire(now, None);
        }
        let mut deep = false;
        for (frame, port) in inputs {
            let mut b = TestBuf::new(&frame);
            let v = pipeline::process(&mut b, port, &lab.ctx(now), &mut st);
            assert!(st.sessions.len() <= MAX_SESSIONS, "session table over its max");
            max_seen = max_seen.max(st.sessions.len());
            match v {
                Verdict::Tx(p) => {
                    deep = true;
                    last_out = Some((b.data().to_vec(), p));
                }
                Verdict::Redirect(_) | Verdict::Hold { .. } => deep = true,
                Verdict::ToKernel | Verdict::Drop(_) => {}
            }
        }
        if st.sync_out.len() > 1000 {
            st.sync_out.clear();
        }
        assert!(st.emit.len() <= fastpath::worker::MAX_EMIT, "emit queue over its bound");
        for e in st.emit.drain(..) {
            assert!(wire_one(e.bytes()), "an originated frame parses: {:02x?}", e.bytes());
        }
        deep
    });
    stats.assert_deep("pipeline", 5);
    assert!(max_seen > 1, "sessions were created");
    let c = &st.counters;
    assert!(c.synproxy_syn_cookies > 0 && c.synproxy_accepted > 0 && c.synproxy_window_updates > 0, "the SYN proxy's handshake was reached: {} cookies, {} accepted, {} window updates", c.synproxy_syn_cookies, c.synproxy_accepted, c.synproxy_window_updates);
}

/// Bytes read in turn; zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// An arbitrary sync record: mostly one of this lab's services (coherent mode, addresses
/// and ports, so that adoption gets far), often with one field made arbitrary.
fn sync_conn(b: &mut Bytes<'_>) -> SyncConn {
    let pick = b.u8();
    let (cport, state, timeout_s, lport, opt) = (b.u16(), u16::from(b.u8() % 12), u32::from(b.u16()), b.u16(), b.u8());
    let seq = (opt & 1 != 0).then(|| {
        let s = Seq { init_seq: b.u32(), delta: u32::from(b.u8()), previous_delta: u32::from(b.u8()) };
        SeqOption { in_seq: s, out_seq: s }
    });
    let fnat_opt = FnatOption { laddr: LIP, lport, toa_sent: opt & 2 != 0, draining: opt & 4 != 0, persistent: opt & 8 != 0 };
    let fnat = Some(fnat_opt);
    let rs = if opt & 16 != 0 { RS1 } else { RS2 };
    let sync = lvsync::flags::SYNC;
    let base = SyncConn { protocol: 6, flags: sync, state, cport, vport: 80, dport: 8080, fwmark: 0, timeout_s, caddr: CLIENT, vaddr: VIP, daddr: rs, seq: None, fnat };
    let mut c = match pick % 5 {
        0 => base,
        1 => SyncConn { protocol: 17, state: state % 3, ..base },
        2 => SyncConn { caddr: FAR_CLIENT, vaddr: VIP_NAT, daddr: RS_NAT, seq, fnat: None, ..base },
        3 => SyncConn { flags: sync | lvsync::flags::FWD_DROUTE, vaddr: VIP_DR, daddr: RS_DR, dport: 80, fnat: None, ..base },
        _ => SyncConn {
            protocol: b.u8(),
            flags: b.u32(),
            vport: b.u16(),
            dport: b.u16(),
            fwmark: b.u32(),
            caddr: Ipv4Addr::from(b.u32()),
            vaddr: Ipv4Addr::from(b.u32()),
            daddr: Ipv4Addr::from(b.u32()),
            seq,
            fnat: (opt & 32 != 0).then(|| FnatOption { laddr: Ipv4Addr::from(b.u32()), ..fnat_opt }),
            ..base
        },
    };
    if pick >= 160 {
        match b.u8() % 8 {
            0 => c.protocol = b.u8(),
            1 => c.flags = b.u32(),
            2 => c.state = b.u16(),
            3 => c.vport = b.u16(),
            4 => c.daddr = Ipv4Addr::from(b.u32()),
            5 => c.fnat = c.fnat.map(|f| FnatOption { laddr: Ipv4Addr::from(b.u32()), ..f }),
            6 => c.fnat = None,
            _ => c.dport = b.u16(),
        }
    }
    c
}

#[test]
fn fuzz_adopt() {
    let lab = lab();
    let workers = 2;
    let mut states: Vec<WorkerState> = (0..workers).map(|w| WorkerState::new(w, workers, &lab.services, MAX_SESSIONS, Timeouts::default())).collect();
    let mut now: u64 = 100_000;
    // Seeds: byte strings that decode to records of each service (see `sync_conn`).
    let seeds: Vec<Vec<u8>> = (0u8..5).map(|k| (0u8..48).map(|i| i.wrapping_mul(37).wrapping_add(k)).collect()).collect();
    let stats = harness::run("adopt", &seeds, ITERS, 256, |input, _| {
        let mut b = Bytes(input);
        let mut deep = false;
        while !b.0.is_empty() {
            let c = sync_conn(&mut b);
            let home = fastpath::sync::home_worker(&c, workers);
            now += u64::from(b.u8()) * 100;
            let ctx = Ctx { worker: home, workers, ..lab.ctx(now) };
            let st = &mut states[usize::from(home)];
            deep |= st.adopt(&c, &ctx).is_ok();
            assert!(st.sessions.len() <= MAX_SESSIONS, "session table over its max");
            if now.is_multiple_of(7919) {
                st.expire(now + 3_600_000, None);
            }
        }
        deep
    });
    stats.assert_deep("adopt", 20);
}
