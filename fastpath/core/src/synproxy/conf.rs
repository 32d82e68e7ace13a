//! A virtual service's SYN proxy settings (`syn_proxy` in keepalived.conf, as Alibaba's LVS
//! and DPVS spell it; the knobs are DPVS's `synproxy` block, set once in lbd.toml).

/// What the director announces in the SYN-ACK it answers for the real servers, and how it
/// guards the handshake it completes on their behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynProxyConf {
    /// MSS announced to clients (DPVS: 1452, room for TOA's 8 bytes on a 1500-byte path);
    /// lowered to the client's own when that is smaller.
    pub mss: u16,
    /// Window scale shift announced to clients that offer scaling (`None`: not offered, the
    /// connection runs unscaled). Windows from real servers that chose another shift are
    /// rescaled in flight.
    pub wscale: Option<u8>,
    /// Offer SACK to clients that offer it (passed on to the real server).
    pub sack: bool,
    /// TTL of the SYN-ACKs and window updates the director originates.
    pub ttl: u8,
    /// How many times a client packet waiting on the real server's SYN-ACK may re-send the
    /// SYN to it (DPVS's `rs_syn_max_retry`).
    pub rs_syn_max_retry: u8,
    /// Identical pure ACKs in a row (same ack number, no data) beyond which further ones are
    /// dropped (DPVS's `ack_storm_thresh`; 0: no limit).
    pub ack_storm_thresh: u8,
}

impl Default for SynProxyConf {
    fn default() -> Self {
        SynProxyConf { mss: 1452, wscale: None, sack: true, ttl: 63, rs_syn_max_retry: 3, ack_storm_thresh: 10 }
    }
}

/// Largest window scale shift TCP allows (RFC 7323).
pub const MAX_WSCALE: u8 = 14;
/// Smallest MSS the director announces (RFC 879's default; below it nothing is gained).
pub const MIN_MSS: u16 = 536;

/// Why SYN proxy settings were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SynProxyConfError {
    #[error("syn proxy mss {0} is outside 536..=65495")]
    Mss(u16),
    #[error("syn proxy wscale {0} is above 14")]
    Wscale(u8),
    #[error("syn proxy ttl must be at least 1")]
    Ttl,
}

impl SynProxyConf {
    /// Checks the knobs' ranges.
    pub fn validate(&self) -> Result<(), SynProxyConfError> {
        if !(MIN_MSS..=65495).contains(&self.mss) {
            return Err(SynProxyConfError::Mss(self.mss));
        }
        if let Some(w) = self.wscale.filter(|w| *w > MAX_WSCALE) {
            return Err(SynProxyConfError::Wscale(w));
        }
        if self.ttl == 0 {
            return Err(SynProxyConfError::Ttl);
        }
        Ok(())
    }
}
