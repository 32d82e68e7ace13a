//! The whole-configuration checks, each with the exact message, and the configurations the
//! testbed and the perf labs run, which must keep loading.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::Config;

/// lbd.toml's ports from `[[port]]` sections.
fn ports_of(toml: &str) -> Vec<PortConfig> {
    Config::parse(toml, Path::new("lbd.toml")).unwrap_or_else(|e| panic!("{e}")).ports
}

/// The testbed's director: wan 10.70.1.1/24, lan 10.70.2.1/24.
fn ports() -> Vec<PortConfig> {
    ports_of("[[port]]\nname = 'wan'\nvdev = 'net_ring0'\naddresses = ['10.70.1.1/24']\n[[port]]\nname = 'lan'\nvdev = 'net_ring1'\naddresses = ['10.70.2.1/24']\n")
}

fn convert_text(text: &str, ports: &[PortConfig]) -> Result<Loaded, ServicesError> {
    let cfg = kaconf::parse_str(text, Path::new("k.conf")).unwrap_or_else(|e| panic!("{e}"));
    convert(&cfg, Options::default(), ports, 1)
}

/// The refusal of `text` on the testbed's director.
fn err(text: &str) -> String {
    match convert_text(text, &ports()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn ok(text: &str) -> Loaded {
    convert_text(text, &ports()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A group `lg` (line 1) with `laddrs` (lines 2..), then a FNAT service on `vip` (on the line
/// after the group's `}`) with `rs` one per line.
fn fnat(laddrs: &[&str], vip: &str, rs: &[&str]) -> String {
    let mut s = String::from("local_address_group lg {\n");
    for l in laddrs {
        s.push_str(&format!("    {l}\n"));
    }
    s.push_str(&format!("}}\nvirtual_server {vip} {{\n    lb_algo rr\n    lb_kind FNAT\n    laddr_group_name lg\n"));
    for r in rs {
        s.push_str(&format!("    real_server {r}\n"));
    }
    s.push_str("}\n");
    s
}

/// A service (line 1) of `kind` with `body` lines from line 4.
fn vs(vip: &str, kind: &str, body: &str) -> String {
    format!("virtual_server {vip} {{\n    lb_algo rr\n    lb_kind {kind}\n{body}\n}}\n")
}

#[test]
fn a_vip_that_is_a_port_address_or_no_host_address_is_refused() {
    assert_eq!(err(&vs("10.70.1.1 80", "NAT", "")), "k.conf:1: virtual_server 10.70.1.1 80: the virtual IP 10.70.1.1 is port wan's own address (lbd.toml addresses)");
    assert_eq!(err(&vs("0.0.0.0 80", "NAT", "")), "k.conf:1: virtual_server 0.0.0.0 80: the virtual IP 0.0.0.0 is the unspecified address, not a host address");
    assert_eq!(err(&vs("255.255.255.255 80", "NAT", "")), "k.conf:1: virtual_server 255.255.255.255 80: the virtual IP 255.255.255.255 is the broadcast address, not a host address");
    assert_eq!(err(&vs("224.0.0.18 80", "NAT", "")), "k.conf:1: virtual_server 224.0.0.18 80: the virtual IP 224.0.0.18 is a multicast address, not a host address");
    // A VIP on a port's subnet is what the testbed does.
    ok(&vs("10.70.1.100 80", "NAT", "    real_server 10.70.2.11 80"));
}

#[test]
fn a_real_server_that_is_no_host_address_is_refused() {
    assert_eq!(err(&vs("10.70.1.100 80", "NAT", "    real_server 0.0.0.0 80")), "k.conf:4: virtual_server 10.70.1.100 80: real_server 0.0.0.0 80: 0.0.0.0 is the unspecified address, not a host address");
    assert_eq!(err(&vs("10.70.1.100 80", "NAT", "    real_server 10.70.2.11 80\n    real_server 255.255.255.255 80")), "k.conf:5: virtual_server 10.70.1.100 80: real_server 255.255.255.255 80: 255.255.255.255 is the broadcast address, not a host address");
    assert_eq!(err(&vs("10.70.1.100 80", "NAT", "    real_server 239.1.2.3 80")), "k.conf:4: virtual_server 10.70.1.100 80: real_server 239.1.2.3 80: 239.1.2.3 is a multicast address, not a host address");
}

#[test]
fn a_local_address_that_is_no_host_address_is_refused() {
    let e = err(&fnat(&["10.70.2.100", "0.0.0.0"], "10.70.1.100 80", &["10.70.2.11 80"]));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 0.0.0.0 is the unspecified address, not a host address");
    let e = err(&fnat(&["255.255.255.255"], "10.70.1.100 80", &["10.70.2.11 80"]));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 255.255.255.255 is the broadcast address, not a host address");
    let e = err(&fnat(&["224.0.0.81"], "10.70.1.100 80", &["10.70.2.11 80"]));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 224.0.0.81 is a multicast address, not a host address");
}

#[test]
fn a_local_address_that_is_a_real_server_or_a_port_address_is_refused() {
    let e = err(&fnat(&["10.70.2.11"], "10.70.1.100 80", &["10.70.2.12 80", "10.70.2.11 80"]));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 10.70.2.11 is real_server 10.70.2.11 80 of virtual_server 10.70.1.100 80 (k.conf:9)");
    // A range covering a real server.
    let e = err(&fnat(&["10.70.2.100", "10.70.2.10-20 lan"], "10.70.1.100 80", &["10.70.2.12 80"]));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 10.70.2.12 is real_server 10.70.2.12 80 of virtual_server 10.70.1.100 80 (k.conf:9)");
    let e = err(&fnat(&["10.70.2.1"], "10.70.1.100 80", &["10.70.2.11 80"]));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 10.70.2.1 is port lan's own address (lbd.toml addresses)");
    // A range covering a port's address.
    let e = err(&fnat(&["10.70.1.0-3"], "10.70.1.100 80", &["10.70.2.11 80"]));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 10.70.1.1 is port wan's own address (lbd.toml addresses)");
    // A local address that is a VIP: refused by the table, now at its group's line.
    let e = err(&fnat(&["10.70.1.100"], "10.70.1.100 80", &["10.70.2.11 80"]));
    assert_eq!(e, "k.conf:1: local address 10.70.1.100 is also a virtual IP");
}

#[test]
fn a_real_server_that_is_a_vip_is_refused() {
    // Its own VIP and port.
    let e = err(&vs("10.70.1.100 80", "NAT", "    real_server 10.70.2.11 80\n    real_server 10.70.1.100 80"));
    assert_eq!(e, "k.conf:5: virtual_server 10.70.1.100 80: real_server 10.70.1.100 80 is the virtual server itself");
    // Its own VIP on another port.
    let e = err(&vs("10.70.1.100 80", "NAT", "    real_server 10.70.1.100 8080"));
    assert_eq!(e, "k.conf:4: virtual_server 10.70.1.100 80: real_server 10.70.1.100 8080: 10.70.1.100 is this virtual server's own virtual IP");
    // Another service's VIP, defined before or after it.
    let two = format!("{}{}", vs("10.70.1.100 80", "NAT", "    real_server 10.70.1.101 80"), vs("10.70.1.101 80", "NAT", "    real_server 10.70.2.11 80"));
    assert_eq!(err(&two), "k.conf:4: virtual_server 10.70.1.100 80: real_server 10.70.1.101 80: 10.70.1.101 is the virtual IP of virtual_server 10.70.1.101 80 (k.conf:6)");
    let two = format!("{}{}", vs("10.70.1.101 80", "NAT", "    real_server 10.70.2.11 80"), vs("10.70.1.100 53", "NAT", "    protocol UDP\n    real_server 10.70.1.101 53"));
    assert_eq!(err(&two), "k.conf:10: virtual_server 10.70.1.100 53: real_server 10.70.1.101 53: 10.70.1.101 is the virtual IP of virtual_server 10.70.1.101 80 (k.conf:1)");
    // A port's own address.
    let e = err(&vs("10.70.1.100 80", "NAT", "    real_server 10.70.2.1 80"));
    assert_eq!(e, "k.conf:4: virtual_server 10.70.1.100 80: real_server 10.70.2.1 80: 10.70.2.1 is port lan's own address (lbd.toml addresses)");
}

#[test]
fn a_sorry_server_is_checked_as_a_real_server() {
    let e = err(&vs("10.70.1.100 80", "NAT", "    sorry_server 10.70.1.100 80\n    real_server 10.70.2.11 80"));
    assert_eq!(e, "k.conf:1: virtual_server 10.70.1.100 80: sorry_server 10.70.1.100 80 is the virtual server itself");
    let e = err(&vs("10.70.1.100 80", "NAT", "    sorry_server 0.0.0.0 80"));
    assert_eq!(e, "k.conf:1: virtual_server 10.70.1.100 80: sorry_server 0.0.0.0 80: 0.0.0.0 is the unspecified address, not a host address");
    let e = err(&fnat(&["10.70.2.99"], "10.70.1.100 80", &["10.70.2.11 80"]).replace("    laddr_group_name lg\n", "    laddr_group_name lg\n    sorry_server 10.70.2.99 80\n"));
    assert_eq!(e, "k.conf:1: local_address_group lg: local address 10.70.2.99 is sorry_server 10.70.2.99 80 of virtual_server 10.70.1.100 80 (k.conf:4)");
}

#[test]
fn a_direct_routing_real_server_off_link_is_refused() {
    let e = err(&vs("10.70.1.110 80", "DR", "    real_server 10.70.2.11 80\n    real_server 10.9.0.1 80"));
    assert_eq!(e, "k.conf:5: virtual_server 10.70.1.110 80: real_server 10.9.0.1 80: direct routing only rewrites the MAC address, so the server must be on a connected subnet of a port (wan 10.70.1.0/24, lan 10.70.2.0/24); 10.9.0.1 is on none");
    // A /32 makes no subnet, whatever the gateway.
    let host_only = ports_of("[[port]]\nname = 'wan'\nvdev = 'net_ring0'\naddresses = ['10.70.1.1/24', '10.9.0.5/32']\ngateway = '10.70.1.254'\n");
    let e = convert_text(&vs("10.70.1.110 80", "DR", "    real_server 10.9.0.1 80"), &host_only).unwrap_err().to_string();
    assert_eq!(e, "k.conf:4: virtual_server 10.70.1.110 80: real_server 10.9.0.1 80: direct routing only rewrites the MAC address, so the server must be on a connected subnet of a port (wan 10.70.1.0/24); 10.9.0.1 is on none");
    // FNAT and NAT reach real servers through a gateway.
    ok(&vs("10.70.1.120 80", "NAT", "    real_server 10.9.0.1 80"));
    // On-link, on either port.
    let l = ok(&vs("10.70.1.110 80", "DR", "    real_server 10.70.2.11 80\n    real_server 10.70.1.20 80"));
    assert!(l.notes.is_empty(), "{:?}", l.notes);
}

#[test]
fn without_connected_subnets_direct_routing_is_noted_not_checked() {
    // The health bench's lbd: ports without addresses (only the API is used).
    let bare = ports_of("[[port]]\nname = 'wan'\nvdev = 'net_ring0'\n[[port]]\nname = 'lan'\nvdev = 'net_ring1'\n");
    let two = format!("{}{}", vs("10.100.0.1 80", "DR", "    real_server 10.200.0.1 80"), vs("10.100.1.1 80", "DR", "    real_server 10.200.1.1 80"));
    let l = convert_text(&two, &bare).unwrap();
    assert_eq!(
        l.notes,
        ["k.conf:1: virtual_server 10.100.0.1 80 (and 1 more lb_kind DR virtual servers): no port has a connected subnet (lbd.toml addresses with a prefix shorter than /32), so direct-routing real servers are not checked for being on one"]
    );
}

#[test]
fn a_service_without_real_servers_is_accepted_with_a_note() {
    let l = ok(&vs("10.70.1.100 80", "NAT", ""));
    assert_eq!(l.notes, ["k.conf:1: virtual_server 10.70.1.100 80: no real_server: new connections are dropped (no_real_server) until one is added"]);
    assert_eq!(l.table.services().len(), 1);
    let l = ok(&vs("10.70.1.100 80", "NAT", "    sorry_server 10.70.2.99 80"));
    assert_eq!(l.notes, ["k.conf:1: virtual_server 10.70.1.100 80: no real_server: new connections go to sorry_server 10.70.2.99 80"]);
}

#[test]
fn table_refusals_name_the_file_and_line() {
    // Port 0 is refused by the fast path's table, which names no line of its own.
    let e = err(&vs("10.70.1.100 0", "NAT", "    real_server 10.70.2.11 80"));
    assert_eq!(e, "k.conf:1: virtual service TCP 10.70.1.100:0: port 0 is not a valid virtual port");
    let e = err(&vs("10.70.1.100 80", "NAT", "    real_server 10.70.2.11 80\n    real_server 10.70.2.12 0"));
    assert_eq!(e, "k.conf:5: virtual service TCP 10.70.1.100:80: port 0 is not a valid real-server port");
}

/// DPVS's order (service first, local addresses after): an FNAT service without local
/// addresses loads and refuses new connections with a counted reason; the file says so.
#[test]
fn fnat_without_local_addresses_loads_with_a_note() {
    let l = ok("local_address_group lg {\n}\nvirtual_server 10.70.1.100 80 {\n    lb_algo rr\n    lb_kind FNAT\n    laddr_group_name lg\n    real_server 10.70.2.11 80\n}\n");
    let (_, svc) = l.table.lookup(&fastpath::service::ServiceKey { vip: "10.70.1.100".parse().unwrap(), port: 80, proto: fastpath::L4Proto::Tcp }).unwrap();
    assert!(svc.laddrs.is_empty());
    let l = ok(&vs("10.70.1.100 80", "FNAT", "    real_server 10.70.2.11 80"));
    assert_eq!(l.notes, ["k.conf:1: virtual_server 10.70.1.100 80: lb_kind FNAT without laddr_group_name: no local addresses, so new connections are refused (no_local_address) until some are added (lbctl --add-laddr)"]);
}

/// The configurations the namespace testbed runs (both directors of a pair) and the perf labs
/// write: they must keep loading.
#[test]
fn testbed_and_perf_lab_configurations_still_load() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testbed/configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "conf")).collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let peer = ports_of("[[port]]\nname = 'wan'\nvdev = 'net_ring0'\naddresses = ['10.70.1.3/24']\n[[port]]\nname = 'lan'\nvdev = 'net_ring1'\naddresses = ['10.70.2.3/24']\n");
    for f in &files {
        let cfg = kaconf::load(f).unwrap_or_else(|e| panic!("{e}"));
        for p in [ports(), peer.clone()] {
            let l = convert(&cfg, Options::default(), &p, 1).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert_eq!(l.table.services().len(), cfg.virtual_servers.len(), "{}", f.display());
        }
    }
    // lb-bench's memif lab: 32 local addresses, a TCP and a UDP service on four real servers.
    let lab_ports = ports_of("[[port]]\nname = 'wan'\nvdev = 'net_ring0'\naddresses = ['10.99.1.1/24']\n[[port]]\nname = 'lan'\nvdev = 'net_ring1'\naddresses = ['10.99.2.1/24']\n");
    let mut lab = String::from("local_address_group laddr_g1 {\n");
    for i in 100..132 {
        lab.push_str(&format!("    10.99.2.{i} lan\n"));
    }
    lab.push_str("}\n");
    for (port, proto) in [(80, "TCP"), (53, "UDP")] {
        lab.push_str(&format!("virtual_server 10.99.1.100 {port} {{\n    lb_algo rr\n    lb_kind FNAT\n    protocol {proto}\n    laddr_group_name laddr_g1\n"));
        for r in 11..15 {
            lab.push_str(&format!("    real_server 10.99.2.{r} {port} {{\n        weight 1\n    }}\n"));
        }
        lab.push_str("}\n");
    }
    assert!(convert_text(&lab, &lab_ports).unwrap().notes.is_empty());
    // lb-bench-health: DR services on ports without addresses load (with a note).
    let bare = ports_of("[[port]]\nname = 'wan'\nvdev = 'net_ring0'\n[[port]]\nname = 'lan'\nvdev = 'net_ring1'\n");
    let health = vs("10.100.0.1 80", "DR", "    delay_loop 1\n    alpha\n    real_server 10.200.0.1 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }");
    assert_eq!(convert_text(&health, &bare).unwrap().notes.len(), 1);
}

#[test]
fn syn_proxy_services_get_lbd_toml_settings_and_table_refusals_name_their_line() {
    let text = vs("10.70.1.100 80", "NAT", "    syn_proxy\n    real_server 10.70.2.11 80") + &vs("10.70.1.100 81", "NAT", "    real_server 10.70.2.11 81");
    let cfg = kaconf::parse_str(&text, Path::new("k.conf")).unwrap();
    let conf = fastpath::synproxy::SynProxyConf { mss: 1400, wscale: Some(7), ..Default::default() };
    let opts = Options { syn_proxy: conf, ..Options::default() };
    let l = convert(&cfg, opts, &ports(), 1).unwrap();
    let of = |port: u16| l.table.services().iter().find(|s| s.key.port == port).unwrap().syn_proxy;
    assert_eq!((of(80), of(81)), (Some(conf), None));
    // kaconf refuses syn_proxy on DR and UDP; a model that has it anyway (made through the
    // API) is refused by the fast path's table, at the service's line.
    let mut dr = cfg.clone();
    dr.virtual_servers[1].lb_kind = kaconf::ForwardMode::Dr;
    dr.virtual_servers[1].syn_proxy = true;
    let e = convert(&dr, Options::default(), &ports(), 1).unwrap_err().to_string();
    assert_eq!(e, "k.conf:7: virtual service TCP 10.70.1.100:81: syn_proxy needs FNAT or NAT (DR replies bypass the director)");
    let bad = Options { syn_proxy: fastpath::synproxy::SynProxyConf { ttl: 0, ..conf }, ..Options::default() };
    let e = convert(&cfg, bad, &ports(), 1).unwrap_err().to_string();
    assert_eq!(e, "k.conf:1: virtual service TCP 10.70.1.100:80: syn_proxy syn proxy ttl must be at least 1");
}
