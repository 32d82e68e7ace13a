//! Fuzz target (bounded, deterministic; fuzz/README.md): VRRP adverts as heard on the raw
//! socket. Mutated IPv4 packets go through `vrrp_net::parse_ip`, the packet view and its
//! accessors, `Repr::parse`, and a configured VRRP engine (`Vrrp::received`, `tick`); none
//! may panic, and a share of the inputs must parse as adverts.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::net::Ipv4Addr;

use fastpath::wire::Ipv4Packet;
use lb_slowpath::vrrp::packet::{auth_data, Packet, Repr, Version};
use lb_slowpath::vrrp::Vrrp;
use lb_slowpath::vrrp_net;

/// Mutants under `cargo test` (FUZZ_ITERS overrides).
const ITERS: usize = 200_000;

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

const CONF: &str = "
vrrp_instance V2 {
    interface eth0
    virtual_router_id 7
    priority 100
    advert_int 1
    version 2
    virtual_ipaddress {
        10.0.0.100
    }
}
vrrp_instance V2AUTH {
    interface eth0
    virtual_router_id 8
    version 2
    authentication {
        auth_type PASS
        auth_pass secret1
    }
    virtual_ipaddress {
        10.0.0.101
    }
}
vrrp_instance V3 {
    interface eth0
    virtual_router_id 9
    priority 150
    version 3
    advert_int 0.5
    virtual_ipaddress {
        10.0.0.102
        10.0.0.103
    }
}
";

fn advert(version: Version, vrid: u8, priority: u8, advert_centis: u16, auth: Option<&str>, addrs: &[Ipv4Addr], dst: Ipv4Addr) -> Vec<u8> {
    let r = Repr { version, vrid, priority, advert_centis, auth: auth.map(auth_data), addrs: addrs.to_vec() };
    vrrp_net::ip_packet(B_IP, dst, &r.to_bytes(B_IP, dst))
}

/// Makes an IPv4 packet carry VRRP with right lengths and checksums, where it can.
fn repair(p: &mut [u8]) {
    if p.len() < 20 {
        return;
    }
    p[0] = 0x40 | (p[0] & 0x0f).max(5);
    p[9] = 112;
    let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut p[..]) else { return };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if let Ok(mut v) = Packet::new_checked(ip.payload_mut()) {
        v.fill_checksum(src, dst);
    }
    ip.fill_checksum();
}

#[test]
fn fuzz_vrrp() {
    let cfg = kaconf::parse_str(CONF, "fuzz.conf".as_ref()).unwrap();
    let mut engine = Vrrp::new(&cfg, 0, &|_| Some(A_IP)).unwrap();
    let vip = Ipv4Addr::new(10, 0, 0, 100);
    let seeds = vec![
        advert(Version::V2, 7, 200, 100, None, &[vip], GROUP),
        advert(Version::V2, 7, 50, 100, None, &[vip], GROUP),
        advert(Version::V2, 8, 120, 300, Some("secret1"), &[Ipv4Addr::new(10, 0, 0, 101)], GROUP),
        advert(Version::V3, 9, 200, 50, None, &[Ipv4Addr::new(10, 0, 0, 102), Ipv4Addr::new(10, 0, 0, 103)], GROUP),
        advert(Version::V3, 9, 0, 50, None, &[Ipv4Addr::new(10, 0, 0, 102)], A_IP),
        advert(Version::V2, 42, 100, 100, None, &[], GROUP),
    ];
    let mut now = 0;
    let stats = harness::run("vrrp", &seeds, ITERS, 1500, |input, fix| {
        let mut p = input.to_vec();
        if fix {
            repair(&mut p);
        }
        let Some(heard) = vrrp_net::parse_ip(&p) else { return false };
        let mut deep = false;
        if let Ok(v) = Packet::new_checked(&heard.vrrp[..]) {
            let _ = (v.version_number(), v.version(), v.msg_type(), v.vrid(), v.priority(), v.count_ip(), v.auth_type());
            let _ = (v.advert_int_v2(), v.max_advert_int(), v.checksum(), v.verify_checksum(heard.src, heard.dst));
            if v.version() == Ok(Version::V2) {
                let _ = v.auth_data(); // "VRRPv2 only": see auth_data_of_a_checked_v3_packet
            }
            for i in 0..usize::from(v.count_ip()) {
                let _ = v.addr(i);
            }
            if let Ok(r) = Repr::parse(&v, heard.src, heard.dst) {
                deep = true;
                // Whatever parses writes back to the same bytes' meaning.
                let again = r.to_bytes(heard.src, heard.dst);
                let back = Repr::parse(&Packet::new_checked(&again[..]).unwrap(), heard.src, heard.dst).unwrap();
                assert_eq!(back, r, "emit then parse");
            }
        }
        now += u64::from(input.first().copied().unwrap_or(0) % 64) * 10;
        let _ = engine.received(now, "eth0", heard.src, heard.dst, heard.ttl, &heard.vrrp);
        if input.len() % 5 == 0 {
            let _ = engine.tick(now);
        }
        deep
    });
    stats.assert_deep("vrrp", 20);
}

/// Found by fuzz_vrrp: `Packet::new_checked` promises that accessors cannot panic afterwards,
/// but `auth_data` (documented "VRRPv2 only") sliced past the end of a checked VRRPv3
/// message. Not reachable from the network (`Repr::parse` calls it for VRRPv2 only); it now
/// returns zeros.
#[test]
fn auth_data_of_a_checked_v3_packet() {
    let r = Repr { version: Version::V3, vrid: 9, priority: 100, advert_centis: 100, auth: None, addrs: vec![A_IP] };
    let bytes = r.to_bytes(B_IP, GROUP);
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(p.auth_data(), [0; 8]);
}
