//! One check's state machine, as keepalived 2.2's checkers run (check_tcp.c `tcp_epilog`,
//! check_http.c `epilog`, check_udp.c, check_misc.c `misc_check_child_thread`,
//! ipwrapper.c `update_svr_checker_state`):
//!
//! - A success, or a failure once `retry` retries have failed, ends a round: the next probe
//!   is `delay_loop` later. A failure with retries left is retried `delay_before_retry` later.
//! - While up (or before the first result), the failure that ends a round marks the server
//!   down; a success marks a down server up. A fresh checker starts with its retries used up
//!   (`retry_it = retry`), so its first failure is enough.
//! - While down: TCP_CHECK still retries (its epilog counts failures whatever the state),
//!   HTTP_GET/SSL_GET probe every max(delay_before_retry, delay_loop), UDP_CHECK and
//!   MISC_CHECK every delay_loop.
//! - Delays run from the result, except MISC_CHECK's, which run from the script's start.

use super::plan::{CheckSpec, Kind};
use super::{Millis, Outcome, Prior};

/// What one result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    /// Went up.
    Up,
    /// Went down.
    Down,
    /// The first result of a checker that started down was a failure: keepalived runs
    /// `notify_down` then, although nothing changed.
    ConfirmedDown,
    /// Still up, with another `misc_dynamic` weight.
    Weight,
}

#[derive(Debug, Clone)]
pub(crate) struct Checker {
    pub spec: CheckSpec,
    pub up: bool,
    has_run: bool,
    retry_it: u32,
    /// When the probe in flight started.
    pub in_flight: Option<Millis>,
    /// When the next probe is due (meaningless while one is in flight).
    pub next: Millis,
    /// `misc_dynamic` weight: `None` is the configured weight.
    pub weight: Option<u32>,
    pub last_error: Option<String>,
    /// When `up` last changed (or the checker started).
    pub since: Millis,
}

impl Checker {
    /// A checker starting at `now`, its first probe at `first` (`now` plus the warmup draw).
    /// `Prior::Unknown`: keepalived's start (down under alpha, else up; first failure is
    /// enough). `Prior::Up`/`Down`: what lbd shows, as if the checker had already run.
    pub(crate) fn new(spec: CheckSpec, now: Millis, first: Millis, prior: Prior) -> Checker {
        let (up, has_run) = match prior {
            Prior::Unknown => (!spec.alpha, false),
            Prior::Up => (true, true),
            Prior::Down => (false, true),
        };
        let retry_it = if has_run { 0 } else { spec.timing.retry };
        Checker {
            spec,
            up,
            has_run,
            retry_it,
            in_flight: None,
            next: first,
            weight: None,
            last_error: None,
            since: now,
        }
    }

    /// Records that a probe starts at `now`.
    pub(crate) fn start(&mut self, now: Millis) {
        self.in_flight = Some(now);
    }

    /// Applies the result of the probe in flight; schedules the next one.
    pub(crate) fn result(&mut self, now: Millis, outcome: Outcome) -> Change {
        let started = self.in_flight.take().unwrap_or(now);
        let t = self.spec.timing;
        let (change, delay) = match outcome {
            Outcome::Up | Outcome::UpWithWeight(_) => {
                let weight = match outcome {
                    Outcome::UpWithWeight(w) => Some(w),
                    _ => None,
                };
                let weight_changed = weight != self.weight;
                self.weight = weight;
                self.retry_it = 0;
                let change = if !self.up {
                    Change::Up
                } else if weight_changed {
                    Change::Weight
                } else {
                    Change::None
                };
                self.has_run = true;
                (change, t.delay_loop)
            }
            Outcome::Down(reason) => {
                self.last_error = Some(reason);
                if self.up || !self.has_run {
                    if self.retry_it >= t.retry {
                        let change = if self.up {
                            Change::Down
                        } else {
                            Change::ConfirmedDown
                        };
                        self.retry_it = 0;
                        self.has_run = true;
                        self.weight = None;
                        (change, t.delay_loop)
                    } else {
                        self.retry_it += 1;
                        (Change::None, t.delay_before_retry)
                    }
                } else {
                    let delay = match self.spec.kind {
                        Kind::Tcp if self.retry_it < t.retry => {
                            self.retry_it += 1;
                            t.delay_before_retry
                        }
                        Kind::Tcp => {
                            self.retry_it = 0;
                            t.delay_loop
                        }
                        Kind::Http | Kind::Ssl => t.delay_before_retry.max(t.delay_loop),
                        Kind::Udp | Kind::Misc => t.delay_loop,
                    };
                    (Change::None, delay)
                }
            }
        };
        match change {
            Change::Up => (self.up, self.since) = (true, now),
            Change::Down => (self.up, self.since) = (false, now),
            _ => {}
        }
        let base = if self.spec.kind == Kind::Misc {
            started
        } else {
            now
        };
        self.next = base.saturating_add(delay).max(now);
        change
    }
}
