//! Rewriting and transmitting a session's packets per forwarding mode: toward the real server
//! (FNAT and NAT rewrite addresses, FNAT inserts TOA; DR changes only MACs) and back to the
//! client.

use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::flow::L4Proto;
use crate::iface::route;
use crate::nat::{self, ToaSkip};
use crate::service::{ForwardMode, ToaMode};
use crate::session::ConnState;
use crate::verdict::{DropReason, Verdict};
use crate::wire::toa::TOA_LEN;
use crate::wire::{EthernetAddress, EthernetFrame, TcpFlags};
use crate::worker::{Ctx, WorkerState};

use super::tcp_state::{next_state, still_allowed};
use super::{L2, L4};

/// The TOA mode a session's packets toward its real server follow: its service's, for FNAT
/// sessions of the current snapshot; off otherwise.
pub(crate) fn session_toa(s: &crate::session::Session, ctx: &Ctx<'_>) -> ToaMode {
    if s.mode != ForwardMode::Fnat || s.generation != ctx.services.generation_tag() {
        return ToaMode::Off;
    }
    ctx.services.get(u32::from(s.svc)).map_or(ToaMode::Off, |v| v.toa)
}

/// The TOA option's length, as a TCP length.
const TOA_OPTION_LEN: u16 = 8;
const _: () = assert!(TOA_OPTION_LEN as usize == TOA_LEN);

pub(super) fn to_rs<B: PacketBuf>(buf: &mut B, id: u32, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    if !still_allowed(id, ctx, st) {
        st.kill(id, ctx.owners);
        return Verdict::Drop(DropReason::DrainTimeout);
    }
    let s = st.sessions.get(id);
    let (laddr, rs, client, prev, mode) = (s.laddr, s.rs, s.client, s.state, s.mode);
    let state = if l4.proto == L4Proto::Tcp { next_state(prev, l4.flags, true) } else { ConnState::Udp };
    st.sessions.touch(id, state, ctx.now_ms);
    let len = u64::try_from(buf.data().len()).unwrap_or(0);
    st.sessions.count_in(id, len);
    st.counters.fnat_in += 1;
    let s = st.sessions.get(id);
    let gen = ctx.neigh.generation();
    let (port, l2) = if s.rs_l2_gen == gen {
        (s.rs_port, RsL2::Cached(s.rs_mac))
    } else {
        let Some((port, next_hop)) = route(ctx.ports, rs.0) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        (port, RsL2::Resolve(next_hop))
    };
    if mode == ForwardMode::Dr {
        // The real server holds the VIP itself: only the MAC changes.
        if ctx.sync.is_some() {
            st.maybe_sync(id, true, ctx);
        }
        return l2_to_rs(buf.data_mut(), id, port, l2, ctx, st);
    }
    nat::rewrite(&mut buf.data_mut()[L2..], l4.proto, laddr, rs);
    if let Some(mut sp) = st.sessions.splice(id) {
        if let Err(r) = crate::synproxy::splice_to_rs(&mut buf.data_mut()[L2..], &mut sp) {
            st.sessions.set_splice(id, sp);
            return Verdict::Drop(r);
        }
        st.sessions.set_splice(id, sp);
    }
    let toa_mode = session_toa(st.sessions.get(id), ctx);
    let want_toa = l4.proto == L4Proto::Tcp
        && !st.sessions.get(id).toa_sent()
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
                    st.sessions.get_mut(id).set_toa_sent();
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
    l2_to_rs(buf.data_mut(), id, port, l2, ctx, st)
}

/// The next hop toward a session's real server: as cached in the session, or to be looked up.
#[derive(Clone, Copy)]
enum RsL2 {
    Cached(EthernetAddress),
    Resolve(Ipv4Addr),
}

/// Writes the Ethernet addresses toward the real server; a MAC found in the neighbour table
/// is cached in the session with the table's generation (the egress port with it).
fn l2_to_rs(frame: &mut [u8], id: u32, port: u8, l2: RsL2, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let mac = match l2 {
        RsL2::Cached(mac) => mac,
        RsL2::Resolve(next_hop) => {
            let Some(mac) = ctx.neigh.get(next_hop) else {
                return Verdict::Hold { port, next_hop };
            };
            let s = st.sessions.get_mut(id);
            (s.rs_port, s.rs_mac, s.rs_l2_gen) = (port, mac, ctx.neigh.generation());
            mac
        }
    };
    write_l2(frame, port, mac, ctx)
}

/// Writes the Ethernet addresses toward `next_hop` on `port`, or asks to hold the frame.
pub(crate) fn set_l2(frame: &mut [u8], port: u8, next_hop: Ipv4Addr, ctx: &Ctx<'_>) -> Verdict {
    match ctx.neigh.get(next_hop) {
        Some(mac) => write_l2(frame, port, mac, ctx),
        None => Verdict::Hold { port, next_hop },
    }
}

/// Addresses the frame to `mac` from `port`'s own MAC and sends it out of `port`.
fn write_l2(frame: &mut [u8], port: u8, mac: EthernetAddress, ctx: &Ctx<'_>) -> Verdict {
    let Some(iface) = ctx.ports.get(usize::from(port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(mac);
    eth.set_src_addr(iface.mac);
    Verdict::Tx(port)
}

pub(super) fn from_rs<B: PacketBuf>(buf: &mut B, id: u32, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    if !still_allowed(id, ctx, st) {
        st.kill(id, ctx.owners);
        return Verdict::Drop(DropReason::DrainTimeout);
    }
    if st.sessions.splice(id).is_some_and(|sp| sp.waiting) {
        if let Some(v) = crate::synproxy::stage::rs_waiting(buf, id, ctx, st) {
            return v;
        }
    }
    let frame = buf.data_mut();
    let s = st.sessions.get(id);
    let toa_on = session_toa(s, ctx) != ToaMode::Off;
    let (client, vip, port, mac, prev) = (s.client, s.vip, s.client_port, s.client_mac, s.state);
    let state = if l4.proto == L4Proto::Tcp { next_state(prev, l4.flags, false) } else { ConnState::Udp };
    st.sessions.touch(id, state, ctx.now_ms);
    if l4.proto == L4Proto::Tcp && toa_on && l4.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        // Segments toward the RS may carry TOA: announce a smaller MSS to the client.
        nat::lower_mss(&mut frame[L2..], TOA_OPTION_LEN);
    }
    nat::rewrite(&mut frame[L2..], l4.proto, vip, client);
    if let Some(mut sp) = st.sessions.splice(id) {
        crate::synproxy::splice_to_client(&mut frame[L2..], &mut sp);
        st.sessions.set_splice(id, sp);
    }
    if ctx.sync.is_some() {
        st.maybe_sync(id, false, ctx);
    }
    let frame_len = u64::try_from(frame.len()).unwrap_or(0);
    st.sessions.count_out(id, frame_len);
    st.counters.fnat_out += 1;
    if crate::sync::unknown_client_mac(mac) {
        // A synced session whose client has not been seen here yet: route toward it.
        let Some((port, next_hop)) = route(ctx.ports, client.0) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        return set_l2(frame, port, next_hop, ctx);
    }
    write_l2(frame, port, mac, ctx)
}
