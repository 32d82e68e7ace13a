//! State shared between the control thread and the workers: published snapshots (services,
//! neighbours, the ports' owned addresses), the neighbour-learning queue, the redirect rings,
//! the per-worker control mailboxes and the stop flag.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use dpdk::MbufRing;
use fastpath::owners::Owners;
use fastpath::neigh::NeighTable;
use fastpath::service::ServiceTable;
use fastpath::wire::EthernetAddress;
use fastpath::Interface;

use crate::control::mailbox::Mailbox;

/// Shared by every lcore. Workers only read snapshots (one atomic load per poll-loop pass),
/// push learned neighbours, and enqueue to other workers' rings.
#[derive(Debug)]
pub struct Shared {
    pub services: ArcSwap<ServiceTable>,
    pub neigh: ArcSwap<NeighTable>,
    /// The ports as the pipeline sees them; republished when VIPs or local addresses change.
    pub ifaces: ArcSwap<Vec<Interface>>,
    pub learned: ArrayQueue<(Ipv4Addr, EthernetAddress)>,
    /// One multi-producer ring per worker, drained by that worker only.
    pub rings: Vec<MbufRing>,
    /// Owners of NAT-mode sessions and synced sessions, for packets that reach another worker.
    pub owners: Owners,
    /// Session sync: the workers' record queues and the daemons' state.
    pub sync: crate::sync::SyncShared,
    pub stop: AtomicBool,
    /// One control mailbox per worker, popped once per poll-loop pass.
    pub mailboxes: Vec<Mailbox>,
}

impl Shared {
    /// Merges what workers learned into a new neighbour snapshot; returns whether it changed.
    pub fn merge_learned(&self) -> bool {
        let mut updates = Vec::new();
        while let Some(u) = self.learned.pop() {
            updates.push(u);
        }
        if updates.is_empty() {
            return false;
        }
        // `rcu`: the control thread also republishes the table (after the ports' addresses
        // change); neither update may be lost.
        let mut changed = false;
        self.neigh.rcu(|t| match t.with_updates(&updates) {
            Some(n) => {
                changed = true;
                std::sync::Arc::new(n)
            }
            None => {
                changed = false;
                std::sync::Arc::clone(t)
            }
        });
        changed
    }
}
