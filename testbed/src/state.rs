//! The state directory `/run/lb-testbed/<name>/` and `topology.json`, the
//! record of what `up` created (written before anything is created and
//! updated as it goes, so `down` works after a crash).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::TopologySpec;

/// Where all state directories live.
pub const STATE_ROOT: &str = "/run/lb-testbed";

/// Paths of one topology's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePaths {
    dir: PathBuf,
}

impl StatePaths {
    /// The paths for topology `name` (nothing is created).
    pub fn new(name: &str) -> Self {
        StatePaths {
            dir: Path::new(STATE_ROOT).join(name),
        }
    }

    /// `/run/lb-testbed/<name>`
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The paths of director `n` of a pair: director 1's files are the
    /// topology's own (`lbd.toml`, `lbd.log`, ...); director 2's are the same
    /// names under `director-2/` (its lbd.toml, lbd.log, lbd.pid, lbd.sock,
    /// stats.json, slowpath.*, keepalived.conf, and a keepalived peer's
    /// `keepalived-vrrp.conf`, `keepalived.log`, `keepalived*.pid`). Only the
    /// per-director methods make sense on the result.
    pub fn director(&self, n: u8) -> StatePaths {
        match n {
            1 => self.clone(),
            n => StatePaths {
                dir: self.dir.join(format!("director-{n}")),
            },
        }
    }

    /// `keepalived-vrrp.conf`: what a keepalived peer (director 2 of a pair
    /// brought up with `--peer keepalived`) runs: the `vrrp_instance`s only.
    pub fn keepalived_vrrp_conf(&self) -> PathBuf {
        self.dir.join("keepalived-vrrp.conf")
    }

    /// `keepalived.log`: a keepalived peer's output (appended to by every start).
    pub fn keepalived_log(&self) -> PathBuf {
        self.dir.join("keepalived.log")
    }

    /// `keepalived.pid` (its `-p`); `keepalived.vrrp.pid` (`-r`, the VRRP
    /// child) and `keepalived.chk.pid` (`-c`) sit beside it.
    pub fn keepalived_pid(&self) -> PathBuf {
        self.dir.join("keepalived.pid")
    }

    /// `keepalived.vrrp.pid`: the pid of a keepalived peer's VRRP child.
    pub fn keepalived_vrrp_pid(&self) -> PathBuf {
        self.dir.join("keepalived.vrrp.pid")
    }

    /// `keepalived.chk.pid`: keepalived's checker pid file (unused with `--vrrp`).
    pub fn keepalived_chk_pid(&self) -> PathBuf {
        self.dir.join("keepalived.chk.pid")
    }

    /// `keepalived.lbt.pid`: the keepalived peer's pid as the testbed started it.
    pub fn keepalived_daemon_pid(&self) -> PathBuf {
        self.dir.join("keepalived.lbt.pid")
    }

    /// `topology.json`: the [`TopologyRecord`].
    pub fn topology_json(&self) -> PathBuf {
        self.dir.join("topology.json")
    }

    /// `lbd.toml`: lbd's configuration.
    pub fn lbd_toml(&self) -> PathBuf {
        self.dir.join("lbd.toml")
    }

    /// `lbd.log`: lbd's stdout and stderr.
    pub fn lbd_log(&self) -> PathBuf {
        self.dir.join("lbd.log")
    }

    /// `lbd.pid`: lbd's process id.
    pub fn lbd_pid(&self) -> PathBuf {
        self.dir.join("lbd.pid")
    }

    /// `slowpath.log`: lb-slowpath's stdout and stderr, appended to by every start.
    pub fn slowpath_log(&self) -> PathBuf {
        self.dir.join("slowpath.log")
    }

    /// `slowpath.pid`: lb-slowpath's process id.
    pub fn slowpath_pid(&self) -> PathBuf {
        self.dir.join("slowpath.pid")
    }

    /// `lbd.sock`: lbd's control API (lbctl's `--socket`, `LBCTL_SOCKET`).
    pub fn api_socket(&self) -> PathBuf {
        self.dir.join("lbd.sock")
    }

    /// `stats.json`: rewritten by lbd while it runs.
    pub fn stats(&self) -> PathBuf {
        self.dir.join("stats.json")
    }

    /// `rs-<addr>/`: one backend's nginx files.
    pub fn backend_dir(&self, addr: Ipv4Addr) -> PathBuf {
        self.dir.join(format!("rs-{addr}"))
    }

    /// `rs-<addr>/access.log`: that backend's nginx access log
    /// (`$remote_addr:$remote_port -> $server_addr:$server_port "$request" $status ...`).
    pub fn access_log(&self, addr: Ipv4Addr) -> PathBuf {
        self.backend_dir(addr).join("access.log")
    }

    /// `rs-<addr>/error.log`
    pub fn error_log(&self, addr: Ipv4Addr) -> PathBuf {
        self.backend_dir(addr).join("error.log")
    }

    /// `rs-<addr>/nginx.pid`
    pub fn nginx_pid(&self, addr: Ipv4Addr) -> PathBuf {
        self.backend_dir(addr).join("nginx.pid")
    }

    /// `rs-<addr>/udp-echo.log`: one line per datagram echoed,
    /// `<src addr>:<src port> -> <addr>:<port> <length>`.
    pub fn udp_log(&self, addr: Ipv4Addr) -> PathBuf {
        self.backend_dir(addr).join("udp-echo.log")
    }

    /// `rs-<addr>/udp-echo.pid`: written by the echo server once every port is bound.
    pub fn udp_echo_pid(&self, addr: Ipv4Addr) -> PathBuf {
        self.backend_dir(addr).join("udp-echo.pid")
    }

    /// `rs-<addr>/udp-echo.out`: the echo server's stdout and stderr.
    pub fn udp_echo_out(&self, addr: Ipv4Addr) -> PathBuf {
        self.backend_dir(addr).join("udp-echo.out")
    }

    /// `keepalived.conf`: what lbd's `services` key names (see
    /// [`crate::keepalived::install`]).
    pub fn keepalived_conf(&self) -> PathBuf {
        self.dir.join("keepalived.conf")
    }
}

/// DPDK's runtime directory for the EAL file prefix `lbt-<name>`.
pub fn dpdk_runtime_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("/var/run/dpdk/{}", eal_file_prefix(name, 1)))
}

/// The EAL file prefix of director `n` of topology `name`: `lbt-<name>` for
/// the first (as for a single director), `lbt-<name>-d<n>` for the others.
pub fn eal_file_prefix(name: &str, n: u8) -> String {
    match n {
        1 => format!("lbt-{name}"),
        n => format!("lbt-{name}-d{n}"),
    }
}

/// Contents of `topology.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyRecord {
    /// Topology name.
    pub name: String,
    /// `true` once `up` finished.
    pub complete: bool,
    /// The spec it was built from.
    pub spec: TopologySpec,
    /// `af_packet` or `af_xdp`.
    pub driver: String,
    /// lbd worker count.
    pub workers: u32,
    /// Whether lbd is part of it.
    pub director: bool,
    /// The lbd binary used.
    pub lbd_path: Option<PathBuf>,
    /// lbd's pid, once started (`None` while it is killed).
    pub lbd_pid: Option<u32>,
    /// The lb-slowpath binary, when it runs beside lbd (absent in older records).
    #[serde(default)]
    pub slowpath_path: Option<PathBuf>,
    /// lb-slowpath's pid, once started (`None` while it is killed; absent in older records).
    #[serde(default)]
    pub slowpath_pid: Option<u32>,
    /// Every namespace `up` creates (all of them, listed before creation).
    pub namespaces: Vec<String>,
    /// Node name to namespace.
    pub nodes: BTreeMap<String, String>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// lbd's stats file.
    pub stats_file: PathBuf,
    /// lbd's log.
    pub lbd_log: PathBuf,
    /// The second director, when `up` built a pair (absent in older records).
    #[serde(default)]
    pub pair: Option<crate::pair::PairRecord>,
    /// Notes on `vrrp_instance` interfaces lb-testbed mapped onto a port in
    /// the files it installed (absent in older records).
    #[serde(default)]
    pub vrrp_interface_notes: Vec<String>,
}

impl TopologyRecord {
    /// How many directors the topology has (1, or 2 for a pair).
    pub fn directors(&self) -> u8 {
        if self.pair.is_some() {
            2
        } else {
            1
        }
    }
}

impl TopologyRecord {
    /// Reads `topology.json` of `paths`; `Ok(None)` if there is none.
    pub fn load(paths: &StatePaths) -> Result<Option<Self>> {
        let path = paths.topology_json();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Json { path, source })
    }

    /// Writes it atomically (temp file + rename).
    pub fn save(&self, paths: &StatePaths) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        write_atomic(&paths.topology_json(), text.as_bytes())
    }
}

/// Writes `path` through a temporary file and a rename, so readers never see
/// half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming into place", path, e))
}

/// Writes `path` (plain write, for files only we read).
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io("writing", path, e))
}

/// Creates `path` and its parents.
pub(crate) fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io("creating directory", path, e))
}

/// Removes a directory tree; a missing one is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path, e)),
    }
}

/// Removes a file; a missing one is fine.
pub(crate) fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path, e)),
    }
}

/// Reads a pid file; `None` if missing or garbage.
pub(crate) fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_slowpath_fields_still_load() {
        let record = TopologyRecord {
            name: "x".into(),
            complete: true,
            spec: TopologySpec::default(),
            driver: "af_packet".into(),
            workers: 1,
            director: true,
            lbd_path: Some("/bin/lbd".into()),
            lbd_pid: Some(42),
            slowpath_path: Some("/bin/lb-slowpath".into()),
            slowpath_pid: Some(43),
            namespaces: vec!["lbt-x-client".into()],
            nodes: BTreeMap::new(),
            state_dir: "/run/lb-testbed/x".into(),
            stats_file: "/run/lb-testbed/x/stats.json".into(),
            lbd_log: "/run/lb-testbed/x/lbd.log".into(),
            pair: None,
            vrrp_interface_notes: vec![],
        };
        let mut v = serde_json::to_value(&record).unwrap();
        let back: TopologyRecord = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, record);
        // A record written before lb-slowpath existed.
        let obj = v.as_object_mut().unwrap();
        obj.remove("slowpath_path");
        obj.remove("slowpath_pid");
        let old: TopologyRecord = serde_json::from_value(v).unwrap();
        assert_eq!(old.slowpath_pid, None);
        assert_eq!(old.slowpath_path, None);
        assert_eq!(old.lbd_pid, Some(42));
    }

    #[test]
    fn slowpath_files_are_in_the_state_dir() {
        let p = StatePaths::new("x");
        assert_eq!(p.slowpath_log(), Path::new("/run/lb-testbed/x/slowpath.log"));
        assert_eq!(p.slowpath_pid(), Path::new("/run/lb-testbed/x/slowpath.pid"));
        assert_eq!(p.director(1), p);
        let d2 = p.director(2);
        assert_eq!(d2.lbd_toml(), Path::new("/run/lb-testbed/x/director-2/lbd.toml"));
        assert_eq!(d2.api_socket(), Path::new("/run/lb-testbed/x/director-2/lbd.sock"));
        assert_eq!(eal_file_prefix("x", 1), "lbt-x");
        assert_eq!(eal_file_prefix("x", 2), "lbt-x-d2");
    }
}
