//! Perf lab for the director: a DPDK traffic generator (`lb-pktgen`) that plays clients and
//! real servers over memif, and a harness (`lb-bench`) that runs testpmd, lbd and wrk and
//! writes dated result tables.
#![forbid(unsafe_code)]

pub mod bench;
pub mod flows;
pub mod gen;
pub mod hist;
pub mod packet;
