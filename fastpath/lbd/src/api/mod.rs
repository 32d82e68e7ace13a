//! The control API server: gRPC (`lb.v1.LoadBalancer` and the standard health service) on a
//! Unix socket, optionally on TCP for callers with the bearer token, and the Prometheus
//! endpoint, all on one dedicated thread with a single-threaded tokio runtime (not an EAL
//! lcore; the workers never see it).
//!
//! Every listener keeps accepting through accept errors (see [`listen`]); the TCP ones also
//! cap their open connections (`api_max_connections`) and close idle ones
//! (`api_idle_timeout_s`), so that connections nobody authenticates cannot use up lbd's file
//! descriptors. Per connection, gRPC calls are bounded in number and in time.

// Handlers return tonic's `Status`, gRPC's error, large by tonic's design.
#![allow(clippy::result_large_err)]

pub(crate) mod audit;
pub(crate) mod convert;
pub(crate) mod listen;
mod ownership;
mod service;
mod sync;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lb_logging::RateLimit;

use lb_api::pb::load_balancer_server::LoadBalancerServer;
use tokio::sync::watch;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::{ApiTls, Config};
use crate::control::Control;
use crate::metrics;
use listen::{Incoming, Limits, ListenerStats};
pub use service::Api;

/// How long in-flight calls and open connections get once lbd stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Calls served at once per connection (more wait, HTTP/2 flow control holding the client).
const CALLS_PER_CONNECTION: u32 = 32;
/// A call that has not answered by then is cancelled (a call waits for workers at most
/// `control::WORKER_TIMEOUT` per question).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 pings on the Unix socket after this long without a frame from the client; no
/// acknowledgement within [`HTTP2_KEEPALIVE_TIMEOUT`] closes the connection (a stopped or
/// hung local client). Not on `api_listen`: the idle timeout does that job there, and pings
/// would count as traffic and keep an idle connection open for ever.
const HTTP2_KEEPALIVE: Duration = Duration::from_secs(30);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("api_socket {path}: {msg}")]
    Socket { path: PathBuf, msg: String },
    #[error("{field} {addr}: cannot listen: {source}")]
    Listen { field: &'static str, addr: std::net::SocketAddr, source: io::Error },
    #[error("cannot start the API thread: {0}")]
    Thread(io::Error),
    #[error("{field} {}: {msg}", path.display())]
    Tls { field: &'static str, path: PathBuf, msg: String },
}

/// The running API thread; [`ApiHandle::stop`] ends it and removes the socket.
#[derive(Debug)]
pub struct ApiHandle {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    socket: Option<PathBuf>,
}

/// Binds `path`: creates its directory, removes a stale socket left by a dead process, and
/// refuses one that a live process still answers on.
fn bind_socket(path: &Path) -> Result<StdUnixListener, ApiError> {
    let err = |msg: String| ApiError::Socket { path: path.into(), msg };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    if path.exists() {
        if StdUnixStream::connect(path).is_ok() {
            return Err(err("another process is serving this socket (is another lbd running? set api_socket in lbd.toml)".into()));
        }
        std::fs::remove_file(path).map_err(|e| err(format!("cannot remove the stale socket: {e}")))?;
    }
    let l = StdUnixListener::bind(path).map_err(|e| err(format!("cannot bind: {e}")))?;
    // The API changes the director: root (and the socket's group) only.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|e| err(format!("cannot set permissions: {e}")))?;
    l.set_nonblocking(true).map_err(|e| err(e.to_string()))?;
    Ok(l)
}

/// Pending connections the kernel holds for a TCP listener (capped by `net.core.somaxconn`).
/// std's 128 is too few for a burst while the API thread is busy: the kernel then drops SYNs
/// and the client waits a second for its retransmission.
const TCP_BACKLOG: i32 = 1024;

fn bind_tcp(field: &'static str, addr: std::net::SocketAddr) -> Result<std::net::TcpListener, ApiError> {
    let err = |source| ApiError::Listen { field, addr, source };
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP)).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    s.listen(TCP_BACKLOG).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    Ok(s.into())
}

/// Refused calls on `api_listen` are logged at most this often.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(10);

/// Compares the caller's `authorization` metadata with `Bearer <token>` in constant time.
#[allow(clippy::result_large_err)] // tonic's interceptors return `Status`.
fn check_token(token: &Arc<str>, req: &tonic::Request<()>) -> Result<(), tonic::Status> {
    let want = format!("Bearer {token}");
    let got = req.metadata().get(lb_api::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
    let same = got.len() == want.len() && got.iter().zip(want.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(tonic::Status::unauthenticated("this listener needs `authorization: Bearer <api_token>`"))
    }
}

/// The gRPC server with the per-connection bounds both listeners share.
fn server() -> Server {
    Server::builder()
        .concurrency_limit_per_connection(CALLS_PER_CONNECTION as usize)
        .max_concurrent_streams(CALLS_PER_CONNECTION)
        .timeout(CALL_TIMEOUT)
}

/// The warning for an `api_listen` that is not on loopback.
fn exposed_warning(addr: std::net::SocketAddr, tls: bool) -> Option<String> {
    (!addr.ip().is_loopback() && !tls).then(|| {
        format!(
            "api_listen {addr} is not a loopback address and has no TLS: the token and every call cross the network \
             in clear text; set api_tls_cert and api_tls_key, or use 127.0.0.1 with an SSH tunnel"
        )
    })
}

/// The TCP API listener with what guards it: the bearer token, and TLS when configured.
struct TcpApi {
    listener: std::net::TcpListener,
    token: Arc<str>,
    tls: Option<ServerTlsConfig>,
}

/// Reads `api_tls_cert` / `api_tls_key` and checks that they make a usable identity.
fn tls_config(t: &ApiTls) -> Result<ServerTlsConfig, ApiError> {
    let read = |field: &'static str, path: &Path| std::fs::read(path).map_err(|e| ApiError::Tls { field, path: path.into(), msg: e.to_string() });
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(read("api_tls_cert", &t.cert)?, read("api_tls_key", &t.key)?));
    // tonic builds the acceptor here: a certificate or key that does not parse, or a key that
    // does not fit the certificate, is an error at start-up, not at the first connection.
    Server::builder().tls_config(tls.clone()).map_err(|e| ApiError::Tls { field: "api_tls_cert", path: t.cert.clone(), msg: error_chain(&e) })?;
    Ok(tls)
}

/// An error with its sources (tonic's transport errors say little on their own).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        src = s.source();
    }
    msg
}

/// Starts the API (and metrics) thread. Sockets are bound before this returns, so a bad
/// address is reported at start-up. When the default socket is in use by another process
/// (several directors on one test host), the Unix listener is skipped with a warning; a
/// configured `api_socket` that cannot be bound is an error.
pub fn start(cfg: &Config, control: Arc<Control>) -> Result<ApiHandle, ApiError> {
    let uds = match bind_socket(&cfg.api_socket) {
        Ok(l) => Some(l),
        Err(e) if !cfg.api_socket_configured => {
            tracing::warn!("{e}; the control API is not served on a Unix socket");
            None
        }
        Err(e) => return Err(e),
    };
    let socket = uds.as_ref().map(|_| cfg.api_socket.clone());
    let tls = cfg.api_tls.as_ref().map(tls_config).transpose()?;
    if let Some(w) = cfg.api_listen.and_then(|a| exposed_warning(a, tls.is_some())) {
        tracing::warn!("{w}");
    }
    let tcp = match (cfg.api_listen, cfg.api_token.as_deref()) {
        (Some(a), Some(token)) => Some(TcpApi { listener: bind_tcp("api_listen", a)?, token: Arc::from(token), tls }),
        _ => None,
    };
    let metrics_l = cfg.metrics_listen.map(|a| bind_tcp("metrics_listen", a)).transpose()?;
    let limits = Limits { max_connections: cfg.api_max_connections, idle_timeout: Some(cfg.api_idle_timeout) };
    let (stop_tx, stop_rx) = watch::channel(false);
    // The API thread logs where the starting thread does (the global logger in lbd; a test's
    // capturing subscriber in tests).
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let thread = std::thread::Builder::new()
        .name("lbd-api".into())
        .spawn(move || {
            let _log = tracing::dispatcher::set_default(&dispatch);
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("API runtime: {e}");
                    return;
                }
            };
            rt.block_on(serve(control, uds, tcp, metrics_l, limits, stop_rx));
            // Calls still waiting on workers end within their own bound; do not wait longer.
            rt.shutdown_timeout(SHUTDOWN_GRACE);
        })
        .map_err(ApiError::Thread)?;
    Ok(ApiHandle { stop: stop_tx, thread: Some(thread), socket })
}

async fn serve(
    control: Arc<Control>,
    uds: Option<StdUnixListener>,
    tcp: Option<TcpApi>,
    metrics_l: Option<std::net::TcpListener>,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let (mut reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<LoadBalancerServer<Api>>().await;
    // grpcurl and other tools read the services from the server (behind the token on
    // api_listen, like every other call).
    let reflection = match tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(lb_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
    {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!("gRPC reflection: {e}");
            None
        }
    };
    let api = Api::new(Arc::clone(&control));
    let mut tasks = tokio::task::JoinSet::new();
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut listeners = Vec::new();
    if let Some(l) = uds {
        match tokio::net::UnixListener::from_std(l) {
            Ok(l) => {
                let stats = ListenerStats::new("api_socket");
                listeners.push(Arc::clone(&stats));
                let router = server()
                    .layer(audit::AuditLayer)
                    .http2_keepalive_interval(Some(HTTP2_KEEPALIVE))
                    .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
                    .add_service(health.clone())
                    .add_optional_service(reflection.clone())
                    .add_service(LoadBalancerServer::new(api.clone()));
                tasks.spawn(router.serve_with_incoming_shutdown(Incoming::new(l, Limits::NONE, stats), stopped(stop.clone())));
            }
            Err(e) => tracing::error!("API socket: {e}"),
        }
    }
    if let Some(TcpApi { listener, token, tls }) = tcp {
        // `tls_config` checked the configuration at start: this does not fail.
        let server = match tls {
            None => Ok(server()),
            Some(tls) => server().tls_config(tls),
        };
        match tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string()).and_then(|l| server.map(|s| (l, s)).map_err(|e| format!("TLS: {}", error_chain(&e)))) {
            Ok((l, server)) => {
                let stats = ListenerStats::new("api_listen");
                listeners.push(Arc::clone(&stats));
                let refused = Arc::new(std::sync::Mutex::new(RateLimit::new(REFUSED_LOG_EVERY)));
                #[allow(clippy::result_large_err)] // tonic's interceptors return `Status`.
                let auth = move |r: tonic::Request<()>| match check_token(&token, &r) {
                    Ok(()) => Ok(r),
                    Err(s) => {
                        if let Some(n) = refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).hit(Instant::now()) {
                            let who = r.remote_addr().map_or_else(|| "an unknown peer".into(), |a| a.to_string());
                            tracing::warn!("api_listen: refused a call from {who} without the right api_token{n}");
                        }
                        Err(s)
                    }
                };
                // The token is checked before the audit layer buffers a request.
                let router = server
                    .layer(tonic::service::interceptor(auth))
                    .layer(audit::AuditLayer)
                    .add_service(health.clone())
                    .add_optional_service(reflection.clone())
                    .add_service(LoadBalancerServer::new(api.clone()));
                tasks.spawn(router.serve_with_incoming_shutdown(Incoming::new(l, limits, stats), stopped(stop.clone())));
            }
            Err(e) => tracing::error!("api_listen: {e}"),
        }
    }
    if let Some(l) = metrics_l {
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => {
                let stats = ListenerStats::new("metrics_listen");
                listeners.push(Arc::clone(&stats));
                let incoming = Incoming::new(l, limits, stats);
                let c = Arc::clone(&control);
                let s = stop.clone();
                let listeners = listeners.clone();
                tasks.spawn(async move {
                    metrics::serve(incoming, c, listeners, stopped(s)).await;
                    Ok(())
                });
            }
            Err(e) => tracing::error!("metrics_listen: {e}"),
        }
    }
    let mut grace = stop.clone();
    tokio::select! {
        () = async {
            while let Some(r) = tasks.join_next().await {
                match r {
                    Ok(Err(e)) => tracing::error!("API server: {e}"),
                    // Listeners do not end before the stop signal; say so if one ever does.
                    Ok(Ok(())) if !*stop.borrow() => tracing::error!("API server: a listener stopped serving"),
                    Err(e) => tracing::error!("API server: {e}"),
                    Ok(Ok(())) => {}
                }
            }
        } => {}
        // Graceful shutdown waits for clients to hang up; `lbctl top` may never. Stop anyway.
        () = async {
            let _ = grace.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {}
    }
}

impl ApiHandle {
    /// Stops serving (in-flight calls finish) and removes the socket.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = self.socket.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transport_tests;
