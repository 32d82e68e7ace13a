//! Forwarding to real servers: FNAT (client -> VIP becomes LIP -> RS, replies reversed), NAT
//! (destination rewritten, replies routed back through us) and DR (MAC rewrite only).
//!
//! Stages, one module each: [`admit`] decides whether a new connection may open and creates its
//! session (client lists, flow control, scheduling, local port); the SYN proxy
//! (`crate::synproxy`) stands in front of it for services that ask; [`tcp_state`] tracks TCP
//! state and draining; [`xmit`] rewrites and transmits per forwarding mode; [`icmp_relay`]
//! translates ICMP errors that quote a session.

pub(crate) mod admit;
mod icmp_relay;
mod tcp_state;
mod xmit;

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::flow::{FlowKey, L4Proto};
use crate::laddr::owner_of;
use crate::service::{AddrKind, ForwardMode, ServiceKey};
use crate::verdict::{DropReason, Verdict};
use crate::wire::{ethernet, EthernetFrame, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket, UdpPacket};
use crate::worker::{Ctx, WorkerState};

pub(crate) use icmp_relay::relay_icmp_error;
pub(crate) use xmit::{session_toa, set_l2};

pub(crate) const L2: usize = ethernet::HEADER_LEN;

/// The transport facts the session logic needs.
pub(crate) struct L4 {
    pub proto: L4Proto,
    pub sport: u16,
    pub dport: u16,
    pub flags: TcpFlags,
}

pub(crate) fn parse_l4(frame: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, L4), DropReason> {
    let ip = Ipv4Packet::new_unchecked(&frame[L2..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let l4 = match ip.protocol() {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(ip.payload()).map_err(|_| DropReason::TcpMalformed)?;
            L4 { proto: L4Proto::Tcp, sport: t.src_port(), dport: t.dst_port(), flags: t.flags() }
        }
        _ => {
            let u = UdpPacket::new_checked(ip.payload()).map_err(|_| DropReason::UdpMalformed)?;
            L4 { proto: L4Proto::Udp, sport: u.src_port(), dport: u.dst_port(), flags: TcpFlags::empty() }
        }
    };
    Ok((src, dst, l4))
}

/// Forwards a TCP/UDP frame addressed to a VIP or a local address.
pub(crate) fn forward<B: PacketBuf>(buf: &mut B, in_port: u8, kind: AddrKind, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let (src, dst, l4) = match parse_l4(buf.data()) {
        Ok(x) => x,
        Err(r) => return Verdict::Drop(r),
    };
    let key = FlowKey { src, dst, sport: l4.sport, dport: l4.dport, proto: l4.proto };
    if kind == AddrKind::Laddr {
        let owner = owner_of(l4.dport, ctx.workers);
        if owner != ctx.worker {
            return Verdict::Redirect(owner);
        }
        return match st.sessions.find_rs(&key) {
            Some(id) => xmit::from_rs(buf, id, &l4, ctx, st),
            None => Verdict::Drop(DropReason::NoSession),
        };
    }
    let id = match st.sessions.find_client(&key) {
        Some(id) => id,
        None => {
            // A session synced from another director lives on the worker its local port (or
            // its client tuple) names here, which may not be the one the NIC picked. A SYN is
            // never one of them (SYN_RECV is not synced): new connections skip the lookup.
            let syn = l4.flags.contains(TcpFlags::SYN) && !l4.flags.contains(TcpFlags::ACK);
            if let Some(w) = ctx.owners.filter(|o| !syn && !o.synced.is_empty()).and_then(|o| {
                st.counters.shared_writes += 1; // the shard's read lock
                o.synced.get(&key)
            }) {
                if w != ctx.worker {
                    return Verdict::Redirect(w);
                }
            }
            let skey = ServiceKey { vip: key.dst, port: key.dport, proto: key.proto };
            let Some((svc_idx, svc)) = ctx.services.lookup(&skey) else {
                // A VIP, but no service on this port/protocol: the kernel may answer (or reset).
                return Verdict::ToKernel;
            };
            if let Some(conf) = &svc.syn_proxy {
                return crate::synproxy::stage::no_session(buf, in_port, &key, &l4, svc_idx, svc, conf, ctx, st);
            }
            match admit::new_session(buf, in_port, &key, &l4, svc_idx, svc, ctx, st, false) {
                Ok(id) => id,
                Err(v) => return v,
            }
        }
    };
    if st.sessions.splice(id).is_some_and(|sp| sp.waiting) {
        return crate::synproxy::stage::client_waiting(buf, id, &l4, ctx, st);
    }
    let s = st.sessions.get_mut(id);
    if s.adopted() && crate::sync::unknown_client_mac(s.client_mac) {
        // First packet of a synced session here: replies go back the way it came.
        s.client_port = in_port;
        s.client_mac = EthernetFrame::new_unchecked(buf.data()).src_addr();
    }
    xmit::to_rs(buf, id, &l4, ctx, st)
}

/// A TCP/UDP frame routed through us that is not addressed to us: a NAT-mode reply from a
/// real server, if a session knows its tuple. `None`: not ours (the caller goes on).
pub(crate) fn nat_reply<B: PacketBuf>(buf: &mut B, ctx: &Ctx<'_>, st: &mut WorkerState) -> Option<Verdict> {
    let (src, dst, l4) = parse_l4(buf.data()).ok()?;
    let key = FlowKey { src, dst, sport: l4.sport, dport: l4.dport, proto: l4.proto };
    match st.sessions.find_rs(&key) {
        // Addressed to the client, not to us: the session's VIP says whether we may forward it.
        Some(id) if st.sessions.get(id).mode == ForwardMode::Nat && ctx.services.addr(st.sessions.get(id).vip.0).is_some_and(|a| !a.owned) => Some(Verdict::Drop(DropReason::NotOwner)),
        Some(id) if st.sessions.get(id).mode == ForwardMode::Nat => Some(xmit::from_rs(buf, id, &l4, ctx, st)),
        Some(_) => None,
        None => match ctx.owners.filter(|o| !o.nat.is_empty()).and_then(|o| {
            st.counters.shared_writes += 1; // the shard's read lock
            o.nat.get(&key)
        }) {
            Some(w) if w != ctx.worker => Some(Verdict::Redirect(w)),
            _ => None,
        },
    }
}
