//! `lb-bench-synflood`: real connections through a SYN proxy under a SYN flood, behind
//! `make bench-synflood`.
#![forbid(unsafe_code)]

#[path = "../lb-bench-sync/host.rs"]
#[allow(dead_code)]
mod host;
mod report;
mod runs;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use lb_perf::bench::{self, pair::Tools, procs};
use serde_json::json;

use runs::{Legit, Variant};

/// Measures what a SYN flood costs real connections through lbd's SYN proxy and writes
/// `<out>/YYYY-MM-DD-synflood.md` and `.json`.
///
/// The memif lab (perf/README.md) with lbd on one worker and `syn_proxy` on the FNAT TCP
/// service; lb-pktgen opens real connections (`--mode conn`, both ends played: the client
/// waits for the proxy's window update before its request) while, in the flood variants, it
/// sends SYNs from random sources in 198.18.0.0/15 (random ports and ISNs) to the VIP at the
/// highest rate the port takes (`max`) or a set rate. Variants (rotating order per round):
///
///   off / on                   real connections at the highest rate, SYN proxy off / on
///                              (the cost of proxying)
///   on_flood_<rate>            the same beside a flood at a set rate: the worker's time
///                              shared (legit CPS under flood ÷ without)
///   on@<L>[_flood_<rate>|_max] real connections offered at a fixed rate L (--legit-rate),
///                              beside floods at set rates and at the highest rate
///   on_flood_only_max          the flood alone (cookie answers per second per worker)
///   off@<L>_flood_<rate>       control: no SYN proxy, the flood reaches the real servers
///
/// On the client port the generator sends, in this order: its retained replies, a flood at
/// a set rate (it arrives whatever the clients do), new real connections, and a flood at the
/// highest rate into the room left. So a highest-rate flood saturates the worker with cookies
/// while real connections keep first claim on the ring: that figure says whether the worker
/// still serves the real connections that reach it, not whether a NIC would drop them.
///
/// Reported: medians per variant, per-round ratios, cookie answers per second from lbd's
/// `synproxy_syn_cookies` (stats file, sampled inside the window), SYN-ACKs reaching the
/// flood sources, half-open connections and flood sources the real servers saw (target 0),
/// and the CPU every busy thread ran on.
///
/// Needs root, DPDK and release builds of lbd and lb-pktgen (`make bench-synflood`
/// builds them). Before each run it waits while builds or other directors run (--max-wait).
#[derive(Debug, Parser)]
#[command(name = "lb-bench-synflood", version, verbatim_doc_comment)]
struct Cli {
    /// Rounds (each runs every variant once).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Seconds of traffic before each measured window.
    #[arg(long, default_value_t = 1.5)]
    warmup: f64,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Most unfinished real connections.
    #[arg(long, default_value_t = 4096)]
    concurrency: u64,
    /// Fixed offered rate of real connections per second for the on@<rate> variants (0: none).
    #[arg(long, default_value_t = 50_000)]
    legit_rate: u64,
    /// Flood rates in SYNs per second, comma-separated; 0 = as fast as the port takes them
    /// (only beside real connections at --legit-rate).
    #[arg(long, value_delimiter = ',', default_value = "0,250000,1000000")]
    flood_pps: Vec<u64>,
    /// Skip the unprotected control (SYN proxy off under the first bounded flood rate).
    #[arg(long)]
    no_control: bool,
    /// Skip the flood-alone variant.
    #[arg(long)]
    no_flood_only: bool,
    /// lbd.toml `toa`: syn-and-first-ack puts the client address in the SYN to the real
    /// server too, so a flood source reaching a server is seen by address.
    #[arg(long, default_value = "syn-and-first-ack")]
    toa: String,
    /// Wait while other processes use more than this share of the CPUs (percent).
    #[arg(long, default_value_t = 20.0)]
    quiet_pct: f64,
    /// Repeat a run during which other processes used more than this share (percent).
    #[arg(long, default_value_t = 5.0)]
    during_pct: f64,
    /// Most attempts per run.
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
    /// Run nothing: render the markdown report of an earlier run's JSON record (written next
    /// to it, or printed with --no-write).
    #[arg(long, value_name = "JSON")]
    report_from: Option<PathBuf>,
}

/// The variants asked for, in the order of the first round.
fn variants(cli: &Cli) -> Vec<Variant> {
    let v = |proxy, legit, flood| Variant {
        proxy,
        legit,
        flood,
    };
    let mut out = vec![v(false, Legit::Max, None), v(true, Legit::Max, None)];
    // Real connections at the highest rate beside a flood at the highest rate would only say
    // how the generator splits the ring between two unbounded sources: set rates only.
    out.extend(
        cli.flood_pps
            .iter()
            .filter(|f| **f > 0)
            .map(|f| v(true, Legit::Max, Some(*f))),
    );
    if cli.legit_rate > 0 {
        let l = Legit::Rate(cli.legit_rate);
        out.push(v(true, l, None));
        out.extend(cli.flood_pps.iter().map(|f| v(true, l, Some(*f))));
    }
    if !cli.no_flood_only {
        out.push(v(true, Legit::None, Some(0)));
    }
    if !cli.no_control {
        if let Some(f) = cli.flood_pps.iter().find(|f| **f > 0) {
            let l = if cli.legit_rate > 0 {
                Legit::Rate(cli.legit_rate)
            } else {
                Legit::Max
            };
            out.push(v(false, l, Some(*f)));
        }
    }
    out
}

/// Renders the report of a saved record.
fn report_from(json: &std::path::Path, write: bool) -> ExitCode {
    let rec: serde_json::Value = match std::fs::read(json)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lb-bench-synflood: {}: {e}", json.display());
            return ExitCode::from(2);
        }
    };
    let md = report::markdown(&rec);
    if !write {
        println!("{md}");
        return ExitCode::SUCCESS;
    }
    let path = json.with_extension("md");
    if let Err(e) = std::fs::write(&path, md) {
        eprintln!("lb-bench-synflood: {}: {e}", path.display());
        return ExitCode::from(1);
    }
    eprintln!("lb-bench-synflood: wrote {}", path.display());
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(j) = &cli.report_from {
        return report_from(j, !cli.no_write);
    }
    host::catch_signals();
    let bins = ["lbd", "lb-pktgen"].map(|b| (b, procs::sibling(b)));
    for (name, p) in &bins {
        if !p.exists() {
            eprintln!(
                "lb-bench-synflood: {name} not found at {} (cargo build --release -p lbd -p lb-perf)",
                p.display()
            );
            return ExitCode::from(2);
        }
    }
    let no_huge = match cli.huge.as_str() {
        "yes" => false,
        "no" => true,
        "auto" => !bench::hugepages_ready(),
        other => {
            eprintln!("lb-bench-synflood: --huge {other:?}: expected auto, yes or no");
            return ExitCode::from(2);
        }
    };
    let work = cli.work.join(format!("synflood-{}", std::process::id()));
    let started = Instant::now();
    let mut budget = Duration::from_secs(cli.max_wait);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = runs::Options {
        tools: Tools {
            pktgen: bins[1].1.clone(),
            lbd: bins[0].1.clone(),
            testpmd: "dpdk-testpmd".into(),
            no_huge,
            work: work.clone(),
            perf_record: None,
            layout: lb_perf::bench::pair::Layout::default(),
        },
        rounds: cli.rounds.max(1),
        warmup: cli.warmup,
        duration: cli.duration,
        concurrency: cli.concurrency,
        variants: variants(&cli),
        toa: cli.toa.clone(),
        quiet_pct: cli.quiet_pct,
        during_pct: cli.during_pct,
        attempts: cli.attempts,
    };
    eprintln!(
        "lb-bench-synflood: {} rounds of {} variants ({}), hugepages: {}",
        o.rounds,
        o.variants.len(),
        o.variants
            .iter()
            .map(Variant::key)
            .collect::<Vec<_>>()
            .join(", "),
        !no_huge
    );
    let mut rec = json!({
        "machine": bench::machine(no_huge),
        "command": format!("lb-bench-synflood {}", args.join(" ")).trim().to_owned(),
    });
    rec["synflood"] = runs::run(&o, &mut budget);
    let _ = std::fs::remove_dir_all(&work);
    rec["elapsed_s"] = json!(started.elapsed().as_secs());
    rec["waited_for_quiet_s"] = json!(cli.max_wait.saturating_sub(budget.as_secs()));
    let md = report::markdown(&rec);
    println!("{md}");
    if host::stopped() {
        eprintln!("lb-bench-synflood: interrupted: results not written");
        return ExitCode::from(130);
    }
    if !cli.no_write {
        let out = cli.out.unwrap_or_else(bench::default_out);
        let (md_path, json_path) = match bench::record::write(&out, "synflood", &md, &rec) {
            Ok(paths) => paths,
            Err(e) => {
                eprintln!("lb-bench-synflood: writing {}: {e}", out.display());
                return ExitCode::from(1);
            }
        };
        eprintln!(
            "lb-bench-synflood: wrote {} and {} ({} s)",
            md_path.display(),
            json_path.display(),
            rec["elapsed_s"]
        );
    }
    ExitCode::SUCCESS
}
