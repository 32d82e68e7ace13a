//! The worker's millisecond clock from the time-stamp counter: one `rdtsc` per poll pass
//! instead of a `clock_gettime` (vDSO) call. The TSC's rate is the one the EAL measured, so
//! the clock is re-anchored to the monotonic clock every [`RESYNC_EVERY`] readings; it never
//! goes backwards. All workers anchor to the same `Instant`, so their clocks agree (flow-control
//! windows and sync timestamps are compared across workers).
//!
//! Kept free of I/O: readings are passed in, so the arithmetic is tested with made-up values.

/// Readings between two anchorings to the monotonic clock (~65 ms at 1 M passes per second).
pub const RESYNC_EVERY: u32 = 1 << 16;

/// TSC ticks to milliseconds since an anchor.
#[derive(Debug, Clone)]
pub struct TscClock {
    ticks_per_ms: u64,
    anchor_tsc: u64,
    anchor_ms: u64,
    last_ms: u64,
    readings: u32,
}

impl TscClock {
    /// A clock anchored at `tsc` = `now_ms`; `tsc_hz` is the counter's rate (0 makes every
    /// reading come from the anchor, i.e. the caller's monotonic clock).
    pub fn new(tsc_hz: u64, tsc: u64, now_ms: u64) -> TscClock {
        TscClock { ticks_per_ms: tsc_hz / 1000, anchor_tsc: tsc, anchor_ms: now_ms, last_ms: now_ms, readings: 0 }
    }

    /// Whether the next reading should come with a fresh monotonic time ([`TscClock::resync`]).
    #[inline]
    pub fn due(&self) -> bool {
        self.readings >= RESYNC_EVERY || self.ticks_per_ms == 0
    }

    /// The time at `tsc`.
    #[inline]
    pub fn now(&mut self, tsc: u64) -> u64 {
        self.readings += 1;
        let ms = match tsc.checked_sub(self.anchor_tsc) {
            Some(d) if self.ticks_per_ms > 0 => self.anchor_ms + d / self.ticks_per_ms,
            _ => self.anchor_ms,
        };
        self.last_ms = self.last_ms.max(ms);
        self.last_ms
    }

    /// Re-anchors at `tsc` = `now_ms` (the monotonic clock) and returns the time, never less
    /// than one returned before.
    pub fn resync(&mut self, tsc: u64, now_ms: u64) -> u64 {
        self.readings = 0;
        self.anchor_tsc = tsc;
        self.anchor_ms = now_ms.max(self.last_ms);
        self.last_ms = self.anchor_ms;
        self.last_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_milliseconds_from_the_anchor_and_never_goes_back() {
        // 2 GHz: 2,000,000 ticks per ms.
        let mut c = TscClock::new(2_000_000_000, 1_000_000, 5_000);
        assert_eq!(c.now(1_000_000), 5_000);
        assert_eq!(c.now(1_000_000 + 2_000_000 * 250 + 7), 5_250);
        // The monotonic clock says 5,290 where the TSC says 5,300 (the EAL's TSC rate was a
        // little high): the clock follows the monotonic one from there.
        assert_eq!(c.resync(1_000_000 + 2_000_000 * 300, 5_290), 5_290);
        assert_eq!(c.now(1_000_000 + 2_000_000 * 305), 5_295);
        // A counter read before the anchor (another core's, a hair behind) reads as the anchor,
        // and never less than a time returned before.
        assert_eq!(c.now(5), 5_295);
        // A monotonic time behind what was returned does not move the clock back.
        assert_eq!(c.resync(1_000_000 + 2_000_000 * 306, 5_000), 5_295);
        assert_eq!(c.now(1_000_000 + 2_000_000 * 308), 5_297);
    }

    #[test]
    fn asks_for_a_resync_every_so_often_and_without_a_rate() {
        let mut c = TscClock::new(1_000_000, 0, 0);
        for i in 0..RESYNC_EVERY {
            assert!(!c.due(), "{i}");
            c.now(u64::from(i));
        }
        assert!(c.due());
        c.resync(0, 10);
        assert!(!c.due());
        let mut no_rate = TscClock::new(0, 0, 42);
        assert!(no_rate.due(), "without a TSC rate every reading is the monotonic clock's");
        assert_eq!(no_rate.now(123_456), 42);
    }
}
