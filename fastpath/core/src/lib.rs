//! The director's packet pipeline, in plain Rust and testable without DPDK.
#![forbid(unsafe_code)]

pub mod wire;
