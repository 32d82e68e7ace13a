//! `lb-bench-sync`: what session sync costs, behind `make bench-sync`.
#![forbid(unsafe_code)]

mod absorb;
mod burst;
mod cps;
mod host;
mod pairbed;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use lb_perf::bench::{self, pair::Tools, procs};
use serde_json::json;

/// Measures the cost of session sync (LVS sync v1) and writes `<out>/YYYY-MM-DD-sync.md` and
/// `.json`:
///
///   cps     new connections per second through one lbd worker with sync off vs on (memif lab,
///           lb-pktgen --mode conn; rounds alternate off/on; target on >= 0.8 x off);
///   absorb  records per second a backup installs: lb-sync-blast multicasts FNAT records at
///           several rates into the testbed pair (testbed/configs/sync-pair.conf);
///   burst   sessions on the backup vs the master after a wrk burst through the VIP (target
///           >= 99.9 % present).
///
/// Needs root, DPDK, iproute2, taskset, wrk, nginx and release builds of lbd, lb-slowpath,
/// lbctl, lb-pktgen and lb-sync-blast (`make bench-sync` builds them). Before each run it
/// waits while other builds or directors run, or other processes use the CPUs (--max-wait).
#[derive(Debug, Parser)]
#[command(name = "lb-bench-sync", version, verbatim_doc_comment)]
struct Cli {
    /// Parts to run (cps, absorb, burst), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "cps,absorb,burst")]
    only: Vec<String>,
    /// Rounds of the connection runs (each runs off, on and on with the sync thread on the
    /// worker's CPU, rotating which goes first).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Seconds of connections before each measured window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured per connection run.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Most unfinished connections.
    #[arg(long, default_value_t = 4096)]
    concurrency: u64,
    /// Also run a reference without the LAN TAP in each round (what lb-bench's lbd-conn runs).
    #[arg(long)]
    tap_reference: bool,
    /// Move lbd's sync thread to this CPU in the connection runs (default: it stays with
    /// lbd's main thread on CPU 0, beside the generator).
    #[arg(long)]
    sync_cpu: Option<usize>,
    /// Records per second asked of the blaster (0: as fast as it goes), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "20000,50000,100000,200000,300000,400000,0"
    )]
    rates: Vec<u64>,
    /// Records per absorption run (one local port each: at most 8 x 64510).
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// Keep-alive connections of the burst.
    #[arg(long, default_value_t = 500)]
    keepalive_conns: u32,
    /// Seconds of the keep-alive burst.
    #[arg(long, default_value_t = 10)]
    burst_secs: u32,
    /// Connection: close connections beside it (0: none).
    #[arg(long, default_value_t = 50)]
    close_conns: u32,
    /// Seconds of the Connection: close burst.
    #[arg(long, default_value_t = 10)]
    close_secs: u32,
    /// Seconds between the end of the burst and the comparison.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Wait while other processes use more than this share of the CPUs (percent).
    #[arg(long, default_value_t = 20.0)]
    quiet_pct: f64,
    /// Repeat a connection run during which other processes used more than this share of the
    /// CPUs (percent; builds starting mid-run).
    #[arg(long, default_value_t = 5.0)]
    during_pct: f64,
    /// Skip the variant with lbd's sync thread on the worker's CPU in each round.
    #[arg(long)]
    no_worker_cpu: bool,
    /// Skip the `perf record` profiles of lbd (one more off and on run each).
    #[arg(long)]
    no_profile: bool,
    /// Skip the testpmd io-fwd reference run (this machine's forwarding rate today).
    #[arg(long)]
    no_testpmd: bool,
    /// Most attempts per connection run.
    #[arg(long, default_value_t = 3)]
    attempts: usize,
    /// Most seconds to wait for quiet over the whole bench (0: never wait).
    #[arg(long, default_value_t = 600)]
    max_wait: u64,
    /// Hugepages for the memif lab: auto, yes, no.
    #[arg(long, default_value = "auto")]
    huge: String,
    /// Results directory (default: perf/results).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scratch directory (sockets, configs, logs).
    #[arg(long, default_value = "/run/lb-perf")]
    work: PathBuf,
    /// Print the report only.
    #[arg(long)]
    no_write: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // SIGINT/SIGTERM end the bench through the normal path: lbd and the generator stopped in
    // order, the testbed pair torn down, nothing written.
    host::catch_signals();
    let parts: Vec<&str> = cli.only.iter().map(String::as_str).collect();
    if let Some(bad) = parts
        .iter()
        .find(|p| !["cps", "absorb", "burst"].contains(p))
    {
        eprintln!("lb-bench-sync: --only: unknown part {bad:?} (cps, absorb, burst)");
        return ExitCode::from(2);
    }
    let bins =
        ["lbd", "lb-slowpath", "lbctl", "lb-pktgen", "lb-sync-blast"].map(|b| (b, procs::sibling(b)));
    for (name, p) in &bins {
        if !p.exists() {
            eprintln!("lb-bench-sync: {name} not found at {} (cargo build --release -p lbd -p lb-slowpath -p lbctl -p lb-perf)", p.display());
            return ExitCode::from(2);
        }
    }
    for tool in ["ip", "taskset", "wrk", "nginx"] {
        if !procs::have(tool) {
            eprintln!("lb-bench-sync: {tool} is not installed (scripts/setup.sh --bench)");
            return ExitCode::from(2);
        }
    }
    let no_huge = match cli.huge.as_str() {
        "yes" => false,
        "no" => true,
        "auto" => !bench::hugepages_ready(),
        other => {
            eprintln!("lb-bench-sync: --huge {other:?}: expected auto, yes or no");
            return ExitCode::from(2);
        }
    };
    let work = cli.work.join(format!("sync-{}", std::process::id()));
    let started = Instant::now();
    let mut budget = Duration::from_secs(cli.max_wait);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rec = json!({
        "machine": bench::machine(no_huge),
        "command": format!("lb-bench-sync {}", args.join(" ")).trim().to_owned(),
    });
    if parts.contains(&"cps") {
        let o = cps::CpsOptions {
            tools: Tools {
                pktgen: bins[3].1.clone(),
                lbd: bins[0].1.clone(),
                testpmd: "dpdk-testpmd".into(),
                no_huge,
                work: work.clone(),
                perf_record: None,
                layout: lb_perf::bench::pair::Layout::default(),
            },
            lbctl: bins[2].1.clone(),
            rounds: cli.rounds.max(1),
            warmup: cli.warmup,
            duration: cli.duration,
            concurrency: cli.concurrency,
            reference: cli.tap_reference,
            sync_cpu: cli.sync_cpu,
            quiet_pct: cli.quiet_pct,
            during_pct: cli.during_pct,
            attempts: cli.attempts,
            worker_cpu_variant: !cli.no_worker_cpu,
            profile: !cli.no_profile,
            testpmd: !cli.no_testpmd,
        };
        eprintln!(
            "lb-bench-sync: connections per second, sync off vs on: {} rounds (hugepages: {})",
            o.rounds, !no_huge
        );
        rec["cps"] = cps::run(&o, &mut budget);
    }
    if (parts.contains(&"absorb") || parts.contains(&"burst")) && !host::stopped() {
        let (busy, heavy) = host::wait_quiet(cli.quiet_pct, &mut budget, "testbed pair");
        let o = pairbed::PairOptions {
            lbd: bins[0].1.clone(),
            slowpath: bins[1].1.clone(),
            lbctl: bins[2].1.clone(),
            blast: bins[4].1.clone(),
            conf: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../testbed/configs/sync-pair.conf"),
            work: work.clone(),
            absorb: parts.contains(&"absorb"),
            rates: cli.rates.clone(),
            records: cli
                .records
                .min(pairbed::PORTS_PER_LADDR * pairbed::LADDRS.len() as u64),
            burst: parts.contains(&"burst"),
            keepalive_conns: cli.keepalive_conns,
            burst_secs: cli.burst_secs,
            close_conns: cli.close_conns,
            close_secs: cli.close_secs,
            settle: Duration::from_secs_f64(cli.settle),
        };
        eprintln!(
            "lb-bench-sync: testbed pair (absorption: {}, burst: {})",
            o.absorb, o.burst
        );
        rec["pair"] = pairbed::run(&o);
        rec["pair"]["others_cpu_pct_before"] = json!((busy * 10.0).round() / 10.0);
        if !heavy.is_empty() {
            rec["pair"]["others_running_before"] = json!(heavy);
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    rec["elapsed_s"] = json!(started.elapsed().as_secs());
    rec["waited_for_quiet_s"] = json!(cli.max_wait.saturating_sub(budget.as_secs()));
    let md = report::markdown(&rec);
    println!("{md}");
    if host::stopped() {
        eprintln!("lb-bench-sync: interrupted: results not written");
        return ExitCode::from(130);
    }
    if !cli.no_write {
        let out = cli.out.unwrap_or_else(bench::default_out);
        let (md_path, json_path) = match bench::record::write(&out, "sync", &md, &rec) {
            Ok(paths) => paths,
            Err(e) => {
                eprintln!("lb-bench-sync: writing {}: {e}", out.display());
                return ExitCode::from(1);
            }
        };
        eprintln!(
            "lb-bench-sync: wrote {} and {} ({} s)",
            md_path.display(),
            json_path.display(),
            rec["elapsed_s"]
        );
    }
    ExitCode::SUCCESS
}
