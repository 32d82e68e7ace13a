//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! A checksum is computed in two steps: [`sum`] accumulates the ones'-complement sum of
//! some bytes (sums of several pieces may be added together, e.g. a pseudo header and a
//! segment), then [`fold`] reduces it to 16 bits. The value stored in a header is the
//! complement of the folded sum; [`checksum`] does both for one slice.
//!
//! NAT code never recomputes a checksum over a whole packet: it rewrites a field and calls
//! [`update16`] / [`update32`] / [`update_addr`] with the old and new field values.

use std::net::Ipv4Addr;

use super::ipv4::IpProtocol;

/// Ones'-complement sum of `data` as big-endian 16-bit words (an odd trailing byte is
/// padded with zero), already folded to at most 16 bits.
///
/// Because the result is at most `0xffff`, up to 65536 results can be added in a `u32`
/// without overflow before calling [`fold`].
pub fn sum(data: &[u8]) -> u32 {
    // Sum 32-bit words into a 64-bit accumulator: the ones'-complement sum does not depend
    // on the word size once folded (RFC 1071, section 2(B)).
    let mut acc: u64 = 0;
    let (words, mut rest) = data.as_chunks::<4>();
    for w in words {
        acc += u64::from(u32::from_be_bytes(*w));
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&last) = rest.first() {
        acc += u64::from(u16::from_be_bytes([last, 0]));
    }
    // Fold 64 -> 16 bits, keeping the end-around carries.
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    u32::from(u16::try_from(acc).unwrap_or(0xffff))
}

/// Folds a 32-bit ones'-complement accumulator into 16 bits (end-around carry).
///
/// The result is zero only if `acc` is zero.
pub fn fold(acc: u32) -> u16 {
    // Two steps always suffice for 32 bits (the first leaves at most 0x1fffe), and take no
    // data-dependent branch.
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    u16::try_from(acc).unwrap_or(0xffff)
}

/// The Internet checksum of `data`: the complement of its folded ones'-complement sum.
///
/// Computing it over data that includes a correct checksum field yields zero.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Ones'-complement sum of the IPv4 pseudo header used by TCP and UDP checksums:
/// source address, destination address, zero, protocol, and the L4 length.
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16)
        + (s & 0xffff)
        + (d >> 16)
        + (d & 0xffff)
        + u32::from(u8::from(protocol))
        + u32::from(length)
}

/// RFC 1624 equation 3: the new checksum after one 16-bit word of the covered data
/// changed from `old` to `new`, `HC' = ~(~HC + ~m + m')`.
///
/// The word must start at an even offset of the checksummed data (see [`update16_at`]
/// otherwise). The result equals a full recomputation unless the covered data becomes
/// entirely zero, which cannot happen for IPv4 headers or for TCP/UDP (the pseudo header
/// holds a non-zero protocol); in that case it gives `0x0000` where a full recomputation
/// gives `0xffff`.
pub fn update16(old_csum: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!old_csum) + u32::from(!old) + u32::from(new))
}

/// Like [`update16`], for a 16-bit value at byte offset `offset` of the checksummed data;
/// a value at an odd offset straddles two words and counts byte-swapped.
pub fn update16_at(old_csum: u16, offset: usize, old: u16, new: u16) -> u16 {
    if offset & 1 == 0 {
        update16(old_csum, old, new)
    } else {
        update16(old_csum, old.swap_bytes(), new.swap_bytes())
    }
}

/// RFC 1624 update for a 32-bit value (two aligned words, e.g. an IPv4 address) that
/// changed from `old` to `new`.
pub fn update32(old_csum: u16, old: u32, new: u32) -> u16 {
    let acc = u32::from(!old_csum) + (!old >> 16) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    !fold(acc)
}

/// The `~m + m'` terms of RFC 1624 equation 3 for a 32-bit value (two aligned words) changed
/// from `old` to `new`, unfolded: deltas of several changes add up (each is below 2^18) and
/// go into a checksum at once with [`apply_delta`].
#[inline]
pub fn delta32(old: u32, new: u32) -> u32 {
    (!old >> 16) + (!old & 0xffff) + (new >> 16) + (new & 0xffff)
}

/// [`delta32`] for one aligned 16-bit word.
#[inline]
pub fn delta16(old: u16, new: u16) -> u32 {
    u32::from(!old) + u32::from(new)
}

/// The checksum after changes whose [`delta32`]/[`delta16`] terms add up to `delta`: one
/// fold for all of them, the same result as applying them one by one with [`update32`].
#[inline]
pub fn apply_delta(old_csum: u16, delta: u32) -> u16 {
    !fold(u32::from(!old_csum) + delta)
}

/// [`update32`] for an IPv4 address rewritten from `old` to `new`.
pub fn update_addr(old_csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update32(old_csum, u32::from(old), u32::from(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::XorShift;

    /// Straightforward RFC 1071 reference implementation, 16 bits at a time.
    fn reference_checksum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]);
            let lo = u32::from(pair.get(1).copied().unwrap_or(0));
            acc += (hi << 8) | lo;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !u16::try_from(acc).unwrap()
    }

    fn put16(data: &mut [u8], at: usize, v: u16) {
        data[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    fn get16(data: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([data[at], data[at + 1]])
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        #[rustfmt::skip]
        let header = [
            0x45, 0x00, 0x00, 0x73, // version/IHL, TOS, total length 115
            0x00, 0x00, 0x40, 0x00, // ident, DF
            0x40, 0x11, 0xb8, 0x61, // TTL 64, UDP, checksum 0xb861
            0xc0, 0xa8, 0x00, 0x01, // 192.168.0.1
            0xc0, 0xa8, 0x00, 0xc7, // 192.168.0.199
        ];
        assert_eq!(checksum(&header), 0);
        let mut zeroed = header;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    #[test]
    fn edge_values() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0, 0, 0]), 0xffff);
        assert_eq!(checksum(&[0xff, 0xff]), 0x0000);
        assert_eq!(checksum(&[0xff, 0xff, 0xff, 0xff]), 0x0000);
        assert_eq!(checksum(&[0x12]), !0x1200);
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0xffff_ffff), 0xffff);
        // A large buffer must not overflow the accumulator.
        assert_eq!(
            checksum(&[0xff; 70_000]),
            reference_checksum(&[0xff; 70_000])
        );
    }

    #[test]
    fn sum_matches_reference_on_random_data() {
        let mut rng = XorShift(0x1234_5678_9abc_def0);
        for _ in 0..2000 {
            let len = rng.below(80);
            let data: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
            assert_eq!(checksum(&data), reference_checksum(&data), "{data:02x?}");
        }
    }

    #[test]
    fn sums_of_pieces_add_up() {
        let mut rng = XorShift(42);
        for _ in 0..500 {
            let len = 2 * rng.below(40);
            let data: Vec<u8> = (0..len).map(|_| rng.next_u8()).collect();
            let cut = 2 * rng.below(len / 2 + 1);
            let split = !fold(sum(&data[..cut]) + sum(&data[cut..]));
            assert_eq!(split, checksum(&data));
        }
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(192, 168, 255, 254);
        #[rustfmt::skip]
        let bytes = [
            10, 0, 0, 1,        // source
            192, 168, 255, 254, // destination
            0, 6,               // zero, protocol TCP
            0x05, 0xdc,         // length 1500
        ];
        assert_eq!(
            fold(pseudo_header_sum(src, dst, IpProtocol::Tcp, 1500)),
            fold(sum(&bytes))
        );
    }

    /// Random data whose first word is fixed non-zero, like an IPv4 header's version
    /// field or a pseudo header's protocol, so that it is never entirely zero.
    fn random_words(rng: &mut XorShift, words: usize) -> Vec<u8> {
        let mut data = vec![0u8; 2 * words];
        put16(&mut data, 0, 0x4500);
        for w in 1..words {
            // Bias towards the edge values 0x0000 and 0xffff.
            let v = match rng.below(4) {
                0 => 0x0000,
                1 => 0xffff,
                _ => rng.next_u16(),
            };
            put16(&mut data, 2 * w, v);
        }
        data
    }

    #[test]
    fn update16_matches_recomputation() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        for _ in 0..20_000 {
            let words = 2 + rng.below(20);
            let mut data = random_words(&mut rng, words);
            let at = 2 * (1 + rng.below(words - 1));
            let old = get16(&data, at);
            let csum = checksum(&data);
            let new = match rng.below(4) {
                0 => 0x0000,
                1 => 0xffff,
                2 => !old,
                _ => rng.next_u16(),
            };
            put16(&mut data, at, new);
            assert_eq!(
                update16(csum, old, new),
                checksum(&data),
                "{data:02x?} at {at}"
            );
        }
    }

    #[test]
    fn update16_edge_cases() {
        // Data summing to 0xffff has checksum 0x0000; changing it keeps exactness.
        let mut data = [0x45, 0x00, 0xba, 0xff];
        assert_eq!(checksum(&data), 0x0000);
        put16(&mut data, 2, 0xbb00);
        assert_eq!(update16(0x0000, 0xbaff, 0xbb00), checksum(&data));
        // And back to a sum of 0xffff: both +0 and -0 give the canonical 0x0000.
        assert_eq!(update16(checksum(&data), 0xbb00, 0xbaff), 0x0000);
        // No change at all is the identity, including for 0x0000 and 0xffff checksums.
        for csum in [0x0000, 0xffff, 0x1234] {
            for v in [0x0000, 0xffff, 0x5555] {
                let r = update16(csum, v, v);
                assert!(
                    r == csum || (csum == 0xffff && r == 0x0000),
                    "{csum:#x} {v:#x}"
                );
            }
        }
        // The documented exception: data becoming entirely zero.
        let data = [0x00, 0x01];
        assert_eq!(update16(checksum(&data), 0x0001, 0x0000), 0x0000);
        assert_eq!(checksum(&[0, 0]), 0xffff);
    }

    #[test]
    fn update16_at_odd_offsets() {
        let mut rng = XorShift(7);
        for _ in 0..5000 {
            let words = 3 + rng.below(20);
            let mut data = random_words(&mut rng, words);
            let at = 2 + rng.below(data.len() - 3);
            let old = get16(&data, at);
            let csum = checksum(&data);
            let new = rng.next_u16();
            put16(&mut data, at, new);
            assert_eq!(update16_at(csum, at, old, new), checksum(&data), "at {at}");
        }
    }

    #[test]
    fn update32_matches_recomputation() {
        let mut rng = XorShift(99);
        for _ in 0..20_000 {
            let words = 3 + rng.below(20);
            let mut data = random_words(&mut rng, words);
            let at = 2 * (1 + rng.below(words - 2));
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            let csum = checksum(&data);
            let new = match rng.below(5) {
                0 => 0,
                1 => u32::MAX,
                2 => !old,
                3 => old ^ 0xffff,
                _ => rng.next_u32(),
            };
            data[at..at + 4].copy_from_slice(&new.to_be_bytes());
            assert_eq!(update32(csum, old, new), checksum(&data));
            // Two 16-bit updates give the same result.
            let [o0, o1, o2, o3] = old.to_be_bytes();
            let [n0, n1, n2, n3] = new.to_be_bytes();
            let hi = update16(
                csum,
                u16::from_be_bytes([o0, o1]),
                u16::from_be_bytes([n0, n1]),
            );
            let two = update16(
                hi,
                u16::from_be_bytes([o2, o3]),
                u16::from_be_bytes([n2, n3]),
            );
            assert_eq!(two, checksum(&data));
        }
    }

    #[test]
    fn update_addr_on_ipv4_header() {
        #[rustfmt::skip]
        let mut header = [
            0x45, 0x00, 0x00, 0x3c, // version/IHL, TOS, total length 60
            0x1c, 0x46, 0x40, 0x00, // ident, DF
            0x40, 0x06, 0x00, 0x00, // TTL 64, TCP, checksum (filled below)
            0xac, 0x10, 0x0a, 0x63, // 172.16.10.99
            0xac, 0x10, 0x0a, 0x0c, // 172.16.10.12
        ];
        let c = checksum(&header);
        assert_eq!(c, 0xb1e6);
        put16(&mut header, 10, c);
        let old = Ipv4Addr::new(172, 16, 10, 12);
        let new = Ipv4Addr::new(10, 255, 0, 1);
        header[16..20].copy_from_slice(&new.octets());
        let updated = update_addr(c, old, new);
        put16(&mut header, 10, updated);
        assert_eq!(checksum(&header), 0);
    }
}
