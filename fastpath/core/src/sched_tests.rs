//! The schedulers, each against what LVS does.
use super::*;
use crate::flow::L4Proto;
use crate::service::{ForwardMode, ServiceKey};
use std::net::Ipv4Addr;

const VIP: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);

fn svc(sched: Scheduler, weights: &[u32]) -> Service {
    Service {
        real_servers: weights.iter().enumerate().map(|(i, w)| RealServer::new(Ipv4Addr::new(10, 0, 0, 1 + u8::try_from(i).unwrap()), 80, *w)).collect(),
        laddrs: vec![Ipv4Addr::new(10, 0, 0, 200)],
        ..Service::new(ServiceKey { vip: Ipv4Addr::new(1, 1, 1, 1), port: 80, proto: L4Proto::Tcp }, sched, ForwardMode::Fnat)
    }
}

fn picks(s: &Service, n: usize) -> Vec<usize> {
    let mut st = SchedState::default();
    (0..n).map(|_| st.pick(s, VIP, 0).unwrap()).collect()
}

#[test]
fn rr_cycles_and_skips_weight_zero() {
    assert_eq!(picks(&svc(Scheduler::Rr, &[1, 1, 1]), 6), vec![0, 1, 2, 0, 1, 2]);
    assert_eq!(picks(&svc(Scheduler::Rr, &[1, 0, 5]), 4), vec![0, 2, 0, 2]);
    assert_eq!(SchedState::default().pick(&svc(Scheduler::Rr, &[0, 0]), VIP, 0), None);
}

#[test]
fn wrr_distributes_by_weight_interleaved() {
    let p = picks(&svc(Scheduler::Wrr, &[4, 3, 2]), 9);
    let count = |i| p.iter().filter(|x| **x == i).count();
    assert_eq!((count(0), count(1), count(2)), (4, 3, 2));
    // LVS interleaving: the heaviest first, not all its picks in a row.
    assert_eq!(p, vec![0, 0, 1, 0, 1, 2, 0, 1, 2]);
    let p = picks(&svc(Scheduler::Wrr, &[100, 0, 50]), 300);
    assert_eq!(p.iter().filter(|x| **x == 0).count(), 200);
    assert_eq!(p.iter().filter(|x| **x == 1).count(), 0);
}

#[test]
fn lc_and_wlc_follow_connection_counts() {
    let s = svc(Scheduler::Lc, &[1, 1, 1]);
    let mut st = SchedState::default();
    let a = st.pick(&s, VIP, 0).unwrap();
    st.opened(a);
    let b = st.pick(&s, VIP, 0).unwrap();
    assert_ne!(a, b);
    st.opened(b);
    let c = st.pick(&s, VIP, 0).unwrap();
    assert!(c != a && c != b);
    st.opened(c);
    st.closed(b);
    assert_eq!(st.pick(&s, VIP, 0), Some(b));

    let s = svc(Scheduler::Wlc, &[3, 1]);
    let mut st = SchedState::default();
    let mut n = [0; 2];
    for _ in 0..40 {
        let i = st.pick(&s, VIP, 0).unwrap();
        st.opened(i);
        n[i] += 1;
    }
    assert_eq!(n, [30, 10]);
}

/// Opens `n` connections, each on the server the scheduler picks; the picks.
fn open(st: &mut SchedState, s: &Service, n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| {
            let i = st.pick(s, VIP, 0).unwrap();
            st.opened(i);
            i
        })
        .collect()
}

#[test]
fn sed_weighs_the_connection_about_to_open() {
    // Weights 1 and 3, both idle: (0+1)/1 vs (0+1)/3 → the heavier; then the ratio decides.
    let s = svc(Scheduler::Sed, &[1, 3]);
    let mut st = SchedState::default();
    assert_eq!(open(&mut st, &s, 4), vec![1, 1, 0, 1], "(1/1, 1/3) (1/1, 2/3) (1/1, 3/3: tie → first) (2/1, 3/3)");
    // wlc would have sent the first connection to the first server (0*3 < 0*1 is false).
    let mut wlc = SchedState::default();
    assert_eq!(open(&mut wlc, &svc(Scheduler::Wlc, &[1, 3]), 1), vec![0]);
}

#[test]
fn nq_sends_to_an_idle_server_first() {
    let s = svc(Scheduler::Nq, &[1, 10, 1]);
    let mut st = SchedState { conns: vec![0, 3, 0], ..SchedState::default() };
    assert_eq!(st.pick(&s, VIP, 0), Some(0), "idle beats a heavier busy server");
    st.conns = vec![1, 3, 0];
    assert_eq!(st.pick(&s, VIP, 0), Some(2));
    st.conns = vec![1, 3, 1];
    assert_eq!(st.pick(&s, VIP, 0), Some(1), "none idle: shortest expected delay (4/10 < 2/1)");
}

#[test]
fn fo_takes_the_heaviest_available_server() {
    let mut s = svc(Scheduler::Fo, &[5, 9, 9, 1]);
    let mut st = SchedState::default();
    assert_eq!(open(&mut st, &s, 3), vec![1, 1, 1], "first of the heaviest, however loaded");
    s.real_servers[1].weight = 0;
    assert_eq!(st.pick(&s, VIP, 0), Some(2), "fails over to the next heaviest");
    s.real_servers[2].weight = 0;
    assert_eq!(st.pick(&s, VIP, 0), Some(0));
}

#[test]
fn ovf_fills_the_heaviest_up_to_its_weight_then_overflows() {
    let s = svc(Scheduler::Ovf, &[2, 3, 1]);
    let mut st = SchedState::default();
    assert_eq!(open(&mut st, &s, 6), vec![1, 1, 1, 0, 0, 2]);
    assert_eq!(st.pick(&s, VIP, 0), None, "every server at its weight: nothing takes more");
    st.closed(1);
    assert_eq!(st.pick(&s, VIP, 0), Some(1));
}

#[test]
fn lblc_keeps_a_destination_on_its_server_until_it_is_overloaded() {
    let s = svc(Scheduler::Lblc, &[2, 2]);
    let mut st = SchedState::default();
    let other = Ipv4Addr::new(1, 1, 1, 2);
    let first = st.pick(&s, VIP, 0).unwrap();
    st.opened(first);
    // Another destination goes by least connections: the other server.
    assert_eq!(st.pick(&s, other, 0), Some(1 - first));
    for _ in 0..2 {
        assert_eq!(st.pick(&s, VIP, 0), Some(first), "sticks while active <= weight");
        st.opened(first);
    }
    // 3 active > weight 2, and the other server is idle (0 * 2 < 2): overloaded → moves.
    assert_eq!(st.pick(&s, VIP, 0), Some(1 - first));
    assert_eq!(st.pick(&s, VIP, 0), Some(1 - first), "and is remembered there");
    assert_eq!(st.locality_len(), 2);
}

#[test]
fn lblcr_grows_a_set_under_load_and_shrinks_it_after_a_quiet_day() {
    let s = svc(Scheduler::Lblcr, &[1, 1, 1]);
    let mut st = SchedState::default();
    let a = st.pick(&s, VIP, 0).unwrap();
    st.opened(a);
    st.opened(a);
    // a is overloaded (2 > 1 while others are idle): a second server joins the set.
    let b = st.pick(&s, VIP, 1).unwrap();
    assert_ne!(a, b);
    st.opened(b);
    // Both members are now candidates: b (1 active) is the least loaded of the set.
    assert_eq!(st.pick(&s, VIP, 2), Some(b));
    // A day later the busiest member (a) leaves the set; b stays.
    st.closed(b);
    assert_eq!(st.pick(&s, VIP, 2 + 24 * 3600 * 1000 + 1), Some(b));
    st.closed(a);
    st.closed(a);
    st.opened(b);
    st.opened(b);
    // a is idle now, but no longer in the set: b (overloaded) gets a new partner by least
    // connections, which is a or the third server, never b.
    let c = st.pick(&s, VIP, 3 + 24 * 3600 * 1000).unwrap();
    assert_ne!(c, b);
}

#[test]
fn locality_tables_are_bounded() {
    let s = svc(Scheduler::Lblc, &[1, 1]);
    let mut st = SchedState::default();
    for i in 0..(u32::try_from(LOCALITY_MAX).unwrap() + 500) {
        assert!(st.pick(&s, Ipv4Addr::from(0x0a00_0000 + i), 0).is_some());
    }
    assert_eq!(st.locality_len(), LOCALITY_MAX, "a full table of recent entries takes no more");
    // Seven minutes later the idle entries are pruned to make room.
    assert!(st.pick(&s, Ipv4Addr::new(192, 0, 2, 1), 7 * 60 * 1000).is_some());
    assert_eq!(st.locality_len(), 1);
}
