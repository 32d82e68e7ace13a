//! Scalar values: numbers, seconds, ports, IPv4 addresses, prefixes and netmasks.
//!
//! Each parser returns why a text is not acceptable; the caller turns that into an error at
//! the argument. Nothing is clamped or rounded: out of range is an error.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnetwork::Ipv4Network;

/// Most fractional digits accepted in seconds (keepalived reads timers to the microsecond).
const MAX_FRACTION_DIGITS: usize = 6;
/// Largest number of seconds in a timer (about 136 years; keepalived takes `unsigned` seconds).
const MAX_SECONDS: u64 = u32::MAX as u64;

/// A decimal integer in `min..=max`.
pub(crate) fn uint(text: &str, min: u64, max: u64) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a non-negative integer".into());
    }
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("out of range {min}..={max}")),
    }
}

pub(crate) fn u32_in(text: &str, min: u32, max: u32) -> Result<u32, String> {
    let n = uint(text, min.into(), max.into())?;
    u32::try_from(n).map_err(|_| format!("out of range {min}..={max}"))
}

pub(crate) fn u8_in(text: &str, min: u8, max: u8) -> Result<u8, String> {
    let n = uint(text, min.into(), max.into())?;
    u8::try_from(n).map_err(|_| format!("out of range {min}..={max}"))
}

/// A TCP/UDP port, 0..=65535.
pub(crate) fn port(text: &str) -> Result<u16, String> {
    uint(text, 0, u16::MAX.into())
        .map_err(|why| {
            if why.starts_with("out of range") {
                format!("port {why}")
            } else {
                why
            }
        })
        .and_then(|n| u16::try_from(n).map_err(|_| "port out of range 0..=65535".into()))
}

/// A TCP/UDP port a connection can be made to, 1..=65535.
pub(crate) fn nonzero_port(text: &str) -> Result<u16, String> {
    match port(text)? {
        0 => Err("port out of range 1..=65535 (port 0 cannot be connected to)".into()),
        p => Ok(p),
    }
}

/// Seconds as `N` or `N.F` with up to 6 fractional digits, at least `min`.
pub(crate) fn seconds(text: &str, min: Duration) -> Result<Duration, String> {
    const WHY: &str = "not a number of seconds (like 3 or 0.5)";
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || text.ends_with('.') {
        return Err(WHY.into());
    }
    if frac.len() > MAX_FRACTION_DIGITS {
        return Err(format!("more than {MAX_FRACTION_DIGITS} decimal places"));
    }
    let secs = int.parse::<u64>().ok().filter(|s| *s <= MAX_SECONDS);
    let Some(secs) = secs else {
        return Err(format!("more than {MAX_SECONDS} seconds"));
    };
    let micros = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(MAX_FRACTION_DIGITS)
        .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    let d = Duration::new(secs, micros * 1000);
    if d < min {
        return Err(format!("must be at least {}", fmt_seconds(min)));
    }
    Ok(d)
}

/// Writes a duration the way [`seconds`] reads it: `3`, `0.5`, `1.000001`.
pub(crate) fn fmt_seconds(d: Duration) -> String {
    let micros = d.subsec_micros();
    if micros == 0 {
        return d.as_secs().to_string();
    }
    let frac = format!("{micros:06}");
    format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
}

/// An IPv4 address in dotted quad form.
pub(crate) fn ipv4(text: &str) -> Result<Ipv4Addr, String> {
    if text.contains(':') && text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err("IPv6 is not supported yet".into());
    }
    text.parse::<Ipv4Addr>()
        .map_err(|_| "not an IPv4 address".into())
}

/// `a.b.c.d` (a /32) or `a.b.c.d/len`; host bits may be set (an address with its prefix).
pub(crate) fn ipv4_prefix(text: &str) -> Result<Ipv4Network, String> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let ip = ipv4(addr)?;
    let len = match len {
        None => 32,
        Some(len) => u8_in(len, 0, 32).map_err(|why| format!("prefix length {why}"))?,
    };
    Ipv4Network::new(ip, len).map_err(|e| e.to_string())
}

/// A contiguous netmask in dotted quad form (`255.255.255.0`).
pub(crate) fn netmask(text: &str) -> Result<Ipv4Addr, String> {
    let mask = ipv4(text).map_err(|_| "not a dotted netmask like 255.255.255.0".to_owned())?;
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err("netmask bits are not contiguous".into());
    }
    Ok(mask)
}

/// keepalived's booleans for flags that take an optional value.
pub(crate) fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Ok(true),
        "false" | "off" | "no" => Ok(false),
        _ => Err("expected true/false, on/off or yes/no".into()),
    }
}

/// A name (group, interface, script, ...): not empty.
pub(crate) fn name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("empty name".into());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(uint("42", 0, 100), Ok(42));
        assert!(uint("abc", 0, 100).unwrap_err().contains("integer"));
        assert!(uint("-1", 0, 100).is_err());
        assert!(uint("+1", 0, 100).is_err());
        assert!(uint("101", 0, 100).unwrap_err().contains("0..=100"));
        assert!(uint("99999999999999999999999", 0, 100).is_err());
        assert_eq!(port("70000"), Err("port out of range 0..=65535".into()));
        assert_eq!(port("65535"), Ok(65535));
    }

    #[test]
    fn seconds_take_decimals() {
        assert_eq!(seconds("3", Duration::ZERO), Ok(Duration::from_secs(3)));
        assert_eq!(
            seconds("0.5", Duration::ZERO),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            seconds("1.000001", Duration::ZERO),
            Ok(Duration::new(1, 1000))
        );
        for bad in ["", ".5", "5.", "1e3", "-1", "1.2.3", "abc", "1.0000001"] {
            assert!(seconds(bad, Duration::ZERO).is_err(), "{bad}");
        }
        assert!(seconds("0", Duration::from_secs(1)).is_err());
        for s in ["3", "0.5", "1.000001", "10.25"] {
            assert_eq!(fmt_seconds(seconds(s, Duration::ZERO).unwrap()), s);
        }
    }

    #[test]
    fn addresses_and_masks() {
        assert_eq!(ipv4("10.0.0.1"), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ipv4("10.0.0.300"), Err("not an IPv4 address".into()));
        assert_eq!(ipv4("::1"), Err("IPv6 is not supported yet".into()));
        assert_eq!(ipv4_prefix("10.0.0.1").unwrap().prefix(), 32);
        assert_eq!(
            ipv4_prefix("10.0.0.1/24").unwrap().ip(),
            Ipv4Addr::new(10, 0, 0, 1)
        );
        assert!(ipv4_prefix("10.0.0.1/33").is_err());
        assert_eq!(
            netmask("255.255.255.0"),
            Ok(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert!(netmask("255.0.255.0").is_err());
    }
}
