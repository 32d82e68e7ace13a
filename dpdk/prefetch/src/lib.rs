//! A cache-prefetch hint for the pipeline, which links no DPDK (`rte_prefetch0` is the same
//! instruction). It lives under `dpdk/` because the intrinsic is `unsafe` to call.
//!
//! Prefetching is a hint: it never faults and changes no memory, whatever the address, so a
//! shared reference (always valid) is all it takes.

#![no_std]

/// Asks the CPU to bring the cache line holding `r` into all cache levels.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint that cannot fault or change memory; SSE is part of the
    // x86_64 baseline, so the instruction exists on every CPU this code runs on.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(core::ptr::from_ref(r).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Prefetches the `n`th cache line after the one holding `r` (for structs longer than one
/// line), computed without dereferencing.
#[inline(always)]
pub fn prefetch_line<T>(r: &T, n: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `prefetch`; the address is only computed (`wrapping_add`), never
    // dereferenced, and a prefetch of any address is harmless.
    unsafe {
        let p = core::ptr::from_ref(r).cast::<i8>().wrapping_add(64 * n);
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (r, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefetch_changes_nothing() {
        let v = [7u8; 256];
        prefetch(&v);
        prefetch_line(&v, 3);
        prefetch_line(&v, 1_000_000);
        assert!(v.iter().all(|b| *b == 7));
    }
}
