//! Tests of `wire::tcp` (kept apart so tcp.rs stays readable).

use super::*;
use crate::wire::test_util::XorShift;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

// A Linux client's SYN, as captured.
#[rustfmt::skip]
const SYN: [u8; 40] = [
    0xc3, 0x50,             // source port 50000
    0x00, 0x50,             // destination port 80
    0x9f, 0x2b, 0x3c, 0x4d, // sequence number
    0x00, 0x00, 0x00, 0x00, // acknowledgment number
    0xa0, 0x02,             // data offset 10 (40 bytes), SYN
    0xfa, 0xf0,             // window 64240
    0x6f, 0x98,             // checksum
    0x00, 0x00,             // urgent pointer
    0x02, 0x04, 0x05, 0xb4, // MSS 1460
    0x04, 0x02,             // SACK permitted
    0x08, 0x0a,             // timestamps:
    0x00, 0x3f, 0x2a, 0x1c, //   tsval
    0x00, 0x00, 0x00, 0x00, //   tsecr
    0x01,                   // NOP
    0x03, 0x03, 0x07,       // window scale 7
];

// The client's first data segment: an HTTP request.
#[rustfmt::skip]
const DATA: [u8; 50] = [
    0xc3, 0x50, 0x00, 0x50, // ports 50000 -> 80
    0x9f, 0x2b, 0x3c, 0x4e, // sequence number
    0x6a, 0x1b, 0x2c, 0x3d, // acknowledgment number
    0x80, 0x18,             // data offset 8 (32 bytes), PSH|ACK
    0x01, 0xf6,             // window 502
    0xfa, 0x1f,             // checksum
    0x00, 0x00,             // urgent pointer
    0x01, 0x01,             // NOP, NOP
    0x08, 0x0a,             // timestamps:
    0x00, 0x3f, 0x2a, 0x25, //   tsval
    0x7e, 0x11, 0xaa, 0x01, //   tsecr
    b'G', b'E', b'T', b' ', b'/', b' ', b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'1',
    b'\r', b'\n', b'\r', b'\n',
];

fn syn_repr() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 50000,
        dst_port: 80,
        seq_number: 0x9f2b_3c4d,
        ack_number: 0,
        flags: TcpFlags::SYN,
        window_len: 64240,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((0x003f_2a1c, 0)),
        payload: &[],
    }
}

#[test]
fn parse_syn() {
    let p = TcpPacket::new_checked(&SYN[..]).unwrap();
    assert_eq!((p.src_port(), p.dst_port()), (50000, 80));
    assert_eq!((p.seq_number(), p.ack_number()), (0x9f2b_3c4d, 0));
    assert_eq!(p.header_len(), 40);
    assert_eq!(p.flags(), TcpFlags::SYN);
    assert_eq!(p.window_len(), 64240);
    assert_eq!((p.checksum(), p.urgent_at()), (0x6f98, 0));
    assert!(p.verify_checksum(CLIENT, SERVER));
    assert!(!p.verify_checksum(SERVER, Ipv4Addr::new(10, 0, 0, 3)));
    assert!(p.payload().is_empty());
    assert_eq!(p.segment_len(), 1);
    let options: Vec<_> = p.options_iter().collect::<Result<_>>().unwrap();
    assert_eq!(
        options,
        [
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamps {
                tsval: 0x003f_2a1c,
                tsecr: 0
            },
            TcpOption::Nop,
            TcpOption::WindowScale(7),
        ]
    );
    assert_eq!(p.mss(), Ok(Some(1460)));
    assert_eq!(p.find_option(3), Ok(Some(37)));
    assert_eq!(p.find_option(254), Ok(None));
    assert_eq!(TcpRepr::parse(&p, CLIENT, SERVER).unwrap(), syn_repr());
}

#[test]
fn emit_syn_matches_capture() {
    let repr = syn_repr();
    assert_eq!(repr.buffer_len(), 40);
    let mut buf = [0xa5u8; 40];
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), CLIENT, SERVER);
    assert_eq!(buf, SYN);
}

#[test]
fn parse_data_and_round_trip() {
    let p = TcpPacket::new_checked(&DATA[..]).unwrap();
    assert_eq!(p.flags(), TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(p.header_len(), 32);
    assert_eq!(p.payload(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(p.segment_len(), 18);
    assert_eq!(p.mss(), Ok(None));
    let repr = TcpRepr::parse(&p, CLIENT, SERVER).unwrap();
    assert_eq!(repr.timestamps, Some((0x003f_2a25, 0x7e11_aa01)));
    assert_eq!(
        (repr.max_seg_size, repr.window_scale, repr.sack_permitted),
        (None, None, false)
    );
    // Emitted with the timestamps first and zero padding after: different bytes, same repr.
    let mut buf = vec![0xa5u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), CLIENT, SERVER);
    assert_eq!(
        &buf[20..32],
        &[8, 10, 0x00, 0x3f, 0x2a, 0x25, 0x7e, 0x11, 0xaa, 0x01, 0, 0]
    );
    let again = TcpPacket::new_checked(&buf[..]).unwrap();
    assert_eq!(TcpRepr::parse(&again, CLIENT, SERVER).unwrap(), repr);
}

#[test]
fn bad_checksum() {
    let mut buf = DATA;
    buf[40] ^= 0x20;
    let p = TcpPacket::new_checked(&buf[..]).unwrap();
    assert_eq!(TcpRepr::parse(&p, CLIENT, SERVER), Err(Error::BadChecksum));
    let mut p = TcpPacket::new_unchecked(&mut buf[..]);
    p.fill_checksum(CLIENT, SERVER);
    assert!(p.verify_checksum(CLIENT, SERVER));
}

#[test]
fn flags() {
    let mut f = TcpFlags::SYN | TcpFlags::ACK;
    assert_eq!(f.bits(), 0x12);
    assert!(f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::SYN | TcpFlags::FIN));
    assert!(f.intersects(TcpFlags::ACK | TcpFlags::RST));
    assert_eq!(f.to_string(), "SYN|ACK");
    f.remove(TcpFlags::SYN);
    f |= TcpFlags::FIN;
    assert_eq!(f, TcpFlags::from_bits(0x11));
    f.insert(TcpFlags::CWR | TcpFlags::ECE);
    assert_eq!(f & TcpFlags::ECE, TcpFlags::ECE);
    assert_eq!(format!("{f:?}"), "TcpFlags(FIN|ACK|ECE|CWR)");
    assert_eq!(TcpFlags::empty().to_string(), "none");
    assert!(TcpFlags::default().is_empty());
}

#[test]
fn setters() {
    let mut buf = [0xa5u8; 24];
    let mut p = TcpPacket::new_unchecked(&mut buf[..]);
    p.set_header_len(24);
    p.set_flags(TcpFlags::RST);
    p.set_urgent_at(9);
    p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
    assert_eq!(
        (p.header_len(), p.flags(), p.urgent_at()),
        (24, TcpFlags::RST, 9)
    );
    assert!(p.payload_mut().is_empty());
    assert_eq!(p.options_iter().count(), 4);
}

#[test]
fn malformed_options() {
    #[rustfmt::skip]
    let cases: [&[u8]; 9] = [
        &[2],                            // MSS without length
        &[254, 1, 0, 0],                 // length below 2
        &[2, 4, 5],                      // MSS past the end
        &[2, 3, 5, 0],                   // MSS of length 3
        &[3, 4, 7, 0],                   // window scale of length 4
        &[4, 3, 0, 0],                   // SACK permitted of length 3
        &[5, 6, 0, 0, 0, 0],             // SACK without a whole block
        &[8, 8, 0, 0, 0, 0, 0, 0],       // timestamps of length 8
        &[1, 1, 254, 9, 0, 0, 0, 0, 0],  // unknown option past the end
    ];
    for case in cases {
        let mut iter = TcpOptionsIter::new(case);
        let results: Vec<_> = iter.by_ref().collect();
        assert!(
            matches!(results.last(), Some(Err(Error::Malformed(_)))),
            "{case:?}: {results:?}"
        );
        assert_eq!(iter.next(), None);
        if case.len() % 4 != 0 {
            continue; // padding would change the meaning
        }
        let mut buf = vec![0u8; 20 + case.len()];
        buf[12] = u8::try_from(buf.len() / 4).unwrap() << 4;
        buf[20..20 + case.len()].copy_from_slice(case);
        let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
        assert!(p.mss().is_err() && p.find_option(99).is_err() && p.set_mss(1).is_err());
    }
}

#[test]
fn options_stop_at_end() {
    let data = [1, 0, 2, 4, 5, 0xb4];
    let options: Vec<_> = TcpOptionsIter::new(&data).collect();
    assert_eq!(options, [Ok(TcpOption::Nop), Ok(TcpOption::End)]);
    assert_eq!(TcpOption::parse(&[]), Err(Error::Truncated));
}

#[test]
fn option_emit_parse_round_trip() {
    let sack = [0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 2, 0];
    let toa = [0x1f, 0x90, 192, 0, 2, 7];
    for option in [
        TcpOption::End,
        TcpOption::Nop,
        TcpOption::Mss(1400),
        TcpOption::WindowScale(14),
        TcpOption::SackPermitted,
        TcpOption::Sack(&sack),
        TcpOption::Timestamps {
            tsval: 0xdead_beef,
            tsecr: 7,
        },
        TcpOption::Unknown {
            kind: 254,
            data: &toa,
        },
    ] {
        let mut buf = [0xa5u8; 20];
        let len = option.emit(&mut buf);
        assert_eq!(len, option.buffer_len());
        assert!(buf[len..].iter().all(|&b| b == 0xa5));
        assert_eq!(TcpOption::parse(&buf[..len]), Ok((option, len)));
        assert_eq!(buf[0], option.kind());
    }
}

#[test]
fn set_mss_aligned() {
    let mut buf = SYN;
    let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
    assert_eq!(p.set_mss(1452), Ok(Some(1460)));
    assert_eq!(p.mss(), Ok(Some(1452)));
    assert!(p.verify_checksum(CLIENT, SERVER));
    assert_eq!(p.clamp_mss(1500), Ok(Some(1452)));
    assert_eq!(p.mss(), Ok(Some(1452)));
    assert_eq!(p.clamp_mss(1400), Ok(Some(1452)));
    assert_eq!(p.mss(), Ok(Some(1400)));
    assert!(p.verify_checksum(CLIENT, SERVER));
    // Only the MSS value and the checksum changed.
    let changed: Vec<_> = (0..40).filter(|&i| buf[i] != SYN[i]).collect();
    assert!(
        changed.iter().all(|i| [16, 17, 22, 23].contains(i)),
        "{changed:?}"
    );
}

#[test]
fn set_mss_unaligned() {
    #[rustfmt::skip]
    let mut buf = [
        0x01, 0xbb, 0xc3, 0x50, // ports 443 -> 50000
        0, 0, 0, 1, 0, 0, 0, 2, // sequence, acknowledgment
        0x70, 0x12,             // data offset 7, SYN|ACK
        0xff, 0xff,             // window
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        0x01,                   // NOP: the MSS value lands on an odd offset
        0x02, 0x04, 0xff, 0xff, // MSS 65535
        0x00, 0x00, 0x00,       // end, padding
    ];
    let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
    p.fill_checksum(SERVER, CLIENT);
    assert_eq!(p.find_option(2), Ok(Some(21)));
    for mss in [0, 0xffff, 0x1234, 536, 0xff00, 0x00ff] {
        p.set_mss(mss).unwrap();
        assert_eq!(p.mss(), Ok(Some(mss)));
        assert!(p.verify_checksum(SERVER, CLIENT), "mss {mss:#x}");
    }
}

#[test]
fn set_mss_absent() {
    let mut buf = DATA;
    let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
    assert_eq!(p.set_mss(1000), Ok(None));
    assert_eq!(p.clamp_mss(1000), Ok(None));
    assert_eq!(buf, DATA);
}

#[test]
fn truncated_and_malformed() {
    for len in 0..HEADER_LEN {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..len]),
            Err(Error::Truncated),
            "len {len}"
        );
        assert_eq!(
            TcpRepr::parse(&TcpPacket::new_unchecked(&SYN[..len]), CLIENT, SERVER),
            Err(Error::Truncated)
        );
    }
    for len in HEADER_LEN..SYN.len() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..len]),
            Err(Error::Truncated),
            "len {len}"
        );
    }
    for offset in 0..5u8 {
        let mut buf = SYN;
        buf[12] = offset << 4;
        assert!(matches!(
            TcpPacket::new_checked(&buf[..]),
            Err(Error::Malformed(_))
        ));
    }
}

#[test]
fn never_panics_on_noise() {
    let mut rng = XorShift(3);
    for _ in 0..20_000 {
        let len = rng.below(64);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
        if len > 20 && rng.below(2) == 0 {
            buf[12] = u8::try_from(5 + rng.below((len - 20) / 4 + 1)).unwrap() << 4;
            // Bias option bytes towards known kinds.
            for b in &mut buf[20..] {
                if rng.below(3) == 0 {
                    *b = [0, 1, 2, 3, 4, 5, 8, 10, 254][rng.below(9)];
                }
            }
        }
        if let Ok(mut p) = TcpPacket::new_checked(&mut buf[..]) {
            let _ = (
                p.options_iter().count(),
                p.mss(),
                p.find_option(8),
                p.segment_len(),
            );
            let _ = p.set_mss(1);
            p.fill_checksum(CLIENT, SERVER);
            let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&buf[..]), CLIENT, SERVER);
        }
    }
}
