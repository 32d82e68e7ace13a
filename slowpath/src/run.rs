//! The I/O shell around the health engine: starts the probes the engine asks for, feeds it
//! their results, runs the commands its events name, and keeps lbd told.
//!
//! lbd is the source of truth for what to check: its running configuration (`Save`: the file,
//! reloads and API edits) is re-read whenever its configuration revision changes. A restarted slowpath
//! seeds the engine with what lbd shows, so nothing that is still healthy flips; a restarted
//! lbd (a new instance id) is sent the whole state again. While lbd is away, checks go on and
//! the state is sent when it is back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lb_api::pb;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinSet;

use crate::health::{CheckId, Engine, Event, Millis, Outcome, Prior, RsKey, VsKey};
use crate::vrrp_shell::{Todo, VrrpShell};
use crate::lbd::{self, Instance, Lbd};
use crate::probe;

/// How often lbd is asked whether it restarted or its configuration changed.
pub const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// Verdicts found within this long of each other go to lbd in one batch.
const BATCH_DELAY: Duration = Duration::from_millis(20);
/// A notify or quorum command still running after this long is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How the shell runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// lbd's API socket.
    pub socket: PathBuf,
    /// Seed for the engine's jitter (probes spread over their first interval).
    pub seed: u64,
    /// lbd's data ports (from lbd.toml): VRRP's `interface` names map onto their TAPs.
    pub ports: Vec<crate::netif::Port>,
}

/// The running shell.
struct Shell {
    engine: Engine,
    lbd: Lbd,
    start: Instant,
    instance: Option<Instance>,
    /// The running configuration last applied (as lbd wrote it).
    conf_text: Option<String>,
    /// The checker kind of each server, for lbd's listings.
    kinds: HashMap<RsKey, &'static str>,
    pending: HashMap<RsKey, pb::HealthUpdate>,
    pending_quorum: HashMap<VsKey, bool>,
    /// lbd must be sent the whole state (it restarted, or a call failed).
    need_full: bool,
    flush_at: Option<Instant>,
    lbd_down_logged: bool,
    start_unix_ms: i64,
}

/// Runs until SIGTERM or SIGINT; `conf` is the services file as read at start (used until lbd
/// answers with its running configuration).
pub async fn run(opts: Options, conf: kaconf::Config) -> std::io::Result<()> {
    let start_conf = conf.clone();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let start = Instant::now();
    let mut lbd = Lbd::new(&opts.socket);
    // Seed from lbd when it is there: a restarted slowpath flips nothing that is healthy.
    let (conf, conf_text, priors, instance) = match connect(&mut lbd).await {
        Ok((inst, text, parsed, priors)) => {
            tracing::info!("connected to lbd at {} (generation {})", opts.socket.display(), inst.generation);
            (parsed, Some(text), priors, Some(inst))
        }
        Err(e) => {
            tracing::warn!("{e}; checking anyway, lbd is told when it answers");
            (conf, None, HashMap::new(), None)
        }
    };
    let engine = Engine::new(&conf, 0, opts.seed, &|rs| priors.get(rs).copied().unwrap_or(Prior::Unknown));
    let mut sh = Shell {
        engine,
        lbd,
        start,
        instance,
        conf_text,
        kinds: HashMap::new(),
        pending: HashMap::new(),
        pending_quorum: HashMap::new(),
        need_full: true,
        flush_at: None,
        lbd_down_logged: false,
        start_unix_ms: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0)),
    };
    sh.refresh_kinds();
    // VRRP from the services file as read at start (a change of vrrp_instance needs a restart).
    let (vrrp_tx, mut vrrp_rx) = tokio::sync::mpsc::channel(1024);
    let mut vrrp = match VrrpShell::start(&start_conf, &opts.ports, sh.now(), &vrrp_tx) {
        Ok(v) => v,
        Err(e) => return Err(std::io::Error::other(e)),
    };
    if let Some(v) = &mut vrrp {
        let todo = v.tick(sh.now()).await;
        sh.todo(todo);
        sh.push_ownership(v).await;
    }
    let checked = sh.kinds.len();
    tracing::info!("checking {checked} real server(s); {} seeded from lbd", priors.values().filter(|p| **p != Prior::Unknown).count());
    let first = sh.engine.take_events();
    sh.handle(first);
    sh.sync_full().await;

    let mut probes: JoinSet<(CheckId, Outcome)> = JoinSet::new();
    let mut tick = tokio::time::interval(SYNC_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        for (id, p) in sh.engine.due(sh.now()) {
            probes.spawn(async move { (id, probe::run(&p).await) });
        }
        let deadline = sh.engine.next_deadline().map_or_else(|| Instant::now() + Duration::from_secs(3600), |ms| sh.start + Duration::from_millis(ms));
        let flush = sh.flush_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let vrrp_at = vrrp.as_ref().and_then(VrrpShell::next_deadline).map_or_else(|| Instant::now() + Duration::from_secs(3600), |ms| sh.start + Duration::from_millis(ms));
        tokio::select! {
            Some(r) = probes.join_next(), if !probes.is_empty() => {
                // Everything that finished meanwhile too, before timers are looked at again.
                let mut next = Some(r);
                while let Some(r) = next {
                    if let Ok((id, outcome)) = r {
                        let ev = sh.engine.result(sh.now(), id, outcome);
                        sh.handle(ev);
                    }
                    next = probes.try_join_next();
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {}
            () = tokio::time::sleep_until(flush.into()), if sh.flush_at.is_some() => sh.flush().await,
            () = tokio::time::sleep_until(vrrp_at.into()), if vrrp.is_some() => {
                if let Some(v) = &mut vrrp {
                    let todo = v.tick(sh.now()).await;
                    sh.todo(todo);
                    sh.push_ownership(v).await;
                }
            }
            Some(rx) = vrrp_rx.recv() => {
                if let Some(v) = &mut vrrp {
                    let todo = v.heard(sh.now(), rx).await;
                    sh.todo(todo);
                    sh.push_ownership(v).await;
                }
            }
            _ = tick.tick() => {
                sh.sync().await;
                if let Some(v) = &mut vrrp {
                    // A backup still receiving its bulk session sync does not preempt yet.
                    v.hold_preemption(sh.instance.is_some_and(|i| !i.sync_ready));
                    let todo = v.poll_links(sh.now()).await;
                    sh.todo(todo);
                    // Instance states (master heard, counters) go to lbd every second; an
                    // unchanged batch publishes nothing there.
                    v.set_dirty(true);
                    sh.push_ownership(v).await;
                }
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: asking lbd to reload the services file");
                match sh.lbd_reload().await {
                    Ok(()) => sh.sync().await,
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // lbd keeps the last verdicts while the slowpath is away: nothing is marked down here.
    sh.flush().await;
    if let Some(v) = &mut vrrp {
        // Masters hand over at once (priority-0 adverts); lbd stops owning their addresses.
        let todo = v.shutdown(sh.now()).await;
        sh.todo(todo);
        sh.push_ownership(v).await;
    }
    let ev = sh.engine.shutdown(sh.now());
    let cmds: Vec<String> = ev.iter().filter_map(notify_command).collect();
    tracing::info!("stopping; lbd keeps the current health; {} notify command(s) to run", cmds.len());
    for c in cmds {
        run_command(c).await;
    }
    Ok(())
}

/// Instance, running configuration and what lbd shows, in one go.
async fn connect(lbd: &mut Lbd) -> Result<(Instance, String, kaconf::Config, HashMap<RsKey, Prior>), String> {
    let inst = lbd.instance().await?;
    let text = lbd.running_config().await?;
    let conf = parse_running(&text)?;
    let priors = lbd.priors().await?;
    Ok((inst, text, conf, priors))
}

fn parse_running(text: &str) -> Result<kaconf::Config, String> {
    kaconf::parse_str(text, Path::new("lbd-running.conf")).map_err(|e| format!("lbd's running configuration does not parse: {e}"))
}

fn notify_command(e: &Event) -> Option<String> {
    match e {
        Event::Server { notify, .. } => notify.clone(),
        Event::Quorum { command, .. } => command.clone(),
    }
}

/// Runs an operator's command (`sh -c`), killed after [`COMMAND_TIMEOUT`]; logs a failure.
async fn run_command(cmd: String) {
    let child = tokio::process::Command::new("/bin/sh").arg("-c").arg(&cmd).stdin(std::process::Stdio::null()).kill_on_drop(true).spawn();
    match child {
        Ok(mut c) => match tokio::time::timeout(COMMAND_TIMEOUT, c.wait()).await {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => tracing::warn!("command {cmd:?} exited with {s}"),
            Ok(Err(e)) => tracing::warn!("command {cmd:?}: {e}"),
            Err(_) => tracing::warn!("command {cmd:?} still running after {} s; killed", COMMAND_TIMEOUT.as_secs()),
        },
        Err(e) => tracing::warn!("cannot run {cmd:?}: {e}"),
    }
}

fn vs_text(vs: &VsKey) -> String {
    format!("{} {}:{}", vs.protocol, vs.vip, vs.port)
}

impl Shell {
    fn now(&self) -> Millis {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn refresh_kinds(&mut self) {
        self.kinds = self.engine.snapshot().into_iter().filter_map(|s| s.checker.map(|c| (s.rs, c))).collect();
    }

    /// Logs each transition once, queues it for lbd and starts its command.
    fn handle(&mut self, events: Vec<Event>) {
        for e in events {
            match &e {
                Event::Server { rs, up, weight, reason, .. } => {
                    let w = weight.map(|w| format!(" (weight {w})")).unwrap_or_default();
                    let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
                    tracing::info!("{} rs {}:{} {}{w}{why}", vs_text(&rs.vs), rs.ip, rs.port, if *up { "up" } else { "down" });
                    if reason != crate::health::REMOVED {
                        let kind = self.kinds.get(rs).copied().unwrap_or_default();
                        if let Some(u) = lbd::event_update(&e, kind) {
                            self.pending.insert(*rs, u);
                        }
                    }
                }
                Event::Quorum { vs, up, .. } => {
                    tracing::info!("{} quorum {}", vs_text(vs), if *up { "up" } else { "lost" });
                    self.pending_quorum.insert(*vs, *up);
                }
            }
            if let Some(cmd) = notify_command(&e) {
                tokio::spawn(run_command(cmd));
            }
        }
        if (!self.pending.is_empty() || !self.pending_quorum.is_empty()) && self.flush_at.is_none() {
            self.flush_at = Some(Instant::now() + BATCH_DELAY);
        }
    }

    /// Sends what is pending (everything, when lbd needs the whole state).
    async fn flush(&mut self) {
        self.flush_at = None;
        if self.need_full {
            self.pending.clear();
            self.pending_quorum.clear();
            self.sync_full().await;
            return;
        }
        if self.pending.is_empty() && self.pending_quorum.is_empty() {
            return;
        }
        let servers: Vec<_> = self.pending.drain().map(|(_, u)| u).collect();
        let quorum: Vec<_> = self.pending_quorum.drain().map(|(vs, up)| pb::QuorumUpdate { service: Some(lbd::pb_key(&vs)), up }).collect();
        if let Err(e) = self.lbd.set_health(servers, quorum).await {
            self.lbd_lost(&e);
        }
    }

    /// Sends the whole state.
    async fn sync_full(&mut self) {
        let (servers, quorum) = lbd::full_state(&self.engine.snapshot(), &self.engine.quorum_snapshot());
        let n = servers.len();
        match self.lbd.set_health(servers, quorum).await {
            Ok(unknown) => {
                self.need_full = false;
                if self.lbd_down_logged {
                    tracing::info!("lbd is back: sent the state of {n} server(s)");
                    self.lbd_down_logged = false;
                }
                if !unknown.is_empty() {
                    tracing::warn!("lbd does not know {} of the checked servers (e.g. {})", unknown.len(), unknown[0]);
                }
            }
            Err(e) => self.lbd_lost(&e),
        }
    }

    /// Starts what the VRRP side asked for.
    fn todo(&mut self, todo: Vec<Todo>) {
        for t in todo {
            match t {
                Todo::Commands(cmds) => {
                    for c in cmds {
                        tokio::spawn(run_command(c));
                    }
                }
            }
        }
    }

    /// Sends VRRP ownership and instance states when something changed.
    async fn push_ownership(&mut self, v: &mut VrrpShell) {
        if !v.dirty() {
            return;
        }
        match self.lbd.set_ownership(v.request(self.start_unix_ms)).await {
            Ok(_) => v.set_dirty(false),
            // Still dirty: sent again on the next tick.
            Err(e) => self.lbd_lost(&e),
        }
    }

    fn lbd_lost(&mut self, e: &str) {
        self.need_full = true;
        if !self.lbd_down_logged {
            tracing::warn!("{e}; lbd keeps its last health; checks go on");
            self.lbd_down_logged = true;
        }
    }

    async fn lbd_reload(&mut self) -> Result<(), String> {
        let socket = self.lbd.socket().to_owned();
        let mut c = lb_api::connect(&lb_api::Target::Unix(socket)).await.map_err(|e| e.to_string())?;
        c.reload(pb::ReloadRequest {}).await.map(|_| ()).map_err(|s| format!("lbd reload: {}", s.message()))
    }

    /// Asks lbd who it is: a new instance gets the whole state; a new configuration revision
    /// means a new running configuration to check.
    async fn sync(&mut self) {
        let inst = match self.lbd.instance().await {
            Ok(i) => i,
            Err(e) => return self.lbd_lost(&e),
        };
        let restarted = self.instance.is_some_and(|old| old.id != inst.id);
        let changed = !self.instance.is_some_and(|old| old.revision == inst.revision && old.id == inst.id);
        if restarted {
            tracing::info!("lbd restarted: sending it the whole health state");
            self.need_full = true;
        }
        self.instance = Some(inst);
        if changed {
            match self.lbd.running_config().await {
                Ok(text) if self.conf_text.as_deref() != Some(text.as_str()) => match parse_running(&text) {
                    Ok(conf) => {
                        let ev = self.engine.reconfigure(&conf, self.now());
                        self.refresh_kinds();
                        tracing::info!("configuration changed (revision {}): checking {} real server(s)", inst.revision, self.kinds.len());
                        self.conf_text = Some(text);
                        self.need_full = true;
                        self.handle(ev);
                    }
                    Err(e) => tracing::warn!("{e}"),
                },
                Ok(_) => {}
                Err(e) => return self.lbd_lost(&e),
            }
        }
        if self.need_full {
            self.flush().await;
        }
    }
}
