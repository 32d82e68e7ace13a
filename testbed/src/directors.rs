//! Stopping, freezing and starting one director of a topology: its lbd and
//! lb-slowpath, or a keepalived peer's keepalived. [`crate::Testbed`] uses
//! these through [`crate::Testbed::stop_director`] and
//! [`crate::Testbed::start_director`]; [`stop`] and [`start`] do the same for
//! a topology known only by name (`lb-testbed stop|start`).
//!
//! Stopping is a crash: SIGKILL to each daemon's process group (keepalived's
//! VRRP child too). Freezing is SIGSTOP to the same groups; starting a frozen
//! director sends SIGCONT, and starting a stopped one starts its daemons
//! again (lbd waits ready and its TAPs are re-addressed; lb-slowpath waits
//! until connected; keepalived until it runs its instances).

use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::{Daemon, LogMode};
use crate::director;
use crate::error::{Error, Result};
use crate::pair::PeerKind;
use crate::peer;
use crate::slowpath;
use crate::spec::{self, Node, TopologySpec};
use crate::state::{self, StatePaths, TopologyRecord};

/// How long the TAPs of a killed lbd get to disappear before a new lbd starts.
const TAPS_GONE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SIGSTOP and SIGCONT get to take effect.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);
/// lbd's ready bound for `lb-testbed start`.
pub const CLI_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The director number a node name stands for: `director`/`director-1` 1,
/// `director-2` 2.
pub fn director_number(node: &str) -> Option<u8> {
    match node.parse::<Node>() {
        Ok(Node::Director) => Some(1),
        Ok(Node::Director2) => Some(2),
        _ => None,
    }
}

/// Everything needed to start one director's daemons again.
#[derive(Debug, Clone)]
pub(crate) struct DirectorCtx {
    pub(crate) n: u8,
    pub(crate) ns: String,
    /// The topology's state paths (topology.json).
    pub(crate) base: StatePaths,
    /// This director's ([`StatePaths::director`]).
    pub(crate) paths: StatePaths,
    /// The topology with this director's ports in `director`.
    pub(crate) spec: TopologySpec,
    pub(crate) kind: PeerKind,
    pub(crate) lbd_path: Option<PathBuf>,
    pub(crate) slowpath_path: Option<PathBuf>,
    pub(crate) keepalived_path: Option<PathBuf>,
    pub(crate) ready_timeout: Duration,
}

impl DirectorCtx {
    /// Director `n` of the topology `record` describes.
    pub(crate) fn from_record(
        record: &TopologyRecord,
        n: u8,
        ready_timeout: Duration,
    ) -> Result<Self> {
        let unknown = || Error::UnknownNode {
            node: format!("director-{n}"),
            topology: record.name.clone(),
            known: if record.pair.is_some() {
                "director (director-1), director-2".into()
            } else {
                "director (director-1); director-2 exists only in a pair (--directors 2)".into()
            },
        };
        if !record.director {
            return Err(Error::NoDirector(record.name.clone()));
        }
        let base = StatePaths::new(&record.name);
        let mut ctx = DirectorCtx {
            n,
            ns: Node::Director.netns(&record.name),
            paths: base.clone(),
            spec: record.spec.clone(),
            kind: PeerKind::Lbd,
            lbd_path: record.lbd_path.clone(),
            slowpath_path: record.slowpath_path.clone(),
            keepalived_path: None,
            ready_timeout,
            base,
        };
        match (n, &record.pair) {
            (1, _) => {}
            (2, Some(pair)) => {
                ctx.ns = Node::Director2.netns(&record.name);
                ctx.paths = ctx.base.director(2);
                ctx.spec.director = pair.director.clone();
                ctx.kind = pair.peer;
                if !pair.slowpath {
                    ctx.slowpath_path = None;
                }
                ctx.keepalived_path = pair.keepalived_path.clone();
            }
            _ => return Err(unknown()),
        }
        Ok(ctx)
    }

    fn name(&self) -> String {
        format!("director-{}", self.n)
    }
}

/// One director's daemons (each `None` when not running or not part of it).
#[derive(Debug, Default)]
pub(crate) struct DirectorProcs {
    pub(crate) lbd: Option<Daemon>,
    pub(crate) slowpath: Option<Daemon>,
    pub(crate) keepalived: Option<Daemon>,
}

impl DirectorProcs {
    /// The daemons `paths`' pid files name that are alive and ours.
    pub(crate) fn from_pid_files(paths: &StatePaths) -> Self {
        DirectorProcs {
            lbd: director::from_pid_file(paths),
            slowpath: slowpath::from_pid_file(paths),
            keepalived: peer::from_pid_file(paths),
        }
    }

    /// lb-slowpath, keepalived, lbd: the order they are stopped in.
    fn slots(&mut self) -> [&mut Option<Daemon>; 3] {
        [&mut self.slowpath, &mut self.keepalived, &mut self.lbd]
    }
}

fn running(d: &mut Option<Daemon>) -> bool {
    d.as_mut().is_some_and(|d| d.exited().is_none())
}

/// Records `procs`' pids for director `ctx.n` in `record` and saves it.
pub(crate) fn save_pids(
    ctx: &DirectorCtx,
    procs: &DirectorProcs,
    record: &mut TopologyRecord,
) -> Result<()> {
    let pid = |d: &Option<Daemon>| d.as_ref().map(Daemon::pid);
    if ctx.n == 1 {
        record.lbd_pid = pid(&procs.lbd);
        record.slowpath_pid = pid(&procs.slowpath);
    } else if let Some(p) = record.pair.as_mut() {
        p.lbd_pid = pid(&procs.lbd);
        p.slowpath_pid = pid(&procs.slowpath);
        p.keepalived_pid = pid(&procs.keepalived);
    }
    record.save(&ctx.base)
}

/// Starts whichever of the director's daemons is not running, each waited
/// for (bounded); `mode` [`LogMode::Truncate`] starts fresh logs (the first
/// start). Returns whether anything was started.
pub(crate) fn launch(
    ctx: &DirectorCtx,
    procs: &mut DirectorProcs,
    record: &mut TopologyRecord,
    mode: LogMode,
) -> Result<bool> {
    let mut started = false;
    match ctx.kind {
        PeerKind::Lbd => {
            if !running(&mut procs.lbd) {
                let bin = ctx
                    .lbd_path
                    .clone()
                    .ok_or_else(|| Error::NoDirector(record.name.clone()))?;
                director::wait_taps_gone(&ctx.ns, &ctx.spec, TAPS_GONE_TIMEOUT)?;
                // Ready means the new lbd wrote stats: an old file must not count.
                state::remove_file(&ctx.paths.stats())?;
                // The killed lbd's DPDK runtime files are stale: the new lbd gets fresh ones
                // (seen under load: "Cannot allocate memzone list" on the old locked files).
                state::remove_tree(&std::path::Path::new("/var/run/dpdk").join(state::eal_file_prefix(&record.name, ctx.n)))?;
                procs.lbd = Some(director::start(&bin, &ctx.ns, &ctx.paths, mode)?);
                save_pids(ctx, procs, record)?;
                if let Some(lbd) = procs.lbd.as_mut() {
                    director::wait_ready(lbd, &ctx.ns, &ctx.spec, &ctx.paths, ctx.ready_timeout)?;
                }
                director::configure_taps(&ctx.ns, &ctx.spec)?;
                started = true;
            }
            let services = ctx.paths.keepalived_conf().exists();
            if let Some(bin) = ctx.slowpath_path.as_deref().filter(|_| services) {
                if !running(&mut procs.slowpath) {
                    if mode == LogMode::Truncate {
                        state::remove_file(&ctx.paths.slowpath_log())?;
                    }
                    let (d, since) = slowpath::start(bin, &ctx.ns, &ctx.paths)?;
                    procs.slowpath = Some(d);
                    save_pids(ctx, procs, record)?;
                    if let Some(sp) = procs.slowpath.as_mut() {
                        slowpath::wait_connected(sp, &ctx.paths, since, slowpath::CONNECT_TIMEOUT)?;
                    }
                    started = true;
                }
            }
        }
        PeerKind::Keepalived => {
            if !running(&mut procs.keepalived) {
                let bin = match &ctx.keepalived_path {
                    Some(b) => b.clone(),
                    None => peer::resolve_keepalived(None)?,
                };
                if mode == LogMode::Truncate {
                    state::remove_file(&ctx.paths.keepalived_log())?;
                }
                let (d, since) = peer::start(&bin, &ctx.ns, &ctx.paths)?;
                procs.keepalived = Some(d);
                save_pids(ctx, procs, record)?;
                if let Some(k) = procs.keepalived.as_mut() {
                    peer::wait_started(k, &ctx.paths, since, peer::START_TIMEOUT)?;
                }
                started = true;
            }
        }
    }
    Ok(started)
}

/// Kills (SIGKILL, a crash) or freezes (SIGSTOP) the director's daemons.
/// Killing what is already gone is fine; freezing needs something running.
pub(crate) fn stop(
    ctx: &DirectorCtx,
    procs: &mut DirectorProcs,
    record: &mut TopologyRecord,
    freeze: bool,
) -> Result<()> {
    if freeze {
        let mut frozen = Vec::new();
        for slot in procs.slots() {
            if let Some(d) = slot.as_mut() {
                if d.exited().is_some() {
                    continue;
                }
                d.signal_group("STOP")?;
                frozen.push(d.pid());
            }
        }
        if frozen.is_empty() {
            return Err(Error::NotRunning(format!(
                "{} of topology {:?} (nothing to freeze)",
                ctx.name(),
                record.name
            )));
        }
        let what = format!(
            "{}'s processes (groups {frozen:?}) did not stop on SIGSTOP",
            ctx.name()
        );
        let procs = &*procs;
        return crate::cmd::wait_until(&what, SIGNAL_TIMEOUT, Duration::from_millis(20), || {
            Ok([&procs.slowpath, &procs.keepalived, &procs.lbd]
                .into_iter()
                .flatten()
                .filter(|d| frozen.contains(&d.pid()))
                .all(Daemon::frozen))
        });
    }
    for slot in procs.slots() {
        if let Some(mut d) = slot.take() {
            if let Err(e) = d.kill_group() {
                *slot = Some(d);
                return Err(e);
            }
        }
    }
    let p = &ctx.paths;
    for f in [
        p.lbd_pid(),
        p.slowpath_pid(),
        p.keepalived_daemon_pid(),
        p.keepalived_pid(),
        p.keepalived_vrrp_pid(),
        p.keepalived_chk_pid(),
    ] {
        state::remove_file(&f)?;
    }
    save_pids(ctx, procs, record)
}

/// Resumes a frozen director (SIGCONT) and starts whatever of it is not
/// running. A director that is running and not frozen is
/// [`Error::AlreadyRunning`].
pub(crate) fn start(
    ctx: &DirectorCtx,
    procs: &mut DirectorProcs,
    record: &mut TopologyRecord,
) -> Result<()> {
    let mut resumed = Vec::new();
    let mut running_pid = None;
    for slot in procs.slots() {
        if let Some(d) = slot.as_mut() {
            if d.exited().is_some() {
                continue;
            }
            running_pid = Some(d.pid());
            if d.frozen() {
                d.signal_group("CONT")?;
                resumed.push(d.pid());
            }
        }
    }
    if !resumed.is_empty() {
        let what = format!(
            "{}'s processes (groups {resumed:?}) did not resume on SIGCONT",
            ctx.name()
        );
        let procs = &*procs;
        crate::cmd::wait_until(&what, SIGNAL_TIMEOUT, Duration::from_millis(20), || {
            Ok([&procs.slowpath, &procs.keepalived, &procs.lbd]
                .into_iter()
                .flatten()
                .all(|d| !d.frozen()))
        })?;
    }
    let launched = launch(ctx, procs, record, LogMode::Append)?;
    if resumed.is_empty() && !launched {
        return Err(Error::AlreadyRunning {
            what: format!("{} of topology {:?}", ctx.name(), record.name),
            pid: running_pid.unwrap_or_default(),
        });
    }
    Ok(())
}

fn lookup(name: &str, node: &str) -> Result<(TopologyRecord, DirectorCtx)> {
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
    let n = director_number(node).ok_or_else(|| Error::UnknownNode {
        node: node.to_owned(),
        topology: name.to_owned(),
        known: "director (director-1), director-2".into(),
    })?;
    let ctx = DirectorCtx::from_record(&record, n, CLI_READY_TIMEOUT)?;
    Ok((record, ctx))
}

/// Stops director `node` (`director`, `director-1`, `director-2`) of
/// topology `name`: SIGKILL to its daemons (a crash), or with `freeze`
/// SIGSTOP. Waits (bounded) until they are gone or stopped.
pub fn stop_by_name(name: &str, node: &str, freeze: bool) -> Result<()> {
    let (mut record, ctx) = lookup(name, node)?;
    let mut procs = DirectorProcs::from_pid_files(&ctx.paths);
    stop(&ctx, &mut procs, &mut record, freeze)
}

/// Starts director `node` of topology `name` again: SIGCONT when frozen, and
/// whatever is not running is started and waited for (bounded). The daemons
/// run on after this process exits.
pub fn start_by_name(name: &str, node: &str) -> Result<()> {
    let (mut record, ctx) = lookup(name, node)?;
    let mut procs = DirectorProcs::from_pid_files(&ctx.paths);
    start(&ctx, &mut procs, &mut record)
}
