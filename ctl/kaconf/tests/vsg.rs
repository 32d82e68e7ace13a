//! `virtual_server_group` and `virtual_server group NAME`: one service per member, written
//! back as a group; `fwmark` refused where it is written.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use kaconf::{load, parse_str, Config, Error, ErrorKind, Protocol, VsgEntry};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

fn err(text: &str) -> Error {
    match parse_str(text, Path::new("g.conf")) {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(e) => e,
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 70, 1, last)
}

fn keys(c: &Config) -> Vec<(Ipv4Addr, u16, Protocol)> {
    c.virtual_servers.iter().map(|v| (v.vip, v.port, v.protocol)).collect()
}

#[test]
fn groups_become_one_service_per_member() {
    let path = data("vsg.conf");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let g = c.virtual_server_group("WEB").unwrap();
    assert_eq!((g.file.clone(), g.line), (path.clone(), 26));
    assert_eq!(
        g.entries,
        [
            VsgEntry { first: ip(100), last: ip(100), port: 80 },
            VsgEntry { first: ip(101), last: ip(103), port: 80 },
            VsgEntry { first: ip(100), last: ip(100), port: 8080 },
        ]
    );
    let members = [(ip(100), 80), (ip(101), 80), (ip(102), 80), (ip(103), 80), (ip(100), 8080)];
    let mut expected: Vec<_> = members.iter().map(|&(a, p)| (a, p, Protocol::Tcp)).collect();
    expected.extend(members.iter().map(|&(a, p)| (a, p, Protocol::Udp)));
    assert_eq!(keys(&c), expected);
    // Each member has the virtual_server's settings and position.
    let tcp = &c.virtual_servers[..5];
    for vs in tcp {
        assert_eq!((vs.line, vs.lb_algo, vs.real_servers.len()), (7, kaconf::Scheduler::Wrr, 2));
        assert_eq!(vs.delay_loop, std::time::Duration::from_secs(5));
        assert_eq!(vs.real_servers[0].check, tcp[0].real_servers[0].check);
        assert_eq!(vs.laddr_group_name.as_deref(), Some("laddr_g1"));
    }
    assert_eq!(c.virtual_servers[5].line, 33);
}

#[test]
fn groups_are_written_back_as_groups() {
    let c = load(&data("vsg.conf")).unwrap();
    let text = c.to_keepalived_string();
    assert_eq!(text.matches("virtual_server group WEB {").count(), 2, "{text}");
    assert!(text.contains("virtual_server_group WEB {\n    10.70.1.100 80\n    10.70.1.101-103 80\n    10.70.1.100 8080\n}\n"), "{text}");
    assert!(!text.contains("virtual_server 10.70.1."), "{text}");
    let again = parse_str(&text, Path::new("saved.conf")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(again.same_settings(&c));

    // A member edited on its own (as through the API) is no longer the group's: every
    // member is written as a service of its own, and the group definition stays.
    let mut edited = c.clone();
    edited.virtual_servers[2].real_servers[0].weight = 9;
    let text = edited.to_keepalived_string();
    assert_eq!(text.matches("virtual_server group WEB {").count(), 1, "{text}");
    assert_eq!(text.matches("virtual_server 10.70.1.").count(), 5, "{text}");
    let again = parse_str(&text, Path::new("saved.conf")).unwrap();
    assert_eq!(keys(&again).len(), 10);
    assert_eq!(again.virtual_servers.iter().find(|v| v.vip == ip(102) && v.protocol == Protocol::Tcp).unwrap().real_servers[0].weight, 9);

    // A member deleted: the rest are written one by one.
    let mut deleted = c.clone();
    deleted.virtual_servers.remove(0);
    let again = parse_str(&deleted.to_keepalived_string(), Path::new("saved.conf")).unwrap();
    assert_eq!(keys(&again), keys(&deleted));
    // Every service gone: the group alone is written, and loads.
    let mut cleared = c.clone();
    cleared.virtual_servers.clear();
    let again = parse_str(&cleared.to_keepalived_string(), Path::new("saved.conf")).unwrap();
    assert!(again.same_settings(&cleared));
}

#[test]
fn fwmark_is_refused_where_it_is_written() {
    let e = err("virtual_server_group G {\n  10.0.0.1 80\n  fwmark 1\n}\n");
    assert_eq!((e.line, e.column, e.keyword.as_str()), (3, 3, "virtual_server_group"));
    assert_eq!(
        e.to_string(),
        "g.conf:3:3: virtual_server_group: not supported yet: fwmark services need kernel packet marks; lbd classifies by address and port — use a virtual_server_group of addresses"
    );
    let e = err("virtual_server fwmark 1 {\n lb_algo rr\n lb_kind DR\n}\n");
    assert_eq!((e.line, e.column, e.keyword.as_str()), (1, 16, "virtual_server"));
    assert!(matches!(e.kind, ErrorKind::NotSupported { .. }), "{e}");
    assert!(e.to_string().contains("fwmark services need kernel packet marks"), "{e}");
}

#[test]
fn group_errors_name_their_word() {
    let vs = "virtual_server group G {\n lb_algo rr\n lb_kind DR\n}\n";
    let cases: &[(&str, (u32, u32), &str)] = &[
        ("virtual_server_group G {\n 10.0.0.1\n}\n", (2, 2), "missing argument: port after 10.0.0.1"),
        ("virtual_server_group G {\n 10.0.0.1 80 x\n}\n", (2, 14), "unexpected extra argument \"x\""),
        ("virtual_server_group G {\n 10.0.0.1 http\n}\n", (2, 11), "bad value \"http\""),
        ("virtual_server_group G {\n 10.0.0.9-3 80\n}\n", (2, 2), "range end 3 is below its start 9"),
        ("virtual_server_group G {\n 10.0.0.1-3 80\n 10.0.0.2 80\n}\n", (3, 2), "10.0.0.2 80 is listed twice (first at line 2)"),
        ("virtual_server_group G {\n}\n", (1, 1), "missing members"),
        ("virtual_server_group G {\n 10.0.0.1 80\n}\nvirtual_server_group G {\n 10.0.0.2 80\n}\n", (4, 1), "virtual_server_group G is already defined at g.conf:1"),
        ("virtual_server_group G\n", (1, 1), "needs a { ... } block"),
        ("virtual_server group {\n lb_algo rr\n lb_kind DR\n}\n", (1, 1), "missing argument: virtual_server_group name"),
        ("virtual_server group G H {\n}\n", (1, 24), "unexpected extra argument \"H\""),
    ];
    for (text, (line, column), what) in cases {
        let text = format!("{text}{}", if text.starts_with("virtual_server_group") { vs } else { "" });
        let e = err(&text);
        assert_eq!((e.line, e.column), (*line, *column), "{text}: {e}");
        assert!(e.to_string().contains(what), "{text}: {e}");
    }
    // A member that is also a plain service: the second definition names the first.
    let text = format!("virtual_server_group G {{\n 10.0.0.1-2 80\n}}\n{vs}virtual_server 10.0.0.2 80 {{\n lb_algo rr\n lb_kind DR\n}}\n");
    let e = err(&text);
    assert_eq!((e.line, e.column, e.keyword.as_str()), (8, 1, "virtual_server"));
    assert!(e.to_string().contains("virtual_server 10.0.0.2:80 TCP is already defined at g.conf:4 (virtual_server_group G)"), "{e}");
    let e = err(&format!("virtual_server 10.0.0.2 80 {{\n lb_algo rr\n lb_kind DR\n}}\nvirtual_server_group G {{\n 10.0.0.1-2 80\n}}\n{vs}"));
    assert_eq!(e.line, 8);
    assert!(e.to_string().contains("virtual_server 10.0.0.2:80 TCP (virtual_server_group G) is already defined at g.conf:1"), "{e}");
}
