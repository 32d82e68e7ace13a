//! `-S` rules (ipvsadm lines, plus `laddr add` lines and lbctl's service options for what
//! ipvsadm cannot say) and `-R`, which reads them back into one atomic `Apply`.

use std::fmt::Write as _;

use lb_api::pb::{self, ForwardMode};

use crate::args::{self, Command, LaddrOf, RsOpts, ServiceOpts, UsageError};
use crate::names::addr_port;

fn svc_flag(k: &pb::ServiceKey) -> &'static str {
    if k.protocol == pb::Protocol::Udp as i32 {
        "-u"
    } else {
        "-t"
    }
}

fn fwd_switch(f: i32) -> &'static str {
    match ForwardMode::try_from(f) {
        Ok(ForwardMode::Dr) => "-g",
        Ok(ForwardMode::Nat) => "-m",
        _ => "-b",
    }
}

/// The running configuration as lines `lbctl -R` (and, for plain services, `ipvsadm -R`) reads.
/// Services and their real servers come in ipvsadm's sorted order unless `nosort`.
pub fn save(groups: &[pb::LocalAddressGroup], services: &[pb::Service], timeouts: Option<&pb::Timeouts>, numeric: bool, nosort: bool) -> String {
    let mut o = String::new();
    for g in groups {
        for a in &g.addrs {
            let _ = write!(o, "laddr add {} {}", g.name, a.addr);
            if !a.ifname.is_empty() {
                let _ = write!(o, " --ifname {}", a.ifname);
            }
            o.push('\n');
        }
    }
    for i in crate::table::service_order(services, nosort) {
        let s = &services[i];
        let k = s.key.clone().unwrap_or_default();
        let name = format!("{} {}", svc_flag(&k), addr_port(&k.vip, k.port, k.protocol, numeric));
        let _ = write!(o, "-A {name} -s {}", lb_api::scheduler_name(s.scheduler));
        if let Some(p) = &s.persistence {
            let _ = write!(o, " -p {}", p.timeout_s);
            if !p.netmask.is_empty() && p.netmask != "255.255.255.255" {
                let _ = write!(o, " -M {}", p.netmask);
            }
        }
        if s.hash_port {
            // ipvsadm's -S: the flag list after -b.
            let _ = write!(o, " -b {}", match lb_api::scheduler_name(s.scheduler) {
                "sh" => "sh-port",
                "mh" => "mh-port",
                _ => "flag-2",
            });
        }
        if s.forward != ForwardMode::Fnat as i32 && s.forward != ForwardMode::Unspecified as i32 {
            let _ = write!(o, " --forward {}", lb_api::forward_name(s.forward));
        }
        if !s.laddr_group.is_empty() {
            let _ = write!(o, " --laddr-group {}", s.laddr_group);
        }
        let f = s.flow.unwrap_or_default();
        for (opt, v) in [("--cps", f.cps), ("--cps-interval", f.interval_s), ("--max-conns", f.max_conns)] {
            if v != 0 {
                let _ = write!(o, " {opt} {v}");
            }
        }
        for a in &s.allow {
            let _ = write!(o, " --allow {a}");
        }
        for d in &s.deny {
            let _ = write!(o, " --deny {d}");
        }
        if let Some(t) = s.draining_timeout_s {
            let _ = write!(o, " --draining-timeout {t}");
        }
        if !s.sorry_server.is_empty() {
            let _ = write!(o, " --sorry-server {}", s.sorry_server);
        }
        if s.syn_proxy {
            // DPVS's ipvsadm takes it on -A but leaves it out of its own -S.
            o.push_str(" -j enable");
        }
        o.push('\n');
        for j in crate::table::dest_order(s, nosort) {
            let r = &s.real_servers[j];
            let _ = writeln!(o, "-a {name} -r {} {} -w {}", addr_port(&r.addr, r.port, k.protocol, numeric), fwd_switch(s.forward), r.weight);
        }
    }
    if let Some(t) = timeouts {
        let _ = writeln!(o, "--set {} {} {}", t.tcp, t.tcpfin, t.udp);
    }
    o
}

/// A service from `-A` options.
pub fn service_from_opts(so: &ServiceOpts) -> pb::Service {
    let mut s = pb::Service { key: Some(so.key.clone()), ..Default::default() };
    overlay(&mut s, so);
    s
}

/// Applies the options given onto `s`; returns the names of the fields they set (the edit mask).
pub fn overlay(s: &mut pb::Service, so: &ServiceOpts) -> Vec<String> {
    let mut fields = Vec::new();
    let mut set = |f: &str| fields.push(f.to_owned());
    if let Some(sc) = so.scheduler {
        s.scheduler = sc as i32;
        set("scheduler");
    }
    if let Some(f) = so.forward {
        s.forward = f as i32;
        set("forward");
    }
    if so.persistence.is_some() || so.netmask.is_some() {
        match so.persistence {
            Some(None) => s.persistence = None,
            Some(Some(t)) => s.persistence = Some(pb::Persistence { timeout_s: t, netmask: so.netmask.clone().unwrap_or_default() }),
            None => {
                // -M alone changes the mask of a persistent service.
                let p = s.persistence.get_or_insert_with(Default::default);
                p.netmask = so.netmask.clone().unwrap_or_default();
            }
        }
        set("persistence");
    }
    if let Some(g) = &so.laddr_group {
        s.laddr_group = g.clone();
        set("laddr_group");
    }
    if so.cps.is_some() || so.cps_interval.is_some() || so.max_conns.is_some() {
        let f = s.flow.get_or_insert_with(Default::default);
        f.cps = so.cps.unwrap_or(f.cps);
        f.interval_s = so.cps_interval.unwrap_or(f.interval_s);
        f.max_conns = so.max_conns.unwrap_or(f.max_conns);
        set("flow");
    }
    if let Some(a) = &so.allow {
        s.allow = a.clone();
        set("allow");
    }
    if let Some(d) = &so.deny {
        s.deny = d.clone();
        set("deny");
    }
    if let Some(t) = so.draining_timeout {
        s.draining_timeout_s = Some(t);
        set("draining_timeout_s");
    }
    if let Some(ss) = &so.sorry_server {
        s.sorry_server = ss.clone();
        set("sorry_server");
    }
    if let Some(on) = so.hash_port {
        s.hash_port = on;
        set("hash_port");
    }
    if let Some(on) = so.syn_proxy {
        s.syn_proxy = on;
        set("syn_proxy");
    }
    fields
}

fn same_key(a: &pb::ServiceKey, b: &pb::ServiceKey) -> bool {
    a.vip == b.vip && a.port == b.port && a.protocol == b.protocol
}

/// Adds a real server to a service being built; the first one's mode sets the service's.
pub fn add_rs(s: &mut pb::Service, r: &RsOpts) -> Result<(), String> {
    if let Some(f) = r.forward {
        if s.real_servers.is_empty() {
            s.forward = f as i32;
        } else if s.forward != f as i32 && !(f == ForwardMode::Fnat && s.forward == ForwardMode::Unspecified as i32) {
            return Err(format!("{} differs from the service's {}", lb_api::forward_ipvsadm_name(f as i32), lb_api::forward_ipvsadm_name(s.forward)));
        }
    }
    if s.real_servers.iter().any(|x| x.addr == r.addr && x.port == r.port) {
        return Err(format!("real server {}:{} is given twice", r.addr, r.port));
    }
    s.real_servers.push(pb::RealServer { addr: r.addr.clone(), port: r.port, weight: r.weight.unwrap_or(1), ..Default::default() });
    Ok(())
}

/// Reads `-S` output (blank lines and `#` comments allowed) into one `Apply` request.
pub fn restore(text: &str) -> Result<pb::ApplyRequest, UsageError> {
    let mut req = pb::ApplyRequest::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |m: String| UsageError(format!("line {}: {m}", n + 1));
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let (_, cmd) = args::parse(&words).map_err(|e| at(e.0))?;
        match cmd {
            Command::Clear => {
                req.services.clear();
            }
            Command::LaddrAdd { to, addrs, ifname } => {
                let group = match to {
                    LaddrOf::Group(g) => g,
                    // DPVS's `-P -t vip:port -z addr`: the service's group, or one named after it.
                    LaddrOf::Service(k) => {
                        let s = req
                            .services
                            .iter_mut()
                            .find(|s| s.key.as_ref().is_some_and(|x| same_key(x, &k)))
                            .ok_or_else(|| at(format!("-P: service {k} is not added by an earlier -A line")))?;
                        if s.laddr_group.is_empty() {
                            s.laddr_group = lb_api::service_group_name(&k);
                        }
                        s.laddr_group.clone()
                    }
                };
                let idx = match req.groups.iter().position(|g| g.name == group) {
                    Some(i) => i,
                    None => {
                        req.groups.push(pb::LocalAddressGroup { name: group, ..Default::default() });
                        req.groups.len() - 1
                    }
                };
                for a in addrs {
                    req.groups[idx].addrs.push(pb::LocalAddress { addr: a, ifname: ifname.clone().unwrap_or_default() });
                }
            }
            Command::AddService(so) => {
                if req.services.iter().any(|s| s.key.as_ref().is_some_and(|k| same_key(k, &so.key))) {
                    return Err(at(format!("service {} is added twice", so.key)));
                }
                req.services.push(service_from_opts(&so));
            }
            Command::AddRs(r) => {
                let s = req
                    .services
                    .iter_mut()
                    .find(|s| s.key.as_ref().is_some_and(|k| same_key(k, &r.service)))
                    .ok_or_else(|| at(format!("-a: service {} is not added by an earlier -A line", r.service)))?;
                add_rs(s, &r).map_err(at)?;
            }
            Command::SetTimeouts(tcp, tcpfin, udp) => req.timeouts = Some(pb::Timeouts { tcp, tcpfin, udp }),
            _ => return Err(at(format!("{:?} cannot be restored (only -A, -a, -P, -C, --set and laddr add lines)", words[0]))),
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "laddr add lg 10.70.2.100 --ifname lan
laddr add lg 10.70.2.101
-A -t 10.70.1.100:80 -s wrr -p 600 -M 255.255.255.0 --laddr-group lg --cps 100 --cps-interval 2 --max-conns 50 --allow 10.0.0.0/8 --deny 10.9.0.0/16 --draining-timeout 30 --sorry-server 10.70.2.99:80
-a -t 10.70.1.100:80 -r 10.70.2.11:80 -b -w 3
-a -t 10.70.1.100:80 -r 10.70.2.12:80 -b -w 0
-A -u 10.70.1.100:53 -s rr --forward dr
-A -t 10.70.1.101:443 -s mh --forward nat -j enable
-a -t 10.70.1.101:443 -r 10.70.2.11:8443 -m -w 1
--set 900 120 300
";

    #[test]
    fn rules_round_trip_exactly() {
        let req = restore(RULES).unwrap();
        assert_eq!(req.groups.len(), 1);
        assert_eq!(req.groups[0].addrs[0].ifname, "lan");
        assert_eq!(req.services.len(), 3);
        let s = &req.services[0];
        assert_eq!(s.persistence.as_ref().unwrap().netmask, "255.255.255.0");
        assert_eq!(s.flow.unwrap().max_conns, 50);
        assert_eq!(s.real_servers[1].weight, 0);
        assert_eq!(s.forward, ForwardMode::Fnat as i32);
        assert_eq!(req.services[2].forward, ForwardMode::Nat as i32);
        assert_eq!(req.services.iter().map(|s| s.syn_proxy).collect::<Vec<_>>(), [false, false, true]);
        let again = save(&req.groups, &req.services, req.timeouts.as_ref(), true, true);
        assert_eq!(again, RULES);
    }

    /// DPVS's order: the service first, its local addresses after.
    #[test]
    fn dpvs_add_laddr_lines_give_the_service_a_group() {
        let req = restore("-A -t 10.70.1.100:80 -s rr\n-P -t 10.70.1.100:80 -z 10.70.2.100 -F lan\n-P -t 10.70.1.100:80 -z 10.70.2.101\n").unwrap();
        assert_eq!(req.services[0].laddr_group, "tcp-10.70.1.100-80");
        assert_eq!(req.groups.len(), 1);
        assert_eq!(req.groups[0].name, "tcp-10.70.1.100-80");
        assert_eq!(req.groups[0].addrs.iter().map(|a| (a.addr.as_str(), a.ifname.as_str())).collect::<Vec<_>>(), [("10.70.2.100", "lan"), ("10.70.2.101", "")]);
        assert_eq!(restore("-P -t 10.70.1.100:80 -z 10.70.2.100").unwrap_err().0, "line 1: -P: service TCP 10.70.1.100:80 is not added by an earlier -A line");
    }

    #[test]
    fn bad_lines_name_the_line() {
        assert_eq!(restore("-a -t 1.2.3.4:80 -r 5.6.7.8 -b").unwrap_err().0, "line 1: -a: service TCP 1.2.3.4:80 is not added by an earlier -A line");
        let e = restore("# c\n-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 5.6.7.8 -g\n-a -t 1.2.3.4:80 -r 5.6.7.9 -m\n").unwrap_err().0;
        assert_eq!(e, "line 4: Masq differs from the service's Route");
        assert!(restore("-L -n").unwrap_err().0.starts_with("line 1: \"-L\" cannot be restored"));
        assert!(restore("-A -t 1.2.3.4:80 -s nope").unwrap_err().0.starts_with("line 1: -s \"nope\""));
    }

    #[test]
    fn overlay_names_the_fields_it_sets() {
        let mut s = service_from_opts(&ServiceOpts { key: pb::ServiceKey::default(), scheduler: Some(pb::Scheduler::Rr), max_conns: Some(5), ..Default::default() });
        let f = overlay(&mut s, &ServiceOpts { cps: Some(10), persistence: Some(None), ..Default::default() });
        assert_eq!(f, vec!["persistence", "flow"]);
        assert_eq!(s.flow.unwrap(), pb::FlowControl { cps: 10, interval_s: 0, max_conns: 5 });
        // -E -j: the switch alone, both ways.
        assert_eq!(overlay(&mut s, &ServiceOpts { syn_proxy: Some(true), ..Default::default() }), vec!["syn_proxy"]);
        assert!(s.syn_proxy);
        assert_eq!(overlay(&mut s, &ServiceOpts { syn_proxy: Some(false), ..Default::default() }), vec!["syn_proxy"]);
        assert!(!s.syn_proxy);
    }
}
