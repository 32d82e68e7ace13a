//! ICMP errors that quote a session's packet, translated for the other side.

use crate::flow::FlowKey;
use crate::iface::route;
use crate::laddr::owner_of;
use crate::nat;
use crate::service::ForwardMode;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{EthernetFrame, Ipv4Packet};
use crate::worker::{Ctx, WorkerState};

use super::{set_l2, L2};

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
