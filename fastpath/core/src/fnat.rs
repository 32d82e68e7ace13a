//! Forwarding to real servers: FNAT (client -> VIP becomes LIP -> RS, replies reversed), NAT
//! (destination rewritten, replies routed back through us) and DR (MAC rewrite only).
//! Sessions are created on a client SYN (TCP) or first datagram (UDP) after the service's
//! client lists and flow control admit it, and found from both directions.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use crate::acl::AclVerdict;
use crate::buf::PacketBuf;
use crate::flow::{FlowKey, L4Proto};
use crate::flowctl::Limit;
use crate::hashsched::client_hash;
use crate::iface::route;
use crate::laddr::owner_of;
use crate::nat::{self, ToaSkip};
use crate::persist::{PersistTable, TemplateKey};
use crate::pipeline::{Ctx, WorkerState};
use crate::service::{AddrKind, ForwardMode, RefuseMode, Scheduler, Service, ServiceKey, ToaMode};
use crate::session::{ConnState, NewSession};
use crate::verdict::{DropReason, Verdict};
use crate::wire::toa::TOA_LEN;
use crate::wire::{ethernet, EthernetFrame, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket, UdpPacket};

const L2: usize = ethernet::HEADER_LEN;
/// The TOA option's length, as a TCP length.
const TOA_OPTION_LEN: u16 = 8;
const _: () = assert!(TOA_OPTION_LEN as usize == TOA_LEN);

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
            Some(id) => from_rs(buf.data_mut(), id, &l4, ctx, st),
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
            if let Some(w) = ctx.owners.filter(|_| !syn).and_then(|o| o.synced.get(&key)) {
                if w != ctx.worker {
                    return Verdict::Redirect(w);
                }
            }
            match new_session(buf, in_port, &key, &l4, ctx, st) {
                Ok(id) => id,
                Err(v) => return v,
            }
        }
    };
    let s = st.sessions.get_mut(id);
    if s.adopted && crate::sync::unknown_client_mac(s.client_mac) {
        // First packet of a synced session here: replies go back the way it came.
        s.client_port = in_port;
        s.client_mac = EthernetFrame::new_unchecked(buf.data()).src_addr();
    }
    to_rs(buf, id, &l4, ctx, st)
}

/// Refuses a new connection: counts `reason`, and for TCP with RST refusal answers a reset.
fn refuse<B: PacketBuf>(buf: &mut B, in_port: u8, svc: &Service, l4: &L4, reason: DropReason, st: &mut WorkerState) -> Verdict {
    if l4.proto == L4Proto::Tcp && svc.flow.refuse == RefuseMode::Rst && nat::rst_reply(buf) {
        st.counters.drop(reason);
        st.counters.rst_sent += 1;
        return Verdict::Tx(in_port);
    }
    Verdict::Drop(reason)
}

/// The real server (index in the service, or `None` for the sorry server) for a new
/// connection; `Err` when none can take it.
fn choose(svc_idx: u32, svc: &Service, key: &FlowKey, ctx: &Ctx<'_>, st: &mut WorkerState) -> Option<u32> {
    let compiled = ctx.services.compiled(svc_idx);
    if let Some(p) = svc.persistence {
        let tkey = TemplateKey { client_net: PersistTable::client_net(key.src, p.netmask), vip: key.dst, vport: key.dport, proto: key.proto };
        let from_template = st.persist.get(&tkey, ctx.now_ms).and_then(|t| {
            svc.real_servers.iter().position(|r| (r.addr, r.port) == t.rs && r.available()).and_then(|i| u32::try_from(i).ok())
        });
        let idx = from_template.or_else(|| compiled.persist_hash.lookup(client_hash(tkey.client_net, None)))?;
        let rs = &svc.real_servers[idx as usize];
        st.persist.put(tkey, (rs.addr, rs.port), ctx.now_ms, p.timeout_s);
        return Some(idx);
    }
    match svc.sched {
        Scheduler::Sh => compiled.hash.lookup(client_hash(key.src, None)),
        Scheduler::Dh => compiled.hash.lookup(client_hash(key.dst, None)),
        Scheduler::Consh | Scheduler::Mh => compiled.hash.lookup(client_hash(key.src, svc.hash_port.then_some(key.sport))),
        Scheduler::Rr | Scheduler::Wrr | Scheduler::Lc | Scheduler::Wlc => {
            st.sync_sched(ctx.services);
            st.sched[svc_idx as usize].pick(svc).and_then(|i| u32::try_from(i).ok())
        }
    }
}

fn new_session<B: PacketBuf>(buf: &mut B, in_port: u8, key: &FlowKey, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Result<u32, Verdict> {
    let skey = ServiceKey { vip: key.dst, port: key.dport, proto: key.proto };
    let Some((svc_idx, svc)) = ctx.services.lookup(&skey) else {
        // A VIP, but no service on this port/protocol: the kernel may answer (or reset).
        return Err(Verdict::ToKernel);
    };
    let is_syn = l4.flags.contains(TcpFlags::SYN) && !l4.flags.intersects(TcpFlags::ACK | TcpFlags::RST);
    if l4.proto == L4Proto::Tcp && !is_syn {
        return Err(Verdict::Drop(DropReason::NoSession));
    }
    // Nobody outside may open a connection as one of our own addresses (a SYN from LIP:port
    // would own that port's replies). Checked once per new connection only.
    if ctx.services.addr(key.src).is_some() || ctx.ports.iter().any(|p| p.owns(key.src)) {
        return Err(Verdict::Drop(DropReason::SpoofedSource));
    }
    let compiled = ctx.services.compiled(svc_idx);
    if !compiled.acl.is_open() {
        match compiled.acl.check(key.src) {
            AclVerdict::Accept => {}
            AclVerdict::NotAllowed => {
                compiled.shared.refused_not_allowed.fetch_add(1, Ordering::Relaxed);
                return Err(refuse(buf, in_port, svc, l4, DropReason::ClientNotAllowed, st));
            }
            AclVerdict::Denied => {
                // A denied source gets nothing at all, not even a reset.
                compiled.shared.refused_denied.fetch_add(1, Ordering::Relaxed);
                return Err(Verdict::Drop(DropReason::ClientDenied));
            }
        }
    }
    // Only services with limits touch the cross-worker counters (one atomic per connection).
    let limited = svc.flow.cps > 0 || svc.flow.max_conns > 0;
    if limited {
        if let Err(limit) = compiled.shared.admit(&svc.flow, ctx.now_ms) {
            let reason = match limit {
                Limit::Cps => DropReason::CpsLimit,
                Limit::Conns => DropReason::ConnLimit,
            };
            return Err(refuse(buf, in_port, svc, l4, reason, st));
        }
    }
    let unadmit = || {
        if limited {
            compiled.shared.closed();
        }
    };
    let picked = choose(svc_idx, svc, key, ctx, st);
    let (rs, rs_idx) = match picked {
        Some(i) => {
            let r = &svc.real_servers[i as usize];
            ((r.addr, r.port), i)
        }
        None => match svc.sorry_server {
            Some(sorry) => {
                st.counters.sorry_served += 1;
                (sorry, u32::MAX)
            }
            None => {
                unadmit();
                return Err(Verdict::Drop(DropReason::NoRealServer));
            }
        },
    };
    let laddr = match svc.mode {
        ForwardMode::Fnat => match st.laddrs.alloc(&svc.laddrs) {
            Some(l) => l,
            None => {
                unadmit();
                return Err(Verdict::Drop(DropReason::NoLocalPort));
            }
        },
        // NAT and DR keep the client's address: the reply tuple is rs -> client.
        ForwardMode::Nat | ForwardMode::Dr => (key.src, key.sport),
    };
    let client_mac = EthernetFrame::new_unchecked(buf.data()).src_addr();
    let n = NewSession {
        proto: key.proto,
        mode: svc.mode,
        shared: limited.then(|| std::sync::Arc::clone(&compiled.shared)),
        client: (key.src, key.sport),
        vip: (key.dst, key.dport),
        laddr,
        rs,
        svc: svc_idx,
        rs_idx,
        generation: ctx.services.generation(),
        client_port: in_port,
        client_mac,
    };
    match st.sessions.insert(n, ctx.now_ms) {
        Ok(id) => {
            st.sync_sched(ctx.services);
            if st.sched_generation == ctx.services.generation() {
                if let Some(s) = st.sched.get_mut(svc_idx as usize) {
                    s.opened(rs_idx as usize);
                }
            }
            if svc.mode == ForwardMode::Nat {
                if let Some(o) = ctx.owners {
                    o.nat.insert(st.sessions.get(id).rs_key(), ctx.worker);
                }
            }
            st.counters.sessions_created += 1;
            Ok(id)
        }
        Err(_) => {
            unadmit();
            if svc.mode == ForwardMode::Fnat {
                st.laddrs.release(laddr.0, laddr.1);
            }
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

/// After a configuration change, checks once whether the session's real server is still
/// available; if not, the session drains (until it ends, or the service's draining timeout).
/// Returns false when the session's draining time is over (the caller drops the packet).
fn still_allowed(id: u32, ctx: &Ctx<'_>, st: &mut WorkerState) -> bool {
    let generation = ctx.services.generation();
    let s = st.sessions.get(id);
    if s.generation != generation && !s.draining {
        let skey = ServiceKey { vip: s.vip.0, port: s.vip.1, proto: s.proto };
        let svc = ctx.services.lookup(&skey);
        let draining_timeout = svc.and_then(|(_, v)| v.draining_timeout_s);
        let found = svc.and_then(|(i, v)| {
            let j = v.real_servers.iter().position(|r| (r.addr, r.port) == s.rs)?;
            Some((i, j, v.real_servers[j].available()))
        });
        let s = st.sessions.get_mut(id);
        match found {
            Some((i, j, true)) => {
                s.svc = i;
                s.rs_idx = u32::try_from(j).unwrap_or(u32::MAX);
                s.generation = generation;
            }
            _ => {
                s.draining = true;
                s.drain_deadline_ms = match draining_timeout {
                    Some(t) if t > 0 => ctx.now_ms + u64::from(t) * 1000,
                    _ => 0,
                };
                st.counters.sessions_draining += 1;
            }
        }
    }
    let s = st.sessions.get(id);
    !(s.draining && s.drain_deadline_ms != 0 && ctx.now_ms >= s.drain_deadline_ms)
}

fn to_rs<B: PacketBuf>(buf: &mut B, id: u32, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    if !still_allowed(id, ctx, st) {
        st.kill(id, ctx.owners);
        return Verdict::Drop(DropReason::DrainTimeout);
    }
    let s = st.sessions.get(id);
    let (laddr, rs, client, svc, prev, generation, mode) = (s.laddr, s.rs, s.client, s.svc, s.state, s.generation, s.mode);
    let state = if l4.proto == L4Proto::Tcp { next_state(prev, l4.flags, true) } else { ConnState::Udp };
    st.sessions.touch(id, state, ctx.now_ms);
    let len = u64::try_from(buf.data().len()).unwrap_or(0);
    let s = st.sessions.get_mut(id);
    s.pkts_in += 1;
    s.bytes_in += len;
    st.counters.fnat_in += 1;
    let Some((port, next_hop)) = route(ctx.ports, rs.0) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    if mode == ForwardMode::Dr {
        // The real server holds the VIP itself: only the MAC changes.
        if ctx.sync.is_some() {
            st.maybe_sync(id, true, ctx);
        }
        return set_l2(buf.data_mut(), port, next_hop, ctx);
    }
    nat::rewrite(&mut buf.data_mut()[L2..], l4.proto, laddr, rs);
    let toa_mode = if mode == ForwardMode::Fnat && generation == ctx.services.generation() {
        ctx.services.get(svc).map_or(ToaMode::Off, |v| v.toa)
    } else {
        ToaMode::Off
    };
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
    if ctx.sync.is_some() {
        st.maybe_sync(id, true, ctx);
    }
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
    if !still_allowed(id, ctx, st) {
        st.kill(id, ctx.owners);
        return Verdict::Drop(DropReason::DrainTimeout);
    }
    let s = st.sessions.get(id);
    let toa_on = s.mode == ForwardMode::Fnat && s.generation == ctx.services.generation() && ctx.services.get(s.svc).is_some_and(|v| v.toa != ToaMode::Off);
    let (client, vip, port, mac, prev) = (s.client, s.vip, s.client_port, s.client_mac, s.state);
    let state = if l4.proto == L4Proto::Tcp { next_state(prev, l4.flags, false) } else { ConnState::Udp };
    st.sessions.touch(id, state, ctx.now_ms);
    if l4.proto == L4Proto::Tcp && toa_on && l4.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        // Segments toward the RS may carry TOA: announce a smaller MSS to the client.
        nat::lower_mss(&mut frame[L2..], TOA_OPTION_LEN);
    }
    nat::rewrite(&mut frame[L2..], l4.proto, vip, client);
    if ctx.sync.is_some() {
        st.maybe_sync(id, false, ctx);
    }
    let frame_len = u64::try_from(frame.len()).unwrap_or(0);
    let s = st.sessions.get_mut(id);
    s.pkts_out += 1;
    s.bytes_out += frame_len;
    st.counters.fnat_out += 1;
    if crate::sync::unknown_client_mac(mac) {
        // A synced session whose client has not been seen here yet: route toward it.
        let Some((port, next_hop)) = route(ctx.ports, client.0) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        return set_l2(frame, port, next_hop, ctx);
    }
    let Some(iface) = ctx.ports.get(usize::from(port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(mac);
    eth.set_src_addr(iface.mac);
    Verdict::Tx(port)
}

/// A TCP/UDP frame routed through us that is not addressed to us: a NAT-mode reply from a
/// real server, if a session knows its tuple. `None`: not ours (the caller goes on).
pub(crate) fn nat_reply(frame: &mut [u8], ctx: &Ctx<'_>, st: &mut WorkerState) -> Option<Verdict> {
    let (src, dst, l4) = parse_l4(frame).ok()?;
    let key = FlowKey { src, dst, sport: l4.sport, dport: l4.dport, proto: l4.proto };
    match st.sessions.find_rs(&key) {
        // Addressed to the client, not to us: the session's VIP says whether we may forward it.
        Some(id) if st.sessions.get(id).mode == ForwardMode::Nat && ctx.services.addr(st.sessions.get(id).vip.0).is_some_and(|a| !a.owned) => Some(Verdict::Drop(DropReason::NotOwner)),
        Some(id) if st.sessions.get(id).mode == ForwardMode::Nat => Some(from_rs(frame, id, &l4, ctx, st)),
        Some(_) => None,
        None => match ctx.owners.and_then(|o| o.nat.get(&key)) {
            Some(w) if w != ctx.worker => Some(Verdict::Redirect(w)),
            _ => None,
        },
    }
}

/// Relays an ICMP error that quotes a packet of one of this worker's sessions, translated for
/// the other side. `None` if it quotes no session (the caller goes on).
pub(crate) fn relay_icmp_error(frame: &mut [u8], ctx: &Ctx<'_>, st: &mut WorkerState) -> Option<Verdict> {
    let outer_dst = Ipv4Packet::new_unchecked(&frame[L2..]).dst_addr();
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
        if s.mode != ForwardMode::Fnat {
            return None;
        }
        let (laddr, rs) = (s.laddr, s.rs);
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
