//! Connection entries: the zero-copy [`ConnEntry`] view, its options and the decoded
//! [`SyncConn`] (kept apart so lvsync.rs stays readable; re-exported there).

use std::net::Ipv4Addr;

use super::{
    entry_type, flags, fnat_flags, option_type, padded, read_u16, read_u32, tcp_state, udp_state,
    EntryError, FNAT_OPTION_LEN, SEQ_OPTION_LEN, V4_ENTRY_LEN,
};

mod entry_field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const PROTOCOL: usize = 1;
    pub const VER_SIZE: Range<usize> = 2..4;
    pub const FLAGS: Range<usize> = 4..8;
    pub const STATE: Range<usize> = 8..10;
    pub const CPORT: Range<usize> = 10..12;
    pub const VPORT: Range<usize> = 12..14;
    pub const DPORT: Range<usize> = 14..16;
    pub const FWMARK: Range<usize> = 16..20;
    pub const TIMEOUT: Range<usize> = 20..24;
    /// Client, virtual and destination addresses follow, each of the family's length.
    pub const ADDRS: usize = 24;
}

const BAD_OPTION: EntryError = EntryError::Malformed("bad_option");
const DUPLICATE_OPTION: EntryError = EntryError::Malformed("duplicate_option");

/// Mask of the entry size in `ver_size`.
const SIZE_MASK: u16 = 0x0fff;
/// Shift of the entry version in `ver_size`.
const VERSION_SHIFT: u32 = 12;
/// IP protocol numbers an entry may carry.
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// The address family of an entry, which sets the length of its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: 4-byte addresses, 36-byte fixed part.
    Ipv4,
    /// IPv6: 16-byte addresses, 72-byte fixed part (not decoded yet).
    Ipv6,
}

impl Family {
    /// The family of an entry type: `Malformed("bad_type")` for a nonzero type without
    /// the IPv6 bit.
    pub const fn from_type(entry_type: u8) -> Result<Family, EntryError> {
        if entry_type & entry_type::INET6 != 0 {
            Ok(Family::Ipv6)
        } else if entry_type == entry_type::INET {
            Ok(Family::Ipv4)
        } else {
            Err(EntryError::Malformed("bad_type"))
        }
    }

    /// Length of one address.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }

    /// Length of an entry's fixed part (before the options).
    pub const fn fixed_len(self) -> usize {
        entry_field::ADDRS + 3 * self.addr_len()
    }
}

/// A zero-copy view of one entry, starting at the entry (the buffer may run on past it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnEntry<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ConnEntry<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> ConnEntry<T> {
        ConnEntry { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<ConnEntry<T>, EntryError> {
        let entry = Self::new_unchecked(buffer);
        entry.check()?;
        Ok(entry)
    }

    /// Checks, in the kernel's order, that an IPv4 fixed part and the entry size fit in
    /// the buffer ("entry_truncated"), the entry version is 0 ("bad_entry_version"), the
    /// type is known ("bad_type") and the size holds the family's fixed part
    /// ("bad_entry_size"). All are `Malformed`. After it, every getter is in bounds.
    pub fn check(&self) -> Result<(), EntryError> {
        let len = self.buffer.as_ref().len();
        if len < V4_ENTRY_LEN || self.size() > len {
            return Err(EntryError::Malformed("entry_truncated"));
        }
        if self.entry_version() != 0 {
            return Err(EntryError::Malformed("bad_entry_version"));
        }
        if self.size() < self.family()?.fixed_len() {
            return Err(EntryError::Malformed("bad_entry_size"));
        }
        Ok(())
    }

    /// The entry type byte.
    pub fn entry_type(&self) -> u8 {
        self.buffer.as_ref()[entry_field::TYPE]
    }

    /// The address family, from the type.
    pub fn family(&self) -> Result<Family, EntryError> {
        Family::from_type(self.entry_type())
    }

    /// The IP protocol number.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[entry_field::PROTOCOL]
    }

    /// The entry version (top 4 bits of `ver_size`; 0).
    pub fn entry_version(&self) -> u8 {
        let v = read_u16(self.buffer.as_ref(), entry_field::VER_SIZE) >> VERSION_SHIFT;
        u8::try_from(v).unwrap_or(u8::MAX)
    }

    /// The entry size: fixed part and options, without padding.
    pub fn size(&self) -> usize {
        usize::from(read_u16(self.buffer.as_ref(), entry_field::VER_SIZE) & SIZE_MASK)
    }

    /// Offset of the next entry from this one's start (the size rounded up to 4).
    pub fn padded_len(&self) -> usize {
        padded(self.size())
    }

    /// The connection flags ([`flags`]).
    pub fn flags(&self) -> u32 {
        read_u32(self.buffer.as_ref(), entry_field::FLAGS)
    }

    /// The connection state ([`tcp_state`], [`udp_state`]).
    pub fn state(&self) -> u16 {
        read_u16(self.buffer.as_ref(), entry_field::STATE)
    }

    /// The client port.
    pub fn cport(&self) -> u16 {
        read_u16(self.buffer.as_ref(), entry_field::CPORT)
    }

    /// The virtual port.
    pub fn vport(&self) -> u16 {
        read_u16(self.buffer.as_ref(), entry_field::VPORT)
    }

    /// The destination (real server) port.
    pub fn dport(&self) -> u16 {
        read_u16(self.buffer.as_ref(), entry_field::DPORT)
    }

    /// The firewall mark.
    pub fn fwmark(&self) -> u32 {
        read_u32(self.buffer.as_ref(), entry_field::FWMARK)
    }

    /// The timeout in seconds.
    pub fn timeout(&self) -> u32 {
        read_u32(self.buffer.as_ref(), entry_field::TIMEOUT)
    }

    /// Address `index` (0 client, 1 virtual, 2 destination) of an IPv4 entry.
    fn addr_v4(&self, index: usize) -> Ipv4Addr {
        let start = entry_field::ADDRS + index * Family::Ipv4.addr_len();
        let d = &self.buffer.as_ref()[start..start + Family::Ipv4.addr_len()];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// The client address (IPv4 entries only).
    pub fn caddr_v4(&self) -> Ipv4Addr {
        self.addr_v4(0)
    }

    /// The virtual address (IPv4 entries only).
    pub fn vaddr_v4(&self) -> Ipv4Addr {
        self.addr_v4(1)
    }

    /// The destination (real server) address (IPv4 entries only).
    pub fn daddr_v4(&self) -> Ipv4Addr {
        self.addr_v4(2)
    }

    /// The options, between the family's fixed part and the entry size (empty if the
    /// type is bad or they do not fit).
    pub fn options(&self) -> SyncOptions<'_> {
        let start = self.family().map_or(usize::MAX, Family::fixed_len);
        SyncOptions {
            rest: self
                .buffer
                .as_ref()
                .get(start..self.size())
                .unwrap_or_default(),
        }
    }
}

/// One raw option of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The option type ([`option_type`]).
    pub kind: u8,
    /// The data (`len` bytes, at least one).
    pub data: &'a [u8],
}

/// Iterator over an entry's options; after an error (`Malformed("bad_option")`: length 0,
/// a length past the entry or a lone trailing byte) it yields `None`.
#[derive(Debug, Clone)]
pub struct SyncOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SyncOptions<'a> {
    type Item = Result<RawOption<'a>, EntryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = core::mem::take(&mut self.rest);
        let (&kind, &len, tail) = match rest {
            [] => return None,
            [kind, len, tail @ ..] => (kind, len, tail),
            [_] => return Some(Err(BAD_OPTION)),
        };
        if len == 0 || usize::from(len) > tail.len() {
            return Some(Err(BAD_OPTION));
        }
        let (data, rest) = tail.split_at(usize::from(len));
        self.rest = rest;
        Some(Ok(RawOption { kind, data }))
    }
}

/// One direction's TCP sequence adjustment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Seq {
    /// Sequence number where the delta starts to apply.
    pub init_seq: u32,
    /// Delta applied from `init_seq` on.
    pub delta: u32,
    /// Delta applied before `init_seq`.
    pub previous_delta: u32,
}

/// The sequence option: adjustments of both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqOption {
    /// Client to server.
    pub in_seq: Seq,
    /// Server to client.
    pub out_seq: Seq,
}

impl SeqOption {
    /// Parses the option data (exactly [`SEQ_OPTION_LEN`] bytes, else `bad_option`).
    pub fn parse(data: &[u8]) -> Result<SeqOption, EntryError> {
        let d: &[u8; SEQ_OPTION_LEN] = data.try_into().map_err(|_| BAD_OPTION)?;
        let word = |i: usize| read_u32(d, i * 4..i * 4 + 4);
        Ok(SeqOption {
            in_seq: Seq {
                init_seq: word(0),
                delta: word(1),
                previous_delta: word(2),
            },
            out_seq: Seq {
                init_seq: word(3),
                delta: word(4),
                previous_delta: word(5),
            },
        })
    }

    /// The option data.
    pub fn to_bytes(&self) -> [u8; SEQ_OPTION_LEN] {
        let mut b = [0u8; SEQ_OPTION_LEN];
        let words = [
            self.in_seq.init_seq,
            self.in_seq.delta,
            self.in_seq.previous_delta,
            self.out_seq.init_seq,
            self.out_seq.delta,
            self.out_seq.previous_delta,
        ];
        for (chunk, w) in b.as_chunks_mut::<4>().0.iter_mut().zip(words) {
            *chunk = w.to_be_bytes();
        }
        b
    }
}

/// Our FNAT option: the local (source NAT) endpoint and session flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FnatOption {
    /// Local address the director uses towards the real server.
    pub laddr: Ipv4Addr,
    /// Local port.
    pub lport: u16,
    /// The TOA option already reached the real server.
    pub toa_sent: bool,
    /// The real server is draining.
    pub draining: bool,
    /// The session belongs to a persistent service.
    pub persistent: bool,
}

impl FnatOption {
    /// Parses the option data (exactly [`FNAT_OPTION_LEN`] bytes, else `bad_option`);
    /// unknown flag bits and the reserved byte are ignored.
    pub fn parse(data: &[u8]) -> Result<FnatOption, EntryError> {
        let d: &[u8; FNAT_OPTION_LEN] = data.try_into().map_err(|_| BAD_OPTION)?;
        let f = d[6];
        Ok(FnatOption {
            laddr: Ipv4Addr::new(d[0], d[1], d[2], d[3]),
            lport: u16::from_be_bytes([d[4], d[5]]),
            toa_sent: f & fnat_flags::TOA_SENT != 0,
            draining: f & fnat_flags::DRAINING != 0,
            persistent: f & fnat_flags::PERSISTENT != 0,
        })
    }

    /// The option data.
    pub fn to_bytes(&self) -> [u8; FNAT_OPTION_LEN] {
        let [a, b, c, d] = self.laddr.octets();
        let [p0, p1] = self.lport.to_be_bytes();
        let bit = |on: bool, flag: u8| if on { flag } else { 0 };
        let f = bit(self.toa_sent, fnat_flags::TOA_SENT)
            | bit(self.draining, fnat_flags::DRAINING)
            | bit(self.persistent, fnat_flags::PERSISTENT);
        [a, b, c, d, p0, p1, f, 0]
    }
}

/// A decoded IPv4 connection entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncConn {
    /// IP protocol (6 TCP, 17 UDP).
    pub protocol: u8,
    /// Connection flags as sent ([`flags`]; a kernel backup keeps [`flags::BACKUP_MASK`]).
    pub flags: u32,
    /// Connection state ([`tcp_state`], [`udp_state`]).
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Destination (real server) port.
    pub dport: u16,
    /// Firewall mark.
    pub fwmark: u32,
    /// Timeout in seconds.
    pub timeout_s: u32,
    /// Client address.
    pub caddr: Ipv4Addr,
    /// Virtual address.
    pub vaddr: Ipv4Addr,
    /// Destination (real server) address.
    pub daddr: Ipv4Addr,
    /// Sequence adjustment option.
    pub seq: Option<SeqOption>,
    /// FNAT option.
    pub fnat: Option<FnatOption>,
}

impl SyncConn {
    /// The entry size (fixed part and options, without padding).
    pub fn wire_len(&self) -> usize {
        V4_ENTRY_LEN
            + self.seq.map_or(0, |_| 2 + SEQ_OPTION_LEN)
            + self.fnat.map_or(0, |_| 2 + FNAT_OPTION_LEN)
    }

    /// Decodes the entry at the start of `buffer` (which may run on past it). `Skipped`
    /// for an IPv6 entry, an unknown option without the optional bit, a protocol other
    /// than TCP and UDP, or (unless a template) a state out of the protocol's range, as a
    /// kernel backup skips them; `Malformed` otherwise (see [`ConnEntry::check`]).
    pub fn parse(buffer: &[u8]) -> Result<SyncConn, EntryError> {
        Self::decode(&ConnEntry::new_checked(buffer)?)
    }

    /// Decodes a checked entry.
    pub(super) fn decode(entry: &ConnEntry<&[u8]>) -> Result<SyncConn, EntryError> {
        let (seq, fnat) = parse_options(entry.options())?;
        if entry.family()? != Family::Ipv4 {
            return Err(EntryError::Skipped("ipv6_entry"));
        }
        let (protocol, state, flags) = (entry.protocol(), entry.state(), entry.flags());
        let states = match protocol {
            IPPROTO_TCP => tcp_state::COUNT,
            IPPROTO_UDP => udp_state::COUNT,
            _ => return Err(EntryError::Skipped("bad_protocol")),
        };
        if flags & flags::TEMPLATE == 0 && state >= states {
            return Err(EntryError::Skipped("bad_state"));
        }
        Ok(SyncConn {
            protocol,
            flags,
            state,
            cport: entry.cport(),
            vport: entry.vport(),
            dport: entry.dport(),
            fwmark: entry.fwmark(),
            timeout_s: entry.timeout(),
            caddr: entry.caddr_v4(),
            vaddr: entry.vaddr_v4(),
            daddr: entry.daddr_v4(),
            seq,
            fnat,
        })
    }

    /// Writes the entry (sequence option first, then FNAT) into the first
    /// [`wire_len`](Self::wire_len) bytes of `buf`, which must hold them (else it panics),
    /// and returns that length. Padding is the caller's.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.wire_len();
        let b = &mut buf[..len];
        b[entry_field::TYPE] = entry_type::INET;
        b[entry_field::PROTOCOL] = self.protocol;
        let size = u16::try_from(len).unwrap_or(SIZE_MASK) & SIZE_MASK;
        b[entry_field::VER_SIZE].copy_from_slice(&size.to_be_bytes());
        b[entry_field::FLAGS].copy_from_slice(&self.flags.to_be_bytes());
        b[entry_field::STATE].copy_from_slice(&self.state.to_be_bytes());
        b[entry_field::CPORT].copy_from_slice(&self.cport.to_be_bytes());
        b[entry_field::VPORT].copy_from_slice(&self.vport.to_be_bytes());
        b[entry_field::DPORT].copy_from_slice(&self.dport.to_be_bytes());
        b[entry_field::FWMARK].copy_from_slice(&self.fwmark.to_be_bytes());
        b[entry_field::TIMEOUT].copy_from_slice(&self.timeout_s.to_be_bytes());
        let addrs = [self.caddr, self.vaddr, self.daddr];
        let addr_area = &mut b[entry_field::ADDRS..V4_ENTRY_LEN];
        for (chunk, addr) in addr_area.as_chunks_mut::<4>().0.iter_mut().zip(addrs) {
            *chunk = addr.octets();
        }
        let mut at = V4_ENTRY_LEN;
        let mut put = |kind: u8, data: &[u8]| {
            b[at] = kind;
            b[at + 1] = u8::try_from(data.len()).unwrap_or(u8::MAX);
            b[at + 2..at + 2 + data.len()].copy_from_slice(data);
            at += 2 + data.len();
        };
        if let Some(seq) = &self.seq {
            put(option_type::SEQ_DATA, &seq.to_bytes());
        }
        if let Some(fnat) = &self.fnat {
            put(option_type::FNAT, &fnat.to_bytes());
        }
        len
    }
}

/// Checks the options and picks the ones we decode (rules in the `lvsync` documentation).
fn parse_options(
    options: SyncOptions<'_>,
) -> Result<(Option<SeqOption>, Option<FnatOption>), EntryError> {
    let (mut seq, mut fnat, mut pe_data, mut pe_name) = (None, None, false, false);
    for option in options {
        let RawOption { kind, data } = option?;
        if kind == option_type::FNAT {
            if fnat.replace(FnatOption::parse(data)?).is_some() {
                return Err(DUPLICATE_OPTION);
            }
            continue;
        }
        let seen = match kind & !option_type::OPTIONAL {
            option_type::SEQ_DATA => seq.replace(SeqOption::parse(data)?).is_some(),
            option_type::PE_DATA => core::mem::replace(&mut pe_data, true),
            option_type::PE_NAME => core::mem::replace(&mut pe_name, true),
            _ if kind & option_type::OPTIONAL != 0 => false,
            _ => return Err(EntryError::Skipped("unknown_option")),
        };
        if seen {
            return Err(DUPLICATE_OPTION);
        }
    }
    Ok((seq, fnat))
}
