//! `vrrp_instance` blocks (keepalived 2.2 names).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::convert::{
    command, list_lines, single, single_arg_block, unknown, Cx, Seen, Word, VRRP_ACTED_ON,
};
use crate::error::{Error, ErrorKind, Warning};
use crate::model::{
    AuthType, Authentication, Track, VirtualIp, VrrpInstance, VrrpState, DEFAULT_ADVERT_INT,
    DEFAULT_PRIORITY,
};
use crate::tree::Node;
use crate::value;

/// keepalived vrrp_instance keywords accepted without being acted on.
const IGNORED: &[&str] = &[
    "dont_track_primary",
    "mcast_src_ip",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "garp_interval",
    "gna_interval",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "use_vmac",
    "vmac_xmit_base",
    "native_ipv6",
    "version",
    "virtual_routes",
    "virtual_rules",
    "notify_master_rx_lower_pri",
    "notify_deleted",
    "smtp_alert",
    "accept",
    "no_accept",
    "strict_mode",
    "skip_check_adv_addr",
    "check_unicast_src",
    "debug",
    "track_file",
    "track_process",
    "track_bfd",
    "linkbeat_use_polling",
    "unicast_ttl",
    "unicast_fault_no_peer",
    "old_unicast_checksum",
    "kernel_rx_buf_size",
    "lvs_sync_daemon_interface",
    "sync_group_tracking_weight",
    "promote_secondaries",
    "down_timer_adverts",
    "vrrp_garp_extra_if",
];

const STATES: &[(&str, VrrpState)] =
    &[("MASTER", VrrpState::Master), ("BACKUP", VrrpState::Backup)];
const AUTH_TYPES: &[(&str, AuthType)] = &[("PASS", AuthType::Pass), ("AH", AuthType::Ah)];

/// Longest VRRPv2 password.
const MAX_AUTH_PASS: usize = 8;
/// Longest `preempt_delay` keepalived accepts.
const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

pub(crate) fn state_name(s: VrrpState) -> &'static str {
    crate::model::spelling(STATES, s)
}

pub(crate) fn auth_type_name(t: AuthType) -> &'static str {
    crate::model::spelling(AUTH_TYPES, t)
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
        nopreempt: false,
        preempt_delay: None,
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        unicast_src_ip: None,
        unicast_peer: Vec::new(),
        track_interface: Vec::new(),
        track_script: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        file: n.file.to_path_buf(),
        line: n.line,
    };
    let (mut interface, mut vrid) = (None, None);
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
                vi.priority = single(c, "1..=255", |s| value::u8_in(s, 1, 255))?;
            }
            "advert_int" => {
                once("advert_int")?;
                vi.advert_int = single(c, "seconds", advert_int)?;
            }
            "nopreempt" => {
                once("nopreempt")?;
                c.flag()?;
                vi.nopreempt = true;
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
            }
            "virtual_ipaddress" => vi.virtual_ipaddress.extend(virtual_ips(c, cx)?),
            "virtual_ipaddress_excluded" => {
                vi.virtual_ipaddress_excluded.extend(virtual_ips(c, cx)?)
            }
            "unicast_src_ip" => {
                once("unicast_src_ip")?;
                vi.unicast_src_ip = Some(single(c, "IP address", value::ipv4)?);
            }
            "unicast_peer" => vi.unicast_peer.extend(unicast_peers(c)?),
            "track_interface" => vi.track_interface.extend(tracks(c)?),
            "track_script" => vi.track_script.extend(tracks(c)?),
            "notify_master" => script(c, &mut once, &mut vi.notify_master)?,
            "notify_backup" => script(c, &mut once, &mut vi.notify_backup)?,
            "notify_fault" => script(c, &mut once, &mut vi.notify_fault)?,
            "notify_stop" => script(c, &mut once, &mut vi.notify_stop)?,
            "notify" => script(c, &mut once, &mut vi.notify)?,
            kw if IGNORED.contains(&kw) => cx.ignore(c),
            _ => return Err(unknown(c, "vrrp_instance")),
        }
    }
    let missing = |what: &str| n.err(ErrorKind::Missing { what: what.into() });
    vi.interface = interface.ok_or_else(|| missing("interface"))?;
    vi.virtual_router_id = vrid.ok_or_else(|| missing("virtual_router_id"))?;
    Ok(vi)
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
                auth_type = Some(crate::convert::choice(c, AUTH_TYPES, &[])?);
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

/// Lines `<ip>[/<len>] [dev <if>] [label <label>] [brd ..] [scope ..] [no_track] ...`;
/// options other than dev and label are accepted with a warning.
fn virtual_ips(n: &Node, cx: &mut Cx) -> Result<Vec<VirtualIp>, Error> {
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
        let mut ignored = false;
        let mut opts = opts.iter();
        while let Some(opt) = opts.next() {
            match opt.text {
                "no_track" | "home" | "nodad" | "-nodad" | "noprefixroute" => ignored = true,
                "dev" | "label" | "brd" | "broadcast" | "scope" | "preferred_lft"
                | "track_group" => {
                    let Some(val) = opts.next() else {
                        let what = format!("value after {}", opt.text);
                        return Err(opt.err(kw, ErrorKind::MissingArgument { what }));
                    };
                    let slot = match opt.text {
                        "dev" => &mut vip.dev,
                        "label" => &mut vip.label,
                        _ => {
                            ignored = true;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(opt.bad(kw, "given twice on this line"));
                    }
                    *slot = Some(val.parse(kw, value::name)?);
                }
                _ => {
                    return Err(opt.bad(
                        kw,
                        "expected dev, label, brd, scope, preferred_lft or no_track",
                    ))
                }
            }
        }
        if ignored {
            cx.warnings.push(Warning {
                file: n.file.to_path_buf(),
                line: addr.pos.line,
                keyword: kw.into(),
                msg: "options other than dev and label are parsed but not acted on yet \
                      (and not kept by save)"
                    .into(),
            });
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

/// Lines `<name> [weight <-254..=254>]`.
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
