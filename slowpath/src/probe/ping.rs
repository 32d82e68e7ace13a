//! The ICMP echo DPVS's UDP_CHECK sends before its datagram (`ping_check_off` skips it): a raw
//! ICMP socket (root), one request, the matching reply from the target within the timeout.
//! Packets are built and read with the data plane's own wire views.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use fastpath::wire::{Icmpv4Message, Icmpv4Packet, Ipv4Packet};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::tcp::{io_text, secs};

/// Echo identifiers: per process, and per probe through the sequence number.
static SEQ: AtomicU16 = AtomicU16::new(1);
const PAYLOAD: &[u8; 16] = b"lb-slowpath ping";

pub(super) async fn echo(target: Ipv4Addr, bind: Option<Ipv4Addr>, timeout: Duration) -> Result<(), String> {
    let ident = u16::try_from(std::process::id() & 0xffff).unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    match tokio::time::timeout(timeout, exchange(target, bind, ident, seq)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("ping {target}: {}", io_text(&e))),
        Err(_) => Err(format!("ping {target}: no echo reply within {}", secs(timeout))),
    }
}

/// An echo request: 8-byte header and the payload, checksummed.
fn request(ident: u16, seq: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + PAYLOAD.len()];
    let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Icmpv4Message::EchoRequest);
    p.set_msg_code(0);
    p.set_echo_ident(ident);
    p.set_echo_seq_no(seq);
    p.data_mut().copy_from_slice(PAYLOAD);
    p.fill_checksum();
    buf
}

/// Whether a raw-socket datagram (IPv4 header first) is our echo reply from `target`.
fn is_reply(datagram: &[u8], target: Ipv4Addr, ident: u16, seq: u16) -> bool {
    let Ok(ip) = Ipv4Packet::new_checked(datagram) else { return false };
    if ip.src_addr() != target {
        return false;
    }
    let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else { return false };
    icmp.msg_type() == Icmpv4Message::EchoReply && icmp.echo_ident() == ident && icmp.echo_seq_no() == seq
}

async fn exchange(target: Ipv4Addr, bind: Option<Ipv4Addr>, ident: u16, seq: u16) -> io::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    sock.set_nonblocking(true)?;
    if let Some(b) = bind {
        sock.bind(&SockAddr::from(SocketAddrV4::new(b, 0)))?;
    }
    // A raw socket is a datagram socket to the reactor: tokio's UdpSocket drives it with
    // sendto(2)/recv(2) through its safe API (no registration of a bare descriptor).
    let sock = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock))?;
    sock.send_to(&request(ident, seq), SocketAddr::V4(SocketAddrV4::new(target, 0))).await?;
    let mut buf = [0u8; 1500];
    loop {
        let n = sock.recv(&mut buf).await?;
        if is_reply(&buf[..n], target, ident, seq) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    static REPLY: [u8; 44] = [
        // IPv4: version/IHL, TOS, total length 44, id, flags/fragment, TTL 64, protocol 1
        0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x00, 0x00, 0x40, 0x01,
        // header checksum (not checked here), source 10.0.2.11, destination 10.0.2.2
        0x00, 0x00, 0x0a, 0x00, 0x02, 0x0b, 0x0a, 0x00, 0x02, 0x02,
        // ICMP echo reply, code 0, checksum, identifier 0x0102, sequence 7
        0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x07,
        // payload
        b'l', b'b', b'-', b's', b'l', b'o', b'w', b'p', b'a', b't', b'h', b' ', b'p', b'i', b'n', b'g',
    ];

    #[test]
    fn request_bytes_and_reply_matching() {
        let r = request(0x0102, 7);
        assert_eq!(&r[..2], &[8, 0], "echo request, code 0");
        assert_eq!(&r[4..8], &[0x01, 0x02, 0x00, 0x07]);
        assert_eq!(&r[8..], PAYLOAD);
        assert!(Icmpv4Packet::new_checked(&r[..]).unwrap().verify_checksum());
        let rs = Ipv4Addr::new(10, 0, 2, 11);
        assert!(is_reply(&REPLY, rs, 0x0102, 7));
        assert!(!is_reply(&REPLY, rs, 0x0102, 8), "another probe's sequence");
        assert!(!is_reply(&REPLY, Ipv4Addr::new(10, 0, 2, 12), 0x0102, 7), "another host");
        assert!(!is_reply(&REPLY[..20], rs, 0x0102, 7), "truncated");
        assert!(!is_reply(&[], rs, 0x0102, 7));
    }

    #[tokio::test]
    async fn loopback_answers() {
        // Needs root (raw socket), as lb-slowpath does.
        assert_eq!(echo(Ipv4Addr::LOCALHOST, None, Duration::from_secs(2)).await, Ok(()));
    }
}
