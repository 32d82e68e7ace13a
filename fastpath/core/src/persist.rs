//! Persistence templates (as LVS's): a client, masked by the service's persistence netmask,
//! keeps its real server for `persistence_timeout` seconds after its last new connection.
//! Templates are per worker; the first choice for a client comes from a consistent hash of
//! its masked address, so every worker (and every director) starts from the same server.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

use crate::conncount::CountKey;
use crate::flow::L4Proto;

/// What a template is found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    pub client_net: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub proto: L4Proto,
}

/// One template: the chosen real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    pub rs: (Ipv4Addr, u16),
    pub expires_ms: u64,
}

/// A worker's templates, aged lazily: an expiry queue is swept a few entries per call. Each
/// template has exactly one queue entry (a refresh moves its expiry, not the queue), so the
/// queue is as long as the table at most, whatever the connection rate. Templates are also
/// counted per (service, real server), kept up to date as they come, move and go: LVS's
/// `persistconns`, which `ipvsadm -L --persistent-conn` shows, without walking the table.
#[derive(Debug)]
pub struct PersistTable {
    map: HashMap<TemplateKey, Template, ahash::RandomState>,
    queue: VecDeque<(TemplateKey, u64)>,
    max: usize,
    per_server: HashMap<CountKey, u64, ahash::RandomState>,
}

/// Entries examined per `sweep` call.
const SWEEP_BATCH: usize = 64;

impl PersistTable {
    /// A table for at most `max` templates.
    pub fn new(max: usize) -> PersistTable {
        PersistTable { map: HashMap::with_hasher(ahash::RandomState::new()), queue: VecDeque::new(), max, per_server: HashMap::with_hasher(ahash::RandomState::new()) }
    }

    /// Masks `client` with `netmask`.
    pub fn client_net(client: Ipv4Addr, netmask: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(client) & u32::from(netmask))
    }

    /// The live template for `key` at `now_ms`.
    pub fn get(&self, key: &TemplateKey, now_ms: u64) -> Option<Template> {
        self.map.get(key).copied().filter(|t| t.expires_ms > now_ms)
    }

    /// Creates or refreshes the template; false if the table is full.
    pub fn put(&mut self, key: TemplateKey, rs: (Ipv4Addr, u16), now_ms: u64, timeout_s: u32) -> bool {
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            return false;
        }
        let expires_ms = now_ms + u64::from(timeout_s) * 1000;
        match self.map.insert(key, Template { rs, expires_ms }) {
            None => {
                self.queue.push_back((key, expires_ms));
                self.count(&key, rs, true);
            }
            Some(old) if old.rs != rs => {
                self.count(&key, old.rs, false);
                self.count(&key, rs, true);
            }
            Some(_) => {}
        }
        true
    }

    fn count(&mut self, key: &TemplateKey, rs: (Ipv4Addr, u16), up: bool) {
        let k = (key.proto, (key.vip, key.vport), rs);
        if up {
            *self.per_server.entry(k).or_insert(0) += 1;
        } else if let Some(n) = self.per_server.get_mut(&k) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_server.remove(&k);
            }
        }
    }

    /// Templates per (service, real server): entries exist only while a template does, so
    /// there are no more of them than templates.
    pub fn per_server(&self) -> impl Iterator<Item = (&CountKey, u64)> {
        self.per_server.iter().map(|(k, n)| (k, *n))
    }

    /// Removes a few expired templates.
    pub fn sweep(&mut self, now_ms: u64) {
        for _ in 0..SWEEP_BATCH {
            match self.queue.front() {
                Some((_, e)) if *e <= now_ms => {}
                _ => return,
            }
            let Some((key, _)) = self.queue.pop_front() else { return };
            match self.map.get(&key) {
                Some(t) if t.expires_ms <= now_ms => {
                    let rs = t.rs;
                    self.map.remove(&key);
                    self.count(&key, rs, false);
                }
                // Refreshed since it was queued: back in the queue with its new expiry.
                Some(t) => self.queue.push_back((key, t.expires_ms)),
                None => {}
            }
        }
    }

    /// Live templates.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: [u8; 4]) -> TemplateKey {
        TemplateKey { client_net: PersistTable::client_net(Ipv4Addr::from(c), Ipv4Addr::new(255, 255, 255, 0)), vip: Ipv4Addr::new(1, 1, 1, 1), vport: 80, proto: L4Proto::Tcp }
    }

    #[test]
    fn templates_persist_refresh_and_expire_with_a_fake_clock() {
        let mut t = PersistTable::new(10);
        let rs = (Ipv4Addr::new(10, 0, 0, 1), 80);
        assert!(t.put(key([9, 9, 9, 1]), rs, 1_000, 60));
        assert_eq!(t.get(&key([9, 9, 9, 200]), 30_000).map(|t| t.rs), Some(rs), "same /24 shares the template");
        assert_eq!(t.get(&key([9, 9, 8, 1]), 30_000), None);
        t.put(key([9, 9, 9, 1]), rs, 50_000, 60);
        t.sweep(70_000);
        assert!(t.get(&key([9, 9, 9, 1]), 70_000).is_some(), "refreshed at 50 s: lives until 110 s");
        t.sweep(111_000);
        assert_eq!(t.get(&key([9, 9, 9, 1]), 111_000), None);
        assert!(t.is_empty());
    }

    #[test]
    fn refreshing_one_template_does_not_grow_the_queue() {
        let mut t = PersistTable::new(10);
        let rs = (Ipv4Addr::new(10, 0, 0, 1), 80);
        for i in 0..100_000u64 {
            t.put(key([9, 9, 9, (i % 200) as u8]), rs, i, 60);
            t.sweep(i);
        }
        assert_eq!(t.len(), 1, "one /24");
        assert_eq!(t.queue.len(), 1, "one queue entry per template, not per connection");
        t.sweep(100_000 + 59_000);
        assert_eq!(t.len(), 1, "refreshed at 99.999 s: alive until 159.999 s");
        t.sweep(100_000 + 61_000);
        assert!(t.is_empty() && t.queue.is_empty());
    }

    #[test]
    fn templates_are_counted_per_real_server_as_they_come_move_and_go() {
        let mut t = PersistTable::new(10);
        let (a, b) = ((Ipv4Addr::new(10, 0, 0, 1), 80), (Ipv4Addr::new(10, 0, 0, 2), 80));
        let count = |t: &PersistTable, rs| t.per_server().find(|(k, _)| k.2 == rs).map_or(0, |(_, n)| n);
        t.put(key([1, 0, 0, 1]), a, 0, 10);
        t.put(key([2, 0, 0, 1]), a, 0, 10);
        t.put(key([3, 0, 0, 1]), b, 0, 10);
        t.put(key([1, 0, 0, 9]), a, 1_000, 10);
        assert_eq!((count(&t, a), count(&t, b)), (2, 1), "a refresh is not a new template");
        t.put(key([2, 0, 0, 1]), b, 2_000, 10);
        assert_eq!((count(&t, a), count(&t, b)), (1, 2), "a template that moves is counted where it went");
        t.sweep(10_500);
        assert_eq!((count(&t, a), count(&t, b)), (1, 1), "key 3 (b, until 10 s) is gone; key 1 (a, refreshed at 1 s) and key 2 (b, moved at 2 s) remain");
        t.sweep(13_000);
        assert_eq!(t.per_server().count(), 0, "no entry outlives its templates");
    }

    #[test]
    fn full_table_refuses_new_templates() {
        let mut t = PersistTable::new(1);
        let rs = (Ipv4Addr::new(10, 0, 0, 1), 80);
        assert!(t.put(key([1, 0, 0, 1]), rs, 0, 10));
        assert!(!t.put(key([2, 0, 0, 1]), rs, 0, 10));
        assert!(t.put(key([1, 0, 0, 1]), rs, 5, 10), "refreshing an existing one still works");
    }
}
