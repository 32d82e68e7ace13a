//! The second ceiling of the pair: `dpdk-testpmd --forward-mode=flowgen` as the generator
//! (memif server on both sockets) through testpmd io-fwd (memif client), so a run can tell
//! whether `lb-pktgen` or the pair is what binds. The generator prints its ports' rates every
//! second (`--stats-period 1`); what comes back on both of its ports is what was forwarded.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::lab;
use super::pair::{eal_mem_args, testpmd_forwarder, vdev, Layout, Outcome, Tools};
use super::procs::{self, spawn, BenchError, Result};

/// How long the pair gets to connect and show traffic.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// One second of the generator's statistics: packets per second received and sent, both
/// ports together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    pub rx_pps: f64,
    pub tx_pps: f64,
}

/// The per-second totals in testpmd's periodic statistics (blocks headed "NIC statistics for
/// port N", each with an `Rx-pps:` and a `Tx-pps:` line); a period is complete once every port
/// of it was printed.
pub fn periods(log: &str, ports: usize) -> Vec<Period> {
    let mut out = Vec::new();
    let (mut seen, mut rx, mut tx) = (0, 0.0, 0.0);
    let value = |l: &str, key: &str| -> Option<f64> { l.split_once(key)?.1.split_whitespace().next()?.parse().ok() };
    for l in log.lines() {
        if let Some(v) = value(l, "Rx-pps:") {
            rx += v;
        }
        if let Some(v) = value(l, "Tx-pps:") {
            tx += v;
            seen += 1;
            if seen == ports {
                out.push(Period { rx_pps: rx, tx_pps: tx });
                (seen, rx, tx) = (0, 0.0, 0.0);
            }
        }
    }
    out
}

/// The measured window: periods after the first one with traffic, less `warmup` seconds,
/// at most `duration` of them.
pub fn window(all: &[Period], warmup: usize, duration: usize) -> Vec<Period> {
    // The first period with traffic is partial (the forwarder connected within it).
    let start = all.iter().position(|p| p.rx_pps > 0.0).map_or(all.len(), |i| i + 1 + warmup);
    all.iter().skip(start).take(duration).copied().collect()
}

/// Runs flowgen -> io-fwd once; the outcome's `gen` has the median `rx_pps` and `tx_pps` of the
/// window, and the per-second figures.
pub fn run(t: &Tools, dir: &Path, warmup: f64, duration: f64) -> Result<Outcome> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Io { path: dir.into(), source })?;
    let (wan, lan) = (dir.join("wan.sock"), dir.join("lan.sock"));
    let tag = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = Outcome { load: procs::loadavg(), ..Outcome::default() };
    let cpu0 = procs::cpu_sample();
    let mut g = Command::new(&t.testpmd);
    // The main lcore on the forwarder's first CPU, not beside a flowgen lcore: busy-polling
    // the same CPU, flowgen starved the EAL interrupt thread there, and memif's handshake did
    // not finish within the run (seen on an AMD EPYC VM: every run "no forwarded traffic").
    // It only prints statistics once a second.
    let n = t.layout.workers();
    g.args(["--no-pci", "--lcores", &Layout::testpmd_lcores(t.layout.dut[0], &t.layout.gen), "--log-level=warning", &format!("--file-prefix=lbperf-fgen-{tag}-{}", std::process::id())]);
    g.args(eal_mem_args(t.no_huge, 512));
    g.args(["--vdev", &vdev(0, "server", &wan, lab::GEN_WAN_MAC), "--vdev", &vdev(1, "server", &lan, lab::GEN_LAN_MAC)]);
    g.args(["--", "--forward-mode=flowgen", &format!("--nb-cores={n}"), &format!("--rxq={n}"), &format!("--txq={n}"), "--total-num-mbufs=32768", "--rxd=1024", "--txd=1024", "--burst=32", "--stats-period=1"]);
    let log = dir.join("flowgen.log");
    let mut gen = spawn("testpmd flowgen", &mut g, &log, false, false)?;
    if !procs::wait_paths(&[wan.clone(), lan.clone()], Duration::from_secs(20), || gen.exited().is_none()) {
        return Err(BenchError::Failed(format!("testpmd flowgen did not create its memif sockets:\n{}", procs::tail(&log, 10))));
    }
    let mut fwd = testpmd_forwarder(t, dir, &tag, &wan, &lan)?;
    // The memif handshake can take seconds while both CPUs are busy polling: wait (bounded)
    // for the first period with traffic, then whole seconds (the generator reports once a
    // second), one more for the partial first period.
    let waited = std::time::Instant::now();
    while waited.elapsed() < CONNECT_TIMEOUT
        && !periods(&std::fs::read_to_string(&log).unwrap_or_default(), 2).iter().any(|p| p.rx_pps > 0.0)
        && fwd.exited().is_none()
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs_f64(warmup.ceil() + duration.ceil() + 1.5));
    let ours = [gen.pid(), fwd.pid()].iter().filter_map(|p| procs::proc_jiffies(*p)).sum();
    let cpu = cpu0.zip(procs::cpu_sample()).and_then(|(a, b)| procs::cpu_shares(a, b, ours));
    // The forwarder stops first (its lcores stop polling before its ports close).
    fwd.enter();
    if !fwd.wait_or_kill(Duration::from_secs(15)).is_some_and(|s| s.success()) {
        out.dut_exit = Some("dpdk-testpmd (forwarder) did not exit cleanly".into());
    }
    gen.term();
    gen.wait_or_kill(Duration::from_secs(10));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // Truncation intended: whole seconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let w = window(&periods(&text, 2), warmup.ceil() as usize, duration.ceil() as usize);
    let mut rx: Vec<f64> = w.iter().map(|p| p.rx_pps).collect();
    let mut tx: Vec<f64> = w.iter().map(|p| p.tx_pps).collect();
    let (Some((rx_med, ..)), Some((tx_med, ..))) = (super::report::median_min_max(&mut rx), super::report::median_min_max(&mut tx)) else {
        return Err(BenchError::Failed(format!("no forwarded traffic in testpmd flowgen's statistics:\n{}", procs::tail(&log, 12))));
    };
    out.gen = json!({ "mode": "flowgen", "rx_pps": rx_med, "tx_pps": tx_med, "per_second_rx_pps": w.iter().map(|p| p.rx_pps).collect::<Vec<_>>() });
    out.cpu = cpu;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_sum_both_ports_and_the_window_skips_the_start() {
        let block = |p: u8, rx: u64, tx: u64| format!("  ######## NIC statistics for port {p}  ########\n  RX-packets: 1\n  Rx-pps:  {rx}   Rx-bps: 9\n  Tx-pps:  {tx}   Tx-bps: 9\n");
        let mut log = String::from("EAL: boot\n");
        for (rx, tx) in [(0, 0), (0, 0), (100, 300), (5_000, 6_000), (6_000, 6_100), (7_000, 7_100), (6_500, 6_600), (0, 0)] {
            log += &block(0, rx, tx);
            log += &block(1, rx + u64::from(rx > 0), tx + u64::from(tx > 0));
        }
        let all = periods(&log, 2);
        assert_eq!(all.len(), 8);
        assert_eq!(all[3], Period { rx_pps: 10_001.0, tx_pps: 12_001.0 });
        // Traffic starts in period 2 (partial); one second of warm-up; two measured.
        let w = window(&all, 1, 2);
        assert_eq!(w.iter().map(|p| p.rx_pps).collect::<Vec<_>>(), vec![12_001.0, 14_001.0]);
        assert!(window(&periods("no statistics", 2), 1, 2).is_empty());
    }
}
