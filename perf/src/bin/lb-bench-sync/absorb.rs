//! Records per second a backup absorbs: `lb-sync-blast` in a backend's namespace multicasts N
//! FNAT records at a given rate, as a master would; director-2 (restarted before each rate, so
//! it starts empty) is polled for received / applied / dropped records, and every counter on
//! the way (interfaces, packet sockets, backlog, lbd's port and TAP, the UDP socket) is diffed
//! to tell where records that never arrived went.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use lb_perf::bench::procs::Result;
use lb_testbed::Testbed;
use serde_json::{json, Value};

use crate::host::CpuSample;
use crate::pairbed::{
    dropped_delta, dropped_total, failed, fresh_backup, lbctl, node, sessions_of, stats_of, u,
    PairOptions, LADDRS,
};

/// The backend whose namespace plays the master in the absorption runs.
pub const BLASTER: &str = "rs-10.70.2.12";
const BLASTER_ADDR: &str = "10.70.2.12";

/// The kernel's UDP counters in `node`'s namespace.
fn udp_snmp(tb: &Testbed, node: &str) -> BTreeMap<String, u64> {
    let text = tb
        .exec(node, ["cat", "/proc/net/snmp"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
    let mut out = BTreeMap::new();
    if let [names, values] = rows.as_slice() {
        for (k, v) in names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
        {
            if let Ok(v) = v.parse() {
                out.insert(k.to_owned(), v);
            }
        }
    }
    out
}

fn delta(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> Value {
    Value::Object(
        b.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(v.saturating_sub(a.get(k).copied().unwrap_or(0))),
                )
            })
            .collect(),
    )
}

/// Where frames can be lost on their way to a director's sync socket, as counters to diff:
/// lbd's LAN port (af_packet ring: imissed), what lbd wrote into the LAN TAP, lbd's drops,
/// and the kernel side of the TAP.
fn path_counters(tb: &Testbed, n: u8) -> BTreeMap<String, u64> {
    let st = stats_of(tb, n);
    let mut out = BTreeMap::new();
    for p in st["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "lan")
    {
        for k in ["ipackets", "imissed", "ierrors", "rx_nombuf"] {
            out.insert(format!("lbd_lan_{k}"), p[k].as_u64().unwrap_or(0));
        }
        for k in ["opackets", "oerrors"] {
            out.insert(
                format!("lbd_lan_tap_{k}"),
                p["kernel_tap"][k].as_u64().unwrap_or(0),
            );
        }
    }
    let t = &st["totals"];
    out.insert("lbd_to_kernel".into(), t["to_kernel"].as_u64().unwrap_or(0));
    for (k, v) in t["drops"].as_object().into_iter().flatten() {
        out.insert(format!("lbd_drop_{k}"), v.as_u64().unwrap_or(0));
    }
    // Packet sockets (lbd's af_packet ports): drops when a ring is full (`d` in skmem).
    let ss = tb
        .exec(node(n), ["ss", "-0", "-m", "-n"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.insert("packet_socket_drops".into(), skmem_drops(&ss));
    // The backlog queues of both CPUs (global: every namespace).
    out.insert("softnet_dropped".into(), softnet_dropped());
    let ip = tb
        .exec(node(n), ["ip", "-j", "-s", "link", "show", "tap-lan"])
        .map(|o| o.stdout)
        .unwrap_or_default();
    if let Some(l) = serde_json::from_slice::<Value>(&ip)
        .ok()
        .as_ref()
        .and_then(|v| v.get(0))
    {
        for k in ["packets", "dropped", "errors"] {
            out.insert(
                format!("tap_lan_kernel_rx_{k}"),
                l["stats64"]["rx"][k].as_u64().unwrap_or(0),
            );
        }
    }
    out
}

/// Dropped-frame counters of every interface in the namespaces a sync message crosses (the
/// blaster's, the LAN switch's, director-2's), by `node/ifname/rx|tx`.
fn link_drops(tb: &Testbed) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for n in [BLASTER, "lan", "director-2"] {
        let ip = tb
            .exec(n, ["ip", "-j", "-s", "link", "show"])
            .map(|o| o.stdout)
            .unwrap_or_default();
        for l in serde_json::from_slice::<Value>(&ip)
            .ok()
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = l["ifname"].as_str().unwrap_or("?");
            for dir in ["rx", "tx"] {
                out.insert(
                    format!("{n}/{name}/{dir}_dropped"),
                    l["stats64"][dir]["dropped"].as_u64().unwrap_or(0),
                );
            }
        }
    }
    out
}

/// The sum of the `d` (dropped) fields of `ss -m` output.
fn skmem_drops(ss: &str) -> u64 {
    ss.split("skmem:(")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .flat_map(|fields| fields.split(','))
        .filter_map(|f| f.strip_prefix('d').and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

/// Column 2 of /proc/net/softnet_stat (backlog drops), summed over the CPUs.
fn softnet_dropped() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|x| u64::from_str_radix(x, 16).ok())
        })
        .sum()
}

/// The nonzero differences.
fn nonzero_delta(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> Value {
    Value::Object(
        b.iter()
            .filter_map(|(k, v)| {
                let d = v.saturating_sub(a.get(k).copied().unwrap_or(0));
                (d > 0).then(|| (k.clone(), json!(d)))
            })
            .collect(),
    )
}

/// One absorption run at `rate` records per second into a fresh director-2.
pub fn one(tb: &mut Testbed, o: &PairOptions, rate: u64) -> Result<Value> {
    fresh_backup(tb, o)?;
    let (d1a, d2a) = (lbctl(tb, o, 1, &["sync"]), lbctl(tb, o, 2, &["sync"]));
    let snmp_a = udp_snmp(tb, "director-2");
    let path_a = path_counters(tb, 2);
    let links_a = link_drops(tb);
    let cpu_a = CpuSample::now();
    let t0 = Instant::now();
    let (records, rate_s) = (o.records.to_string(), rate.to_string());
    let mut child = tb.spawn(
        BLASTER,
        [
            o.blast.display().to_string().as_str(),
            "--source",
            BLASTER_ADDR,
            "--syncid",
            "42",
            "--records",
            &records,
            "--rate",
            &rate_s,
            "--vip",
            "10.70.1.100:80",
            "--rs",
            "10.70.2.11:80",
            "--laddr",
            &LADDRS.join(","),
        ],
    )?;
    // Poll director-2 until every record is accounted for, or nothing moved for 1.5 s after
    // the blaster ended (bounded).
    let (a0, r0, x0) = (
        u(&d2a, "applied_conns"),
        u(&d2a, "received_conns"),
        dropped_total(&d2a),
    );
    let mut samples: Vec<(f64, u64, u64, u64)> = Vec::new();
    let mut blast_end: Option<f64> = None;
    let mut out = String::new();
    let mut last_change = 0.0;
    loop {
        let s = lbctl(tb, o, 2, &["sync"]);
        let t = t0.elapsed().as_secs_f64();
        let cur = (
            u(&s, "applied_conns").saturating_sub(a0),
            u(&s, "received_conns").saturating_sub(r0),
            dropped_total(&s).saturating_sub(x0),
        );
        if !s.is_null() {
            if samples.last().is_none_or(|p| (p.1, p.2, p.3) != cur) {
                last_change = t;
            }
            samples.push((t, cur.0, cur.1, cur.2));
        }
        if blast_end.is_none() && child.try_wait().ok().flatten().is_some() {
            blast_end = Some(t);
            if let Some(mut so) = child.stdout.take() {
                let _ = so.read_to_string(&mut out);
            }
        }
        if let Some(end) = blast_end {
            if cur.0 + cur.2 >= o.records || t - last_change.max(end) > 1.5 {
                break;
            }
        }
        if t > 120.0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!(
                "absorption at {rate}/s did not settle within 120 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = cpu_a.shares(&CpuSample::now());
    let blast: Value = serde_json::from_str(out.trim())
        .map_err(|e| failed(format!("lb-sync-blast output {out:?}: {e}")))?;
    // The sync thread publishes its own counters (received, its drops) every 100 ms; the
    // workers' (applied, theirs) are live.
    std::thread::sleep(Duration::from_millis(300));
    let (d1b, d2b) = (lbctl(tb, o, 1, &["sync"]), lbctl(tb, o, 2, &["sync"]));
    let sent = u(&blast, "records");
    let last = samples.last().copied().unwrap_or_default();
    let applied = last.1;
    let received = u(&d2b, "received_conns").saturating_sub(r0);
    // When the applied count reached its final value.
    let t_done = samples.iter().find(|s| s.1 >= applied).map_or(0.0, |s| s.0);
    let absorbed = if t_done > 0.0 {
        applied as f64 / t_done
    } else {
        0.0
    };
    let pct = if sent > 0 {
        100.0 * applied as f64 / sent as f64
    } else {
        0.0
    };
    Ok(json!({
        "rate_asked": rate,
        "blast": blast,
        "received": received,
        "applied": applied,
        "applied_pct": (pct * 100.0).round() / 100.0,
        "dropped": dropped_delta(&d2a, &d2b),
        "seconds_to_last_apply": (t_done * 1000.0).round() / 1000.0,
        "absorbed_per_s": absorbed.round(),
        "director2_sessions": sessions_of(tb, 2),
        "director2_udp": delta(&snmp_a, &udp_snmp(tb, "director-2")),
        "director2_path": nonzero_delta(&path_a, &path_counters(tb, 2)),
        "link_drops": nonzero_delta(&links_a, &link_drops(tb)),
        "director1_received_conns": u(&d1b, "received_conns").saturating_sub(u(&d1a, "received_conns")),
        "director1_dropped": dropped_delta(&d1a, &d1b),
        "director1_sessions": sessions_of(tb, 1),
        "cpu": cpu,
        "others_running_after": crate::host::others_heavy(),
        "samples": samples.iter().map(|s| json!([(s.0 * 1000.0).round() / 1000.0, s.1, s.2, s.3])).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skmem_drops_are_summed() {
        let ss = "p_0003 0 0 lan0 * users:((\"lbd\"))\n\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d17)\n\
                  p_0003 0 0 wan0 *\n\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d3)\n";
        assert_eq!(skmem_drops(ss), 20);
        assert_eq!(skmem_drops(""), 0);
    }
}
