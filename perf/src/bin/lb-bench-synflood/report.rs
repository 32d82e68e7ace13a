//! The markdown report of a `lb-bench-synflood` record.

use std::fmt::Write as _;

use serde_json::Value;

use lb_perf::bench::record::{cell as c, thousands as k, verdict};

/// Nanoseconds as microseconds.
fn us(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "—".into(), |x| format!("{:.1}", x / 1000.0))
}

fn med(v: &Value) -> &Value {
    &v["median"]
}

/// "median (min – max)" in thousands.
fn spread(v: &Value) -> String {
    if v.is_null() {
        return "—".into();
    }
    format!("{} ({} – {})", k(&v["median"]), k(&v["min"]), k(&v["max"]))
}

fn targets(sf: &Value, s: &mut String) {
    let sm = &sf["summary"];
    let vars = &sm["variants"];
    s.push_str("## Against the targets\n\n| figure | measured | target | |\n|---|---|---|---|\n");
    for r in sm["under_flood_over_without"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let ratio = r["median_round_ratio"].as_f64();
        let (of, over) = (c(&r["of"]), c(&r["over"]));
        let _ = writeln!(
            s,
            "| real conn/s, `{of}` ÷ `{over}` | **{}** (median of {} round ratios; ratio of medians {}: {} vs {} conn/s) | ≥ 0.9 | {} |",
            c(&r["median_round_ratio"]),
            r["round_ratios"].as_array().map_or(0, Vec::len),
            c(&r["ratio_of_medians"]),
            k(med(&vars[&of]["cps"])),
            k(med(&vars[&over]["cps"])),
            verdict(ratio.map(|x| x >= 0.9))
        );
    }
    if let Some(m) = vars.as_object() {
        for (key, v) in m.iter().filter(|(key, _)| key.starts_with("on")) {
            let half = v["half_open_at_end_max"].as_u64();
            let seen = v["flood_seen_at_servers_sum"].as_u64();
            let _ = writeln!(
                s,
                "| half-open at the real servers after a run (most in one run) / flood-source segments they saw (all runs), `{key}` | {} / {} (peak half-open during a run: {}) | 0 / 0 | {} |",
                c(&v["half_open_at_end_max"]),
                c(&v["flood_seen_at_servers_sum"]),
                c(&v["half_open_peak_max"]),
                verdict(half.zip(seen).map(|(h, f)| h == 0 && f == 0))
            );
        }
        for (key, v) in m
            .iter()
            .filter(|(key, _)| key.starts_with("off") && key.contains("flood"))
        {
            let _ = writeln!(
                s,
                "| control, no SYN proxy: half-open at the real servers after a run (most) / flood-source segments they saw (all runs), `{key}` | {} / {} | > 0 (the flood reaches them; the counters work) | {} |",
                c(&v["half_open_at_end_max"]),
                c(&v["flood_seen_at_servers_sum"]),
                verdict(v["flood_seen_at_servers_sum"].as_u64().map(|f| f > 0))
            );
        }
        for (key, v) in m
            .iter()
            .filter(|(key, _)| key.starts_with("on") && key.contains("flood"))
        {
            let _ = writeln!(
                s,
                "| SYN-cookie answers/s per worker (lbd `synproxy_syn_cookies`, real connections' included), `{key}` | {} (flood sent {} SYN/s; SYN-ACKs back at the flood sources {} /s) | — | |",
                spread(&v["lbd_cookies_per_s"]),
                k(med(&v["flood_sent_per_s"])),
                k(med(&v["flood_synacks_per_s"]))
            );
        }
    }
    for r in sm["proxy_on_over_off"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| cost of proxying: real conn/s `{}` ÷ `{}` | {} (median of round ratios; ratio of medians {}) | — | |",
            c(&r["of"]),
            c(&r["over"]),
            c(&r["median_round_ratio"]),
            c(&r["ratio_of_medians"])
        );
    }
    s.push('\n');
}

fn variants_table(sf: &Value, s: &mut String) {
    s.push_str("## Medians per variant\n\n| variant | real conn/s median (min – max) | lbd cookies/s | lbd accepted/s | flood sent/s (refused at the generator) | SYN-ACKs at flood sources/s | SYN→SYN-ACK p50 / p99 µs | SYN→window update p50 / p99 µs | SYN→response p50 / p99 µs | half-open at end (max) / peak | flood seen at servers | lost / resets (all runs) | failed runs |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let Some(m) = sf["summary"]["variants"].as_object() else {
        return;
    };
    for (key, v) in m {
        let _ = writeln!(
            s,
            "| `{key}` | {} | {} | {} | {} ({}) | {} | {} / {} | {} / {} | {} / {} | {} / {} | {} | {} / {} | {} |",
            spread(&v["cps"]),
            k(med(&v["lbd_cookies_per_s"])),
            k(med(&v["lbd_accepted_per_s"])),
            k(med(&v["flood_sent_per_s"])),
            k(med(&v["flood_refused_per_s"])),
            k(med(&v["flood_synacks_per_s"])),
            us(med(&v["handshake_p50_ns"])),
            us(med(&v["handshake_p99_ns"])),
            us(med(&v["window_update_p50_ns"])),
            us(med(&v["window_update_p99_ns"])),
            us(med(&v["connect_p50_ns"])),
            us(med(&v["connect_p99_ns"])),
            c(&v["half_open_at_end_max"]),
            c(&v["half_open_peak_max"]),
            c(&v["flood_seen_at_servers_sum"]),
            c(&v["lost_sum"]),
            c(&v["resets_sum"]),
            c(&v["errors"]),
        );
    }
    s.push('\n');
}

fn placement(sf: &Value, s: &mut String) {
    let Some(run) = sf["runs"]
        .as_array()
        .and_then(|r| r.iter().find(|r| !r["placement"].is_null()))
    else {
        return;
    };
    s.push_str("## Where each process ran\n\nBusy threads (at least 0.1 s of CPU) sampled inside the measured window of the first run (`allowed`: the thread's CPU affinity; `cpu`: where it last ran):\n\n| process | thread | cpu | allowed |\n|---|---|---|---|\n");
    for p in ["lb-pktgen", "lbd"] {
        for t in run["placement"][p].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "| {p} | {} | {} | {} |",
                c(&t["comm"]),
                c(&t["cpu"]),
                c(&t["allowed"])
            );
        }
    }
    s.push('\n');
}

fn runs_table(sf: &Value, s: &mut String) {
    s.push_str("## Every run\n\n| round | variant | real conn/s | SYN-ACKs proxied / window updates (window) | flood sent/s / refused/s | lbd cookies/s (worker 0) | SYN-ACKs at flood sources/s | half-open at end / peak | flood seen at servers | lost | lbd drops (whole run) | both CPUs busy % | lbd CPU % | others' CPU before / during % | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in sf["runs"].as_array().into_iter().flatten() {
        if let Some(e) = r["error"].as_str() {
            let _ = writeln!(
                s,
                "| {} | `{}` | failed: {} | | | | | | | | | | | | |",
                c(&r["round"]),
                c(&r["variant"]),
                e.replace('|', "/").replace('\n', " ")
            );
            continue;
        }
        let drops = r["lbd_drops"]
            .as_object()
            .filter(|m| !m.is_empty())
            .map_or_else(
                || "none".into(),
                |m| {
                    m.iter()
                        .map(|(k, v)| format!("{k} {}", c(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            );
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} / {} | {} / {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            c(&r["round"]),
            c(&r["variant"]),
            k(&r["cps"]),
            c(&r["window"]["proxied"]),
            c(&r["window"]["window_updates"]),
            k(&r["flood"]["sent_per_s"]),
            k(&r["flood"]["refused_per_s"]),
            k(&r["lbd_window"]["synproxy_syn_cookies"]["worker0_per_s"]),
            k(&r["flood"]["synacks_per_s"]),
            c(&r["server_half_open"]["at_end"]),
            c(&r["server_half_open"]["peak"]),
            c(&r["totals"]["srv_flood_seen"]),
            c(&r["totals"]["lost"]),
            drops,
            c(&r["cpu"]["busy_pct"]),
            c(&r["lbd_cpu_pct"]),
            c(&r["others_cpu_pct"]),
            c(&r["others_during_pct"]),
            c(&r["load"]),
        );
    }
    s.push('\n');
}

/// The whole report.
pub fn markdown(rec: &Value) -> String {
    let m = &rec["machine"];
    let sf = &rec["synflood"];
    let st = &sf["settings"];
    let mut s = String::new();
    let _ = write!(
        s,
        "# SYN flood through the SYN proxy — {}\n\n\
         `{}` (commit {}; {} × {}; kernel {}; DPDK {}; hugepages {}). {} s in all, {} s of it waiting for quiet.\n\n\
         memif lab (perf/README.md): lbd with one worker (busy polling) and `syn_proxy` on the FNAT TCP service \
         VIP 10.99.1.100:80 (ten real servers, 32 local addresses; `toa = \"{}\"`); lb-pktgen plays the clients \
         and the real servers. Flood SYNs come from random addresses in {} with random ports and ISNs. \
         {} rounds, variants in rotating order; {} s of warm-up and {} s measured per run, at most {} unfinished \
         real connections. Real conn/s counts fully closed connections (SYN, cookie SYN-ACK, ACK, window update, \
         request, response + FIN, FIN-ACK, ACK). lbd's counters are sampled twice inside the measured window \
         (stats file, its own uptime stamps).\n\n",
        c(&m["date"]),
        c(&rec["command"]),
        c(&m["commit"]),
        c(&m["cpus"]),
        c(&m["cpu"]),
        c(&m["kernel"]),
        c(&m["dpdk"]),
        c(&m["hugepages"]),
        c(&rec["elapsed_s"]),
        c(&rec["waited_for_quiet_s"]),
        c(&st["toa"]),
        c(&st["flood_sources"]),
        c(&st["rounds"]),
        c(&st["warmup_s"]),
        c(&st["duration_s"]),
        c(&st["concurrency"]),
    );
    targets(sf, &mut s);
    variants_table(sf, &mut s);
    placement(sf, &mut s);
    s.push_str("## Generator arguments per variant\n\n");
    for v in st["variants"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "- `{}`: `lb-pktgen {}`",
            c(&v["key"]),
            c(&v["generator_args"])
        );
    }
    s.push('\n');
    runs_table(sf, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn report_shows_targets_and_failures() {
        let rec = json!({
            "machine": {"date": "2026-12-02", "commit": "abc"},
            "command": "lb-bench-synflood --rounds 1",
            "synflood": {
                "settings": {"rounds": 1, "toa": "syn-and-first-ack", "variants": [{"key": "on", "generator_args": "--mode conn"}]},
                "runs": [
                    {"variant": "on", "round": 1, "cps": 1000.0, "window": {"proxied": 10, "window_updates": 10}},
                    {"variant": "on_flood_max", "round": 1, "error": "lbd | died"}
                ],
                "summary": {
                    "variants": {
                        "on": {"cps": {"median": 1000.0, "min": 900.0, "max": 1100.0}},
                        "on_flood_max": {"cps": {"median": 500.0, "min": 500.0, "max": 500.0},
                                         "half_open_at_end_max": 0, "flood_seen_at_servers_sum": 0,
                                         "lbd_cookies_per_s": {"median": 2e6, "min": 2e6, "max": 2e6}}
                    },
                    "under_flood_over_without": [{"of": "on_flood_max", "over": "on", "round_ratios": [0.5], "median_round_ratio": 0.5, "ratio_of_medians": 0.5}],
                    "proxy_on_over_off": []
                }
            }
        });
        let md = markdown(&rec);
        assert!(
            md.contains("| real conn/s, `on_flood_max` ÷ `on` | **0.5**"),
            "{md}"
        );
        assert!(md.contains("**not met**"), "{md}");
        assert!(
            md.contains("| 0 / 0 (peak half-open during a run: —) | 0 / 0 | met |"),
            "{md}"
        );
        assert!(md.contains("2000.0k"), "{md}");
        assert!(md.contains("failed: lbd / died"), "{md}");
        assert!(md.contains("`on`: `lb-pktgen --mode conn`"), "{md}");
    }
}
