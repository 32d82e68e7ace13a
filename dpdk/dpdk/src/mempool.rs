//! Packet-buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{last_error, Error, Result};
use crate::mbuf::{fill_back, Burst, Mbuf};

/// A pktmbuf pool. Pools live until the process exits (DPDK ports keep pointers into them),
/// so a `Mempool` is a cheap copyable handle.
#[derive(Debug, Clone, Copy)]
pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
}

// SAFETY: rte_mempool is designed for concurrent use from many lcores (lock-free ring plus
// per-lcore caches); the handle is only a pointer to it.
unsafe impl Send for Mempool {}
// SAFETY: as above; all operations exposed here are thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `size` mbufs with `data_room` bytes each (headroom included; 2176 is
    /// DPDK's default) and a per-lcore cache of `cache` mbufs, on any NUMA socket.
    pub fn new(name: &str, size: u32, cache: u32, data_room: u16) -> Result<Mempool> {
        let c = CString::new(name).map_err(|_| Error::Nul { what: "mempool name", value: name.into() })?;
        // SAFETY: `c` is NUL-terminated and lives across the call; the EAL must be initialised,
        // which rte_pktmbuf_pool_create checks itself (it fails with an rte_errno otherwise).
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(c.as_ptr(), size, cache, 0, data_room, dpdk_sys::SOCKET_ID_ANY)
        };
        NonNull::new(ptr)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| Error::Create { kind: "mempool", name: name.into(), msg: last_error() })
    }

    /// Mbufs currently free in the pool (ring plus per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pointer is a live pool (pools are never freed).
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs currently handed out.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pointer is a live pool.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Total number of mbufs in the pool.
    pub fn capacity(&self) -> u32 {
        // SAFETY: the pointer is a live pool; `size` is set at creation and never changes.
        unsafe { (*self.ptr.as_ptr()).size }
    }

    /// Takes one mbuf, reset and empty; `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pointer is a live pktmbuf pool; the returned mbuf, if any, is owned by us.
        let m = unsafe { dpdk_sys::shim_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-null result is a freshly allocated mbuf that nobody else references.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Takes one mbuf and copies `bytes` into it; `None` if the pool is empty or the data does
    /// not fit in one segment.
    pub fn alloc_with(&self, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        m.append(bytes.len()).ok()?.copy_from_slice(bytes);
        Some(m)
    }

    /// Takes `n` mbufs (reset and empty) at once and appends them to `burst`; all or nothing.
    /// Returns false, leaving `burst` unchanged, when the pool has fewer than `n` free or `n`
    /// exceeds the burst's free space. One call for the whole burst (a generator's tx path).
    pub fn alloc_bulk(&self, burst: &mut Burst, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        let mut ok = false;
        fill_back(burst, |ptrs, room| {
            if n > room {
                return 0;
            }
            let Ok(count) = u32::try_from(n) else { return 0 };
            // SAFETY: `ptrs` has room for `room >= n` pointers; the pool is a live pktmbuf pool.
            // On success DPDK wrote `n` freshly allocated mbufs that we now own; on failure it
            // wrote nothing usable and we report 0.
            let rc = unsafe { dpdk_sys::shim_pktmbuf_alloc_bulk(self.ptr.as_ptr(), ptrs, count) };
            ok = rc == 0;
            if ok {
                n
            } else {
                0
            }
        });
        ok
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }
}
