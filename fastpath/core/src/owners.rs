//! Which worker owns a NAT-mode session, found from the real server's reply tuple. NAT keeps
//! the client's address, so replies cannot be steered by a partitioned local port as FNAT's
//! are; a worker that receives a reply for a session it does not hold looks the owner up here.
//! Only NAT services use it: written once per connection, read only on a local miss.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::flow::FlowKey;

const SHARDS: usize = 64;

/// Reply tuple -> owning worker, sharded to keep writers apart.
#[derive(Debug)]
pub struct NatOwners {
    hasher: ahash::RandomState,
    shards: Vec<RwLock<HashMap<FlowKey, u16, ahash::RandomState>>>,
}

impl Default for NatOwners {
    fn default() -> Self {
        NatOwners { hasher: ahash::RandomState::new(), shards: (0..SHARDS).map(|_| RwLock::new(HashMap::with_hasher(ahash::RandomState::new()))).collect() }
    }
}

impl NatOwners {
    fn shard(&self, key: &FlowKey) -> &RwLock<HashMap<FlowKey, u16, ahash::RandomState>> {
        &self.shards[usize::try_from(self.hasher.hash_one(key) % 64).unwrap_or(0) % SHARDS]
    }

    /// Records that `worker` owns the session whose replies carry `key`.
    pub fn insert(&self, key: FlowKey, worker: u16) {
        self.shard(&key).write().insert(key, worker);
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &FlowKey) {
        self.shard(key).write().remove(key);
    }

    /// The owner of `key`.
    pub fn get(&self, key: &FlowKey) -> Option<u16> {
        self.shard(key).read().get(key).copied()
    }
}
