//! `lb-bench`: runs every scenario of the perf lab a few times, records machine load before
//! each run, and writes `perf/results/YYYY-MM-DD.{json,md}` (and PNG plots via plot.py).

pub mod flowgen;
pub mod inproc;
pub mod lab;
pub mod pair;
pub mod procs;
pub mod record;
pub mod report;
pub mod summary;
pub mod wrk;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use pair::{Dut, Tools};

/// What to run and how often.
#[derive(Debug, Clone)]
pub struct Plan {
    pub runs: usize,
    /// Runs of the secondary figures (latency at a fixed rate, frame-size sweep).
    pub extra_runs: usize,
    pub warmup: f64,
    pub duration: f64,
    pub flows: u64,
    pub latency_rate: u64,
    pub sizes: Vec<usize>,
    /// Established-flow counts of the lbd flow sweep (besides `flows`).
    pub flow_sweep: Vec<u64>,
    pub sessions: Vec<u64>,
    pub concurrency: u64,
    pub only: Option<Vec<String>>,
    pub wrk: Option<wrk::WrkOptions>,
    pub profile: bool,
    /// Other processes' CPU use (percent of all CPUs) above which a run waits.
    pub quiet_pct: f64,
    /// Most waiting for quiet over the whole bench.
    pub max_wait: Duration,
    /// Where the fastpath examples run in process are (`inproc`); `None`: not run.
    pub examples: Option<PathBuf>,
}

/// One scenario on the memif pair.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub key: String,
    pub title: String,
    pub dut: Dut,
    pub args: Vec<String>,
    pub runs: usize,
    /// Session-table size lbd is given.
    pub max_sessions: u64,
}

fn a(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The memif scenarios, in order.
pub fn scenarios(p: &Plan) -> Vec<Scenario> {
    let timing = vec![
        "--warmup".to_owned(),
        p.warmup.to_string(),
        "--duration".to_owned(),
        p.duration.to_string(),
    ];
    let flows = p.flows.to_string();
    let fwd = |size: usize| {
        let mut v = a(&[
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
            &flows,
            "--size",
        ]);
        v.push(size.to_string());
        v
    };
    let lbd = |mode: &str, port: u16, size: usize| {
        let mut v = a(&[
            "--mode",
            mode,
            "--src-ip",
            lab::CLIENTS,
            "--dst-ip",
            lab::VIP,
            "--server-ip",
            lab::REAL_SERVERS,
            "--flows",
            &flows,
            "--size",
        ]);
        v.extend([size.to_string(), "--dst-port".into(), port.to_string()]);
        v
    };
    let with = |mut v: Vec<String>, extra: &[String]| {
        v.extend_from_slice(extra);
        v
    };
    let rate = vec!["--rate".to_owned(), p.latency_rate.to_string()];
    let mk = |key: &str, title: String, dut: Dut, args: Vec<String>, runs: usize| Scenario {
        key: key.into(),
        title,
        dut,
        args: with(args, &timing),
        runs,
        max_sessions: 1 << 22,
    };
    let mut v = vec![
        mk(
            "loopback",
            "Generator looped onto itself (its own ceiling), UDP 64 B".into(),
            Dut::Loopback,
            fwd(64),
            p.runs,
        ),
        mk(
            "testpmd",
            "testpmd io-fwd, UDP 64 B".into(),
            Dut::Testpmd,
            fwd(64),
            p.runs,
        ),
        mk(
            "testpmd-flowgen",
            "testpmd flowgen -> testpmd io-fwd, UDP 64 B".into(),
            Dut::TestpmdFlowgen,
            Vec::new(),
            p.runs,
        ),
        mk(
            "testpmd-echo",
            "lb-pktgen --echo -> testpmd io-fwd, UDP 64 B both directions".into(),
            Dut::Testpmd,
            with(fwd(64), &a(&["--echo"])),
            p.runs,
        ),
        mk(
            "lbd-udp",
            "lbd FNAT, established UDP flows, 64 B".into(),
            Dut::Lbd,
            lbd("udp", lab::UDP_PORT, 64),
            p.runs,
        ),
        mk(
            "lbd-udp-echo",
            "lbd FNAT, established UDP flows echoed by the real servers, 64 B both directions".into(),
            Dut::Lbd,
            with(lbd("udp", lab::UDP_PORT, 64), &a(&["--echo"])),
            p.runs,
        ),
        mk(
            "lbd-tcp",
            "lbd FNAT, established TCP flows, 64 B".into(),
            Dut::Lbd,
            lbd("tcp", lab::TCP_PORT, 64),
            p.runs,
        ),
        mk(
            "testpmd-lat",
            format!("testpmd io-fwd at {} pps, UDP 64 B", p.latency_rate),
            Dut::Testpmd,
            with(fwd(64), &rate),
            p.extra_runs,
        ),
        mk(
            "lbd-udp-lat",
            format!("lbd FNAT UDP at {} pps, 64 B", p.latency_rate),
            Dut::Lbd,
            with(lbd("udp", lab::UDP_PORT, 64), &rate),
            p.extra_runs,
        ),
    ];
    for &size in &p.sizes {
        v.push(mk(
            &format!("testpmd-{size}"),
            format!("testpmd io-fwd, UDP {size} B"),
            Dut::Testpmd,
            fwd(size),
            p.extra_runs,
        ));
        v.push(mk(
            &format!("lbd-udp-{size}"),
            format!("lbd FNAT UDP, {size} B"),
            Dut::Lbd,
            lbd("udp", lab::UDP_PORT, size),
            p.extra_runs,
        ));
    }
    for &n in &p.flow_sweep {
        let mut args = lbd("udp", lab::UDP_PORT, 64);
        if let Some(i) = args.iter().position(|x| x == "--flows") {
            args[i + 1] = n.to_string();
        }
        // Opening a million flows at the default 2 Mpps takes a moment; open as fast as lbd takes them.
        args.extend(a(&["--open-rate", "0"]));
        v.push(mk(
            &format!("lbd-udp-flows-{n}"),
            format!("lbd FNAT UDP, 64 B, {n} established flows"),
            Dut::Lbd,
            args,
            p.extra_runs,
        ));
    }
    let conn = a(&[
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
        "--concurrency",
        &p.concurrency.to_string(),
    ]);
    v.push(mk(
        "lbd-conn",
        "lbd FNAT, new TCP connections (SYN, SYN-ACK, request, response+FIN, FIN, ACK)".into(),
        Dut::Lbd,
        conn,
        p.runs,
    ));
    for &n in &p.sessions {
        let args = a(&[
            "--mode",
            "syn",
            "--src-ip",
            lab::SESSION_CLIENTS,
            "--dst-ip",
            lab::VIP,
            "--dst-port",
            "80",
            "--server-ip",
            lab::REAL_SERVERS,
            "--flows",
            &n.to_string(),
        ]);
        v.push(Scenario {
            key: format!("sessions-{n}"),
            title: format!("lbd session table: {n} sessions opened by SYNs"),
            dut: Dut::Lbd,
            args,
            runs: 1,
            max_sessions: (n * 2).max(1 << 20),
        });
    }
    if p.profile {
        let mut prof = mk(
            "profile-udp",
            "perf record of lbd forwarding UDP".into(),
            Dut::Lbd,
            lbd("udp", lab::UDP_PORT, 64),
            1,
        );
        prof.args = with(
            lbd("udp", lab::UDP_PORT, 64),
            &a(&["--warmup", "1", "--duration", "3"]),
        );
        v.push(prof);
        let mut prof = v
            .iter()
            .find(|s| s.key == "lbd-conn")
            .cloned()
            .expect("conn scenario");
        prof.key = "profile-conn".into();
        prof.title = "perf record of lbd opening and closing TCP connections".into();
        prof.runs = 1;
        v.push(prof);
    }
    let only = p.only.clone();
    v.retain(|s| selected(only.as_deref(), &s.key));
    v
}

/// Whether `--only` selects scenario `key`: keys match exactly, `all` matches everything,
/// and the families `sessions` and `profile` match their members by prefix.
fn selected(only: Option<&[String]>, key: &str) -> bool {
    let Some(only) = only else { return true };
    only.iter().any(|k| {
        k == key
            || k == "all"
            || ((k == "sessions" || k == "profile") && key.starts_with(&format!("{k}-")))
    })
}

fn outcome_json(o: &pair::Outcome) -> Value {
    let totals = o.lbd_stats.as_ref().map(|s| {
        let mut t = s["totals"].clone();
        if let Some(m) = t.as_object_mut() {
            // Only named drops that happened, to keep the record readable.
            if m.get("drops").is_some_and(Value::is_object) {
                let nz = record::nonzero_drops(&s["totals"]);
                m.insert("drops".into(), Value::Object(nz));
            }
        }
        t
    });
    json!({
        "load": o.load,
        "gen": o.gen,
        "lbd_totals": totals,
        "lbd_mempool": o.lbd_stats.as_ref().map(|s| s["mempool"].clone()),
        "lbd_rss_ready_kb": o.rss_ready_kb,
        "lbd_rss_after_kb": o.rss_after_kb,
        "dut_exit": o.dut_exit,
        "profile": o.profile,
        "cpu_during": o.cpu,
    })
}

/// The scenarios run in rounds: round i runs the i-th run of each, one after the other, so a
/// mode switch of the VM hits a figure and the ceilings it is compared with alike (the summary
/// takes the median of each round's ratio). The rest run scenario by scenario.
pub const PAIRED: [&str; 9] = ["testpmd", "testpmd-echo", "testpmd-flowgen", "lbd-udp", "lbd-udp-echo", "lbd-tcp", "lbd-udp-flows-100", "lbd-udp-flows-1000000", "lbd-conn"];

/// The order runs go in: (scenario, run) pairs, the `PAIRED` scenarios' runs in rounds first.
fn schedule(list: &[Scenario]) -> Vec<(usize, usize)> {
    let paired: Vec<usize> = (0..list.len()).filter(|&i| PAIRED.contains(&list[i].key.as_str())).collect();
    let rounds = paired.iter().map(|&i| list[i].runs).max().unwrap_or(0);
    let mut out: Vec<(usize, usize)> = (0..rounds).flat_map(|r| paired.iter().filter(move |&&i| r < list[i].runs).map(move |&i| (i, r))).collect();
    out.extend((0..list.len()).filter(|i| !paired.contains(i)).flat_map(|i| (0..list[i].runs).map(move |r| (i, r))));
    out
}

/// Runs every scenario of the plan; returns the full record.
pub fn run_all(tools: &Tools, plan: &Plan) -> Value {
    let started = Instant::now();
    let mut record = json!({ "scenarios": {} , "order": [] });
    let list = scenarios(plan);
    let mut n = 0;
    let mut waited = Duration::ZERO;
    let mut all_runs: Vec<Vec<Value>> = list.iter().map(|_| Vec::new()).collect();
    for (k, i) in schedule(&list) {
        let s = &list[k];
        {
            n += 1;
            let dir = tools.work.join(format!("{}-{}", s.key, i + 1));
            let mut t = tools.clone();
            if s.key.starts_with("profile") {
                t.perf_record = Some(Duration::from_secs(2));
            }
            let busy = quiet(plan, &mut waited);
            let r = pair::run(&t, s.dut, &dir, &s.args, s.max_sessions);
            let v = match r {
                Ok(o) => {
                    let v = outcome_json(&o);
                    eprintln!(
                        "lb-bench: [{n}] {} run {}/{}: {} (load {}){}",
                        s.key,
                        i + 1,
                        s.runs,
                        report::headline(&v["gen"]),
                        o.load,
                        o.dut_exit
                            .as_ref()
                            .map(|e| format!(" [{e}]"))
                            .unwrap_or_default()
                    );
                    v
                }
                Err(e) => {
                    eprintln!(
                        "lb-bench: [{n}] {} run {}/{} failed: {e}",
                        s.key,
                        i + 1,
                        s.runs
                    );
                    json!({ "error": e.to_string(), "load": procs::loadavg() })
                }
            };
            let mut v = v;
            v["others_cpu_pct"] = json!((busy * 10.0).round() / 10.0);
            v["round"] = json!(i);
            all_runs[k].push(v);
        }
    }
    for (s, runs) in list.iter().zip(all_runs) {
        record["scenarios"][&s.key] = json!({ "title": s.title, "dut": format!("{:?}", s.dut), "args": s.args, "runs": runs });
        if let Some(o) = record["order"].as_array_mut() {
            o.push(json!(s.key));
        }
    }
    if let Some(w) = &plan.wrk {
        if selected(plan.only.as_deref(), "wrk") {
            eprintln!(
                "lb-bench: wrk through the namespace testbed ({} runs per path)",
                w.runs
            );
            // The first driver's figures are `wrk` (the summary's); the others `wrk_other`.
            let mut other = Vec::new();
            for (i, &d) in w.drivers.iter().enumerate() {
                let v = match wrk::run(w, d) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("lb-bench: wrk ({d}) failed: {e}");
                        json!({ "error": e.to_string(), "settings": { "driver": d.to_string() } })
                    }
                };
                if i == 0 {
                    record["wrk"] = v;
                } else {
                    other.push(v);
                }
            }
            record["wrk_other"] = json!(other);
        }
    }
    if let Some(dir) = plan.examples.as_deref().filter(|_| selected(plan.only.as_deref(), "in-process")) {
        record["in_process"] = inproc::run(dir);
    }
    record["elapsed_s"] = json!(started.elapsed().as_secs());
    record["waited_for_quiet_s"] = json!(waited.as_secs());
    record
}

/// Measures other processes' CPU use before a run; while it is above `plan.quiet_pct`, waits
/// (1 s steps, at most 15 s per run and `plan.max_wait` in all). Returns the last measurement.
fn quiet(plan: &Plan, waited: &mut Duration) -> f64 {
    let mut busy = procs::cpu_busy(Duration::from_millis(300));
    let mut this = Duration::ZERO;
    while busy > plan.quiet_pct && this < Duration::from_secs(15) && *waited < plan.max_wait {
        if this.is_zero() {
            eprintln!("lb-bench: other processes use {busy:.0}% of the CPUs; waiting for quiet");
        }
        std::thread::sleep(Duration::from_secs(1));
        this += Duration::from_secs(1);
        *waited += Duration::from_secs(1);
        busy = procs::cpu_busy(Duration::from_millis(300));
    }
    busy
}

/// Machine facts for the report header.
pub fn machine(no_huge: bool) -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let huge = |k: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("0")
            .to_owned()
    };
    let commit = procs::output("git", &["rev-parse", "--short", "HEAD"]);
    let dirty =
        !procs::output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    json!({
        "date": procs::today(),
        "kernel": procs::output("uname", &["-r"]),
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "hugepages": if no_huge { "no (--no-huge)".to_owned() } else { format!("yes ({} x 2 MiB total, {} free at start)", huge("HugePages_Total:"), huge("HugePages_Free:")) },
        "no_huge": no_huge,
        "commit": format!("{commit}{}", if dirty { " (uncommitted changes)" } else { "" }),
        "dpdk": procs::output("pkg-config", &["--modversion", "libdpdk"]),
        "layout": {
            "session": std::mem::size_of::<fastpath::session::Session>(),
            "flow_key": std::mem::size_of::<fastpath::FlowKey>(),
            "index_bytes_per_entry": fastpath::session::INDEX_BYTES_PER_ENTRY,
        },
    })
}

/// Whether enough free hugepages exist for the generator plus one forwarder (768 MiB).
pub fn hugepages_ready() -> bool {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |k: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let free_kb = get("HugePages_Free:") * get("Hugepagesize:");
    free_kb >= 800 * 1024
}

/// The default results directory: `perf/results` next to this crate's sources.
pub fn default_out() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_scenarios_run_in_rounds_before_the_rest() {
        let sc = |key: &str, runs| Scenario { key: key.into(), title: String::new(), dut: Dut::Testpmd, args: Vec::new(), runs, max_sessions: 0 };
        let list = vec![sc("loopback", 2), sc("testpmd", 2), sc("lbd-udp", 3), sc("sessions-1", 1)];
        let order: Vec<(&str, usize)> = schedule(&list).into_iter().map(|(i, r)| (list[i].key.as_str(), r)).collect();
        assert_eq!(order, [("testpmd", 0), ("lbd-udp", 0), ("testpmd", 1), ("lbd-udp", 1), ("lbd-udp", 2), ("loopback", 0), ("loopback", 1), ("sessions-1", 0)]);
    }
}
