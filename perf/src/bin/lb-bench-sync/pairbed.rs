//! Session sync between two of our directors on the namespace testbed
//! (`testbed/configs/sync-pair.conf`: director-1 MASTER of VI_1 multicasts its sessions on its
//! LAN port with sync id 42, director-2 BACKUP installs them): bring-up, the helpers both parts
//! use, and the run of both (`absorb`: records per second a backup installs; `burst`: backup vs
//! master after a wrk burst).

use std::io::Read;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use lb_perf::bench::procs::{BenchError, Result};
use lb_testbed::{unique_name, PeerConfig, PeerKind, Testbed, UpOptions};
use serde_json::{json, Value};

use crate::{absorb, burst};

/// Local addresses of the bench's copy of sync-pair.conf (the file has the first one only):
/// each carries 64,510 local ports, i.e. records of distinct sessions.
pub const LADDRS: [&str; 8] = [
    "10.70.2.100",
    "10.70.2.101",
    "10.70.2.102",
    "10.70.2.103",
    "10.70.2.104",
    "10.70.2.105",
    "10.70.2.106",
    "10.70.2.107",
];
/// Local ports per local address (1025..=65534).
pub const PORTS_PER_LADDR: u64 = 64_510;

/// sync-pair.conf with `laddr_g1` widened to [`LADDRS`].
pub fn bench_conf(original: &str) -> std::result::Result<String, String> {
    let one = format!("    {} lan\n", LADDRS[0]);
    if !original.contains(&one) {
        return Err(format!("the pair's config has no line {one:?} in laddr_g1"));
    }
    let all: String = LADDRS.iter().map(|a| format!("    {a} lan\n")).collect();
    Ok(original.replacen(&one, &all, 1))
}

/// Settings of the testbed parts.
#[derive(Debug, Clone)]
pub struct PairOptions {
    pub lbd: PathBuf,
    pub slowpath: PathBuf,
    pub lbctl: PathBuf,
    pub blast: PathBuf,
    /// testbed/configs/sync-pair.conf (the bench runs a copy with more local addresses).
    pub conf: PathBuf,
    pub work: PathBuf,
    pub absorb: bool,
    /// Records per second asked of the blaster (0: as fast as it goes).
    pub rates: Vec<u64>,
    pub records: u64,
    pub burst: bool,
    pub keepalive_conns: u32,
    pub burst_secs: u32,
    pub close_conns: u32,
    pub close_secs: u32,
    pub settle: Duration,
}

pub(crate) fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(e.to_string())
}

pub(crate) fn node(n: u8) -> &'static str {
    if n == 1 {
        "director-1"
    } else {
        "director-2"
    }
}

/// `lbctl -o json ARGS` on director `n` (Null when it does not answer).
pub(crate) fn lbctl(tb: &Testbed, o: &PairOptions, n: u8, args: &[&str]) -> Value {
    lbctl_result(tb, o, n, args).unwrap_or(Value::Null)
}

pub(crate) fn lbctl_result(
    tb: &Testbed,
    o: &PairOptions,
    n: u8,
    args: &[&str],
) -> std::result::Result<Value, String> {
    let sock = tb.director_paths(n).api_socket().display().to_string();
    let mut cmd = vec![
        o.lbctl.display().to_string(),
        "--socket".into(),
        sock,
        "-o".into(),
        "json".into(),
    ];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    let out = tb
        .exec_timeout(node(n), &cmd, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

pub(crate) fn vrrp_state(tb: &Testbed, o: &PairOptions, n: u8) -> String {
    lbctl(tb, o, n, &["vrrp"])["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == "VI_1")
        .and_then(|i| i["state"].as_str())
        .unwrap_or("")
        .to_owned()
}

pub(crate) fn wait_for(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> bool,
) -> Result<Duration> {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > limit {
            return Err(failed(format!("{what}: not within {limit:?}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(t.elapsed())
}

/// director-1 MASTER, director-2 BACKUP with its backup daemon ready (bulk sync done).
pub(crate) fn roles_ready(tb: &Testbed, o: &PairOptions) -> Result<Duration> {
    wait_for(
        "director-1 MASTER and director-2 BACKUP",
        Duration::from_secs(20),
        || vrrp_state(tb, o, 1) == "MASTER" && vrrp_state(tb, o, 2) == "BACKUP",
    )?;
    wait_for(
        "director-2's backup daemon ready",
        Duration::from_secs(20),
        || {
            let s = lbctl(tb, o, 2, &["sync"]);
            s["ready"] == true
                && s["daemons"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["role"] == "backup"))
        },
    )
}

/// Restarts director-2 (SIGKILL, start), so that it holds no session; waits until it is ready.
pub(crate) fn fresh_backup(tb: &Testbed, o: &PairOptions) -> Result<()> {
    tb.stop_director(2, false)?;
    tb.start_director(2)?;
    roles_ready(tb, o)?;
    Ok(())
}

pub(crate) fn dropped_total(s: &Value) -> u64 {
    s["dropped"]
        .as_object()
        .map_or(0, |d| d.values().filter_map(Value::as_u64).sum())
}

pub(crate) fn dropped_delta(a: &Value, b: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(d) = b["dropped"].as_object() {
        for (k, v) in d {
            let n = v
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(a["dropped"][k].as_u64().unwrap_or(0));
            if n > 0 {
                out.insert(k.clone(), json!(n));
            }
        }
    }
    Value::Object(out)
}

pub(crate) fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

pub(crate) fn stats_of(tb: &Testbed, n: u8) -> Value {
    std::fs::read(tb.director_paths(n).stats())
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null)
}

pub(crate) fn sessions_of(tb: &Testbed, n: u8) -> u64 {
    stats_of(tb, n)["totals"]["sessions"].as_u64().unwrap_or(0)
}

/// Waits for a child (bounded), returning its stdout.
pub(crate) fn finish(mut c: Child, limit: Duration) -> String {
    let t = Instant::now();
    while c.try_wait().ok().flatten().is_none() && t.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    if c.try_wait().ok().flatten().is_none() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let mut s = String::new();
    if let Some(mut o) = c.stdout.take() {
        let _ = o.read_to_string(&mut s);
    }
    s
}

/// Brings the pair up, runs the absorption rates and the burst, tears it down.
pub fn run(o: &PairOptions) -> Value {
    let mut opts =
        UpOptions::new(unique_name("bs")).with_pair(PeerKind::Lbd, PeerConfig::Priority(100));
    opts.lbd_path = Some(o.lbd.clone());
    opts.slowpath_path = Some(o.slowpath.clone());
    opts.ready_timeout = Duration::from_secs(60);
    let started = Instant::now();
    let conf = o.work.join("sync-bench.conf");
    let written = std::fs::read_to_string(&o.conf)
        .map_err(|e| format!("{}: {e}", o.conf.display()))
        .and_then(|t| bench_conf(&t))
        .and_then(|t| {
            std::fs::create_dir_all(&o.work)
                .and_then(|()| std::fs::write(&conf, t))
                .map_err(|e| format!("{}: {e}", conf.display()))
        });
    if let Err(e) = written {
        return json!({ "error": e });
    }
    let mut tb = match Testbed::up_from_keepalived(&conf, &opts) {
        Ok(tb) => tb,
        Err(e) => return json!({ "error": format!("testbed up: {e}") }),
    };
    let mut rec = json!({ "topology": tb.name(), "config": o.conf.display().to_string(), "local_addresses": LADDRS });
    if let Err(e) = roles_ready(&tb, o) {
        rec["error"] = json!(e.to_string());
    } else {
        if o.absorb {
            let mut rows = Vec::new();
            for &rate in &o.rates {
                if crate::host::stopped() {
                    break;
                }
                match absorb::one(&mut tb, o, rate) {
                    Ok(v) => {
                        eprintln!(
                            "lb-bench-sync: absorb at {}: sent {} in {} s, applied {} ({} %), absorbed {} records/s, dropped {}",
                            if rate == 0 { "max".into() } else { format!("{rate}/s") },
                            v["blast"]["records"], v["blast"]["seconds"], v["applied"], v["applied_pct"], v["absorbed_per_s"], v["dropped"]
                        );
                        rows.push(v);
                    }
                    Err(e) => {
                        eprintln!("lb-bench-sync: absorb at {rate}/s failed: {e}");
                        rows.push(json!({ "rate_asked": rate, "error": e.to_string() }));
                    }
                }
            }
            rec["absorb"] = json!({ "records": o.records, "runs": rows });
        }
        if o.burst && !crate::host::stopped() {
            rec["burst"] = match burst::run(&mut tb, o) {
                Ok(v) => {
                    eprintln!(
                        "lb-bench-sync: burst: present on the backup {} % mid-burst (ESTABLISHED), {} % after (master {} / backup {} sessions)",
                        v["mid_burst_established"]["present_pct"], v["after"]["present_pct"], v["after"]["master_synced_states"], v["after"]["backup"]["listed"]
                    );
                    v
                }
                Err(e) => {
                    eprintln!("lb-bench-sync: burst failed: {e}");
                    json!({ "error": e.to_string() })
                }
            };
        }
    }
    let logs: Value = [1u8, 2]
        .iter()
        .map(|&n| {
            (
                node(n).to_owned(),
                json!(lb_perf::bench::procs::tail(
                    &tb.director_paths(n).dir().join("lbd.log"),
                    6
                )),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    rec["lbd_log_tails"] = logs;
    if let Err(e) = tb.down() {
        eprintln!("lb-bench-sync: testbed down: {e}");
        rec["teardown_error"] = json!(e.to_string());
    }
    rec["elapsed_s"] = json!(started.elapsed().as_secs());
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_conf_widens_the_local_address_group_only() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testbed/configs/sync-pair.conf");
        let original = std::fs::read_to_string(&path).expect("sync-pair.conf");
        let conf = bench_conf(&original).expect("widened");
        for a in LADDRS {
            assert_eq!(conf.matches(&format!("    {a} lan\n")).count(), 1, "{a}");
        }
        assert_eq!(
            conf.lines().count(),
            original.lines().count() + LADDRS.len() - 1
        );
        let dir = std::env::temp_dir().join(format!("lbsync-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("c.conf"), &conf).expect("write");
        let parsed = kaconf::load(&dir.join("c.conf")).map(|c| c.virtual_servers.len());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(parsed.map_err(|e| e.to_string()), Ok(2));
        assert!(bench_conf("no group here").is_err());
    }
}
