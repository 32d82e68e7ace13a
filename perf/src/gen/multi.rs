//! Several generator lcores (`lb-pktgen --cpus`): one engine per queue pair of both ports, each
//! on a CPU of its own, each playing a disjoint share of the flows (its own slice of the client
//! addresses) at its share of the rates. A forwarder with N workers, worker `i` polling queue
//! `i` of each port, gets queue `i`'s share on worker `i`; the real servers the engine plays
//! answer on the queue the request came in on, so replies reach the worker that owns the
//! session (what `rte_flow` steering does on a NIC). The reports are summed into one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use dpdk::{Eal, LaunchHandle};
use serde_json::{json, Value};

use super::engine::Engine;
use super::{dut_mac, run, GenConfig, GenError};
use crate::flows::{FlowSet, IpRange};

/// Report keys taken from the first queue's report instead of summed: settings, the measured
/// window, latency (sampled on queue 0 only), and port-wide hardware counters (each queue's
/// report holds the whole port's).
const FIRST_ONLY: [&str; 15] = [
    "mode",
    "frame_size",
    "dut_mac",
    "tsc_hz",
    "seconds",
    "latency_ns",
    "connect_latency_ns",
    "handshake_latency_ns",
    "window_update_latency_ns",
    "mac",
    "hw_ipackets",
    "hw_opackets",
    "imissed",
    "ierrors",
    "oerrors",
];

/// Why a configuration cannot be split over queues.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("{queues} queues need at least {queues} client addresses (--src-ip {range} has {len})")]
    TooFewAddresses { queues: u64, range: IpRange, len: u64 },
    #[error("--flood and --track-half-open run on one queue (one CPU in --cpus)")]
    NotSplittable,
}

/// `cfg` for each of `queues` engines: the client addresses cut into consecutive slices, the
/// flow count, rates and concurrency shared out (the whole tuple space stays the whole of
/// each slice's).
pub fn split(cfg: &GenConfig, queues: u64) -> Result<Vec<GenConfig>, SplitError> {
    if queues <= 1 {
        return Ok(vec![cfg.clone()]);
    }
    if cfg.flood.is_some() || cfg.track_half_open {
        return Err(SplitError::NotSplittable);
    }
    let f = cfg.flows;
    let len = f.src_ip.len();
    if len < queues {
        return Err(SplitError::TooFewAddresses { queues, range: f.src_ip, len });
    }
    let whole = f.count >= f.space();
    let share = |total: u64, q: u64| total * (q + 1) / queues - total * q / queues;
    Ok((0..queues)
        .map(|q| {
            let ips = IpRange { first: f.src_ip.nth(len * q / queues), last: f.src_ip.nth(len * (q + 1) / queues - 1) };
            let count = if whole { 0 } else { share(f.count, q).max(1) };
            let mut c = cfg.clone();
            c.flows = FlowSet::new(ips, f.src_port, f.dst_ip, f.dst_port, count);
            c.rate_pps = if cfg.rate_pps == 0 { 0 } else { share(cfg.rate_pps, q).max(1) };
            c.open_rate = if cfg.open_rate == 0 { 0 } else { share(cfg.open_rate, q).max(1) };
            c.concurrency = share(cfg.concurrency, q).max(1);
            c
        })
        .collect())
}

/// Adds `other`'s numbers into `into`, key by key (see [`FIRST_ONLY`]); anything else keeps
/// `into`'s value.
pub fn merge(into: &mut Value, other: &Value) {
    match (into, other) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if FIRST_ONLY.contains(&k.as_str()) {
                    continue;
                }
                match a.get_mut(k) {
                    Some(x) => merge(x, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (a @ Value::Number(_), Value::Number(b)) => {
            *a = match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => json!(x + y),
                _ => json!(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
            };
        }
        _ => {}
    }
}

/// Runs `cfg` on every engine (`first` on this, the main lcore; `rest` on the worker lcores in
/// order, where they are dropped when done) and returns the summed report with each queue's
/// headline figures under `queues`.
pub fn run_all(eal: &Eal, first: &mut Engine, rest: Vec<Engine>, cfg: &GenConfig, stop: &Arc<AtomicBool>) -> Result<Value, GenError> {
    let stop_fn = {
        let stop = Arc::clone(stop);
        move || stop.load(Ordering::Relaxed)
    };
    if rest.is_empty() {
        return run(first, cfg, &stop_fn);
    }
    let n = u64::try_from(rest.len() + 1).unwrap_or(u64::MAX);
    let mut cfgs = split(cfg, n)?;
    // One ARP exchange for everyone: the other engines start with the forwarder's MAC known.
    let mac = dut_mac(first, cfg, &stop_fn)?;
    for c in &mut cfgs {
        c.dut_mac = Some(mac);
    }
    let lcores = dpdk::worker_lcores(eal);
    if lcores.len() < rest.len() {
        return Err(GenError::Lcores(format!("{} worker lcores for {} queues", lcores.len(), rest.len())));
    }
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    let queues = rest.len();
    for (i, (mut e, lcore)) in rest.into_iter().zip(lcores).enumerate() {
        let c = cfgs[i + 1].clone();
        let (tx, flag) = (tx.clone(), Arc::clone(stop));
        let job = move || {
            let r = run(&mut e, &c, &move || flag.load(Ordering::Relaxed)).map_err(|err| err.to_string());
            let ok = r.is_ok();
            let _ = tx.send((i, r));
            i32::from(!ok)
        };
        match LaunchHandle::launch(eal, lcore, job) {
            Ok(h) => handles.push(h),
            Err(err) => {
                stop.store(true, Ordering::Relaxed);
                return Err(err.into());
            }
        }
    }
    drop(tx);
    let own = run(first, &cfgs[0], &stop_fn);
    if own.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    for h in handles {
        h.wait();
    }
    let mut reports = vec![None; queues];
    for (i, r) in rx {
        reports[i] = Some(r);
    }
    let mut total = own?;
    let mut per_queue = vec![headline(&total)];
    for r in reports {
        let r = r.unwrap_or_else(|| Err("an lcore did not report".into())).map_err(GenError::Lcores)?;
        per_queue.push(headline(&r));
        merge(&mut total, &r);
    }
    total["queues"] = Value::Array(per_queue);
    Ok(total)
}

/// A queue's figures for the report's `queues` list.
fn headline(r: &Value) -> Value {
    json!({ "flows": r["flows"], "rx_pps": r["rx_pps"], "tx_pps": r["tx_pps"], "cps": r["cps"] })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::flows::PortRange;
    use crate::gen::Mode;

    fn cfg(flows: u64, src: &str) -> GenConfig {
        let ip = |s: &str| s.parse::<IpRange>().unwrap();
        GenConfig {
            mode: Mode::Udp,
            flows: FlowSet::new(ip(src), PortRange { first: 1024, last: 65535 }, ip("10.99.1.100"), PortRange { first: 80, last: 80 }, flows),
            server_ips: ip("10.99.2.11-10.99.2.14"),
            frame_size: 64,
            rate_pps: 1000,
            open_rate: 0,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            dut_mac: None,
            req_size: 16,
            resp_size: 64,
            concurrency: 2048,
            udp_checksum: false,
            skip_open: false,
            echo: false,
            link_timeout: Duration::from_secs(1),
            flood: None,
            track_half_open: false,
        }
    }

    #[test]
    fn queues_get_disjoint_address_slices_and_shares_that_add_up() {
        let c = cfg(10_001, "10.99.1.10-10.99.1.73");
        let parts = split(&c, 3).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(|p| p.flows.count).sum::<u64>(), 10_001);
        assert_eq!(parts.iter().map(|p| p.rate_pps).sum::<u64>(), 1000);
        assert_eq!(parts.iter().map(|p| p.concurrency).sum::<u64>(), 2048);
        assert_eq!(parts.iter().map(|p| p.flows.src_ip.len()).sum::<u64>(), 64);
        assert_eq!(parts[0].flows.src_ip.first, c.flows.src_ip.first);
        assert_eq!(parts[2].flows.src_ip.last, c.flows.src_ip.last);
        for w in parts.windows(2) {
            assert_eq!(u32::from(w[0].flows.src_ip.last) + 1, u32::from(w[1].flows.src_ip.first), "slices touch, never overlap");
        }
        assert!(parts.iter().all(|p| p.open_rate == 0), "no limit stays no limit");
        // The whole tuple space (conn mode) stays the whole of each slice.
        let whole = split(&cfg(0, "10.99.1.10-10.99.1.73"), 2).unwrap();
        assert!(whole.iter().all(|p| p.flows.count == p.flows.space()));
    }

    #[test]
    fn what_cannot_be_split_is_refused() {
        let e = split(&cfg(100, "10.99.1.10-10.99.1.11"), 3).unwrap_err();
        assert_eq!(e.to_string(), "3 queues need at least 3 client addresses (--src-ip 10.99.1.10-10.99.1.11 has 2)");
        let mut c = cfg(100, "10.99.1.10-10.99.1.73");
        c.track_half_open = true;
        assert_eq!(split(&c, 2).unwrap_err(), SplitError::NotSplittable);
        assert_eq!(split(&c, 1).unwrap().len(), 1, "one queue runs anything");
    }

    #[test]
    fn reports_sum_counts_and_keep_the_first_queues_settings() {
        let mut a = json!({"mode": "udp", "seconds": 2.0, "rx_pps": 100.0, "tx": 5, "latency_ns": {"p50": 10.0},
                           "ports": {"client": {"mac": "02:00:00:00:00:01", "tx": 5, "hw_opackets": 50}}});
        let b = json!({"mode": "udp", "seconds": 2.1, "rx_pps": 50.5, "tx": 7, "latency_ns": {"p50": 99.0},
                       "ports": {"client": {"mac": "02:00:00:00:00:01", "tx": 7, "hw_opackets": 50}}, "extra": 1});
        merge(&mut a, &b);
        assert_eq!(a["rx_pps"], json!(150.5));
        assert_eq!(a["tx"], json!(12));
        assert_eq!(a["seconds"], json!(2.0));
        assert_eq!(a["latency_ns"]["p50"], json!(10.0));
        assert_eq!(a["ports"]["client"]["tx"], json!(12));
        assert_eq!(a["ports"]["client"]["hw_opackets"], json!(50), "port-wide counters are not summed");
        assert_eq!(a["extra"], json!(1));
    }
}
