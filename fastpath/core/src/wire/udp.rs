//! UDP datagrams (RFC 768).
//!
//! A [`UdpPacket`] wraps an IPv4 packet's payload; the length field bounds the datagram.
//! A checksum of zero means "none" over IPv4; a computed zero is sent as `0xffff`.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::IpProtocol;
use super::{Error, Result};

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const PAYLOAD_START: usize = 8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::PAYLOAD_START;
/// Byte offset of the checksum field, for incremental updates by NAT code.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer holds the header and the length field is between 8 and the
    /// buffer length.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let claimed = usize::from(self.len());
        if claimed < HEADER_LEN {
            return Err(Error::Malformed("UDP length below 8"));
        }
        if claimed > len {
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

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The length field (header and payload).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The checksum field (0: no checksum).
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The datagram as the length field bounds it.
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        &self.datagram()[HEADER_LEN..]
    }

    /// Whether the checksum is absent (zero) or correct, with the IPv4 pseudo header.
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let pseudo = checksum::pseudo_header_sum(src_addr, dst_addr, IpProtocol::Udp, self.len());
        checksum::fold(pseudo + checksum::sum(self.datagram())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port (the checksum is not updated).
    pub fn set_src_port(&mut self, value: u16) {
        self.write_u16(field::SRC_PORT, value);
    }

    /// Sets the destination port (the checksum is not updated).
    pub fn set_dst_port(&mut self, value: u16) {
        self.write_u16(field::DST_PORT, value);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, value: u16) {
        self.write_u16(field::LENGTH, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// The payload (bounded by the length field), mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes and stores the checksum (a computed zero is stored as `0xffff`).
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let pseudo = checksum::pseudo_header_sum(src_addr, dst_addr, IpProtocol::Udp, self.len());
        let c = !checksum::fold(pseudo + checksum::sum(self.datagram()));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Applies an incremental update `f` (e.g. a closure over
    /// [`checksum::update_addr`]) unless the checksum is absent; a zero result is stored
    /// as `0xffff`, so the datagram never turns into "no checksum".
    pub fn update_checksum(&mut self, f: impl FnOnce(u16) -> u16) {
        let old = self.checksum();
        if old == 0 {
            return;
        }
        let c = f(old);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// The fields of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses a datagram: checks lengths and (unless absent) the checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &UdpPacket<&'a T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) -> Result<UdpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::BadChecksum);
        }
        let data: &'a [u8] = packet.buffer.as_ref();
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: &data[HEADER_LEN..usize::from(packet.len())],
        })
    }

    /// The datagram length this repr emits (at most 65535 for a valid datagram).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram with its checksum; the buffer must hold
    /// [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) {
        debug_assert!(self.buffer_len() <= usize::from(u16::MAX));
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(u16::try_from(self.buffer_len()).unwrap_or(u16::MAX));
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src_addr, dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::XorShift;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 9);

    // A DNS query for "www", A/IN, followed by 3 bytes that are not part of the datagram.
    #[rustfmt::skip]
    const DNS: [u8; 32] = [
        0xd4, 0x31,             // source port 54321
        0x00, 0x35,             // destination port 53
        0x00, 0x1d,             // length 29
        0xec, 0x82,             // checksum
        0xab, 0xcd, 0x01, 0x00, // DNS id, flags RD
        0x00, 0x01, 0x00, 0x00, // 1 question, 0 answers
        0x00, 0x00, 0x00, 0x00, // 0 authority, 0 additional
        0x03, b'w', b'w', b'w', 0x00, // QNAME www.
        0x00, 0x01, 0x00, 0x01, // QTYPE A, QCLASS IN
        0xee, 0xee, 0xee,       // trailing bytes (padding)
    ];

    fn dns_repr() -> UdpRepr<'static> {
        UdpRepr {
            src_port: 54321,
            dst_port: 53,
            payload: &DNS[8..29],
        }
    }

    #[test]
    fn parse_dns_query() {
        let p = UdpPacket::new_checked(&DNS[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.len(), p.checksum()),
            (54321, 53, 29, 0xec82)
        );
        assert!(p.verify_checksum(CLIENT, SERVER));
        assert!(!p.verify_checksum(SERVER, Ipv4Addr::from(u32::from(CLIENT).wrapping_add(1))));
        assert_eq!(p.payload(), &DNS[8..29]);
        assert_eq!(UdpRepr::parse(&p, CLIENT, SERVER).unwrap(), dns_repr());
    }

    #[test]
    fn emit_dns_query() {
        let repr = dns_repr();
        assert_eq!(repr.buffer_len(), 29);
        let mut buf = [0xa5u8; 32];
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), CLIENT, SERVER);
        assert_eq!(&buf[..29], &DNS[..29]);
        assert_eq!(&buf[29..], &[0xa5; 3]);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, CLIENT, SERVER).unwrap(), repr);
    }

    #[test]
    fn no_checksum() {
        let mut buf = DNS;
        buf[6] = 0;
        buf[7] = 0;
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        assert!(p.verify_checksum(CLIENT, SERVER));
        assert!(p.verify_checksum(SERVER, SERVER));
        p.update_checksum(|c| checksum::update16(c, 53, 5353));
        assert_eq!(p.checksum(), 0);
    }

    #[test]
    fn bad_checksum() {
        let mut buf = DNS;
        buf[21] = b'v';
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, CLIENT, SERVER), Err(Error::BadChecksum));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the last payload word so that the datagram sums to 0xffff.
        let mut buf = [0u8; 12];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_len(12);
        let pseudo = checksum::pseudo_header_sum(CLIENT, SERVER, IpProtocol::Udp, 12);
        let partial = checksum::fold(pseudo + checksum::sum(&p.buffer[..]));
        p.payload_mut()[2..4].copy_from_slice(&(!partial).to_be_bytes());
        p.fill_checksum(CLIENT, SERVER);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(CLIENT, SERVER));
    }

    #[test]
    fn nat_update() {
        let mut rng = XorShift(17);
        let mut buf = DNS;
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        let (mut src, mut port) = (CLIENT, p.src_port());
        for _ in 0..1000 {
            let new_src = Ipv4Addr::from(rng.next_u32());
            let new_port = rng.next_u16();
            p.set_src_port(new_port);
            p.update_checksum(|c| {
                checksum::update16(checksum::update_addr(c, src, new_src), port, new_port)
            });
            (src, port) = (new_src, new_port);
            assert!(p.verify_checksum(src, SERVER));
            assert_ne!(p.checksum(), 0);
        }
    }

    #[test]
    fn truncated_and_malformed() {
        for len in 0..29 {
            assert_eq!(
                UdpPacket::new_checked(&DNS[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
            assert_eq!(
                UdpRepr::parse(&UdpPacket::new_unchecked(&DNS[..len]), CLIENT, SERVER),
                Err(Error::Truncated)
            );
        }
        for claimed in 0..8u8 {
            let mut buf = DNS;
            buf[5] = claimed;
            assert!(matches!(
                UdpPacket::new_checked(&buf[..]),
                Err(Error::Malformed(_))
            ));
        }
        let mut buf = DNS;
        buf[5] = 8;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn never_panics_on_noise() {
        let mut rng = XorShift(23);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
            if len > 8 && rng.below(2) == 0 {
                buf[4] = 0;
                buf[5] = u8::try_from(rng.below(len + 2)).unwrap();
            }
            if let Ok(p) = UdpPacket::new_checked(&buf[..]) {
                let _ = (p.payload().len(), UdpRepr::parse(&p, CLIENT, SERVER));
            }
        }
    }
}
