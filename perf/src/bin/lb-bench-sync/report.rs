//! The markdown report of a `lb-bench-sync` record.

use std::fmt::Write as _;

use serde_json::Value;

use lb_perf::bench::record::{cell as c, thousands as k, verdict};

fn obj(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k} {}", c(v)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".into(),
    }
}

/// The highest asked rate whose run applied at least 99 % of the records.
fn best_rate(runs: &[Value]) -> Option<&Value> {
    runs.iter()
        .filter(|r| r["applied_pct"].as_f64().is_some_and(|p| p >= 99.0))
        .max_by(|a, b| {
            a["absorbed_per_s"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["absorbed_per_s"].as_f64().unwrap_or(0.0))
        })
}

fn summary(rec: &Value, s: &mut String) {
    s.push_str("## Against the targets\n\n| figure | measured | target | |\n|---|---|---|---|\n");
    let sm = &rec["cps"]["summary"];
    if !sm.is_null() {
        let ratio = sm["median_round_ratio"].as_f64();
        let _ = writeln!(
            s,
            "| new connections/s per worker, sync on ÷ off | **{}** (median of {} round ratios; ratio of medians {}: {} on vs {} off conn/s) | ≥ 0.8 | {} |",
            c(&sm["median_round_ratio"]),
            sm["round_ratios"].as_array().map_or(0, Vec::len),
            c(&sm["ratio_of_medians"]),
            k(&sm["on"]["median"]),
            k(&sm["off"]["median"]),
            verdict(ratio.map(|r| r >= 0.8))
        );
        if !sm["worker_cpu_median_round_ratio"].is_null() {
            let _ = writeln!(
                s,
                "| the same, lbd's sync thread on the worker's CPU (no core of its own) | **{}** (median of {} round ratios; ratio of medians {}: {} conn/s) | ≥ 0.8 | {} |",
                c(&sm["worker_cpu_median_round_ratio"]),
                sm["worker_cpu_round_ratios"].as_array().map_or(0, Vec::len),
                c(&sm["worker_cpu_ratio_of_medians"]),
                k(&sm["on_worker_cpu"]["median"]),
                verdict(sm["worker_cpu_median_round_ratio"].as_f64().map(|r| r >= 0.8))
            );
        }
    }
    if let Some(runs) = rec["pair"]["absorb"]["runs"].as_array() {
        let best = best_rate(runs);
        let max = runs.iter().find(|r| r["rate_asked"] == 0);
        let _ = writeln!(
            s,
            "| sync records/s a backup absorbs (≥ 99 % applied) | **{}** records/s (asked {}; at the blaster's maximum: {} sent/s, {} % applied, {} absorbed/s) | — | |",
            best.map_or("—".into(), |b| k(&b["absorbed_per_s"])),
            best.map_or("—".into(), |b| if b["rate_asked"] == 0 { "max".into() } else { k(&b["rate_asked"]) }),
            max.map_or("—".into(), |m| k(&m["blast"]["rate"])),
            max.map_or("—".into(), |m| c(&m["applied_pct"])),
            max.map_or("—".into(), |m| k(&m["absorbed_per_s"])),
        );
    }
    let after = &rec["pair"]["burst"]["after"];
    if !after.is_null() {
        let p = after["present_pct"].as_f64();
        let _ = writeln!(
            s,
            "| sessions on the backup after a burst | **{} %** of the master's {} (past SYN_RECV) present | ≥ 99.9 % | {} |",
            c(&after["present_pct"]),
            c(&after["master_synced_states"]),
            verdict(p.map(|p| p >= 99.9))
        );
    }
    s.push('\n');
}

fn cps(rec: &Value, s: &mut String) {
    let v = &rec["cps"];
    if v.is_null() {
        return;
    }
    let st = &v["settings"];
    let _ = write!(
        s,
        "## New connections per second, sync off vs on (memif lab)\n\n\
         `lb-pktgen --mode conn` through one lbd worker (busy polling, CPU 1; the generator on CPU 0), \
         {} rounds; each round runs *off*, *on*{} (rotating which goes first){}; each run restarts both \
         processes, warms up {} s and measures {} s; at most {} unfinished connections. Both variants \
         run the same lbd.toml: the LAN port has an exception TAP with {} (the sync socket's source); \
         *on* also runs `lbctl --start-daemon master --mcast-interface lan` once lbd is ready (sync id 255, \
         LVS thresholds [3, 50]), so the messages leave through the LAN memif port; the generator counts \
         them as `rx_other`. lbd's sync thread: {}. CPU shares are of both CPUs from the daemon's start \
         to the generator's report; *sync thread* is lbd-sync's utime+stime over that time (100 % = one core); \
         *worker* counts its poll passes in that time from lbd's stats (a pass takes at most 32 frames per port).\n\n",
        c(&st["rounds"]),
        if v["summary"]["on_worker_cpu"].is_null() {
            ""
        } else {
            " and *on_worker_cpu* (as *on*, lbd's sync thread moved onto the worker's CPU 1 with taskset)"
        },
        if v["summary"]["no_tap"].is_null() { "" } else { ", then a reference without the TAP" },
        c(&st["warmup_s"]),
        c(&st["duration_s"]),
        c(&st["concurrency"]),
        c(&st["tap_address"]),
        c(&st["sync_thread_cpu"]),
    );
    let tp = &v["testpmd_reference"];
    if let Some(pps) = tp["rx_pps"].as_f64() {
        let _ = writeln!(
            s,
            "Machine reference: testpmd io-fwd over the same memif pair forwarded **{:.2} M** pps (UDP 64 B) just before \
             the rounds; compare with other days' `YYYY-MM-DD.md` (the rates of this VM vary from day to day).\n",
            pps / 1e6
        );
    }
    let sm = &v["summary"];
    s.push_str("| variant | median conn/s | min – max | runs |\n|---|---|---|---|\n");
    for key in ["off", "on", "on_worker_cpu", "no_tap"] {
        let x = &sm[key];
        if !x.is_null() {
            let _ = writeln!(
                s,
                "| {key} | **{}** | {} – {} | {} |",
                k(&x["median"]),
                k(&x["min"]),
                k(&x["max"]),
                c(&x["runs"])
            );
        }
    }
    let _ = writeln!(
        s,
        "\nOn ÷ off per round: {}; median **{}**; ratio of the medians {}.\n",
        sm["round_ratios"].as_array().map_or("—".into(), |r| r
            .iter()
            .map(c)
            .collect::<Vec<_>>()
            .join(", ")),
        c(&sm["median_round_ratio"]),
        c(&sm["ratio_of_medians"])
    );
    if let Some(r) = sm["worker_cpu_round_ratios"].as_array() {
        let _ = writeln!(
            s,
            "On with the sync thread on the worker's CPU ÷ off per round: {}; median **{}**; ratio of the medians {}.\n",
            r.iter().map(c).collect::<Vec<_>>().join(", "),
            c(&sm["worker_cpu_median_round_ratio"]),
            c(&sm["worker_cpu_ratio_of_medians"])
        );
    }
    s.push_str(
        "| round | variant | conn/s | stalls > 10 ms / longest (ms) | sync records sent (messages) | send dropped | worker sync_queued / sync_queue_full | records per connection | generator rx_other | worker: passes with packets / packets per such pass | sync thread CPU % | lbd CPU % (all threads) | both CPUs busy / softirq / steal % | others' CPU before / during % | load | daemon up after (ms) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in v["runs"].as_array().into_iter().flatten() {
        if let Some(e) = r["error"].as_str() {
            let _ = writeln!(
                s,
                "| {} | {} | failed: {} ||||||||||||||",
                c(&r["round"]),
                c(&r["variant"]),
                e.replace(['|', '\n'], " ")
            );
            continue;
        }
        let w = &r["window"];
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} / {:.1} | {} ({}) | {} | {} / {} | {} | {} | {} / {} | {} | {} | {} / {} / {} | {} / {} | {} | {} |",
            c(&r["round"]),
            c(&r["variant"]),
            k(&r["cps"]),
            c(&w["gaps_over_10ms"]),
            w["max_gap_us"].as_f64().unwrap_or(0.0) / 1000.0,
            c(&r["sync"]["sent_conns"]),
            c(&r["sync"]["sent_messages"]),
            c(&r["sync"]["send_dropped"]),
            c(&r["lbd"]["sync_queued"]),
            c(&r["lbd"]["sync_queue_full"]),
            c(&r["lbd"]["records_per_connection"]),
            c(&r["gen_server_rx_other"]),
            r["worker_window"]["busy_share"].as_f64().map_or("—".into(), |x| format!("{:.1} %", x * 100.0)),
            c(&r["worker_window"]["rx_per_busy_loop"]),
            c(&r["sync_thread_cpu_pct"]),
            c(&r["lbd_cpu_pct"]),
            c(&r["cpu"]["busy_pct"]),
            c(&r["cpu"]["softirq_pct"]),
            c(&r["cpu"]["steal_pct"]),
            c(&r["others_cpu_pct"]),
            c(&r["others_during_pct"]),
            c(&r["load"]),
            c(&r["setup_ms"]),
        );
    }
    s.push('\n');
    for (key, p) in v["profiles"].as_object().into_iter().flatten() {
        let _ = writeln!(
            s,
            "### Profile, sync {key} ({} conn/s; `perf record -e cpu-clock` of all lbd threads for 2 s)\n\n```\n{}\n```\n",
            k(&p["cps"]),
            p["profile"].as_str().unwrap_or("no profile")
        );
    }
}

fn absorb(rec: &Value, s: &mut String) {
    let a = &rec["pair"]["absorb"];
    if a.is_null() {
        return;
    }
    let _ = write!(
        s,
        "## Records per second a backup absorbs (namespace testbed)\n\n\
         The pair of `testbed/configs/sync-pair.conf` (`lb-testbed up --config … --directors 2 --peer-priority 100`: \
         af_packet on veths, one worker each, `idle_sleep_us` 50, lb-slowpath beside each lbd), run from a copy whose \
         `laddr_g1` has 8 local addresses (10.70.2.100–107) instead of 1, so that a run can carry more records \
         than one address has local ports. Before each rate \
         director-2 (BACKUP) is restarted, so it starts empty and its bulk sync is done. `lb-sync-blast` in \
         the namespace of backend {} multicasts {} FNAT records (VIP 10.70.1.100:80 TCP, ESTABLISHED, timeout 900 s, \
         real server 10.70.2.11:80, local ports 1025–65534 of 10.70.2.100, then of .101 and on, one client address each; \
         30 records per 1472-byte message, sync id 42, TTL 1) at the asked rate (0: as fast as the socket takes \
         them). director-2's `lbctl -o json sync` is polled every ~50 ms until every record is applied or dropped, \
         or nothing moved for 1.5 s after the blaster ended. *Absorbed/s* = applied ÷ time from the blaster's \
         start to the poll that saw the last one applied (so it includes up to one poll interval). *Received* is \
         read 0.3 s after that (the sync thread publishes its counters every 100 ms).\n\n\
         | asked/s | sent (messages) | send time (s) | sent/s | received by the sync thread | applied | applied % | last applied at (s) | **absorbed/s** | drops on director-2 | director-2 kernel UDP: datagrams in / RcvbufErrors | director-2 frame path (deltas) | director-2 sessions after | director-1 (master): received_conns / drops / sessions | both CPUs busy / steal % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        crate::absorb::BLASTER,
        c(&a["records"]),
    );
    for r in a["runs"].as_array().into_iter().flatten() {
        let asked = if r["rate_asked"] == 0 {
            "max".to_owned()
        } else {
            k(&r["rate_asked"])
        };
        if let Some(e) = r["error"].as_str() {
            let _ = writeln!(
                s,
                "| {asked} | failed: {} ||||||||||||||",
                e.replace(['|', '\n'], " ")
            );
            continue;
        }
        let b = &r["blast"];
        let _ = writeln!(
            s,
            "| {asked} | {} ({}) | {} | {} | {} | {} | {} | {} | **{}** | {} | {} / {} | {} | {} | {} / {} / {} | {} / {} |",
            c(&b["records"]),
            c(&b["messages"]),
            c(&b["seconds"]),
            k(&b["rate"]),
            c(&r["received"]),
            c(&r["applied"]),
            c(&r["applied_pct"]),
            c(&r["seconds_to_last_apply"]),
            k(&r["absorbed_per_s"]),
            obj(&r["dropped"]),
            c(&r["director2_udp"]["InDatagrams"]),
            c(&r["director2_udp"]["RcvbufErrors"]),
            {
                let mut p = obj(&r["director2_path"]);
                if r["link_drops"].as_object().is_some_and(|m| !m.is_empty()) {
                    p.push_str(&format!("; interfaces: {}", obj(&r["link_drops"])));
                }
                p
            },
            c(&r["director2_sessions"]),
            c(&r["director1_received_conns"]),
            obj(&r["director1_dropped"]),
            c(&r["director1_sessions"]),
            c(&r["cpu"]["busy_pct"]),
            c(&r["cpu"]["steal_pct"]),
        );
    }
    s.push('\n');
}

fn burst(rec: &Value, s: &mut String) {
    let b = &rec["pair"]["burst"];
    if b.is_null() {
        return;
    }
    if let Some(e) = b["error"].as_str() {
        let _ = writeln!(s, "## Backup vs master after a burst\n\nFailed: {e}\n");
        return;
    }
    let (ka, cl) = (&b["keepalive"], &b["close"]);
    let _ = write!(
        s,
        "## Backup vs master after a burst (namespace testbed)\n\n\
         The same pair, director-2 restarted first (empty). From the client namespace, at the same time: \
         `wrk -t 2 -c {} -d {}s` (keep-alive) and `wrk -t 1 -c {} -d {}s -H 'Connection: close'` through the VIP. \
         Half-way through the keep-alive burst the ESTABLISHED sessions of both directors are listed; {} s after \
         both ended all of them are (`lbctl -o json session list --limit 100000`): the master, the backup, the \
         master again. *Present* = the master's TCP sessions past SYN_RECV (LVS syncs nothing earlier), in the \
         same state in both of its listings, whose (client, VIP) the backup holds; *churned* = the master's \
         sessions that changed or went between its two listings (not counted).\n\n\
         | | keep-alive wrk | Connection: close wrk |\n|---|---|---|\n\
         | requests (req/s) | {} ({}) | {} ({}) |\n| errors | {} | {} |\n\n",
        c(&ka["connections"]),
        c(&ka["seconds"]),
        c(&cl["connections"]),
        c(&cl["seconds"]),
        c(&b["settle_s"]),
        c(&ka["wrk"]["requests"]),
        c(&ka["wrk"]["rps"]),
        c(&cl["wrk"]["requests"]),
        c(&cl["wrk"]["rps"]),
        c(&ka["wrk"]["errors"]),
        c(&cl["wrk"]["errors"]),
    );
    s.push_str("| when | master sessions (by state) | backup sessions (by state) | master's past SYN_RECV, stable | churned | present on the backup | **present %** | same state % | only on the backup | truncated |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (label, x) in [
        ("mid-burst, ESTABLISHED", &b["mid_burst_established"]),
        ("after the burst, all", &b["after"]),
    ] {
        if let Some(e) = x["error"].as_str() {
            let _ = writeln!(
                s,
                "| {label} | failed: {} |||||||||",
                e.replace(['|', '\n'], " ")
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {label} | {} ({}) | {} ({}) | {} | {} | {} | **{}** | {} | {} | {} |",
            c(&x["master"]["matched"]),
            obj(&x["master"]["by_state"]),
            c(&x["backup"]["matched"]),
            obj(&x["backup"]["by_state"]),
            c(&x["master_synced_states"]),
            c(&x["master_churned"]),
            c(&x["present"]),
            c(&x["present_pct"]),
            c(&x["same_state_pct"]),
            c(&x["backup_only"]),
            c(&x["truncated"]),
        );
    }
    let (m, bk) = (&b["master_sync"], &b["backup_sync"]);
    let _ = writeln!(
        s,
        "\nDuring the burst the master sent {} records in {} messages (send dropped {}, drops {}); the backup received {} and applied {} (drops {}). Both CPUs during the burst: busy {} %, steal {} %.\n",
        c(&m["sent_conns"]),
        c(&m["sent_messages"]),
        c(&m["send_dropped"]),
        obj(&m["dropped"]),
        c(&bk["received_conns"]),
        c(&bk["applied_conns"]),
        obj(&bk["dropped"]),
        c(&b["cpu_during_burst"]["busy_pct"]),
        c(&b["cpu_during_burst"]["steal_pct"]),
    );
}

/// The whole report.
pub fn markdown(rec: &Value) -> String {
    let m = &rec["machine"];
    let mut s = format!(
        "# Session sync: what it costs — {}\n\n{} · {} CPUs · kernel {} · hugepages {} · DPDK {} · commit {}\n\n\
         Command: `{}` (`make bench-sync`). {} s in all, {} s of it waiting for a quiet machine.\n\n",
        m["date"].as_str().unwrap_or("?"),
        m["cpu"].as_str().unwrap_or("?"),
        c(&m["cpus"]),
        m["kernel"].as_str().unwrap_or("?"),
        c(&m["hugepages"]),
        c(&m["dpdk"]),
        m["commit"].as_str().unwrap_or("?"),
        rec["command"].as_str().unwrap_or("lb-bench-sync"),
        c(&rec["elapsed_s"]),
        c(&rec["waited_for_quiet_s"]),
    );
    summary(rec, &mut s);
    cps(rec, &mut s);
    absorb(rec, &mut s);
    burst(rec, &mut s);
    if let Some(e) = rec["pair"]["error"].as_str() {
        let _ = writeln!(s, "Testbed pair failed: {e}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_targets_and_failures() {
        let rec = json!({
            "machine": { "date": "2026-12-02", "cpus": 2 },
            "cps": { "settings": { "rounds": 1 }, "summary": { "off": { "median": 500000.0 }, "on": { "median": 300000.0 }, "round_ratios": [0.6], "median_round_ratio": 0.6, "ratio_of_medians": 0.6 },
                     "runs": [{ "round": 1, "variant": "on", "error": "x|y" }] },
            "pair": { "absorb": { "records": 10, "runs": [{ "rate_asked": 0, "applied_pct": 99.5, "absorbed_per_s": 1234.0, "blast": { "rate": 2000.0 } }] },
                      "burst": { "after": { "present_pct": 100.0, "master_synced_states": 10 } } },
        });
        let md = markdown(&rec);
        assert!(md.contains("| **0.6** (median of 1 round ratios"), "{md}");
        assert!(md.contains("**not met**"), "{md}");
        assert!(md.contains("failed: x y"), "{md}");
        assert!(md.contains("**1.2k** records/s (asked max"), "{md}");
        assert!(md.contains("**100 %** of the master's 10"), "{md}");
    }
}
