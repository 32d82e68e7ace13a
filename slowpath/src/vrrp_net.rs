//! VRRP's I/O: one raw IP socket (protocol 112) per interface for adverts, multicast to
//! 224.0.0.18 or unicast to `unicast_peer`s, always with TTL 255 (RFC 3768/5798: receivers drop
//! anything else); and gratuitous ARP written into the interface (the exception TAP, so lbd sends
//! it on the data port with the port's MAC). Frames and headers are built with the data plane's
//! wire views.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use fastpath::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// VRRP's multicast group.
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// VRRP's IP protocol number.
pub const VRRP_PROTO: u8 = 112;
/// The only TTL VRRP sends and accepts.
pub const VRRP_TTL: u8 = 255;
/// DSCP class selector 6 (internetwork control), as keepalived marks adverts.
const DSCP_CS6: u8 = 48;

/// A VRRP advert as heard: who sent it, with which TTL, and the VRRP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub vrrp: Vec<u8>,
}

/// The raw socket of one interface.
#[derive(Debug)]
pub struct VrrpSocket {
    iface: String,
    sock: UdpSocket,
}

impl VrrpSocket {
    /// Opens the socket on `iface` (bound to the device, member of 224.0.0.18 through the
    /// interface address `local`, no multicast loopback; headers built here, so source and TTL
    /// are ours).
    pub fn open(iface: &str, local: Ipv4Addr) -> io::Result<VrrpSocket> {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(i32::from(VRRP_PROTO))))?;
        s.bind_device(Some(iface.as_bytes()))?;
        s.set_header_included_v4(true)?;
        s.join_multicast_v4(&VRRP_GROUP, &local)?;
        s.set_multicast_if_v4(&local)?;
        s.set_multicast_loop_v4(false)?;
        s.set_nonblocking(true)?;
        // A raw socket is a datagram socket to the reactor: tokio drives it with sendto/recv
        // through its safe API (no registration of a bare descriptor).
        let sock = UdpSocket::from_std(std::net::UdpSocket::from(s))?;
        Ok(VrrpSocket { iface: iface.to_owned(), sock })
    }

    /// The interface.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Sends a VRRP message from `src` to `dst` (the group or a unicast peer), TTL 255.
    pub async fn send(&self, src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8]) -> io::Result<()> {
        let packet = ip_packet(src, dst, vrrp);
        self.sock.send_to(&packet, SocketAddr::V4(SocketAddrV4::new(dst, 0))).await.map(|_| ())
    }

    /// Waits for the next VRRP packet; what does not parse as IPv4 carrying VRRP is skipped.
    pub async fn recv(&self) -> io::Result<Heard> {
        let mut buf = [0u8; 1500];
        loop {
            let n = self.sock.recv(&mut buf).await?;
            if let Some(h) = parse_ip(&buf[..n]) {
                return Ok(h);
            }
        }
    }
}

/// An IPv4 packet carrying `vrrp`: protocol 112, TTL 255, DSCP CS6, checksum filled.
pub fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr { src_addr: src, dst_addr: dst, protocol: IpProtocol::Vrrp, payload_len: vrrp.len(), ttl: VRRP_TTL, ident: 0, dont_frag: false };
    let mut buf = vec![0u8; 20 + vrrp.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut p);
    p.set_dscp(DSCP_CS6);
    p.fill_checksum();
    p.payload_mut().copy_from_slice(vrrp);
    buf
}

/// The VRRP message inside a received IPv4 packet, with its source, destination and TTL.
pub fn parse_ip(bytes: &[u8]) -> Option<Heard> {
    let p = Ipv4Packet::new_checked(bytes).ok()?;
    if p.protocol() != IpProtocol::Vrrp {
        return None;
    }
    Some(Heard { src: p.src_addr(), dst: p.dst_addr(), ttl: p.ttl(), vrrp: p.payload().to_vec() })
}

/// A gratuitous ARP (a request for `addr` from `addr`, to broadcast) from `mac`: how a new
/// master tells the segment's switches and hosts where `addr` lives now.
pub fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> Vec<u8> {
    use fastpath::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: addr,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: addr,
    };
    let eth = EthernetRepr { src: EthernetAddress(mac), dst: EthernetAddress::BROADCAST, ethertype: EtherType::Arp };
    let mut buf = vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    arp.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
    buf
}

/// Writes gratuitous ARPs for `addrs` into `iface` (an AF_PACKET socket on it).
pub fn send_garps(iface: &str, mac: [u8; 6], addrs: &[Ipv4Addr]) -> Result<(), String> {
    let ifs = pnet_datalink::interfaces();
    let Some(ni) = ifs.into_iter().find(|i| i.name == iface) else {
        return Err(format!("gratuitous ARP: no interface {iface}"));
    };
    let cfg = pnet_datalink::Config { read_timeout: Some(std::time::Duration::from_millis(1)), ..Default::default() };
    let (mut tx, _rx) = match pnet_datalink::channel(&ni, cfg) {
        Ok(pnet_datalink::Channel::Ethernet(tx, rx)) => (tx, rx),
        Ok(_) => return Err(format!("gratuitous ARP on {iface}: not an Ethernet channel")),
        Err(e) => return Err(format!("gratuitous ARP on {iface}: {e}")),
    };
    for a in addrs {
        match tx.send_to(&garp_frame(mac, *a), None) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("gratuitous ARP for {a} on {iface}: {e}")),
            None => return Err(format!("gratuitous ARP for {a} on {iface}: not sent")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_header_for_adverts() {
        let v = [0x21u8, 51, 100, 1, 0, 1, 0xaa, 0xbb, 10, 70, 1, 100, 0, 0, 0, 0, 0, 0, 0, 0];
        let p = ip_packet(Ipv4Addr::new(10, 70, 1, 2), VRRP_GROUP, &v);
        #[rustfmt::skip]
        let header: [u8; 20] = [
            // version/IHL, DSCP CS6, total length 40
            0x45, 0xc0, 0x00, 0x28,
            // ident 0, no flags
            0x00, 0x00, 0x00, 0x00,
            // TTL 255, protocol 112, checksum (checked below)
            0xff, 0x70, p[10], p[11],
            // 10.70.1.2 -> 224.0.0.18
            10, 70, 1, 2, 224, 0, 0, 18,
        ];
        assert_eq!(&p[..20], &header);
        assert!(Ipv4Packet::new_checked(&p[..]).unwrap().verify_checksum());
        assert_eq!(&p[20..], &v);
        let h = parse_ip(&p).unwrap();
        assert_eq!((h.src, h.dst, h.ttl, h.vrrp.as_slice()), (Ipv4Addr::new(10, 70, 1, 2), VRRP_GROUP, 255, &v[..]));
        assert_eq!(parse_ip(&p[..19]), None, "truncated");
        let mut udp = p.clone();
        udp[9] = 17;
        assert_eq!(parse_ip(&udp), None, "not VRRP");
    }

    #[test]
    fn gratuitous_arp_bytes() {
        let f = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 70, 1, 100));
        #[rustfmt::skip]
        let want: [u8; 42] = [
            // Ethernet: broadcast, from 02:00:00:00:00:01, ARP
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
            // Ethernet/IPv4, lengths 6 and 4, request
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
            // sender 02:00:00:00:00:01 10.70.1.100
            2, 0, 0, 0, 0, 1, 10, 70, 1, 100,
            // target 00:00:00:00:00:00 10.70.1.100
            0, 0, 0, 0, 0, 0, 10, 70, 1, 100,
        ];
        assert_eq!(f, want);
    }
}
