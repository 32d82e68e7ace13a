//! Control without DPDK: a `Shared` with no rings and no workers, services from text.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use fastpath::neigh::NeighTable;
use fastpath::wire::EthernetAddress;

use super::*;

pub(crate) const CONF: &str = "
local_address_group lg {
    10.0.2.100
}
virtual_server 10.0.1.100 80 {
    lb_algo rr
    lb_kind FNAT
    laddr_group_name lg
    real_server 10.0.2.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
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

/// A control over `text` (a keepalived.conf), with no workers.
pub(crate) fn control_with(text: &str, file: Option<&Path>) -> Control {
    control_with_mailboxes(text, file, 0)
}

/// The same with `mailboxes` worker mailboxes (nobody serves them unless the test does).
fn control_with_mailboxes(text: &str, file: Option<&Path>, mailboxes: usize) -> Control {
    let conf = kaconf::parse_str(text, Path::new("test.conf")).unwrap();
    let port_cfgs = crate::config::Config::parse("[[port]]\nname = 'wan'\nvdev = 'net_ring0'\naddresses = ['10.0.1.1/24']\n", Path::new("lbd.toml")).unwrap().ports;
    let loaded = services::convert(&conf, services::Options::default(), &port_cfgs, 1).unwrap();
    let base = vec![Interface::new(EthernetAddress([2, 0, 0, 0, 0, 1]), vec![(Ipv4Addr::new(10, 0, 1, 1), 24)], false)];
    let shared = Arc::new(Shared {
        services: ArcSwap::from_pointee(loaded.table),
        neigh: ArcSwap::from_pointee(NeighTable::default()),
        ifaces: ArcSwap::from_pointee(base.clone()),
        learned: ArrayQueue::new(4),
        rings: Vec::new(),
        owners: Default::default(),
        sync: crate::sync::SyncShared::new(1, Default::default()),
        stop: AtomicBool::new(false),
        mailboxes: (0..mailboxes).map(|_| crate::control::mailbox::Mailbox::default()).collect(),
    });
    let env = Env {
        services_file: file.map(Path::to_path_buf),
        opts: services::Options::default(),
        port_cfgs,
        base_ifaces: base,
        workers: Vec::new(),
        ports: Vec::new(),
        started: Instant::now(),
        max_sessions: 10,
        api_socket: PathBuf::from("/nonexistent"),
        metrics_listen: None,
    };
    Control::new(shared, env, conf, Timeouts::default(), 1)
}

fn key(port: u16, p: Protocol) -> VsKey {
    (Ipv4Addr::new(10, 0, 1, 100), port, p)
}

pub(super) fn grp(name: &str) -> LaddrTarget {
    LaddrTarget::Group(name.into())
}

fn vs(port: u16) -> VirtualServer {
    let mut v = crate::api::convert::new_vs(key(port, Protocol::Tcp), kaconf::Scheduler::Rr, kaconf::ForwardMode::Fnat);
    v.laddr_group_name = Some("lg".into());
    v
}

#[test]
fn one_service_is_added_and_deleted_without_touching_the_others() {
    let c = control_with(CONF, None);
    let before = c.table();
    let ch = c.add_service(vs(8080)).unwrap();
    assert_eq!(ch.added, vec![service_key(key(8080, Protocol::Tcp))]);
    assert_eq!(ch.unchanged, 2);
    assert_eq!(ch.generation, 2);
    let after = c.table();
    assert_eq!(after.generation(), 2);
    for s in before.services() {
        assert_eq!(after.lookup(&s.key).unwrap().1, s, "untouched");
    }
    assert_eq!(c.add_service(vs(8080)).unwrap_err(), ControlError::Exists("service TCP 10.0.1.100:8080 already exists".into()));
    let ch = c.delete_service(key(8080, Protocol::Tcp)).unwrap();
    assert_eq!(ch.removed.len(), 1);
    assert_eq!(c.table().services().len(), 2);
    assert!(matches!(c.delete_service(key(8080, Protocol::Tcp)), Err(ControlError::NotFound(_))));
}

#[test]
fn a_new_vip_is_added_to_the_ports_addresses() {
    let c = control_with(CONF, None);
    let mut v = vs(80);
    v.vip = Ipv4Addr::new(10, 0, 1, 101);
    c.add_service(v).unwrap();
    assert!(c.shared.ifaces.load()[0].owns(Ipv4Addr::new(10, 0, 1, 101)));
    c.delete_service((Ipv4Addr::new(10, 0, 1, 101), 80, Protocol::Tcp)).unwrap();
    assert!(!c.shared.ifaces.load()[0].owns(Ipv4Addr::new(10, 0, 1, 101)));
}

#[test]
fn invalid_changes_keep_the_running_configuration() {
    let c = control_with(CONF, None);
    let mut v = vs(81);
    v.laddr_group_name = Some("nope".into());
    let e = c.add_service(v).unwrap_err();
    assert!(e.to_string().starts_with("service.laddr_group: \"nope\" names no local-address group (groups: lg)"), "{e}");
    // Weight above 65535 is refused by the table; nothing changes.
    let e = c.update_service(key(80, Protocol::Tcp), |v| {
        v.real_servers[0].weight = 70000;
        Ok(())
    });
    assert!(matches!(e, Err(ControlError::Rejected(_))), "{e:?}");
    assert_eq!(c.table().generation(), 1);
    assert_eq!(c.service(key(80, Protocol::Tcp)).unwrap().real_servers[0].weight, 1);
    let e = c.delete_laddrs(&grp("lg"), &[]).unwrap_err();
    assert!(matches!(e, ControlError::InUse(_)), "{e}");
    assert!(matches!(c.set_timeouts(0, 0, MAX_TIMEOUT_S + 1), Err(ControlError::Invalid { .. })));
}

#[test]
fn identical_edits_keep_the_snapshot() {
    let c = control_with(CONF, None);
    let (ch, _) = c.update_service(key(80, Protocol::Tcp), |_| Ok(())).unwrap();
    assert_eq!(ch.generation, 1);
    assert_eq!(ch.unchanged, 2);
}

#[test]
fn laddr_groups_are_created_extended_and_removed() {
    let c = control_with(CONF, None);
    let g = c.add_laddrs(&grp("lg2"), vec![LocalAddr { ip: Ipv4Addr::new(10, 0, 2, 200), ifname: Some("lan".into()) }]).unwrap();
    assert_eq!(g.addrs.len(), 1);
    c.add_laddrs(&grp("lg"), vec![LocalAddr { ip: Ipv4Addr::new(10, 0, 2, 101), ifname: None }]).unwrap();
    assert!(c.table().is_laddr(Ipv4Addr::new(10, 0, 2, 101)));
    let e = c.add_laddrs(&grp("lg"), vec![LocalAddr { ip: Ipv4Addr::new(10, 0, 1, 100), ifname: None }]).unwrap_err();
    assert!(e.to_string().contains("virtual IP"), "{e}");
    c.delete_laddrs(&grp("lg"), &[Ipv4Addr::new(10, 0, 2, 101)]).unwrap();
    assert!(!c.table().is_laddr(Ipv4Addr::new(10, 0, 2, 101)));
    c.delete_laddrs(&grp("lg2"), &[]).unwrap();
    assert_eq!(c.groups().len(), 1);
    assert_eq!(c.groups()[0].1.len(), 2, "lg is used by both services");
}

/// DPVS's order: an FNAT service without local addresses exists and refuses connections
/// (no_local_address in the fast path); `--add-laddr` gives it a group of its own; deleting
/// its last address is allowed; only FNAT services take them.
#[test]
fn a_service_gets_its_own_local_addresses_as_in_dpvs() {
    let c = control_with(CONF, None);
    let mut v = vs(8080);
    v.laddr_group_name = None;
    c.add_service(v).unwrap();
    let k = key(8080, Protocol::Tcp);
    let lip = Ipv4Addr::new(10, 0, 2, 150);
    let g = c.add_laddrs(&LaddrTarget::Service(k), vec![LocalAddr { ip: lip, ifname: Some("lan".into()) }]).unwrap();
    assert_eq!(g.name, "tcp-10.0.1.100-8080");
    assert_eq!(c.service(k).unwrap().laddr_group_name.as_deref(), Some("tcp-10.0.1.100-8080"));
    assert!(c.table().is_laddr(lip));
    // A second address goes to the same group.
    c.add_laddrs(&LaddrTarget::Service(k), vec![LocalAddr { ip: Ipv4Addr::new(10, 0, 2, 151), ifname: None }]).unwrap();
    assert_eq!(c.groups().iter().find(|(g, _)| g.name == "tcp-10.0.1.100-8080").unwrap().0.addrs.len(), 2);
    c.delete_laddrs(&LaddrTarget::Service(k), &[lip, Ipv4Addr::new(10, 0, 2, 151)]).unwrap();
    assert!(!c.table().is_laddr(lip));
    let e = c.delete_laddrs(&LaddrTarget::Service(k), &[lip]).unwrap_err();
    assert!(matches!(e, ControlError::NotFound(_)), "{e}");
    let e = c.delete_laddrs(&LaddrTarget::Service(k), &[]).unwrap_err();
    assert!(e.to_string().contains("name the local addresses"), "{e}");
    let e = c.add_laddrs(&LaddrTarget::Service(key(9999, Protocol::Tcp)), vec![LocalAddr { ip: lip, ifname: None }]).unwrap_err();
    assert!(matches!(e, ControlError::NotFound(_)), "{e}");
    let mut dr = vs(8081);
    dr.lb_kind = kaconf::ForwardMode::Dr;
    dr.laddr_group_name = None;
    dr.real_servers.iter_mut().for_each(|r| r.port = 8081);
    c.add_service(dr).unwrap();
    let e = c.add_laddrs(&LaddrTarget::Service(key(8081, Protocol::Tcp)), vec![LocalAddr { ip: lip, ifname: None }]).unwrap_err();
    assert!(e.to_string().contains("local addresses are for FNAT"), "{e}");
}

#[test]
fn reload_applies_the_difference_and_refuses_invalid_files() {
    let dir = std::env::temp_dir().join(format!("lbd-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, CONF).unwrap();
    let c = control_with(CONF, Some(&file));
    // The UDP service goes, a new one comes, TCP 80 changes scheduler.
    let next = CONF.replace("lb_algo rr\n    lb_kind FNAT\n    laddr_group_name lg\n    real_server 10.0.2.11 80", "lb_algo wrr\n    lb_kind FNAT\n    laddr_group_name lg\n    real_server 10.0.2.11 80")
        .replace("virtual_server 10.0.1.100 53 {\n    lb_algo rr\n    lb_kind FNAT\n    protocol UDP", "virtual_server 10.0.1.100 443 {\n    lb_algo rr\n    lb_kind FNAT\n    protocol TCP");
    std::fs::write(&file, &next).unwrap();
    let ch = c.reload().unwrap();
    assert_eq!((ch.added.len(), ch.removed.len(), ch.changed.len(), ch.unchanged), (1, 1, 1, 0), "{ch}");
    assert_eq!(c.table().generation(), 2);
    // An invalid file: the error names file:line, nothing changes.
    std::fs::write(&file, "virtual_server 10.0.1.100 80 {\n    lb_algo nope\n}\n").unwrap();
    let e = c.reload().unwrap_err().to_string();
    assert!(e.contains("keepalived.conf:2"), "{e}");
    assert_eq!(c.table().generation(), 2);
    assert_eq!(c.table().services().len(), 2);
    // Save gives the running configuration back as keepalived.conf.
    let saved = c.save();
    let again = kaconf::parse_str(&saved, Path::new("saved.conf")).unwrap();
    assert!(again.same_settings(&kaconf::parse_str(&next, Path::new("x.conf")).unwrap()), "{saved}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(control_with(CONF, None).reload().unwrap_err(), ControlError::NoFile);
}

#[test]
fn apply_replaces_everything_and_keeps_unchanged_services() {
    let c = control_with(CONF, None);
    let (conf, _) = c.config();
    let ch = c.apply(conf.local_address_groups.clone(), conf.virtual_servers.clone()).unwrap();
    assert_eq!((ch.added.len(), ch.removed.len(), ch.changed.len(), ch.unchanged), (0, 0, 0, 2));
    let mut list = conf.virtual_servers.clone();
    list.push(list[0].clone());
    assert!(matches!(c.apply(conf.local_address_groups.clone(), list), Err(ControlError::Invalid { .. })));
    let ch = c.apply(conf.local_address_groups, vec![conf.virtual_servers[1].clone()]).unwrap();
    assert_eq!(ch.removed.len(), 1);
    assert_eq!(c.clear_services().unwrap().removed.len(), 1);
}

/// Hardening: API changes and reloads go through the same whole-configuration checks as the
/// start. An object made through the API has no file: its refusal names it without one.
#[test]
fn api_changes_and_reloads_are_checked_as_the_start_is() {
    let c = control_with(CONF, None);
    let mut v = vs(8080);
    v.real_servers.push(crate::api::convert::new_rs(Ipv4Addr::new(10, 0, 1, 100), 8080, 1));
    assert_eq!(c.add_service(v).unwrap_err(), ControlError::Rejected("virtual_server 10.0.1.100 8080: real_server 10.0.1.100 8080 is the virtual server itself".into()));
    let mut v = vs(80);
    v.vip = Ipv4Addr::new(10, 0, 1, 1);
    assert_eq!(c.add_service(v).unwrap_err(), ControlError::Rejected("virtual_server 10.0.1.1 80: the virtual IP 10.0.1.1 is port wan's own address (lbd.toml addresses)".into()));
    // The group comes from the file, the address from the API.
    let e = c.add_laddrs(&grp("lg"), vec![LocalAddr { ip: Ipv4Addr::new(10, 0, 2, 11), ifname: None }]).unwrap_err();
    assert_eq!(e, ControlError::Rejected("test.conf:2: local_address_group lg: local address 10.0.2.11 is real_server 10.0.2.11 80 of virtual_server 10.0.1.100 80 (test.conf:9)".into()));
    let e = c.add_laddrs(&grp("lg2"), vec![LocalAddr { ip: Ipv4Addr::UNSPECIFIED, ifname: None }]).unwrap_err();
    assert_eq!(e, ControlError::Rejected("local_address_group lg2: local address 0.0.0.0 is the unspecified address, not a host address".into()));
    assert_eq!(c.table().generation(), 1, "nothing was published");
    // A new service without real servers is taken, with a note.
    let ch = c.add_service(vs(8080)).unwrap();
    assert_eq!(ch.notes, ["virtual_server 10.0.1.100 8080: no real_server: new connections are dropped (no_real_server) until one is added"]);

    let dir = std::env::temp_dir().join(format!("lbd-control-checks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, CONF).unwrap();
    let c = control_with(CONF, Some(&file));
    std::fs::write(&file, CONF.replace("real_server 10.0.2.11 53", "real_server 10.0.1.100 53")).unwrap();
    let e = c.reload().unwrap_err();
    let msg = format!("{}:21: virtual_server 10.0.1.100 53: real_server 10.0.1.100 53 is the virtual server itself", file.display());
    assert_eq!(e, ControlError::Reload(msg));
    assert_eq!(c.table().generation(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Metrics scrapes share one walk of the session tables per interval, however many arrive.
#[test]
fn concurrent_scrapes_share_one_walk_of_the_workers_tables() {
    let c = Arc::new(control_with_mailboxes(CONF, None, 1));
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (c, asked, done) = (Arc::clone(&c), Arc::clone(&asked), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(m) = c.shared().mailboxes[0].pop() {
                    asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    m.answer(0, crate::control::mailbox::Reply::ConnCounts(HashMap::new()));
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let scrapes: Vec<_> = (0..40)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || c.conn_counts_cached(std::time::Duration::from_secs(60)).is_ok())
        })
        .collect();
    assert!(scrapes.into_iter().all(|t| t.join().unwrap_or(false)), "every scrape answered");
    assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 1, "40 concurrent scrapes, one walk");
    assert!(c.conn_counts().is_ok());
    assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 2, "the API's own listing is always fresh");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap();
}
