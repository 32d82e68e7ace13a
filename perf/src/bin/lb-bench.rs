//! `lb-bench`: the perf lab harness behind `make bench`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;
use lb_perf::bench::{self, pair::{Layout, Tools}, procs, report, wrk::WrkOptions, Plan};

/// Runs the perf lab on one memif pair and the namespace testbed, and writes
/// `<out>/YYYY-MM-DD.md` (medians, ratios against testpmd and against direct wrk), the raw
/// record `<out>/YYYY-MM-DD.json` and PNG plots `<out>/YYYY-MM-DD-*.png`.
///
/// Scenarios (--only takes these keys, comma-separated): loopback, testpmd, lbd-udp,
/// lbd-tcp, testpmd-lat, lbd-udp-lat, testpmd-SIZE / lbd-udp-SIZE, lbd-udp-flows-N,
/// lbd-conn, sessions (all sessions-N), profile (profile-udp, profile-conn), wrk,
/// in-process (the fastpath examples pipeline_cost and sched_props, when built).
#[derive(Debug, Parser)]
#[command(name = "lb-bench", version, verbatim_doc_comment)]
struct Cli {
    /// Runs per main figure (each figure is their median).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Runs per secondary figure (fixed-rate latency, frame-size sweep).
    #[arg(long, default_value_t = 3)]
    extra_runs: usize,
    /// Seconds of traffic before each measured window.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Established flows in the forwarding scenarios.
    #[arg(long, default_value_t = 10_000)]
    flows: u64,
    /// Packets per second of the fixed-rate latency runs.
    #[arg(long, default_value_t = 1_000_000)]
    latency_rate: u64,
    /// Extra frame sizes for the forwarding sweep (64 is always measured).
    #[arg(long, value_delimiter = ',', default_value = "512,1500")]
    sizes: Vec<usize>,
    /// Established-flow counts of the lbd flow sweep (the main runs use --flows).
    #[arg(long, value_delimiter = ',', default_value = "100,100000,1000000")]
    flow_sweep: Vec<u64>,
    /// Session counts of the session-scale runs.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000,20000000")]
    sessions: Vec<u64>,
    /// Most unfinished connections in the connection-rate runs.
    #[arg(long, default_value_t = 4096)]
    concurrency: u64,
    /// Only these scenarios (keys or prefixes, comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Hugepages: auto (use them when ~800 MiB are free), yes, no.
    #[arg(long, default_value = "auto")]
    huge: String,
    /// Skip the wrk comparison in the namespace testbed.
    #[arg(long)]
    no_wrk: bool,
    /// wrk runs per path.
    #[arg(long, default_value_t = 3)]
    wrk_runs: usize,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 5)]
    wrk_seconds: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 16)]
    wrk_connections: u32,
    /// lbd's idle_sleep_us in the wrk testbed (the testbed shares 2 vCPUs with wrk and nginx).
    #[arg(long, default_value_t = 50)]
    wrk_idle_sleep_us: u32,
    /// Before each run, wait while other processes use more than this share of the CPUs
    /// (percent; measured over 0.3 s with none of the bench's processes running).
    #[arg(long, default_value_t = 20.0)]
    quiet_pct: f64,
    /// Most seconds to wait for quiet over the whole bench (0: never wait).
    #[arg(long, default_value_t = 120)]
    max_wait: u64,
    /// lbd's port drivers in the wrk testbed, comma-separated: af_xdp, af_packet. The first is
    /// the summary's figure; each is measured with its own testbed.
    #[arg(long, value_delimiter = ',', default_value = "af_xdp,af_packet")]
    wrk_driver: Vec<lb_testbed::Driver>,
    /// Skip the perf-record profile runs.
    #[arg(long)]
    no_profile: bool,
    /// Skip the PNG plots.
    #[arg(long)]
    no_plots: bool,
    /// Where the fastpath examples timed in process are (`make bench` builds them).
    #[arg(long, default_value = "target/release/examples")]
    examples: PathBuf,
    /// Skip the in-process examples.
    #[arg(long)]
    no_examples: bool,
    /// Workers: lbd's workers (testpmd's forwarding cores) and lb-pktgen's lcores, one of each
    /// per queue pair of both memif ports. Above 1 it wants 2 × N CPUs to mean anything.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The generator's CPUs, one per worker [default: 0..N].
    #[arg(long, value_delimiter = ',', value_name = "CPU,CPU,...")]
    gen_cpus: Option<Vec<usize>>,
    /// The forwarder's CPUs (lbd's workers), one per worker [default: N..2N].
    #[arg(long, value_delimiter = ',', value_name = "CPU,CPU,...")]
    dut_cpus: Option<Vec<usize>>,
    /// Results directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// lbd binary.
    #[arg(long, default_value = DEFAULT_LBD)]
    lbd: PathBuf,
    /// lb-pktgen binary.
    #[arg(long, default_value = "target/release/lb-pktgen")]
    pktgen: PathBuf,
    /// dpdk-testpmd binary.
    #[arg(long, default_value = "dpdk-testpmd")]
    testpmd: String,
    /// Scratch directory for sockets, configs and logs.
    #[arg(long, default_value = "/run/lb-perf")]
    work: PathBuf,
}

/// The lbd built from this tree (`--lbd`'s default).
const DEFAULT_LBD: &str = "target/release/lbd";

fn plots(json: &std::path::Path, prefix: &std::path::Path) -> Result<(), String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plot.py");
    for py in ["/usr/bin/python3", "python3"] {
        let has_mpl = Command::new(py)
            .args(["-c", "import matplotlib"])
            .output()
            .is_ok_and(|o| o.status.success());
        if has_mpl {
            let out = Command::new(py)
                .arg(&script)
                .arg(json)
                .arg(prefix)
                .output()
                .map_err(|e| e.to_string())?;
            return if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            };
        }
    }
    Err("matplotlib is not installed: run scripts/setup.sh --bench (python3-matplotlib)".into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    for (what, p) in [("lbd", &cli.lbd), ("lb-pktgen", &cli.pktgen)] {
        if !p.exists() {
            eprintln!(
                "lb-bench: {what} not found at {} (cargo build --release -p lbd -p lb-perf)",
                p.display()
            );
            return ExitCode::from(2);
        }
    }
    if !procs::have(&cli.testpmd) {
        eprintln!(
            "lb-bench: {} not found (apt install dpdk-dev; scripts/setup.sh does)",
            cli.testpmd
        );
        return ExitCode::from(2);
    }
    let no_huge = match cli.huge.as_str() {
        "yes" => false,
        "no" => true,
        "auto" => !bench::hugepages_ready(),
        other => {
            eprintln!("lb-bench: --huge {other:?}: expected auto, yes or no");
            return ExitCode::from(2);
        }
    };
    let layout = match Layout::new(cli.workers, cli.gen_cpus.clone(), cli.dut_cpus.clone()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lb-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let ncpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if let Some(c) = layout.gen.iter().chain(&layout.dut).find(|&&c| c >= ncpus) {
        eprintln!("lb-bench: CPU {c} is not one of this machine's {ncpus}");
        return ExitCode::from(2);
    }
    if layout.shared() {
        eprintln!("lb-bench: the generator (CPUs {}) and the forwarder (CPUs {}) share CPUs: the figures measure that sharing, not the forwarder", Layout::list(&layout.gen), Layout::list(&layout.dut));
    }
    let work = cli.work.join(std::process::id().to_string());
    let abs = |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
    let tools = Tools {
        pktgen: abs(&cli.pktgen),
        lbd: abs(&cli.lbd),
        testpmd: cli.testpmd.clone(),
        no_huge,
        work: work.clone(),
        perf_record: None,
        layout: layout.clone(),
    };
    let wrk = (!cli.no_wrk).then(|| WrkOptions {
        runs: cli.wrk_runs,
        seconds: cli.wrk_seconds,
        connections: cli.wrk_connections,
        threads: 1,
        idle_sleep_us: cli.wrk_idle_sleep_us,
        drivers: cli.wrk_driver.clone(),
        lbd: tools.lbd.clone(),
        work: work.clone(),
    });
    let plan = Plan {
        runs: cli.runs.max(1),
        extra_runs: cli.extra_runs.max(1),
        warmup: cli.warmup,
        duration: cli.duration,
        flows: cli.flows,
        latency_rate: cli.latency_rate,
        sizes: cli.sizes.clone(),
        flow_sweep: cli.flow_sweep.clone(),
        sessions: cli.sessions.clone(),
        concurrency: cli.concurrency,
        only: cli.only.clone(),
        wrk,
        profile: !cli.no_profile && procs::have("perf"),
        quiet_pct: cli.quiet_pct,
        max_wait: std::time::Duration::from_secs(cli.max_wait),
        examples: (!cli.no_examples).then(|| abs(&cli.examples)),
    };
    let mut machine = bench::machine(no_huge);
    if cli.lbd != std::path::Path::new(DEFAULT_LBD) {
        // The layout figures are this build's; another lbd may lay sessions out differently.
        machine["layout"]["other_lbd"] = cli.lbd.display().to_string().into();
    }
    eprintln!(
        "lb-bench: hugepages: {}; scratch {}",
        machine["hugepages"],
        work.display()
    );
    let mut record = bench::run_all(&tools, &plan);
    record["layout"] = serde_json::json!({ "gen": layout.gen, "dut": layout.dut });
    record["machine"] = machine.clone();
    let out = cli.out.clone().unwrap_or_else(bench::default_out);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("lb-bench: cannot create {}: {e}", out.display());
        return ExitCode::from(1);
    }
    let date = machine["date"].as_str().unwrap_or("undated").to_owned();
    let json_path = out.join(format!("{date}.json"));
    let md_path = out.join(format!("{date}.md"));
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    if let Err(e) = std::fs::write(&json_path, text) {
        eprintln!("lb-bench: cannot write {}: {e}", json_path.display());
        return ExitCode::from(1);
    }
    let mut md = report::markdown(&record, &machine);
    md.push_str(&bench::inproc::section(&record));
    if !cli.no_plots {
        match plots(&json_path, &out.join(&date)) {
            Ok(()) => {
                md.push_str("\n## Plots\n\n");
                for p in ["throughput", "latency", "sessions", "wrk"] {
                    if out.join(format!("{date}-{p}.png")).exists() {
                        md.push_str(&format!("![{p}]({date}-{p}.png)\n"));
                    }
                }
            }
            Err(e) => eprintln!("lb-bench: no plots: {e}"),
        }
    }
    if let Err(e) = std::fs::write(&md_path, md) {
        eprintln!("lb-bench: cannot write {}: {e}", md_path.display());
        return ExitCode::from(1);
    }
    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "lb-bench: wrote {} and {} ({} s)",
        md_path.display(),
        json_path.display(),
        record["elapsed_s"]
    );
    ExitCode::SUCCESS
}
