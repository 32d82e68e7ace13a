//! A fixed-length, zero-filled table of plain-data values that costs nothing to create.
//!
//! `vec![ZERO; n]` writes all `n` values before it returns: for the session index's 256 MiB
//! table at 20 M sessions that is ~130 ms (measured on the lab VM: 2 MiB 1.1 ms, 16 MiB 9.5 ms,
//! 128 MiB 73 ms), a stall of the worker that owns the table. The allocator's zeroed path does
//! not help: for alignments above 16 bytes (a bucket is one 64-byte line) Rust's system
//! allocator allocates and then `memset`s. `ZeroedTable` maps anonymous memory instead, which
//! the kernel hands out as zero pages on first touch, so the cost of zeroing is paid a page at a
//! time by whoever first writes there.
//!
//! Only types for which all-zero bytes are a valid value may be used (`zerocopy::FromZeros`,
//! whose derive checks the fields), and only `Copy` ones, so dropping the table drops nothing.
//! It lives under `dpdk/` because mapping memory and viewing it as a slice is `unsafe`.

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

pub use zerocopy::FromZeros;

/// `len` values of `T`, all zero when created, in their own anonymous mapping.
pub struct ZeroedTable<T: FromZeros + Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes mapped (0: nothing mapped, for an empty table or a zero-sized `T`).
    mapped: usize,
}

// SAFETY: the table owns its mapping exclusively, like a `Vec<T>`; sending or sharing it is
// sending or sharing the `T`s.
unsafe impl<T: FromZeros + Copy + Send> Send for ZeroedTable<T> {}
// SAFETY: as above; `&ZeroedTable` only gives `&[T]`.
unsafe impl<T: FromZeros + Copy + Sync> Sync for ZeroedTable<T> {}

impl<T: FromZeros + Copy> ZeroedTable<T> {
    /// A table of `len` zero values. The mapping's pages are not touched here. Aborts, as
    /// `Vec` does, when the memory cannot be had.
    pub fn new(len: usize) -> ZeroedTable<T> {
        let bytes = core::mem::size_of::<T>().checked_mul(len).unwrap_or_else(|| too_big::<T>(len));
        if bytes == 0 {
            return ZeroedTable { ptr: NonNull::dangling(), len, mapped: 0 };
        }
        assert!(core::mem::align_of::<T>() <= 4096, "ZeroedTable: alignment above a page");
        // SAFETY: an anonymous private mapping of `bytes` bytes at an address the kernel picks;
        // no existing memory is affected.
        let p = unsafe {
            libc::mmap(core::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            too_big::<T>(len);
        }
        let ptr = NonNull::new(p.cast::<T>()).unwrap_or_else(|| too_big::<T>(len));
        ZeroedTable { ptr, len, mapped: bytes }
    }
}

/// Allocation failure, reported the way `Vec` reports it.
fn too_big<T>(len: usize) -> ! {
    match std::alloc::Layout::array::<T>(len) {
        Ok(l) => std::alloc::handle_alloc_error(l),
        Err(_) => panic!("ZeroedTable: {len} values of {} bytes overflow", core::mem::size_of::<T>()),
    }
}

impl<T: FromZeros + Copy> Deref for ZeroedTable<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is a page-aligned (hence `T`-aligned) mapping of `len` values, or
        // dangling with nothing to read; the memory started as zeros, a valid `T` (`FromZeros`),
        // and is only ever written through `&mut [T]`, so every value is a valid `T`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: FromZeros + Copy> DerefMut for ZeroedTable<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: FromZeros + Copy> Drop for ZeroedTable<T> {
    fn drop(&mut self) {
        if self.mapped != 0 {
            // SAFETY: unmaps exactly the mapping `new` made; no reference into it outlives
            // `self`. `T: Copy` has no destructor to run first.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
        }
    }
}

impl<T: FromZeros + Copy> Clone for ZeroedTable<T> {
    fn clone(&self) -> Self {
        let mut t = ZeroedTable::new(self.len);
        t.copy_from_slice(self);
        t
    }
}

impl<T: FromZeros + Copy> Default for ZeroedTable<T> {
    fn default() -> Self {
        ZeroedTable::new(0)
    }
}

impl<T: FromZeros + Copy> fmt::Debug for ZeroedTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZeroedTable").field("len", &self.len).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, FromZeros)]
    #[repr(C, align(64))]
    struct Line {
        a: [u32; 12],
        b: [u8; 16],
    }

    #[test]
    fn starts_zero_keeps_writes_and_clones_them() {
        let mut t = ZeroedTable::<Line>::new(100_000);
        assert_eq!(t.len(), 100_000);
        assert!(t.iter().all(|l| *l == Line { a: [0; 12], b: [0; 16] }));
        assert_eq!(t.as_ptr() as usize % 64, 0, "aligned for the type");
        t[99_999].a[3] = 7;
        t[0].b[15] = 9;
        let c = t.clone();
        drop(t);
        assert_eq!((c[99_999].a[3], c[0].b[15], c[50_000].a[0]), (7, 9, 0));
    }

    #[test]
    fn empty_tables_and_zero_sized_values() {
        let t = ZeroedTable::<u64>::new(0);
        assert!(t.is_empty());
        let z = ZeroedTable::<()>::new(1_000);
        assert_eq!(z.len(), 1_000);
        assert_eq!(ZeroedTable::<u64>::default().len(), 0);
    }

    /// The point of the type: a big table is not written when created. Its resident size
    /// grows by the pages touched, not by the table (`/proc/self/statm`, in pages).
    #[test]
    fn creating_a_big_table_touches_none_of_it() {
        fn resident_pages() -> usize {
            let s = std::fs::read_to_string("/proc/self/statm").unwrap();
            s.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        let before = resident_pages();
        let mut t = ZeroedTable::<Line>::new(4 << 20); // 256 MiB
        let after_new = resident_pages();
        t[123_456].a[0] = 1;
        let grown = after_new.saturating_sub(before);
        // 256 MiB is 65,536 pages; the bound leaves room for what tests running beside this
        // one allocate meanwhile (a few MiB).
        assert!(grown < 8_192, "creating 256 MiB made {grown} pages resident");
        assert_eq!(t[123_456].a[0], 1);
    }
}
