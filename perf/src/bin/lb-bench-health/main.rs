//! `lb-bench-health`: lb-slowpath's health checks at scale, behind `make bench-health`.
#![forbid(unsafe_code)]

// The measurement lives with the perf lab's other scenarios; the plumbing and the report
// are this binary's.
#[path = "../../bench/health.rs"]
mod health;
mod lab;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lb_perf::bench::{self, procs};
use serde_json::{json, Value};

use health::{Check, Options};
use lab::Lab;

/// Measures lb-slowpath checking thousands of real servers at `delay_loop 1` (TCP_CHECK and
/// HTTP_GET): its share of one core, its memory, the probes per second the backends see, and
/// the lag between a backend dying and lbd marking it down. Writes
/// `<out>/YYYY-MM-DD-health.md` and `.json`.
///
/// Needs root (network namespaces), nginx, and release builds of lbd and lb-slowpath
/// (`make bench-health` builds them).
#[derive(Debug, Parser)]
#[command(name = "lb-bench-health", version, verbatim_doc_comment)]
struct Cli {
    /// Real servers.
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// Real servers per virtual server (at most 254; at most 256 virtual servers).
    #[arg(long, default_value_t = 100)]
    per_vs: usize,
    /// Seconds measured per variant (after every server is up).
    #[arg(long, default_value_t = 20)]
    window: u64,
    /// Lag samples per failure mode (refuse, drop) and variant.
    #[arg(long, default_value_t = 5)]
    lag_samples: usize,
    /// Variants: tcp, http (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "tcp,http")]
    checks: Vec<String>,
    /// RLIMIT_NOFILE for lb-slowpath (0: inherit).
    #[arg(long, default_value_t = 65_536)]
    nofile: u64,
    /// Longest wait for every server to be checked up, in seconds.
    #[arg(long, default_value_t = 120)]
    ramp_timeout: u64,
    /// lbd binary (default: next to this binary).
    #[arg(long)]
    lbd: Option<PathBuf>,
    /// lb-slowpath binary (default: next to this binary).
    #[arg(long)]
    slowpath: Option<PathBuf>,
    /// Results directory (default: perf/results).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scratch directory for configurations and logs (default: a temp dir).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Before each variant, wait while other processes use more than this share of all CPUs
    /// (percent, measured over 0.5 s).
    #[arg(long, default_value_t = 25.0)]
    quiet_pct: f64,
    /// Longest wait for quiet per variant, in seconds (0: never wait).
    #[arg(long, default_value_t = 120)]
    max_wait: u64,
    /// After the window, `perf record` lb-slowpath for 5 s and keep its top symbols.
    #[arg(long)]
    profile: bool,
    /// Do not write the results files (print the table only).
    #[arg(long)]
    no_write: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut checks = Vec::new();
    for c in &cli.checks {
        match c.as_str() {
            "tcp" => checks.push(Check::Tcp),
            "http" => checks.push(Check::Http),
            other => {
                eprintln!("lb-bench-health: --checks: unknown variant {other:?} (tcp, http)");
                return ExitCode::from(2);
            }
        }
    }
    if cli.per_vs == 0
        || cli.per_vs > 254
        || cli.servers == 0
        || cli.servers.div_ceil(cli.per_vs) > 256
    {
        eprintln!(
            "lb-bench-health: --servers {} / --per-vs {}: need 1..=254 per virtual server and at most 256 virtual servers",
            cli.servers, cli.per_vs
        );
        return ExitCode::from(2);
    }
    let lbctl = procs::sibling("lbctl");
    // SIGINT/SIGTERM end the run through the normal path (namespaces removed on drop).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, std::sync::Arc::clone(&stop));
    }
    let o = Options {
        checks,
        servers: cli.servers,
        per_vs: cli.per_vs,
        window: Duration::from_secs(cli.window),
        lag_samples: cli.lag_samples,
        nofile: cli.nofile,
        lbd: cli.lbd.unwrap_or_else(|| procs::sibling("lbd")),
        slowpath: cli.slowpath.unwrap_or_else(|| procs::sibling("lb-slowpath")),
        lbctl: lbctl.exists().then_some(lbctl),
        work: cli.work.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("lb-bench-health-{}", std::process::id()))
        }),
        ramp_timeout: Duration::from_secs(cli.ramp_timeout),
        quiet_pct: cli.quiet_pct,
        max_wait: Duration::from_secs(cli.max_wait),
        profile: cli.profile,
        stop: std::sync::Arc::clone(&stop),
    };
    for (what, p) in [("lbd", &o.lbd), ("lb-slowpath", &o.slowpath)] {
        if !p.exists() {
            eprintln!("lb-bench-health: {what} not found at {} (cargo build --release -p lbd -p lb-slowpath)", p.display());
            return ExitCode::from(1);
        }
    }
    for tool in ["nginx", "ip", "prlimit"] {
        if !procs::have(tool) {
            eprintln!("lb-bench-health: {tool} is not installed (scripts/setup.sh --bench installs nginx)");
            return ExitCode::from(1);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&o.work) {
        eprintln!("lb-bench-health: {}: {e}", o.work.display());
        return ExitCode::from(1);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rec = json!({
        "machine": bench::machine(true),
        "command": format!("lb-bench-health {}", args.join(" ")).trim().to_owned(),
        "servers": o.servers,
        "virtual_servers": o.servers.div_ceil(o.per_vs),
        "variants": [],
    });
    eprintln!("lb-bench-health: scratch files in {}", o.work.display());
    let lab = match Lab::up(&o.work) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lb-bench-health: setting up the namespaces: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = false;
    let mut variants = Vec::new();
    for &c in &o.checks {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("lb-bench-health: interrupted");
            failed = true;
            break;
        }
        eprintln!("lb-bench-health: {}: {} real servers", c.name(), o.servers);
        match health::variant(&lab, &o, c) {
            Ok(v) => variants.push(v),
            Err(e) => {
                eprintln!("lb-bench-health: {}: {e}", c.name());
                failed = true;
                variants.push(json!({ "check": c.name(), "error": e.to_string() }));
            }
        }
    }
    drop(lab);
    rec["variants"] = Value::Array(variants);
    let md = report::markdown(&rec);
    println!("{md}");
    let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed);
    if interrupted {
        eprintln!("lb-bench-health: interrupted: results not written");
    }
    if !cli.no_write && !interrupted {
        let out = cli.out.unwrap_or_else(bench::default_out);
        let day = rec["machine"]["date"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        let md_path = out.join(format!("{day}-health.md"));
        let json_path = out.join(format!("{day}-health.json"));
        let text = serde_json::to_string_pretty(&rec).unwrap_or_default();
        if let Err(e) =
            std::fs::write(&md_path, md).and_then(|()| std::fs::write(&json_path, text + "\n"))
        {
            eprintln!("lb-bench-health: writing {}: {e}", out.display());
            return ExitCode::from(1);
        }
        eprintln!(
            "lb-bench-health: wrote {} and {}",
            md_path.display(),
            json_path.display()
        );
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
