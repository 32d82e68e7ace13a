//! wrk through the director in the namespace testbed, against wrk straight to the same
//! backend from the LAN switch's namespace (one hop, no director).

use std::time::Duration;

use lb_testbed::{unique_name, Testbed, TopologySpec, UpOptions};
use serde_json::{json, Value};

use super::lab;
use super::procs::{self, BenchError, Result};

/// The VIP of the testbed service, its one real server, and the direct client's address on
/// the LAN switch.
const VIP: &str = "10.70.1.100";
const RS: &str = "10.70.2.11";
const LAN_CLIENT: &str = "10.70.2.250/24";
const LIPS: [&str; 2] = ["10.70.2.100", "10.70.2.101"];

/// wrk settings.
#[derive(Debug, Clone)]
pub struct WrkOptions {
    pub runs: usize,
    pub seconds: u32,
    pub connections: u32,
    pub threads: u32,
    /// lbd's idle_sleep_us in the testbed.
    pub idle_sleep_us: u32,
    /// lbd's port drivers in the testbed, each measured in turn (the first is the headline).
    pub drivers: Vec<lb_testbed::Driver>,
    pub lbd: std::path::PathBuf,
    pub work: std::path::PathBuf,
}

/// A wrk result: requests per second and latency percentiles in microseconds.
pub fn parse_wrk(text: &str) -> Value {
    let mut v = json!({});
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Requests/sec:") {
            v["rps"] = json!(rest.trim().parse::<f64>().ok());
        }
        for (label, key) in [
            ("50%", "p50_us"),
            ("75%", "p75_us"),
            ("90%", "p90_us"),
            ("99%", "p99_us"),
        ] {
            if let Some(rest) = l.strip_prefix(label) {
                v[key] = json!(micros(rest.trim()));
            }
        }
        if l.starts_with("Latency ") && !l.contains("Distribution") {
            let f: Vec<&str> = l.split_whitespace().collect();
            v["avg_us"] = json!(f.get(1).and_then(|s| micros(s)));
            v["max_us"] = json!(f.get(3).and_then(|s| micros(s)));
        }
        if l.starts_with("Socket errors") || l.starts_with("Non-2xx") {
            v["errors"] = json!(l);
        }
    }
    v
}

/// "301.23us" / "1.20ms" / "2.00s" in microseconds.
fn micros(s: &str) -> Option<f64> {
    let (num, mult) = s
        .strip_suffix("us")
        .map(|n| (n, 1.0))
        .or_else(|| s.strip_suffix("ms").map(|n| (n, 1e3)))
        .or_else(|| s.strip_suffix('s').map(|n| (n, 1e6)))?;
    num.parse::<f64>().ok().map(|x| x * mult)
}

fn wrk(tb: &Testbed, node: &str, url: &str, o: &WrkOptions) -> Result<Value> {
    let args = [
        "wrk",
        "-t",
        &o.threads.to_string(),
        "-c",
        &o.connections.to_string(),
        "-d",
        &format!("{}s", o.seconds),
        "--latency",
        url,
    ];
    let load = procs::loadavg();
    let out = tb.exec_timeout(node, args, Duration::from_secs(u64::from(o.seconds) + 30))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut v = parse_wrk(&text);
    v["load"] = json!(load);
    if !out.status.success() || v["rps"].is_null() {
        v["error"] = json!(format!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(v)
}

/// Brings the testbed up with lbd on `driver`, alternates direct and director runs, tears it
/// down.
pub fn run(o: &WrkOptions, driver: lb_testbed::Driver) -> Result<Value> {
    if !procs::have("wrk") {
        return Err(BenchError::Failed(
            "wrk is not installed (scripts/setup.sh installs it)".into(),
        ));
    }
    std::fs::create_dir_all(&o.work).map_err(|source| BenchError::Io {
        path: o.work.clone(),
        source,
    })?;
    let conf = o.work.join("wrk-keepalived.conf");
    std::fs::write(&conf, lab::wrk_keepalived_conf(VIP, RS, &LIPS)).map_err(|source| {
        BenchError::Io {
            path: conf.clone(),
            source,
        }
    })?;
    let mut opts = UpOptions::new(unique_name("pf"));
    opts.workers = 1;
    opts.idle_sleep_us = o.idle_sleep_us;
    opts.driver = Some(driver);
    opts.lbd_path = Some(o.lbd.clone());
    opts.keepalived_conf = Some(conf);
    let tb = Testbed::up(&TopologySpec::default(), &opts)?;
    tb.exec_ok("lan", ["ip", "addr", "add", LAN_CLIENT, "dev", "br0"])?;
    // Warm both paths (ARP, nginx) before measuring.
    tb.exec_ok(
        "client",
        ["curl", "-sS", "-m", "5", &format!("http://{VIP}/")],
    )?;
    tb.exec_ok("lan", ["curl", "-sS", "-m", "5", &format!("http://{RS}/")])?;
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for i in 0..o.runs {
        // Alternate which goes first so drift in machine load hits both alike.
        let order: [bool; 2] = if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for via_director in order {
            let r = if via_director {
                // lbd's CPU time over the run, per request served (USER_HZ jiffies: 10 ms).
                let pid = tb.lbd_pid();
                let before = pid.and_then(procs::proc_jiffies);
                let mut r = wrk(&tb, "client", &format!("http://{VIP}/"), o)?;
                let after = pid.and_then(procs::proc_jiffies);
                if let (Some(b), Some(a), Some(rps)) = (before, after, r["rps"].as_f64()) {
                    let requests = rps * f64::from(o.seconds);
                    if requests > 0.0 {
                        r["lbd_cpu_us_per_req"] = json!(a.saturating_sub(b) as f64 * 10_000.0 / requests);
                        r["lbd_cpu_pct"] = json!(a.saturating_sub(b) as f64 / f64::from(o.seconds));
                    }
                }
                r
            } else {
                wrk(&tb, "lan", &format!("http://{RS}/"), o)?
            };
            eprintln!(
                "lb-bench: wrk ({driver}) {} run {}: {} req/s, p99 {} us, lbd CPU {} us/request",
                if via_director { "director" } else { "direct" },
                i + 1,
                r["rps"],
                r["p99_us"],
                r["lbd_cpu_us_per_req"]
            );
            if via_director {
                through.push(r)
            } else {
                direct.push(r)
            }
        }
    }
    let stats = tb.read_stats().ok();
    tb.down()?;
    Ok(json!({
        "settings": { "threads": o.threads, "connections": o.connections, "seconds": o.seconds, "idle_sleep_us": o.idle_sleep_us, "driver": driver.to_string(), "real_server": RS, "vip": VIP },
        "direct": direct,
        "director": through,
        "lbd_totals": stats.map(|s| s["totals"].clone()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 5s test @ http://10.70.1.100/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   301.23us  100.00us   5.00ms   90.00%
    Req/Sec    20.00k     1.00k   22.00k    80.00%
  Latency Distribution
     50%  280.00us
     75%  320.00us
     90%  400.00us
     99%    1.20ms
  100000 requests in 5.00s, 20.00MB read
Requests/sec:  20000.50
Transfer/sec:      4.00MB
";

    #[test]
    fn wrk_output_parses() {
        let v = parse_wrk(OUT);
        assert_eq!(v["rps"], 20000.5);
        assert_eq!(v["p50_us"], 280.0);
        assert_eq!(v["p99_us"], 1200.0);
        assert_eq!(v["avg_us"], 301.23);
        assert_eq!(v["max_us"], 5000.0);
        assert!(v["errors"].is_null());
        assert_eq!(micros("2s"), Some(2e6));
        assert_eq!(micros("abc"), None);
    }
}
