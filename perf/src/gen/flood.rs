//! A SYN flood from spoofed sources, sent beside the connection mode's real connections:
//! random source addresses from a prefix, random source ports and ISNs, SYNs (with an MSS
//! option, as real stacks send) to the VIP. Nothing answers for those addresses: SYN-ACKs
//! (a SYN proxy's cookies) that come back to them are counted and dropped.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use fastpath::wire::TcpFlags;

use crate::packet::{Segment, Tuple, WINDOW};

/// An IPv4 prefix, written `198.18.0.0/15` (host bits must be zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    pub base: Ipv4Addr,
    pub len: u8,
}

/// A prefix that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prefix {text:?}: {why}")]
pub struct PrefixError {
    text: String,
    why: String,
}

impl FromStr for IpPrefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| PrefixError {
            text: s.into(),
            why: why.into(),
        };
        let (a, l) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| err("expected address/length"))?;
        let base: Ipv4Addr = a.parse().map_err(|_| err("bad address"))?;
        let len: u8 = l.parse().map_err(|_| err("bad length"))?;
        if len > 32 {
            return Err(err("length above 32"));
        }
        let p = IpPrefix { base, len };
        if u32::from(base) & !p.mask() != 0 {
            return Err(err("host bits set"));
        }
        Ok(p)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.len)
    }
}

impl IpPrefix {
    /// The network mask.
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    /// Whether `ip` is in the prefix.
    #[inline]
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base)
    }

    /// Whether the prefix and the inclusive range `first..=last` share an address.
    pub fn overlaps(&self, first: Ipv4Addr, last: Ipv4Addr) -> bool {
        let lo = u32::from(self.base);
        let hi = lo | !self.mask();
        u32::from(first) <= hi && lo <= u32::from(last)
    }

    /// The address with host part `bits` (only the host bits of `bits` are used).
    #[inline]
    pub fn pick(&self, bits: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | (bits & !self.mask()))
    }
}

/// A small fast PRNG (xorshift64*), seeded from the TSC; not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from any seed (zero is remapped).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed: nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// What to flood with.
#[derive(Debug, Clone, Copy)]
pub struct FloodConfig {
    /// Source addresses (spoofed; nothing plays them).
    pub sources: IpPrefix,
    /// SYNs per second; 0 = as fast as the port takes them.
    pub pps: u64,
    /// Destination (the VIP and service port).
    pub dst: Ipv4Addr,
    pub dport: u16,
}

/// Flood counters (client port).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct FloodCounters {
    /// Flood SYNs sent: at a set rate, queued with back-pressure like the generator's own
    /// frames (all go out); at the highest rate, taken by the driver.
    pub sent: u64,
    /// Highest rate only: flood SYNs the driver refused (freed at the generator: the ring
    /// toward the director was full).
    pub refused: u64,
    /// SYN-ACKs to flood sources received (a SYN proxy's cookie answers).
    pub synacks: u64,
    /// Anything else to flood sources (resets from a director refusing them, ...).
    pub other: u64,
}

impl FloodConfig {
    /// The next flood SYN: random source address in the prefix, random source port
    /// (1024-65535), random ISN.
    #[inline]
    pub fn segment(&self, rng: &mut Rng) -> Segment {
        let r = rng.next_u64();
        let [a0, a1, a2, a3, p0, p1, s0, s1] = r.to_le_bytes();
        let addr = u32::from_le_bytes([a0, a1, a2, a3]);
        let port = u16::from_le_bytes([p0, p1]);
        let isn = u32::from_le_bytes([s0, s1, a2 ^ p0, a3 ^ p1]);
        Segment {
            tuple: Tuple {
                src: self.sources.pick(addr),
                dst: self.dst,
                sport: 1024 + port % (65535 - 1024 + 1),
                dport: self.dport,
            },
            seq: isn,
            ack: 0,
            flags: TcpFlags::SYN,
            payload_len: 0,
            mss: true,
            window: WINDOW,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{parse, write_segment, Rx};
    use fastpath::wire::EthernetAddress;

    #[test]
    fn prefixes_parse_contain_and_reject() {
        let p: IpPrefix = "198.18.0.0/15".parse().unwrap();
        assert!(p.contains(Ipv4Addr::new(198, 19, 255, 255)));
        assert!(p.contains(Ipv4Addr::new(198, 18, 0, 0)));
        assert!(!p.contains(Ipv4Addr::new(198, 20, 0, 0)));
        assert!(!p.contains(Ipv4Addr::new(10, 99, 1, 10)));
        assert_eq!(p.to_string(), "198.18.0.0/15");
        assert!("198.18.0.1/15".parse::<IpPrefix>().is_err(), "host bits");
        assert!("198.18.0.0/33".parse::<IpPrefix>().is_err());
        assert!("198.18.0.0".parse::<IpPrefix>().is_err());
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        let one: IpPrefix = "10.0.0.7/32".parse().unwrap();
        assert_eq!(one.pick(u32::MAX), Ipv4Addr::new(10, 0, 0, 7));
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(p.overlaps(a("198.17.0.0"), a("198.18.0.0")));
        assert!(p.overlaps(a("198.19.255.255"), a("198.30.0.0")));
        assert!(!p.overlaps(a("10.99.1.10"), a("10.99.1.73")));
        assert!(!p.overlaps(a("198.20.0.0"), a("198.20.0.9")));
    }

    #[test]
    fn flood_syns_are_random_within_the_prefix_and_valid() {
        let f = FloodConfig {
            sources: "198.18.0.0/15".parse().unwrap(),
            pps: 0,
            dst: Ipv4Addr::new(10, 99, 1, 100),
            dport: 80,
        };
        let mut rng = Rng::new(7);
        let macs = (
            EthernetAddress([2, 0, 0, 0, 0, 1]),
            EthernetAddress([2, 0, 0, 0, 0, 2]),
        );
        let (mut srcs, mut ports, mut isns) = (
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        );
        for _ in 0..4096 {
            let seg = f.segment(&mut rng);
            assert!(f.sources.contains(seg.tuple.src));
            assert!(seg.tuple.sport >= 1024);
            assert_eq!((seg.tuple.dst, seg.tuple.dport), (f.dst, 80));
            srcs.insert(seg.tuple.src);
            ports.insert(seg.tuple.sport);
            isns.insert(seg.seq);
            let mut frame = vec![0u8; seg.frame_len()];
            write_segment(&mut frame, macs, &seg, 0);
            let Rx::Data(p) = parse(&frame) else {
                panic!("unparsable flood SYN")
            };
            assert_eq!(
                (p.tuple, p.flags, p.seq),
                (seg.tuple, TcpFlags::SYN, seg.seq)
            );
            assert_eq!(p.mss, Some(crate::packet::MSS));
        }
        // 4096 draws over 131072 addresses, 64512 ports, 2^32 ISNs: nearly all distinct.
        assert!(srcs.len() > 4000, "{}", srcs.len());
        assert!(ports.len() > 3900, "{}", ports.len());
        assert!(isns.len() > 4090, "{}", isns.len());
        // Both halves of the /15 are used.
        assert!(
            srcs.iter().any(|a| a.octets()[1] == 18) && srcs.iter().any(|a| a.octets()[1] == 19)
        );
        // Different seeds give different streams.
        let (mut r1, mut r2) = (Rng::new(1), Rng::new(2));
        assert_ne!(f.segment(&mut r1).tuple, f.segment(&mut r2).tuple);
    }
}
