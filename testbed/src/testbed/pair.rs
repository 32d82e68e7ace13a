//! The second director of a pair in [`Testbed`]: planning its layout before
//! anything is created, wiring it (the `wan` bridge, fixed MACs), starting
//! it, and stopping/freezing/starting either director.

use std::path::PathBuf;

use super::{Live, Testbed, UpOptions};
use crate::daemon::{Daemon, LogMode};
use crate::director::{self, LbdSettings};
use crate::directors::{self, DirectorCtx, DirectorProcs};
use crate::error::{Error, Result};
use crate::netns;
use crate::pair::{self, PairRecord, PeerConfig, PeerKind};
use crate::peer;
use crate::spec::{Node, TopologySpec};
use crate::state::{self, StatePaths};
use crate::vrrpconf;

/// Checks the pair options and lays out director 2 (`None` for one director).
pub(super) fn plan(spec: &TopologySpec, opts: &UpOptions) -> Result<Option<PairRecord>> {
    let bad = |field: &str, reason: String| Error::InvalidSpec {
        field: field.into(),
        reason,
    };
    match opts.directors {
        1 => {
            if opts.peer != PeerKind::Lbd || opts.peer_config != PeerConfig::Same {
                return Err(bad(
                    "peer",
                    "a peer needs a director pair (directors = 2)".into(),
                ));
            }
            return Ok(None);
        }
        2 => {}
        n => return Err(bad("directors", format!("{n}: expected 1 or 2"))),
    }
    if !opts.director {
        return Err(bad(
            "directors",
            "a pair needs lbd (director = true)".into(),
        ));
    }
    let mut reserved = Vec::new();
    let mut files = Vec::new();
    if let Some(conf) = &opts.keepalived_conf {
        files.push(conf.clone());
    } else if opts.peer_config != PeerConfig::Same || opts.peer == PeerKind::Keepalived {
        return Err(bad(
            "peer",
            "--peer-priority, --peer-config and --peer keepalived need --config".into(),
        ));
    }
    if let PeerConfig::File(f) = &opts.peer_config {
        files.push(f.clone());
    }
    if opts.peer_config == PeerConfig::Priority(0) {
        return Err(bad(
            "peer_priority",
            "0: VRRP priorities are 1..=255".into(),
        ));
    }
    for f in &files {
        reserved.extend(pair::reserved_addresses(&kaconf::load(f)?));
    }
    let keepalived_path = match opts.peer {
        PeerKind::Keepalived => Some(peer::resolve_keepalived(opts.keepalived_path.as_deref())?),
        PeerKind::Lbd => None,
    };
    Ok(Some(PairRecord {
        peer: opts.peer,
        peer_config: opts.peer_config.to_string(),
        director: pair::peer_director(spec, &reserved)?,
        netns: Node::Director2.netns(&opts.name),
        director1_macs: [pair::mac(1, 0), pair::mac(1, 1)],
        director2_macs: [pair::mac(2, 0), pair::mac(2, 1)],
        slowpath: opts.peer == PeerKind::Lbd && opts.runs_slowpath(),
        keepalived_path,
        lbd_pid: None,
        slowpath_pid: None,
        keepalived_pid: None,
    }))
}

/// The veths a pair adds or rewires, as `((ns, end), (ns, end))`: client ↔
/// `wan` bridge, each director's wan0 ↔ `wan` bridge, director 2's lan0 ↔
/// LAN bridge. (Director 1's lan0 is cabled as for one director.)
pub(super) fn cables(
    name: &str,
    spec: &TopologySpec,
    pair: &PairRecord,
) -> Vec<((String, String), (String, String))> {
    let wan = Node::Wan.netns(name);
    let d2 = Node::Director2.netns(name);
    vec![
        (
            (Node::Client.netns(name), spec.client.iface.clone()),
            (wan.clone(), pair::WAN_CLIENT_PORT.to_owned()),
        ),
        (
            (Node::Director.netns(name), spec.director.wan.iface.clone()),
            (wan.clone(), pair::wan_bridge_port(1)),
        ),
        (
            (d2.clone(), pair.director.wan.iface.clone()),
            (wan, pair::wan_bridge_port(2)),
        ),
        (
            (d2, pair.director.lan.iface.clone()),
            (Node::Lan.netns(name), pair::lan_bridge_port(spec, 2)),
        ),
    ]
}

/// Sets the fixed MACs of both directors' data ports (before they are up).
pub(super) fn set_macs(name: &str, spec: &TopologySpec, pair: &PairRecord) -> Result<()> {
    let ports = [
        (
            Node::Director.netns(name),
            &spec.director,
            &pair.director1_macs,
        ),
        (
            Node::Director2.netns(name),
            &pair.director,
            &pair.director2_macs,
        ),
    ];
    for (ns, d, macs) in ports {
        for (iface, mac) in [(&d.wan.iface, &macs[0]), (&d.lan.iface, &macs[1])] {
            crate::cmd::Cmd::ip(
                &ns,
                [
                    "link",
                    "set",
                    "dev",
                    iface.as_str(),
                    "address",
                    mac.as_str(),
                ],
            )
            .run_short()?;
        }
    }
    Ok(())
}

/// A keepalived peer has no lbd: its port addresses go on its kernel veths.
pub(super) fn address_keepalived_peer(
    name: &str,
    spec: &TopologySpec,
    pair: &PairRecord,
) -> Result<()> {
    let ns = Node::Director2.netns(name);
    for (mine, theirs) in [
        (&pair.director.wan, &spec.director.wan),
        (&pair.director.lan, &spec.director.lan),
    ] {
        for a in mine
            .lbd_addresses
            .iter()
            .filter(|a| !theirs.lbd_addresses.contains(a))
        {
            netns::addr_add(&ns, &mine.iface, *a)?;
        }
    }
    Ok(())
}

/// Installs director 2's files and starts it (lbd and lb-slowpath, or
/// keepalived). Notes on mapped interfaces go to stderr and the record.
pub(super) fn start_peer(live: &mut Live, opts: &UpOptions, settings: &LbdSettings) -> Result<()> {
    let Some(pair) = live.record.pair.clone() else {
        return Ok(());
    };
    let ctx = DirectorCtx::from_record(&live.record, 2, opts.ready_timeout)?;
    state::mkdir(ctx.paths.dir())?;
    let (src, priority) = match &opts.peer_config {
        PeerConfig::Same => (opts.keepalived_conf.clone(), None),
        PeerConfig::Priority(p) => (opts.keepalived_conf.clone(), Some(*p)),
        PeerConfig::File(f) => (Some(f.clone()), None),
    };
    let notes = match (pair.peer, &src) {
        (PeerKind::Lbd, Some(src)) => vrrpconf::install_for_lbd(
            src,
            &ctx.paths.keepalived_conf(),
            &pair.director,
            priority,
            "director-2",
        )?,
        (PeerKind::Lbd, None) => vec![],
        (PeerKind::Keepalived, Some(src)) => {
            let (text, notes) =
                vrrpconf::keepalived_peer_conf(src, &pair.director, priority, "director-2")?;
            state::write(&ctx.paths.keepalived_vrrp_conf(), text.as_bytes())?;
            notes
        }
        (PeerKind::Keepalived, None) => {
            return Err(Error::InvalidSpec {
                field: "peer".into(),
                reason: "a keepalived peer needs --config".into(),
            })
        }
    };
    note(live, notes)?;
    if pair.peer == PeerKind::Lbd {
        let mut settings = settings.clone();
        settings.services = src.as_ref().map(|_| ctx.paths.keepalived_conf());
        if let Some(w) = opts.peer_workers {
            settings.workers = w;
        }
        let toml = director::lbd_config_for(&opts.name, 2, &ctx.spec, &settings, &ctx.paths);
        state::write(&ctx.paths.lbd_toml(), toml.as_bytes())?;
    }
    directors::launch(&ctx, &mut live.peer, &mut live.record, LogMode::Truncate).map(drop)
}

/// Prints `notes` (stderr) and keeps them in the record for `status`.
pub(super) fn note(live: &mut Live, notes: Vec<String>) -> Result<()> {
    for n in &notes {
        eprintln!("lb-testbed: note: {n}");
    }
    live.record.vrrp_interface_notes.extend(notes);
    Ok(())
}

impl Testbed {
    /// How many directors this topology has (1, or 2 for a pair).
    pub fn directors(&self) -> u8 {
        self.live().record.directors()
    }

    /// The state paths of director `n` ([`StatePaths::director`]).
    pub fn director_paths(&self, n: u8) -> StatePaths {
        self.paths.director(n)
    }

    /// The pids of director `n`'s running daemons: lbd, lb-slowpath,
    /// keepalived (each `None` when it is not running or not part of it).
    pub fn director_pids(&self, n: u8) -> [Option<u32>; 3] {
        let live = self.live();
        let pid = |d: &Option<Daemon>| d.as_ref().map(Daemon::pid);
        match n {
            1 => [pid(&live.lbd), pid(&live.slowpath), None],
            _ => [
                pid(&live.peer.lbd),
                pid(&live.peer.slowpath),
                pid(&live.peer.keepalived),
            ],
        }
    }

    /// Path of the keepalived peer's log (director 2 with [`PeerKind::Keepalived`]).
    pub fn keepalived_log_path(&self) -> PathBuf {
        self.paths.director(2).keepalived_log()
    }

    /// Contents of the keepalived peer's log (every start so far).
    pub fn keepalived_log(&self) -> Result<String> {
        let p = self.keepalived_log_path();
        let bytes = std::fs::read(&p).map_err(|e| Error::io("reading", &p, e))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Stops director `n` (1 or 2): SIGKILL to its daemons' process groups,
    /// a crash (lbd and lb-slowpath, or keepalived), waiting until they are
    /// gone; with `freeze`, SIGSTOP instead, waiting until they are stopped.
    pub fn stop_director(&self, n: u8, freeze: bool) -> Result<()> {
        self.with_director(n, |ctx, procs, live| {
            directors::stop(ctx, procs, &mut live.record, freeze)
        })
    }

    /// Starts director `n` again: SIGCONT to a frozen one; whatever is not
    /// running is started (logs appended to) and waited for: lbd until ready
    /// (its TAPs re-addressed), lb-slowpath until connected, keepalived until
    /// it runs its instances. Running and not frozen is [`Error::AlreadyRunning`].
    pub fn start_director(&self, n: u8) -> Result<()> {
        self.with_director(n, |ctx, procs, live| {
            directors::start(ctx, procs, &mut live.record)
        })
    }

    fn with_director<T>(
        &self,
        n: u8,
        f: impl FnOnce(&DirectorCtx, &mut DirectorProcs, &mut Live) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.live();
        let live = &mut *guard;
        let ctx = DirectorCtx::from_record(&live.record, n, self.ready_timeout)?;
        if n != 1 {
            let mut procs = std::mem::take(&mut live.peer);
            let out = f(&ctx, &mut procs, live);
            live.peer = procs;
            return out;
        }
        let mut procs = DirectorProcs {
            lbd: live.lbd.take(),
            slowpath: live.slowpath.take(),
            keepalived: None,
        };
        let out = f(&ctx, &mut procs, live);
        live.lbd = procs.lbd;
        live.slowpath = procs.slowpath;
        out
    }
}
