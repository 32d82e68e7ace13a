//! Tests of `wire::lvsync` (kept apart so lvsync.rs stays readable). The messages are
//! written out by hand from the layout in the module documentation.

use super::*;
use crate::wire::test_util::XorShift;

// A TCP connection forwarded by direct routing, as a 36-byte IPv4 entry.
#[rustfmt::skip]
const PLAIN: [u8; 36] = [
    0x00, 0x06, 0x00, 0x24, // type IPv4, TCP, entry version 0 size 36
    0x00, 0x00, 0x00, 0x03, // flags: DROUTE
    0x00, 0x01, 0xc3, 0x50, // state ESTABLISHED, cport 50000
    0x00, 0x50, 0x1f, 0x90, // vport 80, dport 8080
    0x00, 0x00, 0x00, 0x00, // fwmark 0
    0x00, 0x00, 0x03, 0x84, // timeout 900 s
    0x0a, 0x00, 0x00, 0x05, // caddr 10.0.0.5
    0xc0, 0x00, 0x02, 0x0a, // vaddr 192.0.2.10
    0x0a, 0x00, 0x01, 0x09, // daddr 10.0.1.9
];

// The message carrying only PLAIN.
#[rustfmt::skip]
const MSG_PLAIN: [u8; 44] = [
    0x00, 0x07, 0x00, 0x2c, // reserved, syncid 7, size 44
    0x01, 0x01, 0x00, 0x00, // 1 entry, version 1, spare
    0x00, 0x06, 0x00, 0x24, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0xc3, 0x50,
    0x00, 0x50, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x84,
    0x0a, 0x00, 0x00, 0x05, 0xc0, 0x00, 0x02, 0x0a, 0x0a, 0x00, 0x01, 0x09,
];

// A NAT-ed TCP connection with sequence adjustment: 36 + 2 + 24 = 62 bytes.
#[rustfmt::skip]
const SEQ: [u8; 62] = [
    0x00, 0x06, 0x00, 0x3e, // type IPv4, TCP, size 62
    0x00, 0x00, 0x06, 0x00, // flags: MASQ | IN_SEQ | OUT_SEQ
    0x00, 0x03, 0x9c, 0x40, // state SYN_RECV, cport 40000
    0x01, 0xbb, 0x01, 0xbb, // vport 443, dport 443
    0x00, 0x00, 0x00, 0x00, // fwmark 0
    0x00, 0x00, 0x00, 0x3c, // timeout 60 s
    0x0a, 0x00, 0x00, 0x06, // caddr 10.0.0.6
    0xc0, 0x00, 0x02, 0x0a, // vaddr 192.0.2.10
    0x0a, 0x00, 0x01, 0x0a, // daddr 10.0.1.10
    0x01, 0x18,             // option: sequence data, 24 bytes
    0x11, 0x22, 0x33, 0x44, //   in: init_seq
    0x00, 0x00, 0x00, 0x10, //       delta 16
    0xff, 0xff, 0xff, 0xf0, //       previous_delta -16
    0xaa, 0xbb, 0xcc, 0xdd, //   out: init_seq
    0x00, 0x00, 0x00, 0x00, //       delta 0
    0x00, 0x00, 0x00, 0x01, //       previous_delta 1
];

// A UDP session with our FNAT option: 36 + 2 + 8 = 46 bytes (48 with padding).
#[rustfmt::skip]
const FNAT: [u8; 46] = [
    0x00, 0x11, 0x00, 0x2e, // type IPv4, UDP, size 46
    0x00, 0x00, 0x00, 0x00, // flags: MASQ
    0x00, 0x00, 0x13, 0x88, // state NORMAL, cport 5000
    0x00, 0x35, 0x00, 0x35, // vport 53, dport 53
    0x00, 0x00, 0x00, 0x07, // fwmark 7
    0x00, 0x00, 0x01, 0x2c, // timeout 300 s
    0x0a, 0x00, 0x00, 0x07, // caddr 10.0.0.7
    0xc0, 0x00, 0x02, 0x0b, // vaddr 192.0.2.11
    0x0a, 0x00, 0x01, 0x0b, // daddr 10.0.1.11
    0x48, 0x08,             // option: FNAT (optional bit | 8), 8 bytes
    0x0a, 0x00, 0x02, 0x01, //   laddr 10.0.2.1
    0x9c, 0x41,             //   lport 40001
    0x05, 0x00,             //   flags TOA sent | persistent, reserved
];

// FNAT then PLAIN: the second entry starts at 8 + 48 = 56.
#[rustfmt::skip]
const MSG_FNAT_PLAIN: [u8; 92] = [
    0x00, 0x07, 0x00, 0x5c, 0x02, 0x01, 0x00, 0x00, // syncid 7, size 92, 2 entries
    0x00, 0x11, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x88,
    0x00, 0x35, 0x00, 0x35, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x2c,
    0x0a, 0x00, 0x00, 0x07, 0xc0, 0x00, 0x02, 0x0b, 0x0a, 0x00, 0x01, 0x0b,
    0x48, 0x08, 0x0a, 0x00, 0x02, 0x01, 0x9c, 0x41, 0x05, 0x00,
    0x00, 0x00,             // padding to 48
    0x00, 0x06, 0x00, 0x24, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0xc3, 0x51, // cport 50001
    0x00, 0x50, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x84,
    0x0a, 0x00, 0x00, 0x05, 0xc0, 0x00, 0x02, 0x0a, 0x0a, 0x00, 0x01, 0x09,
];

// An IPv6 TCP entry: 72-byte fixed part.
#[rustfmt::skip]
const V6: [u8; 72] = [
    0x01, 0x06, 0x00, 0x48, // type IPv6, TCP, size 72
    0x00, 0x00, 0x00, 0x03, // flags: DROUTE
    0x00, 0x01, 0xc3, 0x50, // state ESTABLISHED, cport 50000
    0x00, 0x50, 0x00, 0x50, // vport 80, dport 80
    0x00, 0x00, 0x00, 0x00, // fwmark
    0x00, 0x00, 0x03, 0x84, // timeout 900 s
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, // 2001:db8::5
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, // 2001:db8::a
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, // 2001:db8:1::9
];

#[rustfmt::skip]
const BULK_REQUEST: [u8; 28] = [
    0x00, 0x03, 0x00, 0x1c, // reserved, syncid 3, size 28
    0x00, 0x01, 0x00, 0x00, // no entries, version 1, spare
    b'L', b'B', b'D', b'S', // magic
    0x01, 0x00, 0x00, 0x00, // bulk request, reserved
    0xde, 0xad, 0xbe, 0xef, // nonce
    0, 0, 0, 0, 0, 0, 0, 0, // conns 0
];

#[rustfmt::skip]
const BULK_END: [u8; 28] = [
    0x00, 0x03, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00,
    b'L', b'B', b'D', b'S',
    0x02, 0x00, 0x00, 0x00, // bulk end
    0xde, 0xad, 0xbe, 0xef, // nonce
    0, 0, 0, 0, 0, 0x01, 0xe2, 0x40, // conns 123456
];

const PAD2: [u8; 2] = [0, 0];

fn plain_conn() -> SyncConn {
    SyncConn {
        protocol: 6,
        flags: flags::FWD_DROUTE,
        state: tcp_state::ESTABLISHED,
        cport: 50000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout_s: 900,
        caddr: Ipv4Addr::new(10, 0, 0, 5),
        vaddr: Ipv4Addr::new(192, 0, 2, 10),
        daddr: Ipv4Addr::new(10, 0, 1, 9),
        seq: None,
        fnat: None,
    }
}

fn seq_conn() -> SyncConn {
    SyncConn {
        protocol: 6,
        flags: flags::FWD_MASQ | flags::SEQ_MASK,
        state: tcp_state::SYN_RECV,
        cport: 40000,
        vport: 443,
        dport: 443,
        fwmark: 0,
        timeout_s: 60,
        caddr: Ipv4Addr::new(10, 0, 0, 6),
        vaddr: Ipv4Addr::new(192, 0, 2, 10),
        daddr: Ipv4Addr::new(10, 0, 1, 10),
        seq: Some(SeqOption {
            in_seq: Seq {
                init_seq: 0x1122_3344,
                delta: 16,
                previous_delta: 0xffff_fff0,
            },
            out_seq: Seq {
                init_seq: 0xaabb_ccdd,
                delta: 0,
                previous_delta: 1,
            },
        }),
        fnat: None,
    }
}

fn fnat_conn() -> SyncConn {
    SyncConn {
        protocol: 17,
        flags: flags::FWD_MASQ,
        state: udp_state::NORMAL,
        cport: 5000,
        vport: 53,
        dport: 53,
        fwmark: 7,
        timeout_s: 300,
        caddr: Ipv4Addr::new(10, 0, 0, 7),
        vaddr: Ipv4Addr::new(192, 0, 2, 11),
        daddr: Ipv4Addr::new(10, 0, 1, 11),
        seq: None,
        fnat: Some(FnatOption {
            laddr: Ipv4Addr::new(10, 0, 2, 1),
            lport: 40001,
            toa_sent: true,
            draining: false,
            persistent: true,
        }),
    }
}

/// A message with sync id 7: the header, then `parts` as they are (padding included).
fn message(nr_conns: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut m = vec![0x00, 0x07, 0x00, 0x00, nr_conns, 0x01, 0x00, 0x00];
    for part in parts {
        m.extend_from_slice(part);
    }
    let size = u16::try_from(m.len()).unwrap();
    m[2..4].copy_from_slice(&size.to_be_bytes());
    m
}

/// Parses a message of entries with any sync id and collects the entries.
fn entries(msg: &[u8]) -> Vec<Result<SyncConn, EntryError>> {
    match parse(msg, 0) {
        Ok((_, Message::Conns(e))) => e.collect(),
        other => panic!("not a message of entries: {other:?}"),
    }
}

/// Writes `conns` with sync id 7 into a 0xa5-filled buffer of `maxlen`.
fn write(maxlen: usize, conns: &[SyncConn]) -> Vec<u8> {
    let mut buf = vec![0xa5; maxlen];
    let mut w = MessageWriter::new(&mut buf, 7).unwrap();
    for c in conns {
        assert!(w.push(c));
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

#[test]
fn plain_round_trip() {
    let h = SyncHeader::new_checked(&MSG_PLAIN[..]).unwrap();
    assert_eq!(
        (h.syncid(), h.size(), h.nr_conns(), h.is_v1()),
        (7, 44, 1, true)
    );
    let e = ConnEntry::new_checked(&PLAIN[..]).unwrap();
    assert_eq!(
        (e.family(), e.size(), e.padded_len()),
        (Ok(Family::Ipv4), 36, 36)
    );
    assert_eq!(
        (e.cport(), e.vport(), e.dport(), e.timeout()),
        (50000, 80, 8080, 900)
    );
    assert_eq!(e.options().count(), 0);

    let (syncid, msg) = parse(&MSG_PLAIN, 7).unwrap();
    assert_eq!(syncid, 7);
    let Message::Conns(mut it) = msg else {
        panic!("control")
    };
    assert_eq!(it.remaining(), 1);
    assert_eq!(it.next(), Some(Ok(plain_conn())));
    assert_eq!((it.next(), it.next()), (None, None));

    assert_eq!(plain_conn().wire_len(), 36);
    assert_eq!(write(DEFAULT_MAXLEN, &[plain_conn()]), MSG_PLAIN);
}

#[test]
fn seq_option() {
    let msg = message(1, &[&SEQ]);
    assert_eq!(&msg[..8], &[0x00, 0x07, 0x00, 0x46, 0x01, 0x01, 0x00, 0x00]);
    assert_eq!(entries(&msg), [Ok(seq_conn())]);
    assert_eq!(seq_conn().wire_len(), 62);
    assert_eq!(write(DEFAULT_MAXLEN, &[seq_conn()]), msg);
}

#[test]
fn fnat_option_and_padding() {
    assert_eq!(fnat_conn().wire_len(), 46);
    #[rustfmt::skip]
    let header = [0x00, 0x07, 0x00, 0x36, 0x01, 0x01, 0x00, 0x00]; // size 54
    let msg = message(1, &[&FNAT]);
    assert_eq!(&msg[..8], &header);
    assert_eq!(entries(&msg), [Ok(fnat_conn())]);
    // The last entry is not padded: the message is 8 + 46 bytes.
    assert_eq!(write(DEFAULT_MAXLEN, &[fnat_conn()]), msg);

    // Between entries the 46-byte entry is padded to 48 with zeros.
    let second = SyncConn {
        cport: 50001,
        ..plain_conn()
    };
    let out = write(DEFAULT_MAXLEN, &[fnat_conn(), second]);
    assert_eq!(out, MSG_FNAT_PLAIN);
    assert_eq!(&out[54..56], &[0, 0]);
    assert_eq!(entries(&MSG_FNAT_PLAIN), [Ok(fnat_conn()), Ok(second)]);
}

#[test]
fn multiple_entries() {
    let msg = message(3, &[&SEQ, &PAD2, &FNAT, &PAD2, &PLAIN]);
    assert_eq!(msg.len(), 8 + 64 + 48 + 36);
    let all = [seq_conn(), fnat_conn(), plain_conn()];
    assert_eq!(entries(&msg), all.map(Ok));
    assert_eq!(write(DEFAULT_MAXLEN, &all), msg);

    // Both options in one entry (sequence first): 36 + 26 + 10 = MAX_ENTRY_LEN.
    let both = SyncConn {
        fnat: fnat_conn().fnat,
        ..seq_conn()
    };
    assert_eq!(both.wire_len(), MAX_ENTRY_LEN);
    let mut entry = SEQ.to_vec();
    entry[3] = 0x48; // size 72
    entry.extend_from_slice(&FNAT[36..]);
    assert_eq!(entries(&message(1, &[&entry])), [Ok(both)]);
    assert_eq!(write(MIN_MAXLEN, &[both]), message(1, &[&entry]));

    // A sender that pads the last entry too: trailing bytes are ignored.
    assert_eq!(entries(&message(1, &[&FNAT, &PAD2])), [Ok(fnat_conn())]);
}

#[test]
fn control_round_trips() {
    let request = Control::BulkRequest { nonce: 0xdead_beef };
    let end = Control::BulkEnd {
        nonce: 0xdead_beef,
        conns: 123_456,
    };
    for (bytes, control) in [(BULK_REQUEST, request), (BULK_END, end)] {
        let (syncid, msg) = parse(&bytes, 0).unwrap();
        assert_eq!(syncid, 3);
        assert!(matches!(msg, Message::Control(c) if c == control));
        let mut buf = [0xa5u8; 40];
        assert_eq!(emit_control(&mut buf, 3, &control), Ok(CONTROL_LEN));
        assert_eq!(buf[..CONTROL_LEN], bytes);
        assert_eq!(
            emit_control(&mut buf[..27], 3, &control),
            Err(SyncError::BufferTooSmall)
        );
    }
    let bad = |at: usize, value: u8| {
        let mut b = BULK_END;
        b[at] = value;
        parse(&b, 0).map(|(_, m)| format!("{m:?}"))
    };
    assert_eq!(bad(8, b'X'), Err(SyncError::BadControl)); // magic
    assert_eq!(bad(12, 3), Err(SyncError::BadControl)); // kind
    assert_eq!(bad(12, 0), Err(SyncError::BadControl));
    assert_eq!(bad(14, 1), Err(SyncError::BadControl)); // reserved
    let mut b = BULK_REQUEST;
    b[27] = 1; // a request with conns
    assert_eq!(parse(&b, 0).map(|_| ()), Err(SyncError::BadControl));
    // A trailer of the wrong length (size fixed up).
    let long = message(0, &[&BULK_END[8..], &[0]]);
    assert_eq!(parse(&long, 0).map(|_| ()), Err(SyncError::BadControl));
    let short = message(0, &[&BULK_END[8..27]]);
    assert_eq!(parse(&short, 0).map(|_| ()), Err(SyncError::BadControl));
    // A header alone is an empty message of entries.
    assert!(entries(&message(0, &[])).is_empty());
}

#[test]
fn syncid_filter() {
    assert_eq!(
        parse(&MSG_PLAIN, 8).map(|_| ()),
        Err(SyncError::ForeignSyncid(7))
    );
    assert_eq!(
        parse(&BULK_REQUEST, 7).map(|_| ()),
        Err(SyncError::ForeignSyncid(3))
    );
    assert_eq!(parse(&MSG_PLAIN, 7).unwrap().0, 7);
    assert_eq!(parse(&MSG_PLAIN, 0).unwrap().0, 7);
    let mut other = MSG_PLAIN;
    other[1] = 200;
    assert_eq!(parse(&other, 0).unwrap().0, 200);
    assert_eq!(SyncError::ForeignSyncid(7).reason(), "foreign_syncid");
}

#[test]
fn header_errors() {
    for len in 0..HEADER_LEN {
        assert_eq!(
            parse(&MSG_PLAIN[..len], 0).map(|_| ()),
            Err(SyncError::Truncated)
        );
    }
    // The size field must be the datagram length.
    assert_eq!(
        parse(&MSG_PLAIN[..43], 0).map(|_| ()),
        Err(SyncError::BadSize)
    );
    let mut longer = MSG_PLAIN.to_vec();
    longer.push(0);
    assert_eq!(parse(&longer, 0).map(|_| ()), Err(SyncError::BadSize));
    let mut b = MSG_PLAIN;
    b[3] = 0x2d;
    assert_eq!(parse(&b, 0).map(|_| ()), Err(SyncError::BadSize));
    // Reserved, version and spare make a version 0 message.
    for (at, value) in [(0, 1), (5, 0), (5, 2), (5, 0xff), (6, 1), (7, 1)] {
        let mut b = MSG_PLAIN;
        b[at] = value;
        assert_eq!(
            parse(&b, 0).map(|_| ()),
            Err(SyncError::NotVersion1),
            "{at}"
        );
    }
    assert_eq!(SyncError::BadSize.reason(), "bad_size");
    assert_eq!(SyncError::NotVersion1.reason(), "not_version_1");
}

const TRUNCATED: EntryError = EntryError::Malformed("entry_truncated");

#[test]
fn truncated_entries() {
    assert_eq!(entries(&message(1, &[&PLAIN[..20]])), [Err(TRUNCATED)]);
    assert_eq!(entries(&message(1, &[&FNAT[..40]])), [Err(TRUNCATED)]);
    // More entries announced than there are.
    assert_eq!(
        entries(&message(3, &[&PLAIN])),
        [Ok(plain_conn()), Err(TRUNCATED)]
    );
    assert_eq!(
        entries(&message(2, &[&FNAT])),
        [Ok(fnat_conn()), Err(TRUNCATED)]
    );
    // An entry size below the fixed part.
    let mut e = PLAIN;
    e[3] = 35;
    let bad_size = EntryError::Malformed("bad_entry_size");
    assert_eq!(entries(&message(2, &[&e, &PLAIN])), [Err(bad_size)]);
    assert_eq!(TRUNCATED.reason(), "entry_truncated");
}

const BAD_OPTION: EntryError = EntryError::Malformed("bad_option");

#[test]
fn bad_options() {
    let mut zero = FNAT;
    zero[37] = 0;
    assert_eq!(
        entries(&message(2, &[&zero, &PAD2, &PLAIN])),
        [Err(BAD_OPTION)]
    );
    let mut overrun = FNAT;
    overrun[37] = 9;
    assert_eq!(
        entries(&message(2, &[&overrun, &PAD2, &PLAIN])),
        [Err(BAD_OPTION)]
    );
    // An option's type byte alone at the end of the entry.
    let mut lone = PLAIN.to_vec();
    lone[3] = 37;
    lone.push(0x48);
    assert_eq!(entries(&message(1, &[&lone])), [Err(BAD_OPTION)]);
    // FNAT and sequence options of the wrong length.
    let mut short_fnat = PLAIN.to_vec();
    short_fnat[3] = 36 + 9;
    short_fnat.extend_from_slice(&[0x48, 0x07, 10, 0, 2, 1, 0x9c, 0x41, 0]);
    assert_eq!(entries(&message(1, &[&short_fnat])), [Err(BAD_OPTION)]);
    let mut short_seq = SEQ;
    short_seq[37] = 23;
    short_seq[3] = 61;
    assert_eq!(entries(&message(1, &[&short_seq[..61]])), [Err(BAD_OPTION)]);
}

#[test]
fn duplicate_options() {
    let dup = EntryError::Malformed("duplicate_option");
    let mut twice = FNAT.to_vec();
    twice[3] = 56;
    twice.extend_from_slice(&FNAT[36..]);
    assert_eq!(entries(&message(2, &[&twice, &PLAIN])), [Err(dup)]);
    // The optional bit does not make a known type another one.
    let mut seqs = SEQ.to_vec();
    seqs[3] = 88;
    seqs.push(0x41);
    seqs.extend_from_slice(&SEQ[37..]);
    assert_eq!(entries(&message(1, &[&seqs])), [Err(dup)]);
    // PE name twice.
    let mut pe = PLAIN.to_vec();
    pe[3] = 44;
    pe.extend_from_slice(&[0x03, 0x02, b'x', b'y', 0x03, 0x02, b'x', b'y']);
    assert_eq!(entries(&message(1, &[&pe])), [Err(dup)]);
}

#[test]
fn unknown_options() {
    // Optional (0x45) and PE data/name: the entry is decoded.
    let mut optional = PLAIN.to_vec();
    optional[3] = 52;
    optional.extend_from_slice(&[0x45, 0x02, 0xaa, 0xbb, 0x02, 0x01, 0x07, 0x03]);
    optional.extend_from_slice(&[0x04, b's', b'i', b'p', b'\0', 0x4f, 0x01, 0x00]);
    assert_eq!(entries(&message(1, &[&optional])), [Ok(plain_conn())]);
    // Mandatory unknown (0x05): that entry is skipped, the next one is read.
    let mut mandatory = PLAIN.to_vec();
    mandatory[3] = 40;
    mandatory.extend_from_slice(&[0x05, 0x02, 0xaa, 0xbb]);
    assert_eq!(
        entries(&message(2, &[&mandatory, &FNAT])),
        [Err(EntryError::Skipped("unknown_option")), Ok(fnat_conn())]
    );
    assert_eq!(
        EntryError::Skipped("unknown_option").reason(),
        "unknown_option"
    );
}

#[test]
fn ipv6_entry_skipped() {
    assert_eq!(
        entries(&message(2, &[&V6, &PLAIN])),
        [Err(EntryError::Skipped("ipv6_entry")), Ok(plain_conn())]
    );
    let e = ConnEntry::new_checked(&V6[..]).unwrap();
    assert_eq!(
        (e.family(), Family::Ipv6.fixed_len()),
        (Ok(Family::Ipv6), 72)
    );
    // An IPv6 entry too short for its addresses.
    let mut short = V6;
    short[3] = 36;
    let bad_size = EntryError::Malformed("bad_entry_size");
    assert_eq!(
        entries(&message(2, &[&short[..36], &PLAIN])),
        [Err(bad_size)]
    );
}

#[test]
fn entry_type_version_protocol_state() {
    let with = |at: usize, value: u8| {
        let mut e = PLAIN;
        e[at] = value;
        entries(&message(2, &[&e, &PLAIN]))
    };
    assert_eq!(with(0, 0x02), [Err(EntryError::Malformed("bad_type"))]);
    assert_eq!(with(0, 0x80), [Err(EntryError::Malformed("bad_type"))]);
    let version = EntryError::Malformed("bad_entry_version");
    assert_eq!(with(2, 0x10), [Err(version)]);
    assert_eq!(with(2, 0xf0), [Err(version)]);
    let ok = Ok(plain_conn());
    assert_eq!(with(1, 1), [Err(EntryError::Skipped("bad_protocol")), ok]);
    assert_eq!(with(9, 11), [Err(EntryError::Skipped("bad_state")), ok]);
    // A template is not checked against the protocol's states.
    let mut template = PLAIN;
    template[6] = 0x10;
    template[9] = 11;
    let conn = SyncConn {
        flags: 3 | flags::TEMPLATE,
        state: 11,
        ..plain_conn()
    };
    assert_eq!(entries(&message(1, &[&template])), [Ok(conn)]);
    // UDP has a single state.
    let mut udp = FNAT;
    udp[9] = 1;
    assert_eq!(
        entries(&message(1, &[&udp])),
        [Err(EntryError::Skipped("bad_state"))]
    );
}

#[test]
fn writer_limits() {
    let mut small = [0u8; MIN_MAXLEN - 1];
    assert_eq!(
        MessageWriter::new(&mut small, 1).err(),
        Some(SyncError::BufferTooSmall)
    );

    // A 1472-byte buffer holds 30 FNAT entries: 8 + 29 * 48 + 46 = 1446 bytes.
    let mut buf = [0u8; DEFAULT_MAXLEN];
    let mut w = MessageWriter::new(&mut buf, 9).unwrap();
    assert!(w.is_empty());
    let mut n = 0;
    while w.push(&SyncConn {
        cport: n,
        ..fnat_conn()
    }) {
        n += 1;
    }
    assert_eq!((n, w.count()), (30, 30));
    assert!(!w.push(&fnat_conn()));
    assert_eq!(w.message_len(), 1446);
    let len = w.finish();
    assert_eq!(len, 1446);
    let (syncid, Message::Conns(it)) = parse(&buf[..len], 9).unwrap() else {
        panic!("control")
    };
    assert_eq!(syncid, 9);
    let got: Vec<_> = it.collect();
    assert_eq!(got.len(), 30);
    for (i, c) in got.into_iter().enumerate() {
        let cport = u16::try_from(i).unwrap();
        assert_eq!(
            c,
            Ok(SyncConn {
                cport,
                ..fnat_conn()
            })
        );
    }

    // A huge buffer stops at 255 entries.
    let mut huge = vec![0u8; 70_000];
    let mut w = MessageWriter::new(&mut huge, 1).unwrap();
    let mut n = 0;
    while w.push(&plain_conn()) {
        n += 1;
    }
    assert_eq!(n, MAX_CONNS);
    let len = w.finish();
    assert_eq!(len, HEADER_LEN + 255 * 36);
    assert_eq!(entries(&huge[..len]), vec![Ok(plain_conn()); 255]);

    // An empty writer makes a header-only message.
    let mut buf = [0xa5u8; MIN_MAXLEN];
    let len = MessageWriter::new(&mut buf, 4).unwrap().finish();
    assert_eq!(buf[..len], [0x00, 0x04, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00]);
}

/// Outcomes seen by the sweep: messages rejected, controls, entries decoded, skipped and
/// malformed.
#[derive(Debug, Default)]
struct Seen([usize; 5]);

/// Parses `buf` and drains the entries, checking the iterator's bound.
fn drain(buf: &[u8], accept: u8, seen: &mut Seen) {
    let mut it = match parse(buf, accept) {
        Err(_) => {
            seen.0[0] += 1;
            return;
        }
        Ok((_, Message::Control(_))) => {
            seen.0[1] += 1;
            return;
        }
        Ok((_, Message::Conns(it))) => it,
    };
    let nr_conns = usize::from(buf[4]);
    let mut items = 0;
    while let Some(item) = it.next() {
        items += 1;
        assert!(items <= nr_conns, "{items} items for {nr_conns} entries");
        seen.0[match item {
            Ok(c) => {
                assert!(c.wire_len() <= MAX_ENTRY_LEN);
                2
            }
            Err(EntryError::Skipped(_)) => 3,
            Err(EntryError::Malformed(_)) => 4,
        }] += 1;
        if matches!(item, Err(EntryError::Malformed(_))) {
            assert_eq!(it.next(), None);
            break;
        }
    }
    assert_eq!(it.next(), None);
}

#[test]
fn never_panics_on_mutations() {
    let both = SyncConn {
        fnat: fnat_conn().fnat,
        ..seq_conn()
    };
    let seeds = [
        MSG_PLAIN.to_vec(),
        MSG_FNAT_PLAIN.to_vec(),
        message(3, &[&SEQ, &PAD2, &FNAT, &PAD2, &PLAIN]),
        message(2, &[&V6, &PLAIN]),
        BULK_REQUEST.to_vec(),
        BULK_END.to_vec(),
        write(
            DEFAULT_MAXLEN,
            &[both, plain_conn(), fnat_conn(), seq_conn(), both],
        ),
    ];
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let mut seen = Seen::default();
    for _ in 0..200_000 {
        let mut buf = seeds[rng.below(seeds.len())].clone();
        match rng.below(4) {
            0 => {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(buf.len());
                    buf[at] ^= 1 << rng.below(8);
                }
            }
            1 => buf.truncate(rng.below(buf.len() + 1)),
            2 => {
                let len = rng.below(200);
                buf.resize(len, 0);
                for b in buf.iter_mut().skip(HEADER_LEN) {
                    *b = rng.next_u8();
                }
            }
            _ => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(buf.len());
                    buf[at] = rng.next_u8();
                }
            }
        }
        // Usually keep the header consistent so that the entries get parsed.
        if buf.len() >= HEADER_LEN && rng.below(4) != 0 {
            let size = u16::try_from(buf.len()).unwrap();
            buf[2..4].copy_from_slice(&size.to_be_bytes());
            if rng.below(4) == 0 {
                buf[4] = rng.next_u8();
            }
            buf[0] = 0;
            buf[5] = 1;
            buf[6] = 0;
            buf[7] = 0;
        }
        drain(&buf, if rng.below(2) == 0 { 0 } else { 7 }, &mut seen);
    }
    // The sweep reaches every outcome, not just header rejections.
    assert!(seen.0.iter().all(|&n| n > 1000), "{seen:?}");
}
