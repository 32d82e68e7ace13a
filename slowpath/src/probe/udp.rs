//! UDP_CHECK: a datagram to the server's port. The kernel reports an ICMP port-unreachable
//! (or host-unreachable) on a connected socket as an error on the next receive: that is a
//! failure. An answer is a success; silence is a success unless `require_reply` says an
//! answer is needed (keepalived's semantics).

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::describe;
use super::tcp::{io_text, secs};

pub(super) async fn probe(target: SocketAddrV4, bind: Option<SocketAddrV4>, timeout: Duration, payload: &[u8], require_reply: bool) -> Result<(), String> {
    let what = describe(target, bind);
    let local = bind.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), SocketAddr::V4);
    let sock = UdpSocket::bind(local).await.map_err(|e| format!("udp {what}: bind {local}: {}", io_text(&e)))?;
    sock.connect(SocketAddr::V4(target)).await.map_err(|e| format!("udp {what}: {}", io_text(&e)))?;
    sock.send(payload).await.map_err(|e| format!("udp {what}: send: {}", io_text(&e)))?;
    let mut buf = [0u8; 2048];
    match tokio::time::timeout(timeout, sock.recv(&mut buf)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(format!("udp {what}: ICMP port unreachable")),
        Ok(Err(e)) => Err(format!("udp {what}: {}", io_text(&e))),
        Err(_) if require_reply => Err(format!("udp {what}: no reply within {}", secs(timeout))),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reply_refusal_and_silence() {
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(addr) = echo.local_addr().unwrap() else { unreachable!() };
        let h = tokio::spawn(async move {
            let mut b = [0u8; 64];
            let (n, from) = echo.recv_from(&mut b).await.unwrap();
            echo.send_to(&b[..n], from).await.unwrap();
            echo
        });
        assert_eq!(probe(addr, None, Duration::from_secs(2), b"ping", true).await, Ok(()));
        let silent = h.await.unwrap();
        // Nobody reads now: silence, up unless a reply is required.
        assert_eq!(probe(addr, None, Duration::from_millis(200), b"x", false).await, Ok(()));
        assert_eq!(probe(addr, None, Duration::from_millis(200), b"x", true).await, Err(format!("udp {addr}: no reply within 0.2 s")));
        drop(silent);
        assert_eq!(probe(addr, None, Duration::from_secs(2), b"x", false).await, Err(format!("udp {addr}: ICMP port unreachable")));
    }
}
