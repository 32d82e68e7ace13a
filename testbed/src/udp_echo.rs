//! One UDP echo server per backend that has [`BackendSpec::udp_echo_ports`]:
//! a small python3 program bound to the backend's address on each of those
//! ports, sending every datagram back to its sender (from the port it came
//! in on) and logging one line per datagram to `<state>/rs-<addr>/udp-echo.log`
//! (`<src addr>:<src port> -> <addr>:<port> <length>`), so tests can check
//! which source a backend saw, as with nginx's access log.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{Error, Result};
use crate::spec::BackendSpec;
use crate::state::{self, StatePaths};

/// How long an echo server gets to bind all its ports.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The echo program: `python3 -c SCRIPT ADDR LOG PIDFILE PORT...`. The pid
/// file appears (atomically) only once every port is bound.
const SCRIPT: &str = r#"
import os, select, socket, sys
addr, log, pidfile = sys.argv[1], sys.argv[2], sys.argv[3]
socks = {}
for port in map(int, sys.argv[4:]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    socks[s.fileno()] = (s, port)
out = open(log, "a", buffering=1)
with open(pidfile + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(pidfile + ".tmp", pidfile)
print("udp echo on %s ports %s" % (addr, sys.argv[4:]), flush=True)
poll = select.poll()
for fd in socks:
    poll.register(fd, select.POLLIN)
while True:
    for fd, _ in poll.poll():
        s, port = socks[fd]
        try:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)
        except OSError as e:
            print("port %d: %s" % (port, e), flush=True)
            continue
        out.write("%s:%d -> %s:%d %d\n" % (peer[0], peer[1], addr, port, len(data)))
"#;

/// Starts the echo server for `backend` inside `ns` (in its own session, so a
/// detached topology keeps it). The caller waits with [`wait_ready`].
pub(crate) fn start(paths: &StatePaths, backend: &BackendSpec, ns: &str) -> Result<Child> {
    let addr = backend.address.addr;
    state::mkdir(&paths.backend_dir(addr))?;
    let out_path = paths.udp_echo_out(addr);
    let out = File::create(&out_path).map_err(|e| Error::io("creating", &out_path, e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::io("duplicating handle of", &out_path, e))?;
    let ports: Vec<String> = backend
        .udp_echo_ports
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut command = Command::new("setsid");
    command
        .args(["ip", "netns", "exec", ns, "python3", "-c", SCRIPT])
        .arg(addr.to_string())
        .arg(paths.udp_log(addr))
        .arg(paths.udp_echo_pid(addr))
        .args(&ports)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    command.spawn().map_err(|source| Error::Spawn {
        command: format!(
            "python3 -c <udp echo> {addr} {} {} {}",
            paths.udp_log(addr).display(),
            paths.udp_echo_pid(addr).display(),
            ports.join(" ")
        ),
        location: format!("in netns {ns}"),
        source,
    })
}

/// Waits (bounded by [`READY_TIMEOUT`]) until the echo server has bound every
/// port; fails at once, with its output, if it exits first (e.g. a port in use).
pub(crate) fn wait_ready(
    paths: &StatePaths,
    backend: &BackendSpec,
    ns: &str,
    child: &mut Child,
) -> Result<()> {
    let addr = backend.address.addr;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if state::read_pid(&paths.udp_echo_pid(addr)).is_some() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::CommandFailed {
                command: format!(
                    "udp echo server for {} on ports {:?}",
                    backend.node(),
                    backend.udp_echo_ports
                ),
                location: format!("in netns {ns}"),
                status: status.to_string(),
                stderr: cmd::tail(&paths.udp_echo_out(addr), 10),
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "udp echo server of {} in netns {ns} did not bind ports {:?}",
                    backend.node(),
                    backend.udp_echo_ports
                ),
                timeout: READY_TIMEOUT,
                detail: format!(
                    "; last lines of {}: {}",
                    paths.udp_echo_out(addr).display(),
                    cmd::tail(&paths.udp_echo_out(addr), 10)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
