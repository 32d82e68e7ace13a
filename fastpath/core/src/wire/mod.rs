//! Wire formats: zero-copy typed views over packet bytes.
//!
//! Each protocol module has a `Packet<T: AsRef<[u8]>>` view (getters; setters when
//! `T: AsMut<[u8]>`) and a small validated `Repr` with `parse` / `buffer_len` / `emit`.
//!
//! Untrusted input goes through `new_checked` (or `Repr::parse`), which never panics:
//! after it succeeds every getter is in bounds. `new_unchecked` is for buffers the caller
//! sized itself (emitting); its getters panic if the buffer is too short.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod lvsync;
pub mod tcp;
pub mod toa;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{
    EtherType, EthernetAddress, EthernetAddressParseError, EthernetFrame, EthernetRepr,
};
pub use icmpv4::{Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
pub use tcp::{TcpFlags, TcpOption, TcpOptionsIter, TcpPacket, TcpRepr};
pub use toa::ToaRepr;
pub use udp::{UdpPacket, UdpRepr};

/// Why a packet (or a part of one) was rejected by a `new_checked` or `parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header or a length field says.
    #[error("truncated packet")]
    Truncated,
    /// A field holds a value the protocol does not allow.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The packet is valid but uses a variant this code does not handle.
    #[error("unsupported packet: {0}")]
    Unsupported(&'static str),
    /// The checksum does not match the contents.
    #[error("bad checksum")]
    BadChecksum,
}

/// Result of wire parsing.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
pub(crate) mod test_util {
    /// Tiny deterministic PRNG (xorshift64) so tests need no dependency.
    #[derive(Debug)]
    pub struct XorShift(pub u64);

    impl XorShift {
        /// Next 64 pseudo-random bits.
        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Next pseudo-random byte.
        pub fn next_u8(&mut self) -> u8 {
            self.next_u64().to_le_bytes()[0]
        }

        /// Next pseudo-random 16-bit value.
        pub fn next_u16(&mut self) -> u16 {
            let b = self.next_u64().to_le_bytes();
            u16::from_le_bytes([b[0], b[1]])
        }

        /// Next pseudo-random 32-bit value.
        pub fn next_u32(&mut self) -> u32 {
            let b = self.next_u64().to_le_bytes();
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }

        /// Pseudo-random index in `0..n` (`n > 0`).
        pub fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next_u64() % n as u64).unwrap()
        }
    }
}
