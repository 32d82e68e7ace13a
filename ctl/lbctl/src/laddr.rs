//! `-G|--get-laddr`: the local addresses of each FNAT service, in the layout of DPVS's
//! ipvsadm (title, one line per service with its count, one indented line per address).
//! lbd does not count port conflicts or connections per local address (the `no_local_port`
//! drop and the service counters do); those two columns show `-`.

use std::fmt::Write;

use lb_api::pb;
use serde_json::{json, Value};

use crate::args::LaddrOf;

/// One service's local addresses, as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLaddrs {
    pub key: pb::ServiceKey,
    pub group: String,
    pub addrs: Vec<pb::LocalAddress>,
}

/// The request fields for a [`LaddrOf`]: a group name, or a service key.
pub fn request_target(of: LaddrOf) -> (String, Option<pb::ServiceKey>) {
    match of {
        LaddrOf::Group(g) => (g, None),
        LaddrOf::Service(k) => (String::new(), Some(k)),
    }
}

/// The FNAT services (or the one asked for) with the addresses of their groups, in the
/// order lbd lists the services. Asking for a service that does not exist or does not
/// forward by FNAT is an error, as in DPVS.
pub fn per_service(services: &[pb::Service], groups: &[pb::LocalAddressGroup], only: Option<&pb::ServiceKey>) -> Result<Vec<ServiceLaddrs>, String> {
    if let Some(k) = only {
        match services.iter().find(|s| s.key.as_ref() == Some(k)) {
            None => return Err(format!("service {k} does not exist")),
            Some(s) if s.forward != pb::ForwardMode::Fnat as i32 => return Err(format!("service {k} forwards by {}: it has no local addresses", lb_api::forward_name(s.forward))),
            Some(_) => {}
        }
    }
    Ok(services
        .iter()
        .filter(|s| s.forward == pb::ForwardMode::Fnat as i32)
        .filter(|s| only.is_none() || s.key.as_ref() == only)
        .map(|s| ServiceLaddrs {
            key: s.key.clone().unwrap_or_default(),
            group: s.laddr_group.clone(),
            addrs: groups.iter().find(|g| !s.laddr_group.is_empty() && g.name == s.laddr_group).map(|g| g.addrs.clone()).unwrap_or_default(),
        })
        .collect())
}

/// DPVS's `ipvsadm -G` text.
pub fn dpvs_table(list: &[ServiceLaddrs]) -> String {
    let mut o = format!("{:<20} {:<8} {:<20} {:<10} {:<10}\n", "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS");
    for s in list {
        let _ = writeln!(o, "{:<20} {:<8} ", format!("{}:{}", s.key.vip, s.key.port), s.addrs.len());
        for a in &s.addrs {
            let _ = writeln!(o, "{:<20} {:<8} {:<20} {:<10} {:<10}", "", "", a.addr, "-", "-");
        }
    }
    o
}

/// `-G -o json`.
pub fn json(list: &[ServiceLaddrs]) -> Value {
    json!({"services": list.iter().map(|s| {
        let mut v = crate::json::key(Some(&s.key));
        v["laddr_group"] = if s.group.is_empty() { Value::Null } else { json!(s.group) };
        v["laddrs"] = s.addrs.iter().map(|a| json!({"addr": a.addr, "ifname": if a.ifname.is_empty() { Value::Null } else { json!(a.ifname) }})).collect();
        v
    }).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u32) -> pb::ServiceKey {
        pb::ServiceKey { vip: "10.0.1.100".into(), port, protocol: pb::Protocol::Tcp as i32 }
    }

    fn svc(port: u32, forward: pb::ForwardMode, group: &str) -> pb::Service {
        pb::Service { key: Some(key(port)), forward: forward as i32, laddr_group: group.into(), ..Default::default() }
    }

    #[test]
    fn fnat_services_with_their_groups_addresses_in_dpvs_layout() {
        let services = [svc(80, pb::ForwardMode::Fnat, "tcp-10.0.1.100-80"), svc(81, pb::ForwardMode::Dr, ""), svc(82, pb::ForwardMode::Fnat, "")];
        let addr = |a: &str| pb::LocalAddress { addr: a.into(), ifname: "lan".into() };
        let groups = [pb::LocalAddressGroup { name: "tcp-10.0.1.100-80".into(), addrs: vec![addr("10.0.2.201"), addr("10.0.2.202")], used_by: vec![] }];
        let all = per_service(&services, &groups, None).unwrap();
        assert_eq!(all.iter().map(|s| (s.key.port, s.addrs.len())).collect::<Vec<_>>(), vec![(80, 2), (82, 0)], "DR has none; FNAT without a group has none");
        // DPVS: "%-20s %-8s %-20s %-10s %-10s\n" title, "%-20s %-8u \n" service, address lines
        // under empty first columns.
        let want = concat!(
            "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n",
            "10.0.1.100:80        2        \n",
            "                              10.0.2.201           -          -         \n",
            "                              10.0.2.202           -          -         \n",
            "10.0.1.100:82        0        \n",
        );
        assert_eq!(dpvs_table(&all), want);
        let one = per_service(&services, &groups, Some(&key(82))).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(json(&one)["services"][0]["laddr_group"], Value::Null);
        assert_eq!(json(&all)["services"][0]["laddrs"][1]["addr"], "10.0.2.202");
        assert!(per_service(&services, &groups, Some(&key(81))).unwrap_err().contains("forwards by dr"));
        assert!(per_service(&services, &groups, Some(&key(99))).unwrap_err().contains("does not exist"));
    }
}
