//! IPv4 headers (RFC 791).

use core::fmt;
use std::net::Ipv4Addr;

use super::checksum;
use super::{Error, Result};

/// The IPv4 protocol field (the next header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// ICMP (1).
    Icmp,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// VRRP (112).
    Vrrp,
    /// Any other protocol number.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> Self {
        match value {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            112 => IpProtocol::Vrrp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> Self {
        match value {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Vrrp => 112,
            IpProtocol::Unknown(other) => other,
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Vrrp => f.write_str("VRRP"),
            IpProtocol::Unknown(v) => write!(f, "protocol {v}"),
        }
    }
}

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Byte offset of the checksum field, for incremental updates by NAT code.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Wraps the IPv4 header quoted in an ICMP error: like [`new_checked`](Self::new_checked)
    /// but the total length may exceed the buffer, whose payload is cut short.
    pub fn new_checked_quoted(buffer: T) -> Result<Ipv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_header()?;
        Ok(packet)
    }

    fn check_header(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed("IPv4 version is not 4"));
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed("IPv4 header length below 20"));
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        if usize::from(self.total_len()) < header_len {
            return Err(Error::Malformed("IPv4 total length below header length"));
        }
        Ok(())
    }

    /// Checks version, header length and total length against each other and the buffer.
    /// The buffer may be longer than the total length (Ethernet padding).
    pub fn check_len(&self) -> Result<()> {
        self.check_header()?;
        if usize::from(self.total_len()) > self.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let d = &self.buffer.as_ref()[range];
        u16::from_be_bytes([d[0], d[1]])
    }

    fn read_addr(&self, range: core::ops::Range<usize>) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[range];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// The version field (4 for a valid packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL * 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Differentiated Services Code Point.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The Explicit Congestion Notification bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The total length (header and payload) in bytes.
    pub fn total_len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        self.read_u16(field::IDENT)
    }

    /// Whether the Don't Fragment flag is set.
    pub fn dont_frag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_DF != 0
    }

    /// Whether the More Fragments flag is set.
    pub fn more_frags(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field times 8).
    pub fn frag_offset(&self) -> u16 {
        (self.read_u16(field::FLG_OFF) & FRAG_OFFSET_MASK) << 3
    }

    /// Whether this packet is a fragment (More Fragments set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.read_u16(field::FLG_OFF) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// The time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        self.read_addr(field::SRC_ADDR)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.read_addr(field::DST_ADDR)
    }

    /// The whole header, options included.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The options (the header after its first 20 bytes).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload, bounded by the total length (not the buffer, which may hold Ethernet
    /// padding); for a quoted header, bounded by the buffer as well.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(data.len());
        &data[self.header_len()..end]
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the version field.
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, value: usize) {
        debug_assert!(value & 3 == 0 && (HEADER_LEN..=60).contains(&value));
        let ihl = u8::try_from(value / 4).unwrap_or(0x0f) & 0x0f;
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ihl;
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (value << 2);
    }

    /// Sets the ECN bits (2 bits).
    pub fn set_ecn(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (value & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        self.write_u16(field::LENGTH, value);
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, value: u16) {
        self.write_u16(field::IDENT, value);
    }

    /// Clears the flags and the fragment offset.
    pub fn clear_flags(&mut self) {
        self.write_u16(field::FLG_OFF, 0);
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, value: bool) {
        let raw = self.read_u16(field::FLG_OFF);
        self.write_u16(
            field::FLG_OFF,
            if value { raw | FLAG_DF } else { raw & !FLAG_DF },
        );
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, value: bool) {
        let raw = self.read_u16(field::FLG_OFF);
        self.write_u16(
            field::FLG_OFF,
            if value { raw | FLAG_MF } else { raw & !FLAG_MF },
        );
    }

    /// Sets the fragment offset in bytes (a multiple of 8).
    pub fn set_frag_offset(&mut self, value: u16) {
        let raw = self.read_u16(field::FLG_OFF);
        self.write_u16(
            field::FLG_OFF,
            (raw & !FRAG_OFFSET_MASK) | ((value >> 3) & FRAG_OFFSET_MASK),
        );
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Sets the source address (the checksum is not updated).
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address (the checksum is not updated).
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// The options, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload (bounded as in [`payload`](Ipv4Packet::payload)), mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len()).min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[start..end]
    }
}

/// The fields of an IPv4 header without options or fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Payload length in bytes (at most 65515).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Parses a packet: checks lengths, verifies the checksum (`BadChecksum`) and rejects
    /// fragments (`Unsupported`). Options are skipped; DSCP/ECN are not kept.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        if packet.is_fragment() {
            return Err(Error::Unsupported("IPv4 fragment"));
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// The header length this repr emits (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with its checksum; the payload is left alone.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        debug_assert!(self.payload_len <= usize::from(u16::MAX) - HEADER_LEN);
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp(0);
        packet.set_ecn(0);
        packet.set_total_len(u16::try_from(HEADER_LEN + self.payload_len).unwrap_or(u16::MAX));
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_dont_frag(self.dont_frag);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A UDP datagram to a DNS server, with 2 bytes of trailing padding in the buffer.
    #[rustfmt::skip]
    const PACKET: [u8; 30] = [
        0x45,                   // version 4, IHL 5
        0x00,                   // DSCP 0, ECN 0
        0x00, 0x1c,             // total length 28
        0xab, 0xcd,             // ident
        0x40, 0x00,             // DF, offset 0
        0x40,                   // TTL 64
        0x11,                   // protocol UDP
        0x00, 0x00,             // checksum (filled by `packet()`)
        0x0a, 0x00, 0x00, 0x02, // source 10.0.0.2
        0x08, 0x08, 0x08, 0x08, // destination 8.8.8.8
        0x30, 0x39, 0x00, 0x35, // payload: UDP ports 12345 -> 53
        0x00, 0x08, 0x00, 0x00, // UDP length 8, no checksum
        0x00, 0x00,             // padding
    ];

    fn packet() -> [u8; 30] {
        let mut p = PACKET;
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 2),
            dst_addr: Ipv4Addr::new(8, 8, 8, 8),
            protocol: IpProtocol::Udp,
            payload_len: 8,
            ttl: 64,
            ident: 0xabcd,
            dont_frag: true,
        }
    }

    #[test]
    fn parse_packet() {
        let buf = packet();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (0, 0));
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0xabcd);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(p.checksum(), 0x74f2);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(8, 8, 8, 8));
        assert!(p.options().is_empty());
        // Bounded by the total length: the padding is not payload.
        assert_eq!(p.payload(), &PACKET[20..28]);
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn emit_header() {
        let mut buf = [0xa5u8; 30];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..20], &packet()[..20]);
        assert_eq!(&buf[20..], &[0xa5; 10]);
    }

    #[test]
    fn round_trip() {
        let mut buf = [0xa5u8; 28];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr().emit(&mut p);
        p.payload_mut().copy_from_slice(&PACKET[20..28]);
        assert_eq!(&buf[..], &packet()[..28]);
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()).unwrap(),
            repr()
        );
    }

    #[test]
    fn bad_checksum() {
        let mut buf = packet();
        buf[8] = 63;
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::BadChecksum)
        );
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.fill_checksum();
        assert!(p.verify_checksum());
    }

    #[test]
    fn options_and_fragments() {
        #[rustfmt::skip]
        let mut buf = [
            0x46, 0x00, 0x00, 0x19, // version 4, IHL 6, total length 25
            0x00, 0x01, 0x20, 0x03, // ident 1, MF, offset 3 (24 bytes)
            0x01, 0x06, 0x00, 0x00, // TTL 1, TCP, checksum
            0xc0, 0x00, 0x02, 0x01, // 192.0.2.1
            0xc0, 0x00, 0x02, 0x02, // 192.0.2.2
            0x94, 0x04, 0x00, 0x00, // router alert option
            0xee,                   // one payload byte
        ];
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[0xee]);
        assert!(p.more_frags() && p.is_fragment() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 24);
        assert_eq!(
            Ipv4Repr::parse(&p),
            Err(Error::Unsupported("IPv4 fragment"))
        );
        p.set_more_frags(false);
        p.set_frag_offset(0);
        assert!(!p.is_fragment());
        p.fill_checksum();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 1);
        p.set_dont_frag(true);
        p.set_frag_offset(8);
        assert!(p.dont_frag() && p.is_fragment() && p.frag_offset() == 8);
    }

    #[test]
    fn setters() {
        let mut buf = [0xa5u8; 20];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp(46);
        p.set_ecn(1);
        assert_eq!(
            (p.version(), p.header_len(), p.dscp(), p.ecn()),
            (4, 20, 46, 1)
        );
        p.set_ttl(7);
        p.set_protocol(IpProtocol::Unknown(200));
        assert_eq!((p.ttl(), p.protocol()), (7, IpProtocol::Unknown(200)));
        assert_eq!(u8::from(IpProtocol::from(112)), 112);
    }

    #[test]
    fn nat_rewrite_keeps_checksum_valid() {
        let mut buf = packet();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        let old = p.dst_addr();
        let new = Ipv4Addr::new(192, 168, 100, 7);
        p.set_dst_addr(new);
        let c = checksum::update_addr(p.checksum(), old, new);
        p.set_checksum(c);
        assert!(p.verify_checksum());
        let ttl = p.ttl();
        p.set_ttl(ttl - 1);
        // TTL is the high byte of the word it shares with the protocol.
        let proto = u8::from(p.protocol());
        let c = checksum::update16(
            p.checksum(),
            u16::from_be_bytes([ttl, proto]),
            u16::from_be_bytes([ttl - 1, proto]),
        );
        p.set_checksum(c);
        assert!(p.verify_checksum());
    }

    #[test]
    fn rejects_malformed() {
        let good = packet();
        let mut bad_version = good;
        bad_version[0] = 0x65;
        let mut short_ihl = good;
        short_ihl[0] = 0x44;
        let mut long_ihl = good;
        long_ihl[0] = 0x48; // 32 bytes > 30
        let mut small_total = good;
        small_total[3] = 19;
        let mut big_total = good;
        big_total[3] = 31;
        assert!(matches!(
            Ipv4Packet::new_checked(&bad_version[..]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Ipv4Packet::new_checked(&short_ihl[..]),
            Err(Error::Malformed(_))
        ));
        assert_eq!(
            Ipv4Packet::new_checked(&long_ihl[..]),
            Err(Error::Truncated)
        );
        assert!(matches!(
            Ipv4Packet::new_checked(&small_total[..]),
            Err(Error::Malformed(_))
        ));
        assert_eq!(
            Ipv4Packet::new_checked(&big_total[..]),
            Err(Error::Truncated)
        );
        // A quoted header may claim more than the buffer holds.
        let q = Ipv4Packet::new_checked_quoted(&big_total[..]).unwrap();
        assert_eq!(q.payload(), &big_total[20..]);
        assert!(Ipv4Packet::new_checked_quoted(&small_total[..]).is_err());
    }

    #[test]
    fn truncated() {
        let buf = packet();
        for len in 0..28 {
            assert_eq!(
                Ipv4Packet::new_checked(&buf[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
            assert_eq!(
                Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&buf[..len])),
                Err(Error::Truncated)
            );
        }
        for len in 0..20 {
            assert_eq!(
                Ipv4Packet::new_checked_quoted(&buf[..len]),
                Err(Error::Truncated)
            );
        }
    }

    #[test]
    fn never_panics_on_noise() {
        let mut rng = crate::wire::test_util::XorShift(5);
        for _ in 0..20_000 {
            let len = rng.below(70);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
            if len > 3 && rng.below(2) == 0 {
                buf[0] = 0x45 + u8::try_from(rng.below(11)).unwrap();
                buf[2] = 0;
                buf[3] = u8::try_from(rng.below(len + 4)).unwrap();
            }
            for p in [
                Ipv4Packet::new_checked(&buf[..]),
                Ipv4Packet::new_checked_quoted(&buf[..]),
            ]
            .into_iter()
            .flatten()
            {
                let _ = (
                    p.options(),
                    p.payload(),
                    p.verify_checksum(),
                    Ipv4Repr::parse(&p),
                );
            }
        }
    }
}
