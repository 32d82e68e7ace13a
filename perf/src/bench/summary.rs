//! The report's summary table: every headline figure against the pair's ceiling and its
//! target (issue 14's), with the share of both CPUs others and the hypervisor took while it
//! was measured, and a mark where runs spread widely (these VMs switch between a fast and a
//! slow mode that hits both CPUs at once).

use std::fmt::Write as _;

use serde_json::Value;

use super::report::{both_pps, bytes_per_session, cps, fmt_ratio, median_min_max, pipeline_cycles, ratio, rx_pps, si, stats};
use super::record::verdict;

/// Runs of one figure that differ by more than this (max − min over the median) are marked.
const SPREAD_MARK: f64 = 0.10;
/// Sessions at which the bytes-per-session target applies.
const SESSIONS_TARGET_AT: u64 = 20_000_000;

type Stat = Option<(f64, f64, f64)>;
/// What a run measured, read from its record (`report::rx_pps`, `report::both_pps`).
type Figure = fn(&Value) -> Option<f64>;

/// The ceiling figures: testpmd io-fwd driven by lb-pktgen (one way), by lb-pktgen --echo and
/// by testpmd flowgen (both directions) — scenario, figure, generator.
const CEILINGS: [(&str, Figure, &str); 3] =
    [("testpmd", rx_pps, "lb-pktgen"), ("testpmd-echo", both_pps, "lb-pktgen --echo"), ("testpmd-flowgen", rx_pps, "testpmd flowgen")];

/// The pair's ceiling: the highest median of the ceiling figures, with the generator that
/// reached it (the first listed on a tie).
pub(super) fn ceiling(rec: &Value) -> (Stat, &'static str) {
    CEILINGS
        .iter()
        .filter_map(|(key, f, name)| stats(rec, key, f).map(|st| (st, *name)))
        .reduce(|best, c| if c.0 .0 > best.0 .0 { c } else { best })
        .map_or((None, "—"), |(st, name)| (Some(st), name))
}

/// A scenario's value per round (runs carry the round they ran in; see `bench::PAIRED`).
fn by_round(rec: &Value, key: &str, f: &dyn Fn(&Value) -> Option<f64>) -> std::collections::BTreeMap<u64, f64> {
    rec["scenarios"][key]["runs"].as_array().into_iter().flatten().filter(|r| r["error"].is_null()).filter_map(|r| Some((r["round"].as_u64()?, f(r)?))).collect()
}

/// The median over rounds of `a`'s value ÷ `b`'s in the same round; `None` below three rounds
/// with both (the summary then divides the medians).
fn paired(a: &std::collections::BTreeMap<u64, f64>, b: &std::collections::BTreeMap<u64, f64>) -> Option<f64> {
    let mut v: Vec<f64> = a.iter().filter_map(|(r, x)| b.get(r).filter(|y| **y > 0.0).map(|y| x / y)).collect();
    if v.len() < 3 {
        return None;
    }
    median_min_max(&mut v).map(|m| m.0)
}

/// The ceiling of each round: the highest ceiling figure run in it.
fn ceiling_by_round(rec: &Value) -> std::collections::BTreeMap<u64, f64> {
    let mut out = std::collections::BTreeMap::new();
    for (key, f, _) in CEILINGS {
        for (r, x) in by_round(rec, key, &f) {
            let c = out.entry(r).or_insert(x);
            *c = f64::max(*c, x);
        }
    }
    out
}

/// Median others' and stolen CPU over a scenario's runs, "12 % / 3 %".
fn cpu_cell(rec: &Value, key: &str) -> String {
    let med = |f: &str| {
        let mut v: Vec<f64> = rec["scenarios"][key]["runs"].as_array().into_iter().flatten().filter_map(|r| r["cpu_during"][f].as_f64()).collect();
        median_min_max(&mut v).map(|m| m.0)
    };
    match (med("others_pct"), med("steal_pct")) {
        (Some(o), Some(s)) => format!("{o:.0} % / {s:.0} %"),
        _ => "—".into(),
    }
}

/// "median | min – max" cells, the range marked when the runs spread.
fn cells(st: Stat, fmt: impl Fn(f64) -> String) -> (String, String) {
    match st {
        Some((m, lo, hi)) => {
            let spread = if m > 0.0 { (hi - lo) / m } else { 0.0 };
            let mark = if spread > SPREAD_MARK { format!(" ⚠ {:.0} %", spread * 100.0) } else { String::new() };
            (fmt(m), format!("{} – {}{mark}", fmt(lo), fmt(hi)))
        }
        None => ("—".into(), "—".into()),
    }
}

/// The summary section.
pub(super) fn section(rec: &Value) -> String {
    let mut s = String::new();
    let (ceil, bound) = ceiling(rec);
    let pps = |x: f64| format!("{} pps", si(x));
    let tp = stats(rec, "testpmd", rx_pps);
    let fg = stats(rec, "testpmd-flowgen", rx_pps);
    let _ = writeln!(
        s,
        "## Summary\n\nThe ceiling is the highest testpmd io-fwd figure: lb-pktgen (one way), lb-pktgen --echo or testpmd flowgen (both directions) as the generator ({}: **{}**). Rows marked *both directions* count what the forwarder carried each way, as flowgen's figure does. The forwarding figures and the ceilings run in rounds (round i: the i-th run of each, one after the other), and *vs ceiling* is the median of each round's ratio to that round's ceiling, so a mode switch of the VM hits both sides of a ratio alike (with fewer than three rounds: the ratio of the medians). *Others / steal*: the median share of both CPUs that other processes used and that the hypervisor stole while each run was measured. ⚠ marks a figure whose runs spread by more than {:.0} % (a mode switch of the VM is likely: read its runs).\n\n| figure | median | min – max | vs ceiling | target | target met | others / steal |\n|---|---|---|---|---|---|---|",
        ceil.map_or("not measured".into(), |c| pps(c.0)),
        bound,
        SPREAD_MARK * 100.0
    );
    let mut row = |label: &str, key: &str, st: Stat, fmt: &dyn Fn(f64) -> String, vs: Option<f64>, target: &str, ok: Option<bool>| {
        let (med, rng) = cells(st, fmt);
        let _ = writeln!(s, "| {label} | {med} | {rng} | {} | {target} | {} | {} |", fmt_ratio(vs), verdict(ok), cpu_cell(rec, key));
    };
    let rounds = ceiling_by_round(rec);
    // Each round's ratio to its ceiling, else the medians' ratio.
    let vs = |key: &str, f: &dyn Fn(&Value) -> Option<f64>, st: Stat| paired(&by_round(rec, key, f), &rounds).or_else(|| ratio(st, ceil));
    let lo = stats(rec, "loopback", rx_pps);
    row("lb-pktgen looped onto itself (the generator alone)", "loopback", lo, &pps, ratio(lo, ceil), "", None);
    row("lb-pktgen → testpmd io-fwd, one way", "testpmd", tp, &pps, vs("testpmd", &rx_pps, tp), "", None);
    let te = stats(rec, "testpmd-echo", both_pps);
    let te_fg = paired(&by_round(rec, "testpmd-echo", &both_pps), &by_round(rec, "testpmd-flowgen", &rx_pps)).or_else(|| ratio(te, fg));
    row(&format!("lb-pktgen --echo → testpmd io-fwd, both directions (÷ flowgen: {})", fmt_ratio(te_fg)), "testpmd-echo", te, &pps, vs("testpmd-echo", &both_pps, te), "≥ flowgen (the generator does not bind)", te_fg.map(|r| r >= 1.0));
    row("testpmd flowgen → testpmd io-fwd, both directions", "testpmd-flowgen", fg, &pps, vs("testpmd-flowgen", &rx_pps, fg), "", None);
    let udp = stats(rec, "lbd-udp", rx_pps);
    let flows = rec["scenarios"]["lbd-udp"]["runs"][0]["gen"]["flows"].as_u64().map_or(String::new(), |n| format!(", {n} flows"));
    let r_udp = vs("lbd-udp", &rx_pps, udp);
    row(&format!("lbd FNAT, established UDP flows, 64 B{flows}"), "lbd-udp", udp, &pps, r_udp, "≥ 0.6 × ceiling", r_udp.map(|r| r >= 0.6));
    let echo = stats(rec, "lbd-udp-echo", both_pps);
    let r_echo = vs("lbd-udp-echo", &both_pps, echo);
    row(&format!("lbd FNAT, UDP both directions (every datagram echoed), 64 B{flows}"), "lbd-udp-echo", echo, &pps, r_echo, "≥ 0.6 × ceiling", r_echo.map(|r| r >= 0.6));
    let tcp = stats(rec, "lbd-tcp", rx_pps);
    let r_tcp = vs("lbd-tcp", &rx_pps, tcp);
    row("lbd FNAT, established TCP flows, 64 B", "lbd-tcp", tcp, &pps, r_tcp, "≥ 0.6 × ceiling", r_tcp.map(|r| r >= 0.6));
    let (f1m, f100) = (stats(rec, "lbd-udp-flows-1000000", rx_pps), stats(rec, "lbd-udp-flows-100", rx_pps));
    let flat = paired(&by_round(rec, "lbd-udp-flows-1000000", &rx_pps), &by_round(rec, "lbd-udp-flows-100", &rx_pps)).or_else(|| ratio(f1m, f100));
    row("lbd FNAT UDP at 1 M flows (vs ceiling); its ratio to 100 flows in *target met*", "lbd-udp-flows-1000000", f1m, &pps, vs("lbd-udp-flows-1000000", &rx_pps, f1m), &format!("≥ 0.8 × the 100-flow rate (is {})", fmt_ratio(flat)), flat.map(|r| r >= 0.8));
    let conn = stats(rec, "lbd-conn", cps);
    let workers = rec["layout"]["dut"].as_array().map_or(1, Vec::len).max(1);
    let per = if workers == 1 { "1 worker".to_owned() } else { format!("{workers} workers") };
    row(&format!("lbd new TCP connections per second (6 packets each), {per}"), "lbd-conn", conn, &|x| format!("{} conn/s", si(x)), None, "≥ 1 M/s per worker", conn.map(|c| c.0 >= 1e6 * workers as f64));
    let own = |key: &str| stats(rec, key, pipeline_cycles);
    if let Some(c) = own("lbd-udp") {
        let more: String = [("1 M flows", "lbd-udp-flows-1000000"), ("new connections", "lbd-conn")].iter().filter_map(|(what, key)| own(key).map(|c| format!("; {what}: {:.0}", c.0))).collect();
        row(&format!("lbd's own cycles per frame (the pipeline, without the driver's rx/tx), established UDP{flows}{more}"), "lbd-udp", Some(c), &|x| format!("{x:.0}"), None, "", None);
    }
    let (writes, pkts) = shared_writes(rec);
    if pkts > 0 {
        let per_m = writes as f64 * 1e6 / pkts as f64;
        row(&format!("shared writes per million packets (owner maps, limit atomics; lbd-udp, lbd-udp-echo, lbd-tcp, lbd-conn: {} packets)", si(pkts as f64)), "lbd-conn", Some((per_m, per_m, per_m)), &|x| format!("{x:.1}"), None, "0 in steady state", Some(writes == 0));
    }
    let mut keys: Vec<(u64, String)> = rec["order"].as_array().into_iter().flatten().filter_map(Value::as_str).filter_map(|k| k.strip_prefix("sessions-").and_then(|n| n.parse().ok()).map(|n| (n, k.to_owned()))).collect();
    keys.sort();
    if let Some((n, b)) = keys.iter().rev().find_map(|(n, k)| bytes_per_session(&rec["scenarios"][k]["runs"][0]).map(|b| (*n, b))) {
        let ok = (n >= SESSIONS_TARGET_AT).then_some(b <= 128.0);
        let target = if n >= SESSIONS_TARGET_AT { "≤ 128 B at 20 M".to_owned() } else { format!("≤ 128 B at 20 M (largest run here: {})", si(n as f64)) };
        row(&format!("lbd bytes per session (RSS growth / sessions, at {} SYNs)", si(n as f64)), &format!("sessions-{n}"), Some((b, b, b)), &|x| format!("{x:.0} B"), None, &target, ok);
    }
    s
}

/// `Counters::shared_writes` summed over the forwarding and connection runs, and the packets
/// lbd forwarded in them (both directions).
fn shared_writes(rec: &Value) -> (u64, u64) {
    let mut sum = (0, 0);
    for key in ["lbd-udp", "lbd-udp-echo", "lbd-tcp", "lbd-conn"] {
        for t in rec["scenarios"][key]["runs"].as_array().into_iter().flatten().map(|r| &r["lbd_totals"]) {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            if t["shared_writes"].is_u64() {
                sum.0 += n("shared_writes");
                sum.1 += n("fnat_in") + n("fnat_out");
            }
        }
    }
    sum
}
