//! Header rewriting for full NAT: addresses and ports with incremental checksums (RFC 1624),
//! TOA insertion, MSS lowering, and translation of ICMP errors that quote a session's packet.

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::flow::L4Proto;
use crate::verdict::DropReason;
use crate::wire::checksum::{apply_delta, delta16, delta32, sum, update16, update_addr};
use crate::wire::toa::{ToaRepr, TOA_LEN};
use crate::wire::{ethernet, tcp, Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

/// Why TOA was not inserted (the packet is still forwarded, and the skip counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToaSkip {
    /// TCP options already use more than 32 of their 40 bytes.
    OptionSpace,
    /// The packet would exceed the egress MTU.
    Mtu,
    /// The buffer has no headroom to grow into.
    Headroom,
}

/// An address and port.
pub type Endpoint = (Ipv4Addr, u16);

/// Rewrites source and destination of the TCP/UDP packet `ip` (a validated IPv4 packet whose
/// transport header is complete), updating the IPv4 and transport checksums incrementally.
pub fn rewrite(ip: &mut [u8], proto: L4Proto, src: Endpoint, dst: Endpoint) {
    let mut pkt = Ipv4Packet::new_unchecked(&mut *ip);
    // The addresses' RFC 1624 terms serve both checksums (the pseudo header covers them);
    // each checksum takes all of its changes in one fold.
    let addrs = delta32(u32::from(pkt.src_addr()), u32::from(src.0)) + delta32(u32::from(pkt.dst_addr()), u32::from(dst.0));
    let c = apply_delta(pkt.checksum(), addrs);
    pkt.set_src_addr(src.0);
    pkt.set_dst_addr(dst.0);
    pkt.set_checksum(c);
    let l4 = pkt.payload_mut();
    match proto {
        L4Proto::Tcp => {
            let mut t = TcpPacket::new_unchecked(l4);
            let d = addrs + delta16(t.src_port(), src.1) + delta16(t.dst_port(), dst.1);
            let c = apply_delta(t.checksum(), d);
            t.set_src_port(src.1);
            t.set_dst_port(dst.1);
            t.set_checksum(c);
        }
        L4Proto::Udp => {
            let mut u = UdpPacket::new_unchecked(l4);
            let d = addrs + delta16(u.src_port(), src.1) + delta16(u.dst_port(), dst.1);
            u.update_checksum(|c| apply_delta(c, d));
            u.set_src_port(src.1);
            u.set_dst_port(dst.1);
        }
    }
}

/// Inserts the TOA option carrying `client` at the end of the TCP header of the frame in
/// `buf` (Ethernet + IPv4 + TCP), growing the frame by 8 bytes at the front. Fails, changing
/// nothing, when the option space (40 bytes), the MTU or the headroom has no room.
pub fn insert_toa<B: PacketBuf>(buf: &mut B, client: Endpoint, mtu: u16) -> Result<(), ToaSkip> {
    let l2 = ethernet::HEADER_LEN;
    let (ihl, tcp_hl, total) = {
        let ip = Ipv4Packet::new_unchecked(&buf.data()[l2..]);
        let t = TcpPacket::new_unchecked(ip.payload());
        (ip.header_len(), t.header_len(), ip.total_len())
    };
    if tcp_hl + TOA_LEN > tcp::MAX_HEADER_LEN {
        return Err(ToaSkip::OptionSpace);
    }
    if usize::from(total) + TOA_LEN > usize::from(mtu) {
        return Err(ToaSkip::Mtu);
    }
    let headers = l2 + ihl + tcp_hl;
    if !buf.prepend(TOA_LEN) {
        return Err(ToaSkip::Headroom);
    }
    let data = buf.data_mut();
    data.copy_within(TOA_LEN..TOA_LEN + headers, 0);
    let toa = ToaRepr { port: client.1, addr: client.0 }.to_bytes();
    data[headers..headers + TOA_LEN].copy_from_slice(&toa);
    // The TCP word holding the data offset (and the flags), before it changes.
    let off_at = l2 + ihl + 12;
    let old_word = u16::from_be_bytes([data[off_at], data[off_at + 1]]);
    let mut ip = Ipv4Packet::new_unchecked(&mut data[l2..]);
    let grown = total + 8; // TOA_LEN
    ip.set_total_len(grown);
    ip.set_checksum(apply_delta(ip.checksum(), delta16(total, grown)));
    let end = usize::from(total) + TOA_LEN;
    let mut t = TcpPacket::new_unchecked(&mut ip.payload_mut()[..end - ihl]);
    // Incrementally (RFC 1624), not over the whole segment: the pseudo header's length and
    // the data-offset word change, and the option's words are added; the payload moved by 8
    // bytes, an even number, so its words sum as before.
    t.set_header_len(tcp_hl + TOA_LEN);
    // What `set_header_len` wrote: the new offset, reserved bits and NS cleared, flags kept.
    let new_word = (old_word & 0x00ff) | (u16::try_from((tcp_hl + TOA_LEN) / 4).unwrap_or(15) << 12);
    let tcp_len = |ip_total: u16| ip_total - u16::try_from(ihl).unwrap_or(0);
    let d = delta16(tcp_len(total), tcp_len(grown)) + delta16(old_word, new_word) + sum(&toa);
    t.set_checksum(apply_delta(t.checksum(), d));
    Ok(())
}

/// Lowers the MSS option of a TCP segment (`ip`: IPv4 packet) by `by` bytes, so segments
/// that later carry an inserted option still fit. No MSS option: nothing to do.
pub fn lower_mss(ip: &mut [u8], by: u16) {
    let mut pkt = Ipv4Packet::new_unchecked(&mut *ip);
    let mut t = TcpPacket::new_unchecked(pkt.payload_mut());
    if let Ok(Some(mss)) = t.mss() {
        let _ = t.set_mss(mss.saturating_sub(by).max(536));
    }
}

/// The session tuple an ICMP error quotes: (protocol, quoted source, quoted destination).
pub fn quoted_tuple(icmp_payload: &[u8]) -> Option<(L4Proto, Endpoint, Endpoint)> {
    let icmp = Icmpv4Packet::new_checked(icmp_payload).ok()?;
    if !icmp.msg_type().is_error() {
        return None;
    }
    let inner = icmp.embedded_packet().ok()?;
    let proto = match inner.protocol() {
        IpProtocol::Tcp => L4Proto::Tcp,
        IpProtocol::Udp => L4Proto::Udp,
        _ => return None,
    };
    let l4 = inner.payload();
    if l4.len() < 4 {
        return None;
    }
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    Some((proto, (inner.src_addr(), sport), (inner.dst_addr(), dport)))
}

/// Translates an ICMP error in `ip` (IPv4 packet): the outer header becomes
/// `outer_src -> outer_dst`, the quoted packet `inner_src -> inner_dst`. Checksums of the
/// quoted header, the quoted transport header (when quoted far enough) and the ICMP message
/// are fixed. Errors are rare, so the ICMP checksum is recomputed in full.
pub fn translate_icmp_error(ip: &mut [u8], outer_src: Ipv4Addr, outer_dst: Ipv4Addr, inner_src: Endpoint, inner_dst: Endpoint) -> Result<(), DropReason> {
    let mut pkt = Ipv4Packet::new_unchecked(&mut *ip);
    {
        let mut icmp = Icmpv4Packet::new_checked(pkt.payload_mut()).map_err(|_| DropReason::IcmpMalformed)?;
        let mut inner = icmp.embedded_packet_mut().map_err(|_| DropReason::IcmpMalformed)?;
        let (old_src, old_dst) = (inner.src_addr(), inner.dst_addr());
        let proto = inner.protocol();
        inner.set_src_addr(inner_src.0);
        inner.set_dst_addr(inner_dst.0);
        inner.fill_checksum();
        let l4 = inner.payload_mut();
        let (old_sp, old_dp) = (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]));
        l4[0..2].copy_from_slice(&inner_src.1.to_be_bytes());
        l4[2..4].copy_from_slice(&inner_dst.1.to_be_bytes());
        let csum_at = match proto {
            IpProtocol::Tcp => Some(tcp::CHECKSUM_OFFSET),
            IpProtocol::Udp => Some(6),
            _ => None,
        };
        if let Some(at) = csum_at.filter(|at| l4.len() >= at + 2) {
            let old = u16::from_be_bytes([l4[at], l4[at + 1]]);
            if !(proto == IpProtocol::Udp && old == 0) {
                let c = update_addr(update_addr(old, old_src, inner_src.0), old_dst, inner_dst.0);
                let c = update16(update16(c, old_sp, inner_src.1), old_dp, inner_dst.1);
                l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
        icmp.fill_checksum();
    }
    pkt.set_src_addr(outer_src);
    pkt.set_dst_addr(outer_dst);
    pkt.fill_checksum();
    Ok(())
}

/// Turns the TCP segment in `buf` (Ethernet + IPv4 + TCP, as received) into the RST that
/// refuses it, addressed back to its sender (RFC 793 reset generation). False, changing
/// nothing, if the buffer cannot be shortened.
pub fn rst_reply<B: PacketBuf>(buf: &mut B) -> bool {
    let l2 = ethernet::HEADER_LEN;
    let (ihl, seq, ack, had_ack, seg_len) = {
        let ip = Ipv4Packet::new_unchecked(&buf.data()[l2..]);
        let t = TcpPacket::new_unchecked(ip.payload());
        let f = t.flags();
        let syn_fin = usize::from(f.contains(crate::wire::TcpFlags::SYN)) + usize::from(f.contains(crate::wire::TcpFlags::FIN));
        (ip.header_len(), t.seq_number(), t.ack_number(), f.contains(crate::wire::TcpFlags::ACK), t.payload().len() + syn_fin)
    };
    let new_len = l2 + ihl + tcp::HEADER_LEN;
    let cur = buf.data().len();
    if cur < new_len || !buf.trim(cur - new_len) {
        return false;
    }
    let data = buf.data_mut();
    let mut eth = crate::wire::EthernetFrame::new_unchecked(&mut *data);
    let (src_mac, dst_mac) = (eth.src_addr(), eth.dst_addr());
    eth.set_src_addr(dst_mac);
    eth.set_dst_addr(src_mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut data[l2..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_total_len(u16::try_from(ihl + tcp::HEADER_LEN).unwrap_or(40));
    ip.set_ttl(64);
    ip.fill_checksum();
    let mut t = TcpPacket::new_unchecked(ip.payload_mut());
    let (sport, dport) = (t.src_port(), t.dst_port());
    t.set_src_port(dport);
    t.set_dst_port(sport);
    let flags = crate::wire::TcpFlags::RST | crate::wire::TcpFlags::ACK;
    t.set_seq_number(if had_ack { ack } else { 0 });
    t.set_ack_number(seq.wrapping_add(u32::try_from(seg_len).unwrap_or(0)));
    t.set_header_len(tcp::HEADER_LEN);
    t.set_flags(flags);
    t.set_window_len(0);
    t.set_urgent_at(0);
    t.fill_checksum(dst, src);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::XorShift;

    /// An IPv4 packet (no options) carrying a TCP or UDP header and `payload` random bytes,
    /// every checksum filled in (UDP's left at 0, "none", when `udp_zero`).
    fn packet(rng: &mut XorShift, proto: L4Proto, payload: usize, udp_zero: bool) -> Vec<u8> {
        let l4_len = if proto == L4Proto::Tcp { 20 } else { 8 } + payload;
        let mut p: Vec<u8> = (0..20 + l4_len).map(|_| rng.next_u8()).collect();
        p[0] = 0x45;
        let total = u16::try_from(p.len()).unwrap();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6] = 0x40;
        p[7] = 0;
        p[9] = if proto == L4Proto::Tcp { 6 } else { 17 };
        let (src, dst) = (Ipv4Addr::new(p[12], p[13], p[14], p[15]), Ipv4Addr::new(p[16], p[17], p[18], p[19]));
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.fill_checksum();
        match proto {
            L4Proto::Tcp => {
                let mut t = TcpPacket::new_unchecked(ip.payload_mut());
                t.set_header_len(20);
                t.fill_checksum(src, dst);
            }
            L4Proto::Udp => {
                let mut u = UdpPacket::new_unchecked(ip.payload_mut());
                u.set_len(u16::try_from(l4_len).unwrap());
                if udp_zero {
                    u.set_checksum(0);
                } else {
                    u.fill_checksum(src, dst);
                }
            }
        }
        p
    }

    #[test]
    fn toa_insertion_keeps_both_checksums_what_a_full_recomputation_gives() {
        let mut rng = XorShift(0x70a0_70a0_1234_9876);
        for round in 0..4_000 {
            let mut p = packet(&mut rng, L4Proto::Tcp, round % 41, false);
            // Options (their bytes are random: only the lengths matter here) and the NS and
            // reserved bits set in some rounds.
            let opt = 4 * (round % 6);
            let (src, dst) = (Ipv4Addr::new(p[12], p[13], p[14], p[15]), Ipv4Addr::new(p[16], p[17], p[18], p[19]));
            p.splice(40..40, (0..opt).map(|_| rng.next_u8()));
            let total = u16::try_from(p.len()).unwrap();
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p[32] = (u8::try_from((20 + opt) / 4).unwrap() << 4) | if round % 3 == 0 { 0x0f } else { 0 };
            let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
            ip.fill_checksum();
            TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(src, dst);
            // TOA grows the frame at the front, into the buffer's headroom.
            let mut f = crate::buf::TestBuf::new(&[vec![0; 14], p.clone()].concat());
            let client = (Ipv4Addr::new(198, 51, 100, u8::try_from(round % 200).unwrap()), u16::try_from(round).unwrap());
            assert_eq!(insert_toa(&mut f, client, 1500), Ok(()), "round {round}");
            let ip = Ipv4Packet::new_checked(&f.data()[14..]).unwrap();
            assert_eq!(usize::from(ip.total_len()), p.len() + TOA_LEN);
            assert!(ip.verify_checksum(), "round {round}: IPv4 checksum");
            let t = TcpPacket::new_checked(ip.payload()).unwrap();
            assert_eq!(t.header_len(), 20 + opt + TOA_LEN);
            assert!(t.verify_checksum(src, dst), "round {round}: TCP checksum");
            assert_eq!(t.payload(), &p[40 + opt..], "round {round}: payload kept");
        }
    }

    #[test]
    fn rewriting_keeps_every_checksum_what_a_full_recomputation_gives() {
        let mut rng = XorShift(0x0bad_cafe_1234_5678);
        for round in 0..4_000 {
            let proto = if round % 2 == 0 { L4Proto::Tcp } else { L4Proto::Udp };
            let udp_zero = round % 10 == 1;
            let mut p = packet(&mut rng, proto, round % 37, udp_zero);
            let r = |rng: &mut XorShift| (Ipv4Addr::from(u32::try_from(rng.next_u64() >> 32).unwrap()), u16::try_from(rng.next_u64() >> 48).unwrap());
            let (src, dst) = (r(&mut rng), r(&mut rng));
            rewrite(&mut p, proto, src, dst);
            let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
            assert!(ip.verify_checksum(), "round {round}: IPv4 checksum");
            assert_eq!((ip.src_addr(), ip.dst_addr()), (src.0, dst.0));
            match proto {
                L4Proto::Tcp => {
                    let t = TcpPacket::new_checked(ip.payload()).unwrap();
                    assert!(t.verify_checksum(src.0, dst.0), "round {round}: TCP checksum");
                    assert_eq!((t.src_port(), t.dst_port()), (src.1, dst.1));
                }
                L4Proto::Udp => {
                    let u = UdpPacket::new_checked(ip.payload()).unwrap();
                    if udp_zero {
                        assert_eq!(u.checksum(), 0, "round {round}: no checksum stays none");
                    } else {
                        assert_ne!(u.checksum(), 0, "round {round}: a checksum never becomes none");
                        assert!(u.verify_checksum(src.0, dst.0), "round {round}: UDP checksum");
                    }
                    assert_eq!((u.src_port(), u.dst_port()), (src.1, dst.1));
                }
            }
        }
    }
}
