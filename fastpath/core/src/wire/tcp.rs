//! TCP segments (RFC 9293) and their options.
//!
//! A [`TcpPacket`] covers exactly one segment (an IPv4 packet's payload): the payload and
//! the checksum extend to the end of the buffer.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};
use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::IpProtocol;
use super::{Error, Result};

/// The TCP flag bits (the low byte of the flags word; the experimental NS bit is not kept).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    const NAMES: [(TcpFlags, &'static str); 8] = [
        (Self::FIN, "FIN"),
        (Self::SYN, "SYN"),
        (Self::RST, "RST"),
        (Self::PSH, "PSH"),
        (Self::ACK, "ACK"),
        (Self::URG, "URG"),
        (Self::ECE, "ECE"),
        (Self::CWR, "CWR"),
    ];

    /// No flag set.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// The flags from their wire byte.
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The wire byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    /// Writes the set flags as `SYN|ACK`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset in the high nibble.
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS_START: usize = 20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS_START;
/// Largest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Byte offset of the checksum field, for incremental updates by NAT code.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// Option kinds.
mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0); the iterator stops after it.
    End,
    /// Padding (kind 1).
    Nop,
    /// Maximum segment size (kind 2, length 4).
    Mss(u16),
    /// Window scale shift (kind 3, length 3).
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2).
    SackPermitted,
    /// SACK blocks (kind 5): 1 to 4 raw pairs of 32-bit left/right edges.
    Sack(&'a [u8]),
    /// Timestamps (kind 8, length 10).
    Timestamps {
        /// The sender's timestamp value.
        tsval: u32,
        /// The echoed timestamp.
        tsecr: u32,
    },
    /// Any other kind (TOA, 254, among them), with the bytes after kind and length.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The option data.
        data: &'a [u8],
    },
}

fn be32(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `data`, returning it and its length in bytes.
    /// `Malformed` if a length byte is missing, below 2, past the end, or wrong for the kind.
    pub fn parse(data: &'a [u8]) -> Result<(TcpOption<'a>, usize)> {
        let Some(&k) = data.first() else {
            return Err(Error::Truncated);
        };
        match k {
            kind::END => return Ok((TcpOption::End, 1)),
            kind::NOP => return Ok((TcpOption::Nop, 1)),
            _ => {}
        }
        let Some(&len) = data.get(1) else {
            return Err(Error::Malformed("TCP option without length"));
        };
        let len = usize::from(len);
        if len < 2 {
            return Err(Error::Malformed("TCP option length below 2"));
        }
        let Some(body) = data.get(2..len) else {
            return Err(Error::Malformed("TCP option runs past the header"));
        };
        let option = match (k, len) {
            (kind::MSS, 4) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(body[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::SACK, 10 | 18 | 26 | 34) => TcpOption::Sack(body),
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps {
                tsval: be32(&body[0..4]),
                tsecr: be32(&body[4..8]),
            },
            (
                kind::MSS
                | kind::WINDOW_SCALE
                | kind::SACK_PERMITTED
                | kind::SACK
                | kind::TIMESTAMPS,
                _,
            ) => return Err(Error::Malformed("TCP option length wrong for its kind")),
            (kind, _) => TcpOption::Unknown { kind, data: body },
        };
        Ok((option, len))
    }

    /// The option kind byte.
    pub fn kind(&self) -> u8 {
        match *self {
            TcpOption::End => kind::END,
            TcpOption::Nop => kind::NOP,
            TcpOption::Mss(_) => kind::MSS,
            TcpOption::WindowScale(_) => kind::WINDOW_SCALE,
            TcpOption::SackPermitted => kind::SACK_PERMITTED,
            TcpOption::Sack(_) => kind::SACK,
            TcpOption::Timestamps { .. } => kind::TIMESTAMPS,
            TcpOption::Unknown { kind, .. } => kind,
        }
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::End | TcpOption::Nop => 1,
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(blocks) => 2 + blocks.len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns its length. `buf` must hold
    /// [`buffer_len`](Self::buffer_len) bytes, and that length must fit in a byte.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let len_byte = u8::try_from(len).unwrap_or(u8::MAX);
        match *self {
            TcpOption::End => buf[0] = kind::END,
            TcpOption::Nop => buf[0] = kind::NOP,
            TcpOption::Mss(mss) => {
                buf[..2].copy_from_slice(&[kind::MSS, len_byte]);
                buf[2..4].copy_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => {
                buf[..3].copy_from_slice(&[kind::WINDOW_SCALE, len_byte, shift])
            }
            TcpOption::SackPermitted => buf[..2].copy_from_slice(&[kind::SACK_PERMITTED, len_byte]),
            TcpOption::Sack(blocks) => {
                buf[..2].copy_from_slice(&[kind::SACK, len_byte]);
                buf[2..len].copy_from_slice(blocks);
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                buf[..2].copy_from_slice(&[kind::TIMESTAMPS, len_byte]);
                buf[2..6].copy_from_slice(&tsval.to_be_bytes());
                buf[6..10].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                buf[..2].copy_from_slice(&[kind, len_byte]);
                buf[2..len].copy_from_slice(data);
            }
        }
        len
    }
}

/// Iterates over the options of a header; yields an error (then stops) on a malformed
/// option, and stops after [`TcpOption::End`].
#[derive(Debug, Clone)]
pub struct TcpOptionsIter<'a> {
    data: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> TcpOptionsIter<'a> {
    /// Iterates over an options area (the header after its first 20 bytes).
    pub fn new(options: &'a [u8]) -> TcpOptionsIter<'a> {
        TcpOptionsIter {
            data: options,
            offset: 0,
            done: false,
        }
    }

    /// The offset, within the options area, of the option the next call returns.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for TcpOptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset >= self.data.len() {
            return None;
        }
        match TcpOption::parse(&self.data[self.offset..]) {
            Ok((option, len)) => {
                self.offset += len;
                self.done = option == TcpOption::End;
                Some(Ok(option))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A zero-copy view of a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without any check.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer holds 20 bytes, the data offset is at least 5, and the header
    /// fits in the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed("TCP data offset below 5"));
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let d = &self.buffer.as_ref()[range];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// The acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// The header length in bytes (data offset * 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The window size (unscaled).
    pub fn window_len(&self) -> u16 {
        self.read_u16(field::WIN_SIZE)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        self.read_u16(field::URGENT)
    }

    /// The options area (the header after its first 20 bytes).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// An iterator over the options.
    pub fn options_iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(self.options())
    }

    /// The payload: everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space the segment takes: payload length, plus one for SYN and for FIN.
    pub fn segment_len(&self) -> usize {
        let flags = self.flags();
        self.payload().len()
            + usize::from(flags.contains(TcpFlags::SYN))
            + usize::from(flags.contains(TcpFlags::FIN))
    }

    /// The offset (from the start of the segment) of the first option of kind `kind`;
    /// `Malformed` if the options before it are.
    pub fn find_option(&self, kind: u8) -> Result<Option<usize>> {
        let mut iter = self.options_iter();
        loop {
            let at = iter.offset();
            match iter.next() {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(option)) if option.kind() == kind => return Ok(Some(HEADER_LEN + at)),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The MSS option's value, if present.
    pub fn mss(&self) -> Result<Option<u16>> {
        for option in self.options_iter() {
            if let TcpOption::Mss(mss) = option? {
                return Ok(Some(mss));
            }
        }
        Ok(None)
    }

    fn checksum_len(&self) -> u16 {
        u16::try_from(self.buffer.as_ref().len()).unwrap_or(u16::MAX)
    }

    /// Whether the checksum (with the IPv4 pseudo header) is correct.
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        let pseudo =
            checksum::pseudo_header_sum(src_addr, dst_addr, IpProtocol::Tcp, self.checksum_len());
        checksum::fold(pseudo + checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port (the checksum is not updated).
    pub fn set_src_port(&mut self, value: u16) {
        self.write_u16(field::SRC_PORT, value);
    }

    /// Sets the destination port (the checksum is not updated).
    pub fn set_dst_port(&mut self, value: u16) {
        self.write_u16(field::DST_PORT, value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the header length in bytes (a multiple of 4, 20 to 60); clears the NS bit.
    pub fn set_header_len(&mut self, value: usize) {
        debug_assert!(value & 3 == 0 && (HEADER_LEN..=MAX_HEADER_LEN).contains(&value));
        let offset = u8::try_from(value / 4).unwrap_or(0x0f) & 0x0f;
        self.buffer.as_mut()[field::DATA_OFF] = offset << 4;
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, value: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = value.0;
    }

    /// Sets the window size.
    pub fn set_window_len(&mut self, value: u16) {
        self.write_u16(field::WIN_SIZE, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        self.write_u16(field::URGENT, value);
    }

    /// The options area, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes and stores the checksum over the whole buffer and the IPv4 pseudo header.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let pseudo =
            checksum::pseudo_header_sum(src_addr, dst_addr, IpProtocol::Tcp, self.checksum_len());
        let c = !checksum::fold(pseudo + checksum::sum(self.buffer.as_ref()));
        self.set_checksum(c);
    }

    /// Rewrites the MSS option in place to `mss`, updating the checksum incrementally;
    /// returns the old value, or `None` (nothing changed) if there is no MSS option.
    pub fn set_mss(&mut self, mss: u16) -> Result<Option<u16>> {
        let Some(at) = self.find_option(kind::MSS)? else {
            return Ok(None);
        };
        let value = at + 2..at + 4;
        let old = self.read_u16(value.clone());
        self.write_u16(value.clone(), mss);
        let c = checksum::update16_at(self.checksum(), value.start, old, mss);
        self.set_checksum(c);
        Ok(Some(old))
    }

    /// Lowers the MSS option to at most `max` (as [`set_mss`](Self::set_mss)); returns the
    /// value found.
    pub fn clamp_mss(&mut self, max: u16) -> Result<Option<u16>> {
        match self.mss()? {
            Some(old) if old > max => self.set_mss(max),
            found => Ok(found),
        }
    }
}

/// The fields of a TCP segment, with the common options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number (meaningful with `ACK`).
    pub ack_number: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window size (unscaled).
    pub window_len: u16,
    /// MSS option.
    pub max_seg_size: Option<u16>,
    /// Window scale option.
    pub window_scale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// Timestamps option `(tsval, tsecr)`.
    pub timestamps: Option<(u32, u32)>,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a segment: checks lengths and options (`Malformed`) and the checksum
    /// (`BadChecksum`). SACK blocks, unknown options and the urgent pointer are skipped.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::BadChecksum);
        }
        let data: &'a [u8] = packet.buffer.as_ref();
        let header_len = packet.header_len();
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            timestamps: None,
            payload: &data[header_len..],
        };
        for option in TcpOptionsIter::new(&data[HEADER_LEN..header_len]) {
            match option? {
                TcpOption::Mss(v) => repr.max_seg_size = Some(v),
                TcpOption::WindowScale(v) => repr.window_scale = Some(v),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::Timestamps { tsval, tsecr } => repr.timestamps = Some((tsval, tsecr)),
                _ => {}
            }
        }
        Ok(repr)
    }

    /// The header length this repr emits: options padded to a multiple of 4.
    pub fn header_len(&self) -> usize {
        let options = 4 * usize::from(self.max_seg_size.is_some())
            + 2 * usize::from(self.sack_permitted)
            + 10 * usize::from(self.timestamps.is_some())
            + 4 * usize::from(self.window_scale.is_some());
        HEADER_LEN + options.div_ceil(4) * 4
    }

    /// The segment length this repr emits.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment (options in the Linux order: MSS, SACK-permitted, timestamps,
    /// NOP + window scale, then zero padding) and its checksum. The buffer must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(self.header_len());
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(0);
        let options = packet.options_mut();
        let mut at = 0;
        if let Some(mss) = self.max_seg_size {
            at += TcpOption::Mss(mss).emit(&mut options[at..]);
        }
        if self.sack_permitted {
            at += TcpOption::SackPermitted.emit(&mut options[at..]);
        }
        if let Some((tsval, tsecr)) = self.timestamps {
            at += TcpOption::Timestamps { tsval, tsecr }.emit(&mut options[at..]);
        }
        if let Some(shift) = self.window_scale {
            at += TcpOption::Nop.emit(&mut options[at..]);
            at += TcpOption::WindowScale(shift).emit(&mut options[at..]);
        }
        options[at..].fill(kind::END);
        packet.payload_mut()[..self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum(src_addr, dst_addr);
    }
}

#[cfg(test)]
mod tests;
