//! The testbed's process plumbing around health checks: lb-slowpath started
//! beside lbd and connected, a backend stopped and started (nginx gone and
//! back, the TCP_CHECK transitions in the slowpath log), lb-slowpath and lbd
//! killed and started again, and a teardown that leaves no namespace and no
//! process; plus `lb-testbed backend stop|start` and `status` from the CLI.
//! Needs root, DPDK, iproute2, ethtool, nginx, curl; `LBD_BIN` or a built
//! target/*/lbd, and lb-slowpath next to it (or `LB_SLOWPATH_BIN`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lb_testbed::{netns, unique_name, Testbed, TopologyRecord, UpOptions};

const VIP: &str = "10.70.1.100";
const DEAD: &str = "rs-10.70.2.12";

/// Two real servers behind one FNAT service, each with a fast TCP_CHECK: a
/// stopped nginx is down after one refused connect, back after one success.
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
            retry 0
        }
    }
    real_server 10.70.2.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
";

/// Bound for a health transition to show in the slowpath log (delay_loop 1 s,
/// connect_timeout 1 s, no retries: ~2 s; generous for a loaded machine).
const TRANSITION: Duration = Duration::from_secs(15);

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

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
    })
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// `curl /healthz` of the dead-to-be backend from `node`: `Some(body)` or `None` if refused.
fn healthz(tb: &Testbed, node: &str) -> Option<String> {
    let out = tb
        .exec(
            node,
            [
                "curl",
                "-sS",
                "--max-time",
                "3",
                "http://10.70.2.12/healthz",
            ],
        )
        .unwrap_or_else(|e| panic!("curl from {node}: {e}"));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nginx_pid(tb: &Testbed) -> Option<u32> {
    let p = tb.state_dir().join(DEAD).join("nginx.pid");
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&p| alive(p))
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lb-testbed"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lb-testbed {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(name: &str) -> serde_json::Value {
    serde_json::from_str(&cli(&["status", "--json", "--name", name])).unwrap()
}

fn assert_gone(name: &str, pids: &[(u32, &str)]) {
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
    for &(pid, what) in pids {
        assert!(
            !alive(pid),
            "{what} (pid {pid}) left running: {}",
            cmdline(pid)
        );
    }
}

#[test]
fn slowpath_beside_lbd_backend_and_daemon_restarts() {
    let started = Instant::now();
    let name = unique_name("sp");
    let conf = TempConf::new(&name);
    let opts = UpOptions {
        ready_timeout: Duration::from_secs(60),
        ..UpOptions::new(&name)
    };
    let tb = Testbed::up_from_keepalived(&conf.0, &opts).unwrap_or_else(|e| panic!("up: {e}"));
    let mut pids = Vec::new();

    // lb-slowpath runs beside lbd, connected, recorded.
    let sp1 = tb
        .slowpath_pid()
        .expect("lb-slowpath runs beside lbd with a services file");
    let lbd1 = tb.lbd_pid().expect("lbd runs");
    pids.extend([(sp1, "first lb-slowpath"), (lbd1, "first lbd")]);
    assert!(
        alive(sp1) && cmdline(sp1).contains("lb-slowpath --config"),
        "{}",
        cmdline(sp1)
    );
    let log = tb.slowpath_log().unwrap();
    assert!(log.contains("lb-slowpath: connected to lbd"), "{log}");
    let record = TopologyRecord::load(tb.paths()).unwrap().unwrap();
    assert_eq!(record.slowpath_pid, Some(sp1));
    assert!(
        record
            .slowpath_path
            .as_ref()
            .is_some_and(|p| p.ends_with("lb-slowpath")),
        "{record:?}"
    );
    let st = status(&name);
    assert_eq!(st["slowpath_pid"], sp1, "{st}");
    assert_eq!(st["slowpath_alive"], true, "{st}");

    // A backend stopped: nginx gone (refused from its neighbour and through lbd's TAP), down.
    assert_eq!(healthz(&tb, "rs-10.70.2.11").as_deref(), Some("ok\n"));
    let nginx1 = nginx_pid(&tb).expect("nginx of rs-10.70.2.12 runs");
    let mark = tb.slowpath_log_len().unwrap();
    tb.backend_stop(DEAD)
        .unwrap_or_else(|e| panic!("backend stop: {e}"));
    assert!(
        !alive(nginx1),
        "nginx master {nginx1} still alive after backend_stop"
    );
    assert_eq!(nginx_pid(&tb), None);
    assert_eq!(
        healthz(&tb, "rs-10.70.2.11"),
        None,
        "nginx of {DEAD} still answers"
    );
    assert_eq!(
        healthz(&tb, "director"),
        None,
        "nginx of {DEAD} still answers through tap-lan"
    );
    tb.backend_stop(DEAD)
        .expect("stopping a stopped backend is fine");
    let line = tb
        .wait_slowpath_log(mark, "rs 10.70.2.12:80 down", TRANSITION)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("after backend_stop: {line}");

    // Started again: nginx back, up.
    let mark = tb.slowpath_log_len().unwrap();
    tb.backend_start(DEAD)
        .unwrap_or_else(|e| panic!("backend start: {e}"));
    let nginx2 = nginx_pid(&tb).expect("nginx of rs-10.70.2.12 runs again");
    pids.push((nginx2, "restarted nginx"));
    assert_eq!(healthz(&tb, "rs-10.70.2.11").as_deref(), Some("ok\n"));
    assert_eq!(healthz(&tb, "director").as_deref(), Some("ok\n"));
    let err = tb
        .backend_start(DEAD)
        .expect_err("starting a running backend");
    assert!(err.to_string().contains("already running"), "{err}");
    tb.wait_slowpath_log(mark, "rs 10.70.2.12:80 up", TRANSITION)
        .unwrap_or_else(|e| panic!("{e}"));

    // lb-slowpath killed and started again: a new process, connected, the log appended to.
    tb.kill_slowpath()
        .unwrap_or_else(|e| panic!("kill lb-slowpath: {e}"));
    assert!(!alive(sp1), "lb-slowpath {sp1} alive after kill_slowpath");
    assert_eq!(tb.slowpath_pid(), None);
    tb.kill_slowpath()
        .expect("killing a killed lb-slowpath is fine");
    let mark = tb.slowpath_log_len().unwrap();
    tb.start_slowpath()
        .unwrap_or_else(|e| panic!("start lb-slowpath: {e}"));
    let sp2 = tb.slowpath_pid().expect("lb-slowpath restarted");
    pids.push((sp2, "second lb-slowpath"));
    assert_ne!(sp1, sp2);
    assert!(tb
        .slowpath_log_since(mark)
        .unwrap()
        .contains("lb-slowpath: connected to lbd"));
    assert!(
        tb.slowpath_log()
            .unwrap()
            .starts_with(&log[..log.find('\n').unwrap()]),
        "log was not appended to"
    );
    assert!(tb
        .start_slowpath()
        .unwrap_err()
        .to_string()
        .contains("already running"));

    // lbd killed and started again: a new lbd, TAPs addressed, the slowpath re-feeds it,
    // the VIP answers.
    let mark = tb.slowpath_log_len().unwrap();
    tb.kill_lbd().unwrap_or_else(|e| panic!("kill lbd: {e}"));
    assert!(!alive(lbd1), "lbd {lbd1} alive after kill_lbd");
    assert_eq!(tb.lbd_pid(), None);
    let err = tb
        .start_slowpath()
        .expect_err("lb-slowpath is still running");
    assert!(err.to_string().contains("already running"), "{err}");
    tb.start_lbd()
        .unwrap_or_else(|e| panic!("start lbd: {e}\n{}", tb.lbd_log().unwrap_or_default()));
    let lbd2 = tb.lbd_pid().expect("lbd restarted");
    pids.push((lbd2, "second lbd"));
    assert_ne!(lbd1, lbd2);
    // lb-slowpath lives through it (its wording for the re-feed is its own business).
    assert_eq!(tb.slowpath_pid(), Some(sp2));
    assert!(alive(sp2), "lb-slowpath died with lbd: {}", tb.slowpath_log_since(mark).unwrap());
    assert_eq!(
        healthz(&tb, "director").as_deref(),
        Some("ok\n"),
        "tap-lan re-addressed"
    );
    let t = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        assert!(
            t.elapsed() < TRANSITION,
            "the VIP did not reach both backends after the lbd restart: {seen:?}"
        );
        if let Ok(out) = tb.exec(
            "client",
            ["curl", "-sS", "--max-time", "2", &format!("http://{VIP}/")],
        ) {
            if out.status.success() {
                seen.insert(String::from_utf8_lossy(&out.stdout).into_owned());
            }
        }
    }
    assert_eq!(
        TopologyRecord::load(tb.paths()).unwrap().unwrap().lbd_pid,
        Some(lbd2)
    );

    // Teardown stops both daemons and leaves nothing.
    let report = tb.down().unwrap_or_else(|e| panic!("down: {e}"));
    assert_eq!(report.slowpath_stopped, Some(sp2));
    assert_eq!(report.lbd_stopped, Some(lbd2));
    assert_gone(&name, &pids);
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn cli_backend_stop_start_and_slowpath_free_topology() {
    let name = unique_name("sq");
    let n = name.as_str();
    cli(&["up", "--name", n, "--no-director", "--backends", "2"]);
    // Torn down on every path, also when an assertion fails.
    struct Down<'a>(&'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = lb_testbed::down(self.0);
        }
    }
    let _down = Down(n);
    let st = status(n);
    assert_eq!(st["slowpath_pid"], serde_json::Value::Null, "{st}");
    let nginx = |st: &serde_json::Value| st["backends"][1]["nginx_alive"].as_bool();

    assert!(cli(&["backend", "stop", "--name", n, DEAD]).contains("stopped"));
    assert_eq!(nginx(&status(n)), Some(false));
    cli(&["backend", "stop", "--name", n, DEAD]);
    assert_eq!(nginx(&status(n)), Some(false));
    let out = Command::new(env!("CARGO_BIN_EXE_lb-testbed"))
        .args(["backend", "start", "--name", n, "rs-10.70.2.99"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rs-10.70.2.11, rs-10.70.2.12"));

    assert!(cli(&["backend", "start", "--name", n, DEAD]).contains("started"));
    assert_eq!(nginx(&status(n)), Some(true));
    let body = cli(&[
        "exec",
        "--name",
        n,
        "rs-10.70.2.11",
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "http://10.70.2.12/healthz",
    ]);
    assert_eq!(body, "ok\n");
    lb_testbed::down(n).unwrap();
    assert_gone(n, &[]);
}
