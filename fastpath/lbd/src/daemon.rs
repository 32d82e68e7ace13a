//! Start-up, the control loop and shutdown of the director daemon.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use dpdk::{Eal, EalBuilder, LaunchHandle, MbufRing, Mempool, Port, PortConfig as DpdkPortConfig};
use fastpath::neigh::NeighTable;
use fastpath::service::ServiceTable;
use fastpath::wire::EthernetAddress;
use fastpath::{Counters, Interface};
use lb_logging::RateLimit;
use serde_json::{json, Value};

use crate::api::{self, ApiError};
use crate::config::{Config, ExceptionKind};
use crate::control::mailbox::Mailbox;
use crate::control::{Control, Env, PortHandle};
use crate::services::{self, Loaded, ServicesError};
use crate::shared::Shared;
use crate::stats::{counters_json, write_atomic, WorkerShared};
use crate::worker::{self, WorkerPlan, WorkerPort};

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Dpdk(#[from] dpdk::Error),
    #[error("port {port}: {msg}")]
    Port { port: String, msg: String },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("the EAL has {have} worker lcore(s) but {want} workers are configured")]
    Lcores { have: usize, want: usize },
    #[error("services: {0}")]
    Services(#[from] ServicesError),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("cannot start the sync thread: {0}")]
    SyncThread(std::io::Error),
}

/// A data port after set-up.
struct PortRuntime {
    name: String,
    port: Port,
    mac: EthernetAddress,
    tap: Option<(String, Port)>,
}

/// Stats-file refresh period.
const STATS_PERIOD: Duration = Duration::from_millis(200);
/// A stats file that cannot be written is logged at most this often (it is retried every
/// [`STATS_PERIOD`]).
const STATS_LOG_EVERY: Duration = Duration::from_secs(60);

/// The `--lcores` map: main lcore 0 on CPU 0; worker `i` (lcore `i+1`) on `worker_cpus[i]`,
/// or by default on CPU `(i+1) % ncpus`.
fn lcore_map(workers: u16, worker_cpus: &[u16]) -> String {
    let ncpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let worker = |w: usize| format!("{}@{}", w + 1, worker_cpus.get(w).map_or((w + 1) % ncpus, |&c| usize::from(c)));
    std::iter::once("0@0".to_owned()).chain((0..usize::from(workers)).map(worker)).collect::<Vec<_>>().join(",")
}

/// The EAL arguments this configuration produces.
pub fn eal_builder(cfg: &Config) -> EalBuilder {
    let prefix = cfg.eal.file_prefix.clone().unwrap_or_else(|| format!("lbd-{}", std::process::id()));
    let mut b = EalBuilder::new("lbd")
        .file_prefix(&prefix)
        .memory_mb(cfg.eal.memory_mb)
        .no_huge(cfg.eal.no_huge)
        .in_memory(!cfg.eal.no_huge)
        .log_level(&cfg.eal.log_level)
        .lcores(&lcore_map(cfg.workers, &cfg.eal.worker_cpus));
    for p in &cfg.ports {
        b = match &p.pci {
            // An allow-list: the EAL probes these NICs and no other PCI device.
            Some(addr) => b.pci_allow(addr),
            None => b.vdev(&cfg.vdev_with_queues(p)),
        };
    }
    for a in &cfg.eal.args {
        b = b.arg(a);
    }
    b
}

/// Loads the configured services (an empty table when none are configured).
pub fn load_services(cfg: &Config) -> Result<Loaded, ServicesError> {
    match &cfg.services {
        Some(path) => services::load(path, cfg.service_options(), &cfg.ports, 1),
        None => Ok(Loaded { table: ServiceTable::default(), notes: Vec::new(), laddrs: Vec::new() }),
    }
}

/// The services file as parsed (the running configuration the control API edits) and as
/// converted for the fast path.
fn load_running(cfg: &Config) -> Result<(kaconf::Config, Loaded), ServicesError> {
    match &cfg.services {
        Some(path) => {
            let conf = kaconf::load(path)?;
            let loaded = services::convert(&conf, cfg.service_options(), &cfg.ports, 1)?;
            Ok((conf, loaded))
        }
        None => Ok((kaconf::Config::default(), Loaded { table: ServiceTable::default(), notes: Vec::new(), laddrs: Vec::new() })),
    }
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the services file.
pub fn run(cfg: &Config) -> Result<(), DaemonError> {
    // Everything that can be checked without DPDK is checked before the EAL starts.
    let (running, loaded) = load_running(cfg)?;
    for n in &loaded.notes {
        tracing::info!("note: {n}");
    }
    let exceptions = exception_paths(cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup)).map_err(DaemonError::Signals)?;
    let eal = eal_builder(cfg).init()?;
    let workers = usize::from(cfg.workers);
    let lcores = dpdk::worker_lcores(&eal);
    if lcores.len() < workers {
        return Err(DaemonError::Lcores { have: lcores.len(), want: workers });
    }
    let pool = Mempool::new("lbd_mbufs", cfg.mbufs, 256, 2176)?;
    let (ports, mut queues, mut ifaces) = setup_ports(cfg, &eal, &pool, &exceptions)?;
    let base_ifaces = ifaces.clone();
    services::assign_addresses(&mut ifaces, &cfg.ports, &loaded);

    let rings = (0..workers).map(|w| MbufRing::new(&format!("lbd_redirect{w}"), 4096)).collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        services: ArcSwap::from_pointee(loaded.table),
        neigh: ArcSwap::from_pointee(NeighTable::default()),
        ifaces: ArcSwap::from_pointee(ifaces.clone()),
        mailboxes: (0..workers).map(|_| Mailbox::default()).collect(),
        learned: ArrayQueue::new(4096),
        rings,
        owners: Default::default(),
        sync: crate::sync::SyncShared::new(workers, cfg.sync),
        stop: AtomicBool::new(false),
    });

    let stats: Vec<Arc<WorkerShared>> = lcores.iter().take(workers).enumerate().map(|(w, l)| Arc::new(WorkerShared::new(w, l.0))).collect();
    let env = Env {
        services_file: cfg.services.clone(),
        opts: cfg.service_options(),
        port_cfgs: cfg.ports.clone(),
        base_ifaces,
        workers: stats.clone(),
        ports: ports
            .iter()
            .zip(&cfg.ports)
            .map(|(p, pc)| PortHandle {
                name: p.name.clone(),
                device: p.port.name().to_owned(),
                mac: p.mac.to_string(),
                addresses: pc.addresses.iter().map(ToString::to_string).collect(),
                port: Some(p.port.clone()),
                tap: p.tap.clone(),
            })
            .collect(),
        started: Instant::now(),
        max_sessions: cfg.max_sessions,
        api_socket: cfg.api_socket.clone(),
        metrics_listen: cfg.metrics_listen,
    };
    let control = Arc::new(Control::new(Arc::clone(&shared), env, running, cfg.timeouts, 1));
    let api = api::start(cfg, Arc::clone(&control))?;
    let sync_stop = Arc::new(AtomicBool::new(false));
    let sync_thread = crate::sync::thread::start(Arc::clone(&control), Arc::clone(&shared), Arc::clone(&sync_stop)).map_err(DaemonError::SyncThread)?;

    let epoch = Instant::now();
    let mut handles = Vec::new();
    for (w, lcore) in lcores.iter().take(workers).enumerate() {
        let s = Arc::clone(&stats[w]);
        let plan = WorkerPlan {
            index: u16::try_from(w).unwrap_or(u16::MAX),
            workers: cfg.workers,
            ports: queues.iter_mut().map(|q| q.remove(0)).collect(),
            shared: Arc::clone(&shared),
            stats: s,
            pool,
            idle_sleep: Duration::from_micros(u64::from(cfg.idle_sleep_us)),
            max_sessions: cfg.max_sessions,
            timeouts: cfg.timeouts,
            epoch,
        };
        handles.push(LaunchHandle::launch(&eal, *lcore, move || worker::run(plan))?);
    }
    let names: Vec<String> = ports
        .iter()
        .zip(&ifaces)
        .map(|(p, i)| {
            let addrs: Vec<String> = i.addrs.iter().map(|(a, l)| format!("{a}/{l}")).collect();
            format!("{}={} ({}, {}{})", p.name, p.port.name(), p.mac, addrs.join(" "), p.tap.as_ref().map(|(t, _)| format!(", tap {t}")).unwrap_or_default())
        })
        .collect();
    let ready = format!(
        "ready: {workers} worker(s) on lcores {:?}; {} service(s); ports: {}",
        lcores.iter().take(workers).map(|l| l.0).collect::<Vec<_>>(),
        shared.services.load().services().len(),
        names.join(", ")
    );
    println!("lbd: {ready}");
    crate::notify::ready(&ready);

    let started = Instant::now();
    let mut last = Instant::now() - STATS_PERIOD;
    let mut stats_log = RateLimit::new(STATS_LOG_EVERY);
    while !stop.load(Ordering::Relaxed) {
        shared.merge_learned();
        if hup.swap(false, Ordering::Relaxed) {
            crate::notify::reloading();
            match control.reload() {
                Ok(change) => {
                    for n in &change.notes {
                        tracing::info!("note: {n}");
                    }
                    tracing::info!(target: crate::api::audit::TARGET, "reload (SIGHUP): {change}");
                    crate::notify::reloaded(&format!("reloaded: {change}"));
                }
                Err(e) => {
                    tracing::warn!(target: crate::api::audit::TARGET, "reload (SIGHUP) refused: {e}");
                    crate::notify::reloaded(&format!("reload refused (running services kept): {e}"));
                }
            }
        }
        if last.elapsed() >= STATS_PERIOD {
            last = Instant::now();
            if let Some(path) = &cfg.stats_file {
                match write_atomic(path, &snapshot(&ports, &stats, &shared, &pool, started, true)) {
                    Ok(()) => {
                        if let Some(n) = stats_log.clear() {
                            tracing::info!("stats file {} written again ({} more failure(s) since the last message)", path.display(), n.0);
                        }
                    }
                    Err(e) => {
                        if let Some(n) = stats_log.hit(Instant::now()) {
                            tracing::warn!("cannot write stats file {}: {e}{n}", path.display());
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    crate::notify::stopping();
    api.stop();
    sync_stop.store(true, Ordering::Relaxed);
    let _ = sync_thread.join();
    shared.stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.wait();
    }
    let final_stats = snapshot(&ports, &stats, &shared, &pool, started, false);
    if let Some(path) = &cfg.stats_file {
        let _ = write_atomic(path, &final_stats);
    }
    println!("lbd: stopped; totals: {}", final_stats["totals"]);
    // Ports one at a time, letting the EAL interrupt thread finish what each stop sets off.
    let all: Vec<dpdk::Port> = ports.iter().flat_map(|p| std::iter::once(p.port.clone()).chain(p.tap.as_ref().map(|(_, t)| t.clone()))).collect();
    if let Err(e) = eal.shutdown_ports(&all) {
        tracing::error!("stopping the ports: {e}");
    }
    // Everything holding DPDK objects (the redirect rings and the mbufs in them live in
    // `Shared`, which `Control` also holds) must be gone before the EAL is cleaned up: freeing
    // them afterwards touched unmapped memory (SIGSEGV on every stop).
    drop(control);
    match Arc::try_unwrap(shared) {
        Ok(shared) => drop(shared),
        Err(still) => {
            tracing::warn!("shared state is still referenced at exit ({} references); leaving it to the OS", Arc::strong_count(&still));
            std::mem::forget(still);
        }
    }
    drop(eal);
    Ok(())
}

/// The exception path of each port with a `kernel_tap` (chosen before the EAL starts, so a
/// missing /dev/vhost-net stops lbd with the port's name before anything is created).
fn exception_paths(cfg: &Config) -> Result<Vec<Option<ExceptionKind>>, DaemonError> {
    let vhost_net = std::path::Path::new(crate::config::VHOST_NET);
    let mut kinds = Vec::new();
    for pc in &cfg.ports {
        let Some(ifname) = &pc.kernel_tap else {
            kinds.push(None);
            continue;
        };
        let (kind, why) = crate::config::choose_exception(pc.exception, vhost_net, crate::config::vhost_net_usable(vhost_net))
            .map_err(|msg| DaemonError::Port { port: pc.name.clone(), msg })?;
        println!("lbd: port {}: exception path {kind} ({ifname}; {why})", pc.name);
        kinds.push(Some(kind));
    }
    Ok(kinds)
}

/// How long a starting lbd waits for a previous instance's virtio_user TAP to go.
const TAP_GONE_WAIT: Duration = Duration::from_secs(5);

type PortSetup = (Vec<PortRuntime>, Vec<Vec<WorkerPort>>, Vec<Interface>);

/// Configures and starts every data port and its TAP; returns per-port queue sets (one
/// `WorkerPort` per worker for each port) and the pipeline's view of each port.
fn setup_ports(cfg: &Config, eal: &Eal, pool: &Mempool, exceptions: &[Option<ExceptionKind>]) -> Result<PortSetup, DaemonError> {
    let workers = cfg.workers;
    let mut runtimes = Vec::new();
    let mut per_port_queues = Vec::new();
    let mut ifaces = Vec::new();
    for (i, pc) in cfg.ports.iter().enumerate() {
        let port_err = |msg: String| DaemonError::Port { port: pc.name.clone(), msg };
        // A PCI port's ethdev is named by its address (DPDK's spelling, as the config keeps it).
        let port = Port::by_name(&pc.device).map_err(|e| match &pc.pci {
            Some(addr) => port_err(format!("{e}; PCI device {addr} was not probed (is it bound to vfio-pci or uio, and is its driver in the EAL?)")),
            None => port_err(format!("{e}; vdev was {:?}", pc.vdev)),
        })?;
        let info = port.info()?;
        if info.max_rx_queues < workers || info.max_tx_queues < workers {
            return Err(port_err(format!(
                "driver {} offers {} rx/{} tx queues but {workers} workers need one each ({})",
                info.driver,
                info.max_rx_queues,
                info.max_tx_queues,
                if pc.pci.is_some() { "give the NIC more queues, e.g. virtio-net with mq and queues >= workers" } else { "raise the queue count in the vdev arguments" }
            )));
        }
        let mac = EthernetAddress(port.mac()?);
        let conf = DpdkPortConfig {
            rx_queues: workers,
            tx_queues: workers,
            rx_desc: pc.rx_desc,
            tx_desc: pc.tx_desc,
            rss: true,
            mtu: pc.mtu,
            promiscuous: true,
        };
        let (rxs, txs) = port.configure(&conf, pool)?;
        let mut tap = None;
        let mut tap_queues: Vec<Option<(dpdk::RxQueue, dpdk::TxQueue)>> = (0..workers).map(|_| None).collect();
        if let (Some(ifname), Some(kind)) = (&pc.kernel_tap, exceptions.get(i).copied().flatten()) {
            // The TAP carries the port's MAC, so the kernel's replies leave with the right source.
            let port_mac = (mac.0 != [0; 6]).then_some(mac);
            if kind == ExceptionKind::VirtioUser {
                // A restart may find the previous lbd's TAP still being released (see `wait_gone`).
                match crate::kernel_link::wait_gone(ifname, TAP_GONE_WAIT) {
                    Some(d) if d.is_zero() => {}
                    Some(d) => tracing::info!("port {}: waited {} ms for the previous {ifname} to go", pc.name, d.as_millis()),
                    None => tracing::warn!("port {}: {ifname} exists and did not go within {} s; using it", pc.name, TAP_GONE_WAIT.as_secs()),
                }
            }
            let devargs = crate::config::exception_devargs(kind, i, ifname, port_mac.map(|m| m.to_string()).as_deref(), workers);
            eal.probe_vdev(&devargs).map_err(|e| port_err(format!("cannot create exception path {kind} {ifname}: {e}")))?;
            let tport = Port::by_name(crate::config::exception_device(&devargs))?;
            let tconf = DpdkPortConfig { rx_queues: workers, tx_queues: workers, rx_desc: 512, tx_desc: 512, rss: false, mtu: None, promiscuous: false };
            let (trx, ttx) = tport.configure(&tconf, pool)?;
            tport.start()?;
            if kind == ExceptionKind::VirtioUser {
                // net_tap brings its kernel side up when started; virtio_user sets the MAC (from
                // `mac=`) but leaves it down. Same end state either way: port's MAC, up.
                crate::kernel_link::set_mac_and_up(ifname, port_mac.map(|m| m.0)).map_err(port_err)?;
            }
            tap_queues = trx.into_iter().zip(ttx).map(Some).collect();
            tap = Some((ifname.clone(), tport));
        }
        port.start()?;
        let mtu = port.mtu().unwrap_or(1500);
        let mut iface = Interface::new(mac, pc.addresses.iter().map(|n| (n.ip(), n.prefix())).collect(), tap.is_some());
        iface.gateway = pc.gateway;
        iface.mtu = mtu;
        let port_id = port.id().0;
        let queues = rxs.into_iter().zip(txs).zip(tap_queues).map(|((rx, tx), tap)| WorkerPort { port_id, rx, tx, tap }).collect();
        per_port_queues.push(queues);
        ifaces.push(iface);
        runtimes.push(PortRuntime { name: pc.name.clone(), port, mac, tap });
    }
    Ok((runtimes, per_port_queues, ifaces))
}

fn port_json(port: &Port) -> Value {
    let stats = port.stats().unwrap_or_default();
    let link = port.link().ok();
    json!({
        "device": port.name(),
        "port_id": port.id().0,
        "link_up": link.map(|l| l.up),
        "ipackets": stats.ipackets,
        "opackets": stats.opackets,
        "ibytes": stats.ibytes,
        "obytes": stats.obytes,
        "imissed": stats.imissed,
        "ierrors": stats.ierrors,
        "oerrors": stats.oerrors,
        "rx_nombuf": stats.rx_nombuf,
    })
}

fn snapshot(ports: &[PortRuntime], stats: &[Arc<WorkerShared>], shared: &Shared, pool: &Mempool, started: Instant, running: bool) -> Value {
    let mut totals = Counters::default();
    let mut sessions = 0;
    let workers: Vec<Value> = stats
        .iter()
        .map(|s| {
            let c = s.read();
            totals.merge(&c);
            let n = s.sessions.load(Ordering::Relaxed);
            sessions += n;
            let mut v = counters_json(&c);
            v["worker"] = json!(s.worker);
            v["lcore"] = json!(s.lcore);
            v["sessions"] = json!(n);
            v["loops"] = json!(s.loops.load(Ordering::Relaxed));
            v["busy_loops"] = json!(s.busy_loops.load(Ordering::Relaxed));
            v
        })
        .collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut v = port_json(&p.port);
            v["name"] = json!(p.name);
            v["mac"] = json!(p.mac.to_string());
            if let Some((ifname, t)) = &p.tap {
                let mut tv = port_json(t);
                tv["ifname"] = json!(ifname);
                v["kernel_tap"] = tv;
            }
            v
        })
        .collect();
    let services = shared.services.load();
    let svcs: Vec<Value> = services
        .services()
        .iter()
        .map(|s| {
            json!({
                "service": s.key.to_string(),
                "scheduler": format!("{:?}", s.sched).to_lowercase(),
                "real_servers": s.real_servers.iter().map(|r| json!({"addr": format!("{}:{}", r.addr, r.port), "weight": r.weight})).collect::<Vec<_>>(),
                "laddrs": s.laddrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    let neigh: serde_json::Map<String, Value> = shared.neigh.load().iter().map(|(ip, mac)| (ip.to_string(), json!(mac.to_string()))).collect();
    let mut totals = counters_json(&totals);
    totals["sessions"] = json!(sessions);
    json!({
        "running": running,
        "pid": std::process::id(),
        "uptime_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "totals": totals,
        "workers": workers,
        "ports": ports,
        "services": svcs,
        "neighbours": neigh,
        "mempool": { "capacity": pool.capacity(), "available": pool.available() },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn listed_worker_cpus_place_the_workers_and_the_main_lcore_stays_on_cpu_0() {
        assert_eq!(super::lcore_map(2, &[3, 5]), "0@0,1@3,2@5");
        let ncpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(super::lcore_map(1, &[]), format!("0@0,1@{}", 1 % ncpus));
    }
}
