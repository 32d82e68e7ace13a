//! Measures the hashing schedulers' properties: Maglev balance for equal weights (max/avg
//! entries), disruption when 1 of N backends leaves (share of clients moved, against the ideal
//! 1/N), and table build time. A benchmark, not a test: `cargo run --release -p fastpath
//! --example sched_props` (`make bench` runs it and keeps the output).

#![allow(clippy::cast_possible_truncation)] // test fixtures build literal packets from small numbers

use std::net::Ipv4Addr;
use std::time::Instant;

use fastpath::hashsched::{build_maglev, build_ring, client_hash, Backend, HashTable, MAGLEV_SIZE};

fn backends(n: u32) -> Vec<Backend> {
    (0..n).map(|i| Backend { index: i, addr: Ipv4Addr::from(0x0a00_0000 + i), port: 80, weight: 1 }).collect()
}

fn moved(a: &HashTable, b: &HashTable) -> f64 {
    let clients = 200_000u32;
    let n = (0..clients).filter(|c| {
        let h = client_hash(Ipv4Addr::from(0xc000_0000 + c), None);
        a.lookup(h) != b.lookup(h)
    });
    n.count() as f64 / f64::from(clients)
}

fn main() {
    println!("| backends | maglev max/avg | maglev moved (1 leaves) | ideal 1/N | consh moved | maglev build ms | consh build ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [2u32, 4, 8, 16, 32, 64, 128] {
        let all = backends(n);
        let rest: Vec<Backend> = all.iter().copied().filter(|b| b.index != n / 2).collect();
        let t0 = Instant::now();
        let m = build_maglev(&all, MAGLEV_SIZE);
        let maglev_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t0 = Instant::now();
        let r = build_ring(&all);
        let ring_ms = t0.elapsed().as_secs_f64() * 1e3;
        let mut counts = vec![0usize; n as usize];
        if let HashTable::Maglev(v) = &m {
            for i in v {
                counts[*i as usize] += 1;
            }
        }
        let max = *counts.iter().max().unwrap_or(&0) as f64;
        let avg = MAGLEV_SIZE as f64 / f64::from(n);
        let mm = moved(&m, &build_maglev(&rest, MAGLEV_SIZE));
        let rm = moved(&r, &build_ring(&rest));
        println!("| {n} | {:.4} | {:.4} | {:.4} | {:.4} | {maglev_ms:.2} | {ring_ms:.2} |", max / avg, mm, 1.0 / f64::from(n), rm);
    }
}
