//! The TOA ("TCP option address") option that LVS FULLNAT adds so real servers can see
//! the client's address: kind 254, length 8, the client port (2 bytes, network order), then
//! the client IPv4 address (4 bytes).
//!
//! ```text
//!  0        1        2        3        4        5        6        7
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! | 254    | 8      | client port     | client IPv4 address               |
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! ```

use std::net::Ipv4Addr;

use super::tcp::{TcpOption, TcpOptionsIter, MAX_HEADER_LEN};
use super::{Error, Result};

/// TCP option kind of TOA.
pub const TOA_KIND: u8 = 254;
/// Length of the TOA option, kind and length bytes included.
pub const TOA_LEN: usize = TOA_LEN_BYTE as usize;
/// [`TOA_LEN`] as the option's length byte.
const TOA_LEN_BYTE: u8 = 8;

mod field {
    use core::ops::Range;

    pub const KIND: usize = 0;
    pub const LENGTH: usize = 1;
    pub const PORT: Range<usize> = 2..4;
    pub const ADDR: Range<usize> = 4..8;
}

/// The client address a TOA option carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ToaRepr {
    /// Client port.
    pub port: u16,
    /// Client IPv4 address.
    pub addr: Ipv4Addr,
}

impl ToaRepr {
    /// Parses a whole option (kind and length bytes first). `Truncated` if `option` is
    /// shorter than 8 bytes, `Malformed` if the kind is not 254 or the length not 8.
    pub fn parse(option: &[u8]) -> Result<ToaRepr> {
        let Some(bytes) = option.get(..TOA_LEN) else {
            return Err(Error::Truncated);
        };
        if bytes[field::KIND] != TOA_KIND {
            return Err(Error::Malformed("not a TOA option (kind 254)"));
        }
        if usize::from(bytes[field::LENGTH]) != TOA_LEN {
            return Err(Error::Malformed("TOA option length is not 8"));
        }
        Ok(Self::from_body(bytes))
    }

    /// Reads port and address from 8 bytes whose kind and length were checked.
    fn from_body(bytes: &[u8]) -> ToaRepr {
        let p = &bytes[field::PORT];
        let a = &bytes[field::ADDR];
        ToaRepr {
            port: u16::from_be_bytes([p[0], p[1]]),
            addr: Ipv4Addr::new(a[0], a[1], a[2], a[3]),
        }
    }

    /// The TOA in a parsed TCP option: `None` for other kinds, `Malformed` for a kind-254
    /// option of the wrong length.
    pub fn from_tcp_option(option: &TcpOption<'_>) -> Result<Option<ToaRepr>> {
        match *option {
            TcpOption::Unknown {
                kind: TOA_KIND,
                data,
            } => {
                if data.len() + 2 != TOA_LEN {
                    return Err(Error::Malformed("TOA option length is not 8"));
                }
                let mut bytes = [0u8; TOA_LEN];
                bytes[2..].copy_from_slice(data);
                Ok(Some(Self::from_body(&bytes)))
            }
            _ => Ok(None),
        }
    }

    /// Finds the first TOA in a TCP options area (a header after its first 20 bytes);
    /// `Malformed` if the options up to it are.
    pub fn find(options: &[u8]) -> Result<Option<ToaRepr>> {
        for option in TcpOptionsIter::new(options) {
            if let Some(toa) = Self::from_tcp_option(&option?)? {
                return Ok(Some(toa));
            }
        }
        Ok(None)
    }

    /// The option length ([`TOA_LEN`]).
    pub const fn buffer_len(&self) -> usize {
        TOA_LEN
    }

    /// The option's 8 bytes.
    pub fn to_bytes(&self) -> [u8; TOA_LEN] {
        let mut bytes = [0u8; TOA_LEN];
        self.emit(&mut bytes);
        bytes
    }

    /// Writes the option into the first 8 bytes of `buf` (which must hold them).
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::KIND] = TOA_KIND;
        buf[field::LENGTH] = TOA_LEN_BYTE;
        buf[field::PORT].copy_from_slice(&self.port.to_be_bytes());
        buf[field::ADDR].copy_from_slice(&self.addr.octets());
    }
}

/// Whether a TCP header of `tcp_header_len` bytes has room to grow by a TOA option.
pub const fn room_for_toa(tcp_header_len: usize) -> bool {
    tcp_header_len + TOA_LEN <= MAX_HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::{TcpFlags, TcpPacket, HEADER_LEN};
    use crate::wire::test_util::XorShift;

    #[rustfmt::skip]
    const TOA: [u8; 8] = [
        0xfe,                   // kind 254
        0x08,                   // length 8
        0x1f, 0x90,             // client port 8080
        0xc0, 0x00, 0x02, 0x07, // client address 192.0.2.7
    ];

    const REPR: ToaRepr = ToaRepr {
        port: 8080,
        addr: Ipv4Addr::new(192, 0, 2, 7),
    };

    #[test]
    fn parse_option() {
        assert_eq!(ToaRepr::parse(&TOA), Ok(REPR));
        // Trailing bytes are not part of the option.
        let mut longer = [0u8; 12];
        longer[..8].copy_from_slice(&TOA);
        assert_eq!(ToaRepr::parse(&longer), Ok(REPR));
    }

    #[test]
    fn emit_option() {
        let mut buf = [0xa5u8; 10];
        REPR.emit(&mut buf);
        assert_eq!(&buf[..8], &TOA);
        assert_eq!(&buf[8..], &[0xa5, 0xa5]);
        assert_eq!(REPR.to_bytes(), TOA);
        assert_eq!(REPR.buffer_len(), 8);
        assert_eq!(ToaRepr::parse(&REPR.to_bytes()), Ok(REPR));
    }

    #[test]
    fn rejects_bad_options() {
        for len in 0..TOA_LEN {
            assert_eq!(
                ToaRepr::parse(&TOA[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
        }
        let mut wrong_kind = TOA;
        wrong_kind[0] = 253;
        assert!(matches!(
            ToaRepr::parse(&wrong_kind),
            Err(Error::Malformed(_))
        ));
        let mut wrong_len = TOA;
        wrong_len[1] = 6;
        assert!(matches!(
            ToaRepr::parse(&wrong_len),
            Err(Error::Malformed(_))
        ));
        // A kind-254 option of length 6 is valid TCP but not a TOA.
        let short = [1, 1, 0xfe, 6, 0x1f, 0x90, 192, 0];
        assert!(matches!(ToaRepr::find(&short), Err(Error::Malformed(_))));
        // Options malformed before the TOA.
        let broken = [2, 9, 0, 0, 0xfe, 8, 0, 0, 0, 0, 0, 0];
        assert!(matches!(ToaRepr::find(&broken), Err(Error::Malformed(_))));
    }

    #[test]
    fn from_tcp_option() {
        assert_eq!(ToaRepr::from_tcp_option(&TcpOption::Mss(1460)), Ok(None));
        let option = TcpOption::Unknown {
            kind: TOA_KIND,
            data: &TOA[2..],
        };
        assert_eq!(ToaRepr::from_tcp_option(&option), Ok(Some(REPR)));
        assert_eq!(TcpOption::parse(&TOA), Ok((option, 8)));
    }

    #[test]
    fn find_in_options() {
        #[rustfmt::skip]
        let options = [
            0x01, 0x01,             // NOP, NOP
            0x08, 0x0a,             // timestamps
            0, 0, 0, 1, 0, 0, 0, 2,
            0xfe, 0x08,             // TOA
            0x1f, 0x90, 0xc0, 0x00, 0x02, 0x07,
        ];
        assert_eq!(ToaRepr::find(&options), Ok(Some(REPR)));
        assert_eq!(ToaRepr::find(&options[..12]), Ok(None));
        assert_eq!(ToaRepr::find(&[]), Ok(None));
        // After End nothing is an option.
        let mut ended = [0u8; 12];
        ended[4..].copy_from_slice(&TOA);
        assert_eq!(ToaRepr::find(&ended), Ok(None));
    }

    #[test]
    fn inserted_into_segment() {
        // An ACK with NOP NOP timestamps (32-byte header) grown by a TOA, as FULLNAT does.
        let src = Ipv4Addr::new(10, 1, 0, 1);
        let dst = Ipv4Addr::new(10, 2, 0, 1);
        assert!(room_for_toa(32) && room_for_toa(52) && !room_for_toa(56));
        let mut buf = [0xa5u8; 40 + 3];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(40001);
        p.set_dst_port(80);
        p.set_seq_number(1);
        p.set_ack_number(1);
        p.set_header_len(32 + TOA_LEN);
        p.set_flags(TcpFlags::ACK | TcpFlags::PSH);
        p.set_window_len(502);
        p.set_urgent_at(0);
        let options = p.options_mut();
        options[..12].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6]);
        REPR.emit(&mut options[12..]);
        p.payload_mut().copy_from_slice(b"hi\n");
        p.fill_checksum(src, dst);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(src, dst));
        assert_eq!(p.header_len(), HEADER_LEN + 20);
        assert_eq!(ToaRepr::find(p.options()), Ok(Some(REPR)));
        assert_eq!(p.find_option(TOA_KIND), Ok(Some(HEADER_LEN + 12)));
        assert_eq!(p.payload(), b"hi\n");
    }

    #[test]
    fn never_panics_on_noise() {
        let mut rng = XorShift(31);
        for _ in 0..20_000 {
            let len = rng.below(24);
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.below(3) == 0 {
                        [0, 1, 8, 254][rng.below(4)]
                    } else {
                        rng.next_u8()
                    }
                })
                .collect();
            let _ = (ToaRepr::parse(&buf), ToaRepr::find(&buf));
        }
    }
}
