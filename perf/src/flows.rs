//! 5-tuple ranges: which source/destination addresses and ports the generator uses, and the
//! enumeration of flows over them.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::packet::Tuple;

/// An inclusive range of IPv4 addresses, written `10.0.0.1` or `10.0.0.1-10.0.0.64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

/// An inclusive range of ports, written `80` or `1024-65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// A range that did not parse; the message names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} range {text:?}: {why}")]
pub struct RangeError {
    what: &'static str,
    text: String,
    why: String,
}

fn split(s: &str) -> (&str, &str) {
    match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    }
}

impl FromStr for IpRange {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| RangeError {
            what: "address",
            text: s.into(),
            why,
        };
        let (a, b) = split(s);
        let first: Ipv4Addr = a.parse().map_err(|e| err(format!("{a:?}: {e}")))?;
        let last: Ipv4Addr = b.parse().map_err(|e| err(format!("{b:?}: {e}")))?;
        if u32::from(last) < u32::from(first) {
            return Err(err("the last address is below the first".into()));
        }
        Ok(IpRange { first, last })
    }
}

impl FromStr for PortRange {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| RangeError {
            what: "port",
            text: s.into(),
            why,
        };
        let (a, b) = split(s);
        let first: u16 = a.parse().map_err(|e| err(format!("{a:?}: {e}")))?;
        let last: u16 = b.parse().map_err(|e| err(format!("{b:?}: {e}")))?;
        if last < first || first == 0 {
            return Err(err("needs 1 <= first <= last".into()));
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl IpRange {
    /// Number of addresses.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last) - u32::from(self.first)) + 1
    }

    /// Never empty (first <= last).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`-th address (`i < len()`).
    pub fn nth(&self, i: u64) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.first).wrapping_add(u32::try_from(i).unwrap_or(0)))
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.first)..=u32::from(self.last)).contains(&u32::from(ip))
    }
}

impl PortRange {
    /// Number of ports.
    pub fn len(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`-th port (`i < len()`).
    pub fn nth(&self, i: u64) -> u16 {
        self.first.wrapping_add(u16::try_from(i).unwrap_or(0))
    }
}

/// The flows of a run: source addresses vary fastest, then source ports, destination
/// addresses, destination ports (mixed radix over the four ranges).
#[derive(Debug, Clone, Copy)]
pub struct FlowSet {
    pub src_ip: IpRange,
    pub src_port: PortRange,
    pub dst_ip: IpRange,
    pub dst_port: PortRange,
    /// Flows in use (at most the size of the tuple space).
    pub count: u64,
}

impl FlowSet {
    /// A set of `count` flows (0 = the whole tuple space), capped at the tuple space.
    pub fn new(
        src_ip: IpRange,
        src_port: PortRange,
        dst_ip: IpRange,
        dst_port: PortRange,
        count: u64,
    ) -> FlowSet {
        let space = src_ip.len() * src_port.len() * dst_ip.len() * dst_port.len();
        let count = if count == 0 { space } else { count.min(space) };
        FlowSet {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            count,
        }
    }

    /// Size of the tuple space.
    pub fn space(&self) -> u64 {
        self.src_ip.len() * self.src_port.len() * self.dst_ip.len() * self.dst_port.len()
    }

    /// The tuple of flow `i` (taken modulo `count`).
    pub fn tuple(&self, i: u64) -> Tuple {
        let mut i = i % self.count.max(1);
        let a = i % self.src_ip.len();
        i /= self.src_ip.len();
        let p = i % self.src_port.len();
        i /= self.src_port.len();
        let d = i % self.dst_ip.len();
        i /= self.dst_ip.len();
        let q = i % self.dst_port.len();
        Tuple {
            src: self.src_ip.nth(a),
            dst: self.dst_ip.nth(d),
            sport: self.src_port.nth(p),
            dport: self.dst_port.nth(q),
        }
    }
}

/// Cycles through flows without a division per packet (an odometer over the four ranges).
#[derive(Debug, Clone)]
pub struct FlowCursor {
    set: FlowSet,
    next: u64,
    digits: [u64; 4],
}

impl FlowCursor {
    /// Starts at flow 0.
    pub fn new(set: FlowSet) -> FlowCursor {
        FlowCursor {
            set,
            next: 0,
            digits: [0; 4],
        }
    }

    /// The next flow's index and tuple.
    #[inline]
    pub fn next_flow(&mut self) -> (u64, Tuple) {
        let s = &self.set;
        let [a, p, d, q] = self.digits;
        let t = Tuple {
            src: s.src_ip.nth(a),
            dst: s.dst_ip.nth(d),
            sport: s.src_port.nth(p),
            dport: s.dst_port.nth(q),
        };
        let i = self.next;
        self.next += 1;
        if self.next >= s.count {
            self.next = 0;
            self.digits = [0; 4];
        } else {
            let radix = [
                s.src_ip.len(),
                s.src_port.len(),
                s.dst_ip.len(),
                s.dst_port.len(),
            ];
            for (digit, r) in self.digits.iter_mut().zip(radix) {
                *digit += 1;
                if *digit < r {
                    break;
                }
                *digit = 0;
            }
        }
        (i, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_reject() {
        let r: IpRange = "10.0.0.1-10.0.0.4".parse().unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.nth(3), Ipv4Addr::new(10, 0, 0, 4));
        assert!(r.contains(Ipv4Addr::new(10, 0, 0, 2)) && !r.contains(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!("10.0.0.9".parse::<IpRange>().unwrap().len(), 1);
        assert!("10.0.0.4-10.0.0.1".parse::<IpRange>().is_err());
        assert!("10.0.0"
            .parse::<IpRange>()
            .unwrap_err()
            .to_string()
            .contains("10.0.0"));
        let p: PortRange = "1024-65535".parse().unwrap();
        assert_eq!(p.len(), 64512);
        assert!("0".parse::<PortRange>().is_err());
        assert!("90-80".parse::<PortRange>().is_err());
        assert_eq!(p.to_string(), "1024-65535");
    }

    #[test]
    fn flows_cover_distinct_tuples() {
        let set = FlowSet::new(
            "10.0.0.1-10.0.0.3".parse().unwrap(),
            "1000-1004".parse().unwrap(),
            "10.9.9.9".parse().unwrap(),
            "80-81".parse().unwrap(),
            0,
        );
        assert_eq!(set.count, 30);
        let mut seen = std::collections::HashSet::new();
        let mut c = FlowCursor::new(set);
        for i in 0..30 {
            let (n, t) = c.next_flow();
            assert_eq!((n, t), (i, set.tuple(i)), "cursor agrees with the formula");
            assert!(seen.insert((t.src, t.sport, t.dst, t.dport)));
        }
        assert_eq!(c.next_flow().0, 0, "wraps around");
        let capped = FlowSet::new(set.src_ip, set.src_port, set.dst_ip, set.dst_port, 1000);
        assert_eq!(capped.count, 30);
        let part = FlowSet::new(set.src_ip, set.src_port, set.dst_ip, set.dst_port, 7);
        let mut c = FlowCursor::new(part);
        for i in 0..20 {
            let (n, t) = c.next_flow();
            assert_eq!((n, t), (i % 7, part.tuple(i % 7)));
        }
    }
}
