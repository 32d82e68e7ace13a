//! Adaptive polling: when a worker may sleep (`idle_sleep_us` > 0), how long it sleeps after a
//! pass that found nothing.
//!
//! A fixed sleep after a long run of empty polls costs either way on a machine whose cores
//! the director shares (the testbed, a small VM): the spinning before the sleep burns the CPU
//! that the clients and servers need, and a long sleep adds its whole length to the latency of
//! the next packet. So the worker spins only briefly ([`SPIN_PASSES`] empty passes), then
//! sleeps from [`FIRST_SLEEP_US`], doubling with each pass that still finds nothing, up to
//! `idle_sleep_us`; any frame resets it. A request/response stream with gaps of tens of
//! microseconds is then served from short sleeps, and a quiet director wakes at most every
//! `idle_sleep_us`. With `idle_sleep_us` = 0 the worker never sleeps (dedicated cores).
//!
//! I/O-free: the worker feeds it each pass's frame count and does the sleeping.

use std::time::Duration;

/// Empty passes a worker spins before its first sleep.
pub const SPIN_PASSES: u32 = 32;
/// The first sleep of an idle stretch, in microseconds.
pub const FIRST_SLEEP_US: u32 = 2;

/// The idle policy of one worker.
#[derive(Debug, Clone)]
pub struct IdlePolicy {
    max_us: u32,
    empty: u32,
    next_us: u32,
}

/// What to do after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Poll again at once.
    Poll,
    /// Sleep this long; `first` marks the first sleep of an idle stretch (a moment to publish
    /// counters, which must not wait for the stretch to end).
    Sleep { length: Duration, first: bool },
}

impl IdlePolicy {
    /// `max_us`: the longest sleep (`idle_sleep_us`); 0 never sleeps.
    pub fn new(max_us: u32) -> IdlePolicy {
        IdlePolicy { max_us, empty: 0, next_us: FIRST_SLEEP_US.min(max_us) }
    }

    /// After a pass that handled `frames` frames.
    pub fn after_pass(&mut self, frames: usize) -> Idle {
        if frames > 0 || self.max_us == 0 {
            self.empty = 0;
            self.next_us = FIRST_SLEEP_US.min(self.max_us);
            return Idle::Poll;
        }
        self.empty = self.empty.saturating_add(1);
        if self.empty < SPIN_PASSES {
            return Idle::Poll;
        }
        let length = self.next_us;
        let first = self.empty == SPIN_PASSES;
        self.next_us = length.saturating_mul(2).min(self.max_us);
        Idle::Sleep { length: Duration::from_micros(u64::from(length)), first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeps(p: &mut IdlePolicy, passes: u32) -> Vec<u64> {
        (0..passes)
            .filter_map(|_| match p.after_pass(0) {
                Idle::Poll => None,
                Idle::Sleep { length, .. } => Some(u64::try_from(length.as_micros()).unwrap()),
            })
            .collect()
    }

    #[test]
    fn zero_never_sleeps() {
        let mut p = IdlePolicy::new(0);
        assert!(sleeps(&mut p, 10_000).is_empty());
    }

    #[test]
    fn spins_then_sleeps_longer_up_to_the_cap() {
        let mut p = IdlePolicy::new(50);
        let s = sleeps(&mut p, SPIN_PASSES - 1);
        assert!(s.is_empty(), "spins first: {s:?}");
        assert_eq!(p.after_pass(0), Idle::Sleep { length: Duration::from_micros(2), first: true });
        assert_eq!(sleeps(&mut p, 7), vec![4, 8, 16, 32, 50, 50, 50]);
    }

    #[test]
    fn a_frame_resets_the_stretch() {
        let mut p = IdlePolicy::new(1000);
        let _ = sleeps(&mut p, SPIN_PASSES + 8);
        assert_eq!(p.after_pass(3), Idle::Poll);
        let s = sleeps(&mut p, SPIN_PASSES + 1);
        assert_eq!(s, vec![2, 4], "spins again, then starts from the shortest sleep");
    }

    #[test]
    fn only_the_first_sleep_of_a_stretch_is_marked() {
        let mut p = IdlePolicy::new(8);
        let firsts: Vec<bool> = (0..SPIN_PASSES + 5)
            .filter_map(|_| match p.after_pass(0) {
                Idle::Sleep { first, .. } => Some(first),
                Idle::Poll => None,
            })
            .collect();
        assert_eq!(firsts, vec![true, false, false, false, false, false]);
    }

    #[test]
    fn a_cap_below_the_first_sleep_is_the_sleep() {
        let mut p = IdlePolicy::new(1);
        assert_eq!(sleeps(&mut p, SPIN_PASSES + 2), vec![1, 1, 1]);
    }
}
