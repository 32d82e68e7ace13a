//! TCP_CHECK: a connection that completes in time (keepalived closes it at once).

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::describe;

/// Connects to `target` (from `bind` when given) within `timeout`.
pub(super) async fn connect(target: SocketAddrV4, bind: Option<SocketAddrV4>, timeout: Duration) -> Result<TcpStream, String> {
    let what = describe(target, bind);
    let sock = TcpSocket::new_v4().map_err(|e| format!("connect {what}: socket: {e}"))?;
    if let Some(b) = bind {
        sock.bind(SocketAddr::V4(b)).map_err(|e| format!("connect {what}: bind {b}: {e}"))?;
    }
    match tokio::time::timeout(timeout, sock.connect(SocketAddr::V4(target))).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("connect {what}: {}", io_text(&e))),
        Err(_) => Err(format!("connect {what}: no answer within {}", secs(timeout))),
    }
}

/// An I/O error without the "(os error N)" tail.
pub(super) fn io_text(e: &std::io::Error) -> String {
    let t = e.to_string();
    match t.find(" (os error") {
        Some(i) => t[..i].to_lowercase(),
        None => t,
    }
}

/// "5 s" / "1.5 s".
pub(super) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_and_names_refusals() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(addr) = l.local_addr().unwrap() else { unreachable!() };
        assert!(connect(addr, None, Duration::from_secs(2)).await.is_ok());
        drop(l);
        let e = connect(addr, Some("127.0.0.1:0".parse().unwrap()), Duration::from_secs(2)).await.unwrap_err();
        assert_eq!(e, format!("connect {addr} from 127.0.0.1: connection refused"));
    }
}
