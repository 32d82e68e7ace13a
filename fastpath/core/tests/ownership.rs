//! Address ownership (VRRP): a VIP or local address this director does not own gets no ARP
//! replies and none of its traffic is forwarded (`not_owner`), sessions included; owning it
//! again restores forwarding. Literal frames through the pipeline, no DPDK.

#![allow(clippy::cast_possible_truncation)] // test fixtures build literal packets from small numbers

use std::collections::HashMap;
use std::net::Ipv4Addr;

use fastpath::owners::Owners;
use fastpath::neigh::NeighTable;
use fastpath::service::{AddrKind, AddrState, ForwardMode, RealServer, Scheduler, Service, ServiceKey, ServiceTable};
use fastpath::session::Timeouts;
use fastpath::wire::{checksum, EthernetAddress, Ipv4Packet, TcpFlags, TcpPacket};
use fastpath::{pipeline, Ctx, DropReason, Interface, L4Proto, PacketBuf, TestBuf, Verdict, WorkerState};

const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const RS_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 1];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 100);
const NAT_VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 101);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 100);
const RS: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 11);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 10);

struct Lab {
    ports: Vec<Interface>,
    services: ServiceTable,
    neigh: NeighTable,
    owners: Owners,
    /// What the control side was told, by address (absent: owned).
    owned: HashMap<Ipv4Addr, bool>,
}

fn services() -> Vec<Service> {
    let fnat = Service {
        real_servers: vec![RealServer::new(RS, 80, 1)],
        laddrs: vec![LIP],
        ..Service::new(ServiceKey { vip: VIP, port: 80, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Fnat)
    };
    let nat = Service { real_servers: vec![RealServer::new(RS, 8080, 1)], ..Service::new(ServiceKey { vip: NAT_VIP, port: 80, proto: L4Proto::Tcp }, Scheduler::Rr, ForwardMode::Nat) };
    vec![fnat, nat]
}

impl Lab {
    fn new() -> Lab {
        let wan = Interface::new(EthernetAddress(WAN_MAC), vec![(Ipv4Addr::new(10, 70, 1, 1), 24), (VIP, 32), (NAT_VIP, 32)], true);
        let lan = Interface::new(EthernetAddress(LAN_MAC), vec![(Ipv4Addr::new(10, 70, 2, 1), 24), (LIP, 32)], true);
        let updates = [(RS, EthernetAddress(RS_MAC)), (CLIENT, EthernetAddress(CLIENT_MAC))];
        Lab {
            ports: vec![wan, lan],
            services: ServiceTable::new(services(), 1).unwrap(),
            neigh: NeighTable::default().with_updates(&updates).unwrap(),
            owners: Owners::default(),
            owned: HashMap::new(),
        }
    }

    /// Publishes a new snapshot with `addr` (not) owned, as the control side does.
    fn set_owned(&mut self, addr: Ipv4Addr, owned: bool) {
        self.owned.insert(addr, owned);
        let g = self.services.generation() + 1;
        let mut t = ServiceTable::rebuild(Some(&self.services), services(), g).unwrap();
        t.set_ownership(|ip| self.owned.get(&ip).copied());
        self.services = t;
    }

    fn state(&self) -> WorkerState {
        WorkerState::new(0, 1, &self.services, 1000, Timeouts::default())
    }

    fn run(&self, st: &mut WorkerState, frame: &[u8], port: u8) -> (Verdict, Vec<u8>) {
        let ctx = Ctx { ports: &self.ports, services: &self.services, neigh: &self.neigh, worker: 0, workers: 1, now_ms: 100_000, owners: Some(&self.owners), sync: None };
        let mut b = TestBuf::new(frame);
        let v = pipeline::process(&mut b, port, &ctx, st);
        (v, b.data().to_vec())
    }
}

#[rustfmt::skip]
fn arp_request(target: Ipv4Addr) -> Vec<u8> {
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
    f.extend_from_slice(&target.octets()); // tpa
    f.resize(60, 0);                        // Ethernet padding
    f
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

#[rustfmt::skip]
fn echo_request(dst: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&WAN_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, 0x00, 0x00, 0x1c,             // v4, ihl 5, total length 28
        0x12, 0x34, 0x40, 0x00,             // ident, DF
        0x40, 0x01, 0x00, 0x00,             // ttl 64, ICMP, checksum (below)
        10, 70, 1, 10,                      // src: client
        0, 0, 0, 0,                         // dst (below)
        0x08, 0x00, 0x00, 0x00,             // echo request, code 0, checksum (below)
        0x00, 0x07, 0x00, 0x01,             // ident 7, seq 1
    ];
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let c = checksum::checksum(&ip[20..]);
    ip[22..24].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

fn syn(cport: u16) -> Vec<u8> {
    tcp(WAN_MAC, CLIENT_MAC, (CLIENT, cport), (VIP, 80), TcpFlags::SYN)
}

/// The RS's answer to a forwarded FNAT frame (`out`: LIP:lport -> RS:80).
fn reply_to(out: &[u8], flags: TcpFlags) -> Vec<u8> {
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    let lport = TcpPacket::new_checked(ip.payload()).unwrap().src_port();
    assert_eq!(ip.src_addr(), LIP);
    tcp(LAN_MAC, RS_MAC, (RS, 80), (LIP, lport), flags)
}

#[test]
fn addresses_start_owned_and_the_table_reports_them() {
    let lab = Lab::new();
    assert_eq!(lab.services.addr(VIP), Some(AddrState { kind: AddrKind::Vip, owned: true }));
    assert_eq!(lab.services.addr(LIP), Some(AddrState { kind: AddrKind::Laddr, owned: true }));
    assert_eq!(lab.services.addr(Ipv4Addr::new(10, 70, 1, 1)), None, "a port address is no VIP");
    let mut st = lab.state();
    let (v, out) = lab.run(&mut st, &arp_request(VIP), 0);
    assert_eq!(v, Verdict::Tx(0), "owned: answered");
    assert_eq!(&out[28..32], &VIP.octets(), "spa: the VIP");
}

#[test]
fn arp_for_a_vip_we_do_not_own_gets_no_reply_and_does_not_reach_the_kernel() {
    let mut lab = Lab::new();
    lab.set_owned(VIP, false);
    let mut st = lab.state();
    let req = arp_request(VIP);
    let (v, out) = lab.run(&mut st, &req, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NotOwner));
    assert_eq!(out, req, "left as it was");
    assert_eq!(st.counters.arp_replies, 0);
    // Asked on the port that does not carry it: not handed to the kernel either.
    assert_eq!(lab.run(&mut st, &req, 1).0, Verdict::Drop(DropReason::NotOwner));
    // The port's own address and other VIPs are still answered.
    assert_eq!(lab.run(&mut st, &arp_request(Ipv4Addr::new(10, 70, 1, 1)), 0).0, Verdict::Tx(0));
    assert_eq!(lab.run(&mut st, &arp_request(NAT_VIP), 0).0, Verdict::Tx(0));
    lab.set_owned(VIP, true);
    assert_eq!(lab.run(&mut st, &req, 0).0, Verdict::Tx(0), "owned again: answered");
}

#[test]
fn syn_and_ping_to_a_vip_we_do_not_own_are_dropped_and_flipping_back_restores_forwarding() {
    let mut lab = Lab::new();
    lab.set_owned(VIP, false);
    let mut st = lab.state();
    assert_eq!(lab.run(&mut st, &syn(1000), 0).0, Verdict::Drop(DropReason::NotOwner));
    assert_eq!(st.sessions.len(), 0, "no session created");
    assert_eq!(lab.run(&mut st, &echo_request(VIP), 0).0, Verdict::Drop(DropReason::NotOwner));
    assert_eq!(st.counters.icmp_echo_replies, 0);
    lab.set_owned(VIP, true);
    let (v, out) = lab.run(&mut st, &syn(1000), 0);
    assert_eq!(v, Verdict::Tx(1), "forwarded again");
    assert_eq!(&out[0..6], &RS_MAC);
    assert_eq!(lab.run(&mut st, &echo_request(VIP), 0).0, Verdict::Tx(0));
}

#[test]
fn replies_to_a_local_address_we_do_not_own_are_dropped() {
    let mut lab = Lab::new();
    let mut st = lab.state();
    let (_, out) = lab.run(&mut st, &syn(2000), 0);
    let synack = reply_to(&out, TcpFlags::SYN | TcpFlags::ACK);
    lab.set_owned(LIP, false);
    assert_eq!(lab.run(&mut st, &synack, 1).0, Verdict::Drop(DropReason::NotOwner));
    assert_eq!(lab.run(&mut st, &arp_request(LIP), 1).0, Verdict::Drop(DropReason::NotOwner));
    assert_eq!(st.counters.fnat_out, 0);
    lab.set_owned(LIP, true);
    let (v, back) = lab.run(&mut st, &synack, 1);
    assert_eq!(v, Verdict::Tx(0), "the session was kept: its reply goes to the client again");
    assert_eq!(&back[0..6], &CLIENT_MAC);
}

#[test]
fn a_backup_does_not_forward_for_existing_sessions() {
    let mut lab = Lab::new();
    let mut st = lab.state();
    let (_, out) = lab.run(&mut st, &syn(3000), 0);
    let synack = reply_to(&out, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(lab.run(&mut st, &synack, 1).0, Verdict::Tx(0));
    // This director becomes backup for the VIP: the client's next segments are not forwarded.
    lab.set_owned(VIP, false);
    let ack = tcp(WAN_MAC, CLIENT_MAC, (CLIENT, 3000), (VIP, 80), TcpFlags::ACK);
    assert_eq!(lab.run(&mut st, &ack, 0).0, Verdict::Drop(DropReason::NotOwner));
    assert_eq!(st.counters.fnat_in, 1, "only the SYN went through");
    assert_eq!(st.sessions.len(), 1, "the session stays until it times out (master again: it resumes)");
    lab.set_owned(VIP, true);
    assert_eq!(lab.run(&mut st, &ack, 0).0, Verdict::Tx(1));
}

#[test]
fn nat_replies_for_a_vip_we_do_not_own_are_dropped() {
    let mut lab = Lab::new();
    let mut st = lab.state();
    let s = tcp(WAN_MAC, CLIENT_MAC, (CLIENT, 4000), (NAT_VIP, 80), TcpFlags::SYN);
    assert_eq!(lab.run(&mut st, &s, 0).0, Verdict::Tx(1));
    let reply = tcp(LAN_MAC, RS_MAC, (RS, 8080), (CLIENT, 4000), TcpFlags::SYN | TcpFlags::ACK);
    lab.set_owned(NAT_VIP, false);
    assert_eq!(lab.run(&mut st, &reply, 1).0, Verdict::Drop(DropReason::NotOwner), "addressed to the client, but the VIP is not ours");
    lab.set_owned(NAT_VIP, true);
    assert_eq!(lab.run(&mut st, &reply, 1).0, Verdict::Tx(0));
}

#[test]
fn a_rebuild_without_ownership_starts_owned_and_compares_by_address_state() {
    let mut lab = Lab::new();
    let before = lab.services.clone();
    assert!(before.same_addresses(&lab.services));
    lab.set_owned(LIP, false);
    assert!(!before.same_addresses(&lab.services), "an ownership flip is a difference");
    let states: Vec<_> = lab.services.addresses().into_iter().map(|(ip, a)| (ip, a.owned)).collect();
    assert_eq!(states, vec![(VIP, true), (NAT_VIP, true), (LIP, false)]);
    let fresh = ServiceTable::rebuild(Some(&lab.services), services(), 9).unwrap();
    assert_eq!(fresh.addr(LIP).map(|a| a.owned), Some(true), "the control side applies ownership to every table it publishes");
}
