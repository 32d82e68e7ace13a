//! SYN proxy end to end (testbed/configs/synproxy.conf: VIP 10.70.1.100 port 80 FNAT with
//! `syn_proxy`, port 8080 the same without it, real nginx on 10.70.2.11 and .12): curl through
//! the proxy reaches both backends and lbd counts the cookies, accepted connections and window
//! updates; a spoofed SYN flood (hping3 --rand-source from the client namespace) leaves the
//! backends without a single half-open connection while curl keeps working, and grows lbd's
//! cookie count by the flood; the same flood against port 8080 does leave half-open connections
//! at the backends (the control that shows the half-open check can fail).
//! Needs root, DPDK, iproute2, curl, nginx, hping3 (scripts/setup.sh); `LBD_BIN` or a built
//! target/*/lbd.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lb_testbed::{unique_name, wait_until, Testbed, UpOptions};
use serde_json::Value;

const VIP: &str = "10.70.1.100";
/// The service with `syn_proxy`.
const PROXIED: u16 = 80;
/// The same service without it.
const PLAIN: u16 = 8080;
const BACKENDS: [&str; 2] = ["rs-10.70.2.11", "rs-10.70.2.12"];
const LIPS: [&str; 2] = ["10.70.2.100", "10.70.2.101"];
/// Spoofed SYNs per flood, hping3 sleeping FLOOD_GAP_US microseconds between two (-c / -i u):
/// a bounded flood, measured at ~13k SYNs/s here (about 3 s). Far more than the backends'
/// SYN backlog (512), and slow enough that lbd receives nearly all of it on a loaded machine,
/// so that its counters can be checked against what hping3 sent.
const FLOOD_COUNT: u64 = 40_000;
const FLOOD_GAP_US: u64 = 30;
/// Bound on one hping3 run.
const FLOOD_LIMIT: Duration = Duration::from_secs(20);
/// Percentage of the flood lbd must have counted (the rest may be lost before lbd: the
/// af_packet ring, the veth, when other processes hold the CPUs).
const MIN_SEEN_PCT: u64 = 80;

/// Floods share the machine's two CPUs with lbd: the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/synproxy.conf")
}

fn up(prefix: &str) -> Testbed {
    let found = std::process::Command::new("sh").args(["-c", "command -v hping3"]).output().expect("sh runs");
    assert!(found.status.success(), "hping3 is not installed: run scripts/setup.sh (Debian package hping3)");
    // No health checks in synproxy.conf: no lb-slowpath beside lbd.
    let opts = UpOptions::new(unique_name(prefix)).without_slowpath();
    Testbed::up_from_keepalived(&conf(), &opts).unwrap_or_else(|e| panic!("testbed up: {e}"))
}

fn totals(tb: &Testbed) -> Value {
    tb.read_stats().unwrap_or_else(|e| panic!("stats: {e}"))["totals"].clone()
}

fn scalar(t: &Value, name: &str) -> u64 {
    t[name].as_u64().unwrap_or_else(|| panic!("no counter {name} in lbd's totals: {t}"))
}

fn dropped(t: &Value, reason: &str) -> u64 {
    t["drops"][reason].as_u64().unwrap_or_else(|| panic!("no drop reason {reason} in lbd's totals: {t}"))
}

/// Waits (5 s at most) until lbd's published totals satisfy `cond` (it rewrites its stats file
/// every ~200 ms).
fn wait_totals(tb: &Testbed, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let r = wait_until(what, Duration::from_secs(5), Duration::from_millis(50), || Ok(cond(&totals(tb))));
    let t = totals(tb);
    r.unwrap_or_else(|e| panic!("{e}; totals: {t}"));
    t
}

/// One curl to VIP:`port` (3 s at most): the body, or why it failed.
fn curl(tb: &Testbed, port: u16) -> Result<String, String> {
    let url = format!("http://{VIP}:{port}/");
    let o = tb.exec_timeout("client", ["curl", "-sS", "-m", "3", url.as_str()], Duration::from_secs(10)).expect("curl runs");
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
    }
}

/// Half-open (SYN-RECV) TCP connections in each backend's namespace, by backend.
fn half_open(tb: &Testbed) -> BTreeMap<&'static str, usize> {
    BACKENDS
        .iter()
        .map(|&rs| {
            let out = tb.exec_timeout(rs, ["ss", "-Htn", "state", "syn-recv"], Duration::from_secs(10)).expect("ss runs");
            assert!(out.status.success(), "ss in {rs}: {}", String::from_utf8_lossy(&out.stderr));
            (rs, String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count())
        })
        .collect()
}

/// TCP segments received in a backend's namespace (the kernel's Tcp InSegs).
fn tcp_in_segs(tb: &Testbed, rs: &str) -> u64 {
    let snmp = tb.exec_ok(rs, ["cat", "/proc/net/snmp"]).expect("/proc/net/snmp");
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().expect("Tcp: header"), tcp.next().expect("Tcp: values"));
    let i = names.split_whitespace().position(|n| n == "InSegs").expect("InSegs");
    values.split_whitespace().nth(i).and_then(|v| v.parse().ok()).expect("InSegs value")
}

fn tcp_in_segs_all(tb: &Testbed) -> u64 {
    BACKENDS.iter().map(|rs| tcp_in_segs(tb, rs)).sum()
}

/// At most this many segments reach a backend per curl (SYN, ACK, request, FIN, ACKs).
const SEGS_PER_CURL: u64 = 10;

/// Starts hping3 in the client namespace: FLOOD_COUNT SYNs to VIP:`port` from random
/// (spoofed) sources, one every FLOOD_GAP_US µs. What comes back for them (lbd's cookie
/// SYN-ACKs, or the backends' SYN-ACKs through lbd) goes to the client namespace, whose kernel
/// drops it: those addresses are not its own and it does not forward. Nothing answers, so no
/// RST ever clears a backend's half-open connection.
fn start_flood(tb: &mut Testbed, port: u16) -> Child {
    let (count, gap, port, limit) = (FLOOD_COUNT.to_string(), format!("u{FLOOD_GAP_US}"), port.to_string(), FLOOD_LIMIT.as_secs().to_string());
    let args = ["timeout", limit.as_str(), "hping3", "-q", "-S", "-p", port.as_str(), "--rand-source", "-c", count.as_str(), "-i", gap.as_str(), VIP];
    tb.spawn("client", args).unwrap_or_else(|e| panic!("start hping3: {e}"))
}

/// Waits for hping3 (bounded by its `timeout`) and returns how many SYNs it sent, from its
/// "N packets transmitted" line (older builds print "tramitted").
fn flood_sent(flood: Child) -> u64 {
    let out = flood.wait_with_output().expect("hping3 finishes");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // hping3 exits 1 when nothing answered (here: always, nothing answers a spoofed source);
    // `timeout` exits 124 when it had to stop it.
    assert!(matches!(out.status.code(), Some(0 | 1)), "hping3 failed or ran past {FLOOD_LIMIT:?} ({}):\n{stdout}{stderr}", out.status);
    let sent = format!("{stdout}\n{stderr}")
        .lines()
        .find_map(|l| l.split_once(" packets tra").and_then(|(n, _)| n.trim().parse::<u64>().ok()))
        .unwrap_or_else(|| panic!("no sent count in hping3's output:\n{stdout}{stderr}"));
    assert!(sent >= FLOOD_COUNT * 9 / 10, "hping3 sent only {sent} of {FLOOD_COUNT}:\n{stdout}{stderr}");
    sent
}

fn is_running(child: &mut Child) -> bool {
    matches!(child.try_wait(), Ok(None))
}

#[test]
fn curl_through_the_syn_proxy_reaches_both_backends() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tb = up("sp");
    let before = totals(&tb);
    let n = 20;
    let bodies: Vec<String> = (0..n)
        .map(|i| curl(&tb, PROXIED).unwrap_or_else(|e| panic!("curl {i} through the SYN proxy: {e}\nlbd log: {}", tb.lbd_log().unwrap_or_default())))
        .collect();
    for rs in BACKENDS {
        assert_eq!(bodies.iter().filter(|b| *b == rs).count(), n / 2, "rr over both backends: {bodies:?}");
    }

    // Each connection: one cookie answered (more only if the client resent its SYN), one
    // cookie proved by the client's ACK, one window update after the backend's SYN-ACK.
    let n64 = n as u64;
    let grew = |t: &Value, k: &str| scalar(t, k) - scalar(&before, k);
    let t = wait_totals(&tb, "20 connections accepted by the SYN proxy", |t| {
        grew(t, "synproxy_accepted") == n64 && grew(t, "synproxy_window_updates") == n64 && grew(t, "sessions_created") == n64
    });
    let cookies = grew(&t, "synproxy_syn_cookies");
    assert!((n64..=n64 + 4).contains(&cookies), "one SYN cookie per connection ({cookies} for {n}): {t}");
    for reason in ["synproxy_bad_cookie", "synproxy_waiting"] {
        assert_eq!(dropped(&t, reason), 0, "{reason}: {t}");
    }

    // The backends saw ordinary FNAT connections: from the local addresses, one each.
    for rs in BACKENDS {
        let log = std::fs::read_to_string(tb.access_log_path(rs).unwrap()).unwrap();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("GET / ")).collect();
        assert_eq!(lines.len(), n / 2, "{rs} access log: {log}");
        for l in lines {
            assert!(LIPS.iter().any(|lip| l.starts_with(&format!("{lip}:"))), "{rs} peer is not a local address: {l}");
        }
    }
    tb.down().expect("teardown");
}

#[test]
fn spoofed_syn_flood_leaves_no_half_open_connections_and_curl_keeps_working() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut tb = up("sf");
    let started = Instant::now();
    // Both services answer (ARP resolved on both sides) before anything is measured.
    for port in [PROXIED, PLAIN] {
        curl(&tb, port).unwrap_or_else(|e| panic!("curl to port {port} before the flood: {e}\nlbd log: {}", tb.lbd_log().unwrap_or_default()));
    }
    assert_eq!(half_open(&tb).values().sum::<usize>(), 0, "no half-open connection before the flood: {:?}", half_open(&tb));
    // lbd publishes its totals every ~200 ms: start from totals that include those two curls.
    let before = wait_totals(&tb, "the curls before the flood counted", |t| scalar(t, "synproxy_accepted") == 1 && scalar(t, "sessions_created") == 2);
    let segs_before = tcp_in_segs_all(&tb);

    // The flood against the SYN proxy, curls one after another while it lasts. Each sample of
    // the backends is taken between two curls, when no curl is in its handshake: any half-open
    // connection then comes from the flood.
    let mut flood = start_flood(&mut tb, PROXIED);
    let (mut curls, mut failures, mut samples) = (0u64, Vec::new(), Vec::new());
    while is_running(&mut flood) && started.elapsed() < Duration::from_secs(40) {
        match curl(&tb, PROXIED) {
            Ok(body) if BACKENDS.contains(&body.as_str()) => {}
            Ok(body) => failures.push(format!("curl {curls}: unexpected body {body:?}")),
            Err(e) => failures.push(format!("curl {curls}: {e}")),
        }
        curls += 1;
        samples.push(half_open(&tb));
    }
    let sent = flood_sent(flood);
    std::thread::sleep(Duration::from_secs(1));
    let after = half_open(&tb);
    let segs = tcp_in_segs_all(&tb) - segs_before;
    eprintln!(
        "SYN proxy flood: hping3 sent {sent} spoofed SYNs; {curls} curls meanwhile ({} failed); half-open at the backends: \
         {} samples, most {:?}, 1 s after {after:?}; TCP segments received by the backends +{segs}",
        failures.len(),
        samples.len(),
        samples.iter().flat_map(|s| s.values()).max()
    );
    assert!(failures.is_empty(), "every curl during the flood succeeds: {failures:?}");
    assert!(curls >= 3, "the curl loop ran during the flood ({curls} curls)");
    for s in samples.iter().chain([&after]) {
        assert!(s.values().all(|&n| n == 0), "a backend had half-open connections under the SYN proxy: {s:?} (all samples {samples:?}, after {after:?})");
    }
    // The curls, and nothing of the flood, reached the backends.
    assert!(segs <= SEGS_PER_CURL * curls, "the backends received {segs} TCP segments during the flood, {curls} curls explain at most {}", SEGS_PER_CURL * curls);

    // lbd answered (most of) the flood with cookies: the flood did reach the director.
    let t = wait_totals(&tb, "the flood and the curls counted", |t| {
        scalar(t, "synproxy_syn_cookies") - scalar(&before, "synproxy_syn_cookies") >= sent * MIN_SEEN_PCT / 100
            && scalar(t, "synproxy_accepted") - scalar(&before, "synproxy_accepted") >= curls
    });
    let cookies = scalar(&t, "synproxy_syn_cookies") - scalar(&before, "synproxy_syn_cookies");
    let accepted = scalar(&t, "synproxy_accepted") - scalar(&before, "synproxy_accepted");
    eprintln!("lbd answered {cookies} SYNs with cookies, accepted {accepted} connections");
    assert_eq!(accepted, curls, "connections accepted by the SYN proxy vs curls: {t}");
    assert!(cookies <= sent + 2 * curls, "cookies {cookies} for {sent} SYNs and {curls} curls: {t}");
    assert_eq!(dropped(&t, "synproxy_bad_cookie"), dropped(&before, "synproxy_bad_cookie"), "no bad cookie: nothing in the flood is an ACK: {t}");

    // The control: the same flood against port 8080, without the SYN proxy, reaches the
    // backends and leaves half-open connections there (their SYN-ACKs go unanswered).
    let before = t;
    let flood = start_flood(&mut tb, PLAIN);
    let sent = flood_sent(flood);
    let control = half_open(&tb);
    let t = wait_totals(&tb, "the control flood counted", |t| {
        scalar(t, "sessions_created") - scalar(&before, "sessions_created") >= sent * MIN_SEEN_PCT / 100
    });
    let created = scalar(&t, "sessions_created") - scalar(&before, "sessions_created");
    eprintln!(
        "control flood to port {PLAIN} (no SYN proxy): {sent} SYNs, lbd created {created} sessions, half-open at the backends {control:?}; \
         whole test {:?}",
        started.elapsed()
    );
    assert!(control.values().all(|&n| n > 0), "without the SYN proxy the flood leaves half-open connections at every backend: {control:?}");
    assert_eq!(scalar(&t, "synproxy_syn_cookies"), scalar(&before, "synproxy_syn_cookies"), "no cookies for a service without syn_proxy: {t}");
    tb.down().expect("teardown");
}
