//! Counters shared between workers and the control thread, and the JSON stats file.
//!
//! Each worker owns plain counters and publishes a copy into its `WorkerShared` slots now and
//! then (relaxed stores, never per packet); the control thread reads the slots.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use fastpath::{Counters, DropReason, COUNTER_SLOTS};
use serde_json::{json, Map, Value};

/// One worker's published counters.
#[derive(Debug)]
pub struct WorkerShared {
    pub worker: usize,
    pub lcore: u32,
    slots: [AtomicU64; COUNTER_SLOTS],
    /// Poll-loop iterations, and those that found packets.
    pub loops: AtomicU64,
    pub busy_loops: AtomicU64,
    /// Live sessions in the worker's table.
    pub sessions: AtomicU64,
}

impl WorkerShared {
    pub fn new(worker: usize, lcore: u32) -> WorkerShared {
        WorkerShared {
            worker,
            lcore,
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            loops: AtomicU64::new(0),
            busy_loops: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
        }
    }

    /// Called by the owning worker only.
    pub fn publish(&self, c: &Counters, loops: u64, busy: u64, sessions: u64) {
        self.sessions.store(sessions, Ordering::Relaxed);
        for (slot, v) in self.slots.iter().zip(c.to_array()) {
            slot.store(v, Ordering::Relaxed);
        }
        self.loops.store(loops, Ordering::Relaxed);
        self.busy_loops.store(busy, Ordering::Relaxed);
    }

    /// A snapshot of the last published counters.
    pub fn read(&self) -> Counters {
        let a: [u64; COUNTER_SLOTS] = std::array::from_fn(|i| self.slots[i].load(Ordering::Relaxed));
        Counters::from_array(&a)
    }
}

/// Counters as a JSON object: scalars plus a `drops` map of every named reason.
pub fn counters_json(c: &Counters) -> Value {
    let mut m = Map::new();
    for (k, v) in c.scalars() {
        m.insert(k.into(), json!(v));
    }
    let drops: Map<String, Value> = DropReason::ALL.iter().map(|r| (r.name().to_owned(), json!(c.drops_for(*r)))).collect();
    m.insert("drops_total".into(), json!(c.total_drops()));
    m.insert("drops".into(), Value::Object(drops));
    Value::Object(m)
}

/// Writes `value` to `path` atomically (temporary file, then rename).
pub fn write_atomic(path: &Path, value: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}
