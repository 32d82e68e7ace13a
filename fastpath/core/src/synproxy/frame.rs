//! The TCP segments the SYN proxy originates or rewrites whole (SYN-ACK to the client, SYN and
//! ACK to the real server, window update to the client): built from scratch into a frame
//! of exactly their length, with IPv4 and TCP checksums.

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::wire::tcp::{self, TcpOption};
use crate::wire::toa::{ToaRepr, TOA_LEN};
use crate::wire::{ethernet, ipv4, EtherType, EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket};

const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WS: u8 = 3;
const KIND_SACK_PERM: u8 = 4;

/// Most option bytes a built segment carries (MSS 4 + NOP/WS 4 + NOP/NOP/SACK-perm 4 + TOA 8).
const MAX_OPTIONS: usize = 20;

/// TCP options, padded to a multiple of 4 as they are added.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    bytes: [u8; MAX_OPTIONS],
    len: usize,
}

impl Options {
    fn push(&mut self, b: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(self.len..self.len + b.len()) {
            dst.copy_from_slice(b);
            self.len += b.len();
        }
    }

    pub fn mss(mut self, mss: u16) -> Options {
        let [h, l] = mss.to_be_bytes();
        self.push(&[KIND_MSS, 4, h, l]);
        self
    }

    pub fn wscale(mut self, shift: Option<u8>) -> Options {
        if let Some(s) = shift {
            self.push(&[KIND_NOP, KIND_WS, 3, s]);
        }
        self
    }

    pub fn sack_permitted(mut self, on: bool) -> Options {
        if on {
            self.push(&[KIND_NOP, KIND_NOP, KIND_SACK_PERM, 2]);
        }
        self
    }

    pub fn toa(mut self, client: Option<(Ipv4Addr, u16)>) -> Options {
        if let Some((addr, port)) = client {
            let mut b = [0u8; TOA_LEN];
            ToaRepr { port, addr }.emit(&mut b);
            self.push(&b);
        }
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// One segment without payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub src_mac: EthernetAddress,
    pub dst_mac: EthernetAddress,
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub ttl: u8,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: Options,
}

impl Segment {
    /// Its length on the wire, Ethernet header included.
    pub fn len(&self) -> usize {
        ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp::HEADER_LEN + self.options.len
    }

    /// Writes it into `frame`, which must be exactly [`Segment::len`] bytes.
    pub fn write(&self, frame: &mut [u8]) {
        let mut eth = EthernetFrame::new_unchecked(&mut *frame);
        eth.set_dst_addr(self.dst_mac);
        eth.set_src_addr(self.src_mac);
        eth.set_ethertype(EtherType::Ipv4);
        let ip_len = frame.len() - ethernet::HEADER_LEN;
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
        ip.set_version(4);
        ip.set_header_len(ipv4::HEADER_LEN);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_total_len(u16::try_from(ip_len).unwrap_or(u16::MAX));
        ip.set_ident(0);
        ip.clear_flags();
        ip.set_dont_frag(true);
        ip.set_frag_offset(0);
        ip.set_ttl(self.ttl);
        ip.set_protocol(IpProtocol::Tcp);
        ip.set_src_addr(self.src.0);
        ip.set_dst_addr(self.dst.0);
        ip.fill_checksum();
        let mut t = TcpPacket::new_unchecked(ip.payload_mut());
        t.set_src_port(self.src.1);
        t.set_dst_port(self.dst.1);
        t.set_seq_number(self.seq);
        t.set_ack_number(self.ack);
        t.set_header_len(tcp::HEADER_LEN + self.options.len);
        t.set_flags(self.flags);
        t.set_window_len(self.window);
        t.set_urgent_at(0);
        t.options_mut().copy_from_slice(self.options.as_bytes());
        t.fill_checksum(self.src.0, self.dst.0);
    }

    /// Makes `buf` exactly this segment; false (the buffer is then unusable) if it could not
    /// be resized.
    pub fn rebuild<B: PacketBuf>(&self, buf: &mut B) -> bool {
        let (want, have) = (self.len(), buf.data().len());
        let ok = if want > have { buf.append(want - have) } else { buf.trim(have - want) };
        if ok {
            self.write(buf.data_mut());
        }
        ok
    }
}

/// What the SYN proxy reads of a client's TCP options: MSS, window scale, SACK-permitted.
pub(crate) fn syn_options(options: &[u8]) -> (Option<u16>, Option<u8>, bool) {
    let (mut mss, mut ws, mut sack) = (None, None, false);
    for opt in tcp::TcpOptionsIter::new(options) {
        match opt {
            Ok(TcpOption::Mss(m)) => mss = Some(m),
            Ok(TcpOption::WindowScale(w)) => ws = Some(w.min(14)),
            Ok(TcpOption::SackPermitted) => sack = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (mss, ws, sack)
}
