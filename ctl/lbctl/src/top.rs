//! `lbctl top`: a live per-service view refreshed every interval: connections per second (all
//! services: the fast path counts new sessions per worker), active and inactive connections
//! and packets per second per service and real server, rx/tx and drops per second.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use lb_api::{pb, Client};

use crate::run::{emit, CliError};

fn counter(w: &pb::WorkerStats, name: &str) -> u64 {
    w.counters.iter().find(|c| c.name == name).map_or(0, |c| c.value)
}

fn total(s: &pb::Stats, name: &str) -> u64 {
    s.workers.iter().map(|w| counter(w, name)).sum()
}

fn drops(s: &pb::Stats) -> u64 {
    s.workers.iter().flat_map(|w| w.drops.iter()).map(|c| c.value).sum()
}

fn pkts(c: Option<&pb::ConnCounters>) -> (u64, u64) {
    c.map_or((0, 0), |c| (c.pkts_in, c.pkts_out))
}

/// One frame from two samples `ms` milliseconds apart.
pub fn frame(a: &pb::Stats, b: &pb::Stats, ms: u64) -> String {
    let ms = ms.max(1);
    let per_s = |x: u64, y: u64| (y.saturating_sub(x).saturating_mul(1000) + ms / 2) / ms;
    let mut o = String::new();
    let sessions: u64 = b.workers.iter().map(|w| w.sessions).sum();
    let _ = writeln!(
        o,
        "conn/s {}  rx {} pps  tx {} pps  drops {}/s  sessions {}  workers {}",
        per_s(total(a, "sessions_created"), total(b, "sessions_created")),
        per_s(total(a, "rx"), total(b, "rx")),
        per_s(total(a, "tx"), total(b, "tx")),
        per_s(drops(a), drops(b)),
        sessions,
        b.workers.len()
    );
    let _ = writeln!(o, "\n{:<33} {:>9} {:>9} {:>9} {:>9}", "Prot LocalAddress:Port", "Active", "InActive", "InPPS", "OutPPS");
    for s in &b.services {
        let k = s.key.clone().unwrap_or_default();
        let old = a.services.iter().find(|x| x.key == s.key);
        let st = s.stats.unwrap_or_default();
        let (i0, o0) = pkts(old.and_then(|x| x.stats.as_ref()));
        let name = format!("{}  {}:{}", lb_api::protocol_name(k.protocol), k.vip, k.port);
        let _ = writeln!(o, "{name:<33} {:>9} {:>9} {:>9} {:>9}", st.active_conns, st.inactive_conns, per_s(i0, st.pkts_in), per_s(o0, st.pkts_out));
        for r in &s.real_servers {
            let rst = r.stats.unwrap_or_default();
            let (i0, o0) = pkts(old.and_then(|x| x.real_servers.iter().find(|y| y.addr == r.addr && y.port == r.port)).and_then(|y| y.stats.as_ref()));
            let d = format!("{}:{}", r.addr, r.port);
            let _ = writeln!(o, "  -> {d:<28} {:>9} {:>9} {:>9} {:>9}", rst.active_conns, rst.inactive_conns, per_s(i0, rst.pkts_in), per_s(o0, rst.pkts_out));
        }
    }
    o
}

async fn sample(c: &mut Client) -> Result<(pb::Stats, Instant), CliError> {
    let s = c.get_stats(pb::GetStatsRequest { services: true }).await?.into_inner();
    Ok((s, Instant::now()))
}

/// Refreshes until interrupted (or once, after one interval, with `once`).
pub async fn run(c: &mut Client, once: bool, interval_s: u32, json: bool) -> Result<(), CliError> {
    let every = Duration::from_secs(u64::from(interval_s));
    let (mut prev, mut at) = sample(c).await?;
    loop {
        tokio::time::sleep(every).await;
        let (cur, now) = sample(c).await?;
        let ms = u64::try_from(now.duration_since(at).as_millis()).unwrap_or(u64::MAX);
        let body = frame(&prev, &cur, ms);
        if json {
            emit(&format!("{}\n", serde_json::json!({"interval_ms": ms, "frame": body})))?;
        } else if once {
            emit(&body)?;
        } else {
            // Home, clear, then the frame.
            emit(&format!("\x1b[H\x1b[2J{body}"))?;
        }
        if once {
            return Ok(());
        }
        (prev, at) = (cur, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(created: u64, pkts: u64) -> pb::Stats {
        pb::Stats {
            workers: vec![pb::WorkerStats { sessions: 3, counters: vec![pb::Counter { name: "sessions_created".into(), value: created }], ..Default::default() }],
            services: vec![pb::Service {
                key: Some(pb::ServiceKey { vip: "10.0.0.1".into(), port: 80, protocol: 1 }),
                stats: Some(pb::ConnCounters { active_conns: 2, inactive_conns: 1, pkts_in: pkts, pkts_out: pkts, ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_frame_shows_rates() {
        let f = frame(&stats(10, 100), &stats(30, 300), 2000);
        assert!(f.starts_with("conn/s 10  rx 0 pps  tx 0 pps  drops 0/s  sessions 3  workers 1\n"), "{f}");
        assert!(f.contains("TCP  10.0.0.1:80                          2         1       100       100\n"), "{f}");
    }
}
