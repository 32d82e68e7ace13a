//! Topologies without lbd: namespaces, links, nginx backends, exec, teardown.
//! Needs root, iproute2, ethtool, nginx and curl.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use lb_testbed::{cidr, down, netns, unique_name, Error, Testbed, TopologySpec, UpOptions};

fn up(name: &str) -> Testbed {
    up_spec(name, &TopologySpec::default())
}

fn up_spec(name: &str, spec: &TopologySpec) -> Testbed {
    Testbed::up(spec, &UpOptions::new(name).without_director())
        .unwrap_or_else(|e| panic!("up {name}: {e}"))
}

/// Namespaces of topology `name` (by prefix, the way a human would look).
fn namespaces_of(name: &str) -> Vec<String> {
    let prefix = format!("lbt-{name}-");
    netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

fn assert_gone(name: &str) {
    assert_eq!(
        namespaces_of(name),
        Vec::<String>::new(),
        "namespaces of {name} left over"
    );
    let dir = Path::new("/run/lb-testbed").join(name);
    assert!(!dir.exists(), "{} left over", dir.display());
}

fn curl(tb: &Testbed, node: &str, url: &str) -> String {
    tb.exec_ok(node, ["curl", "-sS", "--max-time", "5", url])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn backends_answer_and_exec_propagates_status() {
    let name = unique_name("t");
    let tb = up(&name);
    assert_eq!(namespaces_of(&name).len(), 5);
    assert_eq!(
        tb.nodes(),
        [
            "client",
            "director",
            "lan",
            "rs-10.70.2.11",
            "rs-10.70.2.12"
        ]
    );

    // Each nginx from its own namespace, and across the bridge.
    for addr in ["10.70.2.11", "10.70.2.12"] {
        let node = format!("rs-{addr}");
        assert_eq!(
            curl(&tb, &node, &format!("http://{addr}/")),
            format!("rs-{addr}\n")
        );
        assert_eq!(curl(&tb, &node, &format!("http://{addr}/healthz")), "ok\n");
    }
    assert_eq!(
        curl(&tb, "rs-10.70.2.11", "http://10.70.2.12/"),
        "rs-10.70.2.12\n"
    );
    assert_eq!(
        curl(&tb, "rs-10.70.2.12", "http://10.70.2.11/"),
        "rs-10.70.2.11\n"
    );

    // The access log names the client endpoint.
    let log = std::fs::read_to_string(tb.access_log_path("rs-10.70.2.12").unwrap()).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("10.70.2.11:") && l.contains("\"GET / HTTP/1.1\" 200")),
        "{log}"
    );

    // Exit codes propagate; exec_ok failures name command, namespace and stderr.
    let out = tb.exec("client", ["sh", "-c", "exit 7"]).unwrap();
    assert_eq!(out.status.code(), Some(7));
    let err = tb
        .exec_ok("client", ["sh", "-c", "echo broken >&2; exit 3"])
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("netns lbt-{name}-client")), "{err}");
    assert!(
        err.contains("broken") && err.contains("exit status: 3"),
        "{err}"
    );
    let err = tb.exec("rs-10.70.2.99", ["true"]).unwrap_err();
    assert!(matches!(err, Error::UnknownNode { .. }), "{err}");
    let err = tb
        .exec_timeout("client", ["sleep", "10"], Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(err, Error::CommandTimeout { .. }), "{err}");

    // Namespaces hold what the topology says.
    let links = tb.exec_ok("director", ["ip", "-br", "link"]).unwrap();
    assert!(
        links.contains("wan0@") && links.contains("lan0@"),
        "{links}"
    );
    let addrs = tb.exec_ok("director", ["ip", "-4", "-br", "addr"]).unwrap();
    assert!(
        !addrs.contains("wan0") && !addrs.contains("lan0"),
        "director ports must have no addresses: {addrs}"
    );
    let v6 = tb
        .exec_ok(
            "director",
            ["sysctl", "-n", "net.ipv6.conf.wan0.disable_ipv6"],
        )
        .unwrap();
    assert_eq!(v6.trim(), "1");
    let features = tb.exec_ok("client", ["ethtool", "-k", "c0"]).unwrap();
    assert!(features.contains("tx-checksumming: off"), "{features}");
    let route = tb
        .exec_ok("client", ["ip", "route", "show", "default"])
        .unwrap();
    assert!(route.contains("via 10.70.1.1 dev c0"), "{route}");

    let report = tb.down().unwrap();
    assert_eq!(report.namespaces_removed.len(), 5);
    assert_gone(&name);
}

#[test]
fn two_topologies_coexist() {
    let (a, b) = (unique_name("t"), unique_name("t"));
    let ta = up(&a);
    let tb = up_spec(&b, &TopologySpec::default().with_backend_count(1));
    assert_eq!(namespaces_of(&a).len(), 5);
    assert_eq!(namespaces_of(&b).len(), 4);
    assert_eq!(
        curl(&ta, "rs-10.70.2.11", "http://10.70.2.12/"),
        "rs-10.70.2.12\n"
    );
    assert_eq!(
        curl(&tb, "rs-10.70.2.11", "http://10.70.2.11/"),
        "rs-10.70.2.11\n"
    );
    // Same addresses, separate worlds: b has no 10.70.2.12.
    let out = tb
        .exec(
            "rs-10.70.2.11",
            ["curl", "-sS", "--max-time", "2", "http://10.70.2.12/"],
        )
        .unwrap();
    assert!(!out.status.success());

    ta.down().unwrap();
    assert_gone(&a);
    assert_eq!(
        curl(&tb, "rs-10.70.2.11", "http://10.70.2.11/healthz"),
        "ok\n"
    );
    drop(tb);
    assert_gone(&b);
}

#[test]
fn drop_during_panic_tears_down() {
    let name = unique_name("t");
    let n = name.clone();
    let result = std::panic::catch_unwind(move || {
        let tb = up_spec(&n, &TopologySpec::default().with_backend_count(1));
        assert_eq!(namespaces_of(&n).len(), 4);
        let _keep = &tb;
        panic!("deliberate panic with a live topology");
    });
    assert!(result.is_err());
    assert_gone(&name);
}

#[test]
fn up_replaces_and_down_works_without_state_dir() {
    let name = unique_name("t");
    let first = up_spec(&name, &TopologySpec::default().with_backend_count(1)).detach();
    // `up` on an existing name tears the old one down first.
    let tb = up(&name);
    assert_eq!(namespaces_of(&name).len(), 5);
    let name = tb.detach();
    assert_eq!(first, name);
    // Without the state dir, `down` finds the namespaces by name (and kills nginx in them).
    std::fs::remove_dir_all(Path::new("/run/lb-testbed").join(&name)).unwrap();
    let report = down(&name).unwrap();
    assert_eq!(report.namespaces_removed.len(), 5);
    assert_gone(&name);
    // Down on nothing is a success.
    let report = down(&name).unwrap();
    assert!(report.namespaces_removed.is_empty() && !report.state_dir_removed);
}

#[test]
fn down_leaves_similarly_named_topologies_alone() {
    let name = unique_name("t");
    let longer = format!("{name}-2");
    let tb = up_spec(&longer, &TopologySpec::default().with_backend_count(0));
    down(&name).unwrap();
    assert_eq!(namespaces_of(&longer).len(), 3);
    tb.down().unwrap();
    assert_gone(&longer);
}

#[test]
fn extra_addresses_routes_and_spawned_processes() {
    let name = unique_name("t");
    let spec = TopologySpec::default()
        .with_backend_count(1)
        .with_client_address(cidr("10.70.1.11/24"))
        .with_client_route(cidr("192.0.2.0/24"), Ipv4Addr::new(10, 70, 1, 1));
    let mut tb = up_spec(&name, &spec);
    let addrs = tb
        .exec_ok("client", ["ip", "-4", "-br", "addr", "show", "dev", "c0"])
        .unwrap();
    assert!(
        addrs.contains("10.70.1.10/24") && addrs.contains("10.70.1.11/24"),
        "{addrs}"
    );
    let routes = tb.exec_ok("client", ["ip", "route"]).unwrap();
    assert!(routes.contains("192.0.2.0/24 via 10.70.1.1"), "{routes}");

    let mut child = tb.spawn("client", ["sleep", "1000"]).unwrap();
    let start = Instant::now();
    tb.down().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "sleep should have been killed");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_gone(&name);
}

#[test]
fn invalid_input_creates_nothing() {
    let err = Testbed::up(
        &TopologySpec::default(),
        &UpOptions::new("bad/name").without_director(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    let name = unique_name("t");
    let mut spec = TopologySpec::default();
    spec.client.iface = "a-name-that-is-too-long".into();
    let err = Testbed::up(&spec, &UpOptions::new(&name).without_director()).unwrap_err();
    assert!(err.to_string().contains("client.iface"), "{err}");
    assert_gone(&name);
}

#[test]
fn failure_half_way_cleans_up() {
    // Backend on a port nginx cannot bind twice is hard to arrange; a backend
    // gateway outside its subnet makes `ip route add` fail after namespaces,
    // links and the first nginx exist.
    let name = unique_name("t");
    let mut spec = TopologySpec::default();
    spec.backends[1].gateway = Some(Ipv4Addr::new(192, 0, 2, 1));
    let err = Testbed::up(&spec, &UpOptions::new(&name).without_director()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ip -n") && msg.contains(&format!("lbt-{name}-rs-10.70.2.12")),
        "{msg}"
    );
    assert_gone(&name);
}
