//! Lock-free rings of mbufs, for handing packets from one lcore to another.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{last_error, Error, Result};
use crate::mbuf::{consume_front, fill_back, Burst};

/// A multi-producer, single-consumer ring of owned mbufs (DPDK `rte_ring`).
#[derive(Debug)]
pub struct MbufRing {
    ptr: NonNull<dpdk_sys::rte_ring>,
}

// SAFETY: the ring is created multi-producer safe, so any thread may enqueue.
unsafe impl Send for MbufRing {}
// SAFETY: enqueue is MP-safe; dequeue is single-consumer and documented as such on
// `dequeue_burst` (callers give one lcore the consuming role).
unsafe impl Sync for MbufRing {}

const RING_F_SC_DEQ: u32 = 0x0002;

impl MbufRing {
    /// Creates a ring with room for `size - 1` mbufs (`size` a power of two).
    pub fn new(name: &str, size: u32) -> Result<MbufRing> {
        let c = CString::new(name).map_err(|_| Error::Nul { what: "ring name", value: name.into() })?;
        // SAFETY: `c` is NUL-terminated and lives across the call.
        let p = unsafe { dpdk_sys::rte_ring_create(c.as_ptr(), size, dpdk_sys::SOCKET_ID_ANY, RING_F_SC_DEQ) };
        NonNull::new(p).map(|ptr| MbufRing { ptr }).ok_or_else(|| Error::Create { kind: "ring", name: name.into(), msg: last_error() })
    }

    /// Moves as many mbufs as fit from the front of `burst` into the ring; the rest stay.
    pub fn enqueue_burst(&self, burst: &mut Burst) -> usize {
        consume_front(burst, |ptrs, n| {
            let n = u32::try_from(n).unwrap_or(0);
            // SAFETY: `ptrs` holds `n` owned mbuf pointers; the ring takes ownership of those
            // it accepts (consume_front forgets them). Enqueue is multi-producer safe.
            unsafe { dpdk_sys::shim_ring_enqueue_burst(self.ptr.as_ptr(), ptrs.cast(), n) as usize }
        })
    }

    /// Moves mbufs from the ring into the burst's free space. Only one thread may dequeue.
    pub fn dequeue_burst(&self, burst: &mut Burst) -> usize {
        fill_back(burst, |ptrs, room| {
            let room = u32::try_from(room).unwrap_or(0);
            // SAFETY: `ptrs` has room for `room` pointers; everything in the ring is an owned
            // mbuf put there by enqueue_burst. Single consumer by contract.
            unsafe { dpdk_sys::shim_ring_dequeue_burst(self.ptr.as_ptr(), ptrs.cast(), room) as usize }
        })
    }

    /// Entries in the ring.
    pub fn len(&self) -> usize {
        // SAFETY: reads the ring's indexes.
        unsafe { dpdk_sys::shim_ring_count(self.ptr.as_ptr()) as usize }
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        let mut b = Burst::new();
        while self.dequeue_burst(&mut b) > 0 {
            b.clear();
        }
        // SAFETY: the ring is empty and nobody else holds it (we own it).
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}
