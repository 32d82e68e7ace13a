//! Stopping and starting a running topology's processes, for tests of what
//! happens then: lb-slowpath and lbd (killed with SIGKILL, started again with
//! the same lbd.toml) and a backend's servers. These take `&Testbed`: the
//! processes are outside this one, and the bookkeeping is behind a lock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Live, Testbed};
use crate::backend;
use crate::daemon::LogMode;
use crate::director;
use crate::error::{Error, Result};
use crate::slowpath;
use crate::spec::{BackendSpec, Node};
use crate::state::{self, StatePaths};

/// How long the TAPs of a killed lbd get to disappear before a new lbd starts.
const TAPS_GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts lb-slowpath `bin` in `ns`, records it, and waits until it is
/// connected to lbd (bounded by [`slowpath::CONNECT_TIMEOUT`]). On failure it
/// stays in `live` for teardown.
pub(super) fn start_slowpath(
    live: &mut Live,
    paths: &StatePaths,
    ns: &str,
    bin: &Path,
) -> Result<()> {
    let (daemon, since) = slowpath::start(bin, ns, paths)?;
    let sp = live.slowpath.insert(daemon);
    live.record.slowpath_pid = Some(sp.pid());
    live.record.save(paths)?;
    slowpath::wait_connected(sp, paths, since, slowpath::CONNECT_TIMEOUT)
}

impl Testbed {
    /// lb-slowpath's pid, if it runs (it does beside an lbd with a services
    /// file, unless [`crate::UpOptions::slowpath`] was false or it was killed).
    pub fn slowpath_pid(&self) -> Option<u32> {
        self.live().slowpath.as_ref().map(|d| d.pid())
    }

    /// Path of lb-slowpath's log (stdout and stderr; every start appends).
    pub fn slowpath_log_path(&self) -> PathBuf {
        self.paths.slowpath_log()
    }

    /// Contents of lb-slowpath's log, from every start so far.
    pub fn slowpath_log(&self) -> Result<String> {
        let p = self.paths.slowpath_log();
        let bytes = std::fs::read(&p).map_err(|e| Error::io("reading", &p, e))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The length of lb-slowpath's log in bytes (0 before it exists): note it,
    /// act, then read only the lines written since with
    /// [`Testbed::slowpath_log_since`] or [`Testbed::wait_slowpath_log`].
    pub fn slowpath_log_len(&self) -> Result<u64> {
        slowpath::log_len(&self.paths.slowpath_log())
    }

    /// lb-slowpath's log from byte `offset` on (see [`Testbed::slowpath_log_len`]).
    pub fn slowpath_log_since(&self, offset: u64) -> Result<String> {
        slowpath::log_since(&self.paths.slowpath_log(), offset)
    }

    /// Waits (bounded by `timeout`) until a line containing `needle` appears
    /// in lb-slowpath's log after byte `offset`, and returns that line, e.g.
    /// `wait_slowpath_log(mark, "rs 10.70.2.12:80 down", 10 s)`. The timeout
    /// error quotes what was logged since `offset`.
    pub fn wait_slowpath_log(
        &self,
        offset: u64,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.slowpath_log_since(offset)?;
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("lb-slowpath logged no line containing {needle:?}"),
                    timeout,
                    detail: format!(
                        "; its log since byte {offset} ({}):\n{}",
                        self.paths.slowpath_log().display(),
                        if text.is_empty() {
                            "<nothing>"
                        } else {
                            text.trim_end()
                        }
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills lb-slowpath with SIGKILL and waits until it is gone (lbd keeps
    /// the last health). Already gone is fine; a topology without one is
    /// [`Error::NoSlowpath`].
    pub fn kill_slowpath(&self) -> Result<()> {
        let mut live = self.live();
        let Some(mut sp) = live.slowpath.take() else {
            return match live.record.slowpath_path {
                Some(_) => Ok(()),
                None => Err(self.no_slowpath(&live)),
            };
        };
        let killed = sp.kill();
        if killed.is_err() {
            live.slowpath = Some(sp);
            return killed;
        }
        live.record.slowpath_pid = None;
        live.record.save(&self.paths)?;
        state::remove_file(&self.paths.slowpath_pid())
    }

    /// Starts lb-slowpath again (also in a topology brought up without it,
    /// if lbd has a services file) and waits until it is connected to lbd
    /// (bounded by [`slowpath::CONNECT_TIMEOUT`]). Its log is appended to:
    /// note [`Testbed::slowpath_log_len`] first to read only the new lines.
    /// Needs a running lbd ([`Error::NotRunning`] otherwise).
    pub fn start_slowpath(&self) -> Result<()> {
        let mut live = self.live();
        if !live.record.director {
            return Err(Error::NoDirector(self.name.clone()));
        }
        if !self.paths.keepalived_conf().exists() {
            return Err(self.no_slowpath(&live));
        }
        if let Some(sp) = live.slowpath.as_mut() {
            if sp.exited().is_none() {
                return Err(Error::AlreadyRunning {
                    what: "lb-slowpath".into(),
                    pid: sp.pid(),
                });
            }
        }
        if live.lbd.as_mut().is_none_or(|l| l.exited().is_some()) {
            return Err(Error::NotRunning(format!(
                "lbd of topology {:?} (lb-slowpath would not connect; start_lbd first)",
                self.name
            )));
        }
        let bin = match live.record.slowpath_path.clone() {
            Some(bin) => bin,
            None => {
                let bin = slowpath::resolve_slowpath(None, live.record.lbd_path.as_deref())?;
                live.record.slowpath_path = Some(bin.clone());
                bin
            }
        };
        let ns = Node::Director.netns(&self.name);
        start_slowpath(&mut live, &self.paths, &ns, &bin)
    }

    /// Kills lbd with SIGKILL and waits until it is gone (its TAPs go with
    /// it; lb-slowpath keeps running and re-feeds lbd once it is back).
    /// Already gone is fine.
    pub fn kill_lbd(&self) -> Result<()> {
        let mut live = self.live();
        if !live.record.director {
            return Err(Error::NoDirector(self.name.clone()));
        }
        let Some(mut lbd) = live.lbd.take() else {
            return Ok(());
        };
        let killed = lbd.kill();
        if killed.is_err() {
            live.lbd = Some(lbd);
            return killed;
        }
        live.record.lbd_pid = None;
        live.record.save(&self.paths)?;
        state::remove_file(&self.paths.lbd_pid())
    }

    /// Starts lbd again with the same lbd.toml (its log is appended to),
    /// waits until it is ready (bounded by [`crate::UpOptions::ready_timeout`])
    /// and addresses its new TAPs as `up` does. lbd removes the stale API
    /// socket itself. A running lb-slowpath reconnects on its own and sends
    /// the new lbd the whole health state (it says so in its log).
    pub fn start_lbd(&self) -> Result<()> {
        let mut guard = self.live();
        let live = &mut *guard;
        if !live.record.director {
            return Err(Error::NoDirector(self.name.clone()));
        }
        if let Some(lbd) = live.lbd.as_mut() {
            if lbd.exited().is_none() {
                return Err(Error::AlreadyRunning {
                    what: "lbd".into(),
                    pid: lbd.pid(),
                });
            }
        }
        let bin = live
            .record
            .lbd_path
            .clone()
            .ok_or_else(|| Error::NoDirector(self.name.clone()))?;
        let ns = Node::Director.netns(&self.name);
        director::wait_taps_gone(&ns, &self.spec, TAPS_GONE_TIMEOUT)?;
        // Ready means the new lbd wrote stats: the old file must not count.
        state::remove_file(&self.paths.stats())?;
        // The killed lbd's DPDK runtime files are stale: the new lbd gets fresh ones.
        state::remove_tree(&state::dpdk_runtime_dir(&self.name))?;
        let lbd = live
            .lbd
            .insert(director::start(&bin, &ns, &self.paths, LogMode::Append)?);
        live.record.lbd_pid = Some(lbd.pid());
        live.record.save(&self.paths)?;
        director::wait_ready(lbd, &ns, &self.spec, &self.paths, self.ready_timeout)?;
        director::configure_taps(&ns, &self.spec)
    }

    /// Stops backend `node`'s nginx (SIGTERM to its master) and its UDP echo
    /// server, if it has one, and waits (bounded by
    /// [`crate::backend::STOP_TIMEOUT`], then SIGKILL) until they are gone.
    /// Already stopped is fine.
    pub fn backend_stop(&self, node: &str) -> Result<()> {
        let backend = self.backend_spec(node)?;
        backend::stop_nginx(&self.paths, &backend)?;
        let child = {
            let mut live = self.live();
            let i = live
                .echoes
                .iter()
                .position(|(a, _)| *a == backend.address.addr);
            i.map(|i| live.echoes.swap_remove(i).1)
        };
        backend::stop_echo(&self.paths, &backend, child)
    }

    /// Starts backend `node`'s nginx again and waits until it answers
    /// `/healthz` on every port; then its UDP echo server, if it has UDP
    /// ports and it is not running, and waits until it is bound (reaped at
    /// teardown like the others). A running nginx is [`Error::AlreadyRunning`].
    pub fn backend_start(&self, node: &str) -> Result<()> {
        let backend = self.backend_spec(node)?;
        let ns = self.netns(node)?;
        if let Some(child) = backend::start_servers(&self.paths, &backend, &ns)? {
            self.live().echoes.push((backend.address.addr, child));
        }
        Ok(())
    }

    fn backend_spec(&self, node: &str) -> Result<BackendSpec> {
        let addr = self.backend_addr(node)?;
        self.spec
            .backends
            .iter()
            .find(|b| b.address.addr == addr)
            .cloned()
            .ok_or_else(|| Error::UnknownNode {
                node: node.to_owned(),
                topology: self.name.clone(),
                known: self.nodes().join(", "),
            })
    }

    fn no_slowpath(&self, live: &Live) -> Error {
        let reason = if !live.record.director {
            "it has no director"
        } else if !self.paths.keepalived_conf().exists() {
            "lbd runs without a services file (UpOptions::keepalived_conf)"
        } else {
            "it was brought up without one (UpOptions::slowpath = false); start_slowpath starts it"
        };
        Error::NoSlowpath {
            topology: self.name.clone(),
            reason: reason.into(),
        }
    }
}
