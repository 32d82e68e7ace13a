//! End-to-end FNAT through a VIP with real clients and backends: curl round robin, local
//! addresses as the backends' peer, TOA carrying the client's address, wrk without errors,
//! two workers with return traffic steered to the session owner.
//! Needs root, DPDK, iproute2, curl, wrk, tshark, nginx; `LBD_BIN` or a built target/*/lbd.

use std::path::PathBuf;
use std::time::Duration;

use lb_testbed::{unique_name, wait_until, Testbed, UpOptions};

const VIP: &str = "10.70.1.100";
const LIPS: [&str; 2] = ["10.70.2.100", "10.70.2.101"];

/// The repository's demo configuration: TCP 80 and UDP 53 on 10.70.1.100, real servers
/// 10.70.2.11 and .12, local addresses 10.70.2.100 and .101.
fn demo_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fnat-demo.conf")
}

fn up(workers: u32) -> Testbed {
    let mut opts = UpOptions::new(unique_name("fn"));
    opts.workers = workers;
    Testbed::up_from_keepalived(&demo_conf(), &opts).unwrap_or_else(|e| panic!("testbed up: {e}"))
}

fn stats(tb: &Testbed) -> serde_json::Value {
    tb.read_stats().unwrap_or_else(|e| panic!("stats: {e}"))
}

/// Waits until the published totals satisfy `cond` (workers publish every few ms).
fn wait_stats(tb: &Testbed, what: &str, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let r = wait_until(what, Duration::from_secs(5), Duration::from_millis(50), || Ok(cond(&stats(tb))));
    let s = stats(tb);
    r.unwrap_or_else(|e| panic!("{e}; totals: {}", s["totals"]));
    s
}

fn curl(tb: &Testbed) -> (String, u16) {
    let out = tb
        .exec_ok("client", ["curl", "-sS", "-m", "5", "-w", "\n%{local_port}", &format!("http://{VIP}/")])
        .unwrap_or_else(|e| panic!("curl through the VIP: {e}\nlbd log: {}", tb.lbd_log().unwrap_or_default()));
    let (body, port) = out.trim_end().rsplit_once('\n').expect("body and port");
    (body.trim().to_owned(), port.trim().parse().expect("local port"))
}

#[test]
fn curl_round_robin_lip_peers_and_toa() {
    let tb = up(1);
    // Capture in one backend what the director sends it (bounded: exits on SIGINT, after 400 packets or after 30 s).
    let mut cap = tb
        .command("rs-10.70.2.11", ["timeout", "30", "tshark", "-l", "-i", "eth0", "-f", "tcp dst port 80", "-c", "400", "-T", "fields", "-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.options"])
        .unwrap()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tshark");
    // tshark takes a while to start; it says "Capture started" on stderr once it captures.
    let stderr = cap.stderr.take().expect("tshark stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if line.contains("Capture started") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("tshark started capturing within 30 s");
    std::thread::sleep(Duration::from_secs(1));

    let mut bodies = Vec::new();
    let mut client_ports = Vec::new();
    for _ in 0..20 {
        let (body, port) = curl(&tb);
        bodies.push(body);
        client_ports.push(port);
    }
    // rr: strictly alternating, 10 each.
    let first = bodies[0].clone();
    for (i, b) in bodies.iter().enumerate() {
        let want = if i % 2 == 0 { first.clone() } else if first == "rs-10.70.2.11" { "rs-10.70.2.12".into() } else { "rs-10.70.2.11".into() };
        assert_eq!(b, &want, "request {i}: {bodies:?}");
    }
    assert!(bodies.iter().filter(|b| *b == "rs-10.70.2.11").count() == 10, "{bodies:?}");

    // Each backend saw only local addresses as peers.
    for rs in ["rs-10.70.2.11", "rs-10.70.2.12"] {
        let log = std::fs::read_to_string(tb.access_log_path(rs).unwrap()).unwrap();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("GET / ")).collect();
        assert_eq!(lines.len(), 10, "{rs} access log: {log}");
        for l in lines {
            assert!(LIPS.iter().any(|lip| l.starts_with(&format!("{lip}:"))), "{rs} peer is not a local address: {l}");
        }
    }

    // TOA (kind 254, length 8, client port, client address) reached the backend.
    std::thread::sleep(Duration::from_millis(500));
    // `ip netns exec` execs `timeout`, which passes SIGINT on to tshark.
    let _ = std::process::Command::new("kill").args(["-INT", &cap.id().to_string()]).status();
    let out = cap.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let client_hex = "0a46010a"; // 10.70.1.10
    let mut seen = 0;
    for port in &client_ports {
        let toa = format!("fe08{port:04x}{client_hex}");
        if text.lines().any(|l| l.contains(&toa) && LIPS.iter().any(|lip| l.starts_with(lip))) {
            seen += 1;
        }
    }
    let err = reader.join().unwrap_or_default();
    assert_eq!(seen, 10, "TOA with the client's address and port in every connection to rs-10.70.2.11:\n{text}\n{err}");

    let s = wait_stats(&tb, "20 sessions created", |s| s["totals"]["sessions_created"] == 20);
    assert_eq!(s["totals"]["toa_inserted"], 20, "{}", s["totals"]);
    assert_eq!(s["totals"]["drops_total"], 0, "{}", s["totals"]);
}

#[test]
fn wrk_for_ten_seconds_without_errors() {
    let tb = up(1);
    let out = tb
        .exec_timeout("client", ["wrk", "-t", "2", "-c", "16", "-d", "10s", &format!("http://{VIP}/")], Duration::from_secs(60))
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Socket errors"), "wrk saw socket errors:\n{text}");
    assert!(!text.contains("Non-2xx"), "wrk saw non-2xx responses:\n{text}");
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap_or(0)))
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    assert!(requests > 1000, "only {requests} requests in 10 s:\n{text}");
    let s = stats(&tb);
    assert_eq!(s["totals"]["drops"]["no_session"], 0, "{}", s["totals"]);
    eprintln!("wrk through the VIP: {requests} requests in 10 s");
}

#[test]
fn udp_service_echoes_through_the_vip() {
    let tb = up(1);
    let mut answers = Vec::new();
    for i in 0..4 {
        let msg = format!("ping-{i}");
        // socat sends one datagram from a fresh source port and prints the echo.
        let out = tb
            .exec_ok("client", ["sh", "-c", &format!("echo {msg} | socat -t 2 - UDP4:{VIP}:53")])
            .unwrap_or_else(|e| panic!("UDP through the VIP: {e}\nlbd log: {}", tb.lbd_log().unwrap_or_default()));
        assert_eq!(out.trim(), msg, "echoed back unchanged");
        answers.push(out);
    }
    // rr over two echo servers, each saw traffic from a local address.
    for rs in ["rs-10.70.2.11", "rs-10.70.2.12"] {
        let log = std::fs::read_to_string(tb.udp_log_path(rs).unwrap()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{rs} echo log: {log}");
        for l in lines {
            assert!(LIPS.iter().any(|lip| l.starts_with(&format!("{lip}:"))), "{rs} saw a non-local source: {l}");
        }
    }
    let s = wait_stats(&tb, "4 UDP sessions", |s| s["totals"]["sessions_created"] == 4);
    assert_eq!(s["totals"]["fnat_out"], 4, "{}", s["totals"]);
}

#[test]
fn two_workers_steer_return_traffic_to_the_session_owner() {
    let tb = up(2);
    for _ in 0..24 {
        curl(&tb);
    }
    let s = wait_stats(&tb, "24 sessions", |s| s["totals"]["sessions_created"] == 24);
    let w = s["workers"].as_array().expect("workers").clone();
    assert_eq!(w.len(), 2);
    let get = |i: usize, k: &str| w[i][k].as_u64().unwrap_or(0);
    // Every reply was translated by the worker that created its session.
    for (i, wi) in w.iter().enumerate() {
        assert_eq!(get(i, "fnat_out") > 0, get(i, "sessions_created") > 0, "worker {i}: {wi}");
        // Each worker's own time on the frames it handled is counted (cycles per frame).
        assert_eq!(get(i, "pipeline_cycles") > 0, get(i, "rx") + get(i, "redirected_in") > 0, "worker {i}: {wi}");
    }
    let (out, inn) = (get(0, "redirected_out") + get(1, "redirected_out"), get(0, "redirected_in") + get(1, "redirected_in"));
    assert_eq!(out, inn, "every redirected frame arrived: {s}");
    assert!(out > 0, "with two workers and 24 connections some return traffic lands on the other worker: {}", s["workers"]);
    assert_eq!(s["totals"]["drops"]["no_session"], 0, "{}", s["totals"]);
    assert_eq!(s["totals"]["drops"]["redirect_full"], 0, "{}", s["totals"]);
}
