//! The client and server state machines against crafted frames: a SYN proxy's exchange as
//! the contract describes it (cookie SYN-ACK with window 0, window update, sequence
//! splicing), the plain director's exchange, flood replies and flood leaks.

use std::net::Ipv4Addr;

use fastpath::wire::{EthernetAddress, TcpFlags};

use super::*;
use crate::gen::flood::FloodConfig;
use crate::packet::test_util::with_toa;
use crate::packet::{parse, write_segment, Rx, Tuple, MSS};

const M: (EthernetAddress, EthernetAddress) = (
    EthernetAddress([2, 0, 0, 0, 0, 1]),
    EthernetAddress([2, 0, 0, 0, 0, 2]),
);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 100);
const RS: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 11);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 10);

fn flood_prefix() -> IpPrefix {
    "198.18.0.0/15".parse().unwrap()
}

/// A segment as it arrives: written to a frame (optionally with TOA) and parsed back.
fn wire(seg: &Segment, toa: Option<Ipv4Addr>) -> Parsed {
    let mut f = vec![0u8; seg.frame_len()];
    write_segment(&mut f, M, seg, 0x1234_5678);
    if let Some(a) = toa {
        f = with_toa(&f, a, 4000);
    }
    match parse(&f) {
        Rx::Data(p) => p,
        other => panic!("{other:?}"),
    }
}

/// A segment the director sends.
fn seg(tuple: Tuple, seq: u32, ack: u32, flags: TcpFlags, payload: usize, window: u16) -> Segment {
    Segment {
        tuple,
        seq,
        ack,
        flags,
        payload_len: payload,
        mss: flags.contains(TcpFlags::SYN),
        window,
    }
}

struct Ends {
    c: ConnCounters,
    s: ConnCounters,
    h: [Histogram; 3],
    fc: FloodCounters,
    half: HalfOpen,
}

impl Ends {
    fn new() -> Ends {
        Ends {
            c: ConnCounters::default(),
            s: ConnCounters::default(),
            h: [Histogram::new(), Histogram::new(), Histogram::new()],
            fc: FloodCounters::default(),
            half: HalfOpen::new(1024),
        }
    }

    fn client(&mut self, req: usize, d: &Parsed, now: u64) -> Option<Segment> {
        let [connect, handshake, opened] = &mut self.h;
        Client {
            c: &mut self.c,
            connect,
            handshake,
            opened,
            flood: Some((flood_prefix(), &mut self.fc)),
            req,
            measuring: true,
        }
        .on_segment(d, now)
    }

    fn server(&mut self, resp: usize, d: &Parsed) -> Option<Segment> {
        Server {
            c: &mut self.s,
            resp,
            flood: Some(flood_prefix()),
            half_open: Some(&mut self.half),
        }
        .on_segment(d)
    }
}

/// One connection through a SYN proxy, every segment checked; `toa_in_syn` as with
/// `toa = "syn-and-first-ack"`.
fn proxied_connection(isn_tsc: u64, req: usize, resp: usize, toa_in_syn: bool) {
    let mut e = Ends::new();
    let ct = Tuple {
        src: CLIENT,
        dst: VIP,
        sport: 40000,
        dport: 80,
    };
    let st = Tuple {
        src: LIP,
        dst: RS,
        sport: 5001,
        dport: 80,
    };
    let isn = isn_at(isn_tsc);
    let cookie = 0xdead_beefu32;
    // 1. The director answers the SYN itself: cookie, window 0, MSS min(1452, client's).
    let synack = wire(
        &seg(
            ct.reversed(),
            cookie,
            isn.wrapping_add(1),
            TcpFlags::SYN | TcpFlags::ACK,
            0,
            0,
        ),
        None,
    );
    let ack = e
        .client(req, &synack, isn_tsc + 100)
        .expect("the client ACKs the cookie");
    assert_eq!(
        (ack.tuple, ack.flags, ack.payload_len),
        (ct, TcpFlags::ACK, 0),
        "a pure ACK, no request yet"
    );
    assert_eq!(
        (ack.seq, ack.ack),
        (isn.wrapping_add(1), cookie.wrapping_add(1))
    );
    assert_eq!(
        (e.c.established, e.c.proxied, e.c.window_updates),
        (1, 1, 0)
    );
    // 2. The director sends the SYN to the real server from its local address, client ISN.
    let rs_syn = wire(
        &seg(st, isn, 0, TcpFlags::SYN, 0, 64240),
        toa_in_syn.then_some(CLIENT),
    );
    let rs_synack = e.server(resp, &rs_syn).expect("the server answers the SYN");
    let rs_isn = server_isn(isn);
    assert_eq!(
        (rs_synack.flags, rs_synack.seq, rs_synack.ack),
        (TcpFlags::SYN | TcpFlags::ACK, rs_isn, isn.wrapping_add(1))
    );
    assert_eq!(e.half.len(), 1, "half-open until the director's ACK");
    // 3. The director completes the server's handshake (TOA in first-ack mode) ...
    let rs_ack = wire(
        &seg(
            st,
            isn.wrapping_add(1),
            rs_isn.wrapping_add(1),
            TcpFlags::ACK,
            0,
            64240,
        ),
        Some(CLIENT),
    );
    assert!(
        e.server(resp, &rs_ack).is_none(),
        "nothing answers a pure ACK"
    );
    assert_eq!((e.s.srv_ack, e.half.len()), (1, 0));
    // ... and opens the client's window.
    let update = wire(
        &seg(
            ct.reversed(),
            cookie.wrapping_add(1),
            isn.wrapping_add(1),
            TcpFlags::ACK,
            0,
            64240,
        ),
        None,
    );
    let request = e
        .client(req, &update, isn_tsc + 300)
        .expect("the window update releases the request");
    assert_eq!(
        (request.flags, request.payload_len),
        (TcpFlags::ACK | TcpFlags::PSH, req)
    );
    assert_eq!(
        (request.seq, request.ack),
        (isn.wrapping_add(1), cookie.wrapping_add(1))
    );
    assert_eq!((e.c.window_updates, e.c.closed), (1, 0));
    // 4. Spliced to the server (ack += delta): the response with FIN.
    let delta = rs_isn.wrapping_sub(cookie);
    let at_rs = wire(
        &seg(
            st,
            request.seq,
            request.ack.wrapping_add(delta),
            request.flags,
            req,
            64240,
        ),
        None,
    );
    let response = e.server(resp, &at_rs).expect("the server responds");
    assert_eq!(
        (response.seq, response.ack, response.payload_len),
        (
            rs_isn.wrapping_add(1),
            isn.wrapping_add(1 + u32_of(req)),
            resp
        )
    );
    // 5. Back to the client (seq -= delta): FIN-ACK.
    let at_c = wire(
        &seg(
            ct.reversed(),
            response.seq.wrapping_sub(delta),
            response.ack,
            response.flags,
            resp,
            64240,
        ),
        None,
    );
    let fin = e
        .client(req, &at_c, isn_tsc + 500)
        .expect("the client closes");
    assert_eq!(fin.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(
        (fin.seq, fin.ack),
        (
            isn.wrapping_add(1 + u32_of(req)),
            cookie.wrapping_add(2 + u32_of(resp))
        )
    );
    assert_eq!(e.c.completed, 1);
    // 6. The server ACKs the FIN; spliced back, the client counts the connection closed.
    let at_rs = wire(
        &seg(
            st,
            fin.seq,
            fin.ack.wrapping_add(delta),
            fin.flags,
            0,
            64240,
        ),
        None,
    );
    let last = e.server(resp, &at_rs).expect("the server ACKs the FIN");
    let at_c = wire(
        &seg(
            ct.reversed(),
            last.seq.wrapping_sub(delta),
            last.ack,
            last.flags,
            0,
            64240,
        ),
        None,
    );
    assert!(e.client(req, &at_c, isn_tsc + 600).is_none());
    assert_eq!(
        (e.c.closed, e.c.window_updates, e.c.resets),
        (1, 1, 0),
        "req {req} isn {isn:#x}"
    );
    assert_eq!(
        (e.s.srv_syn, e.s.srv_req, e.s.srv_fin, e.s.srv_flood_seen),
        (1, 1, 1, 0)
    );
    assert_eq!(
        e.h[0].count() + e.h[1].count() + e.h[2].count(),
        3,
        "connect, handshake, window update latency"
    );
    assert!(e.half.is_empty());
}

#[test]
fn a_connection_through_a_syn_proxy() {
    proxied_connection(0x0000_0001_0000_1000, 16, 64, false);
    proxied_connection(0x0000_0001_0000_1000, 16, 64, true);
    // Sequence numbers wrapping, ISN rounding down.
    proxied_connection(0xffff_ffff, 16, 64, false);
    proxied_connection(0xffff_fffe, 1, 1400, false);
}

#[test]
fn window_updates_and_last_acks_never_mix_up() {
    // Every request size the generator may use (3 mod 4 is bumped), ISNs all around.
    for wanted in 1..=70 {
        let req = request_size(wanted);
        assert!(
            req == wanted || (wanted % 4 == 3 && req == wanted + 1),
            "{wanted} -> {req}"
        );
        for tsc in [0u64, 1, 2, 3, 0xffff_fffc, 0xffff_ffff, 0x1234_5677] {
            proxied_connection(tsc, req, 64, false);
        }
    }
}

#[test]
fn a_plain_director_gets_the_request_with_the_ack() {
    let mut e = Ends::new();
    let ct = Tuple {
        src: CLIENT,
        dst: VIP,
        sport: 40001,
        dport: 80,
    };
    let isn = isn_at(0x5_0000_0040);
    let synack = wire(
        &seg(
            ct.reversed(),
            77,
            isn.wrapping_add(1),
            TcpFlags::SYN | TcpFlags::ACK,
            0,
            64240,
        ),
        None,
    );
    let r = e.client(16, &synack, 0x5_0000_0100).expect("reply");
    assert_eq!(
        (r.flags, r.payload_len, r.seq, r.ack),
        (TcpFlags::ACK | TcpFlags::PSH, 16, isn.wrapping_add(1), 78)
    );
    assert_eq!((e.c.proxied, e.c.window_updates), (0, 0));
    // The server's last ACK (ack = isn + req + 2) is a close, not a window update.
    let last = wire(
        &seg(
            ct.reversed(),
            78 + 65,
            isn.wrapping_add(18),
            TcpFlags::ACK,
            0,
            64240,
        ),
        None,
    );
    assert!(e.client(16, &last, 0x5_0000_0200).is_none());
    assert_eq!((e.c.closed, e.c.window_updates), (1, 0));
}

#[test]
fn replies_to_flood_sources_are_counted_never_answered() {
    let mut e = Ends::new();
    let f = FloodConfig {
        sources: flood_prefix(),
        pps: 0,
        dst: VIP,
        dport: 80,
    };
    let mut rng = super::super::flood::Rng::new(3);
    for _ in 0..10 {
        let syn = f.segment(&mut rng);
        let cookie = wire(
            &seg(
                syn.tuple.reversed(),
                9,
                syn.seq.wrapping_add(1),
                TcpFlags::SYN | TcpFlags::ACK,
                0,
                0,
            ),
            None,
        );
        assert!(
            e.client(16, &cookie, 5).is_none(),
            "a spoofed source does not ACK"
        );
    }
    let rst = wire(
        &seg(
            Tuple {
                src: VIP,
                dst: Ipv4Addr::new(198, 19, 1, 1),
                sport: 80,
                dport: 3000,
            },
            0,
            1,
            TcpFlags::RST | TcpFlags::ACK,
            0,
            0,
        ),
        None,
    );
    assert!(e.client(16, &rst, 5).is_none());
    assert_eq!((e.fc.synacks, e.fc.other), (10, 1));
    assert_eq!(
        (e.c.established, e.c.proxied, e.c.resets),
        (0, 0, 0),
        "not the client's connections"
    );
}

#[test]
fn flood_reaching_the_servers_is_seen() {
    let mut e = Ends::new();
    let flood_src = Ipv4Addr::new(198, 18, 44, 3);
    // NAT: the flood source itself; FNAT: a local address with the flood source in TOA.
    let nat = wire(
        &seg(
            Tuple {
                src: flood_src,
                dst: RS,
                sport: 999,
                dport: 80,
            },
            5,
            0,
            TcpFlags::SYN,
            0,
            64240,
        ),
        None,
    );
    let fnat = wire(
        &seg(
            Tuple {
                src: LIP,
                dst: RS,
                sport: 6000,
                dport: 80,
            },
            5,
            0,
            TcpFlags::SYN,
            0,
            64240,
        ),
        Some(flood_src),
    );
    let legit = wire(
        &seg(
            Tuple {
                src: LIP,
                dst: RS,
                sport: 6001,
                dport: 80,
            },
            5,
            0,
            TcpFlags::SYN,
            0,
            64240,
        ),
        Some(CLIENT),
    );
    for d in [&nat, &fnat, &legit] {
        assert!(e
            .server(64, d)
            .is_some_and(|r| r.mss && r.flags == TcpFlags::SYN | TcpFlags::ACK));
    }
    assert_eq!(fnat.toa, Some(flood_src));
    assert_eq!(legit.mss, Some(MSS));
    assert_eq!((e.s.srv_flood_seen, e.s.srv_syn), (2, 3));
    // Nobody completes them: three half-open entries at the server.
    assert_eq!(e.half.len(), 3);
    // A retransmitted SYN is one entry.
    e.server(64, &legit);
    assert_eq!((e.half.len(), e.half.dup_syns), (3, 1));
}

#[test]
fn counters_diff() {
    let a = ConnCounters {
        syn_sent: 10,
        closed: 4,
        srv_flood_seen: 1,
        max_gap_us: 9,
        ..ConnCounters::default()
    };
    let b = ConnCounters {
        syn_sent: 25,
        closed: 14,
        srv_flood_seen: 1,
        max_gap_us: 3,
        window_updates: 2,
        ..a
    };
    let d = b.since(&a);
    assert_eq!(
        (
            d.syn_sent,
            d.closed,
            d.srv_flood_seen,
            d.max_gap_us,
            d.window_updates
        ),
        (15, 10, 0, 3, 2)
    );
}
