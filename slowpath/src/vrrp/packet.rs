//! The VRRP advertisement (IP protocol 112, the IP payload), versions 2 and 3.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! v2: | Auth Type     |   Adver Int   |          Checksum             |
//! v3: |(rsvd) |     Max Adver Int     |          Checksum             |
//! |                     IPv4 address(es) ...                      |
//! v2: |                  Authentication Data (8 bytes)                |
//! ```
//!
//! VRRPv2 (RFC 3768): the advert interval is in seconds, the checksum covers the VRRP message
//! alone, 8 bytes of authentication data end the message (keepalived sends them even with no
//! authentication). VRRPv3 (RFC 5798, IPv4): the interval is 12 bits of centiseconds, there is
//! no authentication, and the checksum also covers the IPv4 pseudo-header (source,
//! destination, zero, protocol 112, VRRP length).
//!
//! [`Packet::new_checked`] accepts exactly one well-formed message (keepalived refuses a
//! payload longer than its count of addresses says); [`Repr::parse`] also checks the
//! checksum, the type and the authentication type.

use std::net::Ipv4Addr;

use fastpath::wire::checksum;
use fastpath::wire::IpProtocol;

/// What is wrong with a received VRRP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated: {len} bytes, need {need}")]
    Truncated { len: usize, need: usize },
    #[error("{len} bytes where the address count says {want}")]
    Length { len: usize, want: usize },
    #[error("version {0} (expected 2 or 3)")]
    Version(u8),
    #[error("type {0} (only 1, advertisement, exists)")]
    Type(u8),
    #[error("authentication type {0} (0 none and 1 simple password are supported)")]
    AuthType(u8),
    #[error("bad checksum")]
    Checksum,
    #[error("advertisement interval 0")]
    AdvertInt,
}

mod field {
    use std::ops::Range;
    /// Version (high nibble) and type (low nibble).
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT_IP: usize = 3;
    /// VRRPv2: authentication type.
    pub const AUTH_TYPE: usize = 4;
    /// VRRPv2: advertisement interval in seconds.
    pub const ADVER_INT_V2: usize = 5;
    /// VRRPv3: 4 reserved bits and 12 bits of Max Adver Int in centiseconds.
    pub const MAX_ADVER_INT: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const ADDRS: usize = 8;
    /// VRRPv2: the authentication data after the addresses.
    pub const AUTH_LEN: usize = 8;
}

/// The fixed header's length.
pub const HEADER_LEN: usize = field::ADDRS;
/// The VRRPv3 Max Adver Int field's largest value (centiseconds).
pub const MAX_V3_ADVERT_CENTIS: u16 = 0x0fff;
/// The only VRRP message type.
const TYPE_ADVERTISEMENT: u8 = 1;
const AUTH_NONE: u8 = 0;
const AUTH_PASS: u8 = 1;

/// The VRRP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// A read (and, with `T: AsMut<[u8]>`, write) view of a VRRP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks (for emitting into a buffer of [`Repr::buffer_len`]).
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of untrusted bytes: the version is 2 or 3 and the length is exactly what the
    /// header says (accessors cannot panic afterwards).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated {
                len,
                need: HEADER_LEN,
            });
        }
        let want = message_len(self.version()?, self.count_ip());
        if len < want {
            return Err(Error::Truncated { len, need: want });
        }
        if len > want {
            return Err(Error::Length { len, want });
        }
        Ok(())
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version_number(&self) -> u8 {
        self.b()[field::VER_TYPE] >> 4
    }

    pub fn version(&self) -> Result<Version, Error> {
        match self.version_number() {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            v => Err(Error::Version(v)),
        }
    }

    pub fn msg_type(&self) -> u8 {
        self.b()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.b()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.b()[field::PRIORITY]
    }

    pub fn count_ip(&self) -> u8 {
        self.b()[field::COUNT_IP]
    }

    /// VRRPv2 only.
    pub fn auth_type(&self) -> u8 {
        self.b()[field::AUTH_TYPE]
    }

    /// VRRPv2 only: seconds.
    pub fn advert_int_v2(&self) -> u8 {
        self.b()[field::ADVER_INT_V2]
    }

    /// VRRPv3 only: centiseconds (the low 12 bits).
    pub fn max_advert_int(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]]) & MAX_V3_ADVERT_CENTIS
    }

    pub fn checksum(&self) -> u16 {
        let c = &self.b()[field::CHECKSUM];
        u16::from_be_bytes([c[0], c[1]])
    }

    /// The `i`th address (`i < count_ip()`).
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        let at = field::ADDRS + 4 * i;
        let a = &self.b()[at..at + 4];
        Ipv4Addr::new(a[0], a[1], a[2], a[3])
    }

    /// VRRPv2 only: the 8 bytes after the addresses (zeros for a VRRPv3 packet, which has
    /// none; a checked packet never makes this panic).
    pub fn auth_data(&self) -> [u8; 8] {
        let at = field::ADDRS + 4 * usize::from(self.count_ip());
        let mut out = [0; 8];
        if let Some(a) = self.b().get(at..at + field::AUTH_LEN) {
            out.copy_from_slice(a);
        }
        out
    }

    /// True when the checksum is right; `src`/`dst` (the IP header's) count for VRRPv3 only.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let msg = self.b();
        let sum = match self.version() {
            Ok(Version::V2) => checksum::sum(msg),
            Ok(Version::V3) => checksum::sum(msg) + pseudo_sum(src, dst, msg.len()),
            Err(_) => return false,
        };
        checksum::fold(sum) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn m(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_version_type(&mut self, version: Version) {
        self.m()[field::VER_TYPE] = version.number() << 4 | TYPE_ADVERTISEMENT;
    }

    pub fn set_vrid(&mut self, v: u8) {
        self.m()[field::VRID] = v;
    }

    pub fn set_priority(&mut self, v: u8) {
        self.m()[field::PRIORITY] = v;
    }

    pub fn set_count_ip(&mut self, v: u8) {
        self.m()[field::COUNT_IP] = v;
    }

    pub fn set_auth_type(&mut self, v: u8) {
        self.m()[field::AUTH_TYPE] = v;
    }

    pub fn set_advert_int_v2(&mut self, secs: u8) {
        self.m()[field::ADVER_INT_V2] = secs;
    }

    /// Writes the 12-bit field with the reserved bits zero.
    pub fn set_max_advert_int(&mut self, centis: u16) {
        let v = (centis & MAX_V3_ADVERT_CENTIS).to_be_bytes();
        self.m()[field::MAX_ADVER_INT].copy_from_slice(&v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.m()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_addr(&mut self, i: usize, a: Ipv4Addr) {
        let at = field::ADDRS + 4 * i;
        self.m()[at..at + 4].copy_from_slice(&a.octets());
    }

    pub fn set_auth_data(&mut self, data: [u8; 8]) {
        let at = field::ADDRS + 4 * usize::from(self.count_ip());
        self.m()[at..at + field::AUTH_LEN].copy_from_slice(&data);
    }

    /// Computes and stores the checksum (`src`/`dst` count for VRRPv3 only).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let msg = self.b();
        let mut sum = checksum::sum(msg);
        if self.version() == Ok(Version::V3) {
            sum += pseudo_sum(src, dst, msg.len());
        }
        let c = !checksum::fold(sum);
        self.set_checksum(c);
    }
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> u32 {
    // A message is at most 8 + 255 * 4 + 8 bytes.
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    checksum::pseudo_header_sum(src, dst, IpProtocol::Vrrp, len)
}

fn message_len(version: Version, count: u8) -> usize {
    let auth = match version {
        Version::V2 => field::AUTH_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + 4 * usize::from(count) + auth
}

/// A VRRP advertisement, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// The advertisement interval in centiseconds for both versions (VRRPv2 carries whole
    /// seconds: a multiple of 100, at most 25500; VRRPv3 at most 4095).
    pub advert_centis: u16,
    /// VRRPv2 simple password (auth type 1), zero-padded; `None`: auth type 0. Always `None`
    /// for VRRPv3.
    pub auth: Option<[u8; 8]>,
    /// At most 255.
    pub addrs: Vec<Ipv4Addr>,
}

impl Repr {
    /// Parses a message heard from `src` to `dst` (the IP header's addresses, for the VRRPv3
    /// checksum).
    pub fn parse<T: AsRef<[u8]>>(
        p: &Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Repr, Error> {
        p.check_len()?;
        let version = p.version()?;
        if p.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::Type(p.msg_type()));
        }
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let (advert_centis, auth) = match version {
            Version::V2 => {
                let auth = match p.auth_type() {
                    AUTH_NONE => None,
                    AUTH_PASS => Some(p.auth_data()),
                    other => return Err(Error::AuthType(other)),
                };
                (u16::from(p.advert_int_v2()) * 100, auth)
            }
            Version::V3 => (p.max_advert_int(), None),
        };
        if advert_centis == 0 {
            return Err(Error::AdvertInt);
        }
        let addrs = (0..usize::from(p.count_ip())).map(|i| p.addr(i)).collect();
        Ok(Repr {
            version,
            vrid: p.vrid(),
            priority: p.priority(),
            advert_centis,
            auth,
            addrs,
        })
    }

    pub fn buffer_len(&self) -> usize {
        message_len(self.version, self.count())
    }

    fn count(&self) -> u8 {
        u8::try_from(self.addrs.len()).unwrap_or(u8::MAX)
    }

    /// Writes the message into `p` (at least [`Repr::buffer_len`] bytes) with its checksum
    /// for a packet from `src` to `dst`. Addresses past 255 are left out.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) {
        p.set_version_type(self.version);
        p.set_vrid(self.vrid);
        p.set_priority(self.priority);
        p.set_count_ip(self.count());
        match self.version {
            Version::V2 => {
                p.set_auth_type(if self.auth.is_some() {
                    AUTH_PASS
                } else {
                    AUTH_NONE
                });
                p.set_advert_int_v2(u8::try_from(self.advert_centis / 100).unwrap_or(u8::MAX));
            }
            Version::V3 => p.set_max_advert_int(self.advert_centis),
        }
        for (i, a) in self.addrs.iter().take(255).enumerate() {
            p.set_addr(i, *a);
        }
        if self.version == Version::V2 {
            p.set_auth_data(self.auth.unwrap_or([0; 8]));
        }
        p.fill_checksum(src, dst);
    }

    /// The message as bytes.
    pub fn to_bytes(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst);
        buf
    }
}

/// A keepalived `auth_pass` as the 8 bytes of authentication data (zero-padded, cut at 8).
pub fn auth_data(pass: &str) -> [u8; 8] {
    let mut out = [0; 8];
    for (o, b) in out.iter_mut().zip(pass.bytes()) {
        *o = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 200, 1);
    const MCAST: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

    /// keepalived 2.2.7 (Debian 12), captured with tcpdump on a veth: `vrrp_instance V2`,
    /// vrid 51, priority 150, advert_int 1, auth PASS "secret1", two VIPs; from
    /// 192.168.200.1 to 224.0.0.18.
    #[rustfmt::skip]
    const KEEPALIVED_V2: [u8; 24] = [
        0x21,                   // version 2, type 1 (advertisement)
        0x33,                   // vrid 51
        0x96,                   // priority 150
        0x02,                   // 2 addresses
        0x01,                   // auth type 1 (simple password)
        0x01,                   // advert interval 1 s
        0xc8, 0x60,             // checksum
        0xc0, 0xa8, 0xc8, 0x64, // 192.168.200.100
        0xc0, 0xa8, 0xc8, 0x65, // 192.168.200.101
        b's', b'e', b'c', b'r', b'e', b't', b'1', 0x00, // "secret1", zero-padded
    ];

    /// The header of the same instance's priority-0 advert when keepalived stopped (SIGTERM);
    /// the addresses and password follow as above.
    #[rustfmt::skip]
    const KEEPALIVED_V2_STOP: [u8; 8] = [
        0x21, 0x33,             // version 2, type 1, vrid 51
        0x00,                   // priority 0: the master is leaving
        0x02, 0x01, 0x01,       // 2 addresses, password, 1 s
        0x5e, 0x61,             // checksum
    ];

    /// keepalived 2.2.7: `version 3`, vrid 52, priority 100, advert_int 0.5, one VIP; from
    /// 192.168.200.1 to 224.0.0.18 (the checksum covers that pseudo-header).
    #[rustfmt::skip]
    const KEEPALIVED_V3: [u8; 12] = [
        0x31,                   // version 3, type 1
        0x34,                   // vrid 52
        0x64,                   // priority 100
        0x01,                   // 1 address
        0x00, 0x32,             // reserved 0, max advert interval 50 cs
        0x78, 0x4f,             // checksum (with the pseudo-header)
        0xc0, 0xa8, 0xc8, 0x66, // 192.168.200.102
    ];

    fn v2_repr() -> Repr {
        Repr {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            advert_centis: 100,
            auth: Some(auth_data("secret1")),
            addrs: vec![
                Ipv4Addr::new(192, 168, 200, 100),
                Ipv4Addr::new(192, 168, 200, 101),
            ],
        }
    }

    fn v3_repr() -> Repr {
        Repr {
            version: Version::V3,
            vrid: 52,
            priority: 100,
            advert_centis: 50,
            auth: None,
            addrs: vec![Ipv4Addr::new(192, 168, 200, 102)],
        }
    }

    #[test]
    fn parses_keepalived_v2() {
        let p = Packet::new_checked(&KEEPALIVED_V2[..]).unwrap();
        assert_eq!(
            (p.version_number(), p.msg_type(), p.vrid(), p.priority()),
            (2, 1, 51, 150)
        );
        assert_eq!((p.count_ip(), p.auth_type(), p.advert_int_v2()), (2, 1, 1));
        assert_eq!(p.checksum(), 0xc860);
        // VRRPv2's checksum does not depend on the IP addresses.
        assert!(p.verify_checksum(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED));
        assert_eq!(Repr::parse(&p, SRC, MCAST).unwrap(), v2_repr());
    }

    #[test]
    fn emits_what_keepalived_sends_v2() {
        let mut buf = [0xa5; 24];
        v2_repr().emit(&mut Packet::new_unchecked(&mut buf[..]), SRC, MCAST);
        assert_eq!(buf, KEEPALIVED_V2);
        // Priority 0 on shutdown: only the priority and the checksum change.
        let stop = Repr {
            priority: 0,
            ..v2_repr()
        }
        .to_bytes(SRC, MCAST);
        assert_eq!(stop[..8], KEEPALIVED_V2_STOP);
        assert_eq!(stop[8..], KEEPALIVED_V2[8..]);
    }

    #[test]
    fn parses_and_emits_keepalived_v3() {
        let p = Packet::new_checked(&KEEPALIVED_V3[..]).unwrap();
        assert_eq!(p.max_advert_int(), 50);
        assert_eq!(Repr::parse(&p, SRC, MCAST).unwrap(), v3_repr());
        // The pseudo-header counts: another destination fails the checksum.
        let other = Ipv4Addr::new(192, 168, 200, 2);
        assert_eq!(Repr::parse(&p, SRC, other), Err(Error::Checksum));
        let mut buf = [0xa5; 12];
        v3_repr().emit(&mut Packet::new_unchecked(&mut buf[..]), SRC, MCAST);
        assert_eq!(buf, KEEPALIVED_V3);
    }

    #[test]
    fn v3_keeps_only_twelve_bits_and_ignores_reserved_ones() {
        let r = Repr {
            advert_centis: MAX_V3_ADVERT_CENTIS,
            ..v3_repr()
        };
        let mut bytes = r.to_bytes(SRC, MCAST);
        assert_eq!(bytes[4..6], [0x0f, 0xff]);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap(), SRC, MCAST),
            Ok(r)
        );
        // Reserved bits set by a sender are not part of the interval (fix the checksum).
        bytes[4] |= 0xf0;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.fill_checksum(SRC, MCAST);
        assert_eq!(p.max_advert_int(), MAX_V3_ADVERT_CENTIS);
    }

    #[test]
    fn round_trips() {
        for r in [
            v2_repr(),
            v3_repr(),
            Repr {
                auth: None,
                addrs: vec![],
                priority: 255,
                ..v2_repr()
            },
            Repr {
                advert_centis: 10,
                addrs: vec![Ipv4Addr::new(10, 0, 0, 1); 255],
                ..v3_repr()
            },
        ] {
            let bytes = r.to_bytes(SRC, MCAST);
            assert_eq!(bytes.len(), r.buffer_len());
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Repr::parse(&p, SRC, MCAST).unwrap(), r);
        }
    }

    #[test]
    fn truncated_and_long_inputs_are_errors() {
        for len in 0..KEEPALIVED_V2.len() {
            let e = Packet::new_checked(&KEEPALIVED_V2[..len]).unwrap_err();
            assert!(matches!(e, Error::Truncated { .. }), "{len}: {e}");
        }
        let mut long = KEEPALIVED_V3.to_vec();
        long.push(0);
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            Error::Length { len: 13, want: 12 }
        );
        // A count of addresses larger than the message.
        let mut bad = KEEPALIVED_V3;
        bad[3] = 9;
        assert!(matches!(
            Packet::new_checked(&bad[..]),
            Err(Error::Truncated { len: 12, need: 44 })
        ));
    }

    #[test]
    fn garbage_is_refused() {
        let fix = |mut b: Vec<u8>| {
            Packet::new_unchecked(&mut b[..]).fill_checksum(SRC, MCAST);
            b
        };
        let parse = |b: &[u8]| Packet::new_checked(b).and_then(|p| Repr::parse(&p, SRC, MCAST));
        let mut b = KEEPALIVED_V2.to_vec();
        b[0] = 0x41;
        assert_eq!(parse(&b), Err(Error::Version(4)));
        b[0] = 0x22;
        assert_eq!(parse(&fix(b.clone())), Err(Error::Type(2)));
        let mut b = KEEPALIVED_V2.to_vec();
        b[4] = 2; // IPsec AH
        assert_eq!(parse(&fix(b.clone())), Err(Error::AuthType(2)));
        b[4] = 1;
        b[5] = 0;
        assert_eq!(parse(&fix(b)), Err(Error::AdvertInt));
        let mut b = KEEPALIVED_V2.to_vec();
        b[20] ^= 1; // the password is covered by the checksum
        assert_eq!(parse(&b), Err(Error::Checksum));
        for seed in 0u8..=255 {
            let junk: Vec<u8> = (0..20u8)
                .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
                .collect();
            for len in 0..junk.len() {
                let _ = parse(&junk[..len]); // never panics
            }
        }
    }
}
