//! `lb-pktgen`: DPDK set-up, the run, and its JSON report.

pub mod conn;
pub mod engine;
pub mod flood;
pub mod multi;
pub mod peers;
pub mod stream;
pub mod track;

use std::net::Ipv4Addr;
use std::time::Duration;

use dpdk::{Burst, EalBuilder, Mempool, Port, PortConfig, PortStats, RxQueue, TxQueue};
use fastpath::wire::EthernetAddress;
use serde_json::{json, Value};

use crate::flows::{FlowSet, IpRange};
use crate::hist::Histogram;
use crate::packet::Proto;
use engine::{Engine, PortCounters, PortIo, CLIENT, SERVER};

/// Asks whether the run should stop early (a signal arrived).
pub type Stop = dyn Fn() -> bool;

/// What traffic to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Established UDP flows (one datagram per flow opens it).
    Udp,
    /// Established TCP flows (SYN, first ACK, then data segments).
    Tcp,
    /// TCP connections: handshake, request, response, close; both ends played here.
    Conn,
    /// One SYN per flow and nothing else: opens sessions (session-scale tests).
    Syn,
    /// The SYN flood alone (`--flood-*`), no connections; the server side still counts.
    Flood,
}

impl Mode {
    /// The transport protocol of the mode's frames.
    pub fn proto(self) -> Proto {
        if self == Mode::Udp {
            Proto::Udp
        } else {
            Proto::Tcp
        }
    }
}

/// A run's parameters (see `lb-pktgen --help`).
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub mode: Mode,
    pub flows: FlowSet,
    /// Addresses the server side plays (answers ARP for; real servers).
    pub server_ips: IpRange,
    pub frame_size: usize,
    /// Packets per second (conn: new connections per second); 0 = as fast as possible.
    pub rate_pps: u64,
    /// Rate while opening flows.
    pub open_rate: u64,
    pub warmup: Duration,
    pub duration: Duration,
    pub dut_mac: Option<EthernetAddress>,
    pub req_size: usize,
    pub resp_size: usize,
    /// Most unfinished connections (conn mode).
    pub concurrency: u64,
    pub udp_checksum: bool,
    /// Do not open flows first (the forwarder is not a director, e.g. testpmd).
    pub skip_open: bool,
    /// udp / tcp: the server side sends every data frame back (`packet::echo_in_place`), so the
    /// forwarder carries both directions; the client side counts the echoes.
    pub echo: bool,
    pub link_timeout: Duration,
    /// conn / flood: a SYN flood from spoofed sources beside the connections.
    pub flood: Option<flood::FloodConfig>,
    /// conn: track the servers' half-open connections (always with a flood).
    pub track_half_open: bool,
}

/// DPDK settings of the generator process.
#[derive(Debug, Clone)]
pub struct DpdkSetup {
    pub client_vdev: String,
    pub server_vdev: String,
    pub no_huge: bool,
    pub memory_mb: u32,
    pub file_prefix: String,
    /// The CPUs of the generator's lcores: one each, playing queue pair `i` of both ports
    /// (see [`multi`]).
    pub cpus: Vec<usize>,
    pub mbufs: u32,
    pub desc: u16,
}

/// Why the generator could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("DPDK: {0}")]
    Dpdk(#[from] dpdk::Error),
    #[error("links did not come up within {0:?} (is the peer running and connected to the memif sockets?)")]
    LinkDown(Duration),
    #[error("no ARP reply for {0} on the client port (pass --dut-mac for forwarders that do not answer ARP)")]
    NoArp(Ipv4Addr),
    #[error(transparent)]
    Split(#[from] multi::SplitError),
    #[error("generator lcores: {0}")]
    Lcores(String),
}

fn device(vdev: &str) -> &str {
    vdev.split(',').next().unwrap_or("").trim()
}

/// Starts the EAL, creates the pool and both ports with a queue pair per CPU, and returns an
/// engine per queue pair (the first runs on the main lcore, the others on worker lcores in
/// order).
pub fn setup(
    d: &DpdkSetup,
    client_owns: IpRange,
    server_owns: IpRange,
) -> Result<(dpdk::Eal, Vec<Engine>), GenError> {
    let lcores: Vec<String> = d.cpus.iter().enumerate().map(|(l, c)| format!("{l}@{c}")).collect();
    let queues = u16::try_from(d.cpus.len().max(1)).unwrap_or(u16::MAX);
    let eal = EalBuilder::new("lb-pktgen")
        .file_prefix(&d.file_prefix)
        .no_huge(d.no_huge)
        .in_memory(!d.no_huge)
        .memory_mb(d.memory_mb)
        .lcores(&lcores.join(","))
        .log_level("warning")
        .vdev(&d.client_vdev)
        .vdev(&d.server_vdev)
        .init()?;
    let pool = Mempool::new("gen_mbufs", d.mbufs, 256, 2176)?;
    let conf = PortConfig {
        rx_queues: queues,
        tx_queues: queues,
        rx_desc: d.desc,
        tx_desc: d.desc,
        rss: false,
        mtu: None,
        promiscuous: false,
    };
    let mut sides = Vec::new();
    for (vdev, owns) in [(&d.client_vdev, client_owns), (&d.server_vdev, server_owns)] {
        let port = Port::by_name(device(vdev))?;
        let (rx, tx) = port.configure(&conf, &pool)?;
        port.start()?;
        let mac = EthernetAddress(port.mac()?);
        sides.push((port, rx, tx, mac, owns));
    }
    let (sport, srx, stx, smac, sowns) = sides.pop().expect("two ports");
    let (cport, crx, ctx, cmac, cowns) = sides.pop().expect("two ports");
    let io = |port: &Port, rx: RxQueue, tx: TxQueue, mac: EthernetAddress, owns: IpRange| PortIo {
        port: port.clone(),
        rx,
        tx,
        mac,
        owns: vec![owns],
        pending: Burst::new(),
        backlog: std::collections::VecDeque::new(),
        out: Burst::new(),
    };
    let engines = crx
        .into_iter()
        .zip(ctx)
        .zip(srx.into_iter().zip(stx))
        .map(|((crx, ctx), (srx, stx))| Engine {
            ports: [io(&cport, crx, ctx, cmac, cowns), io(&sport, srx, stx, smac, sowns)],
            pool,
            counters: Default::default(),
            hz: dpdk::tsc_hz(),
            learned: Vec::new(),
            retain_replies: false,
        })
        .collect();
    Ok((eal, engines))
}

fn latency_json(h: &Histogram, e: &Engine) -> Value {
    let ns = |c: u64| (e.ns(c) * 10.0).round() / 10.0;
    json!({
        "samples": h.count(),
        "p50": ns(h.quantile(0.50)),
        "p90": ns(h.quantile(0.90)),
        "p99": ns(h.quantile(0.99)),
        "p999": ns(h.quantile(0.999)),
        "max": ns(h.max()),
        "mean": (e.ns(crate::f64_to_u64(h.mean())) * 10.0).round() / 10.0,
    })
}

fn ports_json(e: &Engine, counters: &[PortCounters; 2], stats: &[PortStats; 2]) -> Value {
    let one = |i: usize| {
        let c = &counters[i];
        let s = &stats[i];
        json!({
            "mac": e.ports[i].mac.to_string(),
            "tx": c.tx, "tx_dropped": c.tx_dropped, "rx": c.rx, "rx_bytes": c.rx_bytes,
            "arp_in": c.arp_in, "arp_replied": c.arp_replied, "rx_other": c.rx_other,
            "hw_ipackets": s.ipackets, "hw_opackets": s.opackets, "imissed": s.imissed,
            "ierrors": s.ierrors, "oerrors": s.oerrors, "rx_nombuf": s.rx_nombuf,
        })
    };
    json!({ "client": one(CLIENT), "server": one(SERVER) })
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (n as f64 / secs).round()
    } else {
        0.0
    }
}

/// Waits for both links, then returns the forwarder's MAC: `cfg.dut_mac`, else what ARP for
/// the first destination says.
pub fn dut_mac(e: &mut Engine, cfg: &GenConfig, stop: &Stop) -> Result<EthernetAddress, GenError> {
    if !e.wait_links(cfg.link_timeout, stop) {
        return Err(GenError::LinkDown(cfg.link_timeout));
    }
    match cfg.dut_mac {
        Some(m) => Ok(m),
        None => {
            let (src, target) = (cfg.flows.src_ip.first, cfg.flows.dst_ip.first);
            e.resolve(CLIENT, src, target, Duration::from_secs(5), stop).ok_or(GenError::NoArp(target))
        }
    }
}

/// Runs `cfg` on a set-up engine and returns the JSON report.
pub fn run(e: &mut Engine, cfg: &GenConfig, stop: &Stop) -> Result<Value, GenError> {
    let dut_mac = dut_mac(e, cfg, stop)?;
    let mut report = json!({
        "mode": cfg.mode,
        "flows": cfg.flows.count,
        "frame_size": cfg.frame_size.max(crate::packet::min_frame(cfg.mode.proto())),
        "rate_limit": cfg.rate_pps,
        "dut_mac": dut_mac.to_string(),
        "tsc_hz": e.hz,
    });
    match cfg.mode {
        Mode::Udp | Mode::Tcp | Mode::Syn => {
            let r = stream::run(e, cfg, dut_mac, stop);
            let tx = r.after[CLIENT].tx - r.before[CLIENT].tx;
            let rx = r.after[SERVER].rx - r.before[SERVER].rx;
            let total_tx = r.end[CLIENT].tx;
            let total_rx = r.end[SERVER].rx;
            report["seconds"] = json!((r.seconds * 1e4).round() / 1e4);
            report["tx"] = json!(tx);
            report["rx"] = json!(rx);
            report["tx_pps"] = json!(rate(tx, r.seconds));
            report["rx_pps"] = json!(rate(rx, r.seconds));
            report["rx_bps"] = json!(rate(
                (r.after[SERVER].rx_bytes - r.before[SERVER].rx_bytes) * 8,
                r.seconds
            ));
            if cfg.echo {
                let echoed = r.after[CLIENT].rx - r.before[CLIENT].rx;
                report["echo_rx_pps"] = json!(rate(echoed, r.seconds));
                report["both_rx_pps"] = json!(rate(rx + echoed, r.seconds));
            }
            report["opening_sent"] = json!(r.opening_sent);
            report["total_tx"] = json!(total_tx);
            report["total_rx"] = json!(total_rx);
            report["dropped"] =
                json!(total_tx.saturating_sub(total_rx + r.end[CLIENT].arp_replied.min(total_tx)));
            report["latency_ns"] = latency_json(&r.latency, e);
            report["ports"] = ports_json(e, &r.end, &e.port_stats());
        }
        Mode::Conn | Mode::Flood => {
            let r = conn::run(e, cfg, dut_mac, stop);
            let d = r.after.since(&r.before);
            report["seconds"] = json!((r.seconds * 1e4).round() / 1e4);
            report["cps"] = json!(rate(d.closed, r.seconds));
            report["completed_per_s"] = json!(rate(d.completed, r.seconds));
            report["syn_per_s"] = json!(rate(d.syn_sent, r.seconds));
            let pkts = (r.ports_after[CLIENT].tx - r.ports_before[CLIENT].tx)
                + (r.ports_after[SERVER].tx - r.ports_before[SERVER].tx);
            report["tx_pps"] = json!(rate(pkts, r.seconds));
            report["window"] = serde_json::to_value(d).unwrap_or_default();
            report["totals"] = serde_json::to_value(r.end).unwrap_or_default();
            report["connect_latency_ns"] = latency_json(&r.connect_latency, e);
            report["handshake_latency_ns"] = latency_json(&r.handshake_latency, e);
            if r.end.proxied > 0 {
                report["window_update_latency_ns"] = latency_json(&r.window_update_latency, e);
            }
            if let Some(f) = &cfg.flood {
                let (a, b) = (&r.flood_after, &r.flood_before);
                report["flood"] = json!({
                    "sources": f.sources.to_string(),
                    "rate_limit": f.pps,
                    "sent_per_s": rate(a.sent - b.sent, r.seconds),
                    "refused_per_s": rate(a.refused - b.refused, r.seconds),
                    "synacks_per_s": rate(a.synacks - b.synacks, r.seconds),
                    "other_per_s": rate(a.other - b.other, r.seconds),
                    "window": {
                        "sent": a.sent - b.sent, "refused": a.refused - b.refused,
                        "synacks": a.synacks - b.synacks, "other": a.other - b.other,
                    },
                    "totals": r.flood_end,
                });
            }
            if let Some(h) = r.half_open {
                report["server_half_open"] = serde_json::to_value(h).unwrap_or_default();
            }
            report["ports"] = ports_json(e, &e.counters, &e.port_stats());
        }
    }
    Ok(report)
}
