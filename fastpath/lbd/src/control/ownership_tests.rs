//! `SetOwnership` on the control facade: flips reach the published table, a no-op batch keeps
//! the generation, invalid input applies nothing, unknown addresses are listed and kept for
//! later, ownership survives configuration changes, `replace_instances` forgets old instances,
//! and the metrics.

use super::ownership::{OwnershipUpdate, VrrpInstance, VrrpState};
use super::tests::{control_with, grp, CONF};
use super::*;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

fn upd(addr: Ipv4Addr, owned: bool) -> OwnershipUpdate {
    OwnershipUpdate { addr, owned, instance: "VI_1".into() }
}

fn vi(name: &str, state: VrrpState) -> VrrpInstance {
    VrrpInstance {
        name: name.into(),
        state,
        priority: 100,
        effective_priority: 100,
        master_addr: Some(Ipv4Addr::new(10, 0, 1, 2)),
        since_ms: 1_700_000_000_000,
        transitions: 1,
        interface: "wan".into(),
        vrid: 51,
        addresses: vec!["10.0.1.100".into()],
        adverts_sent: 0,
        adverts_received: 7,
        auth_errors: 0,
        other_errors: 0,
        sync_group: String::new(),
    }
}

/// Whether the published table says the address is owned.
fn owned(c: &Control, ip: Ipv4Addr) -> Option<bool> {
    c.table().addr(ip).map(|a| a.owned)
}

#[test]
fn a_flip_reaches_the_published_table_and_a_repeat_publishes_nothing() {
    let c = control_with(CONF, None);
    assert_eq!((owned(&c, VIP), owned(&c, LIP)), (Some(true), Some(true)), "addresses start owned");
    let before = c.table();
    let out = c.set_ownership(&[upd(VIP, false), upd(LIP, false)], vec![vi("VI_1", VrrpState::Backup)], false, "lb-slowpath").unwrap();
    assert_eq!((out.generation, out.changed, out.unknown.len()), (2, 2, 0));
    assert_eq!((owned(&c, VIP), owned(&c, LIP)), (Some(false), Some(false)));
    let after = c.table();
    for i in 0..u32::try_from(after.services().len()).unwrap() {
        assert!(Arc::ptr_eq(before.compiled_arc(i), after.compiled_arc(i)), "services are not recompiled by a flip");
    }
    // The same batch again: nothing changes, nothing is published.
    let out = c.set_ownership(&[upd(VIP, false), upd(LIP, false)], vec![vi("VI_1", VrrpState::Backup)], false, "lb-slowpath").unwrap();
    assert_eq!((out.generation, out.changed), (2, 0));
    assert!(Arc::ptr_eq(&after, &c.table()), "no new snapshot");
    // An empty batch, or one naming only instances, publishes nothing either.
    assert_eq!(c.set_ownership(&[], vec![vi("VI_1", VrrpState::Fault)], false, "lb-slowpath").unwrap().generation, 2);
    assert_eq!(c.vrrp().0[0].state, VrrpState::Fault);
    // Back to master: owned again; the address not named keeps its state.
    let out = c.set_ownership(&[upd(VIP, true)], vec![], false, "lb-slowpath").unwrap();
    assert_eq!((out.generation, out.changed), (3, 1));
    assert_eq!((owned(&c, VIP), owned(&c, LIP)), (Some(true), Some(false)));
}

#[test]
fn invalid_batches_apply_nothing() {
    let c = control_with(CONF, None);
    let e = c.set_ownership(&[upd(VIP, false), upd(VIP, true)], vec![], false, "t").unwrap_err();
    assert_eq!(e.to_string(), "addresses[1].addr: 10.0.1.100 is also addresses[0]");
    let e = c.set_ownership(&[upd(VIP, false), upd(Ipv4Addr::BROADCAST, false)], vec![], false, "t").unwrap_err();
    assert!(matches!(&e, ControlError::Invalid { field, .. } if field == "addresses[1].addr"), "{e}");
    let e = c.set_ownership(&[upd(VIP, false)], vec![vi("VI_1", VrrpState::Backup), vi("VI_1", VrrpState::Master)], false, "t").unwrap_err();
    assert_eq!(e.to_string(), "instances[1].name: \"VI_1\" is given twice");
    let e = c.set_ownership(&[upd(VIP, false)], vec![vi("", VrrpState::Backup)], false, "t").unwrap_err();
    assert!(e.to_string().starts_with("instances[0].name: "), "{e}");
    assert_eq!(owned(&c, VIP), Some(true), "nothing applied");
    assert_eq!(c.table().generation(), 1);
    assert!(c.vrrp().0.is_empty(), "no instance recorded");
}

#[test]
fn unknown_addresses_are_listed_and_kept_for_when_they_are_configured() {
    let c = control_with(CONF, None);
    let new_vip = Ipv4Addr::new(10, 0, 1, 101);
    let out = c.set_ownership(&[upd(VIP, false), upd(new_vip, false)], vec![], false, "lb-slowpath").unwrap();
    assert_eq!((out.changed, out.unknown), (2, vec!["10.0.1.101".to_string()]));
    let (_, addrs) = c.vrrp();
    let shown: Vec<_> = addrs.iter().map(|a| (a.addr, a.kind.is_some(), a.owned)).collect();
    assert_eq!(shown, vec![(VIP, true, false), (new_vip, false, false), (LIP, true, true)]);
    // The VIP is configured later: it starts not owned (no ARP reply from the backup).
    let mut v = crate::api::convert::new_vs((new_vip, 80, Protocol::Tcp), kaconf::Scheduler::Rr, kaconf::ForwardMode::Fnat);
    v.laddr_group_name = Some("lg".into());
    c.add_service(v).unwrap();
    assert_eq!(owned(&c, new_vip), Some(false));
    assert!(c.shared.ifaces.load()[0].owns(new_vip), "assigned to its port all the same");
}

#[test]
fn ownership_survives_unrelated_changes_and_reloads() {
    let c = control_with(CONF, None);
    c.set_ownership(&[upd(VIP, false)], vec![], false, "lb-slowpath").unwrap();
    let ch = c.update_service((VIP, 80, Protocol::Tcp), |v| {
        v.lb_algo = kaconf::Scheduler::Wrr;
        Ok(())
    });
    assert_eq!(ch.unwrap().0.changed.len(), 1);
    assert_eq!(owned(&c, VIP), Some(false), "a configuration change keeps the ownership");
    c.add_laddrs(&grp("lg"), vec![LocalAddr { ip: Ipv4Addr::new(10, 0, 2, 101), ifname: None }]).unwrap();
    assert_eq!((owned(&c, VIP), owned(&c, Ipv4Addr::new(10, 0, 2, 101))), (Some(false), Some(true)), "a new address starts owned");
    // Health flips republish the table; ownership stays.
    c.set_health(&[super::health::HealthUpdate { service: (VIP, 80, Protocol::Tcp), addr: Ipv4Addr::new(10, 0, 2, 11), port: 80, up: false, checker: String::new(), reason: String::new(), weight: None, inhibit: false }], &[], "t")
        .unwrap();
    assert_eq!(owned(&c, VIP), Some(false));
}

#[test]
fn replacing_the_instances_forgets_what_gone_instances_decided() {
    let c = control_with(CONF, None);
    let lip = OwnershipUpdate { addr: LIP, owned: false, instance: "VI_2".into() };
    c.set_ownership(&[upd(VIP, false), lip], vec![vi("VI_1", VrrpState::Backup), vi("VI_2", VrrpState::Backup)], true, "lb-slowpath").unwrap();
    assert_eq!(c.vrrp().0.len(), 2);
    // VI_2 is no longer configured in lb-slowpath: its address goes back to the default.
    let out = c.set_ownership(&[], vec![vi("VI_1", VrrpState::Backup)], true, "lb-slowpath").unwrap();
    assert_eq!((out.changed, out.generation), (1, 3));
    assert_eq!((owned(&c, VIP), owned(&c, LIP)), (Some(false), Some(true)));
    let names: Vec<String> = c.vrrp().0.into_iter().map(|v| v.name).collect();
    assert_eq!(names, vec!["VI_1".to_string()]);
    // Without replace_instances, instances accumulate.
    c.set_ownership(&[], vec![vi("VI_3", VrrpState::Master)], false, "lb-slowpath").unwrap();
    assert_eq!(c.vrrp().0.len(), 2);
}

#[test]
fn metrics_show_ownership_and_instance_states() {
    let c = control_with(CONF, None);
    c.set_ownership(&[upd(VIP, false)], vec![vi("VI_1", VrrpState::Backup)], false, "lb-slowpath").unwrap();
    let m = crate::metrics::render(&c);
    assert!(m.contains("lbd_address_owned{addr=\"10.0.1.100\",addr_kind=\"vip\"} 0\n"), "{m}");
    assert!(m.contains("lbd_address_owned{addr=\"10.0.2.100\",addr_kind=\"laddr\"} 1\n"), "{m}");
    assert!(m.contains("lbd_vrrp_state{instance=\"VI_1\",state=\"BACKUP\"} 1\n"), "{m}");
    assert!(m.contains("lbd_vrrp_state{instance=\"VI_1\",state=\"MASTER\"} 0\n"), "{m}");
}
