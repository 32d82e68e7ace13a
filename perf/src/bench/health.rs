//! `lb-bench-health`: lb-slowpath at scale. Thousands of real servers are checked at
//! `delay_loop 1` (TCP_CHECK, then HTTP_GET) and the bench records lb-slowpath's share of one
//! core, its memory, the probes per second the backends see, and how long a dead backend takes
//! to show as down in lbd.
//!
//! Two network namespaces joined by a veth: `bh-<pid>-dir` runs lbd (in-process `net_ring`
//! ports, `--no-huge`: only its API matters here) and lb-slowpath; `bh-<pid>-rs` stands in for
//! every backend: `10.200.0.0/16` is routed as `local` on its loopback (Linux AnyIP), so one
//! nginx listening on 0.0.0.0:80 answers all addresses. A backend "dies" by a /32 route
//! ([`Failure`]): refusing (the connect fails at once) or dropping (it times out).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lb_perf::bench::procs::{self, BenchError, Result};
use serde_json::{json, Value};

use crate::lab::{io_err, run, Lab, Watched};

/// The kind of health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Tcp,
    Http,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Tcp => "TCP_CHECK",
            Check::Http => "HTTP_GET",
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            Check::Tcp => "tcp",
            Check::Http => "http",
        }
    }
    fn block(self) -> &'static str {
        match self {
            Check::Tcp => "TCP_CHECK {\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }",
            Check::Http => "HTTP_GET {\n            url {\n                path /healthz\n                status_code 200\n            }\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }",
        }
    }
}

/// How a backend is made to die for the lag samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The address answers every SYN with a RST ("connection refused" at once): a `local`
    /// /32 route in the director's namespace, where nothing listens on :80. (A `prohibit`
    /// route on the backends' side is no good: ip_error() rate-limits its ICMP errors per
    /// peer to about one a second, with the global `net.ipv4.route.error_cost`, and every dead
    /// backend has the same peer, so most probes just time out.)
    Refuse,
    /// A `blackhole` /32 route in the backends' `local` table: the SYN is dropped silently
    /// and the connect runs into `connect_timeout`.
    Drop,
}

impl Failure {
    /// The namespace side and the `ip route` arguments (after add/del) for `route`.
    fn route(self, lab: &Lab, route: &str) -> (String, Vec<String>) {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect();
        match self {
            Failure::Refuse => (lab.dir.clone(), v(&["local", route, "dev", "lo"])),
            Failure::Drop => (lab.rs.clone(), v(&["blackhole", route, "table", "local"])),
        }
    }
    fn key(self) -> &'static str {
        match self {
            Failure::Refuse => "refuse",
            Failure::Drop => "drop",
        }
    }
    /// keepalived's bound with retry 1, connect_timeout 1, delay_before_retry 1, delay_loop 1:
    /// (retry+1) × (connect_timeout + delay_before_retry) + delay_loop.
    const BOUND_MS: u64 = 5_000;
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub checks: Vec<Check>,
    pub servers: usize,
    pub per_vs: usize,
    /// Measured window.
    pub window: Duration,
    /// Lag samples per failure mode.
    pub lag_samples: usize,
    /// RLIMIT_NOFILE given to lb-slowpath (0: leave the inherited limit).
    pub nofile: u64,
    pub lbd: PathBuf,
    pub slowpath: PathBuf,
    pub lbctl: Option<PathBuf>,
    pub work: PathBuf,
    /// Longest wait for every server to be checked up.
    pub ramp_timeout: Duration,
    /// Before each variant, wait while other processes use more than this share of the CPUs.
    pub quiet_pct: f64,
    /// Longest such wait per variant.
    pub max_wait: Duration,
    /// `perf record` lb-slowpath for 5 s after the window.
    pub profile: bool,
    /// Set by SIGINT/SIGTERM: the variant stops at its next wait and everything is cleaned up.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// keepalived.conf: `servers` real servers, `per_vs` per virtual server, 10.200.V.(R+1):80
/// behind VIP 10.100.V.1:80 (DR, so no local addresses are needed), `alpha` so each starts
/// down and the first passing check brings it up.
pub fn keepalived_conf(check: Check, servers: usize, per_vs: usize) -> String {
    let mut s = format!(
        "# lb-bench-health: {servers} real servers, {} each, delay_loop 1\n",
        check.name()
    );
    let nvs = servers.div_ceil(per_vs);
    for v in 0..nvs {
        s.push_str(&format!(
            "virtual_server 10.100.{v}.1 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    alpha\n"
        ));
        for r in 0..per_vs.min(servers - v * per_vs) {
            s.push_str(&format!(
                "    real_server 10.200.{v}.{} 80 {{\n        weight 1\n        {}\n    }}\n",
                r + 1,
                check.block()
            ));
        }
        s.push_str("}\n");
    }
    s
}

/// A process's CPU time (utime + stime) in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (time on a CPU, time runnable but waiting for one) in ns, summed over the threads.
fn sched_ns(pid: u32) -> (u64, u64) {
    let mut t = (0, 0);
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
        let f: Vec<u64> = s
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        t.0 += f.first().copied().unwrap_or(0);
        t.1 += f.get(1).copied().unwrap_or(0);
    }
    t
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn clk_tck() -> f64 {
    procs::output("getconf", &["CLK_TCK"])
        .parse()
        .unwrap_or(100.0)
}

/// `Tcp:` counters of a namespace's /proc/net/snmp, by name.
fn tcp_counters(ns: &str) -> Result<Vec<(String, i64)>> {
    let text = run(Some(ns), &["cat", "/proc/net/snmp"])?;
    let tcp: Vec<&str> = text.lines().filter(|l| l.starts_with("Tcp:")).collect();
    let (Some(h), Some(v)) = (tcp.first(), tcp.get(1)) else {
        return Err(BenchError::Failed(format!(
            "{ns}: no Tcp: lines in /proc/net/snmp"
        )));
    };
    Ok(h.split_whitespace()
        .skip(1)
        .zip(v.split_whitespace().skip(1))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(0)))
        .collect())
}

/// `TcpExt:` counters of a namespace's /proc/net/netstat.
fn tcpext_counters(ns: &str) -> Vec<(String, i64)> {
    let text = run(Some(ns), &["cat", "/proc/net/netstat"]).unwrap_or_default();
    let ext: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    match (ext.first(), ext.get(1)) {
        (Some(h), Some(v)) => h
            .split_whitespace()
            .skip(1)
            .zip(v.split_whitespace().skip(1))
            .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(0)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Counters that moved between `a` and `b`, per second over `secs`.
fn moved(a: &[(String, i64)], b: &[(String, i64)], secs: f64) -> Value {
    let m: serde_json::Map<String, Value> = b
        .iter()
        .filter_map(|(k, v)| {
            let d = v - counter(a, k);
            (d != 0).then(|| (k.clone(), json!(round1(d as f64 / secs))))
        })
        .collect();
    Value::Object(m)
}

fn counter(c: &[(String, i64)], k: &str) -> i64 {
    c.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v)
}

fn sockstat_tcp(ns: &str) -> String {
    run(Some(ns), &["cat", "/proc/net/sockstat"])
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("TCP:")).map(str::to_owned))
        .unwrap_or_default()
}

/// (total, idle + iowait) jiffies of all CPUs, from /proc/stat.
fn stat_totals() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = s
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((v.iter().sum(), v.get(3)? + v.get(4).copied().unwrap_or(0)))
}

fn lines_in(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// lbd and lb-slowpath for one variant.
struct Pair {
    lbd: Watched,
    slowpath: Watched,
    started: Instant,
}

fn start_pair(lab: &Lab, o: &Options, check: Check, dir: &Path) -> Result<Pair> {
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, keepalived_conf(check, o.servers, o.per_vs)).map_err(io_err(&conf))?;
    let sock = dir.join("lbd.sock");
    let toml = format!(
        "workers = 1\nidle_sleep_us = 1000\napi_socket = \"{}\"\nservices = \"{}\"\n[eal]\nno_huge = true\nmemory_mb = 256\nfile_prefix = \"bh-{}-{}\"\n[[port]]\nname = \"wan\"\nvdev = \"net_ring0\"\n[[port]]\nname = \"lan\"\nvdev = \"net_ring1\"\n",
        sock.display(),
        conf.display(),
        std::process::id(),
        check.key()
    );
    let toml_path = dir.join("lbd.toml");
    std::fs::write(&toml_path, toml).map_err(io_err(&toml_path))?;
    let tp = toml_path.display().to_string();
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lab.dir])
        .arg(&o.lbd)
        .args(["--config", &tp]);
    let mut lbd = Watched::spawn("lbd", &mut c, &dir.join("lbd.log"))?;
    if lbd
        .wait_for(0, "lbd: ready", Duration::from_secs(60))
        .is_none()
    {
        return Err(BenchError::Failed(format!(
            "lbd did not print its ready line within 60 s: {}",
            procs::tail(&dir.join("lbd.log"), 8)
        )));
    }
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lab.dir]);
    if o.nofile > 0 {
        let n = o.nofile.min(nofile_hard()).to_string();
        c.args(["prlimit", &format!("--nofile={n}:{n}"), "--"]);
    }
    c.arg(&o.slowpath).args([
        "--services",
        &conf.display().to_string(),
        "--socket",
        &sock.display().to_string(),
        "--config",
        "/nonexistent/lbd.toml",
    ]);
    let started = Instant::now();
    let slowpath = Watched::spawn("lb-slowpath", &mut c, &dir.join("lb-slowpath.log"))?;
    Ok(Pair {
        lbd,
        slowpath,
        started,
    })
}

/// This process's hard RLIMIT_NOFILE (without CAP_SYS_RESOURCE no child can go above it).
pub fn nofile_hard() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            let l = s
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_owned();
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(4).map(|h| {
                if *h == "unlimited" {
                    u64::MAX
                } else {
                    h.parse().unwrap_or(u64::MAX)
                }
            })
        })
        .unwrap_or(u64::MAX)
}

/// How many servers lbd lists as up (`lbctl rs list -o json`), when lbctl is there.
fn lbctl_up(o: &Options, sock: &Path) -> Option<Value> {
    let lbctl = o.lbctl.as_ref()?;
    let out = Command::new(lbctl)
        .args([
            "--socket",
            &sock.display().to_string(),
            "rs",
            "list",
            "-o",
            "json",
        ])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let servers: Vec<Value> = v["services"]
        .as_array()?
        .iter()
        .filter_map(|s| s["real_servers"].as_array())
        .flatten()
        .cloned()
        .collect();
    let up = servers.iter().filter(|r| r["health"] == "up").count();
    Some(json!({ "listed": servers.len(), "up": up }))
}

/// An error when SIGINT/SIGTERM asked to stop.
fn interrupted(o: &Options) -> Result<()> {
    if o.stop.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(BenchError::Failed("interrupted".into()));
    }
    Ok(())
}

/// Other processes' CPU use (% of all CPUs); waits while it is above `o.quiet_pct`, at most
/// `o.max_wait`.
fn quiet(o: &Options) -> f64 {
    let end = Instant::now() + o.max_wait;
    let mut busy = procs::cpu_busy(Duration::from_millis(500));
    let mut said = false;
    while busy > o.quiet_pct && Instant::now() < end {
        if !said {
            eprintln!("lb-bench-health: other processes use {busy:.0}% of the CPUs; waiting for quiet (at most {:?})", o.max_wait);
            said = true;
        }
        std::thread::sleep(Duration::from_secs(1));
        busy = procs::cpu_busy(Duration::from_millis(500));
    }
    busy
}

/// One variant: start, wait for every server up, measure the window, take lag samples.
pub fn variant(lab: &Lab, o: &Options, check: Check) -> Result<Value> {
    let dir = o.work.join(check.key());
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let others = quiet(o);
    let mut p = start_pair(lab, o, check, &dir)?;
    let mut rec = json!({
        "check": check.name(),
        "servers": o.servers,
        "virtual_servers": o.servers.div_ceil(o.per_vs),
        "others_cpu_pct_before": round1(others),
        "nofile": o.nofile.min(nofile_hard()),
    });
    let sp_pid = p.slowpath.child.id();
    // Ramp: every server checked up (alpha: lbd logs each one).
    let end = Instant::now() + o.ramp_timeout;
    let mut last_print = Instant::now();
    let ups = loop {
        // Server lines end in "rs <ip>:80 up [lb-slowpath]"; quorum lines in "quorum up [..".
        let n = p.lbd.count(0, ":80 up [lb-slowpath]");
        if n >= o.servers {
            break n;
        }
        interrupted(o)?;
        if p.slowpath.exited() || p.lbd.exited() || Instant::now() > end {
            let why = if Instant::now() > end {
                format!(
                    "only {n} of {} servers up after {:?}",
                    o.servers, o.ramp_timeout
                )
            } else {
                "a process exited".into()
            };
            return Err(BenchError::Failed(format!(
                "{}: {why}; lb-slowpath: {} | lbd: {}",
                check.name(),
                procs::tail(&dir.join("lb-slowpath.log"), 5),
                procs::tail(&dir.join("lbd.log"), 3)
            )));
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!("lb-bench-health: {}: {n} of {} up", check.name(), o.servers);
            last_print = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let all_up = p.started.elapsed();
    eprintln!(
        "lb-bench-health: {}: all {ups} servers up {:.1} s after lb-slowpath started",
        check.name(),
        all_up.as_secs_f64()
    );
    rec["all_up_s"] = json!(round1(all_up.as_secs_f64()));
    rec["rss_after_ramp_kb"] = json!(status_kb(sp_pid, "VmRSS:"));
    // Settle: the first round's spread and the ramp's batches are over.
    std::thread::sleep(Duration::from_secs(3));
    rec["lbctl_after_ramp"] = json!(lbctl_up(o, &dir.join("lbd.sock")));

    // The window.
    let hz = clk_tck();
    let lbd_pid = p.lbd.child.id();
    let ng_pid = lab.nginx_pid().unwrap_or(0);
    let rs0 = tcp_counters(&lab.rs)?;
    let d0 = tcp_counters(&lab.dir)?;
    let (rx0, dx0) = (tcpext_counters(&lab.rs), tcpext_counters(&lab.dir));
    let log0 = lines_in(&lab.access_log());
    let cpu0 = [sp_pid, lbd_pid, ng_pid].map(|x| cpu_ticks(x).unwrap_or(0));
    let downs0 = p.slowpath.count(0, " down");
    let busy0 = stat_totals();
    let sched0 = sched_ns(sp_pid);
    let t0 = Instant::now();
    let mut rss_max = 0;
    let mut tw = Vec::new();
    let mut per_s = Vec::new();
    let mut last = counter(&rs0, "PassiveOpens");
    while t0.elapsed() < o.window {
        interrupted(o)?;
        std::thread::sleep(Duration::from_secs(1));
        if let Ok(c) = tcp_counters(&lab.rs) {
            let n = counter(&c, "PassiveOpens");
            per_s.push(n - last);
            last = n;
        }
        rss_max = rss_max.max(status_kb(sp_pid, "VmRSS:").unwrap_or(0));
        tw.push(sockstat_tcp(&lab.dir));
        if p.slowpath.exited() {
            return Err(BenchError::Failed(format!(
                "{}: lb-slowpath exited during the window: {}",
                check.name(),
                procs::tail(&dir.join("lb-slowpath.log"), 5)
            )));
        }
    }
    let cpu1 = [sp_pid, lbd_pid, ng_pid].map(|x| cpu_ticks(x).unwrap_or(0));
    let busy1 = stat_totals();
    let sched1 = sched_ns(sp_pid);
    let secs = t0.elapsed().as_secs_f64();
    let rs1 = tcp_counters(&lab.rs)?;
    let d1 = tcp_counters(&lab.dir)?;
    let (rx1, dx1) = (tcpext_counters(&lab.rs), tcpext_counters(&lab.dir));
    rec["tcpext_per_s_rs"] = moved(&rx0, &rx1, secs);
    rec["tcpext_per_s_dir"] = moved(&dx0, &dx1, secs);
    // Unflushed: at most one 4 KiB buffer (~100 lines) at either end.
    let log1 = lines_in(&lab.access_log());
    let pct = |i: usize| round1(100.0 * (cpu1[i] - cpu0[i]) as f64 / hz / secs);
    let rate = |a: &[(String, i64)], b: &[(String, i64)], k: &str| {
        round1((counter(b, k) - counter(a, k)) as f64 / secs)
    };
    rec["window_s"] = json!(round1(secs));
    rec["probes_each_second"] = json!(per_s);
    // Runnable but not running: CPU contention (other processes, nginx, softirqs).
    rec["slowpath_runqueue_wait_pct"] =
        json!(round1(100.0 * (sched1.1 - sched0.1) as f64 / 1e9 / secs));
    rec["slowpath_oncpu_pct_schedstat"] =
        json!(round1(100.0 * (sched1.0 - sched0.0) as f64 / 1e9 / secs));
    rec["slowpath_cpu_pct_of_one_core"] = json!(pct(0));
    // Everything (the bench's processes included) over the window, in % of all CPUs.
    rec["machine_busy_pct_window"] = json!(busy0.zip(busy1).map(|((t0, i0), (t1, i1))| {
        let (dt, di) = (t1.saturating_sub(t0), i1.saturating_sub(i0));
        round1(100.0 * dt.saturating_sub(di) as f64 / dt.max(1) as f64)
    }));
    rec["lbd_cpu_pct"] = json!(pct(1));
    rec["nginx_cpu_pct"] = json!(pct(2));
    rec["slowpath_rss_max_kb"] = json!(rss_max);
    rec["slowpath_hwm_kb"] = json!(status_kb(sp_pid, "VmHWM:"));
    rec["slowpath_threads"] = json!(procs::output(
        "sh",
        &["-c", &format!("ls /proc/{sp_pid}/task | wc -l")]
    )
    .parse::<u64>()
    .ok());
    rec["probes_per_s"] = json!(rate(&rs0, &rs1, "PassiveOpens"));
    rec["connects_per_s_dir"] = json!(rate(&d0, &d1, "ActiveOpens"));
    rec["connect_failures_per_s_dir"] = json!(rate(&d0, &d1, "AttemptFails"));
    rec["resets_sent_per_s_rs"] = json!(rate(&rs0, &rs1, "OutRsts"));
    if check == Check::Http {
        rec["http_requests_per_s"] = json!(round1((log1 - log0) as f64 / secs));
    }
    rec["downs_in_window"] = json!(p.slowpath.count(0, " down") - downs0);
    rec["dir_sockstat_last"] = json!(tw.last());
    if o.profile {
        rec["slowpath_profile"] = json!(profile(sp_pid, &dir));
    }
    eprintln!(
        "lb-bench-health: {}: lb-slowpath {:.1}% of one core, RSS max {} KiB, {} probes/s",
        check.name(),
        pct(0),
        rss_max,
        rec["probes_per_s"]
    );

    // Lag samples.
    let nvs = o.servers.div_ceil(o.per_vs);
    let mut lags = Vec::new();
    for (m, mode) in [Failure::Refuse, Failure::Drop].into_iter().enumerate() {
        for k in 0..o.lag_samples {
            interrupted(o)?;
            let idx = (m * o.lag_samples + k) * 7919 % o.servers;
            let (v, r) = (idx / o.per_vs % nvs, idx % o.per_vs + 1);
            let addr = format!("10.200.{v}.{r}");
            lags.push(lag(lab, &mut p, mode, &addr)?);
            // Another probe round, so the next sample starts from a random phase.
            std::thread::sleep(Duration::from_millis(1300));
        }
    }
    rec["lag"] = json!(lags);
    rec["lbctl_after"] = json!(lbctl_up(o, &dir.join("lbd.sock")));
    rec["slowpath_exit"] = json!(p.slowpath.stop(Duration::from_secs(10)));
    rec["lbd_exit"] = json!(p.lbd.stop(Duration::from_secs(15)));
    rec["slowpath_log_lines"] = json!(p.slowpath.len());
    Ok(rec)
}

/// `perf record` of lb-slowpath for 5 s; the top symbols (self time), or why not.
fn profile(pid: u32, dir: &Path) -> Vec<String> {
    let data = dir.join("perf.data").display().to_string();
    let rec = Command::new("perf")
        .args([
            "record",
            "-q",
            "-F",
            "999",
            "-g",
            "-p",
            &pid.to_string(),
            "-o",
            &data,
            "--",
            "sleep",
            "5",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !rec.is_ok_and(|s| s.success()) {
        return vec!["perf record failed".into()];
    }
    let report = |sort: &str, limit: &str| {
        procs::output(
            "perf",
            &[
                "report",
                "-i",
                &data,
                "--stdio",
                "--no-children",
                "-g",
                "none",
                "--percent-limit",
                limit,
                "--sort",
                sort,
            ],
        )
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
    };
    let mut v = report("dso", "1");
    v.push(String::new());
    v.extend(report("dso,symbol", "0.7").into_iter().take(30));
    v
}

/// Kills `addr` with `mode`, times the down transition in lb-slowpath's and lbd's logs, then
/// revives it and times the up transition.
fn lag(lab: &Lab, p: &mut Pair, mode: Failure, addr: &str) -> Result<Value> {
    let route = format!("{addr}/32");
    let (ns, spec) = mode.route(lab, &route);
    let ip = |verb: &str| {
        let mut a = vec!["ip", "route", verb];
        a.extend(spec.iter().map(String::as_str));
        run(Some(&ns), &a)
    };
    let (s0, l0) = (p.slowpath.len(), p.lbd.len());
    let pat = format!("rs {addr}:80 down");
    ip("add")?;
    let t0 = Instant::now();
    let lbd_t = p.lbd.wait_for(l0, &pat, Duration::from_secs(15));
    let sp_t = p.slowpath.find(s0, &pat).map(|(_, t)| t);
    let reason = p
        .lbd
        .find(l0, &pat)
        .and_then(|(i, _)| p.lbd.lines.lock().ok().map(|v| v[i].1.clone()));
    let since = |a: Instant, b: Instant| {
        u64::try_from(b.saturating_duration_since(a).as_millis()).unwrap_or(u64::MAX)
    };
    let ms = |t: Option<Instant>| t.map(|t| since(t0, t));
    let l1 = p.lbd.len();
    let up_pat = format!("rs {addr}:80 up");
    let del = ip("del");
    let t1 = Instant::now();
    let up_t = if lbd_t.is_some() {
        p.lbd.wait_for(l1, &up_pat, Duration::from_secs(10))
    } else {
        None
    };
    del?;
    let v = json!({
        "mode": mode.key(),
        "how": format!("[{ns}] ip route add {}", spec.join(" ")),
        "addr": addr,
        "down_slowpath_ms": ms(sp_t),
        "down_lbd_ms": ms(lbd_t),
        "keepalived_bound_ms": Failure::BOUND_MS,
        "up_again_lbd_ms": up_t.map(|t| since(t1, t)),
        "lbd_line": reason,
    });
    eprintln!(
        "lb-bench-health: lag {} {addr}: slowpath {} ms, lbd {} ms; up again after {} ms",
        mode.key(),
        v["down_slowpath_ms"],
        v["down_lbd_ms"],
        v["up_again_lbd_ms"]
    );
    Ok(v)
}
