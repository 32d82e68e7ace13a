//! `[synproxy]`: the SYN proxy's knobs, set once for every service with keepalived.conf's
//! `syn_proxy` (named as DPVS's `synproxy` block in dpvs.conf). Absent keys keep
//! [`SynProxyConf::default`]; an absent `wscale` means window scaling is not offered.

use fastpath::synproxy::{SynProxyConf, SynProxyConfError, MAX_WSCALE, MIN_MSS};
use serde::Deserialize;

/// The section as written. Numbers are read wide so that an out-of-range value gets a
/// message with the range, not a type error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynProxySection {
    mss: Option<i64>,
    wscale: Option<i64>,
    sack: Option<bool>,
    ttl: Option<i64>,
    rs_syn_max_retry: Option<i64>,
    ack_storm_thresh: Option<i64>,
    /// DPVS can offer timestamps; this director never does. Only `false` is accepted.
    timestamp: Option<bool>,
}

/// Largest MSS announced (a 65535-byte IPv4 packet less 40 bytes of headers).
const MAX_MSS: i64 = 65495;

/// A refusal: the field (`synproxy.mss`) and what is wrong with it.
pub type Refusal = (String, String);

fn ranged<T: TryFrom<i64>>(name: &str, v: Option<i64>, lo: i64, hi: i64, default: T) -> Result<T, Refusal> {
    match v {
        None => Ok(default),
        Some(v) => {
            let refuse = || (format!("synproxy.{name}"), format!("{v} is out of range {lo}..={hi}"));
            if !(lo..=hi).contains(&v) {
                return Err(refuse());
            }
            T::try_from(v).map_err(|_| refuse())
        }
    }
}

impl SynProxySection {
    /// The checked settings.
    pub fn conf(&self) -> Result<SynProxyConf, Refusal> {
        if self.timestamp == Some(true) {
            return Err(("synproxy.timestamp".into(), "SYN proxy runs connections without TCP timestamps (the cookie leaves no room for them); remove the key or set it to false".into()));
        }
        let d = SynProxyConf::default();
        let conf = SynProxyConf {
            mss: ranged("mss", self.mss, i64::from(MIN_MSS), MAX_MSS, d.mss)?,
            wscale: match self.wscale {
                None => None,
                Some(w) => Some(ranged("wscale", Some(w), 0, i64::from(MAX_WSCALE), 0u8)?),
            },
            sack: self.sack.unwrap_or(d.sack),
            ttl: ranged("ttl", self.ttl, 1, 255, d.ttl)?,
            rs_syn_max_retry: ranged("rs_syn_max_retry", self.rs_syn_max_retry, 0, 255, d.rs_syn_max_retry)?,
            ack_storm_thresh: ranged("ack_storm_thresh", self.ack_storm_thresh, 0, 255, d.ack_storm_thresh)?,
        };
        // The fast path's own check, in case its ranges are ever narrower than these.
        conf.validate().map_err(|e| {
            let field = match e {
                SynProxyConfError::Mss(_) => "synproxy.mss",
                SynProxyConfError::Wscale(_) => "synproxy.wscale",
                SynProxyConfError::Ttl => "synproxy.ttl",
            };
            (field.to_owned(), e.to_string())
        })?;
        Ok(conf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Result<SynProxyConf, Refusal> {
        let s: SynProxySection = toml::from_str(text).map_err(|e| ("toml".to_string(), e.to_string()))?;
        s.conf()
    }

    #[test]
    fn absent_keys_are_dpvs_defaults_and_wscale_is_not_offered() {
        assert_eq!(conf("").unwrap(), SynProxyConf::default());
        assert_eq!(conf("").unwrap().wscale, None);
        let c = conf("mss = 1400\nwscale = 7\nsack = false\nttl = 64\nrs_syn_max_retry = 0\nack_storm_thresh = 0\ntimestamp = false").unwrap();
        assert_eq!(c, SynProxyConf { mss: 1400, wscale: Some(7), sack: false, ttl: 64, rs_syn_max_retry: 0, ack_storm_thresh: 0 });
        assert_eq!(conf("wscale = 0").unwrap().wscale, Some(0));
    }

    #[test]
    fn bad_values_name_the_key_and_range() {
        let e = |t: &str| conf(t).unwrap_err();
        assert_eq!(e("mss = 535"), ("synproxy.mss".into(), "535 is out of range 536..=65495".into()));
        assert_eq!(e("mss = 70000"), ("synproxy.mss".into(), "70000 is out of range 536..=65495".into()));
        assert_eq!(e("wscale = 15"), ("synproxy.wscale".into(), "15 is out of range 0..=14".into()));
        assert_eq!(e("wscale = -1"), ("synproxy.wscale".into(), "-1 is out of range 0..=14".into()));
        assert_eq!(e("ttl = 0"), ("synproxy.ttl".into(), "0 is out of range 1..=255".into()));
        assert_eq!(e("rs_syn_max_retry = 256").0, "synproxy.rs_syn_max_retry");
        assert_eq!(e("ack_storm_thresh = -3").0, "synproxy.ack_storm_thresh");
        let t = e("timestamp = true");
        assert_eq!(t.0, "synproxy.timestamp");
        assert!(t.1.starts_with("SYN proxy runs connections without TCP timestamps"), "{}", t.1);
        assert!(e("jumbo_frames = true").1.contains("jumbo_frames"));
        assert!(e("mss = '1452'").0 == "toml");
    }
}
