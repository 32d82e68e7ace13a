//! ICMP for IPv4 (RFC 792): echo, destination unreachable, time exceeded.
//!
//! An [`Icmpv4Packet`] covers exactly one ICMP message (an IPv4 packet's payload): the
//! checksum is computed over the whole buffer.

use core::fmt;

use super::checksum;
use super::ipv4::Ipv4Packet;
use super::{Error, Result};

/// The ICMP message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Message {
    /// Echo reply (0).
    EchoReply,
    /// Destination unreachable (3).
    DstUnreachable,
    /// Redirect (5).
    Redirect,
    /// Echo request (8).
    EchoRequest,
    /// Time exceeded (11).
    TimeExceeded,
    /// Parameter problem (12).
    ParamProblem,
    /// Any other type.
    Unknown(u8),
}

impl Icmpv4Message {
    /// Whether this type is an error message quoting an original datagram (types 3, 4, 5,
    /// 11 and 12).
    pub fn is_error(self) -> bool {
        matches!(u8::from(self), 3 | 4 | 5 | 11 | 12)
    }
}

impl From<u8> for Icmpv4Message {
    fn from(value: u8) -> Self {
        match value {
            0 => Icmpv4Message::EchoReply,
            3 => Icmpv4Message::DstUnreachable,
            5 => Icmpv4Message::Redirect,
            8 => Icmpv4Message::EchoRequest,
            11 => Icmpv4Message::TimeExceeded,
            12 => Icmpv4Message::ParamProblem,
            other => Icmpv4Message::Unknown(other),
        }
    }
}

impl From<Icmpv4Message> for u8 {
    fn from(value: Icmpv4Message) -> Self {
        match value {
            Icmpv4Message::EchoReply => 0,
            Icmpv4Message::DstUnreachable => 3,
            Icmpv4Message::Redirect => 5,
            Icmpv4Message::EchoRequest => 8,
            Icmpv4Message::TimeExceeded => 11,
            Icmpv4Message::ParamProblem => 12,
            Icmpv4Message::Unknown(other) => other,
        }
    }
}

impl fmt::Display for Icmpv4Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Icmpv4Message::EchoReply => f.write_str("echo reply"),
            Icmpv4Message::DstUnreachable => f.write_str("destination unreachable"),
            Icmpv4Message::Redirect => f.write_str("redirect"),
            Icmpv4Message::EchoRequest => f.write_str("echo request"),
            Icmpv4Message::TimeExceeded => f.write_str("time exceeded"),
            Icmpv4Message::ParamProblem => f.write_str("parameter problem"),
            Icmpv4Message::Unknown(v) => write!(f, "type {v}"),
        }
    }
}

/// The code of a destination unreachable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4DstUnreachable {
    /// Network unreachable (0).
    NetUnreachable,
    /// Host unreachable (1).
    HostUnreachable,
    /// Protocol unreachable (2).
    ProtoUnreachable,
    /// Port unreachable (3).
    PortUnreachable,
    /// Fragmentation needed and DF set (4); carries the next-hop MTU (RFC 1191).
    FragNeeded,
    /// Communication administratively prohibited (13).
    AdminProhibited,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for Icmpv4DstUnreachable {
    fn from(value: u8) -> Self {
        match value {
            0 => Icmpv4DstUnreachable::NetUnreachable,
            1 => Icmpv4DstUnreachable::HostUnreachable,
            2 => Icmpv4DstUnreachable::ProtoUnreachable,
            3 => Icmpv4DstUnreachable::PortUnreachable,
            4 => Icmpv4DstUnreachable::FragNeeded,
            13 => Icmpv4DstUnreachable::AdminProhibited,
            other => Icmpv4DstUnreachable::Unknown(other),
        }
    }
}

impl From<Icmpv4DstUnreachable> for u8 {
    fn from(value: Icmpv4DstUnreachable) -> Self {
        match value {
            Icmpv4DstUnreachable::NetUnreachable => 0,
            Icmpv4DstUnreachable::HostUnreachable => 1,
            Icmpv4DstUnreachable::ProtoUnreachable => 2,
            Icmpv4DstUnreachable::PortUnreachable => 3,
            Icmpv4DstUnreachable::FragNeeded => 4,
            Icmpv4DstUnreachable::AdminProhibited => 13,
            Icmpv4DstUnreachable::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// The "rest of header" word: echo ident/seq, or unused/MTU in errors.
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// Length of the ICMP header (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = field::DATA.start;
/// Bytes of the original datagram's payload an error message quotes (RFC 792).
pub const QUOTED_PAYLOAD_LEN: usize = 8;

/// A zero-copy view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer, failing with `Truncated` if it is shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the 8-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let d = &self.buffer.as_ref()[range];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        self.read_u16(field::ECHO_IDENT)
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_seq_no(&self) -> u16 {
        self.read_u16(field::ECHO_SEQNO)
    }

    /// The next-hop MTU of a "fragmentation needed" message (0 from old routers).
    pub fn next_hop_mtu(&self) -> u16 {
        self.read_u16(field::NEXT_HOP_MTU)
    }

    /// The bytes after the 8-byte header: echo data, or the quoted datagram of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }

    /// Checks that this is an error message quoting an IPv4 header and the first 8 bytes
    /// of its payload (fewer if the original was shorter); returns the header length.
    fn check_embedded(&self) -> Result<()> {
        if !self.msg_type().is_error() {
            return Err(Error::Unsupported("ICMP message quotes no datagram"));
        }
        let inner = Ipv4Packet::new_checked_quoted(self.data())?;
        let claimed = usize::from(inner.total_len()) - inner.header_len();
        if inner.payload().len() < claimed.min(QUOTED_PAYLOAD_LEN) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The IPv4 header (and first payload bytes) quoted by an error message. Its total
    /// length is the original's, so its payload is cut short; `Unsupported` for non-error
    /// types, `Truncated`/`Malformed` for a bad quote.
    pub fn embedded_packet(&self) -> Result<Ipv4Packet<&[u8]>> {
        self.check_embedded()?;
        Ok(Ipv4Packet::new_unchecked(self.data()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = u8::from(value);
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Zeroes the rest-of-header word (unused in most error messages).
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[field::REST].fill(0);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        self.write_u16(field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        self.write_u16(field::ECHO_SEQNO, value);
    }

    /// Sets the next-hop MTU of a "fragmentation needed" message.
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        self.write_u16(field::NEXT_HOP_MTU, value);
    }

    /// The data after the header, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// The quoted IPv4 datagram of an error message, mutably (for NAT of ICMP errors);
    /// the same checks as [`embedded_packet`](Icmpv4Packet::embedded_packet).
    pub fn embedded_packet_mut(&mut self) -> Result<Ipv4Packet<&mut [u8]>> {
        self.check_embedded()?;
        Ok(Ipv4Packet::new_unchecked(self.data_mut()))
    }
}

/// The part of `ip_packet` (an IPv4 datagram) that an ICMP error quotes: its header and
/// the first 8 bytes of its payload, or less if the datagram is shorter.
pub fn quote_original(ip_packet: &[u8]) -> &[u8] {
    let header_len = ip_packet.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    &ip_packet[..ip_packet.len().min(header_len + QUOTED_PAYLOAD_LEN)]
}

/// A parsed ICMPv4 message of a supported type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to echo back.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echoed data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// The code.
        reason: Icmpv4DstUnreachable,
        /// Next-hop MTU for `FragNeeded` (emitted as 0 otherwise).
        next_hop_mtu: u16,
        /// The quoted original datagram (see [`quote_original`]).
        data: &'a [u8],
    },
    /// Time exceeded (code 0: TTL, 1: reassembly).
    TimeExceeded {
        /// The code.
        code: u8,
        /// The quoted original datagram (see [`quote_original`]).
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message: verifies the checksum (`BadChecksum`), and for error messages the
    /// quoted IPv4 header; other types are `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Icmpv4Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data: &'a [u8] = &packet.buffer.as_ref()[field::DATA];
        match packet.msg_type() {
            Icmpv4Message::EchoRequest => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Icmpv4Message::EchoReply => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Icmpv4Message::DstUnreachable => {
                packet.check_embedded()?;
                let reason = Icmpv4DstUnreachable::from(packet.msg_code());
                let next_hop_mtu = if reason == Icmpv4DstUnreachable::FragNeeded {
                    packet.next_hop_mtu()
                } else {
                    0
                };
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu,
                    data,
                })
            }
            Icmpv4Message::TimeExceeded => {
                packet.check_embedded()?;
                Ok(Icmpv4Repr::TimeExceeded {
                    code: packet.msg_code(),
                    data,
                })
            }
            _ => Err(Error::Unsupported("ICMP message type")),
        }
    }

    /// The message length this repr emits.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. } => HEADER_LEN + data.len(),
        }
    }

    /// Writes the message with its checksum; the buffer must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes long (the checksum covers all of it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        let data = match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let t = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    Icmpv4Message::EchoRequest
                } else {
                    Icmpv4Message::EchoReply
                };
                packet.set_msg_type(t);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                data
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                data,
            } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(u8::from(reason));
                packet.clear_rest_of_header();
                if reason == Icmpv4DstUnreachable::FragNeeded {
                    packet.set_next_hop_mtu(next_hop_mtu);
                }
                data
            }
            Icmpv4Repr::TimeExceeded { code, data } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(code);
                packet.clear_rest_of_header();
                data
            }
        };
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::{IpProtocol, Ipv4Repr};
    use std::net::Ipv4Addr;

    // A Windows `ping` as captured: IPv4 header, then the ICMP echo request.
    #[rustfmt::skip]
    const PING: [u8; 60] = [
        // IPv4
        0x45, 0x00, 0x00, 0x3c, // version 4, IHL 5, total length 60
        0x1a, 0x2b, 0x00, 0x00, // ident, no flags
        0x80, 0x01, 0x9d, 0x3a, // TTL 128, ICMP, checksum
        0xc0, 0xa8, 0x01, 0x0a, // 192.168.1.10
        0xc0, 0xa8, 0x01, 0x01, // 192.168.1.1
        // ICMP
        0x08, 0x00,             // echo request, code 0
        0x4d, 0x3a,             // checksum
        0x00, 0x01,             // identifier 1
        0x00, 0x21,             // sequence 33
        b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i', b'j', b'k', b'l', b'm', b'n', b'o', b'p',
        b'q', b'r', b's', b't', b'u', b'v', b'w', b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i',
    ];

    const PING_DATA: &[u8] = b"abcdefghijklmnopqrstuvwabcdefghi";

    #[test]
    fn parse_ping() {
        let ip = Ipv4Packet::new_checked(&PING[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&ip).unwrap().protocol, IpProtocol::Icmp);
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(icmp.msg_code(), 0);
        assert_eq!(icmp.checksum(), 0x4d3a);
        assert!(icmp.verify_checksum());
        assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (1, 33));
        assert_eq!(icmp.data(), PING_DATA);
        assert_eq!(
            icmp.embedded_packet(),
            Err(Error::Unsupported("ICMP message quotes no datagram"))
        );
        let repr = Icmpv4Repr::parse(&icmp).unwrap();
        assert_eq!(
            repr,
            Icmpv4Repr::EchoRequest {
                ident: 1,
                seq_no: 33,
                data: PING_DATA
            }
        );
    }

    #[test]
    fn emit_echo_reply() {
        let request = Icmpv4Packet::new_checked(&PING[20..]).unwrap();
        let Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = Icmpv4Repr::parse(&request).unwrap()
        else {
            panic!("not an echo request");
        };
        let reply = Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let mut buf = [0xa5u8; 40];
        reply.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        // Type 8 -> 0 changes the checksum by 0x0800.
        #[rustfmt::skip]
        let header = [
            0x00, 0x00, // echo reply, code 0
            0x55, 0x3a, // checksum
            0x00, 0x01, // identifier
            0x00, 0x21, // sequence
        ];
        assert_eq!(&buf[..8], &header);
        assert_eq!(&buf[8..], PING_DATA);
        let parsed = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(parsed.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&parsed).unwrap(), reply);
        assert_eq!(reply.buffer_len(), 40);
    }

    #[rustfmt::skip]
    const UDP_DATAGRAM: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, // version 4, IHL 5, total length 40
        0x00, 0x07, 0x40, 0x00, // ident 7, DF
        0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum (not checked in quotes)
        0x0a, 0x00, 0x00, 0x05, // 10.0.0.5
        0x0a, 0x00, 0x01, 0x09, // 10.0.1.9
        0xd4, 0x31, 0x00, 0x35, // ports 54321 -> 53
        0x00, 0x14, 0x12, 0x34, // UDP length 20, checksum
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // payload, not quoted
    ];

    #[test]
    fn port_unreachable_round_trip() {
        let quote = quote_original(&UDP_DATAGRAM);
        assert_eq!(quote.len(), 28);
        let repr = Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
            data: quote,
        };
        let mut buf = [0xa5u8; 36];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        #[rustfmt::skip]
        let header = [
            0x03, 0x03, // destination unreachable, port unreachable
            0x00, 0x00, // checksum (checked below)
            0x00, 0x00, 0x00, 0x00, // unused
        ];
        assert_eq!(&buf[..2], &header[..2]);
        assert_eq!(&buf[4..8], &header[4..]);
        assert_eq!(&buf[8..], quote);
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(packet.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&packet).unwrap(), repr);
        let inner = packet.embedded_packet().unwrap();
        assert_eq!(inner.src_addr(), Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(inner.dst_addr(), Ipv4Addr::new(10, 0, 1, 9));
        assert_eq!(inner.protocol(), IpProtocol::Udp);
        assert_eq!(inner.total_len(), 40);
        assert_eq!(inner.payload(), &UDP_DATAGRAM[20..28]);
    }

    #[test]
    fn frag_needed_and_time_exceeded() {
        let quote = quote_original(&UDP_DATAGRAM);
        let repr = Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::FragNeeded,
            next_hop_mtu: 1400,
            data: quote,
        };
        let mut buf = [0xa5u8; 36];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(&buf[4..8], &[0x00, 0x00, 0x05, 0x78]);
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert_eq!(Icmpv4Repr::parse(&packet).unwrap(), repr);

        let repr = Icmpv4Repr::TimeExceeded {
            code: 0,
            data: quote,
        };
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..2], &[11, 0]);
        assert_eq!(&buf[4..8], &[0; 4]);
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap(),
            repr
        );
    }

    #[test]
    fn embedded_nat_rewrite() {
        let quote = quote_original(&UDP_DATAGRAM);
        let repr = Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::HostUnreachable,
            next_hop_mtu: 0,
            data: quote,
        };
        let mut buf = [0u8; 36];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        let mut packet = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        let mut inner = packet.embedded_packet_mut().unwrap();
        let old = inner.src_addr();
        let new = Ipv4Addr::new(203, 0, 113, 80);
        inner.set_src_addr(new);
        let c = checksum::update_addr(packet.checksum(), old, new);
        packet.set_checksum(c);
        assert!(packet.verify_checksum());
        assert_eq!(packet.embedded_packet().unwrap().src_addr(), new);
    }

    #[test]
    fn short_original_quote() {
        // The original carried only 4 payload bytes: a quote of 24 bytes is complete.
        let mut original = [0u8; 24];
        original.copy_from_slice(&UDP_DATAGRAM[..24]);
        original[3] = 24;
        let repr = Icmpv4Repr::TimeExceeded {
            code: 0,
            data: quote_original(&original),
        };
        let mut buf = [0u8; 32];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.embedded_packet().unwrap().payload().len(), 4);
        // But a quote missing bytes the original had is truncated.
        let mut buf = [0u8; 32];
        let repr = Icmpv4Repr::TimeExceeded {
            code: 0,
            data: &UDP_DATAGRAM[..24],
        };
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.embedded_packet(), Err(Error::Truncated));
        assert_eq!(Icmpv4Repr::parse(&packet), Err(Error::Truncated));
    }

    #[test]
    fn rejects_bad_input() {
        let mut buf = [0u8; 40];
        buf.copy_from_slice(&PING[20..]);
        buf[9] ^= 1;
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&packet), Err(Error::BadChecksum));
        // An unsupported type with a valid checksum.
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv4Message::Unknown(13));
        p.fill_checksum();
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet),
            Err(Error::Unsupported("ICMP message type"))
        );
        assert_eq!(u8::from(Icmpv4Message::from(4)), 4);
        assert!(Icmpv4Message::Unknown(4).is_error());
        assert!(!Icmpv4Message::EchoReply.is_error());
    }

    #[test]
    fn truncated() {
        let icmp = &PING[20..];
        for len in 0..HEADER_LEN {
            assert_eq!(
                Icmpv4Packet::new_checked(&icmp[..len]),
                Err(Error::Truncated)
            );
            assert_eq!(
                Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&icmp[..len])),
                Err(Error::Truncated)
            );
        }
        // Error messages cut anywhere inside the quote: an error, never a panic.
        let mut full = [0u8; 36];
        let repr = Icmpv4Repr::TimeExceeded {
            code: 0,
            data: quote_original(&UDP_DATAGRAM),
        };
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut full[..]));
        for len in 0..full.len() {
            let mut cut = full[..len].to_vec();
            if let Ok(mut p) = Icmpv4Packet::new_checked(&mut cut[..]) {
                p.fill_checksum();
                assert!(p.embedded_packet().is_err(), "len {len}");
                assert!(Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&cut[..])).is_err());
            }
        }
        assert_eq!(quote_original(&[]), &[] as &[u8]);
        assert_eq!(quote_original(&[0x45, 0]), &[0x45, 0]);
    }

    #[test]
    fn never_panics_on_noise() {
        let mut rng = crate::wire::test_util::XorShift(11);
        for _ in 0..20_000 {
            let len = rng.below(60);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
            if len > 12 {
                buf[0] = [0, 3, 5, 8, 11, 12][rng.below(6)];
                buf[8] = 0x45;
            }
            if let Ok(mut p) = Icmpv4Packet::new_checked(&mut buf[..]) {
                p.fill_checksum();
                let _ = p
                    .embedded_packet()
                    .map(|e| (e.payload().len(), e.options().len()));
                let _ = Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..]));
            }
        }
    }
}
