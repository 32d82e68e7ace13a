//! Network-namespace plumbing through iproute2, sysctl and ethtool.
//!
//! Interfaces are always created directly inside their namespaces
//! (`ip link add A netns X type veth peer name B netns Y`), so nothing ever
//! appears in the root namespace, and topologies can reuse interface names.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::cmd::{self, Cmd};
use crate::error::{Error, Result};
use crate::spec::Ipv4Cidr;

/// Offloads switched off on every veth end (`ethtool -K <if> ...`).
const OFFLOADS: [&str; 5] = ["rx", "tx", "tso", "gso", "gro"];

/// All network namespaces (`ip netns list`), names only.
pub fn list() -> Result<Vec<String>> {
    let out = Cmd::root(["ip", "netns", "list"]).run_short()?;
    // Lines look like `name` or `name (id: 3)`.
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Creates namespace `ns` and brings its `lo` up.
pub(crate) fn add(ns: &str) -> Result<()> {
    // The first `ip netns add` after boot sets up the /run/netns mount; keep
    // parallel tests of one process from racing on it.
    static ADD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    {
        let _serialised = ADD.lock().unwrap_or_else(|e| e.into_inner());
        Cmd::root(["ip", "netns", "add", ns]).run_short()?;
    }
    link_up(ns, "lo")
}

/// Deletes namespace `ns`.
pub(crate) fn del(ns: &str) -> Result<()> {
    Cmd::root(["ip", "netns", "del", ns]).run_short().map(drop)
}

/// A veth pair with end `a` in `ns_a` and end `b` in `ns_b`.
pub(crate) fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<()> {
    Cmd::root([
        "ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
    ])
    .run_short()
    .map(drop)
}

/// A Linux bridge `name` in `ns` (STP off, so ports forward at once).
pub(crate) fn bridge(ns: &str, name: &str) -> Result<()> {
    Cmd::ip(
        ns,
        ["link", "add", name, "type", "bridge", "stp_state", "0"],
    )
    .run_short()
    .map(drop)
}

/// Enslaves `iface` to `bridge`.
pub(crate) fn set_master(ns: &str, iface: &str, bridge: &str) -> Result<()> {
    Cmd::ip(ns, ["link", "set", iface, "master", bridge])
        .run_short()
        .map(drop)
}

/// `ip link set <iface> up`.
pub(crate) fn link_up(ns: &str, iface: &str) -> Result<()> {
    Cmd::ip(ns, ["link", "set", iface, "up"])
        .run_short()
        .map(drop)
}

/// Whether `iface` exists in `ns`.
pub(crate) fn link_exists(ns: &str, iface: &str) -> Result<bool> {
    let out = Cmd::ip(ns, ["link", "show", "dev", iface]).output(cmd::SHORT)?;
    Ok(out.status.success())
}

/// `ip addr add <cidr> dev <iface>`.
pub(crate) fn addr_add(ns: &str, iface: &str, addr: Ipv4Cidr) -> Result<()> {
    Cmd::ip(ns, ["addr", "add", &addr.to_string(), "dev", iface])
        .run_short()
        .map(drop)
}

/// `ip route add <dest> via <via>`; `dest` `None` is the default route.
pub(crate) fn route_add(ns: &str, dest: Option<Ipv4Cidr>, via: Ipv4Addr) -> Result<()> {
    let dest = dest.map_or_else(|| "default".to_owned(), |d| d.to_string());
    Cmd::ip(ns, ["route", "add", &dest, "via", &via.to_string()])
        .run_short()
        .map(drop)
}

/// Sets sysctls inside `ns` in one `sysctl -w` call.
pub(crate) fn sysctls(ns: &str, settings: &[(String, &str)]) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    let mut argv = vec!["sysctl".to_owned(), "-q".to_owned(), "-w".to_owned()];
    argv.extend(settings.iter().map(|(k, v)| format!("{k}={v}")));
    Cmd::in_netns(ns, argv).run_short().map(drop)
}

/// Disables IPv6 on `ifaces` in `ns` (no router solicitations, MLD or DAD noise).
pub(crate) fn disable_ipv6(ns: &str, ifaces: &[&str]) -> Result<()> {
    let settings: Vec<(String, &str)> = ifaces
        .iter()
        .map(|i| {
            (
                format!("net.ipv6.conf.{}.disable_ipv6", i.replace('.', "/")),
                "1",
            )
        })
        .collect();
    sysctls(ns, &settings)
}

/// Turns off rx/tx checksum, TSO, GSO and GRO offloads on `iface` in `ns`.
///
/// Features a driver does not support are ignored, but tx checksum offload
/// must end up off: with it on, packet sockets in the director see partial
/// checksums.
pub(crate) fn offloads_off(ns: &str, iface: &str) -> Result<()> {
    let mut all = vec!["ethtool", "-K", iface];
    for f in OFFLOADS {
        all.extend([f, "off"]);
    }
    if Cmd::in_netns(ns, &all).run_short().is_err() {
        // Some feature is not supported: set them one at a time.
        for f in OFFLOADS {
            let _ = Cmd::in_netns(ns, ["ethtool", "-K", iface, f, "off"]).run_short();
        }
    }
    let features = Cmd::in_netns(ns, ["ethtool", "-k", iface]).run_short()?;
    let tx_on = features
        .lines()
        .find_map(|l| l.trim().strip_prefix("tx-checksumming:"))
        .is_some_and(|v| v.trim().starts_with("on"));
    if tx_on {
        return Err(Error::CommandFailed {
            command: format!("ethtool -K {iface} tx off"),
            location: format!("in netns {ns}"),
            status: "tx-checksumming is still on".into(),
            stderr: features.trim().to_owned(),
        });
    }
    Ok(())
}

/// Pids of the processes in `ns` (`ip netns pids`).
pub(crate) fn pids(ns: &str) -> Result<Vec<u32>> {
    let out = Cmd::root(["ip", "netns", "pids", ns]).run_short()?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Kills every process in `namespaces`: SIGTERM, up to `grace` to exit, then
/// SIGKILL and up to 5 s more. Returns one line per namespace still holding
/// processes.
pub(crate) fn kill_all(namespaces: &[String], grace: Duration) -> Vec<String> {
    let alive = |ns: &String| -> Result<Vec<u32>> {
        pids(ns).map(|p| p.into_iter().filter(|&p| cmd::pid_alive(p)).collect())
    };
    for (signal, wait) in [("TERM", grace), ("KILL", Duration::from_secs(5))] {
        let mut targets: BTreeSet<u32> = BTreeSet::new();
        for ns in namespaces {
            if let Ok(p) = alive(ns) {
                targets.extend(p);
            }
        }
        if targets.is_empty() {
            return Vec::new();
        }
        for &pid in &targets {
            let _ = cmd::signal(pid, signal);
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && targets.iter().any(|&p| cmd::pid_alive(p)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut problems = Vec::new();
    // A namespace whose pids cannot be listed (a stale /run/netns entry left
    // by an interrupted `ip netns add`) is judged by whether it can be deleted.
    for ns in namespaces {
        if let Ok(p) = alive(ns) {
            if !p.is_empty() {
                problems.push(format!("processes {p:?} in netns {ns} survived SIGKILL"));
            }
        }
    }
    problems
}
