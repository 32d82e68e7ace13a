//! Backup vs master after a burst: wrk through the VIP (keep-alive connections, and a
//! Connection: close burst beside them); mid-way and after it, the sessions of director-1
//! (master) and director-2 (backup) are listed and compared tuple by tuple.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lb_perf::bench::procs::Result;
use lb_testbed::Testbed;
use serde_json::{json, Value};

use crate::host::CpuSample;
use crate::pairbed::{dropped_delta, finish, fresh_backup, lbctl, lbctl_result, u, PairOptions};

const VIP: &str = "10.70.1.100";
/// Largest session listing lbd serves.
const LIST_LIMIT: &str = "100000";

/// Sessions of director `n` by (client, vip) with their state; `matched` as lbd counts them.
fn session_map(
    tb: &Testbed,
    o: &PairOptions,
    n: u8,
    state: Option<&str>,
) -> std::result::Result<(HashMap<String, String>, u64), String> {
    let mut args = vec!["session", "list", "--limit", LIST_LIMIT];
    if let Some(s) = state {
        args.extend(["--state", s]);
    }
    let v = lbctl_result(tb, o, n, &args)?;
    let map = v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["protocol"] == "TCP")
        .map(|s| {
            (
                format!(
                    "{}>{}",
                    s["client"].as_str().unwrap_or(""),
                    s["vip"].as_str().unwrap_or("")
                ),
                s["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    Ok((map, v["matched"].as_u64().unwrap_or(0)))
}

/// Master vs backup, tuple by tuple: what share of the master's synced-state sessions the
/// backup holds. The master is listed before and after the backup; only sessions in both of
/// its listings (in the same state) count, so that connections opened or closed while the
/// listings ran (a Connection: close burst churns) do not count as missing.
fn compare(tb: &Testbed, o: &PairOptions, state: Option<&str>) -> Value {
    let (m0, b, m1) = (
        session_map(tb, o, 1, state),
        session_map(tb, o, 2, state),
        session_map(tb, o, 1, state),
    );
    let ((m0, m_matched), (b, b_matched), (m1, _)) = match (m0, b, m1) {
        (Ok(m0), Ok(b), Ok(m1)) => (m0, b, m1),
        (m0, b, m1) => {
            return json!({ "error": format!("listing sessions: master {:?} / backup {:?} / master {:?}", m0.err(), b.err(), m1.err()) })
        }
    };
    let truncated = m_matched > m0.len() as u64 || b_matched > b.len() as u64;
    let churned = m0.iter().filter(|(k, s)| m1.get(*k) != Some(s)).count();
    let m: HashMap<String, String> = m0
        .into_iter()
        .filter(|(k, s)| m1.get(k) == Some(s))
        .collect();
    let by_state = |x: &HashMap<String, String>| {
        let mut c: BTreeMap<String, u64> = BTreeMap::new();
        for s in x.values() {
            *c.entry(s.clone()).or_default() += 1;
        }
        c
    };
    let synced: Vec<(&String, &String)> =
        m.iter().filter(|(_, s)| s.as_str() != "SYN_RECV").collect();
    let present = synced.iter().filter(|(k, _)| b.contains_key(*k)).count();
    let same_state = synced.iter().filter(|(k, s)| b.get(*k) == Some(s)).count();
    let pct = |n: usize| {
        if synced.is_empty() {
            Value::Null
        } else {
            json!((100_000.0 * n as f64 / synced.len() as f64).round() / 1000.0)
        }
    };
    json!({
        "master": { "matched": m_matched, "stable": m.len(), "by_state": by_state(&m) },
        "backup": { "matched": b_matched, "listed": b.len(), "by_state": by_state(&b) },
        "master_synced_states": synced.len(),
        "present": present,
        "present_pct": pct(present),
        "same_state_pct": pct(same_state),
        "master_churned": churned,
        "backup_only": b.keys().filter(|k| !m.contains_key(*k)).count(),
        "truncated": truncated,
    })
}

/// The burst: keep-alive wrk plus a Connection: close wrk through the VIP, compared mid-way
/// (ESTABLISHED) and after it settled (all states).
pub fn run(tb: &mut Testbed, o: &PairOptions) -> Result<Value> {
    fresh_backup(tb, o)?;
    for kv in [
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=1",
    ] {
        tb.exec_ok("client", ["sysctl", "-q", "-w", kv])?;
    }
    tb.exec_ok(
        "client",
        [
            "curl",
            "-sS",
            "-m",
            "5",
            "-o",
            "/dev/null",
            &format!("http://{VIP}/"),
        ],
    )?;
    // Let the sync thread publish its counters (every 100 ms) before they are read.
    std::thread::sleep(Duration::from_millis(300));
    let (d1a, d2a) = (lbctl(tb, o, 1, &["sync"]), lbctl(tb, o, 2, &["sync"]));
    let url = format!("http://{VIP}/");
    let cpu_a = CpuSample::now();
    let ka = tb.spawn(
        "client",
        [
            "wrk",
            "-t",
            "2",
            "-c",
            &o.keepalive_conns.to_string(),
            "-d",
            &format!("{}s", o.burst_secs),
            "--timeout",
            "5s",
            &url,
        ],
    )?;
    let close = (o.close_conns > 0)
        .then(|| {
            tb.spawn(
                "client",
                [
                    "wrk",
                    "-t",
                    "1",
                    "-c",
                    &o.close_conns.to_string(),
                    "-d",
                    &format!("{}s", o.close_secs),
                    "--timeout",
                    "5s",
                    "-H",
                    "Connection: close",
                    &url,
                ],
            )
        })
        .transpose()?;
    std::thread::sleep(Duration::from_secs_f64(f64::from(o.burst_secs) / 2.0));
    let mid = compare(tb, o, Some("ESTABLISHED"));
    let limit = Duration::from_secs(u64::from(o.burst_secs.max(o.close_secs)) + 30);
    let ka_out = finish(ka, limit);
    let close_out = close.map(|c| finish(c, limit)).unwrap_or_default();
    let cpu = cpu_a.shares(&CpuSample::now());
    std::thread::sleep(o.settle);
    let after = compare(tb, o, None);
    std::thread::sleep(Duration::from_millis(300));
    let (d1b, d2b) = (lbctl(tb, o, 1, &["sync"]), lbctl(tb, o, 2, &["sync"]));
    let wrk = |t: &str| {
        let mut v = lb_perf::bench::wrk::parse_wrk(t);
        v["requests"] = json!(t
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok()));
        v
    };
    Ok(json!({
        "keepalive": { "connections": o.keepalive_conns, "seconds": o.burst_secs, "wrk": wrk(&ka_out) },
        "close": { "connections": o.close_conns, "seconds": o.close_secs, "wrk": wrk(&close_out) },
        "settle_s": o.settle.as_secs_f64(),
        "mid_burst_established": mid,
        "after": after,
        "master_sync": {
            "sent_messages": u(&d1b, "sent_messages").saturating_sub(u(&d1a, "sent_messages")),
            "sent_conns": u(&d1b, "sent_conns").saturating_sub(u(&d1a, "sent_conns")),
            "send_dropped": u(&d1b, "send_dropped").saturating_sub(u(&d1a, "send_dropped")),
            "dropped": dropped_delta(&d1a, &d1b),
        },
        "backup_sync": {
            "received_conns": u(&d2b, "received_conns").saturating_sub(u(&d2a, "received_conns")),
            "applied_conns": u(&d2b, "applied_conns").saturating_sub(u(&d2a, "applied_conns")),
            "dropped": dropped_delta(&d2a, &d2b),
        },
        "cpu_during_burst": cpu,
        "others_running_after": crate::host::others_heavy(),
    }))
}
