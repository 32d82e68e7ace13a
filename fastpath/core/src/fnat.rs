//! Full-NAT forwarding: client -> VIP becomes LIP -> RS, replies are reversed. Sessions are
//! created on a client SYN (TCP) or first datagram (UDP) and found from both directions.

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::flow::{FlowKey, L4Proto};
use crate::iface::route;
use crate::laddr::owner_of;
use crate::nat::{self, ToaSkip};
use crate::pipeline::{Ctx, WorkerState};
use crate::service::{ServiceKey, ToaMode};
use crate::session::{ConnState, NewSession};
use crate::verdict::{DropReason, Verdict};
use crate::wire::toa::TOA_LEN;
use crate::wire::{ethernet, EthernetFrame, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket, UdpPacket};

const L2: usize = ethernet::HEADER_LEN;

/// The transport facts the session logic needs.
struct L4 {
    proto: L4Proto,
    sport: u16,
    dport: u16,
    flags: TcpFlags,
}

fn parse_l4(frame: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, L4), DropReason> {
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
pub(crate) fn forward<B: PacketBuf>(buf: &mut B, in_port: u8, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let (src, dst, l4) = match parse_l4(buf.data()) {
        Ok(x) => x,
        Err(r) => return Verdict::Drop(r),
    };
    let key = FlowKey { src, dst, sport: l4.sport, dport: l4.dport, proto: l4.proto };
    if ctx.services.is_laddr(dst) {
        let owner = owner_of(l4.dport, ctx.workers);
        if owner != ctx.worker {
            return Verdict::Redirect(owner);
        }
        return match st.sessions.find_rs(&key) {
            Some(id) => from_rs(buf.data_mut(), id, &l4, ctx, st),
            None => Verdict::Drop(DropReason::NoSession),
        };
    }
    let id = match st.sessions.find_client(&key) {
        Some(id) => id,
        None => match new_session(buf.data(), in_port, &key, &l4, ctx, st) {
            Ok(id) => id,
            Err(v) => return v,
        },
    };
    to_rs(buf, id, &l4, ctx, st)
}

fn new_session(frame: &[u8], in_port: u8, key: &FlowKey, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Result<u32, Verdict> {
    let skey = ServiceKey { vip: key.dst, port: key.dport, proto: key.proto };
    let Some((svc_idx, svc)) = ctx.services.lookup(&skey) else {
        // A VIP, but no service on this port/protocol: the kernel may answer (or reset).
        return Err(Verdict::ToKernel);
    };
    if l4.proto == L4Proto::Tcp && !(l4.flags.contains(TcpFlags::SYN) && !l4.flags.intersects(TcpFlags::ACK | TcpFlags::RST)) {
        return Err(Verdict::Drop(DropReason::NoSession));
    }
    if st.sched_generation != ctx.services.generation() || st.sched.len() != ctx.services.services().len() {
        st.sched = vec![Default::default(); ctx.services.services().len()];
        st.sched_generation = ctx.services.generation();
    }
    let Some(rs_idx) = st.sched[svc_idx as usize].pick(svc) else {
        return Err(Verdict::Drop(DropReason::NoRealServer));
    };
    let rs = &svc.real_servers[rs_idx];
    let Some(laddr) = st.laddrs.alloc(&svc.laddrs) else {
        return Err(Verdict::Drop(DropReason::NoLocalPort));
    };
    let client_mac = EthernetFrame::new_unchecked(frame).src_addr();
    let n = NewSession {
        proto: key.proto,
        client: (key.src, key.sport),
        vip: (key.dst, key.dport),
        laddr,
        rs: (rs.addr, rs.port),
        svc: svc_idx,
        rs_idx: u32::try_from(rs_idx).unwrap_or(u32::MAX),
        generation: ctx.services.generation(),
        client_port: in_port,
        client_mac,
    };
    match st.sessions.insert(n, ctx.now_ms) {
        Ok(id) => {
            st.sched[svc_idx as usize].opened(rs_idx);
            st.counters.sessions_created += 1;
            Ok(id)
        }
        Err(_) => {
            st.laddrs.release(laddr.0, laddr.1);
            Err(Verdict::Drop(DropReason::SessionTableFull))
        }
    }
}

/// The state a TCP segment moves a session to.
fn next_state(cur: ConnState, flags: TcpFlags, from_client: bool) -> ConnState {
    if flags.contains(TcpFlags::RST) {
        ConnState::Close
    } else if flags.contains(TcpFlags::FIN) || cur == ConnState::FinWait {
        ConnState::FinWait
    } else if cur == ConnState::SynRecv && from_client && flags.contains(TcpFlags::ACK) && !flags.contains(TcpFlags::SYN) {
        ConnState::Established
    } else {
        cur
    }
}

fn to_rs<B: PacketBuf>(buf: &mut B, id: u32, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let s = st.sessions.get(id);
    let (laddr, rs, client, svc, prev, generation) = (s.laddr, s.rs, s.client, s.svc, s.state, s.generation);
    let state = if l4.proto == L4Proto::Tcp { next_state(prev, l4.flags, true) } else { ConnState::Udp };
    st.sessions.touch(id, state, ctx.now_ms);
    let toa_mode = if generation == ctx.services.generation() {
        ctx.services.get(svc).map_or(ToaMode::Off, |v| v.toa)
    } else {
        ToaMode::Off
    };
    let Some((port, next_hop)) = route(ctx.ports, rs.0) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    nat::rewrite(&mut buf.data_mut()[L2..], l4.proto, laddr, rs);
    let want_toa = l4.proto == L4Proto::Tcp
        && !st.sessions.get(id).toa_sent
        && match toa_mode {
            ToaMode::Off => false,
            ToaMode::FirstAck => prev == ConnState::SynRecv && state == ConnState::Established,
            ToaMode::SynAndFirstAck => l4.flags.contains(TcpFlags::SYN) || (prev == ConnState::SynRecv && state == ConnState::Established),
        };
    if want_toa {
        let mtu = ctx.ports[usize::from(port)].mtu;
        let c = &mut st.counters;
        match nat::insert_toa(buf, client, mtu) {
            Ok(()) => {
                c.toa_inserted += 1;
                if !l4.flags.contains(TcpFlags::SYN) {
                    st.sessions.get_mut(id).toa_sent = true;
                }
            }
            Err(ToaSkip::OptionSpace) => c.toa_skipped_option_space += 1,
            Err(ToaSkip::Mtu) => c.toa_skipped_mtu += 1,
            Err(ToaSkip::Headroom) => c.toa_skipped_headroom += 1,
        }
    }
    st.sessions.get_mut(id).pkts_in += 1;
    st.counters.fnat_in += 1;
    set_l2(buf.data_mut(), port, next_hop, ctx)
}

/// Writes the Ethernet addresses toward `next_hop` on `port`, or asks to hold the frame.
fn set_l2(frame: &mut [u8], port: u8, next_hop: Ipv4Addr, ctx: &Ctx<'_>) -> Verdict {
    let Some(mac) = ctx.neigh.get(next_hop) else {
        return Verdict::Hold { port, next_hop };
    };
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(mac);
    eth.set_src_addr(ctx.ports[usize::from(port)].mac);
    Verdict::Tx(port)
}

fn from_rs(frame: &mut [u8], id: u32, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let s = st.sessions.get(id);
    let (client, vip, port, mac, prev, toa_on) = (s.client, s.vip, s.client_port, s.client_mac, s.state, s.generation == ctx.services.generation() && ctx.services.get(s.svc).is_some_and(|v| v.toa != ToaMode::Off));
    let state = if l4.proto == L4Proto::Tcp { next_state(prev, l4.flags, false) } else { ConnState::Udp };
    st.sessions.touch(id, state, ctx.now_ms);
    if l4.proto == L4Proto::Tcp && toa_on && l4.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        // Segments toward the RS may carry TOA: announce a smaller MSS to the client.
        nat::lower_mss(&mut frame[L2..], TOA_LEN as u16);
    }
    nat::rewrite(&mut frame[L2..], l4.proto, vip, client);
    let Some(iface) = ctx.ports.get(usize::from(port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(mac);
    eth.set_src_addr(iface.mac);
    st.sessions.get_mut(id).pkts_out += 1;
    st.counters.fnat_out += 1;
    Verdict::Tx(port)
}

/// Relays an ICMP error that quotes a packet of one of this worker's sessions, translated for
/// the other side. `None` if it quotes no session (the caller goes on).
pub(crate) fn relay_icmp_error(frame: &mut [u8], in_port: u8, ctx: &Ctx<'_>, st: &mut WorkerState) -> Option<Verdict> {
    let (outer_src, outer_dst) = {
        let ip = Ipv4Packet::new_unchecked(&frame[L2..]);
        (ip.src_addr(), ip.dst_addr())
    };
    let (proto, qsrc, qdst) = nat::quoted_tuple(Ipv4Packet::new_unchecked(&frame[L2..]).payload())?;
    if ctx.services.is_laddr(outer_dst) {
        // From the RS side, quoting lip:lport -> rip:rport.
        if owner_of(qsrc.1, ctx.workers) != ctx.worker {
            return Some(Verdict::Redirect(owner_of(qsrc.1, ctx.workers)));
        }
        let key = FlowKey { src: qdst.0, dst: qsrc.0, sport: qdst.1, dport: qsrc.1, proto };
        let id = st.sessions.find_rs(&key)?;
        let s = st.sessions.get(id);
        let (client, vip, port, mac) = (s.client, s.vip, s.client_port, s.client_mac);
        if let Err(r) = nat::translate_icmp_error(&mut frame[L2..], vip.0, client.0, client, vip) {
            return Some(Verdict::Drop(r));
        }
        let iface = ctx.ports.get(usize::from(port))?;
        let mut eth = EthernetFrame::new_unchecked(frame);
        eth.set_dst_addr(mac);
        eth.set_src_addr(iface.mac);
        st.counters.icmp_errors_relayed += 1;
        return Some(Verdict::Tx(port));
    }
    if ctx.services.is_vip(outer_dst) {
        // From the client side, quoting vip:vport -> cip:cport.
        let key = FlowKey { src: qdst.0, dst: qsrc.0, sport: qdst.1, dport: qsrc.1, proto };
        let id = st.sessions.find_client(&key)?;
        let s = st.sessions.get(id);
        let (laddr, rs) = (s.laddr, s.rs);
        let _ = (outer_src, in_port);
        if let Err(r) = nat::translate_icmp_error(&mut frame[L2..], laddr.0, rs.0, rs, laddr) {
            return Some(Verdict::Drop(r));
        }
        let Some((port, next_hop)) = route(ctx.ports, rs.0) else {
            return Some(Verdict::Drop(DropReason::NoRoute));
        };
        st.counters.icmp_errors_relayed += 1;
        return Some(set_l2(frame, port, next_hop, ctx));
    }
    None
}
