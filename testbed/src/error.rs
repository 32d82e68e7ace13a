//! The one error type of the testbed.
//!
//! Every variant says what was attempted, where (which namespace or file) and
//! what went wrong, so a failing test explains itself without a rerun.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, using or tearing down a topology.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology name cannot be used in namespace and file names.
    #[error("invalid topology name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A keepalived.conf could not be read or is invalid (the message starts
    /// with `file:line:column`).
    #[error("keepalived.conf: {0}")]
    Keepalived(#[from] kaconf::Error),

    /// A field of the [`crate::TopologySpec`] or [`crate::UpOptions`] is unusable.
    #[error("invalid topology spec: {field}: {reason}")]
    InvalidSpec {
        /// Which field, e.g. `backends[1].address`.
        field: String,
        /// What is wrong with its value.
        reason: String,
    },

    /// A node name that is not part of the topology.
    #[error("unknown node {node:?} in topology {topology:?}; known nodes: {known}")]
    UnknownNode {
        /// The name that was asked for.
        node: String,
        /// The topology it was looked up in.
        topology: String,
        /// The nodes that do exist, comma separated.
        known: String,
    },

    /// A command could not be started at all.
    #[error("could not start `{command}` {location}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// `in netns X` or `in the root namespace`.
        location: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A command ran and exited unsuccessfully.
    #[error("`{command}` {location} failed ({status}); stderr: {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// `in netns X` or `in the root namespace`.
        location: String,
        /// The exit status, e.g. `exit status: 1`.
        status: String,
        /// Its standard error (trimmed), or `<empty>`.
        stderr: String,
    },

    /// A command did not finish in time and was killed.
    #[error("`{command}` {location} did not finish within {timeout:?} and was killed")]
    CommandTimeout {
        /// The command line.
        command: String,
        /// `in netns X` or `in the root namespace`.
        location: String,
        /// The limit it ran under.
        timeout: Duration,
    },

    /// Something awaited did not happen within its bound.
    #[error("{what} within {timeout:?}{detail}")]
    Timeout {
        /// What was awaited, phrased as the failure, e.g. `lbd did not become ready`.
        what: String,
        /// The bound.
        timeout: Duration,
        /// Extra context (last observation, log tail), starting with `; ` or empty.
        detail: String,
    },

    /// lbd exited before it became ready.
    #[error("lbd exited ({status}) before becoming ready; last lines of {}:\n{tail}", log.display())]
    LbdExited {
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },

    /// A daemon other than lbd (lb-slowpath) exited before it was ready.
    #[error("{what} exited ({status}) before becoming ready; last lines of {}:\n{tail}", log.display())]
    Exited {
        /// Which daemon, e.g. `lb-slowpath`.
        what: String,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },

    /// A process was asked to start while it is still running.
    #[error("{what} is already running (pid {pid})")]
    AlreadyRunning {
        /// What, e.g. `lbd`, `lb-slowpath`, `nginx of rs-10.70.2.12`.
        what: String,
        /// Its pid.
        pid: u32,
    },

    /// A process something depends on is not running.
    #[error("{0} is not running")]
    NotRunning(String),

    /// No lb-slowpath binary could be found.
    #[error("lb-slowpath binary not found: {0}")]
    SlowpathNotFound(String),

    /// This topology has no lb-slowpath: no director, or no services file.
    #[error("topology {topology:?} has no lb-slowpath: {reason}")]
    NoSlowpath {
        /// The topology.
        topology: String,
        /// Why, e.g. `lbd runs without a services file`.
        reason: String,
    },

    /// No lbd binary could be found.
    #[error("lbd binary not found: {0}")]
    LbdNotFound(String),

    /// This topology was started without a director (or it is gone).
    #[error("topology {0:?} has no director (started with director: false)")]
    NoDirector(String),

    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was attempted, e.g. `writing`.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file could not be parsed.
    #[error("parsing JSON in {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },

    /// Teardown finished, but some things could not be removed.
    #[error("teardown of topology {name:?} was incomplete: {}", problems.join("; "))]
    Teardown {
        /// The topology.
        name: String,
        /// One line per thing that is left over.
        problems: Vec<String>,
    },

    /// `up` failed, and cleaning up what it had created failed too.
    #[error("{up}; cleaning up after that failure also failed: {cleanup}")]
    UpAndCleanup {
        /// Why `up` failed.
        up: Box<Error>,
        /// Why the cleanup failed.
        cleanup: Box<Error>,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
