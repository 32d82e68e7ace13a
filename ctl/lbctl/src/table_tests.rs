//! Snapshot tests: the tables exactly as printed (ipvsadm's trailing blanks included, shown
//! here by `$` at line ends).

use super::*;

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
    assert_eq!(shown(&services(&demo(), ListView::Services, true, false, &[])), want);
}

#[test]
fn synproxy_follows_the_persistence_flags_as_dpvs_prints_it() {
    let mut list = demo();
    list[0].syn_proxy = true;
    list[0].persistence = Some(pb::Persistence { timeout_s: 60, netmask: String::new() });
    let got = services(&list, ListView::Services, true, false, &[]);
    assert!(got.contains("\nTCP  10.70.1.100:80 rr persistent 60 synproxy\n"), "{got}");
    assert!(got.contains("\nUDP  10.70.1.100:53 wlc persistent 360 mask 255.255.255.0\n"), "{got}");
    // Only the service line: the stats view keeps its columns.
    assert!(!services(&list, ListView::Stats, true, false, &[]).contains("synproxy"));
    let j = crate::json::services(&list);
    assert_eq!((j["services"][0]["syn_proxy"].as_bool(), j["services"][1]["syn_proxy"].as_bool()), (Some(true), Some(false)));
}

#[test]
fn the_brief_example_matches_once_trailing_blanks_go() {
    let mut s = demo();
    s.truncate(1);
    s[0].real_servers.truncate(1);
    s[0].real_servers[0].stats = None;
    let got: Vec<String> = services(&s, ListView::Services, true, false, &[]).lines().map(|l| l.trim_end().to_owned()).collect();
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
    assert_eq!(shown(&services(&demo(), ListView::Stats, true, false, &[])), want);
    let rates = vec![(Rate { cps: 0, inpps: 7, outpps: 6, inbps: 0, outbps: 0 }, vec![Rate { inpps: 7, outpps: 6, ..Rate::default() }, Rate::default()])];
    let got = services(&demo()[..1], ListView::Rate, true, false, &rates);
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
    let got = services(&demo()[1..], ListView::Thresholds, true, false, &[]);
    assert_eq!(
        shown(&got),
        "\
IP Virtual Server version 1.2.1 (size=4096)$
Prot LocalAddress:Port$
  -> RemoteAddress:Port            Uthreshold Lthreshold ActiveConn InActConn$
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
        shown(&connections(std::slice::from_ref(&s), true)),
        "\
IPVS connection entries$
pro expire state       source             virtual            destination$
TCP 14:59 ESTABLISHED 10.70.1.10:40000   10.70.1.100:80     10.70.2.11:80$
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
    assert_eq!(shown(&services(&with_health(), ListView::Services, true, false, &[])), want);
    // Quorum lost with a sorry server: the sorry server instead of the real servers.
    let mut s = with_health();
    s[0].quorum_up = false;
    s[0].sorry_server = "10.70.2.99:8080".into();
    let got = services(&s, ListView::Services, true, false, &[]);
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
