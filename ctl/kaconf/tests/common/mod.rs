//! Literal configurations shared by the tests, and a scratch directory helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// DPVS's FNAT example: a local address group on dpdk0 and two TCP-checked real servers.
pub const DPVS_FNAT: &str = r#"! Configuration File for keepalived (DPVS, FNAT)

global_defs {
    router_id DPVS_DEVEL
}

local_address_group laddr_g1 {
    192.168.100.200 dpdk0    # one local address per line
    192.168.100.201 dpdk0
}

#
# Virtual Server Section
#
virtual_server 192.168.100.254 80 {
    delay_loop 3
    lb_algo rr         # scheduling algorithm Round-Robin
    lb_kind FNAT       # Forwarding Mode Full-NAT
    protocol TCP       # Protocol TCP

    laddr_group_name laddr_g1   # Local IP group-ID

    real_server 192.168.100.2 80 { # real-server
        weight 100
        inhibit_on_failure
        TCP_CHECK {    # health check
            nb_sock_retry 2
            connect_timeout 3
            connect_port 80
        }
    }

    real_server 192.168.100.3 80 { # real-server
        weight 100
        inhibit_on_failure
        TCP_CHECK { # health check
            nb_sock_retry 2
            connect_timeout 3
            connect_port 80
        }
    }
    syn_proxy          # answer SYNs with cookies (DPVS, Alibaba LVS)
}
"#;

/// keepalived's classic DR sample with a VRRP instance and HTTP checks.
pub const DR_VRRP: &str = r#"! Configuration File for keepalived

global_defs {
   notification_email {
     acassen@firewall.loc
     failover@firewall.loc
   }
   notification_email_from Alexandre.Cassen@firewall.loc
   smtp_server 192.168.200.1
   smtp_connect_timeout 30
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    unicast_src_ip 192.168.200.2
    unicast_peer {
        192.168.200.3
    }
    track_interface {
        eth1 weight -20
    }
    virtual_ipaddress {
        192.168.200.16
        192.168.200.17/24 dev eth0 label eth0:1
    }
    garp_master_delay 10
}

virtual_server 192.168.200.16 80 {
    delay_loop 6
    lvs_sched wlc
    lvs_method DR
    persistence_timeout 50
    protocol TCP

    real_server 192.168.201.100 80 {
        weight 1
        HTTP_GET {
            url {
              path /healthz
              status_code 200
            }
            url {
              path /testurl2/test.jsp
              digest 640205b7b0fc66c1ea91c463fac6334d
            }
            connect_timeout 0.5
            nb_get_retry 3
            delay_before_retry 3
        }
    }

    real_server 192.168.201.101 80 {
        weight 2
        SSL_GET {
            url {
              path /healthz
              status_code 204
            }
        }
    }
}
"#;

/// The director's own keywords: flow control, client allow/exclude lists, draining; `{` on
/// the next line, both comment kinds, a group defined after its use.
pub const FLOW: &str = r#"# flow control and client lists
virtual_server 10.0.0.10 443
{
    lb_algo conhash
    lb_kind FNAT
    protocol UDP
    laddr_group_name lip   ! defined below
    persistence_timeout
    persistence_granularity 255.255.255.0
    flow_control_cps 10000
    flow_control_interval 1
    flow_control_pc 80
    tcp_draining_timeout 30
    client_ipaddr_allow {
        10.1.0.0/16 10.2.0.0/16
        192.168.7.7
    }
    client_ipaddr_exclude 10.1.2.0/24
    alpha
    omega
    quorum 2
    hysteresis 1
    quorum_up "ip addr add 10.0.0.10/32 dev lo"
    quorum_down /usr/local/bin/down.sh 10.0.0.10
    checker_merge
    sorry_server 10.0.9.9 443
    connect_timeout 2
    real_server 10.0.1.1 443
    {
        weight 5
        UDP_CHECK {
            connect_port 53
            ping_check_off
        }
    }
    real_server 10.0.1.2 443 {
        weight 0
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh 10.0.1.2"
            misc_timeout 2.5
        }
    }
}

local_address_group lip
{
    10.0.0.100-103 dpdk0
    10.0.0.200
}
"#;

/// keepalived's virtual_server_group sample without its fwmark members: one service per
/// address and port, a last-octet range among them.
pub const VSG: &str = r#"virtual_server_group VSG_1 {
    10.0.0.1 8080
    10.0.0.2 80
    192.168.200.3-10 80
}

virtual_server group VSG_1 {
    delay_loop 6
    lb_algo rr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP

    real_server 192.168.200.1 1358 {
        weight 1
        delay_loop 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"#;

pub fn samples() -> [(&'static str, &'static str); 4] {
    [
        ("fnat.conf", DPVS_FNAT),
        ("dr.conf", DR_VRRP),
        ("flow.conf", FLOW),
        ("vsg.conf", VSG),
    ]
}

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "kaconf-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}
