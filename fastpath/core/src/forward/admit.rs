//! Admission of a new connection: client lists, flow control, scheduling (with persistence
//! and the sorry server), a local port, and the session itself.

use std::sync::atomic::Ordering;

use crate::acl::AclVerdict;
use crate::buf::PacketBuf;
use crate::flow::{FlowKey, L4Proto};
use crate::flowctl::Limit;
use crate::hashsched::client_hash;
use crate::nat;
use crate::persist::{PersistTable, TemplateKey};
use crate::service::{ForwardMode, RefuseMode, Scheduler, Service};
use crate::session::NewSession;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{EthernetFrame, TcpFlags};
use crate::worker::{Ctx, WorkerState};

use super::L4;

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
        Scheduler::Sh => compiled.hash.lookup(client_hash(key.src, svc.hash_port.then_some(key.sport))),
        Scheduler::Dh => compiled.hash.lookup(client_hash(key.dst, None)),
        Scheduler::Consh | Scheduler::Mh => compiled.hash.lookup(client_hash(key.src, svc.hash_port.then_some(key.sport))),
        _ => {
            st.sync_sched(ctx.services);
            st.sched[svc_idx as usize].pick(svc, key.dst, ctx.now_ms).and_then(|i| u32::try_from(i).ok())
        }
    }
}

/// Whether a client source is one of this director's own addresses (VIP, local address, port
/// address): nobody outside may open a connection as one (a SYN from LIP:port would own that
/// port's replies). Checked once per new connection only.
pub(crate) fn spoofed(src: std::net::Ipv4Addr, ctx: &Ctx<'_>) -> bool {
    ctx.services.addr(src).is_some() || ctx.ports.iter().any(|p| p.owns(src))
}

/// Admits a new connection to service `svc_idx` and creates its session. A TCP connection
/// opens with a SYN, or with the ACK that completed the SYN proxy's handshake (`proven`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_session<B: PacketBuf>(buf: &mut B, in_port: u8, key: &FlowKey, l4: &L4, svc_idx: u32, svc: &Service, ctx: &Ctx<'_>, st: &mut WorkerState, proven: bool) -> Result<u32, Verdict> {
    let is_syn = l4.flags.contains(TcpFlags::SYN) && !l4.flags.intersects(TcpFlags::ACK | TcpFlags::RST);
    if l4.proto == L4Proto::Tcp && !is_syn && !proven {
        return Err(Verdict::Drop(DropReason::NoSession));
    }
    if spoofed(key.src, ctx) {
        return Err(Verdict::Drop(DropReason::SpoofedSource));
    }
    if svc.mode == ForwardMode::Fnat && svc.laddrs.is_empty() {
        return Err(Verdict::Drop(DropReason::NoLocalAddress));
    }
    let compiled = ctx.services.compiled(svc_idx);
    if !compiled.acl.is_open() {
        match compiled.acl.check(key.src) {
            AclVerdict::Accept => {}
            AclVerdict::NotAllowed => {
                compiled.shared.refused_not_allowed.fetch_add(1, Ordering::Relaxed);
                st.counters.shared_writes += 1;
                return Err(refuse(buf, in_port, svc, l4, DropReason::ClientNotAllowed, st));
            }
            AclVerdict::Denied => {
                // A denied source gets nothing at all, not even a reset.
                compiled.shared.refused_denied.fetch_add(1, Ordering::Relaxed);
                st.counters.shared_writes += 1;
                return Err(Verdict::Drop(DropReason::ClientDenied));
            }
        }
    }
    // Only services with limits touch the cross-worker counters (one atomic per connection).
    let limited = svc.flow.cps > 0 || svc.flow.max_conns > 0;
    if limited {
        st.counters.shared_writes += 1;
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
        ForwardMode::Fnat => match st.laddrs.alloc(&svc.laddrs, rs) {
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
        svc: crate::session::index16(svc_idx),
        rs_idx: crate::session::index16(rs_idx),
        generation: ctx.services.generation_tag(),
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
                    st.counters.shared_writes += 1;
                }
            }
            st.counters.sessions_created += 1;
            Ok(id)
        }
        Err(_) => {
            unadmit();
            if svc.mode == ForwardMode::Fnat {
                st.laddrs.release(laddr.0, laddr.1, rs);
            }
            Err(Verdict::Drop(DropReason::SessionTableFull))
        }
    }
}
