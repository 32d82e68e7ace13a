//! Per-service flow control shared by all workers: a new-connection budget per interval
//! window and a concurrent-connection cap. Only services with a limit pay for it, and only on
//! new connections: one atomic operation each, so the total can never exceed a limit and the
//! error across workers is zero.
//!
//! A window opens with the first new connection after the previous one closed (as EulerOS
//! does), so a burst of `k` intervals admits at most `k * cps * interval` connections
//! wherever it starts.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::service::FlowControl;

/// Counters of one service that outlive snapshots (carried over when the table is rebuilt).
#[derive(Debug, Default)]
pub struct ServiceShared {
    /// Live connections (all workers).
    pub conns: AtomicU32,
    /// (window start in ms, wrapping u32) << 32 | connections admitted in that window.
    window: AtomicU64,
    /// Connections created (all workers).
    pub created: AtomicU64,
    pub refused_cps: AtomicU64,
    pub refused_conns: AtomicU64,
    pub refused_denied: AtomicU64,
    pub refused_not_allowed: AtomicU64,
}

/// Why flow control refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Over `cps * interval` in the current window.
    Cps,
    /// At the concurrent-connection cap.
    Conns,
}

impl ServiceShared {
    /// Admits one new connection at `now_ms` or says which limit refuses it. On success the
    /// caller must call `closed` when the connection ends.
    pub fn admit(&self, fc: &FlowControl, now_ms: u64) -> Result<(), Limit> {
        if fc.cps > 0 {
            let interval_ms = fc.interval_s.max(1).saturating_mul(1000);
            let budget = u64::from(fc.cps) * u64::from(fc.interval_s.max(1));
            let now = u32::try_from(now_ms & 0xffff_ffff).unwrap_or(0);
            let mut cur = self.window.load(Ordering::Relaxed);
            loop {
                let (start, n) = (u32::try_from(cur >> 32).unwrap_or(0), cur & 0xffff_ffff);
                // A fresh service (cur == 0) or an elapsed window starts a new one now.
                let (start, n) = if cur == 0 || now.wrapping_sub(start) >= interval_ms { (now, 0) } else { (start, n) };
                if n >= budget {
                    self.refused_cps.fetch_add(1, Ordering::Relaxed);
                    return Err(Limit::Cps);
                }
                match self.window.compare_exchange_weak(cur, (u64::from(start) << 32) | (n + 1), Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(x) => cur = x,
                }
            }
        }
        let prev = self.conns.fetch_add(1, Ordering::AcqRel);
        if fc.max_conns > 0 && prev >= fc.max_conns {
            self.conns.fetch_sub(1, Ordering::AcqRel);
            self.refused_conns.fetch_add(1, Ordering::Relaxed);
            return Err(Limit::Conns);
        }
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A connection admitted by `admit` ended.
    pub fn closed(&self) {
        // `fetch_update` is `try_update` in Rust newer than the workspace's rust-version.
        #[allow(deprecated)]
        let _ = self.conns.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| c.checked_sub(1));
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::service::RefuseMode;

    fn fc(cps: u32, interval_s: u32, max_conns: u32) -> FlowControl {
        FlowControl { cps, interval_s, max_conns, refuse: RefuseMode::Rst }
    }

    #[test]
    fn cps_window_with_a_fake_clock() {
        let s = ServiceShared::default();
        let f = fc(50, 1, 0);
        let mut now = 10_000;
        let ok = (0..80).filter(|_| s.admit(&f, now).is_ok()).count();
        assert_eq!(ok, 50);
        assert_eq!(s.refused_cps.load(Ordering::Relaxed), 30);
        now += 999;
        assert_eq!(s.admit(&f, now), Err(Limit::Cps), "same window");
        now += 1;
        assert!(s.admit(&f, now).is_ok(), "next window");
        // A 5-second burst of 1000 attempts, starting anywhere: windows open with the burst,
        // so it gets exactly 5 windows' budget.
        for offset in [0u64, 1, 370, 999] {
            let s = ServiceShared::default();
            let ok = (0..1000u64).filter(|i| s.admit(&f, 20_000 + offset + i * 5).is_ok()).count();
            assert_eq!(ok, 250, "burst starting {offset} ms into a second");
        }
        // Interval 2 s: budget cps * 2 per window.
        let s = ServiceShared::default();
        assert_eq!((0..300).filter(|_| s.admit(&fc(50, 2, 0), 4_000).is_ok()).count(), 100);
    }

    #[test]
    fn concurrency_cap_and_release() {
        let s = ServiceShared::default();
        let f = fc(0, 1, 10);
        assert_eq!((0..11).filter(|_| s.admit(&f, 0).is_ok()).count(), 10);
        assert_eq!(s.admit(&f, 0), Err(Limit::Conns));
        s.closed();
        assert!(s.admit(&f, 0).is_ok());
        assert_eq!(s.conns.load(Ordering::Relaxed), 10);
        for _ in 0..20 {
            s.closed();
        }
        assert_eq!(s.conns.load(Ordering::Relaxed), 0, "never wraps below zero");
    }

    #[test]
    fn many_threads_never_exceed_the_budget() {
        let s = std::sync::Arc::new(ServiceShared::default());
        let f = fc(1000, 1, 0);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = std::sync::Arc::clone(&s);
                std::thread::spawn(move || (0..1000).filter(|_| s.admit(&f, 5_000).is_ok()).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }
}
