//! Writes a [`Config`] back as a normalized keepalived.conf (for `save`).
//!
//! One statement per line, four-space indentation, canonical spellings (`lb_algo`, `lb_kind`,
//! `retry`), local address ranges expanded, inherited check settings written out on each
//! check, defaults that keepalived would assume written out where they matter to a reader.
//! Warned-about keywords are not kept. Parsing the output gives back the same settings
//! ([`Config::same_settings`]) for every configuration the parser produced; a value holding
//! both a `"` and a blank cannot be written in this language.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::model::{
    CheckCommon, Config, ConnectOpts, HealthCheck, HttpProtocol, LvsSyncDaemon, Protocol, Track,
    Url, VirtualIp, VirtualServer, VirtualServerGroup, VrrpInstance, VrrpSyncGroup,
};
use crate::value::fmt_seconds;
use crate::vrrp::{auth_type_name, state_name};

impl Config {
    /// This configuration in keepalived.conf syntax.
    pub fn to_keepalived_string(&self) -> String {
        let mut w = Writer::default();
        let global = &self.global;
        if global.router_id.is_some() || global.lvs_sync_daemon.is_some() {
            w.open(&["global_defs"]);
            w.opt("router_id", global.router_id.as_ref());
            if let Some(d) = &global.lvs_sync_daemon {
                lvs_sync_daemon(&mut w, d);
            }
            w.close();
        }
        for g in &self.local_address_groups {
            w.blank();
            w.open(&["local_address_group", &quote(&g.name)]);
            for a in &g.addrs {
                let ip = a.ip.to_string();
                match &a.ifname {
                    Some(ifname) => w.line(&[&ip, &quote(ifname)]),
                    None => w.line(&[&ip]),
                }
            }
            w.close();
        }
        for g in &self.virtual_server_groups {
            w.blank();
            w.open(&["virtual_server_group", &quote(&g.name)]);
            for e in &g.entries {
                let addr = if e.first == e.last {
                    e.first.to_string()
                } else {
                    format!("{}-{}", e.first, e.last.octets()[3])
                };
                w.line(&[&addr, &e.port.to_string()]);
            }
            w.close();
        }
        for (vs, group) in grouped(self) {
            w.blank();
            match group {
                Some(name) => virtual_server(&mut w, &["group", &quote(name)], vs),
                None => virtual_server(&mut w, &[&vs.vip.to_string(), &vs.port.to_string()], vs),
            }
        }
        for vi in &self.vrrp_instances {
            w.blank();
            vrrp_instance(&mut w, vi);
        }
        for g in &self.vrrp_sync_groups {
            w.blank();
            vrrp_sync_group(&mut w, g);
        }
        w.out
    }
}

#[derive(Default)]
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn line(&mut self, words: &[&str]) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push_str(&words.join(" "));
        self.out.push('\n');
    }

    fn open(&mut self, words: &[&str]) {
        let mut words = words.to_vec();
        words.push("{");
        self.line(&words);
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.line(&["}"]);
    }

    fn blank(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn opt(&mut self, keyword: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.line(&[keyword, &quote(&v.to_string())]);
        }
    }

    fn flag(&mut self, keyword: &str, on: bool) {
        if on {
            self.line(&[keyword]);
        }
    }
}

/// `s` as one word: quoted when it would otherwise split, vanish, start a comment, be taken
/// for a brace or an `include`, or join the next line.
fn quote(s: &str) -> Cow<'_, str> {
    let needs = s.is_empty()
        || s.contains(|c: char| c.is_whitespace() || c == '{' || c == '}')
        || s.starts_with(['"', '!', '#'])
        || s.ends_with('\\')
        || s == "include";
    if needs {
        Cow::Owned(format!("\"{s}\""))
    } else {
        Cow::Borrowed(s)
    }
}

/// The services to write, each with the group it is written as: a `virtual_server group NAME`
/// stands for every member of NAME with the same protocol and settings, written where the
/// group's first member is. Services that no longer make up a whole group (one deleted or
/// edited through the API) are written one by one.
fn grouped(c: &Config) -> Vec<(&VirtualServer, Option<&str>)> {
    let index: HashMap<(Ipv4Addr, u16, Protocol), usize> = c
        .virtual_servers
        .iter()
        .enumerate()
        .map(|(i, v)| ((v.vip, v.port, v.protocol), i))
        .collect();
    let mut done = vec![false; c.virtual_servers.len()];
    let mut out = Vec::new();
    for (i, vs) in c.virtual_servers.iter().enumerate() {
        if done[i] {
            continue;
        }
        let whole = |g: &VirtualServerGroup| -> Option<Vec<usize>> {
            let members = g.services();
            if members.first() != Some(&(vs.vip, vs.port)) {
                return None;
            }
            let settings = settings_of(vs);
            members
                .iter()
                .map(|&(ip, port)| {
                    let j = *index.get(&(ip, port, vs.protocol))?;
                    let same = !done[j] && settings_of(&c.virtual_servers[j]) == settings;
                    same.then_some(j)
                })
                .collect()
        };
        match c
            .virtual_server_groups
            .iter()
            .find_map(|g| whole(g).map(|m| (g, m)))
        {
            Some((g, members)) => {
                members.into_iter().for_each(|j| done[j] = true);
                out.push((vs, Some(g.name.as_str())));
            }
            None => out.push((vs, None)),
        }
        done[i] = true;
    }
    out
}

/// A service's settings without its address, port or positions.
fn settings_of(vs: &VirtualServer) -> VirtualServer {
    let mut v = vs.clone();
    (v.vip, v.port, v.file, v.line) = (Ipv4Addr::UNSPECIFIED, 0, Default::default(), 0);
    for rs in &mut v.real_servers {
        (rs.file, rs.line) = (Default::default(), 0);
    }
    v
}

/// `virtual_server <head> { ... }`, `head` being the address and port or `group NAME`.
fn virtual_server(w: &mut Writer, head: &[&str], vs: &VirtualServer) {
    let mut words = vec!["virtual_server"];
    words.extend_from_slice(head);
    w.open(&words);
    w.line(&["protocol", &vs.protocol.to_string()]);
    w.line(&["lb_algo", crate::model::spelling(crate::model::LB_ALGOS, vs.lb_algo)]);
    w.line(&["lb_kind", &vs.lb_kind.to_string()]);
    w.line(&["delay_loop", &fmt_seconds(vs.delay_loop)]);
    w.opt("persistence_timeout", vs.persistence_timeout);
    w.opt("persistence_granularity", vs.persistence_granularity);
    w.opt("laddr_group_name", vs.laddr_group_name.as_ref());
    w.flag("syn_proxy", vs.syn_proxy);
    w.flag("sh-port", vs.hash_port);
    w.flag("alpha", vs.alpha);
    w.flag("omega", vs.omega);
    if vs.quorum != 1 {
        w.line(&["quorum", &vs.quorum.to_string()]);
    }
    if vs.hysteresis != 0 {
        w.line(&["hysteresis", &vs.hysteresis.to_string()]);
    }
    w.opt("quorum_up", vs.quorum_up.as_ref());
    w.opt("quorum_down", vs.quorum_down.as_ref());
    w.opt("tcp_draining_timeout", vs.tcp_draining_timeout);
    w.opt("flow_control_cps", vs.flow_control_cps);
    w.opt("flow_control_interval", vs.flow_control_interval);
    w.opt("flow_control_pc", vs.flow_control_pc);
    for (keyword, list) in [
        ("client_ipaddr_allow", &vs.client_ipaddr_allow),
        ("client_ipaddr_exclude", &vs.client_ipaddr_exclude),
    ] {
        if !list.is_empty() {
            w.open(&[keyword]);
            for net in list {
                w.line(&[&net.to_string()]);
            }
            w.close();
        }
    }
    w.flag("checker_off", vs.checker_off);
    w.flag("checker_merge", vs.checker_merge);
    if let Some((ip, port)) = vs.sorry_server {
        w.line(&["sorry_server", &ip.to_string(), &port.to_string()]);
    }
    for rs in &vs.real_servers {
        w.open(&["real_server", &rs.ip.to_string(), &rs.port.to_string()]);
        w.line(&["weight", &rs.weight.to_string()]);
        w.flag("inhibit_on_failure", rs.inhibit_on_failure);
        if let Some(check) = &rs.check {
            // keepalived takes these on the real server, not in the check.
            w.opt("notify_up", check.common().notify_up.as_ref());
            w.opt("notify_down", check.common().notify_down.as_ref());
            health_check(w, vs, check);
        }
        w.close();
    }
    w.close();
}

fn health_check(w: &mut Writer, vs: &VirtualServer, check: &HealthCheck) {
    w.open(&[check.keyword()]);
    match check {
        HealthCheck::Tcp(c) => connect(w, c),
        HealthCheck::Http(h) | HealthCheck::Ssl(h) => {
            h.urls.iter().for_each(|u| url(w, u));
            connect(w, &h.connect);
            w.opt("virtualhost", h.virtualhost.as_ref());
            if h.http_protocol != HttpProtocol::default() {
                w.line(&["http_protocol", &h.http_protocol.to_string()]);
            }
            w.flag("enable_sni", h.enable_sni);
        }
        HealthCheck::Udp(u) => {
            connect(w, &u.connect);
            w.flag("ping_check_off", u.ping_check_off);
            if let Some(p) = &u.payload {
                let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
                w.line(&["payload", &hex]);
            }
            w.flag("require_reply", u.require_reply);
        }
        HealthCheck::Misc(m) => {
            w.line(&["misc_path", &quote(&m.misc_path)]);
            w.opt("misc_timeout", m.misc_timeout.map(fmt_seconds));
            w.flag("misc_dynamic", m.misc_dynamic);
        }
    }
    common(w, vs, check.common());
    w.close();
}

fn connect(w: &mut Writer, c: &ConnectOpts) {
    w.opt("connect_ip", c.connect_ip);
    w.opt("connect_port", c.connect_port);
    w.opt("bindto", c.bindto);
    w.opt("bind_port", c.bind_port);
    w.line(&["connect_timeout", &fmt_seconds(c.connect_timeout)]);
}

/// Timing written out in full; `delay_loop`, `warmup` and `alpha` only where they differ
/// from what the check would inherit.
fn common(w: &mut Writer, vs: &VirtualServer, c: &CheckCommon) {
    w.line(&["retry", &c.retry.to_string()]);
    w.line(&["delay_before_retry", &fmt_seconds(c.delay_before_retry)]);
    if c.delay_loop != vs.delay_loop {
        w.line(&["delay_loop", &fmt_seconds(c.delay_loop)]);
    }
    if c.warmup != c.delay_loop {
        w.line(&["warmup", &fmt_seconds(c.warmup)]);
    }
    if c.alpha != vs.alpha {
        w.line(&["alpha", if c.alpha { "true" } else { "false" }]);
    }
    w.flag("log_all_failures", c.log_all_failures);
}

fn url(w: &mut Writer, u: &Url) {
    w.open(&["url"]);
    w.line(&["path", &quote(&u.path)]);
    w.opt("status_code", u.status_code);
    w.opt("digest", u.digest.as_ref());
    w.opt("virtualhost", u.virtualhost.as_ref());
    w.close();
}

fn vrrp_instance(w: &mut Writer, vi: &VrrpInstance) {
    w.open(&["vrrp_instance", &quote(&vi.name)]);
    w.line(&["state", state_name(vi.state)]);
    w.line(&["interface", &quote(&vi.interface)]);
    w.line(&["virtual_router_id", &vi.virtual_router_id.to_string()]);
    w.line(&["priority", &vi.priority.to_string()]);
    w.line(&["advert_int", &fmt_centis(vi.advert_centis())]);
    w.opt("version", vi.version);
    w.flag("nopreempt", vi.nopreempt);
    w.opt("preempt_delay", vi.preempt_delay.map(fmt_seconds));
    if let Some(auth) = &vi.authentication {
        w.open(&["authentication"]);
        w.line(&["auth_type", auth_type_name(auth.auth_type)]);
        w.line(&["auth_pass", &quote(&auth.auth_pass)]);
        w.close();
    }
    w.opt("unicast_src_ip", vi.unicast_src_ip);
    w.opt("mcast_src_ip", vi.mcast_src_ip);
    if !vi.unicast_peer.is_empty() {
        w.open(&["unicast_peer"]);
        vi.unicast_peer
            .iter()
            .for_each(|p| w.line(&[&p.to_string()]));
        w.close();
    }
    virtual_ips(w, "virtual_ipaddress", &vi.virtual_ipaddress);
    virtual_ips(
        w,
        "virtual_ipaddress_excluded",
        &vi.virtual_ipaddress_excluded,
    );
    tracks(w, "track_interface", &vi.track_interface);
    let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs());
    w.opt("garp_master_delay", secs(vi.garp_master_delay));
    w.opt("garp_master_repeat", vi.garp_master_repeat);
    w.opt("garp_master_refresh", secs(vi.garp_master_refresh));
    w.opt("garp_master_refresh_repeat", vi.garp_master_refresh_repeat);
    w.opt("notify_master", vi.notify_master.as_ref());
    w.opt("notify_backup", vi.notify_backup.as_ref());
    w.opt("notify_fault", vi.notify_fault.as_ref());
    w.opt("notify_stop", vi.notify_stop.as_ref());
    w.opt("notify", vi.notify.as_ref());
    w.close();
}

/// One line, only the options that were given (a default written out would stay written).
fn lvs_sync_daemon(w: &mut Writer, d: &LvsSyncDaemon) {
    let (interface, instance) = (quote(&d.interface), quote(&d.vrrp_instance));
    let mut words = vec![
        "lvs_sync_daemon".to_owned(),
        interface.into(),
        instance.into(),
    ];
    let options = [
        ("id", d.syncid.map(|v| v.to_string())),
        ("maxlen", d.maxlen.map(|v| v.to_string())),
        ("port", d.port.map(|v| v.to_string())),
        ("ttl", d.ttl.map(|v| v.to_string())),
        ("group", d.group.map(|v| v.to_string())),
    ];
    for (name, value) in options {
        if let Some(value) = value {
            words.extend([name.to_owned(), value]);
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    w.line(&words);
}

fn vrrp_sync_group(w: &mut Writer, g: &VrrpSyncGroup) {
    w.open(&["vrrp_sync_group", &quote(&g.name)]);
    w.open(&["group"]);
    g.group.iter().for_each(|m| w.line(&[&quote(m)]));
    w.close();
    w.opt("notify_master", g.notify_master.as_ref());
    w.opt("notify_backup", g.notify_backup.as_ref());
    w.opt("notify_fault", g.notify_fault.as_ref());
    w.opt("notify_stop", g.notify_stop.as_ref());
    w.opt("notify", g.notify.as_ref());
    w.close();
}

/// Centiseconds as seconds with at most two decimals: `1`, `0.5`, `0.05`.
fn fmt_centis(c: u16) -> String {
    match c % 100 {
        0 => (c / 100).to_string(),
        f if f % 10 == 0 => format!("{}.{}", c / 100, f / 10),
        f => format!("{}.{f:02}", c / 100),
    }
}

fn virtual_ips(w: &mut Writer, keyword: &str, list: &[VirtualIp]) {
    if list.is_empty() {
        return;
    }
    w.open(&[keyword]);
    for vip in list {
        let mut text = if vip.addr.prefix() == 32 {
            vip.addr.ip().to_string()
        } else {
            format!("{}/{}", vip.addr.ip(), vip.addr.prefix())
        };
        for (opt, val) in [("dev", &vip.dev), ("label", &vip.label)] {
            if let Some(val) = val {
                let _ = write!(text, " {opt} {}", quote(val));
            }
        }
        w.line(&[&text]);
    }
    w.close();
}

fn tracks(w: &mut Writer, keyword: &str, list: &[Track]) {
    if list.is_empty() {
        return;
    }
    w.open(&[keyword]);
    for t in list {
        match t.weight {
            Some(weight) => w.line(&[&quote(&t.name), "weight", &weight.to_string()]),
            None => w.line(&[&quote(&t.name)]),
        }
    }
    w.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("rr"), "rr");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("ip addr add"), "\"ip addr add\"");
        assert_eq!(quote("#x"), "\"#x\"");
        assert_eq!(quote("a#x"), "a#x");
        assert_eq!(quote("a{"), "\"a{\"");
        assert_eq!(quote("x\\"), "\"x\\\"");
        assert_eq!(quote("include"), "\"include\"");
    }
}
