//! What moves with an instance besides its virtual addresses, and which instances move
//! together.
//!
//! FNAT local addresses: keepalived has no keyword tying a `local_address_group` to a
//! `vrrp_instance`, so it is derived: a virtual server whose VIP is one of instance I's
//! addresses (`virtual_ipaddress` or `virtual_ipaddress_excluded`) brings its
//! `laddr_group_name`'s addresses to I. A group reached from instances that are not in one
//! sync group would have two owners: that is an error.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// For each instance (by name) the local addresses that move with it, with their port
/// (`LocalAddr::ifname`, else the instance's interface).
pub fn moving_local_addresses(
    cfg: &kaconf::Config,
) -> Result<BTreeMap<String, Vec<(String, Ipv4Addr)>>, String> {
    // group name -> (instance, the VIP that brought it there)
    let mut owner: BTreeMap<&str, (&kaconf::VrrpInstance, Ipv4Addr)> = BTreeMap::new();
    for vs in &cfg.virtual_servers {
        let Some(group) = vs.laddr_group_name.as_deref() else {
            continue;
        };
        let holds = |vi: &&kaconf::VrrpInstance| {
            vi.virtual_ipaddress
                .iter()
                .chain(&vi.virtual_ipaddress_excluded)
                .any(|v| v.addr.ip() == vs.vip)
        };
        for vi in cfg.vrrp_instances.iter().filter(holds) {
            match owner.get(group) {
                None => {
                    owner.insert(group, (vi, vs.vip));
                }
                Some((first, _)) if first.name == vi.name => {}
                Some((first, first_vip)) => {
                    if sync_group_of(cfg, &first.name).is_none()
                        || sync_group_of(cfg, &first.name) != sync_group_of(cfg, &vi.name)
                    {
                        return Err(format!(
                            "local_address_group {group} would move with vrrp_instance {} \
                             (VIP {first_vip}) and with vrrp_instance {} (VIP {}), which are \
                             not in one vrrp_sync_group",
                            first.name, vi.name, vs.vip
                        ));
                    }
                }
            }
        }
    }
    let mut out: BTreeMap<String, Vec<(String, Ipv4Addr)>> = BTreeMap::new();
    for (group, (vi, _)) in owner {
        let Some(g) = cfg.local_address_group(group) else {
            return Err(format!("no local_address_group named {group:?}"));
        };
        let list = out.entry(vi.name.clone()).or_default();
        for a in &g.addrs {
            let ifname = a.ifname.clone().unwrap_or_else(|| vi.interface.clone());
            if !list.iter().any(|(_, ip)| *ip == a.ip) {
                list.push((ifname, a.ip));
            }
        }
    }
    Ok(out)
}

/// The sync group an instance belongs to.
pub fn sync_group_of<'a>(cfg: &'a kaconf::Config, instance: &str) -> Option<&'a str> {
    cfg.vrrp_sync_groups
        .iter()
        .find(|g| g.group.iter().any(|m| m == instance))
        .map(|g| g.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> kaconf::Config {
        let text = format!(
            "local_address_group LA {{\n 10.0.9.1-2 dpdk1\n}}\n\
             local_address_group LB {{\n 10.0.9.5\n}}\n\
             vrrp_instance V1 {{\n interface dpdk0\n virtual_router_id 1\n\
              virtual_ipaddress {{\n 10.0.0.1\n }}\n}}\n\
             vrrp_instance V2 {{\n interface dpdk0\n virtual_router_id 2\n\
              virtual_ipaddress_excluded {{\n 10.0.0.2/24\n }}\n}}\n\
             virtual_server 10.0.0.1 80 {{\n lb_algo rr\n lb_kind FNAT\n laddr_group_name LA\n}}\n\
             virtual_server 10.0.0.3 80 {{\n lb_algo rr\n lb_kind FNAT\n laddr_group_name LB\n}}\n\
             {extra}"
        );
        kaconf::parse_str(&text, "t.conf".as_ref()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_group_follows_the_instance_holding_its_vip() {
        let m = moving_local_addresses(&conf("")).unwrap();
        let ip = |d| Ipv4Addr::new(10, 0, 9, d);
        // LA by its VIP 10.0.0.1 (with its ports); LB's VIP is in no instance: it stays.
        assert_eq!(
            m.get("V1").unwrap(),
            &[("dpdk1".to_string(), ip(1)), ("dpdk1".to_string(), ip(2))]
        );
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn excluded_vips_count_and_a_group_gets_the_instance_interface() {
        let extra =
            "virtual_server 10.0.0.2 81 {\n lb_algo rr\n lb_kind FNAT\n laddr_group_name LB\n}\n";
        let m = moving_local_addresses(&conf(extra)).unwrap();
        assert_eq!(
            m.get("V2").unwrap(),
            &[("dpdk0".to_string(), Ipv4Addr::new(10, 0, 9, 5))]
        );
    }

    #[test]
    fn one_group_under_two_unsynced_instances_is_an_error() {
        let extra =
            "virtual_server 10.0.0.2 80 {\n lb_algo rr\n lb_kind FNAT\n laddr_group_name LA\n}\n";
        let mut cfg = conf(extra);
        let e = moving_local_addresses(&cfg).unwrap_err();
        assert!(e.contains("local_address_group LA"), "{e}");
        assert!(
            e.contains("V1 (VIP 10.0.0.1)") && e.contains("V2 (VIP 10.0.0.2)"),
            "{e}"
        );
        // In one sync group they move together: the first instance carries the group.
        cfg.vrrp_sync_groups.push(kaconf::VrrpSyncGroup {
            name: "G".into(),
            group: vec!["V1".into(), "V2".into()],
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            file: "t.conf".into(),
            line: 1,
        });
        let m = moving_local_addresses(&cfg).unwrap();
        assert_eq!(m.get("V1").map(Vec::len), Some(2));
        assert!(!m.contains_key("V2"));
    }
}
