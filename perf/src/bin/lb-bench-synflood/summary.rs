//! Medians per variant and the ratios the bench is about: real connections per second under a
//! flood ÷ without (per round and of the medians), with the SYN proxy ÷ without it.

use serde_json::{json, Value};

use crate::host::median;
use crate::runs::{Legit, Variant};

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Median, min, max and count of `xs` (null when empty).
pub fn stats(xs: &[f64]) -> Value {
    match median(xs) {
        None => Value::Null,
        Some(m) => json!({
            "median": m.round(),
            "min": xs.iter().copied().fold(f64::INFINITY, f64::min).round(),
            "max": xs.iter().copied().fold(0.0, f64::max).round(),
            "runs": xs.len(),
        }),
    }
}

fn ok_runs<'a>(runs: &'a [Value], key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    runs.iter()
        .filter(move |r| r["variant"] == key && r["error"].is_null())
}

fn values(runs: &[Value], key: &str, get: impl Fn(&Value) -> Option<f64>) -> Vec<f64> {
    ok_runs(runs, key).filter_map(get).collect()
}

fn cps(r: &Value) -> Option<f64> {
    r["cps"].as_f64()
}

/// Per-round ratios of `key` over `base` (same round), their median, and the ratio of the
/// medians.
fn ratio(runs: &[Value], key: &str, base: &str, rounds: usize) -> Value {
    let per_round: Vec<f64> = (1..=rounds)
        .filter_map(|round| {
            let get = |k: &str| ok_runs(runs, k).find(|r| r["round"] == round).and_then(cps);
            let (a, b) = (get(key)?, get(base)?);
            (b > 0.0).then_some(a / b)
        })
        .collect();
    let (a, b) = (
        median(&values(runs, key, cps)),
        median(&values(runs, base, cps)),
    );
    json!({
        "of": key, "over": base,
        "round_ratios": per_round.iter().map(|x| r3(*x)).collect::<Vec<_>>(),
        "median_round_ratio": median(&per_round).map(r3),
        "ratio_of_medians": match (a, b) { (Some(a), Some(b)) if b > 0.0 => json!(r3(a / b)), _ => Value::Null },
    })
}

/// The summary of all runs.
pub fn summarize(runs: &[Value], variants: &[Variant], rounds: usize) -> Value {
    let mut per = serde_json::Map::new();
    for v in variants {
        let k = v.key();
        let f = |p: &dyn Fn(&Value) -> Option<f64>| stats(&values(runs, &k, p));
        let max_of = |p: &dyn Fn(&Value) -> Option<u64>| ok_runs(runs, &k).filter_map(p).max();
        let sum_of =
            |p: &dyn Fn(&Value) -> Option<u64>| ok_runs(runs, &k).filter_map(p).sum::<u64>();
        per.insert(
            k.clone(),
            json!({
                "cps": f(&cps),
                "lbd_cookies_per_s": f(&|r| r["lbd_window"]["synproxy_syn_cookies"]["worker0_per_s"].as_f64()),
                "lbd_accepted_per_s": f(&|r| r["lbd_window"]["synproxy_accepted"]["worker0_per_s"].as_f64()),
                "flood_sent_per_s": f(&|r| r["flood"]["sent_per_s"].as_f64()),
                "flood_refused_per_s": f(&|r| r["flood"]["refused_per_s"].as_f64()),
                "flood_synacks_per_s": f(&|r| r["flood"]["synacks_per_s"].as_f64()),
                "handshake_p50_ns": f(&|r| r["handshake_latency_ns"]["p50"].as_f64()),
                "handshake_p99_ns": f(&|r| r["handshake_latency_ns"]["p99"].as_f64()),
                "window_update_p50_ns": f(&|r| r["window_update_latency_ns"]["p50"].as_f64()),
                "window_update_p99_ns": f(&|r| r["window_update_latency_ns"]["p99"].as_f64()),
                "connect_p50_ns": f(&|r| r["connect_latency_ns"]["p50"].as_f64()),
                "connect_p99_ns": f(&|r| r["connect_latency_ns"]["p99"].as_f64()),
                "half_open_at_end_max": max_of(&|r| r["server_half_open"]["at_end"].as_u64()),
                "half_open_peak_max": max_of(&|r| r["server_half_open"]["peak"].as_u64()),
                "flood_seen_at_servers_sum": sum_of(&|r| r["totals"]["srv_flood_seen"].as_u64()),
                "lost_sum": sum_of(&|r| r["totals"]["lost"].as_u64()),
                "resets_sum": sum_of(&|r| r["totals"]["resets"].as_u64()),
                "errors": runs.iter().filter(|r| r["variant"] == k.as_str() && !r["error"].is_null()).count(),
            }),
        );
    }
    let mut under_flood = Vec::new();
    for v in variants {
        if let Some(b) = v.baseline() {
            if variants.contains(&b) {
                under_flood.push(ratio(runs, &v.key(), &b.key(), rounds));
            }
        }
    }
    let mut proxy_cost = Vec::new();
    for v in variants.iter().filter(|v| v.proxy && v.flood.is_none()) {
        let off = Variant { proxy: false, ..*v };
        if v.legit != Legit::None && variants.contains(&off) {
            proxy_cost.push(ratio(runs, &v.key(), &off.key(), rounds));
        }
    }
    json!({
        "variants": per,
        "under_flood_over_without": under_flood,
        "proxy_on_over_off": proxy_cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(key: &str, round: u64, cps: f64) -> Value {
        json!({"variant": key, "round": round, "cps": cps,
               "lbd_window": {"synproxy_syn_cookies": {"worker0_per_s": 1000.0}},
               "server_half_open": {"at_end": round, "peak": 5}, "totals": {"srv_flood_seen": 0, "lost": 1}})
    }

    #[test]
    fn ratios_per_round_and_of_medians() {
        let on = Variant {
            proxy: true,
            legit: Legit::Max,
            flood: None,
        };
        let flood = Variant {
            flood: Some(0),
            ..on
        };
        let off = Variant { proxy: false, ..on };
        let runs = vec![
            run("on", 1, 100.0),
            run("on_flood_max", 1, 90.0),
            run("off", 1, 200.0),
            run("on", 2, 110.0),
            run("on_flood_max", 2, 55.0),
            run("off", 2, 220.0),
            json!({"variant": "on_flood_max", "round": 3, "error": "lbd died"}),
            run("on", 3, 105.0),
        ];
        let s = summarize(&runs, &[off, on, flood], 3);
        let u = &s["under_flood_over_without"][0];
        assert_eq!(
            (u["of"].as_str(), u["over"].as_str()),
            (Some("on_flood_max"), Some("on"))
        );
        assert_eq!(u["round_ratios"], json!([0.9, 0.5]));
        assert_eq!(u["median_round_ratio"], 0.7);
        // medians 72.5 / 105
        assert_eq!(u["ratio_of_medians"], 0.69);
        let c = &s["proxy_on_over_off"][0];
        assert_eq!(c["round_ratios"], json!([0.5, 0.5]));
        let f = &s["variants"]["on_flood_max"];
        assert_eq!(
            (f["errors"].as_u64(), f["cps"]["runs"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(s["variants"]["on"]["half_open_at_end_max"], 3);
        assert_eq!(s["variants"]["on"]["lost_sum"], 3);
    }
}
