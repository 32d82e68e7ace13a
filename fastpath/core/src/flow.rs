//! Flow identifiers: the 5-tuple a session is found by.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

/// Transport protocols the director balances (the one definition, shared with the parser and
/// the API).
pub use lb_model::Protocol as L4Proto;

/// A directed 5-tuple, as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: L4Proto,
}

/// The whole tuple in one hasher write. The derived `Hash` wrote each field on its own (an
/// address as a length-prefixed byte slice), a chain of about ten dependent multiplies in
/// `ahash` before the session index could even be prefetched; one 128-bit write is one.
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(self.packed());
    }
}

impl FlowKey {
    /// The tuple as one number: distinct tuples give distinct numbers.
    #[inline]
    pub fn packed(&self) -> u128 {
        let proto = u128::from(self.proto.ip_protocol());
        (proto << 96) | (u128::from(self.src.to_bits()) << 64) | (u128::from(self.dst.to_bits()) << 32) | (u128::from(self.sport) << 16) | u128::from(self.dport)
    }

    /// The 5-tuple of an Ethernet frame carrying an unfragmented IPv4 TCP or UDP packet, read
    /// without validation (`None` for anything else or anything too short): the burst stages
    /// use it to prefetch; the pipeline parses and checks the frame properly afterwards.
    #[inline]
    pub fn of_frame(frame: &[u8]) -> Option<FlowKey> {
        if frame.get(12..14)? != [0x08, 0x00] {
            return None;
        }
        let ip = frame.get(14..)?;
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        let proto = match ip.get(9)? {
            6 => L4Proto::Tcp,
            17 => L4Proto::Udp,
            _ => return None,
        };
        // More-fragments or an offset: no ports to read.
        if u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff != 0 || ihl < 20 {
            return None;
        }
        let a = |i: usize| -> Option<Ipv4Addr> { Some(Ipv4Addr::new(*ip.get(i)?, *ip.get(i + 1)?, *ip.get(i + 2)?, *ip.get(i + 3)?)) };
        let ports = ip.get(ihl..ihl + 4)?;
        Some(FlowKey {
            src: a(12)?,
            dst: a(16)?,
            sport: u16::from_be_bytes([ports[0], ports[1]]),
            dport: u16::from_be_bytes([ports[2], ports[3]]),
            proto,
        })
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{} -> {}:{}", self.proto, self.src, self.sport, self.dst, self.dport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_key_is_read_only_from_unfragmented_tcp_and_udp() {
        let mut f = vec![0u8; 14 + 24 + 8];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x46; // IHL 6: 4 bytes of options
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 2]);
        f[14 + 24..14 + 28].copy_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        let k = FlowKey::of_frame(&f).unwrap();
        assert_eq!((k.src, k.dst, k.sport, k.dport, k.proto), (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 12345, 53, L4Proto::Udp));
        f[14 + 6] = 0x20; // more fragments
        assert_eq!(FlowKey::of_frame(&f), None);
        f[14 + 6] = 0x40; // don't fragment
        assert!(FlowKey::of_frame(&f).is_some());
        f[14 + 9] = 1;
        assert_eq!(FlowKey::of_frame(&f), None);
        f[14 + 9] = 6;
        for n in 0..14 + 28 {
            assert_eq!(FlowKey::of_frame(&f[..n]), None, "{n} bytes");
        }
        f[14] = 0x42; // IHL below 5
        assert_eq!(FlowKey::of_frame(&f), None);
    }

    #[test]
    fn the_packed_tuple_tells_apart_what_equality_tells_apart() {
        let k = FlowKey { src: Ipv4Addr::new(10, 0, 0, 1), dst: Ipv4Addr::new(10, 0, 0, 2), sport: 1, dport: 2, proto: L4Proto::Tcp };
        let variants = [
            FlowKey { src: Ipv4Addr::new(10, 0, 0, 2), ..k },
            FlowKey { dst: Ipv4Addr::new(10, 0, 0, 1), ..k },
            FlowKey { sport: 2, ..k },
            FlowKey { dport: 1, ..k },
            FlowKey { proto: L4Proto::Udp, ..k },
            // Fields swapped between each other: still another tuple.
            FlowKey { src: Ipv4Addr::from_bits(2), dst: Ipv4Addr::from_bits(0), sport: 0, dport: 0, ..k },
            FlowKey { src: Ipv4Addr::from_bits(0), dst: Ipv4Addr::from_bits(0), sport: 2, dport: 0, ..k },
        ];
        let h = ahash::RandomState::new();
        for v in variants {
            assert_ne!(v, k);
            assert_ne!(v.packed(), k.packed(), "{v} vs {k}");
            assert_ne!(h.hash_one(v), h.hash_one(k), "{v} vs {k}");
        }
        assert_eq!(h.hash_one(k), h.hash_one(FlowKey { ..k }), "equal keys hash alike");
    }
}
