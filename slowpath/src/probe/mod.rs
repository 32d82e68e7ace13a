//! Probes: the I/O the health engine asks for, through the kernel's network stack (the
//! director's exception-path TAPs), never through the data-plane workers. Each probe is one
//! future with its own timeout; it returns an [`Outcome`] and never panics on what a peer
//! sends.

mod http;
mod misc;
mod ping;
mod tcp;
mod udp;

use std::net::SocketAddrV4;

use crate::health::{Outcome, Probe};

pub use misc::misc_outcome;

/// Performs `probe` and says what it found.
pub async fn run(probe: &Probe) -> Outcome {
    match probe {
        Probe::Tcp { target, bind, timeout } => match tcp::connect(*target, *bind, *timeout).await {
            Ok(stream) => {
                // Closed with a reset, as HAProxy's checks do: no FIN exchange and no TIME_WAIT
                // entry per check (at 10,000 checks/s the FIN/TIME_WAIT work was a third of the
                // kernel time, and TIME_WAIT overflowed the namespace's 131,072 buckets).
                let _ = stream.set_zero_linger();
                Outcome::Up
            }
            Err(e) => Outcome::Down(e),
        },
        Probe::Http { target, bind, timeout, tls, virtualhost, urls, http_protocol, enable_sni } => {
            let req = http::Request { target: *target, bind: *bind, timeout: *timeout, tls: *tls, virtualhost: virtualhost.as_deref(), protocol: *http_protocol, enable_sni: *enable_sni };
            for url in urls {
                if let Err(e) = http::check(&req, url).await {
                    return Outcome::Down(e);
                }
            }
            Outcome::Up
        }
        Probe::Udp { target, bind, timeout, payload, require_reply, ping } => {
            if *ping {
                if let Err(e) = ping::echo(*target.ip(), bind.map(|b| *b.ip()), *timeout).await {
                    return Outcome::Down(e);
                }
            }
            match udp::probe(*target, *bind, *timeout, payload, *require_reply).await {
                Ok(()) => Outcome::Up,
                Err(e) => Outcome::Down(e),
            }
        }
        Probe::Misc { command, timeout, dynamic } => misc::run(command, *timeout, *dynamic).await,
    }
}

/// "10.0.0.1:80" or "10.0.0.1:80 from 10.0.0.2" for messages.
fn describe(target: SocketAddrV4, bind: Option<SocketAddrV4>) -> String {
    match bind {
        Some(b) => format!("{target} from {}", b.ip()),
        None => target.to_string(),
    }
}
