//! `lb-pktgen`: a DPDK traffic generator that plays the clients and the real servers of a
//! director over two ports (memif in the benchmarks).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fastpath::wire::EthernetAddress;
use lb_perf::flows::{FlowSet, IpRange, PortRange};
use lb_perf::gen::flood::{FloodConfig, IpPrefix};
use lb_perf::gen::{self, DpdkSetup, GenConfig, Mode};

/// Traffic generator for the director (and any forwarder between two ports).
///
/// The client port sends to the director's WAN side (the VIP); the server port faces its LAN
/// side and plays the real servers: it answers ARP for --server-ip and, in conn mode, answers
/// SYNs, requests and FINs. Every data frame carries its transmit TSC in the payload, so
/// one-way latency is measured at the receiving port.
///
/// Modes: udp / tcp (established flows: opened first, then measured), conn (TCP connections:
/// handshake, request, response, close; connections per second), syn (one SYN per flow:
/// opens sessions for session-scale tests), flood (a SYN flood alone).
///
/// conn works through a SYN proxy too: a SYN-ACK with window 0 is ACKed and the request waits
/// for the director's window update. --flood / --flood-pps add a SYN flood from random
/// sources in --flood-sources (random ports and ISNs) beside the connections; SYN-ACKs to
/// those sources are counted, never answered, and the server side counts segments from them
/// (IPv4 source or TOA) and its half-open connections (SYNs never followed by the ACK).
///
/// Prints one JSON object on stdout (rates, counters, latency percentiles in ns); progress
/// and errors go to stderr. Exit codes: 0 ok, 1 run failed, 2 bad arguments.
///
/// Example (generator as memif server, director or testpmd as memif client):
///   lb-pktgen --client-vdev net_memif0,role=server,socket=/run/x/wan.sock \
///             --server-vdev net_memif1,role=server,socket=/run/x/lan.sock \
///             --mode udp --src-ip 10.99.1.10-10.99.1.73 --dst-ip 10.99.1.100 --dst-port 53 \
///             --server-ip 10.99.2.11-10.99.2.14 --flows 10000 --duration 3
#[derive(Debug, Parser)]
#[command(name = "lb-pktgen", version, verbatim_doc_comment)]
struct Cli {
    /// vdev of the client-side port (faces the director's WAN).
    #[arg(long)]
    client_vdev: String,
    /// vdev of the server-side port (faces the director's LAN).
    #[arg(long)]
    server_vdev: String,
    /// What to send.
    #[arg(long, value_enum, default_value = "udp")]
    mode: Mode,
    /// Client source addresses (range a-b).
    #[arg(long, default_value = "10.99.1.10-10.99.1.73")]
    src_ip: IpRange,
    /// Client source ports.
    #[arg(long, default_value = "1024-65535")]
    src_port: PortRange,
    /// Destination addresses (the VIP).
    #[arg(long, default_value = "10.99.1.100")]
    dst_ip: IpRange,
    /// Destination ports.
    #[arg(long, default_value = "80")]
    dst_port: PortRange,
    /// Flows to cycle through (0 = the whole tuple space; conn mode uses one tuple per connection).
    #[arg(long, default_value_t = 1000)]
    flows: u64,
    /// Addresses the server side plays (real servers): answers ARP, and TCP in conn mode.
    #[arg(long, default_value = "10.99.2.11-10.99.2.14")]
    server_ip: IpRange,
    /// Frame size in bytes as handed to the port (no FCS); at least headers + 8-byte stamp.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Packets per second (conn: new connections per second); 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Rate while opening flows, before measuring (0 = as fast as possible).
    #[arg(long, default_value_t = 2_000_000)]
    open_rate: u64,
    /// Seconds of traffic before the measured window.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// MAC of the forwarder's client-facing port; default: ARP for the first --dst-ip.
    #[arg(long)]
    dut_mac: Option<EthernetAddress>,
    /// Do not open flows before measuring (for forwarders that are not directors).
    #[arg(long)]
    skip_open: bool,
    /// udp / tcp: the server side sends every data frame back with both ends swapped (a
    /// server answering each request), so the forwarder carries both directions; the report
    /// adds the echoes received (echo_rx_pps) and both directions together (both_rx_pps).
    #[arg(long)]
    echo: bool,
    /// Fill UDP checksums (default: 0, none, as IPv4 allows).
    #[arg(long)]
    udp_checksum: bool,
    /// conn: request payload bytes.
    #[arg(long, default_value_t = 16)]
    req_size: usize,
    /// conn: response payload bytes.
    #[arg(long, default_value_t = 64)]
    resp_size: usize,
    /// conn: most unfinished connections at once.
    #[arg(long, default_value_t = 2048)]
    concurrency: u64,
    /// conn: add a SYN flood at the highest rate the port takes (--flood-pps 0).
    #[arg(long)]
    flood: bool,
    /// conn: add a SYN flood of this many SYNs per second (0: the highest rate the port takes).
    #[arg(long, value_name = "PPS")]
    flood_pps: Option<u64>,
    /// Source addresses of the flood (a prefix no one plays; outside --src-ip, --dst-ip and
    /// --server-ip). The director needs a route back: a gateway the client port answers ARP
    /// for (--arp-ip), or replies to the sender's MAC.
    #[arg(long, default_value = "198.18.0.0/15")]
    flood_sources: IpPrefix,
    /// More addresses the client port answers ARP for (e.g. the director's gateway toward the
    /// flood sources).
    #[arg(long, value_name = "RANGE")]
    arp_ip: Vec<IpRange>,
    /// conn: track the real servers' half-open connections (SYNs never followed by another
    /// segment); always on with a flood.
    #[arg(long)]
    track_half_open: bool,
    /// Seconds to wait for both links.
    #[arg(long, default_value_t = 20.0)]
    link_timeout: f64,
    /// Run without hugepages.
    #[arg(long)]
    no_huge: bool,
    /// EAL memory in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mb: u32,
    /// EAL file prefix (unique per DPDK process).
    #[arg(long)]
    file_prefix: Option<String>,
    /// CPU for the generator's lcore.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Several generator lcores, one per CPU listed (replaces --cpu): lcore i plays queue pair
    /// i of both ports with its own slice of --src-ip and its share of --flows, --rate and
    /// --concurrency; the report sums them (latency from the first). For a forwarder with as
    /// many workers, each polling one queue of each port.
    #[arg(long, value_delimiter = ',', value_name = "CPU,CPU,...")]
    cpus: Vec<usize>,
    /// Mbufs in the pool.
    #[arg(long, default_value_t = 16383)]
    mbufs: u32,
    /// Descriptors per queue.
    #[arg(long, default_value_t = 1024)]
    desc: u16,
    /// After printing the report, stop polling and keep the ports open until SIGTERM/SIGINT
    /// (at most this many seconds). A memif peer may crash if the other side disconnects
    /// while it polls: let the forwarder stop first, then signal the generator.
    #[arg(long, value_name = "SECONDS")]
    hold: Option<f64>,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.size > lb_perf::packet::MAX_FRAME {
        eprintln!(
            "lb-pktgen: --size {} is above {}",
            cli.size,
            lb_perf::packet::MAX_FRAME
        );
        return ExitCode::from(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("lb-pktgen: cannot install signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let flood_pps = cli
        .flood_pps
        .or((cli.flood || cli.mode == Mode::Flood).then_some(0));
    if flood_pps.is_some() && !matches!(cli.mode, Mode::Conn | Mode::Flood) {
        eprintln!("lb-pktgen: --flood and --flood-pps go with --mode conn or flood");
        return ExitCode::from(2);
    }
    let p = cli.flood_sources;
    if flood_pps.is_some() {
        for (what, r) in [
            ("--src-ip", cli.src_ip),
            ("--dst-ip", cli.dst_ip),
            ("--server-ip", cli.server_ip),
        ] {
            if p.overlaps(r.first, r.last) {
                eprintln!("lb-pktgen: --flood-sources {p} overlaps {what} {r}");
                return ExitCode::from(2);
            }
        }
    }
    let flood = flood_pps.map(|pps| FloodConfig {
        sources: p,
        pps,
        dst: cli.dst_ip.first,
        dport: cli.dst_port.first,
    });
    let flows = FlowSet::new(
        cli.src_ip,
        cli.src_port,
        cli.dst_ip,
        cli.dst_port,
        if matches!(cli.mode, Mode::Conn | Mode::Flood) {
            0
        } else {
            cli.flows
        },
    );
    let cfg = GenConfig {
        mode: cli.mode,
        flows,
        server_ips: cli.server_ip,
        frame_size: cli.size,
        rate_pps: cli.rate,
        open_rate: cli.open_rate,
        warmup: secs(cli.warmup),
        duration: secs(cli.duration),
        dut_mac: cli.dut_mac,
        req_size: gen::peers::request_size(cli.req_size.max(lb_perf::packet::STAMP_LEN)),
        resp_size: cli.resp_size.clamp(1, 1400),
        concurrency: cli.concurrency.max(1),
        udp_checksum: cli.udp_checksum,
        skip_open: cli.skip_open,
        echo: cli.echo,
        link_timeout: secs(cli.link_timeout),
        flood,
        track_half_open: cli.track_half_open,
    };
    let cpus = if cli.cpus.is_empty() { vec![cli.cpu] } else { cli.cpus.clone() };
    if let Some(c) = lb_perf::repeated(&cpus) {
        eprintln!("lb-pktgen: --cpus lists CPU {c} twice");
        return ExitCode::from(2);
    }
    if let Err(e) = gen::multi::split(&cfg, u64::try_from(cpus.len()).unwrap_or(u64::MAX)) {
        eprintln!("lb-pktgen: {e}");
        return ExitCode::from(2);
    }
    let d = DpdkSetup {
        client_vdev: cli.client_vdev.clone(),
        server_vdev: cli.server_vdev.clone(),
        no_huge: cli.no_huge,
        memory_mb: cli.memory_mb,
        file_prefix: cli
            .file_prefix
            .clone()
            .unwrap_or_else(|| format!("lb-pktgen-{}", std::process::id())),
        cpus,
        mbufs: cli.mbufs,
        desc: cli.desc,
    };
    let (eal, mut engines) = match gen::setup(&d, cli.src_ip, cli.server_ip) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("lb-pktgen: {e}");
            return ExitCode::from(1);
        }
    };
    for e in &mut engines {
        e.ports[gen::engine::CLIENT].owns.extend(cli.arp_ip.iter().copied());
    }
    let mut engine = engines.remove(0);
    eprintln!(
        "lb-pktgen: ports up ({} client, {} server); waiting for links",
        engine.ports[0].mac, engine.ports[1].mac
    );
    let result = gen::multi::run_all(&eal, &mut engine, engines, &cfg, &stop);
    let code = match result {
        Ok(report) => {
            println!("{report}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            if let Some(h) = cli.hold {
                let until = std::time::Instant::now() + secs(h);
                while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lb-pktgen: {e}");
            ExitCode::from(1)
        }
    };
    // Ports stop before the EAL goes, one at a time: with both memif ends in this process, the
    // second port is disconnected by the EAL interrupt thread when the first stops, and must
    // not be stopped from here while that runs (it freed the same regions twice: "EAL: Error:
    // Invalid memory", about one run in six).
    let ports: Vec<_> = engine.ports.iter().map(|io| io.port.clone()).collect();
    if let Err(e) = eal.shutdown_ports(&ports) {
        eprintln!("lb-pktgen: shutting the ports down: {e}");
    }
    drop(engine);
    drop(eal);
    code
}
