//! From a keepalived.conf model to what the engine runs: one [`ServerPlan`] per real server,
//! one [`CheckSpec`] per check (shared by the real servers of `checker_merge` virtual servers
//! that probe the same address with the same settings), one [`VsPlan`] per virtual server.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use kaconf::{Config, HealthCheck, RealServer, VirtualServer};

use super::{Millis, Probe, RsKey, VsKey};

/// The check types, named as keepalived.conf spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Tcp,
    Http,
    Ssl,
    Udp,
    Misc,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "TCP_CHECK",
            Kind::Http => "HTTP_GET",
            Kind::Ssl => "SSL_GET",
            Kind::Udp => "UDP_CHECK",
            Kind::Misc => "MISC_CHECK",
        }
    }
}

/// A check's timers, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Timing {
    /// At least 1.
    pub delay_loop: Millis,
    pub retry: u32,
    pub delay_before_retry: Millis,
    pub warmup: Millis,
}

/// Everything that makes one check behave as it does; two checks with equal specs are
/// interchangeable (a reload keeps the state of a check whose spec did not change).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckSpec {
    pub kind: Kind,
    pub probe: Probe,
    pub timing: Timing,
    pub alpha: bool,
}

/// What identifies a check across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CheckKey {
    /// The check of one real server.
    Own(RsKey),
    /// A `checker_merge` TCP check: one probe for every virtual server naming this target
    /// with these settings.
    Merged {
        target: SocketAddrV4,
        bind: Option<SocketAddrV4>,
        timeout: Duration,
        timing: Timing,
        alpha: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServerPlan {
    pub key: RsKey,
    /// Index into [`Plan::vss`].
    pub vs: usize,
    pub weight: u32,
    pub inhibit: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// Index into [`Plan::checks`]; `None`: not checked, always up.
    pub check: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VsPlan {
    pub key: VsKey,
    pub quorum: u64,
    pub hysteresis: u64,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub omega: bool,
    pub has_sorry_server: bool,
    /// Indexes into [`Plan::servers`].
    pub servers: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub checks: Vec<(CheckKey, CheckSpec)>,
    pub servers: Vec<ServerPlan>,
    pub vss: Vec<VsPlan>,
}

pub(crate) fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

impl Plan {
    pub(crate) fn new(cfg: &Config) -> Plan {
        let mut plan = Plan::default();
        let mut merged: HashMap<CheckKey, usize> = HashMap::new();
        for vs in &cfg.virtual_servers {
            let vs_key = VsKey {
                vip: vs.vip,
                port: vs.port,
                protocol: vs.protocol,
            };
            let vs_index = plan.vss.len();
            let mut servers = Vec::with_capacity(vs.real_servers.len());
            for rs in &vs.real_servers {
                let key = RsKey {
                    vs: vs_key,
                    ip: rs.ip,
                    port: rs.port,
                };
                let check = rs.check.as_ref().filter(|_| !vs.checker_off);
                let (notify_up, notify_down) = check.map_or((None, None), |c| {
                    (c.common().notify_up.clone(), c.common().notify_down.clone())
                });
                let check = check.map(|c| {
                    let spec = spec(vs, rs, c);
                    let check_key = match (&spec.probe, vs.checker_merge) {
                        (
                            Probe::Tcp {
                                target,
                                bind,
                                timeout,
                            },
                            true,
                        ) => CheckKey::Merged {
                            target: *target,
                            bind: *bind,
                            timeout: *timeout,
                            timing: spec.timing,
                            alpha: spec.alpha,
                        },
                        _ => CheckKey::Own(key),
                    };
                    if let CheckKey::Merged { .. } = check_key {
                        if let Some(&i) = merged.get(&check_key) {
                            return i;
                        }
                        merged.insert(check_key.clone(), plan.checks.len());
                    }
                    plan.checks.push((check_key, spec));
                    plan.checks.len() - 1
                });
                servers.push(plan.servers.len());
                plan.servers.push(ServerPlan {
                    key,
                    vs: vs_index,
                    weight: rs.weight,
                    inhibit: rs.inhibit_on_failure,
                    notify_up,
                    notify_down,
                    check,
                });
            }
            plan.vss.push(VsPlan {
                key: vs_key,
                quorum: vs.quorum.into(),
                hysteresis: vs.hysteresis.into(),
                quorum_up: vs.quorum_up.clone(),
                quorum_down: vs.quorum_down.clone(),
                omega: vs.omega,
                has_sorry_server: vs.sorry_server.is_some(),
                servers,
            });
        }
        plan
    }
}

/// One real server's check, every address resolved.
fn spec(vs: &VirtualServer, rs: &RealServer, check: &HealthCheck) -> CheckSpec {
    let common = check.common();
    let timing = Timing {
        delay_loop: millis(common.delay_loop).max(1),
        retry: common.retry,
        delay_before_retry: millis(common.delay_before_retry),
        warmup: millis(common.warmup),
    };
    let (target, bind, timeout) = match check.connect() {
        Some(c) => {
            let target = SocketAddrV4::new(
                c.connect_ip.unwrap_or(rs.ip),
                c.connect_port.unwrap_or(rs.port),
            );
            let bind = (c.bindto.is_some() || c.bind_port.is_some()).then(|| {
                SocketAddrV4::new(
                    c.bindto.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    c.bind_port.unwrap_or(0),
                )
            });
            (target, bind, c.connect_timeout)
        }
        None => (SocketAddrV4::new(rs.ip, rs.port), None, Duration::ZERO),
    };
    let (kind, probe) = match check {
        HealthCheck::Tcp(_) => (
            Kind::Tcp,
            Probe::Tcp {
                target,
                bind,
                timeout,
            },
        ),
        HealthCheck::Http(h) | HealthCheck::Ssl(h) => {
            let tls = matches!(check, HealthCheck::Ssl(_));
            let probe = Probe::Http {
                target,
                bind,
                timeout,
                tls,
                virtualhost: h.virtualhost.clone(),
                urls: h.urls.clone(),
                http_protocol: h.http_protocol,
                enable_sni: h.enable_sni,
            };
            (if tls { Kind::Ssl } else { Kind::Http }, probe)
        }
        HealthCheck::Udp(u) => {
            let probe = Probe::Udp {
                target,
                bind,
                timeout,
                payload: u.payload.clone().unwrap_or_default(),
                require_reply: u.require_reply,
                ping: !u.ping_check_off,
            };
            (Kind::Udp, probe)
        }
        HealthCheck::Misc(m) => {
            let probe = Probe::Misc {
                command: m.misc_path.clone(),
                // keepalived: no misc_timeout means the virtual server's delay_loop.
                timeout: m.misc_timeout.unwrap_or(vs.delay_loop),
                dynamic: m.misc_dynamic,
            };
            (Kind::Misc, probe)
        }
    };
    CheckSpec {
        kind,
        probe,
        timing,
        alpha: common.alpha,
    }
}
