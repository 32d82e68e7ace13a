//! From the block tree to the typed [`Config`]: the top level, `global_defs`,
//! `local_address_group`, the checks that span blocks, and the helpers every block uses.
//!
//! A keyword is either modelled (converted, its value checked), known to keepalived/DPVS but
//! not acted on yet (a [`Warning`]), or unknown (an error). A single-valued keyword given twice
//! in one block is an error rather than "the last one wins".

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::error::{Error, ErrorKind, Pos, Warning, IGNORED, NOT_ACTED_ON};
use crate::model::{Config, GlobalDefs, LocalAddr, LocalAddressGroup, Protocol, VirtualServer};
use crate::tree::{Arg, Node, Tree};
use crate::{sync, value, vrrp, vs, vsg};

/// Health checks are run by the slowpath (`lb-slowpath`), so check blocks load without a
/// warning; every check keyword is either modelled or refused.
pub(crate) const CHECKS_ACTED_ON: bool = true;
/// VRRP instances are parsed into the model, but no VRRP speaker uses them yet.
pub(crate) const VRRP_ACTED_ON: bool = true;

/// Top-level blocks keepalived or DPVS's keepalived know, accepted and skipped.
pub(crate) const TOP_IGNORED: &[&str] = &[
    "vrrp_script",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "vrrp_track_file",
    "track_file",
    "track_process",
    "garp_group",
    "bfd_instance",
    "net_namespace",
    "net_namespace_ipvs",
    "instance",
    "use_pid_dir",
    "SSL",
    "deny_address_group",
    "blacklist_address_group",
    "whitelist_address_group",
    "tunnel_group",
];

/// `global_defs` keywords of keepalived 2.2 other than `router_id` and `lvs_sync_daemon`:
/// accepted and skipped.
pub(crate) const GLOBAL_IGNORED: &[&str] = &[
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "no_email_faults",
    "enable_traps",
    "max_auto_priority",
    "min_auto_priority_delay",
    "script_user",
    "enable_script_security",
    "dynamic_interfaces",
    "default_interface",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_min_garp",
    "vrrp_garp_extra_if",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_version",
    "vrrp_iptables",
    "vrrp_ipsets",
    "vrrp_nftables",
    "vrrp_check_unicast_src",
    "vrrp_skip_check_adv_addr",
    "vrrp_strict",
    "vrrp_priority",
    "checker_priority",
    "bfd_priority",
    "vrrp_no_swap",
    "checker_no_swap",
    "bfd_no_swap",
    "vrrp_rt_priority",
    "checker_rt_priority",
    "bfd_rt_priority",
    "vrrp_cpu_affinity",
    "checker_cpu_affinity",
    "bfd_cpu_affinity",
    "vrrp_rlimit_rttime",
    "checker_rlimit_rttime",
    "bfd_rlimit_rttime",
    "vrrp_startup_delay",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "checker_netlink_cmd_rcv_bufs",
    "checker_netlink_cmd_rcv_bufs_force",
    "checker_netlink_monitor_rcv_bufs",
    "checker_netlink_monitor_rcv_bufs_force",
    "log_unknown_vrids",
    "snmp_socket",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_dbus",
    "enable_dbus_instance",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "linkbeat_use_polling",
    "net_namespace",
    "instance",
    "use_pid_dir",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "child_wait_time",
    "umask",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "local_name",
    "tmp_config_directory",
    "data_use_instance",
    "checker_log_all_failures",
    "disable_local_igmp",
];

/// Remembers which single-valued keywords a block has had, to refuse a second one.
#[derive(Default)]
pub(crate) struct Seen(HashMap<&'static str, u32>);

impl Seen {
    /// Records `n` under `name` (aliases share one name: `lb_algo` for `lvs_sched`).
    pub(crate) fn once(&mut self, n: &Node, name: &'static str) -> Result<(), Error> {
        match self.0.insert(name, n.line) {
            Some(first_line) => {
                self.0.insert(name, first_line);
                Err(n.err(ErrorKind::Duplicate { first_line }))
            }
            None => Ok(()),
        }
    }
}

/// Conversion state shared by every block.
#[derive(Default)]
pub(crate) struct Cx {
    pub warnings: Vec<Warning>,
}

impl Cx {
    /// Accepts a known keyword we do not model: a warning, and its contents are skipped.
    pub(crate) fn ignore(&mut self, n: &Node) {
        self.warnings.push(n.warning(IGNORED));
    }

    /// A modelled block that the director does not act on yet.
    pub(crate) fn not_acted_on(&mut self, n: &Node) {
        self.warnings.push(n.warning(NOT_ACTED_ON));
    }
}

/// The unknown-keyword error for `n` inside `context`.
pub(crate) fn unknown(n: &Node, context: &str) -> Error {
    n.err(ErrorKind::UnknownKeyword {
        context: context.into(),
    })
}

/// `f` applied to one argument, its complaint turned into an error at the argument.
pub(crate) fn parse<T>(
    n: &Node,
    arg: &Arg,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, Error> {
    f(&arg.text).map_err(|why| n.bad(arg, why))
}

/// A statement with exactly one argument (`what`) and no block, parsed by `f`.
pub(crate) fn single<T>(
    n: &Node,
    what: &str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, Error> {
    n.no_block()?;
    let arg = n.one_arg(what)?;
    parse(n, arg, f)
}

/// A statement whose arguments form one command line (scripts): at least one, joined by spaces.
pub(crate) fn command(n: &Node) -> Result<String, Error> {
    n.no_block()?;
    n.arity(1, usize::MAX, &["command"])?;
    let words: Vec<&str> = n.args.iter().map(|a| a.text.as_str()).collect();
    let cmd = words.join(" ");
    if let Some(a) = n.args.iter().find(|a| a.text.contains('"')) {
        // keepalived.conf has no escape for a quote inside a quoted string: such a command
        // could not be saved back (`lbctl save`) as it was read.
        return Err(n.bad(a, "a command cannot contain a double quote (keepalived.conf has no way to write one inside a quoted command)"));
    }
    if cmd.trim().is_empty() {
        return Err(n.err(ErrorKind::MissingArgument {
            what: "command".into(),
        }));
    }
    Ok(cmd)
}

/// One of the spellings in `table` (any case). `unsupported` lists values keepalived knows
/// that the director does not do, to say "not supported yet" rather than "unknown".
pub(crate) fn choice<T: Copy>(
    n: &Node,
    table: &[(&str, T)],
    unsupported: &[&str],
) -> Result<T, Error> {
    n.no_block()?;
    let arg = n.one_arg("value")?;
    if let Some((_, v)) = table
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(&arg.text))
    {
        return Ok(*v);
    }
    if unsupported
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&arg.text))
    {
        let what = format!("{} {}", n.keyword, arg.text);
        return Err(n.arg_err(arg, ErrorKind::NotSupported { what }));
    }
    let names: Vec<&str> = table.iter().map(|(s, _)| *s).collect();
    Err(n.bad(arg, format!("expected one of {}", names.join(", "))))
}

/// One word of a value-list block (`local_address_group`, `client_ipaddr_allow`,
/// `virtual_ipaddress`, ...), where each line is values rather than a keyword. Errors about
/// it name the block's keyword.
pub(crate) struct Word<'a> {
    pub text: &'a str,
    pub pos: Pos,
}

impl Word<'_> {
    pub(crate) fn parse<T>(
        &self,
        keyword: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, Error> {
        f(self.text).map_err(|why| self.bad(keyword, why))
    }

    pub(crate) fn bad(&self, keyword: &str, why: impl Into<String>) -> Error {
        self.pos.error(
            keyword,
            ErrorKind::BadValue {
                value: self.text.into(),
                why: why.into(),
            },
        )
    }

    pub(crate) fn err(&self, keyword: &str, kind: ErrorKind) -> Error {
        self.pos.error(keyword, kind)
    }
}

/// The lines of a value-list block, each as its words (none of them may open a block).
pub(crate) fn list_lines(block: &Node) -> Result<Vec<Vec<Word<'_>>>, Error> {
    let mut lines = Vec::new();
    for line in block.block()? {
        line.no_block()?;
        let mut words = vec![Word {
            text: &line.keyword,
            pos: line.pos(),
        }];
        words.extend(line.args.iter().map(|a| Word {
            text: &a.text,
            pos: line.arg_pos(a),
        }));
        lines.push(words);
    }
    Ok(lines)
}

/// A list of networks written as arguments, as lines of a block, or both. An address with
/// host bits under its prefix (`192.168.0.1/24`) means its network, as EulerOS documents its
/// own client-list example: masked, with a warning naming the network it became.
pub(crate) fn networks(n: &Node, cx: &mut Cx) -> Result<Vec<ipnetwork::Ipv4Network>, Error> {
    let mut out = Vec::new();
    for arg in &n.args {
        out.push(parse(n, arg, value::ipv4_prefix)?);
    }
    if n.children.is_some() {
        for word in list_lines(n)?.iter().flatten() {
            out.push(word.parse(&n.keyword, value::ipv4_prefix)?);
        }
    }
    for net in &mut out {
        if net.ip() != net.network() {
            let masked = ipnetwork::Ipv4Network::new(net.network(), net.prefix()).unwrap_or(*net);
            cx.warnings.push(n.warning(format!(
                "{net} has host bits set: taken as {masked} ({}-{})",
                masked.network(),
                masked.broadcast()
            )));
            *net = masked;
        }
    }
    if out.is_empty() {
        return Err(n.err(ErrorKind::MissingArgument {
            what: "address or network".into(),
        }));
    }
    Ok(out)
}

/// Converts a whole tree.
pub(crate) fn convert(tree: Tree) -> Result<Config, Error> {
    let mut cx = Cx {
        warnings: tree.warnings,
    };
    let mut config = Config::default();
    let mut seen = Seen::default();
    let mut groups: HashMap<String, Pos> = HashMap::new();
    let mut laddr_refs: Vec<(String, Pos, String)> = Vec::new();
    let mut vs_groups: HashMap<String, Pos> = HashMap::new();
    let mut pending: Vec<PendingVs> = Vec::new();
    let mut instances: HashMap<String, Pos> = HashMap::new();
    let mut routers: HashMap<(String, u8), Pos> = HashMap::new();
    let mut sync_groups = Vec::new();
    let mut sync_daemon_at = None;
    for n in &tree.nodes {
        match n.keyword.as_str() {
            "global_defs" => {
                seen.once(n, "global_defs")?;
                (config.global, sync_daemon_at) = global_defs(n, &mut cx)?;
            }
            "local_address_group" => {
                let group = local_address_group(n)?;
                if let Some(at) = groups.insert(group.name.clone(), n.pos()) {
                    let what = format!("local_address_group {}", group.name);
                    return Err(n.err(ErrorKind::AlreadyDefined {
                        what,
                        at: at.to_string(),
                    }));
                }
                config.local_address_groups.push(group);
            }
            "virtual_server" => {
                let parsed = vs::virtual_server(n, &mut cx)?;
                if let (Some(name), Some(pos)) = (&parsed.vs.laddr_group_name, &parsed.laddr_ref) {
                    laddr_refs.push((name.clone(), pos.clone(), "laddr_group_name".into()));
                }
                pending.push((parsed.vs, parsed.group, n.pos()));
            }
            "virtual_server_group" => {
                let group = vsg::group(n)?;
                if let Some(at) = vs_groups.insert(group.name.clone(), n.pos()) {
                    let what = format!("virtual_server_group {}", group.name);
                    return Err(n.err(ErrorKind::AlreadyDefined {
                        what,
                        at: at.to_string(),
                    }));
                }
                config.virtual_server_groups.push(group);
            }
            "vrrp_instance" => {
                let vi = vrrp::instance(n, &mut cx)?;
                if let Some(at) = instances.insert(vi.name.clone(), n.pos()) {
                    let what = format!("vrrp_instance {}", vi.name);
                    return Err(n.err(ErrorKind::AlreadyDefined {
                        what,
                        at: at.to_string(),
                    }));
                }
                let router = (vi.interface.clone(), vi.virtual_router_id);
                if let Some(at) = routers.insert(router, n.pos()) {
                    let what = format!(
                        "virtual_router_id {} on {}",
                        vi.virtual_router_id, vi.interface
                    );
                    return Err(n.err(ErrorKind::AlreadyDefined {
                        what,
                        at: at.to_string(),
                    }));
                }
                config.vrrp_instances.push(vi);
            }
            "vrrp_sync_group" => sync_groups.push((vrrp::sync_group(n, &mut cx)?, n.pos())),
            kw if TOP_IGNORED.contains(&kw) => cx.ignore(n),
            _ => return Err(unknown(n, "the top level")),
        }
    }
    // Groups may be defined after the services that use them.
    config.virtual_servers = services(pending, &config)?;
    for (name, pos, keyword) in laddr_refs {
        if !groups.contains_key(&name) {
            return Err(pos.error(&keyword, ErrorKind::UnknownLocalAddressGroup { name }));
        }
    }
    vrrp::check_sync_groups(&config.vrrp_instances, &sync_groups)?;
    if let (Some(d), Some(at)) = (&config.global.lvs_sync_daemon, &sync_daemon_at) {
        sync::check_instance(d, at, &config.vrrp_instances)?;
    }
    config.vrrp_sync_groups = sync_groups.into_iter().map(|(g, _)| g).collect();
    config.warnings = cx.warnings;
    Ok(config)
}

/// A `virtual_server` statement read: the service (a template for `group NAME`), the group it
/// names and where, and where the statement is.
type PendingVs = (VirtualServer, Option<(String, Pos)>, Pos);

/// The services of the `virtual_server` statements, in file order, those naming a group
/// expanded; each (address, port, protocol) at most once.
fn services(
    pending: Vec<PendingVs>,
    config: &Config,
) -> Result<Vec<VirtualServer>, Error> {
    let mut out = Vec::new();
    let mut seen: HashMap<(Ipv4Addr, u16, Protocol), (Pos, Option<String>)> = HashMap::new();
    for (vs, group, pos) in pending {
        let expanded = match &group {
            None => vec![vs],
            Some((name, at)) => {
                let g = config.virtual_server_group(name).ok_or_else(|| {
                    at.error(
                        "virtual_server",
                        ErrorKind::UnknownVirtualServerGroup { name: name.clone() },
                    )
                })?;
                vsg::expand(&vs, g)
            }
        };
        let from = group.as_ref().map(|(name, _)| name.clone());
        for vs in expanded {
            let key = (vs.vip, vs.port, vs.protocol);
            if let Some((at, first_from)) = seen.get(&key) {
                let via = |g: &Option<String>| {
                    g.as_ref()
                        .map(|g| format!(" (virtual_server_group {g})"))
                        .unwrap_or_default()
                };
                let what = format!(
                    "virtual_server {}:{} {}{}",
                    vs.vip,
                    vs.port,
                    vs.protocol,
                    via(&from)
                );
                return Err(pos.error(
                    "virtual_server",
                    ErrorKind::AlreadyDefined {
                        what,
                        at: format!("{at}{}", via(first_from)),
                    },
                ));
            }
            seen.insert(key, (pos.clone(), from.clone()));
            out.push(vs);
        }
    }
    Ok(out)
}

/// `global_defs { ... }`, and where its `lvs_sync_daemon` names its VRRP instance (checked
/// once the instances are read).
fn global_defs(n: &Node, cx: &mut Cx) -> Result<(GlobalDefs, Option<Pos>), Error> {
    n.arity(0, 0, &[])?;
    let mut global = GlobalDefs::default();
    let mut sync_daemon_at = None;
    let mut seen = Seen::default();
    for c in n.block()? {
        match c.keyword.as_str() {
            "router_id" => {
                seen.once(c, "router_id")?;
                global.router_id = Some(single(c, "router id", value::name)?);
            }
            "lvs_sync_daemon" => {
                seen.once(c, "lvs_sync_daemon")?;
                let (daemon, at) = sync::lvs_sync_daemon(c)?;
                global.lvs_sync_daemon = Some(daemon);
                sync_daemon_at = Some(at);
            }
            "lvs_sync_daemon_interface" => return Err(sync::deprecated_interface(c)),
            kw if GLOBAL_IGNORED.contains(&kw) => cx.ignore(c),
            _ => return Err(unknown(c, "global_defs")),
        }
    }
    Ok((global, sync_daemon_at))
}

/// `local_address_group <name> { <ip>|<a.b.c.d-e> [<ifname>] ... }`.
fn local_address_group(n: &Node) -> Result<LocalAddressGroup, Error> {
    let name = single_arg_block(n, "group name")?;
    let kw = n.keyword.as_str();
    let mut addrs: Vec<LocalAddr> = Vec::new();
    let mut lines: HashMap<Ipv4Addr, u32> = HashMap::new();
    for words in list_lines(n)? {
        let (addr, ifname) = match words.as_slice() {
            [addr] => (addr, None),
            [addr, ifname] => (addr, Some(ifname.parse(kw, value::name)?)),
            [_, _, extra, ..] => {
                return Err(extra.err(
                    kw,
                    ErrorKind::ExtraArgument {
                        arg: extra.text.into(),
                    },
                ))
            }
            [] => continue,
        };
        for ip in addr.parse(kw, address_range)? {
            if let Some(first_line) = lines.insert(ip, addr.pos.line) {
                return Err(addr.bad(
                    kw,
                    format!("{ip} is listed twice (first at line {first_line})"),
                ));
            }
            addrs.push(LocalAddr {
                ip,
                ifname: ifname.clone(),
            });
        }
    }
    Ok(LocalAddressGroup {
        name,
        addrs,
        file: n.file.to_path_buf(),
        line: n.line,
    })
}

/// The name argument of `keyword <name> { ... }`.
pub(crate) fn single_arg_block(n: &Node, what: &str) -> Result<String, Error> {
    let arg = n.one_arg(what)?;
    let name = parse(n, arg, value::name)?;
    n.block()?;
    Ok(name)
}

/// `10.0.0.1`, or keepalived's last-octet range `10.0.0.1-10` (both ends included).
fn address_range(text: &str) -> Result<Vec<Ipv4Addr>, String> {
    let (first, last) = vsg::address_span(text)?;
    let [a, b, c, start] = first.octets();
    Ok((start..=last.octets()[3])
        .map(|d| Ipv4Addr::new(a, b, c, d))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_the_last_octet() {
        assert_eq!(address_range("10.0.0.254-255").unwrap().len(), 2);
        assert_eq!(
            address_range("10.0.0.7").unwrap(),
            [Ipv4Addr::new(10, 0, 0, 7)]
        );
        assert!(address_range("10.0.0.7-6").unwrap_err().contains("below"));
        assert!(address_range("10.0.0.7-256").is_err());
        assert!(address_range("10.0.0.7-").is_err());
        assert!(address_range("10.0.0-7").is_err());
    }
}
