//! The director's packet pipeline, in plain Rust and testable without DPDK.
//!
//! `wire` holds zero-copy views of each protocol; `pipeline::process` turns one received frame
//! into a [`Verdict`]; [`Counters`] record every outcome, drops by named reason.
#![forbid(unsafe_code)]

pub mod buf;
mod icmp;
pub mod iface;
pub mod pipeline;
pub mod verdict;
pub mod wire;

pub use buf::{PacketBuf, TestBuf};
pub use iface::Interface;
pub use verdict::{Counters, DropReason, Verdict, COUNTER_SLOTS};
