//! End-to-end live changes through lbctl (testbed/configs/drain.conf): removing a Maglev
//! backend moves only its clients; a backend quiesced and then removed while wrk runs drains
//! with zero wrk errors, and new connections never reach it.
//! Needs root, DPDK, iproute2, curl, wrk, nginx; `LBD_BIN`/`LBCTL_BIN` or built binaries.

use std::path::PathBuf;
use std::time::Duration;

use lb_testbed::{cidr, unique_name, StatePaths, Testbed, TopologySpec, UpOptions};

fn conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/drain.conf")
}

fn lbctl_bin() -> String {
    if let Some(p) = std::env::var_os("LBCTL_BIN").filter(|p| !p.is_empty()) {
        return p.to_string_lossy().into_owned();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let p = exe.parent().and_then(|d| d.parent()).expect("target dir").join("lbctl");
    assert!(p.exists(), "{} not found: build it (cargo build -p lbctl) or set LBCTL_BIN", p.display());
    p.display().to_string()
}

const SOURCES: usize = 24;

fn source(i: usize) -> String {
    format!("10.70.1.{}", 30 + i)
}

fn up() -> Testbed {
    let mut spec = TopologySpec::from_keepalived_file(&conf()).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..SOURCES {
        spec = spec.with_client_address(cidr(&format!("{}/24", source(i))));
    }
    Testbed::up(&spec, &UpOptions::new(unique_name("dr")).with_keepalived_conf(conf())).unwrap_or_else(|e| panic!("testbed up: {e}"))
}

fn lbctl(tb: &Testbed, args: &[&str]) -> String {
    let sock = StatePaths::new(tb.name()).api_socket().display().to_string();
    let bin = lbctl_bin();
    let mut v = vec![bin.as_str(), "--socket", sock.as_str()];
    v.extend_from_slice(args);
    tb.exec_ok("director", v).unwrap_or_else(|e| panic!("lbctl {args:?}: {e}"))
}

fn curl_from(tb: &Testbed, src: &str, vip: &str) -> String {
    tb.exec_ok("client", ["curl", "-sS", "-m", "5", "--interface", src, &format!("http://{vip}/")])
        .unwrap_or_else(|e| panic!("curl from {src}: {e}"))
        .trim()
        .to_owned()
}

#[test]
fn removing_a_maglev_backend_moves_only_its_clients() {
    let tb = up();
    let vip = "10.70.1.140";
    let before: Vec<String> = (0..SOURCES).map(|i| curl_from(&tb, &source(i), vip)).collect();
    let on_13 = before.iter().filter(|b| *b == "rs-10.70.2.13").count();
    assert!(on_13 > 0 && on_13 < SOURCES, "clients spread over three backends: {before:?}");
    lbctl(&tb, &["-d", "-t", "10.70.1.140:80", "-r", "10.70.2.13:80"]);
    let after: Vec<String> = (0..SOURCES).map(|i| curl_from(&tb, &source(i), vip)).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if b == "rs-10.70.2.13" {
            assert_ne!(a, "rs-10.70.2.13", "client {i} left the removed backend");
        } else {
            assert_eq!(a, b, "client {i} on a remaining backend did not move");
        }
    }
}

#[test]
fn draining_a_backend_under_wrk_gives_zero_errors() {
    let tb = up();
    let vip = "10.70.1.141";
    let wrk = tb
        .command("client", ["wrk", "-t", "2", "-c", "16", "-d", "8s", &format!("http://{vip}/")])
        .unwrap()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wrk");
    std::thread::sleep(Duration::from_secs(2));
    // Quiesce (weight 0): established connections go on, new ones avoid it.
    lbctl(&tb, &["-e", "-t", "10.70.1.141:80", "-r", "10.70.2.11:80", "-b", "-w", "0"]);
    std::thread::sleep(Duration::from_secs(2));
    // Remove it: tcp_draining_timeout 0 lets its sessions run to their end.
    lbctl(&tb, &["-d", "-t", "10.70.1.141:80", "-r", "10.70.2.11:80"]);
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Socket errors"), "wrk saw socket errors while a backend drained:\n{text}");
    assert!(!text.contains("Non-2xx"), "wrk saw non-2xx:\n{text}");
    assert!(text.contains(" requests in "), "{text}");
    // New connections only reach the remaining backend.
    for i in 0..6 {
        assert_eq!(curl_from(&tb, &source(i), vip), "rs-10.70.2.12");
    }
    let s = tb.read_stats().unwrap();
    assert!(s["totals"]["sessions_draining"].as_u64().unwrap_or(0) > 0, "sessions drained: {}", s["totals"]);
    assert_eq!(s["totals"]["drops"]["drain_timeout"], 0, "{}", s["totals"]);
    assert_eq!(s["totals"]["drops"]["no_session"], 0, "{}", s["totals"]);
}
