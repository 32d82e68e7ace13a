//! `save` writes a keepalived.conf that parses back to the same settings.

mod common;

use std::path::Path;

use kaconf::parse_str;

#[test]
fn write_then_parse_gives_the_same_settings() {
    for (name, text) in common::samples() {
        let first = parse_str(text, Path::new(name)).unwrap();
        let written = first.to_keepalived_string();
        let second = parse_str(&written, Path::new("saved.conf"))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{written}"));
        assert!(second.same_settings(&first), "{name}:\n{written}");
        assert_ne!(
            second, first,
            "positions differ, so plain equality does not hold"
        );
        // Writing is normalizing: a second pass changes nothing.
        assert_eq!(second.to_keepalived_string(), written, "{name}");
    }
}

#[test]
fn written_form_is_normalized() {
    let c = parse_str(common::FLOW, Path::new("flow.conf")).unwrap();
    let expected = r#"local_address_group lip {
    10.0.0.100 dpdk0
    10.0.0.101 dpdk0
    10.0.0.102 dpdk0
    10.0.0.103 dpdk0
    10.0.0.200
}

virtual_server 10.0.0.10 443 {
    protocol UDP
    lb_algo conhash
    lb_kind FNAT
    delay_loop 60
    persistence_timeout 360
    persistence_granularity 255.255.255.0
    laddr_group_name lip
    alpha
    omega
    quorum 2
    hysteresis 1
    quorum_up "ip addr add 10.0.0.10/32 dev lo"
    quorum_down "/usr/local/bin/down.sh 10.0.0.10"
    tcp_draining_timeout 30
    flow_control_cps 10000
    flow_control_interval 1
    flow_control_pc 80
    client_ipaddr_allow {
        10.1.0.0/16
        10.2.0.0/16
        192.168.7.7/32
    }
    client_ipaddr_exclude {
        10.1.2.0/24
    }
    checker_merge
    sorry_server 10.0.9.9 443
    real_server 10.0.1.1 443 {
        weight 5
        UDP_CHECK {
            connect_port 53
            connect_timeout 2
            ping_check_off
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.1.2 443 {
        weight 0
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh 10.0.1.2"
            misc_timeout 2.5
            retry 0
            delay_before_retry 1
        }
    }
}
"#;
    assert_eq!(c.to_keepalived_string(), expected);
}

#[test]
fn vrrp_round_trip_keeps_odd_values() {
    let text = "vrrp_instance \"include\" {\n interface \"my if\"\n virtual_router_id 255\n\
                advert_int 0.25\n version 3\n preempt_delay 1.5\n state BACKUP\n\
                virtual_ipaddress_excluded {\n 10.9.0.1/8 label x\n }\n\
                track_interface {\n \"eth one\" weight 0\n eth2\n }\n notify \"/bin/n x\"\n}\n";
    let c = parse_str(text, Path::new("v.conf")).unwrap();
    assert_eq!(c.vrrp_instances[0].name, "include");
    assert_eq!(c.vrrp_instances[0].advert_int, 0.25);
    let written = c.to_keepalived_string();
    let again =
        parse_str(&written, Path::new("w.conf")).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert!(again.same_settings(&c), "{written}");
}

#[test]
fn syn_proxy_is_written_after_the_local_addresses() {
    let c = parse_str(common::DPVS_FNAT, Path::new("fnat.conf")).unwrap();
    let written = c.to_keepalived_string();
    assert!(
        written.contains("    laddr_group_name laddr_g1\n    syn_proxy\n"),
        "{written}"
    );
    let again = parse_str(&written, Path::new("w.conf")).unwrap();
    assert!(again.virtual_servers[0].syn_proxy);
    // Off: not written at all (keepalived without DPVS's patches would not know it).
    let off = parse_str(common::FLOW, Path::new("flow.conf")).unwrap();
    assert!(!off.to_keepalived_string().contains("syn_proxy"));
}
