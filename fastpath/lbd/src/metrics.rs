//! Prometheus text exposition (`GET /metrics` on `metrics_listen`), served by a tiny HTTP/1.1
//! responder on the API thread.
//!
//! Exposed: per worker every counter and every drop reason, sessions and loop counts; per port
//! (and exception TAP) packets, bytes, imissed, errors; per service and real server the active
//! and inactive connections and the packets of live sessions (from the workers' session
//! tables), the weight, and whether each real server takes new connections
//! (`lbd_real_server_up`: 1 up or unchecked, 0 down). VRRP: `lbd_address_owned{addr,kind}` (1
//! when this director serves the VIP or local address, 0 when another does) and
//! `lbd_vrrp_state{instance,state}`, one sample per state with 1 on the instance's current one
//! (`lbd_vrrp_state{state="MASTER"} == 1` selects the masters), as lb-slowpath last reported. New connections per second: `rate(lbd_worker_sessions_created_total)`
//! (per-service cumulative counters are not kept by the fast path yet). Listeners:
//! `lbd_listener_*{listener}` for `api_socket`, `api_listen` and `metrics_listen` (connections
//! open and accepted, refused over `api_max_connections`, closed idle, accept errors).
//!
//! The endpoint needs no token, so a scrape is bounded: connections are capped and closed
//! when idle like the API's (see `api::listen`), the request head must arrive within
//! [`HEAD_TIMEOUT`] and the answer be taken within [`WRITE_TIMEOUT`].

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fastpath::verdict::Counters;
use fastpath::DropReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;

use crate::api::listen::{Conn, Incoming, ListenerStats};
use crate::control::health::Status;
use crate::control::ownership::VrrpState;
use crate::control::{service_key, vs_key, Control};

/// Largest request head read.
const MAX_HEAD: usize = 8192;
/// The request head must be complete this long after the connection is accepted.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The answer must be written (taken by the client) within this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts scrapes until `stop` completes. `listeners` are the counters exported.
pub async fn serve(mut incoming: Incoming<TcpListener>, control: Arc<Control>, listeners: Vec<Arc<ListenerStats>>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let listeners: Arc<[Arc<ListenerStats>]> = listeners.into();
    loop {
        tokio::select! {
            () = &mut stop => break,
            // The stream never ends or fails: accept errors are logged and retried in it.
            Some(Ok(s)) = incoming.next() => {
                tokio::spawn(respond(s, Arc::clone(&control), Arc::clone(&listeners)));
            }
        }
    }
}

async fn respond(mut s: Conn<TcpStream>, control: Arc<Control>, listeners: Arc<[Arc<ListenerStats>]>) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !matches!(tokio::time::timeout(HEAD_TIMEOUT, read).await, Ok(true)) {
        return;
    }
    let line = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = if method != "GET" {
        ("405 Method Not Allowed", "only GET\n".to_owned())
    } else if path == "/metrics" || path.starts_with("/metrics?") {
        match tokio::task::spawn_blocking(move || render(&control) + &render_listeners(&listeners)).await {
            Ok(b) => ("200 OK", b),
            Err(e) => ("500 Internal Server Error", format!("{e}\n")),
        }
    } else {
        ("404 Not Found", "see /metrics\n".to_owned())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        s.write_all(resp.as_bytes()).await?;
        s.shutdown().await
    })
    .await;
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: u64) {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

/// The metrics text.
pub fn render(control: &Control) -> String {
    let mut o = Out(String::with_capacity(16 * 1024));
    let env = control.env();
    let (conf, health, generation) = control.config_with_health();
    o.family("lbd_info", "gauge", "Always 1; the labels say which lbd this is.");
    o.sample("lbd_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    o.family("lbd_uptime_seconds", "gauge", "Seconds since lbd started.");
    o.sample("lbd_uptime_seconds", &[], env.started.elapsed().as_secs());
    o.family("lbd_config_generation", "gauge", "Generation of the published service table.");
    o.sample("lbd_config_generation", &[], generation);
    o.family("lbd_services", "gauge", "Virtual services configured.");
    o.sample("lbd_services", &[], conf.virtual_servers.len() as u64);

    let workers = control.worker_counters();
    let wname: Vec<String> = workers.iter().map(|(w, _)| w.worker.to_string()).collect();
    o.family("lbd_worker_sessions", "gauge", "Live sessions in the worker's table.");
    for (i, (w, _)) in workers.iter().enumerate() {
        o.sample("lbd_worker_sessions", &[("worker", &wname[i])], w.sessions.load(Ordering::Relaxed));
    }
    o.family("lbd_worker_loops_total", "counter", "Poll-loop passes.");
    for (i, (w, _)) in workers.iter().enumerate() {
        o.sample("lbd_worker_loops_total", &[("worker", &wname[i])], w.loops.load(Ordering::Relaxed));
    }
    let counters: Vec<&Counters> = workers.iter().map(|(_, c)| c).collect();
    worker_counters(&mut o, &wname, &counters);

    let mut port_rows = Vec::new();
    for p in &env.ports {
        for (name, port, kind) in p.port.iter().map(|x| (p.name.as_str(), x, "port")).chain(p.tap.iter().map(|(n, x)| (n.as_str(), x, "tap"))) {
            port_rows.push((name.to_owned(), port.name().to_owned(), kind, port.stats().unwrap_or_default()));
        }
    }
    type Field = fn(&dpdk::PortStats) -> u64;
    let fields: [(&str, &str, Field); 8] = [
        ("lbd_port_rx_packets_total", "Packets received.", |s| s.ipackets),
        ("lbd_port_tx_packets_total", "Packets sent.", |s| s.opackets),
        ("lbd_port_rx_bytes_total", "Bytes received.", |s| s.ibytes),
        ("lbd_port_tx_bytes_total", "Bytes sent.", |s| s.obytes),
        ("lbd_port_imissed_total", "Packets the NIC dropped for want of a receive descriptor.", |s| s.imissed),
        ("lbd_port_rx_errors_total", "Receive errors.", |s| s.ierrors),
        ("lbd_port_tx_errors_total", "Transmit errors.", |s| s.oerrors),
        ("lbd_port_rx_nombuf_total", "Receive failures for want of an mbuf.", |s| s.rx_nombuf),
    ];
    for (metric, help, get) in fields {
        o.family(metric, "counter", help);
        for (name, dev, kind, s) in &port_rows {
            o.sample(metric, &[("port", name), ("device", dev), ("kind", kind)], get(s));
        }
    }

    // Unauthenticated scrapes share one walk of the session tables per second.
    let counts = control.conn_counts_cached(std::time::Duration::from_secs(1));
    o.family("lbd_scrape_workers_ok", "gauge", "1 if every worker answered for the connection counts below.");
    o.sample("lbd_scrape_workers_ok", &[], u64::from(counts.is_ok()));
    let counts = counts.unwrap_or_default();
    let mut svc_rows = Vec::new();
    let mut rs_rows = Vec::new();
    let mut up_rows = Vec::new();
    for vs in &conf.virtual_servers {
        let k = service_key(vs_key(vs));
        let (proto, vip, port) = (k.proto.to_string(), k.vip.to_string(), k.port.to_string());
        let mut total = crate::control::mailbox::ConnCount::default();
        counts.iter().filter(|((p, v, _), _)| *p == k.proto && *v == (k.vip, k.port)).for_each(|(_, c)| total.add(c));
        for r in &vs.real_servers {
            let c = counts.get(&(k.proto, (k.vip, k.port), (r.ip, r.port))).copied().unwrap_or_default();
            rs_rows.push(([proto.clone(), vip.clone(), port.clone(), format!("{}:{}", r.ip, r.port)], c, u64::from(r.weight)));
            let up = health.view(vs, r).status != Status::Down;
            up_rows.push(([vip.clone(), port.clone(), proto.clone(), r.ip.to_string(), r.port.to_string()], u64::from(up)));
        }
        svc_rows.push(([proto, vip, port], total, vs.real_servers.len() as u64));
    }
    type CountField = fn(&crate::control::mailbox::ConnCount) -> u64;
    let cfields: [(&str, &str, &str, CountField); 7] = [
        ("active_conns", "gauge", "Established connections.", |c| c.active),
        ("inactive_conns", "gauge", "Connections in other states.", |c| c.inactive),
        ("connections_total", "counter", "Connections since start (rate() gives new connections per second).", |c| c.conns),
        ("packets_in_total", "counter", "Packets client to real server.", |c| c.pkts_in),
        ("packets_out_total", "counter", "Packets real server to client.", |c| c.pkts_out),
        ("bytes_in_total", "counter", "Bytes (whole frames) client to real server.", |c| c.bytes_in),
        ("bytes_out_total", "counter", "Bytes (whole frames) real server to client.", |c| c.bytes_out),
    ];
    for (suffix, kind, help, get) in cfields {
        let m = format!("lbd_service_{suffix}");
        o.family(&m, kind, help);
        for (l, c, _) in &svc_rows {
            o.sample(&m, &[("proto", &l[0]), ("vip", &l[1]), ("port", &l[2])], get(c));
        }
        let m = format!("lbd_real_server_{suffix}");
        o.family(&m, kind, help);
        for (l, c, _) in &rs_rows {
            o.sample(&m, &[("proto", &l[0]), ("vip", &l[1]), ("port", &l[2]), ("real_server", &l[3])], get(c));
        }
    }
    o.family("lbd_service_real_servers", "gauge", "Real servers configured for the service.");
    for (l, _, n) in &svc_rows {
        o.sample("lbd_service_real_servers", &[("proto", &l[0]), ("vip", &l[1]), ("port", &l[2])], *n);
    }
    o.family("lbd_real_server_weight", "gauge", "Configured weight (0: quiesced).");
    for (l, _, w) in &rs_rows {
        o.sample("lbd_real_server_weight", &[("proto", &l[0]), ("vip", &l[1]), ("port", &l[2]), ("real_server", &l[3])], *w);
    }
    o.family("lbd_real_server_up", "gauge", "1 when the real server's health check passes (or it has none), 0 when down.");
    for (l, up) in &up_rows {
        o.sample("lbd_real_server_up", &[("vip", &l[0]), ("port", &l[1]), ("proto", &l[2]), ("rs", &l[3]), ("rs_port", &l[4])], *up);
    }
    vrrp(&mut o, control);
    sync(&mut o, control);
    o.0
}

/// The listeners' connection counters.
/// Every scalar counter of the fast path as `lbd_worker_<name>_total`, and every drop reason
/// as a `reason` of `lbd_worker_drops_total`: a counter or reason added to
/// `fastpath::verdict` is exported without a change here.
fn worker_counters(o: &mut Out, wname: &[String], counters: &[&Counters]) {
    if let Some(c) = counters.first() {
        for (k, (name, _)) in c.scalars().iter().enumerate() {
            let metric = format!("lbd_worker_{name}_total");
            o.family(&metric, "counter", &format!("Worker counter {name}."));
            for (i, c) in counters.iter().enumerate() {
                o.sample(&metric, &[("worker", &wname[i])], c.scalars()[k].1);
            }
        }
    }
    o.family("lbd_worker_drops_total", "counter", "Packets dropped, by reason.");
    for (i, c) in counters.iter().enumerate() {
        for r in DropReason::ALL {
            o.sample("lbd_worker_drops_total", &[("worker", &wname[i]), ("reason", r.name())], c.drops_for(*r));
        }
    }
}

pub fn render_listeners(listeners: &[Arc<ListenerStats>]) -> String {
    let mut o = Out(String::with_capacity(2048));
    type Field = fn(&ListenerStats) -> u64;
    let fields: [(&str, &str, &str, Field); 5] = [
        ("lbd_listener_connections", "gauge", "Connections open on the listener.", |l| l.open.load(Ordering::Relaxed) as u64),
        ("lbd_listener_connections_total", "counter", "Connections accepted and served.", |l| l.accepted.load(Ordering::Relaxed)),
        ("lbd_listener_rejected_total", "counter", "Connections closed at once because api_max_connections were open.", |l| {
            l.rejected.load(Ordering::Relaxed)
        }),
        ("lbd_listener_idle_closed_total", "counter", "Connections closed after api_idle_timeout_s without traffic.", |l| {
            l.idle_closed.load(Ordering::Relaxed)
        }),
        ("lbd_listener_accept_errors_total", "counter", "Accept failures (such as running out of file descriptors); the listener retries.", |l| {
            l.accept_errors.load(Ordering::Relaxed)
        }),
    ];
    for (name, kind, help, get) in fields {
        o.family(name, kind, help);
        for l in listeners {
            o.sample(name, &[("listener", l.name)], get(l));
        }
    }
    o.0
}

/// Session sync (the sync thread's side; the workers' adoption counters are
/// `lbd_worker_sync_*_total`).
fn sync(o: &mut Out, control: &Control) {
    let v = control.shared().sync.view();
    o.family("lbd_sync_daemon", "gauge", "1 per running sync daemon (role master or backup).");
    for d in &v.daemons {
        o.sample("lbd_sync_daemon", &[("role", d.role.name()), ("mcast_interface", &d.spec.interface), ("syncid", &d.spec.syncid.to_string())], 1);
    }
    let c = &v.counters;
    for (name, help, n) in [
        ("lbd_sync_sent_messages_total", "Sync messages multicast (master).", c.sent_messages),
        ("lbd_sync_sent_conns_total", "Session records in them.", c.sent_conns),
        ("lbd_sync_send_dropped_total", "Session records not sent (no master daemon, send errors).", c.send_dropped),
        ("lbd_sync_received_messages_total", "Sync messages received (backup).", c.received_messages),
        ("lbd_sync_received_conns_total", "Session records received.", c.received_conns),
        ("lbd_sync_bulk_received_conns", "Records received since this backup asked for a bulk sync.", v.bulk_received),
        ("lbd_sync_bulk_served_total", "Bulk syncs served as a master.", v.bulk_served),
        ("lbd_sync_ready", "1 unless a backup daemon waits for its bulk sync (lb-slowpath does not preempt until then).", u64::from(v.ready)),
    ] {
        o.family(name, if name.ends_with("_total") { "counter" } else { "gauge" }, help);
        o.sample(name, &[], n);
    }
    o.family("lbd_sync_dropped_total", "counter", "Sync messages and records dropped by the sync thread, by reason.");
    for (reason, n) in &c.dropped {
        o.sample("lbd_sync_dropped_total", &[("reason", reason)], *n);
    }
    o.family("lbd_sync_bulk_state", "gauge", "1 for this backup's bulk sync state (none, waiting, receiving, done, timed_out).");
    for st in ["none", "waiting", "receiving", "done", "timed_out"] {
        o.sample("lbd_sync_bulk_state", &[("state", st)], u64::from(v.bulk.name() == st));
    }
}

/// Address ownership and VRRP instance states.
fn vrrp(o: &mut Out, control: &Control) {
    let (instances, addrs) = control.vrrp();
    o.family("lbd_address_owned", "gauge", "1 when this director owns (answers ARP for and forwards) the address, 0 when not (VRRP backup).");
    for a in &addrs {
        let kind = match a.kind {
            Some(fastpath::service::AddrKind::Vip) => "vip",
            Some(fastpath::service::AddrKind::Laddr) => "laddr",
            None => "none",
        };
        o.sample("lbd_address_owned", &[("addr", &a.addr.to_string()), ("kind", kind)], u64::from(a.owned));
    }
    o.family("lbd_vrrp_state", "gauge", "1 for the VRRP instance's current state (MASTER, BACKUP, FAULT, INIT), 0 for the others.");
    for i in &instances {
        for s in VrrpState::ALL {
            o.sample("lbd_vrrp_state", &[("instance", &i.name), ("state", s.name())], u64::from(i.state == s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// New fast-path counters and drop reasons (the SYN proxy's among them) need no change
    /// here: every one is exported, with its value, per worker.
    #[test]
    fn every_counter_and_drop_reason_is_exported() {
        let mut slots = [0u64; fastpath::verdict::COUNTER_SLOTS];
        for (i, v) in slots.iter_mut().enumerate() {
            *v = 1000 + i as u64;
        }
        let c = Counters::from_array(&slots);
        let mut o = Out(String::new());
        worker_counters(&mut o, &["0".to_owned()], &[&c]);
        for (name, v) in c.scalars() {
            assert!(o.0.contains(&format!("# TYPE lbd_worker_{name}_total counter\nlbd_worker_{name}_total{{worker=\"0\"}} {v}\n")), "{name}");
        }
        for r in DropReason::ALL {
            let line = format!("lbd_worker_drops_total{{worker=\"0\",reason=\"{}\"}} {}\n", r.name(), c.drops_for(*r));
            assert!(o.0.contains(&line), "{line}");
        }
        assert_eq!(o.0.lines().filter(|l| !l.starts_with('#')).count(), c.scalars().len() + DropReason::COUNT);
    }
}
