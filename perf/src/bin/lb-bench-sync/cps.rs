//! New connections per second through lbd on the memif lab (`lb-pktgen --mode conn`, the
//! `lbd-conn` scenario of lb-bench) with session sync off and on, in alternating rounds.
//!
//! Both variants run the same lbd.toml: the LAN port has an exception TAP with an IPv4
//! address (the sync socket's source). "on" also starts a master sync daemon through the API
//! (`lbctl --start-daemon master --mcast-interface lan`), so every session is synced by LVS's
//! rules and the messages leave through the LAN memif port to the generator's server port,
//! which counts them as `rx_other`. An optional reference variant runs without the TAP.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lb_perf::bench::lab::{self, LbdExtras};
use lb_perf::bench::pair::{self, Dut, LbdHooks, Tools};
use lb_perf::bench::procs::{self, BenchError, Result};
use serde_json::{json, Value};

use crate::host::{self, Accounting, CpuSample};

/// The TAP's kernel address (the sync socket's source) in the lab's LAN subnet.
const TAP_ADDR: &str = "10.99.2.250/24";
/// The CPU of lbd's one worker (lcore 1; lbd's main lcore and the generator are on CPU 0).
const WORKER_CPU: usize = 1;

/// One variant of lbd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// No TAP at all (what lb-bench's lbd-conn runs): reference only.
    NoTap,
    /// TAP, no sync daemon.
    Off,
    /// TAP and a master sync daemon.
    On,
    /// As `On`, with lbd's sync thread moved onto the worker's CPU (1): what sync costs when
    /// its thread has no core of its own and takes the worker's time, not the generator's.
    OnWorkerCpu,
}

impl Variant {
    pub fn key(self) -> &'static str {
        match self {
            Variant::NoTap => "no_tap",
            Variant::Off => "off",
            Variant::On => "on",
            Variant::OnWorkerCpu => "on_worker_cpu",
        }
    }

    fn syncs(self) -> bool {
        matches!(self, Variant::On | Variant::OnWorkerCpu)
    }
}

/// Settings of the connection runs.
#[derive(Debug, Clone)]
pub struct CpsOptions {
    pub tools: Tools,
    pub lbctl: PathBuf,
    pub rounds: usize,
    pub warmup: f64,
    pub duration: f64,
    pub concurrency: u64,
    /// Also run the no-TAP reference in every round.
    pub reference: bool,
    /// Move lbd's sync thread to this CPU (default: where lbd's main thread is, CPU 0).
    pub sync_cpu: Option<usize>,
    pub quiet_pct: f64,
    /// A run during which other processes used more than this share of the CPUs (percent)
    /// is repeated (at most `attempts` in all).
    pub during_pct: f64,
    pub attempts: usize,
    /// Also run `OnWorkerCpu` in every round.
    pub worker_cpu_variant: bool,
    /// After the rounds, one more off and on run each with `perf record` on lbd.
    pub profile: bool,
    /// Before the rounds, one testpmd io-fwd run (UDP 64 B): how fast this machine forwards
    /// today, to compare with other days' results.
    pub testpmd: bool,
}

/// The hooks of one run: sets up the TAP and the daemon, samples CPU and counters.
struct SyncHooks {
    variant: Variant,
    tap: String,
    lbctl: PathBuf,
    sync_cpu: Option<usize>,
    ready_at: Option<Instant>,
    daemon_ms: Option<u64>,
    cpu0: CpuSample,
    t0: Option<Instant>,
    sync0: Option<(u32, u64)>,
    lbd0: Option<u64>,
    acct0: Accounting,
    /// The worker's (loops, busy loops, rx) when the window began.
    worker0: Option<(u64, u64, u64)>,
    out: Value,
}

/// The first worker's loops, busy loops (that handled a packet) and received packets, from
/// lbd's stats file (rewritten every 200 ms).
fn worker_counts(dir: &Path) -> Option<(u64, u64, u64)> {
    let s: Value = serde_json::from_slice(&std::fs::read(dir.join("stats.json")).ok()?).ok()?;
    let w = &s["workers"][0];
    Some((
        w["loops"].as_u64()?,
        w["busy_loops"].as_u64()?,
        w["rx"].as_u64()?,
    ))
}

fn sock(dir: &Path) -> String {
    dir.join("lbd.sock").display().to_string()
}

impl SyncHooks {
    fn lbctl(&self, dir: &Path, args: &[&str]) -> std::result::Result<String, String> {
        let s = sock(dir);
        let mut all = vec!["--socket", s.as_str()];
        all.extend_from_slice(args);
        host::run(&self.lbctl, &all)
    }

    fn sync_status(&self, dir: &Path) -> Value {
        self.lbctl(dir, &["-o", "json", "sync"])
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }
}

fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(e.to_string())
}

impl LbdHooks for SyncHooks {
    fn extras(&self) -> LbdExtras {
        LbdExtras {
            lan_tap: (self.variant != Variant::NoTap).then(|| self.tap.clone()),
            ..LbdExtras::default()
        }
    }

    fn ready(&mut self, dir: &Path, lbd_pid: u32) -> Result<()> {
        self.ready_at = Some(Instant::now());
        if self.variant != Variant::NoTap {
            let ip = Path::new("ip");
            host::run(ip, &["addr", "add", TAP_ADDR, "dev", &self.tap]).map_err(failed)?;
            host::run(ip, &["link", "set", &self.tap, "up"]).map_err(failed)?;
        }
        let cpu = if self.variant == Variant::OnWorkerCpu {
            Some(WORKER_CPU)
        } else {
            self.sync_cpu
        };
        if let Some(cpu) = cpu {
            let (tid, _) = host::thread_ticks(lbd_pid, "lbd-sync")
                .ok_or_else(|| failed("lbd has no lbd-sync thread"))?;
            host::run(
                Path::new("taskset"),
                &["-p", "-c", &cpu.to_string(), &tid.to_string()],
            )
            .map_err(failed)?;
        }
        if self.variant.syncs() {
            self.lbctl(
                dir,
                &["--start-daemon", "master", "--mcast-interface", "lan"],
            )
            .map_err(failed)?;
            // The sync thread opens the socket within ~100 ms (it retries while the TAP has no
            // address); the daemon is listed once it has.
            let until = Instant::now() + Duration::from_secs(5);
            loop {
                let s = self.sync_status(dir);
                let up = s["daemons"].as_array().is_some_and(|d| {
                    d.iter()
                        .any(|d| d["role"] == "master" && d["active"] == true)
                });
                if up {
                    break;
                }
                if Instant::now() > until {
                    return Err(failed(format!(
                        "the master sync daemon did not start within 5 s: {s}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.daemon_ms = self
            .ready_at
            .map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX));
        self.cpu0 = CpuSample::now();
        self.acct0 = Accounting::now();
        self.worker0 = worker_counts(dir);
        self.t0 = Some(Instant::now());
        self.sync0 = host::thread_ticks(lbd_pid, "lbd-sync");
        self.lbd0 = host::process_ticks(lbd_pid);
        Ok(())
    }

    fn done(&mut self, dir: &Path, lbd_pid: u32) {
        let secs = self.t0.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-3);
        let cpu = self.cpu0.shares(&CpuSample::now());
        let others = self.acct0.others_pct(&Accounting::now());
        let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => json!(
                (1000.0 * b.saturating_sub(a) as f64 / host::TICKS_PER_S / secs).round() / 10.0
            ),
            _ => Value::Null,
        };
        let sync1 = host::thread_ticks(lbd_pid, "lbd-sync");
        // How busy the worker was from the daemon's start to the report: the share of its poll
        // passes that found packets, and packets per such pass (two ports of 32 at most, plus
        // the TAP). A saturated worker finds packets on nearly every pass, in full bursts.
        let worker = match (self.worker0, worker_counts(dir)) {
            (Some(a), Some(b)) if b.0 > a.0 && b.1 > a.1 => json!({
                "loops": b.0 - a.0,
                "busy_share": ((b.1 - a.1) as f64 / (b.0 - a.0) as f64 * 1000.0).round() / 1000.0,
                "rx_per_busy_loop": ((b.2 - a.2) as f64 / (b.1 - a.1) as f64 * 10.0).round() / 10.0,
            }),
            _ => Value::Null,
        };
        self.out = json!({
            "setup_ms": self.daemon_ms,
            "cpu": cpu,
            "others_during_pct": others,
            "cpu_seconds": (secs * 100.0).round() / 100.0,
            "lbd_cpu_pct": pct(self.lbd0, host::process_ticks(lbd_pid)),
            "sync_thread_cpu_pct": pct(self.sync0.map(|s| s.1), sync1.map(|s| s.1)),
            "sync": self.sync_status(dir),
            "worker": worker,
        });
    }
}

/// One run of variant `v` (after waiting for quiet).
fn one_run(
    o: &CpsOptions,
    args: &[String],
    v: Variant,
    round: usize,
    tap: &str,
    budget: &mut Duration,
) -> Value {
    run_on(&o.tools, o, args, v, round, tap, budget)
}

/// testpmd io-fwd over the same memif pair, UDP 64 B: the machine's forwarding rate today.
fn testpmd_reference(o: &CpsOptions, budget: &mut Duration) -> Value {
    let (busy, _) = host::wait_quiet(o.quiet_pct, budget, "testpmd reference");
    let args: Vec<String> = [
        "--mode",
        "udp",
        "--skip-open",
        "--dut-mac",
        lab::DUT_WAN_MAC,
        "--src-ip",
        lab::CLIENTS,
        "--dst-ip",
        lab::VIP,
        "--dst-port",
        "53",
        "--flows",
        "10000",
        "--size",
        "64",
        "--warmup",
        "1",
        "--duration",
        "2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let dir = o.tools.work.join("testpmd");
    match pair::run(&o.tools, Dut::Testpmd, &dir, &args, 1 << 20) {
        Ok(out) => {
            eprintln!(
                "lb-bench-sync: testpmd io-fwd reference: {} pps",
                out.gen["rx_pps"]
            );
            json!({ "rx_pps": out.gen["rx_pps"], "others_cpu_pct": (busy * 10.0).round() / 10.0, "load": out.load })
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn run_on(
    tools: &Tools,
    o: &CpsOptions,
    args: &[String],
    v: Variant,
    round: usize,
    tap: &str,
    budget: &mut Duration,
) -> Value {
    let (busy, heavy) = host::wait_quiet(
        o.quiet_pct,
        budget,
        &format!("cps round {} {}", round + 1, v.key()),
    );
    let mut hooks = SyncHooks {
        variant: v,
        tap: tap.to_owned(),
        lbctl: o.lbctl.clone(),
        sync_cpu: o.sync_cpu,
        ready_at: None,
        daemon_ms: None,
        cpu0: CpuSample::default(),
        t0: None,
        sync0: None,
        lbd0: None,
        acct0: Accounting::default(),
        worker0: None,
        out: Value::Null,
    };
    let dir = tools.work.join(format!("cps-{}-{}", round + 1, v.key()));
    let r = pair::run_with(tools, Dut::Lbd, &dir, args, 1 << 22, &mut hooks);
    let mut rec = match r {
        Ok(out) => {
            let mut rec = summarize(v, &out, &hooks);
            if let Some(p) = out.profile {
                rec["profile"] = json!(p);
            }
            rec
        }
        Err(e) => {
            json!({ "variant": v.key(), "error": e.to_string(), "log": procs::tail(&dir.join("lbd.log"), 8) })
        }
    };
    rec["round"] = json!(round + 1);
    rec["others_cpu_pct"] = json!((busy * 10.0).round() / 10.0);
    if !heavy.is_empty() {
        rec["others_running"] = json!(heavy);
    }
    rec
}

fn gen_args(o: &CpsOptions) -> Vec<String> {
    [
        "--mode",
        "conn",
        "--src-ip",
        lab::CLIENTS,
        "--dst-ip",
        lab::VIP,
        "--dst-port",
        "80",
        "--server-ip",
        lab::REAL_SERVERS,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--concurrency".into(),
        o.concurrency.to_string(),
        "--warmup".into(),
        o.warmup.to_string(),
        "--duration".into(),
        o.duration.to_string(),
    ])
    .collect()
}

/// The figures of one run kept in the record.
fn summarize(variant: Variant, o: &pair::Outcome, hooks: &SyncHooks) -> Value {
    let g = &o.gen;
    let t = o
        .lbd_stats
        .as_ref()
        .map(|s| s["totals"].clone())
        .unwrap_or(Value::Null);
    let drops = lb_perf::bench::record::nonzero_drops(&t);
    let created = t["sessions_created"].as_u64().unwrap_or(0);
    let queued = t["sync_queued"].as_u64().unwrap_or(0);
    let s = &hooks.out["sync"];
    json!({
        "variant": variant.key(),
        "cps": g["cps"],
        "window": g["window"],
        "connect_latency_ns": g["connect_latency_ns"],
        "gen_closed_total": g["totals"]["closed"],
        "gen_server_rx_other": g["ports"]["server"]["rx_other"],
        "lbd": {
            "sessions_created": created,
            "sync_queued": queued,
            "sync_queue_full": t["sync_queue_full"],
            "records_per_connection": if created > 0 { json!(((queued as f64 / created as f64) * 100.0).round() / 100.0) } else { Value::Null },
            "from_kernel": t["from_kernel"],
            "to_kernel": t["to_kernel"],
            "drops": drops,
        },
        "sync": if s.is_null() { Value::Null } else { json!({
            "sent_messages": s["sent_messages"], "sent_conns": s["sent_conns"], "send_dropped": s["send_dropped"],
            "dropped": s["dropped"], "daemons": s["daemons"].as_array().map_or(0, Vec::len),
        }) },
        "setup_ms": hooks.out["setup_ms"],
        "cpu": hooks.out["cpu"],
        "others_during_pct": hooks.out["others_during_pct"],
        "lbd_cpu_pct": hooks.out["lbd_cpu_pct"],
        "sync_thread_cpu_pct": hooks.out["sync_thread_cpu_pct"],
        "worker_window": hooks.out["worker"],
        "load": o.load,
        "dut_exit": o.dut_exit,
    })
}

/// Runs the rounds; returns every run and the medians.
pub fn run(o: &CpsOptions, budget: &mut Duration) -> Value {
    let args = gen_args(o);
    let mut runs: Vec<Value> = Vec::new();
    let tag = std::process::id() % 100_000;
    let mut n = 0usize;
    let reference =
        (o.testpmd && procs::have(&o.tools.testpmd)).then(|| testpmd_reference(o, budget));
    for round in 0..o.rounds {
        if host::stopped() {
            break;
        }
        // Rotate which goes first, so drift in the machine hits every variant alike.
        let mut order = vec![Variant::Off, Variant::On];
        if o.worker_cpu_variant {
            order.push(Variant::OnWorkerCpu);
        }
        let first = round % order.len();
        order.rotate_left(first);
        if o.reference {
            order.push(Variant::NoTap);
        }
        for v in order {
            if host::stopped() {
                break;
            }
            let mut discarded = Vec::new();
            let rec = loop {
                n += 1;
                let mut rec = one_run(o, &args, v, round, &format!("lbs{tag}r{n}"), budget);
                let others = rec["others_during_pct"].as_f64().unwrap_or(0.0);
                eprintln!(
                    "lb-bench-sync: cps round {}/{} {:>6}: {} conn/s (sync sent {} records, queue_full {}, sync thread {} % CPU, others {others} % during){}",
                    round + 1,
                    o.rounds,
                    v.key(),
                    rec["cps"],
                    rec["sync"]["sent_conns"],
                    rec["lbd"]["sync_queue_full"],
                    rec["sync_thread_cpu_pct"],
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
                    break rec;
                }
                eprintln!("lb-bench-sync: other processes used {others} % of the CPUs during that run: repeating it");
                rec.as_object_mut().map(|m| m.remove("lbd"));
                discarded.push(rec);
            };
            runs.push(rec);
        }
    }
    let mut profiles = json!({});
    if o.profile && procs::have("perf") {
        let mut t = o.tools.clone();
        t.perf_record = Some(Duration::from_secs(2));
        for v in [Variant::Off, Variant::On] {
            if host::stopped() {
                break;
            }
            n += 1;
            let r = run_on(&t, o, &args, v, o.rounds, &format!("lbs{tag}r{n}"), budget);
            eprintln!(
                "lb-bench-sync: profile run {}: {} conn/s",
                v.key(),
                r["cps"]
            );
            profiles[v.key()] = json!({ "cps": r["cps"], "others_during_pct": r["others_during_pct"], "profile": r["profile"] });
        }
    }
    let cps_of = |key: &str| -> Vec<f64> {
        runs.iter()
            .filter(|r| r["variant"] == key)
            .filter_map(|r| r["cps"].as_f64())
            .collect()
    };
    let mut summary = json!({});
    for v in [
        Variant::Off,
        Variant::On,
        Variant::OnWorkerCpu,
        Variant::NoTap,
    ] {
        let c = cps_of(v.key());
        if !c.is_empty() {
            summary[v.key()] = json!({
                "median": host::median(&c),
                "min": c.iter().copied().fold(f64::INFINITY, f64::min),
                "max": c.iter().copied().fold(0.0, f64::max),
                "runs": c.len(),
            });
        }
    }
    // Per-round ratios (each round's on ÷ its off) and the ratio of the medians.
    let ratios = |key: &str| -> Vec<f64> {
        (1..=o.rounds)
            .filter_map(|r| {
                let get = |k: &str| {
                    runs.iter()
                        .find(|x| x["round"] == r && x["variant"] == k)
                        .and_then(|x| x["cps"].as_f64())
                };
                Some(get(key)? / get("off")?)
            })
            .collect()
    };
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    for (key, prefix) in [("on", ""), ("on_worker_cpu", "worker_cpu_")] {
        let per_round = ratios(key);
        if per_round.is_empty() {
            continue;
        }
        if let (Some(on), Some(off)) = (
            summary[key]["median"].as_f64(),
            summary["off"]["median"].as_f64(),
        ) {
            summary[format!("{prefix}ratio_of_medians")] = json!(r3(on / off));
        }
        summary[format!("{prefix}round_ratios")] =
            json!(per_round.iter().map(|x| r3(*x)).collect::<Vec<_>>());
        summary[format!("{prefix}median_round_ratio")] = json!(host::median(&per_round).map(r3));
    }
    json!({
        "settings": {
            "rounds": o.rounds, "warmup_s": o.warmup, "duration_s": o.duration, "concurrency": o.concurrency,
            "generator_args": args, "tap_address": TAP_ADDR, "no_huge": o.tools.no_huge,
            "sync_thread_cpu": o.sync_cpu.map_or_else(|| json!("inherited (lbd's main lcore, CPU 0, shared with the generator)"), |c| json!(c)),
        },
        "testpmd_reference": reference,
        "runs": runs,
        "summary": summary,
        "profiles": profiles,
    })
}
