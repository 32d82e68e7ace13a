//! `vrrp_instance`: every keepalived 2.2 keyword is modelled (and written back by `save`) or
//! refused as "not supported yet" at its file:line:column.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use kaconf::{parse_str, Config, Error, ErrorKind, Track, VrrpState};

fn parse(text: &str) -> Config {
    parse_str(text, Path::new("v.conf")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> Error {
    match parse_str(text, Path::new("e.conf")) {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(e) => e,
    }
}

/// An instance with `lines` from line 4 on.
fn vi(lines: &str) -> String {
    format!("vrrp_instance V {{\n  interface eth0\n  virtual_router_id 7\n{lines}\n}}\n")
}

const FULL: &str = r#"vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    version 2
    nopreempt
    preempt_delay 30
    authentication {
        auth_type PASS
        auth_pass secret1
    }
    mcast_src_ip 192.168.200.2
    unicast_peer {
        192.168.200.3
        192.168.200.4
    }
    virtual_ipaddress {
        192.168.200.16
        192.168.200.17/24 dev eth1 label eth1:vip
    }
    virtual_ipaddress_excluded {
        10.1.0.1/16
    }
    track_interface {
        eth1
        eth2 weight -20
    }
    garp_master_delay 3
    garp_master_repeat 2
    garp_master_refresh 60
    garp_master_refresh_repeat 4
    smtp_alert
    notify_master "/bin/m x"
    notify_backup /bin/b
    notify_fault /bin/f
    notify_stop /bin/s
    notify /bin/n
}
"#;

#[test]
fn every_modelled_keyword_is_stored() {
    let c = parse(FULL);
    let v = &c.vrrp_instances[0];
    assert_eq!(v.state, VrrpState::Master);
    assert_eq!(
        (v.virtual_router_id, v.priority, v.advert_centis()),
        (51, 150, 100)
    );
    assert_eq!((v.version, v.version()), (Some(2), 2));
    assert!(v.nopreempt);
    assert_eq!(v.preempt_delay, Some(Duration::from_secs(30)));
    assert_eq!(v.authentication.as_ref().unwrap().auth_pass, "secret1");
    assert_eq!(v.mcast_src_ip, Some(Ipv4Addr::new(192, 168, 200, 2)));
    assert_eq!(v.src_ip(), v.mcast_src_ip);
    assert_eq!(v.unicast_peer.len(), 2);
    assert_eq!(v.virtual_ipaddress[1].addr.prefix(), 24);
    assert_eq!(v.virtual_ipaddress[1].dev.as_deref(), Some("eth1"));
    assert_eq!(v.virtual_ipaddress[1].label.as_deref(), Some("eth1:vip"));
    assert_eq!(v.virtual_ipaddress_excluded.len(), 1);
    assert_eq!(
        v.track_interface,
        [
            Track {
                name: "eth1".into(),
                weight: None
            },
            Track {
                name: "eth2".into(),
                weight: Some(-20)
            }
        ]
    );
    assert_eq!(v.garp_master_delay, Some(Duration::from_secs(3)));
    assert_eq!(v.garp_master_repeat, Some(2));
    assert_eq!(v.garp_master_refresh, Some(Duration::from_secs(60)));
    assert_eq!(v.garp_master_refresh_repeat, Some(4));
    assert_eq!(v.notify_master.as_deref(), Some("/bin/m x"));
    assert_eq!(v.notify.as_deref(), Some("/bin/n"));
    // The instance is acted on (lb-slowpath); smtp_alert is accepted with a warning.
    let warned: Vec<&str> = c.warnings.iter().map(|w| w.keyword.as_str()).collect();
    assert_eq!(warned, ["smtp_alert"]);
}

#[test]
fn save_writes_every_modelled_keyword_back() {
    let c = parse(FULL);
    let written = c.to_keepalived_string();
    let again =
        parse_str(&written, Path::new("w.conf")).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert!(again.same_settings(&c), "{written}");
    for kw in [
        "version 2",
        "mcast_src_ip 192.168.200.2",
        "garp_master_delay 3",
        "garp_master_repeat 2",
        "garp_master_refresh 60",
        "garp_master_refresh_repeat 4",
        "notify_stop /bin/s",
    ] {
        assert!(written.contains(kw), "{kw} missing from\n{written}");
    }
}

#[test]
fn v3_centisecond_intervals_round_trip() {
    for (text, centis) in [("0.1", 10), ("0.05", 5), ("1.5", 150), ("40.95", 4095)] {
        let c = parse(&vi(&format!("  version 3\n  advert_int {text}")));
        assert_eq!(c.vrrp_instances[0].advert_centis(), centis, "{text}");
        let written = c.to_keepalived_string();
        assert!(
            written.contains(&format!("advert_int {text}\n")),
            "{written}"
        );
        assert!(parse_str(&written, Path::new("w.conf"))
            .unwrap()
            .same_settings(&c));
    }
}

#[test]
fn unsupported_keywords_are_refused_where_they_stand() {
    for kw in [
        "use_vmac",
        "dont_track_primary",
        "track_script",
        "strict_mode",
        "native_ipv6",
        "lower_prio_no_advert",
        "garp_lower_prio_repeat",
        "unicast_ttl",
        "debug",
        "accept",
    ] {
        let e = err(&vi(&format!("   {kw} x")));
        assert_eq!((e.line, e.column, e.keyword.as_str()), (4, 4, kw), "{e}");
        assert!(matches!(e.kind, ErrorKind::NotSupported { .. }), "{e}");
        assert!(e.to_string().starts_with("e.conf:4:4: "), "{e}");
        assert!(e.to_string().contains("not supported yet"), "{e}");
    }
}

#[test]
fn ah_authentication_is_refused() {
    let e = err(&vi(
        "  authentication {\n    auth_type AH\n    auth_pass x\n  }",
    ));
    assert_eq!((e.line, e.column, e.keyword.as_str()), (5, 15, "auth_type"));
    assert_eq!(
        e.to_string(),
        "e.conf:5:15: auth_type: not supported yet: auth_type AH"
    );
}

#[test]
fn joined_rules_name_the_offending_keyword() {
    // VRRPv2 counts whole seconds.
    let e = err(&vi("  advert_int 0.5"));
    assert_eq!(
        (e.line, e.column, e.keyword.as_str()),
        (4, 14, "advert_int")
    );
    assert!(e.to_string().contains("version 3"), "{e}");
    // VRRPv3's field is 12 bits of centiseconds.
    let e = err(&vi("  version 3\n  advert_int 41"));
    assert_eq!((e.line, e.column), (5, 14));
    // RFC 5798 has no authentication.
    let e = err(&vi(
        "  version 3\n  authentication {\n auth_type PASS\n auth_pass x\n }",
    ));
    assert_eq!(
        (e.line, e.column, e.keyword.as_str()),
        (5, 3, "authentication")
    );
    // One advert source.
    let e = err(&vi("  unicast_src_ip 10.0.0.1\n  mcast_src_ip 10.0.0.2"));
    assert_eq!(
        (e.line, e.column, e.keyword.as_str()),
        (5, 3, "mcast_src_ip")
    );
    // Values keepalived would clamp or default are errors.
    for (line, col) in [
        ("  version 4", 11),
        ("  garp_master_repeat 0", 22),
        ("  garp_master_refresh_repeat 0", 30),
        ("  garp_master_delay 0.5", 21),
        ("  garp_master_refresh -1", 23),
    ] {
        let e = err(&vi(line));
        assert_eq!((e.line, e.column), (4, col), "{line}: {e}");
    }
    let e = err(&vi("  nopreempt\n  preempt"));
    assert!(
        matches!(e.kind, ErrorKind::Duplicate { first_line: 4 }),
        "{e}"
    );
}

#[test]
fn virtual_ipaddress_options_other_than_dev_and_label_are_refused() {
    let e = err(&vi(
        "  virtual_ipaddress {\n    10.0.0.1/24 brd 10.0.0.255\n  }",
    ));
    assert_eq!(
        (e.line, e.column, e.keyword.as_str()),
        (5, 17, "virtual_ipaddress")
    );
    assert!(matches!(e.kind, ErrorKind::NotSupported { .. }), "{e}");
    let e = err(&vi("  virtual_ipaddress {\n    10.0.0.1 bogus x\n  }"));
    assert_eq!((e.line, e.column), (5, 14));
}

#[test]
fn state_master_without_priority_is_the_address_owner() {
    // keepalived 2.2.7 measured: such an instance sends its first advert at once, priority 255.
    let c = parse(&vi("  state MASTER"));
    assert_eq!(c.vrrp_instances[0].priority, 255);
    let c = parse(&vi("  state BACKUP"));
    assert_eq!(c.vrrp_instances[0].priority, 100);
    let c = parse(&vi("  state MASTER\n  priority 150"));
    assert_eq!(c.vrrp_instances[0].priority, 150);
}
