//! Every keyword kaconf knows, where it may appear, and what the director does with it:
//! [`keyword_table`], rendered as docs/keepalived-keywords.md by [`keyword_table_markdown`].
//!
//! The refused and accepted-but-ignored keywords come from the very tables the parser
//! dispatches on (`VS_IGNORED`, `INSTANCE_UNSUPPORTED`, check `REFUSED`, ...); the acted-on
//! ones are listed here. Tests hold the table to the parser both ways: each entry parses as
//! its status says, and every keyword literal the parser matches on is in the table.

use crate::{check, convert, vrrp, vs};

/// What the director does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Modelled and acted on (or, for syntax such as `include`, applied while reading).
    Acted,
    /// An error at its file:line:column saying why.
    Refused,
    /// Loads with a warning; not acted on and not kept by `save`.
    Ignored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Acted => "acted on",
            Status::Refused => "refused",
            Status::Ignored => "accepted, ignored",
        }
    }
}

/// One keyword in one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    /// The block it appears in (`virtual_server`, `HTTP_GET, SSL_GET`, ...), `top level`, or
    /// for options inside a line, `virtual_ipaddress line` / `lvs_sync_daemon option`.
    pub context: &'static str,
    pub keyword: &'static str,
    pub status: Status,
    /// keepalived, DPVS, EulerOS or lbd: who defined it.
    pub origin: &'static str,
    /// What it means (acted on), or why it is refused or ignored.
    pub note: String,
}

/// `(context, keyword, origin, meaning)` of the keywords the director acts on.
const ACTED: &[(&str, &str, &str, &str)] = &[
    ("top level", "include", "keepalived", "reads other files (glob patterns, relative to the including file's directory); no match is a warning"),
    ("top level", "global_defs", "keepalived", "global settings"),
    ("top level", "local_address_group", "DPVS", "FNAT source addresses (`a.b.c.d[-e] [interface]`)"),
    ("top level", "virtual_server_group", "keepalived", "addresses and ports sharing one `virtual_server group NAME`; ranges `10.0.0.1-10`"),
    ("top level", "virtual_server", "keepalived", "a service: `VIP PORT` or `group NAME` (one service per group member)"),
    ("top level", "vrrp_instance", "keepalived", "a VRRP router run by lb-slowpath"),
    ("top level", "vrrp_sync_group", "keepalived", "VRRP instances that change state together"),
    ("global_defs", "router_id", "keepalived", "this director's name"),
    ("global_defs", "lvs_sync_daemon", "keepalived", "LVS session sync, master while the named VRRP instance is MASTER"),
    ("lvs_sync_daemon option", "id", "keepalived", "sync id 0..=255"),
    ("lvs_sync_daemon option", "maxlen", "keepalived", "largest sync message"),
    ("lvs_sync_daemon option", "port", "keepalived", "sync UDP port"),
    ("lvs_sync_daemon option", "ttl", "keepalived", "multicast TTL"),
    ("lvs_sync_daemon option", "group", "keepalived", "multicast group"),
    ("virtual_server", "protocol", "keepalived", "TCP or UDP"),
    ("virtual_server", "lb_algo", "keepalived", "scheduler: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, conhash (DPVS); twos is refused"),
    ("virtual_server", "lvs_sched", "keepalived", "older name of lb_algo"),
    ("virtual_server", "lb_kind", "keepalived", "forwarding: NAT, DR, FNAT (DPVS); TUN, SNAT and MASQ are refused at their line"),
    ("virtual_server", "lvs_method", "keepalived", "older name of lb_kind"),
    ("virtual_server", "ip_family", "keepalived", "inet (inet6 is refused)"),
    ("virtual_server", "delay_loop", "keepalived", "interval between checks of its real servers"),
    ("virtual_server", "persistence_timeout", "keepalived", "client persistence, seconds"),
    ("virtual_server", "persistence_granularity", "keepalived", "netmask grouping clients for persistence"),
    ("virtual_server", "laddr_group_name", "DPVS", "the local_address_group FNAT uses"),
    ("virtual_server", "alpha", "keepalived", "real servers start down until a check passes"),
    ("virtual_server", "omega", "keepalived", "run quorum_down when the service is removed"),
    ("virtual_server", "checker_off", "extension", "real servers are not checked"),
    ("virtual_server", "checker_merge", "extension", "one check per real server shared by the services it serves"),
    ("virtual_server", "syn_proxy", "DPVS", "SYN cookies before the real server's handshake (TCP, FNAT/NAT)"),
    ("virtual_server", "sh-port", "keepalived", "sh, mh and consh hash the client's port with its address (other schedulers do not hash)"),
    ("virtual_server", "mh-port", "keepalived", "as sh-port"),
    ("virtual_server", "flag-2", "keepalived", "IPVS's second scheduler flag: sh-port / mh-port"),
    ("virtual_server", "quorum", "keepalived", "weight of live real servers below which quorum is lost"),
    ("virtual_server", "hysteresis", "keepalived", "margin around the quorum"),
    ("virtual_server", "quorum_up", "keepalived", "script run when quorum is gained"),
    ("virtual_server", "quorum_down", "keepalived", "script run when quorum is lost"),
    ("virtual_server", "tcp_draining_timeout", "EulerOS", "how long a removed real server's TCP sessions drain"),
    ("virtual_server", "flow_control_cps", "EulerOS", "new connections per interval allowed"),
    ("virtual_server", "flow_control_interval", "EulerOS", "the flow-control window, seconds"),
    ("virtual_server", "flow_control_pc", "EulerOS", "concurrent connections allowed"),
    ("virtual_server", "client_ipaddr_allow", "EulerOS", "clients allowed (networks)"),
    ("virtual_server", "client_ipaddr_exclude", "EulerOS", "clients refused (networks)"),
    ("virtual_server", "sorry_server", "keepalived", "where connections go when no real server is up"),
    ("virtual_server", "inhibit_on_failure", "keepalived", "failed real servers get weight 0 instead of removal"),
    ("virtual_server", "connect_timeout", "keepalived", "default for its checks"),
    ("virtual_server", "retry", "keepalived", "default for its checks"),
    ("virtual_server", "delay_before_retry", "keepalived", "default for its checks"),
    ("virtual_server", "warmup", "keepalived", "default for its checks"),
    ("virtual_server", "virtualhost", "keepalived", "default Host: for its HTTP checks"),
    ("virtual_server", "real_server", "keepalived", "a real server `IP PORT`"),
    ("real_server", "weight", "keepalived", "scheduling weight 0..=65535"),
    ("real_server", "inhibit_on_failure", "keepalived", "weight 0 instead of removal when its check fails"),
    ("real_server", "connect_timeout", "keepalived", "default for its check"),
    ("real_server", "retry", "keepalived", "default for its check"),
    ("real_server", "delay_before_retry", "keepalived", "default for its check"),
    ("real_server", "warmup", "keepalived", "default for its check"),
    ("real_server", "delay_loop", "keepalived", "its check's interval, overriding the virtual server's (keepalived 2.x)"),
    ("real_server", "alpha", "keepalived", "start down until its check passes"),
    ("real_server", "virtualhost", "keepalived", "default Host: for its HTTP check"),
    ("real_server", "notify_up", "keepalived", "script run when it comes up"),
    ("real_server", "notify_down", "keepalived", "script run when it goes down"),
    ("real_server", "TCP_CHECK", "keepalived", "a TCP connect check"),
    ("real_server", "HTTP_GET", "keepalived", "HTTP check of urls"),
    ("real_server", "SSL_GET", "keepalived", "HTTPS check of urls"),
    ("real_server", "UDP_CHECK", "keepalived", "UDP check (ICMP errors, or a reply)"),
    ("real_server", "MISC_CHECK", "keepalived", "a script's exit code"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK", "connect_ip", "keepalived", "address probed"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK", "connect_port", "keepalived", "port probed"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK", "bindto", "keepalived", "probe source address"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK", "bind_port", "keepalived", "probe source port"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK", "connect_timeout", "keepalived", "probe timeout"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK", "nb_get_retry", "keepalived", "older name of retry"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK", "nb_sock_retry", "keepalived", "older name of retry"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK", "retry", "keepalived", "failures retried before down"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK", "delay_before_retry", "keepalived", "wait before a retry"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK", "warmup", "keepalived", "random delay before the first check"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK", "delay_loop", "keepalived", "interval between checks"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK", "alpha", "keepalived", "start down until a check passes"),
    ("TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK", "log_all_failures", "keepalived", "log every failed attempt"),
    ("HTTP_GET, SSL_GET", "url", "keepalived", "a url to fetch"),
    ("HTTP_GET, SSL_GET", "virtualhost", "keepalived", "Host: header"),
    ("HTTP_GET, SSL_GET", "http_protocol", "keepalived", "1.0, 1.1 or 1.0C"),
    ("HTTP_GET, SSL_GET", "enable_sni", "keepalived", "send the host name in TLS"),
    ("url", "path", "keepalived", "the path fetched"),
    ("url", "status_code", "keepalived", "expected status"),
    ("url", "digest", "keepalived", "MD5 of the expected body"),
    ("url", "virtualhost", "keepalived", "Host: for this url"),
    ("UDP_CHECK", "ping_check_off", "DPVS", "no ICMP echo before the probe"),
    ("UDP_CHECK", "payload", "keepalived", "datagram sent, in hex"),
    ("UDP_CHECK", "require_reply", "keepalived", "only a reply proves the server up"),
    ("MISC_CHECK", "misc_path", "keepalived", "the script"),
    ("MISC_CHECK", "misc_timeout", "keepalived", "the script's time limit"),
    ("MISC_CHECK", "misc_dynamic", "keepalived", "exit codes 2..=255 set the weight"),
    ("vrrp_instance", "state", "keepalived", "MASTER or BACKUP at start"),
    ("vrrp_instance", "interface", "keepalived", "lbd port (or its TAP) the adverts use"),
    ("vrrp_instance", "virtual_router_id", "keepalived", "VRID 1..=255"),
    ("vrrp_instance", "priority", "keepalived", "election priority"),
    ("vrrp_instance", "advert_int", "keepalived", "advert interval"),
    ("vrrp_instance", "version", "keepalived", "VRRP 2 or 3"),
    ("vrrp_instance", "nopreempt", "keepalived", "a higher priority does not take over"),
    ("vrrp_instance", "preempt", "keepalived", "the default: a higher priority takes over"),
    ("vrrp_instance", "preempt_delay", "keepalived", "wait before taking over"),
    ("vrrp_instance", "authentication", "keepalived", "VRRPv2 simple password"),
    ("vrrp_instance", "virtual_ipaddress", "keepalived", "addresses owned while MASTER"),
    ("vrrp_instance", "virtual_ipaddress_excluded", "keepalived", "addresses owned, not advertised"),
    ("vrrp_instance", "unicast_src_ip", "keepalived", "advert source"),
    ("vrrp_instance", "mcast_src_ip", "keepalived", "older name of unicast_src_ip"),
    ("vrrp_instance", "unicast_peer", "keepalived", "adverts to these peers instead of multicast"),
    ("vrrp_instance", "track_interface", "keepalived", "ports whose state moves the priority or faults"),
    ("vrrp_instance", "garp_master_delay", "keepalived", "second gratuitous ARP burst delay"),
    ("vrrp_instance", "garp_master_repeat", "keepalived", "gratuitous ARPs per burst"),
    ("vrrp_instance", "garp_master_refresh", "keepalived", "gratuitous ARP refresh while MASTER"),
    ("vrrp_instance", "garp_master_refresh_repeat", "keepalived", "gratuitous ARPs per refresh"),
    ("vrrp_instance, vrrp_sync_group", "notify_master", "keepalived", "script run on MASTER"),
    ("vrrp_instance, vrrp_sync_group", "notify_backup", "keepalived", "script run on BACKUP"),
    ("vrrp_instance, vrrp_sync_group", "notify_fault", "keepalived", "script run on FAULT"),
    ("vrrp_instance, vrrp_sync_group", "notify_stop", "keepalived", "script run on stop"),
    ("vrrp_instance, vrrp_sync_group", "notify", "keepalived", "script run on every change"),
    ("authentication", "auth_type", "keepalived", "PASS (AH is refused)"),
    ("authentication", "auth_pass", "keepalived", "the password, 1..=8 bytes"),
    ("vrrp_sync_group", "group", "keepalived", "the member instances"),
    ("virtual_ipaddress line", "dev", "keepalived", "the port owning the address"),
    ("virtual_ipaddress line", "label", "keepalived", "address label"),
];

/// Refusals written in the parser's code rather than in a table: `(context, keyword, why)`.
const REFUSED_INLINE: &[(&str, &str, &str)] = &[
    ("virtual_server_group", "fwmark", crate::vsg::FWMARK_WHY),
    ("virtual_server", "ha_suspend", "suspends checks while this director does not hold the address; lb-slowpath checks on master and backup alike, so a takeover starts from current verdicts"),
    ("global_defs, vrrp_instance", "lvs_sync_daemon_interface", "deprecated: `lvs_sync_daemon INTERFACE VRRP_INSTANCE` in global_defs"),
    ("virtual_ipaddress line", "no_track", "only dev and label"),
    ("virtual_ipaddress line", "home", "only dev and label"),
    ("virtual_ipaddress line", "nodad", "only dev and label"),
    ("virtual_ipaddress line", "-nodad", "only dev and label"),
    ("virtual_ipaddress line", "noprefixroute", "only dev and label"),
    ("virtual_ipaddress line", "brd", "only dev and label"),
    ("virtual_ipaddress line", "broadcast", "only dev and label"),
    ("virtual_ipaddress line", "scope", "only dev and label"),
    ("virtual_ipaddress line", "preferred_lft", "only dev and label"),
    ("virtual_ipaddress line", "track_group", "only dev and label"),
];

/// DPVS keywords outside virtual_server (the virtual_server ones are `vs::VS_IGNORED_DPVS`),
/// for the origin column of the tables shared with keepalived's own keywords.
const DPVS_OTHER: &[&str] = &["deny_address_group", "blacklist_address_group", "whitelist_address_group", "tunnel_group"];

fn origin(kw: &str) -> &'static str {
    let dpvs_vs = vs::VS_IGNORED_DPVS.iter().any(|(k, _)| *k == kw) || vs::VS_REFUSED.iter().any(|(k, o, _)| *k == kw && *o == "DPVS");
    if dpvs_vs || DPVS_OTHER.contains(&kw) {
        "DPVS"
    } else {
        "keepalived"
    }
}

/// The whole table, sorted by context, then status, then keyword.
pub fn keyword_table() -> Vec<Keyword> {
    let mut t: Vec<Keyword> = ACTED
        .iter()
        .map(|&(context, keyword, origin, note)| Keyword {
            context,
            keyword,
            status: Status::Acted,
            origin,
            note: note.into(),
        })
        .collect();
    let mut add = |context, keyword: &'static str, status, note: String| {
        t.push(Keyword {
            context,
            keyword,
            status,
            origin: origin(keyword),
            note,
        });
    };
    let ignored = |why: &str| format!("not acted on: {why}");
    for kw in convert::TOP_IGNORED {
        add("top level", kw, Status::Ignored, ignored("the block is skipped (scripts, static routes, tracking, SSL, DPVS address lists are not done by lbd)"));
    }
    for kw in convert::GLOBAL_IGNORED {
        add("global_defs", kw, Status::Ignored, ignored("a setting of keepalived's own processes (mail, SNMP, D-Bus, scheduling, netlink, VRRP defaults); lbd.toml sets lbd's"));
    }
    for (kw, why) in vs::VS_IGNORED.iter().chain(vs::VS_IGNORED_DPVS) {
        add("virtual_server", kw, Status::Ignored, ignored(why));
    }
    for (kw, _, why) in vs::VS_REFUSED {
        add("virtual_server", kw, Status::Refused, refused_note(why));
    }
    for kw in vs::RS_IGNORED {
        add(
            "real_server",
            kw,
            Status::Ignored,
            ignored("connection thresholds, mail and SNMP are not done"),
        );
    }
    add(
        "vrrp_instance, vrrp_sync_group",
        "smtp_alert",
        Status::Ignored,
        ignored("there is no mailer"),
    );
    for (kw, why) in vrrp::INSTANCE_UNSUPPORTED {
        add("vrrp_instance", kw, Status::Refused, refused_note(why));
    }
    for (kw, why) in vrrp::GROUP_UNSUPPORTED {
        add("vrrp_sync_group", kw, Status::Refused, refused_note(why));
    }
    for kw in check::UNSUPPORTED {
        add("real_server", kw, Status::Refused, "this check type is not run (use TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK or MISC_CHECK)".into());
    }
    for (ctx, kw, what) in check::REFUSED {
        let context = match *ctx {
            "" => "TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK",
            "HTTP" => "HTTP_GET, SSL_GET",
            other => other,
        };
        add(context, kw, Status::Refused, refused_note(what));
    }
    for (context, kw, why) in REFUSED_INLINE {
        add(context, kw, Status::Refused, (*why).into());
    }
    let rank = |c: &str| {
        CONTEXTS
            .iter()
            .position(|x| *x == c)
            .unwrap_or(CONTEXTS.len())
    };
    t.sort_by(|a, b| {
        (rank(a.context), a.context, a.status, a.keyword).cmp(&(
            rank(b.context),
            b.context,
            b.status,
            b.keyword,
        ))
    });
    t
}

/// The order of the sections: as the blocks nest.
const CONTEXTS: &[&str] = &[
    "top level",
    "global_defs",
    "global_defs, vrrp_instance",
    "lvs_sync_daemon option",
    "virtual_server_group",
    "virtual_server",
    "real_server",
    "TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK",
    "TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK",
    "HTTP_GET, SSL_GET",
    "url",
    "UDP_CHECK",
    "MISC_CHECK",
    "vrrp_instance",
    "vrrp_instance, vrrp_sync_group",
    "authentication",
    "virtual_ipaddress line",
    "vrrp_sync_group",
];

fn refused_note(why: &str) -> String {
    if why.is_empty() {
        "not supported yet".into()
    } else {
        format!("not supported yet: {why}")
    }
}

/// docs/keepalived-keywords.md.
pub fn keyword_table_markdown() -> String {
    let mut out = String::from(
        "# keepalived.conf keywords\n\n\
         <!-- Generated by kaconf::keyword_table_markdown(); do not edit. Regenerate with\n     \
         KACONF_REGENERATE_DOCS=1 cargo test -p kaconf --test keywords -->\n\n\
         Every keyword kaconf knows, by the block it appears in. **acted on**: the director does\n\
         what keepalived does (or the extension says); **refused**: the configuration does not\n\
         load, and the error at the keyword's file:line:column says why; **accepted, ignored**:\n\
         the configuration loads with a warning naming the keyword, which is not acted on and\n\
         not kept by `save`. A keyword not listed is an error (`unknown keyword in ...`).\n\
         Origin: keepalived, DPVS (its keepalived), EulerOS, or an extension of lbd's.\n",
    );
    let table = keyword_table();
    let mut context = "";
    for k in &table {
        if k.context != context {
            context = k.context;
            out.push_str(&format!(
                "\n## {context}\n\n| keyword | status | origin | meaning / why |\n|---|---|---|---|\n"
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            k.keyword,
            k.status.as_str(),
            k.origin,
            k.note.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_daemon_options_and_contexts_are_listed() {
        let t = keyword_table();
        for opt in crate::sync::OPTIONS {
            assert!(
                t.iter()
                    .any(|k| k.context == "lvs_sync_daemon option" && k.keyword == *opt),
                "{opt}"
            );
        }
        for k in &t {
            assert!(
                CONTEXTS.contains(&k.context),
                "{} has no section order",
                k.context
            );
        }
        // One status per keyword and context.
        for (i, a) in t.iter().enumerate() {
            for b in &t[i + 1..] {
                let shared = a
                    .context
                    .split(", ")
                    .any(|c| b.context.split(", ").any(|d| c == d));
                assert!(!(shared && a.keyword == b.keyword), "{a:?} and {b:?}");
            }
        }
    }
}
