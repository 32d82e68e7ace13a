//! Every error names file:line:column and the keyword, and says what is wrong.

mod common;

use std::path::Path;

use kaconf::{parse_str, Error, ErrorKind};

fn err(text: &str) -> Error {
    match parse_str(text, Path::new("e.conf")) {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(e) => e,
    }
}

/// `(line, column, keyword)` of the error.
fn at(e: &Error) -> (u32, u32, &str) {
    (e.line, e.column, e.keyword.as_str())
}

/// A minimal service around `body` lines (which start on line 4).
fn vs(body: &str) -> String {
    format!("virtual_server 10.0.0.1 80 {{\n    lb_algo rr\n    lb_kind DR\n{body}\n}}\n")
}

#[test]
fn unknown_keyword() {
    let e = err(&vs(
        "    real_server 10.0.1.1 80 {\n        wieght 2\n    }",
    ));
    assert_eq!(
        e.to_string(),
        "e.conf:5:9: wieght: unknown keyword in real_server"
    );
    assert_eq!(
        e.kind,
        ErrorKind::UnknownKeyword {
            context: "real_server".into()
        }
    );
    let e = err("virtual_servers 10.0.0.1 80 {\n}\n");
    assert_eq!(
        e.to_string(),
        "e.conf:1:1: virtual_servers: unknown keyword in the top level"
    );
    let e = err(&vs("    lb_algoo rr"));
    assert_eq!(at(&e), (4, 5, "lb_algoo"));
    let e = err("global_defs {\n  router_idd x\n}");
    assert_eq!(at(&e), (2, 3, "router_idd"));
}

#[test]
fn bad_weight() {
    let e = err(&vs(
        "    real_server 10.0.1.1 80 {\n        weight abc\n    }",
    ));
    assert_eq!(
        e.to_string(),
        "e.conf:5:16: weight: bad value \"abc\": not a non-negative integer"
    );
    let e = err(&vs(
        "    real_server 10.0.1.1 80 {\n        weight 65536\n    }",
    ));
    assert_eq!(
        e.to_string(),
        "e.conf:5:16: weight: bad value \"65536\": out of range 0..=65535"
    );
    let e = err(&vs("    real_server 10.0.1.1 80 {\n        weight\n    }"));
    assert_eq!(
        e.to_string(),
        "e.conf:5:9: weight: missing argument: weight"
    );
    let e = err(&vs(
        "    real_server 10.0.1.1 80 {\n        weight 1 2\n    }",
    ));
    assert_eq!(
        e.to_string(),
        "e.conf:5:18: weight: unexpected extra argument \"2\""
    );
}

#[test]
fn bad_ip() {
    let e = err(&vs("    real_server 10.0.0.300 80"));
    assert_eq!(
        e.to_string(),
        "e.conf:4:17: real_server: bad value \"10.0.0.300\": not an IPv4 address"
    );
    let e = err("virtual_server 10.0.0 80 {\n}");
    assert_eq!(at(&e), (1, 16, "virtual_server"));
    let e = err("local_address_group g {\n  10.0.0.1 dpdk0\n  10.0.0.x dpdk0\n}");
    assert_eq!(at(&e), (3, 3, "local_address_group"));
}

/// EulerOS's own example, `client_ipaddr_allow { 192.168.0.1/24 193.168.201.18/8 }`, means
/// 192.168.0.0/24 and 193.0.0.0/8: accepted, masked, with a warning.
#[test]
fn client_lists_with_host_bits_are_masked_as_euleros_documents() {
    let text = vs("    client_ipaddr_allow {\n        192.168.0.1/24 193.168.201.18/8\n    }\n    client_ipaddr_exclude 10.1.0.1/16");
    let c = parse_str(&text, Path::new("e.conf")).expect("accepted");
    let v = &c.virtual_servers[0];
    let nets: Vec<String> = v.client_ipaddr_allow.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["192.168.0.0/24", "193.0.0.0/8"]);
    assert_eq!(v.client_ipaddr_exclude[0].to_string(), "10.1.0.0/16");
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert!(w.iter().any(|w| w.contains("client_ipaddr_allow: 192.168.0.1/24 has host bits set: taken as 192.168.0.0/24 (192.168.0.0-192.168.0.255)")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("193.168.201.18/8 has host bits set: taken as 193.0.0.0/8")), "{w:?}");
}

#[test]
fn port_out_of_range() {
    let e = err("virtual_server 10.0.0.1 70000 {\n    lb_algo rr\n    lb_kind DR\n}\n");
    assert_eq!(
        e.to_string(),
        "e.conf:1:25: virtual_server: bad value \"70000\": port out of range 0..=65535"
    );
    let e = err(&vs("    sorry_server 10.0.0.9 99999"));
    assert_eq!(at(&e), (4, 27, "sorry_server"));
    let e = err(&vs(
        "    real_server 10.0.1.1 80 {\n  TCP_CHECK {\n connect_port 0\n  }\n }",
    ));
    assert_eq!(at(&e), (6, 15, "connect_port"));
}

#[test]
fn unknown_local_address_group() {
    let e = err(
        "local_address_group g1 {\n    10.0.0.1\n}\n\
         virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind FNAT\n    laddr_group_name g2\n}\n",
    );
    assert_eq!(
        e.to_string(),
        "e.conf:7:22: laddr_group_name: no local_address_group named \"g2\""
    );
}

#[test]
fn unbalanced_braces() {
    let e = err("virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    real_server 10.0.1.1 80 {\n}\n");
    assert_eq!(
        e.to_string(),
        "e.conf:1:28: virtual_server: this `{` is never closed"
    );
    let e = err(&format!("{}}}\n", vs("")));
    assert_eq!(e.to_string(), "e.conf:6:1: }: `}` without a matching `{`");
    let e = err("global_defs\n\n  {\n  router_id x\n");
    assert_eq!(at(&e), (3, 3, "global_defs"));
    let e = err("{\n}");
    assert_eq!(at(&e), (1, 1, "{"));
}

#[test]
fn include_cycle() {
    let dir = common::scratch_dir("cycle");
    let a = common::write(&dir, "a.conf", "! a\ninclude sub/b.conf\n");
    let b = common::write(&dir, "sub/b.conf", "\n\n    include ../a.conf\n");
    let e = kaconf::load(&a).unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line, e.column, e.keyword.as_str()),
        (b.clone(), 3, 5, "include")
    );
    let chain = format!(
        "{} -> {} -> {}",
        a.display(),
        b.display(),
        dir.join("sub/../a.conf").display()
    );
    assert_eq!(e.kind, ErrorKind::IncludeCycle { chain });
    // Including oneself is the shortest cycle.
    let s = common::write(&dir, "self.conf", "include self.conf\n");
    let e = kaconf::load(&s).unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
    assert!(matches!(e.kind, ErrorKind::IncludeCycle { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicates() {
    let e = err(&format!("{}{}", vs(""), vs("")));
    assert_eq!(at(&e), (6, 1, "virtual_server"));
    assert!(
        e.to_string()
            .contains("virtual_server 10.0.0.1:80 TCP is already defined at e.conf:1"),
        "{e}"
    );
    // Same address and port over UDP is another service.
    let udp = vs("    protocol UDP");
    assert!(parse_str(&format!("{}{udp}", vs("")), Path::new("e.conf")).is_ok());
    let e = err(&vs("    lb_algo wrr"));
    assert_eq!(
        e.to_string(),
        "e.conf:4:5: lb_algo: given twice in one block (first at line 2)"
    );
    let e = err(&vs("    lvs_sched wrr"));
    assert_eq!(at(&e), (4, 5, "lvs_sched"));
    let e = err(&vs(
        "    real_server 10.0.1.1 80\n    real_server 10.0.1.1 80",
    ));
    assert_eq!(at(&e), (5, 5, "real_server"));
    let e = err("local_address_group g {\n 10.0.0.1\n}\nlocal_address_group g {\n 10.0.0.2\n}");
    assert_eq!(at(&e), (4, 1, "local_address_group"));
    let e = err("local_address_group g {\n 10.0.0.1-3\n 10.0.0.2\n}");
    assert_eq!(
        e.to_string(),
        "e.conf:3:2: local_address_group: bad value \"10.0.0.2\": 10.0.0.2 is listed twice (first at line 2)"
    );
}

#[test]
fn missing_and_unsupported() {
    let e = err("virtual_server 10.0.0.1 80 {\n    lb_algo rr\n}\n");
    assert_eq!(
        e.to_string(),
        "e.conf:1:1: virtual_server: missing lb_kind (FNAT, DR, NAT or TUN)"
    );
    // A group nobody defined, at its name.
    let e = err("virtual_server group g {\n lb_algo rr\n lb_kind DR\n}");
    assert_eq!(
        e.to_string(),
        "e.conf:1:22: virtual_server: no virtual_server_group named \"g\""
    );
    let e = err(&vs("    lb_algo twos").replace("    lb_algo rr\n", ""));
    assert_eq!(
        e.to_string(),
        "e.conf:3:13: lb_algo: not supported yet: lb_algo twos"
    );
    let e = err(&vs("    lb_kind TUN").replace("    lb_kind DR\n", ""));
    assert_eq!(
        e.to_string(),
        "e.conf:3:13: lb_kind: not supported yet: lb_kind TUN"
    );
    let e = err(&vs("    lb_kind XNAT").replace("    lb_kind DR\n", ""));
    assert_eq!(
        e.to_string(),
        "e.conf:3:13: lb_kind: bad value \"XNAT\": expected one of FNAT, DR, NAT"
    );
    let e = err(&vs(
        "    real_server 10.0.1.1 80 {\n        DNS_CHECK {\n        }\n    }",
    ));
    assert_eq!(at(&e), (5, 9, "DNS_CHECK"));
    let e = err(&vs(
        "    real_server 10.0.1.1 80 {\n        HTTP_GET {\n        }\n    }",
    ));
    assert_eq!(
        e.to_string(),
        "e.conf:5:9: HTTP_GET: missing url { path ... }"
    );
    let e = err(&vs("    real_server 10.0.1.1"));
    assert_eq!(
        e.to_string(),
        "e.conf:4:5: real_server: missing argument: port"
    );
    let e = err("virtual_server ::1 80 {\n}");
    assert!(e.to_string().ends_with("IPv6 is not supported yet"), "{e}");
    let e = err("vrrp_instance V {\n  interface eth0\n}");
    assert_eq!(
        e.to_string(),
        "e.conf:1:1: vrrp_instance: missing virtual_router_id"
    );
}

/// Keywords that would change what a service does, which lbd does not do, are refused at
/// their position with the reason (not loaded with a warning).
#[test]
fn behaviour_changing_keywords_are_refused_at_their_position() {
    let e = err(&vs("    ops"));
    assert_eq!(
        e.to_string(),
        "e.conf:4:5: ops: not supported yet: one-packet scheduling (each UDP datagram scheduled \
         on its own, no session) is not done: lbd keeps a session per UDP flow; remove it"
    );
    for kw in [
        "persistence_engine sip",
        "bps 1000",
        "limit_proportion 50",
        "establish_timeout 60",
        "hash_target qid",
        "expire_quiescent_conn",
        "quic",
        "proxy_protocol v2",
        "blklst_group_name bl",
        "whtlst_group_name wl",
    ] {
        let e = err(&vs(&format!("      {kw}")));
        let name = kw.split(' ').next().unwrap_or_default();
        assert_eq!(at(&e), (4, 7, name), "{e}");
        assert!(e.to_string().contains(": not supported yet: "), "{e}");
    }
    let e = err(&vs("    blklst_group_name bl"));
    assert!(e.to_string().ends_with("list the refused clients in client_ipaddr_exclude"), "{e}");
}

#[test]
fn vrrp_values() {
    let vi = |line: &str| {
        format!("vrrp_instance V {{\n  interface eth0\n  virtual_router_id 1\n{line}\n}}")
    };
    assert_eq!(at(&err(&vi("  priority 0"))), (4, 12, "priority"));
    assert_eq!(at(&err(&vi("  advert_int 0.125"))), (4, 14, "advert_int"));
    assert_eq!(at(&err(&vi("  state FAULT"))), (4, 9, "state"));
    assert_eq!(
        at(&err(&vi(
            "  authentication {\n auth_type PASS\n auth_pass 123456789\n }"
        ))),
        (6, 12, "auth_pass")
    );
    assert_eq!(
        at(&err(&vi("  virtual_ipaddress {\n 10.0.0.1/24 dev\n }"))),
        (5, 14, "virtual_ipaddress")
    );
    assert_eq!(
        at(&err(&vi("  track_interface {\n eth1 weight 255\n }"))),
        (5, 14, "track_interface")
    );
    assert_eq!(at(&err(&vi("  nopreempt yes"))), (4, 13, "nopreempt"));
    assert_eq!(at(&err(&vi("  bogus"))), (4, 3, "bogus"));
    let twice = format!(
        "{}\n{}",
        vi(""),
        vi("").replace("vrrp_instance V", "vrrp_instance W")
    );
    let e = err(&twice);
    assert_eq!(at(&e), (6, 1, "vrrp_instance"));
    assert!(e.to_string().contains("virtual_router_id 1 on eth0"), "{e}");
}

#[test]
fn bad_values_are_never_defaulted() {
    for (line, col) in [
        ("    delay_loop 0", 16),
        ("    delay_loop 1e3", 16),
        ("    persistence_timeout 0", 25),
        ("    persistence_granularity 255.0.255.0", 29),
        ("    quorum 0", 12),
        ("    protocol SCTP", 14),
        ("    flow_control_cps -5", 22),
        ("    inhibit_on_failure maybe", 24),
        ("    ip_family inet6", 15),
    ] {
        let e = err(&vs(line));
        assert_eq!((e.line, e.column), (4, col), "{line}: {e}");
    }
}

/// Hardening: a sorry server on port 0 and a flow-control window of 0 seconds were accepted
/// (the window silently became 1 s).
#[test]
fn sorry_server_port_0_and_flow_control_interval_0_are_refused() {
    let e = err(&vs("    sorry_server 10.0.0.9 0"));
    assert_eq!(
        e.to_string(),
        "e.conf:4:27: sorry_server: bad value \"0\": port out of range 1..=65535 (port 0 cannot be connected to)"
    );
    let e = err(&vs("    flow_control_cps 10\n    flow_control_interval 0"));
    assert_eq!(
        e.to_string(),
        "e.conf:5:27: flow_control_interval: bad value \"0\": out of range 1..=4294967295"
    );
    let c = parse_str(
        &vs("    sorry_server 10.0.0.9 1\n    flow_control_interval 1"),
        Path::new("e.conf"),
    )
    .unwrap();
    assert_eq!(c.virtual_servers[0].flow_control_interval, Some(1));
}

#[test]
fn lexical_errors() {
    let e = err("global_defs {\n  router_id \"unterminated\n}");
    assert_eq!(
        e.to_string(),
        "e.conf:2:13: router_id: quoted string is not closed on this line"
    );
}

#[test]
fn syn_proxy_is_refused_for_udp_and_dr_at_its_position() {
    // vs() is DR: the reason names lb_kind's line.
    let e = err(&vs("    protocol TCP\n    syn_proxy"));
    assert_eq!(at(&e), (5, 5, "syn_proxy"));
    assert_eq!(
        e.to_string(),
        "e.conf:5:5: syn_proxy: cannot be used with lb_kind DR (line 3): real servers' replies \
         bypass the director, which could not splice their sequence numbers; SYN proxy needs \
         lb_kind FNAT or NAT"
    );
    let fnat = |body: &str| vs(body).replace("lb_kind DR", "lb_kind NAT");
    // protocol after syn_proxy: the block is judged as a whole.
    let e = err(&fnat("    syn_proxy\n    protocol UDP"));
    assert_eq!(
        e.to_string(),
        "e.conf:4:5: syn_proxy: cannot be used with protocol UDP (line 5): SYN proxy answers \
         TCP handshakes; it needs protocol TCP"
    );
    assert!(matches!(e.kind, ErrorKind::Incompatible { .. }));
    // TUN is refused at its own line, before syn_proxy is judged.
    let e = err(&vs("    syn_proxy").replace("lb_kind DR", "lb_kind TUN"));
    assert_eq!(e.to_string(), "e.conf:3:13: lb_kind: not supported yet: lb_kind TUN");
    // A flag: no value, no block, once.
    let e = err(&fnat("    syn_proxy on"));
    assert_eq!(at(&e), (4, 15, "syn_proxy"));
    let e = err(&fnat("    syn_proxy\n    syn_proxy"));
    assert_eq!(e.to_string(), "e.conf:5:5: syn_proxy: given twice in one block (first at line 4)");
    // NAT and FNAT (TCP, the default protocol) take it.
    let c = parse_str(&fnat("    syn_proxy"), Path::new("ok.conf")).unwrap();
    assert!(c.virtual_servers[0].syn_proxy && c.warnings.is_empty());
    let c = parse_str(&fnat(""), Path::new("ok.conf")).unwrap();
    assert!(!c.virtual_servers[0].syn_proxy);
}
