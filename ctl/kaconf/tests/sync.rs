//! `global_defs { lvs_sync_daemon ... }`: LVS session sync settings, their errors at
//! file:line:column, the check against the VRRP instances, and `save`.

use std::net::Ipv4Addr;
use std::path::Path;

use kaconf::{parse_str, Config, Error, ErrorKind, LvsSyncDaemon};

fn parse(text: &str) -> Config {
    parse_str(text, Path::new("s.conf")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> Error {
    match parse_str(text, Path::new("e.conf")) {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(e) => e,
    }
}

const INSTANCES: &str = "
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
}

vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
}
";

/// `global_defs` with `line` on line 2 (`lvs_sync_daemon` at column 3), then two instances.
fn conf(line: &str) -> String {
    format!("global_defs {{\n  {line}\n}}\n{INSTANCES}")
}

fn daemon(line: &str) -> LvsSyncDaemon {
    parse(&conf(line)).global.lvs_sync_daemon.expect("a daemon")
}

#[test]
fn options_left_out_take_lvs_defaults() {
    let c = parse(&conf("lvs_sync_daemon eth1 VI_1"));
    let d = c.global.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!(
        *d,
        LvsSyncDaemon {
            interface: "eth1".into(),
            vrrp_instance: "VI_1".into(),
            syncid: None,
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
        }
    );
    assert_eq!(
        d.effective(),
        (255, 1472, 8848, 1, Ipv4Addr::new(224, 0, 0, 81))
    );
    // Modelled, so no "not acted on" warning.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn every_option_in_any_order() {
    let want = LvsSyncDaemon {
        interface: "eth1".into(),
        vrrp_instance: "VI_2".into(),
        syncid: Some(7),
        maxlen: Some(1400),
        port: Some(8849),
        ttl: Some(2),
        group: Some(Ipv4Addr::new(239, 0, 0, 9)),
    };
    for line in [
        "lvs_sync_daemon eth1 VI_2 id 7 maxlen 1400 port 8849 ttl 2 group 239.0.0.9",
        "lvs_sync_daemon eth1 VI_2 group 239.0.0.9 ttl 2 port 8849 maxlen 1400 id 7",
    ] {
        let d = daemon(line);
        assert_eq!(d, want, "{line}");
        assert_eq!(
            d.effective(),
            (7, 1400, 8849, 2, Ipv4Addr::new(239, 0, 0, 9))
        );
    }
    // Some given, the others defaulted; the range ends are accepted.
    let d = daemon("lvs_sync_daemon eth1 VI_1 id 0 maxlen 80");
    assert_eq!(
        d.effective(),
        (0, 80, 8848, 1, Ipv4Addr::new(224, 0, 0, 81))
    );
    let d = daemon("lvs_sync_daemon eth1 VI_1 id 255 maxlen 65507 port 65535 ttl 255");
    assert_eq!(
        d.effective(),
        (255, 65507, 65535, 255, Ipv4Addr::new(224, 0, 0, 81))
    );
}

#[test]
fn the_instance_may_be_defined_first() {
    let text = format!("{INSTANCES}\nglobal_defs {{\n  lvs_sync_daemon eth1 VI_2\n}}\n");
    let c = parse(&text);
    assert_eq!(c.global.lvs_sync_daemon.unwrap().vrrp_instance, "VI_2");
}

/// Each bad line, the error's column and its whole message.
#[test]
fn bad_values_name_the_option_and_its_range() {
    for (line, column, msg) in [
        (
            "lvs_sync_daemon eth1 VI_1 id 300",
            32,
            "id 300 is not in 0..=255",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 id x",
            32,
            "id x is not in 0..=255",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 maxlen 79",
            36,
            "maxlen 79 is not in 80..=65507",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 maxlen 65508",
            36,
            "maxlen 65508 is not in 80..=65507",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 port 0",
            34,
            "port 0 is not in 1..=65535",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 port 65536",
            34,
            "port 65536 is not in 1..=65535",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 ttl 0",
            33,
            "ttl 0 is not in 1..=255",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 ttl 256",
            33,
            "ttl 256 is not in 1..=255",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 group 10.0.0.1",
            35,
            "group 10.0.0.1 must be a multicast address (unicast sync is not supported yet)",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 group x",
            35,
            "group x is not an IPv4 address",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 group ff02::1",
            35,
            "group ff02::1 is an IPv6 address (not supported yet)",
        ),
    ] {
        let e = err(&conf(line));
        assert_eq!(
            e.to_string(),
            format!("e.conf:2:{column}: lvs_sync_daemon: {msg}"),
            "{line}"
        );
        assert!(matches!(e.kind, ErrorKind::BadOption { .. }), "{line}");
    }
}

#[test]
fn malformed_lines() {
    for (line, column, msg) in [
        ("lvs_sync_daemon", 3, "missing argument: INTERFACE"),
        ("lvs_sync_daemon eth1", 3, "missing argument: VRRP_INSTANCE"),
        (
            "lvs_sync_daemon eth1 id 3",
            3,
            "missing argument: VRRP_INSTANCE",
        ),
        ("lvs_sync_daemon id 3", 3, "missing argument: INTERFACE"),
        (
            "lvs_sync_daemon eth1 VI_1 syncid 3",
            29,
            "unknown option \"syncid\" (the options are id, maxlen, port, ttl, group)",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 id 1 ttl 2 id 3",
            40,
            "option id is given twice",
        ),
        (
            "lvs_sync_daemon eth1 VI_1 port",
            29,
            "missing argument: value of port",
        ),
    ] {
        let e = err(&conf(line));
        assert_eq!(
            e.to_string(),
            format!("e.conf:2:{column}: lvs_sync_daemon: {msg}"),
            "{line}"
        );
    }
    let e = err("global_defs {\n  lvs_sync_daemon eth1 VI_1 { }\n}\n");
    assert_eq!(
        e.to_string(),
        "e.conf:2:3: lvs_sync_daemon: takes no { ... } block"
    );
    let e = err(&conf(
        "lvs_sync_daemon eth1 VI_1\n  lvs_sync_daemon eth2 VI_2",
    ));
    assert_eq!(
        e.to_string(),
        "e.conf:3:3: lvs_sync_daemon: given twice in one block (first at line 2)"
    );
}

#[test]
fn the_instance_must_be_defined() {
    let e = err(&conf("lvs_sync_daemon eth1 VI_9 id 4"));
    assert_eq!(
        e.to_string(),
        "e.conf:2:24: lvs_sync_daemon: names vrrp_instance VI_9, which is not defined"
    );
    assert_eq!(
        e.kind,
        ErrorKind::UndefinedVrrpInstance {
            name: "VI_9".into()
        }
    );
    // Without any vrrp_instance at all.
    let e = err("global_defs {\n    lvs_sync_daemon eth1 VI_1\n}\n");
    assert_eq!(
        (e.line, e.column, e.keyword.as_str()),
        (2, 26, "lvs_sync_daemon")
    );
}

#[test]
fn the_deprecated_interface_keyword_is_refused_with_the_new_spelling() {
    let hint = "deprecated; write `lvs_sync_daemon INTERFACE VRRP_INSTANCE` in global_defs";
    let text = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    lvs_sync_daemon_interface eth3\n}\n";
    assert_eq!(
        err(text).to_string(),
        format!("e.conf:4:5: lvs_sync_daemon_interface: {hint}")
    );
    assert_eq!(
        err(&conf("lvs_sync_daemon_interface eth3")).to_string(),
        format!("e.conf:2:3: lvs_sync_daemon_interface: {hint}")
    );
}

#[test]
fn save_writes_the_options_given() {
    for line in [
        "lvs_sync_daemon eth1 VI_1",
        "lvs_sync_daemon eth1 VI_2 ttl 2 id 0",
        "lvs_sync_daemon eth1 VI_2 id 7 maxlen 1400 port 8849 ttl 2 group 239.0.0.9",
        "lvs_sync_daemon \"eth 1\" VI_1 group 224.0.0.81",
    ] {
        let first = parse(&conf(line));
        let written = first.to_keepalived_string();
        let again =
            parse_str(&written, Path::new("w.conf")).unwrap_or_else(|e| panic!("{e}\n{written}"));
        assert!(again.same_settings(&first), "{line}\n{written}");
        assert_eq!(again.to_keepalived_string(), written, "{line}");
    }
    let c = parse(&conf(
        "lvs_sync_daemon eth1 VI_2 group 239.0.0.9 ttl 2 id 7\n  router_id D1",
    ));
    let written = c.to_keepalived_string();
    assert!(
        written.starts_with(
            "global_defs {\n    router_id D1\n    lvs_sync_daemon eth1 VI_2 id 7 ttl 2 group 239.0.0.9\n}\n"
        ),
        "{written}"
    );
}
