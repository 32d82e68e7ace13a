//! Stopping and starting one backend's servers (its nginx, and its UDP echo
//! server when it has UDP ports), e.g. to see health checks fail and recover.
//! [`crate::Testbed::backend_stop`] and [`crate::Testbed::backend_start`] use
//! these; [`stop`] and [`start`] do the same for a topology known only by
//! name (the CLI's `lb-testbed backend stop|start`).

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{Error, Result};
use crate::nginx;
use crate::spec::{self, BackendSpec, Node};
use crate::state::{self, StatePaths, TopologyRecord};
use crate::udp_echo;

/// How long a stopped server gets to exit after SIGTERM (then SIGKILL, and as long again).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The pid of `backend`'s nginx master, if it is running (the pid file names
/// a live process whose command line names that backend's nginx.conf).
pub(crate) fn nginx_pid(paths: &StatePaths, backend: &BackendSpec) -> Option<u32> {
    let dir = paths.backend_dir(backend.address.addr);
    live_pid(
        &paths.nginx_pid(backend.address.addr),
        &dir.join("nginx.conf"),
    )
}

/// The pid of `backend`'s UDP echo server, if it is running.
pub(crate) fn echo_pid(paths: &StatePaths, backend: &BackendSpec) -> Option<u32> {
    let addr = backend.address.addr;
    live_pid(&paths.udp_echo_pid(addr), &paths.udp_log(addr))
}

fn live_pid(pid_file: &Path, marker: &Path) -> Option<u32> {
    let pid = state::read_pid(pid_file)?;
    let ours = cmd::pid_cmdline(pid)?.contains(&*marker.to_string_lossy());
    (ours && cmd::pid_alive(pid)).then_some(pid)
}

/// Stops `backend`'s nginx (SIGTERM to the master, which waits for its
/// workers) and waits until it is gone. Not running is fine.
pub(crate) fn stop_nginx(paths: &StatePaths, backend: &BackendSpec) -> Result<()> {
    let Some(pid) = nginx_pid(paths, backend) else {
        return Ok(());
    };
    terminate(pid, &format!("nginx of {}", backend.node()))?;
    // nginx removes its pid file on a clean exit; not after SIGKILL.
    state::remove_file(&paths.nginx_pid(backend.address.addr))
}

/// Stops `backend`'s UDP echo server: through `child` when this process
/// started it (killed and reaped), else by its pid file. Not running is fine.
pub(crate) fn stop_echo(
    paths: &StatePaths,
    backend: &BackendSpec,
    child: Option<Child>,
) -> Result<()> {
    let what = format!("udp echo server of {}", backend.node());
    match child {
        Some(mut child) => {
            let _ = child.kill();
            if cmd::wait_child(&mut child, STOP_TIMEOUT).is_none() {
                return Err(Error::Timeout {
                    what: format!("{what} (pid {}) did not exit after SIGKILL", child.id()),
                    timeout: STOP_TIMEOUT,
                    detail: String::new(),
                });
            }
        }
        None => {
            if let Some(pid) = echo_pid(paths, backend) {
                terminate(pid, &what)?;
            }
        }
    }
    // The pid file means "bound and serving": a restart waits for a new one.
    state::remove_file(&paths.udp_echo_pid(backend.address.addr))
}

/// Starts `backend`'s nginx and waits until it answers on every port; then,
/// if it has UDP ports and its echo server is not running, starts that and
/// waits until it is bound. Returns the new echo server, to be reaped at
/// teardown. A running nginx is [`Error::AlreadyRunning`].
pub(crate) fn start_servers(
    paths: &StatePaths,
    backend: &BackendSpec,
    ns: &str,
) -> Result<Option<Child>> {
    if let Some(pid) = nginx_pid(paths, backend) {
        return Err(Error::AlreadyRunning {
            what: format!("nginx of {}", backend.node()),
            pid,
        });
    }
    nginx::start(paths, backend, ns)?;
    nginx::wait_ready(paths, backend, ns)?;
    if backend.udp_echo_ports.is_empty() || echo_pid(paths, backend).is_some() {
        return Ok(None);
    }
    state::remove_file(&paths.udp_echo_pid(backend.address.addr))?;
    let mut child = udp_echo::start(paths, backend, ns)?;
    if let Err(e) = udp_echo::wait_ready(paths, backend, ns, &mut child) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(Some(child))
}

/// SIGTERM, [`STOP_TIMEOUT`] to exit, then SIGKILL and as long again.
fn terminate(pid: u32, what: &str) -> Result<()> {
    for sig in ["TERM", "KILL"] {
        cmd::signal(pid, sig)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !cmd::pid_alive(pid) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(Error::Timeout {
        what: format!("{what} (pid {pid}) did not exit after SIGTERM and SIGKILL"),
        timeout: STOP_TIMEOUT * 2,
        detail: String::new(),
    })
}

/// Backend `node` (`rs-<addr>`) of topology `name`, from its record, with its namespace.
fn lookup(name: &str, node: &str) -> Result<(StatePaths, BackendSpec, String)> {
    spec::validate_name(name)?;
    let paths = StatePaths::new(name);
    let record = TopologyRecord::load(&paths)?.ok_or_else(|| Error::UnknownNode {
        node: node.to_owned(),
        topology: name.to_owned(),
        known: format!(
            "no {} (is topology {name:?} up?)",
            paths.topology_json().display()
        ),
    })?;
    let found = match node.parse::<Node>() {
        Ok(Node::Backend(addr)) => record.spec.backends.iter().find(|b| b.address.addr == addr),
        _ => None,
    };
    let backend = found.cloned().ok_or_else(|| Error::UnknownNode {
        node: node.to_owned(),
        topology: name.to_owned(),
        known: record
            .spec
            .backends
            .iter()
            .map(BackendSpec::node)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let ns = Node::Backend(backend.address.addr).netns(name);
    Ok((paths, backend, ns))
}

/// Stops backend `node` (`rs-<addr>`) of topology `name`: its nginx and its
/// UDP echo server, waiting (bounded) until they are gone.
pub fn stop(name: &str, node: &str) -> Result<()> {
    let (paths, backend, _) = lookup(name, node)?;
    stop_nginx(&paths, &backend)?;
    stop_echo(&paths, &backend, None)
}

/// Starts backend `node` of topology `name` again (see [`stop`]), waiting
/// (bounded) until nginx answers `/healthz` and the echo server is bound.
/// The echo server is left running in its own session.
pub fn start(name: &str, node: &str) -> Result<()> {
    let (paths, backend, ns) = lookup(name, node)?;
    // Dropping the Child neither kills nor waits: it runs on after we exit.
    start_servers(&paths, &backend, &ns).map(drop)
}
