//! Owned packet buffers and fixed-size bursts of them.

use std::ptr::NonNull;

use arrayvec::ArrayVec;

use crate::error::{Error, Result};

/// Packets per rx/tx burst.
pub const BURST_SIZE: usize = 32;

/// Headroom DPDK reserves in front of received data (room to prepend headers or options).
pub const MBUF_HEADROOM: usize = dpdk_sys::RTE_PKTMBUF_HEADROOM as usize;

/// A burst of owned mbufs in a stack array.
pub type Burst = ArrayVec<Mbuf, BURST_SIZE>;

/// An owned `rte_mbuf`. Freed (returned to its pool) on drop; ownership passes to the driver
/// when it is transmitted.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf {
    ptr: NonNull<dpdk_sys::rte_mbuf>,
}

// SAFETY: an mbuf has one owner at a time; moving that ownership to another thread (as DPDK
// apps do through rings) is sound. `Mbuf` is not `Sync`-shared: `&mut` is needed to mutate.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Wraps a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that the caller owns exclusively; it will be freed on drop.
    pub(crate) unsafe fn from_raw(ptr: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf { ptr }
    }

    #[inline]
    fn raw(&self) -> *mut dpdk_sys::rte_mbuf {
        self.ptr.as_ptr()
    }

    // The accessors below read `rte_mbuf` fields directly, as DPDK's static inline functions
    // do (`rte_pktmbuf_mtod` is `buf_addr + data_off`, `rte_pktmbuf_data_len` is `data_len`),
    // so they inline into the per-packet code instead of costing a call into the C shim
    // each (measured: ~2-3% of lbd's forwarding time went to those calls).

    /// Bytes in the first segment.
    #[inline]
    pub fn data_len(&self) -> usize {
        // SAFETY: we own a valid mbuf; reading a plain field through the raw pointer creates
        // no reference, and nobody else writes the mbuf while we own it.
        usize::from(unsafe { (*self.raw()).data_len })
    }

    /// Bytes in the whole packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        // SAFETY: as in `data_len`.
        unsafe { (*self.raw()).pkt_len as usize }
    }

    /// Whether the packet sits in one segment, so `data()` covers all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: as in `data_len`.
        unsafe { (*self.raw()).nb_segs == 1 }
    }

    /// Start of the first segment's data: `buf_addr + data_off` (`rte_pktmbuf_mtod`).
    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        // SAFETY: as in `data_len`; `data_off` is within the buffer of `buf_len` bytes that
        // starts at `buf_addr` (DPDK keeps `data_off + data_len <= buf_len`), so the offset
        // pointer stays inside that allocation.
        unsafe {
            let m = self.raw();
            (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off))
        }
    }

    /// Copies a multi-segment packet into its first segment; fails if it does not fit.
    pub fn linearize(&mut self) -> Result<()> {
        // SAFETY: we own the mbuf chain exclusively.
        let rc = unsafe { dpdk_sys::shim_pktmbuf_linearize(self.raw()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::NoRoom { wanted: self.pkt_len(), available: self.data_len() + self.tailroom() })
        }
    }

    /// The first segment's data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: mtod points at `data_len` initialised bytes inside the mbuf's buffer, which we
        // own; the borrow of `self` keeps the buffer alive and unaliased for the slice's life.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.data_len()) }
    }

    /// The first segment's data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = self.data_len();
        // SAFETY: as in `data`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// Free bytes in front of the data (`data_off`, as `rte_pktmbuf_headroom`).
    #[inline]
    pub fn headroom(&self) -> usize {
        // SAFETY: as in `data_len`.
        usize::from(unsafe { (*self.raw()).data_off })
    }

    /// Free bytes after the first segment's data (`rte_pktmbuf_tailroom`).
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: as in `data_len`.
        let buf_len = usize::from(unsafe { (*self.raw()).buf_len });
        buf_len.saturating_sub(self.headroom() + self.data_len())
    }

    /// Free bytes after the data of the chain's last segment.
    fn last_tailroom(&self) -> usize {
        // SAFETY: we own the chain; every segment is a valid mbuf, `next` is NULL at its end,
        // and nothing else writes it while we read plain fields through raw pointers.
        unsafe {
            let mut seg = self.raw();
            while !(*seg).next.is_null() {
                seg = (*seg).next;
            }
            usize::from((*seg).buf_len).saturating_sub(usize::from((*seg).data_off) + usize::from((*seg).data_len))
        }
    }

    /// Grows the data at the front by `n` bytes; the packet now starts `n` bytes earlier.
    pub fn prepend(&mut self, n: usize) -> Result<()> {
        let room = self.headroom();
        let len = u16::try_from(n).ok().filter(|_| n <= room).ok_or(Error::NoRoom { wanted: n, available: room })?;
        // SAFETY: we own the mbuf and checked there is enough headroom.
        let p = unsafe { dpdk_sys::shim_pktmbuf_prepend(self.raw(), len) };
        if p.is_null() {
            return Err(Error::NoRoom { wanted: n, available: room });
        }
        Ok(())
    }

    /// Grows the data at the end by `n` bytes and returns them (uninitialised content).
    #[inline]
    pub fn append(&mut self, n: usize) -> Result<&mut [u8]> {
        if self.is_contiguous() {
            // `rte_pktmbuf_append` on one segment, inline: what a generator does per frame.
            let (room, have) = (self.tailroom(), self.data_len());
            let len = u16::try_from(n).ok().filter(|_| n <= room).ok_or(Error::NoRoom { wanted: n, available: room })?;
            // SAFETY: we own the mbuf (`&mut self`); it has one segment with `n <= tailroom`
            // free bytes after its data, so the grown lengths stay within `buf_len` and the
            // returned bytes lie in the mbuf's own buffer, now part of its data.
            unsafe {
                let m = self.raw();
                (*m).data_len += len;
                (*m).pkt_len += u32::from(len);
                return Ok(std::slice::from_raw_parts_mut(self.data_ptr().add(have), n));
            }
        }
        // A chain grows at its last segment, which DPDK's own code finds and checks.
        let p = match u16::try_from(n) {
            // SAFETY: we own the mbuf chain exclusively; DPDK refuses (NULL) what does not fit.
            Ok(len) => unsafe { dpdk_sys::shim_pktmbuf_append(self.raw(), len) },
            Err(_) => std::ptr::null_mut(),
        };
        if p.is_null() {
            return Err(Error::NoRoom { wanted: n, available: self.last_tailroom() });
        }
        // SAFETY: `p` points at `n` bytes of the mbuf's own buffer, now part of the data region;
        // `&mut self` gives exclusive access.
        Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Removes `n` bytes from the front.
    pub fn adj(&mut self, n: usize) -> Result<()> {
        let have = self.data_len();
        let len = u16::try_from(n).ok().filter(|_| n <= have).ok_or(Error::NoRoom { wanted: n, available: have })?;
        // SAFETY: we own the mbuf; `n` is within the first segment's data.
        let p = unsafe { dpdk_sys::shim_pktmbuf_adj(self.raw(), len) };
        if p.is_null() {
            return Err(Error::NoRoom { wanted: n, available: have });
        }
        Ok(())
    }

    /// Removes `n` bytes from the end.
    pub fn trim(&mut self, n: usize) -> Result<()> {
        let have = self.data_len();
        let len = u16::try_from(n).ok().filter(|_| n <= have).ok_or(Error::NoRoom { wanted: n, available: have })?;
        // SAFETY: we own the mbuf; `n` is within the last segment's data (checked for single
        // segment packets; DPDK re-checks and fails for chains).
        let rc = unsafe { dpdk_sys::shim_pktmbuf_trim(self.raw(), len) };
        if rc != 0 {
            return Err(Error::NoRoom { wanted: n, available: have });
        }
        Ok(())
    }

    /// The RSS hash the NIC computed, if it did.
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: we own a valid mbuf.
        unsafe { dpdk_sys::shim_pktmbuf_rss_hash(self.raw()) }
    }

    /// The port the mbuf was received on.
    #[inline]
    pub fn port(&self) -> u16 {
        // SAFETY: as in `data_len`.
        unsafe { (*self.raw()).port }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf exclusively; after this it is back in its pool.
        unsafe { dpdk_sys::shim_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

/// Frees every mbuf of `burst` with one call (`rte_pktmbuf_free_bulk`); the burst is empty
/// afterwards. Same effect as `burst.clear()`, cheaper for whole bursts.
pub fn free_burst(burst: &mut Burst) {
    consume_front(burst, |ptrs, n| {
        let Ok(count) = u32::try_from(n) else { return 0 };
        // SAFETY: `ptrs` holds `n` owned mbufs; rte_pktmbuf_free_bulk returns every one of
        // them to its pool, so consume_front must forget all `n`.
        unsafe { dpdk_sys::shim_pktmbuf_free_bulk(ptrs, count) };
        n
    });
}

/// Hands the mbufs of `burst` to `f` as raw pointers; `f` returns how many it consumed from the
/// front. Those are forgotten (ownership passed); the rest stay in the burst.
pub(crate) fn consume_front(
    burst: &mut Burst,
    f: impl FnOnce(*mut *mut dpdk_sys::rte_mbuf, usize) -> usize,
) -> usize {
    let len = burst.len();
    // `Mbuf` is repr(transparent) over a non-null pointer, so the array is an array of pointers.
    let taken = f(burst.as_mut_ptr().cast::<*mut dpdk_sys::rte_mbuf>(), len).min(len);
    // SAFETY: the first `taken` elements were consumed by C: we must not drop them. Shift the
    // rest to the front with a memmove and shorten the vector; no element is dropped or duplicated.
    unsafe {
        let base = burst.as_mut_ptr();
        std::ptr::copy(base.add(taken), base, len - taken);
        burst.set_len(len - taken);
    }
    taken
}

/// Lets `f` write up to `room` raw mbuf pointers after the burst's current end; `f` returns how
/// many it wrote, and those become owned elements.
pub(crate) fn fill_back(
    burst: &mut Burst,
    f: impl FnOnce(*mut *mut dpdk_sys::rte_mbuf, usize) -> usize,
) -> usize {
    let len = burst.len();
    let room = BURST_SIZE - len;
    // SAFETY: the pointer is to spare capacity of `room` elements within the array.
    let tail = unsafe { burst.as_mut_ptr().add(len) }.cast::<*mut dpdk_sys::rte_mbuf>();
    let got = f(tail, room).min(room);
    // SAFETY: `f` promised it wrote `got` valid, owned, non-null mbuf pointers into the spare
    // capacity; `Mbuf` is repr(transparent) over such a pointer.
    unsafe { burst.set_len(len + got) };
    got
}
