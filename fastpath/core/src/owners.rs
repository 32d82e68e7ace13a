//! Which worker owns a session, for packets that cannot be steered by a partitioned local port:
//! - NAT replies: NAT keeps the client's address, so a real server's reply carries no local
//!   port; a worker that receives a reply for a session it does not hold looks the owner up by
//!   the reply tuple. Written once per NAT connection, read only on a local miss.
//! - Synced sessions: a session installed from a master's sync record lives on the worker that
//!   owns its local port here (FNAT) or on a worker chosen by its client tuple; the client's
//!   packets arrive on whatever worker the NIC picks, which looks the owner up by the client
//!   tuple. Written once per synced session, read only on a local miss.
//!
//! Readers first check `is_empty` (a plain load of a counter that stays unchanged while no
//! such session exists), so a director without NAT services or synced sessions touches no
//! lock on a miss.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::flow::FlowKey;

const SHARDS: usize = 64;

/// Flow tuple -> owning worker, sharded to keep writers apart.
#[derive(Debug)]
pub struct OwnerMap {
    hasher: ahash::RandomState,
    shards: Vec<RwLock<HashMap<FlowKey, u16, ahash::RandomState>>>,
    len: AtomicUsize,
}

impl Default for OwnerMap {
    fn default() -> Self {
        OwnerMap {
            hasher: ahash::RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::with_hasher(ahash::RandomState::new()))).collect(),
            len: AtomicUsize::new(0),
        }
    }
}

impl OwnerMap {
    fn shard(&self, key: &FlowKey) -> &RwLock<HashMap<FlowKey, u16, ahash::RandomState>> {
        &self.shards[usize::try_from(self.hasher.hash_one(key) % 64).unwrap_or(0) % SHARDS]
    }

    /// Records that `worker` owns the session whose packets carry `key`.
    pub fn insert(&self, key: FlowKey, worker: u16) {
        if self.shard(&key).write().insert(key, worker).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &FlowKey) {
        if self.shard(key).write().remove(key).is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The owner of `key`.
    pub fn get(&self, key: &FlowKey) -> Option<u16> {
        if self.is_empty() {
            return None;
        }
        self.shard(key).read().get(key).copied()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether it holds nothing (a plain load).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The owner maps all workers share.
#[derive(Debug, Default)]
pub struct Owners {
    /// NAT sessions, by the real server's reply tuple.
    pub nat: OwnerMap,
    /// Sessions installed from sync records, by the client's tuple.
    pub synced: OwnerMap,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::L4Proto;
    use std::net::Ipv4Addr;

    #[test]
    fn counts_follow_inserts_and_removes() {
        let m = OwnerMap::default();
        let k = FlowKey { src: Ipv4Addr::new(1, 1, 1, 1), dst: Ipv4Addr::new(2, 2, 2, 2), sport: 1, dport: 2, proto: L4Proto::Tcp };
        assert!(m.is_empty());
        assert_eq!(m.get(&k), None);
        m.insert(k, 3);
        m.insert(k, 4);
        assert_eq!(m.len(), 1, "a second insert of the same key replaces");
        assert_eq!(m.get(&k), Some(4));
        m.remove(&k);
        m.remove(&k);
        assert!(m.is_empty(), "a second remove changes nothing");
    }
}
