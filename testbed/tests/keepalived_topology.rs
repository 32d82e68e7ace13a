//! Topologies shaped by a keepalived.conf: backends per real server, nginx on
//! every TCP port, UDP echo on every UDP port, the director's LAN addresses,
//! and lbd loading the same file. Needs root, iproute2, ethtool, nginx, curl,
//! python3 and socat; the last test needs the real lbd (`LBD_BIN`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lb_testbed::{cidr, netns, unique_name, Testbed, TopologySpec, UpOptions};

/// A keepalived.conf in a fresh temp directory, removed on drop.
struct Conf(PathBuf);

impl Conf {
    fn new(text: &str) -> Conf {
        let dir = std::env::temp_dir().join(unique_name("lbt-ka-"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keepalived.conf");
        std::fs::write(&path, text).unwrap();
        Conf(path)
    }
}

impl Drop for Conf {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A FNAT virtual server with these real servers.
fn vs(vip: &str, port: u16, proto: &str, rs: &[(&str, u16)]) -> String {
    let mut s = format!(
        "virtual_server {vip} {port} {{\n    lb_algo rr\n    lb_kind FNAT\n    protocol {proto}\n    \
         laddr_group_name laddr_g1\n"
    );
    for (ip, p) in rs {
        s.push_str(&format!(
            "    real_server {ip} {p} {{\n        weight 1\n    }}\n"
        ));
    }
    s + "}\n"
}

const LADDRS: &str = "local_address_group laddr_g1 {\n    10.70.2.100 lan\n}\n";

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

/// Sends one datagram with socat from `node` and returns what came back.
fn udp_echo(tb: &Testbed, node: &str, addr: &str, port: u16, payload: &str) -> String {
    let script = format!("printf %s '{payload}' | socat -T2 - UDP4:{addr}:{port}");
    tb.exec_ok(node, ["sh", "-c", &script])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn backends_serve_every_port_of_their_virtual_services() {
    let conf = Conf::new(
        &[
            LADDRS.to_owned(),
            vs(
                "10.70.1.100",
                80,
                "TCP",
                &[("10.70.2.11", 80), ("10.70.3.21", 80)],
            ),
            vs(
                "10.70.1.100",
                8080,
                "TCP",
                &[("10.70.2.11", 8080), ("10.70.3.21", 8080)],
            ),
            vs(
                "10.70.1.100",
                53,
                "UDP",
                &[("10.70.2.11", 5353), ("10.70.3.21", 5353)],
            ),
        ]
        .concat(),
    );
    let name = unique_name("k");
    let opts = UpOptions::new(&name).without_director();
    let tb = Testbed::up_from_keepalived(&conf.0, &opts).unwrap_or_else(|e| panic!("up: {e}"));
    assert_eq!(
        tb.nodes(),
        [
            "client",
            "director",
            "lan",
            "rs-10.70.2.11",
            "rs-10.70.3.21"
        ]
    );
    let lan = &tb.spec().director.lan;
    assert_eq!(
        lan.lbd_addresses,
        [cidr("10.70.2.1/24"), cidr("10.70.3.1/24")]
    );
    assert_eq!(lan.tap_addresses, [cidr("10.70.2.2/24")]);

    for addr in ["10.70.2.11", "10.70.3.21"] {
        let node = format!("rs-{addr}");
        for port in [80, 8080] {
            assert_eq!(
                curl(&tb, &node, &format!("http://{addr}:{port}/")),
                format!("{node}\n")
            );
            assert_eq!(
                curl(&tb, &node, &format!("http://{addr}:{port}/healthz")),
                "ok\n"
            );
        }
        assert_eq!(udp_echo(&tb, &node, addr, 5353, "hello"), "hello");
        // Its own address and gateway.
        let route = tb
            .exec_ok(&node, ["ip", "route", "show", "default"])
            .unwrap();
        let gw = if addr.starts_with("10.70.2.") {
            "10.70.2.1"
        } else {
            "10.70.3.1"
        };
        assert!(route.contains(&format!("via {gw}")), "{route}");
    }
    // The logs name the client endpoint.
    let log = std::fs::read_to_string(tb.udp_log_path("rs-10.70.3.21").unwrap()).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("10.70.3.21:") && l.ends_with("-> 10.70.3.21:5353 5")),
        "{log}"
    );
    let log = std::fs::read_to_string(tb.access_log_path("rs-10.70.2.11").unwrap()).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("-> 10.70.2.11:8080 \"GET / HTTP/1.1\" 200")),
        "{log}"
    );

    // The file lbd would read is a copy of the original.
    let copy = tb.state_dir().join("keepalived.conf");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&conf.0).unwrap()
    );

    let echo_pid: u32 = std::fs::read_to_string(tb.state_dir().join("rs-10.70.2.11/udp-echo.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let name = tb.name().to_owned();
    tb.down().unwrap();
    assert!(
        !Path::new(&format!("/proc/{echo_pid}")).exists(),
        "udp echo survived teardown"
    );
    assert_gone(&name);
}

#[test]
fn detached_echo_servers_are_killed_by_down() {
    let conf = Conf::new(&(LADDRS.to_owned() + &vs("192.0.2.1", 53, "UDP", &[("10.70.2.2", 53)])));
    let name = unique_name("k");
    let opts = UpOptions::new(&name).without_director();
    let tb = Testbed::up_from_keepalived(&conf.0, &opts).unwrap_or_else(|e| panic!("up: {e}"));
    // .2 is a real server, so the tap address would be .253; nginx still on 80.
    assert_eq!(
        tb.spec().director.lan.tap_addresses,
        [cidr("10.70.2.253/24")]
    );
    assert_eq!(
        curl(&tb, "rs-10.70.2.2", "http://10.70.2.2/healthz"),
        "ok\n"
    );
    assert_eq!(udp_echo(&tb, "rs-10.70.2.2", "10.70.2.2", 53, "x"), "x");
    let name = tb.detach();
    let report = lb_testbed::down(&name).unwrap();
    assert_eq!(report.namespaces_removed.len(), 4);
    assert_gone(&name);
}

#[test]
fn invalid_configurations_fail_clearly_and_leave_nothing() {
    // (file, what the error must say, whether the file itself fails to parse)
    let cases = [
        (
            vs(
                "10.70.1.100",
                80,
                "TCP",
                &[("10.70.2.11", 80), ("10.70.1.20", 80)],
            ),
            vec!["real_server 10.70.1.20 80", "client subnet 10.70.1.0/24"],
            false,
        ),
        (
            vs(
                "10.70.1.100",
                80,
                "TCP",
                &[("10.70.4.1", 80), ("10.70.4.254", 80)],
            ),
            vec![
                "subnet 10.70.4.0/24",
                "10.70.4.1 is a real server and 10.70.4.254 is a real server",
            ],
            false,
        ),
        (
            "virtual_server 10.70.1.100 80 {\n    lb_kind FNAT\n}\n".to_owned(),
            vec!["keepalived.conf:", "lb_algo"],
            true,
        ),
    ];
    for (text, wanted, unparsable) in cases {
        let conf = Conf::new(&(LADDRS.to_owned() + &text));
        let name = unique_name("k");
        let err = Testbed::up_from_keepalived(&conf.0, &UpOptions::new(&name).without_director())
            .unwrap_err();
        let msg = err.to_string();
        for w in wanted {
            assert!(msg.contains(w), "{w:?} not in: {msg}");
        }
        assert_gone(&name);
        if unparsable {
            // Given only as lbd's file, it is refused before anything exists, too.
            let opts = UpOptions::new(&name).with_keepalived_conf(&conf.0);
            let err = Testbed::up(&TopologySpec::default(), &opts).unwrap_err();
            assert!(err.to_string().contains("lb_algo"), "{err}");
            assert_gone(&name);
        }
    }
}

#[test]
fn real_lbd_loads_the_demo_services() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fnat-demo.conf");
    let name = unique_name("k");
    let opts = UpOptions {
        ready_timeout: Duration::from_secs(60),
        ..UpOptions::new(&name)
    };
    let tb = Testbed::up_from_keepalived(&conf, &opts).unwrap_or_else(|e| panic!("up: {e}"));
    let toml = std::fs::read_to_string(tb.state_dir().join("lbd.toml")).unwrap();
    let expect = format!("services = \"/run/lb-testbed/{name}/keepalived.conf\"");
    assert!(toml.contains(&expect), "{toml}");
    let stats = tb.read_stats().unwrap();
    let services = stats["services"]
        .as_array()
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(services.len(), 2, "{stats}");
    tb.down().unwrap();
    assert_gone(&name);
}
