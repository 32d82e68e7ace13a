//! The sync thread (`lbd-sync`): the I/O around session sync. Once a millisecond or so it
//! follows the daemon settings (API, keepalived.conf, the VRRP instance's state), receives sync
//! messages and hands their records to the home workers, packs the workers' records into
//! messages and multicasts them, serves one page of a bulk sync, and asks for one as a starting
//! backup. Decisions about bulk sync are `engine`'s.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fastpath::sync::home_worker;
use fastpath::wire::lvsync::{self, Control as SyncControl, Message, MessageWriter, SyncConn};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::engine::{BulkClient, BulkServer};
use super::{DaemonSpec, DaemonView, Role, Source, SpecInput, SyncCounters, SyncView, IN_BATCH_LEN};
use crate::control::mailbox::{ask_one, Reply, Request};
use crate::control::ownership::VrrpState;
use crate::control::Control;
use crate::shared::Shared;

/// How often daemon settings and VRRP states are looked at.
const RECONCILE_MS: u64 = 100;
/// Datagrams read per socket per pass.
const RECV_PER_PASS: usize = 512;
/// Records asked of a worker per bulk page.
const BULK_PAGE: usize = 1024;
/// Socket buffer sizes asked for (the kernel caps them at its maxima).
const SOCK_BUF: usize = 8 << 20;

/// One daemon with its socket.
struct Live {
    view: DaemonView,
    sock: UdpSocket,
}

struct SyncThread {
    control: Arc<Control>,
    shared: Arc<Shared>,
    workers: u16,
    master: Option<Live>,
    backup: Option<Live>,
    client: BulkClient,
    server: BulkServer,
    counters: SyncCounters,
    /// Settings that failed to open, with the error, so it is logged once.
    failed: Option<(DaemonView, String)>,
    pending: Vec<Vec<SyncConn>>,
    buf: Vec<u8>,
    epoch: Instant,
    last_reconcile: Option<u64>,
}

/// Starts the sync thread; it runs until `stop` is set.
pub fn start(control: Arc<Control>, shared: Arc<Shared>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    let workers = u16::try_from(shared.mailboxes.len()).unwrap_or(u16::MAX);
    std::thread::Builder::new().name("lbd-sync".into()).spawn(move || {
        let mut t = SyncThread {
            control,
            pending: (0..workers).map(|_| Vec::new()).collect(),
            shared,
            workers,
            master: None,
            backup: None,
            client: BulkClient::default(),
            server: BulkServer::default(),
            counters: SyncCounters::default(),
            failed: None,
            buf: vec![0; 65_536],
            epoch: Instant::now(),
            last_reconcile: None,
        };
        while !stop.load(Ordering::Relaxed) {
            if !t.pass() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        t.shared.sync.master.store(false, Ordering::Relaxed);
    })
}

/// The desired daemons: API ones with fixed roles, the keepalived.conf one by its VRRP state.
fn desired(control: &Control, shared: &Shared) -> (Vec<DaemonView>, Option<(DaemonView, String)>) {
    let mut out = Vec::new();
    let mut bad = None;
    let api = shared.sync.api.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    for (role, spec) in [(Role::Master, api.master), (Role::Backup, api.backup)] {
        if let Some(spec) = spec {
            out.push(DaemonView { role, spec, source: Source::Api(role), active: true });
        }
    }
    if let Some(d) = control.lvs_sync_daemon() {
        let (syncid, maxlen, port, ttl, group) = d.effective();
        let input = SpecInput { interface: d.interface.clone(), syncid: Some(u32::from(syncid)), maxlen: u32::from(maxlen), group: group.to_string(), port: u32::from(port), ttl: u32::from(ttl) };
        let role = if control.vrrp_state(&d.vrrp_instance) == Some(VrrpState::Master) { Role::Master } else { Role::Backup };
        match DaemonSpec::new(&input, |n| control.tap_of(n)) {
            // An API daemon of the same role takes precedence.
            Ok(spec) if !out.iter().any(|v| v.role == role) => out.push(DaemonView { role, spec, source: Source::Config { vrrp_instance: d.vrrp_instance.clone() }, active: true }),
            Ok(_) => {}
            Err(e) => {
                let v = DaemonView { role, spec: DaemonSpec { interface: d.interface.clone(), tap: String::new(), syncid, maxlen, group, port, ttl }, source: Source::Config { vrrp_instance: d.vrrp_instance }, active: false };
                bad = Some((v, e.to_string()));
            }
        }
    }
    (out, bad)
}

/// A UDP socket bound to the group and port on the TAP, joined to the group there.
fn open(spec: &DaemonSpec) -> std::io::Result<UdpSocket> {
    let ifc = if_addrs::get_if_addrs()?
        .into_iter()
        .find(|i| i.name == spec.tap && i.ip().is_ipv4())
        .ok_or_else(|| std::io::Error::new(ErrorKind::NotFound, format!("interface {} has no IPv4 address (sync messages need a source address on the port's TAP)", spec.tap)))?;
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(spec.tap.as_bytes()))?;
    s.bind(&SocketAddrV4::new(spec.group, spec.port).into())?;
    let at = match ifc.index {
        Some(i) => InterfaceIndexOrAddress::Index(i),
        None => match ifc.ip() {
            std::net::IpAddr::V4(a) => InterfaceIndexOrAddress::Address(a),
            std::net::IpAddr::V6(_) => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
        },
    };
    s.join_multicast_v4_n(&spec.group, &at)?;
    s.set_multicast_loop_v4(false)?;
    s.set_multicast_ttl_v4(u32::from(spec.ttl))?;
    s.set_nonblocking(true)?;
    let _ = s.set_recv_buffer_size(SOCK_BUF);
    let _ = s.set_send_buffer_size(SOCK_BUF);
    Ok(s.into())
}

fn describe(v: &DaemonView) -> String {
    let from = match &v.source {
        Source::Api(_) => "api".to_string(),
        Source::Config { vrrp_instance } => format!("lvs_sync_daemon, vrrp {vrrp_instance}"),
    };
    format!("{} sync daemon (mcast={}, syncid={}, group={}, port={}) [{from}]", v.role.name(), v.spec.interface, v.spec.syncid, v.spec.group, v.spec.port)
}

impl SyncThread {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One pass; returns whether it did anything (else the caller sleeps a little).
    fn pass(&mut self) -> bool {
        let now = self.now_ms();
        if self.last_reconcile.is_none_or(|t| now >= t + RECONCILE_MS) {
            self.last_reconcile = Some(now);
            self.reconcile(now);
        }
        let mut busy = self.receive(now);
        busy |= self.send_out();
        busy |= self.serve_bulk();
        if let Some(nonce) = self.client.tick(now) {
            self.send_control(Role::Backup, &SyncControl::BulkRequest { nonce });
        }
        self.flush_pending();
        busy
    }

    fn reconcile(&mut self, now: u64) {
        let (want, bad) = desired(&self.control, &self.shared);
        for role in [Role::Master, Role::Backup] {
            let w = want.iter().find(|v| v.role == role);
            let slot = if role == Role::Master { &mut self.master } else { &mut self.backup };
            let same = match (slot.as_ref(), w) {
                (Some(l), Some(w)) => l.view.spec == w.spec && l.view.source == w.source,
                (None, None) => true,
                _ => false,
            };
            if same {
                continue;
            }
            if let Some(old) = slot.take() {
                tracing::info!("sync: stopped {}", describe(&old.view));
                if role == Role::Master {
                    self.server.stop();
                } else {
                    self.client.stop();
                }
            }
            let Some(w) = w else { continue };
            match open(&w.spec) {
                Ok(sock) => {
                    tracing::info!("sync: started {}", describe(w));
                    *slot = Some(Live { view: w.clone(), sock });
                    if role == Role::Backup {
                        let nonce = u32::try_from(crate::control::random_id() & 0xffff_ffff).unwrap_or(1);
                        self.client.start(now, nonce);
                        self.send_control(Role::Backup, &SyncControl::BulkRequest { nonce });
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    if self.failed.as_ref().is_none_or(|(v, m)| v != w || *m != msg) {
                        tracing::warn!("sync: cannot start {}: {msg}; retrying", describe(w));
                        self.failed = Some((w.clone(), msg));
                    }
                }
            }
        }
        if let Some((v, msg)) = bad {
            if self.failed.as_ref().is_none_or(|(fv, m)| *fv != v || *m != msg) {
                tracing::warn!("sync: lvs_sync_daemon not started: {msg}");
                self.failed = Some((v, msg));
            }
        }
        self.shared.sync.master.store(self.master.is_some(), Ordering::Relaxed);
        self.publish();
    }

    fn publish(&self) {
        let daemons = [&self.master, &self.backup].into_iter().flatten().map(|l| l.view.clone()).collect();
        let v = SyncView {
            daemons,
            counters: self.counters.clone(),
            bulk: self.client.state,
            bulk_received: self.client.received,
            bulk_expected: self.client.expected,
            bulk_served: self.server.served,
            bulk_sent_conns: self.server.sent_total,
            ready: self.client.ready(),
        };
        *self.shared.sync.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = v;
    }

    /// Reads what both sockets have; returns whether anything came.
    fn receive(&mut self, now: u64) -> bool {
        let mut any = false;
        for role in [Role::Master, Role::Backup] {
            for _ in 0..RECV_PER_PASS {
                let live = if role == Role::Master { &self.master } else { &self.backup };
                let Some(live) = live else { break };
                let n = match live.sock.recv(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => break,
                    Err(_) => {
                        self.counters.drop("recv_error", 1);
                        break;
                    }
                };
                any = true;
                let syncid = live.view.spec.syncid;
                let buf = std::mem::take(&mut self.buf);
                self.handle(role, syncid, buf.get(..n).unwrap_or(&[]), now);
                self.buf = buf;
            }
        }
        any
    }

    fn handle(&mut self, role: Role, syncid: u8, data: &[u8], now: u64) {
        // A backup with sync id 0 takes every id; a master answers requests for its own id.
        let (_, msg) = match lvsync::parse(data, syncid) {
            Ok(m) => m,
            Err(e) => {
                if role == Role::Backup {
                    self.counters.drop(e.reason(), 1);
                }
                return;
            }
        };
        match (role, msg) {
            (Role::Master, Message::Control(SyncControl::BulkRequest { nonce })) => {
                self.server.on_request(nonce);
            }
            (Role::Backup, Message::Control(SyncControl::BulkEnd { nonce, conns })) => {
                self.client.on_end(nonce, conns);
                self.publish();
            }
            (Role::Backup, Message::Conns(entries)) => {
                self.counters.received_messages += 1;
                let mut n = 0;
                for e in entries {
                    match e {
                        Ok(c) => {
                            n += 1;
                            let w = usize::from(home_worker(&c, self.workers));
                            if let Some(p) = self.pending.get_mut(w) {
                                p.push(c);
                                if p.len() >= IN_BATCH_LEN {
                                    let batch = std::mem::take(p);
                                    Self::push_inbound(&self.shared, &mut self.counters, w, batch);
                                }
                            }
                        }
                        Err(lvsync::EntryError::Skipped(r) | lvsync::EntryError::Malformed(r)) => self.counters.drop(r, 1),
                    }
                }
                self.counters.received_conns += n;
                self.client.on_records(n, now);
            }
            _ => {}
        }
    }

    fn push_inbound(shared: &Shared, counters: &mut SyncCounters, w: usize, batch: Vec<SyncConn>) {
        let Some(q) = shared.sync.inbound.get(w) else { return };
        if let Err(b) = q.push(batch) {
            counters.drop("queue_full", b.len() as u64);
        }
    }

    fn flush_pending(&mut self) {
        for w in 0..self.pending.len() {
            if !self.pending[w].is_empty() {
                let batch = std::mem::take(&mut self.pending[w]);
                Self::push_inbound(&self.shared, &mut self.counters, w, batch);
            }
        }
    }

    /// Packs the workers' records into messages and sends them; returns whether any came.
    fn send_out(&mut self) -> bool {
        let mut records: Vec<SyncConn> = Vec::new();
        for w in 0..self.shared.sync.out.len() {
            while let Some(mut batch) = self.shared.sync.out[w].pop() {
                records.extend_from_slice(&batch);
                batch.clear();
                let _ = self.shared.sync.spare[w].push(batch);
            }
        }
        if records.is_empty() {
            return false;
        }
        if self.master.is_none() {
            self.counters.send_dropped += records.len() as u64;
            return true;
        }
        self.send_records(&records);
        true
    }

    /// Sends records as full messages through the master socket.
    fn send_records(&mut self, records: &[SyncConn]) {
        let Some(m) = &self.master else { return };
        let (maxlen, syncid, to) = (usize::from(m.view.spec.maxlen), m.view.spec.syncid, SocketAddrV4::new(m.view.spec.group, m.view.spec.port));
        let mut msg = vec![0u8; maxlen];
        let mut i = 0;
        while i < records.len() {
            let Ok(mut wr) = MessageWriter::new(&mut msg, syncid) else { return };
            let start = i;
            while i < records.len() && wr.push(&records[i]) {
                i += 1;
            }
            if i == start {
                // A record that does not fit an empty message (maxlen too small): skip it.
                self.counters.send_dropped += 1;
                i += 1;
                continue;
            }
            let n = wr.finish();
            let sent = (i - start) as u64;
            match m.sock.send_to(msg.get(..n).unwrap_or(&[]), to) {
                Ok(_) => {
                    self.counters.sent_messages += 1;
                    self.counters.sent_conns += sent;
                }
                Err(_) => self.counters.send_dropped += sent,
            }
        }
    }

    fn send_control(&mut self, role: Role, c: &SyncControl) {
        let live = if role == Role::Master { &self.master } else { &self.backup };
        let Some(l) = live else { return };
        let mut b = [0u8; 64];
        if let Ok(n) = lvsync::emit_control(&mut b, l.view.spec.syncid, c) {
            let to = SocketAddrV4::new(l.view.spec.group, l.view.spec.port);
            if l.sock.send_to(b.get(..n).unwrap_or(&[]), to).is_err() {
                self.counters.drop("send_error", 1);
            }
        }
    }

    /// One page of a bulk sync, if one is being served; returns whether it did one.
    fn serve_bulk(&mut self) -> bool {
        let Some(page) = self.server.next_page(self.now_ms()) else { return false };
        if self.master.is_none() {
            self.server.stop();
            return false;
        }
        let reply = ask_one(&self.shared.mailboxes, usize::from(page.worker), Request::ExportSessions { cursor: page.cursor, max: BULK_PAGE }, crate::control::WORKER_TIMEOUT);
        let (records, next) = match reply {
            Ok(Reply::Export { records, next }) => (records, next),
            // A worker that does not answer: try the same page next pass.
            _ => return true,
        };
        self.send_records(&records);
        if let Some((nonce, total)) = self.server.on_page(records.len() as u64, next, self.workers) {
            // Twice: a lost marker would otherwise cost the backup a whole new bulk.
            for _ in 0..2 {
                self.send_control(Role::Master, &SyncControl::BulkEnd { nonce, conns: total });
            }
            tracing::info!("sync: bulk sync served: {total} sessions");
        }
        true
    }
}
