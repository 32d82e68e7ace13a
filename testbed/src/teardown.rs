//! Complete teardown of a topology by name: from its state directory, or
//! without one by scanning `ip netns list` for `lbt-<name>-<node>`.

use std::time::Duration;

use crate::director;
use crate::error::{Error, Result};
use crate::netns;
use crate::peer;
use crate::slowpath;
use crate::spec::{self, Node};
use crate::state::{self, StatePaths, TopologyRecord};

/// How long processes in a namespace get after SIGTERM before SIGKILL at teardown.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// What [`down`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeardownReport {
    /// The topology.
    pub name: String,
    /// The pid of the lbd that was stopped, if one was running.
    pub lbd_stopped: Option<u32>,
    /// The pid of the lb-slowpath that was stopped, if one was running.
    pub slowpath_stopped: Option<u32>,
    /// Namespaces deleted.
    pub namespaces_removed: Vec<String>,
    /// Whether a state directory was removed.
    pub state_dir_removed: bool,
}
/// Tears down topology `name` completely, from its state directory and from
/// `ip netns list` (namespaces `lbt-<name>-<node>`): stops lb-slowpath, then
/// lbd (each SIGTERM, ≤ 5 s, SIGKILL), kills every process in its namespaces, deletes them,
/// removes DPDK's runtime directory for its file prefix and the state
/// directory. A director pair's second director goes first (lb-slowpath,
/// keepalived, lbd; frozen ones are sent SIGCONT first). Nothing to remove
/// is a success.
pub fn down(name: &str) -> Result<TeardownReport> {
    spec::validate_name(name)?;
    down_with(name, &[], Vec::new())
}

pub(crate) fn down_with(
    name: &str,
    known: &[String],
    mut problems: Vec<String>,
) -> Result<TeardownReport> {
    let paths = StatePaths::new(name);
    let mut report = TeardownReport {
        name: name.to_owned(),
        ..Default::default()
    };
    let mut candidates: Vec<String> = known.to_vec();
    match TopologyRecord::load(&paths) {
        Ok(Some(record)) => candidates.extend(record.namespaces),
        Ok(None) => {}
        Err(e) => problems.push(format!("ignoring unreadable record: {e}")),
    }
    // Director 2 of a pair (its own pid files under director-2/): lb-slowpath,
    // keepalived, lbd.
    let d2 = paths.director(2);
    for mut d in [slowpath::from_pid_file(&d2), peer::from_pid_file(&d2), director::from_pid_file(&d2)]
        .into_iter()
        .flatten()
    {
        if let Err(e) = d.stop() {
            problems.push(e.to_string());
        }
    }
    // lb-slowpath first: it talks to lbd, lbd does not depend on it.
    if let Some(mut sp) = slowpath::from_pid_file(&paths) {
        match sp.stop() {
            Ok(()) => report.slowpath_stopped = Some(sp.pid()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(mut lbd) = director::from_pid_file(&paths) {
        match lbd.stop() {
            Ok(()) => report.lbd_stopped = Some(lbd.pid()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let existing = netns::list()?;
    let ours: Vec<String> = existing
        .into_iter()
        .filter(|ns| candidates.contains(ns) || spec::netns_belongs_to(ns, name))
        .collect();
    problems.extend(netns::kill_all(&ours, KILL_GRACE));
    for ns in &ours {
        match netns::del(ns) {
            Ok(()) => report.namespaces_removed.push(ns.clone()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let left: Vec<String> = netns::list()?
        .into_iter()
        .filter(|ns| ours.contains(ns))
        .collect();
    if !left.is_empty() {
        problems.push(format!("namespaces still present: {}", left.join(", ")));
    }
    for n in [1, 2] {
        let dir = std::path::Path::new("/var/run/dpdk").join(state::eal_file_prefix(name, n));
        if let Err(e) = state::remove_tree(&dir) {
            problems.push(e.to_string());
        }
    }
    if !problems.is_empty() {
        // Keep the state directory (logs, pid files) for a look and a retry.
        return Err(Error::Teardown {
            name: name.to_owned(),
            problems,
        });
    }
    report.state_dir_removed = paths.dir().exists();
    state::remove_tree(paths.dir())?;
    Ok(report)
}

/// The names of all topologies that have a state directory or a namespace.
pub fn list_topologies() -> Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(state::STATE_ROOT) {
        names.extend(
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    for ns in netns::list()? {
        // lbt-<name>-<node>: try every split point, keep those naming a node.
        let Some(rest) = ns.strip_prefix("lbt-") else {
            continue;
        };
        for (i, _) in rest.match_indices('-') {
            if rest[i + 1..].parse::<Node>().is_ok() && spec::validate_name(&rest[..i]).is_ok() {
                names.insert(rest[..i].to_owned());
            }
        }
    }
    Ok(names.into_iter().collect())
}
