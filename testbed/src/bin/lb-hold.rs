//! `lb-hold`: holds long-lived flows through a VIP and reports whether any of them broke.
//!
//! - `--tcp N` HTTP/1.1 keep-alive connections to `--vip`:`--port`, each sending `GET /` every
//!   `--every-ms` and reading the whole answer (Content-Length) before the next one.
//! - `--udp PORT`: one UDP flow (one socket, so one session on the director) sending a datagram
//!   every `--every-ms` and counting the echoes.
//!
//! Runs for `--secs` seconds (or until a line arrives on stdin), then prints one JSON object:
//! per flow the requests, answers, the longest time without an answer (`max_gap_ms`) and the
//! first error, and the totals. It exits 0 whatever happened: the caller judges.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "Holds keep-alive TCP connections and a UDP flow through a VIP; prints JSON")]
struct Args {
    #[arg(long)]
    vip: std::net::Ipv4Addr,
    #[arg(long, default_value_t = 80)]
    port: u16,
    #[arg(long, default_value_t = 100)]
    tcp: usize,
    /// UDP echo port (no UDP flow when absent).
    #[arg(long)]
    udp: Option<u16>,
    #[arg(long, default_value_t = 200)]
    every_ms: u64,
    #[arg(long, default_value_t = 60)]
    secs: u64,
}

#[derive(Debug, Default)]
struct Flow {
    requests: u64,
    answers: u64,
    max_gap_ms: u64,
    error: Option<String>,
}

/// Reads one HTTP response (headers, then Content-Length bytes of body).
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("status: {}", head.lines().next().unwrap_or("")));
            }
            let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).ok_or("no content-length")?;
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).map_err(|e| format!("read body: {e}"))?;
                if n == 0 {
                    return Err("closed in the body".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(());
        }
        let n = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn tcp_flow(to: SocketAddr, every: Duration, stop: &AtomicBool) -> Flow {
    let mut f = Flow::default();
    let mut s = match TcpStream::connect_timeout(&to, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            f.error = Some(format!("connect: {e}"));
            return f;
        }
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.set_nodelay(true);
    let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", to.ip());
    let mut buf = Vec::with_capacity(8192);
    let mut last_answer = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        f.requests += 1;
        if let Err(e) = s.write_all(req.as_bytes()) {
            f.error = Some(format!("write: {e}"));
            break;
        }
        if let Err(e) = read_response(&mut s, &mut buf) {
            f.error = Some(e);
            break;
        }
        f.answers += 1;
        let now = Instant::now();
        f.max_gap_ms = f.max_gap_ms.max(u64::try_from(now.duration_since(last_answer).as_millis()).unwrap_or(u64::MAX));
        last_answer = now;
        if let Some(rest) = every.checked_sub(sent.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    f
}

fn udp_flow(to: SocketAddr, every: Duration, stop: &AtomicBool) -> Flow {
    let mut f = Flow::default();
    let s = match UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect(to).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            f.error = Some(format!("socket: {e}"));
            return f;
        }
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let mut last_answer = Instant::now();
    let mut buf = [0u8; 256];
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            f.requests += 1;
            let _ = s.send(format!("hold {}", f.requests).as_bytes());
            next += every;
        }
        if let Ok(n) = s.recv(&mut buf) {
            if n > 0 {
                f.answers += 1;
                let now = Instant::now();
                f.max_gap_ms = f.max_gap_ms.max(u64::try_from(now.duration_since(last_answer).as_millis()).unwrap_or(u64::MAX));
                last_answer = now;
            }
        }
    }
    // A flow that stopped answering before the end counts its silence too.
    f.max_gap_ms = f.max_gap_ms.max(u64::try_from(last_answer.elapsed().as_millis()).unwrap_or(u64::MAX));
    f
}

fn main() {
    let a = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    let every = Duration::from_millis(a.every_ms);
    let to = SocketAddr::from((a.vip, a.port));
    let mut handles = Vec::new();
    for i in 0..a.tcp {
        let stop = Arc::clone(&stop);
        // Spread the connections over the period.
        let delay = every.mul_f64(i as f64 / a.tcp.max(1) as f64);
        handles.push(std::thread::spawn(move || {
            std::thread::sleep(delay);
            ("tcp", tcp_flow(to, every, &stop))
        }));
    }
    if let Some(p) = a.udp {
        let stop = Arc::clone(&stop);
        handles.push(std::thread::spawn(move || ("udp", udp_flow(SocketAddr::from((a.vip, p)), every, &stop))));
    }
    // Runs until the time is up or stdin says stop (a line, or end of file after input).
    let stop2 = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_ok_and(|n| n > 0) {
            stop2.store(true, Ordering::Relaxed);
        }
    });
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(a.secs) && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let flows: Vec<(&str, Flow)> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    let broken = flows.iter().filter(|(_, f)| f.error.is_some()).count();
    let max_gap = flows.iter().map(|(_, f)| f.max_gap_ms).max().unwrap_or(0);
    let out = json!({
        "flows": flows.len(),
        "broken": broken,
        "max_gap_ms": max_gap,
        "answers": flows.iter().map(|(_, f)| f.answers).sum::<u64>(),
        "details": flows.iter().map(|(k, f)| json!({"kind": k, "requests": f.requests, "answers": f.answers, "max_gap_ms": f.max_gap_ms, "error": f.error})).collect::<Vec<_>>(),
    });
    println!("{out}");
}
