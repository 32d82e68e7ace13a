//! Real-world configurations parse into the expected model.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnetwork::Ipv4Network;
use kaconf::*;

fn parse(text: &str) -> Config {
    parse_str(text, Path::new("/etc/keepalived/keepalived.conf")).unwrap_or_else(|e| panic!("{e}"))
}

fn net(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

/// Timing a check inherits from a virtual server with `delay_loop` `secs` and no other
/// check settings.
fn common_with_delay_loop(secs: u64) -> CheckCommon {
    CheckCommon {
        delay_loop: Duration::from_secs(secs),
        warmup: Duration::from_secs(secs),
        ..CheckCommon::default()
    }
}

fn tcp_check(port: u16) -> HealthCheck {
    HealthCheck::Tcp(ConnectOpts {
        connect_port: Some(port),
        connect_timeout: Duration::from_secs(3),
        common: CheckCommon {
            retry: 2,
            ..common_with_delay_loop(3)
        },
        ..ConnectOpts::default()
    })
}

#[test]
fn dpvs_fnat() {
    let c = parse(common::DPVS_FNAT);
    let file = PathBuf::from("/etc/keepalived/keepalived.conf");
    assert_eq!(c.global.router_id.as_deref(), Some("DPVS_DEVEL"));
    assert_eq!(
        c.local_address_groups,
        [LocalAddressGroup {
            name: "laddr_g1".into(),
            addrs: vec![
                LocalAddr {
                    ip: Ipv4Addr::new(192, 168, 100, 200),
                    ifname: Some("dpdk0".into())
                },
                LocalAddr {
                    ip: Ipv4Addr::new(192, 168, 100, 201),
                    ifname: Some("dpdk0".into())
                },
            ],
            file: file.clone(),
            line: 7,
        }]
    );
    let rs = |last: u8, line: u32| RealServer {
        ip: Ipv4Addr::new(192, 168, 100, last),
        port: 80,
        weight: 100,
        inhibit_on_failure: true,
        check: Some(tcp_check(80)),
        file: file.clone(),
        line,
    };
    let expected = VirtualServer {
        vip: Ipv4Addr::new(192, 168, 100, 254),
        port: 80,
        protocol: Protocol::Tcp,
        lb_algo: Scheduler::Rr,
        lb_kind: ForwardMode::Fnat,
        persistence_timeout: None,
        persistence_granularity: None,
        laddr_group_name: Some("laddr_g1".into()),
        delay_loop: Duration::from_secs(3),
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        tcp_draining_timeout: None,
        flow_control_cps: None,
        flow_control_interval: None,
        flow_control_pc: None,
        client_ipaddr_allow: vec![],
        client_ipaddr_exclude: vec![],
        checker_off: false,
        checker_merge: false,
        sorry_server: None,
        syn_proxy: true,
        hash_port: false,
        real_servers: vec![rs(2, 23), rs(3, 33)],
        file: file.clone(),
        line: 15,
    };
    assert_eq!(c.virtual_servers, [expected]);
    assert!(c.vrrp_instances.is_empty());
    // The checks are acted on (by the slowpath): no warning.
    assert_eq!(c.warnings, []);
}

#[test]
fn dr_with_vrrp_and_http_checks() {
    let c = parse(common::DR_VRRP);
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"));
    let vi = &c.vrrp_instances[0];
    assert_eq!(vi.name, "VI_1");
    assert_eq!(vi.state, VrrpState::Master);
    assert_eq!(vi.interface, "eth0");
    assert_eq!(
        (vi.virtual_router_id, vi.priority, vi.advert_int),
        (51, 150, 1.0)
    );
    assert!(vi.nopreempt);
    assert_eq!(
        vi.authentication,
        Some(Authentication {
            auth_type: AuthType::Pass,
            auth_pass: "1111".into()
        })
    );
    assert_eq!(vi.unicast_src_ip, Some(Ipv4Addr::new(192, 168, 200, 2)));
    assert_eq!(vi.unicast_peer, [Ipv4Addr::new(192, 168, 200, 3)]);
    assert_eq!(
        vi.track_interface,
        [Track {
            name: "eth1".into(),
            weight: Some(-20)
        }]
    );
    assert_eq!(
        vi.virtual_ipaddress,
        [
            VirtualIp {
                addr: net("192.168.200.16/32"),
                dev: None,
                label: None
            },
            VirtualIp {
                addr: net("192.168.200.17/24"),
                dev: Some("eth0".into()),
                label: Some("eth0:1".into())
            },
        ]
    );

    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.lb_algo, vs.lb_kind, vs.persistence_timeout),
        (Scheduler::Wlc, ForwardMode::Dr, Some(50))
    );
    assert_eq!(vs.delay_loop, Duration::from_secs(6));
    let http = HealthCheck::Http(HttpCheck {
        urls: vec![
            Url {
                path: "/healthz".into(),
                status_code: Some(200),
                digest: None,
                virtualhost: None,
            },
            Url {
                path: "/testurl2/test.jsp".into(),
                status_code: None,
                digest: Some("640205b7b0fc66c1ea91c463fac6334d".into()),
                virtualhost: None,
            },
        ],
        connect: ConnectOpts {
            connect_timeout: Duration::from_millis(500),
            common: CheckCommon {
                retry: 3,
                delay_before_retry: Duration::from_secs(3),
                ..common_with_delay_loop(6)
            },
            ..ConnectOpts::default()
        },
        virtualhost: None,
        http_protocol: HttpProtocol::Http10,
        enable_sni: false,
    });
    assert_eq!(vs.real_servers[0].check, Some(http));
    let ssl = HealthCheck::Ssl(HttpCheck {
        urls: vec![Url {
            path: "/healthz".into(),
            status_code: Some(204),
            digest: None,
            virtualhost: None,
        }],
        // HTTP_GET and SSL_GET wait 3 s before a retry unless told otherwise (keepalived).
        connect: ConnectOpts {
            common: CheckCommon {
                delay_before_retry: DEFAULT_HTTP_DELAY_BEFORE_RETRY,
                ..common_with_delay_loop(6)
            },
            ..ConnectOpts::default()
        },
        virtualhost: None,
        http_protocol: HttpProtocol::Http10,
        enable_sni: false,
    });
    assert_eq!(vs.real_servers[1].check, Some(ssl));
    assert_eq!(vs.real_servers[1].weight, 2);

    // global_defs contents other than router_id are reported; the checks and the VRRP
    // instance are acted on (lb-slowpath).
    let warned: Vec<&str> = c.warnings.iter().map(|w| w.keyword.as_str()).collect();
    assert_eq!(
        warned,
        [
            "notification_email",
            "notification_email_from",
            "smtp_server",
            "smtp_connect_timeout",
        ]
    );
}

#[test]
fn flow_control_allow_exclude_and_next_line_braces() {
    let c = parse(common::FLOW);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.protocol, vs.lb_algo, vs.lb_kind),
        (Protocol::Udp, Scheduler::Consh, ForwardMode::Fnat)
    );
    assert_eq!(vs.persistence_timeout, Some(DEFAULT_PERSISTENCE_TIMEOUT));
    assert_eq!(
        vs.persistence_granularity,
        Some(Ipv4Addr::new(255, 255, 255, 0))
    );
    assert_eq!(vs.delay_loop, DEFAULT_DELAY_LOOP);
    assert_eq!(
        (
            vs.flow_control_cps,
            vs.flow_control_interval,
            vs.flow_control_pc
        ),
        (Some(10000), Some(1), Some(80))
    );
    assert_eq!(vs.tcp_draining_timeout, Some(30));
    assert_eq!(
        vs.client_ipaddr_allow,
        [
            net("10.1.0.0/16"),
            net("10.2.0.0/16"),
            net("192.168.7.7/32")
        ]
    );
    assert_eq!(vs.client_ipaddr_exclude, [net("10.1.2.0/24")]);
    assert!(vs.alpha && vs.omega && vs.checker_merge && !vs.checker_off);
    assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
    assert_eq!(
        vs.quorum_up.as_deref(),
        Some("ip addr add 10.0.0.10/32 dev lo")
    );
    assert_eq!(
        vs.quorum_down.as_deref(),
        Some("/usr/local/bin/down.sh 10.0.0.10")
    );
    assert_eq!(vs.sorry_server, Some((Ipv4Addr::new(10, 0, 9, 9), 443)));
    assert_eq!(vs.line, 2);

    let rs0 = &vs.real_servers[0];
    assert_eq!((rs0.weight, rs0.line), (5, 28));
    // connect_timeout given on the virtual server is the default for its checks.
    let udp = UdpCheck {
        connect: ConnectOpts {
            connect_port: Some(53),
            connect_timeout: Duration::from_secs(2),
            common: CheckCommon {
                alpha: true,
                ..CheckCommon::default()
            },
            ..ConnectOpts::default()
        },
        ping_check_off: true,
        payload: None,
        require_reply: false,
    };
    assert_eq!(rs0.check, Some(HealthCheck::Udp(udp)));
    let rs1 = &vs.real_servers[1];
    assert_eq!(rs1.weight, 0);
    let misc = MiscCheck {
        misc_path: "/usr/local/bin/check.sh 10.0.1.2".into(),
        misc_timeout: Some(Duration::from_millis(2500)),
        misc_dynamic: false,
        // MISC_CHECK does not retry unless told to (keepalived); alpha from the VS.
        common: CheckCommon {
            retry: 0,
            alpha: true,
            ..CheckCommon::default()
        },
    };
    assert_eq!(rs1.check, Some(HealthCheck::Misc(misc)));

    let lip = c.local_address_group("lip").unwrap();
    let ips: Vec<String> = lip.addrs.iter().map(|a| a.ip.to_string()).collect();
    assert_eq!(
        ips,
        [
            "10.0.0.100",
            "10.0.0.101",
            "10.0.0.102",
            "10.0.0.103",
            "10.0.0.200"
        ]
    );
    assert_eq!(lip.addrs[3].ifname.as_deref(), Some("dpdk0"));
    assert_eq!(lip.addrs[4].ifname, None);
}

#[test]
fn comments_quotes_and_inline_blocks() {
    let c = parse(
        "virtual_server 10.0.0.1 80 { lb_algo wrr ; }\n"
            .replace(" ; }", "\n lb_kind NAT }")
            .as_str(),
    );
    assert_eq!(c.virtual_servers[0].lb_kind, ForwardMode::Nat);
    let c = parse(
        "! bang comment\n# hash comment\nvirtual_server 10.0.0.1 80 { # trailing\n\
         lb_algo sh ! trailing\nlb_kind DR\nreal_server 10.0.1.1 80 { HTTP_GET { url { path \"/a b\" } } }\n}",
    );
    let vs = &c.virtual_servers[0];
    assert_eq!((vs.lb_algo, vs.lb_kind), (Scheduler::Sh, ForwardMode::Dr));
    let Some(HealthCheck::Http(h)) = &vs.real_servers[0].check else {
        panic!()
    };
    assert_eq!(h.urls[0].path, "/a b");
}

#[test]
fn inherited_check_settings_and_inhibit() {
    let c = parse(
        "virtual_server 10.0.0.1 80 {
            lb_algo rr
            lb_kind DR
            retry 4
            delay_before_retry 2
            connect_timeout 7
            inhibit_on_failure
            real_server 10.0.1.1 80 {
                connect_timeout 6
                TCP_CHECK {
                    retry 5
                }
            }
            real_server 10.0.1.2 80 {
                inhibit_on_failure false
                TCP_CHECK {
                }
            }
        }",
    );
    let rs = &c.virtual_servers[0].real_servers;
    let check = |i: usize| {
        rs[i]
            .check
            .as_ref()
            .and_then(|c| c.connect())
            .cloned()
            .unwrap()
    };
    let c0 = check(0);
    assert_eq!(
        (
            c0.common.retry,
            c0.connect_timeout,
            c0.common.delay_before_retry
        ),
        (5, Duration::from_secs(6), Duration::from_secs(2))
    );
    let c1 = check(1);
    assert_eq!(
        (c1.common.retry, c1.connect_timeout),
        (4, Duration::from_secs(7))
    );
    assert!(rs[0].inhibit_on_failure);
    assert!(!rs[1].inhibit_on_failure);
}

#[test]
fn includes_globs_and_positions_in_included_files() {
    let dir = common::scratch_dir("inc");
    common::write(
        &dir,
        "laddr.conf",
        "local_address_group g1 {\n    10.0.0.1 dpdk0\n}\n",
    );
    common::write(
        &dir,
        "rs/a.conf",
        "real_server 10.0.1.1 80 {\n    weight 3\n}\n",
    );
    common::write(&dir, "rs/b.conf", "real_server 10.0.1.2 80\n");
    common::write(&dir, "rs/skip.txt", "garbage {\n");
    let main = common::write(
        &dir,
        "keepalived.conf",
        "include laddr.conf\n\
         virtual_server 10.0.0.10 80 {\n\
             lb_algo rr\n\
             lb_kind FNAT\n\
             laddr_group_name g1\n\
             include rs/*.conf\n\
         }\n\
         include none/*.conf\n",
    );
    let c = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.local_address_groups[0].file, dir.join("laddr.conf"));
    let rs = &c.virtual_servers[0].real_servers;
    assert_eq!(rs.len(), 2);
    assert_eq!(
        (rs[0].weight, rs[0].file.clone(), rs[0].line),
        (3, dir.join("rs/a.conf"), 1)
    );
    assert_eq!(rs[1].file, dir.join("rs/b.conf"));
    assert_eq!(c.virtual_servers[0].file, main);
    // An empty glob is not an error, but it is reported.
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        (c.warnings[0].keyword.as_str(), c.warnings[0].line),
        ("include", 8)
    );

    // The same text given as a string resolves includes from the named file's directory.
    let text = std::fs::read_to_string(&main).unwrap();
    assert_eq!(parse_str(&text, &main).unwrap(), c);

    // An error inside an included file names that file and line.
    common::write(
        &dir,
        "rs/b.conf",
        "real_server 10.0.1.2 80 {\n    weight -1\n}\n",
    );
    let e = load(&main).unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line, e.column),
        (dir.join("rs/b.conf"), 2, 12)
    );
    assert_eq!(e.keyword, "weight");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ignored_keywords_are_warnings_not_errors() {
    let c = parse(
        "vrrp_script chk { script \"/bin/true\" }\n\
         virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind FNAT\n hashed\n flag-3\n\
         real_server 10.0.1.1 80 { uthreshold 100 }\n}",
    );
    let warned: Vec<&str> = c.warnings.iter().map(|w| w.keyword.as_str()).collect();
    assert_eq!(warned, ["vrrp_script", "hashed", "flag-3", "uthreshold"]);
    assert!(c
        .warnings
        .iter()
        .all(|w| w.msg.contains("not kept by save")));
}

/// `sh-port` / `mh-port` / `flag-2`: the hashing schedulers take the client's port (other
/// schedulers do not hash: it changes nothing there, as in IPVS). `save` keeps it.
#[test]
fn sh_port_makes_hashing_schedulers_take_the_port() {
    for kw in ["sh-port", "mh-port", "flag-2"] {
        let c = parse(&format!("virtual_server 10.0.0.1 80 {{\n lb_algo sh\n lb_kind DR\n {kw}\n}}"));
        assert!(c.virtual_servers[0].hash_port, "{kw}");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(c.to_keepalived_string().contains("    sh-port\n"), "{}", c.to_keepalived_string());
    }
    let c = parse("virtual_server 10.0.0.1 80 {\n lb_algo sh\n lb_kind DR\n}");
    assert!(!c.virtual_servers[0].hash_port);
    assert!(!c.to_keepalived_string().contains("sh-port"));
}
