//! ARP (RFC 826) for Ethernet and IPv4 only.

use core::fmt;
use std::net::Ipv4Addr;

use super::ethernet::{EtherType, EthernetAddress};
use super::{Error, Result};

/// Hardware type for Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// Length of an Ethernet address.
const HLEN_ETHERNET: u8 = 6;
/// Length of an IPv4 address.
const PLEN_IPV4: u8 = 4;

/// The ARP operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// Who has `target_protocol_addr`? (1)
    Request,
    /// `source_protocol_addr` is at `source_hardware_addr`. (2)
    Reply,
    /// Any other operation code.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> Self {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

impl fmt::Display for ArpOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArpOperation::Request => f.write_str("request"),
            ArpOperation::Reply => f.write_str("reply"),
            ArpOperation::Unknown(v) => write!(f, "operation {v}"),
        }
    }
}

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    // Offsets below hold for Ethernet/IPv4 (hlen 6, plen 4), the only layout accepted.
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of the fixed part (up to and including the operation).
const FIXED_LEN: usize = field::OPER.end;
/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

/// A zero-copy view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn read_u16(data: &[u8], range: core::ops::Range<usize>) -> u16 {
    let d = &data[range];
    u16::from_be_bytes([d[0], d[1]])
}

fn read_ipv4(data: &[u8], range: core::ops::Range<usize>) -> Ipv4Addr {
    let d = &data[range];
    Ipv4Addr::new(d[0], d[1], d[2], d[3])
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Checks the length and that this is Ethernet/IPv4 ARP: `Truncated` if the buffer is
    /// too short, `Unsupported` for other hardware/protocol types or address lengths.
    /// Bytes after [`PACKET_LEN`] (Ethernet padding) are ignored.
    pub fn check(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < FIXED_LEN {
            return Err(Error::Truncated);
        }
        if self.hardware_type() != HTYPE_ETHERNET {
            return Err(Error::Unsupported("ARP hardware type is not Ethernet"));
        }
        if self.protocol_type() != EtherType::Ipv4 {
            return Err(Error::Unsupported("ARP protocol type is not IPv4"));
        }
        if self.hardware_len() != HLEN_ETHERNET || self.protocol_len() != PLEN_IPV4 {
            return Err(Error::Unsupported("ARP address lengths are not 6 and 4"));
        }
        if data.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// The protocol type (an EtherType).
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PTYPE))
    }

    /// The hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(read_u16(self.buffer.as_ref(), field::OPER))
    }

    /// The sender hardware address.
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SHA]);
        EthernetAddress(a)
    }

    /// The sender protocol address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::SPA)
    }

    /// The target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::THA]);
        EthernetAddress(a)
    }

    /// The target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&u16::from(value).to_be_bytes());
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: ArpOperation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(value).to_be_bytes());
    }

    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&value.0);
    }

    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&value.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&value.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&value.octets());
    }
}

/// A parsed ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpRepr {
    /// ARP over Ethernet for IPv4, the only kind supported.
    EthernetIpv4 {
        /// Request, reply, or another code.
        operation: ArpOperation,
        /// Sender MAC.
        source_hardware_addr: EthernetAddress,
        /// Sender IPv4 address.
        source_protocol_addr: Ipv4Addr,
        /// Target MAC (zero in requests).
        target_hardware_addr: EthernetAddress,
        /// Target IPv4 address.
        target_protocol_addr: Ipv4Addr,
    },
}

impl ArpRepr {
    /// Parses a packet (checked again here, so an unchecked view is fine).
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check()?;
        Ok(ArpRepr::EthernetIpv4 {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// The packet length this repr emits.
    pub const fn buffer_len(&self) -> usize {
        match self {
            ArpRepr::EthernetIpv4 { .. } => PACKET_LEN,
        }
    }

    /// Writes the packet (the buffer must hold [`buffer_len`](Self::buffer_len) bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        match *self {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } => {
                packet.set_hardware_type(HTYPE_ETHERNET);
                packet.set_protocol_type(EtherType::Ipv4);
                packet.set_hardware_len(HLEN_ETHERNET);
                packet.set_protocol_len(PLEN_IPV4);
                packet.set_operation(operation);
                packet.set_source_hardware_addr(source_hardware_addr);
                packet.set_source_protocol_addr(source_protocol_addr);
                packet.set_target_hardware_addr(target_hardware_addr);
                packet.set_target_protocol_addr(target_protocol_addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EthernetFrame, EthernetRepr};

    // A request as captured on a LAN: Ethernet header, ARP, then 18 bytes of padding.
    #[rustfmt::skip]
    const FRAME: [u8; 60] = [
        // Ethernet
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
        0x00, 0x0c, 0x29, 0x3e, 0x5b, 0x7a, // source
        0x08, 0x06,                         // EtherType ARP
        // ARP
        0x00, 0x01,                         // hardware type Ethernet
        0x08, 0x00,                         // protocol type IPv4
        0x06,                               // hardware length
        0x04,                               // protocol length
        0x00, 0x01,                         // operation request
        0x00, 0x0c, 0x29, 0x3e, 0x5b, 0x7a, // sender MAC
        0xc0, 0xa8, 0x01, 0x0a,             // sender IP 192.168.1.10
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC (unknown)
        0xc0, 0xa8, 0x01, 0x01,             // target IP 192.168.1.1
        // padding
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    const MAC: EthernetAddress = EthernetAddress([0x00, 0x0c, 0x29, 0x3e, 0x5b, 0x7a]);

    fn request() -> ArpRepr {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: MAC,
            source_protocol_addr: Ipv4Addr::new(192, 168, 1, 10),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
        }
    }

    #[test]
    fn parse_request() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Arp);
        let packet = ArpPacket::new_checked(frame.payload()).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), ArpOperation::Request);
        assert_eq!(packet.source_hardware_addr(), MAC);
        assert_eq!(
            packet.source_protocol_addr(),
            Ipv4Addr::new(192, 168, 1, 10)
        );
        assert_eq!(packet.target_hardware_addr(), EthernetAddress::UNSPECIFIED);
        assert_eq!(packet.target_protocol_addr(), Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(ArpRepr::parse(&packet).unwrap(), request());
    }

    #[test]
    fn emit_reply_frame() {
        // The reply a director would send for 192.168.1.1 owned by 02:00:00:00:00:01.
        let ours = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: ours,
            source_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
            target_hardware_addr: MAC,
            target_protocol_addr: Ipv4Addr::new(192, 168, 1, 10),
        };
        let mut buf = [0xa5u8; 14 + 28];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src: ours,
            dst: MAC,
            ethertype: EtherType::Arp,
        }
        .emit(&mut frame);
        reply.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0x00, 0x0c, 0x29, 0x3e, 0x5b, 0x7a, // destination
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
            0x08, 0x06,                         // EtherType ARP
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet/IPv4, lengths
            0x00, 0x02,                         // operation reply
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sender MAC
            0xc0, 0xa8, 0x01, 0x01,             // sender IP
            0x00, 0x0c, 0x29, 0x3e, 0x5b, 0x7a, // target MAC
            0xc0, 0xa8, 0x01, 0x0a,             // target IP
        ];
        assert_eq!(buf, expected);
    }

    #[test]
    fn emit_into_larger_buffer() {
        let mut buf = [0xa5u8; 32];
        request().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..28], &FRAME[14..42]);
        assert_eq!(&buf[28..], &[0xa5; 4]);
        assert_eq!(request().buffer_len(), 28);
    }

    #[test]
    fn round_trip() {
        let mut buf = [0xa5u8; 28];
        request().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        let packet = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet).unwrap(), request());
    }

    #[test]
    fn unknown_operation_is_kept() {
        let mut buf = FRAME;
        buf[21] = 9;
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&buf[14..]).unwrap()).unwrap();
        let ArpRepr::EthernetIpv4 { operation, .. } = repr;
        assert_eq!(operation, ArpOperation::Unknown(9));
    }

    #[test]
    fn truncated() {
        let arp = &FRAME[14..42];
        for len in 0..arp.len() {
            assert_eq!(
                ArpPacket::new_checked(&arp[..len]).unwrap_err(),
                Error::Truncated,
                "len {len}"
            );
            assert_eq!(
                ArpRepr::parse(&ArpPacket::new_unchecked(&arp[..len])).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn unsupported() {
        let arp = &FRAME[14..42];
        // hardware type, protocol type, hardware length, protocol length
        for (at, value) in [(1, 6), (2, 0x86), (4, 8), (5, 16)] {
            let mut buf = [0u8; 28];
            buf.copy_from_slice(arp);
            buf[at] = value;
            assert!(
                matches!(ArpPacket::new_checked(&buf[..]), Err(Error::Unsupported(_))),
                "byte {at}"
            );
            // Even when truncated, no panic and an error.
            for len in 0..28 {
                assert!(ArpPacket::new_checked(&buf[..len]).is_err());
            }
        }
    }
}
