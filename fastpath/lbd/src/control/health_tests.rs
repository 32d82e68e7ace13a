//! `SetHealth` on the control facade: flips, unknown servers, atomic validation, no-op batches,
//! alpha, health across configuration changes and reloads, dynamic weights, quorum and the
//! sorry server, and that a flip leaves the other services' compiled tables alone.

use std::sync::atomic::Ordering;

use super::health::{HealthUpdate, QuorumUpdate, Status};
use super::tests::control_with;
use super::*;

const CONF: &str = "
local_address_group lg {
    10.0.2.100
}
virtual_server 10.0.1.100 80 {
    lb_algo mh
    lb_kind FNAT
    laddr_group_name lg
    flow_control_pc 5
    real_server 10.0.2.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.2.12 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.2.13 80 {
        weight 3
    }
}
virtual_server 10.0.1.100 443 {
    lb_algo wrr
    lb_kind FNAT
    laddr_group_name lg
    alpha
    sorry_server 10.0.2.99 443
    real_server 10.0.2.11 443 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.2.12 443 {
        weight 1
        MISC_CHECK {
            misc_path /bin/true
            misc_dynamic
        }
    }
}
virtual_server 10.0.1.100 53 {
    lb_algo rr
    lb_kind FNAT
    protocol UDP
    laddr_group_name lg
    real_server 10.0.2.11 53 {
    }
}
";

fn web() -> VsKey {
    (Ipv4Addr::new(10, 0, 1, 100), 80, Protocol::Tcp)
}

fn tls() -> VsKey {
    (Ipv4Addr::new(10, 0, 1, 100), 443, Protocol::Tcp)
}

fn upd(service: VsKey, last: u8, up: bool) -> HealthUpdate {
    HealthUpdate {
        service,
        addr: Ipv4Addr::new(10, 0, 2, last),
        port: service.1,
        up,
        checker: "TCP_CHECK".into(),
        reason: if up { String::new() } else { "connect: connection refused".into() },
        weight: None,
        inhibit: false,
    }
}

/// (healthy, weight) of a real server in the published table.
fn fp(c: &Control, service: VsKey, last: u8) -> (bool, u32) {
    let t = c.table();
    let (_, s) = t.lookup(&service_key(service)).unwrap();
    let r = s.real_servers.iter().find(|r| r.addr == Ipv4Addr::new(10, 0, 2, last)).unwrap();
    (r.healthy, r.weight)
}

fn view(c: &Control, service: VsKey, last: u8) -> health::RsView {
    let vs = c.service(service).unwrap();
    let rs = vs.real_servers.iter().find(|r| r.ip == Ipv4Addr::new(10, 0, 2, last)).unwrap();
    c.health().view(&vs, rs)
}

#[test]
fn a_flip_changes_one_service_and_bumps_the_generation_once() {
    let c = control_with(CONF, None);
    let before = c.table();
    assert_eq!(view(&c, web(), 11).status, Status::Up);
    let out = c.set_health(&[upd(web(), 11, false)], &[], "lb-slowpath").unwrap();
    assert_eq!((out.generation, out.changed, out.unknown.len()), (2, 1, 0));
    let after = c.table();
    assert_eq!(after.generation(), 2);
    assert_eq!(fp(&c, web(), 11), (false, 1));
    let v = view(&c, web(), 11);
    assert_eq!((v.status, v.last_error.as_str(), v.checker.as_str(), v.inhibited, v.effective_weight), (Status::Down, "connect: connection refused", "TCP_CHECK", false, 0));
    assert!(v.since_ms > 0);
    for s in before.services().iter().filter(|s| s.key != service_key(web())) {
        let (i, _) = before.lookup(&s.key).unwrap();
        let (j, _) = after.lookup(&s.key).unwrap();
        assert!(Arc::ptr_eq(before.compiled_arc(i), after.compiled_arc(j)), "{} not recompiled", s.key);
    }
    // The same batch again changes nothing and publishes nothing.
    let out = c.set_health(&[upd(web(), 11, false)], &[], "lb-slowpath").unwrap();
    assert_eq!((out.generation, out.changed), (2, 0));
    assert!(Arc::ptr_eq(&after, &c.table()), "no new snapshot");
    let m = crate::metrics::render(&c);
    assert!(m.contains("lbd_real_server_up{proto=\"TCP\",vip=\"10.0.1.100\",vport=\"80\",rip=\"10.0.2.11\",rport=\"80\"} 0\n"), "{m}");
    assert!(m.contains("lbd_real_server_up{proto=\"TCP\",vip=\"10.0.1.100\",vport=\"80\",rip=\"10.0.2.13\",rport=\"80\"} 1\n"), "unchecked is up");
    // Back up.
    let out = c.set_health(&[upd(web(), 11, true)], &[], "lb-slowpath").unwrap();
    assert_eq!((out.generation, out.changed), (3, 1));
    assert_eq!(view(&c, web(), 11).last_error, "");
    assert_eq!(fp(&c, web(), 11), (true, 1));
}

#[test]
fn inhibited_servers_show_weight_zero() {
    let c = control_with(CONF, None);
    c.set_health(&[upd(web(), 12, false)], &[], "t").unwrap();
    let v = view(&c, web(), 12);
    assert_eq!((v.status, v.inhibited, v.effective_weight), (Status::Down, true, 0), "inhibit_on_failure from the configuration");
    let mut u = upd(web(), 11, false);
    u.inhibit = true;
    c.set_health(&[u], &[], "t").unwrap();
    assert!(view(&c, web(), 11).inhibited, "inhibit from the update");
}

#[test]
fn unknown_and_unchecked_servers_are_listed_not_refused() {
    let c = control_with(CONF, None);
    let mut stray = upd(web(), 50, false);
    stray.port = 80;
    let other = upd((Ipv4Addr::new(10, 0, 1, 100), 8080, Protocol::Tcp), 11, false);
    let out = c.set_health(&[stray, upd(web(), 13, false), upd(web(), 11, false), other], &[QuorumUpdate { service: (Ipv4Addr::new(10, 9, 9, 9), 80, Protocol::Tcp), up: false }], "t").unwrap();
    assert_eq!(out.changed, 1);
    assert_eq!(
        out.unknown,
        vec![
            "TCP 10.0.1.100:80 rs 10.0.2.50:80".to_string(),
            "TCP 10.0.1.100:80 rs 10.0.2.13:80 (no health check: always up)".to_string(),
            "TCP 10.0.1.100:8080 rs 10.0.2.11:8080".to_string(),
            "TCP 10.9.9.9:80 (quorum)".to_string(),
        ]
    );
    assert_eq!(view(&c, web(), 13).status, Status::Unchecked);
    assert_eq!(fp(&c, web(), 13), (true, 3), "unchecked stays up");
    assert_eq!(fp(&c, web(), 11), (false, 1), "the valid part of the batch applied");
}

#[test]
fn invalid_input_names_the_field_and_applies_nothing() {
    let c = control_with(CONF, None);
    let mut bad = upd(web(), 12, false);
    bad.port = 0;
    let e = c.set_health(&[upd(web(), 11, false), bad], &[], "t").unwrap_err();
    assert_eq!(e, ControlError::invalid("servers[1].port", "0 is not a valid port"));
    let mut heavy = upd(tls(), 12, true);
    heavy.weight = Some(70000);
    let e = c.set_health(&[heavy], &[], "t").unwrap_err();
    assert_eq!(e.to_string(), "servers[0].weight: 70000 is out of range 0..=65535");
    assert_eq!(c.table().generation(), 1);
    assert_eq!(view(&c, web(), 11).status, Status::Up, "nothing applied");
}

#[test]
fn alpha_servers_start_down_until_told() {
    let c = control_with(CONF, None);
    assert_eq!(fp(&c, tls(), 11), (false, 1), "the published table already has them down");
    assert_eq!(view(&c, tls(), 11).status, Status::Down);
    assert_eq!(fp(&c, web(), 11), (true, 1), "no alpha: up");
    c.set_health(&[upd(tls(), 11, true)], &[], "t").unwrap();
    assert_eq!(fp(&c, tls(), 11), (true, 1));
    // A server added later under alpha starts down too; checker_off makes servers unchecked.
    c.update_service(tls(), |vs| {
        let mut r = vs.real_servers[0].clone();
        r.ip = Ipv4Addr::new(10, 0, 2, 14);
        vs.real_servers.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(fp(&c, tls(), 14), (false, 1));
    c.update_service(tls(), |vs| {
        vs.checker_off = true;
        Ok(())
    })
    .unwrap();
    assert_eq!((fp(&c, tls(), 14), view(&c, tls(), 14).status), ((true, 1), Status::Unchecked));
}

#[test]
fn health_and_flow_control_survive_an_unrelated_change_and_a_reload() {
    let dir = std::env::temp_dir().join(format!("lbd-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, CONF).unwrap();
    let c = control_with(CONF, Some(&file));
    c.set_health(&[upd(web(), 11, false)], &[], "t").unwrap();
    let since = view(&c, web(), 11).since_ms;
    // Five connections counted against flow_control_pc 5.
    let t = c.table();
    let (i, s) = t.lookup(&service_key(web())).unwrap();
    let compiled = Arc::clone(t.compiled_arc(i));
    for _ in 0..5 {
        compiled.shared.admit(&s.flow, 1000).unwrap();
    }
    let mut v = crate::api::convert::new_vs((Ipv4Addr::new(10, 0, 1, 100), 8080, Protocol::Tcp), kaconf::Scheduler::Rr, kaconf::ForwardMode::Fnat);
    v.laddr_group_name = Some("lg".into());
    c.add_service(v).unwrap();
    let t2 = c.table();
    let (j, s2) = t2.lookup(&service_key(web())).unwrap();
    assert!(Arc::ptr_eq(&compiled, t2.compiled_arc(j)), "the service is not recompiled");
    assert_eq!(t2.compiled(j).shared.conns.load(Ordering::Relaxed), 5);
    assert!(t2.compiled(j).shared.admit(&s2.flow, 1000).is_err(), "a sixth connection is still refused");
    assert_eq!((fp(&c, web(), 11), view(&c, web(), 11).since_ms), ((false, 1), since), "health kept");
    // A reload that changes the service (its scheduler) keeps health and the flow-control state.
    std::fs::write(&file, CONF.replacen("lb_algo mh", "lb_algo wrr", 1)).unwrap();
    let ch = c.reload().unwrap();
    assert_eq!(ch.changed, vec![service_key(web())], "{ch}");
    let t3 = c.table();
    let (k, _) = t3.lookup(&service_key(web())).unwrap();
    assert!(Arc::ptr_eq(&compiled.shared, &t3.compiled(k).shared));
    assert_eq!(t3.compiled(k).shared.conns.load(Ordering::Relaxed), 5);
    assert_eq!(fp(&c, web(), 11), (false, 1), "health kept across the reload");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_removed_servers_health_is_dropped() {
    let c = control_with(CONF, None);
    c.set_health(&[upd(web(), 11, false)], &[], "t").unwrap();
    let removed = c.service(web()).unwrap().real_servers[0].clone();
    c.update_service(web(), |vs| {
        vs.real_servers.retain(|r| r.ip != Ipv4Addr::new(10, 0, 2, 11));
        Ok(())
    })
    .unwrap();
    assert!(!c.config_with_health().1.servers.keys().any(|k| k.1 == Ipv4Addr::new(10, 0, 2, 11) && k.0 == web()));
    c.update_service(web(), |vs| {
        vs.real_servers.push(removed);
        Ok(())
    })
    .unwrap();
    assert_eq!(view(&c, web(), 11).status, Status::Up, "back as new: its initial state");
}

#[test]
fn a_dynamic_weight_overrides_the_configured_one_while_set() {
    let c = control_with(CONF, None);
    let mut u = upd(tls(), 12, true);
    u.checker = "MISC_CHECK".into();
    u.weight = Some(7);
    let out = c.set_health(&[u.clone()], &[], "t").unwrap();
    assert_eq!(out.changed, 1);
    assert_eq!(fp(&c, tls(), 12), (true, 7));
    assert_eq!(view(&c, tls(), 12).effective_weight, 7);
    assert_eq!(c.service(tls()).unwrap().real_servers[1].weight, 1, "the configuration keeps its weight");
    u.weight = None;
    c.set_health(&[u], &[], "t").unwrap();
    assert_eq!(fp(&c, tls(), 12), (true, 1));
}

#[test]
fn lost_quorum_sends_new_connections_to_the_sorry_server_only_when_there_is_one() {
    let c = control_with(CONF, None);
    c.set_health(&[upd(tls(), 11, true)], &[], "t").unwrap();
    let g = c.table().generation();
    let out = c.set_health(&[], &[QuorumUpdate { service: tls(), up: false }], "t").unwrap();
    assert_eq!((out.changed, out.generation), (1, g + 1));
    assert!(!fp(&c, tls(), 11).0, "no real server takes new connections");
    let vs = c.service(tls()).unwrap();
    assert!(!c.config_with_health().1.quorum_up(&vs));
    assert_eq!(view(&c, tls(), 11).effective_weight, 0);
    assert_eq!(view(&c, tls(), 11).status, Status::Up, "its own health is unchanged");
    // Without a sorry server a lost quorum changes nothing the fast path sees.
    let out = c.set_health(&[], &[QuorumUpdate { service: web(), up: false }], "t").unwrap();
    assert_eq!((out.changed, out.generation), (1, g + 1));
    assert_eq!(fp(&c, web(), 11), (true, 1));
    c.set_health(&[], &[QuorumUpdate { service: tls(), up: true }], "t").unwrap();
    assert_eq!(fp(&c, tls(), 11), (true, 1));
}

/// A reload that changes only a health check leaves the data plane's snapshot (and generation)
/// alone but bumps the configuration revision, which is what lb-slowpath follows; a health
/// flip moves the generation and not the revision.
#[test]
fn check_only_changes_bump_the_revision_not_the_generation() {
    let dir = std::env::temp_dir().join(format!("lbd-revision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, CONF).unwrap();
    let c = control_with(CONF, Some(&file));
    let (g0, r0) = c.versions();
    std::fs::write(&file, CONF.replacen("connect_timeout 3", "connect_timeout 4", 1)).unwrap();
    c.reload().unwrap();
    assert_eq!(c.versions(), (g0, r0 + 1), "check settings: revision only");
    c.reload().unwrap();
    assert_eq!(c.versions(), (g0, r0 + 1), "the same file again: nothing");
    c.set_health(&[upd(web(), 11, false)], &[], "t").unwrap();
    assert_eq!(c.versions(), (g0 + 1, r0 + 1), "a health flip: generation only");
    std::fs::remove_dir_all(&dir).unwrap();
}
