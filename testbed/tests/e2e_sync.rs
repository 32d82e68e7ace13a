//! Session sync in a director pair (testbed/configs/sync-pair.conf: VRRPv3 at 0.1 s,
//! `lvs_sync_daemon lan VI_1`): 100 HTTP keep-alive connections through the VIP each send a
//! request every 200 ms, a UDP flow sends a datagram every 200 ms, and wrk (`--timeout 5s`)
//! runs beside them. director-1 (the master) is killed with SIGKILL: director-2 takes over with
//! the synced sessions, and every connection goes on (no reset, no gap of 5 s), wrk sees no
//! error. director-1 is started again: it bulk-syncs from director-2, only then preempts, and
//! again nothing is lost. Once with equal worker counts, once with 1 vs 2 workers.
//! Needs root, DPDK, iproute2, nginx, wrk.

use std::io::Read;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use lb_testbed::{unique_name, PeerConfig, PeerKind, Testbed, UpOptions};
use serde_json::Value;

const VIP: &str = "10.70.1.100";
/// How long the flows are held: the whole failover-and-back scenario fits in it.
const HOLD_SECS: u64 = 45;

fn lbctl_bin() -> String {
    if let Some(p) = std::env::var_os("LBCTL_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).display().to_string();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let p = exe.parent().and_then(|d| d.parent()).expect("target dir").join("lbctl");
    assert!(p.exists(), "{} not found: build it (cargo build -p lbctl) or set LBCTL_BIN", p.display());
    p.display().to_string()
}

fn node(n: u8) -> &'static str {
    if n == 1 {
        "director-1"
    } else {
        "director-2"
    }
}

/// `lbctl -o json <args>` on director `n` (Null when it does not answer).
fn lbctl_json(tb: &Testbed, n: u8, args: &[&str]) -> Value {
    let sock = tb.director_paths(n).api_socket().display().to_string();
    let mut cmd = vec![lbctl_bin(), "--socket".into(), sock, "-o".into(), "json".into()];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    tb.exec(node(n), &cmd).ok().and_then(|o| serde_json::from_slice(&o.stdout).ok()).unwrap_or(Value::Null)
}

fn vrrp_state(tb: &Testbed, n: u8) -> String {
    let v = lbctl_json(tb, n, &["vrrp"]);
    v["instances"].as_array().into_iter().flatten().find(|i| i["name"] == "VI_1").and_then(|i| i["state"].as_str()).unwrap_or("").to_owned()
}

fn sync_status(tb: &Testbed, n: u8) -> Value {
    lbctl_json(tb, n, &["sync"])
}

fn logs(tb: &Testbed) -> String {
    let mut out = String::new();
    for n in [1, 2] {
        let d = tb.director_paths(n);
        for f in ["lbd.log", "slowpath.log"] {
            let text = std::fs::read_to_string(d.dir().join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("--- {} {f} (last lines) ---\n", node(n)));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

fn wait<F: FnMut() -> bool>(what: &str, limit: Duration, tb: &Testbed, mut f: F) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}\n{}", logs(tb));
        std::thread::sleep(Duration::from_millis(100));
    }
    t.elapsed()
}

/// Waits for a spawned program to end (bounded), returning its stdout.
fn finish(mut c: Child, limit: Duration, what: &str) -> String {
    let t = Instant::now();
    loop {
        match c.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if t.elapsed() < limit => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = c.kill();
                panic!("{what} did not finish within {limit:?}");
            }
        }
    }
    let mut s = String::new();
    if let Some(mut o) = c.stdout.take() {
        let _ = o.read_to_string(&mut s);
    }
    s
}

fn failover_and_back_lose_nothing(prefix: &str, workers: u32, peer_workers: u32) {
    let mut opts = UpOptions::new(unique_name(prefix)).with_pair(PeerKind::Lbd, PeerConfig::Priority(100));
    opts.workers = workers;
    opts.peer_workers = Some(peer_workers);
    opts.ready_timeout = Duration::from_secs(60);
    let conf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/sync-pair.conf");
    let mut tb = Testbed::up_from_keepalived(&conf, &opts).unwrap_or_else(|e| panic!("testbed up: {e}"));

    wait("director-1 MASTER, director-2 BACKUP", Duration::from_secs(15), &tb, || vrrp_state(&tb, 1) == "MASTER" && vrrp_state(&tb, 2) == "BACKUP");
    wait("director-2's backup daemon ready", Duration::from_secs(15), &tb, || {
        let s = sync_status(&tb, 2);
        s["ready"] == true && s["daemons"].as_array().is_some_and(|d| d.iter().any(|d| d["role"] == "backup"))
    });

    let held_since = Instant::now();
    let hold = tb
        .spawn("client", [env!("CARGO_BIN_EXE_lb-hold"), "--vip", VIP, "--tcp", "100", "--udp", "5300", "--every-ms", "200", "--secs", &HOLD_SECS.to_string()])
        .expect("lb-hold starts");
    let wrk = tb.spawn("client", ["wrk", "-t", "1", "-c", "8", "-d", &format!("{}s", HOLD_SECS - 5), "--timeout", "5s", &format!("http://{VIP}/")]).expect("wrk starts");
    std::thread::sleep(Duration::from_secs(5));
    wait("director-2 holds the synced sessions", Duration::from_secs(10), &tb, || sync_status(&tb, 2)["applied_conns"].as_u64().unwrap_or(0) >= 101);

    // The master dies.
    let t = Instant::now();
    tb.stop_director(1, false).expect("kill -9 director-1");
    wait("director-2 MASTER", Duration::from_secs(5), &tb, || vrrp_state(&tb, 2) == "MASTER");
    eprintln!("director-2 MASTER {:?} after director-1 was killed", t.elapsed());
    std::thread::sleep(Duration::from_secs(6));

    // It returns: bulk sync first, then it preempts.
    let t = Instant::now();
    tb.start_director(1).expect("restart director-1");
    wait("director-1 MASTER again", Duration::from_secs(25), &tb, || vrrp_state(&tb, 1) == "MASTER");
    eprintln!("director-1 MASTER again {:?} after its restart", t.elapsed());
    let s1 = sync_status(&tb, 1);
    eprintln!("director-1 sync after its restart: {s1}");
    assert_eq!(s1["bulk_state"], "done", "director-1 preempted only after its bulk sync: {s1}");
    assert!(s1["bulk_received"].as_u64().unwrap_or(0) >= 101, "the bulk carried every held flow: {s1}");
    wait("director-2 BACKUP again", Duration::from_secs(5), &tb, || vrrp_state(&tb, 2) == "BACKUP");
    // The held flows must still be running after the fail-back, or it went unchecked.
    let failed_back = held_since.elapsed();
    eprintln!("fail-back done {failed_back:?} into the {HOLD_SECS} s hold");
    assert!(
        failed_back + Duration::from_secs(5) <= Duration::from_secs(HOLD_SECS),
        "the fail-back ended {failed_back:?} into a {HOLD_SECS} s hold: the held flows would not cross it for 5 s"
    );

    let out = finish(hold, Duration::from_secs(HOLD_SECS + 30), "lb-hold");
    let wrk_out = finish(wrk, Duration::from_secs(HOLD_SECS + 30), "wrk");
    let r: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("lb-hold output {out:?}: {e}\n{}", logs(&tb)));
    eprintln!("lb-hold: flows {} broken {} max_gap_ms {} answers {}", r["flows"], r["broken"], r["max_gap_ms"], r["answers"]);
    eprintln!("wrk:\n{wrk_out}");
    assert_eq!(r["flows"], 101, "{r}");
    let bad: Vec<&Value> = r["details"].as_array().into_iter().flatten().filter(|f| !f["error"].is_null() || f["max_gap_ms"].as_u64().unwrap_or(u64::MAX) >= 5000 || f["answers"].as_u64().unwrap_or(0) < 50).collect();
    assert!(bad.is_empty(), "flows broke or stalled 5 s or more: {bad:?}\n{}", logs(&tb));
    assert!(wrk_out.contains("Requests/sec"), "wrk ran: {wrk_out}");
    assert!(!wrk_out.contains("Socket errors") && !wrk_out.contains("Non-2xx"), "wrk saw errors:\n{wrk_out}\n{}", logs(&tb));
    tb.down().expect("teardown");
}

#[test]
fn failover_and_restart_keep_every_connection() {
    failover_and_back_lose_nothing("sy", 1, 1);
}

#[test]
fn failover_and_restart_keep_every_connection_with_other_worker_counts() {
    failover_and_back_lose_nothing("sw", 1, 2);
}

/// `lbctl` on director `n`, plain output; panics with its stderr when it fails.
fn lbctl(tb: &Testbed, n: u8, args: &[&str]) -> String {
    let sock = tb.director_paths(n).api_socket().display().to_string();
    let mut cmd = vec![lbctl_bin(), "--socket".into(), sock];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    let out = tb.exec(node(n), &cmd).unwrap_or_else(|e| panic!("lbctl {args:?} on {}: {e}", node(n)));
    assert!(out.status.success(), "lbctl {args:?} on {}: {}", node(n), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The dual-VIP pair, daemons started with ipvsadm's options on both directors (a master and
/// a backup each): sessions sync both ways; director-1 dies and the connections to its VIP go
/// on through director-2, those to director-2's VIP are untouched.
#[test]
fn dual_vip_pair_syncs_both_ways_with_lbctl_daemons() {
    let mut opts = UpOptions::new(unique_name("sd")).with_pair(PeerKind::Lbd, PeerConfig::Priority(120));
    opts.ready_timeout = Duration::from_secs(60);
    let conf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/sync-dual.conf");
    let mut tb = Testbed::up_from_keepalived(&conf, &opts).unwrap_or_else(|e| panic!("testbed up: {e}"));
    for n in [1, 2] {
        for role in ["master", "backup"] {
            lbctl(&tb, n, &["--start-daemon", role, "--mcast-interface", "lan", "--syncid", "7"]);
        }
    }
    let listing = lbctl(&tb, 1, &["-L", "--daemon"]);
    assert!(
        listing.starts_with("master sync daemon (mcast=lan, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\nbackup sync daemon (mcast=lan, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"),
        "ipvsadm's daemon lines first:\n{listing}"
    );
    wait("each director MASTER of its VIP", Duration::from_secs(15), &tb, || {
        let st = |n: u8| lbctl_json(&tb, n, &["vrrp"])["instances"].as_array().into_iter().flatten().map(|i| format!("{}={}", i["name"].as_str().unwrap_or(""), i["state"].as_str().unwrap_or(""))).collect::<Vec<_>>().join(",");
        st(1) == "VI_1=MASTER,VI_2=BACKUP" && st(2) == "VI_1=BACKUP,VI_2=MASTER"
    });
    let hold = |tb: &mut Testbed, vip: &str| tb.spawn("client", [env!("CARGO_BIN_EXE_lb-hold"), "--vip", vip, "--tcp", "50", "--every-ms", "200", "--secs", "20"]).expect("lb-hold starts");
    let h1 = hold(&mut tb, "10.70.1.100");
    let h2 = hold(&mut tb, "10.70.1.101");
    // Both ways: each director installs the other's 50 connections.
    wait("sessions synced both ways", Duration::from_secs(10), &tb, || [1, 2].iter().all(|n| sync_status(&tb, *n)["applied_conns"].as_u64().unwrap_or(0) >= 50));
    std::thread::sleep(Duration::from_secs(3));
    tb.stop_director(1, false).expect("kill -9 director-1");
    wait("director-2 MASTER of both", Duration::from_secs(5), &tb, || lbctl_json(&tb, 2, &["vrrp"])["instances"].as_array().into_iter().flatten().all(|i| i["state"] == "MASTER"));
    for (h, vip) in [(h1, "10.70.1.100"), (h2, "10.70.1.101")] {
        let out = finish(h, Duration::from_secs(50), "lb-hold");
        let r: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("lb-hold output {out:?}: {e}\n{}", logs(&tb)));
        eprintln!("{vip}: flows {} broken {} max_gap_ms {}", r["flows"], r["broken"], r["max_gap_ms"]);
        assert_eq!((r["flows"].as_u64(), r["broken"].as_u64()), (Some(50), Some(0)), "{vip}: {r}\n{}", logs(&tb));
        assert!(r["max_gap_ms"].as_u64().unwrap_or(u64::MAX) < 5000, "{vip}: {r}");
    }
    let stopped = lbctl(&tb, 2, &["--stop-daemon", "backup"]);
    assert!(stopped.is_empty(), "{stopped}");
    wait("director-2's backup daemon gone", Duration::from_secs(3), &tb, || !lbctl(&tb, 2, &["-L", "--daemon"]).contains("backup sync daemon"));
    tb.down().expect("teardown");
}
