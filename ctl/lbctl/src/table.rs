//! Tables in ipvsadm's layout (its printf formats, column for column), and lbctl's own for the
//! noun-verb views.

use std::fmt::Write as _;

use lb_api::pb;

use crate::args::ListView;
use crate::names::addr_port;

/// ipvsadm's first line. The version is the one ipvsadm users' scripts expect.
pub const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";

/// Per-second rates of one service or real server (`--rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// ipvsadm's `print_largenum`: 9 columns, then K/M/G/T; with `--exact` (`exact`) the whole
/// number, right-aligned in 9 columns or one more than its digits.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let digits = i.to_string();
        return format!("{digits:>w$}", w = if digits.len() <= 8 { 9 } else { digits.len() + 1 });
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// How `-L` prints, as ipvsadm's format flags say it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFmt {
    pub view: ListView,
    /// `-n`.
    pub numeric: bool,
    /// `--exact`.
    pub exact: bool,
    /// `--nosort`: services and real servers in the order lbd holds them.
    pub nosort: bool,
    /// `--persistent-conn`: the PersistConn column (when no other view is asked for).
    pub persistent_conn: bool,
    /// `-L -t|-u VIP:PORT`: one service, which ipvsadm lists without its version line.
    pub one_service: bool,
}

/// ipvsadm's `svc_name` for lists: the protocol in 4 columns, the address; cut at 33 bytes.
fn svc_name(s: &pb::Service, numeric: bool) -> String {
    let k = s.key.clone().unwrap_or_default();
    let mut n = format!("{:<4} {}", lb_api::protocol_name(k.protocol), addr_port(&k.vip, k.port, k.protocol, numeric));
    n.truncate(33);
    n
}

/// A real server's name, cut at 28 bytes as ipvsadm cuts it.
fn dest_name(s: &pb::Service, r: &pb::RealServer, numeric: bool) -> String {
    let proto = s.key.as_ref().map_or(0, |k| k.protocol);
    let mut n = addr_port(&r.addr, r.port, proto, numeric);
    n.truncate(28);
    n
}

fn conns(c: Option<&pb::ConnCounters>) -> pb::ConnCounters {
    c.copied().unwrap_or_default()
}

/// An address as a number for sorting (unparsable ones last).
fn addr_order(a: &str) -> u64 {
    a.parse::<std::net::Ipv4Addr>().map_or(u64::MAX, |ip| u64::from(u32::from(ip)))
}

/// The order ipvsadm lists services in: by protocol number (TCP before UDP), address, port.
/// (ipvsadm compares addresses by subtracting them as 32-bit integers, which wraps for
/// addresses 2^31 or more apart; lbctl compares them as numbers.)
pub(crate) fn service_order(list: &[pb::Service], nosort: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..list.len()).collect();
    if !nosort {
        let key = |s: &pb::Service| {
            let k = s.key.clone().unwrap_or_default();
            let proto = lb_api::protocol_from_pb(k.protocol).map_or(u8::MAX, lb_api::lb_model::Protocol::ip_protocol);
            (proto, addr_order(&k.vip), k.port)
        };
        order.sort_by_key(|i| key(&list[*i]));
    }
    order
}

/// The order ipvsadm lists a service's real servers in: by address, then port.
pub(crate) fn dest_order(s: &pb::Service, nosort: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..s.real_servers.len()).collect();
    if !nosort {
        order.sort_by_key(|j| (addr_order(&s.real_servers[*j].addr), s.real_servers[*j].port));
    }
    order
}

/// ipvsadm's `print_sched_flags`, in parentheses after the scheduler: sh-port for sh,
/// mh-port for mh, flag-2 for the others.
fn sched_flags(s: &pb::Service) -> String {
    if !s.hash_port {
        return String::new();
    }
    let flag = match lb_api::scheduler_name(s.scheduler) {
        "sh" => "sh-port",
        "mh" => "mh-port",
        _ => "flag-2",
    };
    format!(" ({flag})")
}

/// `-L` / `-Ln` with `--stats`, `--rate`, `--thresholds` or `--persistent-conn`, in ipvsadm
/// 1.31's formats byte for byte. `rates` gives a rate per service and per real server (in
/// list order) for `--rate`.
pub fn services(list: &[pb::Service], f: ListFmt, rates: &[(Rate, Vec<Rate>)]) -> String {
    let largenum = |i: u64| largenum(i, f.exact);
    let numeric = f.numeric;
    let view = match f.view {
        ListView::Services if f.persistent_conn => None,
        v => Some(v),
    };
    let mut o = String::new();
    if !f.one_service {
        o.push_str(HEADER);
    }
    match view {
        Some(ListView::Stats) => {
            let _ = write!(o, "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes");
        }
        Some(ListView::Rate) => {
            let _ = write!(o, "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS");
        }
        Some(ListView::Thresholds) => {
            let _ = write!(o, "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn");
        }
        None => {
            let _ = write!(o, "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn");
        }
        _ => o.push_str("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"),
    }
    let no_rate = (Rate::default(), Vec::new());
    for i in service_order(list, f.nosort) {
        let s = &list[i];
        let name = svc_name(s, numeric);
        let (srate, rsrates) = rates.get(i).unwrap_or(&no_rate);
        match view {
            Some(ListView::Stats) => {
                let c = conns(s.stats.as_ref());
                let _ = writeln!(o, "{name:<33}{}{}{}{}{}", largenum(c.conns), largenum(c.pkts_in), largenum(c.pkts_out), largenum(c.bytes_in), largenum(c.bytes_out));
            }
            Some(ListView::Rate) => {
                let _ = writeln!(o, "{name:<33}{}{}{}{}{}", largenum(srate.cps), largenum(srate.inpps), largenum(srate.outpps), largenum(srate.inbps), largenum(srate.outbps));
            }
            _ => {
                o.push_str(&name);
                o.push(' ');
                o.push_str(lb_api::scheduler_name(s.scheduler));
                o.push_str(&sched_flags(s));
                if let Some(p) = &s.persistence {
                    let _ = write!(o, " persistent {}", p.timeout_s);
                    if !p.netmask.is_empty() && p.netmask != "255.255.255.255" {
                        let _ = write!(o, " mask {}", p.netmask);
                    }
                }
                // After the persistence flags, as DPVS's ipvsadm prints it.
                if s.syn_proxy {
                    o.push_str(" synproxy");
                }
                o.push('\n');
            }
        }
        for j in dest_order(s, f.nosort) {
            let r = &s.real_servers[j];
            // Only servers that take traffic, as keepalived leaves IPVS: a down server is gone,
            // an inhibited one stays with weight 0.
            let Some(weight) = lb_api::shown_weight(s, r) else { continue };
            let d = dest_name(s, r, numeric);
            let c = conns(r.stats.as_ref());
            match view {
                Some(ListView::Stats) => {
                    let _ = writeln!(o, "  -> {d:<28}{}{}{}{}{}", largenum(c.conns), largenum(c.pkts_in), largenum(c.pkts_out), largenum(c.bytes_in), largenum(c.bytes_out));
                }
                Some(ListView::Rate) => {
                    let r = rsrates.get(j).copied().unwrap_or_default();
                    let _ = writeln!(o, "  -> {d:<28} {:>8} {:>8} {:>8}{}{}", r.cps, r.inpps, r.outpps, largenum(r.inbps), largenum(r.outbps));
                }
                Some(ListView::Thresholds) => {
                    // No per-server thresholds (-x/-y are refused): IPVS's 0 for "none".
                    let _ = writeln!(o, "  -> {d:<28} {:<10} {:<10} {:<10} {:<10}", 0, 0, c.active_conns, c.inactive_conns);
                }
                None => {
                    let _ = writeln!(o, "  -> {d:<28} {weight:<9} {:<11} {:<10} {:<10}", c.persistent_conns, c.active_conns, c.inactive_conns);
                }
                _ => {
                    let _ = writeln!(o, "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}", lb_api::forward_ipvsadm_name(s.forward), weight, c.active_conns, c.inactive_conns);
                }
            }
        }
        // Quorum lost with a sorry server: keepalived puts the sorry server in the pool instead.
        let reported = s.real_servers.iter().any(|r| r.health != 0);
        if reported && !s.quorum_up && view == Some(ListView::Services) {
            if let Some((a, p)) = s.sorry_server.rsplit_once(':') {
                let d = addr_port(a, p.parse().unwrap_or(0), s.key.as_ref().map_or(0, |k| k.protocol), numeric);
                let _ = writeln!(o, "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}", lb_api::forward_ipvsadm_name(s.forward), 1, 0, 0);
            }
        }
    }
    o
}

/// How long ago `since_ms` was, shortly: 42s, 3m05s, 2h07m, 4d03h ("-" when unknown).
pub fn age(since_ms: i64, now_ms: i64) -> String {
    if since_ms <= 0 {
        return "-".into();
    }
    let s = (now_ms - since_ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86400, s / 3600 % 24),
    }
}

/// `lbctl rs list`: every configured real server with its health, down ones included.
pub fn real_servers(list: &[pb::Service], now_ms: i64) -> String {
    let mut o = format!("{:<24} {:<21} {:>6} {:>9} {:<9} {:>7} {:<10} {}\n", "Service", "RealServer", "Weight", "Effective", "Health", "Since", "Checker", "LastError");
    for s in list {
        let svc = svc_name(s, true).replace("  ", " ");
        for r in &s.real_servers {
            let mut health = lb_api::health_name(r.health).to_owned();
            if r.inhibited {
                health.push('*');
            }
            let _ = writeln!(
                o,
                "{svc:<24} {:<21} {:>6} {:>9} {health:<9} {:>7} {:<10} {}",
                format!("{}:{}", r.addr, r.port),
                r.weight,
                r.effective_weight,
                age(r.health_since_unix_ms, now_ms),
                if r.checker.is_empty() { "-" } else { &r.checker },
                r.last_error
            );
        }
        if !s.quorum_up && s.real_servers.iter().any(|r| r.health != 0) {
            let sorry = if s.sorry_server.is_empty() { "no sorry server: unchanged".to_owned() } else { format!("new connections go to the sorry server {}", s.sorry_server) };
            let _ = writeln!(o, "{svc:<24} quorum lost ({sorry})");
        }
    }
    if list.iter().flat_map(|s| &s.real_servers).any(|r| r.inhibited) {
        o.push_str("(* down, kept with weight 0: inhibit_on_failure)\n");
    }
    o
}

/// `-Lc` / `-Lnc`: ipvsadm's connection listing (its format strings and arguments as they are,
/// hence the literals). With `--persistent-conn` the header gains
/// ipvsadm's persistence-engine columns; sessions carry no engine data, so their lines keep
/// the plain layout, as ipvsadm prints entries without it.
#[allow(clippy::write_literal)]
pub fn connections(list: &[pb::Session], numeric: bool, persistent_conn: bool) -> String {
    let mut o = String::from("IPVS connection entries\n");
    if persistent_conn {
        let _ = writeln!(o, "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} {}", "state", "source", "virtual", "destination", "pe name", "pe_data");
    } else {
        let _ = writeln!(o, "pro expire {:<11} {:<18} {:<18} {}", "state", "source", "virtual", "destination");
    }
    for s in list {
        let ap = |x: &str| match x.rsplit_once(':') {
            Some((a, p)) => addr_port(a, p.parse().unwrap_or(0), s.protocol, numeric),
            None => x.to_owned(),
        };
        let e = s.expires_in_s;
        let expire = format!("{:02}:{:02}", e / 60, e % 60);
        let _ = writeln!(o, "{:<3} {expire:<6} {:<11} {:<18} {:<18} {}", lb_api::protocol_name(s.protocol), s.state, ap(&s.client), ap(&s.vip), ap(&s.real_server));
    }
    o
}

/// `--timeout`.
pub fn timeouts(t: &pb::Timeouts) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcpfin, t.udp)
}

/// `lbctl session list`: every field, local address and worker included.
pub fn sessions(list: &[pb::Session], matched: u64) -> String {
    let mut o = format!("{:<4} {:<11} {:>7} {:<21} {:<21} {:<21} {:<21} {:>3} {:>9} {:>9}\n", "Prot", "State", "Expires", "Client", "Virtual", "Local", "RealServer", "W", "PktsIn", "PktsOut");
    for s in list {
        let _ = writeln!(
            o,
            "{:<4} {:<11} {:>7} {:<21} {:<21} {:<21} {:<21} {:>3} {:>9} {:>9}",
            lb_api::protocol_name(s.protocol),
            s.state,
            s.expires_in_s,
            s.client,
            s.vip,
            s.laddr,
            s.real_server,
            s.worker,
            s.pkts_in,
            s.pkts_out
        );
    }
    if matched > list.len() as u64 {
        let _ = writeln!(o, "({} of {matched} matching sessions shown; raise --limit)", list.len());
    }
    o
}

/// `lbctl laddr list`.
pub fn groups(list: &[pb::LocalAddressGroup]) -> String {
    let mut o = format!("{:<16} {:<16} {:<10} {}\n", "Group", "Address", "Ifname", "UsedBy");
    for g in list {
        let used: Vec<String> = g.used_by.iter().map(ToString::to_string).collect();
        for (i, a) in g.addrs.iter().enumerate() {
            let u = if i == 0 { used.join(", ") } else { String::new() };
            let _ = writeln!(o, "{:<16} {:<16} {:<10} {u}", g.name, a.addr, if a.ifname.is_empty() { "-" } else { &a.ifname });
        }
        if g.addrs.is_empty() {
            let _ = writeln!(o, "{:<16} {:<16} {:<10} {}", g.name, "-", "-", used.join(", "));
        }
    }
    o
}

/// `lbctl stats`: per-worker counters with drops by reason (non-zero drops only), ports.
pub fn stats(s: &pb::Stats) -> String {
    let mut o = String::new();
    let names: Vec<&str> = s.workers.first().map(|w| w.counters.iter().map(|c| c.name.as_str()).collect()).unwrap_or_default();
    let _ = write!(o, "{:<28}", "Counter");
    for w in &s.workers {
        let _ = write!(o, " {:>14}", format!("worker{}", w.worker));
    }
    let _ = writeln!(o, " {:>14}", "total");
    let row = |o: &mut String, name: &str, vals: Vec<u64>| {
        let _ = write!(o, "{name:<28}");
        for v in &vals {
            let _ = write!(o, " {v:>14}");
        }
        let _ = writeln!(o, " {:>14}", vals.iter().sum::<u64>());
    };
    row(&mut o, "sessions", s.workers.iter().map(|w| w.sessions).collect());
    for (i, n) in names.iter().enumerate() {
        row(&mut o, n, s.workers.iter().map(|w| w.counters.get(i).map_or(0, |c| c.value)).collect());
    }
    let reasons: Vec<&str> = s.workers.first().map(|w| w.drops.iter().map(|c| c.name.as_str()).collect()).unwrap_or_default();
    for (i, n) in reasons.iter().enumerate() {
        let vals: Vec<u64> = s.workers.iter().map(|w| w.drops.get(i).map_or(0, |c| c.value)).collect();
        if vals.iter().any(|v| *v > 0) {
            row(&mut o, &format!("drop {n}"), vals);
        }
    }
    let drops: Vec<u64> = s.workers.iter().map(|w| w.drops.iter().map(|c| c.value).sum()).collect();
    row(&mut o, "drops (all reasons)", drops);
    if !s.ports.is_empty() {
        let _ = writeln!(o, "\n{:<12} {:<18} {:>12} {:>12} {:>10} {:>10} {:>10}", "Port", "Device", "RxPkts", "TxPkts", "Imissed", "Errors", "RxNoMbuf");
        for p in &s.ports {
            let _ = writeln!(o, "{:<12} {:<18} {:>12} {:>12} {:>10} {:>10} {:>10}", p.name, p.device, p.ipackets, p.opackets, p.imissed, p.ierrors + p.oerrors, p.rx_nombuf);
        }
    }
    o
}

/// `lbctl info`.
pub fn info(i: &pb::Info) -> String {
    let mut o = String::new();
    let up = i.uptime_ms / 1000;
    let _ = writeln!(o, "lbd {} (pid {}), up {}d {:02}:{:02}:{:02}", i.version, i.pid, up / 86400, up / 3600 % 24, up / 60 % 60, up % 60);
    let _ = writeln!(o, "workers: {} on lcores {:?}; max sessions per worker: {}", i.workers, i.lcores, i.max_sessions);
    let _ = writeln!(o, "services: {} (generation {}) from {}", i.services, i.generation, if i.services_file.is_empty() { "-" } else { &i.services_file });
    let _ = writeln!(o, "api socket: {}; metrics: {}", i.api_socket, if i.metrics_listen.is_empty() { "off" } else { &i.metrics_listen });
    for p in &i.ports {
        let _ = writeln!(
            o,
            "port {} ({}) mac {} link {} addresses {}{}",
            p.name,
            p.device,
            p.mac,
            if p.link_up { "up" } else { "down" },
            p.addresses.join(" "),
            if p.kernel_tap.is_empty() { String::new() } else { format!(" tap {}", p.kernel_tap) }
        );
    }
    o
}

/// `lbctl allow|deny list` and `lbctl flow list`: one line per service.
pub fn service_lines(list: &[pb::Service], f: impl Fn(&pb::Service) -> String) -> String {
    let mut o = String::new();
    for s in list {
        let _ = writeln!(o, "{:<28} {}", svc_name(s, true), f(s));
    }
    o
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
