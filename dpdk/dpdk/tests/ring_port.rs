//! Wrapper tests on `net_ring` loopback ports with `--no-huge` (no hugepages, no NIC).
//!
//! The EAL can start once per process, so all tests share one; each test uses its own port
//! and its own pool, so their counts do not interfere when tests run in parallel.

#![allow(clippy::cast_possible_truncation)] // frames are numbered and filled from small counters

use std::sync::OnceLock;

use dpdk::{Burst, Eal, EalBuilder, LaunchHandle, Mbuf, MbufRing, Mempool, Port, PortConfig, BURST_SIZE};

fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| {
        EalBuilder::new("dpdk-tests")
            .no_huge(true)
            .memory_mb(256)
            .lcores("0@0,1@0")
            .file_prefix(&format!("dpdk-test-{}", std::process::id()))
            .log_level("warning")
            .vdev("net_ring0")
            .vdev("net_ring1")
            .vdev("net_ring2")
            .init()
            .expect("EAL init with net_ring vdevs and --no-huge")
    })
}

fn frame(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|b| (b as u32).wrapping_mul(31).wrapping_add(i) as u8).collect()
}

fn setup(name: &str, pool: &Mempool) -> (Port, dpdk::RxQueue, dpdk::TxQueue) {
    let port = Port::by_name(name).expect("ring port exists");
    let (mut rx, mut tx) = port.configure(&PortConfig::default(), pool).expect("configure");
    port.start().expect("start");
    (port, rx.remove(0), tx.remove(0))
}

#[test]
fn bytes_sent_come_back_identical_and_pool_refills() {
    eal();
    let pool = Mempool::new("t_loop", 4095, 0, 2176).unwrap();
    let full = pool.capacity();
    let (port, mut rxq, mut txq) = setup("net_ring0", &pool);
    let initial = pool.available();

    let mut sent = Vec::new();
    for round in 0..10u32 {
        let mut burst = Burst::new();
        for i in 0..BURST_SIZE as u32 {
            let bytes = frame(round * 100 + i, 60 + (i as usize * 37) % 1400);
            burst.push(pool.alloc_with(&bytes).expect("pool has room"));
            sent.push(bytes);
        }
        let r = txq.tx_burst(&mut burst);
        assert_eq!(r.sent, BURST_SIZE);
        assert_eq!(r.dropped, 0);
        assert!(burst.is_empty());
    }
    let mut got = Vec::new();
    let mut burst = Burst::new();
    while rxq.rx_burst(&mut burst) > 0 {
        for m in burst.drain(..) {
            assert!(m.is_contiguous());
            got.push(m.data().to_vec());
        }
    }
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "received bytes differ from sent bytes");
    let stats = port.stats().unwrap();
    assert_eq!(stats.opackets, sent.len() as u64);
    assert_eq!(stats.ipackets, sent.len() as u64);
    assert_eq!(pool.available(), initial, "mbufs leaked");
    assert!(initial <= full);
}

#[test]
fn unsent_mbufs_are_freed_and_counted() {
    eal();
    let pool = Mempool::new("t_full", 8191, 0, 2176).unwrap();
    let (_port, mut rxq, mut txq) = setup("net_ring1", &pool);
    let before = pool.available();
    let (mut sent, mut dropped) = (0, 0);
    // The ring behind net_ring holds fewer than 4096 packets: fill past that without receiving.
    for _ in 0..(4096 / BURST_SIZE + 4) {
        let mut burst = Burst::new();
        for i in 0..BURST_SIZE {
            burst.push(pool.alloc_with(&frame(i as u32, 64)).unwrap());
        }
        let r = txq.tx_burst(&mut burst);
        sent += r.sent;
        dropped += r.dropped;
    }
    assert!(dropped > 0, "the ring never filled (sent {sent})");
    assert_eq!(sent + dropped, (4096 / BURST_SIZE + 4) * BURST_SIZE);
    // Dropped mbufs were already returned; the sent ones come back when received and dropped.
    assert_eq!(pool.available() as usize, before as usize - sent);
    let mut burst = Burst::new();
    let mut received = 0;
    while rxq.rx_burst(&mut burst) > 0 {
        received += burst.len();
        burst.clear();
    }
    assert_eq!(received, sent);
    assert_eq!(pool.available(), before);
}

#[test]
fn headroom_prepend_adj_trim_append() {
    eal();
    let pool = Mempool::new("t_room", 63, 0, 2176).unwrap();
    let before = pool.available();
    {
        let mut m: Mbuf = pool.alloc_with(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert_eq!(m.headroom(), dpdk::MBUF_HEADROOM);
        m.prepend(4).unwrap();
        m.data_mut()[..4].copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(m.data(), &[9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8]);
        m.adj(6).unwrap();
        assert_eq!(m.data(), &[3, 4, 5, 6, 7, 8]);
        m.trim(2).unwrap();
        assert_eq!(m.data(), &[3, 4, 5, 6]);
        m.append(2).unwrap().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(m.data(), &[3, 4, 5, 6, 0xaa, 0xbb]);
        assert_eq!(m.pkt_len(), 6, "append grows the packet length too");
        assert_eq!(m.headroom() + m.data_len() + m.tailroom(), 2176, "the whole buffer");
        let room = m.tailroom();
        m.append(room).unwrap().fill(0xcc);
        assert_eq!((m.tailroom(), m.pkt_len(), m.data_len()), (0, 6 + room, 6 + room));
        m.trim(room).unwrap();
        assert!(m.prepend(m.headroom() + 1).is_err());
        assert!(m.adj(7).is_err());
        assert!(m.trim(7).is_err());
        assert!(m.append(m.tailroom() + 1).is_err());
        assert_eq!(m.data(), &[3, 4, 5, 6, 0xaa, 0xbb], "failed operations changed nothing");
        assert_eq!(pool.available(), before - 1);
    }
    assert_eq!(pool.available(), before, "drop returns the mbuf");
}

#[test]
fn unknown_port_and_bad_queue_count_are_errors() {
    eal();
    let err = Port::by_name("net_nosuch0").unwrap_err();
    assert!(err.to_string().contains("net_nosuch0"), "{err}");
    let pool = Mempool::new("t_badq", 63, 0, 2176).unwrap();
    let port = Port::by_name("net_ring2").unwrap();
    let conf = PortConfig { rx_queues: 1000, ..PortConfig::default() };
    let err = port.configure(&conf, &pool).unwrap_err();
    assert!(err.to_string().contains("1000 rx queues"), "{err}");
    assert!(matches!(EalBuilder::new("again").no_huge(true).init(), Err(dpdk::Error::AlreadyInitialised)));
}

#[test]
fn job_runs_on_worker_lcore_and_hands_mbufs_back_through_ring() {
    let eal = eal();
    let workers = dpdk::worker_lcores(eal);
    assert_eq!(workers.len(), 1);
    let pool = Mempool::new("t_lcore", 1023, 0, 2176).unwrap();
    let before = pool.available();
    let ring = std::sync::Arc::new(MbufRing::new("t_ring", 1024).unwrap());
    let r2 = ring.clone();
    let lcore = workers[0];
    let h = LaunchHandle::launch(eal, lcore, move || {
        // Built on the lcore itself: a context that is not Send never crosses threads.
        let me = dpdk::current_lcore().map(|l| l.0 as i32).unwrap_or(-1);
        let mut b = Burst::new();
        for i in 0..10u8 {
            b.push(pool.alloc_with(&[i; 100]).unwrap());
        }
        assert_eq!(r2.enqueue_burst(&mut b), 10);
        me
    })
    .unwrap();
    assert_eq!(h.wait(), lcore.0 as i32);
    let mut b = Burst::new();
    assert_eq!(ring.dequeue_burst(&mut b), 10);
    for (i, m) in b.iter().enumerate() {
        assert_eq!(m.data(), &[i as u8; 100][..]);
    }
    b.clear();
    assert_eq!(pool.available(), before);
}

#[test]
fn bulk_alloc_is_all_or_nothing_and_bulk_free_refills() {
    eal();
    let pool = Mempool::new("t_bulk", 63, 0, 2176).unwrap();
    let full = pool.available();
    let mut burst = Burst::new();
    assert!(pool.alloc_bulk(&mut burst, 20));
    assert_eq!(burst.len(), 20);
    assert!(burst.iter().all(|m| m.data_len() == 0 && m.headroom() == dpdk::MBUF_HEADROOM));
    assert!(!pool.alloc_bulk(&mut burst, BURST_SIZE), "more than the burst's free space");
    assert_eq!(burst.len(), 20, "a failed bulk allocation leaves the burst unchanged");
    let mut other = Burst::new();
    assert!(!pool.alloc_bulk(&mut other, 32 + 20), "beyond the burst capacity");
    assert!(pool.alloc_bulk(&mut other, 32));
    let mut third = Burst::new();
    assert!(!pool.alloc_bulk(&mut third, 32), "pool has only 11 left");
    assert!(third.is_empty());
    assert_eq!(pool.available(), full - 52);
    dpdk::free_burst(&mut burst);
    dpdk::free_burst(&mut other);
    assert!(burst.is_empty() && other.is_empty());
    assert_eq!(pool.available(), full, "bulk free returned every mbuf");
}
