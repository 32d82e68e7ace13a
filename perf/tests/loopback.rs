//! lb-pktgen on a memif link looped onto itself (its two ports are the two ends): every frame
//! sent arrives, stamps give latency, and the connection mode completes connections with no
//! director in between. Needs root and DPDK's memif driver (`--no-huge`, no hugepages).

use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

/// One generator at a time: each busy-polls a CPU.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn pktgen(tag: &str, args: &[&str]) -> Value {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::temp_dir().join(format!("lbperf-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("loop.sock");
    let vdev = |n: u8, role: &str| {
        format!(
            "net_memif{n},role={role},socket={},socket-abstract=no",
            sock.display()
        )
    };
    let out = Command::new(env!("CARGO_BIN_EXE_lb-pktgen"))
        .args([
            "--no-huge",
            "--memory-mb",
            "256",
            "--file-prefix",
            &format!("lbperf-test-{}-{tag}", std::process::id()),
        ])
        .args([
            "--client-vdev",
            &vdev(0, "server"),
            "--server-vdev",
            &vdev(1, "client"),
        ])
        .args([
            "--dut-mac",
            "02:00:00:00:00:01",
            "--warmup",
            "0.2",
            "--duration",
            "0.5",
            "--link-timeout",
            "10",
        ])
        .args(args)
        .output()
        .expect("run lb-pktgen");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lb-pktgen failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The driver must shut down cleanly: both memif ends live in this process, and stopping
    // them carelessly frees the same regions twice (seen in 21 of 24 runs before the fix).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("EAL: Error") && !stderr.contains("shutting the ports down"),
        "lb-pktgen's shutdown was not clean:\n{stderr}"
    );
    serde_json::from_str(stdout.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {stdout}"))
}

#[test]
fn udp_and_tcp_frames_all_arrive_with_latency() {
    for (mode, size) in [("udp", "64"), ("tcp", "64"), ("udp", "1500")] {
        let r = pktgen(
            &format!("{mode}{size}"),
            &[
                "--mode",
                mode,
                "--skip-open",
                "--flows",
                "100",
                "--size",
                size,
                "--rate",
                "200000",
            ],
        );
        let (tx, rx) = (
            r["total_tx"].as_u64().unwrap(),
            r["total_rx"].as_u64().unwrap(),
        );
        assert!(tx > 50_000, "{mode}: sent {tx} at 200 kpps for 0.7 s: {r}");
        assert_eq!(tx, rx, "{mode}: a wire loses nothing: {r}");
        assert_eq!(r["dropped"], 0);
        let pps = r["rx_pps"].as_f64().unwrap();
        assert!(
            (150_000.0..=250_000.0).contains(&pps),
            "{mode}: paced at 200 kpps, measured {pps}"
        );
        assert!(r["latency_ns"]["samples"].as_u64().unwrap() > 0, "{r}");
        assert!(r["latency_ns"]["p50"].as_f64().unwrap() > 0.0);
        assert_eq!(r["frame_size"].as_u64(), size.parse::<u64>().ok());
        assert_eq!(
            r["ports"]["server"]["rx_other"], 0,
            "every frame parsed: {r}"
        );
    }
}

#[test]
fn echoes_come_back_to_the_client_port_and_count_both_directions() {
    let r = pktgen("echo", &["--mode", "udp", "--skip-open", "--flows", "100", "--rate", "200000", "--echo"]);
    let (rx, echoed, both) = (
        r["rx_pps"].as_f64().unwrap(),
        r["echo_rx_pps"].as_f64().unwrap(),
        r["both_rx_pps"].as_f64().unwrap(),
    );
    assert!((150_000.0..=250_000.0).contains(&rx), "paced at 200 kpps, measured {rx}: {r}");
    assert!((echoed - rx).abs() <= rx * 0.05, "every frame comes back (within the window's edges): {echoed} vs {rx}: {r}");
    assert!((both - (rx + echoed)).abs() <= 1.0, "{r}");
    let (server, client) = (&r["ports"]["server"], &r["ports"]["client"]);
    assert_eq!(server["tx_dropped"], 0, "{r}");
    assert_eq!(server["tx"], server["rx"], "the server side sends back what it receives: {r}");
    assert_eq!(client["rx"], server["tx"], "a wire loses nothing: {r}");
    assert_eq!(client["rx_other"], 0, "echoes parse as data: {r}");
}

#[test]
fn connections_complete_without_a_director() {
    let r = pktgen(
        "conn",
        &[
            "--mode",
            "conn",
            "--concurrency",
            "64",
            "--req-size",
            "32",
            "--resp-size",
            "200",
        ],
    );
    let w = &r["window"];
    let closed = w["closed"].as_u64().unwrap();
    assert!(closed > 1000, "{r}");
    assert!(r["cps"].as_f64().unwrap() > 1000.0);
    assert_eq!(w["resets"], 0);
    assert_eq!(r["totals"]["lost"], 0, "{r}");
    // Every SYN the server saw was answered and every stage completed (the window may cut a
    // few connections in half).
    let syn = w["srv_syn"].as_u64().unwrap();
    assert!(syn.abs_diff(closed) <= 64 * 2, "{r}");
    assert!(r["connect_latency_ns"]["samples"].as_u64().unwrap() > 0);
}

#[test]
fn a_flood_without_a_director_reaches_the_servers_and_stays_half_open() {
    // With no director in between, every flood SYN reaches the server side, which answers it;
    // its SYN-ACK goes to a spoofed source that never answers: each stays half-open. This is
    // what the synflood bench expects *not* to see behind a SYN proxy.
    let r = pktgen(
        "flood",
        &[
            "--mode",
            "conn",
            "--concurrency",
            "64",
            "--flood-pps",
            "20000",
            "--flood-sources",
            "198.18.0.0/15",
        ],
    );
    let f = &r["flood"];
    let flood_sent = f["totals"]["sent"].as_u64().unwrap();
    assert!(flood_sent > 5_000, "20 kpps for about 0.7 s: {r}");
    assert_eq!(f["totals"]["refused"], 0, "{r}");
    // Every flood SYN came back as a SYN-ACK to its spoofed source, none was answered.
    assert_eq!(f["totals"]["synacks"].as_u64().unwrap(), flood_sent, "{r}");
    let t = &r["totals"];
    assert_eq!(t["srv_flood_seen"].as_u64().unwrap(), flood_sent, "{r}");
    let half = r["server_half_open"]["at_end"].as_u64().unwrap();
    assert_eq!(
        half, flood_sent,
        "flood SYNs half-open, real connections not: {r}"
    );
    // The real connections went on beside it.
    assert!(r["window"]["closed"].as_u64().unwrap() > 1000, "{r}");
    assert_eq!(t["lost"], 0, "{r}");
    assert_eq!(t["proxied"], 0, "no SYN proxy here: {r}");
}

#[test]
fn two_lcores_play_a_queue_pair_each_and_the_report_sums_them() {
    // Two CPUs (a CPU listed twice is refused); on one this says so and checks nothing. It
    // checks the plumbing, not the rate.
    let cpus = if std::thread::available_parallelism().map_or(1, std::num::NonZero::get) > 1 { "0,1" } else { "0" };
    if cpus == "0" {
        eprintln!("one CPU: the two-lcore loopback needs two");
        return;
    }
    let r = pktgen("queues", &["--cpus", cpus, "--mode", "udp", "--skip-open", "--flows", "100", "--rate", "200000"]);
    let q = r["queues"].as_array().unwrap_or_else(|| panic!("a queues list: {r}"));
    assert_eq!(q.len(), 2, "{r}");
    let per: Vec<f64> = q.iter().map(|x| x["rx_pps"].as_f64().unwrap_or(0.0)).collect();
    assert!(per.iter().all(|&p| (75_000.0..=125_000.0).contains(&p)), "each lcore paced at half of 200 kpps: {per:?}");
    assert_eq!(q.iter().map(|x| x["flows"].as_u64().unwrap_or(0)).sum::<u64>(), 100, "{r}");
    let (tx, rx) = (r["total_tx"].as_u64().unwrap(), r["total_rx"].as_u64().unwrap());
    assert_eq!(tx, rx, "a wire loses nothing on either queue: {r}");
    let pps = r["rx_pps"].as_f64().unwrap();
    assert!((150_000.0..=250_000.0).contains(&pps), "the report sums both: {pps}");
}
