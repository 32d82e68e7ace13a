//! Frames the generator sends and reads, built with the fast path's wire views.
//!
//! Every data frame carries a *stamp* at the start of its L4 payload: the TSC at transmit,
//! 8 bytes little-endian. One-way latency is `tsc_at_receive - stamp` (one process, one TSC).

use std::net::Ipv4Addr;

use fastpath::wire::checksum::{update16, update32, update_addr};
use fastpath::wire::{
    ethernet, ipv4, tcp, udp, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress,
    EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOption,
    TcpOptionsIter, TcpPacket, TcpRepr, ToaRepr, UdpPacket,
};

/// Bytes of the transmit timestamp at the start of every payload.
pub const STAMP_LEN: usize = 8;
/// Smallest frame the generator builds (Ethernet minimum without FCS).
pub const MIN_FRAME: usize = 60;
/// Largest frame (Ethernet MTU 1500 plus the header).
pub const MAX_FRAME: usize = 1514;
/// TTL of generated packets.
const TTL: u8 = 64;
/// Window advertised in generated TCP segments.
pub const WINDOW: u16 = 64240;
/// MSS announced in SYN and SYN-ACK.
pub const MSS: u16 = 1460;

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// A directed 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

impl Tuple {
    /// The tuple of the reply direction.
    pub fn reversed(self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

/// Length of the L2+L3+L4 headers of a generated data frame (no TCP options).
pub fn header_len(proto: Proto) -> usize {
    ethernet::HEADER_LEN
        + ipv4::HEADER_LEN
        + if proto == Proto::Tcp {
            tcp::HEADER_LEN
        } else {
            udp::HEADER_LEN
        }
}

/// The smallest frame that holds the headers and the stamp.
pub fn min_frame(proto: Proto) -> usize {
    (header_len(proto) + STAMP_LEN).max(MIN_FRAME)
}

/// A prebuilt data frame for one flow set, patched per packet: source address and port,
/// TCP sequence number and stamp, with incremental checksum updates (RFC 1624).
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    proto: Proto,
    base: Tuple,
    ip_csum: u16,
    l4_csum: u16,
    payload_at: usize,
}

mod off {
    use fastpath::wire::{ethernet, ipv4};
    pub const IP: usize = ethernet::HEADER_LEN;
    pub const IP_SRC: usize = IP + 12;
    pub const IP_DST: usize = IP + 16;
    pub const IP_CSUM: usize = IP + 10;
    pub const L4: usize = IP + ipv4::HEADER_LEN;
    pub const SPORT: usize = L4;
    pub const DPORT: usize = L4 + 2;
    pub const TCP_SEQ: usize = L4 + 4;
    pub const TCP_CSUM: usize = L4 + 16;
    pub const UDP_CSUM: usize = L4 + 6;
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl Template {
    /// A `frame_len`-byte frame `macs.0 -> macs.1` for `base`. TCP frames carry `flags`;
    /// UDP frames have no checksum (0, allowed for IPv4) unless `udp_checksum`.
    pub fn new(
        proto: Proto,
        frame_len: usize,
        macs: (EthernetAddress, EthernetAddress),
        base: Tuple,
        flags: TcpFlags,
        udp_checksum: bool,
    ) -> Template {
        let frame_len = frame_len.clamp(min_frame(proto), MAX_FRAME);
        let mut bytes = vec![0u8; frame_len];
        let l4_len = frame_len - off::L4;
        write_l2_l3(
            &mut bytes,
            macs,
            base.src,
            base.dst,
            if proto == Proto::Tcp {
                IpProtocol::Tcp
            } else {
                IpProtocol::Udp
            },
            l4_len,
        );
        let payload_at = header_len(proto);
        match proto {
            Proto::Tcp => {
                let mut t = TcpPacket::new_unchecked(&mut bytes[off::L4..]);
                t.set_src_port(base.sport);
                t.set_dst_port(base.dport);
                t.set_header_len(tcp::HEADER_LEN);
                t.set_flags(flags);
                t.set_window_len(WINDOW);
                t.fill_checksum(base.src, base.dst);
            }
            Proto::Udp => {
                let mut u = UdpPacket::new_unchecked(&mut bytes[off::L4..]);
                u.set_src_port(base.sport);
                u.set_dst_port(base.dport);
                u.set_len(u16::try_from(l4_len).unwrap_or(u16::MAX));
                if udp_checksum {
                    u.fill_checksum(base.src, base.dst);
                } else {
                    u.set_checksum(0);
                }
            }
        }
        let ip_csum = be16(&bytes, off::IP_CSUM);
        let l4_csum = be16(
            &bytes,
            if proto == Proto::Tcp {
                off::TCP_CSUM
            } else {
                off::UDP_CSUM
            },
        );
        Template {
            bytes,
            proto,
            base,
            ip_csum,
            l4_csum,
            payload_at,
        }
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame is empty (never: at least the headers).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Writes the frame for source `src:sport` (destination `dst:dport`), TCP sequence
    /// `seq`, stamp `tsc` into `out` (exactly `len()` bytes).
    pub fn write(&self, out: &mut [u8], t: &Tuple, seq: u32, tsc: u64) {
        out.copy_from_slice(&self.bytes);
        let b = &self.base;
        out[off::IP_SRC..off::IP_SRC + 4].copy_from_slice(&t.src.octets());
        out[off::IP_DST..off::IP_DST + 4].copy_from_slice(&t.dst.octets());
        let ipc = update_addr(update_addr(self.ip_csum, b.src, t.src), b.dst, t.dst);
        out[off::IP_CSUM..off::IP_CSUM + 2].copy_from_slice(&ipc.to_be_bytes());
        out[off::SPORT..off::SPORT + 2].copy_from_slice(&t.sport.to_be_bytes());
        out[off::DPORT..off::DPORT + 2].copy_from_slice(&t.dport.to_be_bytes());
        out[self.payload_at..self.payload_at + STAMP_LEN].copy_from_slice(&tsc.to_le_bytes());
        match self.proto {
            Proto::Tcp => {
                let mut c = update_addr(update_addr(self.l4_csum, b.src, t.src), b.dst, t.dst);
                c = update16(update16(c, b.sport, t.sport), b.dport, t.dport);
                c = update32(c, 0, seq);
                let s = tsc.to_le_bytes();
                // The stamp starts at an even offset of the segment: four aligned words.
                for w in s.as_chunks::<2>().0 {
                    c = update16(c, 0, u16::from_be_bytes(*w));
                }
                out[off::TCP_SEQ..off::TCP_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
                out[off::TCP_CSUM..off::TCP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
            }
            Proto::Udp if self.l4_csum != 0 => {
                let mut c = update_addr(update_addr(self.l4_csum, b.src, t.src), b.dst, t.dst);
                c = update16(update16(c, b.sport, t.sport), b.dport, t.dport);
                for w in tsc.to_le_bytes().as_chunks::<2>().0 {
                    c = update16(c, 0, u16::from_be_bytes(*w));
                }
                out[off::UDP_CSUM..off::UDP_CSUM + 2]
                    .copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            }
            Proto::Udp => {}
        }
    }
}

fn write_l2_l3(
    frame: &mut [u8],
    macs: (EthernetAddress, EthernetAddress),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    l4_len: usize,
) {
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    EthernetRepr {
        src: macs.0,
        dst: macs.1,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut eth);
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: l4_len,
        ttl: TTL,
        ident: 0,
        dont_frag: true,
    };
    repr.emit(&mut Ipv4Packet::new_unchecked(eth.payload_mut()));
}

/// A TCP segment to build in place (connection mode).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub tuple: Tuple,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Payload bytes (the first 8 carry the stamp when there are at least 8).
    pub payload_len: usize,
    /// Announce the MSS option (SYN, SYN-ACK).
    pub mss: bool,
    /// Advertised window ([`WINDOW`] in everything the generator sends).
    pub window: u16,
}

impl Segment {
    /// The frame length this segment needs.
    pub fn frame_len(&self) -> usize {
        (off::L4 + tcp::HEADER_LEN + if self.mss { 4 } else { 0 } + self.payload_len).max(MIN_FRAME)
    }
}

/// Writes `seg` as a complete frame into `frame` (exactly `seg.frame_len()` bytes), with
/// full checksums. Padding up to the Ethernet minimum lies outside the IPv4 packet.
pub fn write_segment(
    frame: &mut [u8],
    macs: (EthernetAddress, EthernetAddress),
    seg: &Segment,
    tsc: u64,
) {
    const MAX_PAYLOAD: usize = MAX_FRAME - 54;
    let mut payload = [0u8; MAX_PAYLOAD];
    let n = seg.payload_len.min(MAX_PAYLOAD);
    if n >= STAMP_LEN {
        payload[..STAMP_LEN].copy_from_slice(&tsc.to_le_bytes());
    }
    let repr = TcpRepr {
        src_port: seg.tuple.sport,
        dst_port: seg.tuple.dport,
        seq_number: seg.seq,
        ack_number: seg.ack,
        flags: seg.flags,
        window_len: seg.window,
        max_seg_size: seg.mss.then_some(MSS),
        window_scale: None,
        sack_permitted: false,
        timestamps: None,
        payload: &payload[..n],
    };
    let l4_len = repr.buffer_len();
    frame.fill(0);
    write_l2_l3(
        frame,
        macs,
        seg.tuple.src,
        seg.tuple.dst,
        IpProtocol::Tcp,
        l4_len,
    );
    let mut t = TcpPacket::new_unchecked(&mut frame[off::L4..off::L4 + l4_len]);
    repr.emit(&mut t, seg.tuple.src, seg.tuple.dst);
}

/// What the generator needs to know about a received IPv4 TCP/UDP frame.
#[derive(Debug, Clone, Copy)]
pub struct Parsed {
    pub proto: Proto,
    pub tuple: Tuple,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub payload_len: usize,
    /// The stamp, if the payload holds one.
    pub stamp: Option<u64>,
    pub src_mac: EthernetAddress,
    pub dst_mac: EthernetAddress,
    /// TCP: the advertised window (unscaled, as on the wire).
    pub window: u16,
    /// TCP: the MSS option, if any.
    pub mss: Option<u16>,
    /// TCP: the client address of a TOA option (kind 254), if any.
    pub toa: Option<Ipv4Addr>,
}

/// The MSS and TOA address among TCP options (malformed options end the search).
fn tcp_options(options: &[u8]) -> (Option<u16>, Option<Ipv4Addr>) {
    let (mut mss, mut toa) = (None, None);
    for o in TcpOptionsIter::new(options) {
        match o {
            Ok(TcpOption::Mss(m)) => mss = Some(m),
            Ok(ref o @ TcpOption::Unknown { .. }) => {
                if let Ok(Some(t)) = ToaRepr::from_tcp_option(o) {
                    toa = Some(t.addr);
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (mss, toa)
}

/// A received frame, classified.
#[derive(Debug, Clone, Copy)]
pub enum Rx {
    Data(Parsed),
    Arp(ArpRepr),
    Other,
}

/// Classifies a received frame; never panics on malformed input.
pub fn parse(frame: &[u8]) -> Rx {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Rx::Other;
    };
    match eth.ethertype() {
        EtherType::Arp => {
            match ArpPacket::new_checked(eth.payload()).and_then(|p| ArpRepr::parse(&p)) {
                Ok(a) => Rx::Arp(a),
                Err(_) => Rx::Other,
            }
        }
        EtherType::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                return Rx::Other;
            };
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            if dst.is_multicast() || dst.is_broadcast() {
                // Nothing the generator plays is a group: e.g. a director's session-sync
                // multicast (224.0.0.81) or IGMP reports leaving its LAN port. Counted as
                // other, never as data (conn accounting and latency see only unicast).
                return Rx::Other;
            }
            let (mut window, mut mss, mut toa) = (0, None, None);
            let (proto, sport, dport, flags, seq, ack, payload) = match ip.protocol() {
                IpProtocol::Tcp => {
                    let Ok(t) = TcpPacket::new_checked(ip.payload()) else {
                        return Rx::Other;
                    };
                    let hl = t.header_len();
                    window = t.window_len();
                    if hl > tcp::HEADER_LEN {
                        (mss, toa) = tcp_options(t.options());
                    }
                    (
                        Proto::Tcp,
                        t.src_port(),
                        t.dst_port(),
                        t.flags(),
                        t.seq_number(),
                        t.ack_number(),
                        &t.into_inner()[hl..],
                    )
                }
                IpProtocol::Udp => {
                    let Ok(u) = UdpPacket::new_checked(ip.payload()) else {
                        return Rx::Other;
                    };
                    let end = usize::from(u.len());
                    (
                        Proto::Udp,
                        u.src_port(),
                        u.dst_port(),
                        TcpFlags::empty(),
                        0,
                        0,
                        &u.into_inner()[udp::HEADER_LEN..end],
                    )
                }
                _ => return Rx::Other,
            };
            let stamp = payload
                .get(..STAMP_LEN)
                .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])));
            Rx::Data(Parsed {
                proto,
                tuple: Tuple {
                    src,
                    dst,
                    sport,
                    dport,
                },
                flags,
                seq,
                ack,
                payload_len: payload.len(),
                stamp,
                src_mac: eth.src_addr(),
                dst_mac: eth.dst_addr(),
                window,
                mss,
                toa,
            })
        }
        _ => Rx::Other,
    }
}

/// The fast path of [`parse`] for the common data frame: `Some(stamp)` when `frame` is a
/// unicast IPv4 (no options) UDP or TCP frame that `parse` classifies as [`Rx::Data`] with
/// that `stamp`; `None` for anything else (ARP, IP options, malformed, multicast…), which
/// the caller then hands to `parse`. Reads a dozen header bytes instead of building the whole
/// [`Parsed`], so a stream's receive side costs little more than its driver.
#[inline]
pub fn data_stamp(frame: &[u8]) -> Option<Option<u64>> {
    let ip = frame.get(off::IP..)?;
    if be16(frame, off::IP - 2) != 0x0800 || ip.len() < ipv4::HEADER_LEN || ip[0] != 0x45 {
        return None;
    }
    let total = usize::from(be16(ip, 2));
    if total < ipv4::HEADER_LEN || total > ip.len() || ip[16] >= 224 {
        // 224/4 is multicast, 240/4 reserved and 255.255.255.255 broadcast: all to `parse`.
        return None;
    }
    let l4 = &ip[ipv4::HEADER_LEN..total];
    let payload = match IpProtocol::from(ip[9]) {
        IpProtocol::Udp => {
            if l4.len() < udp::HEADER_LEN {
                return None;
            }
            let len = usize::from(be16(l4, 4));
            if len < udp::HEADER_LEN || len > l4.len() {
                return None;
            }
            &l4[udp::HEADER_LEN..len]
        }
        IpProtocol::Tcp => {
            let hl = usize::from(*l4.get(12)? >> 4) * 4;
            if l4.len() < tcp::HEADER_LEN || hl < tcp::HEADER_LEN || hl > l4.len() {
                return None;
            }
            &l4[hl..]
        }
        _ => return None,
    };
    Some(payload.get(..STAMP_LEN).map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]))))
}

/// Turns an ARP request in `frame` into the reply from `mac` in place.
pub fn arp_reply_in_place(frame: &mut [u8], req: &ArpRepr, mac: EthernetAddress) {
    let ArpRepr::EthernetIpv4 {
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    } = *req;
    let mut eth = EthernetFrame::new_unchecked(frame);
    EthernetRepr {
        src: mac,
        dst: source_hardware_addr,
        ethertype: EtherType::Arp,
    }
    .emit(&mut eth);
    let reply = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: mac,
        source_protocol_addr: target_protocol_addr,
        target_hardware_addr: source_hardware_addr,
        target_protocol_addr: source_protocol_addr,
    };
    reply.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
}

/// Turns a received IPv4 TCP/UDP frame into its echo in place: MACs, addresses and ports
/// swapped, as a server answering every request would send it back. The IPv4, TCP and UDP
/// checksums stay valid (each sums its fields in any order); a frame too short for the ports is
/// left as it is.
pub fn echo_in_place(frame: &mut [u8]) {
    let Some(&vihl) = frame.get(off::IP) else { return };
    let l4 = off::IP + usize::from(vihl & 0x0f) * 4;
    if frame.len() < l4 + 4 {
        return;
    }
    for i in 0..6 {
        frame.swap(i, 6 + i);
    }
    for i in 0..4 {
        frame.swap(off::IP_SRC + i, off::IP_DST + i);
    }
    for i in 0..2 {
        frame.swap(l4 + i, l4 + 2 + i);
    }
}

/// Writes a broadcast ARP request "who has `target`, tell `src`" (60 bytes).
pub fn arp_request(frame: &mut [u8], mac: EthernetAddress, src: Ipv4Addr, target: Ipv4Addr) {
    frame.fill(0);
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    EthernetRepr {
        src: mac,
        dst: EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
    }
    .emit(&mut eth);
    let req = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: src,
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: target,
    };
    req.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
}

/// Frame surgery for tests (here and in the generator's state machines).
#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// `frame` (an IPv4 TCP frame) with a TOA option for `addr:port` appended to its TCP
    /// options, lengths and checksums fixed, padded to the Ethernet minimum.
    pub(crate) fn with_toa(frame: &[u8], addr: Ipv4Addr, port: u16) -> Vec<u8> {
        let ip = Ipv4Packet::new_checked(&frame[off::IP..]).unwrap();
        let l4 = ip.payload();
        let hl = TcpPacket::new_checked(l4).unwrap().header_len();
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let mut seg = l4[..hl].to_vec();
        seg.extend_from_slice(&ToaRepr { port, addr }.to_bytes());
        seg.extend_from_slice(&l4[hl..]);
        let mut out = frame[..off::L4].to_vec();
        out.extend_from_slice(&seg);
        let ip_len = out.len() - off::IP;
        {
            let mut t = TcpPacket::new_unchecked(&mut out[off::L4..]);
            t.set_header_len(hl + 8);
            t.fill_checksum(src, dst);
        }
        let mut ip = Ipv4Packet::new_unchecked(&mut out[off::IP..]);
        ip.set_total_len(u16::try_from(ip_len).unwrap());
        ip.fill_checksum();
        if out.len() < MIN_FRAME {
            out.resize(MIN_FRAME, 0);
        }
        out
    }
}

#[cfg(test)]
mod tests;
