//! A small dependency-free, deterministic mutation fuzzer shared by the fuzz targets (each
//! test crate includes this file with `#[path]`). See fuzz/README.md.
//!
//! A target is a closure over one input; it returns whether the input went deep (parsed,
//! forwarded...). [`run`] replays the seeds (given in code and the files under
//! `fuzz/corpus/<target>/`), then feeds `FUZZ_ITERS` mutants of them (fixed seed, override
//! with `FUZZ_SEED`). A panic prints the input in hex and saves it under
//! `target/fuzz-crashes/` before going on unwinding.
#![allow(dead_code)]
#![allow(clippy::cast_possible_truncation)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// xorshift64*, seeded; never zero.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// The repository's `fuzz/` directory.
pub fn fuzz_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|p| p.join("fuzz"))
        .find(|p| p.join("harness.rs").is_file())
        .expect("fuzz/ above the crate")
}

/// The corpus files of `target`, sorted by name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    v.strip_prefix("0x").map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
}

const INTERESTING8: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, 0x45, 0x0f, 0x10, 0x40];
const INTERESTING16: [u16; 8] = [0, 1, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xffff, 0x0800];

/// One mutant of `base` (sometimes spliced with `other`), at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, base: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut d = base.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = d.len();
        match rng.below(12) {
            0 | 1 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                d[i] = rng.byte();
            }
            3 if len > 0 => {
                let i = rng.below(len);
                d[i] = INTERESTING8[rng.below(INTERESTING8.len())];
            }
            4 if len > 1 => {
                let i = rng.below(len - 1);
                let v = INTERESTING16[rng.below(INTERESTING16.len())].to_be_bytes();
                d[i..i + 2].copy_from_slice(&v);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                d[i] = d[i].wrapping_add(rng.below(33) as u8).wrapping_sub(16);
            }
            6 => d.truncate(rng.below(len + 1)),
            7 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                d.drain(at..at + n);
            }
            8 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                d.splice(at..at, bytes);
            }
            9 if len > 0 => {
                // Duplicate a chunk.
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(32));
                let chunk = d[from..from + n].to_vec();
                let at = rng.below(len + 1);
                d.splice(at..at, chunk);
            }
            10 if !other.is_empty() => {
                // Splice: our head, the other's tail.
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                d[i] = 0;
            }
            _ => d.push(rng.byte()),
        }
    }
    d.truncate(max_len);
    d
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Stats {
    pub seeds: usize,
    pub runs: usize,
    pub deep: usize,
    pub elapsed: Duration,
}

impl Stats {
    /// Asserts that at least `percent` % of the mutated runs went deep, so a generator that
    /// only produces garbage cannot pass silently.
    pub fn assert_deep(&self, target: &str, percent: usize) {
        assert!(
            self.deep * 100 >= self.runs * percent,
            "{target}: only {} of {} inputs went deep (want {percent}%)",
            self.deep,
            self.runs
        );
    }
}

/// Replays the seeds and the corpus, then `FUZZ_ITERS` (default `iters`) mutants. `f` gets
/// the input and a repair hint (true for most mutants: fix lengths/checksums so the input
/// reaches past the first check; false for the replayed seeds and the rest) and returns
/// whether the input went deep. `FUZZ_WRITE_CORPUS=1` (re)writes the code seeds as corpus
/// files named `seed-NN`.
pub fn run(target: &str, seeds: &[Vec<u8>], iters: usize, max_len: usize, mut f: impl FnMut(&[u8], bool) -> bool) -> Stats {
    let started = Instant::now();
    if std::env::var_os("FUZZ_WRITE_CORPUS").is_some() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
        }
    }
    let mut pool: Vec<Vec<u8>> = seeds.to_vec();
    for (_, bytes) in corpus(target) {
        if !pool.contains(&bytes) {
            pool.push(bytes);
        }
    }
    assert!(!pool.is_empty(), "{target}: no seeds");
    let mut call = |input: &[u8], repair: bool, what: &str| -> bool {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(input, repair))) {
            Ok(deep) => deep,
            Err(e) => {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                let dir = fuzz_dir().parent().unwrap().join("target").join("fuzz-crashes");
                let _ = std::fs::create_dir_all(&dir);
                let file = dir.join(format!("{target}-{}", started.elapsed().as_nanos()));
                let _ = std::fs::write(&file, input);
                eprintln!("fuzz target {target}: panic on {what} (repair={repair}), input saved to {}:\n{hex}", file.display());
                std::panic::resume_unwind(e)
            }
        }
    };
    let mut stats = Stats { seeds: pool.len(), ..Stats::default() };
    for (i, s) in pool.iter().enumerate() {
        call(s, false, &format!("seed {i}"));
    }
    let iters = env_u64("FUZZ_ITERS").map_or(iters, |n| n as usize);
    let seed = env_u64("FUZZ_SEED").unwrap_or(0x005e_ed1b_adc0_ffee);
    let mut rng = Rng::new(seed ^ target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)));
    for i in 0..iters {
        let base = &pool[rng.below(pool.len())];
        let other = &pool[rng.below(pool.len())];
        let input = mutate(&mut rng, base, other, max_len);
        let repair = !rng.chance(4);
        if call(&input, repair, &format!("iteration {i} (FUZZ_SEED={seed:#x})")) {
            stats.deep += 1;
        }
        stats.runs += 1;
    }
    stats.elapsed = started.elapsed();
    eprintln!("fuzz target {target}: {} seeds, {} mutants, {} deep, {:?}", stats.seeds, stats.runs, stats.deep, stats.elapsed);
    stats
}
