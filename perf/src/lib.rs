//! Perf lab for the director: a DPDK traffic generator (`lb-pktgen`) that plays clients and
//! real servers over memif, and a harness (`lb-bench`) that runs testpmd, lbd and wrk and
//! writes dated result tables.
#![forbid(unsafe_code)]

pub mod bench;
pub mod flows;
pub mod gen;
pub mod hist;
pub mod packet;

pub use fastpath::low32;

/// The first value `list` holds twice (CPU lists: one CPU per lcore).
pub fn repeated<T: PartialEq>(list: &[T]) -> Option<&T> {
    list.iter().enumerate().find_map(|(i, v)| list[..i].contains(v).then_some(v))
}

/// A non-negative float rounded toward zero, saturating (NaN and negatives give 0).
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn f64_to_u64(x: f64) -> u64 {
    // `as` saturates for floats: exactly the wanted behaviour.
    x as u64
}
