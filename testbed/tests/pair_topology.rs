//! Director pairs (`directors = 2`), plumbing only (VRRP itself is not
//! asserted): both lbd up on one client-facing bridge, each answering ping on
//! its own port address, both lb-slowpath running, director-2's file flipped
//! and its `bond0` interface mapped; director-1 frozen, resumed, killed and
//! started again (library and CLI); a keepalived peer running the file's
//! vrrp_instance in director-2 and killed/started with its VRRP child; and
//! teardowns that leave no namespace and no process.
//! Needs root, DPDK, iproute2, ethtool, nginx, curl, keepalived; `LBD_BIN` or
//! a built target/*/lbd, and lb-slowpath next to it (or `LB_SLOWPATH_BIN`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lb_testbed::{
    netns, unique_name, wait_until, PeerConfig, PeerKind, Testbed, TopologyRecord, UpOptions,
};

/// One FNAT service on two backends, one VRRP instance for its VIP on an
/// interface no port has (`bond0`, as users' files say).
const CONF: &str = "\
local_address_group laddr_g1 {
    10.70.2.100 lan
}
virtual_server 10.70.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    real_server 10.70.2.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.70.2.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
vrrp_instance VI_1 {
    state MASTER
    interface bond0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        10.70.1.100/24
    }
}
";

/// A config file removed on every path.
struct TempConf(PathBuf);

impl TempConf {
    fn new(name: &str) -> TempConf {
        let p = std::env::temp_dir().join(format!("lbt-{name}.conf"));
        std::fs::write(&p, CONF).unwrap();
        TempConf(p)
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The state letter of `pid` (`None` when gone or a zombie).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let s = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .next()?
        .chars()
        .next()?;
    (s != 'Z' && s != 'X').then_some(s)
}

fn alive(pid: u32) -> bool {
    state(pid).is_some()
}

fn frozen(pid: u32) -> bool {
    matches!(state(pid), Some('T' | 't'))
}

/// Waits (bounded) until `client` gets an echo reply from `addr`.
fn wait_ping(tb: &Testbed, addr: &str) {
    wait_until(
        &format!("no ping reply from {addr} (client of {})", tb.name()),
        Duration::from_secs(15),
        Duration::from_millis(200),
        || {
            Ok(tb
                .exec_timeout(
                    "client",
                    ["ping", "-n", "-c", "1", "-W", "1", addr],
                    Duration::from_secs(5),
                )?
                .status
                .success())
        },
    )
    .unwrap();
}

fn no_ping(tb: &Testbed, addr: &str) -> bool {
    !tb.exec_timeout(
        "client",
        ["ping", "-n", "-c", "2", "-W", "1", addr],
        Duration::from_secs(10),
    )
    .unwrap()
    .status
    .success()
}

fn mac_of(tb: &Testbed, node: &str, iface: &str) -> String {
    let out = tb
        .exec_ok(node, ["cat", &format!("/sys/class/net/{iface}/address")])
        .unwrap();
    out.trim().to_owned()
}

fn cli(name: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_lb-testbed"))
        .args(args)
        .args(["--name", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lb-testbed {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Nothing of topology `name` is left: namespaces, state, the given pids.
fn assert_gone(name: &str, pids: &[u32]) {
    let left: Vec<String> = netns::list()
        .unwrap()
        .into_iter()
        .filter(|ns| ns.starts_with(&format!("lbt-{name}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    for &p in pids {
        assert!(!alive(p), "pid {p} survived teardown");
    }
    assert!(!std::path::Path::new(&format!("/run/lb-testbed/{name}")).exists());
    assert!(!std::path::Path::new(&format!("/var/run/dpdk/lbt-{name}-d2")).exists());
}

#[test]
fn lbd_pair_plumbing() {
    let name = unique_name("pr");
    let conf = TempConf::new(&name);
    let opts = UpOptions::new(&name).with_pair(PeerKind::Lbd, PeerConfig::Priority(50));
    let tb = Testbed::up_from_keepalived(&conf.0, &opts).unwrap();
    assert_eq!(tb.directors(), 2);
    assert_eq!(
        tb.nodes()[..5],
        ["client", "director-1", "director-2", "wan", "lan"]
    );
    assert_eq!(
        tb.netns("director").unwrap(),
        tb.netns("director-1").unwrap()
    );

    let [l1, s1, _] = tb.director_pids(1);
    let [l2, s2, k2] = tb.director_pids(2);
    let (l1, s1, l2, s2) = (l1.unwrap(), s1.unwrap(), l2.unwrap(), s2.unwrap());
    assert_eq!(k2, None);
    for p in [l1, s1, l2, s2] {
        assert!(alive(p), "pid {p} is not running");
    }
    // Each lbd answers on its own port address over the shared segment.
    wait_ping(&tb, "10.70.1.1");
    wait_ping(&tb, "10.70.1.3");
    // Distinct, fixed MACs; distinct EAL prefixes and sockets.
    assert_eq!(mac_of(&tb, "director-1", "wan0"), "02:4c:42:00:01:01");
    assert_eq!(mac_of(&tb, "director-2", "wan0"), "02:4c:42:00:02:01");
    assert_eq!(mac_of(&tb, "director-2", "lan0"), "02:4c:42:00:02:02");
    let p2 = tb.director_paths(2);
    let toml2 = std::fs::read_to_string(p2.lbd_toml()).unwrap();
    assert!(
        toml2.contains(&format!("file_prefix = \"lbt-{name}-d2\"")),
        "{toml2}"
    );
    assert!(
        toml2.contains(&p2.api_socket().display().to_string()),
        "{toml2}"
    );
    assert!(p2.api_socket().exists() && tb.paths().api_socket().exists());
    // Director-2's file: state flipped, priority 50; both copies map bond0 onto wan.
    let c2 = kaconf::load(&p2.keepalived_conf()).unwrap();
    let vi = &c2.vrrp_instances[0];
    assert_eq!(
        (vi.state, vi.priority, vi.interface.as_str()),
        (kaconf::VrrpState::Backup, 50, "wan")
    );
    let c1 = kaconf::load(&tb.paths().keepalived_conf()).unwrap();
    assert_eq!(c1.vrrp_instances[0].interface, "wan");
    let original = kaconf::load(&conf.0).unwrap().without_positions();
    assert_eq!(
        c1.without_positions().virtual_servers,
        original.virtual_servers
    );
    let record = TopologyRecord::load(tb.paths()).unwrap().unwrap();
    assert_eq!(
        record.vrrp_interface_notes.len(),
        2,
        "{:?}",
        record.vrrp_interface_notes
    );
    assert!(record.vrrp_interface_notes[0].contains("bond0"));

    // Freeze director-1: its processes stop, its address goes quiet, director-2 answers.
    tb.stop_director(1, true).unwrap();
    assert!(
        frozen(l1) && frozen(s1),
        "lbd {:?}, lb-slowpath {:?}",
        state(l1),
        state(s1)
    );
    assert!(no_ping(&tb, "10.70.1.1"), "a frozen lbd answered ping");
    wait_ping(&tb, "10.70.1.3");
    tb.start_director(1).unwrap();
    assert!(!frozen(l1) && !frozen(s1) && alive(l1) && alive(s1));
    assert_eq!(tb.director_pids(1)[0], Some(l1));
    wait_ping(&tb, "10.70.1.1");

    // Kill director-1: gone; start: new processes, ready, answering.
    tb.stop_director(1, false).unwrap();
    assert!(!alive(l1) && !alive(s1));
    assert_eq!(tb.director_pids(1), [None, None, None]);
    assert!(
        tb.start_director(2).is_err(),
        "a running director-2 started again"
    );
    tb.start_director(1).unwrap();
    let [n1, ns1, _] = tb.director_pids(1);
    assert!(n1.is_some_and(|p| p != l1 && alive(p)) && ns1.is_some_and(alive));
    wait_ping(&tb, "10.70.1.1");

    // The CLI, on director-2: freeze, resume, kill, start.
    cli(&name, &["stop", "director-2", "--freeze"]);
    assert!(frozen(l2) && frozen(s2));
    cli(&name, &["start", "director-2"]);
    assert!(alive(l2) && !frozen(l2));
    cli(&name, &["stop", "director-2"]);
    assert!(!alive(l2) && !alive(s2));
    cli(&name, &["start", "director-2"]);
    wait_ping(&tb, "10.70.1.3");
    let r = TopologyRecord::load(tb.paths()).unwrap().unwrap();
    let pair = r.pair.unwrap();
    let (m2, ms2) = (pair.lbd_pid.unwrap(), pair.slowpath_pid.unwrap());
    assert!(alive(m2) && alive(ms2) && m2 != l2);

    let report = tb.down().unwrap();
    assert_eq!(report.namespaces_removed.len(), 7, "{report:?}");
    assert_gone(&name, &[n1.unwrap(), ns1.unwrap(), m2, ms2]);
}

#[test]
fn keepalived_peer_plumbing() {
    let name = unique_name("pk");
    let conf = TempConf::new(&name);
    let opts = UpOptions::new(&name).with_pair(PeerKind::Keepalived, PeerConfig::Priority(50));
    let tb = Testbed::up_from_keepalived(&conf.0, &opts).unwrap();
    let [l2, s2, k2] = tb.director_pids(2);
    assert_eq!((l2, s2), (None, None));
    let k2 = k2.unwrap();
    assert!(alive(k2));
    let p2 = tb.director_paths(2);
    let vrrp_child = std::fs::read_to_string(p2.keepalived_vrrp_pid())
        .unwrap()
        .trim()
        .parse::<u32>()
        .unwrap();
    assert!(alive(vrrp_child));
    let text = std::fs::read_to_string(p2.keepalived_vrrp_conf()).unwrap();
    assert!(
        text.contains("interface \"wan0\"") || text.contains("interface wan0"),
        "{text}"
    );
    assert!(
        text.contains("state BACKUP") && text.contains("priority 50"),
        "{text}"
    );
    assert!(!text.contains("virtual_server"), "{text}");
    wait_until(
        "keepalived did not log its instance",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || Ok(tb.keepalived_log()?.contains("(VI_1) Entering")),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", tb.keepalived_log().unwrap_or_default()));
    // Its kernel wan0 holds director-2's address; director-1's lbd answers on its own.
    wait_ping(&tb, "10.70.1.3");
    wait_ping(&tb, "10.70.1.1");

    // Kill (keepalived and its VRRP child), then start again.
    tb.stop_director(2, false).unwrap();
    assert!(!alive(k2) && !alive(vrrp_child));
    tb.start_director(2).unwrap();
    let k2b = tb.director_pids(2)[2].unwrap();
    assert!(alive(k2b) && k2b != k2);
    tb.stop_director(2, true).unwrap();
    assert!(frozen(k2b));
    tb.start_director(2).unwrap();
    assert!(!frozen(k2b));
    let l1 = tb.director_pids(1)[0].unwrap();

    let report = tb.down().unwrap();
    assert_eq!(report.namespaces_removed.len(), 7, "{report:?}");
    assert_gone(&name, &[k2b, l1]);
}
