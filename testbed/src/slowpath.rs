//! lb-slowpath beside lbd in the director namespace: it reads `services` and
//! `api_socket` from the topology's lbd.toml, runs the keepalived health
//! checks through the kernel stack (lbd's exception TAPs) and tells lbd over
//! its API socket. Finding its binary, starting it (a [`Daemon`]) and waiting
//! until it is connected to lbd.
//!
//! Its log, `<state>/slowpath.log`, is appended to by every start, so a test
//! can note [`crate::Testbed::slowpath_log_len`] and read only what came
//! after with [`crate::Testbed::slowpath_log_since`]. Lines look like
//! `lb-slowpath: TCP 10.70.1.100:80 rs 10.70.2.11:80 down: connect ...`.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::{self, Daemon, LogMode};
use crate::error::{Error, Result};
use crate::state::StatePaths;

/// How long lb-slowpath gets to connect to lbd.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The log line lb-slowpath prints once it has reached lbd's API.
pub const CONNECTED: &str = "lb-slowpath: connected to lbd";

/// Finds the lb-slowpath binary: `explicit`, else `$LB_SLOWPATH_BIN`, else
/// `lb-slowpath` next to `lbd` (the lbd binary in use), else next to the
/// current executable (or next to its parent `deps/` directory, for tests).
pub fn resolve_slowpath(explicit: Option<&Path>, lbd: Option<&Path>) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = lbd
        .and_then(Path::parent)
        .map(Path::to_owned)
        .into_iter()
        .collect();
    dirs.extend(daemon::exe_dirs()?);
    resolve_in(explicit, std::env::var_os("LB_SLOWPATH_BIN"), &dirs)
}

fn resolve_in(explicit: Option<&Path>, env: Option<OsString>, dirs: &[PathBuf]) -> Result<PathBuf> {
    daemon::resolve_binary(
        "lb-slowpath",
        explicit,
        "--slowpath",
        "LB_SLOWPATH_BIN",
        env,
        dirs,
    )
    .map_err(|e| {
        Error::SlowpathNotFound(format!(
            "{e} (build it with `cargo build -p lb-slowpath`, or start without it: --no-slowpath)"
        ))
    })
}

/// Starts `setsid ip netns exec <ns> <lb-slowpath> --config <state>/lbd.toml`,
/// output appended to slowpath.log, pid to slowpath.pid; the returned offset
/// is where this start's lines begin in the log.
pub(crate) fn start(bin: &Path, ns: &str, paths: &StatePaths) -> Result<(Daemon, u64)> {
    let since = log_len(&paths.slowpath_log())?;
    let argv = [bin.into(), "--config".into(), paths.lbd_toml().into()];
    let d = Daemon::start(
        "lb-slowpath",
        ns,
        &argv,
        &paths.slowpath_log(),
        &paths.slowpath_pid(),
        LogMode::Append,
    )?;
    Ok((d, since))
}

/// The lb-slowpath recorded in `paths`' pid file, if it is alive and its
/// command line names this topology's lbd.toml.
pub(crate) fn from_pid_file(paths: &StatePaths) -> Option<Daemon> {
    Daemon::from_pid_file(
        "lb-slowpath",
        &paths.slowpath_pid(),
        &paths.lbd_toml(),
        &paths.slowpath_log(),
    )
}

/// Waits (bounded by `timeout`) until the log, from offset `since` on, shows
/// [`CONNECTED`]; fails at once with the log's tail if it exits first.
pub(crate) fn wait_connected(
    sp: &mut Daemon,
    paths: &StatePaths,
    since: u64,
    timeout: Duration,
) -> Result<()> {
    sp.wait_log(&paths.slowpath_log(), since, CONNECTED, |pid| format!("lb-slowpath (pid {pid}) did not connect to lbd"), timeout)
}

/// The length of a log in bytes; 0 if it does not exist yet.
pub(crate) fn log_len(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io("reading metadata of", path, e)),
    }
}

/// A log from byte `offset` on (lossy UTF-8; empty if there is no log yet).
pub(crate) fn log_since(path: &Path, offset: u64) -> Result<String> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(Error::io("opening", path, e)),
    };
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io("seeking in", path, e))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_next_to_lbd_first() {
        let d = std::env::temp_dir().join(format!("lbt-sp-{}", std::process::id()));
        let (lbd_dir, exe_dir) = (d.join("lbd"), d.join("exe"));
        std::fs::create_dir_all(&lbd_dir).unwrap();
        std::fs::create_dir_all(&exe_dir).unwrap();
        std::fs::write(exe_dir.join("lb-slowpath"), "").unwrap();
        let dirs = [lbd_dir.clone(), exe_dir.clone()];
        assert_eq!(
            resolve_in(None, None, &dirs).unwrap(),
            exe_dir.join("lb-slowpath")
        );
        std::fs::write(lbd_dir.join("lb-slowpath"), "").unwrap();
        assert_eq!(
            resolve_in(None, None, &dirs).unwrap(),
            lbd_dir.join("lb-slowpath")
        );
        let err = resolve_in(Some(&d.join("x")), None, &dirs)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lb-slowpath binary not found: "), "{err}");
        assert!(
            err.contains("(from --slowpath)") && err.contains("--no-slowpath"),
            "{err}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn log_since_reads_only_new_lines() {
        let d = std::env::temp_dir().join(format!("lbt-splog-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let log = d.join("slowpath.log");
        assert_eq!(log_len(&log).unwrap(), 0);
        assert_eq!(log_since(&log, 0).unwrap(), "");
        std::fs::write(&log, "old\n").unwrap();
        let mark = log_len(&log).unwrap();
        std::fs::write(&log, "old\nnew\n").unwrap();
        assert_eq!(log_since(&log, mark).unwrap(), "new\n");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
