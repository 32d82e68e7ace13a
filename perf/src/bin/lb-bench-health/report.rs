//! The markdown table of a `lb-bench-health` record.

use serde_json::Value;

/// The markdown report.
pub fn markdown(rec: &Value) -> String {
    let m = &rec["machine"];
    let mut s = format!(
        "# lb-slowpath health checks at scale — {}\n\n{} · {} CPUs · kernel {} · commit {}\n\n\
         Command: `{}`. {} real servers ({} virtual servers), `delay_loop 1`, `connect_timeout 1`, \
         `retry 1`, `delay_before_retry 1`, `alpha`. lbd (net_ring ports, --no-huge, \
         idle_sleep_us 1000) and lb-slowpath (release) in one netns; one nginx answers every \
         backend address in another (AnyIP `local 10.200.0.0/16 dev lo`), joined by a veth. \
         CPU = (utime+stime) of the process over the window ÷ wall time (100 % = one core). \
         Probes/s = TcpPassiveOpens in the backends' netns over the window.\n\n",
        m["date"].as_str().unwrap_or("?"),
        m["cpu"].as_str().unwrap_or("?"),
        m["cpus"],
        m["kernel"].as_str().unwrap_or("?"),
        m["commit"].as_str().unwrap_or("?"),
        rec["command"].as_str().unwrap_or("make bench-health"),
        rec["servers"],
        rec["virtual_servers"],
    );
    s.push_str("| check | lb-slowpath CPU (% of one core) | RSS max / HWM (MiB) | probes/s | HTTP req/s | connect failures/s | downs in window | all up after (s) | lb-slowpath run-queue wait (% of wall) | probes in each second of the window | lbd CPU % | nginx CPU % | machine busy in window (% of all CPUs) | others' CPU before (% of all) | dir netns TCP sockets at the end |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mib = |v: &Value| {
        v.as_f64()
            .map_or("?".into(), |k| format!("{:.1}", k / 1024.0))
    };
    let variants = rec["variants"].as_array().cloned().unwrap_or_default();
    for v in &variants {
        if let Some(e) = v["error"].as_str() {
            s.push_str(&format!(
                "| {} | failed: {} |||||||||||||\n",
                v["check"].as_str().unwrap_or("?"),
                e.replace('|', "/").replace('\n', " ")
            ));
            continue;
        }
        s.push_str(&format!(
            "| {} | **{}** | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            v["check"].as_str().unwrap_or("?"),
            v["slowpath_cpu_pct_of_one_core"],
            mib(&v["slowpath_rss_max_kb"]),
            mib(&v["slowpath_hwm_kb"]),
            v["probes_per_s"],
            v.get("http_requests_per_s")
                .map_or("—".into(), ToString::to_string),
            v["connect_failures_per_s_dir"],
            v["downs_in_window"],
            v["all_up_s"],
            v["slowpath_runqueue_wait_pct"],
            v["probes_each_second"]
                .as_array()
                .map(|a| a.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            v["lbd_cpu_pct"],
            v["nginx_cpu_pct"],
            v["machine_busy_pct_window"],
            v["others_cpu_pct_before"],
            v["dir_sockstat_last"].as_str().unwrap_or("?"),
        ));
    }
    s.push_str("\n## Lag: backend dies → lbd marks it down\n\n\
        `refuse`: `ip route add local <rs>/32 dev lo` in the director's netns, where nothing \
        listens on :80 (every SYN is answered with a RST: \"connection refused\" at once). `drop`: \
        `ip route add blackhole <rs>/32 table local` in the backends' netns (the SYN is dropped: \
        the connect times out after `connect_timeout`). Time from the route being in place to \
        the line in lb-slowpath's / lbd's log; \"up again\": from the route's removal to lbd's \
        up line. keepalived's bound: (retry+1) × (connect_timeout + delay_before_retry) + delay_loop = 5 s.\n\n\
        | check | mode | address | lb-slowpath down (ms) | lbd down (ms) | up again in lbd after revival (ms) |\n|---|---|---|---|---|---|\n");
    for v in &variants {
        for l in v["lag"].as_array().cloned().unwrap_or_default() {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                v["check"].as_str().unwrap_or("?"),
                l["mode"].as_str().unwrap_or("?"),
                l["addr"].as_str().unwrap_or("?"),
                l["down_slowpath_ms"],
                l["down_lbd_ms"],
                l["up_again_lbd_ms"],
            ));
        }
    }
    for v in &variants {
        if let Some(p) = v["slowpath_profile"].as_array() {
            s.push_str(&format!(
                "\n## perf profile of lb-slowpath, {} (5 s, self time)\n\n```\n",
                v["check"].as_str().unwrap_or("?")
            ));
            for l in p {
                s.push_str(l.as_str().unwrap_or_default());
                s.push('\n');
            }
            s.push_str("```\n");
        }
    }
    if let Some(n) = rec["notes"].as_array() {
        s.push_str("\n## Notes\n\n");
        for x in n {
            s.push_str(&format!("- {}\n", x.as_str().unwrap_or_default()));
        }
    }
    s
}
