//! The memif lab: addresses and MACs of the generator and the forwarder, and the files lbd
//! reads (lbd.toml, keepalived.conf).

use std::fmt::Write as _;
use std::path::Path;

/// Client addresses the generator plays (64 of them).
pub const CLIENTS: &str = "10.99.1.10-10.99.1.73";
/// Client addresses of the session-scale runs: 497 of them on a second wan subnet, enough for
/// 32 M flows (ports 1024-65535 each), beyond what the local ports once allowed.
pub const SESSION_CLIENTS: &str = "10.98.0.10-10.98.1.250";
/// The VIP.
pub const VIP: &str = "10.99.1.100";
/// Real servers the generator plays on the server side: ten, each in a bucket of its own in
/// the local-port pools (`fastpath::laddr::bucket_of`), so round-robin fills every bucket
/// evenly and the session-scale runs can hold 10 × 32 × 64,511 ≈ 20.6 M sessions (four real
/// servers gave 8.26 M; sixteen share buckets, and a shared bucket fills first).
pub const REAL_SERVERS: &str = "10.99.2.11-10.99.2.20";
/// Number of real servers (matching `REAL_SERVERS`).
const RS_COUNT: u8 = 10;
/// Local addresses: 32, so session and connection tests do not run out of local ports.
const LIPS: u8 = 32;
/// The forwarder's MACs (lbd and testpmd get the same).
pub const DUT_WAN_MAC: &str = "02:00:00:00:01:01";
pub const DUT_LAN_MAC: &str = "02:00:00:00:02:01";
/// The generator's MACs.
pub const GEN_WAN_MAC: &str = "02:00:00:00:01:0a";
pub const GEN_LAN_MAC: &str = "02:00:00:00:02:0a";
/// Service ports: TCP and UDP.
pub const TCP_PORT: u16 = 80;
pub const UDP_PORT: u16 = 53;

/// The keepalived.conf of the memif lab: a TCP and a UDP service on the VIP, ten real
/// servers, 32 local addresses.
pub fn keepalived_conf() -> String {
    keepalived_conf_with(&LbdExtras::default())
}

/// [`keepalived_conf`] with a scenario's additions (`syn_proxy` on the TCP service).
pub fn keepalived_conf_with(extras: &LbdExtras) -> String {
    let mut s = String::from(
        "! lb-bench memif lab (written by lb-bench)\nlocal_address_group laddr_g1 {\n",
    );
    for i in 0..LIPS {
        let _ = writeln!(s, "    10.99.2.{} lan", 100 + u16::from(i));
    }
    s.push_str("}\n");
    for (port, proto) in [(TCP_PORT, "TCP"), (UDP_PORT, "UDP")] {
        let _ = write!(s, "virtual_server {VIP} {port} {{\n    lb_algo rr\n    lb_kind FNAT\n    protocol {proto}\n    laddr_group_name laddr_g1\n");
        if extras.syn_proxy && proto == "TCP" {
            s.push_str("    syn_proxy\n");
        }
        for r in 0..RS_COUNT {
            let _ = write!(
                s,
                "    real_server 10.99.2.{} {port} {{\n        weight 1\n    }}\n",
                11 + r
            );
        }
        s.push_str("}\n");
    }
    s
}

/// What a scenario adds to the lab's lbd.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbdExtras {
    /// An exception TAP on the LAN port (`kernel_tap`; at most 15 characters): session sync
    /// multicasts through it.
    pub lan_tap: Option<String>,
    /// `syn_proxy` on the TCP service (keepalived.conf).
    pub syn_proxy: bool,
    /// lbd.toml `toa` (default `first-ack`).
    pub toa: Option<String>,
}

/// lbd.toml for the memif lab: a worker on each of `worker_cpus`, busy polling, two memif
/// client ports; the API socket in `dir` (`lbd.sock`).
pub fn lbd_toml(
    dir: &Path,
    no_huge: bool,
    file_prefix: &str,
    max_sessions: u64,
    worker_cpus: &[usize],
    extras: &LbdExtras,
) -> String {
    let workers = worker_cpus.len().max(1);
    let cpus = super::pair::Layout::list(worker_cpus);
    let d = dir.display();
    let lan_tap = extras
        .lan_tap
        .as_ref()
        .map(|t| format!("kernel_tap = \"{t}\"\n"))
        .unwrap_or_default();
    let toa = extras.toa.as_deref().unwrap_or("first-ack");
    format!(
        "# lb-bench memif lab (written by lb-bench)\n\
workers = {workers}\n\
idle_sleep_us = 0\n\
stats_file = \"{d}/stats.json\"\n\
api_socket = \"{d}/lbd.sock\"\n\
mbufs = 32767\n\
max_sessions = {max_sessions}\n\
services = \"{d}/keepalived.conf\"\n\
toa = \"{toa}\"\n\
[eal]\n\
no_huge = {no_huge}\n\
memory_mb = 512\n\
file_prefix = \"{file_prefix}\"\n\
worker_cpus = [{cpus}]\n\
[[port]]\n\
name = \"wan\"\n\
vdev = \"net_memif0,role=client,socket={d}/wan.sock,socket-abstract=no,mac={DUT_WAN_MAC}\"\n\
addresses = [\"10.99.1.1/24\", \"10.98.0.1/16\"]\n\
rx_desc = 1024\n\
tx_desc = 1024\n\
[[port]]\n\
name = \"lan\"\n\
vdev = \"net_memif1,role=client,socket={d}/lan.sock,socket-abstract=no,mac={DUT_LAN_MAC}\"\n\
addresses = [\"10.99.2.1/24\"]\n\
{lan_tap}\
rx_desc = 1024\n\
tx_desc = 1024\n\
[timeouts]\n\
tcpfin = 1\n\
tcp_close = 1\n"
    )
}

/// The keepalived.conf of the wrk test in the namespace testbed: the VIP with one real
/// server, so the director path and the direct path end at the same nginx.
pub fn wrk_keepalived_conf(vip: &str, rs: &str, lips: &[&str]) -> String {
    let mut s =
        String::from("! lb-bench wrk test (written by lb-bench)\nlocal_address_group laddr_g1 {\n");
    for l in lips {
        let _ = writeln!(s, "    {l} lan");
    }
    let _ = write!(
        s,
        "}}\nvirtual_server {vip} 80 {{\n    lb_algo rr\n    lb_kind FNAT\n    protocol TCP\n    laddr_group_name laddr_g1\n    real_server {rs} 80 {{\n        weight 1\n    }}\n}}\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_servers_spread_over_enough_local_port_buckets_for_20_m_sessions() {
        let buckets: std::collections::HashSet<usize> = (0..RS_COUNT)
            .map(|r| fastpath::laddr::bucket_of((std::net::Ipv4Addr::new(10, 99, 2, 11 + r), TCP_PORT)))
            .collect();
        assert_eq!(buckets.len(), usize::from(RS_COUNT), "a bucket of its own each");
        let capacity = buckets.len() * usize::from(LIPS) * 64_511;
        assert!(capacity >= 20_000_000, "{capacity} sessions");
    }

    #[test]
    fn configs_parse() {
        let dir = std::env::temp_dir().join(format!("lbbench-lab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ka = dir.join("keepalived.conf");
        std::fs::write(&ka, keepalived_conf()).unwrap();
        let cfg = kaconf::load(&ka).map(|c| c.virtual_servers.len());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(cfg.map_err(|e| e.to_string()), Ok(2));
        let toml = lbd_toml(Path::new("/run/x"), true, "p", 100, &[1], &LbdExtras::default());
        assert!(toml.contains("socket=/run/x/wan.sock") && toml.contains("no_huge = true"));
        assert!(toml.contains("workers = 1\n") && toml.contains("worker_cpus = [1]\n"), "{toml}");
        let two = lbd_toml(Path::new("/run/x"), true, "p", 100, &[2, 3], &LbdExtras::default());
        assert!(two.contains("workers = 2\n") && two.contains("worker_cpus = [2,3]\n"), "{two}");
        assert!(toml.contains("api_socket = \"/run/x/lbd.sock\"") && !toml.contains("kernel_tap"));
        let tap = LbdExtras {
            lan_tap: Some("lbs1".into()),
            ..LbdExtras::default()
        };
        let toml = lbd_toml(Path::new("/run/x"), true, "p", 100, &[1], &tap);
        let lan = toml.split("name = \"lan\"").nth(1).unwrap_or("");
        assert!(lan.contains("kernel_tap = \"lbs1\"\nrx_desc"), "{toml}");
        assert!(toml.contains("toa = \"first-ack\""));
        let sp = LbdExtras {
            syn_proxy: true,
            toa: Some("syn-and-first-ack".into()),
            ..LbdExtras::default()
        };
        let toml = lbd_toml(Path::new("/run/x"), true, "p", 100, &[1], &sp);
        assert!(toml.contains("toa = \"syn-and-first-ack\""), "{toml}");
        let ka = keepalived_conf_with(&sp);
        let path = dir.join("sp.conf");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, &ka).unwrap();
        let parsed = kaconf::load(&path).map(|c| {
            c.virtual_servers
                .iter()
                .map(|v| v.syn_proxy)
                .collect::<Vec<_>>()
        });
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(parsed.map_err(|e| e.to_string()), Ok(vec![true, false]));
        let tcp = ka.split("virtual_server").nth(1).unwrap_or("");
        let udp = ka.split("virtual_server").nth(2).unwrap_or("");
        assert!(
            tcp.contains("protocol TCP") && tcp.contains("syn_proxy"),
            "{ka}"
        );
        assert!(!udp.contains("syn_proxy") && !keepalived_conf().contains("syn_proxy"));
        let w = wrk_keepalived_conf("10.70.1.100", "10.70.2.11", &["10.70.2.100"]);
        assert!(w.contains("real_server 10.70.2.11 80"));
    }
}
