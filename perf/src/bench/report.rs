//! The dated markdown table: medians of repeated runs, ratios against testpmd and against
//! direct wrk, targets, latency, session scale, wrk, profile, and every run with its load.

use std::fmt::Write as _;

use serde_json::Value;

/// A one-line summary of a generator report (for progress lines and the run table).
pub fn headline(gen: &Value) -> String {
    if let Some(cps) = gen["cps"].as_f64() {
        return format!(
            "{} conn/s (connect p99 {})",
            si(cps),
            us(gen["connect_latency_ns"]["p99"].as_f64())
        );
    }
    if gen["mode"] == "syn" {
        return format!("{} SYNs sent, {} reached the servers", gen["tx"], gen["rx"]);
    }
    let both = gen["both_rx_pps"].as_f64().map_or(String::new(), |b| format!(", {} pps both directions", si(b)));
    format!(
        "{} pps rx ({} tx{both}), p50 {} p99 {}",
        si(gen["rx_pps"].as_f64().unwrap_or(0.0)),
        si(gen["tx_pps"].as_f64().unwrap_or(0.0)),
        us(gen["latency_ns"]["p50"].as_f64()),
        us(gen["latency_ns"]["p99"].as_f64())
    )
}

/// 12.3M / 456k / 789.
pub fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Nanoseconds as microseconds text.
fn us(ns: Option<f64>) -> String {
    match ns {
        Some(n) if n >= 1e6 => format!("{:.1} ms", n / 1e6),
        Some(n) => format!("{:.1} µs", n / 1e3),
        None => "—".into(),
    }
}

/// Median, min and max of the values `f` extracts from a scenario's successful runs.
pub fn stats(rec: &Value, key: &str, f: impl Fn(&Value) -> Option<f64>) -> Option<(f64, f64, f64)> {
    let runs = rec["scenarios"][key]["runs"].as_array()?;
    let mut v: Vec<f64> = runs
        .iter()
        .filter(|r| r["error"].is_null())
        .filter_map(&f)
        .collect();
    median_min_max(&mut v)
}

/// Median (mean of the middle two for an even count), min, max.
pub fn median_min_max(v: &mut [f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((med, v[0], v[n - 1]))
}

use super::record::verdict;
use super::summary;

/// The rate the generator received, of a run.
pub(super) fn rx_pps(r: &Value) -> Option<f64> {
    r["gen"]["rx_pps"].as_f64()
}

/// Both directions of an echo run (`lb-pktgen --echo`): forwarded requests and echoes.
pub(super) fn both_pps(r: &Value) -> Option<f64> {
    r["gen"]["both_rx_pps"].as_f64()
}

/// The connections per second of a run.
pub(super) fn cps(r: &Value) -> Option<f64> {
    r["gen"]["cps"].as_f64()
}

/// lbd's own TSC cycles per frame in a run (`Counters::pipeline_cycles` over the frames it
/// received, from ports and other workers): its work without the driver's receive and transmit.
pub(super) fn pipeline_cycles(r: &Value) -> Option<f64> {
    let t = &r["lbd_totals"];
    let frames = t["rx"].as_u64()? + t["redirected_in"].as_u64().unwrap_or(0);
    (frames > 0).then(|| t["pipeline_cycles"].as_u64().map(|c| c as f64 / frames as f64)).flatten()
}

fn range(s: Option<(f64, f64, f64)>, fmt: impl Fn(f64) -> String) -> (String, String) {
    match s {
        Some((m, lo, hi)) => (fmt(m), format!("{} – {}", fmt(lo), fmt(hi))),
        None => ("—".into(), "—".into()),
    }
}

/// The ratio of two figures' medians.
pub(super) fn ratio(a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>) -> Option<f64> {
    match (a, b) {
        (Some((x, ..)), Some((y, ..))) if y > 0.0 => Some(x / y),
        _ => None,
    }
}

pub(super) fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}"))
}

/// Where the generator and the forwarder ran (`lb-bench --workers`; records without a layout
/// are from one worker on CPU 1, the generator on CPU 0).
fn layout_text(rec: &Value) -> String {
    let list = |k: &str, d: u64| -> Vec<u64> {
        rec["layout"][k].as_array().map_or(vec![d], |a| a.iter().filter_map(Value::as_u64).collect())
    };
    let (gen, dut) = (list("gen", 0), list("dut", 1));
    let cpus = |v: &[u64]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let n = dut.len();
    let worker = if n == 1 { "worker" } else { "workers" };
    format!(
        "The generator (`lb-pktgen`, {} lcore{}, one per queue pair) runs on CPU {}, the forwarder's {n} {worker} on CPU {} (testpmd: io fwd, {n} core{}; lbd: {n} {worker}, `idle_sleep_us = 0`)",
        gen.len(),
        if gen.len() == 1 { "" } else { "s" },
        cpus(&gen),
        cpus(&dut),
        if n == 1 { "" } else { "s" },
    )
}

/// Every wrk record: the headline driver's, then the others'.
fn wrk_records(rec: &Value) -> Vec<&Value> {
    std::iter::once(&rec["wrk"]).chain(rec["wrk_other"].as_array().into_iter().flatten()).filter(|w| !w.is_null()).collect()
}

/// Median of a field over one path's runs of a wrk record.
fn wrk_stat(w: &Value, path: &str, field: &str) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = w[path]
        .as_array()?
        .iter()
        .filter(|r| r["error"].is_null())
        .filter_map(|r| r[field].as_f64())
        .collect();
    median_min_max(&mut v)
}

/// Bytes per session of a session-scale run: RSS growth over the sessions lbd holds.
pub fn bytes_per_session(r: &Value) -> Option<f64> {
    let n = r["lbd_totals"]["sessions"].as_f64().filter(|n| *n > 0.0)?;
    let grow = r["lbd_rss_after_kb"].as_f64()? - r["lbd_rss_ready_kb"].as_f64()?;
    Some(grow * 1024.0 / n)
}

/// The markdown report.
pub fn markdown(rec: &Value, machine: &Value) -> String {
    let mut s = String::new();
    let m = machine;
    let _ = writeln!(
        s,
        "# Perf lab results — {}\n",
        m["date"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "Machine: {} ({} vCPUs), kernel {}, DPDK {}. Hugepages: **{}**. Commit {}. {}. memif pair, generator = memif server, forwarder = memif client. Each figure is the median of the runs listed at the end (min – max beside it); `/proc/loadavg` was read before every run. Other builds and tests may share this machine: read the load column. This run of `lb-bench` took {} s.\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cpus"],
        m["kernel"].as_str().unwrap_or("?"),
        m["dpdk"].as_str().unwrap_or("?"),
        m["hugepages"].as_str().unwrap_or("?"),
        m["commit"].as_str().unwrap_or("?"),
        layout_text(rec),
        rec["elapsed_s"]
    );

    let (ceil, _) = summary::ceiling(rec);
    let conn = stats(rec, "lbd-conn", cps);
    let pps = |x: f64| format!("{} pps", si(x));
    s.push_str(&summary::section(rec));
    for w in wrk_records(rec) {
        let drv = w["settings"]["driver"].as_str().unwrap_or("?");
        let (wd, wt) = (wrk_stat(w, "direct", "rps"), wrk_stat(w, "director", "rps"));
        if wt.is_none() {
            // A failed testbed is a target not met, not a row left out.
            if w["error"].is_string() {
                let _ = writeln!(s, "| wrk through the director, lbd on {drv}: failed (its section says why) | — | — | — | ≥ 0.95 × direct | **not met** | — |");
            }
            continue;
        }
        let r = ratio(wt, wd);
        let (med, rng) = range(wt, |x| format!("{} req/s", si(x)));
        let _ = writeln!(s, "| wrk through the director, lbd on {drv} (vs wrk direct: {}) | {med} | {rng} | — | ≥ 0.95 × direct | {} | — |", fmt_ratio(r), verdict(r.map(|r| r >= 0.95)));
        for (q, limit) in [("p50_us", None), ("p99_us", Some(50.0))] {
            if let (Some(d), Some(t)) = (wrk_stat(w, "direct", q), wrk_stat(w, "director", q)) {
                let added = t.0 - d.0;
                let (target, ok) = match limit {
                    Some(l) => (format!("≤ +{l:.0} µs"), verdict(Some(added <= l))),
                    None => (String::new(), verdict(None)),
                };
                let _ = writeln!(s, "| wrk {} added by the director, lbd on {drv} | {added:+.0} µs | — | — | {target} | {ok} | — |", &q[..3]);
            }
        }
        if let Some(c) = wrk_stat(w, "director", "lbd_cpu_us_per_req") {
            let (med, rng) = range(Some(c), |x| format!("{x:.1} µs"));
            let pct = wrk_stat(w, "director", "lbd_cpu_pct").map_or(String::new(), |p| format!(" ({:.0} % of a CPU)", p.0));
            let _ = writeln!(s, "| lbd CPU per request through the director, lbd on {drv}{pct} | {med} | {rng} | — | — | — | — |");
        }
    }
    s.push('\n');

    let _ = writeln!(s, "## Forwarding rate by frame size (UDP, max rate)\n\n| frame | testpmd | lbd FNAT | lbd / testpmd |\n|---|---|---|---|");
    let mut sizes: Vec<(usize, String, String)> = vec![(64, "testpmd".into(), "lbd-udp".into())];
    for k in rec["order"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(size) = k
            .strip_prefix("testpmd-")
            .and_then(|x| x.parse::<usize>().ok())
        {
            sizes.push((size, k.to_owned(), format!("lbd-udp-{size}")));
        }
    }
    for (size, tk, lk) in sizes {
        let (t, l) = (stats(rec, &tk, rx_pps), stats(rec, &lk, rx_pps));
        let gbps = |k: &str| {
            stats(rec, k, |r| r["gen"]["rx_bps"].as_f64())
                .map(|g| format!(" ({:.2} Gbit/s)", g.0 / 1e9))
                .unwrap_or_default()
        };
        let _ = writeln!(
            s,
            "| {size} B | {}{} | {}{} | {} |",
            range(t, pps).0,
            gbps(&tk),
            range(l, pps).0,
            gbps(&lk),
            fmt_ratio(ratio(l, t))
        );
    }
    s.push('\n');

    let mut flows: Vec<(u64, String)> = rec["order"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|k| {
            k.strip_prefix("lbd-udp-flows-")
                .and_then(|n| n.parse().ok())
                .map(|n| (n, k.to_owned()))
        })
        .collect();
    if !flows.is_empty() {
        if let Some(n) = rec["scenarios"]["lbd-udp"]["runs"][0]["gen"]["flows"].as_u64() {
            flows.push((n, "lbd-udp".into()));
        }
        flows.sort();
        let _ = writeln!(s, "## lbd forwarding rate by number of established flows (UDP 64 B, max rate)\n\nEvery flow is a session; the generator cycles through them round-robin, so each packet looks its session up in a table of that size.\n\n| flows | lbd FNAT | min – max | vs ceiling |\n|---|---|---|---|");
        for (n, k) in flows {
            let st = stats(rec, &k, rx_pps);
            let (med, rng) = range(st, pps);
            let _ = writeln!(s, "| {n} | {med} | {rng} | {} |", fmt_ratio(ratio(st, ceil)));
        }
        s.push('\n');
    }

    let _ = writeln!(s, "## One-way latency through the pair (generator TSC stamp in the payload)\n\n| path | offered | rx rate | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|---|");
    for (k, offered) in [
        ("testpmd-lat", "fixed"),
        ("lbd-udp-lat", "fixed"),
        ("testpmd", "max (queues full)"),
        ("lbd-udp", "max (queues full)"),
        ("lbd-tcp", "max (queues full)"),
    ] {
        let title = rec["scenarios"][k]["title"].as_str().unwrap_or(k);
        let p = |q: &str| {
            stats(rec, k, |r| r["gen"]["latency_ns"][q].as_f64())
                .map(|x| us(Some(x.0)))
                .unwrap_or_else(|| "—".into())
        };
        if rec["scenarios"][k].is_null() {
            continue;
        }
        let _ = writeln!(
            s,
            "| {title} | {offered} | {} | {} | {} | {} | {} | {} |",
            range(stats(rec, k, rx_pps), pps).0,
            p("p50"),
            p("p90"),
            p("p99"),
            p("p999"),
            p("max")
        );
    }
    s.push('\n');

    if !rec["scenarios"]["lbd-conn"].is_null() {
        let c = |f: &str| stats(rec, "lbd-conn", |r| r["gen"][f].as_f64());
        let l = |h: &str, q: &str| {
            stats(rec, "lbd-conn", |r| r["gen"][h][q].as_f64())
                .map(|x| us(Some(x.0)))
                .unwrap_or_else(|| "—".into())
        };
        let _ = writeln!(
            s,
            "## New connections (`lb-pktgen --mode conn`)\n\nThe generator opens connections from 64 client addresses with at most {} unfinished; each is SYN → SYN-ACK (server MSS lowered by lbd) → ACK+request (TOA inserted by lbd) → response+FIN → FIN → ACK, all through lbd. A connection counts when the last ACK reaches the client. A *stall* is a stretch of more than 10 ms in which no connection closed although some were open.\n\n| closed conn/s | SYN/s | packets/s through lbd | handshake p50 / p99 | SYN→response p50 / p99 / p99.9 | stalls > 10 ms per run | longest stall |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} / {} | {} / {} / {} | {} | {} |\n",
            rec["scenarios"]["lbd-conn"]["args"].as_array().and_then(|a| a.iter().position(|x| x == "--concurrency").and_then(|i| a.get(i + 1))).and_then(Value::as_str).unwrap_or("?"),
            range(conn, si).0,
            range(c("syn_per_s"), si).0,
            range(c("tx_pps"), si).0,
            l("handshake_latency_ns", "p50"),
            l("handshake_latency_ns", "p99"),
            l("connect_latency_ns", "p50"),
            l("connect_latency_ns", "p99"),
            l("connect_latency_ns", "p999"),
            range(stats(rec, "lbd-conn", |r| r["gen"]["window"]["gaps_over_10ms"].as_f64()), |x| format!("{x:.0}")).0,
            range(stats(rec, "lbd-conn", |r| r["gen"]["window"]["max_gap_us"].as_f64()), |x| us(Some(x * 1e3))).0,
        );
    }

    let keys = session_keys(rec);
    if !keys.is_empty() {
        let l = &m["layout"];
        let (sess, entry) = (
            l["session"].as_f64().unwrap_or(0.0),
            l["index_bytes_per_entry"].as_f64().unwrap_or(0.0),
        );
        // Two index entries (at most 7/8 of a bucket's slots used), a timer-wheel entry (id,
        // stamp) and a free-list slot.
        let floor = sess + 2.0 * entry * 8.0 / 7.0 + 8.0 + 4.0;
        let whose = match l["other_lbd"].as_str() {
            Some(p) => format!("lb-bench's build (the lbd measured, `{p}`, may differ)"),
            None => "this build".to_owned(),
        };
        let _ = writeln!(
            s,
            "## Session scale (`lb-pktgen --mode syn`: one SYN per flow)\n\nLayout in {whose}: `Session` {sess:.0} B; one flow index holds each session twice (client side, real-server side) in 64-byte buckets of 12 slots, {entry:.2} B per entry when full. At the index's best load (7/8) that is at least {floor:.0} B per session with the timer-wheel entry and free-list slot; the index doubles when 7/8 full, so just after that it is half empty.\n"
        );
        let _ = writeln!(s, "| SYNs sent | sessions in lbd | SYN rate | lbd RSS ready | lbd RSS after | bytes / session | mbufs in use |\n|---|---|---|---|---|---|---|");
        for (_, k) in keys {
            let r = &rec["scenarios"][&k]["runs"][0];
            let inuse = match (
                r["lbd_mempool"]["capacity"].as_u64(),
                r["lbd_mempool"]["available"].as_u64(),
            ) {
                (Some(c), Some(a)) => (c - a).to_string(),
                _ => "—".into(),
            };
            let mib = |v: &Value| {
                v.as_f64()
                    .map_or("—".into(), |kb| format!("{:.1} MiB", kb / 1024.0))
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {inuse} |",
                r["gen"]["tx"],
                r["lbd_totals"]["sessions"],
                r["gen"]["tx_pps"]
                    .as_f64()
                    .map_or("—".into(), |x| format!("{}/s", si(x))),
                mib(&r["lbd_rss_ready_kb"]),
                mib(&r["lbd_rss_after_kb"]),
                bytes_per_session(r).map_or("—".into(), |b| format!("{b:.0} B")),
            );
        }
        s.push('\n');
    }

    for w in wrk_records(rec) {
        let st = &w["settings"];
        if let Some(e) = w["error"].as_str() {
            let _ = writeln!(s, "## wrk through the namespace testbed, lbd on {}\n\nwrk failed: `{e}`\n", st["driver"].as_str().unwrap_or("?"));
            continue;
        }
        let _ = writeln!(
            s,
            "## wrk through the namespace testbed, lbd on {}\n\n`wrk -t{} -c{} -d{}s --latency`, nginx on {} (one worker). Director path: client ns → veth → lbd ({}, 1 worker, idle_sleep_us = {}) → veth → bridge → nginx. Direct path: the LAN switch namespace → bridge → nginx. Runs alternate between the paths.\n",
            st["driver"].as_str().unwrap_or("?"), st["threads"], st["connections"], st["seconds"], st["real_server"].as_str().unwrap_or("?"), st["driver"].as_str().unwrap_or("?"), st["idle_sleep_us"]
        );
        let _ = writeln!(s, "| path | req/s | min – max | p50 | p90 | p99 | ratio vs direct | p99 added | lbd CPU per request |\n|---|---|---|---|---|---|---|---|---|");
        let d99 = wrk_stat(w, "direct", "p99_us");
        let wd = wrk_stat(w, "direct", "rps");
        for path in ["direct", "director"] {
            let rps = wrk_stat(w, path, "rps");
            let p = |f: &str| {
                wrk_stat(w, path, f).map_or("—".into(), |x| format!("{:.0} µs", x.0))
            };
            let added = match (wrk_stat(w, path, "p99_us"), d99) {
                (Some(a), Some(b)) if path == "director" => format!("{:+.0} µs", a.0 - b.0),
                _ => "—".into(),
            };
            let (med, rng) = range(rps, si);
            let cpu = wrk_stat(w, path, "lbd_cpu_us_per_req").map_or("—".into(), |c| format!("{:.1} µs", c.0));
            let _ = writeln!(
                s,
                "| {path} | {med} | {rng} | {} | {} | {} | {} | {added} | {cpu} |",
                p("p50_us"),
                p("p90_us"),
                p("p99_us"),
                fmt_ratio(ratio(rps, wd))
            );
        }
        s.push('\n');
    }

    for k in ["profile-udp", "profile-conn"] {
        if let Some(p) = rec["scenarios"][k]["runs"][0]["profile"].as_str() {
            let _ = writeln!(s, "## Profile: {} (`perf record -e cpu-clock`, all lbd threads, top symbols)\n\n```text\n{p}\n```\n", rec["scenarios"][k]["title"].as_str().unwrap_or(k));
        }
    }

    let _ = writeln!(s, "## Every run\n\n*Others before*: share of both CPUs other processes used in the 0.3 s before the run (none of the bench's own processes run then); the bench waits up to 15 s for it to fall below 20 % (waited {} s in all). *Others / steal during*: what other processes used and the hypervisor stole of both CPUs while the run was measured.\n\n| scenario | run | load before (1/5/15 min) | others before | others / steal during | result | notes |\n|---|---|---|---|---|---|---|", rec["waited_for_quiet_s"]);
    for k in rec["order"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        for (i, r) in rec["scenarios"][k]["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut notes = Vec::new();
            if let Some(e) = r["error"].as_str() {
                notes.push(format!("error: {}", e.lines().next().unwrap_or("")));
            }
            if let Some(e) = r["dut_exit"].as_str() {
                notes.push(e.to_owned());
            }
            if let Some(c) = pipeline_cycles(r) {
                notes.push(format!("lbd pipeline {c:.0} cycles/frame"));
            }
            if let Some(d) = r["lbd_totals"]["drops"].as_object() {
                let list: Vec<String> = d.iter().map(|(k, v)| format!("{k} {v}")).collect();
                if !list.is_empty() {
                    notes.push(format!("lbd drops: {}", list.join(", ")));
                }
            }
            let res = if r["error"].is_null() {
                headline(&r["gen"])
            } else {
                "—".into()
            };
            let cpu = r["others_cpu_pct"]
                .as_f64()
                .map_or("?".into(), |c| format!("{c:.0} %"));
            let during = match (r["cpu_during"]["others_pct"].as_f64(), r["cpu_during"]["steal_pct"].as_f64()) {
                (Some(o), Some(st)) => format!("{o:.0} % / {st:.0} %"),
                _ => "—".into(),
            };
            let _ = writeln!(
                s,
                "| {k} | {} | {} | {cpu} | {during} | {res} | {} |",
                i + 1,
                r["load"].as_str().unwrap_or("?"),
                notes.join("; ")
            );
        }
    }
    for (w, path) in wrk_records(rec).into_iter().flat_map(|w| [(w, "direct"), (w, "director")]) {
        let drv = w["settings"]["driver"].as_str().unwrap_or("?");
        for (i, r) in w[path]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let _ = writeln!(
                s,
                "| wrk {path} ({drv}) | {} | {} | — | — | {} req/s, p99 {} µs | {} |",
                i + 1,
                r["load"].as_str().unwrap_or("?"),
                r["rps"],
                r["p99_us"],
                r["errors"].as_str().or(r["error"].as_str()).unwrap_or("")
            );
        }
    }
    s
}

/// Session-scale scenario keys with their size, ascending.
fn session_keys(rec: &Value) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = rec["order"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|k| {
            k.strip_prefix("sessions-")
                .and_then(|n| n.parse().ok())
                .map(|n| (n, k.to_owned()))
        })
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn medians() {
        assert_eq!(median_min_max(&mut [3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(
            median_min_max(&mut [4.0, 1.0, 2.0, 3.0]),
            Some((2.5, 1.0, 4.0))
        );
        assert_eq!(median_min_max(&mut []), None);
    }

    #[test]
    fn ratios_pair_each_round_with_its_own_ceiling() {
        // Round 2 caught lbd in the VM's slow mode and the ceiling in the fast one.
        let run = |round: u64, pps: f64| json!({"load": "0", "round": round, "gen": {"rx_pps": pps, "latency_ns": {}}});
        let rec = json!({
            "order": ["testpmd", "lbd-udp"],
            "scenarios": {
                "testpmd": {"title": "t", "runs": [run(0, 10e6), run(1, 5e6), run(2, 10e6)]},
                "lbd-udp": {"title": "l", "runs": [run(0, 6e6), run(1, 3e6), run(2, 3e6)]},
            },
        });
        let md = markdown(&rec, &json!({"date": "2025-01-01"}));
        assert!(md.contains("| lbd FNAT, established UDP flows, 64 B | 3.00M pps | 3.00M pps – 6.00M pps ⚠ 100 % | 0.60 | ≥ 0.6 × ceiling | met |"), "the median of 0.6, 0.6, 0.3 (the medians' ratio would be 0.3): {md}");
    }

    #[test]
    fn report_has_ratios_and_skips_failed_runs() {
        let run = |pps: f64| json!({"load": "0.1 0.1 0.1", "gen": {"rx_pps": pps, "tx_pps": pps, "latency_ns": {"p50": 1000.0}}});
        let cpu = |mut r: Value| {
            r["cpu_during"] = json!({"others_pct": 0.4, "steal_pct": 1.2});
            r
        };
        let echo = |both: f64| json!({"load": "0", "gen": {"rx_pps": both / 2.0, "both_rx_pps": both, "latency_ns": {}}});
        let mut first = cpu(run(6e6));
        first["lbd_totals"] = json!({"shared_writes": 3, "fnat_in": 1_000_000, "fnat_out": 2_000_000, "rx": 1_000_000, "redirected_in": 250_000, "pipeline_cycles": 150_000_000});
        let rec = json!({
            "order": ["testpmd", "testpmd-echo", "testpmd-flowgen", "lbd-udp", "lbd-udp-echo", "sessions-1000"],
            "elapsed_s": 10,
            "scenarios": {
                "testpmd": {"title": "t", "runs": [run(10e6), run(8e6), run(12e6), {"error": "boom", "load": "9"}]},
                "testpmd-flowgen": {"title": "f", "runs": [run(12e6)]},
                "testpmd-echo": {"title": "e", "runs": [echo(13e6)]},
                "lbd-udp-echo": {"title": "le", "runs": [echo(7.8e6)]},
                "lbd-udp": {"title": "l", "runs": [first, cpu(run(5e6)), cpu(run(7e6))]},
                "sessions-1000": {"title": "s", "runs": [{"load": "0", "gen": {"mode": "syn", "tx": 1000, "rx": 1000}, "lbd_totals": {"sessions": 1000}, "lbd_rss_ready_kb": 1000, "lbd_rss_after_kb": 1100}]},
            },
            "wrk": {"settings": {"driver": "af_xdp"}, "direct": [{"rps": 100.0, "p50_us": 10.0, "p99_us": 20.0}], "director": [{"rps": 80.0, "p50_us": 30.0, "p99_us": 90.0, "lbd_cpu_us_per_req": 12.5, "lbd_cpu_pct": 40.0}]},
            "wrk_other": [{"settings": {"driver": "af_packet"}, "direct": [{"rps": 100.0, "p99_us": 20.0}], "director": [{"rps": 60.0, "p99_us": 300.0}]}, {"settings": {"driver": "af_x"}, "error": "no lb-slowpath"}],
        });
        let md = markdown(&rec, &json!({"date": "2025-01-01"}));
        assert!(md.contains("| lbd FNAT, established UDP flows, 64 B | 6.00M pps | 5.00M pps – 7.00M pps ⚠ 33 % | 0.46 | ≥ 0.6 × ceiling | **not met** | 0 % / 1 % |"), "{md}");
        assert!(md.contains("| lb-pktgen → testpmd io-fwd, one way | 10.00M pps | 8.00M pps – 12.00M pps ⚠ 40 % | 0.77 |  | — |"), "{md}");
        assert!(md.contains("| lb-pktgen --echo → testpmd io-fwd, both directions (÷ flowgen: 1.08) | 13.00M pps | 13.00M pps – 13.00M pps | 1.00 | ≥ flowgen (the generator does not bind) | met |"), "{md}");
        assert!(md.contains("| lbd FNAT, UDP both directions (every datagram echoed), 64 B | 7.80M pps | 7.80M pps – 7.80M pps | 0.60 | ≥ 0.6 × ceiling | met |"), "{md}");
        assert!(md.contains("(13.00M pps: **lb-pktgen --echo**)"), "{md}");
        assert!(md.contains("error: boom"));
        assert!(md.contains("| wrk through the director, lbd on af_xdp (vs wrk direct: 0.80) | 80 req/s |"), "{md}");
        assert!(md.contains("| wrk p50 added by the director, lbd on af_xdp | +20 µs |"), "{md}");
        assert!(md.contains("| wrk p99 added by the director, lbd on af_xdp | +70 µs | — | — | ≤ +50 µs | **not met** |"), "{md}");
        assert!(md.contains("| wrk through the director, lbd on af_packet (vs wrk direct: 0.60) |"), "{md}");
        assert!(md.contains("| lbd CPU per request through the director, lbd on af_xdp (40 % of a CPU) | 12.5 µs |"), "{md}");
        assert!(md.contains("## wrk through the namespace testbed, lbd on af_packet"), "{md}");
        assert!(md.contains("| wrk director (af_packet) | 1 |"), "{md}");
        assert!(md.contains("| wrk through the director, lbd on af_x: failed (its section says why) | — | — | — | ≥ 0.95 × direct | **not met** |"), "{md}");
        assert!(md.contains("## wrk through the namespace testbed, lbd on af_x\n\nwrk failed: `no lb-slowpath`"), "{md}");
        assert!(md.contains("102 B"), "bytes per session: {md}");
        assert!(md.contains("lbd-conn: 3.00M packets) | 1.0 | 1.0 – 1.0 | — | 0 in steady state | **not met** |"), "{md}");
        assert!(md.contains("lbd pipeline 120 cycles/frame"), "150 M cycles over 1.25 M frames: {md}");
        assert!(md.contains("Layout in this build: `Session`"), "{md}");
        let other = markdown(&rec, &json!({"date": "2025-01-01", "layout": {"session": 104, "other_lbd": "/tmp/lbd-x"}}));
        assert!(other.contains("Layout in lb-bench's build (the lbd measured, `/tmp/lbd-x`, may differ): `Session` 104 B"), "{other}");
        assert!(md.contains("| lbd's own cycles per frame (the pipeline, without the driver's rx/tx), established UDP | 120 | 120 – 120 |"), "{md}");
    }
}
