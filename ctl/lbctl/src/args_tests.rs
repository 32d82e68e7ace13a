//! Command-line parsing: ipvsadm spellings and noun-verb commands.

use super::*;

fn p(line: &str) -> Result<(Globals, Command), UsageError> {
    let v: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    parse(&v)
}

fn cmd(line: &str) -> Command {
    p(line).unwrap_or_else(|e| panic!("{line}: {e}")).1
}

fn err(line: &str) -> String {
    p(line).unwrap_err().0
}

fn key(vip: &str, port: u32, proto: Protocol) -> pb::ServiceKey {
    pb::ServiceKey { vip: vip.into(), port, protocol: proto as i32 }
}

#[test]
fn list_spellings() {
    for l in ["-Ln", "-L -n", "-l -n", "--list --numeric", "-nL", "service list -n"] {
        let (g, c) = p(l).unwrap();
        assert!(g.numeric, "{l}");
        assert_eq!(c, Command::List { view: ListView::Services, service: None }, "{l}");
    }
    assert_eq!(cmd("-L --stats"), Command::List { view: ListView::Stats, service: None });
    assert_eq!(cmd("-Ln --rate"), Command::List { view: ListView::Rate, service: None });
    assert_eq!(cmd("-L --thresholds"), Command::List { view: ListView::Thresholds, service: None });
    assert_eq!(cmd("-L --timeout"), Command::List { view: ListView::Timeout, service: None });
    assert_eq!(cmd("-L -t 10.0.0.1:80"), Command::List { view: ListView::Services, service: Some(key("10.0.0.1", 80, Protocol::Tcp)) });
    assert!(matches!(cmd("-Lnc"), Command::Sessions(_, true)));
    assert!(matches!(cmd("-lnc"), Command::Sessions(_, true)));
    assert!(p("-L -o json").unwrap().0.json);
    assert_eq!(cmd(""), Command::Help);
    assert_eq!(cmd("-h"), Command::Help);
}

#[test]
fn services_as_ipvsadm_writes_them() {
    let Command::AddService(so) = cmd("-A -t 10.70.1.100:80 -s rr -p 600 -M 255.255.255.0 --laddr-group lg") else { panic!() };
    assert_eq!(so.key, key("10.70.1.100", 80, Protocol::Tcp));
    assert_eq!(so.scheduler, Some(pb::Scheduler::Rr));
    assert_eq!(so.persistence, Some(Some(600)));
    assert_eq!(so.netmask.as_deref(), Some("255.255.255.0"));
    assert_eq!(so.laddr_group.as_deref(), Some("lg"));
    // -p alone: ipvsadm's 300 s; no -s: wlc.
    let Command::AddService(so) = cmd("-A -u 10.0.0.1:53 -p") else { panic!() };
    assert_eq!((so.persistence, so.scheduler), (Some(Some(300)), Some(pb::Scheduler::Wlc)));
    assert_eq!(so.key.protocol, Protocol::Udp as i32);
    // -E sends only what is given.
    let Command::EditService(so) = cmd("-E -t 10.0.0.1:80 --cps 100") else { panic!() };
    assert_eq!((so.scheduler, so.cps), (None, Some(100)));
    assert_eq!(cmd("-D -t 10.0.0.1:80"), Command::DeleteService(key("10.0.0.1", 80, Protocol::Tcp)));
    assert_eq!(cmd("--clear"), Command::Clear);
    let Command::AddService(so) = cmd("service add -t 10.0.0.1:http -s wrr --allow 10.0.0.0/8 --allow 10.1.0.0/16") else { panic!() };
    assert_eq!(so.allow.unwrap().len(), 2);
}

#[test]
fn synproxy_as_dpvs_ipvsadm_spells_it() {
    let Command::AddService(so) = cmd("-A -t 10.0.0.1:80 -s rr -j enable") else { panic!() };
    assert_eq!(so.syn_proxy, Some(true));
    let Command::EditService(so) = cmd("-E -t 10.0.0.1:80 --synproxy disable") else { panic!() };
    assert_eq!((so.syn_proxy, so.scheduler), (Some(false), None));
    let Command::EditService(so) = cmd("-E -t 10.0.0.1:80 --synproxy=enable") else { panic!() };
    assert_eq!(so.syn_proxy, Some(true));
    let Command::AddService(so) = cmd("service add -t 10.0.0.1:80 -j enable") else { panic!() };
    assert_eq!(so.syn_proxy, Some(true));
    // Not given: unchanged on -E, off on -A.
    let Command::EditService(so) = cmd("-E -t 10.0.0.1:80 -s wrr") else { panic!() };
    assert_eq!(so.syn_proxy, None);
    assert_eq!(err("-A -t 10.0.0.1:80 -j on"), "-j \"on\": the SYN proxy switch is enable or disable");
    assert_eq!(err("-A -t 10.0.0.1:80 -j"), "option -j needs a value");
}

#[test]
fn real_servers_and_forwarding_methods() {
    let Command::AddRs(r) = cmd("-a -t 10.70.1.100:80 -r 10.70.2.11:8080 -b -w 3") else { panic!() };
    assert_eq!((r.addr.as_str(), r.port, r.weight, r.forward), ("10.70.2.11", 8080, Some(3), Some(ForwardMode::Fnat)));
    let Command::AddRs(r) = cmd("-a -t 10.70.1.100:80 -r 10.70.2.11 -g") else { panic!() };
    assert_eq!((r.port, r.weight, r.forward), (80, Some(1), Some(ForwardMode::Dr)));
    let Command::EditRs(r) = cmd("rs edit -t 10.70.1.100:80 -r 10.70.2.11:80 -m -w 0") else { panic!() };
    assert_eq!((r.weight, r.forward), (Some(0), Some(ForwardMode::Nat)));
    assert!(matches!(cmd("-d -t 10.70.1.100:80 -r 10.70.2.11:80"), Command::DeleteRs(_)));
}

#[test]
fn noun_verb_commands() {
    assert_eq!(cmd("laddr add lg 10.0.0.1 10.0.0.2 --ifname lan"), Command::LaddrAdd { to: LaddrOf::Group("lg".into()), addrs: vec!["10.0.0.1".into(), "10.0.0.2".into()], ifname: Some("lan".into()) });
    assert_eq!(cmd("laddr del lg"), Command::LaddrDel { from: LaddrOf::Group("lg".into()), addrs: vec![] });
    // DPVS's ipvsadm: the service's own local addresses.
    let k = pb::ServiceKey { vip: "10.0.1.100".into(), port: 80, protocol: Protocol::Tcp as i32 };
    assert_eq!(cmd("-P -t 10.0.1.100:80 -z 10.0.2.201 -F lan"), Command::LaddrAdd { to: LaddrOf::Service(k.clone()), addrs: vec!["10.0.2.201".into()], ifname: Some("lan".into()) });
    assert_eq!(cmd("--del-laddr -t 10.0.1.100:80 --laddr 10.0.2.201"), Command::LaddrDel { from: LaddrOf::Service(k.clone()), addrs: vec!["10.0.2.201".into()] });
    assert_eq!(cmd("-G"), Command::LaddrGet { service: None });
    assert_eq!(cmd("--get-laddr -t 10.0.1.100:80"), Command::LaddrGet { service: Some(k) });
    assert_eq!(err("-P -t 10.0.1.100:80"), "-P needs a local address: -z addr");
    assert_eq!(err("-P -z 10.0.2.201"), "-P needs a service: -t|-u vip:port");
    assert_eq!(err("-A -t 10.0.1.100:80 -z 10.0.2.201"), "-A: -z|--laddr goes with -P|--add-laddr or -Q|--del-laddr");
    assert_eq!(err("-Q -t 10.0.1.100:80 -z 10.0.2.201 -F lan"), "-Q: -F|--ifname goes with -P|--add-laddr (or laddr add)");
    assert_eq!(cmd("laddr list"), Command::LaddrList);
    assert_eq!(cmd("rs list"), Command::RsList { service: None });
    assert!(matches!(cmd("rs list -t 10.0.0.1:80"), Command::RsList { service: Some(_) }));
    let Command::Sessions(r, false) = cmd("session list -t 10.0.0.1:80 --client 1.2.3.4 --state ESTABLISHED --limit 5") else { panic!() };
    assert_eq!((r.client.as_str(), r.state.as_str(), r.limit), ("1.2.3.4", "ESTABLISHED", 5));
    assert_eq!(r.service, Some(key("10.0.0.1", 80, Protocol::Tcp)));
    assert_eq!(cmd("stats --services"), Command::Stats { services: true });
    assert_eq!(
        cmd("allow add -t 10.0.0.1:80 10.0.0.0/8"),
        Command::Access { list: AccessList::Allow, op: Op::Add, service: Some(key("10.0.0.1", 80, Protocol::Tcp)), cidrs: vec!["10.0.0.0/8".into()] }
    );
    assert_eq!(cmd("deny list"), Command::Access { list: AccessList::Deny, op: Op::List, service: None, cidrs: vec![] });
    assert_eq!(
        cmd("flow set -t 10.0.0.1:80 --cps 10 --max-conns 5"),
        Command::FlowSet { service: key("10.0.0.1", 80, Protocol::Tcp), cps: Some(10), interval: None, max_conns: Some(5) }
    );
    assert_eq!(cmd("timeout set 900 0 300"), Command::SetTimeouts(900, 0, 300));
    assert_eq!(cmd("--set 900 120 300"), Command::SetTimeouts(900, 120, 300));
    assert_eq!(cmd("reload"), Command::Reload);
    assert_eq!(cmd("info -o json"), Command::Info);
    assert_eq!(cmd("vrrp"), Command::Vrrp);
    assert_eq!(cmd("vrrp list -o json"), Command::Vrrp);
    assert_eq!(cmd("top --once --interval 2"), Command::Top { once: true, interval_s: 2 });
    assert_eq!(cmd("-S -n"), Command::SaveRules);
    assert_eq!(cmd("-R"), Command::Restore);
    let (g, _) = p("--socket=/tmp/x.sock -Ln").unwrap();
    assert_eq!(g.socket.as_deref(), Some("/tmp/x.sock"));
}

#[test]
fn usage_errors_say_what_is_wrong() {
    assert_eq!(err("-A"), "-A needs a service: -t|-u vip:port");
    assert_eq!(err("-a -t 10.0.0.1:80"), "-a needs a real server: -r addr[:port]");
    assert_eq!(err("-A -t 10.0.0.1:80 -s bogus"), "-s \"bogus\": unknown scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, consh)");
    assert_eq!(err("-A -t 10.0.0.1"), "-t 10.0.0.1: expected addr:port");
    assert_eq!(err("-A -t 10.0.0.1:nosuchservice"), "-t 10.0.0.1:nosuchservice: \"nosuchservice\" is not a port number or a tcp service name");
    assert_eq!(err("-A -D -t 1.2.3.4:80"), "-A and -D cannot be combined");
    assert_eq!(err("-L --bogus"), "unknown option --bogus");
    assert_eq!(err("-a -t 1.2.3.4:80 -r 5.6.7.8 -i"), "-i (IP-in-IP tunnelling) is not supported; use -b (FNAT), -g (DR) or -m (NAT)");
    assert_eq!(err("-w"), "option -w needs a value");
    assert_eq!(err("-L -o yaml"), "-o \"yaml\": the formats are json and table");
    assert_eq!(err("frobnicate"), "unknown command: frobnicate");
    assert_eq!(err("timeout set 1 2"), "timeout set TCP TCPFIN UDP (0 keeps a value)");
    assert_eq!(err("-L extra"), "-L: unexpected argument \"extra\"");
    assert_eq!(err("vrrp list VI_1"), "vrrp: unexpected argument \"VI_1\"");
}

fn sync_daemon(role: pb::SyncRole, ifname: &str) -> pb::SyncDaemon {
    pb::SyncDaemon { role: role as i32, mcast_interface: ifname.into(), ..Default::default() }
}

#[test]
fn sync_daemons_as_ipvsadm_spells_them() {
    // Options left out are sent as 0 or empty: lbd applies LVS's defaults.
    assert_eq!(cmd("--start-daemon master --mcast-interface eth0"), Command::StartDaemon(sync_daemon(pb::SyncRole::Master, "eth0")));
    assert_eq!(cmd("--start-daemon=backup --mcast-interface=lan"), Command::StartDaemon(sync_daemon(pb::SyncRole::Backup, "lan")));
    let want = pb::SyncDaemon { syncid: Some(7), maxlen: 1400, group: "239.1.1.1".into(), port: 8849, ttl: 2, ..sync_daemon(pb::SyncRole::Backup, "eth1") };
    let line = "--start-daemon backup --mcast-interface eth1 --syncid 7 --sync-maxlen 1400 --mcast-group 239.1.1.1 --mcast-port 8849 --mcast-ttl 2";
    assert_eq!(cmd(line), Command::StartDaemon(want.clone()));
    assert_eq!(cmd("--syncid=7 --mcast-ttl=2 --mcast-port=8849 --sync-maxlen=1400 --mcast-group=239.1.1.1 --mcast-interface=eth1 --start-daemon=backup"), Command::StartDaemon(want.clone()));
    assert_eq!(cmd("sync start backup --mcast-interface eth1 --syncid 7 --sync-maxlen 1400 --mcast-group 239.1.1.1 --mcast-port 8849 --mcast-ttl 2"), Command::StartDaemon(want));
    // The range ends are accepted; syncid 0 is LVS's "any" on a backup.
    let Command::StartDaemon(d) = cmd("--start-daemon backup --mcast-interface eth0 --syncid 0 --sync-maxlen 65507 --mcast-port 65535 --mcast-ttl 255") else { panic!() };
    assert_eq!((d.syncid, d.maxlen, d.port, d.ttl), (Some(0), 65_507, 65_535, 255));
    assert_eq!(cmd("--stop-daemon master"), Command::StopDaemon(pb::SyncRole::Master));
    assert_eq!(cmd("--stop-daemon=backup"), Command::StopDaemon(pb::SyncRole::Backup));
    assert_eq!(cmd("sync stop backup"), Command::StopDaemon(pb::SyncRole::Backup));
    assert_eq!(cmd("sync stop"), Command::StopDaemon(pb::SyncRole::Unspecified));
    for l in ["-L --daemon", "-l --daemon", "--list --daemon", "-Ln --daemon", "--daemon -L", "sync", "sync list", "sync show"] {
        assert_eq!(cmd(l), Command::ListDaemons, "{l}");
    }
    assert!(p("-L --daemon -o json").unwrap().0.json);
}

#[test]
fn sync_daemon_errors() {
    assert_eq!(err("--start-daemon master"), "--start-daemon needs --mcast-interface IF");
    assert_eq!(err("sync start backup"), "--start-daemon needs --mcast-interface IF");
    assert_eq!(err("--start-daemon primary --mcast-interface eth0"), "--start-daemon \"primary\": the roles are master and backup");
    assert_eq!(err("--start-daemon MASTER --mcast-interface eth0"), "--start-daemon \"MASTER\": the roles are master and backup");
    assert_eq!(err("--stop-daemon both"), "--stop-daemon \"both\": the roles are master and backup");
    assert_eq!(err("sync stop all"), "sync stop \"all\": the roles are master and backup");
    assert_eq!(err("sync start --mcast-interface eth0"), "sync start master|backup --mcast-interface IF [...]");
    assert_eq!(err("sync start master backup"), "sync start: unexpected argument \"backup\"");
    assert_eq!(err("sync list x"), "sync list: unexpected argument \"x\"");
    assert_eq!(err("--start-daemon"), "option --start-daemon needs a value");
    assert_eq!(err("--stop-daemon"), "option --stop-daemon needs a value");
    assert_eq!(err("--start-daemon master --mcast-interface"), "option --mcast-interface needs a value");
    assert_eq!(err("--start-daemon master --stop-daemon backup"), "--start-daemon and --stop-daemon cannot be combined");
    let start = "--start-daemon master --mcast-interface eth0";
    for (opt, msg) in [
        ("--syncid 256", "--syncid 256: not in 0..=255"),
        ("--syncid x", "option --syncid: \"x\" is not a number"),
        ("--sync-maxlen 79", "--sync-maxlen 79: not in 80..=65507"),
        ("--sync-maxlen 65508", "--sync-maxlen 65508: not in 80..=65507"),
        ("--mcast-port 0", "--mcast-port 0: not in 1..=65535"),
        ("--mcast-port 65536", "--mcast-port 65536: not in 1..=65535"),
        ("--mcast-ttl 0", "--mcast-ttl 0: not in 1..=255"),
        ("--mcast-ttl 256", "--mcast-ttl 256: not in 1..=255"),
        ("--mcast-group 10.0.0.1", "--mcast-group 10.0.0.1: not an IPv4 multicast address"),
        ("--mcast-group ff02::1", "--mcast-group ff02::1: not an IPv4 multicast address"),
        ("--mcast-group", "option --mcast-group needs a value"),
    ] {
        assert_eq!(err(&format!("{start} {opt}")), msg, "{opt}");
    }
    // Daemon options belong to --start-daemon, --daemon to -L.
    assert_eq!(err("--stop-daemon master --mcast-interface eth0"), "--mcast-interface goes with --start-daemon");
    assert_eq!(err("-L --daemon --syncid 3"), "--syncid goes with --start-daemon");
    assert_eq!(err("-A -t 10.0.0.1:80 --mcast-ttl 2"), "--mcast-ttl goes with --start-daemon");
    assert_eq!(err("--start-daemon master --mcast-interface eth0 --daemon"), "--start-daemon: --daemon goes with -L (lbctl -L --daemon)");
    assert_eq!(err("-Z --daemon"), "-Z: --daemon goes with -L (lbctl -L --daemon)");
}

#[test]
fn exact_is_a_listing_format_flag() {
    let (g, c) = p("-Ln --stats --exact").unwrap();
    assert!(g.exact && g.numeric);
    assert_eq!(c, Command::List { view: ListView::Stats, service: None });
    assert!(!p("-Ln --stats").unwrap().0.exact);
}

#[test]
fn nosort_and_persistent_conn_are_listing_format_flags() {
    let (g, c) = p("-Ln --nosort --persistent-conn").unwrap();
    assert!(g.nosort && g.persistent_conn);
    assert_eq!(c, Command::List { view: ListView::Services, service: None });
    let (g, _) = p("-Ln").unwrap();
    assert!(!g.nosort && !g.persistent_conn, "ipvsadm sorts by default");
    assert!(p("-Lnc --persistent-conn").unwrap().0.persistent_conn);
}

/// ipvsadm 1.31's `-b` takes scheduler flags on -A/-E; DPVS's `-b` (no value) is FNAT.
#[test]
fn dash_b_is_sched_flags_when_flags_follow_and_fullnat_otherwise() {
    let Command::AddService(so) = cmd("-A -t 10.0.0.1:80 -s sh -b sh-port") else { panic!() };
    assert_eq!((so.hash_port, so.forward), (Some(true), None));
    let Command::AddService(so) = cmd("-A -t 10.0.0.1:80 -s mh --sched-flags mh-fallback,mh-port") else { panic!() };
    assert_eq!(so.hash_port, Some(true));
    let Command::AddService(so) = cmd("-A -t 10.0.0.1:80 -s sh -b sh-fallback") else { panic!() };
    assert_eq!(so.hash_port, Some(false), "fallback alone: no port hashing");
    let Command::AddRs(r) = cmd("-a -t 10.0.0.1:80 -r 10.0.1.1 -b -w 2") else { panic!() };
    assert_eq!((r.forward, r.weight), (Some(ForwardMode::Fnat), Some(2)));
    assert_eq!(err("-A -t 10.0.0.1:80 --sched-flags sh-bogus"), "--sched-flags \"sh-bogus\": scheduler flags are sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2, flag-3");
}
