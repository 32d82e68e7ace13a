//! The VRRP engine with a fake clock: exact takeover times, and engines wired to each other.

use std::net::Ipv4Addr;

use super::packet::{Packet, Repr};
use super::*;

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

fn conf(text: &str) -> kaconf::Config {
    kaconf::parse_str(text, "t.conf".as_ref()).unwrap_or_else(|e| panic!("{e}"))
}

/// One instance V on eth0, vrid 7, VIP 10.0.0.100, with `extra` lines.
fn inst(extra: &str) -> String {
    format!(
        "vrrp_instance V {{\n interface eth0\n virtual_router_id 7\n\
         virtual_ipaddress {{\n 10.0.0.100\n }}\n{extra}\n}}\n"
    )
}

fn engine(text: &str, ip: Ipv4Addr, now: Millis) -> Vrrp {
    Vrrp::new(&conf(text), now, &|_| Some(ip)).unwrap()
}

fn state(v: &Vrrp) -> State {
    v.status()[0].state
}

/// The adverts (src, dst, parsed) among `actions`.
fn adverts(actions: &[Action]) -> Vec<(Ipv4Addr, Ipv4Addr, Repr)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                src, dst, bytes, ..
            } => {
                let p = Packet::new_checked(&bytes[..]).unwrap();
                Some((*src, *dst, Repr::parse(&p, *src, *dst).unwrap()))
            }
            _ => None,
        })
        .collect()
}

/// Ticks `v` every millisecond in `from..to`; returns when it first sent an advert.
fn first_advert(v: &mut Vrrp, from: Millis, to: Millis) -> Option<Millis> {
    (from..to).find(|&t| !adverts(&v.tick(t)).is_empty())
}

/// A shared segment: every Send of one engine reaches the others (unless `cut` says that
/// engine is silent), ticked every millisecond. Returns the actions per engine.
struct Segment {
    nodes: Vec<(Vrrp, Ipv4Addr)>,
    /// Silenced engines' adverts are lost.
    cut: Vec<bool>,
    log: Vec<Vec<(Millis, Action)>>,
}

impl Segment {
    fn new(nodes: Vec<(Vrrp, Ipv4Addr)>) -> Segment {
        let n = nodes.len();
        Segment {
            nodes,
            cut: vec![false; n],
            log: vec![Vec::new(); n],
        }
    }

    fn run(&mut self, from: Millis, to: Millis) {
        for t in from..to {
            for i in 0..self.nodes.len() {
                let out = self.nodes[i].0.tick(t);
                self.deliver(t, i, out);
            }
        }
    }

    fn deliver(&mut self, t: Millis, from: usize, out: Vec<Action>) {
        let mut queue = vec![(from, out)];
        while let Some((i, out)) = queue.pop() {
            for a in out {
                if let Action::Send {
                    iface,
                    src,
                    dst,
                    bytes,
                } = &a
                {
                    if !self.cut[i] {
                        for j in (0..self.nodes.len()).filter(|&j| j != i) {
                            let more = self.nodes[j].0.received(t, iface, *src, *dst, 255, bytes);
                            queue.push((j, more));
                        }
                    }
                }
                self.log[i].push((t, a));
            }
        }
    }

    fn became_master(&self, i: usize) -> Vec<Millis> {
        self.log[i]
            .iter()
            .filter(|(_, a)| {
                matches!(
                    a,
                    Action::Notify {
                        state: State::Master,
                        ..
                    }
                )
            })
            .map(|(t, _)| *t)
            .collect()
    }
}

#[test]
fn backup_takes_over_after_master_down_with_v2_skew() {
    // 3 × 1 s + (256 − 100)/256 s = 3.609375 s: due at 3610 ms, not at 3609.
    let mut v = engine(&inst(" priority 100"), A_IP, 0);
    assert_eq!(state(&v), State::Backup);
    assert_eq!(v.next_deadline(), Some(3610));
    assert!(v.tick(3609).is_empty());
    let out = v.tick(3610);
    assert_eq!(state(&v), State::Master);
    let sent = adverts(&out);
    assert_eq!(sent.len(), 1);
    let (src, dst, r) = &sent[0];
    assert_eq!(
        (*src, *dst, r.vrid, r.priority, r.advert_centis),
        (A_IP, GROUP, 7, 100, 100)
    );
    assert_eq!(r.addrs, [Ipv4Addr::new(10, 0, 0, 100)]);
    // Advert first, then the addresses, GARPs, notify.
    assert!(matches!(out[0], Action::Send { .. }));
    assert!(matches!(&out[1], Action::Owned { owned: true, addrs, .. } if addrs.len() == 1));
    // Then one advert per second.
    assert_eq!(v.next_deadline(), Some(4610));
    assert_eq!(first_advert(&mut v, 3611, 6000), Some(4610));
    // `state MASTER` below 255 waits the same (keepalived 2.2.7, measured: 3.443 s for
    // priority 150 = 3.4140625 s + start-up).
    let mut m = engine(&inst(" state MASTER\n priority 150"), A_IP, 0);
    assert_eq!(first_advert(&mut m, 0, 5000), Some(3415));
}

#[test]
fn v3_counts_centiseconds() {
    // advert_int 0.1, priority 100: 3 × 100 ms + 156 × 100 ms / 256 = 360.9375 ms.
    let mut v = engine(&inst(" version 3\n advert_int 0.1"), A_IP, 1000);
    assert_eq!(first_advert(&mut v, 1000, 2000), Some(1361));
    let out = v.tick(1461);
    let sent = adverts(&out);
    assert_eq!(
        (sent[0].2.version, sent[0].2.advert_centis, sent[0].2.auth),
        (Version::V3, 10, None)
    );
    // keepalived 2.2.7 measured: 0.5 s, priority 100 → 1.8046875 s (+29 ms start-up).
    let mut v = engine(&inst(" version 3\n advert_int 0.5"), A_IP, 0);
    assert_eq!(first_advert(&mut v, 0, 3000), Some(1805));
}

#[test]
fn address_owner_is_master_at_once() {
    let mut v = engine(&inst(" state MASTER"), A_IP, 500);
    assert_eq!(v.next_deadline(), Some(500));
    let sent = adverts(&v.tick(500));
    assert_eq!(sent[0].2.priority, 255);
    assert_eq!(state(&v), State::Master);
}

#[test]
fn two_engines_elect_one_master_and_the_backup_takes_over_when_it_dies() {
    let a = engine(&inst(" priority 150"), A_IP, 0);
    let b = engine(&inst(" priority 100"), B_IP, 0);
    let mut seg = Segment::new(vec![(a, A_IP), (b, B_IP)]);
    seg.run(0, 10_000);
    // A: 3 + 106/256 s = 3414.0625 ms; B hears it before its own 3609.375 ms.
    assert_eq!(seg.became_master(0), [3415]);
    assert!(seg.became_master(1).is_empty());
    assert_eq!(seg.nodes[1].0.status()[0].master_ip, Some(A_IP));
    // A's adverts stop reaching B after its 9415 ms one: B takes over 3609.375 ms later.
    seg.cut[0] = true;
    seg.run(10_000, 20_000);
    assert_eq!(seg.became_master(1), [13_025]);
    // A comes back: B hears 150 > 100 and yields at once.
    seg.cut[0] = false;
    seg.run(20_000, 22_000);
    assert_eq!(state(&seg.nodes[1].0), State::Backup);
    assert_eq!(state(&seg.nodes[0].0), State::Master);
}

#[test]
fn a_higher_priority_backup_preempts_when_its_timer_runs_out() {
    let b = engine(&inst(" priority 100"), B_IP, 0);
    let mut seg = Segment::new(vec![(b, B_IP)]);
    seg.run(0, 20_000);
    assert_eq!(seg.became_master(0), [3610]);
    // A (150) starts at 20 s; B's lower adverts are discarded, not reset its timer.
    seg.nodes
        .push((engine(&inst(" priority 150"), A_IP, 20_000), A_IP));
    seg.cut.push(false);
    seg.log.push(Vec::new());
    seg.run(20_000, 30_000);
    assert_eq!(seg.became_master(1), [23_415]);
    assert_eq!(state(&seg.nodes[0].0), State::Backup);
    assert_eq!(
        seg.nodes[1].0.status()[0].counters.lower_priority_discarded,
        3
    );
}

#[test]
fn a_held_backup_preempts_only_once_released_but_takes_over_a_silent_master() {
    let b = engine(&inst(" priority 100"), B_IP, 0);
    let mut seg = Segment::new(vec![(b, B_IP)]);
    seg.run(0, 20_000);
    let mut a = engine(&inst(" priority 150"), A_IP, 20_000);
    assert!(a.hold_preemption(true), "holding is a change");
    assert!(!a.hold_preemption(true), "holding again is not");
    seg.nodes.push((a, A_IP));
    seg.cut.push(false);
    seg.log.push(Vec::new());
    seg.run(20_000, 40_000);
    assert!(seg.became_master(1).is_empty(), "bulk sync not done: the lower master stays");
    assert_eq!(state(&seg.nodes[0].0), State::Master);
    assert!(seg.nodes[1].0.hold_preemption(false));
    seg.run(40_000, 50_000);
    assert_eq!(state(&seg.nodes[1].0), State::Master, "released: it preempts");
    assert_eq!(state(&seg.nodes[0].0), State::Backup);
    // Held again, a master that goes silent is still taken over (failover is never held).
    seg.nodes[0].0.hold_preemption(true);
    seg.cut[1] = true;
    seg.run(50_000, 60_000);
    assert_eq!(state(&seg.nodes[0].0), State::Master);
}

#[test]
fn nopreempt_keeps_the_lower_master() {
    let b = engine(&inst(" priority 100"), B_IP, 0);
    let mut seg = Segment::new(vec![(b, B_IP)]);
    seg.run(0, 20_000);
    seg.nodes.push((
        engine(&inst(" priority 150\n nopreempt"), A_IP, 20_000),
        A_IP,
    ));
    seg.cut.push(false);
    seg.log.push(Vec::new());
    seg.run(20_000, 40_000);
    assert!(seg.became_master(1).is_empty());
    assert_eq!(state(&seg.nodes[0].0), State::Master);
}

#[test]
fn preempt_delay_counts_from_the_first_lower_advert() {
    let b = engine(&inst(" priority 100"), B_IP, 0);
    let mut seg = Segment::new(vec![(b, B_IP)]);
    seg.run(0, 20_000);
    // B adverts at 3610 + k s. A starts at 20 s, hears 20610 first: preempt at 25610. The
    // 21610..24610 adverts still count; 25610 is discarded; 24610 + 3414.0625 → 28025.
    seg.nodes.push((
        engine(&inst(" priority 150\n preempt_delay 5"), A_IP, 20_000),
        A_IP,
    ));
    seg.cut.push(false);
    seg.log.push(Vec::new());
    seg.run(20_000, 30_000);
    assert_eq!(seg.became_master(1), [28_025]);
}

#[test]
fn equal_priority_is_won_by_the_higher_address() {
    let a = engine(&inst(""), A_IP, 0);
    let b = engine(&inst(""), B_IP, 0);
    let mut seg = Segment::new(vec![(a, A_IP), (b, B_IP)]);
    seg.run(0, 3610);
    // Both time out at 3610 and become master before hearing each other; A hears B's equal
    // priority from a higher address and yields; B hears A's from a lower one and answers.
    let (out_a, out_b) = (seg.nodes[0].0.tick(3610), seg.nodes[1].0.tick(3610));
    seg.deliver(3610, 0, out_a);
    seg.deliver(3610, 1, out_b);
    seg.run(3611, 8000);
    assert_eq!(seg.became_master(0), [3610]);
    assert_eq!(seg.became_master(1), [3610]);
    assert_eq!(state(&seg.nodes[0].0), State::Backup);
    assert_eq!(state(&seg.nodes[1].0), State::Master);
    // With the clock order alone (A ticked first), A's advert holds B in backup: equal
    // priorities are compared by address only between masters (RFC 3768 6.4.3).
}

#[test]
fn priority_zero_on_shutdown_hands_over_after_the_skew_time() {
    let a = engine(&inst(" priority 150\n notify_stop /bin/stop"), A_IP, 0);
    let b = engine(&inst(" priority 100"), B_IP, 0);
    let mut seg = Segment::new(vec![(a, A_IP), (b, B_IP)]);
    seg.run(0, 10_000);
    let out = seg.nodes[0].0.shutdown(10_000);
    let sent = adverts(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2.priority, 0);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Owned { owned: false, .. })));
    assert!(out.iter().any(|a| matches!(a, Action::Notify { state: State::Stopped, commands, .. } if commands == &["/bin/stop"])));
    seg.deliver(10_000, 0, out);
    // (256 − 100)/256 s = 609.375 ms (keepalived 2.2.7 measured: 615.7 ms).
    seg.run(10_000, 12_000);
    assert_eq!(seg.became_master(1), [10_610]);
    assert_eq!(
        seg.nodes[1].0.status()[0].counters.priority_zero_received,
        1
    );
}

#[test]
fn a_wrong_password_is_ignored_and_counted() {
    let auth = |p: &str| format!(" authentication {{\n auth_type PASS\n auth_pass {p}\n }}");
    let a = engine(&inst(&format!(" priority 150\n{}", auth("one"))), A_IP, 0);
    let b = engine(&inst(&format!(" priority 100\n{}", auth("two"))), B_IP, 0);
    let mut seg = Segment::new(vec![(a, A_IP), (b, B_IP)]);
    seg.run(0, 5000);
    // B never heard a valid advert: both are master (keepalived does the same).
    assert_eq!(seg.became_master(1), [3610]);
    let c = seg.nodes[1].0.status()[0].counters;
    assert_eq!((c.auth_errors, c.adverts_received), (2, 0));
    assert_eq!(seg.nodes[0].0.status()[0].counters.auth_errors, 2);
}

#[test]
fn wrong_vrid_version_interval_and_ttl_are_ignored_and_counted() {
    let mut v = engine(&inst(""), A_IP, 0);
    let advert = |vrid, version, centis| {
        Repr {
            version,
            vrid,
            priority: 200,
            advert_centis: centis,
            auth: None,
            addrs: vec![Ipv4Addr::new(10, 0, 0, 100)],
        }
        .to_bytes(B_IP, GROUP)
    };
    let hear = |v: &mut Vrrp, bytes: &[u8], ttl| v.received(1000, "eth0", B_IP, GROUP, ttl, bytes);
    hear(&mut v, &advert(8, Version::V2, 100), 255);
    assert_eq!(v.unknown_vrid(), 1);
    hear(&mut v, &advert(7, Version::V3, 100), 255);
    hear(&mut v, &advert(7, Version::V2, 200), 255);
    hear(&mut v, &advert(7, Version::V2, 100), 64);
    hear(&mut v, &advert(7, Version::V2, 100)[..10], 255);
    let c = v.status()[0].counters;
    let seen = (
        c.version_errors,
        c.interval_errors,
        c.ttl_errors,
        c.packet_errors,
    );
    assert_eq!(seen, (1, 1, 1, 1));
    assert_eq!(c.adverts_received, 0);
    // None of them reset the timer.
    assert_eq!(v.next_deadline(), Some(3610));
    // A good one does: 1000 + 3609.375.
    hear(&mut v, &advert(7, Version::V2, 100), 255);
    assert_eq!(v.next_deadline(), Some(4610));
    assert_eq!(v.status()[0].master_ip, Some(B_IP));
}

fn synced() -> kaconf::Config {
    let mut cfg = conf(
        "vrrp_instance V1 {\n interface eth0\n virtual_router_id 1\n priority 100\n\
         virtual_ipaddress {\n 10.0.0.100\n }\n}\n\
         vrrp_instance V2 {\n interface eth1\n virtual_router_id 2\n priority 50\n\
         virtual_ipaddress {\n 10.1.0.100\n }\n}\n",
    );
    cfg.vrrp_sync_groups.push(kaconf::VrrpSyncGroup {
        name: "G".into(),
        group: vec!["V1".into(), "V2".into()],
        notify_master: Some("/bin/gm".into()),
        notify_backup: None,
        notify_fault: Some("/bin/gf".into()),
        notify_stop: None,
        notify: None,
        file: "t.conf".into(),
        line: 1,
    });
    cfg
}

#[test]
fn a_sync_group_moves_together() {
    let mut v = Vrrp::new(&synced(), 0, &|_| Some(A_IP)).unwrap();
    let states = |v: &Vrrp| v.status().iter().map(|s| s.state).collect::<Vec<_>>();
    // V1 times out first (3609.375 ms; V2 alone would wait 3804.6875 ms): both go master.
    let out = v.tick(3610);
    assert_eq!(states(&v), [State::Master, State::Master]);
    assert!(out.iter().any(|a| matches!(a, Action::Notify { instance, commands, .. } if instance == "G" && commands == &["/bin/gm"])));
    // A higher priority on V2 sends the whole group to backup.
    let higher = Repr {
        version: Version::V2,
        vrid: 2,
        priority: 200,
        advert_centis: 100,
        auth: None,
        addrs: vec![Ipv4Addr::new(10, 1, 0, 100)],
    };
    v.received(
        5000,
        "eth1",
        B_IP,
        GROUP,
        255,
        &higher.to_bytes(B_IP, GROUP),
    );
    assert_eq!(states(&v), [State::Backup, State::Backup]);
    // V2's link goes down: both FAULT; up again: both BACKUP, master again after V1's timer.
    let out = v.link(6000, "eth1", false);
    assert_eq!(states(&v), [State::Fault, State::Fault]);
    assert!(out.iter().any(
        |a| matches!(a, Action::Notify { instance, state: State::Fault, .. } if instance == "G")
    ));
    assert_eq!(v.next_deadline(), None);
    v.link(7000, "eth1", true);
    assert_eq!(states(&v), [State::Backup, State::Backup]);
    v.tick(10_609);
    assert_eq!(states(&v), [State::Backup, State::Backup]);
    v.tick(10_610);
    assert_eq!(states(&v), [State::Master, State::Master]);
}

#[test]
fn garp_schedule() {
    let text = inst(
        " state MASTER\n garp_master_repeat 2\n garp_master_delay 3\n\
         garp_master_refresh 10\n garp_master_refresh_repeat 1\n\
         virtual_ipaddress_excluded {\n 10.9.0.1 dev eth9\n }",
    );
    let mut v = engine(&text, A_IP, 0);
    let garps = |out: &[Action]| {
        out.iter()
            .filter_map(|a| match a {
                Action::Garp { iface, addrs } => Some((iface.clone(), addrs.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let eth0 = ("eth0".to_string(), vec![Ipv4Addr::new(10, 0, 0, 100)]);
    let eth9 = ("eth9".to_string(), vec![Ipv4Addr::new(10, 9, 0, 1)]);
    // At once: 2 of each (repeat), per interface.
    assert_eq!(
        garps(&v.tick(0)),
        [eth0.clone(), eth9.clone(), eth0.clone(), eth9.clone()]
    );
    let mut at = Vec::new();
    for t in 1..=25_000 {
        let n = garps(&v.tick(t)).len();
        if n > 0 {
            at.push((t, n));
        }
    }
    // garp_master_delay 3 s: a second burst of 2; then one every 10 s (refresh_repeat 1).
    assert_eq!(at, [(3000, 4), (10_000, 2), (20_000, 2)]);
}

#[test]
fn a_tracked_interface_down_is_a_fault_until_it_returns() {
    let text = inst(
        " state MASTER\n track_interface {\n eth1\n eth2 weight -60\n }\n notify_fault /bin/f",
    );
    let mut v = engine(&text, A_IP, 0);
    v.tick(0);
    assert_eq!(state(&v), State::Master);
    // Weighted: priority 255 is the owner's and does not move; a weight does for others.
    let mut w = engine(
        &inst(" priority 150\n track_interface {\n eth2 weight -60\n }"),
        A_IP,
        0,
    );
    w.link(0, "eth2", false);
    assert_eq!((state(&w), w.status()[0].priority), (State::Backup, 90));
    w.link(0, "eth2", true);
    assert_eq!(w.status()[0].priority, 150);
    // Unweighted: FAULT, with a priority-0 advert and the addresses released.
    let out = v.link(1000, "eth1", false);
    assert_eq!(state(&v), State::Fault);
    assert_eq!(adverts(&out)[0].2.priority, 0);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Owned { owned: false, .. })));
    assert!(out.iter().any(|a| matches!(a, Action::Notify { state: State::Fault, commands, .. } if commands == &["/bin/f"])));
    assert!(v.tick(5000).is_empty());
    // Back up: BACKUP with a new timer (owner: 3 s + 1/256 s = 3003.90625 ms).
    v.link(6000, "eth1", true);
    assert_eq!(state(&v), State::Backup);
    assert_eq!(v.next_deadline(), Some(9004));
    assert_eq!(v.status()[0].transitions, 3);
}

#[test]
fn fnat_local_addresses_move_with_the_instance() {
    let text = format!(
        "local_address_group LA {{\n 10.0.9.1-2\n}}\n\
         virtual_server 10.0.0.100 80 {{\n lb_algo rr\n lb_kind FNAT\n laddr_group_name LA\n}}\n{}",
        inst(" state MASTER\n unicast_peer {\n 10.0.0.2\n 10.0.0.3\n }")
    );
    let mut v = engine(&text, A_IP, 0);
    let out = v.tick(0);
    let owned = out.iter().find_map(|a| match a {
        Action::Owned {
            addrs, owned: true, ..
        } => Some(addrs.clone()),
        _ => None,
    });
    let ip = |a, b| Ipv4Addr::new(10, 0, a, b);
    assert_eq!(owned, Some(vec![ip(0, 100), ip(9, 1), ip(9, 2)]));
    // Unicast peers: one advert each, checksummed for its destination.
    let dsts: Vec<Ipv4Addr> = adverts(&out).iter().map(|(_, d, _)| *d).collect();
    assert_eq!(dsts, [ip(0, 2), ip(0, 3)]);
}

#[test]
fn construction_errors_are_clear() {
    let e = Vrrp::new(&conf(&inst("")), 0, &|_| None).unwrap_err();
    assert!(e.contains("eth0 has no IPv4 address"), "{e}");
}

/// A master that hears a lower-priority master (it was frozen, or the link was cut, and the
/// other director took over) answers with an advert and announces its addresses again, so the
/// segment's ARP caches stop pointing at the other director.
#[test]
fn a_master_hearing_a_lower_master_adverts_and_announces_again() {
    let high = inst(" state MASTER\n priority 150\n garp_master_repeat 2");
    let low = inst(" state BACKUP\n priority 100");
    let mut a = engine(&high, B_IP, 0);
    let mut b = engine(&low, A_IP, 0);
    // Both end up master on their own (never heard each other).
    let till = 5000;
    let mut b_advert = None;
    for t in 0..till {
        a.tick(t);
        if let Some((_, _, bytes)) = b.tick(t).into_iter().find_map(|x| match x {
            Action::Send { src, dst, bytes, .. } => Some((src, dst, bytes)),
            _ => None,
        }) {
            b_advert = Some(bytes);
        }
    }
    assert_eq!((state(&a), state(&b)), (State::Master, State::Master));
    let out = a.received(till, "eth0", A_IP, GROUP, 255, &b_advert.expect("b adverts as master"));
    let sent = adverts(&out);
    assert_eq!(sent.len(), 1, "one advert at once: {out:?}");
    assert_eq!(sent[0].2.priority, 150);
    let garps: Vec<_> = out.iter().filter(|x| matches!(x, Action::Garp { .. })).collect();
    assert_eq!(garps.len(), 2, "garp_master_repeat gratuitous ARPs: {out:?}");
    assert_eq!(state(&a), State::Master);
}
