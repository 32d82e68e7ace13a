//! The API and metrics TCP listeners under connection floods, against the real lbd (net_ring
//! port, no hugepages): connections over `api_max_connections` are closed at once and the API
//! keeps answering; connections that move no byte for `api_idle_timeout_s` are closed (one
//! that trickles bytes is not); running out of file descriptors (EMFILE) is logged at most
//! once a second and every listener accepts again once descriptors are free.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use lb_api::{pb, Target};

const TOKEN: &str = "0123456789abcdef-limits";

/// One lbd at a time: they share 2 vCPUs with other builds, and the timings below are in seconds.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A running lbd; dropping it stops the process (SIGTERM, then SIGKILL) and removes its files.
struct Lbd {
    child: Child,
    dir: PathBuf,
    prefix: String,
    api: SocketAddr,
    metrics: SocketAddr,
    sock: PathBuf,
}

impl Lbd {
    /// Starts lbd with `api_listen`, `metrics_listen`, a Unix socket and the `limits` lines,
    /// and waits (at most 60 s) for its ready line.
    fn start(name: &str, limits: &str) -> Lbd {
        Lbd::start_with(name, limits, "")
    }

    /// As [`Lbd::start`], with `port_extra` lines in the port's table.
    fn start_with(name: &str, limits: &str, port_extra: &str) -> Lbd {
        let prefix = format!("lbd-limits-{}-{name}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (api, metrics, sock) = (free_port(), free_port(), dir.join("lbd.sock"));
        let text = format!(
            "workers = 1\nidle_sleep_us = 1000\napi_socket = \"{}\"\napi_listen = \"{api}\"\napi_token = \"{TOKEN}\"\nmetrics_listen = \"{metrics}\"\n{limits}\n\
             [eal]\nno_huge = true\nmemory_mb = 256\nfile_prefix = \"{prefix}\"\n[[port]]\nname = \"wan\"\nvdev = \"net_ring0\"\n{port_extra}\n",
            sock.display()
        );
        let cfg = dir.join("lbd.toml");
        std::fs::write(&cfg, text).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lbd"))
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout")).unwrap())
            .stderr(File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("start lbd");
        let mut lbd = Lbd { child, dir, prefix, api, metrics, sock };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(lbd.dir.join("stdout")).unwrap_or_default().contains("lbd: ready") {
            if let Some(st) = lbd.child.try_wait().unwrap() {
                panic!("lbd exited ({st}) before it was ready: {}", lbd.stderr());
            }
            assert!(Instant::now() < deadline, "lbd not ready within 60 s: {}", lbd.stderr());
            sleep(Duration::from_millis(50));
        }
        lbd
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Lbd {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.prefix));
    }
}

/// `n` connections that send nothing (non-blocking, for [`poll_closed`]); those that cannot
/// connect within a second are left out.
fn connect_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let conns: Vec<TcpStream> = (0..n).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()).collect();
    for c in &conns {
        c.set_nonblocking(true).unwrap();
    }
    conns
}

/// Marks the connections the server has closed (end of file or reset; what it sent before,
/// such as HTTP/2 settings, is read and dropped) and returns how many are closed.
fn poll_closed(conns: &[TcpStream], closed: &mut [bool]) -> usize {
    let mut buf = [0u8; 1024];
    for (c, done) in conns.iter().zip(closed.iter_mut()).filter(|(_, d)| !**d) {
        loop {
            match (&*c).read(&mut buf) {
                Ok(0) => *done = true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => *done = true,
            }
            break;
        }
    }
    closed.iter().filter(|d| **d).count()
}

/// Polls until at least `want` connections are closed or `until`; returns how many are.
fn wait_closed(conns: &[TcpStream], closed: &mut [bool], want: usize, until: Instant) -> usize {
    loop {
        let n = poll_closed(conns, closed);
        if n >= want || Instant::now() >= until {
            return n;
        }
        sleep(Duration::from_millis(20));
    }
}

/// One `GetInfo` over TCP with the token, bounded to 3 s.
fn grpc_tcp(addr: SocketAddr) -> Result<(), String> {
    grpc(Target::Tcp { addr: addr.to_string(), token: Some(TOKEN.into()), ca: None })
}

fn grpc(target: Target) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let call = async {
            let mut c = lb_api::connect(&target).await.map_err(|e| e.to_string())?;
            c.get_info(pb::GetInfoRequest {}).await.map_err(|e| e.to_string())?;
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(3), call).await.map_err(|_| "no answer within 3 s".to_owned())?
    })
}

/// `GET /metrics`, bounded to 5 s.
fn scrape(addr: SocketAddr) -> Result<String, String> {
    scrape_accepting(addr, "")
}

/// `GET /metrics` with an `Accept` header when `accept` is not empty.
fn scrape_accepting(addr: SocketAddr, accept: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let accept = if accept.is_empty() { String::new() } else { format!("Accept: {accept}\r\n") };
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: lbd\r\n{accept}\r\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    if out.starts_with("HTTP/1.1 200") {
        Ok(out)
    } else {
        Err(format!("not 200: {out:?}"))
    }
}

/// Retries `f` every 200 ms until it succeeds or `within` has passed.
fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("{what}: still failing after {within:?}: {e}"),
            Err(_) => sleep(Duration::from_millis(200)),
        }
    }
}

/// The value of one sample (`name{labels}`) in the metrics text.
fn sample(text: &str, series: &str) -> u64 {
    let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
    let line = line.unwrap_or_else(|| panic!("no sample {series} in the metrics"));
    line[series.len()..].trim().parse().unwrap()
}

#[test]
fn connections_over_the_cap_are_closed_at_once_and_the_api_still_answers() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lbd = Lbd::start("cap", "api_max_connections = 16\napi_idle_timeout_s = 60");
    for (what, addr) in [("api_listen", lbd.api), ("metrics_listen", lbd.metrics)] {
        let opened = Instant::now();
        let conns = connect_idle(addr, 200);
        assert_eq!(conns.len(), 200, "{what}: every connection is accepted (then closed when over the cap)");
        let mut closed = vec![false; conns.len()];
        // Well before the idle timeout (60 s) and the metrics head timeout (5 s).
        let n = wait_closed(&conns, &mut closed, 184, opened + Duration::from_secs(3));
        assert_eq!(n, 184, "{what}: the 184 connections over api_max_connections (16) are closed at once");
        sleep(Duration::from_millis(300));
        assert_eq!(poll_closed(&conns, &mut closed), 184, "{what}: the 16 under the cap stay open");
        // Hanging up frees the slots.
    }
    eventually(Duration::from_secs(10), "GetInfo over api_listen with the token", || grpc_tcp(lbd.api));
    let m = eventually(Duration::from_secs(10), "GET /metrics", || scrape(lbd.metrics));
    // 184 each, and more if a retry above came before the held slots were freed.
    assert!(sample(&m, "lbd_listener_rejected_connections_total{listener=\"api_listen\"}") >= 184, "{m}");
    assert!(sample(&m, "lbd_listener_rejected_connections_total{listener=\"metrics_listen\"}") >= 184, "{m}");
    assert!(sample(&m, "lbd_listener_connections{listener=\"metrics_listen\"}") >= 1, "this scrape is open: {m}");
    let err = lbd.stderr();
    let logged: Vec<&str> = err.lines().filter(|l| l.contains("api_max_connections (16)")).collect();
    assert!(logged.iter().any(|l| l.starts_with("lbd: warning: api_listen: ")), "{err}");
    assert!(logged.iter().any(|l| l.starts_with("lbd: warning: metrics_listen: ")), "{err}");
    // 368 refusals within a few seconds: a line per listener per second at most.
    assert!(logged.len() <= 8, "rate-limited: {err}");
}

#[test]
fn idle_connections_are_closed_after_api_idle_timeout_s() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lbd = Lbd::start("idle", "api_idle_timeout_s = 2");
    let opened = Instant::now();
    let mut conns = connect_idle(lbd.api, 4);
    conns.extend(connect_idle(lbd.metrics, 4));
    assert_eq!(conns.len(), 8);
    // A client that sends the HTTP/2 preface one byte at a time, 300 ms apart.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let trickle = connect_idle(lbd.api, 1);
    let mut sent = 0;
    let mut closed = vec![false; conns.len()];
    let mut trickle_closed = [false];
    let mut checked_early = false;
    while opened.elapsed() < Duration::from_millis(4500) {
        (&trickle[0]).write_all(&preface[sent..=sent]).unwrap();
        sent += 1;
        sleep(Duration::from_millis(300));
        if !checked_early && opened.elapsed() >= Duration::from_secs(1) {
            assert_eq!(poll_closed(&conns, &mut closed), 0, "no connection is closed before the idle timeout");
            checked_early = true;
        }
        poll_closed(&conns, &mut closed);
    }
    assert!(checked_early && sent < preface.len());
    assert_eq!(poll_closed(&conns, &mut closed), 8, "api_idle_timeout_s = 2: the idle connections are closed within 4.5 s: {closed:?}");
    assert_eq!(poll_closed(&trickle, &mut trickle_closed), 0, "the connection that sends a byte every 300 ms stays open");
    let stopped = Instant::now();
    assert_eq!(wait_closed(&trickle, &mut trickle_closed, 1, stopped + Duration::from_secs(5)), 1, "closed once it stops sending");
    assert!(stopped.elapsed() >= Duration::from_millis(1500), "by the idle timeout, not before: {:?}", stopped.elapsed());
    eventually(Duration::from_secs(10), "GetInfo over api_listen with the token", || grpc_tcp(lbd.api));
    let m = eventually(Duration::from_secs(10), "GET /metrics", || scrape(lbd.metrics));
    assert!(sample(&m, "lbd_listener_idle_closed_connections_total{listener=\"api_listen\"}") >= 5, "{m}");
    assert!(sample(&m, "lbd_listener_idle_closed_connections_total{listener=\"metrics_listen\"}") >= 4, "{m}");
}

#[test]
fn running_out_of_descriptors_is_logged_and_the_listeners_recover() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lbd = Lbd::start("emfile", "");
    let pid = i32::try_from(lbd.child.id()).unwrap();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as u64;
    let (mut soft, mut hard) = (0, 0);
    rlimit::prlimit(pid, rlimit::Resource::NOFILE, None, Some((&mut soft, &mut hard))).unwrap();
    // Room for at most about 24 more descriptors (a new one takes the lowest free number,
    // which must stay below the limit), far below the default cap of 256 connections.
    rlimit::prlimit(pid, rlimit::Resource::NOFILE, Some((open + 24, hard)), None).unwrap();
    let conns = connect_idle(lbd.api, 80);
    assert!(conns.len() >= 40, "connected {}", conns.len());
    let uds = UnixStream::connect(&lbd.sock).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lbd.stderr().contains("Too many open files") {
        assert!(Instant::now() < deadline, "EMFILE not logged within 10 s: {}", lbd.stderr());
        sleep(Duration::from_millis(50));
    }
    // The backlog still holds connections: lbd keeps trying (every 100 ms) and says so at
    // most once a second per listener, with how many were not logged ("repeated N times since the last message").
    sleep(Duration::from_millis(2500));
    let err = lbd.stderr();
    let api_lines = err.lines().filter(|l| l.starts_with("lbd: warning: api_listen: accept") && l.contains("Too many open files")).count();
    assert!((2..=5).contains(&api_lines), "{api_lines} lines: {err}");
    assert!(err.lines().any(|l| l.starts_with("lbd: warning: api_listen: accept") && l.contains("since the last message")), "{err}");
    // The Unix socket's accept failed as well (the same process is out of descriptors).
    assert!(err.lines().any(|l| l.starts_with("lbd: warning: api_socket: accept") && l.contains("Too many open files")), "{err}");
    // Hanging up frees descriptors; every listener accepts again.
    drop(conns);
    drop(uds);
    eventually(Duration::from_secs(15), "GetInfo over api_listen after EMFILE", || grpc_tcp(lbd.api));
    eventually(Duration::from_secs(15), "GetInfo over api_socket after EMFILE", || grpc(Target::Unix(lbd.sock.clone())));
    let m = eventually(Duration::from_secs(10), "GET /metrics after EMFILE", || scrape(lbd.metrics));
    assert!(sample(&m, "lbd_listener_accept_errors_total{listener=\"api_listen\"}") >= 2, "{m}");
    let _ = rlimit::prlimit(pid, rlimit::Resource::NOFILE, Some((soft, hard)), None);
}

/// A scrape of a running lbd with services, real servers, a local-address pool and
/// listeners: Prometheus text format 0.0.4 that Debian's `promtool check metrics` (the
/// official parser and linter) accepts without a single problem; node_exporter's ipvs families
/// with its labels; `process_*`; OpenMetrics when asked for.
#[test]
fn a_scrape_passes_promtool_and_carries_node_exporter_ipvs_families() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let conf = std::env::temp_dir().join(format!("lbd-limits-{}-promtool.conf", std::process::id()));
    std::fs::write(
        &conf,
        "local_address_group lg { 10.0.1.50 }\n\
         virtual_server 10.0.1.100 80 {\n lb_algo sed\n lb_kind FNAT\n laddr_group_name lg\n persistence_timeout 60\n\
         real_server 10.0.1.11 8080 { weight 3 }\n real_server 10.0.1.12 8080 { weight 1 }\n}\n\
         virtual_server 10.0.1.100 53 {\n lb_algo rr\n lb_kind NAT\n protocol UDP\n real_server 10.0.1.13 53 { weight 1 }\n}\n",
    )
    .unwrap();
    let lbd = Lbd::start_with("promtool", &format!("services = \"{}\"", conf.display()), "addresses = [\"10.0.1.1/24\"]");
    let _ = std::fs::remove_file(&conf);
    let m = eventually(Duration::from_secs(10), "GET /metrics", || scrape(lbd.metrics));
    let (head, body) = m.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    let mut lint = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("promtool (Debian's prometheus package; scripts/setup.sh installs it)");
    lint.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = lint.wait_with_output().unwrap();
    let problems = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && problems.trim().is_empty(), "promtool check metrics: {problems}\n{body}");
    for series in [
        "node_ipvs_backend_connections_active{local_address=\"10.0.1.100\",local_port=\"80\",remote_address=\"10.0.1.11\",remote_port=\"8080\",proto=\"TCP\",local_mark=\"\"}",
        "node_ipvs_backend_weight{local_address=\"10.0.1.100\",local_port=\"53\",remote_address=\"10.0.1.13\",remote_port=\"53\",proto=\"UDP\",local_mark=\"\"}",
        "node_ipvs_connections_total",
        "lbd_real_server_persistent_connections{proto=\"TCP\",vip=\"10.0.1.100\",vport=\"80\",rip=\"10.0.1.12\",rport=\"8080\"}",
        "lbd_worker_rx_frames_total{worker=\"0\"}",
    ] {
        sample(body, series);
    }
    assert_eq!(sample(body, "node_ipvs_backend_weight{local_address=\"10.0.1.100\",local_port=\"80\",remote_address=\"10.0.1.11\",remote_port=\"8080\",proto=\"TCP\",local_mark=\"\"}"), 3);
    assert!(sample(body, "process_open_fds") > 3 && sample(body, "process_resident_memory_bytes") > 1 << 20, "{body}");
    assert!(body.contains("\n# HELP lbd_worker_sessions_created_total Sessions created.\n"), "HELP from the counter's doc comment");
    let om = eventually(Duration::from_secs(10), "GET /metrics (OpenMetrics)", || scrape_accepting(lbd.metrics, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
    let (head, body) = om.split_once("\r\n\r\n").unwrap();
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    assert!(body.ends_with("# EOF\n") && body.contains("# TYPE node_ipvs_connections counter\nnode_ipvs_connections_total "), "{body}");
}
