//! The two ends of the connection mode, as state machines over parsed segments: each
//! received segment gives at most one reply segment. Stateless per connection (the client's
//! ISN is the TSC; every reply follows from the segment it answers), except the server's
//! optional half-open tracking.
//!
//! ```text
//! client                          director                         server
//! SYN  seq=isn (TSC)        ->    new session, TOA/MSS       ->   SYN-ACK seq=f(isn) ack=isn+1
//! ACK+request seq=isn+1     <-  ... SYN-ACK                         <-
//!                           ->    first ACK (TOA inserted)   ->   FIN+response
//! FIN-ACK                   <-  ... (connection time recorded)      <-
//!                           ->                               ->   ACK (closed)
//! ```
//!
//! Against a SYN proxy (docs: /work/notes/synproxy-spec.md) the director answers the SYN
//! itself with window 0; the client sends a pure ACK and waits for the director's window
//! update (a pure ACK acknowledging isn+1) before sending its request. The server sees the
//! SYN (from a local address) only after that, then the director's handshake ACK, then the
//! request: no change on its side.
//!
//! Telling the window update (ack = isn+1) from the server's last ACK (ack = isn+req+2)
//! without state: ISNs are multiples of 4 ([`isn_at`]), and requests are never 3 bytes
//! modulo 4 ([`request_size`]), so only the window update acknowledges an ISN+1 that is 1
//! modulo 4.

use std::net::Ipv4Addr;

use fastpath::wire::TcpFlags;

use super::flood::{FloodCounters, IpPrefix};
use super::track::HalfOpen;
use crate::hist::Histogram;
use crate::packet::{Parsed, Proto, Segment, WINDOW};

/// Connection counters (client side unless named otherwise).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ConnCounters {
    pub syn_sent: u64,
    /// SYN-ACKs received.
    pub established: u64,
    /// Of those, SYN-ACKs with a zero window (a SYN proxy's cookie answer): ACKed, and the
    /// request waits for the window update.
    pub proxied: u64,
    /// Window updates received (the SYN proxy reached the real server): request sent.
    pub window_updates: u64,
    /// Responses (with FIN) received.
    pub completed: u64,
    /// Final ACKs received: connections fully closed.
    pub closed: u64,
    /// Resets received on either side.
    pub resets: u64,
    /// Connections given up on (nothing closed for `STALL` while some were unfinished).
    pub lost: u64,
    /// Times nothing closed for more than 10 ms while connections were unfinished (the
    /// director stalled), and the longest such gap in microseconds.
    pub gaps_over_10ms: u64,
    pub max_gap_us: u64,
    /// Server side: SYNs, pure ACKs (a SYN proxy's handshake ACK), requests and FINs
    /// received.
    pub srv_syn: u64,
    pub srv_ack: u64,
    pub srv_req: u64,
    pub srv_fin: u64,
    /// Server side: segments from a flood source (IPv4 source, or the TOA option's address,
    /// in the flood prefix): flood that reached a real server.
    pub srv_flood_seen: u64,
}

impl ConnCounters {
    /// `self - before` for the counting fields (`max_gap_us` is taken from `self`).
    pub fn since(&self, b: &ConnCounters) -> ConnCounters {
        ConnCounters {
            syn_sent: self.syn_sent - b.syn_sent,
            established: self.established - b.established,
            proxied: self.proxied - b.proxied,
            window_updates: self.window_updates - b.window_updates,
            completed: self.completed - b.completed,
            closed: self.closed - b.closed,
            resets: self.resets - b.resets,
            lost: self.lost - b.lost,
            gaps_over_10ms: self.gaps_over_10ms - b.gaps_over_10ms,
            max_gap_us: self.max_gap_us,
            srv_syn: self.srv_syn - b.srv_syn,
            srv_ack: self.srv_ack - b.srv_ack,
            srv_req: self.srv_req - b.srv_req,
            srv_fin: self.srv_fin - b.srv_fin,
            srv_flood_seen: self.srv_flood_seen - b.srv_flood_seen,
        }
    }
}

/// Low ISN bits kept zero (see the module documentation).
const ISN_LOW: u32 = 3;

/// The client's ISN for a SYN sent at TSC `now`: its low 32 bits, rounded down to a
/// multiple of 4 (latency resolution: 4 cycles).
#[inline]
pub fn isn_at(now: u64) -> u32 {
    crate::low32(now) & !ISN_LOW
}

/// The request size to use for `wanted` bytes: one more when `wanted` is 3 modulo 4.
pub fn request_size(wanted: usize) -> usize {
    if (wanted + 1) & ISN_LOW as usize == 0 {
        wanted + 1
    } else {
        wanted
    }
}

/// Server's initial sequence number for a client ISN (any bijection works).
pub fn server_isn(client_isn: u32) -> u32 {
    client_isn ^ 0x5eed_cafe
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn reply(
    d: &Parsed,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload_len: usize,
    mss: bool,
) -> Segment {
    Segment {
        tuple: d.tuple.reversed(),
        seq,
        ack,
        flags,
        payload_len,
        mss,
        window: WINDOW,
    }
}

/// The client side.
#[derive(Debug)]
pub struct Client<'a> {
    pub c: &'a mut ConnCounters,
    /// SYN to response, SYN to SYN-ACK, SYN to window update (TSC cycles).
    pub connect: &'a mut Histogram,
    pub handshake: &'a mut Histogram,
    pub opened: &'a mut Histogram,
    /// The flood's source prefix and counters (what comes back to spoofed sources).
    pub flood: Option<(IpPrefix, &'a mut FloodCounters)>,
    /// Request bytes (see [`request_size`]).
    pub req: usize,
    pub measuring: bool,
}

impl Client<'_> {
    /// The reply to `d` received at TSC `now`, if any.
    pub fn on_segment(&mut self, d: &Parsed, now: u64) -> Option<Segment> {
        if d.proto != Proto::Tcp {
            return None;
        }
        let f = d.flags;
        if let Some((prefix, fc)) = self.flood.as_mut() {
            if prefix.contains(d.tuple.dst) {
                // Nobody lives there: a spoofed source never answers.
                if f.contains(TcpFlags::SYN | TcpFlags::ACK) {
                    fc.synacks += 1;
                } else {
                    fc.other += 1;
                }
                return None;
            }
        }
        let now32 = crate::low32(now);
        if f.contains(TcpFlags::RST) {
            self.c.resets += 1;
            None
        } else if f.contains(TcpFlags::SYN | TcpFlags::ACK) {
            self.c.established += 1;
            if self.measuring {
                self.handshake
                    .record(u64::from(now32.wrapping_sub(d.ack.wrapping_sub(1))));
            }
            if d.window == 0 {
                // A SYN proxy's cookie: complete its handshake, wait for the window.
                self.c.proxied += 1;
                Some(reply(
                    d,
                    d.ack,
                    d.seq.wrapping_add(1),
                    TcpFlags::ACK,
                    0,
                    false,
                ))
            } else {
                let flags = TcpFlags::ACK | TcpFlags::PSH;
                Some(reply(
                    d,
                    d.ack,
                    d.seq.wrapping_add(1),
                    flags,
                    self.req,
                    false,
                ))
            }
        } else if f.contains(TcpFlags::FIN) && d.payload_len > 0 {
            self.c.completed += 1;
            let isn = d.ack.wrapping_sub(1).wrapping_sub(u32_of(self.req));
            if self.measuring {
                self.connect.record(u64::from(now32.wrapping_sub(isn)));
            }
            let ack = d.seq.wrapping_add(u32_of(d.payload_len)).wrapping_add(1);
            Some(reply(
                d,
                d.ack,
                ack,
                TcpFlags::FIN | TcpFlags::ACK,
                0,
                false,
            ))
        } else if f.contains(TcpFlags::ACK) && d.payload_len == 0 && !f.contains(TcpFlags::FIN) {
            if d.ack.wrapping_sub(1) & ISN_LOW == 0 {
                // The window update: ack = isn + 1, seq = cookie + 1.
                self.c.window_updates += 1;
                if self.measuring {
                    self.opened
                        .record(u64::from(now32.wrapping_sub(d.ack.wrapping_sub(1))));
                }
                let flags = TcpFlags::ACK | TcpFlags::PSH;
                Some(reply(d, d.ack, d.seq, flags, self.req, false))
            } else {
                self.c.closed += 1;
                None
            }
        } else {
            None
        }
    }
}

/// The server side (the real servers).
#[derive(Debug)]
pub struct Server<'a> {
    pub c: &'a mut ConnCounters,
    pub resp: usize,
    /// Flood source prefix: segments from it (or carrying its addresses in TOA) are counted.
    pub flood: Option<IpPrefix>,
    /// Half-open tracking, when asked for.
    pub half_open: Option<&'a mut HalfOpen>,
}

impl Server<'_> {
    fn flood_source(&self, d: &Parsed) -> bool {
        let Some(p) = self.flood else { return false };
        p.contains(d.tuple.src) || d.toa.is_some_and(|a: Ipv4Addr| p.contains(a))
    }

    /// The reply to `d`, if any.
    pub fn on_segment(&mut self, d: &Parsed) -> Option<Segment> {
        if d.proto != Proto::Tcp {
            return None;
        }
        if self.flood_source(d) {
            self.c.srv_flood_seen += 1;
        }
        let f = d.flags;
        let syn = f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK);
        if let Some(h) = self.half_open.as_mut() {
            if syn {
                h.syn(&d.tuple);
            } else {
                h.progressed(&d.tuple);
            }
        }
        if f.contains(TcpFlags::RST) {
            self.c.resets += 1;
            None
        } else if syn {
            self.c.srv_syn += 1;
            let flags = TcpFlags::SYN | TcpFlags::ACK;
            Some(reply(
                d,
                server_isn(d.seq),
                d.seq.wrapping_add(1),
                flags,
                0,
                true,
            ))
        } else if d.payload_len > 0 {
            self.c.srv_req += 1;
            let ack = d.seq.wrapping_add(u32_of(d.payload_len));
            let flags = TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK;
            Some(reply(d, d.ack, ack, flags, self.resp, false))
        } else if f.contains(TcpFlags::FIN) {
            self.c.srv_fin += 1;
            Some(reply(
                d,
                d.ack,
                d.seq.wrapping_add(1),
                TcpFlags::ACK,
                0,
                false,
            ))
        } else {
            if f.contains(TcpFlags::ACK) {
                self.c.srv_ack += 1;
            }
            None
        }
    }
}

#[cfg(test)]
#[path = "peers_tests.rs"]
mod tests;
