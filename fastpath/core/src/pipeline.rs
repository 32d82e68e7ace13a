//! The per-packet entry point: classify a frame received on a data port and decide its fate.
//!
//! For now the director itself answers ARP and ICMP echo for the addresses it owns; every
//! other frame for this host goes to the kernel through the exception path. The FNAT stages
//! plug in between classification and the kernel fallback.

use crate::buf::PacketBuf;
use crate::iface::Interface;
use crate::verdict::{Counters, DropReason, Verdict};
use crate::wire::{self, ArpOperation, ArpPacket, EtherType, EthernetFrame, IpProtocol, Ipv4Packet};

/// TTL the director puts on packets it originates.
pub const DEFAULT_TTL: u8 = 64;

/// Decides what to do with one frame received on `iface`, rewriting it in place when the
/// director answers it. Never panics, whatever the bytes.
pub fn process<B: PacketBuf>(buf: &mut B, iface: &Interface, counters: &mut Counters) -> Verdict {
    let verdict = classify(buf.data_mut(), iface, counters);
    if let Verdict::ToKernel = verdict {
        if !iface.has_kernel_path {
            return Verdict::Drop(DropReason::NoKernelPath);
        }
    }
    verdict
}

fn classify(frame: &mut [u8], iface: &Interface, counters: &mut Counters) -> Verdict {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) else {
        return Verdict::Drop(DropReason::EthTruncated);
    };
    let dst = eth.dst_addr();
    if dst != iface.mac && dst.is_unicast() {
        return Verdict::Drop(DropReason::OtherHost);
    }
    match eth.ethertype() {
        EtherType::Arp => arp(&mut eth, iface, counters),
        EtherType::Ipv4 if dst == iface.mac => ipv4(&mut eth, iface, counters),
        _ => Verdict::ToKernel,
    }
}

/// Answers ARP requests for our addresses in place; everything else ARP goes to the kernel
/// (it keeps its own neighbour table for the traffic it originates).
fn arp(eth: &mut EthernetFrame<&mut [u8]>, iface: &Interface, counters: &mut Counters) -> Verdict {
    let mut pkt = match ArpPacket::new_checked(eth.payload_mut()) {
        Ok(p) => p,
        Err(wire::Error::Unsupported(_)) => return Verdict::Drop(DropReason::ArpUnsupported),
        Err(_) => return Verdict::Drop(DropReason::ArpMalformed),
    };
    let target = pkt.target_protocol_addr();
    if pkt.operation() != ArpOperation::Request || !iface.owns(target) {
        return Verdict::ToKernel;
    }
    let asker_mac = pkt.source_hardware_addr();
    let asker_ip = pkt.source_protocol_addr();
    pkt.set_operation(ArpOperation::Reply);
    pkt.set_target_hardware_addr(asker_mac);
    pkt.set_target_protocol_addr(asker_ip);
    pkt.set_source_hardware_addr(iface.mac);
    pkt.set_source_protocol_addr(target);
    eth.set_dst_addr(asker_mac);
    eth.set_src_addr(iface.mac);
    counters.arp_replies += 1;
    Verdict::TxSamePort
}

fn ipv4(eth: &mut EthernetFrame<&mut [u8]>, iface: &Interface, counters: &mut Counters) -> Verdict {
    let src_mac = eth.src_addr();
    let mut ip = match Ipv4Packet::new_checked(eth.payload_mut()) {
        Ok(p) => p,
        Err(_) => return Verdict::Drop(DropReason::Ipv4Malformed),
    };
    if !ip.verify_checksum() {
        return Verdict::Drop(DropReason::Ipv4BadChecksum);
    }
    let dst = ip.dst_addr();
    if !iface.owns(dst) || ip.protocol() != IpProtocol::Icmp || ip.is_fragment() {
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
    counters.icmp_echo_replies += 1;
    Verdict::TxSamePort
}
