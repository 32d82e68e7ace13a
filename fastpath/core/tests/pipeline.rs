//! Data-driven pipeline fixtures: input frame, expected verdict, expected output bytes.

#![allow(clippy::cast_possible_truncation)] // test fixtures build literal packets from small numbers

use std::net::Ipv4Addr;

use fastpath::neigh::NeighTable;
use fastpath::service::ServiceTable;
use fastpath::session::Timeouts;
use fastpath::wire::{checksum, EthernetAddress};
use fastpath::{pipeline, Counters, Ctx, DropReason, Interface, PacketBuf, TestBuf, Verdict, WorkerState};

const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

fn iface(kernel: bool) -> Interface {
    Interface::new(EthernetAddress(OUR_MAC), vec![(Ipv4Addr::new(10, 70, 1, 1), 24)], kernel)
}

#[rustfmt::skip]
fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // eth dst: broadcast
        0x02, 0, 0, 0, 0, 0x01,             // eth src: client
        0x08, 0x06,                         // ethertype ARP
        0x00, 0x01, 0x08, 0x00, 6, 4,       // htype 1, ptype IPv4, hlen, plen
        0x00, 0x01,                         // op: request
        0x02, 0, 0, 0, 0, 0x01,             // sha
        10, 70, 1, 10,                      // spa
        0, 0, 0, 0, 0, 0,                   // tha
    ];
    f.extend_from_slice(&target);           // tpa
    f.resize(60, 0);                        // Ethernet padding
    f
}

#[rustfmt::skip]
fn arp_reply_expected() -> Vec<u8> {
    let mut f = vec![
        0x02, 0, 0, 0, 0, 0x01,             // eth dst: client
        0x02, 0, 0, 0, 0, 0xaa,             // eth src: us
        0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 6, 4,
        0x00, 0x02,                         // op: reply
        0x02, 0, 0, 0, 0, 0xaa,             // sha: us
        10, 70, 1, 1,                       // spa: the asked address
        0x02, 0, 0, 0, 0, 0x01,             // tha: client
        10, 70, 1, 10,                      // tpa: client
    ];
    f.resize(60, 0);
    f
}

/// An ICMP echo request from the client to `dst`, with correct checksums.
#[rustfmt::skip]
fn echo_request(dst: [u8; 4], eth_dst: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, 0x00, 0x00, 0x24,             // v4, ihl 5, total length 36
        0x12, 0x34, 0x40, 0x00,             // ident, DF
        0x40, 0x01, 0x00, 0x00,             // ttl 64, ICMP, checksum (filled below)
        10, 70, 1, 10,                      // src
        dst[0], dst[1], dst[2], dst[3],     // dst
        0x08, 0x00, 0x00, 0x00,             // echo request, code 0, checksum (below)
        0x00, 0x07, 0x00, 0x01,             // ident 7, seq 1
        b'p', b'i', b'n', b'g', 1, 2, 3, 4, // data
    ];
    let c = checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let c = checksum::checksum(&ip[20..]);
    ip[22..24].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

fn run(frame: &[u8], kernel: bool) -> (Verdict, Vec<u8>, Counters) {
    let mut buf = TestBuf::new(frame);
    let services = ServiceTable::default();
    let neigh = NeighTable::default();
    let ports = [iface(kernel)];
    let ctx = Ctx { ports: &ports, services: &services, neigh: &neigh, worker: 0, workers: 1, now_ms: 1000, owners: None, sync: None };
    let mut st = WorkerState::new(0, 1, &services, 16, Timeouts::default());
    let v = pipeline::process(&mut buf, 0, &ctx, &mut st);
    (v, buf.data().to_vec(), st.counters)
}

#[test]
fn arp_request_for_our_address_is_answered_in_place() {
    let (v, out, c) = run(&arp_request([10, 70, 1, 1]), true);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(out, arp_reply_expected());
    assert_eq!(c.arp_replies, 1);
}

#[test]
fn arp_for_other_addresses_goes_to_the_kernel_unchanged() {
    let req = arp_request([10, 70, 1, 2]);
    let (v, out, c) = run(&req, true);
    assert_eq!(v, Verdict::ToKernel);
    assert_eq!(out, req);
    assert_eq!(c.arp_replies, 0);
    // Without a kernel path the frame is a counted drop, not a silent one.
    assert_eq!(run(&req, false).0, Verdict::Drop(DropReason::NoKernelPath));
}

#[test]
fn echo_request_becomes_a_valid_echo_reply() {
    let req = echo_request([10, 70, 1, 1], OUR_MAC);
    let (v, out, c) = run(&req, true);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(c.icmp_echo_replies, 1);
    assert_eq!(&out[0..6], &CLIENT_MAC);
    assert_eq!(&out[6..12], &OUR_MAC);
    let ip = &out[14..];
    assert_eq!(&ip[12..16], &[10, 70, 1, 1], "source is the pinged address");
    assert_eq!(&ip[16..20], &[10, 70, 1, 10], "destination is the client");
    assert_eq!(ip[8], pipeline::DEFAULT_TTL);
    assert_eq!(checksum::checksum(&ip[..20]), 0, "IPv4 header checksum valid");
    assert_eq!(ip[20], 0, "type echo reply");
    assert_eq!(checksum::checksum(&ip[20..]), 0, "ICMP checksum valid (full recomputation)");
    assert_eq!(&ip[24..], &req[14 + 24..], "ident, sequence and data echoed");
}

#[test]
fn fixtures() {
    struct Case {
        what: &'static str,
        input: Vec<u8>,
        verdict: Verdict,
    }
    let mut bad_ip_csum = echo_request([10, 70, 1, 1], OUR_MAC);
    bad_ip_csum[14 + 10] ^= 0xff;
    let mut bad_icmp_csum = echo_request([10, 70, 1, 1], OUR_MAC);
    bad_icmp_csum[14 + 22] ^= 0xff;
    let mut bad_ihl = echo_request([10, 70, 1, 1], OUR_MAC);
    bad_ihl[14] = 0x44;
    let mut arp_ipv6 = arp_request([10, 70, 1, 1]);
    arp_ipv6[16..18].copy_from_slice(&[0x86, 0xdd]);
    let mut ipv6 = echo_request([10, 70, 1, 1], OUR_MAC);
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let cases = [
        Case { what: "empty frame", input: vec![], verdict: Verdict::Drop(DropReason::EthTruncated) },
        Case { what: "13-byte frame", input: vec![0xff; 13], verdict: Verdict::Drop(DropReason::EthTruncated) },
        Case {
            what: "unicast for another MAC",
            input: echo_request([10, 70, 1, 1], [0x02, 0, 0, 0, 0, 0x77]),
            verdict: Verdict::Drop(DropReason::OtherHost),
        },
        Case { what: "echo to an address we do not own", input: echo_request([10, 70, 1, 2], OUR_MAC), verdict: Verdict::ToKernel },
        Case { what: "bad IPv4 checksum", input: bad_ip_csum, verdict: Verdict::Drop(DropReason::Ipv4BadChecksum) },
        Case { what: "bad ICMP checksum", input: bad_icmp_csum, verdict: Verdict::Drop(DropReason::IcmpBadChecksum) },
        Case { what: "IHL 4", input: bad_ihl, verdict: Verdict::Drop(DropReason::Ipv4Malformed) },
        Case { what: "truncated ARP", input: arp_request([10, 70, 1, 1])[..30].to_vec(), verdict: Verdict::Drop(DropReason::ArpMalformed) },
        Case { what: "ARP for IPv6", input: arp_ipv6, verdict: Verdict::Drop(DropReason::ArpUnsupported) },
        Case { what: "IPv6 goes to the kernel", input: ipv6, verdict: Verdict::ToKernel },
    ];
    for case in cases {
        let (v, out, _) = run(&case.input, true);
        assert_eq!(v, case.verdict, "{}", case.what);
        if v != Verdict::Tx(0) {
            assert_eq!(out, case.input, "{}: frame not answered must be unchanged", case.what);
        }
    }
}

#[test]
fn every_truncation_and_random_bytes_never_panic() {
    let frames = [arp_request([10, 70, 1, 1]), echo_request([10, 70, 1, 1], OUR_MAC)];
    for f in &frames {
        for len in 0..=f.len() {
            let (v, _, _) = run(&f[..len], true);
            if len < f.len() && len < 42 {
                assert!(matches!(v, Verdict::Drop(_) | Verdict::ToKernel), "len {len}: {v:?}");
            }
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 120) as usize;
        let mut f: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
        // Make many of them look like ours so deeper parsers run.
        if f.len() >= 14 {
            f[..6].copy_from_slice(&OUR_MAC);
            f[12..14].copy_from_slice(if x & 1 == 0 { &[0x08, 0x00] } else { &[0x08, 0x06] });
        }
        let _ = run(&f, true);
    }
}
