//! What happens to each packet, and the per-lcore counters that record it.
//!
//! Every packet ends in a [`Verdict`]. Every drop has a named [`DropReason`] that indexes a
//! counter array, so nothing disappears without a count and a name.

use std::net::Ipv4Addr;

/// The fate of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame out of this port (index into the worker's port list).
    Tx(u8),
    /// Hand the frame, unchanged, to the kernel through the receiving port's exception TAP.
    ToKernel,
    /// Hand the frame to the worker that owns its session (local-port partitioning).
    Redirect(u16),
    /// Translated, but the next hop's MAC is unknown: hold it while ARP resolves `next_hop`,
    /// then send it out of `port`.
    Hold { port: u8, next_hop: Ipv4Addr },
    /// Drop it, counting why.
    Drop(DropReason),
}

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// Why a packet was dropped. Each reason has its own counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons (length of the counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// The stable snake_case name used in stats and metrics.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$name => $text,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than an Ethernet header.
    EthTruncated => "eth_truncated",
    /// Unicast frame for a MAC address that is not this port's.
    OtherHost => "other_host",
    /// Frame in more than one segment (we only handle contiguous frames).
    MultiSegment => "multi_segment",
    /// ARP packet too short or with impossible lengths.
    ArpMalformed => "arp_malformed",
    /// ARP for something other than Ethernet/IPv4.
    ArpUnsupported => "arp_unsupported",
    /// IPv4 header truncated or inconsistent.
    Ipv4Malformed => "ipv4_malformed",
    /// IPv4 header checksum wrong.
    Ipv4BadChecksum => "ipv4_bad_checksum",
    /// ICMP message too short.
    IcmpMalformed => "icmp_malformed",
    /// ICMP checksum wrong.
    IcmpBadChecksum => "icmp_bad_checksum",
    /// Port transmit queue full.
    TxFull => "tx_full",
    /// Exception TAP transmit queue full (kernel not keeping up).
    KernelTxFull => "kernel_tx_full",
    /// Frame from the kernel could not be sent out of the data port.
    FromKernelTxFull => "from_kernel_tx_full",
    /// Frame for the kernel, but the port has no exception TAP.
    NoKernelPath => "no_kernel_path",
    /// TCP header truncated or inconsistent.
    TcpMalformed => "tcp_malformed",
    /// UDP header truncated or inconsistent.
    UdpMalformed => "udp_malformed",
    /// IPv4 fragment for a virtual service or local address (not reassembled).
    Fragment => "fragment",
    /// Non-SYN TCP segment (or reply) that matches no session.
    NoSession => "no_session",
    /// Session table full.
    SessionTableFull => "session_table_full",
    /// Virtual service with no real server of weight > 0.
    NoRealServer => "no_real_server",
    /// All local ports of the service's local addresses are in use on this worker.
    NoLocalPort => "no_local_port",
    /// An FNAT service has no local address (created before `--add-laddr`, or its last
    /// one was deleted).
    NoLocalAddress => "no_local_address",
    /// No port reaches the destination (not on a connected subnet, no gateway).
    NoRoute => "no_route",
    /// Too many packets already wait on ARP resolution.
    NeighHoldFull => "neigh_hold_full",
    /// ARP resolution did not answer in time.
    NeighTimeout => "neigh_timeout",
    /// The owning worker's redirect ring was full.
    RedirectFull => "redirect_full",
    /// No packet buffer available (pool exhausted).
    NoMbuf => "no_mbuf",
    /// Client on the service's deny list.
    ClientDenied => "client_denied",
    /// Service has an allow list and the client is not on it.
    ClientNotAllowed => "client_not_allowed",
    /// Service's new-connection rate (flow_control_cps) exceeded.
    CpsLimit => "cps_limit",
    /// Service's concurrent-connection cap (flow_control_pc) reached.
    ConnLimit => "conn_limit",
    /// Session to a removed or failed real server outlived the draining timeout.
    DrainTimeout => "drain_timeout",
    /// Addressed to a VIP or local address this director does not own now (VRRP backup), or a
    /// NAT reply for a session whose VIP it does not own; ARP requests for such an address too.
    NotOwner => "not_owner",
    /// A new connection from a source this director owns (a VIP, a local address, a port
    /// address): spoofed, it could capture replies meant for another session.
    SpoofedSource => "spoofed_source",
    /// An ACK to a SYN-proxied service matching no session and carrying no valid cookie.
    SynProxyBadCookie => "synproxy_bad_cookie",
    /// A packet of a SYN-proxied session still waiting for its real server's SYN-ACK.
    SynProxyWaiting => "synproxy_waiting",
    /// A pure ACK repeated beyond the SYN proxy's `ack_storm_thresh`.
    SynProxyAckStorm => "synproxy_ack_storm",
    /// A frame the worker originates (SYN proxy window update) found its queue full.
    EmitFull => "emit_full",
}

macro_rules! scalar_counters {
    ($($(#[doc = $doc:literal])* $name:ident: $unit:literal,)*) => {
        /// Per-lcore counters. Plain integers: only the owning lcore writes them.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// Drops, indexed by `DropReason as usize`.
            pub drops: [u64; DropReason::COUNT],
        }

        impl Default for Counters {
            fn default() -> Self {
                Counters { $($name: 0,)* drops: [0; DropReason::COUNT] }
            }
        }

        /// Number of scalar counters.
        const SCALARS: usize = [$(stringify!($name),)*].len();

        /// Each scalar counter's name, the unit it counts (plural, as metric names end) and its
        /// doc comment, in `scalars()` order: what the metrics say of it.
        pub const SCALAR_INFO: [(&str, &str, &str); SCALARS] = [$((stringify!($name), $unit, concat!($($doc,)*)),)*];

        impl Counters {
            /// The scalar counters as (name, value) pairs, for stats output.
            pub fn scalars(&self) -> [(&'static str, u64); SCALARS] {
                [$((stringify!($name), self.$name),)*]
            }

            fn set_scalars(&mut self, v: &[u64]) {
                let mut it = v.iter().copied();
                $(self.$name = it.next().unwrap_or(0);)*
            }
        }
    };
}

scalar_counters! {
    /// Frames received from data ports.
    rx: "frames",
    /// Frames sent out of data ports.
    tx: "frames",
    /// Frames handed to the kernel.
    to_kernel: "frames",
    /// Frames received from the kernel.
    from_kernel: "frames",
    /// ARP replies the director sent for its own addresses.
    arp_replies: "replies",
    /// ARP requests the director sent to resolve next hops.
    arp_requests: "requests",
    /// ICMP echo replies the director sent.
    icmp_echo_replies: "replies",
    /// Sessions created.
    sessions_created: "sessions",
    /// Sessions expired.
    sessions_expired: "sessions",
    /// Packets client -> real server forwarded.
    fnat_in: "packets",
    /// Packets real server -> client forwarded.
    fnat_out: "packets",
    /// ICMP errors translated and relayed for a session.
    icmp_errors_relayed: "errors",
    /// Frames handed to another worker (return traffic for a session it owns).
    redirected_out: "frames",
    /// Frames received from another worker.
    redirected_in: "frames",
    /// TSC cycles spent on received frames from the lookups to the transmit queue: the
    /// pipeline, not the driver's receive and transmit. Divided by `rx + redirected_in`: the
    /// worker's own cycles per frame (as VPP's clocks per packet).
    pipeline_cycles: "cycles",
    /// Writes to cache lines other workers write too: owner-map inserts, removals and
    /// lookups (NAT replies, synced sessions), flow-control and client-list atomics. None in
    /// steady-state FNAT without limits (docs/ARCHITECTURE.md, the rule for scaling with cores).
    shared_writes: "writes",
    /// TOA options inserted.
    toa_inserted: "packets",
    /// TOA not inserted: the TCP option space (40 bytes) was full.
    toa_skipped_option_space: "packets",
    /// TOA not inserted: the packet would exceed the MTU.
    toa_skipped_mtu: "packets",
    /// TOA not inserted: no headroom in the buffer.
    toa_skipped_headroom: "packets",
    /// Packets that waited for ARP and were then sent.
    neigh_released: "packets",
    /// TCP resets sent to refuse new connections (lists, flow control).
    rst_sent: "packets",
    /// Session states handed to the sync thread (master).
    sync_queued: "records",
    /// Session states not synced: the worker's sync buffer was full.
    sync_queue_full: "records",
    /// Sessions created from sync records (backup).
    sync_adopted: "sessions",
    /// Sessions updated from sync records.
    sync_updated: "sessions",
    /// Sync records dropped: no such virtual service here, or its mode differs.
    sync_no_service: "records",
    /// Sync records dropped: the local address is not one of this director's.
    sync_no_laddr: "records",
    /// Sync records dropped: the real server is not one of the service's here.
    sync_unknown_rs: "records",
    /// Sync records dropped: the local port is held by another session here.
    sync_port_busy: "records",
    /// Sync records dropped: the session table is full.
    sync_table_full: "records",
    /// Sync records dropped: protocol or state this director does not handle.
    sync_bad_record: "records",
    /// Connections sent to the sorry server.
    sorry_served: "connections",
    /// Sessions found draining after a configuration change.
    sessions_draining: "sessions",
    /// SYN-ACKs answered with a SYN cookie.
    synproxy_syn_cookies: "cookies",
    /// Client ACKs whose cookie was valid: connections opened toward a real server.
    synproxy_accepted: "connections",
    /// Real-server SYN-ACKs turned into the handshake's ACK plus a window update to the client.
    synproxy_window_updates: "updates",
    /// SYNs re-sent to a real server that had not answered yet.
    synproxy_rs_syn_retries: "retries",
    /// Client handshake ACKs that carried data into the closed window (the data is cut).
    synproxy_ack_data_cut: "packets",
}

impl Counters {
    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.add_drops(reason, 1);
    }

    /// Counts `n` drops for one reason.
    #[inline]
    pub fn add_drops(&mut self, reason: DropReason, n: u64) {
        self.drops[reason as usize] += n;
    }

    /// Drops for one reason.
    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Counter values in a fixed order (scalars, then drops), for publishing to shared memory.
    pub fn to_array(&self) -> [u64; COUNTER_SLOTS] {
        let mut out = [0u64; COUNTER_SLOTS];
        for (slot, (_, v)) in out.iter_mut().zip(self.scalars()) {
            *slot = v;
        }
        out[SCALARS..].copy_from_slice(&self.drops);
        out
    }

    /// Rebuilds counters from `to_array` output.
    pub fn from_array(a: &[u64; COUNTER_SLOTS]) -> Counters {
        let mut c = Counters::default();
        c.set_scalars(&a[..SCALARS]);
        c.drops.copy_from_slice(&a[SCALARS..]);
        c
    }

    /// Adds another lcore's counters into these.
    pub fn merge(&mut self, other: &Counters) {
        let mut a = self.to_array();
        for (x, y) in a.iter_mut().zip(other.to_array()) {
            *x += y;
        }
        *self = Counters::from_array(&a);
    }
}

/// Number of u64 slots in `Counters::to_array`.
pub const COUNTER_SLOTS: usize = SCALARS + DropReason::COUNT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_array_round_trips() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut c = Counters { rx: 7, tx: 3, from_kernel: 2, neigh_released: 9, ..Counters::default() };
        c.drop(DropReason::OtherHost);
        c.add_drops(DropReason::TxFull, 4);
        assert_eq!(Counters::from_array(&c.to_array()), c);
        let mut m = c.clone();
        m.merge(&c);
        assert_eq!(m.rx, 14);
        assert_eq!(m.neigh_released, 18);
        assert_eq!(m.drops_for(DropReason::TxFull), 8);
        assert_eq!(m.total_drops(), 10);
    }
}
