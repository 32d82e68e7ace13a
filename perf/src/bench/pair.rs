//! One measurement on a memif pair: the generator (memif server on both sockets) and a
//! forwarder (memif client): testpmd io-fwd, lbd, or nothing (the generator looped onto
//! itself).
//!
//! Stop order matters: a memif PMD can crash when its peer disconnects while it polls. The
//! generator prints its report and then holds its ports without polling (`--hold`); the
//! forwarder is stopped (its lcores stop polling before its ports close); then the
//! generator is signalled.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::lab;
use super::procs::{self, spawn, BenchError, Proc, Result};

/// The forwarder between the generator's two ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dut {
    /// None: the generator's two ports are the two ends of one memif link.
    Loopback,
    /// dpdk-testpmd in io forwarding mode.
    Testpmd,
    /// dpdk-testpmd io-fwd driven by `dpdk-testpmd --forward-mode=flowgen` instead of
    /// `lb-pktgen` (the pair's other ceiling; see `flowgen`).
    TestpmdFlowgen,
    /// lbd with the memif lab configuration.
    Lbd,
}

/// Which CPUs run what: the generator's lcores and the forwarder's workers, one of each per
/// queue pair of both memif ports (`lb-bench --workers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// lb-pktgen's lcores (`--cpus`); testpmd flowgen's forwarding lcores.
    pub gen: Vec<usize>,
    /// lbd's workers (`eal.worker_cpus`); testpmd io-fwd's forwarding lcores.
    pub dut: Vec<usize>,
}

impl Default for Layout {
    /// One worker: the generator on CPU 0, the forwarder on CPU 1.
    fn default() -> Self {
        Layout { gen: vec![0], dut: vec![1] }
    }
}

impl Layout {
    /// `workers` queue pairs: the generator on `gen` (default CPUs 0..workers), the forwarder on
    /// `dut` (default the next `workers` CPUs).
    pub fn new(workers: usize, gen: Option<Vec<usize>>, dut: Option<Vec<usize>>) -> std::result::Result<Layout, String> {
        if workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        let gen = gen.unwrap_or_else(|| (0..workers).collect());
        let dut = dut.unwrap_or_else(|| (workers..2 * workers).collect());
        for (flag, l) in [("--gen-cpus", &gen), ("--dut-cpus", &dut)] {
            if l.len() != workers {
                return Err(format!("{flag} lists {} CPUs for {workers} workers: give one per worker", l.len()));
            }
            if let Some(c) = crate::repeated(l) {
                return Err(format!("{flag} lists CPU {c} twice"));
            }
        }
        Ok(Layout { gen, dut })
    }

    /// Queue pairs (workers).
    pub fn workers(&self) -> usize {
        self.dut.len()
    }

    /// Whether the generator and the forwarder share a CPU (the figures then measure sharing).
    pub fn shared(&self) -> bool {
        self.gen.iter().any(|c| self.dut.contains(c))
    }

    /// "0,1": a CPU list as the flags take it.
    pub fn list(cpus: &[usize]) -> String {
        cpus.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }

    /// testpmd `--lcores`: the main lcore (statistics, and the EAL's interrupt thread, which
    /// runs memif's connection handshake) on CPU `main`, forwarding lcore `i+1` on `on[i]`.
    pub(crate) fn testpmd_lcores(main: usize, on: &[usize]) -> String {
        let mut l = vec![format!("0@{main}")];
        l.extend(on.iter().enumerate().map(|(i, c)| format!("{}@{c}", i + 1)));
        l.join(",")
    }
}

/// Tools and settings shared by every run.
#[derive(Debug, Clone)]
pub struct Tools {
    pub pktgen: PathBuf,
    pub lbd: PathBuf,
    pub testpmd: String,
    pub no_huge: bool,
    /// Where run directories (sockets, logs, configs) go.
    pub work: PathBuf,
    /// Sample lbd with `perf record` for this long (profile runs).
    pub perf_record: Option<Duration>,
    /// The CPUs of the generator and of the forwarder.
    pub layout: Layout,
}

/// What one run produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The generator's report.
    pub gen: Value,
    /// lbd's stats file while the generator held (after traffic), if lbd ran.
    pub lbd_stats: Option<Value>,
    /// lbd's RSS (KiB) once ready, and after traffic.
    pub rss_ready_kb: Option<u64>,
    pub rss_after_kb: Option<u64>,
    /// /proc/loadavg before the run.
    pub load: String,
    /// The forwarder's exit, when it was not clean.
    pub dut_exit: Option<String>,
    /// `perf report` text, for profile runs.
    pub profile: Option<String>,
    /// What other processes and the hypervisor took of both CPUs during the run.
    pub cpu: Option<procs::CpuShares>,
}

/// What a scenario does around an lbd run (the sync bench: a TAP, a sync daemon, counters).
/// Every method has a do-nothing default.
pub trait LbdHooks {
    /// Additions to the lab's lbd.toml.
    fn extras(&self) -> lab::LbdExtras {
        lab::LbdExtras::default()
    }
    /// Once lbd is ready (its stats file exists), while the generator runs. An error ends the
    /// run (lbd, then the generator, are stopped).
    fn ready(&mut self, _dir: &Path, _lbd_pid: u32) -> Result<()> {
        Ok(())
    }
    /// After the generator's report and before lbd's stats are read, while lbd still runs.
    fn done(&mut self, _dir: &Path, _lbd_pid: u32) {}
}

/// No additions: the plain lab.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl LbdHooks for NoHooks {}

pub(crate) fn vdev(n: u8, role: &str, sock: &Path, mac: &str) -> String {
    // Filesystem sockets (DPDK 22.11 defaults to abstract ones): the harness waits for them.
    format!(
        "net_memif{n},role={role},socket={},socket-abstract=no,mac={mac}",
        sock.display()
    )
}

pub(crate) fn eal_mem_args(no_huge: bool, mb: u32) -> [String; 3] {
    [
        if no_huge { "--no-huge" } else { "--in-memory" }.to_owned(),
        "-m".into(),
        mb.to_string(),
    ]
}

/// Starts testpmd io-fwd as the memif client of `wan` and `lan`, a forwarding lcore and queue
/// pair per forwarder CPU of the layout; it exits on Enter.
pub(crate) fn testpmd_forwarder(t: &Tools, dir: &Path, tag: &str, wan: &Path, lan: &Path) -> Result<Proc> {
    let mut c = Command::new(&t.testpmd);
    c.args([
        "--no-pci",
        "--lcores",
        // The main lcore off the forwarding CPUs (on the generator's, which lb-pktgen shares
        // with its own control work).
        &Layout::testpmd_lcores(t.layout.gen[0], &t.layout.dut),
        "--log-level=warning",
        &format!("--file-prefix=lbperf-tpmd-{tag}-{}", std::process::id()),
    ]);
    c.args(eal_mem_args(t.no_huge, 512));
    c.args([
        "--vdev",
        &vdev(0, "client", wan, lab::DUT_WAN_MAC),
        "--vdev",
        &vdev(1, "client", lan, lab::DUT_LAN_MAC),
    ]);
    c.args([
        "--",
        "--forward-mode=io",
        &format!("--nb-cores={}", t.layout.workers()),
        &format!("--rxq={}", t.layout.workers()),
        &format!("--txq={}", t.layout.workers()),
        "--total-num-mbufs=32768",
        "--auto-start",
        "--rxd=1024",
        "--txd=1024",
        "--burst=32",
    ]);
    spawn("dpdk-testpmd", &mut c, &dir.join("testpmd.log"), false, true)
}

/// The value after `flag` in a generator argument list, as a number.
fn arg_f64(args: &[String], flag: &str, default: f64) -> f64 {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the generator with `args` against `dut` once, in a fresh directory `dir`.
pub fn run(t: &Tools, dut: Dut, dir: &Path, args: &[String], max_sessions: u64) -> Result<Outcome> {
    run_with(t, dut, dir, args, max_sessions, &mut NoHooks)
}

/// [`run`] with `hooks` around lbd (ignored for other forwarders).
pub fn run_with(
    t: &Tools,
    dut: Dut,
    dir: &Path,
    args: &[String],
    max_sessions: u64,
    hooks: &mut dyn LbdHooks,
) -> Result<Outcome> {
    if dut == Dut::TestpmdFlowgen {
        return super::flowgen::run(t, dir, arg_f64(args, "--warmup", 1.0), arg_f64(args, "--duration", 2.0));
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
        path: dir.into(),
        source,
    })?;
    let (wan, lan) = (dir.join("wan.sock"), dir.join("lan.sock"));
    let tag = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Outcome {
        load: procs::loadavg(),
        ..Outcome::default()
    };

    let cpu0 = procs::cpu_sample();
    let mut gen_cmd = Command::new(&t.pktgen);
    match dut {
        Dut::Loopback => {
            let sock = dir.join("loop.sock");
            gen_cmd.args([
                "--client-vdev",
                &vdev(0, "server", &sock, lab::GEN_WAN_MAC),
                "--server-vdev",
                &vdev(1, "client", &sock, lab::GEN_LAN_MAC),
            ]);
        }
        _ => {
            gen_cmd.args([
                "--client-vdev",
                &vdev(0, "server", &wan, lab::GEN_WAN_MAC),
                "--server-vdev",
                &vdev(1, "server", &lan, lab::GEN_LAN_MAC),
            ]);
            gen_cmd.args(["--hold", "60"]);
        }
    }
    gen_cmd.args([
        "--cpus",
        &Layout::list(&t.layout.gen),
        "--file-prefix",
        &format!("lbperf-gen-{tag}-{}", std::process::id()),
    ]);
    if t.no_huge {
        gen_cmd.arg("--no-huge");
    }
    gen_cmd.args(args);
    let mut gen = spawn("lb-pktgen", &mut gen_cmd, &dir.join("gen.log"), true, false)?;

    let mut dut_proc: Option<Proc> = None;
    if dut != Dut::Loopback {
        if !procs::wait_paths(&[wan.clone(), lan.clone()], Duration::from_secs(20), || {
            gen.exited().is_none()
        }) {
            return Err(BenchError::Failed(format!(
                "the generator did not create its memif sockets:\n{}",
                procs::tail(&dir.join("gen.log"), 10)
            )));
        }
        dut_proc = Some(match dut {
            Dut::Testpmd => testpmd_forwarder(t, dir, &tag, &wan, &lan)?,
            _ => {
                let extras = hooks.extras();
                std::fs::write(
                    dir.join("keepalived.conf"),
                    lab::keepalived_conf_with(&extras),
                )
                .map_err(|source| BenchError::Io {
                    path: dir.join("keepalived.conf"),
                    source,
                })?;
                let toml = lab::lbd_toml(
                    dir,
                    t.no_huge,
                    &format!("lbperf-lbd-{tag}-{}", std::process::id()),
                    max_sessions,
                    &t.layout.dut,
                    &extras,
                );
                std::fs::write(dir.join("lbd.toml"), toml).map_err(|source| BenchError::Io {
                    path: dir.join("lbd.toml"),
                    source,
                })?;
                let mut c = Command::new(&t.lbd);
                c.arg("--config").arg(dir.join("lbd.toml"));
                spawn("lbd", &mut c, &dir.join("lbd.log"), false, false)?
            }
        });
    }
    let mut perf: Option<Proc> = None;
    if dut == Dut::Lbd {
        let d = dut_proc.as_mut().expect("lbd runs");
        // lbd is ready once its stats file appears (written right after the workers start).
        let pid = d.pid();
        procs::wait_paths(&[dir.join("stats.json")], Duration::from_secs(30), || {
            procs::rss_kb(pid).is_some()
        });
        out.rss_ready_kb = d.rss_kb();
        // On error, `dut_proc` (lbd) is dropped before `gen`: the stop order holds.
        hooks.ready(dir, pid)?;
        if let Some(len) = t.perf_record {
            // Let the generator open its flows and warm up, then sample the worker.
            std::thread::sleep(Duration::from_millis(1200));
            let mut c = Command::new("perf");
            c.args(["record", "-e", "cpu-clock", "-F", "2999", "-o"])
                .arg(dir.join("perf.data"))
                .args([
                    "-p",
                    &pid.to_string(),
                    "--",
                    "sleep",
                    &format!("{}", len.as_secs_f64()),
                ]);
            perf = Some(spawn(
                "perf record",
                &mut c,
                &dir.join("perf.log"),
                false,
                false,
            )?);
        }
    }
    let report = gen.line(Duration::from_secs(120));
    // The run's own processes (the generator, the forwarder, perf) against the whole machine.
    let ours: u64 = [Some(gen.pid()), dut_proc.as_ref().map(Proc::pid), perf.as_ref().map(Proc::pid)]
        .into_iter()
        .flatten()
        .filter_map(procs::proc_jiffies)
        .sum();
    out.cpu = cpu0.zip(procs::cpu_sample()).and_then(|(a, b)| procs::cpu_shares(a, b, ours));
    if let Some(mut p) = perf.take() {
        p.wait_or_kill(Duration::from_secs(30));
        out.profile = Some(perf_report(&dir.join("perf.data")));
    }
    if let Some(d) = dut_proc.as_mut() {
        if d.name == "lbd" {
            hooks.done(dir, d.pid());
            // Stats are rewritten every 200 ms: read them once traffic has settled.
            std::thread::sleep(Duration::from_millis(450));
            out.rss_after_kb = d.rss_kb();
            out.lbd_stats = std::fs::read(dir.join("stats.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            d.term();
        } else {
            d.enter();
        }
        let status = d.wait_or_kill(Duration::from_secs(15));
        if !status.is_some_and(|s| s.success()) {
            out.dut_exit = Some(format!("{} exited with {status:?}", d.name));
        }
    }
    gen.term();
    gen.wait_or_kill(Duration::from_secs(10));
    let report = report.ok_or_else(|| {
        BenchError::Failed(format!(
            "no report from the generator:\n{}",
            procs::tail(&dir.join("gen.log"), 10)
        ))
    })?;
    out.gen = serde_json::from_str(&report)
        .map_err(|e| BenchError::Failed(format!("generator report is not JSON ({e}): {report}")))?;
    Ok(out)
}

/// Where the samples of a `perf record` file fell: by shared object, then the top symbols.
fn perf_report(data: &Path) -> String {
    let report = |sort: &str, limit: &str| {
        Command::new("perf")
            .arg("report")
            .arg("-i")
            .arg(data)
            .args([
                "--stdio",
                "--no-children",
                "--sort",
                sort,
                "--percent-limit",
                limit,
                "-q",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (Ok(dsos), Ok(syms), Ok(threads)) = (
        report("dso", "0.5"),
        report("dso,symbol", "0.7"),
        report("comm,dso", "0.5"),
    ) else {
        return "perf report failed".into();
    };
    // Lines are "  12.34%  dso  [.] symbol  ..." padded with blank columns: keep the words.
    let tidy = |text: &str, n: usize| -> Vec<String> {
        text.lines()
            .map(|l| {
                l.split_whitespace()
                    .filter(|w| *w != "-")
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|l| !l.is_empty())
            .take(n)
            .collect()
    };
    let mut out = vec!["by shared object:".to_owned()];
    out.extend(tidy(&dsos, 8).into_iter().map(|l| format!("  {l}")));
    out.push("by thread and shared object:".into());
    out.extend(tidy(&threads, 10).into_iter().map(|l| format!("  {l}")));
    out.push("top symbols (memif PMD symbols are stripped: addresses):".into());
    out.extend(tidy(&syms, 25).into_iter().map(|l| format!("  {l}")));
    out.join("\n")
}
