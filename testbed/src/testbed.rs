//! [`Testbed`]: bringing a topology up, using it, and tearing it down
//! completely, also after failures, panics and killed processes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cmd::{self, Cmd};
use crate::daemon::{Daemon, LogMode};
use crate::director::{self, LbdSettings};
use crate::directors::DirectorProcs;
use crate::error::{Error, Result};
use crate::netns;
use crate::nginx;
use crate::slowpath;
use crate::spec::{self, Node, TopologySpec};
use crate::state::{self, StatePaths, TopologyRecord};
use crate::teardown::{down, down_with, TeardownReport};
use crate::udp_echo;
use crate::vrrpconf;

mod options;
mod pair;
mod procs;

pub use options::UpOptions;

/// The client's second veth, for direct-routing replies, and its port on the LAN bridge.
const DR_RETURN_IFACE: &str = "c1";
const DR_RETURN_PORT: &str = "cl";
/// The routing table backends use for direct-routing replies.
const DR_TABLE: &str = "100";


/// Default bound for [`Testbed::exec`].
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(120);

/// A running topology. Dropping it tears it down (errors go to stderr); call
/// [`Testbed::down`] to see them, or [`Testbed::detach`] to leave it running.
#[derive(Debug)]
pub struct Testbed {
    name: String,
    spec: TopologySpec,
    paths: StatePaths,
    /// How long a (re)started lbd gets to become ready.
    ready_timeout: Duration,
    /// What restarts change; behind a lock so tests restart through `&Testbed`.
    live: Mutex<Live>,
    spawned: Vec<u32>,
    active: bool,
}

/// The processes of a topology this `Testbed` started, and its record.
#[derive(Debug)]
struct Live {
    record: TopologyRecord,
    lbd: Option<Daemon>,
    slowpath: Option<Daemon>,
    /// UDP echo servers by backend address (their pids are in `spawned` too),
    /// reaped at teardown.
    echoes: Vec<(std::net::Ipv4Addr, Child)>,
    /// Director 2's daemons, in a pair.
    peer: DirectorProcs,
}

impl Testbed {
    /// Brings up the topology [`TopologySpec::from_keepalived_file`] makes of
    /// `keepalived_conf`, with lbd reading that file (it replaces
    /// `opts.keepalived_conf`).
    pub fn up_from_keepalived(keepalived_conf: &Path, opts: &UpOptions) -> Result<Testbed> {
        let spec = TopologySpec::from_keepalived_file(keepalived_conf)?;
        let opts = opts.clone().with_keepalived_conf(keepalived_conf);
        Testbed::up(&spec, &opts)
    }

    /// Brings up `spec` as topology `opts.name`, replacing an existing one of
    /// that name. On failure everything created so far is removed first.
    pub fn up(spec: &TopologySpec, opts: &UpOptions) -> Result<Testbed> {
        spec::validate_name(&opts.name)?;
        spec.validate()?;
        if opts.director && opts.workers == 0 {
            return Err(Error::InvalidSpec {
                field: "workers".into(),
                reason: "lbd needs at least one worker".into(),
            });
        }
        if let Some(conf) = &opts.keepalived_conf {
            kaconf::load(conf)?;
        }
        let lbd_path = if opts.director {
            Some(director::resolve_lbd(opts.lbd_path.as_deref())?)
        } else {
            None
        };
        let slowpath_path = if opts.runs_slowpath() {
            Some(slowpath::resolve_slowpath(
                opts.slowpath_path.as_deref(),
                lbd_path.as_deref(),
            )?)
        } else {
            None
        };
        let pair = pair::plan(spec, opts)?;
        down(&opts.name)?;

        let name = opts.name.clone();
        let paths = StatePaths::new(&name);
        let namespaces: Vec<String> = all_nodes(spec, pair.is_some())
            .iter()
            .map(|n| n.netns(&name))
            .collect();
        let mut nodes = std::collections::BTreeMap::new();
        for node in all_nodes(spec, pair.is_some()) {
            nodes.insert(node_name(node, pair.is_some()), node.netns(&name));
        }
        let record = TopologyRecord {
            name: name.clone(),
            complete: false,
            spec: spec.clone(),
            driver: opts.driver().to_string(),
            workers: opts.workers,
            director: opts.director,
            lbd_path: lbd_path.clone(),
            lbd_pid: None,
            slowpath_path,
            slowpath_pid: None,
            namespaces,
            nodes,
            state_dir: paths.dir().to_owned(),
            stats_file: paths.stats(),
            lbd_log: paths.lbd_log(),
            pair,
            vrrp_interface_notes: vec![],
        };
        let mut tb = Testbed {
            name,
            spec: spec.clone(),
            paths,
            ready_timeout: opts.ready_timeout,
            live: Mutex::new(Live {
                record,
                lbd: None,
                slowpath: None,
                echoes: vec![],
                peer: DirectorProcs::default(),
            }),
            spawned: vec![],
            active: true,
        };
        match tb.build(opts, lbd_path.as_deref()) {
            Ok(()) => Ok(tb),
            Err(up) => match tb.teardown() {
                Ok(_) => Err(up),
                Err(cleanup) => Err(Error::UpAndCleanup {
                    up: Box::new(up),
                    cleanup: Box::new(cleanup),
                }),
            },
        }
    }

    fn build(&mut self, opts: &UpOptions, lbd_path: Option<&Path>) -> Result<()> {
        let live = self.live.get_mut().unwrap_or_else(|e| e.into_inner());
        state::mkdir(self.paths.dir())?;
        live.record.save(&self.paths)?;
        let services = match &opts.keepalived_conf {
            Some(src) => {
                let dest = self.paths.keepalived_conf();
                let who = if live.record.pair.is_some() { "director-1" } else { "director" };
                let notes = vrrpconf::install_for_lbd(src, &dest, &self.spec.director, None, who)?;
                pair::note(live, notes)?;
                Some(dest)
            }
            None => None,
        };
        for ns in &live.record.namespaces {
            netns::add(ns)?;
        }
        let name = &self.name;
        let spec = &self.spec;
        let (client, director, lan) = (
            Node::Client.netns(name),
            Node::Director.netns(name),
            Node::Lan.netns(name),
        );
        let (wan0, lan0) = (
            spec.director.wan.iface.as_str(),
            spec.director.lan.iface.as_str(),
        );
        let d0 = spec.lan.director_port.as_str();
        let br0 = spec.lan.bridge.as_str();

        // Cables: (namespace, veth end) pairs. A pair puts the client and
        // both directors' wan0 on a bridge in the `wan` namespace.
        let mut cables = match &live.record.pair {
            Some(p) => pair::cables(name, spec, p),
            None => vec![(
                (client.clone(), spec.client.iface.clone()),
                (director.clone(), wan0.to_owned()),
            )],
        };
        let mut bridges = vec![(lan.clone(), br0.to_owned())];
        if live.record.pair.is_some() {
            bridges.push((Node::Wan.netns(name), crate::pair::WAN_BRIDGE.to_owned()));
        }
        cables.push((
            (director.clone(), lan0.to_owned()),
            (lan.clone(), d0.to_owned()),
        ));
        for (i, b) in spec.backends.iter().enumerate() {
            let port = TopologySpec::backend_bridge_port(i);
            cables.push((
                (lan.clone(), port),
                (Node::Backend(b.address.addr).netns(name), "eth0".to_owned()),
            ));
        }
        if spec.client.dr_return.is_some() {
            cables.push(((client.clone(), DR_RETURN_IFACE.to_owned()), (lan.clone(), DR_RETURN_PORT.to_owned())));
        }
        for ((ns_a, a), (ns_b, b)) in &cables {
            netns::veth(ns_a, a, ns_b, b)?;
        }
        for (ns, br) in &bridges {
            netns::bridge(ns, br)?;
        }
        let ends: Vec<&(String, String)> = cables.iter().flat_map(|(a, b)| [a, b]).collect();
        for ns in &live.record.namespaces {
            let mut ifaces: Vec<&str> = ends
                .iter()
                .filter(|(n, _)| n == ns)
                .map(|(_, i)| i.as_str())
                .collect();
            ifaces.extend(bridges.iter().filter(|(n, _)| n == ns).map(|(_, b)| b.as_str()));
            netns::disable_ipv6(ns, &ifaces)?;
        }
        for (ns, iface) in &ends {
            netns::offloads_off(ns, iface)?;
        }
        for (ns, iface) in &ends {
            if let Some((_, br)) = bridges.iter().find(|(n, _)| n == ns) {
                netns::set_master(ns, iface, br)?;
            }
        }
        if let Some(p) = &live.record.pair {
            pair::set_macs(name, spec, p)?;
        }
        for (ns, br) in &bridges {
            netns::link_up(ns, br)?;
        }
        for (ns, iface) in &ends {
            netns::link_up(ns, iface)?;
        }
        if let Some(p) = live.record.pair.as_ref().filter(|p| p.peer == crate::pair::PeerKind::Keepalived) {
            pair::address_keepalived_peer(name, spec, p)?;
        }

        for &a in &spec.client.addresses {
            netns::addr_add(&client, &spec.client.iface, a)?;
        }
        if let Some(gw) = spec.client.gateway {
            netns::route_add(&client, None, gw)?;
        }
        for r in &spec.client.routes {
            netns::route_add(&client, Some(r.dest), r.via)?;
        }
        if let Some(a) = spec.client.dr_return {
            netns::addr_add(&client, DR_RETURN_IFACE, a)?;
            // Replies from the VIP arrive on c1 while the VIP is routed via c0.
            let rp: Vec<(String, &str)> = ["all", "default", spec.client.iface.as_str(), DR_RETURN_IFACE]
                .iter()
                .map(|i| (format!("net.ipv4.conf.{i}.rp_filter"), "0"))
                .collect();
            netns::sysctls(&client, &rp)?;
        }
        for b in &spec.backends {
            let ns = Node::Backend(b.address.addr).netns(name);
            netns::addr_add(&ns, "eth0", b.address)?;
            for &a in &b.loopback_addresses {
                netns::addr_add(&ns, "lo", a)?;
            }
            if let Some(gw) = b.gateway {
                netns::route_add(&ns, None, gw)?;
            }
            for r in &b.routes {
                netns::route_add(&ns, Some(r.dest), r.via)?;
            }
            if let Some(r) = b.dr_reply_route {
                let (dest, via) = (r.dest.to_string(), r.via.to_string());
                Cmd::in_netns(&ns, ["ip", "route", "add", dest.as_str(), "via", via.as_str(), "table", DR_TABLE]).run_short()?;
                for a in &b.loopback_addresses {
                    let from = a.to_string();
                    Cmd::in_netns(&ns, ["ip", "rule", "add", "from", from.as_str(), "table", DR_TABLE, "pref", "100"]).run_short()?;
                }
            }
            if b.arp_quiet {
                let quiet: Vec<(String, &str)> = ["all", "eth0", "lo"]
                    .iter()
                    .flat_map(|i| [(format!("net.ipv4.conf.{i}.arp_ignore"), "1"), (format!("net.ipv4.conf.{i}.arp_announce"), "2")])
                    .collect();
                netns::sysctls(&ns, &quiet)?;
            }
            nginx::start(&self.paths, b, &ns)?;
            if !b.udp_echo_ports.is_empty() {
                let child = udp_echo::start(&self.paths, b, &ns)?;
                self.spawned.push(child.id());
                live.echoes.push((b.address.addr, child));
            }
        }
        for b in &spec.backends {
            let ns = Node::Backend(b.address.addr).netns(name);
            nginx::wait_ready(&self.paths, b, &ns)?;
            if let Some((_, child)) = live.echoes.iter_mut().find(|(a, _)| *a == b.address.addr) {
                udp_echo::wait_ready(&self.paths, b, &ns, child)?;
            }
        }

        if let Some(lbd_path) = lbd_path {
            let settings = LbdSettings {
                driver: opts.driver(),
                workers: opts.workers,
                idle_sleep_us: opts.idle_sleep_us,
                memory_mb: opts.memory_mb,
                extra_config: opts.extra_lbd_config.clone(),
                services,
            };
            let toml = director::lbd_config(name, spec, &settings, &self.paths);
            let settings_for_peer = settings.clone();
            state::write(&self.paths.lbd_toml(), toml.as_bytes())?;
            let lbd = live.lbd.insert(director::start(
                lbd_path,
                &director,
                &self.paths,
                LogMode::Truncate,
            )?);
            live.record.lbd_pid = Some(lbd.pid());
            live.record.save(&self.paths)?;
            director::wait_ready(lbd, &director, spec, &self.paths, opts.ready_timeout)?;
            director::configure_taps(&director, spec)?;
            if let Some(bin) = live.record.slowpath_path.clone() {
                // A topology of the same name may have left a log behind: start afresh.
                state::remove_file(&self.paths.slowpath_log())?;
                procs::start_slowpath(live, &self.paths, &director, &bin)?;
            }
            pair::start_peer(live, opts, &settings_for_peer)?;
        }
        live.record.complete = true;
        live.record.save(&self.paths)
    }

    /// Tears the topology down; errors name everything that is left over.
    pub fn down(mut self) -> Result<TeardownReport> {
        self.teardown()
    }

    /// Leaves the topology running (for the CLI); returns its name.
    /// `lb-testbed down` or [`down`] removes it later.
    pub fn detach(mut self) -> String {
        self.active = false;
        std::mem::take(&mut self.name)
    }

    fn teardown(&mut self) -> Result<TeardownReport> {
        self.active = false;
        let live = self.live.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut problems = Vec::new();
        for d in [&mut live.peer.slowpath, &mut live.peer.keepalived, &mut live.peer.lbd] {
            if let Some(mut d) = d.take() {
                if let Err(e) = d.stop() {
                    problems.push(e.to_string());
                }
            }
        }
        // lb-slowpath before lbd: it talks to lbd, not the other way round.
        let mut stopped = [None, None];
        for (daemon, pid) in [&mut live.slowpath, &mut live.lbd].into_iter().zip(&mut stopped) {
            if let Some(mut d) = daemon.take() {
                match d.stop() {
                    Ok(()) => *pid = Some(d.pid()),
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        let me = std::process::id();
        for &pid in &self.spawned {
            if cmd::pid_parent(pid) == Some(me) && cmd::pid_alive(pid) {
                let _ = cmd::signal(pid, "KILL");
            }
        }
        for (_, child) in &mut live.echoes {
            let _ = child.kill();
            let _ = child.wait();
        }
        live.echoes.clear();
        let mut report = down_with(&self.name, &live.record.namespaces, problems)?;
        report.slowpath_stopped = report.slowpath_stopped.or(stopped[0]);
        report.lbd_stopped = report.lbd_stopped.or(stopped[1]);
        Ok(report)
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Topology name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &TopologySpec {
        &self.spec
    }

    /// `/run/lb-testbed/<name>`.
    pub fn state_dir(&self) -> &Path {
        self.paths.dir()
    }

    /// All state paths.
    pub fn paths(&self) -> &StatePaths {
        &self.paths
    }

    /// The node names: `client`, `director`, `lan`, `rs-<addr>`...; in a
    /// pair `client`, `director-1`, `director-2`, `wan`, `lan`, `rs-<addr>`...
    /// (`director` stays a name of `director-1`).
    pub fn nodes(&self) -> Vec<String> {
        let is_pair = self.directors() == 2;
        all_nodes(&self.spec, is_pair)
            .into_iter()
            .map(|n| node_name(n, is_pair))
            .collect()
    }

    /// The namespace of `node`, or [`Error::UnknownNode`].
    pub fn netns(&self, node: &str) -> Result<String> {
        let unknown = || Error::UnknownNode {
            node: node.to_owned(),
            topology: self.name.clone(),
            known: self.nodes().join(", "),
        };
        let parsed: Node = node.parse().map_err(|_| unknown())?;
        if !all_nodes(&self.spec, self.directors() == 2).contains(&parsed) {
            return Err(unknown());
        }
        Ok(parsed.netns(&self.name))
    }

    /// A `Command` running `args` inside `node` (through `ip netns exec`),
    /// for full control over stdio. Processes left running are killed at
    /// teardown with everything else in the namespace.
    pub fn command<I, S>(&self, node: &str, args: I) -> Result<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(Cmd::in_netns(&self.netns(node)?, args).command())
    }

    /// Runs `args` inside `node`, capturing its output, bounded by [`EXEC_TIMEOUT`].
    /// A non-zero exit is not an error (see [`Testbed::exec_ok`]).
    pub fn exec<I, S>(&self, node: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.exec_timeout(node, args, EXEC_TIMEOUT)
    }

    /// [`Testbed::exec`] with an explicit bound; the command is killed when it is hit.
    pub fn exec_timeout<I, S>(&self, node: &str, args: I, timeout: Duration) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd::in_netns(&self.netns(node)?, args).output(timeout)
    }

    /// Runs `args` inside `node` and returns its stdout; a non-zero exit is
    /// [`Error::CommandFailed`] with the command, namespace and stderr.
    pub fn exec_ok<I, S>(&self, node: &str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd::in_netns(&self.netns(node)?, args).run(EXEC_TIMEOUT)
    }

    /// Starts `args` inside `node` in the background (stdin null, stdout and
    /// stderr piped). It is killed at teardown if still running.
    pub fn spawn<I, S>(&mut self, node: &str, args: I) -> Result<Child>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let c = Cmd::in_netns(&self.netns(node)?, args);
        let mut command = c.command();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn().map_err(|source| Error::Spawn {
            command: c.display(),
            location: c.location(),
            source,
        })?;
        self.spawned.push(child.id());
        Ok(child)
    }

    /// lbd's pid, if this topology has a director (and it was not killed
    /// with [`Testbed::kill_lbd`]).
    pub fn lbd_pid(&self) -> Option<u32> {
        self.live().lbd.as_ref().map(Daemon::pid)
    }

    /// Whether lbd is still running.
    pub fn lbd_running(&mut self) -> bool {
        self.live().lbd.as_mut().is_some_and(|l| l.exited().is_none())
    }

    /// Path of lbd's log (stdout and stderr).
    pub fn lbd_log_path(&self) -> PathBuf {
        self.paths.lbd_log()
    }

    /// Contents of lbd's log.
    pub fn lbd_log(&self) -> Result<String> {
        let p = self.paths.lbd_log();
        let bytes = std::fs::read(&p).map_err(|e| Error::io("reading", &p, e))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Path of lbd's stats file.
    pub fn stats_path(&self) -> PathBuf {
        self.paths.stats()
    }

    /// Parses lbd's stats file. A file caught half-written is re-read for up
    /// to a second.
    pub fn read_stats(&self) -> Result<serde_json::Value> {
        if !self.live().record.director {
            return Err(Error::NoDirector(self.name.clone()));
        }
        let path = self.paths.stats();
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let text =
                std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
            match serde_json::from_str(&text) {
                Ok(v) => return Ok(v),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(source) => return Err(Error::Json { path, source }),
            }
        }
    }

    /// Path of a backend's UDP echo log (one line per datagram:
    /// `<src addr>:<src port> -> <addr>:<port> <length>`).
    pub fn udp_log_path(&self, backend: &str) -> Result<PathBuf> {
        Ok(self.paths.udp_log(self.backend_addr(backend)?))
    }

    /// Path of a backend's nginx access log.
    pub fn access_log_path(&self, backend: &str) -> Result<PathBuf> {
        Ok(self.paths.access_log(self.backend_addr(backend)?))
    }

    /// The address of backend node `backend`, or [`Error::UnknownNode`].
    fn backend_addr(&self, backend: &str) -> Result<std::net::Ipv4Addr> {
        self.netns(backend)?;
        match backend.parse::<Node>() {
            Ok(Node::Backend(addr)) => Ok(addr),
            _ => Err(Error::UnknownNode {
                node: backend.to_owned(),
                topology: self.name.clone(),
                known: self
                    .spec
                    .backends
                    .iter()
                    .map(|b| b.node())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if self.active {
            if let Err(e) = self.teardown() {
                eprintln!("lb-testbed: teardown of {:?} on drop: {e}", self.name);
            }
        }
    }
}

fn all_nodes(spec: &TopologySpec, is_pair: bool) -> Vec<Node> {
    let mut nodes = vec![Node::Client, Node::Director];
    if is_pair {
        nodes.extend([Node::Director2, Node::Wan]);
    }
    nodes.push(Node::Lan);
    nodes.extend(spec.backends.iter().map(|b| Node::Backend(b.address.addr)));
    nodes
}

/// A node's name as listed: in a pair, director 1 is `director-1`.
fn node_name(node: Node, is_pair: bool) -> String {
    match node {
        Node::Director if is_pair => "director-1".to_owned(),
        n => n.to_string(),
    }
}

/// A short name unique to this process and call, for tests: `<prefix><pid in
/// base 36>-<counter>`, e.g. `t2hwyo-3`.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut pid = std::process::id();
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit(pid % 36, 36).unwrap_or('0'));
        pid /= 36;
        if pid == 0 {
            break;
        }
    }
    let pid36: String = digits.into_iter().rev().collect();
    format!("{prefix}{pid36}-{n}")
}
