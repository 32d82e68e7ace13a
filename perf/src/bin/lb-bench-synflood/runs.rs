//! The runs: lbd (one worker) with a `syn_proxy` FNAT service on the memif lab, lb-pktgen
//! opening real connections (`--mode conn`) with and without a SYN flood beside them, in
//! rounds that rotate the order of the variants.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lb_perf::bench::lab::{self, LbdExtras};
use lb_perf::bench::pair::{self, Dut, LbdHooks, Tools};
use lb_perf::bench::procs::{self, Result};
use serde_json::{json, Value};

use crate::host::{self, Accounting, CpuSample};

/// Spoofed flood sources: RFC 2544's benchmark range, nothing in the lab uses it.
pub const FLOOD_SOURCES: &str = "198.18.0.0/15";

/// The real connections of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legit {
    /// As many as one worker completes (`--rate 0`).
    Max,
    /// A fixed offered rate (connections per second).
    Rate(u64),
    /// None: the flood alone (`--mode flood`).
    None,
}

/// One configuration of lbd and the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub proxy: bool,
    pub legit: Legit,
    /// Flood SYNs per second (0: as fast as the port takes them).
    pub flood: Option<u64>,
}

fn rate_key(r: u64) -> String {
    if r >= 1_000_000 && r.is_multiple_of(100_000) {
        format!("{}M", r as f64 / 1e6)
    } else if r >= 1000 && r.is_multiple_of(1000) {
        format!("{}k", r / 1000)
    } else {
        r.to_string()
    }
}

impl Variant {
    /// A short name: `on`, `off`, `on@50k`, `on_flood_max`, `on@50k_flood_500k`,
    /// `on_flood_only_max`.
    pub fn key(&self) -> String {
        let mut k = String::from(if self.proxy { "on" } else { "off" });
        match self.legit {
            Legit::Max => {}
            Legit::Rate(r) => k.push_str(&format!("@{}", rate_key(r))),
            Legit::None => k.push_str("_flood_only"),
        }
        match self.flood {
            None => {}
            Some(0) => k.push_str(if self.legit == Legit::None {
                "_max"
            } else {
                "_flood_max"
            }),
            Some(r) if self.legit == Legit::None => k.push_str(&format!("_{}", rate_key(r))),
            Some(r) => k.push_str(&format!("_flood_{}", rate_key(r))),
        }
        k
    }

    /// The same without the flood (what a flood run is compared with).
    pub fn baseline(&self) -> Option<Variant> {
        (self.flood.is_some() && self.legit != Legit::None).then_some(Variant {
            flood: None,
            ..*self
        })
    }
}

/// Settings of the runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub tools: Tools,
    pub rounds: usize,
    pub warmup: f64,
    pub duration: f64,
    pub concurrency: u64,
    pub variants: Vec<Variant>,
    pub toa: String,
    pub quiet_pct: f64,
    pub during_pct: f64,
    pub attempts: usize,
}

/// The generator's arguments for `v`.
pub fn gen_args(o: &Options, v: &Variant) -> Vec<String> {
    let mut a: Vec<String> = [
        "--mode",
        if v.legit == Legit::None {
            "flood"
        } else {
            "conn"
        },
        "--src-ip",
        lab::CLIENTS,
        "--dst-ip",
        lab::VIP,
        "--dst-port",
        "80",
        "--server-ip",
        lab::REAL_SERVERS,
        "--track-half-open",
        "--flood-sources",
        FLOOD_SOURCES,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    a.extend([
        "--concurrency".into(),
        o.concurrency.to_string(),
        "--warmup".into(),
        o.warmup.to_string(),
        "--duration".into(),
        o.duration.to_string(),
    ]);
    if let Legit::Rate(r) = v.legit {
        a.extend(["--rate".into(), r.to_string()]);
    }
    if let Some(f) = v.flood {
        a.extend(["--flood-pps".into(), f.to_string()]);
    }
    a
}

/// lbd's stats file, parsed.
fn stats(dir: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join("stats.json")).ok()?).ok()
}

/// The CPU each thread of `pid` last ran on and may run on: `[{comm, tid, cpu, allowed}]`.
pub fn placement(pid: u32) -> Value {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Value::Null;
    };
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let f: Vec<&str> = stat
            .get(close + 2..)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the comm, field 3 (state) is f[0]: processor (field 39) is f[36].
        let cpu = f.get(36).and_then(|x| x.parse::<u32>().ok());
        let ticks = f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(str::trim)
            .unwrap_or("?");
        // Busy threads only (the poll loops); idle helper threads are noise.
        if ticks >= 10 {
            out.push(json!({
                "comm": stat.get(open + 1..close).unwrap_or(""),
                "cpu": cpu, "allowed": allowed, "ticks": ticks,
            }));
        }
    }
    json!(out)
}

/// The generator of this bench (a descendant named lb-pktgen).
fn generator_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "lb-pktgen" && host::ours_pid(pid)).then_some(pid)
    })
}

/// Samples lbd's counters inside the generator's measured window; CPU use and placement.
struct Hooks {
    extras: LbdExtras,
    warmup: f64,
    duration: f64,
    samples: Vec<Value>,
    cpu0: CpuSample,
    acct0: Accounting,
    lbd0: Option<u64>,
    t0: Option<Instant>,
    placement: Value,
    out: Value,
}

impl LbdHooks for Hooks {
    fn extras(&self) -> LbdExtras {
        self.extras.clone()
    }

    fn ready(&mut self, dir: &Path, lbd_pid: u32) -> Result<()> {
        self.cpu0 = CpuSample::now();
        self.acct0 = Accounting::now();
        self.lbd0 = host::process_ticks(lbd_pid);
        self.t0 = Some(Instant::now());
        // The generator starts its window about `warmup` after the links come up (lbd is
        // ready): sample well inside it, twice, and rate from lbd's own uptime stamps.
        let margin = 0.5f64.min(self.duration / 4.0);
        std::thread::sleep(Duration::from_secs_f64(self.warmup + margin));
        self.samples.extend(stats(dir));
        self.placement = json!({ "lbd": placement(lbd_pid), "lb-pktgen": generator_pid().map_or(Value::Null, placement) });
        std::thread::sleep(Duration::from_secs_f64(
            (self.duration - 2.0 * margin).max(0.2),
        ));
        self.samples.extend(stats(dir));
        Ok(())
    }

    fn done(&mut self, _dir: &Path, lbd_pid: u32) {
        let secs = self.t0.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-3);
        let lbd_pct = match (self.lbd0, host::process_ticks(lbd_pid)) {
            (Some(a), Some(b)) => json!(
                (1000.0 * b.saturating_sub(a) as f64 / host::TICKS_PER_S / secs).round() / 10.0
            ),
            _ => Value::Null,
        };
        self.out = json!({
            "cpu": self.cpu0.shares(&CpuSample::now()),
            "others_during_pct": self.acct0.others_pct(&Accounting::now()),
            "lbd_cpu_pct": lbd_pct,
            "placement": self.placement,
        });
    }
}

/// Per-second rates of lbd's counters between the two samples (the first worker's and the
/// totals'), for `keys`.
fn window_rates(samples: &[Value], keys: &[&str]) -> Value {
    let (Some(a), Some(b)) = (samples.first(), samples.get(1)) else {
        return Value::Null;
    };
    let dt =
        (b["uptime_ms"].as_f64().unwrap_or(0.0) - a["uptime_ms"].as_f64().unwrap_or(0.0)) / 1000.0;
    if dt <= 0.0 {
        return Value::Null;
    }
    let mut out = json!({ "seconds": (dt * 1000.0).round() / 1000.0 });
    for k in keys {
        let d = |v: &Value| v.as_u64().unwrap_or(0);
        let total = d(&b["totals"][k]).saturating_sub(d(&a["totals"][k]));
        let w0 = d(&b["workers"][0][k]).saturating_sub(d(&a["workers"][0][k]));
        out[k] = json!({ "per_s": (total as f64 / dt).round(), "worker0_per_s": (w0 as f64 / dt).round() });
    }
    out
}

/// lbd's counters kept in the record (totals at the end of the run).
const LBD_KEYS: [&str; 9] = [
    "synproxy_syn_cookies",
    "synproxy_accepted",
    "synproxy_window_updates",
    "synproxy_rs_syn_retries",
    "synproxy_ack_data_cut",
    "sessions_created",
    "rst_sent",
    "rx",
    "tx",
];

fn summarize(v: &Variant, out: &pair::Outcome, hooks: &Hooks) -> Value {
    let g = &out.gen;
    let t = out
        .lbd_stats
        .as_ref()
        .map(|s| s["totals"].clone())
        .unwrap_or(Value::Null);
    let drops = lb_perf::bench::record::nonzero_drops(&t);
    let lbd: serde_json::Map<String, Value> = LBD_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), t[k].clone()))
        .collect();
    let lat =
        |k: &str| json!({ "p50": g[k]["p50"], "p99": g[k]["p99"], "samples": g[k]["samples"] });
    json!({
        "variant": v.key(),
        "cps": g["cps"],
        "syn_per_s": g["syn_per_s"],
        "window": g["window"],
        "totals": g["totals"],
        "flood": g["flood"],
        "server_half_open": g["server_half_open"],
        "handshake_latency_ns": lat("handshake_latency_ns"),
        "window_update_latency_ns": lat("window_update_latency_ns"),
        "connect_latency_ns": lat("connect_latency_ns"),
        "gen_client_port": g["ports"]["client"],
        "lbd_window": window_rates(&hooks.samples, &["synproxy_syn_cookies", "synproxy_accepted", "sessions_created", "rx"]),
        "lbd": lbd,
        "lbd_drops": drops,
        "cpu": hooks.out["cpu"],
        "others_during_pct": hooks.out["others_during_pct"],
        "lbd_cpu_pct": hooks.out["lbd_cpu_pct"],
        "placement": hooks.out["placement"],
        "load": out.load,
        "dut_exit": out.dut_exit,
    })
}

/// One run of `v` (after waiting for quiet), repeated when others loaded the CPUs during it.
pub fn one(o: &Options, v: &Variant, round: usize, n: &mut usize, budget: &mut Duration) -> Value {
    let mut discarded = Vec::new();
    loop {
        *n += 1;
        let (busy, heavy) = host::wait_quiet(
            o.quiet_pct,
            budget,
            &format!("round {} {}", round + 1, v.key()),
        );
        let mut hooks = Hooks {
            extras: LbdExtras {
                syn_proxy: v.proxy,
                toa: Some(o.toa.clone()),
                ..LbdExtras::default()
            },
            warmup: o.warmup,
            duration: o.duration,
            samples: Vec::new(),
            cpu0: CpuSample::default(),
            acct0: Accounting::default(),
            lbd0: None,
            t0: None,
            placement: Value::Null,
            out: Value::Null,
        };
        let dir: PathBuf = o.tools.work.join(format!("r{}-{}", *n, v.key()));
        let args = gen_args(o, v);
        let mut rec = match pair::run_with(&o.tools, Dut::Lbd, &dir, &args, 1 << 22, &mut hooks) {
            Ok(out) => summarize(v, &out, &hooks),
            Err(e) => json!({
                "variant": v.key(), "error": e.to_string(),
                "log": procs::tail(&dir.join("lbd.log"), 8),
            }),
        };
        rec["round"] = json!(round + 1);
        rec["others_cpu_pct"] = json!((busy * 10.0).round() / 10.0);
        if !heavy.is_empty() {
            rec["others_running"] = json!(heavy);
        }
        let _ = std::fs::remove_dir_all(&dir);
        let others = rec["others_during_pct"].as_f64().unwrap_or(0.0);
        eprintln!(
            "lb-bench-synflood: round {} {:>22}: {} conn/s, flood {} SYN/s sent, {} cookies/s (lbd), half-open at servers {}, flood seen at servers {}, others {others} % during{}",
            round + 1,
            v.key(),
            rec["cps"],
            rec["flood"]["sent_per_s"],
            rec["lbd_window"]["synproxy_syn_cookies"]["worker0_per_s"],
            rec["server_half_open"]["at_end"],
            rec["totals"]["srv_flood_seen"],
            rec["error"].as_str().map(|e| format!(" FAILED: {e}")).unwrap_or_default()
        );
        if others <= o.during_pct
            || discarded.len() + 1 >= o.attempts.max(1)
            || budget.is_zero()
            || host::stopped()
        {
            if !discarded.is_empty() {
                rec["discarded_attempts"] = json!(discarded);
            }
            return rec;
        }
        eprintln!("lb-bench-synflood: other processes used {others} % of the CPUs during that run: repeating it");
        discarded.push(json!({ "cps": rec["cps"], "others_during_pct": others }));
    }
}

/// Runs every round; returns the runs and the summary.
pub fn run(o: &Options, budget: &mut Duration) -> Value {
    let mut runs = Vec::new();
    let mut n = 0usize;
    for round in 0..o.rounds {
        let mut order = o.variants.clone();
        let len = order.len().max(1);
        order.rotate_left(round % len);
        for v in &order {
            if host::stopped() {
                break;
            }
            runs.push(one(o, v, round, &mut n, budget));
        }
    }
    let summary = crate::summary::summarize(&runs, &o.variants, o.rounds);
    json!({
        "settings": {
            "rounds": o.rounds, "warmup_s": o.warmup, "duration_s": o.duration,
            "concurrency": o.concurrency, "toa": o.toa, "flood_sources": FLOOD_SOURCES,
            "no_huge": o.tools.no_huge,
            "variants": o.variants.iter().map(|v| json!({ "key": v.key(), "generator_args": gen_args(o, v).join(" ") })).collect::<Vec<_>>(),
        },
        "runs": runs,
        "summary": summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_keys_and_baselines() {
        let v = |proxy, legit, flood| Variant {
            proxy,
            legit,
            flood,
        };
        assert_eq!(v(false, Legit::Max, None).key(), "off");
        assert_eq!(v(true, Legit::Max, Some(0)).key(), "on_flood_max");
        assert_eq!(
            v(true, Legit::Rate(50_000), Some(500_000)).key(),
            "on@50k_flood_500k"
        );
        assert_eq!(v(true, Legit::Max, Some(1_500_000)).key(), "on_flood_1.5M");
        assert_eq!(v(true, Legit::None, Some(0)).key(), "on_flood_only_max");
        assert_eq!(
            v(true, Legit::Rate(50_000), Some(0)).baseline(),
            Some(v(true, Legit::Rate(50_000), None))
        );
        assert_eq!(v(true, Legit::None, Some(0)).baseline(), None);
        assert_eq!(v(true, Legit::Max, None).baseline(), None);
    }

    #[test]
    fn rates_come_from_lbd_uptime() {
        let a = json!({"uptime_ms": 1000, "totals": {"synproxy_syn_cookies": 100}, "workers": [{"synproxy_syn_cookies": 100}]});
        let b = json!({"uptime_ms": 3000, "totals": {"synproxy_syn_cookies": 2_000_100}, "workers": [{"synproxy_syn_cookies": 1_000_100}]});
        let r = window_rates(&[a, b], &["synproxy_syn_cookies"]);
        assert_eq!(r["synproxy_syn_cookies"]["per_s"], 1_000_000.0);
        assert_eq!(r["synproxy_syn_cookies"]["worker0_per_s"], 500_000.0);
        assert_eq!(r["seconds"], 2.0);
        assert!(window_rates(&[json!({})], &["x"]).is_null());
    }

    #[test]
    fn generator_arguments() {
        let o = Options {
            tools: Tools {
                pktgen: "p".into(),
                lbd: "l".into(),
                testpmd: "t".into(),
                no_huge: true,
                work: "/tmp".into(),
                perf_record: None,
                layout: lb_perf::bench::pair::Layout::default(),
            },
            rounds: 1,
            warmup: 1.0,
            duration: 2.0,
            concurrency: 64,
            variants: vec![],
            toa: "syn-and-first-ack".into(),
            quiet_pct: 20.0,
            during_pct: 5.0,
            attempts: 1,
        };
        let a = gen_args(
            &o,
            &Variant {
                proxy: true,
                legit: Legit::Rate(20_000),
                flood: Some(0),
            },
        )
        .join(" ");
        assert!(a.starts_with("--mode conn "), "{a}");
        assert!(
            a.contains("--rate 20000")
                && a.contains("--flood-pps 0")
                && a.contains("--track-half-open"),
            "{a}"
        );
        let a = gen_args(
            &o,
            &Variant {
                proxy: true,
                legit: Legit::None,
                flood: Some(0),
            },
        )
        .join(" ");
        assert!(
            a.starts_with("--mode flood ") && !a.contains("--rate"),
            "{a}"
        );
    }
}
