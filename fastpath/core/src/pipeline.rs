//! The per-packet entry point: classify a frame received on a data port and decide its fate.
//!
//! Order: Ethernet checks, ARP (answer for our addresses, learn neighbours, drop requests for
//! addresses another director owns, rest to the kernel), then IPv4: drop what is addressed to
//! a VIP or local address we do not own (the lookup that classifies it says so), return traffic to a local address, client traffic to a virtual service,
//! ICMP errors quoting a session, ICMP echo to our addresses, and finally the kernel.

use crate::buf::PacketBuf;
use crate::forward;
use crate::iface::Interface;
use crate::service::AddrState;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{self, ArpOperation, ArpPacket, EtherType, EthernetFrame, IpProtocol, Ipv4Packet};
use crate::worker::{Ctx, WorkerState, MAX_LEARNED};

/// TTL the director puts on packets it originates.
pub use crate::worker::DEFAULT_TTL;

/// Decides what to do with one frame received on port `in_port`, rewriting it in place when
/// the director answers or forwards it. Never panics, whatever the bytes.
pub fn process<B: PacketBuf>(buf: &mut B, in_port: u8, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let Some(iface) = ctx.ports.get(usize::from(in_port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let verdict = classify(buf, in_port, iface, ctx, st);
    if verdict == Verdict::ToKernel && !iface.has_kernel_path {
        return Verdict::Drop(DropReason::NoKernelPath);
    }
    verdict
}

fn classify<B: PacketBuf>(buf: &mut B, in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let (dst, ethertype) = match EthernetFrame::new_checked(buf.data()) {
        Ok(eth) => (eth.dst_addr(), eth.ethertype()),
        Err(_) => return Verdict::Drop(DropReason::EthTruncated),
    };
    if dst != iface.mac && dst.is_unicast() {
        return Verdict::Drop(DropReason::OtherHost);
    }
    match ethertype {
        EtherType::Arp => arp(buf.data_mut(), in_port, iface, ctx, st),
        EtherType::Ipv4 if dst == iface.mac => ipv4(buf, in_port, iface, ctx, st),
        _ => Verdict::ToKernel,
    }
}

/// Answers ARP requests for our addresses in place and learns neighbours from every ARP
/// packet; everything else ARP goes to the kernel (it keeps its own neighbour table).
fn arp(frame: &mut [u8], in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let mut eth = EthernetFrame::new_unchecked(frame);
    let mut pkt = match ArpPacket::new_checked(eth.payload_mut()) {
        Ok(p) => p,
        Err(wire::Error::Unsupported(_)) => return Verdict::Drop(DropReason::ArpUnsupported),
        Err(_) => return Verdict::Drop(DropReason::ArpMalformed),
    };
    let (sender_ip, sender_mac) = (pkt.source_protocol_addr(), pkt.source_hardware_addr());
    if iface.on_link(sender_ip) && sender_mac.is_unicast() && ctx.neigh.get(sender_ip) != Some(sender_mac) && st.learned.len() < MAX_LEARNED {
        st.learned.push((sender_ip, sender_mac));
    }
    let target = pkt.target_protocol_addr();
    if pkt.operation() != ArpOperation::Request {
        return Verdict::ToKernel;
    }
    // A VIP or local address held by the other director: neither we nor the kernel answer.
    if ctx.services.addr(target).is_some_and(|a| !a.owned) {
        return Verdict::Drop(DropReason::NotOwner);
    }
    if !iface.owns(target) {
        return Verdict::ToKernel;
    }
    pkt.set_operation(ArpOperation::Reply);
    pkt.set_target_hardware_addr(sender_mac);
    pkt.set_target_protocol_addr(sender_ip);
    pkt.set_source_hardware_addr(iface.mac);
    pkt.set_source_protocol_addr(target);
    eth.set_dst_addr(sender_mac);
    eth.set_src_addr(iface.mac);
    st.counters.arp_replies += 1;
    Verdict::Tx(in_port)
}

fn ipv4<B: PacketBuf>(buf: &mut B, in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let l2 = wire::ethernet::HEADER_LEN;
    let (dst, proto, fragment) = {
        let ip = match Ipv4Packet::new_checked(&buf.data()[l2..]) {
            Ok(p) => p,
            Err(_) => return Verdict::Drop(DropReason::Ipv4Malformed),
        };
        if !ip.verify_checksum() {
            return Verdict::Drop(DropReason::Ipv4BadChecksum);
        }
        (ip.dst_addr(), ip.protocol(), ip.is_fragment())
    };
    // One lookup classifies the destination and says whether we own it now (VRRP).
    match (proto, ctx.services.addr(dst)) {
        (IpProtocol::Tcp | IpProtocol::Udp, Some(AddrState { kind, owned: true })) => {
            if fragment {
                return Verdict::Drop(DropReason::Fragment);
            }
            forward::forward(buf, in_port, kind, ctx, st)
        }
        (_, Some(AddrState { owned: false, .. })) => Verdict::Drop(DropReason::NotOwner),
        // NAT replies: from a real server to a client, routed through us.
        (IpProtocol::Tcp | IpProtocol::Udp, None) if ctx.services.has_nat() && !fragment && !iface.owns(dst) => match forward::nat_reply(buf, ctx, st) {
            Some(v) => v,
            None => Verdict::ToKernel,
        },
        (IpProtocol::Icmp, _) if !fragment => icmp(buf.data_mut(), in_port, iface, ctx, st),
        _ => Verdict::ToKernel,
    }
}

fn icmp(frame: &mut [u8], in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    if let Some(v) = forward::relay_icmp_error(frame, ctx, st) {
        return v;
    }
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    let src_mac = eth.src_addr();
    let mut ip = Ipv4Packet::new_unchecked(&mut eth.payload_mut()[..]);
    let dst = ip.dst_addr();
    if !iface.owns(dst) && !ctx.services.is_vip(dst) {
        return Verdict::ToKernel;
    }
    match crate::icmp::echo_reply_in_place(&mut ip) {
        Ok(true) => {}
        Ok(false) => return Verdict::ToKernel,
        Err(reason) => return Verdict::Drop(reason),
    }
    let src = ip.src_addr();
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(DEFAULT_TTL);
    ip.fill_checksum();
    eth.set_dst_addr(src_mac);
    eth.set_src_addr(iface.mac);
    st.counters.icmp_echo_replies += 1;
    Verdict::Tx(in_port)
}
