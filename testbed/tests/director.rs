//! The lbd side of the testbed, exercised with a fake lbd (a shell script
//! that reads lbd.toml, creates the TAPs and writes the stats file), so these
//! tests do not depend on the real daemon. Needs root, iproute2, nginx, curl.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lb_testbed::{down, netns, unique_name, Error, Testbed, TopologySpec, UpOptions};

/// How the fake lbd behaves.
#[derive(Clone, Copy)]
enum Mode {
    /// Creates the TAPs, writes stats, exits on SIGTERM.
    Ready,
    /// Like `Ready`, but ignores SIGTERM.
    Stubborn,
    /// Writes stats but never creates TAPs.
    NoTaps,
    /// Fails at once.
    Exit,
}

const FAKE_LBD: &str = r#"#!/bin/bash
# Fake lbd for lb-testbed's tests.
[ "$1" = --config ] || { echo "usage: lbd --config FILE" >&2; exit 2; }
cfg=$2
echo "fake lbd starting with $cfg in netns $(ip netns identify $$)"
if [ $MODE = exit ]; then echo "EAL: cannot open port wan0" >&2; exit 3; fi
stats=$(sed -n 's/^stats_file = "\([^"]*\)".*/\1/p' "$cfg")
if [ $MODE != notaps ]; then
    for t in $(sed -n 's/^kernel_tap = "\([^"]*\)".*/\1/p' "$cfg"); do
        ip tuntap add dev "$t" mode tap || exit 4
    done
fi
if [ $MODE = stubborn ]; then trap 'echo "fake lbd ignores SIGTERM"' TERM
else trap 'echo "fake lbd got SIGTERM"; exit 0' TERM; fi
n=0
while true; do
    n=$((n+1))
    echo "{\"ticks\": $n}" > "$stats.tmp" && mv "$stats.tmp" "$stats"
    sleep 0.2 & wait $!
done
"#;

/// A fake lbd in a temp directory, removed on drop.
struct FakeLbd(PathBuf);

impl std::ops::Deref for FakeLbd {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for FakeLbd {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes a fake lbd in `mode` to a fresh temp directory.
fn fake_lbd(mode: Mode) -> FakeLbd {
    let mode = match mode {
        Mode::Ready => "ready",
        Mode::Stubborn => "stubborn",
        Mode::NoTaps => "notaps",
        Mode::Exit => "exit",
    };
    let dir = std::env::temp_dir().join(unique_name("lbt-fake-lbd-"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lbd");
    std::fs::write(
        &path,
        FAKE_LBD.replacen("cfg=$2", &format!("cfg=$2\nMODE={mode}"), 1),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    FakeLbd(path)
}

fn opts(name: &str, lbd: &Path) -> UpOptions {
    UpOptions {
        lbd_path: Some(lbd.to_owned()),
        ready_timeout: Duration::from_secs(10),
        ..UpOptions::new(name)
    }
}

fn spec() -> TopologySpec {
    TopologySpec::default().with_backend_count(1)
}

fn assert_gone(name: &str) {
    let prefix = format!("lbt-{name}-");
    let left: Vec<String> = netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left over: {left:?}");
    assert!(
        !Path::new("/run/lb-testbed").join(name).exists(),
        "state dir of {name} left over"
    );
    assert!(!Path::new("/var/run/dpdk")
        .join(format!("lbt-{name}"))
        .exists());
}

#[test]
fn lbd_started_in_director_taps_configured_then_stopped() {
    let name = unique_name("d");
    let lbd = fake_lbd(Mode::Ready);
    let mut tb = Testbed::up(&spec(), &opts(&name, &lbd)).unwrap_or_else(|e| panic!("{e}"));
    assert!(tb.lbd_running());

    // The recorded pid is lbd itself (setsid and ip netns exec exec in place),
    // running in the director namespace, in its own session.
    let pid = tb.lbd_pid().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains(&format!(
            "{} --config /run/lb-testbed/{name}/lbd.toml",
            lbd.display()
        )),
        "{cmdline}"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(
        fields[3],
        pid.to_string(),
        "lbd should lead its own session: {stat}"
    );
    let pidfile = std::fs::read_to_string(tb.state_dir().join("lbd.pid")).unwrap();
    assert_eq!(pidfile.trim(), pid.to_string());

    // lbd.toml as contracted.
    let toml = std::fs::read_to_string(tb.state_dir().join("lbd.toml")).unwrap();
    // The default driver: af_xdp where this host has it.
    let driver = lb_testbed::Driver::preferred(1);
    for (i, iface) in ["wan0", "lan0"].into_iter().enumerate() {
        let vdev = format!("vdev = \"{}\"", driver.vdev(i, iface));
        assert!(toml.contains(&vdev), "{vdev} in {toml}");
    }
    assert!(
        toml.contains(&format!("file_prefix = \"lbt-{name}\"")),
        "{toml}"
    );

    // The kernel side of the TAPs got its addresses.
    let addrs = tb.exec_ok("director", ["ip", "-4", "-br", "addr"]).unwrap();
    assert!(
        addrs.contains("tap-wan") && addrs.contains("10.70.1.2/24"),
        "{addrs}"
    );
    assert!(
        addrs.contains("tap-lan") && addrs.contains("10.70.2.2/24"),
        "{addrs}"
    );

    let stats = tb.read_stats().unwrap();
    assert!(stats["ticks"].as_u64().is_some(), "{stats}");
    let log = tb.lbd_log().unwrap();
    assert!(
        log.contains(&format!("in netns lbt-{name}-director")),
        "{log}"
    );

    let log_path = tb.lbd_log_path();
    let report = tb.down().unwrap();
    assert_eq!(report.lbd_stopped, Some(pid));
    assert!(!log_path.exists());
    assert_gone(&name);
}

#[test]
fn lbd_exiting_early_fails_with_its_log_and_cleans_up() {
    let name = unique_name("d");
    let lbd = fake_lbd(Mode::Exit);
    let err = Testbed::up(&spec(), &opts(&name, &lbd)).unwrap_err();
    assert!(matches!(err, Error::LbdExited { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("exit status: 3") && msg.contains("EAL: cannot open port wan0"),
        "{msg}"
    );
    assert_gone(&name);
}

#[test]
fn lbd_never_ready_times_out_naming_what_is_missing() {
    let name = unique_name("d");
    let lbd = fake_lbd(Mode::NoTaps);
    let o = UpOptions {
        ready_timeout: Duration::from_secs(1),
        ..opts(&name, &lbd)
    };
    let start = Instant::now();
    let err = Testbed::up(&spec(), &o).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("lbd did not become ready within 1s"),
        "{msg}"
    );
    assert!(
        msg.contains("interface tap-wan")
            && msg.contains(&format!("/run/lb-testbed/{name}/lbd.log")),
        "{msg}"
    );
    assert!(msg.contains("fake lbd starting"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_gone(&name);
}

#[test]
fn stubborn_lbd_is_killed_after_grace() {
    let name = unique_name("d");
    let lbd = fake_lbd(Mode::Stubborn);
    let tb = Testbed::up(&spec(), &opts(&name, &lbd)).unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    tb.down().unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_gone(&name);
}

#[test]
fn detached_lbd_is_stopped_by_name() {
    let name = unique_name("d");
    let lbd = fake_lbd(Mode::Ready);
    let tb = Testbed::up(&spec(), &opts(&name, &lbd)).unwrap_or_else(|e| panic!("{e}"));
    let pid = tb.lbd_pid().unwrap();
    let name = tb.detach();
    // As `lb-testbed down` would, from the pid file, gracefully.
    let report = down(&name).unwrap();
    assert_eq!(report.lbd_stopped, Some(pid));
    assert_gone(&name);
}

#[test]
fn missing_lbd_binary_creates_nothing() {
    let name = unique_name("d");
    let err = Testbed::up(&spec(), &opts(&name, Path::new("/nonexistent/lbd"))).unwrap_err();
    assert!(matches!(err, Error::LbdNotFound(_)), "{err}");
    assert_gone(&name);
}
