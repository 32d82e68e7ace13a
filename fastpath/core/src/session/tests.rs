//! Session table tests: both directions, limits, aging with a fake clock, bounded expiry, the
//! wheel, long timeouts, incremental connection counts, the size budget.

use super::*;

fn new(i: u16) -> NewSession {
    NewSession {
        proto: L4Proto::Tcp,
        mode: ForwardMode::Fnat,
        shared: None,
        client: (Ipv4Addr::new(1, 1, 1, 1), 1000 + i),
        vip: (Ipv4Addr::new(2, 2, 2, 2), 80),
        laddr: (Ipv4Addr::new(3, 3, 3, 3), 5000 + i),
        rs: (Ipv4Addr::new(4, 4, 4, 4), 8080),
        svc: 0,
        rs_idx: 0,
        generation: 1,
        client_port: 0,
        client_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
    }
}

#[test]
fn both_directions_find_the_same_session() {
    let mut t = SessionTable::new(10, 10, Timeouts::default());
    let id = t.insert(new(1), 0).unwrap();
    let s = t.get(id).clone();
    assert_eq!(t.find_client(&s.client_key()), Some(id));
    assert_eq!(t.find_rs(&s.rs_key()), Some(id));
    assert_eq!(s.state, ConnState::SynRecv);
    t.remove(id);
    assert_eq!(t.find_client(&s.client_key()), None);
    assert_eq!(t.find_rs(&s.rs_key()), None);
    assert!(t.is_empty());
}

#[test]
fn maximum_is_enforced_and_slots_reused() {
    let mut t = SessionTable::new(3, 1, Timeouts::default());
    let ids: Vec<u32> = (0..3).map(|i| t.insert(new(i), 0).unwrap()).collect();
    assert_eq!(t.insert(new(9), 0), Err(SessionFull::Full));
    t.remove(ids[1]);
    assert_eq!(t.insert(new(9), 0), Ok(ids[1]));
}

#[test]
fn aging_with_a_fake_clock_follows_state_timeouts() {
    let to = Timeouts { tcp_established: 100, tcp_syn_recv: 5, tcp_fin_wait: 20, tcp_close: 2, udp: 30 };
    let mut t = SessionTable::new(100, 100, to);
    let mut now = 1_000_000u64;
    t.expire(now, |_| {});
    let syn = t.insert(new(1), now).unwrap();
    let est = t.insert(new(2), now).unwrap();
    t.touch(est, ConnState::Established, now);
    let mut expired = Vec::new();
    now += 4_000;
    t.expire(now, |s| expired.push(s.client.1));
    assert!(expired.is_empty(), "nothing due before 5 s");
    now += 2_000;
    t.expire(now, |s| expired.push(s.client.1));
    assert_eq!(expired, vec![1001], "SYN_RECV expired after 5 s");
    assert_eq!(t.len(), 1);
    // Traffic refreshes: touching every 50 s keeps it alive well past 100 s.
    for _ in 0..5 {
        now += 50_000;
        t.touch(est, ConnState::Established, now);
        t.expire(now, |s| expired.push(s.client.1));
    }
    assert_eq!(t.len(), 1);
    t.touch(est, ConnState::FinWait, now);
    now += 19_000;
    t.expire(now, |s| expired.push(s.client.1));
    assert_eq!(t.len(), 1);
    now += 2_000;
    t.expire(now, |s| expired.push(s.client.1));
    assert_eq!(expired, vec![1001, 1002]);
    assert!(t.is_empty());
    let _ = syn;
}

#[test]
fn expiry_work_per_call_is_bounded_and_nothing_is_lost() {
    let to = Timeouts { tcp_syn_recv: 5, ..Timeouts::default() };
    let n = 3 * EXPIRE_BUDGET + 17;
    let mut t = SessionTable::new(n, n, to);
    let mut now = 50_000u64;
    t.expire(now, |_| {});
    for i in 0..n {
        let mut s = new(0);
        s.client.1 = u16::try_from(i % 60_000).unwrap();
        s.client.0 = Ipv4Addr::from(0x0100_0000 + u32::try_from(i).unwrap());
        t.insert(s, now).unwrap();
    }
    now += 6_000;
    let mut calls = 0;
    let mut total = 0;
    while !t.is_empty() {
        let k = t.expire(now, |_| {});
        assert!(k <= EXPIRE_BUDGET);
        total += k;
        calls += 1;
        assert!(calls < 100, "expiry makes progress");
    }
    assert_eq!(total, n);
    assert!(calls >= 4, "spread over several calls: {calls}");
}

#[test]
fn alternating_fin_and_rst_does_not_grow_the_wheel() {
    let to = Timeouts { tcp_fin_wait: 120, tcp_close: 10, ..Timeouts::default() };
    let mut t = SessionTable::new(10, 10, to);
    let mut now = 1_000_000u64;
    t.expire(now, |_| {});
    let id = t.insert(new(1), now).unwrap();
    for i in 0..20_000u64 {
        now += 5;
        let state = if i % 2 == 0 { ConnState::FinWait } else { ConnState::Close };
        t.touch(id, state, now);
        t.expire(now, |_| {});
    }
    let entries: usize = t.wheel.iter().map(Vec::len).sum();
    assert!(entries <= 4, "{entries} wheel entries for one session");
    assert_eq!(t.len(), 1);
    now += 10_001;
    t.expire(now, |_| {});
    assert!(t.is_empty(), "it still expires on time (CLOSE, 10 s)");
}

#[test]
fn timeouts_longer_than_the_wheel_are_honoured() {
    let to = Timeouts { tcp_established: 3000, ..Timeouts::default() };
    let mut t = SessionTable::new(10, 10, to);
    let mut now = 5_000u64;
    t.expire(now, |_| {});
    let id = t.insert(new(1), now).unwrap();
    t.touch(id, ConnState::Established, now);
    let mut gone = 0;
    while now < 5_000 + 2_999_000 {
        now += 7_000;
        gone += t.expire(now.min(5_000 + 2_999_000), |_| {});
    }
    assert_eq!(gone, 0, "still alive just before 3000 s");
    now = 5_000 + 3_001_000;
    assert_eq!(t.expire(now, |_| {}), 1);
}

#[test]
fn connection_counts_follow_every_change_and_equal_a_walk() {
    let mut t = SessionTable::new(500, 500, Timeouts::default());
    let mut x = 0x9e37_79b9u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut now, mut opened) = (0u64, 0u64);
    let mut ids: Vec<u32> = Vec::new();
    for i in 0..20_000u32 {
        now += next() % 300;
        match next() % 6 {
            0 | 1 => {
                let mut n = new(u16::try_from(i % 60_000).unwrap());
                n.rs.1 = 8080 + u16::try_from(next() % 3).unwrap();
                if let Ok(id) = t.insert(n, now) {
                    ids.push(id);
                    opened += 1;
                }
            }
            2 | 3 if !ids.is_empty() => {
                let id = ids[usize::try_from(next() % ids.len() as u64).unwrap()];
                if t.get(id).live() {
                    let st = [ConnState::Established, ConnState::FinWait, ConnState::Close, ConnState::SynRecv][usize::try_from(next() % 4).unwrap()];
                    t.touch(id, st, now);
                    t.count_in(id, 60);
                    t.count_out(id, 1500);
                }
            }
            4 if !ids.is_empty() => {
                let id = ids.swap_remove(usize::try_from(next() % ids.len() as u64).unwrap());
                t.remove(id);
            }
            _ => {
                t.expire(now, |_| {});
            }
        }
    }
    let (mut active, mut inactive) = (0u64, 0u64);
    for s in t.iter() {
        if s.state.is_active() {
            active += 1;
        } else {
            inactive += 1;
        }
    }
    let mut sum = crate::conncount::PairCount::default();
    for (_, c) in t.counts.iter() {
        sum.add(c);
    }
    assert_eq!((sum.active, sum.inactive), (active, inactive), "incremental counts equal a walk of the live sessions");
    assert_eq!(sum.conns, opened);
    assert_eq!(t.counts.iter().count(), 3, "one entry per (service, real server) pair");
    assert!(sum.pkts_in > 0 && sum.bytes_out == sum.pkts_out * 1500);
}

/// Bytes per session are a target (perf README): a field added here shows up in this test
/// and in the session-scale figures.
#[test]
fn a_session_stays_within_its_budget() {
    let n = std::mem::size_of::<Session>();
    assert!(n <= 104, "Session is {n} bytes");
}

fn splice(cookie: u32) -> Splice {
    Splice {
        waiting: false,
        client_isn: 1,
        cookie,
        delta: 0,
        opts: crate::synproxy::SynOpts { mss_idx: 0, wscale: None, sack: false },
        our_wscale: None,
        client_win: 0,
        to_rs_shift: (0, 0),
        to_client_shift: (0, 0),
        ttl: 64,
        retries_left: 0,
        storm_thresh: 0,
        dup_acks: 0,
        last_ack: 0,
    }
}

#[test]
fn splices_follow_their_sessions_and_their_slots_are_reused() {
    let mut t = SessionTable::new(10, 10, Timeouts::default());
    let (a, b) = (t.insert(new(1), 0).unwrap(), t.insert(new(2), 0).unwrap());
    assert_eq!((t.splice(a), t.get(a).has_splice()), (None, false));
    t.set_splice(a, splice(7));
    t.set_splice(b, splice(8));
    t.set_splice(a, splice(9));
    assert_eq!((t.splice(a).map(|s| s.cookie), t.splice(b).map(|s| s.cookie)), (Some(9), Some(8)));
    assert_eq!(t.splices.len(), 2, "updating a splice keeps its slot");
    t.remove(a);
    let c = t.insert(new(3), 0).unwrap();
    assert_eq!(c, a, "the slab entry is reused");
    assert_eq!(t.splice(c), None, "a new session does not inherit the old one's splice");
    t.set_splice(c, splice(10));
    assert_eq!(t.splices.len(), 2, "the freed slot is reused");
    assert_eq!((t.splice(c).map(|s| s.cookie), t.splice(b).map(|s| s.cookie)), (Some(10), Some(8)));
}

#[test]
fn expiry_is_kept_in_whole_seconds_rounded_up() {
    let mut t = SessionTable::new(10, 10, Timeouts { tcp_syn_recv: 5, ..Timeouts::default() });
    let id = t.insert(new(1), 1_001).unwrap();
    assert_eq!(t.get(id).expires_ms(), 7_000, "1.001 s + 5 s, rounded up to 7 s");
    let mut gone = 0;
    t.expire(6_999, |_| gone += 1);
    assert_eq!(gone, 0, "not before its second");
    t.expire(7_000, |_| gone += 1);
    assert_eq!(gone, 1, "at its second");
    // The flags of a removed session do not carry over to the next one in its slot.
    let id = t.insert(new(2), 7_000).unwrap();
    let s = t.get_mut(id);
    s.set_toa_sent();
    s.set_draining(true);
    s.set_adopted();
    assert!(s.toa_sent() && s.draining() && s.adopted());
    s.set_draining(false);
    assert!(!s.draining() && s.toa_sent());
    t.remove(id);
    let id = t.insert(new(3), 7_000).unwrap();
    let s = t.get(id);
    assert!(!s.toa_sent() && !s.draining() && !s.adopted() && s.live());
}

#[test]
fn deferred_real_server_entries_are_found_removed_and_settled() {
    let mut t = SessionTable::new(10, 10, Timeouts::default());
    t.defer_rs_side(true);
    let (a, b) = (t.insert(new(1), 0).unwrap(), t.insert(new(2), 0).unwrap());
    assert_eq!(t.len(), 2);
    let (ka, kb) = (t.get(a).rs_key(), t.get(b).rs_key());
    assert_eq!((t.find_rs(&ka), t.find_rs(&kb)), (Some(a), Some(b)), "pending entries are found");
    assert_eq!(t.index.len(), 2, "only the client sides are in the index yet");
    t.remove(b);
    assert_eq!((t.find_rs(&kb), t.len()), (None, 1));
    t.settle();
    assert_eq!((t.index.len(), t.find_rs(&ka), t.find_rs(&kb)), (2, Some(a), None), "b left nothing behind");
    t.remove(a);
    assert!(t.is_empty());
    // Beyond the bound, entries go in at once.
    let mut t = SessionTable::new(200, 200, Timeouts::default());
    t.defer_rs_side(true);
    for i in 0..100 {
        t.insert(new(i), 0).unwrap();
    }
    assert_eq!((t.pending.len(), t.index.len(), t.len()), (MAX_PENDING, 200 - MAX_PENDING, 100));
    t.expire(0, |_| {});
    assert_eq!((t.pending.len(), t.index.len()), (0, 200), "an expiry pass settles them");
}

#[test]
fn a_hint_serves_only_its_own_key() {
    let mut t = SessionTable::new(10, 10, Timeouts::default());
    let (a, b) = (t.insert(new(1), 0).unwrap(), t.insert(new(2), 0).unwrap());
    let (ka, kb) = (t.get(a).client_key(), t.get(b).client_key());
    t.set_hint(t.hint(&ka));
    assert_eq!((t.find_client(&ka), t.find_client(&kb)), (Some(a), Some(b)));
    assert_eq!(t.find_rs(&t.get(b).rs_key()), Some(b));
    // The hint's hash is what a lookup of its key uses: a wrong one misses.
    t.set_hint(Hint { key: ka.packed(), hash: t.hint(&ka).hash() ^ 1 });
    assert_eq!(t.find_client(&ka), None);
    assert_eq!(t.find_client(&kb), Some(b));
    t.set_hint(Hint::NONE);
    assert_eq!(t.find_client(&ka), Some(a));
}
