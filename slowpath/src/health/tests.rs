//! The engine with a fake clock: exact timings and events, computed by hand.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use kaconf::Protocol;

use super::*;

fn conf(text: &str) -> kaconf::Config {
    kaconf::parse_str(text, Path::new("t.conf")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn unknown(_: &RsKey) -> Prior {
    Prior::Unknown
}

fn vs_key(port: u16) -> VsKey {
    VsKey {
        vip: Ipv4Addr::new(10, 0, 0, 1),
        port,
        protocol: Protocol::Tcp,
    }
}

fn rs_key(vs_port: u16, last: u8, port: u16) -> RsKey {
    RsKey {
        vs: vs_key(vs_port),
        ip: Ipv4Addr::new(10, 0, 1, last),
        port,
    }
}

fn addr(last: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, last), port)
}

/// The probes due at `now`, by target address.
fn due(e: &mut Engine, now: Millis) -> HashMap<SocketAddrV4, CheckId> {
    e.due(now)
        .into_iter()
        .map(|(id, p)| match p {
            Probe::Tcp { target, .. } | Probe::Http { target, .. } | Probe::Udp { target, .. } => {
                (target, id)
            }
            Probe::Misc { .. } => (addr(0, 0), id),
        })
        .collect()
}

fn down(reason: &str) -> Outcome {
    Outcome::Down(reason.into())
}

fn server(rs: RsKey, up: bool, reason: &str, notify: Option<&str>) -> Event {
    Event::Server {
        rs,
        up,
        weight: None,
        inhibit: false,
        reason: reason.into(),
        notify: notify.map(Into::into),
    }
}

fn quorum(vs: VsKey, up: bool, command: Option<&str>) -> Event {
    Event::Quorum {
        vs,
        up,
        command: command.map(Into::into),
    }
}

const RETRY: &str = "virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind DR
    delay_loop 10
    real_server 10.0.1.1 80 {
        TCP_CHECK {
            connect_timeout 2
            retry 2
            delay_before_retry 3
            warmup 0
        }
    }
}";

#[test]
fn down_after_retry_plus_one_failures_then_one_success_brings_it_up() {
    let mut e = Engine::new(&conf(RETRY), 0, 1, &unknown);
    let rs = rs_key(80, 1, 80);
    assert_eq!(e.next_deadline(), Some(0));
    let id = due(&mut e, 0)[&addr(1, 80)];
    // The first success confirms the server up: nothing to say. Next round 10 s later.
    assert_eq!(e.result(50, id, Outcome::Up), []);
    assert_eq!(e.next_deadline(), Some(10_050));
    assert!(e.due(10_049).is_empty());
    assert_eq!(due(&mut e, 10_050).len(), 1);
    // Failure 1 (a 2 s timeout): retried 3 s later.
    assert_eq!(e.result(12_050, id, down("timeout")), []);
    assert_eq!(e.next_deadline(), Some(15_050));
    due(&mut e, 15_050);
    assert_eq!(e.result(17_050, id, down("timeout")), []);
    assert_eq!(e.next_deadline(), Some(20_050));
    due(&mut e, 20_050);
    // Failure 3 = retry + 1: down, and the quorum (1) is lost.
    let reason = "connect 10.0.1.1:80: timeout";
    assert_eq!(
        e.result(22_050, id, down(reason)),
        [
            server(rs, false, reason, None),
            quorum(vs_key(80), false, None)
        ]
    );
    assert_eq!(e.next_deadline(), Some(32_050));
    let snap = &e.snapshot()[0];
    assert_eq!(
        (snap.up, snap.since, snap.last_error.as_deref()),
        (false, 22_050, Some(reason))
    );
    // TCP_CHECK retries while down too; one success brings the server back.
    due(&mut e, 32_050);
    assert_eq!(e.result(32_060, id, down("refused")), []);
    assert_eq!(e.next_deadline(), Some(35_060));
    due(&mut e, 35_060);
    assert_eq!(
        e.result(35_070, id, Outcome::Up),
        [
            server(rs, true, "TCP_CHECK passed", None),
            quorum(vs_key(80), true, None)
        ]
    );
    assert_eq!(e.next_deadline(), Some(45_070));
}

#[test]
fn a_fresh_checker_needs_one_failure_and_ignores_stray_results() {
    let mut e = Engine::new(&conf(&RETRY.replace("retry 2", "retry 3")), 0, 1, &unknown);
    let id = due(&mut e, 0)[&addr(1, 80)];
    // keepalived starts a checker with its retries used up: the first failure is enough.
    let events = e.result(5, id, down("refused"));
    assert_eq!(events[0], server(rs_key(80, 1, 80), false, "refused", None));
    // No probe in flight, or an unknown check: ignored.
    assert_eq!(e.result(6, id, Outcome::Up), []);
    assert_eq!(e.result(6, CheckId(99), Outcome::Up), []);
}

const ALPHA: &str = "virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind DR
    delay_loop 5
    alpha
    quorum_up \"/bin/q up\"
    quorum_down \"/bin/q down\"
    real_server 10.0.1.1 80 {
        notify_up \"/bin/n up\"
        notify_down \"/bin/n down\"
        TCP_CHECK {
            warmup 0
        }
    }
    real_server 10.0.1.2 80 {
        notify_down \"/bin/n2 down\"
        TCP_CHECK {
            warmup 0
        }
    }
}";

#[test]
fn alpha_servers_start_down_and_notify() {
    let mut e = Engine::new(&conf(ALPHA), 0, 1, &unknown);
    assert!(e.snapshot().iter().all(|s| !s.up));
    assert_eq!(e.quorum_snapshot(), [(vs_key(80), false)]);
    assert_eq!(e.take_events(), []);
    let ids = due(&mut e, 0);
    assert_eq!(
        e.result(100, ids[&addr(1, 80)], Outcome::Up),
        [
            server(
                rs_key(80, 1, 80),
                true,
                "TCP_CHECK passed",
                Some("/bin/n up")
            ),
            quorum(vs_key(80), true, Some("/bin/q up")),
        ]
    );
    // keepalived runs notify_down when an alpha server's first check fails.
    assert_eq!(
        e.result(100, ids[&addr(2, 80)], down("refused")),
        [server(
            rs_key(80, 2, 80),
            false,
            "refused",
            Some("/bin/n2 down")
        )]
    );
    assert_eq!(e.next_deadline(), Some(5_100));
}

#[test]
fn first_probes_spread_over_warmup_deterministically() {
    let mut text =
        String::from("virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n delay_loop 1\n");
    for i in 0..10_000u32 {
        let ip = Ipv4Addr::from(0x0a01_0000 + i);
        text.push_str(&format!(
            " real_server {ip} 80 {{\n  TCP_CHECK {{\n  }}\n }}\n"
        ));
    }
    text.push_str("}\n");
    let cfg = conf(&text);
    let schedule = |seed: u64| {
        let mut e = Engine::new(&cfg, 0, seed, &unknown);
        let mut per_ms = vec![0u32; 1001];
        for (t, slot) in per_ms.iter_mut().enumerate() {
            *slot = u32::try_from(e.due(t as Millis).len()).unwrap();
        }
        assert_eq!(
            e.due(5_000).len(),
            0,
            "every first probe within warmup = delay_loop"
        );
        per_ms
    };
    let a = schedule(7);
    assert_eq!(a.iter().sum::<u32>(), 10_000);
    // 10 a millisecond on average: none near lockstep, and both halves used.
    assert!(
        a.iter().all(|&n| n <= 30),
        "max {}",
        a.iter().max().unwrap()
    );
    let first_half: u32 = a[..500].iter().sum();
    assert!((4_500..=5_500).contains(&first_half), "{first_half}");
    assert_eq!(schedule(7), a, "same seed, same schedule");
    assert_ne!(schedule(8), a);
}

#[test]
fn quorum_hysteresis_thresholds_and_commands() {
    let mut text = String::from(
        "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n quorum 3\n hysteresis 1\n\
         quorum_up up.sh\n quorum_down down.sh\n",
    );
    for i in 1..=4 {
        text.push_str(&format!(
            " real_server 10.0.1.{i} 80 {{\n TCP_CHECK {{\n retry 0\n warmup 0\n }}\n }}\n"
        ));
    }
    text.push('}');
    let mut e = Engine::new(&conf(&text), 0, 1, &unknown);
    // 4 >= quorum + hysteresis: up at start.
    assert_eq!(e.quorum_snapshot(), [(vs_key(80), true)]);
    let ids = due(&mut e, 0);
    let id = |i: u8| ids[&addr(i, 80)];
    let only_servers = |ev: Vec<Event>| ev.iter().all(|e| matches!(e, Event::Server { .. }));
    // Stays up at 3 and at 2 (down only below quorum - hysteresis = 2).
    assert!(only_servers(e.result(1, id(1), down("x"))));
    assert!(only_servers(e.result(1, id(2), down("x"))));
    let ev = e.result(1, id(3), down("x"));
    assert_eq!(ev[1], quorum(vs_key(80), false, Some("down.sh")));
    // Back up only at quorum + hysteresis = 4.
    // Rounds restart 60 s (the default delay_loop) after each result at 1 ms.
    assert_eq!(due(&mut e, 60_001).len(), 3);
    assert!(only_servers(e.result(60_002, id(1), Outcome::Up)));
    assert!(only_servers(e.result(60_002, id(2), Outcome::Up)));
    let ev = e.result(60_002, id(3), Outcome::Up);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1], quorum(vs_key(80), true, Some("up.sh")));
}

#[test]
fn sorry_server_quorum_down_at_start_unless_seeded() {
    let text = ALPHA.replace("alpha\n", "alpha\n    sorry_server 10.0.9.9 80\n");
    let mut e = Engine::new(&conf(&text), 0, 1, &unknown);
    assert_eq!(
        e.take_events(),
        [quorum(vs_key(80), false, Some("/bin/q down"))]
    );
    assert_eq!(e.take_events(), []);
    // After a slowpath restart lbd already serves from the sorry server.
    let mut e = Engine::new(&conf(&text), 0, 1, &|_| Prior::Down);
    assert_eq!(e.take_events(), []);
}

#[test]
fn inhibit_on_failure_is_carried_in_events_and_snapshot() {
    let text = RETRY.replace(
        "real_server 10.0.1.1 80 {",
        "real_server 10.0.1.1 80 {\n inhibit_on_failure",
    );
    let mut e = Engine::new(&conf(&text), 0, 1, &unknown);
    assert!(e.snapshot()[0].inhibit);
    let id = due(&mut e, 0)[&addr(1, 80)];
    let ev = e.result(1, id, down("refused"));
    let Event::Server { inhibit, up, .. } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(*inhibit && !*up);
}

#[test]
fn checker_merge_shares_one_probe_and_checker_off_has_none() {
    let block = |port: u16, extra: &str| {
        format!(
            "virtual_server 10.0.0.1 {port} {{\n lb_algo rr\n lb_kind DR\n {extra}\n\
             real_server 10.0.1.1 80 {{\n TCP_CHECK {{\n warmup 0\n }}\n }}\n}}\n"
        )
    };
    let text = block(80, "checker_merge")
        + &block(81, "checker_merge")
        + &block(82, "")
        + &block(83, "checker_off");
    let mut e = Engine::new(&conf(&text), 0, 1, &unknown);
    let probes = e.due(0);
    // One merged probe for 80 and 81, one for 82, none for 83.
    assert_eq!(probes.len(), 2);
    let ev = e.result(3, probes[0].0, down("refused"));
    assert_eq!(
        ev,
        [
            server(rs_key(80, 1, 80), false, "refused", None),
            server(rs_key(81, 1, 80), false, "refused", None),
            quorum(vs_key(80), false, None),
            quorum(vs_key(81), false, None),
        ]
    );
    let snap = e.snapshot();
    let ups: Vec<bool> = snap.iter().map(|s| s.up).collect();
    assert_eq!(ups, [false, false, true, true]);
    assert_eq!(snap[3].checker, None);
    assert_eq!(snap[2].checker, Some("TCP_CHECK"));
}

#[test]
fn misc_dynamic_weights_timing_and_quorum() {
    let text = "virtual_server 10.0.0.1 80 {
        lb_algo rr
        lb_kind DR
        delay_loop 10
        quorum 8
        quorum_up up.sh
        real_server 10.0.1.1 80 {
            weight 5
            MISC_CHECK {
                misc_path \"/bin/chk 10.0.1.1\"
                misc_dynamic
                warmup 0
            }
        }
    }";
    let mut e = Engine::new(&conf(text), 0, 1, &unknown);
    assert_eq!(e.quorum_snapshot(), [(vs_key(80), false)]);
    let probes = e.due(0);
    assert_eq!(
        probes[0].1,
        Probe::Misc {
            command: "/bin/chk 10.0.1.1".into(),
            timeout: Duration::from_secs(10),
            dynamic: true
        }
    );
    let id = probes[0].0;
    let rs = rs_key(80, 1, 80);
    let weighted = |w: Option<u32>, reason: &str| Event::Server {
        rs,
        up: true,
        weight: w,
        inhibit: false,
        reason: reason.into(),
        notify: None,
    };
    // Exit 12: up with weight 10; 10 >= quorum 8.
    assert_eq!(
        e.result(4_000, id, Outcome::UpWithWeight(10)),
        [
            weighted(Some(10), "MISC_CHECK: misc_dynamic weight 10"),
            quorum(vs_key(80), true, Some("up.sh"))
        ]
    );
    // MISC_CHECK's next run counts from the script's start.
    assert_eq!(e.next_deadline(), Some(10_000));
    assert_eq!(e.snapshot()[0].weight, Some(10));
    e.due(10_000);
    assert_eq!(e.result(10_100, id, Outcome::UpWithWeight(10)), []);
    e.due(20_000);
    // Exit 0: the configured weight (5) again; the quorum (8 - 0) is lost.
    assert_eq!(
        e.result(20_100, id, Outcome::Up),
        [
            weighted(None, "MISC_CHECK: configured weight"),
            quorum(vs_key(80), false, None)
        ]
    );
    e.due(30_000);
    // MISC_CHECK's retry default is 0: one exit 1 is down.
    assert_eq!(
        e.result(30_100, id, down("exit 1")),
        [server(rs, false, "exit 1", None)]
    );
}

#[test]
fn seeding_with_what_lbd_shows() {
    let prior = |rs: &RsKey| match rs.ip.octets()[3] {
        1 => Prior::Up,
        _ => Prior::Down,
    };
    // Under alpha, a server lbd shows up stays up; retry 1 means two failures to go down.
    let mut e = Engine::new(&conf(ALPHA), 0, 1, &prior);
    let ups: Vec<bool> = e.snapshot().iter().map(|s| s.up).collect();
    assert_eq!(ups, [true, false]);
    assert_eq!(e.quorum_snapshot(), [(vs_key(80), true)]);
    let ids = due(&mut e, 0);
    assert_eq!(e.result(10, ids[&addr(1, 80)], down("refused")), []);
    // A server lbd shows down stays down silently (no second notify_down).
    assert_eq!(e.result(10, ids[&addr(2, 80)], down("refused")), []);
    assert_eq!(e.next_deadline(), Some(1_010));
    due(&mut e, 1_010);
    let ev = e.result(1_020, ids[&addr(1, 80)], down("refused"));
    assert_eq!(
        ev[0],
        server(rs_key(80, 1, 80), false, "refused", Some("/bin/n down"))
    );
}

#[test]
fn probes_carry_resolved_addresses() {
    let text = RETRY.replace(
        "warmup 0",
        "warmup 0\n connect_ip 10.0.2.1\n connect_port 8080\n bindto 10.0.3.1",
    );
    let mut e = Engine::new(&conf(&text), 0, 1, &unknown);
    let probes = e.due(0);
    assert_eq!(
        probes[0].1,
        Probe::Tcp {
            target: "10.0.2.1:8080".parse().unwrap(),
            bind: Some("10.0.3.1:0".parse().unwrap()),
            timeout: Duration::from_secs(2),
        }
    );
}

#[test]
fn reconfigure_keeps_unchanged_checks() {
    let two = ALPHA.replace("    alpha\n", "");
    let mut e = Engine::new(&conf(&two), 0, 1, &unknown);
    let ids = due(&mut e, 0);
    e.result(10, ids[&addr(1, 80)], down("refused"));
    // Server 2's first probe is still in flight; server 1's second starts at 5 010.
    assert_eq!(due(&mut e, 5_010).len(), 1);
    let in_flight = ids[&addr(2, 80)];
    // Reload: server 1 unchanged, server 2 dropped, server 3 new (with alpha on it).
    let next = two.replace(
        "    real_server 10.0.1.2 80 {\n        notify_down \"/bin/n2 down\"\n        TCP_CHECK {\n            warmup 0\n        }\n    }",
        "    real_server 10.0.1.3 80 {\n        alpha\n        TCP_CHECK {\n            warmup 0\n        }\n    }",
    );
    assert_ne!(next, two);
    let ev = e.reconfigure(&conf(&next), 6_000);
    assert_eq!(
        ev,
        [
            server(rs_key(80, 2, 80), false, REMOVED, Some("/bin/n2 down")),
            server(
                rs_key(80, 3, 80),
                false,
                "alpha: down until a check passes",
                None
            ),
            // Server 1 is down: without server 2 the quorum (1) is lost.
            quorum(vs_key(80), false, Some("/bin/q down")),
        ]
    );
    // The removed server's result is ignored; server 1 kept its state and its check.
    assert_eq!(e.result(6_001, in_flight, Outcome::Up), []);
    let ups: Vec<(u8, bool)> = e
        .snapshot()
        .iter()
        .map(|s| (s.rs.ip.octets()[3], s.up))
        .collect();
    assert_eq!(ups, [(1, false), (3, false)]);
    // Server 1's probe (started at 5 010) is still in flight; server 3 starts at 6 000.
    assert_eq!(e.next_deadline(), Some(6_000));
    let fresh = due(&mut e, 6_000);
    assert_eq!(fresh.keys().collect::<Vec<_>>(), [&addr(3, 80)]);
    assert_eq!(
        e.result(6_010, ids[&addr(1, 80)], Outcome::Up),
        [
            server(
                rs_key(80, 1, 80),
                true,
                "TCP_CHECK passed",
                Some("/bin/n up")
            ),
            quorum(vs_key(80), true, Some("/bin/q up")),
        ]
    );
    assert_eq!(e.next_deadline(), Some(11_010));
}

#[test]
fn shutdown_runs_notify_down_only_with_omega() {
    let text = ALPHA.replace("    alpha\n", "");
    let mut e = Engine::new(&conf(&text), 0, 1, &unknown);
    assert_eq!(e.shutdown(1), []);
    let text = ALPHA.replace("    alpha\n", "    omega\n");
    let mut e = Engine::new(&conf(&text), 0, 1, &unknown);
    assert_eq!(
        e.shutdown(1),
        [
            server(rs_key(80, 1, 80), false, SHUTTING_DOWN, Some("/bin/n down")),
            server(
                rs_key(80, 2, 80),
                false,
                SHUTTING_DOWN,
                Some("/bin/n2 down")
            ),
        ]
    );
}
