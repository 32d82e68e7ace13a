//! [`UpOptions`]: how a topology is brought up.

use std::path::PathBuf;
use std::time::Duration;

use crate::director::Driver;
use crate::pair::{PeerConfig, PeerKind};
#[cfg(doc)]
use crate::{Testbed, TopologySpec};

/// How a topology is brought up (everything but its shape, which is the
/// [`TopologySpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpOptions {
    /// Topology name: namespaces are `lbt-<name>-<node>`, state is in `/run/lb-testbed/<name>/`.
    pub name: String,
    /// lbd's port driver; `None` (the default): [`Driver::preferred`] for the most workers
    /// any director runs ([`UpOptions::driver`]).
    pub driver: Option<Driver>,
    /// lbd worker lcores.
    pub workers: u32,
    /// Director 2's worker lcores in a pair, when not `workers` (session sync between
    /// directors with different worker counts).
    pub peer_workers: Option<u32>,
    /// lbd's `idle_sleep_us`.
    pub idle_sleep_us: u32,
    /// lbd's EAL memory in MiB.
    pub memory_mb: u32,
    /// lbd binary; `None`: `$LBD_BIN`, else `lbd` next to the current executable.
    pub lbd_path: Option<PathBuf>,
    /// Whether to start lbd at all.
    pub director: bool,
    /// How long lbd gets to become ready.
    pub ready_timeout: Duration,
    /// TOML inserted verbatim into lbd.toml after the top-level keys.
    pub extra_lbd_config: String,
    /// A keepalived.conf for lbd: checked before anything is created, put in
    /// the state directory as `keepalived.conf` (see [`crate::keepalived`])
    /// and named by `services` in lbd.toml. It does not shape the topology:
    /// build the spec with [`TopologySpec::from_keepalived_file`], or use
    /// [`Testbed::up_from_keepalived`].
    pub keepalived_conf: Option<PathBuf>,
    /// Whether to start lb-slowpath (health checks) beside lbd; it runs only
    /// when lbd does and has a services file ([`UpOptions::keepalived_conf`]).
    pub slowpath: bool,
    /// lb-slowpath binary; `None`: `$LB_SLOWPATH_BIN`, else `lb-slowpath` next
    /// to the lbd binary in use, else next to the current executable
    /// (see [`crate::resolve_slowpath`]).
    pub slowpath_path: Option<PathBuf>,
    /// How many directors: 1 (the default: `director`, a point-to-point veth
    /// to the client) or 2 (a pair `director-1`/`director-2` on one
    /// client-facing bridge and one LAN bridge; see [`crate::pair`]).
    pub directors: u8,
    /// What director 2 of a pair runs: lbd and lb-slowpath, or keepalived.
    pub peer: PeerKind,
    /// Which keepalived.conf director 2 of a pair reads.
    pub peer_config: PeerConfig,
    /// keepalived binary for [`PeerKind::Keepalived`]; `None`: `keepalived`
    /// on `PATH`, else `/usr/sbin/keepalived`.
    pub keepalived_path: Option<PathBuf>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            name: "lb".into(),
            driver: None,
            workers: 1,
            peer_workers: None,
            idle_sleep_us: 50,
            memory_mb: 512,
            lbd_path: None,
            director: true,
            ready_timeout: Duration::from_secs(30),
            extra_lbd_config: String::new(),
            keepalived_conf: None,
            slowpath: true,
            slowpath_path: None,
            directors: 1,
            peer: PeerKind::Lbd,
            peer_config: PeerConfig::Same,
            keepalived_path: None,
        }
    }
}

impl UpOptions {
    /// The port driver lbd runs on: the one asked for, else the preferred one for the worker
    /// counts.
    pub fn driver(&self) -> Driver {
        self.driver.unwrap_or_else(|| Driver::preferred(self.workers.max(self.peer_workers.unwrap_or(0))))
    }

    /// Defaults with this name.
    pub fn new(name: impl Into<String>) -> Self {
        UpOptions {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Without lbd (network, nginx and namespaces only).
    pub fn without_director(mut self) -> Self {
        self.director = false;
        self
    }

    /// With lbd's virtual services from this keepalived.conf.
    pub fn with_keepalived_conf(mut self, path: impl Into<PathBuf>) -> Self {
        self.keepalived_conf = Some(path.into());
        self
    }

    /// Without lb-slowpath beside lbd (no health checks run).
    pub fn without_slowpath(mut self) -> Self {
        self.slowpath = false;
        self
    }

    /// A director pair (`directors = 2`), director 2 running `peer` and
    /// reading `peer_config`.
    pub fn with_pair(mut self, peer: PeerKind, peer_config: PeerConfig) -> Self {
        self.directors = 2;
        self.peer = peer;
        self.peer_config = peer_config;
        self
    }

    /// Whether these options start lb-slowpath: lbd runs, with a services file.
    pub fn runs_slowpath(&self) -> bool {
        self.director && self.slowpath && self.keepalived_conf.is_some()
    }
}
