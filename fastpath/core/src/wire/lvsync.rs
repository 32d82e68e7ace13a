//! LVS connection synchronisation, protocol version 1 (the format of the Linux IPVS sync
//! daemon, `ip_vs_sync.c`), plus two extensions of ours that a kernel backup ignores.
//!
//! A master multicasts its connections to backups in UDP datagrams sent to
//! [`GROUP`]:[`PORT`] with TTL [`TTL`]. A datagram is one message: an 8-byte header, then
//! `nr_conns` entries. Multi-byte fields are big-endian.
//!
//! ```text
//! header   | reserved = 0 | syncid   | size (the whole message, = datagram length)  |
//!          | nr_conns     | version=1| spare = 0                                    |
//! v4 entry | type = 0     | protocol | ver(4 bits) = 0 | entry size (12 bits)       |
//!          | flags (32)                                                            |
//!          | state (16)              | cport                                       |
//!          | vport                   | dport                                       |
//!          | fwmark (32) | timeout (32, seconds) | caddr | vaddr | daddr (32 each) |
//!          | options: type u8 | len u8 | len bytes of data, repeated ...            |
//! ```
//!
//! The entry size counts the fixed part (36 bytes for IPv4) and the options, not padding;
//! the next entry starts at the entry start plus the size rounded up to 4. A header whose
//! reserved byte, version or spare is off is version 0, which is not supported. Entry type
//! bit 0 ([`entry_type::INET6`]) marks an IPv6 entry (16-byte addresses, a 72-byte fixed
//! part, see [`Family`]); such entries are skipped for now. Another nonzero type, a nonzero
//! entry version or a size that does not fit drops the rest of the message, as LVS does.
//!
//! Options: [`option_type::SEQ_DATA`] (TCP sequence adjustment, 24 bytes),
//! [`option_type::PE_DATA`] and [`option_type::PE_NAME`] (persistence engine; accepted and
//! ignored). A type with bit [`option_type::OPTIONAL`] set that is not known here is
//! skipped; an unknown type without it makes the entry unsupported (the entry is skipped,
//! the message goes on). As in LVS, the optional bit is ignored when matching the known
//! types. A zero length, a length past the entry, a wrong fixed length or a type seen twice
//! is malformed.
//!
//! # Extension 1: FNAT option
//!
//! Option type [`option_type::FNAT`] (`0x48`: the optional bit | 8), length 8: local
//! (source NAT) address u32 | local port u16 | flags u8 ([`fnat_flags`]: TOA already
//! delivered to the real server, draining, persistent service) | reserved u8 (sent 0,
//! ignored on receipt; unknown flag bits are ignored too). A kernel LVS backup skips it
//! because of the optional bit and keeps the rest of the entry.
//!
//! # Extension 2: control messages for bulk sync
//!
//! A valid version 1 header with `nr_conns` = 0, followed by a 20-byte trailer ([`CONTROL_LEN`]
//! bytes in all): magic `b"LBDS"` | kind u8 (1 bulk request, 2 bulk end) | 3 reserved zero
//! bytes | nonce u32 | conns u64 (for a bulk end: the records the master sent; 0 in a
//! request). A kernel LVS backup processes zero entries and so ignores it.
//!
//! # Message length
//!
//! The header `size` must equal the datagram length. Like the kernel master,
//! [`MessageWriter`] zero-pads *between* entries but not after the last one, so `size` ends
//! right after the last entry's options. The parser, like the kernel's, accepts bytes after
//! the last of `nr_conns` entries (a sender that pads the last entry too) and ignores them.

use std::net::Ipv4Addr;

mod entry;

pub use entry::{ConnEntry, Family, FnatOption, RawOption, Seq, SeqOption, SyncConn, SyncOptions};

/// The multicast group masters send to (`224.0.0.81`).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The UDP port of the group.
pub const PORT: u16 = 8848;
/// The multicast TTL LVS uses.
pub const TTL: u8 = 1;
/// Default maximum message length: a 1500-byte MTU less IPv4 and UDP headers.
pub const DEFAULT_MAXLEN: usize = 1472;
/// Length of the message header.
pub const HEADER_LEN: usize = 8;
/// The protocol version this module speaks.
pub const VERSION: u8 = 1;
/// Most entries in one message (`nr_conns` is a byte).
pub const MAX_CONNS: usize = 255;
/// Longest message (the `size` field is 16 bits); a larger writer buffer is not used past it.
pub const MAX_MESSAGE_LEN: usize = 0xffff;
/// Data length of the sequence option.
pub const SEQ_OPTION_LEN: usize = 24;
/// Data length of the FNAT option.
pub const FNAT_OPTION_LEN: usize = 8;
/// Longest IPv4 entry this module emits: fixed part, sequence and FNAT options.
pub const MAX_ENTRY_LEN: usize = V4_ENTRY_LEN + 2 + SEQ_OPTION_LEN + 2 + FNAT_OPTION_LEN;
/// Smallest message buffer [`MessageWriter`] accepts: the header and the longest entry, so
/// a push into an empty writer always succeeds.
pub const MIN_MAXLEN: usize = HEADER_LEN + MAX_ENTRY_LEN;
/// Magic that starts a control trailer.
pub const CONTROL_MAGIC: [u8; 4] = *b"LBDS";
/// Length of a control message (header and trailer).
pub const CONTROL_LEN: usize = control_field::CONNS.end;

/// Length of the fixed part of an IPv4 entry.
const V4_ENTRY_LEN: usize = Family::Ipv4.fixed_len();

/// Connection flags (the entry's `flags`), as in IPVS.
pub mod flags {
    /// Mask of the forwarding method.
    pub const FWD_MASK: u32 = 0x0007;
    /// Forwarding by NAT (masquerading).
    pub const FWD_MASQ: u32 = 0x0000;
    /// The real server is the director itself.
    pub const FWD_LOCALNODE: u32 = 0x0001;
    /// Forwarding by IP-in-IP tunnel.
    pub const FWD_TUNNEL: u32 = 0x0002;
    /// Direct routing.
    pub const FWD_DROUTE: u32 = 0x0003;
    /// Cache bypass.
    pub const FWD_BYPASS: u32 = 0x0004;
    /// The connection was created by sync (set by a backup on receipt).
    pub const SYNC: u32 = 0x0020;
    /// The connection is in the director's hash table (local meaning only).
    pub const HASHED: u32 = 0x0040;
    /// No output packets.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Not established.
    pub const INACTIVE: u32 = 0x0100;
    /// Output sequence numbers are adjusted.
    pub const OUT_SEQ: u32 = 0x0200;
    /// Input sequence numbers are adjusted.
    pub const IN_SEQ: u32 = 0x0400;
    /// Both sequence adjustment flags.
    pub const SEQ_MASK: u32 = IN_SEQ | OUT_SEQ;
    /// The client port is not known yet.
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template, not a connection.
    pub const TEMPLATE: u32 = 0x1000;
    /// Forward one packet only (no connection state).
    pub const ONE_PACKET: u32 = 0x2000;
    /// The flags a kernel backup keeps from a received entry (it then sets [`SYNC`]).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
    /// The flags a kernel backup updates on an existing connection.
    pub const BACKUP_UPD_MASK: u32 = INACTIVE | SEQ_MASK;
}

/// LVS TCP connection states (the entry's `state` for protocol 6).
pub mod tcp_state {
    /// No state.
    pub const NONE: u16 = 0;
    /// Established.
    pub const ESTABLISHED: u16 = 1;
    /// SYN sent.
    pub const SYN_SENT: u16 = 2;
    /// SYN received.
    pub const SYN_RECV: u16 = 3;
    /// FIN wait.
    pub const FIN_WAIT: u16 = 4;
    /// TIME_WAIT.
    pub const TIME_WAIT: u16 = 5;
    /// Closed.
    pub const CLOSE: u16 = 6;
    /// CLOSE_WAIT.
    pub const CLOSE_WAIT: u16 = 7;
    /// LAST_ACK.
    pub const LAST_ACK: u16 = 8;
    /// Listen.
    pub const LISTEN: u16 = 9;
    /// SYN-ACK seen.
    pub const SYNACK: u16 = 10;
    /// Number of TCP states; a connection entry with a state at or above it is skipped.
    pub const COUNT: u16 = 11;
}

/// LVS UDP connection states (the entry's `state` for protocol 17).
pub mod udp_state {
    /// The only UDP state.
    pub const NORMAL: u16 = 0;
    /// Number of UDP states; a connection entry with a state at or above it is skipped.
    pub const COUNT: u16 = 1;
}

/// Entry type bits.
pub mod entry_type {
    /// IPv4 entry.
    pub const INET: u8 = 0;
    /// IPv6 entry (any type with this bit set).
    pub const INET6: u8 = 0x01;
}

/// Option types.
pub mod option_type {
    /// TCP sequence adjustment data ([`SeqOption`](super::SeqOption)).
    pub const SEQ_DATA: u8 = 1;
    /// Persistence engine data (ignored).
    pub const PE_DATA: u8 = 2;
    /// Persistence engine name (ignored).
    pub const PE_NAME: u8 = 3;
    /// "Optional parameter" bit: a receiver that does not know the type skips the option.
    pub const OPTIONAL: u8 = 0x40;
    /// Our FNAT option ([`FnatOption`](super::FnatOption)).
    pub const FNAT: u8 = OPTIONAL | 8;
}

/// Flag bits of the FNAT option.
pub mod fnat_flags {
    /// The TOA option already reached the real server.
    pub const TOA_SENT: u8 = 0x01;
    /// The real server is draining.
    pub const DRAINING: u8 = 0x02;
    /// The session belongs to a persistent service.
    pub const PERSISTENT: u8 = 0x04;
}

mod field {
    use core::ops::Range;

    pub const RESERVED: usize = 0;
    pub const SYNCID: usize = 1;
    pub const SIZE: Range<usize> = 2..4;
    pub const NR_CONNS: usize = 4;
    pub const VERSION: usize = 5;
    pub const SPARE: Range<usize> = 6..8;
}

mod control_field {
    use core::ops::Range;

    pub const MAGIC: Range<usize> = 8..12;
    pub const KIND: usize = 12;
    pub const RESERVED: Range<usize> = 13..16;
    pub const NONCE: Range<usize> = 16..20;
    pub const CONNS: Range<usize> = 20..28;
}

/// Why a message was rejected as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SyncError {
    /// Shorter than the header.
    #[error("truncated sync message")]
    Truncated,
    /// The header's size is not the datagram length.
    #[error("sync message size field differs from its length")]
    BadSize,
    /// A version 0 (or unknown) message.
    #[error("sync message is not version 1")]
    NotVersion1,
    /// The message's sync id (carried) is not the one accepted.
    #[error("sync message for sync id {0}")]
    ForeignSyncid(u8),
    /// A message without entries whose trailer is not a valid control trailer.
    #[error("bad sync control trailer")]
    BadControl,
    /// The buffer given to an emitter is too small.
    #[error("buffer too small for a sync message")]
    BufferTooSmall,
}

impl SyncError {
    /// A snake_case name for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            SyncError::Truncated => "truncated",
            SyncError::BadSize => "bad_size",
            SyncError::NotVersion1 => "not_version_1",
            SyncError::ForeignSyncid(_) => "foreign_syncid",
            SyncError::BadControl => "bad_control",
            SyncError::BufferTooSmall => "buffer_too_small",
        }
    }
}

/// Why an entry was not decoded. The reasons are snake_case names for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EntryError {
    /// The entry is well formed but not supported ("ipv6_entry", "unknown_option",
    /// "bad_protocol", "bad_state"); the following entries are still read.
    #[error("sync entry skipped: {0}")]
    Skipped(&'static str),
    /// The entry is malformed ("entry_truncated", "bad_entry_version", "bad_type",
    /// "bad_entry_size", "bad_option", "duplicate_option"); the rest of the message is dropped.
    #[error("malformed sync entry: {0}")]
    Malformed(&'static str),
}

impl EntryError {
    /// The reason, for counters.
    pub fn reason(&self) -> &'static str {
        match *self {
            EntryError::Skipped(r) | EntryError::Malformed(r) => r,
        }
    }
}

fn read_u16(data: &[u8], range: core::ops::Range<usize>) -> u16 {
    let d = &data[range];
    u16::from_be_bytes([d[0], d[1]])
}

fn read_u32(data: &[u8], range: core::ops::Range<usize>) -> u32 {
    let d = &data[range];
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// `len` rounded up to a multiple of 4.
const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// A zero-copy view of a message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SyncHeader<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> SyncHeader<T> {
        SyncHeader { buffer }
    }

    /// Wraps a buffer that holds at least [`HEADER_LEN`] bytes (else `Truncated`).
    pub fn new_checked(buffer: T) -> Result<SyncHeader<T>, SyncError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(SyncError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The reserved byte (0 in version 1; the entry count in version 0).
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::RESERVED]
    }

    /// The sync id.
    pub fn syncid(&self) -> u8 {
        self.buffer.as_ref()[field::SYNCID]
    }

    /// The message length field.
    pub fn size(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SIZE)
    }

    /// The number of entries.
    pub fn nr_conns(&self) -> u8 {
        self.buffer.as_ref()[field::NR_CONNS]
    }

    /// The version byte.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The spare field (0 in version 1).
    pub fn spare(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SPARE)
    }

    /// Whether this is a version 1 header (reserved 0, version 1, spare 0).
    pub fn is_v1(&self) -> bool {
        self.reserved() == 0 && self.version() == VERSION && self.spare() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SyncHeader<T> {
    /// Sets reserved, version and spare for version 1.
    pub fn set_v1(&mut self) {
        let b = self.buffer.as_mut();
        b[field::RESERVED] = 0;
        b[field::VERSION] = VERSION;
        b[field::SPARE].fill(0);
    }

    /// Sets the sync id.
    pub fn set_syncid(&mut self, value: u8) {
        self.buffer.as_mut()[field::SYNCID] = value;
    }

    /// Sets the message length field.
    pub fn set_size(&mut self, value: u16) {
        self.buffer.as_mut()[field::SIZE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the number of entries.
    pub fn set_nr_conns(&mut self, value: u8) {
        self.buffer.as_mut()[field::NR_CONNS] = value;
    }
}

/// A control message (extension 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// A backup asks the master for a full table dump.
    BulkRequest {
        /// Nonce the bulk end echoes.
        nonce: u32,
    },
    /// The master finished a dump.
    BulkEnd {
        /// The request's nonce.
        nonce: u32,
        /// Records the master sent in the dump.
        conns: u64,
    },
}

impl Control {
    const KIND_BULK_REQUEST: u8 = 1;
    const KIND_BULK_END: u8 = 2;

    /// Parses a whole message whose header was checked and has no entries.
    fn parse(msg: &[u8]) -> Result<Control, SyncError> {
        let m: &[u8; CONTROL_LEN] = msg.try_into().map_err(|_| SyncError::BadControl)?;
        if m[control_field::MAGIC] != CONTROL_MAGIC || m[control_field::RESERVED] != [0; 3] {
            return Err(SyncError::BadControl);
        }
        let nonce = read_u32(m, control_field::NONCE);
        let c = &m[control_field::CONNS];
        let conns = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        match m[control_field::KIND] {
            Self::KIND_BULK_REQUEST if conns == 0 => Ok(Control::BulkRequest { nonce }),
            Self::KIND_BULK_END => Ok(Control::BulkEnd { nonce, conns }),
            _ => Err(SyncError::BadControl),
        }
    }
}

/// Writes a control message into `buf` and returns its length ([`CONTROL_LEN`]);
/// `BufferTooSmall` if `buf` is shorter.
pub fn emit_control(buf: &mut [u8], syncid: u8, c: &Control) -> Result<usize, SyncError> {
    let m = buf
        .get_mut(..CONTROL_LEN)
        .ok_or(SyncError::BufferTooSmall)?;
    m.fill(0);
    let mut header = SyncHeader::new_unchecked(&mut *m);
    header.set_v1();
    header.set_syncid(syncid);
    header.set_size(u16::try_from(CONTROL_LEN).unwrap_or(u16::MAX));
    header.set_nr_conns(0);
    let (kind, nonce, conns) = match *c {
        Control::BulkRequest { nonce } => (Control::KIND_BULK_REQUEST, nonce, 0),
        Control::BulkEnd { nonce, conns } => (Control::KIND_BULK_END, nonce, conns),
    };
    m[control_field::MAGIC].copy_from_slice(&CONTROL_MAGIC);
    m[control_field::KIND] = kind;
    m[control_field::NONCE].copy_from_slice(&nonce.to_be_bytes());
    m[control_field::CONNS].copy_from_slice(&conns.to_be_bytes());
    Ok(CONTROL_LEN)
}

/// Builds a message of connection entries in a caller's buffer.
#[derive(Debug)]
pub struct MessageWriter<'a> {
    buf: &'a mut [u8],
    /// `buf.len()`, at most [`MAX_MESSAGE_LEN`].
    maxlen: usize,
    /// Message length so far (the last entry unpadded).
    len: usize,
    count: u8,
}

impl<'a> MessageWriter<'a> {
    /// Starts a message; `buf.len()` is the maximum message length (at most
    /// [`MAX_MESSAGE_LEN`] of it is used). `BufferTooSmall` if below [`MIN_MAXLEN`].
    pub fn new(buf: &'a mut [u8], syncid: u8) -> Result<Self, SyncError> {
        if buf.len() < MIN_MAXLEN {
            return Err(SyncError::BufferTooSmall);
        }
        let maxlen = buf.len().min(MAX_MESSAGE_LEN);
        let mut header = SyncHeader::new_unchecked(&mut buf[..HEADER_LEN]);
        header.set_v1();
        header.set_syncid(syncid);
        header.set_size(u16::try_from(HEADER_LEN).unwrap_or(u16::MAX));
        header.set_nr_conns(0);
        Ok(MessageWriter {
            buf,
            maxlen,
            len: HEADER_LEN,
            count: 0,
        })
    }

    /// Appends an entry after zero padding that aligns it to 4 bytes; false (nothing
    /// written) when it would not fit in the maximum length or [`MAX_CONNS`] entries are in.
    pub fn push(&mut self, c: &SyncConn) -> bool {
        if usize::from(self.count) >= MAX_CONNS {
            return false;
        }
        let start = padded(self.len);
        let end = start + c.wire_len();
        if end > self.maxlen {
            return false;
        }
        let Some(area) = self.buf.get_mut(self.len..end) else {
            return false;
        };
        let (pad, entry) = area.split_at_mut(start - self.len);
        pad.fill(0);
        c.emit(entry);
        self.len = end;
        self.count += 1;
        true
    }

    /// Entries pushed so far.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The message length so far (the length [`finish`](Self::finish) would return).
    pub fn message_len(&self) -> usize {
        self.len
    }

    /// Writes `size` and `nr_conns` and returns the message length: the message is
    /// `buf[..len]`. It ends right after the last entry (which is not padded), and `size`
    /// holds that length, so a parser's size check against the datagram length passes.
    pub fn finish(self) -> usize {
        let mut header = SyncHeader::new_unchecked(&mut self.buf[..HEADER_LEN]);
        header.set_size(u16::try_from(self.len).unwrap_or(u16::MAX));
        header.set_nr_conns(self.count);
        self.len
    }
}

/// A parsed message.
#[derive(Debug, Clone)]
pub enum Message<'a> {
    /// Connection entries (possibly none).
    Conns(Entries<'a>),
    /// A control message (extension 2).
    Control(Control),
}

/// Parses a datagram: `Truncated` below [`HEADER_LEN`], `BadSize` if the size field is not
/// the datagram length, `ForeignSyncid` unless `accept_syncid` is 0 (accept any, as an LVS
/// backup with sync id 0) or the message's sync id, `NotVersion1` for any other version.
/// A message with no entries and more bytes than the header must be a valid control
/// message (else `BadControl`). Returns the message's sync id and the message; entries are
/// checked lazily by the [`Entries`] iterator.
pub fn parse(buf: &[u8], accept_syncid: u8) -> Result<(u8, Message<'_>), SyncError> {
    let header = SyncHeader::new_checked(buf)?;
    if usize::from(header.size()) != buf.len() {
        return Err(SyncError::BadSize);
    }
    let syncid = header.syncid();
    if accept_syncid != 0 && syncid != accept_syncid {
        return Err(SyncError::ForeignSyncid(syncid));
    }
    if !header.is_v1() {
        return Err(SyncError::NotVersion1);
    }
    let remaining = header.nr_conns();
    if remaining == 0 && buf.len() > HEADER_LEN {
        return Control::parse(buf).map(|c| (syncid, Message::Control(c)));
    }
    Ok((
        syncid,
        Message::Conns(Entries {
            msg: buf,
            offset: HEADER_LEN,
            remaining,
        }),
    ))
}

/// Iterator over a message's entries: `Ok` for a decoded entry, `Err(Skipped)` for one it
/// passes over (iteration goes on), `Err(Malformed)` after which it yields `None` (the rest
/// of the message is dropped, as LVS does; also when fewer than `nr_conns` entries fit).
/// It yields at most `nr_conns` items.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    msg: &'a [u8],
    offset: usize,
    remaining: u8,
}

impl Entries<'_> {
    /// Items left at most (`nr_conns` less those yielded; 0 after a malformed entry).
    pub fn remaining(&self) -> usize {
        usize::from(self.remaining)
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<SyncConn, EntryError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.remaining = self.remaining.checked_sub(1)?;
        let rest = self.msg.get(self.offset..).unwrap_or_default();
        let result = ConnEntry::new_checked(rest).and_then(|entry| {
            self.offset = self.offset.saturating_add(entry.padded_len());
            SyncConn::decode(&entry)
        });
        if matches!(result, Err(EntryError::Malformed(_))) {
            self.remaining = 0;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining()))
    }
}

impl core::iter::FusedIterator for Entries<'_> {}

#[cfg(test)]
mod tests;
