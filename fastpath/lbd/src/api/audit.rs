//! The API's audit log: every call that can change lbd (services, real servers, local
//! addresses, timeouts, counters, reloads, health, ownership, sync daemons) is logged once, at
//! info on target [`TARGET`], when it ends:
//!
//! `api: AddService TCP 10.0.1.100:80 wrr FNAT by pid 4242 (lbctl) uid 0: ok`
//!
//! *who* is the Unix-socket peer's credentials (`SO_PEERCRED`) or the TCP peer's address
//! (`api_listen`, after the token was checked); *what* is read from the request itself, so the
//! handlers carry no audit code. A handler may add what the call did ([`result`]: a reload's
//! summary) or say that it changed nothing ([`unchanged`]: lb-slowpath repeats its state
//! every second; such a call is logged at debug). A refused call is logged with its status; a
//! call that never answers (timeout, caller gone) with that. Reads are not logged.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Full, Limited};
use lb_api::pb;
use prost::Message;
use tonic::body::BoxBody;
use tonic::codegen::{http, Service};
use tonic::transport::server::{TcpConnectInfo, UdsConnectInfo};
use tonic::Status;

/// The target of audit lines (`LBD_LOG=info,lbd::audit=off` turns them off).
pub const TARGET: &str = "lbd::audit";
/// The gRPC service whose changing methods are audited.
const SERVICE: &str = "lb.v1.LoadBalancer";
/// Requests larger than tonic's decoding limit (4 MiB and the frame header) are refused
/// before they are buffered.
const MAX_REQUEST: usize = 4 * 1024 * 1024 + 5;
/// The methods that change something; every other one reads.
const CHANGES: &[&str] = &[
    "AddService",
    "EditService",
    "DeleteService",
    "ClearServices",
    "AddRealServer",
    "EditRealServer",
    "DeleteRealServer",
    "AddLocalAddresses",
    "DeleteLocalAddresses",
    "SetTimeouts",
    "ZeroCounters",
    "Reload",
    "Apply",
    "SetHealth",
    "SetOwnership",
    "StartDaemon",
    "StopDaemon",
];

#[derive(Debug, Default)]
struct Note {
    result: Option<String>,
    unchanged: bool,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<Note>>;
}

fn note(f: impl FnOnce(&mut Note)) {
    let _ = NOTE.try_with(|n| f(&mut n.lock().unwrap_or_else(PoisonError::into_inner)));
}

/// What the audited call did, for its line (outside an audited call: nothing happens).
pub fn result(text: impl Into<String>) {
    let text = text.into();
    note(|n| n.result = Some(text));
}

/// The audited call changed nothing: its line is logged at debug, not info.
pub fn unchanged() {
    note(|n| n.unchanged = true);
}

/// The audited method of a request path (`/lb.v1.LoadBalancer/AddService`), if it changes
/// something.
pub fn changing_method(path: &str) -> Option<&'static str> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (service == SERVICE).then(|| CHANGES.iter().copied().find(|m| *m == method)).flatten()
}

/// Who is calling: the peer's credentials on the Unix socket, its address on TCP.
pub fn peer(ext: &http::Extensions) -> String {
    if let Some(u) = ext.get::<UdsConnectInfo>() {
        return match &u.peer_cred {
            Some(c) => {
                let pid = c.pid().map(|p| {
                    let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).map(|c| format!(" ({})", c.trim())).unwrap_or_default();
                    format!("pid {p}{comm} ")
                });
                format!("{}uid {} gid {}", pid.unwrap_or_default(), c.uid(), c.gid())
            }
            None => "a local caller (no credentials)".into(),
        };
    }
    match ext.get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr) {
        Some(a) => a.to_string(),
        None => "an unknown caller".into(),
    }
}

/// The audit layer (tower), for `Server::layer` — inside the token check on `api_listen`, so
/// that no request body is buffered for a caller without the token.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLayer;

impl<S> tower_layer::Layer<S> for AuditLayer {
    type Service = Audit<S>;
    fn layer(&self, inner: S) -> Audit<S> {
        Audit { inner }
    }
}

/// The audit service around the gRPC routes.
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
}

type Fut<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<BoxBody>> for Audit<S>
where
    S: Service<http::Request<BoxBody>, Response = http::Response<BoxBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = S::Error;
    type Future = Fut<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<BoxBody>) -> Self::Future {
        let Some(method) = changing_method(req.uri().path()) else {
            return Box::pin(self.inner.call(req));
        };
        // The service that was polled ready serves this call; a clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let who = peer(req.extensions());
            let (parts, body) = req.into_parts();
            let mut line = Line { method, who, what: String::new(), open: true };
            let bytes = match Limited::new(body, MAX_REQUEST).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    let s = Status::resource_exhausted(format!("cannot read the request: {e}"));
                    line.end(Some(&s), &Note::default());
                    return Ok(s.into_http());
                }
            };
            line.what = what(method, &bytes);
            let req = http::Request::from_parts(parts, tonic::body::boxed(Full::new(bytes)));
            let note = Arc::new(Mutex::new(Note::default()));
            let res = NOTE.scope(Arc::clone(&note), inner.call(req)).await;
            if let Ok(r) = &res {
                let status = Status::from_header_map(r.headers());
                line.end(status.as_ref(), &note.lock().unwrap_or_else(PoisonError::into_inner));
            }
            res
        })
    }
}

/// One call's line: logged by `end`, or when dropped unanswered.
struct Line {
    method: &'static str,
    who: String,
    what: String,
    open: bool,
}

impl Line {
    /// `status` is the call's gRPC status when it failed (a successful unary call sends it
    /// in the trailers: none here).
    fn end(&mut self, status: Option<&Status>, note: &Note) {
        self.open = false;
        let (m, what, who) = (self.method, &self.what, &self.who);
        match status.filter(|s| s.code() != tonic::Code::Ok) {
            Some(s) => tracing::info!(target: TARGET, "api: {m}{what} by {who}: refused: {:?}: {}", s.code(), s.message()),
            None => {
                let result = note.result.as_deref().unwrap_or("ok");
                if note.unchanged {
                    tracing::debug!(target: TARGET, "api: {m}{what} by {who}: {result}");
                } else {
                    tracing::info!(target: TARGET, "api: {m}{what} by {who}: {result}");
                }
            }
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.open {
            let (m, what, who) = (self.method, &self.what, &self.who);
            tracing::info!(target: TARGET, "api: {m}{what} by {who}: no answer (timed out or the caller went away; it may have been applied)");
        }
    }
}

/// The request of a gRPC call body (one uncompressed message).
fn message<M: Message + Default>(body: &[u8]) -> Option<M> {
    let (&[flag, a, b, c, d], rest) = body.split_first_chunk::<5>()?;
    let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).ok()?;
    (flag == 0).then(|| M::decode(rest.get(..len)?).ok()).flatten()
}

/// An enum value's name without its prefix (`SCHEDULER_WRR` → `wrr`).
fn name(full: &str, prefix: &str, lower: bool) -> String {
    let s = full.strip_prefix(prefix).unwrap_or(full);
    if lower {
        s.to_ascii_lowercase()
    } else {
        s.to_owned()
    }
}

fn key(k: Option<&pb::ServiceKey>) -> String {
    match k {
        Some(k) => {
            let proto = pb::Protocol::try_from(k.protocol).map_or_else(|_| k.protocol.to_string(), |p| name(p.as_str_name(), "PROTOCOL_", false));
            format!("{proto} {}:{}", k.vip, k.port)
        }
        None => "(no service)".into(),
    }
}

fn service(s: Option<&pb::Service>) -> String {
    let Some(s) = s else { return " (no service)".into() };
    let mut t = format!(" {}", key(s.key.as_ref()));
    if let Ok(x) = pb::Scheduler::try_from(s.scheduler) {
        if x != pb::Scheduler::Unspecified {
            t += &format!(" {}", name(x.as_str_name(), "SCHEDULER_", true));
        }
    }
    if let Ok(x) = pb::ForwardMode::try_from(s.forward) {
        if x != pb::ForwardMode::Unspecified {
            t += &format!(" {}", name(x.as_str_name(), "FORWARD_MODE_", false));
        }
    }
    if !s.real_servers.is_empty() {
        t += &format!(", {} real server(s)", s.real_servers.len());
    }
    t
}

/// At most 8 items, then how many more.
fn list<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = items.len();
    let mut t = items.take(8).collect::<Vec<_>>().join(", ");
    if n > 8 {
        t += &format!(" and {} more", n - 8);
    }
    t
}

/// The key fields of a request, for its audit line (with a leading space when not empty).
pub fn what(method: &str, body: &[u8]) -> String {
    let unreadable = || " (request not readable)".to_owned();
    macro_rules! req {
        ($t:ty, $f:expr) => {
            message::<$t>(body).map_or_else(unreadable, $f)
        };
    }
    match method {
        "AddService" => req!(pb::AddServiceRequest, |r| service(r.service.as_ref())),
        "EditService" => req!(pb::EditServiceRequest, |r| {
            let fields = if r.fields.is_empty() { "all fields".to_owned() } else { list(r.fields.iter().map(String::as_str)) };
            format!(" {} ({fields})", key(r.service.as_ref().and_then(|s| s.key.as_ref())))
        }),
        "DeleteService" => req!(pb::DeleteServiceRequest, |r| format!(" {}", key(r.key.as_ref()))),
        "AddRealServer" | "EditRealServer" => req!(pb::AddRealServerRequest, |r| match &r.real_server {
            Some(rs) => format!(" {} rs {}:{} weight {}", key(r.service.as_ref()), rs.addr, rs.port, rs.weight),
            None => format!(" {} (no real server)", key(r.service.as_ref())),
        }),
        "DeleteRealServer" => req!(pb::DeleteRealServerRequest, |r| format!(" {} rs {}:{}", key(r.service.as_ref()), r.addr, r.port)),
        "AddLocalAddresses" => req!(pb::AddLocalAddressesRequest, |r| format!(" group {}: {}", r.group, list(r.addrs.iter().map(|a| a.addr.as_str())))),
        "DeleteLocalAddresses" => req!(pb::DeleteLocalAddressesRequest, |r| format!(" group {}: {}", r.group, list(r.addrs.iter().map(String::as_str)))),
        "SetTimeouts" => req!(pb::SetTimeoutsRequest, |r| r.timeouts.map_or_else(String::new, |t| format!(" tcp {} tcpfin {} udp {}", t.tcp, t.tcpfin, t.udp))),
        "Apply" => req!(pb::ApplyRequest, |r| {
            let t = r.timeouts.map(|t| format!(", timeouts tcp {} tcpfin {} udp {}", t.tcp, t.tcpfin, t.udp)).unwrap_or_default();
            format!(" {} service(s), {} local-address group(s){t}", r.services.len(), r.groups.len())
        }),
        "SetHealth" => req!(pb::SetHealthRequest, |r| format!(" {} server(s), {} quorum update(s) from {:?}", r.servers.len(), r.quorum.len(), r.source)),
        "SetOwnership" => req!(pb::SetOwnershipRequest, |r| format!(" {} address(es), {} instance(s) from {:?}", r.addresses.len(), r.instances.len(), r.source)),
        "StartDaemon" => req!(pb::StartDaemonRequest, |r| match r.daemon {
            Some(d) => {
                let role = pb::SyncRole::try_from(d.role).map_or_else(|_| d.role.to_string(), |x| name(x.as_str_name(), "SYNC_ROLE_", true));
                format!(" {role} on {} syncid {}", d.mcast_interface, d.syncid.map_or_else(|| "default".into(), |s| s.to_string()))
            }
            None => " (no daemon)".into(),
        }),
        "StopDaemon" => req!(pb::StopDaemonRequest, |r| {
            let role = pb::SyncRole::try_from(r.role).map_or_else(|_| r.role.to_string(), |x| name(x.as_str_name(), "SYNC_ROLE_", true));
            format!(" {role}")
        }),
        _ => String::new(),
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
