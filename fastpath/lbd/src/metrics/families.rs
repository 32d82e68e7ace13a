//! What `/metrics` says, gathered from the control side into plain families, then encoded by
//! `prometheus-client` (so names, HELP, TYPE and label escaping follow its encoder).
//!
//! Counter families are named here without `_total`: the encoder appends it to the samples
//! (OpenMetrics), and `text::to_prometheus` to the family (text format 0.0.4).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use fastpath::verdict::{Counters, SCALAR_INFO};
use fastpath::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::api::listen::ListenerStats;
use crate::control::health::Status;
use crate::control::mailbox::ConnCount;
use crate::control::ownership::VrrpState;
use crate::control::{service_key, vs_key, Control};

/// Label name and value pairs of one sample.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    Int(u64),
    Float(f64),
}

/// One metric family with its samples.
#[derive(Debug)]
pub(crate) struct Family {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<(Labels, Value)>,
}

impl Family {
    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family { name: name.into(), help: help.into(), kind: MetricType::Counter, samples: Vec::new() }
    }
    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family { name: name.into(), help: help.into(), kind: MetricType::Gauge, samples: Vec::new() }
    }
    pub fn with(mut self, labels: Labels, v: u64) -> Family {
        self.push(labels, v);
        self
    }
    pub fn push(&mut self, labels: Labels, v: u64) {
        self.samples.push((escaped(labels), Value::Int(v)));
    }
    pub fn push_f(&mut self, labels: Labels, v: f64) {
        self.samples.push((escaped(labels), Value::Float(v)));
    }
}

/// Label values escaped as both text formats require (backslash, double quote, newline):
/// prometheus-client 0.24 writes them as given, and some come from configuration (VRRP
/// instance names, interface names).
fn escaped(labels: Labels) -> Labels {
    labels
        .into_iter()
        .map(|(k, v)| {
            if v.contains(['\\', '"', '\n']) {
                (k, v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
            } else {
                (k, v)
            }
        })
        .collect()
}

/// Families gathered at one scrape, encoded as they are.
#[derive(Debug)]
pub(crate) struct Gathered(pub Vec<Family>);

fn encode_value(kind: &MetricType, v: Value, e: prometheus_client::encoding::MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
    match (kind, v) {
        (MetricType::Counter, Value::Int(v)) => ConstCounter::new(v).encode(e),
        (MetricType::Counter, Value::Float(v)) => ConstCounter::new(v).encode(e),
        (_, Value::Int(v)) => ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(e),
        (_, Value::Float(v)) => ConstGauge::new(v).encode(e),
    }
}

impl Collector for Gathered {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let mut m = encoder.encode_descriptor(&f.name, &f.help, None, f.kind)?;
            match f.samples.as_slice() {
                [(labels, v)] if labels.is_empty() => encode_value(&f.kind, *v, m)?,
                samples => {
                    for (labels, v) in samples {
                        encode_value(&f.kind, *v, m.encode_family(labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The metric name of a fast-path counter: its name, then its unit unless the name says it
/// (`rx` counts frames: `lbd_worker_rx_frames`; `sessions_created`: as it is).
pub(crate) fn worker_counter_name(name: &str, unit: &str) -> String {
    if name.split('_').any(|w| w == unit) {
        format!("lbd_worker_{name}")
    } else {
        format!("lbd_worker_{name}_{unit}")
    }
}

/// Every scalar counter of the fast path as `lbd_worker_<name>[_<unit>]_total` with its doc
/// comment as HELP, and every drop reason as a `reason` of `lbd_worker_dropped_packets_total`:
/// a counter or reason added to `fastpath::verdict` is exported without a change here.
pub(crate) fn worker_counters(out: &mut Vec<Family>, wname: &[String], counters: &[&Counters]) {
    for (k, (name, unit, doc)) in SCALAR_INFO.iter().enumerate() {
        let mut f = Family::counter(worker_counter_name(name, unit), doc.trim());
        for (i, c) in counters.iter().enumerate() {
            f.push(vec![("worker", wname[i].clone())], c.scalars()[k].1);
        }
        out.push(f);
    }
    let mut f = Family::counter("lbd_worker_dropped_packets", "Packets dropped, by reason (lbctl stats shows the same).");
    for (i, c) in counters.iter().enumerate() {
        for r in DropReason::ALL {
            f.push(vec![("worker", wname[i].clone()), ("reason", r.name().to_owned())], c.drops_for(*r));
        }
    }
    out.push(f);
}

fn svc_labels(l: &[String; 3]) -> Labels {
    vec![("proto", l[0].clone()), ("vip", l[1].clone()), ("vport", l[2].clone())]
}

fn rs_labels(l: &[String; 5]) -> Labels {
    vec![("proto", l[0].clone()), ("vip", l[1].clone()), ("vport", l[2].clone()), ("rip", l[3].clone()), ("rport", l[4].clone())]
}

/// node_exporter's ipvs labels for a real server of a service.
fn node_labels(l: &[String; 5]) -> Labels {
    vec![
        ("local_address", l[1].clone()),
        ("local_port", l[2].clone()),
        ("remote_address", l[3].clone()),
        ("remote_port", l[4].clone()),
        ("proto", l[0].clone()),
        ("local_mark", String::new()),
    ]
}

/// Everything but `process_*`.
pub(crate) fn gather(control: &Control, listeners: &[Arc<ListenerStats>]) -> Vec<Family> {
    let mut out = Vec::new();
    let env = control.env();
    let (conf, health, generation) = control.config_with_health();
    out.push(Family::gauge("lbd_info", "Always 1; the labels say which lbd this is.").with(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1));
    out.push(Family::gauge("lbd_uptime_seconds", "Seconds since lbd started.").with(vec![], env.started.elapsed().as_secs()));
    out.push(Family::gauge("lbd_config_generation", "Generation of the published service table.").with(vec![], generation));
    out.push(Family::gauge("lbd_services", "Virtual services configured.").with(vec![], conf.virtual_servers.len() as u64));

    let workers = control.worker_counters();
    let wname: Vec<String> = workers.iter().map(|(w, _)| w.worker.to_string()).collect();
    let mut sessions = Family::gauge("lbd_worker_sessions", "Live sessions in the worker's table.");
    let mut loops = Family::counter("lbd_worker_loops", "Poll-loop passes.");
    for (i, (w, _)) in workers.iter().enumerate() {
        sessions.push(vec![("worker", wname[i].clone())], w.sessions.load(Ordering::Relaxed));
        loops.push(vec![("worker", wname[i].clone())], w.loops.load(Ordering::Relaxed));
    }
    out.extend([sessions, loops]);
    let counters: Vec<&Counters> = workers.iter().map(|(_, c)| c).collect();
    worker_counters(&mut out, &wname, &counters);
    ports(&mut out, control);

    // Unauthenticated scrapes share one request to the workers per second; the counts are
    // kept incrementally by the workers (no session-table walk).
    let counts = control.conn_counts_cached(std::time::Duration::from_secs(1));
    out.push(Family::gauge("lbd_scrape_workers_ok", "1 if every worker answered for the connection counts below.").with(vec![], u64::from(counts.is_ok())));
    let counts = counts.unwrap_or_default();
    let mut svc_rows: Vec<([String; 3], ConnCount, u64)> = Vec::new();
    let mut rs_rows: Vec<([String; 5], ConnCount, u64, bool)> = Vec::new();
    for vs in &conf.virtual_servers {
        let k = service_key(vs_key(vs));
        let sl = [k.proto.to_string(), k.vip.to_string(), k.port.to_string()];
        let mut total = ConnCount::default();
        counts.iter().filter(|((p, v, _), _)| *p == k.proto && *v == (k.vip, k.port)).for_each(|(_, c)| total.add(c));
        for r in &vs.real_servers {
            let c = counts.get(&(k.proto, (k.vip, k.port), (r.ip, r.port))).copied().unwrap_or_default();
            let up = health.view(vs, r).status != Status::Down;
            rs_rows.push(([sl[0].clone(), sl[1].clone(), sl[2].clone(), r.ip.to_string(), r.port.to_string()], c, u64::from(r.weight), up));
        }
        svc_rows.push((sl, total, vs.real_servers.len() as u64));
    }
    type CountField = fn(&ConnCount) -> u64;
    let cfields: [(&str, bool, &str, CountField); 8] = [
        ("active_connections", false, "Established connections.", |c| c.active),
        ("inactive_connections", false, "Connections in other states.", |c| c.inactive),
        ("persistent_connections", false, "Persistence templates pointing at it (ipvsadm's PersistConn).", |c| c.persistent),
        ("connections", true, "Connections since start (rate() gives new connections per second).", |c| c.conns),
        ("incoming_packets", true, "Packets client to real server.", |c| c.pkts_in),
        ("outgoing_packets", true, "Packets real server to client.", |c| c.pkts_out),
        ("incoming_bytes", true, "Bytes (whole frames) client to real server.", |c| c.bytes_in),
        ("outgoing_bytes", true, "Bytes (whole frames) real server to client.", |c| c.bytes_out),
    ];
    for (suffix, counter, help, get) in cfields {
        let family = |name: String| if counter { Family::counter(name, help) } else { Family::gauge(name, help) };
        let mut f = family(format!("lbd_service_{suffix}"));
        for (l, c, _) in &svc_rows {
            f.push(svc_labels(l), get(c));
        }
        out.push(f);
        let mut f = family(format!("lbd_real_server_{suffix}"));
        for (l, c, _, _) in &rs_rows {
            f.push(rs_labels(l), get(c));
        }
        out.push(f);
    }
    let mut f = Family::gauge("lbd_service_real_servers", "Real servers configured for the service.");
    for (l, _, n) in &svc_rows {
        f.push(svc_labels(l), *n);
    }
    out.push(f);
    let mut weight = Family::gauge("lbd_real_server_weight", "Configured weight (0: quiesced).");
    let mut up = Family::gauge("lbd_real_server_up", "1 when the real server's health check passes (or it has none), 0 when down.");
    for (l, _, w, u) in &rs_rows {
        weight.push(rs_labels(l), *w);
        up.push(rs_labels(l), u64::from(*u));
    }
    out.extend([weight, up]);
    node_ipvs(&mut out, &svc_rows, &rs_rows);
    vrrp(&mut out, control);
    sync(&mut out, control);
    listener_families(&mut out, listeners);
    out
}

/// node_exporter's ipvs collector families, as it names and labels them: totals over every
/// service, and per real server its active and inactive connections and weight.
fn node_ipvs(out: &mut Vec<Family>, svc_rows: &[([String; 3], ConnCount, u64)], rs_rows: &[([String; 5], ConnCount, u64, bool)]) {
    let mut all = ConnCount::default();
    svc_rows.iter().for_each(|(_, c, _)| all.add(c));
    out.push(Family::counter("node_ipvs_connections", "The total number of connections made.").with(vec![], all.conns));
    out.push(Family::counter("node_ipvs_incoming_packets", "The total number of incoming packets.").with(vec![], all.pkts_in));
    out.push(Family::counter("node_ipvs_outgoing_packets", "The total number of outgoing packets.").with(vec![], all.pkts_out));
    out.push(Family::counter("node_ipvs_incoming_bytes", "The total amount of incoming data.").with(vec![], all.bytes_in));
    out.push(Family::counter("node_ipvs_outgoing_bytes", "The total amount of outgoing data.").with(vec![], all.bytes_out));
    let mut active = Family::gauge("node_ipvs_backend_connections_active", "The current active connections by local and remote address.");
    let mut inactive = Family::gauge("node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.");
    let mut weight = Family::gauge("node_ipvs_backend_weight", "The current backend weight by local and remote address.");
    for (l, c, w, _) in rs_rows {
        active.push(node_labels(l), c.active);
        inactive.push(node_labels(l), c.inactive);
        weight.push(node_labels(l), *w);
    }
    out.extend([active, inactive, weight]);
}

fn ports(out: &mut Vec<Family>, control: &Control) {
    let env = control.env();
    let mut rows = Vec::new();
    for p in &env.ports {
        for (name, port, kind) in p.port.iter().map(|x| (p.name.as_str(), x, "port")).chain(p.tap.iter().map(|(n, x)| (n.as_str(), x, "tap"))) {
            rows.push((name.to_owned(), port.name().to_owned(), kind, port.stats().unwrap_or_default()));
        }
    }
    type Field = fn(&dpdk::PortStats) -> u64;
    let fields: [(&str, &str, Field); 8] = [
        ("lbd_port_rx_packets", "Packets received.", |s| s.ipackets),
        ("lbd_port_tx_packets", "Packets sent.", |s| s.opackets),
        ("lbd_port_rx_bytes", "Bytes received.", |s| s.ibytes),
        ("lbd_port_tx_bytes", "Bytes sent.", |s| s.obytes),
        ("lbd_port_missed_packets", "Packets the NIC dropped for want of a receive descriptor (imissed).", |s| s.imissed),
        ("lbd_port_rx_errors", "Receive errors.", |s| s.ierrors),
        ("lbd_port_tx_errors", "Transmit errors.", |s| s.oerrors),
        ("lbd_port_rx_nombuf_errors", "Receive failures for want of an mbuf.", |s| s.rx_nombuf),
    ];
    for (metric, help, get) in fields {
        let mut f = Family::counter(metric, help);
        for (name, dev, kind, s) in &rows {
            f.push(vec![("port", name.clone()), ("device", dev.clone()), ("port_kind", (*kind).to_owned())], get(s));
        }
        out.push(f);
    }
}

/// The listeners' connection counters.
fn listener_families(out: &mut Vec<Family>, listeners: &[Arc<ListenerStats>]) {
    type Field = fn(&ListenerStats) -> u64;
    let fields: [(&str, bool, &str, Field); 5] = [
        ("lbd_listener_connections", false, "Connections open on the listener.", |l| l.open.load(Ordering::Relaxed) as u64),
        ("lbd_listener_accepted_connections", true, "Connections accepted and served.", |l| l.accepted.load(Ordering::Relaxed)),
        ("lbd_listener_rejected_connections", true, "Connections closed at once because api_max_connections were open.", |l| l.rejected.load(Ordering::Relaxed)),
        ("lbd_listener_idle_closed_connections", true, "Connections closed after api_idle_timeout_s without traffic.", |l| l.idle_closed.load(Ordering::Relaxed)),
        ("lbd_listener_accept_errors", true, "Accept failures (such as running out of file descriptors); the listener retries.", |l| l.accept_errors.load(Ordering::Relaxed)),
    ];
    for (name, counter, help, get) in fields {
        let mut f = if counter { Family::counter(name, help) } else { Family::gauge(name, help) };
        for l in listeners {
            f.push(vec![("listener", l.name.to_owned())], get(l));
        }
        out.push(f);
    }
}

/// Session sync (the sync thread's side; the workers' adoption counters are
/// `lbd_worker_sync_*`).
fn sync(out: &mut Vec<Family>, control: &Control) {
    let v = control.shared().sync.view();
    let mut f = Family::gauge("lbd_sync_daemon", "1 per running sync daemon (role master or backup).");
    for d in &v.daemons {
        f.push(vec![("role", d.role.name().to_owned()), ("mcast_interface", d.spec.interface.clone()), ("syncid", d.spec.syncid.to_string())], 1);
    }
    out.push(f);
    let c = &v.counters;
    for (name, counter, help, n) in [
        ("lbd_sync_sent_messages", true, "Sync messages multicast (master).", c.sent_messages),
        ("lbd_sync_sent_records", true, "Session records in them.", c.sent_conns),
        ("lbd_sync_send_dropped_records", true, "Session records not sent (no master daemon, send errors).", c.send_dropped),
        ("lbd_sync_received_messages", true, "Sync messages received (backup).", c.received_messages),
        ("lbd_sync_received_records", true, "Session records received.", c.received_conns),
        ("lbd_sync_bulk_received_records", false, "Records received since this backup asked for a bulk sync.", v.bulk_received),
        ("lbd_sync_bulk_served", true, "Bulk syncs served as a master.", v.bulk_served),
        ("lbd_sync_ready", false, "1 unless a backup daemon waits for its bulk sync (lb-slowpath does not preempt until then).", u64::from(v.ready)),
    ] {
        out.push(if counter { Family::counter(name, help) } else { Family::gauge(name, help) }.with(vec![], n));
    }
    let mut f = Family::counter("lbd_sync_dropped", "Sync messages and records dropped by the sync thread, by reason.");
    for (reason, n) in &c.dropped {
        f.push(vec![("reason", (*reason).to_string())], *n);
    }
    out.push(f);
    let mut f = Family::gauge("lbd_sync_bulk_state", "1 for this backup's bulk sync state (none, waiting, receiving, done, timed_out).");
    for st in ["none", "waiting", "receiving", "done", "timed_out"] {
        f.push(vec![("bulk_state", st.to_owned())], u64::from(v.bulk.name() == st));
    }
    out.push(f);
}

/// Address ownership and VRRP instance states.
fn vrrp(out: &mut Vec<Family>, control: &Control) {
    let (instances, addrs) = control.vrrp();
    let mut f = Family::gauge("lbd_address_owned", "1 when this director owns (answers ARP for and forwards) the address, 0 when not (VRRP backup).");
    for a in &addrs {
        let kind = match a.kind {
            Some(fastpath::service::AddrKind::Vip) => "vip",
            Some(fastpath::service::AddrKind::Laddr) => "laddr",
            None => "none",
        };
        f.push(vec![("addr", a.addr.to_string()), ("addr_kind", kind.to_owned())], u64::from(a.owned));
    }
    out.push(f);
    let mut f = Family::gauge("lbd_vrrp_state", "1 for the VRRP instance's current state (MASTER, BACKUP, FAULT, INIT), 0 for the others.");
    for i in &instances {
        for s in VrrpState::ALL {
            f.push(vec![("instance", i.name.clone()), ("state", s.name().to_owned())], u64::from(i.state == s));
        }
    }
    out.push(f);
}
