//! Rate limiting of log lines that can repeat every poll or period (a stats file that cannot
//! be written, a socket that keeps failing): the first occurrence is logged, then at most one
//! line per interval saying how often it was not logged meanwhile. Time is passed in, so the
//! tests drive a fake clock.
//!
//! ```
//! # use std::time::{Duration, Instant};
//! let mut stats_log = lb_logging::RateLimit::new(Duration::from_secs(10));
//! # let now = Instant::now();
//! if let Some(r) = stats_log.hit(now) {
//!     tracing::warn!("cannot write the stats file{r}");
//! }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How many occurrences were not logged since the last line; displays as nothing when none,
/// else as ` (repeated N times since the last message)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repeated(pub u64);

impl fmt::Display for Repeated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" (repeated once since the last message)"),
            n => write!(f, " (repeated {n} times since the last message)"),
        }
    }
}

/// One repeating message.
#[derive(Debug, Clone)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(interval: Duration) -> RateLimit {
        RateLimit { interval, last: None, suppressed: 0 }
    }

    /// An occurrence at `now`: `Some` when it is to be logged (the first one, or the first one
    /// an interval after the last line), with the count of those not logged since.
    pub fn hit(&mut self, now: Instant) -> Option<Repeated> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(Repeated(std::mem::take(&mut self.suppressed)))
            }
        }
    }

    /// The condition is over (the write succeeded again): returns `Some` when it had occurred
    /// since the last line was logged, so that the caller can say it recovered (with the count
    /// of occurrences not logged). The next occurrence is logged at once.
    pub fn clear(&mut self) -> Option<Repeated> {
        self.last.take()?;
        Some(Repeated(std::mem::take(&mut self.suppressed)))
    }

    /// Whether an occurrence was logged and not cleared since.
    pub fn active(&self) -> bool {
        self.last.is_some()
    }
}

/// Repeating messages told apart by a key (an interface, a peer, a listener): each key is
/// limited on its own. At most `max_keys` are tracked; past that, keys whose last line is older
/// than the interval are forgotten, and if none is, the new key is limited with the others
/// under a shared entry.
#[derive(Debug, Clone)]
pub struct RateLimited<K> {
    interval: Duration,
    max_keys: usize,
    keys: HashMap<K, RateLimit>,
    overflow: RateLimit,
}

impl<K: Hash + Eq> RateLimited<K> {
    pub fn new(interval: Duration) -> RateLimited<K> {
        RateLimited::with_max_keys(interval, 1024)
    }

    pub fn with_max_keys(interval: Duration, max_keys: usize) -> RateLimited<K> {
        RateLimited { interval, max_keys: max_keys.max(1), keys: HashMap::new(), overflow: RateLimit::new(interval) }
    }

    /// [`RateLimit::hit`] for `key`.
    pub fn hit(&mut self, key: K, now: Instant) -> Option<Repeated> {
        if !self.keys.contains_key(&key) && self.keys.len() >= self.max_keys {
            let interval = self.interval;
            self.keys.retain(|_, r| r.last.is_some_and(|t| now.saturating_duration_since(t) < interval) || r.suppressed > 0);
            if self.keys.len() >= self.max_keys {
                return self.overflow.hit(now);
            }
        }
        self.keys.entry(key).or_insert_with(|| RateLimit::new(self.interval)).hit(now)
    }

    /// [`RateLimit::clear`] for `key` (forgets it).
    pub fn clear(&mut self, key: &K) -> Option<Repeated> {
        self.keys.remove(key).and_then(|mut r| r.clear())
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clock: milliseconds after a fixed start.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    #[test]
    fn first_logged_then_one_line_per_interval_with_the_count() {
        let c = Clock(Instant::now());
        let mut r = RateLimit::new(Duration::from_secs(10));
        assert_eq!(r.hit(c.at(0)), Some(Repeated(0)));
        // A failing stats write every 200 ms: 49 more within the interval, none logged.
        for i in 1..50 {
            assert_eq!(r.hit(c.at(i * 200)), None, "at {} ms", i * 200);
        }
        assert_eq!(r.hit(c.at(10_000)), Some(Repeated(49)));
        assert_eq!(r.hit(c.at(10_200)), None);
        assert_eq!(r.hit(c.at(20_000)), Some(Repeated(1)));
        // Nothing for a long while: the next one is logged, with nothing suppressed.
        assert_eq!(r.hit(c.at(90_000)), Some(Repeated(0)));
    }

    #[test]
    fn clear_reports_a_recovery_once_and_rearms() {
        let c = Clock(Instant::now());
        let mut r = RateLimit::new(Duration::from_secs(10));
        assert_eq!(r.clear(), None, "nothing happened: nothing to say");
        r.hit(c.at(0));
        r.hit(c.at(200));
        r.hit(c.at(400));
        assert!(r.active());
        assert_eq!(r.clear(), Some(Repeated(2)));
        assert_eq!(r.clear(), None);
        assert!(!r.active());
        assert_eq!(r.hit(c.at(600)), Some(Repeated(0)), "a new failure right after is logged at once");
    }

    #[test]
    fn keys_are_limited_apart_and_bounded() {
        let c = Clock(Instant::now());
        let mut r = RateLimited::with_max_keys(Duration::from_secs(1), 2);
        assert_eq!(r.hit("wan", c.at(0)), Some(Repeated(0)));
        assert_eq!(r.hit("lan", c.at(10)), Some(Repeated(0)), "another key is not held back by the first");
        assert_eq!(r.hit("wan", c.at(20)), None);
        // A third key while both are fresh: limited with the overflow entry.
        assert_eq!(r.hit("dmz", c.at(30)), Some(Repeated(0)));
        assert_eq!(r.hit("mgmt", c.at(40)), None);
        assert_eq!(r.len(), 2);
        // Later, the stale key without suppressed lines ("lan") is forgotten to make room.
        assert_eq!(r.hit("dmz", c.at(1_500)), Some(Repeated(0)));
        assert_eq!(r.len(), 2);
        assert_eq!(r.hit("wan", c.at(1_600)), Some(Repeated(1)));
        assert_eq!(r.clear(&"wan"), Some(Repeated(0)));
        assert_eq!(r.clear(&"wan"), None);
    }

    #[test]
    fn repeated_reads_well() {
        assert_eq!(Repeated(0).to_string(), "");
        assert_eq!(Repeated(1).to_string(), " (repeated once since the last message)");
        assert_eq!(Repeated(7).to_string(), " (repeated 7 times since the last message)");
    }
}
