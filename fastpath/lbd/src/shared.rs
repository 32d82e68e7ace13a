//! State shared between the control thread and the workers: published snapshots (services,
//! neighbours, the ports' owned addresses), the neighbour-learning queue, the redirect rings,
//! the per-worker control mailboxes and the stop flag.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;

use arc_swap::{ArcSwap, Cache};
use crossbeam_queue::ArrayQueue;
use dpdk::MbufRing;
use fastpath::owners::Owners;
use fastpath::neigh::NeighTable;
use fastpath::service::ServiceTable;
use fastpath::wire::EthernetAddress;
use fastpath::Interface;

use crate::control::mailbox::Mailbox;

/// Shared by every lcore. Workers only read snapshots (a pointer check per poll-loop pass),
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

/// The published snapshots as one worker reads them. Each pass compares the published
/// pointers with the ones it holds (plain loads, no write) and takes a new reference only after
/// the control side published a new snapshot. `ArcSwap::load` writes and fences a debt slot on
/// every call, three times per pass; on small bursts that was a few per cent of a worker.
pub struct WorkerView<'a> {
    neigh: Cache<&'a ArcSwap<NeighTable>, std::sync::Arc<NeighTable>>,
    ifaces: Cache<&'a ArcSwap<Vec<Interface>>, std::sync::Arc<Vec<Interface>>>,
    services: Cache<&'a ArcSwap<ServiceTable>, std::sync::Arc<ServiceTable>>,
}

impl<'a> WorkerView<'a> {
    pub fn new(shared: &'a Shared) -> Self {
        WorkerView { neigh: Cache::new(&shared.neigh), ifaces: Cache::new(&shared.ifaces), services: Cache::new(&shared.services) }
    }

    /// The current snapshots, read in the order the control side relies on: the neighbours
    /// first (their generation validates the routes sessions cached), then the ports' addresses
    /// before the service table, which the control side stores first (a VIP seen on a port is
    /// in the table too, with its ownership). A changed pointer is reloaded with acquire
    /// ordering, so a newer port list is never paired with an older table.
    pub fn load(&mut self) -> (&NeighTable, &[Interface], &ServiceTable) {
        let neigh = self.neigh.load();
        let ifaces = self.ifaces.load();
        let services = self.services.load();
        (neigh, ifaces, services)
    }
}

/// The next entry of a queue that is usually empty. `ArrayQueue::pop` on an empty queue runs a
/// full fence before it reads the tail; `is_empty` is two plain loads on x86.
#[inline]
pub fn pop_if_any<T>(q: &ArrayQueue<T>) -> Option<T> {
    if q.is_empty() {
        None
    } else {
        q.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn shared() -> Shared {
        Shared {
            services: ArcSwap::from_pointee(ServiceTable::new(Vec::new(), 1).unwrap()),
            neigh: ArcSwap::from_pointee(NeighTable::default()),
            ifaces: ArcSwap::from_pointee(Vec::new()),
            learned: ArrayQueue::new(4),
            rings: Vec::new(),
            owners: Owners::default(),
            sync: crate::sync::SyncShared::new(1, Default::default()),
            stop: AtomicBool::new(false),
            mailboxes: Vec::new(),
        }
    }

    #[test]
    fn a_worker_view_takes_a_reference_only_when_a_snapshot_is_published() {
        let shared = shared();
        let mut view = WorkerView::new(&shared);
        assert_eq!(view.load().2.generation(), 1);
        let first = shared.services.load_full();
        let held = Arc::strong_count(&first);
        for _ in 0..1000 {
            assert_eq!(view.load().2.generation(), 1);
        }
        assert_eq!(Arc::strong_count(&first), held, "loads took references");
        let old = Arc::downgrade(&first);
        drop(first);
        shared.services.store(Arc::new(ServiceTable::new(Vec::new(), 2).unwrap()));
        assert_eq!(view.load().2.generation(), 2, "the view missed a published table");
        assert!(old.upgrade().is_none(), "the view still holds the replaced table");
    }

    #[test]
    fn pop_if_any_takes_what_was_pushed_in_order_then_nothing() {
        let q = ArrayQueue::new(4);
        assert_eq!(pop_if_any(&q), None::<u8>);
        q.push(1).unwrap();
        q.push(2).unwrap();
        assert_eq!((pop_if_any(&q), pop_if_any(&q), pop_if_any(&q)), (Some(1), Some(2), None));
    }
}
