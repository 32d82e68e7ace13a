//! SYN proxy through the whole pipeline: cookies answered statelessly, the real server's
//! handshake completed on the client's behalf, sequence numbers spliced both ways, with
//! every checksum checked against a full recomputation.

#![allow(clippy::cast_possible_truncation)] // fixtures build literal packets from small numbers

use std::net::Ipv4Addr;

use fastpath::neigh::NeighTable;
use fastpath::service::{FlowControl, ForwardMode, RealServer, Scheduler, Service, ServiceKey, ServiceTable, ToaMode};
use fastpath::session::{ConnState, Timeouts};
use fastpath::synproxy::SynProxyConf;
use fastpath::wire::{EthernetAddress, Ipv4Packet, TcpOption, TcpOptionsIter, TcpPacket, ToaRepr};
use fastpath::{pipeline, Ctx, DropReason, Interface, L4Proto, PacketBuf, TestBuf, Verdict, WorkerState};

const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const RS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 100);
const NAT_VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 101);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 100);
const RS: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 11);
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

struct Lab {
    ports: Vec<Interface>,
    services: ServiceTable,
    neigh: NeighTable,
    now_ms: u64,
}

fn lab(conf: SynProxyConf, toa: ToaMode, flow: FlowControl, deny: Vec<(Ipv4Addr, u8)>) -> Lab {
    let wan = Interface::new(EthernetAddress(WAN_MAC), vec![(Ipv4Addr::new(10, 70, 1, 1), 24)], true);
    let lan = Interface::new(EthernetAddress(LAN_MAC), vec![(Ipv4Addr::new(10, 70, 2, 1), 24), (LIP, 32)], true);
    let fnat = Service {
        real_servers: vec![RealServer::new(RS, 8080, 1)],
        laddrs: vec![LIP],
        toa,
        flow,
        deny,
        syn_proxy: Some(conf),
        ..Service::new(ServiceKey { vip: VIP, port: 80, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Fnat)
    };
    let nat = Service { real_servers: vec![RealServer::new(RS, 8080, 1)], syn_proxy: Some(conf), ..Service::new(ServiceKey { vip: NAT_VIP, port: 80, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Nat) };
    let services = ServiceTable::new(vec![fnat, nat], 1).unwrap();
    let neigh = NeighTable::default().with_updates(&[(RS, EthernetAddress(RS_MAC)), (CLIENT, EthernetAddress(CLIENT_MAC))]).unwrap();
    Lab { ports: vec![wan, lan], services, neigh, now_ms: 1_000_000 }
}

fn default_lab() -> Lab {
    lab(SynProxyConf { wscale: Some(7), ..SynProxyConf::default() }, ToaMode::FirstAck, FlowControl::default(), vec![])
}

impl Lab {
    fn ctx(&self) -> Ctx<'_> {
        Ctx { ports: &self.ports, services: &self.services, neigh: &self.neigh, worker: 0, workers: 1, now_ms: self.now_ms, owners: None, sync: None }
    }
    fn state(&self) -> WorkerState {
        WorkerState::new(0, 1, &self.services, 1000, Timeouts::default())
    }
    fn run(&self, frame: &[u8], port: u8, st: &mut WorkerState) -> (Verdict, Vec<u8>) {
        let mut b = TestBuf::new(frame);
        let v = pipeline::process(&mut b, port, &self.ctx(), st);
        (v, b.data().to_vec())
    }
}

/// One TCP segment as a test writes or reads it.
#[derive(Debug, Clone)]
struct Seg {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

impl Default for Seg {
    fn default() -> Self {
        Seg { src: (Ipv4Addr::UNSPECIFIED, 0), dst: (Ipv4Addr::UNSPECIFIED, 0), seq: 0, ack: 0, flags: 0, window: 0, options: Vec::new(), payload: Vec::new() }
    }
}

fn frame(eth_dst: [u8; 6], eth_src: [u8; 6], s: &Seg) -> Vec<u8> {
    assert_eq!(s.options.len() % 4, 0);
    let total = (40 + s.options.len() + s.payload.len()) as u16;
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&s.src.0.octets());
    f.extend_from_slice(&s.dst.0.octets());
    f.extend_from_slice(&s.src.1.to_be_bytes());
    f.extend_from_slice(&s.dst.1.to_be_bytes());
    f.extend_from_slice(&s.seq.to_be_bytes());
    f.extend_from_slice(&s.ack.to_be_bytes());
    f.extend_from_slice(&[(((20 + s.options.len()) / 4) << 4) as u8, s.flags]);
    f.extend_from_slice(&s.window.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(&s.options);
    f.extend_from_slice(&s.payload);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.fill_checksum();
    TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(s.src.0, s.dst.0);
    f
}

/// Parses a frame, checking both checksums against a full recomputation.
fn parse(f: &[u8]) -> Seg {
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 checksum");
    assert_eq!(usize::from(ip.total_len()), f.len() - 14, "IP length matches the frame");
    let t = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(t.verify_checksum(ip.src_addr(), ip.dst_addr()), "TCP checksum equals a full recomputation");
    Seg {
        src: (ip.src_addr(), t.src_port()),
        dst: (ip.dst_addr(), t.dst_port()),
        seq: t.seq_number(),
        ack: t.ack_number(),
        flags: t.flags().bits(),
        window: t.window_len(),
        options: t.options().to_vec(),
        payload: t.payload().to_vec(),
    }
}

fn opts(s: &Seg) -> Vec<TcpOption<'_>> {
    TcpOptionsIter::new(&s.options).map(Result::unwrap).filter(|o| *o != TcpOption::Nop).collect()
}

/// Client SYN options: MSS 1460, NOP + window scale 7, NOP NOP + SACK-permitted.
const SYN_OPTS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2];
const CISN: u32 = 0x1000_0000;
const RSISN: u32 = 0x8000_0000;
const CPORT: u16 = 40_000;

/// Runs the handshake; returns the cookie and the local port.
fn handshake(lab: &Lab, st: &mut WorkerState) -> (u32, u16) {
    let syn = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN, flags: SYN, window: 64_240, options: SYN_OPTS.to_vec(), ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &syn), 0, st);
    assert_eq!(v, Verdict::Tx(0), "the director answers the SYN itself");
    assert_eq!((&out[0..6], &out[6..12]), (&CLIENT_MAC[..], &WAN_MAC[..]));
    let sa = parse(&out);
    assert_eq!((sa.src, sa.dst, sa.flags, sa.ack, sa.window), ((VIP, 80), (CLIENT, CPORT), SYN | ACK, CISN + 1, 0));
    assert_eq!(opts(&sa), vec![TcpOption::Mss(1452), TcpOption::WindowScale(7), TcpOption::SackPermitted]);
    assert_eq!(Ipv4Packet::new_unchecked(&out[14..]).ttl(), 63);
    assert_eq!(st.sessions.len(), 0, "nothing is stored for a SYN");
    let cookie = sa.seq;

    let ack = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN + 1, ack: cookie.wrapping_add(1), flags: ACK, window: 1000, ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack), 0, st);
    assert_eq!(v, Verdict::Tx(1), "a valid cookie opens the connection toward the real server");
    assert_eq!((&out[0..6], &out[6..12]), (&RS_MAC[..], &LAN_MAC[..]));
    let syn_rs = parse(&out);
    assert_eq!((syn_rs.src.0, syn_rs.dst, syn_rs.flags, syn_rs.seq), (LIP, (RS, 8080), SYN, CISN));
    assert_eq!(opts(&syn_rs), vec![TcpOption::Mss(1460), TcpOption::WindowScale(7), TcpOption::SackPermitted]);
    assert_eq!(syn_rs.window, 65_535, "the client's window, unscaled (1000 << 7) and capped");
    assert_eq!(st.sessions.len(), 1);
    (cookie, syn_rs.src.1)
}

#[test]
fn handshake_then_data_both_ways_spliced_with_toa_and_rescaled_windows() {
    let lab = default_lab();
    let mut st = lab.state();
    let (cookie, lport) = handshake(&lab, &mut st);

    // The real server answers with shift 9.
    let synack = Seg { src: (RS, 8080), dst: (LIP, lport), seq: RSISN, ack: CISN + 1, flags: SYN | ACK, window: 29_200, options: vec![2, 4, 0x05, 0xb4, 1, 3, 3, 9], ..Seg::default() };
    let (v, out) = lab.run(&frame(LAN_MAC, RS_MAC, &synack), 1, &mut st);
    assert_eq!(v, Verdict::Tx(1), "the SYN-ACK becomes the ACK back to the real server");
    let ack_rs = parse(&out);
    assert_eq!((ack_rs.src, ack_rs.dst, ack_rs.flags, ack_rs.seq, ack_rs.ack), ((LIP, lport), (RS, 8080), ACK, CISN + 1, RSISN + 1));
    assert_eq!(ToaRepr::find(&ack_rs.options).unwrap(), Some(ToaRepr { addr: CLIENT, port: CPORT }), "TOA on the first ACK");
    assert_eq!(st.emit.len(), 1, "and a window update to the client");
    let e = st.emit.pop().unwrap();
    assert_eq!(e.port, 0);
    assert_eq!((&e.bytes()[0..6], &e.bytes()[6..12]), (&CLIENT_MAC[..], &WAN_MAC[..]));
    let upd = parse(e.bytes());
    assert_eq!((upd.src, upd.dst, upd.flags, upd.seq, upd.ack), ((VIP, 80), (CLIENT, CPORT), ACK, cookie.wrapping_add(1), CISN + 1));
    assert_eq!(upd.window, 29_200 >> 7, "the real server's window in the client's scale");
    assert_eq!(st.sessions.iter().next().unwrap().state, ConnState::Established);

    // Client data: acknowledgements move into the real server's numbering; no second TOA.
    let get = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN + 1, ack: cookie.wrapping_add(1), flags: ACK | PSH, window: 502, payload: b"GET /".to_vec(), ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &get), 0, &mut st);
    assert_eq!(v, Verdict::Tx(1));
    let g = parse(&out);
    assert_eq!((g.src, g.dst, g.seq, g.ack, g.window, g.payload.as_slice()), ((LIP, lport), (RS, 8080), CISN + 1, RSISN + 1, 502, &b"GET /"[..]));
    assert!(g.options.is_empty());

    // Server data: sequence numbers move into the cookie's numbering; window 100 << 9 >> 7.
    let resp = Seg { src: (RS, 8080), dst: (LIP, lport), seq: RSISN + 1, ack: CISN + 6, flags: ACK | PSH, window: 100, payload: b"200 OK".to_vec(), ..Seg::default() };
    let (v, out) = lab.run(&frame(LAN_MAC, RS_MAC, &resp), 1, &mut st);
    assert_eq!(v, Verdict::Tx(0));
    let r = parse(&out);
    assert_eq!((r.src, r.dst, r.seq, r.ack, r.window), ((VIP, 80), (CLIENT, CPORT), cookie.wrapping_add(1), CISN + 6, 400));

    // SACK edges from the client are acknowledgements too.
    let mut sack = vec![1, 1, 5, 10];
    sack.extend_from_slice(&cookie.wrapping_add(101).to_be_bytes());
    sack.extend_from_slice(&cookie.wrapping_add(201).to_be_bytes());
    let dup = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN + 6, ack: cookie.wrapping_add(7), flags: ACK, window: 502, options: sack, ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &dup), 0, &mut st);
    assert_eq!(v, Verdict::Tx(1));
    let d = parse(&out);
    assert_eq!(d.ack, RSISN + 7);
    let Some(TcpOption::Sack(edges)) = opts(&d).into_iter().find(|o| matches!(o, TcpOption::Sack(_))) else { panic!("SACK kept") };
    assert_eq!(edges, [(RSISN + 101).to_be_bytes(), (RSISN + 201).to_be_bytes()].concat());
    assert_eq!(st.counters.synproxy_syn_cookies, 1);
    assert_eq!(st.counters.synproxy_accepted, 1);
    assert_eq!(st.counters.synproxy_window_updates, 1);
}

#[test]
fn a_syn_flood_stores_nothing_and_forged_acks_open_nothing() {
    let lab = default_lab();
    let mut st = lab.state();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let src = Ipv4Addr::from(0x0b00_0000 | (x as u32 & 0x00ff_ffff));
        let syn = Seg { src: (src, 1024 + (i % 60_000) as u16), dst: (VIP, 80), seq: (x >> 32) as u32, flags: SYN, window: 1024, ..Seg::default() };
        assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &syn), 0, &mut st).0, Verdict::Tx(0));
        // The flood's "ACKs" guess the cookie.
        let ack = Seg { src: syn.src, dst: (VIP, 80), seq: syn.seq.wrapping_add(1), ack: x as u32, flags: ACK, window: 1024, ..Seg::default() };
        assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack), 0, &mut st).0, Verdict::Drop(DropReason::SynProxyBadCookie));
    }
    assert_eq!(st.sessions.len(), 0);
    assert_eq!(st.counters.synproxy_syn_cookies, 20_000);
}

#[test]
fn a_cookie_is_bound_to_its_connection_and_expires() {
    let mut lab = default_lab();
    let mut st = lab.state();
    let syn = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN, flags: SYN, window: 1024, ..Seg::default() };
    let cookie = parse(&lab.run(&frame(WAN_MAC, CLIENT_MAC, &syn), 0, &mut st).1).seq;
    let ack = |port: u16, seq: u32| Seg { src: (CLIENT, port), dst: (VIP, 80), seq, ack: cookie.wrapping_add(1), flags: ACK, window: 1024, ..Seg::default() };
    let bad = DropReason::SynProxyBadCookie;
    assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack(CPORT + 1, CISN + 1)), 0, &mut st).0, Verdict::Drop(bad), "another port");
    assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack(CPORT, CISN + 1001)), 0, &mut st).0, Verdict::Drop(bad), "another ISN");
    lab.now_ms += 130_000;
    assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack(CPORT, CISN + 1)), 0, &mut st).0, Verdict::Drop(bad), "two minutes later");
    lab.now_ms -= 70_000;
    assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack(CPORT, CISN + 1)), 0, &mut st).0, Verdict::Tx(1), "one minute later");
}

#[test]
fn waiting_for_the_real_server_resends_the_syn_then_drops() {
    let lab = default_lab();
    let mut st = lab.state();
    let (cookie, _) = handshake(&lab, &mut st);
    let data = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN + 1, ack: cookie.wrapping_add(1), flags: ACK | PSH, window: 502, payload: b"x".to_vec(), ..Seg::default() };
    for _ in 0..3 {
        let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &data), 0, &mut st);
        assert_eq!(v, Verdict::Tx(1));
        let s = parse(&out);
        assert_eq!((s.flags, s.seq, s.payload.len()), (SYN, CISN, 0), "the SYN again, without the data");
    }
    assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &data), 0, &mut st).0, Verdict::Drop(DropReason::SynProxyWaiting));
    assert_eq!(st.counters.synproxy_rs_syn_retries, 3);
    // The client gives up: its RST reaches the real server's half-open connection.
    let rst = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN + 1, flags: RST, ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &rst), 0, &mut st);
    assert_eq!(v, Verdict::Tx(1));
    let r = parse(&out);
    assert_eq!((r.flags, r.seq, r.dst), (RST, CISN + 1, (RS, 8080)));
    assert_eq!(st.sessions.iter().next().unwrap().state, ConnState::Close);
}

#[test]
fn a_real_server_reset_reaches_the_client_in_its_numbering() {
    let lab = default_lab();
    let mut st = lab.state();
    let (cookie, lport) = handshake(&lab, &mut st);
    let rst = Seg { src: (RS, 8080), dst: (LIP, lport), seq: 0, ack: CISN + 1, flags: RST | ACK, ..Seg::default() };
    let (v, out) = lab.run(&frame(LAN_MAC, RS_MAC, &rst), 1, &mut st);
    assert_eq!(v, Verdict::Tx(0));
    let r = parse(&out);
    assert_eq!((r.src, r.dst, r.flags & RST, r.seq), ((VIP, 80), (CLIENT, CPORT), RST, cookie.wrapping_add(1)));
    // Anything else from the server before its SYN-ACK is dropped.
    let lab = default_lab();
    let mut st = lab.state();
    let (_, lport) = handshake(&lab, &mut st);
    let stray = Seg { src: (RS, 8080), dst: (LIP, lport), seq: 5, ack: CISN + 1, flags: ACK, ..Seg::default() };
    assert_eq!(lab.run(&frame(LAN_MAC, RS_MAC, &stray), 1, &mut st).0, Verdict::Drop(DropReason::SynProxyWaiting));
}

#[test]
fn an_ack_storm_is_cut_and_server_data_resets_the_count() {
    let lab = default_lab();
    let mut st = lab.state();
    let (cookie, lport) = handshake(&lab, &mut st);
    let synack = Seg { src: (RS, 8080), dst: (LIP, lport), seq: RSISN, ack: CISN + 1, flags: SYN | ACK, window: 29_200, ..Seg::default() };
    assert_eq!(lab.run(&frame(LAN_MAC, RS_MAC, &synack), 1, &mut st).0, Verdict::Tx(1));
    let pure = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN + 1, ack: cookie.wrapping_add(1), flags: ACK, window: 502, ..Seg::default() };
    let f = frame(WAN_MAC, CLIENT_MAC, &pure);
    for i in 0..11 {
        assert_eq!(lab.run(&f, 0, &mut st).0, Verdict::Tx(1), "ACK {i}: within the threshold");
    }
    assert_eq!(lab.run(&f, 0, &mut st).0, Verdict::Drop(DropReason::SynProxyAckStorm));
    let resp = Seg { src: (RS, 8080), dst: (LIP, lport), seq: RSISN + 1, ack: CISN + 1, flags: ACK, window: 100, payload: b"x".to_vec(), ..Seg::default() };
    assert_eq!(lab.run(&frame(LAN_MAC, RS_MAC, &resp), 1, &mut st).0, Verdict::Tx(0));
    assert_eq!(lab.run(&f, 0, &mut st).0, Verdict::Tx(1), "duplicate ACKs after server data are legitimate");
}

#[test]
fn denied_clients_get_no_answer_and_limits_apply_when_the_cookie_returns() {
    let flow = FlowControl { max_conns: 1, ..FlowControl::default() };
    let lab = lab(SynProxyConf::default(), ToaMode::Off, flow, vec![(Ipv4Addr::new(10, 70, 1, 66), 32)]);
    let mut st = lab.state();
    let denied = Seg { src: (Ipv4Addr::new(10, 70, 1, 66), CPORT), dst: (VIP, 80), seq: CISN, flags: SYN, window: 1024, ..Seg::default() };
    assert_eq!(lab.run(&frame(WAN_MAC, CLIENT_MAC, &denied), 0, &mut st).0, Verdict::Drop(DropReason::ClientDenied));
    let (_, _) = handshake_plain(&lab, &mut st, CPORT);
    // The second client completes the cookie handshake but the service is full: reset.
    let syn = Seg { src: (CLIENT, CPORT + 1), dst: (VIP, 80), seq: CISN, flags: SYN, window: 1024, ..Seg::default() };
    let cookie = parse(&lab.run(&frame(WAN_MAC, CLIENT_MAC, &syn), 0, &mut st).1).seq;
    let ack = Seg { src: (CLIENT, CPORT + 1), dst: (VIP, 80), seq: CISN + 1, ack: cookie.wrapping_add(1), flags: ACK, window: 1024, ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack), 0, &mut st);
    assert_eq!(v, Verdict::Tx(0));
    let r = parse(&out);
    assert_eq!((r.flags & RST, r.seq), (RST, cookie.wrapping_add(1)), "a reset the client accepts");
    assert_eq!(st.counters.drops_for(DropReason::ConnLimit), 1);
    assert_eq!(st.sessions.len(), 1);
}

/// A handshake without options (no scaling, no SACK); returns the cookie and the SYN sent on.
fn handshake_plain(lab: &Lab, st: &mut WorkerState, cport: u16) -> (u32, Seg) {
    let syn = Seg { src: (CLIENT, cport), dst: (VIP, 80), seq: CISN, flags: SYN, window: 1024, ..Seg::default() };
    let sa = parse(&lab.run(&frame(WAN_MAC, CLIENT_MAC, &syn), 0, st).1);
    assert_eq!(opts(&sa), vec![TcpOption::Mss(1452)], "nothing the client did not offer");
    let ack = Seg { src: (CLIENT, cport), dst: (VIP, 80), seq: CISN + 1, ack: sa.seq.wrapping_add(1), flags: ACK, window: 1024, ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack), 0, st);
    assert_eq!(v, Verdict::Tx(1));
    let s = parse(&out);
    assert_eq!(opts(&s), vec![TcpOption::Mss(536)], "no MSS offered: the RFC default");
    (sa.seq, s)
}

#[test]
fn nat_mode_proxies_with_the_clients_address() {
    let lab = default_lab();
    let mut st = lab.state();
    let syn = Seg { src: (CLIENT, CPORT), dst: (NAT_VIP, 80), seq: CISN, flags: SYN, window: 1024, options: SYN_OPTS.to_vec(), ..Seg::default() };
    let cookie = parse(&lab.run(&frame(WAN_MAC, CLIENT_MAC, &syn), 0, &mut st).1).seq;
    let ack = Seg { src: (CLIENT, CPORT), dst: (NAT_VIP, 80), seq: CISN + 1, ack: cookie.wrapping_add(1), flags: ACK, window: 1024, ..Seg::default() };
    let s = parse(&lab.run(&frame(WAN_MAC, CLIENT_MAC, &ack), 0, &mut st).1);
    assert_eq!((s.src, s.dst, s.flags), ((CLIENT, CPORT), (RS, 8080), SYN));
    // The real server's SYN-ACK is routed back through the director, addressed to the client.
    let synack = Seg { src: (RS, 8080), dst: (CLIENT, CPORT), seq: RSISN, ack: CISN + 1, flags: SYN | ACK, window: 29_200, ..Seg::default() };
    let (v, out) = lab.run(&frame(LAN_MAC, RS_MAC, &synack), 1, &mut st);
    assert_eq!(v, Verdict::Tx(1));
    let a = parse(&out);
    assert_eq!((a.src, a.dst, a.flags, a.ack), ((CLIENT, CPORT), (RS, 8080), ACK, RSISN + 1));
    let resp = Seg { src: (RS, 8080), dst: (CLIENT, CPORT), seq: RSISN + 1, ack: CISN + 1, flags: ACK, window: 100, payload: b"hi".to_vec(), ..Seg::default() };
    let r = parse(&lab.run(&frame(LAN_MAC, RS_MAC, &resp), 1, &mut st).1);
    assert_eq!((r.src, r.seq), ((NAT_VIP, 80), cookie.wrapping_add(1)));
}

#[test]
fn udp_and_dr_services_cannot_ask_for_it() {
    let key = |proto| ServiceKey { vip: VIP, port: 80, proto };
    let udp = Service { real_servers: vec![RealServer::new(RS, 80, 1)], laddrs: vec![LIP], syn_proxy: Some(SynProxyConf::default()), ..Service::new(key(L4Proto::Udp), Scheduler::Rr, ForwardMode::Fnat) };
    let e = ServiceTable::new(vec![udp], 1).unwrap_err().to_string();
    assert!(e.contains("syn_proxy needs a TCP service"), "{e}");
    let dr = Service { real_servers: vec![RealServer::new(RS, 80, 1)], syn_proxy: Some(SynProxyConf::default()), ..Service::new(key(L4Proto::Tcp), Scheduler::Rr, ForwardMode::Dr) };
    let e = ServiceTable::new(vec![dr], 1).unwrap_err().to_string();
    assert!(e.contains("DR replies bypass"), "{e}");
    let bad = Service { laddrs: vec![LIP], syn_proxy: Some(SynProxyConf { wscale: Some(15), ..SynProxyConf::default() }), ..Service::new(key(L4Proto::Tcp), Scheduler::Rr, ForwardMode::Fnat) };
    assert!(ServiceTable::new(vec![bad], 1).unwrap_err().to_string().contains("wscale 15"));
}

#[test]
fn a_synced_backup_keeps_splicing_after_failover() {
    let lab = default_lab();
    let mut master = lab.state();
    let (cookie, lport) = handshake(&lab, &mut master);
    let synack = Seg { src: (RS, 8080), dst: (LIP, lport), seq: RSISN, ack: CISN + 1, flags: SYN | ACK, window: 29_200, options: vec![1, 3, 3, 7], ..Seg::default() };
    assert_eq!(lab.run(&frame(LAN_MAC, RS_MAC, &synack), 1, &mut master).0, Verdict::Tx(1));
    let (id, s) = master.sessions.iter_from(0).next().unwrap();
    let rec = fastpath::sync::export(s, master.sessions.splice(id), false, lab.now_ms);
    // Through the wire format, as the backup receives it.
    let mut bytes = [0u8; 128];
    let n = rec.emit(&mut bytes);
    let rec = fastpath::wire::lvsync::SyncConn::parse(&bytes[..n]).unwrap();
    assert_ne!(rec.flags & fastpath::wire::lvsync::flags::OUT_SEQ, 0, "the splice travels as LVS's output sequence adjustment");

    let mut backup = lab.state();
    backup.adopt(&rec, &lab.ctx()).unwrap();
    let resp = Seg { src: (RS, 8080), dst: (LIP, lport), seq: RSISN + 1, ack: CISN + 1, flags: ACK | PSH, window: 100, payload: b"after".to_vec(), ..Seg::default() };
    let (v, out) = lab.run(&frame(LAN_MAC, RS_MAC, &resp), 1, &mut backup);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(parse(&out).seq, cookie.wrapping_add(1), "server data in the client's numbering on the backup");
    let get = Seg { src: (CLIENT, CPORT), dst: (VIP, 80), seq: CISN + 1, ack: cookie.wrapping_add(6), flags: ACK, window: 502, ..Seg::default() };
    let (v, out) = lab.run(&frame(WAN_MAC, CLIENT_MAC, &get), 0, &mut backup);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(parse(&out).ack, RSISN + 6, "client acknowledgements in the server's numbering on the backup");
}
