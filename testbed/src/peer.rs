//! A keepalived peer: Debian's keepalived as director 2 of a pair, running
//! only the VRRP instances (`keepalived -n -l -D --vrrp -f X.conf -p X.pid
//! -r X.vrrp.pid -c X.chk.pid`) in director 2's namespace, output to
//! `director-2/keepalived.log` (appended to by every start).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::{self, Daemon, LogMode};
use crate::error::{Error, Result};
use crate::slowpath::log_len;
use crate::state::{self, StatePaths};

/// How long keepalived gets to start its VRRP instances.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The log line keepalived's VRRP process prints once it runs its instances.
pub const STARTED: &str = "Startup complete";

/// Finds keepalived: `explicit`, else `keepalived` on `PATH`, else in `/usr/sbin`.
pub fn resolve_keepalived(explicit: Option<&Path>) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    daemon::resolve_binary(
        "keepalived",
        explicit,
        "--keepalived",
        "KEEPALIVED_BIN",
        std::env::var_os("KEEPALIVED_BIN"),
        &dirs,
    )
    .map_err(|e| Error::InvalidSpec {
        field: "peer keepalived".into(),
        reason: format!("keepalived not found: {e} (apt-get install keepalived)"),
    })
}

/// Starts keepalived `bin` in `ns` on `paths.keepalived_vrrp_conf()`; the
/// returned offset is where this start's lines begin in its log.
pub(crate) fn start(bin: &Path, ns: &str, paths: &StatePaths) -> Result<(Daemon, u64)> {
    // Pid files of a killed keepalived would be taken for a running one.
    for p in [
        paths.keepalived_pid(),
        paths.keepalived_vrrp_pid(),
        paths.keepalived_chk_pid(),
    ] {
        state::remove_file(&p)?;
    }
    let since = log_len(&paths.keepalived_log())?;
    let argv: Vec<OsString> = vec![
        bin.into(),
        "-n".into(),
        "-l".into(),
        "-D".into(),
        "--vrrp".into(),
        "-f".into(),
        paths.keepalived_vrrp_conf().into(),
        "-p".into(),
        paths.keepalived_pid().into(),
        "-r".into(),
        paths.keepalived_vrrp_pid().into(),
        "-c".into(),
        paths.keepalived_chk_pid().into(),
    ];
    let d = Daemon::start(
        "keepalived",
        ns,
        &argv,
        &paths.keepalived_log(),
        &paths.keepalived_daemon_pid(),
        LogMode::Append,
    )?;
    Ok((d, since))
}

/// The keepalived recorded in `paths`, if alive and running our file.
pub(crate) fn from_pid_file(paths: &StatePaths) -> Option<Daemon> {
    Daemon::from_pid_file(
        "keepalived",
        &paths.keepalived_daemon_pid(),
        &paths.keepalived_vrrp_conf(),
        &paths.keepalived_log(),
    )
}

/// Waits (bounded by `timeout`) until the log, from offset `since` on, shows
/// [`STARTED`]; fails at once with the log's tail if it exits first.
pub(crate) fn wait_started(
    d: &mut Daemon,
    paths: &StatePaths,
    since: u64,
    timeout: Duration,
) -> Result<()> {
    d.wait_log(&paths.keepalived_log(), since, STARTED, |pid| format!("keepalived (pid {pid}) did not start its VRRP instances"), timeout)
}
