//! SYN proxy: the director answers a client's SYN itself with a SYN cookie and opens the
//! connection to the real server only once the client's ACK proves the cookie, so a spoofed
//! SYN flood costs the director one hash per SYN and the real servers nothing.
//!
//! It is a stage in front of session creation (`forward::admit`): a SYN to a proxied service
//! is answered statelessly ([`stage::client_syn`], window 0 so the client waits); the ACK
//! that returns a valid cookie is admitted like any new connection and becomes the SYN to
//! the real server ([`stage::client_ack`]); the real server's SYN-ACK becomes the ACK that
//! completes its handshake, and a window update opens the client's window
//! ([`stage::rs_waiting`]). From then on [`splice`] shifts sequence numbers (and window
//! scales, when the real server chose another shift) on every packet of the session.

mod conf;
pub mod cookie;
mod frame;
mod splice;
pub(crate) mod stage;

pub use conf::{SynProxyConf, SynProxyConfError, MAX_WSCALE, MIN_MSS};
pub use cookie::SynOpts;
pub(crate) use splice::{to_client as splice_to_client, to_rs as splice_to_rs};

/// What a SYN-proxied session remembers of the handshake the director completed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splice {
    /// Waiting for the real server's SYN-ACK.
    pub waiting: bool,
    /// The client's initial sequence number (also the one the real server sees).
    pub client_isn: u32,
    /// The director's initial sequence number toward the client (the cookie).
    pub cookie: u32,
    /// Real server's ISN minus the cookie: added to acknowledgements toward the real server,
    /// subtracted from sequence numbers toward the client.
    pub delta: u32,
    /// What the client's SYN offered, as the cookie carried it.
    pub opts: SynOpts,
    /// Window scale the director announced to the client (when scaling was negotiated).
    pub our_wscale: Option<u8>,
    /// The window of the client's handshake ACK (as sent, in the client's scale).
    pub client_win: u16,
    /// Window rescaling toward the real server and toward the client: `v << .0 >> .1`.
    pub to_rs_shift: (u8, u8),
    pub to_client_shift: (u8, u8),
    /// TTL of the window update the director originates.
    pub ttl: u8,
    /// SYN re-sends to the real server left.
    pub retries_left: u8,
    /// `ack_storm_thresh` (0: off), identical pure ACKs seen in a row, and their number.
    pub storm_thresh: u8,
    pub dup_acks: u8,
    pub last_ack: u32,
}

/// Rescales a window field: `v << shl >> shr`, at most 65535.
pub(crate) fn rescale(v: u16, (shl, shr): (u8, u8)) -> u16 {
    let bytes = u64::from(v) << shl.min(14);
    u16::try_from((bytes >> shr.min(14)).min(65_535)).unwrap_or(u16::MAX)
}
