//! Snapshot tests: the tables exactly as printed (ipvsadm's trailing blanks included, shown
//! here by `$` at line ends).

use super::*;

fn fmt(view: ListView) -> ListFmt {
    ListFmt { view, numeric: true, ..Default::default() }
}

fn shown(s: &str) -> String {
    s.lines().map(|l| format!("{l}$\n")).collect()
}

fn demo() -> Vec<pb::Service> {
    let counters = |a, i, pin, pout| Some(pb::ConnCounters { active_conns: a, inactive_conns: i, pkts_in: pin, pkts_out: pout, conns: a + i, ..Default::default() });
    vec![
        pb::Service {
            key: Some(pb::ServiceKey { vip: "10.70.1.100".into(), port: 80, protocol: pb::Protocol::Tcp as i32 }),
            scheduler: pb::Scheduler::Rr as i32,
            forward: pb::ForwardMode::Fnat as i32,
            laddr_group: "laddr_g1".into(),
            real_servers: vec![
                pb::RealServer { addr: "10.70.2.11".into(), port: 80, weight: 1, stats: counters(3, 12, 1234, 1200), ..Default::default() },
                pb::RealServer { addr: "10.70.2.12".into(), port: 80, weight: 1, stats: counters(0, 0, 0, 0), ..Default::default() },
            ],
            stats: counters(3, 12, 123_456_789, 1200),
            ..Default::default()
        },
        pb::Service {
            key: Some(pb::ServiceKey { vip: "10.70.1.100".into(), port: 53, protocol: pb::Protocol::Udp as i32 }),
            scheduler: pb::Scheduler::Wlc as i32,
            forward: pb::ForwardMode::Dr as i32,
            persistence: Some(pb::Persistence { timeout_s: 360, netmask: "255.255.255.0".into() }),
            real_servers: vec![pb::RealServer { addr: "10.70.2.11".into(), port: 5353, weight: 100, ..Default::default() }],
            ..Default::default()
        },
    ]
}

#[test]
fn list_numeric_is_ipvsadm_layout() {
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port Scheduler Flags$
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
TCP  10.70.1.100:80 rr$
  -> 10.70.2.11:80                FullNat 1      3          12        $
  -> 10.70.2.12:80                FullNat 1      0          0         $
UDP  10.70.1.100:53 wlc persistent 360 mask 255.255.255.0$
  -> 10.70.2.11:5353              Route   100    0          0         $
";
    assert_eq!(shown(&services(&demo(), fmt(ListView::Services), &[])), want);
}

#[test]
fn synproxy_follows_the_persistence_flags_as_dpvs_prints_it() {
    let mut list = demo();
    list[0].syn_proxy = true;
    list[0].persistence = Some(pb::Persistence { timeout_s: 60, netmask: String::new() });
    let got = services(&list, fmt(ListView::Services), &[]);
    assert!(got.contains("\nTCP  10.70.1.100:80 rr persistent 60 synproxy\n"), "{got}");
    assert!(got.contains("\nUDP  10.70.1.100:53 wlc persistent 360 mask 255.255.255.0\n"), "{got}");
    // Only the service line: the stats view keeps its columns.
    assert!(!services(&list, fmt(ListView::Stats), &[]).contains("synproxy"));
    let j = crate::json::services(&list);
    assert_eq!((j["services"][0]["syn_proxy"].as_bool(), j["services"][1]["syn_proxy"].as_bool()), (Some(true), Some(false)));
}

#[test]
fn the_brief_example_matches_once_trailing_blanks_go() {
    let mut s = demo();
    s.truncate(1);
    s[0].real_servers.truncate(1);
    s[0].real_servers[0].stats = None;
    let got: Vec<String> = services(&s, fmt(ListView::Services), &[]).lines().map(|l| l.trim_end().to_owned()).collect();
    assert_eq!(
        got.join("\n"),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.70.1.100:80 rr
  -> 10.70.2.11:80                FullNat 1      0          0"
    );
}

#[test]
fn stats_rate_and_thresholds() {
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes$
  -> RemoteAddress:Port$
TCP  10.70.1.100:80                     15  123456K     1200        0        0$
  -> 10.70.2.11:80                      15     1234     1200        0        0$
  -> 10.70.2.12:80                       0        0        0        0        0$
UDP  10.70.1.100:53                      0        0        0        0        0$
  -> 10.70.2.11:5353                     0        0        0        0        0$
";
    assert_eq!(shown(&services(&demo(), fmt(ListView::Stats), &[])), want);
    let rates = vec![(Rate { cps: 0, inpps: 7, outpps: 6, inbps: 0, outbps: 0 }, vec![Rate { inpps: 7, outpps: 6, ..Rate::default() }, Rate::default()])];
    let got = services(&demo()[..1], fmt(ListView::Rate), &rates);
    assert_eq!(
        shown(&got),
        "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS$
  -> RemoteAddress:Port$
TCP  10.70.1.100:80                      0        7        6        0        0$
  -> 10.70.2.11:80                       0        7        6        0        0$
  -> 10.70.2.12:80                       0        0        0        0        0$
"
    );
    let got = services(&demo()[1..], fmt(ListView::Thresholds), &[]);
    assert_eq!(
        shown(&got),
        "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn $
  -> RemoteAddress:Port$
UDP  10.70.1.100:53 wlc persistent 360 mask 255.255.255.0$
  -> 10.70.2.11:5353              0          0          0          0         $
"
    );
}

#[test]
fn large_numbers_shrink_as_ipvsadm_does() {
    assert_eq!(largenum(99_999_999, false), " 99999999");
    assert_eq!(largenum(100_000_000, false), "  100000K");
    assert_eq!(largenum(1_500_000_000, false), "    1500M");
    assert_eq!(largenum(200_000_000_000, false), "     200G");
    // --exact: ipvsadm's "%*llu" with width 9, or the digits plus one.
    assert_eq!(largenum(99_999_999, true), " 99999999");
    assert_eq!(largenum(100_000_000, true), " 100000000");
    assert_eq!(largenum(200_000_000_000, true), " 200000000000");
}

#[test]
fn connections_and_timeouts() {
    let s = pb::Session {
        protocol: pb::Protocol::Tcp as i32,
        state: "ESTABLISHED".into(),
        expires_in_s: 899,
        client: "10.70.1.10:40000".into(),
        vip: "10.70.1.100:80".into(),
        laddr: "10.70.2.100:1026".into(),
        real_server: "10.70.2.11:80".into(),
        ..Default::default()
    };
    assert_eq!(
        shown(&connections(std::slice::from_ref(&s), true, false)),
        "\
IPVS connection entries$
pro expire state       source             virtual            destination$
TCP 14:59  ESTABLISHED 10.70.1.10:40000   10.70.1.100:80     10.70.2.11:80$
"
    );
    // ipvsadm's "%-6s" expire column: wider values push the rest, as ipvsadm's do.
    let long = pb::Session { expires_in_s: 100 * 60 + 1, ..s.clone() };
    assert!(connections(&[long], true, false).ends_with("\nTCP 100:01 ESTABLISHED 10.70.1.10:40000   10.70.1.100:80     10.70.2.11:80\n"));
    // --persistent-conn: the engine columns in the header; entries without engine data
    // keep the plain layout.
    assert_eq!(
        shown(&connections(std::slice::from_ref(&s), true, true)),
        "\
IPVS connection entries$
pro expire state       source             virtual            destination        pe name          pe_data$
TCP 14:59  ESTABLISHED 10.70.1.10:40000   10.70.1.100:80     10.70.2.11:80$
"
    );
    assert_eq!(timeouts(&pb::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }), "Timeout (tcp tcpfin udp): 900 120 300\n");
    let t = sessions(&[s], 3);
    assert!(t.lines().nth(1).unwrap().starts_with("TCP  ESTABLISHED     899 10.70.1.10:40000      10.70.1.100:80        10.70.2.100:1026      10.70.2.11:80"), "{t}");
    assert!(t.ends_with("(1 of 3 matching sessions shown; raise --limit)\n"), "{t}");
}

#[test]
fn laddr_groups_table() {
    let g = pb::LocalAddressGroup {
        name: "lg".into(),
        addrs: vec![pb::LocalAddress { addr: "10.70.2.100".into(), ifname: "lan".into() }, pb::LocalAddress { addr: "10.70.2.101".into(), ifname: String::new() }],
        used_by: vec![pb::ServiceKey { vip: "10.70.1.100".into(), port: 80, protocol: 1 }],
    };
    assert_eq!(
        groups(&[g]),
        "\
Group            Address          Ifname     UsedBy
lg               10.70.2.100      lan        TCP 10.70.1.100:80
lg               10.70.2.101      -          
"
    );
}

fn with_health() -> Vec<pb::Service> {
    let rs = |last: u8, health: pb::HealthState, inhibited: bool, eff: u32| pb::RealServer {
        addr: format!("10.70.2.{last}"),
        port: 80,
        weight: 2,
        effective_weight: eff,
        health: health as i32,
        inhibited,
        checker: if health == pb::HealthState::Unchecked { String::new() } else { "TCP_CHECK".into() },
        health_since_unix_ms: if health == pb::HealthState::Unchecked { 0 } else { 1_000_000 },
        last_error: if health == pb::HealthState::Down { "connect: connection refused".into() } else { String::new() },
        ..Default::default()
    };
    vec![pb::Service {
        key: Some(pb::ServiceKey { vip: "10.70.1.100".into(), port: 80, protocol: pb::Protocol::Tcp as i32 }),
        scheduler: pb::Scheduler::Wrr as i32,
        forward: pb::ForwardMode::Fnat as i32,
        quorum_up: true,
        real_servers: vec![
            rs(11, pb::HealthState::Up, false, 7),
            rs(12, pb::HealthState::Down, false, 0),
            rs(13, pb::HealthState::Down, true, 0),
            rs(14, pb::HealthState::Unchecked, false, 2),
        ],
        ..Default::default()
    }]
}

#[test]
fn list_hides_down_servers_and_shows_inhibited_ones_with_weight_zero() {
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port Scheduler Flags$
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
TCP  10.70.1.100:80 wrr$
  -> 10.70.2.11:80                FullNat 7      0          0         $
  -> 10.70.2.13:80                FullNat 0      0          0         $
  -> 10.70.2.14:80                FullNat 2      0          0         $
";
    assert_eq!(shown(&services(&with_health(), fmt(ListView::Services), &[])), want);
    // Quorum lost with a sorry server: the sorry server instead of the real servers.
    let mut s = with_health();
    s[0].quorum_up = false;
    s[0].sorry_server = "10.70.2.99:8080".into();
    let got = services(&s, fmt(ListView::Services), &[]);
    assert!(got.ends_with("TCP  10.70.1.100:80 wrr\n  -> 10.70.2.13:80                FullNat 0      0          0         \n  -> 10.70.2.99:8080              FullNat 1      0          0         \n"), "{got}");
}

#[test]
fn rs_list_shows_health() {
    let got = real_servers(&with_health(), 1_000_000 + 185_000);
    assert_eq!(
        got,
        "\
Service                  RealServer            Weight Effective Health      Since Checker    LastError
TCP 10.70.1.100:80       10.70.2.11:80              2         7 up          3m05s TCP_CHECK  
TCP 10.70.1.100:80       10.70.2.12:80              2         0 down        3m05s TCP_CHECK  connect: connection refused
TCP 10.70.1.100:80       10.70.2.13:80              2         0 down*       3m05s TCP_CHECK  connect: connection refused
TCP 10.70.1.100:80       10.70.2.14:80              2         2 unchecked       - -          
(* down, kept with weight 0: inhibit_on_failure)
"
    );
    assert_eq!((age(1, 1 + 42_000), age(1, 1 + 7_380_000), age(1, 1 + 2 * 86_400_000 + 3_600_000), age(0, 5)), ("42s".into(), "2h03m".into(), "2d01h".into(), "-".into()));
    let j = crate::json::service(&with_health()[0]);
    assert_eq!(j["real_servers"][1]["health"], "down");
    assert_eq!(j["real_servers"][1]["last_error"], "connect: connection refused");
    assert_eq!(j["real_servers"][3]["checker"], serde_json::Value::Null);
    assert_eq!(j["real_servers"][2]["inhibited"], true);
}

/// ipvsadm 1.31 sorts services by protocol number, address and port, and real servers by
/// address and port (numerically, not as text); `--nosort` keeps lbd's order. The service
/// lines of every non-counter view carry the scheduler flags in parentheses.
#[test]
fn sorted_as_ipvsadm_sorts_and_nosort_keeps_the_order() {
    let svc = |vip: &str, port, proto: pb::Protocol, rs: &[(&str, u32)]| pb::Service {
        key: Some(pb::ServiceKey { vip: vip.into(), port, protocol: proto as i32 }),
        scheduler: pb::Scheduler::Sh as i32,
        forward: pb::ForwardMode::Dr as i32,
        real_servers: rs.iter().map(|(a, p)| pb::RealServer { addr: (*a).into(), port: *p, weight: 1, ..Default::default() }).collect(),
        ..Default::default()
    };
    let list = vec![
        svc("10.0.0.1", 53, pb::Protocol::Udp, &[("10.0.1.2", 53)]),
        svc("10.70.1.100", 80, pb::Protocol::Tcp, &[("10.70.2.100", 80), ("10.70.2.9", 80), ("10.70.2.9", 8)]),
        svc("10.70.1.9", 443, pb::Protocol::Tcp, &[]),
        pb::Service { hash_port: true, ..svc("10.70.1.100", 22, pb::Protocol::Tcp, &[]) },
    ];
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port Scheduler Flags$
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
TCP  10.70.1.9:443 sh$
TCP  10.70.1.100:22 sh (sh-port)$
TCP  10.70.1.100:80 sh$
  -> 10.70.2.9:8                  Route   1      0          0         $
  -> 10.70.2.9:80                 Route   1      0          0         $
  -> 10.70.2.100:80               Route   1      0          0         $
UDP  10.0.0.1:53 sh$
  -> 10.0.1.2:53                  Route   1      0          0         $
";
    assert_eq!(shown(&services(&list, fmt(ListView::Services), &[])), want);
    let got = services(&list, ListFmt { nosort: true, ..fmt(ListView::Services) }, &[]);
    let order: Vec<&str> = got.lines().skip(3).map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(order, ["10.0.0.1:53", "10.0.1.2:53", "10.70.1.100:80", "10.70.2.100:80", "10.70.2.9:80", "10.70.2.9:8", "10.70.1.9:443", "10.70.1.100:22"]);
    // -S sorts the same way (ipvsadm-save is -S).
    let rules = crate::rules::save(&[], &list, None, true, false);
    let lines: Vec<&str> = rules.lines().collect();
    assert_eq!(lines[0], "-A -t 10.70.1.9:443 -s sh --forward dr");
    assert_eq!(lines[1], "-A -t 10.70.1.100:22 -s sh -b sh-port --forward dr");
    assert_eq!(lines[3], "-a -t 10.70.1.100:80 -r 10.70.2.9:8 -g -w 1");
    // mh says mh-port, the others flag-2, as print_sched_flags does.
    let mh = pb::Service { scheduler: pb::Scheduler::Mh as i32, ..list[3].clone() };
    let rr = pb::Service { scheduler: pb::Scheduler::Rr as i32, ..list[3].clone() };
    assert!(services(&[mh], fmt(ListView::Services), &[]).contains("\nTCP  10.70.1.100:22 mh (mh-port)\n"));
    assert!(services(&[rr], fmt(ListView::Thresholds), &[]).contains("\nTCP  10.70.1.100:22 rr (flag-2)\n"));
}

/// `-L -t VIP:PORT`: ipvsadm's `list_service` prints the title and the one service, without
/// the version line `list_all` starts with.
#[test]
fn one_service_has_no_version_line() {
    let got = services(&demo()[..1], ListFmt { one_service: true, ..fmt(ListView::Stats) }, &[]);
    assert!(got.starts_with("Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"), "{got}");
    assert!(services(&demo()[..1], fmt(ListView::Stats), &[]).starts_with(HEADER));
}

/// `--persistent-conn`: ipvsadm's title and "%-9u %-11u %-10u %-10u" real-server lines; the
/// counter views win over it, as in ipvsadm's print_title.
#[test]
fn persistent_conn_view() {
    let mut list = demo();
    list[1].real_servers[0].stats = Some(pb::ConnCounters { persistent_conns: 7, active_conns: 2, inactive_conns: 1, ..Default::default() });
    let got = services(&list[1..], ListFmt { persistent_conn: true, ..fmt(ListView::Services) }, &[]);
    assert_eq!(
        shown(&got),
        "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn $
  -> RemoteAddress:Port$
UDP  10.70.1.100:53 wlc persistent 360 mask 255.255.255.0$
  -> 10.70.2.11:5353              100       7           2          1         $
"
    );
    let stats = services(&list, ListFmt { persistent_conn: true, ..fmt(ListView::Stats) }, &[]);
    assert_eq!(stats, services(&list, fmt(ListView::Stats), &[]));
}

/// --rate: the service line prints all five figures with print_largenum, the real-server
/// line its first three with "%8llu" (so a large CPS shrinks only on the service line).
#[test]
fn rate_lines_use_ipvsadm_number_formats() {
    let rates = vec![(Rate { cps: 150_000_000, ..Rate::default() }, vec![Rate { cps: 150_000_000, ..Rate::default() }, Rate::default()])];
    let got = services(&demo()[..1], fmt(ListView::Rate), &rates);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[3], "TCP  10.70.1.100:80                150000K        0        0        0        0");
    assert_eq!(lines[4], "  -> 10.70.2.11:80                150000000        0        0        0        0");
    let exact = services(&demo()[..1], ListFmt { exact: true, ..fmt(ListView::Rate) }, &rates);
    assert_eq!(exact.lines().nth(3).unwrap(), "TCP  10.70.1.100:80               150000000        0        0        0        0");
}
