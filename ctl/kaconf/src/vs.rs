//! `virtual_server` and its `real_server`s.
//!
//! As in keepalived 2.2, `connect_timeout`, `retry`, `delay_before_retry`, `warmup`,
//! `delay_loop`, `alpha` and `virtualhost` given on a virtual server are defaults for its real
//! servers, and on a real server defaults for its check; `inhibit_on_failure` on a virtual
//! server applies to all of its real servers. A real server's `notify_up` / `notify_down` are
//! stored on its check.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::check::{self, optional_bool, CheckDefaults, Notify};
use crate::convert::{choice, command, networks, parse, single, unknown, Cx, Seen};
use crate::error::{Error, ErrorKind, Pos};
use crate::model::{
    Scheduler, ForwardMode, Protocol, RealServer, VirtualServer, DEFAULT_DELAY_LOOP,
    DEFAULT_PERSISTENCE_TIMEOUT, LB_ALGOS, LB_KINDS, PROTOCOLS,
};
use crate::tree::Node;
use crate::value;

/// Longest persistence keepalived accepts (31 days).
const MAX_PERSISTENCE_TIMEOUT: u32 = 31 * 86_400;

/// keepalived virtual_server keywords accepted without being acted on, with why that changes
/// nothing.
pub(crate) const VS_IGNORED: &[(&str, &str)] = &[
    ("hashed", "an IPVS-internal flag with no effect on scheduling"),
    (
        "sh-fallback",
        "lbd's sh and mh tables hold only available real servers, so a client whose server is \
         down or has weight 0 always goes to another one (what the flag asks for)",
    ),
    ("mh-fallback", "as sh-fallback"),
    ("flag-1", "IPVS's first scheduler flag: sh-fallback / mh-fallback"),
    ("flag-3", "IPVS's third scheduler flag, which no scheduler lbd has uses"),
    ("smtp_alert", "there is no mailer"),
    ("snmp_name", "there is no SNMP agent"),
    ("weight", "a keepalived setting for a VRRP tracked service, not a scheduler weight"),
    (
        "sorry_server_inhibit",
        "lbd's sorry server serves only while no real server can, whatever its weight",
    ),
    (
        "sorry_server_lvs_method",
        "the sorry server is reached by the service's own forwarding method",
    ),
];

/// DPVS's keepalived virtual_server keywords accepted without being acted on, with why that
/// changes nothing here.
pub(crate) const VS_IGNORED_DPVS: &[(&str, &str)] = &[
    ("vip_bind_dev", "lbd picks the port for a VIP by its subnet"),
    ("daddr_group_name", "SNAT services (lb_kind SNAT) are refused anyway"),
    ("nat_mask", "SNAT services (lb_kind SNAT) are refused anyway"),
    ("src-range", "SNAT match; SNAT services are refused anyway"),
    ("dst-range", "SNAT match; SNAT services are refused anyway"),
    ("oif", "SNAT match; SNAT services are refused anyway"),
    ("iif", "SNAT match; SNAT services are refused anyway"),
];

/// virtual_server keywords that would change what the service does but are not done:
/// `(keyword, origin, why)`, refused at their file:line:column.
pub(crate) const VS_REFUSED: &[(&str, &str, &str)] = &[
    (
        "ops",
        "keepalived",
        "one-packet scheduling (each UDP datagram scheduled on its own, no session) is not \
         done: lbd keeps a session per UDP flow; remove it",
    ),
    ("persistence_engine", "keepalived", "persistence engines (SIP Call-ID) are not done"),
    (
        "bps",
        "DPVS",
        "a bandwidth limit per service is not done; flow_control_cps / flow_control_pc limit \
         new and concurrent connections",
    ),
    (
        "limit_proportion",
        "DPVS",
        "a bandwidth limit per service is not done; flow_control_cps / flow_control_pc limit \
         new and concurrent connections",
    ),
    (
        "establish_timeout",
        "DPVS",
        "a per-service established timeout is not done; the global tcp timeout applies (lbctl \
         --set)",
    ),
    (
        "hash_target",
        "DPVS",
        "conhash hashes the client address (sh-port adds its port); QUIC connection IDs are not \
         parsed",
    ),
    (
        "expire_quiescent_conn",
        "DPVS",
        "connections to a removed or weight-0 real server drain (tcp_draining_timeout) instead",
    ),
    ("quic", "DPVS", "QUIC connection-ID scheduling is not done"),
    ("proxy_protocol", "DPVS", "PROXY protocol insertion is not done; FNAT passes the client address in TOA"),
    (
        "blklst_group_name",
        "DPVS",
        "DPVS address lists are not read; list the refused clients in client_ipaddr_exclude",
    ),
    (
        "whtlst_group_name",
        "DPVS",
        "DPVS address lists are not read; list the allowed clients in client_ipaddr_allow",
    ),
];

/// keepalived real_server keywords accepted without being acted on.
pub(crate) const RS_IGNORED: &[&str] = &[
    "lvs_method",
    "uthreshold",
    "lthreshold",
    "smtp_alert",
    "snmp_name",
];

/// Schedulers and methods LVS has that the director does not do.
const ALGOS_UNSUPPORTED: &[&str] = &["twos"];
const KINDS_UNSUPPORTED: &[&str] = &["TUN", "SNAT", "MASQ"];
const PROTOCOLS_UNSUPPORTED: &[&str] = &["SCTP", "ICMP", "ICMPV6"];

/// One `virtual_server` statement, parsed.
pub(crate) struct Parsed {
    /// For `virtual_server group NAME`, the address and port are 0.0.0.0 and 0 until the
    /// group's members replace them.
    pub vs: VirtualServer,
    /// Where its `laddr_group_name` value is, checked once the whole file is read.
    pub laddr_ref: Option<Pos>,
    /// `virtual_server group NAME`: the name and where it is written.
    pub group: Option<(String, Pos)>,
}

/// Parses one `virtual_server <vip> <port> | group <name> { ... }`.
pub(crate) fn virtual_server(n: &Node, cx: &mut Cx) -> Result<Parsed, Error> {
    let mut group = None;
    let (vip, port) = match n.args.first().map(|a| a.text.as_str()) {
        Some("fwmark") => {
            return Err(crate::vsg::fwmark_refused(
                &n.arg_pos(&n.args[0]),
                &n.keyword,
            ))
        }
        Some("match") => {
            let what = "virtual_server match (give an address and a port, or a group)".into();
            return Err(n.arg_err(&n.args[0], ErrorKind::NotSupported { what }));
        }
        Some("group") => {
            n.arity(2, 2, &["group", "virtual_server_group name"])?;
            let name = parse(n, &n.args[1], value::name)?;
            group = Some((name, n.arg_pos(&n.args[1])));
            (Ipv4Addr::UNSPECIFIED, 0)
        }
        _ => {
            n.arity(2, 2, &["virtual IP address", "port"])?;
            (
                parse(n, &n.args[0], value::ipv4)?,
                parse(n, &n.args[1], value::port)?,
            )
        }
    };
    let body = n.block()?;

    let mut seen = Seen::default();
    let mut protocol = Protocol::Tcp;
    let mut protocol_line = None;
    let mut lb_kind_line = None;
    let mut syn_proxy_at: Option<&Node> = None;
    let mut lb_algo: Option<Scheduler> = None;
    let mut lb_kind: Option<ForwardMode> = None;
    let mut vs = VsFields::default();
    let mut laddr_ref = None;
    let mut inhibit_all = false;
    let mut defaults = CheckDefaults::default();
    let mut rs_seen: HashMap<(Ipv4Addr, u16), u32> = HashMap::new();
    let mut real_servers = Vec::new();
    for c in body {
        match c.keyword.as_str() {
            "protocol" => {
                seen.once(c, "protocol")?;
                protocol = choice(c, PROTOCOLS, PROTOCOLS_UNSUPPORTED)?;
                protocol_line = Some(c.line);
            }
            "lb_algo" | "lvs_sched" => {
                seen.once(c, "lb_algo")?;
                lb_algo = Some(choice(c, LB_ALGOS, ALGOS_UNSUPPORTED)?);
            }
            "lb_kind" | "lvs_method" => {
                seen.once(c, "lb_kind")?;
                lb_kind = Some(choice(c, LB_KINDS, KINDS_UNSUPPORTED)?);
                lb_kind_line = Some(c.line);
            }
            "ip_family" => {
                seen.once(c, "ip_family")?;
                single(c, "inet or inet6", |s| match s {
                    "inet" => Ok(()),
                    "inet6" => Err("IPv6 is not supported yet".into()),
                    _ => Err("expected inet".into()),
                })?;
            }
            "delay_loop" => {
                seen.once(c, "delay_loop")?;
                vs.delay_loop = Some(single(c, "seconds", |s| value::seconds(s, MIN_TIMER))?);
            }
            "persistence_timeout" => {
                seen.once(c, "persistence_timeout")?;
                c.no_block()?;
                c.arity(0, 1, &[])?;
                vs.persistence_timeout = Some(match c.args.first() {
                    None => DEFAULT_PERSISTENCE_TIMEOUT,
                    Some(a) => parse(c, a, |s| value::u32_in(s, 1, MAX_PERSISTENCE_TIMEOUT))?,
                });
            }
            "persistence_granularity" => {
                seen.once(c, "persistence_granularity")?;
                vs.persistence_granularity = Some(single(c, "netmask", value::netmask)?);
            }
            "laddr_group_name" => {
                seen.once(c, "laddr_group_name")?;
                vs.laddr_group_name = Some(single(c, "group name", value::name)?);
                laddr_ref = c.args.first().map(|a| c.arg_pos(a));
            }
            "alpha" => flag(c, &mut seen, "alpha", &mut vs.alpha)?,
            "omega" => flag(c, &mut seen, "omega", &mut vs.omega)?,
            "checker_off" => flag(c, &mut seen, "checker_off", &mut vs.checker_off)?,
            "checker_merge" => flag(c, &mut seen, "checker_merge", &mut vs.checker_merge)?,
            "syn_proxy" => {
                flag(c, &mut seen, "syn_proxy", &mut vs.syn_proxy)?;
                syn_proxy_at = Some(c);
            }
            "quorum" => {
                seen.once(c, "quorum")?;
                vs.quorum = Some(single(c, "number", |s| value::u32_in(s, 1, u32::MAX))?);
            }
            "hysteresis" => {
                seen.once(c, "hysteresis")?;
                vs.hysteresis = Some(single(c, "number", |s| value::u32_in(s, 0, u32::MAX))?);
            }
            "quorum_up" => {
                seen.once(c, "quorum_up")?;
                vs.quorum_up = Some(command(c)?);
            }
            "quorum_down" => {
                seen.once(c, "quorum_down")?;
                vs.quorum_down = Some(command(c)?);
            }
            "tcp_draining_timeout" => number(
                c,
                &mut seen,
                "tcp_draining_timeout",
                &mut vs.tcp_draining_timeout,
            )?,
            "flow_control_cps" => {
                number(c, &mut seen, "flow_control_cps", &mut vs.flow_control_cps)?
            }
            "flow_control_interval" => {
                // 0 is refused, not read as 1: nothing is defaulted in place of a bad value.
                seen.once(c, "flow_control_interval")?;
                vs.flow_control_interval =
                    Some(single(c, "seconds", |s| value::u32_in(s, 1, u32::MAX))?);
            }
            "flow_control_pc" => number(c, &mut seen, "flow_control_pc", &mut vs.flow_control_pc)?,
            "client_ipaddr_allow" => vs.client_ipaddr_allow.extend(networks(c, cx)?),
            "client_ipaddr_exclude" => vs.client_ipaddr_exclude.extend(networks(c, cx)?),
            "sorry_server" => {
                seen.once(c, "sorry_server")?;
                c.no_block()?;
                c.arity(2, 2, &["IP address", "port"])?;
                vs.sorry_server = Some((
                    parse(c, &c.args[0], value::ipv4)?,
                    parse(c, &c.args[1], value::nonzero_port)?,
                ));
            }
            "inhibit_on_failure" => {
                seen.once(c, "inhibit_on_failure")?;
                inhibit_all = optional_bool(c)?;
            }
            kw if check::VS_DEFAULTS.contains(&kw) => {
                check::check_default(c, &mut seen, &mut defaults)?
            }
            "real_server" => {
                let rs = real_server(c, cx)?;
                if let Some(first_line) = rs_seen.insert((rs.rs.ip, rs.rs.port), c.line) {
                    return Err(c.err(ErrorKind::Duplicate { first_line }));
                }
                real_servers.push(rs);
            }
            "ha_suspend" => {
                let what = "ha_suspend (suspending a virtual server's checks while this director \
                            does not hold its address): lb-slowpath checks on master and backup \
                            alike, so a takeover starts from current verdicts; remove it"
                    .into();
                return Err(c.err(ErrorKind::NotSupported { what }));
            }
            // Only the hashing schedulers read it (in IPVS as here).
            "sh-port" | "mh-port" | "flag-2" => vs.hash_port = true,
            kw if VS_IGNORED.iter().chain(VS_IGNORED_DPVS).any(|(k, _)| *k == kw) => cx.ignore(c),
            kw if VS_REFUSED.iter().any(|(k, _, _)| *k == kw) => {
                let why = VS_REFUSED.iter().find(|(k, _, _)| *k == kw).map_or("", |(_, _, w)| w);
                return Err(c.err(ErrorKind::NotSupported { what: why.to_string() }));
            }
            "DNS_CHECK" | "SMTP_CHECK" | "BFD_CHECK" | "FILE_CHECK" | "PING_CHECK"
            | "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "UDP_CHECK" | "MISC_CHECK" => {
                return Err(unknown(
                    c,
                    "virtual_server (checks go inside a real_server)",
                ))
            }
            _ => return Err(unknown(c, "virtual_server")),
        }
    }
    let missing = |what: &str| n.err(ErrorKind::Missing { what: what.into() });
    let lb_algo = lb_algo.ok_or_else(|| missing("lb_algo (the scheduler: rr, wrr, ...)"))?;
    let lb_kind = lb_kind.ok_or_else(|| missing("lb_kind (FNAT, DR, NAT or TUN)"))?;
    if let Some(c) = syn_proxy_at {
        syn_proxy_fits(c, protocol, protocol_line, lb_kind, lb_kind_line)?;
    }
    let delay_loop = vs.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
    defaults.delay_loop = Some(delay_loop);
    defaults.alpha = Some(vs.alpha);
    let real_servers = real_servers
        .into_iter()
        .map(|p| p.finish(inhibit_all, &defaults))
        .collect();
    let vs = VirtualServer {
        vip,
        port,
        protocol,
        lb_algo,
        lb_kind,
        persistence_timeout: vs.persistence_timeout,
        persistence_granularity: vs.persistence_granularity,
        laddr_group_name: vs.laddr_group_name,
        delay_loop,
        alpha: vs.alpha,
        omega: vs.omega,
        quorum: vs.quorum.unwrap_or(1),
        hysteresis: vs.hysteresis.unwrap_or(0),
        quorum_up: vs.quorum_up,
        quorum_down: vs.quorum_down,
        tcp_draining_timeout: vs.tcp_draining_timeout,
        flow_control_cps: vs.flow_control_cps,
        flow_control_interval: vs.flow_control_interval,
        flow_control_pc: vs.flow_control_pc,
        client_ipaddr_allow: vs.client_ipaddr_allow,
        client_ipaddr_exclude: vs.client_ipaddr_exclude,
        checker_off: vs.checker_off,
        checker_merge: vs.checker_merge,
        sorry_server: vs.sorry_server,
        syn_proxy: vs.syn_proxy,
        hash_port: vs.hash_port,
        real_servers,
        file: n.file.to_path_buf(),
        line: n.line,
    };
    Ok(Parsed {
        vs,
        laddr_ref,
        group,
    })
}

/// Smallest interval accepted for timers that must not be zero.
pub(crate) const MIN_TIMER: Duration = Duration::from_micros(1);

/// The optional settings of a virtual server while its block is read.
#[derive(Default)]
struct VsFields {
    persistence_timeout: Option<u32>,
    persistence_granularity: Option<Ipv4Addr>,
    laddr_group_name: Option<String>,
    delay_loop: Option<Duration>,
    alpha: bool,
    omega: bool,
    quorum: Option<u32>,
    hysteresis: Option<u32>,
    quorum_up: Option<String>,
    quorum_down: Option<String>,
    tcp_draining_timeout: Option<u32>,
    flow_control_cps: Option<u32>,
    flow_control_interval: Option<u32>,
    flow_control_pc: Option<u32>,
    client_ipaddr_allow: Vec<ipnetwork::Ipv4Network>,
    client_ipaddr_exclude: Vec<ipnetwork::Ipv4Network>,
    checker_off: bool,
    checker_merge: bool,
    sorry_server: Option<(Ipv4Addr, u16)>,
    syn_proxy: bool,
    hash_port: bool,
}

/// Refuses `syn_proxy` (the node `c`) on a service it cannot work for: the director must see
/// both directions of a TCP connection to splice the sequence numbers of the handshake it
/// answered. Lines are those of the `protocol` and `lb_kind` statements.
fn syn_proxy_fits(
    c: &Node,
    protocol: Protocol,
    protocol_line: Option<u32>,
    lb_kind: ForwardMode,
    lb_kind_line: Option<u32>,
) -> Result<(), Error> {
    let at = |line: Option<u32>| line.map(|l| format!(" (line {l})")).unwrap_or_default();
    if protocol != Protocol::Tcp {
        return Err(c.err(ErrorKind::Incompatible {
            with: format!("protocol {protocol}{}", at(protocol_line)),
            why: "SYN proxy answers TCP handshakes; it needs protocol TCP".into(),
        }));
    }
    if lb_kind == ForwardMode::Dr {
        return Err(c.err(ErrorKind::Incompatible {
            with: format!("lb_kind {lb_kind}{}", at(lb_kind_line)),
            why: "real servers' replies bypass the director, which could not splice their \
                  sequence numbers; SYN proxy needs lb_kind FNAT or NAT"
                .into(),
        }));
    }
    Ok(())
}

fn flag(c: &Node, seen: &mut Seen, name: &'static str, out: &mut bool) -> Result<(), Error> {
    seen.once(c, name)?;
    c.flag()?;
    *out = true;
    Ok(())
}

fn number(
    c: &Node,
    seen: &mut Seen,
    name: &'static str,
    out: &mut Option<u32>,
) -> Result<(), Error> {
    seen.once(c, name)?;
    *out = Some(single(c, "number", |s| value::u32_in(s, 0, u32::MAX))?);
    Ok(())
}

/// A real server whose inherited settings are not known until its virtual server is read.
struct PendingRs {
    rs: RealServer,
    inhibit: Option<bool>,
    defaults: CheckDefaults,
    notify: Notify,
    check: Option<check::Pending>,
}

impl PendingRs {
    fn finish(self, inhibit_all: bool, vs_defaults: &CheckDefaults) -> RealServer {
        let defaults = self.defaults.or(vs_defaults);
        let notify = self.notify;
        RealServer {
            inhibit_on_failure: self.inhibit.unwrap_or(inhibit_all),
            check: self.check.map(|c| c.finish(&defaults, notify)),
            ..self.rs
        }
    }
}

/// `real_server <ip> <port> [{ ... }]`.
fn real_server(n: &Node, cx: &mut Cx) -> Result<PendingRs, Error> {
    n.arity(2, 2, &["IP address", "port"])?;
    let (ip, port) = (
        parse(n, &n.args[0], value::ipv4)?,
        parse(n, &n.args[1], value::port)?,
    );
    let mut rs = RealServer {
        ip,
        port,
        weight: 1,
        inhibit_on_failure: false,
        check: None,
        file: n.file.to_path_buf(),
        line: n.line,
    };
    let mut seen = Seen::default();
    let mut inhibit = None;
    let mut defaults = CheckDefaults::default();
    let mut notify = Notify::default();
    let mut notify_at: Option<&Node> = None;
    let mut pending_check: Option<check::Pending> = None;
    for c in n.children.iter().flatten() {
        match c.keyword.as_str() {
            "weight" => {
                seen.once(c, "weight")?;
                rs.weight = single(c, "weight", |s| value::u32_in(s, 0, 65_535))?;
            }
            "inhibit_on_failure" => {
                seen.once(c, "inhibit_on_failure")?;
                inhibit = Some(optional_bool(c)?);
            }
            kw if check::RS_DEFAULTS.contains(&kw) => {
                check::check_default(c, &mut seen, &mut defaults)?
            }
            "notify_up" => {
                seen.once(c, "notify_up")?;
                notify.up = Some(command(c)?);
                notify_at = notify_at.or(Some(c));
            }
            "notify_down" => {
                seen.once(c, "notify_down")?;
                notify.down = Some(command(c)?);
                notify_at = notify_at.or(Some(c));
            }
            kw if check::is_check(kw) => {
                let parsed = check::parse_check(c, cx)?;
                if pending_check.is_some() {
                    let what = "more than one health check per real_server".into();
                    return Err(c.err(ErrorKind::NotSupported { what }));
                }
                pending_check = Some(parsed);
            }
            kw if RS_IGNORED.contains(&kw) => cx.ignore(c),
            _ => return Err(unknown(c, "real_server")),
        }
    }
    if let (Some(c), None) = (notify_at, &pending_check) {
        let what = format!(
            "{} on a real_server without a health check (nothing would run it)",
            c.keyword
        );
        return Err(c.err(ErrorKind::NotSupported { what }));
    }
    Ok(PendingRs {
        rs,
        inhibit,
        defaults,
        notify,
        check: pending_check,
    })
}
