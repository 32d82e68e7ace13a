//! `GET /metrics` on `metrics_listen`: hyper's HTTP/1.1 server on the API thread, families
//! encoded by the `prometheus-client` crate ([`families`]).
//!
//! What is exported:
//! - lbd's own families (`lbd_*`): per worker every fast-path counter (HELP from its doc
//!   comment, its unit in the name) and drops by reason; per port and exception TAP packets,
//!   bytes, misses and errors; per service and real server the connection counts the workers
//!   keep incrementally (no session-table walk) and the weight; health (`lbd_real_server_up`);
//!   VRRP ownership and instance states; session sync; the listeners.
//! - node_exporter's ipvs families (`node_ipvs_*`, with its label names `local_address`,
//!   `local_port`, `remote_address`, `remote_port`, `proto`, `local_mark`), so dashboards and
//!   alerts written for LVS read lbd unchanged.
//! - `process_*` as the Prometheus client libraries export them ([`process`]).
//!
//! Label names keep one meaning each: `vip`/`vport`/`rip`/`rport` for services and real
//! servers, `port`/`device`/`port_kind` for DPDK ports, `worker`, `reason` (a drop's),
//! `listener`, `addr`/`addr_kind`, `instance`/`state` (VRRP), `bulk_state`, `role`.
//!
//! Formats: Prometheus text 0.0.4 by default (what `promtool check metrics` and most scrapers
//! read), OpenMetrics when the scraper's `Accept` asks for `application/openmetrics-text`
//! (Prometheus itself does). The crate writes OpenMetrics; [`text::to_prometheus`] turns that
//! into 0.0.4.
//!
//! The endpoint needs no token, so a scrape is bounded: connections are capped and closed
//! when idle like the API's (see `api::listen`), the request head must arrive within
//! [`HEAD_TIMEOUT`] and the whole exchange end within [`HEAD_TIMEOUT`] + [`WRITE_TIMEOUT`];
//! one request per connection.

mod families;
pub mod process;
mod text;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming as Body};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

use crate::api::listen::{Incoming, ListenerStats};
use crate::control::Control;

/// The request head must be complete this long after the connection is accepted.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The answer must be written (taken by the client) within this after the head.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Prometheus text exposition 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics 1.0.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Accepts scrapes until `stop` completes. `listeners` are the counters exported.
pub async fn serve(mut incoming: Incoming<TcpListener>, control: Arc<Control>, listeners: Vec<Arc<ListenerStats>>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let listeners: Arc<[Arc<ListenerStats>]> = listeners.into();
    loop {
        tokio::select! {
            () = &mut stop => break,
            // The stream never ends or fails: accept errors are logged and retried in it.
            Some(Ok(s)) = incoming.next() => {
                let (control, listeners) = (Arc::clone(&control), Arc::clone(&listeners));
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| respond(req, Arc::clone(&control), Arc::clone(&listeners)));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEAD_TIMEOUT)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(s), svc);
                    let _ = tokio::time::timeout(HEAD_TIMEOUT + WRITE_TIMEOUT, conn).await;
                });
            }
        }
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn respond(req: Request<Body>, control: Arc<Control>, listeners: Arc<[Arc<ListenerStats>]>) -> Result<Response<Full<Bytes>>, Infallible> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET\n".into()));
    }
    if req.uri().path() != "/metrics" {
        return Ok(reply(StatusCode::NOT_FOUND, PLAIN, "see /metrics\n".into()));
    }
    let openmetrics = req.headers().get_all(hyper::header::ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    // Gathering asks the workers (bounded waits): off the runtime's threads.
    Ok(match tokio::task::spawn_blocking(move || render_with(&control, &listeners, openmetrics)).await {
        Ok(body) => reply(StatusCode::OK, if openmetrics { CONTENT_TYPE_OPENMETRICS } else { CONTENT_TYPE_TEXT }, body),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, format!("{e}\n")),
    })
}

/// The exposition in Prometheus text format 0.0.4, or OpenMetrics.
pub fn render_with(control: &Control, listeners: &[Arc<ListenerStats>], openmetrics: bool) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(families::Gathered(families::gather(control, listeners))));
    registry.register_collector(Box::new(process::Process));
    let mut om = String::with_capacity(32 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut om, &registry) {
        tracing::warn!("metrics: encoding failed: {e}");
    }
    if openmetrics {
        om
    } else {
        text::to_prometheus(&om)
    }
}

/// The exposition (0.0.4) without listener counters.
#[cfg(test)]
pub fn render(control: &Control) -> String {
    render_with(control, &[], false)
}

#[cfg(test)]
#[path = "metrics/tests.rs"]
mod tests;
