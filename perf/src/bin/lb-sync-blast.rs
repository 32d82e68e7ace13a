//! `lb-sync-blast`: plays a session-sync master. Multicasts LVS sync v1 messages full of FNAT
//! session records (`fastpath::wire::lvsync`) at a given record rate, so that a backup's
//! absorption can be measured (`make bench-sync`).
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use fastpath::wire::lvsync::{self, flags, FnatOption, MessageWriter, SyncConn};
use serde_json::json;

/// Lowest local port a director hands out (`fastpath::laddr::MIN_PORT`).
const MIN_LPORT: u16 = 1025;
/// Highest local port: 65535 marks a taken slot in the port pool.
const MAX_LPORT: u16 = 65534;

/// Multicasts LVS sync v1 messages of FNAT session records, as a master director would.
///
/// Record i (0-based) is a TCP session of client (--first-client + i):--client-port to
/// --vip, on real server --rs, through local address --laddr[i / P] and local port
/// --first-lport + i % P (P = the ports from --first-lport to 65534), in state --state with
/// --timeout seconds left. Records are packed --maxlen bytes per message (30 per 1472-byte
/// message) and paced to --rate records per second (0: as fast as the socket takes them).
///
/// Binding --source picks the interface (Linux sends multicast out of the device that owns a
/// bound source address). Prints one JSON object on stdout: records and messages sent, send
/// errors, seconds from the first message to the last, and the rate achieved.
///
/// Example (in a backend's namespace of the sync testbed pair):
///   lb-sync-blast --source 10.70.2.12 --syncid 42 --records 60000 --rate 100000
#[derive(Debug, Parser)]
#[command(name = "lb-sync-blast", version, verbatim_doc_comment)]
struct Cli {
    /// Source address to bind (chooses the outgoing interface).
    #[arg(long)]
    source: Ipv4Addr,
    /// Multicast group.
    #[arg(long, default_value_t = lvsync::GROUP)]
    group: Ipv4Addr,
    /// UDP port.
    #[arg(long, default_value_t = lvsync::PORT)]
    port: u16,
    /// Sync id in every message header.
    #[arg(long, default_value_t = 42)]
    syncid: u8,
    /// Multicast TTL.
    #[arg(long, default_value_t = 1)]
    ttl: u32,
    /// Largest message in bytes (LVS's sync_maxlen default: 1472).
    #[arg(long, default_value_t = 1472)]
    maxlen: usize,
    /// Records to send.
    #[arg(long, default_value_t = 50_000)]
    records: u64,
    /// Records per second (0: as fast as the socket takes them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Virtual service address:port (TCP).
    #[arg(long, default_value = "10.70.1.100:80")]
    vip: SocketAddrV4,
    /// Real server address:port.
    #[arg(long, default_value = "10.70.2.11:80")]
    rs: SocketAddrV4,
    /// Local (FNAT) addresses, comma-separated, used one after the other.
    #[arg(long, value_delimiter = ',', default_value = "10.70.2.100")]
    laddr: Vec<Ipv4Addr>,
    /// First local port.
    #[arg(long, default_value_t = MIN_LPORT)]
    first_lport: u16,
    /// Address of the first record's client (the next ones count up).
    #[arg(long, default_value = "10.80.0.1")]
    first_client: Ipv4Addr,
    /// Client port of every record.
    #[arg(long, default_value_t = 40_000)]
    client_port: u16,
    /// LVS TCP state number (1 ESTABLISHED, 4 FIN_WAIT, 6 CLOSE).
    #[arg(long, default_value_t = lvsync::tcp_state::ESTABLISHED)]
    state: u16,
    /// Seconds the session has left.
    #[arg(long, default_value_t = 900)]
    timeout: u32,
}

/// Why the blast could not run.
#[derive(Debug, thiserror::Error)]
enum BlastError {
    #[error("--first-lport {0} is outside {MIN_LPORT}..={MAX_LPORT}")]
    Lport(u16),
    #[error(
        "{records} records need more local ports than {laddrs} local address(es) x {per} ports"
    )]
    TooMany {
        records: u64,
        laddrs: usize,
        per: u64,
    },
    #[error("--maxlen {0}: {1}")]
    Maxlen(usize, String),
    #[error("socket: {0}")]
    Socket(std::io::Error),
}

/// Record `i` of the run.
fn record(cli: &Cli, i: u64, per_laddr: u64) -> SyncConn {
    let laddr = usize::try_from(i / per_laddr)
        .ok()
        .and_then(|k| cli.laddr.get(k))
        .copied()
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let lport = u16::try_from(u64::from(cli.first_lport) + i % per_laddr).unwrap_or(MAX_LPORT);
    let caddr = Ipv4Addr::from(
        u32::from(cli.first_client).wrapping_add(u32::try_from(i).unwrap_or(u32::MAX)),
    );
    SyncConn {
        protocol: 6,
        flags: flags::FWD_MASQ,
        state: cli.state,
        cport: cli.client_port,
        vport: cli.vip.port(),
        dport: cli.rs.port(),
        fwmark: 0,
        timeout_s: cli.timeout,
        caddr,
        vaddr: *cli.vip.ip(),
        daddr: *cli.rs.ip(),
        seq: None,
        fnat: Some(FnatOption {
            laddr,
            lport,
            toa_sent: true,
            draining: false,
            persistent: false,
        }),
    }
}

fn blast(cli: &Cli) -> Result<serde_json::Value, BlastError> {
    if !(MIN_LPORT..=MAX_LPORT).contains(&cli.first_lport) {
        return Err(BlastError::Lport(cli.first_lport));
    }
    let per_laddr = u64::from(MAX_LPORT - cli.first_lport) + 1;
    if cli.records > per_laddr * cli.laddr.len() as u64 {
        return Err(BlastError::TooMany {
            records: cli.records,
            laddrs: cli.laddr.len(),
            per: per_laddr,
        });
    }
    let sock = UdpSocket::bind(SocketAddrV4::new(cli.source, 0)).map_err(BlastError::Socket)?;
    sock.set_multicast_ttl_v4(cli.ttl)
        .map_err(BlastError::Socket)?;
    sock.set_multicast_loop_v4(false)
        .map_err(BlastError::Socket)?;
    let to = SocketAddrV4::new(cli.group, cli.port);
    let mut buf = vec![0u8; cli.maxlen];
    MessageWriter::new(&mut buf, cli.syncid)
        .map_err(|e| BlastError::Maxlen(cli.maxlen, format!("{e:?}")))?;

    let (mut sent_records, mut messages, mut errors, mut err_records) = (0u64, 0u64, 0u64, 0u64);
    let mut last_error = None;
    let mut i = 0u64;
    let start = Instant::now();
    let mut last_send = start;
    while i < cli.records {
        let mut w = MessageWriter::new(&mut buf, cli.syncid)
            .map_err(|e| BlastError::Maxlen(cli.maxlen, format!("{e:?}")))?;
        let first = i;
        while i < cli.records && w.push(&record(cli, i, per_laddr)) {
            i += 1;
        }
        let n = w.finish();
        if cli.rate > 0 {
            // Message k is due when the records before it are due.
            let due = start + Duration::from_secs_f64(first as f64 / cli.rate as f64);
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                let left = due - now;
                if left > Duration::from_micros(200) {
                    std::thread::sleep(left - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        match sock.send_to(buf.get(..n).unwrap_or(&[]), to) {
            Ok(_) => {
                messages += 1;
                sent_records += i - first;
            }
            Err(e) => {
                errors += 1;
                err_records += i - first;
                last_error = Some(e.to_string());
            }
        }
        last_send = Instant::now();
    }
    let secs = last_send.duration_since(start).as_secs_f64();
    Ok(json!({
        "records": sent_records,
        "messages": messages,
        "send_errors": errors,
        "error_records": err_records,
        "last_error": last_error,
        "seconds": (secs * 1e4).round() / 1e4,
        "rate_asked": cli.rate,
        "rate": if secs > 0.0 { (sent_records as f64 / secs).round() } else { 0.0 },
        "records_per_message": sent_records.checked_div(messages).unwrap_or(0),
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match blast(&cli) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lb-sync-blast: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_distinct_and_parse_back() {
        let cli = Cli::parse_from([
            "lb-sync-blast",
            "--source",
            "10.70.2.12",
            "--laddr",
            "10.70.2.100,10.70.2.101",
            "--first-lport",
            "65530",
        ]);
        let per = u64::from(MAX_LPORT - cli.first_lport) + 1;
        assert_eq!(per, 5);
        let r = record(&cli, 6, per);
        let f = r.fnat.expect("fnat");
        assert_eq!(
            (f.laddr, f.lport, r.caddr),
            (
                Ipv4Addr::new(10, 70, 2, 101),
                65531,
                Ipv4Addr::new(10, 80, 0, 7)
            )
        );
        let mut buf = vec![0u8; 1472];
        let mut w = MessageWriter::new(&mut buf, 42).expect("writer");
        let mut n = 0;
        while w.push(&record(&cli, n, per)) {
            n += 1;
        }
        assert_eq!(n, 30, "30 FNAT records per 1472-byte message");
        let len = w.finish();
        let (_, msg) = lvsync::parse(&buf[..len], 42).expect("parses");
        let lvsync::Message::Conns(entries) = msg else {
            panic!("not a connection message")
        };
        let got: Vec<SyncConn> = entries.map(|e| e.expect("entry")).collect();
        assert_eq!(got.len(), 30);
        assert_eq!(got[6], r);
    }
}
