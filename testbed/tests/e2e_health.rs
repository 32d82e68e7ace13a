//! Health checks end to end: lb-slowpath beside lbd in the director's namespace, real nginx and
//! UDP echo backends, curl and wrk through the VIP. A stopped backend leaves within keepalived's
//! bound and comes back within delay_loop; an HTTP_GET url answering 404 keeps its server out
//! from the start (alpha); a UDP backend is marked down by the ICMP port unreachable it sends;
//! killing lb-slowpath under wrk costs nothing and flips nothing; a restarted lbd gets the same
//! health back. Needs root, DPDK, iproute2, curl, wrk, nginx; `LBD_BIN`/`LBCTL_BIN` or built
//! target/*/ binaries (lb-slowpath next to lbd).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lb_testbed::{unique_name, StatePaths, Testbed, UpOptions};
use serde_json::Value;

const VIP: &str = "10.70.1.100";
const DEAD: &str = "rs-10.70.2.12";
/// keepalived's bound for health.conf: (retry+1) x (connect_timeout + delay_before_retry) +
/// delay_loop = 2 x (1 + 1) + 1 s.
const DOWN_BOUND: Duration = Duration::from_secs(5);
const DELAY_LOOP: Duration = Duration::from_secs(1);

fn conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/health.conf")
}

/// `LBCTL_BIN`, else `lbctl` in the target directory this test was built into.
fn lbctl_bin() -> String {
    if let Some(p) = std::env::var_os("LBCTL_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).display().to_string();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let p = exe.parent().and_then(|d| d.parent()).expect("target dir").join("lbctl");
    assert!(p.exists(), "{} not found: build it (cargo build -p lbctl) or set LBCTL_BIN", p.display());
    p.display().to_string()
}

struct Bed {
    tb: Testbed,
    sock: String,
    lbctl: String,
}

impl Bed {
    fn up(prefix: &str) -> Bed {
        let mut opts = UpOptions::new(unique_name(prefix));
        let sock = StatePaths::new(&opts.name).dir().join("api.sock").display().to_string();
        opts.extra_lbd_config = format!("api_socket = \"{sock}\"\n");
        let tb = Testbed::up_from_keepalived(&conf(), &opts).unwrap_or_else(|e| panic!("testbed up: {e}"));
        Bed { tb, sock, lbctl: lbctl_bin() }
    }

    fn lbctl(&self, args: &[&str]) -> String {
        let mut v = vec![self.lbctl.as_str(), "--socket", self.sock.as_str()];
        v.extend_from_slice(args);
        let out = self.tb.exec("director", v).expect("lbctl runs");
        assert!(out.status.success(), "lbctl {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Real server `addr:port` of service `vport` as lbd lists it (JSON).
    fn rs(&self, vport: u16, rs: &str) -> Value {
        let v: Value = serde_json::from_str(&self.lbctl(&["-o", "json", "-Ln"])).expect("lbctl json");
        let (addr, port) = rs.split_once(':').expect("addr:port");
        v["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["port"] == vport)
            .flat_map(|s| s["real_servers"].as_array().cloned().unwrap_or_default())
            .find(|r| r["addr"] == addr && r["port"].as_u64() == port.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no real server {rs} under port {vport}"))
    }

    fn health(&self, vport: u16, rs: &str) -> String {
        self.rs(vport, rs)["health"].as_str().unwrap_or("?").to_owned()
    }

    /// Polls until `rs` under `vport` shows `want`; returns how long it took.
    fn wait_health(&self, vport: u16, rs: &str, want: &str, limit: Duration) -> Duration {
        let t = Instant::now();
        loop {
            let h = self.health(vport, rs);
            if h == want {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < limit,
                "{rs} (port {vport}) still {h} after {limit:?}, expected {want}; slowpath log:\n{}",
                self.tb.slowpath_log().unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `n` sequential curls to the VIP; returns each body (or the failure).
    fn curls(&self, port: u16, n: usize) -> Vec<Result<String, String>> {
        let url = format!("http://{VIP}:{port}/");
        (0..n)
            .map(|_| {
                let o = self.tb.exec("client", ["curl", "-sS", "-m", "3", url.as_str()]).expect("curl runs");
                if o.status.success() {
                    Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
                } else {
                    Err(String::from_utf8_lossy(&o.stderr).into_owned())
                }
            })
            .collect()
    }

    fn lbd_health_lines(&self) -> usize {
        self.tb.lbd_log().unwrap_or_default().lines().filter(|l| l.contains("lbd: health:")).count()
    }
}

#[test]
fn dead_backends_leave_within_the_bound_and_come_back() {
    let b = Bed::up("hc");
    // Everything checked starts where keepalived starts it: TCP/UDP up, the alpha service's
    // 404 server never comes up.
    b.wait_health(80, "10.70.2.12:80", "up", Duration::from_secs(5));
    b.wait_health(8080, "10.70.2.11:8080", "up", Duration::from_secs(5));
    std::thread::sleep(3 * DELAY_LOOP);
    let r404 = b.rs(8080, "10.70.2.12:8080");
    assert_eq!(r404["health"], "down", "alpha + 404: {r404}");
    assert_eq!(r404["last_error"].as_str().map(|e| e.contains("status 404, expected 200")), Some(true), "{r404}");
    let ln = b.lbctl(&["-Ln"]);
    assert!(!ln.contains("10.70.2.12:8080"), "-Ln shows only servers taking traffic:\n{ln}");
    for r in b.curls(8080, 10) {
        assert_eq!(r.as_deref(), Ok("rs-10.70.2.11"), "port 8080 only reaches the healthy server");
    }
    let seen: std::collections::HashSet<_> = b.curls(80, 10).into_iter().map(|r| r.expect("curl before the failure")).collect();
    assert_eq!(seen.len(), 2, "both backends serve before one dies: {seen:?}");

    // Stop nginx and the UDP echo in one backend.
    let t = Instant::now();
    b.tb.backend_stop(DEAD).expect("backend stop");
    b.wait_health(80, "10.70.2.12:80", "down", DOWN_BOUND + Duration::from_secs(1));
    let took = t.elapsed();
    eprintln!("TCP_CHECK marked rs .12 down after {took:?} (bound {DOWN_BOUND:?} + 1 s)");
    assert!(took <= DOWN_BOUND + Duration::from_secs(1), "down after {took:?}");
    let ln = b.lbctl(&["-Ln"]);
    assert!(!ln.contains("10.70.2.12:80 "), "a failed server disappears from -Ln:\n{ln}");
    let results = b.curls(80, 50);
    assert!(results.iter().all(|r| r.as_deref() == Ok("rs-10.70.2.11")), "50 curls after the failure: {results:?}");
    let udp = b.rs(53, "10.70.2.12:5353");
    b.wait_health(53, "10.70.2.12:5353", "down", DOWN_BOUND + Duration::from_secs(1));
    let udp_after = b.rs(53, "10.70.2.12:5353");
    assert!(
        udp_after["last_error"].as_str().is_some_and(|e| e.contains("ICMP port unreachable")),
        "UDP_CHECK names the ICMP error: {udp_after} (before: {udp})"
    );

    // Start it again: back within delay_loop + 1 s.
    b.tb.backend_start(DEAD).expect("backend start");
    let back = b.wait_health(80, "10.70.2.12:80", "up", DELAY_LOOP + Duration::from_secs(1));
    eprintln!("TCP_CHECK brought rs .12 back after {back:?}");
    b.wait_health(53, "10.70.2.12:5353", "up", DELAY_LOOP + Duration::from_secs(2));
    let seen: std::collections::HashSet<_> = b.curls(80, 10).into_iter().map(|r| r.expect("curl after the recovery")).collect();
    assert_eq!(seen.len(), 2, "both backends serve again: {seen:?}");
    let log = b.tb.slowpath_log().expect("slowpath log");
    assert_eq!(log.matches("rs 10.70.2.12:80 down").count(), 1, "one log line per transition:\n{log}");
    assert_eq!(log.matches("rs 10.70.2.12:80 up").count(), 1, "one log line per transition:\n{log}");
    b.tb.down().expect("teardown");
}

#[test]
fn restarts_of_either_process_keep_health() {
    let b = Bed::up("hr");
    b.wait_health(8080, "10.70.2.11:8080", "up", Duration::from_secs(5));
    b.tb.backend_stop(DEAD).expect("backend stop");
    b.wait_health(80, "10.70.2.12:80", "down", DOWN_BOUND + Duration::from_secs(1));
    b.wait_health(53, "10.70.2.12:5353", "down", DOWN_BOUND + Duration::from_secs(1));
    // Every verdict has settled (one more check round each) before counting lbd's transitions.
    std::thread::sleep(2 * DELAY_LOOP);

    // lb-slowpath killed and restarted while wrk runs: no error, no flip.
    let flips = b.lbd_health_lines();
    let mut wrk = b.tb.command("client", ["wrk", "-t1", "-c8", "-d6s", &format!("http://{VIP}:80/")]).expect("wrk command");
    let wrk = wrk.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("start wrk");
    std::thread::sleep(Duration::from_secs(1));
    b.tb.kill_slowpath().expect("kill lb-slowpath");
    std::thread::sleep(Duration::from_secs(2));
    b.tb.start_slowpath().expect("restart lb-slowpath");
    let out = wrk.wait_with_output().expect("wrk finishes");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("requests in"), "wrk ran: {text}");
    assert!(!text.contains("Socket errors") && !text.contains("Non-2xx"), "no errors through a slowpath restart:\n{text}");
    std::thread::sleep(3 * DELAY_LOOP);
    assert_eq!(b.lbd_health_lines(), flips, "a slowpath restart flips nothing:\n{}", b.tb.lbd_log().unwrap_or_default());
    let log = b.tb.slowpath_log().expect("slowpath log");
    assert!(log.contains("seeded from lbd"), "{log}");
    assert_eq!(b.health(80, "10.70.2.12:80"), "down", "the dead server stays down");

    // lbd killed and restarted: lb-slowpath sends it the whole state again.
    b.tb.kill_lbd().expect("kill lbd");
    b.tb.start_lbd().expect("restart lbd");
    let again = b.wait_health(80, "10.70.2.12:80", "down", Duration::from_secs(4));
    eprintln!("a restarted lbd had the dead server down again after {again:?}");
    b.wait_health(8080, "10.70.2.11:8080", "up", Duration::from_secs(4));
    assert_eq!(b.health(8080, "10.70.2.12:8080"), "down");
    assert_eq!(b.rs(80, "10.70.2.12:80")["health_source"], "lb-slowpath", "the state came from the slowpath, not lbd's default");
    let results = b.curls(80, 20);
    assert!(results.iter().all(|r| r.as_deref() == Ok("rs-10.70.2.11")), "after the lbd restart: {results:?}");

    // One reload reaches both processes: the file changes (rs .12:8080 now checks /healthz),
    // `lbctl reload` tells lbd, lb-slowpath follows lbd's generation and checks the new url.
    b.tb.backend_start(DEAD).expect("backend start");
    b.wait_health(80, "10.70.2.12:80", "up", DELAY_LOOP + Duration::from_secs(2));
    std::thread::sleep(2 * DELAY_LOOP);
    assert_eq!(b.health(8080, "10.70.2.12:8080"), "down", "its url still answers 404");
    let file = b.tb.paths().keepalived_conf();
    let text = std::fs::read_to_string(&file).expect("state keepalived.conf");
    assert_eq!(text.matches("path /missing").count(), 1);
    std::fs::write(&file, text.replace("path /missing", "path /healthz")).expect("rewrite keepalived.conf");
    let mark = b.tb.slowpath_log_len().expect("log length");
    b.lbctl(&["reload"]);
    b.tb.wait_slowpath_log(mark, "configuration changed", Duration::from_secs(4)).expect("lb-slowpath follows the reload");
    b.wait_health(8080, "10.70.2.12:8080", "up", Duration::from_secs(4));
    b.tb.down().expect("teardown");
}
