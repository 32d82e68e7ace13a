//! End-to-end flow control and client lists (testbed/configs/flow-acl.conf), with clients on
//! several source addresses in the client namespace.
//! Needs root, DPDK, iproute2, curl, python3, nginx; `LBD_BIN` or a built target/*/lbd.

#![allow(clippy::cast_possible_truncation)] // counts printed by the python client are small whole numbers

use std::path::PathBuf;
use std::time::Duration;

use lb_testbed::{cidr, unique_name, wait_until, Testbed, TopologySpec, UpOptions};

fn conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/flow-acl.conf")
}

fn up(workers: u32) -> Testbed {
    let mut spec = TopologySpec::from_keepalived_file(&conf()).unwrap_or_else(|e| panic!("{e}"));
    for a in ["10.70.1.20/24", "10.70.1.66/24", "10.70.1.77/24"] {
        spec = spec.with_client_address(cidr(a));
    }
    let mut opts = UpOptions::new(unique_name("fc")).with_keepalived_conf(conf());
    opts.workers = workers;
    Testbed::up(&spec, &opts).unwrap_or_else(|e| panic!("testbed up: {e}"))
}

/// Runs a python3 program in the client namespace and returns its stdout.
fn py(tb: &Testbed, program: &str) -> String {
    let out = tb.exec_timeout("client", ["python3", "-c", program], Duration::from_secs(60)).expect("python3 runs");
    assert!(out.status.success(), "python failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn drops(tb: &Testbed, reason: &str) -> u64 {
    tb.read_stats().unwrap()["totals"]["drops"][reason].as_u64().unwrap_or(0)
}

#[test]
fn cps_limit_admits_at_most_the_window_budget() {
    let workers = 2u32;
    let tb = up(workers);
    // 1000 connection attempts over 5 s from 4 source addresses.
    let out = py(
        &tb,
        r#"
import socket, time
srcs = ["10.70.1.10", "10.70.1.20", "10.70.1.66", "10.70.1.77"]
ok = refused = other = 0
start = time.time()
for i in range(1000):
    target = start + i * 0.005
    d = target - time.time()
    if d > 0:
        time.sleep(d)
    s = socket.socket()
    s.settimeout(2)
    s.bind((srcs[i % 4], 0))
    try:
        s.connect(("10.70.1.130", 80))
        ok += 1
    except ConnectionRefusedError:
        refused += 1
    except OSError:
        other += 1
    s.close()
print(ok, refused, other, round(time.time() - start, 2))
"#,
    );
    let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let (ok, refused, other, secs) = (v[0] as u64, v[1] as u64, v[2] as u64, v[3]);
    eprintln!("cps 50: {ok} accepted, {refused} refused, {other} other in {secs} s");
    // Windows open with the burst: 5 s of attempts see 5 windows (6 if the run overran 5 s).
    let windows = if secs > 5.0 { 6 } else { 5 };
    assert!(ok <= 50 * windows + u64::from(workers), "accepted {ok} over {secs} s");
    assert!(ok >= 150, "the limit admits its budget: {ok}");
    assert_eq!(ok + refused + other, 1000);
    assert_eq!(other, 0, "refusals are resets, not timeouts");
    let counted = wait_until("cps refusals counted", Duration::from_secs(5), Duration::from_millis(50), || Ok(drops(&tb, "cps_limit") == refused));
    counted.unwrap_or_else(|e| panic!("{e}: lbd counted {}", drops(&tb, "cps_limit")));
}

#[test]
fn concurrency_cap_refuses_the_eleventh_and_keeps_ten() {
    let tb = up(1);
    let out = py(
        &tb,
        r#"
import socket
socks = []
for i in range(10):
    s = socket.create_connection(("10.70.1.131", 80), timeout=3)
    socks.append(s)
try:
    socket.create_connection(("10.70.1.131", 80), timeout=3)
    eleventh = "accepted"
except ConnectionRefusedError:
    eleventh = "refused"
served = 0
for s in socks:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    if b"200 OK" in s.recv(4096):
        served += 1
    s.close()
print(eleventh, served)
"#,
    );
    assert_eq!(out.trim(), "refused 10", "the 11th is refused, the 10 open ones are served");
    wait_until("conn_limit counted", Duration::from_secs(5), Duration::from_millis(50), || Ok(drops(&tb, "conn_limit") == 1))
        .unwrap_or_else(|e| panic!("{e}: {}", tb.read_stats().unwrap()["totals"]));
}

#[test]
fn allow_and_deny_lists() {
    let tb = up(1);
    // (curl exit code, body, stderr); curl exits 7 on a reset (refused), 28 on a timeout.
    let get = |src: &str, vip: &str| {
        let out = tb.exec("client", ["curl", "-sS", "-m", "3", "--interface", src, &format!("http://{vip}/")]).unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).trim().to_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Exclude list: 10.70.1.66 gets nothing at all (silently dropped), others are served.
    let (code, _, err) = get("10.70.1.66", "10.70.1.133");
    assert_eq!(code, 28, "denied source gets no answer and times out: {err}");
    assert_eq!(get("10.70.1.10", "10.70.1.133").1, "rs-10.70.2.11");
    // Allow list 10.70.1.0/28: .10 is served; .20 and .77 are outside it and refused (reset).
    assert_eq!(get("10.70.1.10", "10.70.1.132").1, "rs-10.70.2.11");
    for src in ["10.70.1.20", "10.70.1.77"] {
        let (code, _, err) = get(src, "10.70.1.132");
        assert_eq!(code, 7, "{src} outside the allow list is refused by a reset: {err}");
    }
    // curl retransmits its SYN in 3 s: every one is dropped and counted.
    wait_until("refusals counted", Duration::from_secs(5), Duration::from_millis(50), || {
        Ok(drops(&tb, "client_denied") >= 1 && drops(&tb, "client_not_allowed") == 2)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", tb.read_stats().unwrap()["totals"]));
}
