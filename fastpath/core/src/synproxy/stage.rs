//! The SYN proxy's handshake steps, each turning the packet in hand into the one to send.

use crate::acl::AclVerdict;
use crate::buf::PacketBuf;
use crate::flow::FlowKey;
use crate::forward::{admit, session_toa, set_l2, L2, L4};
use crate::iface::route;
use crate::service::{Service, ToaMode};
use crate::session::ConnState;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{EthernetAddress, EthernetFrame, Ipv4Packet, TcpFlags, TcpPacket};
use crate::worker::{Ctx, Emit, WorkerState, DEFAULT_TTL};

use super::cookie::{self, CookieKey, SynOpts, Tuple};
use super::frame::{syn_options, Options, Segment};
use super::{rescale, Splice, SynProxyConf};

/// The fields of the TCP segment in hand the steps read.
struct Seg {
    seq: u32,
    ack: u32,
    window: u16,
    flags: TcpFlags,
    payload_len: usize,
    mss: Option<u16>,
    wscale: Option<u8>,
    sack: bool,
}

fn read_seg(frame: &[u8]) -> Seg {
    let ip = Ipv4Packet::new_unchecked(&frame[L2..]);
    let t = TcpPacket::new_unchecked(ip.payload());
    let (mss, wscale, sack) = if t.flags().contains(TcpFlags::SYN) { syn_options(t.options()) } else { (None, None, false) };
    Seg { seq: t.seq_number(), ack: t.ack_number(), window: t.window_len(), flags: t.flags(), payload_len: t.payload().len(), mss, wscale, sack }
}

fn tuple(key: &FlowKey) -> Tuple {
    Tuple { src: key.src, dst: key.dst, sport: key.sport, dport: key.dport }
}

/// A client packet to a proxied service that matches no session: a SYN is answered with a
/// cookie, an ACK that returns a valid cookie opens the connection, anything else is dropped.
#[allow(clippy::too_many_arguments)]
pub(crate) fn no_session<B: PacketBuf>(buf: &mut B, in_port: u8, key: &FlowKey, l4: &L4, svc_idx: u32, svc: &Service, conf: &SynProxyConf, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let f = l4.flags;
    if f.contains(TcpFlags::SYN) && !f.intersects(TcpFlags::ACK | TcpFlags::RST) {
        return client_syn(buf, in_port, key, svc_idx, conf, ctx, st);
    }
    if f.contains(TcpFlags::ACK) && !f.intersects(TcpFlags::SYN | TcpFlags::RST) {
        return client_ack(buf, in_port, key, l4, svc_idx, svc, conf, ctx, st);
    }
    Verdict::Drop(DropReason::NoSession)
}

/// Answers a SYN with a SYN-ACK carrying a cookie, window 0, nothing stored.
fn client_syn<B: PacketBuf>(buf: &mut B, in_port: u8, key: &FlowKey, svc_idx: u32, conf: &SynProxyConf, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    // The checks a new connection gets that cost no state: nobody may open one as one of our
    // addresses, and a denied client gets no answer at all.
    if admit::spoofed(key.src, ctx) {
        return Verdict::Drop(DropReason::SpoofedSource);
    }
    let acl = &ctx.services.compiled(svc_idx).acl;
    if !acl.is_open() {
        match acl.check(key.src) {
            AclVerdict::Accept => {}
            AclVerdict::NotAllowed => return Verdict::Drop(DropReason::ClientNotAllowed),
            AclVerdict::Denied => return Verdict::Drop(DropReason::ClientDenied),
        }
    }
    let Some(iface) = ctx.ports.get(usize::from(in_port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let s = read_seg(buf.data());
    let opts = SynOpts {
        mss_idx: SynOpts::mss_index(s.mss.unwrap_or(cookie::MSS_TABLE[0])),
        wscale: s.wscale.filter(|_| conf.wscale.is_some()),
        sack: s.sack && conf.sack,
    };
    let isn = cookie::make(CookieKey::process(), &tuple(key), s.seq, ctx.now_ms, opts);
    let client_mac = EthernetFrame::new_unchecked(buf.data()).src_addr();
    let seg = Segment {
        src_mac: iface.mac,
        dst_mac: client_mac,
        src: (key.dst, key.dport),
        dst: (key.src, key.sport),
        ttl: conf.ttl,
        seq: isn,
        ack: s.seq.wrapping_add(1),
        flags: TcpFlags::SYN | TcpFlags::ACK,
        // Closed: the client sends nothing until the real server has answered.
        window: 0,
        options: Options::default().mss(conf.mss).wscale(opts.wscale.and(conf.wscale)).sack_permitted(opts.sack),
    };
    if !seg.rebuild(buf) {
        return Verdict::Drop(DropReason::NoMbuf);
    }
    st.counters.synproxy_syn_cookies += 1;
    Verdict::Tx(in_port)
}

/// Checks the cookie an ACK returns; a valid one is admitted like a new connection and the
/// ACK becomes the SYN to the chosen real server.
#[allow(clippy::too_many_arguments)]
fn client_ack<B: PacketBuf>(buf: &mut B, in_port: u8, key: &FlowKey, l4: &L4, svc_idx: u32, svc: &Service, conf: &SynProxyConf, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let s = read_seg(buf.data());
    let (client_isn, isn) = (s.seq.wrapping_sub(1), s.ack.wrapping_sub(1));
    let Some(opts) = cookie::check(CookieKey::process(), &tuple(key), client_isn, isn, ctx.now_ms) else {
        return Verdict::Drop(DropReason::SynProxyBadCookie);
    };
    let id = match admit::new_session(buf, in_port, key, l4, svc_idx, svc, ctx, st, true) {
        Ok(id) => id,
        Err(v) => return v,
    };
    st.counters.synproxy_accepted += 1;
    if s.payload_len > 0 {
        // The window was closed: the client will send it again once it opens.
        st.counters.synproxy_ack_data_cut += 1;
    }
    let len = u64::try_from(buf.data().len()).unwrap_or(0);
    st.sessions.count_in(id, len);
    st.sessions.set_splice(id, Splice {
        waiting: true,
        client_isn,
        cookie: isn,
        delta: 0,
        opts,
        our_wscale: opts.wscale.and(conf.wscale),
        client_win: s.window,
        to_rs_shift: (0, 0),
        to_client_shift: (0, 0),
        ttl: conf.ttl,
        retries_left: conf.rs_syn_max_retry,
        storm_thresh: conf.ack_storm_thresh,
        dup_acks: 0,
        last_ack: 0,
    });
    syn_to_rs(buf, id, ctx, st)
}

/// Turns the packet in hand into the session's SYN to its real server.
fn syn_to_rs<B: PacketBuf>(buf: &mut B, id: u32, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let toa = session_toa(st.sessions.get(id), ctx) == ToaMode::SynAndFirstAck;
    let s = st.sessions.get(id);
    let Some(sp) = st.sessions.splice(id) else { return Verdict::Drop(DropReason::NoSession) };
    let client_window = rescale(sp.client_win, (sp.opts.wscale.unwrap_or(0), 0));
    let seg = Segment {
        src_mac: EthernetAddress([0; 6]),
        dst_mac: EthernetAddress([0; 6]),
        src: s.laddr,
        dst: s.rs,
        ttl: DEFAULT_TTL,
        seq: sp.client_isn,
        ack: 0,
        flags: TcpFlags::SYN,
        window: client_window,
        options: Options::default().mss(sp.opts.mss()).wscale(sp.opts.wscale).sack_permitted(sp.opts.sack).toa(toa.then_some(s.client)),
    };
    let rs = s.rs.0;
    if !seg.rebuild(buf) {
        return Verdict::Drop(DropReason::NoMbuf);
    }
    if toa {
        st.counters.toa_inserted += 1;
    }
    let Some((port, next_hop)) = route(ctx.ports, rs) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    set_l2(buf.data_mut(), port, next_hop, ctx)
}

/// A client packet while the session waits for the real server: an RST is passed on (and
/// ends the session); anything else re-sends the SYN, a bounded number of times.
pub(crate) fn client_waiting<B: PacketBuf>(buf: &mut B, id: u32, l4: &L4, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let s = st.sessions.get(id);
    let Some(mut sp) = st.sessions.splice(id) else { return Verdict::Drop(DropReason::NoSession) };
    if l4.flags.contains(TcpFlags::RST) {
        let seg = Segment {
            src_mac: EthernetAddress([0; 6]),
            dst_mac: EthernetAddress([0; 6]),
            src: s.laddr,
            dst: s.rs,
            ttl: DEFAULT_TTL,
            seq: sp.client_isn.wrapping_add(1),
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: Options::default(),
        };
        let rs = s.rs.0;
        st.sessions.touch(id, ConnState::Close, ctx.now_ms);
        if !seg.rebuild(buf) {
            return Verdict::Drop(DropReason::NoMbuf);
        }
        let Some((port, next_hop)) = route(ctx.ports, rs) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        return set_l2(buf.data_mut(), port, next_hop, ctx);
    }
    if sp.retries_left == 0 {
        return Verdict::Drop(DropReason::SynProxyWaiting);
    }
    sp.retries_left -= 1;
    st.sessions.set_splice(id, sp);
    st.counters.synproxy_rs_syn_retries += 1;
    syn_to_rs(buf, id, ctx, st)
}

/// A real-server packet while the session waits for its SYN-ACK. The SYN-ACK becomes the ACK
/// completing the real server's handshake, and a window update to the client is queued;
/// an RST is lined up to reach the client (`None`: the caller forwards it as usual); the rest
/// is dropped.
pub(crate) fn rs_waiting<B: PacketBuf>(buf: &mut B, id: u32, ctx: &Ctx<'_>, st: &mut WorkerState) -> Option<Verdict> {
    let seg_in = read_seg(buf.data());
    let s = st.sessions.get(id);
    let mut sp = st.sessions.splice(id)?;
    if seg_in.flags.contains(TcpFlags::RST) {
        // The client expects the next byte after the cookie.
        sp.delta = seg_in.seq.wrapping_sub(sp.cookie.wrapping_add(1));
        sp.waiting = false;
        st.sessions.set_splice(id, sp);
        return None;
    }
    if !seg_in.flags.contains(TcpFlags::SYN | TcpFlags::ACK) || seg_in.ack != sp.client_isn.wrapping_add(1) {
        return Some(Verdict::Drop(DropReason::SynProxyWaiting));
    }
    let rs_isn = seg_in.seq;
    sp.delta = rs_isn.wrapping_sub(sp.cookie);
    sp.waiting = false;
    // Window scaling toward the client was agreed with `our_wscale`; with the real server it
    // is on only if it answered the client's shift with one of its own.
    let client_ws = sp.opts.wscale;
    let rs_ws = seg_in.wscale.filter(|_| client_ws.is_some());
    sp.to_rs_shift = match (client_ws, rs_ws) {
        (Some(c), None) => (c, 0),
        _ => (0, 0),
    };
    sp.to_client_shift = (rs_ws.unwrap_or(0), sp.our_wscale.unwrap_or(0));
    let toa = session_toa(s, ctx) != ToaMode::Off && !s.toa_sent();
    let (laddr, client, rs, vip, client_port, client_mac) = (s.laddr, s.client, s.rs, s.vip, s.client_port, s.client_mac);
    let ack = Segment {
        src_mac: EthernetAddress([0; 6]),
        dst_mac: EthernetAddress([0; 6]),
        src: laddr,
        dst: rs,
        ttl: DEFAULT_TTL,
        seq: sp.client_isn.wrapping_add(1),
        ack: rs_isn.wrapping_add(1),
        flags: TcpFlags::ACK,
        window: rescale(sp.client_win, sp.to_rs_shift),
        options: Options::default().toa(toa.then_some(client)),
    };
    // The SYN-ACK's window is never scaled; the client reads ours in `our_wscale`.
    let update_window = rescale(seg_in.window, (0, sp.our_wscale.unwrap_or(0)));
    let update = Segment {
        src_mac: ctx.ports.get(usize::from(client_port)).map_or(EthernetAddress([0; 6]), |p| p.mac),
        dst_mac: client_mac,
        src: vip,
        dst: client,
        ttl: sp.ttl,
        seq: sp.cookie.wrapping_add(1),
        ack: sp.client_isn.wrapping_add(1),
        flags: TcpFlags::ACK,
        window: update_window,
        options: Options::default(),
    };
    let len = u64::try_from(buf.data().len()).unwrap_or(0);
    st.sessions.touch(id, ConnState::Established, ctx.now_ms);
    st.sessions.count_out(id, len);
    st.sessions.set_splice(id, sp);
    if toa {
        st.sessions.get_mut(id).set_toa_sent();
        st.counters.toa_inserted += 1;
    }
    if let Some(e) = Emit::new(client_port, update.len(), |f| update.write(f)) {
        st.push_emit(e);
    }
    st.counters.synproxy_window_updates += 1;
    if ctx.sync.is_some() {
        st.maybe_sync(id, false, ctx);
    }
    if !ack.rebuild(buf) {
        return Some(Verdict::Drop(DropReason::NoMbuf));
    }
    let Some((port, next_hop)) = route(ctx.ports, rs.0) else {
        return Some(Verdict::Drop(DropReason::NoRoute));
    };
    Some(set_l2(buf.data_mut(), port, next_hop, ctx))
}
