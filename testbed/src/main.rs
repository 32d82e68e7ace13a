//! `lb-testbed`: bring network-namespace topologies around lbd up and down,
//! run commands inside their nodes, and show what exists.

#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lb_testbed::{
    BackendSpec, Driver, Ipv4Cidr, Node, PeerConfig, PeerKind, StatePaths, Testbed,
    TopologyRecord, TopologySpec, UpOptions,
};

/// The topology description shared by the top-level and `up` help.
macro_rules! topology_help {
    () => {
        "\
Topology (addresses exist only inside the namespaces; several topologies coexist):

  lbt-NAME-client      c0 10.70.1.10/24, default route via 10.70.1.1
        | veth
  lbt-NAME-director    wan0 ── lbd ── lan0   (no kernel addresses; lbd owns 10.70.1.1/24 and
                       10.70.2.1/24 and creates tap-wan 10.70.1.2/24, tap-lan 10.70.2.2/24)
        | veth
  lbt-NAME-lan         bridge br0: d0, rs0, rs1, ...
        | veth (one per backend)
  lbt-NAME-rs-ADDR     eth0 ADDR (10.70.2.11/24, 10.70.2.12/24, ...), default route via 10.70.2.1,
                       nginx on port 80: GET / -> \"rs-ADDR\\n\", GET /healthz -> \"ok\\n\"

Node names (for `exec`): client, director, lan, rs-ADDR (e.g. rs-10.70.2.11); in a pair
(--directors 2) also director-1 (= director), director-2 and wan.
IPv6 is disabled and rx/tx checksum, TSO, GSO and GRO offloads are off on every veth end.

State directory /run/lb-testbed/NAME/:
  topology.json   what was created (spec, namespaces, lbd pid)
  lbd.toml        lbd's configuration      lbd.log   lbd's stdout and stderr
  lbd.pid         lbd's pid                stats.json   rewritten by lbd every ~200 ms
  slowpath.log    lb-slowpath's output (appended to by every start)   slowpath.pid  its pid
  rs-ADDR/        nginx.conf, nginx.pid, access.log ($remote_addr:$remote_port first), error.log
                  udp-echo.log (\"SRC:PORT -> ADDR:PORT LEN\" per datagram), udp-echo.pid, udp-echo.out
  keepalived.conf the --config file, as lbd reads it (`services` in lbd.toml)

lbd is started as `ip netns exec lbt-NAME-director LBD --config /run/lb-testbed/NAME/lbd.toml`
in its own session; it is ready when stats.json exists and both taps exist (bounded wait).
With a services file (--config), lb-slowpath (the health checks) is then started beside it as
`ip netns exec lbt-NAME-director LB-SLOWPATH --config /run/lb-testbed/NAME/lbd.toml`, and `up`
waits (15 s) until it logs `lb-slowpath: connected to lbd`."
    };
}

const TOPOLOGY_HELP: &str = topology_help!();

const UP_HELP: &str = concat!(
    "lbd.toml (written to /run/lb-testbed/NAME/lbd.toml):\n\n",
    "  workers = N                 # --workers\n",
    "  idle_sleep_us = US          # --idle-sleep-us\n",
    "  stats_file = \"/run/lb-testbed/NAME/stats.json\"\n",
    "  services = \"/run/lb-testbed/NAME/keepalived.conf\"   # only with --config\n",
    "  [eal]\n",
    "  no_huge = true\n",
    "  memory_mb = MIB             # --memory-mb\n",
    "  file_prefix = \"lbt-NAME\"\n",
    "  [[port]]                    # twice: wan (net_<driver>0,iface=wan0), lan (net_<driver>1,iface=lan0)\n",
    "  name = \"wan\"\n",
    "  vdev = \"net_af_packet0,iface=wan0\"\n",
    "  addresses = [\"10.70.1.1/24\"]  # plus --wan-address (lan: 10.70.2.1/24 plus --lan-address)\n",
    "  kernel_tap = \"tap-wan\"\n\n",
    "With --config FILE (a keepalived.conf) the topology follows the file instead of --backends:\n\n",
    "  - one backend rs-ADDR per distinct real_server address, ADDR/24, default route via lbd's\n",
    "    LAN address in that /24; nginx listens on every TCP port and a UDP echo server (python3,\n",
    "    bound to ADDR, log rs-ADDR/udp-echo.log) on every UDP port its virtual services use\n",
    "    (nginx stays on port 80 when a backend has no TCP service);\n",
    "  - lbd's lan port owns .1/24 (.254 if .1 is taken) in every real-server /24, and tap-lan\n",
    "    gets .2/24 (.253 if taken) in the first; the client and wan side are as below, and the\n",
    "    client's default route via 10.70.1.1 reaches every VIP (a VIP in 10.70.1.0/24 is fine);\n",
    "  - a real server in the client subnet 10.70.1.0/24, or a /24 where both .1 and .254 are\n",
    "    taken (by real servers, VIPs or local addresses), is an error naming it;\n",
    "  - lbd reads the file itself (VIPs, local addresses: it answers ARP for them; the port\n",
    "    name for local_address_group entries is `lan`): it is copied to\n",
    "    /run/lb-testbed/NAME/keepalived.conf and lbd.toml gets\n",
    "      services = \"/run/lb-testbed/NAME/keepalived.conf\"\n",
    "    A file that uses `include` is not copied: that file then holds one `include` of the\n",
    "    original's absolute path, so includes resolve from the original's directory.\n",
    "  Example: lb-testbed up --config testbed/configs/fnat-demo.conf\n\n",
    "PAIRS (--directors 2): nodes director-1 (alias director, netns lbt-NAME-director) and\n",
    "director-2 (lbt-NAME-director-2); the client's c0 and both directors' wan0 join bridge br0 in\n",
    "lbt-NAME-wan (ports client, d1, d2), both lan0 join the LAN bridge (d0, d0-2). director-2's\n",
    "addresses are director-1's with .1->.3, .2->.4, .254->.252, .253->.251 (lbd 10.70.1.3, tap-wan\n",
    "10.70.1.4, lbd 10.70.2.3, tap-lan 10.70.2.4); MACs 02:4c:42:00:0N:01 (wan0), :02 (lan0) for\n",
    "director N. director-2's files are under /run/lb-testbed/NAME/director-2/ (lbd.toml, lbd.log,\n",
    "lbd.pid, lbd.sock, stats.json, slowpath.*, keepalived.conf; EAL prefix lbt-NAME-d2).\n",
    "It reads the same --config, or --peer-priority N (states flipped, priority N), or\n",
    "--peer-config FILE2. --peer keepalived runs keepalived there instead (keepalived-vrrp.conf,\n",
    "keepalived.log, keepalived*.pid; its wan0/lan0 hold 10.70.1.3/10.70.2.3). A vrrp_instance\n",
    "interface that names no port (wan, tap-wan, wan0, lan, ...) is mapped onto the wan port in\n",
    "the installed copy, with a note (also in `status`). Backends route via director-1 (.1):\n",
    "FNAT works through either director; NAT and DR replies follow director-1 only.\n",
    "  Example: lb-testbed up --config vrrp.conf --directors 2 --peer keepalived --peer-priority 50\n\n",
    topology_help!(),
);

#[derive(Debug, Parser)]
#[command(
    name = "lb-testbed",
    version,
    about = "Network-namespace topologies with real Linux hosts around lbd"
)]
#[command(
    long_about = "Network-namespace topologies with real Linux hosts (client, nginx backends) around \
the director daemon lbd. Needs root, iproute2, ethtool, nginx and curl."
)]
#[command(after_long_help = TOPOLOGY_HELP)]
struct Cli {
    /// Topology name: namespaces are lbt-NAME-<node>, state is in /run/lb-testbed/NAME/
    #[arg(long, short, global = true, default_value = "lb", value_name = "NAME")]
    name: String,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per invocation
enum Cmd {
    /// Create the topology (replacing an existing one of the same name) and start lbd
    #[command(
        long_about = "Create the topology (first tearing down an existing one of the same \
name), start nginx on every backend and wait until each answers, then start lbd and wait until it \
is ready, then (with --config) lb-slowpath and wait until it is connected to lbd, and exit, leaving it all running. If anything fails, whatever was created is removed and \
the error says which command failed in which namespace, with its stderr (or what was awaited, with \
the tail of lbd.log). An `up` killed half-way leaves a partial topology: `down` removes it."
    )]
    #[command(after_long_help = UP_HELP)]
    Up(UpArgs),
    /// Run a command inside a node's namespace (stdio inherited, exits with its status)
    #[command(
        after_long_help = "Examples:\n  lb-testbed exec client -- curl -sS http://10.70.1.1/\n  \
lb-testbed exec --name t1 rs-10.70.2.11 -- tail -f /run/lb-testbed/t1/rs-10.70.2.11/access.log\n\n\
The exit status is the command's own, or 128+N if it was killed by signal N."
    )]
    Exec(ExecArgs),
    /// Tear the topology down completely (nothing to remove is a success)
    #[command(
        long_about = "Tear the topology down completely: stop lb-slowpath, then lbd (each \
SIGTERM, wait up to 5 s, then SIGKILL), kill every process in each of its namespaces (SIGTERM, 1 s, SIGKILL), delete the \
namespaces, remove DPDK's runtime directory /var/run/dpdk/lbt-NAME and the state directory \
/run/lb-testbed/NAME. Works from topology.json, or without it by scanning `ip netns list` for \
lbt-NAME-<node>. Tearing down something that does not exist is a success. If something cannot be \
removed, the error lists it and the state directory is kept for inspection."
    )]
    Down(DownArgs),
    /// Show what exists of the topology: namespaces, lbd and lb-slowpath (alive?), nginx, paths
    #[command(
        long_about = "Show what exists of the topology: its namespaces, whether lbd (from \
lbd.pid), lb-slowpath (from slowpath.pid) and each backend's nginx are alive, and the paths of its configuration, logs and stats. \
The state is `up` (complete and present), `partial` (an interrupted `up`, or leftovers: run \
`down`), or `down` (nothing exists)."
    )]
    Status(StatusArgs),
    /// List the topologies that have a state directory or namespaces
    List,
    /// Stop or start one backend's servers (nginx, and its UDP echo server if it has one)
    #[command(
        long_about = "Stop or start one backend's servers: its nginx (SIGTERM to the master from \
rs-ADDR/nginx.pid) and, if it has UDP ports, its UDP echo server. `stop` waits until they are gone \
(10 s, then SIGKILL); `start` waits until nginx answers /healthz on every port and the echo server \
is bound. Health checks (lb-slowpath) then mark the real server down or up.",
        after_long_help = "Examples:\n  lb-testbed backend stop --name t1 rs-10.70.2.12\n  \
lb-testbed backend start --name t1 rs-10.70.2.12"
    )]
    Backend(BackendArgs),
    /// Stop one director (SIGKILL: a crash), or freeze it (--freeze: SIGSTOP)
    #[command(
        long_about = "Stop one director: SIGKILL to the process groups of its lbd and lb-slowpath \
(or, for a keepalived peer, its keepalived and VRRP child), as in a crash, waiting (5 s) until they \
are gone. With --freeze, SIGSTOP instead, waiting until they are stopped (a hung director).",
        after_long_help = "Examples:\n  lb-testbed stop --name t1 director-1\n  \
lb-testbed stop --name t1 director-1 --freeze\n  lb-testbed start --name t1 director-1"
    )]
    Stop(StopArgs),
    /// Start a stopped director again, or resume a frozen one (SIGCONT)
    #[command(
        long_about = "Start one director again: a frozen one is sent SIGCONT; whatever is not \
running is started with its own lbd.toml (logs appended to) and waited for: lbd until ready (its \
TAPs are re-addressed), lb-slowpath until connected to lbd, keepalived until it runs its instances. \
A director that is running and not frozen is an error."
    )]
    Start(StartArgs),
}

#[derive(Debug, Args)]
struct StopArgs {
    /// director (director-1) or director-2
    node: String,
    /// SIGSTOP instead of SIGKILL (`start` resumes it)
    #[arg(long)]
    freeze: bool,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// director (director-1) or director-2
    node: String,
}

#[derive(Debug, Args)]
struct BackendArgs {
    #[command(subcommand)]
    action: BackendAction,
}

#[derive(Debug, Subcommand)]
enum BackendAction {
    /// Stop the backend's nginx and UDP echo server and wait until they are gone
    Stop {
        /// The backend node, rs-ADDR (e.g. rs-10.70.2.12)
        node: String,
    },
    /// Start the backend's nginx and UDP echo server and wait until they serve
    Start {
        /// The backend node, rs-ADDR (e.g. rs-10.70.2.12)
        node: String,
    },
}

#[derive(Debug, Args)]
struct UpArgs {
    /// DPDK driver lbd uses on wan0/lan0 (vdev net_af_packetN or net_af_xdpN) [default: af_xdp
    /// with one worker where the kernel has AF_XDP sockets and DPDK its af_xdp PMD, else
    /// af_packet]
    #[arg(long, value_parser = ["af_packet", "af_xdp"])]
    driver: Option<String>,
    /// lbd worker lcores (`workers` in lbd.toml)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// Director 2's worker lcores in a pair (default: --workers)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    peer_workers: Option<u32>,
    /// keepalived.conf: backends follow its real servers and lbd loads its virtual services
    /// (replaces --backends/--backend; see below)
    #[arg(long, value_name = "KEEPALIVED_CONF", conflicts_with_all = ["backends", "backend"])]
    config: Option<PathBuf>,
    /// Number of backends: 10.70.2.11, 10.70.2.12, ... (ignored when --backend is given)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=244))]
    backends: u16,
    /// A backend address (repeatable; replaces the --backends list), e.g. 10.70.2.21/24
    #[arg(long = "backend", value_name = "ADDR/LEN")]
    backend: Vec<Ipv4Cidr>,
    /// lbd binary [default: $LBD_BIN, else `lbd` next to this executable]
    #[arg(long, value_name = "PATH")]
    lbd: Option<PathBuf>,
    /// Do not start lbd (namespaces, links and nginx only)
    #[arg(long)]
    no_director: bool,
    /// Do not start lb-slowpath (health checks) beside lbd
    #[arg(long, conflicts_with = "slowpath")]
    no_slowpath: bool,
    /// lb-slowpath binary [default: $LB_SLOWPATH_BIN, else `lb-slowpath` next to lbd, else next
    /// to this executable]; it runs when lbd has a services file (--config)
    #[arg(long, value_name = "PATH")]
    slowpath: Option<PathBuf>,
    /// lbd's idle_sleep_us: sleep after a run of empty polls (0 = busy poll)
    #[arg(long, default_value_t = 50, value_name = "US")]
    idle_sleep_us: u32,
    /// lbd's EAL memory in MiB (--no-huge)
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    memory_mb: u32,
    /// Seconds lbd gets to become ready
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    ready_timeout: u64,
    /// Extra client address (repeatable), e.g. 10.70.1.11/24
    #[arg(long, value_name = "ADDR/LEN")]
    client_address: Vec<Ipv4Cidr>,
    /// Extra client route (repeatable): DEST/LEN,VIA e.g. 192.0.2.0/24,10.70.1.1
    #[arg(long, value_name = "DEST/LEN,VIA", value_parser = parse_route)]
    client_route: Vec<(Ipv4Cidr, Ipv4Addr)>,
    /// Extra address lbd owns on its WAN port (repeatable), e.g. a VIP 10.70.1.100/24
    #[arg(long, value_name = "ADDR/LEN")]
    wan_address: Vec<Ipv4Cidr>,
    /// Extra address lbd owns on its LAN port (repeatable), e.g. a local address 10.70.2.201/24
    #[arg(long, value_name = "ADDR/LEN")]
    lan_address: Vec<Ipv4Cidr>,
    /// Directors: 1, or 2 for a VRRP pair director-1/director-2 on one client-facing bridge
    /// (namespace lbt-NAME-wan) and one LAN bridge (see PAIRS below)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    directors: u8,
    /// What director-2 runs: lbd (and lb-slowpath), or keepalived (only the file's
    /// vrrp_instances, `keepalived -n -l -D --vrrp`)
    #[arg(long, default_value = "lbd", value_parser = ["lbd", "keepalived"])]
    peer: String,
    /// director-2 reads a copy of --config with every vrrp_instance's state flipped
    /// (MASTER<->BACKUP) and its priority set to N
    #[arg(long, value_name = "N", conflicts_with = "peer_config",
          value_parser = clap::value_parser!(u8).range(1..=255))]
    peer_priority: Option<u8>,
    /// director-2 reads this keepalived.conf instead of --config
    #[arg(long, value_name = "FILE2")]
    peer_config: Option<PathBuf>,
    /// keepalived binary for --peer keepalived [default: keepalived on PATH, else /usr/sbin]
    #[arg(long, value_name = "PATH")]
    keepalived: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// client, director, lan or rs-ADDR
    node: String,
    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct DownArgs {
    /// Tear down every topology `list` shows, not just --name
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

fn parse_route(s: &str) -> Result<(Ipv4Cidr, Ipv4Addr), String> {
    let (dest, via) = s.split_once(',').ok_or("expected DEST/LEN,VIA")?;
    let dest: Ipv4Cidr = dest.parse().map_err(|e: lb_testbed::Error| e.to_string())?;
    let via: Ipv4Addr = via
        .parse()
        .map_err(|_| format!("{via:?} is not an IPv4 address"))?;
    Ok((dest, via))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lb-testbed: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> lb_testbed::Result<ExitCode> {
    let name = cli.name;
    match cli.command {
        Cmd::Up(args) => up(&name, args),
        Cmd::Exec(args) => exec(&name, args),
        Cmd::Down(args) => {
            let names = if args.all {
                lb_testbed::list_topologies()?
            } else {
                vec![name]
            };
            for name in names {
                let r = lb_testbed::down(&name)?;
                let sp = r
                    .slowpath_stopped
                    .map(|p| format!(", stopped lb-slowpath (pid {p})"))
                    .unwrap_or_default();
                let lbd = r
                    .lbd_stopped
                    .map(|p| format!("{sp}, stopped lbd (pid {p})"))
                    .unwrap_or(sp);
                println!(
                    "{}: removed {} namespaces{lbd}",
                    r.name,
                    r.namespaces_removed.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status(args) => status(&name, args.json),
        Cmd::Backend(args) => {
            match args.action {
                BackendAction::Stop { node } => {
                    lb_testbed::backend::stop(&name, &node)?;
                    println!("{name}: {node} stopped");
                }
                BackendAction::Start { node } => {
                    lb_testbed::backend::start(&name, &node)?;
                    println!("{name}: {node} started");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Stop(args) => {
            lb_testbed::directors::stop_by_name(&name, &args.node, args.freeze)?;
            let how = if args.freeze { "frozen (SIGSTOP)" } else { "stopped (SIGKILL)" };
            println!("{name}: {} {how}", args.node);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Start(args) => {
            lb_testbed::directors::start_by_name(&name, &args.node)?;
            println!("{name}: {} started", args.node);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::List => {
            for n in lb_testbed::list_topologies()? {
                println!("{n}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn up(name: &str, a: UpArgs) -> lb_testbed::Result<ExitCode> {
    let mut spec = match &a.config {
        Some(conf) => TopologySpec::from_keepalived_file(conf)?,
        None if !a.backend.is_empty() => TopologySpec::default()
            .with_backends(a.backend.iter().map(|&c| BackendSpec::new(c)).collect()),
        None => TopologySpec::default().with_backend_count(usize::from(a.backends)),
    };
    for c in a.client_address {
        spec = spec.with_client_address(c);
    }
    for (dest, via) in a.client_route {
        spec = spec.with_client_route(dest, via);
    }
    for c in a.wan_address {
        spec = spec.with_wan_address(c);
    }
    for c in a.lan_address {
        spec = spec.with_lan_address(c);
    }
    let opts = UpOptions {
        name: name.to_owned(),
        driver: a.driver.map(|d| d.parse::<Driver>()).transpose().map_err(|reason| lb_testbed::Error::InvalidSpec {
            field: "--driver".into(),
            reason,
        })?,
        workers: a.workers,
        peer_workers: a.peer_workers,
        idle_sleep_us: a.idle_sleep_us,
        memory_mb: a.memory_mb,
        lbd_path: a.lbd,
        director: !a.no_director,
        ready_timeout: Duration::from_secs(a.ready_timeout),
        extra_lbd_config: String::new(),
        keepalived_conf: a.config,
        slowpath: !a.no_slowpath,
        slowpath_path: a.slowpath,
        directors: a.directors,
        peer: a.peer.parse::<PeerKind>().map_err(|reason| lb_testbed::Error::InvalidSpec {
            field: "--peer".into(),
            reason,
        })?,
        peer_config: match (a.peer_priority, a.peer_config) {
            (Some(p), _) => PeerConfig::Priority(p),
            (None, Some(f)) => PeerConfig::File(f),
            (None, None) => PeerConfig::Same,
        },
        keepalived_path: a.keepalived,
    };
    let tb = Testbed::up(&spec, &opts)?;
    println!(
        "topology {name} is up; state in {}",
        tb.state_dir().display()
    );
    for node in tb.nodes() {
        println!("  {node:<16} netns {}", tb.netns(&node)?);
    }
    if let Some(pid) = tb.lbd_pid() {
        println!(
            "  lbd pid {pid}, log {}, stats {}",
            tb.lbd_log_path().display(),
            tb.stats_path().display()
        );
    }
    if let Some(pid) = tb.slowpath_pid() {
        println!(
            "  lb-slowpath pid {pid}, log {}",
            tb.slowpath_log_path().display()
        );
    }
    if tb.directors() == 2 {
        let p2 = tb.director_paths(2);
        let [lbd, sp, ka] = tb.director_pids(2);
        let show = |what: &str, pid: Option<u32>, log: PathBuf| {
            if let Some(pid) = pid {
                println!("  director-2 {what} pid {pid}, log {}", log.display());
            }
        };
        show("lbd", lbd, p2.lbd_log());
        show("lb-slowpath", sp, p2.slowpath_log());
        show("keepalived", ka, p2.keepalived_log());
    }
    println!("tear down with: lb-testbed down --name {name}");
    tb.detach();
    Ok(ExitCode::SUCCESS)
}

fn exec(name: &str, a: ExecArgs) -> lb_testbed::Result<ExitCode> {
    lb_testbed::spec::validate_name(name)?;
    let node: Node = a
        .node
        .parse()
        .map_err(|reason| lb_testbed::Error::UnknownNode {
            node: a.node.clone(),
            topology: name.to_owned(),
            known: reason,
        })?;
    let ns = node.netns(name);
    if !lb_testbed::netns::list()?.contains(&ns) {
        return Err(lb_testbed::Error::UnknownNode {
            node: a.node,
            topology: name.to_owned(),
            known: format!("netns {ns} does not exist (is topology {name:?} up?)"),
        });
    }
    // lbctl in the director talks to this topology's lbd; the project's binaries (built next
    // to lb-testbed) come first on PATH, so `lb-testbed exec director -- lbctl -Ln` works.
    let mut path = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.as_os_str().to_owned())).unwrap_or_default();
    if let Some(p) = std::env::var_os("PATH") {
        path.push(":");
        path.push(p);
    }
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &ns])
        .args(&a.command)
        .env("PATH", path)
        .env(
            "LBCTL_SOCKET",
            lb_testbed::StatePaths::new(name)
                .director(if node == Node::Director2 { 2 } else { 1 })
                .api_socket(),
        )
        .status()
        .map_err(|source| lb_testbed::Error::Spawn {
            command: a.command.join(" "),
            location: format!("in netns {ns}"),
            source,
        })?;
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn status(name: &str, json: bool) -> lb_testbed::Result<ExitCode> {
    lb_testbed::spec::validate_name(name)?;
    let paths = StatePaths::new(name);
    let record = TopologyRecord::load(&paths)?;
    let existing = lb_testbed::netns::list()?;
    let ours: Vec<String> = existing
        .into_iter()
        .filter(|ns| lb_testbed::spec::netns_belongs_to(ns, name))
        .collect();
    let lbd_pid = std::fs::read_to_string(paths.lbd_pid())
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let lbd_alive = lbd_pid.is_some_and(|p| {
        std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c).contains(&*paths.lbd_toml().to_string_lossy())
        })
    });
    let slowpath_pid = std::fs::read_to_string(paths.slowpath_pid())
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let slowpath_alive = slowpath_pid.is_some_and(|p| {
        std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("slowpath") && c.contains(&*paths.lbd_toml().to_string_lossy())
        })
    });
    let slowpath_path = record.as_ref().and_then(|r| r.slowpath_path.clone());
    let backends: Vec<serde_json::Value> = record
        .as_ref()
        .map(|r| r.spec.backends.clone())
        .unwrap_or_default()
        .iter()
        .map(|b| {
            let pid = std::fs::read_to_string(paths.nginx_pid(b.address.addr))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
            let udp_pid = std::fs::read_to_string(paths.udp_echo_pid(b.address.addr))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let udp_alive =
                udp_pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
            serde_json::json!({
                "node": b.node(), "address": b.address.to_string(), "nginx_pid": pid, "nginx_alive": alive,
                "access_log": paths.access_log(b.address.addr), "http_ports": b.http_ports(),
                "udp_echo_ports": b.udp_echo_ports, "udp_echo_pid": udp_pid, "udp_echo_alive": udp_alive,
            })
        })
        .collect();
    let state = match (&record, ours.is_empty()) {
        (Some(r), false) if r.complete => "up",
        (None, true) if !paths.dir().exists() => "down",
        _ => "partial",
    };
    let v = serde_json::json!({
        "name": name,
        "state": state,
        "state_dir": paths.dir(),
        "state_dir_exists": paths.dir().exists(),
        "namespaces": ours,
        "director": record.as_ref().map(|r| r.director),
        "driver": record.as_ref().map(|r| r.driver.clone()),
        "workers": record.as_ref().map(|r| r.workers),
        "lbd_path": record.as_ref().and_then(|r| r.lbd_path.clone()),
        "lbd_pid": lbd_pid,
        "lbd_alive": lbd_alive,
        "lbd_config": paths.lbd_toml(),
        "slowpath_path": slowpath_path,
        "slowpath_pid": slowpath_pid,
        "slowpath_alive": slowpath_alive,
        "slowpath_log": paths.slowpath_log(),
        "lbd_log": paths.lbd_log(),
        "stats_file": paths.stats(),
        "stats_file_exists": paths.stats().exists(),
        "backends": backends,
        "directors": record.as_ref().map(TopologyRecord::directors),
        "director_2": director2_status(&paths, record.as_ref()),
        "vrrp_interface_notes": record.as_ref().map(|r| r.vrrp_interface_notes.clone()),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("topology {name}: {state}");
    println!(
        "  state dir   {} ({})",
        paths.dir().display(),
        if paths.dir().exists() {
            "present"
        } else {
            "missing"
        }
    );
    for ns in &ours {
        println!("  netns       {ns}");
    }
    if let Some(r) = &record {
        if r.director {
            let alive = if lbd_alive { "running" } else { "NOT running" };
            println!(
                "  lbd         pid {} {alive} ({}, {} workers)",
                lbd_pid.map_or("?".into(), |p| p.to_string()),
                r.driver,
                r.workers
            );
            println!(
                "  lbd binary  {}",
                r.lbd_path
                    .as_ref()
                    .map_or("?".into(), |p| p.display().to_string())
            );
            println!("  lbd config  {}", paths.lbd_toml().display());
            println!("  lbd log     {}", paths.lbd_log().display());
            match (&slowpath_path, slowpath_pid) {
                (None, None) => println!("  lb-slowpath none (no services file, or --no-slowpath)"),
                (path, pid) => {
                    let alive = if slowpath_alive { "running" } else { "NOT running" };
                    println!(
                        "  lb-slowpath pid {} {alive} ({}), log {}",
                        pid.map_or("-".into(), |p| p.to_string()),
                        path.as_ref().map_or("?".into(), |p| p.display().to_string()),
                        paths.slowpath_log().display()
                    );
                }
            }
            println!(
                "  stats       {}{}",
                paths.stats().display(),
                if paths.stats().exists() {
                    ""
                } else {
                    " (missing)"
                }
            );
        } else {
            println!("  lbd         none (--no-director)");
        }
    }
    if let Some(d2) = v["director_2"].as_object() {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
        println!(
            "  director-2  {} ({}), netns {}, files in {}",
            text(&d2["peer"]),
            text(&d2["peer_config"]),
            text(&d2["netns"]),
            text(&d2["dir"])
        );
        for what in ["lbd", "lb-slowpath", "keepalived"] {
            if let Some(pid) = d2[what]["pid"].as_u64() {
                let alive = if d2[what]["alive"] == true { "running" } else { "NOT running" };
                println!("  director-2 {what} pid {pid} {alive}, log {}", text(&d2[what]["log"]));
            }
        }
    }
    for note in v["vrrp_interface_notes"].as_array().into_iter().flatten() {
        println!("  note        {}", note.as_str().unwrap_or("?"));
    }
    for b in &backends {
        println!(
            "  {:<16} nginx pid {} {}, access log {}",
            b["node"].as_str().unwrap_or("?"),
            b["nginx_pid"]
                .as_u64()
                .map_or("-".to_owned(), |p| p.to_string()),
            if b["nginx_alive"].as_bool() == Some(true) {
                "running"
            } else {
                "NOT running"
            },
            b["access_log"].as_str().unwrap_or("?"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A pid file's pid, and whether it is alive with `marker` on its command line.
fn pid_status(pid_file: &std::path::Path, marker: &std::path::Path) -> (Option<u32>, bool) {
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let alive = pid.is_some_and(|p| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*marker.to_string_lossy()))
    });
    (pid, alive)
}

/// Director 2 of a pair, for `status`.
fn director2_status(paths: &StatePaths, record: Option<&TopologyRecord>) -> serde_json::Value {
    let Some(pair) = record.and_then(|r| r.pair.as_ref()) else {
        return serde_json::Value::Null;
    };
    let d2 = paths.director(2);
    let entry = |pid_file: PathBuf, marker: PathBuf, log: PathBuf| {
        let (pid, alive) = pid_status(&pid_file, &marker);
        serde_json::json!({ "pid": pid, "alive": alive, "log": log })
    };
    serde_json::json!({
        "peer": pair.peer.to_string(),
        "peer_config": pair.peer_config,
        "netns": pair.netns,
        "dir": d2.dir(),
        "ports": pair.director,
        "macs": pair.director2_macs,
        "director_1_macs": pair.director1_macs,
        "lbd": entry(d2.lbd_pid(), d2.lbd_toml(), d2.lbd_log()),
        "lb-slowpath": entry(d2.slowpath_pid(), d2.lbd_toml(), d2.slowpath_log()),
        "keepalived": entry(d2.keepalived_daemon_pid(), d2.keepalived_vrrp_conf(), d2.keepalived_log()),
        "api_socket": d2.api_socket(),
        "stats_file": d2.stats(),
    })
}
