//! Environment Abstraction Layer start-up and shutdown.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{last_error, Error, Result};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Builds the EAL argument list. Defaults are safe on shared machines: `--no-pci` and a
/// file prefix unique to this process, so other DPDK processes are never disturbed.
#[derive(Debug, Clone)]
pub struct EalBuilder {
    program: String,
    file_prefix: Option<String>,
    no_pci: bool,
    no_huge: bool,
    in_memory: bool,
    memory_mb: Option<u32>,
    lcores: Option<String>,
    vdevs: Vec<String>,
    pci_allow: Vec<String>,
    log_level: Option<String>,
    extra: Vec<String>,
}

impl EalBuilder {
    /// A builder whose `argv[0]` is `program`.
    pub fn new(program: &str) -> Self {
        EalBuilder {
            program: program.to_owned(),
            file_prefix: None,
            no_pci: true,
            no_huge: false,
            in_memory: false,
            memory_mb: None,
            lcores: None,
            vdevs: Vec::new(),
            pci_allow: Vec::new(),
            log_level: None,
            extra: Vec::new(),
        }
    }

    /// Adds a virtual device, e.g. `net_ring0` or `net_af_packet0,iface=veth0`.
    pub fn vdev(mut self, spec: &str) -> Self {
        self.vdevs.push(spec.to_owned());
        self
    }

    /// The `--lcores` map, e.g. `0@0,1@1`.
    pub fn lcores(mut self, map: &str) -> Self {
        self.lcores = Some(map.to_owned());
        self
    }

    /// Runs without hugepages (`--no-huge`); slower but needs no setup.
    pub fn no_huge(mut self, yes: bool) -> Self {
        self.no_huge = yes;
        self
    }

    /// Uses hugepages without leaving files behind (`--in-memory`); ignored with `no_huge`.
    pub fn in_memory(mut self, yes: bool) -> Self {
        self.in_memory = yes;
        self
    }

    /// Memory to reserve in MiB (`-m`).
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = Some(mb);
        self
    }

    /// The runtime-file prefix; the default is `dpdk-rs-<pid>`.
    pub fn file_prefix(mut self, prefix: &str) -> Self {
        self.file_prefix = Some(prefix.to_owned());
        self
    }

    /// Lets the EAL scan PCI devices. Off by default: never touch the host's own NIC.
    pub fn allow_pci(mut self, yes: bool) -> Self {
        self.no_pci = !yes;
        self
    }

    /// Allow-lists one PCI device (`-a 0000:00:04.0`), e.g. a NIC bound to vfio-pci. With any
    /// device allow-listed `--no-pci` is dropped, and the EAL probes those devices and no
    /// other: the rest of the machine's PCI devices (its own NIC among them) stay untouched.
    pub fn pci_allow(mut self, addr: &str) -> Self {
        self.pci_allow.push(addr.to_owned());
        self
    }

    /// EAL log level, e.g. `warning` or `lib.eal:debug`.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = Some(level.to_owned());
        self
    }

    /// Any further raw EAL argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.to_owned());
        self
    }

    /// The argument vector `init` would pass (for logs and tests).
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![self.program.clone()];
        if self.no_pci && self.pci_allow.is_empty() {
            a.push("--no-pci".into());
        }
        for d in &self.pci_allow {
            a.push("-a".into());
            a.push(d.clone());
        }
        a.push("--no-telemetry".into());
        let prefix = self
            .file_prefix
            .clone()
            .unwrap_or_else(|| format!("dpdk-rs-{}", std::process::id()));
        a.push(format!("--file-prefix={prefix}"));
        if self.no_huge {
            a.push("--no-huge".into());
        } else if self.in_memory {
            a.push("--in-memory".into());
        }
        if let Some(mb) = self.memory_mb {
            a.push("-m".into());
            a.push(mb.to_string());
        }
        if let Some(l) = &self.lcores {
            a.push(format!("--lcores={l}"));
        }
        if let Some(l) = &self.log_level {
            a.push(format!("--log-level={l}"));
        }
        for v in &self.vdevs {
            a.push(format!("--vdev={v}"));
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// Initialises the EAL. Call once per process, from the thread that becomes the main lcore.
    pub fn init(self) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyInitialised);
        }
        let args = self.args();
        let joined = args.join(" ");
        let cstrings = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| Error::Nul { what: "EAL argument", value: a.clone() }))
            .collect::<Result<Vec<_>>>()?;
        // EAL may keep pointers into argv for the life of the process: leak the strings once.
        let ptrs: &'static mut [*mut c_char] =
            Box::leak(cstrings.into_iter().map(CString::into_raw).collect::<Vec<_>>().into_boxed_slice());
        let argc = c_int::try_from(ptrs.len()).map_err(|_| Error::EalInit { args: joined.clone(), msg: "too many arguments".into() })?;
        // The runtime directory EAL creates for this prefix (as root); removed again if
        // start-up fails, since no `Eal` will exist to clean it up.
        let run_dir = self.file_prefix.as_ref().map(|p| std::path::PathBuf::from("/var/run/dpdk").join(p));
        let fresh_dir = run_dir.as_ref().filter(|d| !d.exists()).cloned();
        // SAFETY: argv points to `argc` valid, NUL-terminated strings that live for the rest of
        // the process; the INITIALISED flag guarantees rte_eal_init runs at most once.
        let rc = unsafe { dpdk_sys::rte_eal_init(argc, ptrs.as_mut_ptr()) };
        if rc < 0 {
            let msg = last_error();
            if let Some(d) = fresh_dir {
                let _ = std::fs::remove_dir_all(d);
            }
            return Err(Error::EalInit { args: joined, msg });
        }
        Ok(Eal { args: joined })
    }
}

/// A running EAL. Dropping it calls `rte_eal_cleanup`; DPDK cannot be started again after that
/// in the same process.
#[derive(Debug)]
pub struct Eal {
    args: String,
}

impl Eal {
    /// The arguments the EAL was started with.
    pub fn args(&self) -> &str {
        &self.args
    }

    /// Creates a virtual device after start-up (hotplug), e.g. `net_tap0,iface=tap0`.
    pub fn probe_vdev(&self, devargs: &str) -> Result<()> {
        let c = CString::new(devargs).map_err(|_| Error::Nul { what: "device arguments", value: devargs.into() })?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call, and the EAL
        // is initialised (we hold an `Eal`).
        let rc = unsafe { dpdk_sys::rte_dev_probe(c.as_ptr()) };
        if rc < 0 {
            return Err(Error::Probe { devargs: devargs.into(), msg: crate::error::strerror(rc) });
        }
        Ok(())
    }
}

/// Alarm callbacks run so far (see [`Eal::interrupt_barrier`]).
static BARRIERS_RUN: AtomicU64 = AtomicU64::new(0);

extern "C" fn barrier_alarm(_arg: *mut std::ffi::c_void) {
    BARRIERS_RUN.fetch_add(1, Ordering::SeqCst);
}

impl Eal {
    /// Waits until the EAL interrupt thread has handled every event that was pending when this
    /// was called, for at most `timeout`; false if it did not get there in time.
    ///
    /// Drivers act on their own from that thread: when a memif port stops, its peer's control
    /// socket reads end-of-file and the peer port disconnects itself on the interrupt thread.
    /// If both ends live in this process, stopping the peer from the main thread at the same
    /// moment runs the driver's disconnect twice at once, and both free the same shared-memory
    /// regions (`EAL: Error: Invalid memory`, or worse). An alarm runs on that same thread, after
    /// the events already queued there (epoll hands out ready events in the order they became
    /// ready), so once it has run, that earlier work is done.
    pub fn interrupt_barrier(&self, timeout: Duration) -> bool {
        let before = BARRIERS_RUN.load(Ordering::SeqCst);
        // SAFETY: the callback is a plain `extern "C" fn` with no captured state and a null
        // argument it never reads; the EAL is initialised (we hold an `Eal`).
        let rc = unsafe { dpdk_sys::rte_eal_alarm_set(1, Some(barrier_alarm), std::ptr::null_mut()) };
        if rc < 0 {
            return false;
        }
        let deadline = Instant::now() + timeout;
        while BARRIERS_RUN.load(Ordering::SeqCst) == before {
            if Instant::now() >= deadline {
                // SAFETY: cancels alarms with this callback and argument, if still pending; it
                // waits for one that is running right now, and we are not inside the callback.
                unsafe { dpdk_sys::rte_eal_alarm_cancel(Some(barrier_alarm), std::ptr::null_mut()) };
                return BARRIERS_RUN.load(Ordering::SeqCst) != before;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    }

    /// Stops and closes `ports` one at a time, letting the interrupt thread finish what each
    /// stop set off (a peer port in this process disconnecting) before touching the next.
    /// Returns the first error; every port is still attempted.
    pub fn shutdown_ports(&self, ports: &[crate::Port]) -> Result<()> {
        let mut first = Ok(());
        for p in ports {
            if let Err(e) = p.stop() {
                first = first.and(Err(e));
            }
            if !self.interrupt_barrier(Duration::from_secs(5)) && first.is_ok() {
                first = Err(Error::Port { port: p.id().0, name: p.name().into(), op: "stop", msg: "the EAL interrupt thread did not settle within 5 s".into() });
            }
        }
        for p in ports {
            if let Err(e) = p.close() {
                first = first.and(Err(e));
            }
            if !self.interrupt_barrier(Duration::from_secs(5)) && first.is_ok() {
                first = Err(Error::Port { port: p.id().0, name: p.name().into(), op: "close", msg: "the EAL interrupt thread did not settle within 5 s".into() });
            }
        }
        first
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the runtime directory string is owned by the EAL and valid until cleanup; we
        // copy it before cleaning up.
        let dir = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_eal_get_runtime_dir()) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: the EAL was initialised by `init`; every lcore job borrowed this `Eal` through
        // its `LaunchHandle`, so all of them have been waited for. Cleanup releases EAL resources.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
        // The per-prefix runtime directory (config, sockets) is not removed by DPDK itself.
        if dir.contains("/dpdk/") {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EalBuilder;

    #[test]
    fn no_pci_unless_devices_are_allow_listed() {
        let a = EalBuilder::new("t").file_prefix("p").vdev("net_ring0").args();
        assert!(a.contains(&"--no-pci".to_owned()) && !a.contains(&"-a".to_owned()), "{a:?}");
        let a = EalBuilder::new("t").file_prefix("p").pci_allow("0000:00:04.0").pci_allow("0000:00:05.0").args();
        assert!(!a.contains(&"--no-pci".to_owned()), "{a:?}");
        let i = a.iter().position(|x| x == "-a").unwrap();
        assert_eq!(a[i..i + 4], ["-a", "0000:00:04.0", "-a", "0000:00:05.0"]);
    }
}
