//! The buffer a packet lives in. DPDK mbufs implement it in the daemon; tests use [`TestBuf`].

/// A packet buffer with room to grow at the front (for inserted headers or options).
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the packet at the front by `n` bytes; false if there is no headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front; false if the packet is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Grows the packet at the end by `n` bytes; false if there is no tailroom.
    fn append(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the end; false if the packet is shorter.
    fn trim(&mut self, n: usize) -> bool;
}

/// A heap buffer with DPDK-like headroom, for tests and the `simulate` tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl TestBuf {
    /// Headroom a fresh buffer has (as DPDK's RTE_PKTMBUF_HEADROOM).
    pub const HEADROOM: usize = 128;
    /// Total capacity (as DPDK's default data room).
    pub const CAPACITY: usize = 2176;

    /// A buffer holding `bytes` after the default headroom.
    pub fn new(bytes: &[u8]) -> TestBuf {
        let mut storage = vec![0xa5; Self::CAPACITY.max(Self::HEADROOM + bytes.len())];
        storage[Self::HEADROOM..Self::HEADROOM + bytes.len()].copy_from_slice(bytes);
        TestBuf { storage, start: Self::HEADROOM, end: Self::HEADROOM + bytes.len() }
    }

    /// Free bytes in front of the data.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Refills the buffer with `bytes` after the default headroom, as a driver refills an mbuf
    /// (nothing allocated while they fit). Bytes beyond the capacity are cut off.
    pub fn load(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.storage.len() - Self::HEADROOM);
        self.storage[Self::HEADROOM..Self::HEADROOM + n].copy_from_slice(&bytes[..n]);
        self.start = Self::HEADROOM;
        self.end = Self::HEADROOM + n;
    }
}

impl PacketBuf for TestBuf {
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if self.end + n > self.storage.len() {
            return false;
        }
        self.end += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{PacketBuf, TestBuf};

    #[test]
    fn load_refills_after_the_headroom_whatever_came_before() {
        let mut b = TestBuf::new(&[1, 2, 3]);
        assert!(b.prepend(14) && b.append(8));
        b.load(&[9, 8]);
        assert_eq!(b.data(), &[9, 8]);
        assert_eq!(b.headroom(), TestBuf::HEADROOM);
        let big = vec![7u8; TestBuf::CAPACITY];
        b.load(&big);
        assert_eq!(b.data().len(), TestBuf::CAPACITY - TestBuf::HEADROOM, "cut at the capacity");
        assert!(!b.append(1), "no tailroom left after a full load");
    }
}
