//! End-to-end: the real lbd in a testbed, with real Linux hosts. A client resolves the
//! director by ARP, pings it, and reaches a socket behind the exception TAP.
//! Needs root, DPDK, iproute2, arping, curl, python3; `LBD_BIN` or a built target/*/lbd.

use std::time::Duration;

use lb_testbed::{unique_name, wait_until, Driver, Testbed, TopologySpec, UpOptions};


fn up(driver: Driver) -> Testbed {
    let mut opts = UpOptions::new(unique_name("e2"));
    opts.driver = Some(driver);
    Testbed::up(&TopologySpec::default(), &opts).unwrap_or_else(|e| panic!("testbed up: {e}"))
}

fn totals(tb: &Testbed) -> serde_json::Value {
    tb.read_stats().unwrap_or_else(|e| panic!("stats: {e}"))["totals"].clone()
}

fn counter(tb: &Testbed, name: &str) -> u64 {
    totals(tb)[name].as_u64().unwrap_or_else(|| panic!("no counter {name} in stats"))
}

/// Waits until lbd has published `name` >= `min` (it publishes every few milliseconds).
fn wait_counter(tb: &Testbed, name: &str, min: u64) {
    wait_until(&format!("lbd counter {name} >= {min}"), Duration::from_secs(5), Duration::from_millis(50), || Ok(counter(tb, name) >= min))
        .unwrap_or_else(|e| panic!("{e}; totals: {}", totals(tb)));
}

fn wan_mac(tb: &Testbed) -> String {
    let s = tb.read_stats().unwrap();
    s["ports"][0]["mac"].as_str().expect("port mac in stats").to_owned()
}

#[test]
fn client_arps_and_pings_the_director_and_reaches_the_kernel_behind_the_tap() {
    let tb = up(Driver::AfPacket);
    let mac = wan_mac(&tb);

    // ARP: the reply comes from lbd with the port's MAC.
    tb.exec_ok("client", ["ip", "neigh", "flush", "dev", "c0"]).unwrap();
    let out = tb.exec_ok("client", ["arping", "-c", "2", "-w", "5", "-I", "c0", "10.70.1.1"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.to_lowercase().contains(&mac.to_lowercase()), "arping answer names the port MAC {mac}: {out}");
    wait_counter(&tb, "arp_replies", 2);

    // ICMP echo answered by lbd.
    let before = counter(&tb, "icmp_echo_replies");
    let out = tb.exec_ok("client", ["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.70.1.1"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("3 received"), "{out}");
    wait_counter(&tb, "icmp_echo_replies", before + 3);
    let neigh = tb.exec_ok("client", ["ip", "neigh", "show", "10.70.1.1"]).unwrap();
    assert!(neigh.to_lowercase().contains(&mac.to_lowercase()), "{neigh}");

    // Exception path: 10.70.1.2 belongs only to the kernel side of tap-wan.
    let mut child = tb.command("director", ["python3", "-m", "http.server", "--bind", "10.70.1.2", "8080"]).unwrap().stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let listening = wait_until("http.server on 10.70.1.2:8080", Duration::from_secs(10), Duration::from_millis(100), || {
        Ok(tb.exec_ok("director", ["ss", "-ltn"]).map(|o| o.contains("10.70.1.2:8080")).unwrap_or(false))
    });
    let curl = tb.exec("client", ["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://10.70.1.2:8080/"]);
    let _ = child.kill();
    let _ = child.wait();
    listening.unwrap_or_else(|e| panic!("{e}"));
    let curl = curl.unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200", "curl through the TAP: {}", String::from_utf8_lossy(&curl.stderr));
    wait_counter(&tb, "to_kernel", 3);
    wait_counter(&tb, "from_kernel", 3);

    let log = tb.lbd_log().unwrap();
    assert!(!log.contains("panicked"), "lbd log: {log}");
    let t = totals(&tb);
    assert_eq!(t["drops"]["tx_full"], 0, "{t}");
    tb.down().unwrap();
}

#[test]
fn ping_over_af_xdp() {
    let tb = up(Driver::AfXdp);
    let out = tb.exec_ok("client", ["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.70.1.1"]).unwrap_or_else(|e| panic!("{e}; lbd log: {}", tb.lbd_log().unwrap_or_default()));
    assert!(out.contains("3 received"), "{out}");
    wait_counter(&tb, "icmp_echo_replies", 3);
    tb.down().unwrap();
}
