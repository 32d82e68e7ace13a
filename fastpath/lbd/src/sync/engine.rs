//! The I/O-free half of session sync: bulk sync as the backup asks for it (`BulkClient`) and as
//! the master serves it (`BulkServer`), driven by a millisecond clock and tested with a fake one.
//!
//! A backup daemon that starts asks the master for its whole session table (a bulk request,
//! repeated every `REQUEST_RETRY_MS` while nothing comes back); the master walks its workers'
//! tables a page at a time and ends with a marker carrying how many records it sent. The backup
//! is "ready" (lb-slowpath may preempt the master) once it has the marker, or when it gave up:
//! no answer within `GIVE_UP_WAITING_MS` (no master, or one that does not sync), or no marker
//! within `GIVE_UP_RECEIVING_MS` of the first request.

/// How often a waiting backup repeats its bulk request.
pub const REQUEST_RETRY_MS: u64 = 1000;
/// A backup that heard nothing for this long after its first request stops waiting.
pub const GIVE_UP_WAITING_MS: u64 = 10_000;
/// A backup receiving a bulk asks again when no record came for this long and no end marker.
pub const STALL_MS: u64 = 3000;
/// A bulk sync not finished this long after its first request is given up.
pub const GIVE_UP_RECEIVING_MS: u64 = 60_000;

/// Where a backup's bulk sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkState {
    /// No backup daemon (or it never asked).
    None,
    /// Asked, nothing received yet.
    Waiting,
    /// Records are arriving, no end marker yet.
    Receiving,
    /// The end marker arrived.
    Done,
    /// Given up (see the module comment); counts as ready.
    TimedOut,
}

impl BulkState {
    /// Its name in listings.
    pub fn name(self) -> &'static str {
        match self {
            BulkState::None => "none",
            BulkState::Waiting => "waiting",
            BulkState::Receiving => "receiving",
            BulkState::Done => "done",
            BulkState::TimedOut => "timed_out",
        }
    }
}

/// The backup's side of a bulk sync.
#[derive(Debug, Clone)]
pub struct BulkClient {
    pub state: BulkState,
    pub nonce: u32,
    first_request_ms: u64,
    last_request_ms: u64,
    last_record_ms: u64,
    /// Records received since the request.
    pub received: u64,
    /// What the master's end marker said it sent.
    pub expected: u64,
}

impl Default for BulkClient {
    fn default() -> Self {
        BulkClient { state: BulkState::None, nonce: 0, first_request_ms: 0, last_request_ms: 0, last_record_ms: 0, received: 0, expected: 0 }
    }
}

impl BulkClient {
    /// Starts asking (a backup daemon came up); returns the nonce to send in the request.
    pub fn start(&mut self, now_ms: u64, nonce: u32) -> u32 {
        *self = BulkClient { state: BulkState::Waiting, nonce, first_request_ms: now_ms, last_request_ms: now_ms, last_record_ms: now_ms, received: 0, expected: 0 };
        nonce
    }

    /// The backup daemon stopped (or became a master): nothing to wait for. A finished bulk
    /// stays listed (`done` with its counts) until the next one starts; an unfinished one is
    /// abandoned.
    pub fn stop(&mut self) {
        if matches!(self.state, BulkState::Waiting | BulkState::Receiving) {
            *self = BulkClient::default();
        }
    }

    /// `n` records arrived.
    pub fn on_records(&mut self, n: u64, now_ms: u64) {
        if n == 0 {
            return;
        }
        if matches!(self.state, BulkState::Waiting | BulkState::Receiving) {
            self.state = BulkState::Receiving;
            self.received += n;
            self.last_record_ms = now_ms;
        }
    }

    /// A master's end marker arrived. Markers for another nonce (another backup's bulk) are
    /// ignored.
    pub fn on_end(&mut self, nonce: u32, conns: u64) {
        if nonce == self.nonce && matches!(self.state, BulkState::Waiting | BulkState::Receiving) {
            self.state = BulkState::Done;
            self.expected = conns;
        }
    }

    /// Time passes: `Some(nonce)` when the request must be sent (again).
    pub fn tick(&mut self, now_ms: u64) -> Option<u32> {
        match self.state {
            BulkState::Waiting => {
                if now_ms.saturating_sub(self.first_request_ms) >= GIVE_UP_WAITING_MS {
                    self.state = BulkState::TimedOut;
                    return None;
                }
                if now_ms.saturating_sub(self.last_request_ms) >= REQUEST_RETRY_MS {
                    self.last_request_ms = now_ms;
                    return Some(self.nonce);
                }
                None
            }
            BulkState::Receiving => {
                if now_ms.saturating_sub(self.first_request_ms) >= GIVE_UP_RECEIVING_MS {
                    self.state = BulkState::TimedOut;
                    return None;
                }
                let quiet = now_ms.saturating_sub(self.last_record_ms.max(self.last_request_ms));
                if quiet >= STALL_MS {
                    // The end marker (or the tail of the bulk) was lost: ask for it all again.
                    self.last_request_ms = now_ms;
                    return Some(self.nonce);
                }
                None
            }
            BulkState::None | BulkState::Done | BulkState::TimedOut => None,
        }
    }

    /// Whether this director may take the master role by preemption.
    pub fn ready(&self) -> bool {
        matches!(self.state, BulkState::None | BulkState::Done | BulkState::TimedOut)
    }
}

/// What the master asks of its workers next while serving a bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub worker: u16,
    pub cursor: u32,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    nonce: u32,
    page: Page,
    sent: u64,
}

/// Shortest time between the starts of two walks: a request cannot make the master flood the
/// segment with its table more than once a second.
pub const MIN_WALK_INTERVAL_MS: u64 = 1000;

/// The master's side: one walk over every worker's table at a time; a request that arrives
/// during a walk is served by the next one (at most one waits).
#[derive(Debug, Clone, Default)]
pub struct BulkServer {
    job: Option<Job>,
    pending: Option<u32>,
    last_start_ms: Option<u64>,
    /// Bulk syncs finished, and the records sent in them.
    pub served: u64,
    pub sent_total: u64,
}

impl BulkServer {
    /// A bulk request arrived. A retry of the running walk's request changes nothing; another
    /// one waits for the next walk (the latest one wins).
    pub fn on_request(&mut self, nonce: u32) {
        if self.job.is_some_and(|j| j.nonce == nonce) {
            return;
        }
        self.pending = Some(nonce);
    }

    /// The page to ask for next, if a walk is running or may start now.
    pub fn next_page(&mut self, now_ms: u64) -> Option<Page> {
        if self.job.is_none() {
            let may = self.last_start_ms.is_none_or(|t| now_ms.saturating_sub(t) >= MIN_WALK_INTERVAL_MS);
            if let (true, Some(nonce)) = (may, self.pending) {
                self.pending = None;
                self.last_start_ms = Some(now_ms);
                self.job = Some(Job { nonce, page: Page { worker: 0, cursor: 0 }, sent: 0 });
            }
        }
        self.job.map(|j| j.page)
    }

    /// A page came back with `records` records sent; `next` is where that worker's walk goes
    /// on. Returns `Some((nonce, total))` when the walk is over (send the end marker).
    pub fn on_page(&mut self, records: u64, next: Option<u32>, workers: u16) -> Option<(u32, u64)> {
        let j = self.job.as_mut()?;
        j.sent += records;
        match next {
            Some(cursor) => j.page.cursor = cursor,
            None => {
                j.page = Page { worker: j.page.worker + 1, cursor: 0 };
            }
        }
        if j.page.worker >= workers {
            let (nonce, sent) = (j.nonce, j.sent);
            self.job = None;
            self.served += 1;
            self.sent_total += sent;
            return Some((nonce, sent));
        }
        None
    }

    /// The master role ended: drop the walk and what waited.
    pub fn stop(&mut self) {
        self.job = None;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_asks_until_answered_and_is_ready_at_the_end_marker() {
        let mut c = BulkClient::default();
        assert!(c.ready(), "no backup daemon: ready");
        let mut now = 5_000;
        assert_eq!(c.start(now, 77), 77);
        assert!(!c.ready());
        assert_eq!(c.tick(now + 999), None);
        now += 1000;
        assert_eq!(c.tick(now), Some(77), "asks again after a second of silence");
        assert_eq!(c.tick(now + 500), None);
        c.on_records(30, now + 600);
        assert_eq!(c.state, BulkState::Receiving);
        c.on_end(78, 30);
        assert_eq!(c.state, BulkState::Receiving, "another backup's marker is not ours");
        c.on_records(20, now + 700);
        c.on_end(77, 50);
        assert_eq!(c.state, BulkState::Done);
        assert_eq!((c.received, c.expected), (50, 50));
        assert!(c.ready());
        assert_eq!(c.tick(now + 100_000), None, "done stays done");
        c.on_records(5, now + 100_001);
        assert_eq!(c.received, 50, "live records after the bulk are not bulk progress");
        c.stop();
        assert_eq!((c.state, c.received, c.expected), (BulkState::Done, 50, 50), "the last bulk stays listed");
        assert!(c.ready());
        c.start(now + 200_000, 78);
        c.stop();
        assert_eq!(c.state, BulkState::None, "an unfinished bulk is abandoned");
        assert!(c.ready());
    }

    #[test]
    fn a_backup_without_a_master_gives_up_and_counts_as_ready() {
        let mut c = BulkClient::default();
        c.start(0, 1);
        let mut sent = 0;
        let mut now = 0;
        while now < GIVE_UP_WAITING_MS + 5000 {
            now += 100;
            if c.tick(now).is_some() {
                sent += 1;
            }
        }
        assert_eq!(c.state, BulkState::TimedOut);
        assert!(c.ready());
        assert_eq!(sent, 9, "one request a second until the tenth second");
    }

    #[test]
    fn a_stalled_bulk_is_asked_again_and_finally_given_up() {
        let mut c = BulkClient::default();
        c.start(0, 9);
        c.on_records(10, 200);
        assert_eq!(c.tick(200 + STALL_MS - 1), None);
        assert_eq!(c.tick(200 + STALL_MS), Some(9), "marker lost: ask again");
        assert_eq!(c.tick(200 + STALL_MS + 10), None, "not at once again");
        c.on_records(1, GIVE_UP_RECEIVING_MS - 1);
        assert_eq!(c.tick(GIVE_UP_RECEIVING_MS), None);
        assert_eq!(c.state, BulkState::TimedOut);
        c.on_end(9, 11);
        assert_eq!(c.state, BulkState::TimedOut, "a late marker changes nothing");
    }

    #[test]
    fn the_master_walks_every_worker_page_by_page_one_walk_at_a_time() {
        let mut s = BulkServer::default();
        assert_eq!(s.next_page(0), None);
        s.on_request(5);
        assert_eq!(s.next_page(0), Some(Page { worker: 0, cursor: 0 }));
        assert_eq!(s.on_page(100, Some(130), 3), None);
        assert_eq!(s.next_page(1), Some(Page { worker: 0, cursor: 130 }));
        s.on_request(5);
        assert_eq!(s.next_page(2), Some(Page { worker: 0, cursor: 130 }), "a retry does not restart the walk");
        s.on_request(6);
        s.on_request(7);
        assert_eq!(s.next_page(3), Some(Page { worker: 0, cursor: 130 }), "another request waits for this walk");
        assert_eq!(s.on_page(7, None, 3), None);
        assert_eq!(s.next_page(4), Some(Page { worker: 1, cursor: 0 }));
        assert_eq!(s.on_page(0, None, 3), None);
        assert_eq!(s.on_page(3, None, 3), Some((5, 110)));
        assert_eq!((s.served, s.sent_total), (1, 110));
        assert_eq!(s.next_page(500), None, "the next walk waits for a second since the last start");
        assert_eq!(s.next_page(1000), Some(Page { worker: 0, cursor: 0 }));
        assert_eq!(s.on_page(4, None, 1), Some((7, 4)), "the latest waiting request is served");
        assert_eq!(s.next_page(5000), None, "nothing waits");
        s.on_request(8);
        s.stop();
        assert_eq!(s.next_page(9000), None, "a stopped master serves nothing");
    }
}
