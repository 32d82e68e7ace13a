//! SYN cookies: the initial sequence number the director answers a SYN with encodes what it
//! must remember of that SYN (the client's MSS, window scale and SACK offer), keyed by a
//! secret and a coarse clock, so that only a client that received the SYN-ACK can complete
//! the handshake and nothing is stored until it does.
//!
//! The layout follows Linux's (`net/ipv4/syncookies.c`): the top 8 bits carry a counter that
//! advances every 64 s, the low 24 bits a keyed hash plus the encoded options, the whole
//! offset by another keyed hash of the 4-tuple and the client's ISN. A cookie is accepted for
//! two counter periods. Linux keeps only the MSS in the cookie (window scale and SACK ride
//! in TCP timestamps); the director, which never offers timestamps, carries them in the
//! cookie too, as Alibaba's LVS did: 7 bits of options, all of them checked on return.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

/// The MSS values a cookie can carry (Linux's table): the largest not above the client's.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// Low bits of a cookie that hold hash + options.
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// Milliseconds per counter step.
const PERIOD_MS: u64 = 64_000;
/// Counter steps a cookie stays valid (the current one and the one before).
const MAX_AGE: u32 = 2;
/// Options fit in 7 bits.
const OPTS_LIMIT: u32 = 1 << 7;
/// Window scale code meaning "not negotiated".
const NO_WSCALE: u8 = 15;

/// What a cookie remembers of the client's SYN (and what the director agreed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynOpts {
    /// Index into [`MSS_TABLE`].
    pub mss_idx: u8,
    /// The client's window scale shift, when scaling was negotiated.
    pub wscale: Option<u8>,
    /// SACK negotiated.
    pub sack: bool,
}

impl SynOpts {
    /// The table entry for a client MSS (the largest not above it; the smallest if below all).
    pub fn mss_index(client_mss: u16) -> u8 {
        let i = MSS_TABLE.iter().rposition(|m| *m <= client_mss).unwrap_or(0);
        u8::try_from(i).unwrap_or(0)
    }

    /// The MSS this cookie stands for.
    pub fn mss(&self) -> u16 {
        MSS_TABLE[usize::from(self.mss_idx) % MSS_TABLE.len()]
    }

    fn encode(&self) -> u32 {
        let ws = self.wscale.map_or(NO_WSCALE, |w| w.min(14));
        u32::from(self.mss_idx & 3) | (u32::from(ws) << 2) | (u32::from(self.sack) << 6)
    }

    fn decode(v: u32) -> SynOpts {
        let ws = u8::try_from((v >> 2) & 0xf).unwrap_or(NO_WSCALE);
        SynOpts { mss_idx: u8::try_from(v & 3).unwrap_or(0), wscale: (ws <= 14).then_some(ws), sack: (v >> 6) & 1 == 1 }
    }
}

/// The secret cookies are keyed with: one per process, shared by all workers (a client's ACK
/// may reach another worker than its SYN did). SipHash-1-3 under a random 128-bit key (std's
/// `RandomState`), as Linux keys its cookies with SipHash.
#[derive(Debug, Clone)]
pub struct CookieKey(std::collections::hash_map::RandomState);

impl CookieKey {
    /// A fresh random key.
    pub fn random() -> CookieKey {
        CookieKey(std::collections::hash_map::RandomState::new())
    }

    /// The process's key.
    pub fn process() -> &'static CookieKey {
        static KEY: OnceLock<CookieKey> = OnceLock::new();
        KEY.get_or_init(CookieKey::random)
    }

    fn hash(&self, t: &Tuple, salt: u32) -> u32 {
        use std::hash::BuildHasher;
        let h = self.0.hash_one((u32::from(t.src), u32::from(t.dst), t.sport, t.dport, salt));
        // Fold both halves in: ahash's output is 64 bits.
        u32::try_from((h ^ (h >> 32)) & 0xffff_ffff).unwrap_or(0)
    }
}

/// The connection a cookie is for, as the client sends it (client -> VIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

fn counter(now_ms: u64) -> u32 {
    u32::try_from((now_ms / PERIOD_MS) & 0xffff_ffff).unwrap_or(0)
}

/// The ISN to answer the SYN of `t` (client ISN `client_isn`) with at `now_ms`.
pub fn make(key: &CookieKey, t: &Tuple, client_isn: u32, now_ms: u64, opts: SynOpts) -> u32 {
    let count = counter(now_ms);
    key.hash(t, u32::MAX)
        .wrapping_add(client_isn)
        .wrapping_add(count << COOKIE_BITS)
        .wrapping_add(key.hash(t, count).wrapping_add(opts.encode()) & COOKIE_MASK)
}

/// The options a returning cookie carries, if it is one this key made for `t` and
/// `client_isn` within the last two periods.
pub fn check(key: &CookieKey, t: &Tuple, client_isn: u32, cookie: u32, now_ms: u64) -> Option<SynOpts> {
    let count = counter(now_ms);
    let c = cookie.wrapping_sub(key.hash(t, u32::MAX)).wrapping_sub(client_isn);
    let diff = count.wrapping_sub(c >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
    if diff >= MAX_AGE {
        return None;
    }
    let made_at = count.wrapping_sub(diff);
    let opts = c.wrapping_sub(key.hash(t, made_at)) & COOKIE_MASK;
    (opts < OPTS_LIMIT).then(|| SynOpts::decode(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Tuple {
        Tuple { src: Ipv4Addr::new(198, 51, 100, 7), dst: Ipv4Addr::new(10, 0, 0, 100), sport: 40_000, dport: 80 }
    }

    #[test]
    fn round_trips_every_option_combination() {
        let key = CookieKey::random();
        for mss_idx in 0..4 {
            for wscale in (0..=14).map(Some).chain([None]) {
                for sack in [false, true] {
                    let o = SynOpts { mss_idx, wscale, sack };
                    let c = make(&key, &t(), 12345, 1_000_000, o);
                    assert_eq!(check(&key, &t(), 12345, c, 1_000_000), Some(o));
                }
            }
        }
    }

    #[test]
    fn expires_after_two_periods_and_binds_the_tuple_isn_and_key() {
        let key = CookieKey::random();
        let o = SynOpts { mss_idx: 3, wscale: Some(7), sack: true };
        let now = 10 * PERIOD_MS + 5;
        let c = make(&key, &t(), 777, now, o);
        assert_eq!(check(&key, &t(), 777, c, now + PERIOD_MS), Some(o), "valid in the next period");
        assert_eq!(check(&key, &t(), 777, c, now + 2 * PERIOD_MS), None, "expired");
        assert_eq!(check(&key, &t(), 777 + 1000, c, now), None, "another client ISN");
        assert_eq!(check(&key, &Tuple { sport: 40_001, ..t() }, 777, c, now), None, "another port");
        assert_eq!(check(&key, &Tuple { src: Ipv4Addr::new(198, 51, 100, 8), ..t() }, 777, c, now), None, "another client");
        assert_eq!(check(&CookieKey::random(), &t(), 777, c, now), None, "another key");
    }

    #[test]
    fn random_acks_almost_never_pass() {
        let key = CookieKey::random();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut passed = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (isn, cookie) = (u32::try_from(x >> 32).unwrap_or(0), u32::try_from(x & 0xffff_ffff).unwrap_or(0));
            passed += usize::from(check(&key, &t(), isn, cookie, 1_000_000).is_some());
        }
        // Expected rate: 2 periods x 128 option values / 2^32 ~ 6e-8.
        assert!(passed <= 1, "{passed} random ACKs passed");
    }

    #[test]
    fn mss_index_picks_the_largest_not_above() {
        assert_eq!(SynOpts::mss_index(1460), 3);
        assert_eq!(SynOpts::mss_index(1452), 2);
        assert_eq!(SynOpts::mss_index(9000), 3);
        assert_eq!(SynOpts::mss_index(100), 0);
        assert_eq!(SynOpts { mss_idx: 1, wscale: None, sack: false }.mss(), 1300);
    }
}
