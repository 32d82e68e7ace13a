//! What happens to each packet, and the per-lcore counters that record it.
//!
//! Every packet ends in a [`Verdict`]. Every drop has a named [`DropReason`] that indexes a
//! counter array, so nothing disappears without a count and a name.

/// The fate of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (possibly rewritten) frame out of the port it arrived on.
    TxSamePort,
    /// Hand the frame, unchanged, to the kernel through the port's exception TAP.
    ToKernel,
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
}

/// Per-lcore counters. Plain integers: only the owning lcore writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Frames received from data ports.
    pub rx: u64,
    /// Frames sent out of data ports (replies and frames from the kernel).
    pub tx: u64,
    /// Frames handed to the kernel.
    pub to_kernel: u64,
    /// Frames received from the kernel.
    pub from_kernel: u64,
    /// ARP replies the director sent for its own addresses.
    pub arp_replies: u64,
    /// ICMP echo replies the director sent.
    pub icmp_echo_replies: u64,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
}

impl Default for Counters {
    fn default() -> Self {
        Counters { rx: 0, tx: 0, to_kernel: 0, from_kernel: 0, arp_replies: 0, icmp_echo_replies: 0, drops: [0; DropReason::COUNT] }
    }
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

    /// The scalar counters as (name, value) pairs, for stats output.
    pub fn scalars(&self) -> [(&'static str, u64); 6] {
        [
            ("rx", self.rx),
            ("tx", self.tx),
            ("to_kernel", self.to_kernel),
            ("from_kernel", self.from_kernel),
            ("arp_replies", self.arp_replies),
            ("icmp_echo_replies", self.icmp_echo_replies),
        ]
    }

    /// Counter values in a fixed order (scalars, then drops), for publishing to shared memory.
    pub fn to_array(&self) -> [u64; COUNTER_SLOTS] {
        let mut out = [0u64; COUNTER_SLOTS];
        for (slot, (_, v)) in out.iter_mut().zip(self.scalars()) {
            *slot = v;
        }
        out[6..].copy_from_slice(&self.drops);
        out
    }

    /// Rebuilds counters from `to_array` output.
    pub fn from_array(a: &[u64; COUNTER_SLOTS]) -> Counters {
        let mut drops = [0u64; DropReason::COUNT];
        drops.copy_from_slice(&a[6..]);
        Counters { rx: a[0], tx: a[1], to_kernel: a[2], from_kernel: a[3], arp_replies: a[4], icmp_echo_replies: a[5], drops }
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
pub const COUNTER_SLOTS: usize = 6 + DropReason::COUNT;

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
        let mut c = Counters { rx: 7, tx: 3, from_kernel: 2, ..Counters::default() };
        c.drop(DropReason::OtherHost);
        c.add_drops(DropReason::TxFull, 4);
        assert_eq!(Counters::from_array(&c.to_array()), c);
        let mut m = c.clone();
        m.merge(&c);
        assert_eq!(m.rx, 14);
        assert_eq!(m.drops_for(DropReason::TxFull), 8);
        assert_eq!(m.total_drops(), 10);
    }
}
