//! End-to-end scheduling depth and forwarding modes (testbed/configs/sched-modes.conf):
//! hashing schedulers keep one client on one backend; DR and NAT serve curl and wrk.
//! Needs root, DPDK, iproute2, curl, wrk, nginx; `LBD_BIN` or a built target/*/lbd.

use std::path::PathBuf;
use std::time::Duration;

use lb_testbed::{unique_name, Testbed, UpOptions};

fn conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/sched-modes.conf")
}

fn up() -> Testbed {
    Testbed::up_from_keepalived(&conf(), &UpOptions::new(unique_name("md"))).unwrap_or_else(|e| panic!("testbed up: {e}"))
}

fn curl(tb: &Testbed, url: &str) -> String {
    tb.exec_ok("client", ["curl", "-sS", "-m", "5", url])
        .unwrap_or_else(|e| panic!("curl {url}: {e}\nlbd log: {}", tb.lbd_log().unwrap_or_default()))
        .trim()
        .to_owned()
}

fn wrk_ok(tb: &Testbed, url: &str) -> u64 {
    let out = tb.exec_timeout("client", ["wrk", "-t", "2", "-c", "8", "-d", "4s", url], Duration::from_secs(60)).expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk {url}: {text}");
    assert!(!text.contains("Socket errors"), "wrk {url} saw socket errors:\n{text}");
    assert!(!text.contains("Non-2xx"), "wrk {url} saw non-2xx:\n{text}");
    text.lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap_or(0)))
        .unwrap_or_else(|| panic!("no request count:\n{text}"))
}

#[test]
fn hashing_schedulers_pin_a_client_and_dr_and_nat_serve_traffic() {
    let tb = up();
    for vip in ["10.70.1.101", "10.70.1.102", "10.70.1.103"] {
        let url = format!("http://{vip}/");
        let bodies: Vec<String> = (0..20).map(|_| curl(&tb, &url)).collect();
        assert!(bodies[0].starts_with("rs-10.70.2."), "{vip}: {bodies:?}");
        assert!(bodies.iter().all(|b| *b == bodies[0]), "{vip}: 20 requests from one client address hit one backend: {bodies:?}");
    }

    // DR: the backends answer directly; both serve in rr order.
    let dr: Vec<String> = (0..6).map(|_| curl(&tb, "http://10.70.1.110/")).collect();
    assert_eq!(dr.iter().filter(|b| *b == "rs-10.70.2.11").count(), 3, "{dr:?}");
    assert_eq!(dr.iter().filter(|b| *b == "rs-10.70.2.12").count(), 3, "{dr:?}");
    // DR keeps the client's address: the backend's access log shows it.
    let log = std::fs::read_to_string(tb.access_log_path("rs-10.70.2.11").unwrap()).unwrap();
    assert!(log.lines().any(|l| l.starts_with("10.70.1.10:") && l.contains("10.70.1.110:80")), "DR peer is the client:\n{log}");

    // NAT with wrr 2:1 on port 8080; the client's address is kept too.
    let nat: Vec<String> = (0..9).map(|_| curl(&tb, "http://10.70.1.120/")).collect();
    assert_eq!(nat.iter().filter(|b| *b == "rs-10.70.2.11").count(), 6, "wrr 2:1 {nat:?}");
    let log = std::fs::read_to_string(tb.access_log_path("rs-10.70.2.12").unwrap()).unwrap();
    assert!(log.lines().any(|l| l.starts_with("10.70.1.10:") && l.contains(":8080")), "NAT peer is the client:\n{log}");

    let d = wrk_ok(&tb, "http://10.70.1.110/");
    let n = wrk_ok(&tb, "http://10.70.1.120/");
    assert!(d > 500 && n > 500, "DR {d} and NAT {n} requests in 4 s");
    let s = tb.read_stats().unwrap();
    assert_eq!(s["totals"]["drops"]["no_session"], 0, "{}", s["totals"]);
    eprintln!("wrk 4 s: DR {d} requests, NAT {n} requests");
}

#[test]
fn two_directors_with_the_same_configuration_agree() {
    // Two independent lbd instances (two topologies), clients on the same addresses.
    let mut spec = lb_testbed::TopologySpec::from_keepalived_file(&conf()).unwrap();
    let sources = ["10.70.1.21", "10.70.1.22", "10.70.1.23", "10.70.1.24", "10.70.1.25", "10.70.1.26"];
    for s in sources {
        spec = spec.with_client_address(lb_testbed::cidr(&format!("{s}/24")));
    }
    let up = || Testbed::up(&spec, &UpOptions::new(unique_name("ag")).with_keepalived_conf(conf())).unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (up(), up());
    for vip in ["10.70.1.102", "10.70.1.103"] {
        let pick = |tb: &Testbed, src: &str| {
            tb.exec_ok("client", ["curl", "-sS", "-m", "5", "--interface", src, &format!("http://{vip}/")]).unwrap_or_else(|e| panic!("{e}")).trim().to_owned()
        };
        let from_a: Vec<String> = sources.iter().map(|s| pick(&a, s)).collect();
        let from_b: Vec<String> = sources.iter().map(|s| pick(&b, s)).collect();
        assert_eq!(from_a, from_b, "{vip}: both directors send each client to the same backend");
        assert!(from_a.iter().any(|x| x == "rs-10.70.2.11") && from_a.iter().any(|x| x == "rs-10.70.2.12"), "{vip}: clients spread: {from_a:?}");
    }
}
