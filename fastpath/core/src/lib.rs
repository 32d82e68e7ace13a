//! The director's packet pipeline, in plain Rust and testable without DPDK.
//!
//! `wire` holds zero-copy views of each protocol; `pipeline::process` turns one received frame
//! into a [`Verdict`]; [`Counters`] record every outcome, drops by named reason. Services,
//! schedulers, sessions and local-address pools are per-worker state driven by the pipeline.
#![forbid(unsafe_code)]

pub mod acl;
pub mod buf;
pub mod conncount;
pub mod flow;
pub mod flowctl;
pub mod hashsched;
mod forward;
mod icmp;
pub mod iface;
pub mod laddr;
pub mod nat;
pub mod owners;
pub mod neigh;
pub mod persist;
pub mod pipeline;
pub mod sched;
pub mod service;
pub mod session;
pub mod sync;
pub mod synproxy;
pub mod verdict;
pub mod worker;
pub mod wire;

pub use buf::{PacketBuf, TestBuf};
pub use flow::{FlowKey, L4Proto};
pub use iface::{route, Interface};
pub use worker::{Ctx, WorkerState};
pub use verdict::{Counters, DropReason, Verdict, COUNTER_SLOTS};

/// The low 32 bits: counters, clocks and generations a session keeps in 32 bits (compared by
/// equality or wrapping difference), TSC values in TCP sequence numbers.
#[inline]
pub fn low32(x: u64) -> u32 {
    let b = x.to_le_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
