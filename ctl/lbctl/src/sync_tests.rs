//! `-L --daemon` exactly as printed (line ends shown by `$`), and its JSON.

use super::*;
use serde_json::json;

fn shown(s: &str) -> String {
    s.lines().map(|l| format!("{l}$\n")).collect()
}

fn daemon(role: SyncRole, ifname: &str, syncid: u32) -> pb::SyncDaemonStatus {
    pb::SyncDaemonStatus {
        daemon: Some(pb::SyncDaemon { role: role as i32, mcast_interface: ifname.into(), syncid: Some(syncid), maxlen: 1472, group: "224.0.0.81".into(), port: 8848, ttl: 1 }),
        source: "keepalived.conf".into(),
        vrrp_instance: "VI_1".into(),
        active: true,
    }
}

/// A dual-VIP pair's director: master for one VIP, backup for the other, bulk sync done.
fn both() -> pb::SyncStatus {
    pb::SyncStatus {
        daemons: vec![daemon(SyncRole::Master, "eth0", 1), daemon(SyncRole::Backup, "eth0", 2)],
        sent_messages: 120,
        sent_conns: 4_800,
        send_dropped: 3,
        received_messages: 75,
        received_conns: 3_000,
        applied_conns: 2_990,
        bulk_state: "done".into(),
        bulk_received: 1_000,
        bulk_expected: 1_000,
        ready: true,
        ..Default::default()
    }
}

#[test]
fn master_and_backup_as_ipvsadm_then_counters() {
    let want = "\
master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)$
backup sync daemon (mcast=eth0, syncid=2, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)$
bulk sync: done (1000 of 1000 sessions), ready$
sent: 120 messages, 4800 sessions, 3 dropped$
received: 75 messages, 3000 sessions, 2990 applied$
";
    assert_eq!(shown(&table(&both())), want);
}

#[test]
fn no_daemon_prints_nothing() {
    // Counters from a daemon since stopped do not make a listing.
    let s = pb::SyncStatus { sent_messages: 9, bulk_state: "none".into(), ready: true, ..Default::default() };
    assert_eq!(table(&s), "");
    assert_eq!(table(&pb::SyncStatus::default()), "");
}

#[test]
fn drops_sorted_by_reason_zeros_left_out() {
    let mut s = both();
    s.daemons.remove(0);
    s.ready = false;
    (s.bulk_state, s.bulk_received, s.bulk_expected) = ("receiving".into(), 250, 0);
    s.dropped = [("truncated", 2), ("bad_header", 1), ("foreign_syncid", 40), ("no_service", 0)].into_iter().map(|(r, n)| (r.to_owned(), n)).collect();
    let want = "\
backup sync daemon (mcast=eth0, syncid=2, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)$
bulk sync: receiving (250 of 0 sessions), not ready$
sent: 120 messages, 4800 sessions, 3 dropped$
received: 75 messages, 3000 sessions, 2990 applied$
dropped: bad_header=1 foreign_syncid=40 truncated=2$
";
    assert_eq!(shown(&table(&s)), want);
}

#[test]
fn master_alone_has_no_readiness_and_unset_fields_stay_out() {
    // ipvsadm leaves out maxlen, group, port and ttl when they are not set.
    let d = pb::SyncDaemon { role: SyncRole::Master as i32, mcast_interface: "lan".into(), syncid: Some(0), ..Default::default() };
    let s = pb::SyncStatus { daemons: vec![pb::SyncDaemonStatus { daemon: Some(d), ..Default::default() }], ..Default::default() };
    let want = "\
master sync daemon (mcast=lan, syncid=0)$
bulk sync: none (0 of 0 sessions)$
sent: 0 messages, 0 sessions, 0 dropped$
received: 0 messages, 0 sessions, 0 applied$
";
    assert_eq!(shown(&table(&s)), want);
}

#[test]
fn an_unset_syncid_is_lvs_default() {
    let d = pb::SyncDaemon { role: SyncRole::Backup as i32, mcast_interface: "lan".into(), ..Default::default() };
    let s = pb::SyncStatus { daemons: vec![pb::SyncDaemonStatus { daemon: Some(d), ..Default::default() }], ..Default::default() };
    assert!(table(&s).starts_with("backup sync daemon (mcast=lan, syncid=255)\nbulk sync: none (0 of 0 sessions), not ready\n"), "{}", table(&s));
    assert_eq!(to_json(&s)["daemons"][0]["syncid"], Value::Null);
}

#[test]
fn json_names_roles_and_keeps_every_counter() {
    let mut s = both();
    s.dropped = [("no_laddr", 0), ("bad_entry", 5)].into_iter().map(|(r, n)| (r.to_owned(), n)).collect();
    s.bulk_served = 2;
    s.bulk_sent_conns = 1_500;
    let j = to_json(&s);
    assert_eq!(j["daemons"][0]["role"], "master");
    assert_eq!(j["daemons"][1]["role"], "backup");
    assert_eq!(j["daemons"][1]["syncid"], 2);
    assert_eq!(j["daemons"][0]["group"], "224.0.0.81");
    assert_eq!(j["daemons"][0]["source"], "keepalived.conf");
    assert_eq!(j["daemons"][0]["vrrp_instance"], "VI_1");
    assert_eq!(j["daemons"][0]["active"], true);
    assert_eq!(j["dropped"], json!({"bad_entry": 5, "no_laddr": 0}));
    assert_eq!((j["applied_conns"].as_u64(), j["bulk_served"].as_u64(), j["bulk_sent_conns"].as_u64()), (Some(2_990), Some(2), Some(1_500)));
    assert_eq!((j["bulk_state"].as_str(), j["ready"].as_bool()), (Some("done"), Some(true)));
    let empty = to_json(&pb::SyncStatus::default());
    assert_eq!(empty["daemons"], json!([]));
    assert_eq!(empty["dropped"], json!({}));
}

#[test]
fn roles_by_name() {
    assert_eq!(role_from_name("master"), Some(SyncRole::Master));
    assert_eq!(role_from_name("backup"), Some(SyncRole::Backup));
    for bad in ["Master", "BACKUP", "primary", ""] {
        assert_eq!(role_from_name(bad), None, "{bad}");
    }
    assert_eq!(role_name(SyncRole::Backup as i32), "backup");
    assert_eq!(role_name(7), "unspecified");
}
