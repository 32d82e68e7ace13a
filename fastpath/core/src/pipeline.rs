//! The per-packet entry point: classify a frame received on a data port and decide its fate.
//!
//! Order: Ethernet checks, ARP (answer for our addresses, learn neighbours, drop requests for
//! addresses another director owns, rest to the kernel), then IPv4: drop what is addressed to
//! a VIP or local address we do not own (the lookup that classifies it says so), return traffic to a local address, client traffic to a virtual service,
//! ICMP errors quoting a session, ICMP echo to our addresses, and finally the kernel.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::fnat;
use crate::flow::L4Proto;
use crate::iface::Interface;
use crate::laddr::LaddrPool;
use crate::owners::Owners;
use crate::neigh::NeighTable;
use crate::persist::PersistTable;
use crate::sched::SchedState;
use crate::service::{AddrState, ForwardMode, ServiceKey, ServiceTable};
use crate::session::{Session, SessionTable, Timeouts};
use crate::verdict::{Counters, DropReason, Verdict};
use crate::wire::{self, ArpOperation, ArpPacket, EtherType, EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet};

/// TTL the director puts on packets it originates.
pub const DEFAULT_TTL: u8 = 64;

/// Most neighbour updates a worker collects between two hand-overs to the control thread.
pub const MAX_LEARNED: usize = 64;

/// What a worker reads, shared and immutable for the duration of a burst.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The worker's data ports, by index.
    pub ports: &'a [Interface],
    pub services: &'a ServiceTable,
    pub neigh: &'a NeighTable,
    /// This worker's index and the number of workers.
    pub worker: u16,
    pub workers: u16,
    /// Worker clock in milliseconds.
    pub now_ms: u64,
    /// Owners of NAT sessions and synced sessions (shared by all workers).
    pub owners: Option<&'a Owners>,
    /// Session sync as a master: when set, sessions are queued for the sync thread as LVS's
    /// thresholds say (`sync::needs_sync`).
    pub sync: Option<crate::sync::SyncParams>,
}

/// What a worker owns and the pipeline changes.
#[derive(Debug)]
pub struct WorkerState {
    pub sessions: SessionTable,
    pub laddrs: LaddrPool,
    /// Scheduler state per service index, for `sched_generation`'s service table.
    pub sched: Vec<SchedState>,
    pub sched_generation: u64,
    /// The service each `sched` entry belongs to, to carry state across table changes.
    sched_keys: Vec<ServiceKey>,
    pub counters: Counters,
    /// Neighbours seen in ARP since the last hand-over (bounded by `MAX_LEARNED`).
    pub learned: Vec<(Ipv4Addr, EthernetAddress)>,
    /// Persistence templates.
    pub persist: PersistTable,
    /// Totals of the sessions that ended, per (protocol, VIP, real server); live sessions
    /// carry their own counts until they end.
    pub totals: HashMap<TotalsKey, Totals, ahash::RandomState>,
    /// Session records for the sync thread (master), at most `sync::SYNC_OUT_MAX`.
    pub sync_out: Vec<crate::wire::lvsync::SyncConn>,
}

/// A service and real server, by value (indexes change with every snapshot).
pub type TotalsKey = (L4Proto, (Ipv4Addr, u16), (Ipv4Addr, u16));

/// Cumulative traffic of one (service, real server) pair on one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub conns: u64,
    pub pkts_in: u64,
    pub pkts_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Totals {
    /// Adds a session's counts (one connection).
    pub fn add_session(&mut self, s: &Session) {
        self.conns += 1;
        self.pkts_in += s.pkts_in;
        self.pkts_out += s.pkts_out;
        self.bytes_in += s.bytes_in;
        self.bytes_out += s.bytes_out;
    }

    /// Adds another total.
    pub fn add(&mut self, o: &Totals) {
        self.conns += o.conns;
        self.pkts_in += o.pkts_in;
        self.pkts_out += o.pkts_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}

/// Gives back what a session held: its local port, its scheduler count, its service-wide
/// connection count, its NAT and sync owner entries.
fn release(s: &Session, laddrs: &mut LaddrPool, sched: &mut [SchedState], sched_generation: u64, owners: Option<&Owners>, totals: &mut HashMap<TotalsKey, Totals, ahash::RandomState>) {
    totals.entry((s.proto, s.vip, s.rs)).or_default().add_session(s);
    if s.mode == ForwardMode::Fnat {
        laddrs.release(s.laddr.0, s.laddr.1);
    }
    if s.generation == sched_generation {
        if let Some(st) = sched.get_mut(s.svc as usize) {
            st.closed(s.rs_idx as usize);
        }
    }
    if let Some(shared) = &s.shared {
        shared.closed();
    }
    if let Some(o) = owners {
        if s.mode == ForwardMode::Nat {
            o.nat.remove(&s.rs_key());
        }
        if s.adopted {
            o.synced.remove(&s.client_key());
        }
    }
}

impl WorkerState {
    /// Fresh state for worker `worker` of `workers`.
    pub fn new(worker: u16, workers: u16, services: &ServiceTable, max_sessions: usize, timeouts: Timeouts) -> WorkerState {
        WorkerState {
            sessions: SessionTable::new(max_sessions, max_sessions.min(1 << 16), timeouts),
            laddrs: LaddrPool::new(worker, workers, services.laddrs()),
            sched: vec![SchedState::default(); services.services().len()],
            sched_generation: services.generation(),
            sched_keys: services.services().iter().map(|s| s.key).collect(),
            counters: Counters::default(),
            learned: Vec::with_capacity(MAX_LEARNED),
            persist: PersistTable::new(max_sessions),
            totals: HashMap::with_hasher(ahash::RandomState::new()),
            sync_out: Vec::new(),
        }
    }

    /// Expires sessions and templates due at `now_ms`, giving back what they held.
    pub fn expire(&mut self, now_ms: u64, owners: Option<&Owners>) {
        let WorkerState { sessions, laddrs, sched, sched_generation, counters, persist, totals, .. } = self;
        let n = sessions.expire(now_ms, |s| release(s, laddrs, sched, *sched_generation, owners, totals));
        counters.sessions_expired += n as u64;
        persist.sweep(now_ms);
    }


    /// Lines scheduler state up with `services` after a table change: each surviving service
    /// keeps its round-robin position, and its connection counts when its real-server list
    /// kept its length (counts are indexed by position).
    pub fn sync_sched(&mut self, services: &ServiceTable) {
        if self.sched_generation == services.generation() && self.sched.len() == services.services().len() {
            return;
        }
        let mut old: std::collections::HashMap<ServiceKey, SchedState> = self.sched_keys.drain(..).zip(self.sched.drain(..)).collect();
        self.sched = services
            .services()
            .iter()
            .map(|s| {
                let mut st = old.remove(&s.key).unwrap_or_default();
                if st.conns.len() != s.real_servers.len() {
                    st.conns = vec![0; s.real_servers.len()];
                }
                st
            })
            .collect();
        self.sched_keys = services.services().iter().map(|s| s.key).collect();
        self.sched_generation = services.generation();
    }

    /// Ends a session at once (draining deadline, refusal after creation).
    pub fn kill(&mut self, id: u32, owners: Option<&Owners>) {
        let s = self.sessions.get(id);
        release(s, &mut self.laddrs, &mut self.sched, self.sched_generation, owners, &mut self.totals);
        self.sessions.remove(id);
    }
}

/// Decides what to do with one frame received on port `in_port`, rewriting it in place when
/// the director answers or forwards it. Never panics, whatever the bytes.
pub fn process<B: PacketBuf>(buf: &mut B, in_port: u8, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let Some(iface) = ctx.ports.get(usize::from(in_port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let verdict = classify(buf, in_port, iface, ctx, st);
    if verdict == Verdict::ToKernel && !iface.has_kernel_path {
        return Verdict::Drop(DropReason::NoKernelPath);
    }
    verdict
}

fn classify<B: PacketBuf>(buf: &mut B, in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let (dst, ethertype) = match EthernetFrame::new_checked(buf.data()) {
        Ok(eth) => (eth.dst_addr(), eth.ethertype()),
        Err(_) => return Verdict::Drop(DropReason::EthTruncated),
    };
    if dst != iface.mac && dst.is_unicast() {
        return Verdict::Drop(DropReason::OtherHost);
    }
    match ethertype {
        EtherType::Arp => arp(buf.data_mut(), in_port, iface, ctx, st),
        EtherType::Ipv4 if dst == iface.mac => ipv4(buf, in_port, iface, ctx, st),
        _ => Verdict::ToKernel,
    }
}

/// Answers ARP requests for our addresses in place and learns neighbours from every ARP
/// packet; everything else ARP goes to the kernel (it keeps its own neighbour table).
fn arp(frame: &mut [u8], in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let mut eth = EthernetFrame::new_unchecked(frame);
    let mut pkt = match ArpPacket::new_checked(eth.payload_mut()) {
        Ok(p) => p,
        Err(wire::Error::Unsupported(_)) => return Verdict::Drop(DropReason::ArpUnsupported),
        Err(_) => return Verdict::Drop(DropReason::ArpMalformed),
    };
    let (sender_ip, sender_mac) = (pkt.source_protocol_addr(), pkt.source_hardware_addr());
    if iface.on_link(sender_ip) && sender_mac.is_unicast() && ctx.neigh.get(sender_ip) != Some(sender_mac) && st.learned.len() < MAX_LEARNED {
        st.learned.push((sender_ip, sender_mac));
    }
    let target = pkt.target_protocol_addr();
    if pkt.operation() != ArpOperation::Request {
        return Verdict::ToKernel;
    }
    // A VIP or local address held by the other director: neither we nor the kernel answer.
    if ctx.services.addr(target).is_some_and(|a| !a.owned) {
        return Verdict::Drop(DropReason::NotOwner);
    }
    if !iface.owns(target) {
        return Verdict::ToKernel;
    }
    pkt.set_operation(ArpOperation::Reply);
    pkt.set_target_hardware_addr(sender_mac);
    pkt.set_target_protocol_addr(sender_ip);
    pkt.set_source_hardware_addr(iface.mac);
    pkt.set_source_protocol_addr(target);
    eth.set_dst_addr(sender_mac);
    eth.set_src_addr(iface.mac);
    st.counters.arp_replies += 1;
    Verdict::Tx(in_port)
}

fn ipv4<B: PacketBuf>(buf: &mut B, in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    let l2 = wire::ethernet::HEADER_LEN;
    let (dst, proto, fragment) = {
        let ip = match Ipv4Packet::new_checked(&buf.data()[l2..]) {
            Ok(p) => p,
            Err(_) => return Verdict::Drop(DropReason::Ipv4Malformed),
        };
        if !ip.verify_checksum() {
            return Verdict::Drop(DropReason::Ipv4BadChecksum);
        }
        (ip.dst_addr(), ip.protocol(), ip.is_fragment())
    };
    // One lookup classifies the destination and says whether we own it now (VRRP).
    match (proto, ctx.services.addr(dst)) {
        (IpProtocol::Tcp | IpProtocol::Udp, Some(AddrState { kind, owned: true })) => {
            if fragment {
                return Verdict::Drop(DropReason::Fragment);
            }
            fnat::forward(buf, in_port, kind, ctx, st)
        }
        (_, Some(AddrState { owned: false, .. })) => Verdict::Drop(DropReason::NotOwner),
        // NAT replies: from a real server to a client, routed through us.
        (IpProtocol::Tcp | IpProtocol::Udp, None) if ctx.services.has_nat() && !fragment && !iface.owns(dst) => match fnat::nat_reply(buf.data_mut(), ctx, st) {
            Some(v) => v,
            None => Verdict::ToKernel,
        },
        (IpProtocol::Icmp, _) if !fragment => icmp(buf.data_mut(), in_port, iface, ctx, st),
        _ => Verdict::ToKernel,
    }
}

fn icmp(frame: &mut [u8], in_port: u8, iface: &Interface, ctx: &Ctx<'_>, st: &mut WorkerState) -> Verdict {
    if let Some(v) = fnat::relay_icmp_error(frame, ctx, st) {
        return v;
    }
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    let src_mac = eth.src_addr();
    let mut ip = Ipv4Packet::new_unchecked(&mut eth.payload_mut()[..]);
    let dst = ip.dst_addr();
    if !iface.owns(dst) && !ctx.services.is_vip(dst) {
        return Verdict::ToKernel;
    }
    match crate::icmp::echo_reply_in_place(&mut ip) {
        Ok(true) => {}
        Ok(false) => return Verdict::ToKernel,
        Err(reason) => return Verdict::Drop(reason),
    }
    let src = ip.src_addr();
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(DEFAULT_TTL);
    ip.fill_checksum();
    eth.set_dst_addr(src_mac);
    eth.set_src_addr(iface.mac);
    st.counters.icmp_echo_replies += 1;
    Verdict::Tx(in_port)
}
