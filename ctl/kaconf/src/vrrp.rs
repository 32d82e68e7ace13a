//! `vrrp_instance` and `vrrp_sync_group` blocks (keepalived 2.2 names).
//!
//! Every keyword keepalived 2.2 knows in these blocks is either modelled (for the slowpath's
//! VRRP engine to act on) or refused as "not supported yet" at its file:line:column; only
//! `smtp_alert` is accepted with a warning (there is no mailer).
//!
//! [`sync_group`] and [`check_sync_groups`] are ready for the top-level dispatch in
//! `convert.rs` (`"vrrp_sync_group" => ...` instead of the ignored list); until it calls them
//! a `vrrp_sync_group` block still loads with a warning and `Config::vrrp_sync_groups` is
//! empty.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::convert::{
    command, list_lines, single, single_arg_block, unknown, Cx, Seen, Word, VRRP_ACTED_ON,
};
use crate::error::{Error, ErrorKind};
use crate::model::{
    AuthType, Authentication, Track, VirtualIp, VrrpInstance, VrrpState, VrrpSyncGroup,
    DEFAULT_ADVERT_INT, DEFAULT_PRIORITY,
};
use crate::tree::Node;
use crate::value;

/// keepalived 2.2 `vrrp_instance` keywords the director refuses, with why.
pub(crate) const INSTANCE_UNSUPPORTED: &[(&str, &str)] = &[
    ("dont_track_primary", ""),
    ("track_script", "vrrp_script is not supported yet"),
    ("track_file", ""),
    ("track_process", ""),
    ("track_bfd", ""),
    ("track_src_ip", ""),
    ("garp_lower_prio_delay", ""),
    ("garp_lower_prio_repeat", ""),
    ("garp_interval", ""),
    ("gna_interval", ""),
    ("garp_extra_if", ""),
    ("vrrp_garp_extra_if", ""),
    ("lower_prio_no_advert", ""),
    ("higher_prio_send_advert", ""),
    (
        "use_vmac",
        "lbd answers ARP for the virtual addresses with the port's MAC",
    ),
    ("use_vmac_addr", ""),
    ("vmac_xmit_base", ""),
    ("vmac_garp_intvl", ""),
    ("use_ipvlan", ""),
    ("vrf", ""),
    ("native_ipv6", "IPv6 is not supported yet"),
    (
        "mcast_dst_ip",
        "adverts go to 224.0.0.18 or the unicast peers",
    ),
    ("virtual_routes", ""),
    ("virtual_rules", ""),
    ("notify_master_rx_lower_pri", ""),
    ("notify_deleted", ""),
    ("notify_priority_changes", ""),
    ("accept", ""),
    ("no_accept", ""),
    ("strict_mode", ""),
    ("skip_check_adv_addr", ""),
    ("check_unicast_src", ""),
    ("debug", ""),
    ("linkbeat_use_polling", ""),
    ("unicast_ttl", ""),
    ("unicast_fault_no_peer", ""),
    ("old_unicast_checksum", ""),
    ("kernel_rx_buf_size", ""),
    ("promote_secondaries", ""),
    (
        "down_timer_adverts",
        "the master-down interval is 3 adverts (RFC 5798)",
    ),
    ("sync_group_tracking_weight", ""),
];

/// keepalived 2.2 `vrrp_sync_group` keywords the director refuses.
// Called by convert.rs once it dispatches `vrrp_sync_group` (see the module docs).
pub(crate) const GROUP_UNSUPPORTED: &[(&str, &str)] = &[
    ("track_interface", "track interfaces in the instances"),
    ("track_script", "vrrp_script is not supported yet"),
    ("track_file", ""),
    ("track_process", ""),
    ("track_bfd", ""),
    ("global_tracking", ""),
    ("sync_group_tracking_weight", ""),
    ("notify_priority_changes", ""),
];

const STATES: &[(&str, VrrpState)] =
    &[("MASTER", VrrpState::Master), ("BACKUP", VrrpState::Backup)];
const AUTH_TYPES: &[(&str, AuthType)] = &[("PASS", AuthType::Pass)];

/// The address owner's priority.
const OWNER_PRIORITY: u8 = 255;
/// Longest VRRPv2 password.
const MAX_AUTH_PASS: usize = 8;
/// Longest `preempt_delay` keepalived accepts.
const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// VRRPv3's Max Adver Int is 12 bits of centiseconds.
const MAX_V3_ADVERT_CENTIS: u16 = 4095;

pub(crate) fn state_name(s: VrrpState) -> &'static str {
    crate::model::spelling(STATES, s)
}

pub(crate) fn auth_type_name(t: AuthType) -> &'static str {
    crate::model::spelling(AUTH_TYPES, t)
}

/// The "not supported yet" error for a keyword in `table`, if it is one.
fn refused(c: &Node, table: &[(&str, &str)], context: &str) -> Option<Error> {
    let (kw, why) = table.iter().find(|(kw, _)| *kw == c.keyword)?;
    let what = if why.is_empty() {
        format!("{kw} in {context}")
    } else {
        format!("{kw} in {context} ({why})")
    };
    Some(c.err(ErrorKind::NotSupported { what }))
}

/// Parses one `vrrp_instance <name> { ... }`.
pub(crate) fn instance(n: &Node, cx: &mut Cx) -> Result<VrrpInstance, Error> {
    let name = single_arg_block(n, "instance name")?;
    if !VRRP_ACTED_ON {
        cx.not_acted_on(n);
    }
    let mut seen = Seen::default();
    let mut vi = VrrpInstance {
        name,
        state: VrrpState::Backup,
        interface: String::new(),
        virtual_router_id: 0,
        priority: DEFAULT_PRIORITY,
        advert_int: DEFAULT_ADVERT_INT,
        version: None,
        nopreempt: false,
        preempt_delay: None,
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        unicast_src_ip: None,
        mcast_src_ip: None,
        unicast_peer: Vec::new(),
        track_interface: Vec::new(),
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        file: n.file.to_path_buf(),
        line: n.line,
    };
    let (mut interface, mut vrid, mut priority) = (None, None, None);
    // Checked once the whole block is read: (node, what it set).
    let (mut advert_node, mut auth_node, mut src_nodes) = (None, None, Vec::new());
    for c in n.block()? {
        let kw = c.keyword.as_str();
        let mut once = |name| seen.once(c, name);
        match kw {
            "state" => {
                once("state")?;
                vi.state = crate::convert::choice(c, STATES, &["FAULT"])?;
            }
            "interface" => {
                once("interface")?;
                interface = Some(single(c, "interface name", value::name)?);
            }
            "virtual_router_id" => {
                once("virtual_router_id")?;
                vrid = Some(single(c, "1..=255", |s| value::u8_in(s, 1, 255))?);
            }
            "priority" => {
                once("priority")?;
                priority = Some(single(c, "1..=255", |s| value::u8_in(s, 1, 255))?);
            }
            "advert_int" => {
                once("advert_int")?;
                vi.advert_int = single(c, "seconds", advert_int)?;
                advert_node = Some(c);
            }
            "version" => {
                once("version")?;
                vi.version = Some(single(c, "2 or 3", |s| value::u8_in(s, 2, 3))?);
            }
            "nopreempt" | "preempt" => {
                once("nopreempt")?;
                c.flag()?;
                vi.nopreempt = kw == "nopreempt";
            }
            "preempt_delay" => {
                once("preempt_delay")?;
                let d = single(c, "seconds", |s| {
                    let d = value::seconds(s, Duration::ZERO)?;
                    if d > MAX_PREEMPT_DELAY {
                        return Err("more than 1000 seconds".into());
                    }
                    Ok(d)
                })?;
                vi.preempt_delay = Some(d);
            }
            "authentication" => {
                once("authentication")?;
                vi.authentication = Some(authentication(c)?);
                auth_node = Some(c);
            }
            "virtual_ipaddress" => vi.virtual_ipaddress.extend(virtual_ips(c)?),
            "virtual_ipaddress_excluded" => vi.virtual_ipaddress_excluded.extend(virtual_ips(c)?),
            "unicast_src_ip" => {
                once("unicast_src_ip")?;
                vi.unicast_src_ip = Some(single(c, "IP address", value::ipv4)?);
                src_nodes.push(c);
            }
            "mcast_src_ip" => {
                once("mcast_src_ip")?;
                vi.mcast_src_ip = Some(single(c, "IP address", value::ipv4)?);
                src_nodes.push(c);
            }
            "unicast_peer" => vi.unicast_peer.extend(unicast_peers(c)?),
            "track_interface" => vi.track_interface.extend(tracks(c)?),
            "garp_master_delay" => {
                once("garp_master_delay")?;
                vi.garp_master_delay = Some(single(c, "whole seconds", whole_seconds)?);
            }
            "garp_master_refresh" => {
                once("garp_master_refresh")?;
                vi.garp_master_refresh = Some(single(c, "whole seconds", whole_seconds)?);
            }
            "garp_master_repeat" => {
                once("garp_master_repeat")?;
                vi.garp_master_repeat = Some(single(c, "count", repeat)?);
            }
            "garp_master_refresh_repeat" => {
                once("garp_master_refresh_repeat")?;
                vi.garp_master_refresh_repeat = Some(single(c, "count", repeat)?);
            }
            "lvs_sync_daemon_interface" => return Err(crate::sync::deprecated_interface(c)),
            "notify_master" => script(c, &mut once, &mut vi.notify_master)?,
            "notify_backup" => script(c, &mut once, &mut vi.notify_backup)?,
            "notify_fault" => script(c, &mut once, &mut vi.notify_fault)?,
            "notify_stop" => script(c, &mut once, &mut vi.notify_stop)?,
            "notify" => script(c, &mut once, &mut vi.notify)?,
            "smtp_alert" => cx.ignore(c),
            _ => {
                return Err(refused(c, INSTANCE_UNSUPPORTED, "vrrp_instance")
                    .unwrap_or_else(|| unknown(c, "vrrp_instance")))
            }
        }
    }
    let missing = |what: &str| n.err(ErrorKind::Missing { what: what.into() });
    vi.interface = interface.ok_or_else(|| missing("interface"))?;
    vi.virtual_router_id = vrid.ok_or_else(|| missing("virtual_router_id"))?;
    // keepalived 2.2: `state MASTER` without a priority is the address owner (255).
    vi.priority = priority.unwrap_or(match vi.state {
        VrrpState::Master => OWNER_PRIORITY,
        VrrpState::Backup => DEFAULT_PRIORITY,
    });
    check_instance(&vi, advert_node, auth_node, &src_nodes)?;
    Ok(vi)
}

/// Rules that join several keywords of one instance.
fn check_instance(
    vi: &VrrpInstance,
    advert: Option<&Node>,
    auth: Option<&Node>,
    src: &[&Node],
) -> Result<(), Error> {
    let centis = vi.advert_centis();
    if let Some(c) = advert {
        let arg = c.args.first().map_or(c.pos(), |a| c.arg_pos(a));
        let bad = |why: &str| {
            let value = c.args.first().map(|a| a.text.clone()).unwrap_or_default();
            arg.error(
                &c.keyword,
                ErrorKind::BadValue {
                    value,
                    why: why.into(),
                },
            )
        };
        if vi.version() == 2 && !centis.is_multiple_of(100) {
            return Err(bad(
                "VRRPv2 counts whole seconds (add `version 3` for centiseconds)",
            ));
        }
        if vi.version() == 3 && centis > MAX_V3_ADVERT_CENTIS {
            return Err(bad(
                "more than 40.95 seconds (VRRPv3's 12-bit centisecond field)",
            ));
        }
    }
    if let (Some(c), 3) = (auth, vi.version()) {
        let what = "authentication with VRRPv3 (RFC 5798 removed it)".into();
        return Err(c.err(ErrorKind::NotSupported { what }));
    }
    if let [_, second, ..] = src {
        return Err(second.err(ErrorKind::BadValue {
            value: second
                .args
                .first()
                .map(|a| a.text.clone())
                .unwrap_or_default(),
            why: "unicast_src_ip and mcast_src_ip set the same address; give one".into(),
        }));
    }
    Ok(())
}

// Called by convert.rs once it dispatches `vrrp_sync_group` (see the module docs).
/// Parses one `vrrp_sync_group <name> { group { ... } notify_* ... }`.
pub(crate) fn sync_group(n: &Node, cx: &mut Cx) -> Result<VrrpSyncGroup, Error> {
    let name = single_arg_block(n, "group name")?;
    let mut seen = Seen::default();
    let mut g = VrrpSyncGroup {
        name,
        group: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        file: n.file.to_path_buf(),
        line: n.line,
    };
    for c in n.block()? {
        let mut once = |name| seen.once(c, name);
        match c.keyword.as_str() {
            "group" => {
                once("group")?;
                c.arity(0, 0, &[])?;
                for word in list_lines(c)?.iter().flatten() {
                    let member = word.parse("group", value::name)?;
                    if g.group.contains(&member) {
                        return Err(word.bad("group", "listed twice"));
                    }
                    g.group.push(member);
                }
            }
            "notify_master" => script(c, &mut once, &mut g.notify_master)?,
            "notify_backup" => script(c, &mut once, &mut g.notify_backup)?,
            "notify_fault" => script(c, &mut once, &mut g.notify_fault)?,
            "notify_stop" => script(c, &mut once, &mut g.notify_stop)?,
            "notify" => script(c, &mut once, &mut g.notify)?,
            "smtp_alert" => cx.ignore(c),
            _ => {
                return Err(refused(c, GROUP_UNSUPPORTED, "vrrp_sync_group")
                    .unwrap_or_else(|| unknown(c, "vrrp_sync_group")))
            }
        }
    }
    if g.group.is_empty() {
        return Err(n.err(ErrorKind::Missing {
            what: "group { <vrrp_instance> ... }".into(),
        }));
    }
    Ok(g)
}

// Called by convert.rs once it dispatches `vrrp_sync_group` (see the module docs).
/// Checks the sync groups against the instances (call once every block is read): each member
/// names a `vrrp_instance`, and an instance is in at most one group.
pub(crate) fn check_sync_groups(
    instances: &[VrrpInstance],
    groups: &[(VrrpSyncGroup, crate::error::Pos)],
) -> Result<(), Error> {
    let mut member_of: std::collections::HashMap<&str, &str> = Default::default();
    for (g, pos) in groups {
        for m in &g.group {
            if !instances.iter().any(|vi| vi.name == *m) {
                return Err(pos.error(
                    "vrrp_sync_group",
                    ErrorKind::BadValue {
                        value: m.clone(),
                        why: format!("group {} names no vrrp_instance {m:?}", g.name),
                    },
                ));
            }
            if let Some(other) = member_of.insert(m, &g.name) {
                return Err(pos.error(
                    "vrrp_sync_group",
                    ErrorKind::BadValue {
                        value: m.clone(),
                        why: format!("already in vrrp_sync_group {other}"),
                    },
                ));
            }
        }
    }
    Ok(())
}

/// keepalived reads `garp_master_delay` and `garp_master_refresh` as whole seconds.
fn whole_seconds(text: &str) -> Result<Duration, String> {
    Ok(Duration::from_secs(u64::from(value::u32_in(
        text, 0, 86_400,
    )?)))
}

/// A burst of gratuitous ARPs: at least 1 (keepalived turns 0 into 1; we refuse it).
fn repeat(text: &str) -> Result<u32, String> {
    value::u32_in(text, 1, 1000)
}

fn script(
    c: &Node,
    once: &mut impl FnMut(&'static str) -> Result<(), Error>,
    out: &mut Option<String>,
) -> Result<(), Error> {
    let name: &'static str = match c.keyword.as_str() {
        "notify_master" => "notify_master",
        "notify_backup" => "notify_backup",
        "notify_fault" => "notify_fault",
        "notify_stop" => "notify_stop",
        _ => "notify",
    };
    once(name)?;
    *out = Some(command(c)?);
    Ok(())
}

/// Seconds with at most two decimals (VRRPv3 counts centiseconds), 0.01..=255.
fn advert_int(text: &str) -> Result<f32, String> {
    let d = value::seconds(text, Duration::from_millis(10))?;
    if d > Duration::from_secs(255) {
        return Err("more than 255 seconds".into());
    }
    if d.subsec_micros() % 10_000 != 0 {
        return Err("more than two decimal places (VRRP counts centiseconds)".into());
    }
    let centis = u16::try_from(d.as_millis() / 10).map_err(|e| e.to_string())?;
    Ok(f32::from(centis) / 100.0)
}

fn authentication(n: &Node) -> Result<Authentication, Error> {
    n.arity(0, 0, &[])?;
    let mut seen = Seen::default();
    let (mut auth_type, mut auth_pass) = (None, None);
    for c in n.block()? {
        match c.keyword.as_str() {
            "auth_type" => {
                seen.once(c, "auth_type")?;
                auth_type = Some(crate::convert::choice(c, AUTH_TYPES, &["AH"])?);
            }
            "auth_pass" => {
                seen.once(c, "auth_pass")?;
                auth_pass = Some(single(c, "password", |s| {
                    if s.is_empty() {
                        Err("empty password".into())
                    } else if s.chars().count() > MAX_AUTH_PASS || s.len() > MAX_AUTH_PASS {
                        Err(format!(
                            "longer than {MAX_AUTH_PASS} bytes (VRRP would truncate it)"
                        ))
                    } else {
                        Ok(s.to_owned())
                    }
                })?);
            }
            _ => return Err(unknown(c, "authentication")),
        }
    }
    let missing = |what: &str| n.err(ErrorKind::Missing { what: what.into() });
    Ok(Authentication {
        auth_type: auth_type.ok_or_else(|| missing("auth_type"))?,
        auth_pass: auth_pass.ok_or_else(|| missing("auth_pass"))?,
    })
}

/// Lines `<ip>[/<len>] [dev <if>] [label <label>]`; keepalived's other options (`brd`,
/// `scope`, `no_track`, ...) are refused as not supported yet.
fn virtual_ips(n: &Node) -> Result<Vec<VirtualIp>, Error> {
    n.arity(0, 0, &[])?;
    let kw = n.keyword.as_str();
    let mut out = Vec::new();
    for words in list_lines(n)? {
        let Some((addr, opts)) = words.split_first() else {
            continue;
        };
        let mut vip = VirtualIp {
            addr: addr.parse(kw, value::ipv4_prefix)?,
            dev: None,
            label: None,
        };
        let mut opts = opts.iter();
        while let Some(opt) = opts.next() {
            let slot = match opt.text {
                "dev" => &mut vip.dev,
                "label" => &mut vip.label,
                "no_track" | "home" | "nodad" | "-nodad" | "noprefixroute" | "brd"
                | "broadcast" | "scope" | "preferred_lft" | "track_group" => {
                    let what = format!("{kw} option {} (only dev and label)", opt.text);
                    return Err(opt.err(kw, ErrorKind::NotSupported { what }));
                }
                _ => return Err(opt.bad(kw, "expected dev or label")),
            };
            let Some(val) = opts.next() else {
                let what = format!("value after {}", opt.text);
                return Err(opt.err(kw, ErrorKind::MissingArgument { what }));
            };
            if slot.is_some() {
                return Err(opt.bad(kw, "given twice on this line"));
            }
            *slot = Some(val.parse(kw, value::name)?);
        }
        out.push(vip);
    }
    Ok(out)
}

fn unicast_peers(n: &Node) -> Result<Vec<Ipv4Addr>, Error> {
    n.arity(0, 0, &[])?;
    let kw = n.keyword.as_str();
    let mut out = Vec::new();
    for words in list_lines(n)? {
        match words.as_slice() {
            [ip] => out.push(ip.parse(kw, value::ipv4)?),
            [_, extra, ..] => {
                return Err(extra.err(
                    kw,
                    ErrorKind::ExtraArgument {
                        arg: extra.text.into(),
                    },
                ))
            }
            [] => {}
        }
    }
    Ok(out)
}

/// `track_interface` lines `<name> [weight <-254..=254>]`.
fn tracks(n: &Node) -> Result<Vec<Track>, Error> {
    n.arity(0, 0, &[])?;
    let kw = n.keyword.as_str();
    let mut out = Vec::new();
    for words in list_lines(n)? {
        let weight = |w: &Word<'_>| {
            w.parse(kw, |s| {
                let (neg, digits) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
                let mag = i32::from(value::u8_in(digits, 0, 254)?);
                Ok(if neg { -mag } else { mag })
            })
        };
        let (name, weight) = match words.as_slice() {
            [name] => (name, None),
            [name, w, v] if w.text == "weight" => (name, Some(weight(v)?)),
            [_, w] if w.text == "weight" => {
                let what = "value after weight".into();
                return Err(w.err(kw, ErrorKind::MissingArgument { what }));
            }
            [_, _, _, extra, ..] => {
                return Err(extra.err(
                    kw,
                    ErrorKind::ExtraArgument {
                        arg: extra.text.into(),
                    },
                ))
            }
            [_, w, ..] => return Err(w.bad(kw, "expected weight <n>")),
            [] => continue,
        };
        out.push(Track {
            name: name.parse(kw, value::name)?,
            weight,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::parse_tree_str;
    use std::path::Path;

    fn group(text: &str) -> Result<(VrrpSyncGroup, Vec<crate::error::Warning>), Error> {
        let tree = parse_tree_str(text, Path::new("g.conf"))?;
        let mut cx = Cx::default();
        let g = sync_group(&tree.nodes[0], &mut cx)?;
        Ok((g, cx.warnings))
    }

    #[test]
    fn sync_group_members_and_scripts() {
        let (g, warnings) = group(
            "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n notify_master \"/bin/m a\"\n\
             notify /bin/n\n smtp_alert\n}\n",
        )
        .unwrap();
        assert_eq!(g.group, ["VI_1", "VI_2"]);
        assert_eq!(g.notify_master.as_deref(), Some("/bin/m a"));
        assert_eq!(g.notify.as_deref(), Some("/bin/n"));
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn sync_group_errors_name_their_place() {
        let e = group("vrrp_sync_group G {\n group {\n  A\n  A\n }\n}\n").unwrap_err();
        assert_eq!((e.line, e.column, e.keyword.as_str()), (4, 3, "group"));
        let e = group("vrrp_sync_group G {\n notify /bin/n\n}\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        let e = group("vrrp_sync_group G {\n group { A }\n global_tracking\n}\n").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.keyword.as_str()),
            (3, 2, "global_tracking")
        );
        assert!(matches!(e.kind, ErrorKind::NotSupported { .. }));
    }

    #[test]
    fn sync_group_members_must_exist_once() {
        let conf = crate::parse_str(
            "vrrp_instance A {\n interface e\n virtual_router_id 1\n}\n\
             vrrp_instance B {\n interface e\n virtual_router_id 2\n}\n",
            Path::new("c.conf"),
        )
        .unwrap();
        let pos = |line| crate::error::Pos {
            file: Path::new("c.conf").into(),
            line,
            column: 1,
        };
        let g = |name: &str, members: &[&str]| VrrpSyncGroup {
            name: name.into(),
            group: members.iter().map(|m| m.to_string()).collect(),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            file: "c.conf".into(),
            line: 9,
        };
        let ok = [(g("G", &["A", "B"]), pos(9))];
        check_sync_groups(&conf.vrrp_instances, &ok).unwrap();
        let e =
            check_sync_groups(&conf.vrrp_instances, &[(g("G", &["A", "C"]), pos(9))]).unwrap_err();
        assert_eq!(e.line, 9);
        assert!(e.to_string().contains("no vrrp_instance \"C\""), "{e}");
        let twice = [(g("G", &["A"]), pos(9)), (g("H", &["A"]), pos(12))];
        let e = check_sync_groups(&conf.vrrp_instances, &twice).unwrap_err();
        assert_eq!(e.line, 12);
        assert!(
            e.to_string().contains("already in vrrp_sync_group G"),
            "{e}"
        );
    }
}
