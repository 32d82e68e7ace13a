//! Typed errors for DPDK calls. Negative return codes and `rte_errno` become messages.

use std::ffi::CStr;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong calling into DPDK.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `rte_eal_init` was already called in this process; DPDK allows it once.
    #[error("the DPDK EAL is already initialised in this process (it can be initialised once)")]
    AlreadyInitialised,
    /// An argument contained a NUL byte and cannot be passed to C.
    #[error("{what} {value:?} contains a NUL byte")]
    Nul { what: &'static str, value: String },
    /// `rte_eal_init` failed.
    #[error("EAL initialisation failed: {msg} (EAL args: {args})")]
    EalInit { args: String, msg: String },
    /// No ethdev port has this name.
    #[error("no DPDK port named {0:?} (check the vdev spelling and that its driver is installed)")]
    NoSuchPort(String),
    /// A port operation returned an error.
    #[error("port {port} ({name}): {op} failed: {msg}")]
    Port { port: u16, name: String, op: &'static str, msg: String },
    /// A port does not support what was asked.
    #[error("port {port} ({name}): {what}")]
    PortUnsupported { port: u16, name: String, what: String },
    /// Creating a mempool or ring failed.
    #[error("cannot create {kind} {name:?}: {msg}")]
    Create { kind: &'static str, name: String, msg: String },
    /// Probing a device (hotplug) failed.
    #[error("cannot probe device {devargs:?}: {msg}")]
    Probe { devargs: String, msg: String },
    /// Launching a function on an lcore failed.
    #[error("cannot launch on lcore {lcore}: {msg}")]
    Launch { lcore: u32, msg: String },
    /// An mbuf lacks room for the requested operation.
    #[error("mbuf has no room: wanted {wanted} bytes, {available} available")]
    NoRoom { wanted: usize, available: usize },
}

/// The text DPDK gives for an error number (positive errno or rte_errno value).
pub(crate) fn strerror(code: i32) -> String {
    let code = code.abs();
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
    // string that stays valid at least until the next call on this thread; we copy it at once.
    let msg = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(code)) };
    format!("{} (errno {code})", msg.to_string_lossy())
}

/// The current thread's `rte_errno`, as a message.
pub(crate) fn last_error() -> String {
    // SAFETY: reading the per-thread rte_errno through the shim has no preconditions.
    strerror(unsafe { dpdk_sys::shim_errno() })
}
