//! `lbctl vrrp`: the VRRP instances lb-slowpath reported to lbd, and which VIPs and local
//! addresses this director owns (answers ARP for and forwards) because of them.

use std::fmt::Write as _;

use lb_api::pb;
use serde_json::Value;

use crate::table::age;

/// The instances, then the addresses.
pub fn table(r: &pb::ListVrrpResponse, now_ms: i64) -> String {
    let mut o = String::new();
    if r.instances.is_empty() {
        o.push_str("no VRRP instances reported (lb-slowpath runs no vrrp_instance): every address is owned unless set otherwise\n");
    } else {
        let _ = writeln!(o, "{:<16} {:<10} {:>4} {:<7} {:>8} {:<15} {:>7} {:>5} {:>6}", "Instance", "Interface", "VRID", "State", "Prio/Eff", "Master", "Since", "Trans", "Errors");
        for v in &r.instances {
            let group = if v.sync_group.is_empty() { String::new() } else { format!("  (sync group {})", v.sync_group) };
            let _ = writeln!(
                o,
                "{:<16} {:<10} {:>4} {:<7} {:>8} {:<15} {:>7} {:>5} {:>6}{group}",
                v.name,
                if v.interface.is_empty() { "-" } else { &v.interface },
                v.vrid,
                v.state,
                format!("{}/{}", v.priority, v.effective_priority),
                if v.master_addr.is_empty() { "-" } else { &v.master_addr },
                age(v.since_unix_ms, now_ms),
                v.transitions,
                v.auth_errors + v.other_errors
            );
        }
    }
    o.push('\n');
    let _ = writeln!(o, "{:<15} {:<5} {:<9} Instance", "Address", "Kind", "Owned");
    for a in &r.addresses {
        let kind = if a.kind.is_empty() { "-" } else { &a.kind };
        let owned = if a.owned { "owned" } else { "not owned" };
        let _ = writeln!(o, "{:<15} {kind:<5} {owned:<9} {}", a.addr, if a.instance.is_empty() { "-" } else { &a.instance });
    }
    if r.addresses.iter().any(|a| a.kind.is_empty()) {
        o.push_str("(kind -: not a VIP or local address of this lbd; kept for when it becomes one)\n");
    }
    o
}

/// `-o json` (generated: see `json`).
pub fn to_json(r: &pb::ListVrrpResponse) -> Value {
    crate::json::message(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(s: &str) -> String {
        s.lines().map(|l| format!("{l}$\n")).collect()
    }

    fn demo() -> pb::ListVrrpResponse {
        let now = 1_000_000_000;
        pb::ListVrrpResponse {
            instances: vec![
                pb::VrrpInstanceStatus {
                    name: "VI_1".into(),
                    state: "MASTER".into(),
                    priority: 150,
                    effective_priority: 150,
                    master_addr: "10.70.1.2".into(),
                    since_unix_ms: now - 185_000,
                    transitions: 3,
                    interface: "wan".into(),
                    vrid: 51,
                    addresses: vec!["10.70.1.100".into()],
                    adverts_sent: 900,
                    sync_group: "G1".into(),
                    ..Default::default()
                },
                pb::VrrpInstanceStatus {
                    name: "VI_2".into(),
                    state: "BACKUP".into(),
                    priority: 100,
                    effective_priority: 90,
                    master_addr: "10.70.2.3".into(),
                    since_unix_ms: now - 42_000,
                    transitions: 1,
                    interface: "lan".into(),
                    vrid: 52,
                    auth_errors: 2,
                    other_errors: 1,
                    ..Default::default()
                },
            ],
            addresses: vec![
                pb::AddressOwnership { addr: "10.70.1.100".into(), owned: true, instance: "VI_1".into(), kind: "vip".into() },
                pb::AddressOwnership { addr: "10.70.2.100".into(), owned: false, instance: "VI_2".into(), kind: "laddr".into() },
                pb::AddressOwnership { addr: "10.70.2.200".into(), owned: true, instance: String::new(), kind: "laddr".into() },
                pb::AddressOwnership { addr: "10.70.9.9".into(), owned: false, instance: "VI_2".into(), kind: String::new() },
            ],
        }
    }

    #[test]
    fn instances_then_addresses() {
        let want = "\
Instance         Interface  VRID State   Prio/Eff Master            Since Trans Errors$
VI_1             wan          51 MASTER   150/150 10.70.1.2         3m05s     3      0  (sync group G1)$
VI_2             lan          52 BACKUP    100/90 10.70.2.3           42s     1      3$
$
Address         Kind  Owned     Instance$
10.70.1.100     vip   owned     VI_1$
10.70.2.100     laddr not owned VI_2$
10.70.2.200     laddr owned     -$
10.70.9.9       -     not owned VI_2$
(kind -: not a VIP or local address of this lbd; kept for when it becomes one)$
";
        assert_eq!(shown(&table(&demo(), 1_000_000_000)), want);
    }

    #[test]
    fn without_vrrp_it_says_so() {
        let r = pb::ListVrrpResponse { instances: vec![], addresses: vec![pb::AddressOwnership { addr: "10.70.1.100".into(), owned: true, instance: String::new(), kind: "vip".into() }] };
        let want = "\
no VRRP instances reported (lb-slowpath runs no vrrp_instance): every address is owned unless set otherwise$
$
Address         Kind  Owned     Instance$
10.70.1.100     vip   owned     -$
";
        assert_eq!(shown(&table(&r, 0)), want);
    }

    #[test]
    fn json_has_names_and_nulls() {
        let j = to_json(&demo());
        assert_eq!(j["instances"][1]["state"], "BACKUP");
        assert_eq!(j["instances"][1]["sync_group"], Value::Null);
        assert_eq!(j["instances"][0]["effective_priority"], 150);
        assert_eq!(j["addresses"][1]["owned"], false);
        assert_eq!(j["addresses"][3]["kind"], Value::Null);
    }
}
