//! Logical cores: identity, launching work on them, the time-stamp counter.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::eal::Eal;
use crate::error::{strerror, Error, Result};

/// An EAL logical core number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreId(pub u32);

impl fmt::Display for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The lcore the calling thread runs as, if it is an EAL thread.
pub fn current_lcore() -> Option<LcoreId> {
    // SAFETY: reads a per-thread variable; no preconditions.
    let id = unsafe { dpdk_sys::shim_lcore_id() };
    (id < dpdk_sys::RTE_MAX_LCORE).then_some(LcoreId(id))
}

/// The main lcore (the thread that called `init`).
pub fn main_lcore(_eal: &Eal) -> LcoreId {
    // SAFETY: the EAL is initialised (we were given a reference to it).
    LcoreId(unsafe { dpdk_sys::rte_get_main_lcore() })
}

/// The enabled lcores other than the main one, in order.
pub fn worker_lcores(_eal: &Eal) -> Vec<LcoreId> {
    let mut out = Vec::new();
    // SAFETY: iterating the lcore table of an initialised EAL; u32::MAX (-1) starts the walk.
    let mut i = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
    while i < dpdk_sys::RTE_MAX_LCORE {
        out.push(LcoreId(i));
        // SAFETY: as above.
        i = unsafe { dpdk_sys::rte_get_next_lcore(i, 1, 0) };
    }
    out
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut std::ffi::c_void) -> std::ffi::c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `launch`, handed to exactly one lcore once.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    match catch_unwind(AssertUnwindSafe(job)) {
        Ok(rc) => rc,
        Err(_) => {
            eprintln!("lcore job panicked");
            -1
        }
    }
}

/// A job running on a worker lcore. Waiting (explicitly or on drop) joins it; the borrow of
/// the `Eal` keeps DPDK alive while it runs.
#[derive(Debug)]
pub struct LaunchHandle<'eal> {
    lcore: LcoreId,
    waited: bool,
    _eal: &'eal Eal,
}

impl LaunchHandle<'_> {
    /// Starts `f` on worker lcore `lcore`. Per-lcore state that must not leave that thread is
    /// built inside `f`, so it never needs to be `Send`.
    pub fn launch<F>(eal: &Eal, lcore: LcoreId, f: F) -> Result<LaunchHandle<'_>>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        let job: Box<Job> = Box::new(Box::new(f));
        let arg = Box::into_raw(job).cast::<std::ffi::c_void>();
        // SAFETY: `trampoline` matches lcore_function_t; `arg` is a leaked Box<Job> that the
        // trampoline reclaims exactly once. On failure the job never runs and we reclaim it.
        let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore.0) };
        if rc < 0 {
            // SAFETY: the launch failed, so the lcore never took `arg`; reclaim it here.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
            return Err(Error::Launch { lcore: lcore.0, msg: strerror(rc) });
        }
        Ok(LaunchHandle { lcore, waited: false, _eal: eal })
    }

    /// The lcore the job runs on.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Waits for the job to finish and returns its exit value.
    pub fn wait(mut self) -> i32 {
        self.waited = true;
        // SAFETY: waiting on a lcore we launched on; blocks until it is idle again.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore.0) }
    }
}

impl Drop for LaunchHandle<'_> {
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: as in `wait`.
            unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore.0) };
        }
    }
}

/// Reads the time-stamp counter (inline on x86_64, as DPDK's `rte_rdtsc`; through the C shim
/// elsewhere).
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` reads the CPU cycle counter; it has no preconditions and touches no
    // memory (every x86_64 CPU has it).
    let t = unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the CPU cycle counter; no preconditions.
    let t = unsafe { dpdk_sys::shim_get_tsc_cycles() };
    t
}

/// TSC ticks per second.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL measured at start-up.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}

/// A CPU pause hint for spin loops.
#[inline]
pub fn pause() {
    // SAFETY: a pause instruction; no preconditions.
    unsafe { dpdk_sys::shim_pause() }
}
