use super::*;

const A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

fn tuple(i: u8) -> Tuple {
    Tuple {
        src: Ipv4Addr::new(10, 1, 1, i),
        dst: Ipv4Addr::new(10, 1, 1, 100),
        sport: 1000 + u16::from(i),
        dport: 80,
    }
}

fn checks_out(frame: &[u8]) -> bool {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let ok_ip = ip.verify_checksum();
    let ok_l4 = match ip.protocol() {
        IpProtocol::Tcp => TcpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(ip.src_addr(), ip.dst_addr()),
        _ => UdpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(ip.src_addr(), ip.dst_addr()),
    };
    ok_ip && ok_l4
}

#[test]
fn template_patches_keep_checksums_valid() {
    for (proto, size, csum) in [
        (Proto::Tcp, 64, true),
        (Proto::Udp, 64, true),
        (Proto::Udp, 64, false),
        (Proto::Tcp, 1514, true),
        (Proto::Udp, 60, true),
    ] {
        let t = Template::new(
            proto,
            size,
            (A, B),
            tuple(1),
            TcpFlags::ACK | TcpFlags::PSH,
            csum,
        );
        let mut out = vec![0xa5; t.len()];
        for i in 2..40u8 {
            let mut tu = tuple(i);
            tu.dst = Ipv4Addr::new(10, 9, i, 200);
            tu.dport = 8000 + u16::from(i);
            let tsc = 0x0123_4567_89ab_cdefu64.wrapping_mul(u64::from(i));
            t.write(&mut out, &tu, u32::from(i) * 7919, tsc);
            assert!(checks_out(&out), "{proto:?} {size} flow {i}");
            match parse(&out) {
                Rx::Data(p) => {
                    assert_eq!(p.tuple, tu);
                    assert_eq!(p.stamp, Some(tsc));
                    assert_eq!(p.proto, proto);
                    assert_eq!((p.src_mac, p.dst_mac), (A, B));
                    if proto == Proto::Tcp {
                        assert_eq!(p.seq, u32::from(i) * 7919);
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(out.len(), size.max(min_frame(proto)));
    }
}

#[test]
fn an_echo_swaps_both_ends_and_keeps_checksums_valid() {
    for (proto, csum) in [(Proto::Udp, true), (Proto::Udp, false), (Proto::Tcp, true)] {
        let t = Template::new(proto, 64, (A, B), tuple(1), TcpFlags::ACK, csum);
        let mut f = vec![0; t.len()];
        t.write(&mut f, &tuple(7), 99, 12345);
        echo_in_place(&mut f);
        assert!(checks_out(&f), "{proto:?}");
        let Rx::Data(p) = parse(&f) else { panic!("{proto:?}: not data") };
        assert_eq!((p.tuple, p.src_mac, p.dst_mac, p.stamp), (tuple(7).reversed(), B, A, Some(12345)));
    }
    let mut short = vec![0x45; 30];
    echo_in_place(&mut short);
    assert_eq!(short, vec![0x45; 30], "too short for the ports: unchanged");
}

#[test]
fn segments_are_valid_and_parse_back() {
    let seg = Segment {
        tuple: tuple(3),
        seq: 0xffff_fff0,
        ack: 5,
        flags: TcpFlags::SYN,
        payload_len: 0,
        mss: true,
        window: 0,
    };
    let mut f = vec![0xa5; seg.frame_len()];
    write_segment(&mut f, (A, B), &seg, 42);
    assert_eq!(f.len(), 60);
    assert!(checks_out(&f));
    let Rx::Data(p) = parse(&f) else { panic!() };
    assert_eq!(
        (p.flags, p.seq, p.ack, p.payload_len, p.stamp),
        (TcpFlags::SYN, 0xffff_fff0, 5, 0, None)
    );
    assert_eq!((p.window, p.mss, p.toa), (0, Some(MSS), None));
    let seg = Segment {
        payload_len: 100,
        flags: TcpFlags::PSH | TcpFlags::ACK | TcpFlags::FIN,
        mss: false,
        window: WINDOW,
        ..seg
    };
    let mut f = vec![0xa5; seg.frame_len()];
    write_segment(&mut f, (A, B), &seg, 77);
    assert!(checks_out(&f));
    let Rx::Data(p) = parse(&f) else { panic!() };
    assert_eq!((p.payload_len, p.stamp), (100, Some(77)));
    assert_eq!((p.window, p.mss, p.toa), (WINDOW, None, None));
}

#[test]
fn toa_is_read_from_options() {
    let seg = Segment {
        tuple: tuple(4),
        seq: 1,
        ack: 0,
        flags: TcpFlags::SYN,
        payload_len: 0,
        mss: true,
        window: WINDOW,
    };
    let mut f = vec![0; seg.frame_len()];
    write_segment(&mut f, (A, B), &seg, 0);
    let client = Ipv4Addr::new(198, 18, 7, 9);
    let f = test_util::with_toa(&f, client, 4321);
    assert!(checks_out(&f));
    let Rx::Data(p) = parse(&f) else { panic!() };
    assert_eq!(
        (p.mss, p.toa, p.flags),
        (Some(MSS), Some(client), TcpFlags::SYN)
    );
    // A malformed option list ends the search without a panic.
    let mut bad = f.clone();
    bad[14 + 20 + 20 + 1] = 0; // the MSS option's length byte
    let Rx::Data(p) = parse(&bad) else { panic!() };
    assert_eq!((p.mss, p.toa), (None, None));
}

#[test]
fn arp_request_and_reply() {
    let mut f = vec![0u8; 60];
    arp_request(
        &mut f,
        A,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
    );
    let Rx::Arp(req) = parse(&f) else { panic!() };
    arp_reply_in_place(&mut f, &req, B);
    let Rx::Arp(ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        target_hardware_addr,
        target_protocol_addr,
    }) = parse(&f)
    else {
        panic!()
    };
    assert_eq!(operation, ArpOperation::Reply);
    assert_eq!(
        (source_hardware_addr, source_protocol_addr),
        (B, Ipv4Addr::new(10, 0, 0, 2))
    );
    assert_eq!(
        (target_hardware_addr, target_protocol_addr),
        (A, Ipv4Addr::new(10, 0, 0, 1))
    );
    assert_eq!(EthernetFrame::new_checked(&f[..]).unwrap().dst_addr(), A);
}

#[test]
fn multicast_is_other() {
    // A director's LVS sync message (UDP to 224.0.0.81:8848) is not generator traffic.
    let mut f = vec![0xa5; 42 + 8];
    write_l2_l3(
        &mut f,
        (A, EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 0x51])),
        Ipv4Addr::new(10, 99, 2, 250),
        Ipv4Addr::new(224, 0, 0, 81),
        IpProtocol::Udp,
        8 + 8,
    );
    let mut u = UdpPacket::new_unchecked(&mut f[34..]);
    u.set_src_port(8848);
    u.set_dst_port(8848);
    u.set_len(16);
    u.set_checksum(0);
    assert!(matches!(parse(&f), Rx::Other));
    // The same datagram to a unicast address is data.
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_dst_addr(Ipv4Addr::new(10, 99, 2, 11));
    ip.fill_checksum();
    assert!(matches!(parse(&f), Rx::Data(p) if p.proto == Proto::Udp));
}

#[test]
fn garbage_is_other() {
    assert!(matches!(parse(&[]), Rx::Other));
    assert!(matches!(parse(&[0xff; 30]), Rx::Other));
    let mut f = vec![0u8; 60];
    f[12] = 0x08;
    assert!(
        matches!(parse(&f), Rx::Other),
        "IPv4 ethertype with a zero header"
    );
}

/// `data_stamp` agrees with `parse` on every frame it accepts: templates, segments with and
/// without options and payload, and every one-byte corruption and truncation of them.
#[test]
fn the_fast_classifier_agrees_with_parse() {
    let mut corpus = Vec::new();
    for (proto, csum) in [(Proto::Udp, false), (Proto::Udp, true), (Proto::Tcp, true)] {
        let t = Template::new(proto, 64, (A, B), tuple(1), TcpFlags::ACK, csum);
        let mut f = vec![0; t.len()];
        t.write(&mut f, &tuple(9), 5, 0x1122_3344_5566_7788);
        assert_eq!(data_stamp(&f), Some(Some(0x1122_3344_5566_7788)), "{proto:?} template");
        corpus.push(f);
    }
    for payload_len in [0, 4, 100] {
        let seg = Segment { tuple: tuple(3), seq: 1, ack: 2, flags: TcpFlags::ACK, payload_len, mss: payload_len == 0, window: 9 };
        let mut f = vec![0; seg.frame_len()];
        write_segment(&mut f, (A, B), &seg, 31337);
        corpus.push(test_util::with_toa(&f, Ipv4Addr::new(1, 2, 3, 4), 5));
        corpus.push(f);
    }
    let (mut accepted, mut checked) = (0, 0);
    for base in &corpus {
        let mut frames = vec![base.clone()];
        frames.extend((0..base.len()).map(|n| base[..n].to_vec()));
        for at in 0..base.len().min(80) {
            for v in [0u8, 1, 0x45, 0x46, 0x80, 0xe0, 0xff, base[at].wrapping_add(1), base[at].wrapping_sub(1)] {
                let mut f = base.clone();
                f[at] = v;
                frames.push(f);
            }
        }
        for f in &frames {
            checked += 1;
            if let Some(stamp) = data_stamp(f) {
                accepted += 1;
                match parse(f) {
                    Rx::Data(p) => assert_eq!(p.stamp, stamp, "{f:02x?}"),
                    other => panic!("fast path took {other:?}: {f:02x?}"),
                }
            }
        }
    }
    assert!(accepted > checked / 4, "the fast path took only {accepted} of {checked} frames");
    assert_eq!(data_stamp(&[]), None);
    let mut m = corpus[0].clone();
    m[off::IP_DST] = 224;
    assert_eq!(data_stamp(&m), None, "multicast goes to parse");
}
