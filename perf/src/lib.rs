//! Perf lab for the director: a DPDK traffic generator (`lb-pktgen`) that plays clients and
//! real servers over memif, and a harness (`lb-bench`) that runs testpmd, lbd and wrk and
//! writes dated result tables.
#![forbid(unsafe_code)]

pub mod bench;
pub mod flows;
pub mod gen;
pub mod hist;
pub mod packet;

/// The low 32 bits (TSC values in TCP sequence numbers wrap by design).
#[inline]
pub fn low32(x: u64) -> u32 {
    let b = x.to_le_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A non-negative float rounded toward zero, saturating (NaN and negatives give 0).
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn f64_to_u64(x: f64) -> u64 {
    // `as` saturates for floats: exactly the wanted behaviour.
    x as u64
}
