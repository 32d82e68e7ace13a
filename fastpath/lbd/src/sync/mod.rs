//! Session sync between directors (LVS's sync daemons): a master multicasts the state of its
//! sessions, backups install them, so that a failover or an upgrade breaks no connection.
//!
//! - Workers (see `fastpath::sync`) queue records of sessions due for sync into their own
//!   bounded buffer and hand it over once per poll pass as one batch (`SyncShared::out`); the
//!   sync thread gives the emptied batches back (`spare`), so steady state allocates nothing.
//! - The sync thread (`thread`, `lbd-sync`, not an EAL lcore) packs records into LVS sync v1
//!   messages and multicasts them with a kernel UDP socket bound to the port's exception TAP:
//!   they leave through the data port like any packet the kernel sends. Received messages reach
//!   the TAP the same way (the pipeline passes multicast to the kernel); records go to their
//!   home worker's inbound queue (`inbound`), which the worker drains once per pass.
//! - Bulk sync (`engine`): a starting backup asks for the master's whole table.
//!
//! Daemons come from keepalived.conf (`global_defs { lvs_sync_daemon IF VRRP_INSTANCE ... }`:
//! master while the instance is MASTER, backup otherwise) or from the API
//! (`lbctl --start-daemon master|backup`, a fixed role). At most one master and one backup run.

pub mod engine;
pub mod thread;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crossbeam_queue::ArrayQueue;
use fastpath::sync::SyncParams;
use fastpath::wire::lvsync::{self, SyncConn};

/// Batches a worker may have waiting for the sync thread; more are dropped and counted.
pub const OUT_BATCHES: usize = 64;
/// Batches waiting for a worker's adoption.
pub const IN_BATCHES: usize = 256;
/// Records per inbound batch.
pub const IN_BATCH_LEN: usize = 256;

/// A daemon's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Master,
    Backup,
}

impl Role {
    /// "master" / "backup".
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Backup => "backup",
        }
    }
}

/// One daemon's settings, validated, with LVS's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// The lbd port (or its TAP) named by the operator.
    pub interface: String,
    /// The kernel interface the socket is bound to: the port's TAP.
    pub tap: String,
    pub syncid: u8,
    pub maxlen: u16,
    pub group: Ipv4Addr,
    pub port: u16,
    pub ttl: u8,
}

/// What a daemon setting may not be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {msg}")]
pub struct SpecError {
    pub field: &'static str,
    pub msg: String,
}

/// A daemon's settings as given (0, empty or `None`: the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecInput {
    pub interface: String,
        pub syncid: Option<u32>,
    pub maxlen: u32,
    pub group: String,
    pub port: u32,
    pub ttl: u32,
}

impl DaemonSpec {
    /// Validates `i`; `tap_of` maps an lbd port name or TAP name to the TAP (None: no such port,
    /// or a port without `kernel_tap`).
    pub fn new(i: &SpecInput, tap_of: impl Fn(&str) -> Result<String, String>) -> Result<DaemonSpec, SpecError> {
        let err = |field: &'static str, msg: String| SpecError { field, msg };
        if i.interface.is_empty() {
            return Err(err("mcast_interface", "is required (one of lbd's ports)".into()));
        }
        let tap = tap_of(&i.interface).map_err(|m| err("mcast_interface", m))?;
        let syncid = match i.syncid {
            None => kaconf::DEFAULT_SYNCID,
            Some(id) => u8::try_from(id).map_err(|_| err("syncid", format!("{id} is not in 0..=255")))?,
        };
        let maxlen = match i.maxlen {
            0 => kaconf::DEFAULT_SYNC_MAXLEN,
            m if (u32::try_from(lvsync::MIN_MAXLEN).unwrap_or(80)..=65_507).contains(&m) => u16::try_from(m).unwrap_or(kaconf::DEFAULT_SYNC_MAXLEN),
            m => return Err(err("maxlen", format!("{m} is not in {}..=65507", lvsync::MIN_MAXLEN))),
        };
        let group = if i.group.is_empty() {
            kaconf::DEFAULT_SYNC_GROUP
        } else {
            let g: Ipv4Addr = i.group.parse().map_err(|e| err("group", format!("{:?} is not an IPv4 address: {e}", i.group)))?;
            if !g.is_multicast() {
                return Err(err("group", format!("{g} is not a multicast address (unicast sync is not supported)")));
            }
            g
        };
        let port = match i.port {
            0 => kaconf::DEFAULT_SYNC_PORT,
            p => u16::try_from(p).map_err(|_| err("port", format!("{p} is not in 1..=65535")))?,
        };
        let ttl = match i.ttl {
            0 => kaconf::DEFAULT_SYNC_TTL,
            t => u8::try_from(t).map_err(|_| err("ttl", format!("{t} is not in 1..=255")))?,
        };
        Ok(DaemonSpec { interface: i.interface.clone(), tap, syncid, maxlen, group, port, ttl })
    }
}

/// Where a daemon came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `lbctl --start-daemon`: a fixed role.
    Api(Role),
    /// keepalived.conf's `lvs_sync_daemon`: follows the named VRRP instance.
    Config { vrrp_instance: String },
}

/// A running daemon, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonView {
    pub role: Role,
    pub spec: DaemonSpec,
    pub source: Source,
    pub active: bool,
}

/// Counters of the sync thread (the workers count adoptions in their own counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncCounters {
    pub sent_messages: u64,
    pub sent_conns: u64,
    pub send_dropped: u64,
    pub received_messages: u64,
    pub received_conns: u64,
    /// Dropped messages and records, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
}

impl SyncCounters {
    /// Counts `n` drops for `reason`.
    pub fn drop(&mut self, reason: &'static str, n: u64) {
        *self.dropped.entry(reason).or_default() += n;
    }
}

/// What listings show of sync: the daemons, counters, bulk state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncView {
    pub daemons: Vec<DaemonView>,
    pub counters: SyncCounters,
    pub bulk: engine::BulkState,
    pub bulk_received: u64,
    pub bulk_expected: u64,
    pub bulk_served: u64,
    pub bulk_sent_conns: u64,
    pub ready: bool,
}

impl Default for SyncView {
    fn default() -> Self {
        SyncView {
            daemons: Vec::new(),
            counters: SyncCounters::default(),
            bulk: engine::BulkState::None,
            bulk_received: 0,
            bulk_expected: 0,
            bulk_served: 0,
            bulk_sent_conns: 0,
            ready: true,
        }
    }
}

/// Daemons started through the API.
#[derive(Debug, Clone, Default)]
pub struct ApiDaemons {
    pub master: Option<DaemonSpec>,
    pub backup: Option<DaemonSpec>,
}

/// Sync state shared by the workers, the sync thread and the control side.
#[derive(Debug)]
pub struct SyncShared {
    pub params: SyncParams,
    /// Workers queue records while it is set (a master daemon is active).
    pub master: AtomicBool,
    /// Worker -> sync thread: batches of records.
    pub out: Vec<ArrayQueue<Vec<SyncConn>>>,
    /// Sync thread -> worker: emptied batches to reuse.
    pub spare: Vec<ArrayQueue<Vec<SyncConn>>>,
    /// Sync thread -> worker: records to install.
    pub inbound: Vec<ArrayQueue<Vec<SyncConn>>>,
    /// Daemons started through the API.
    pub api: Mutex<ApiDaemons>,
    /// What the sync thread last published for listings.
    pub view: Mutex<SyncView>,
}

impl SyncShared {
    /// For `workers` workers.
    pub fn new(workers: usize, params: SyncParams) -> SyncShared {
        SyncShared {
            params,
            master: AtomicBool::new(false),
            out: (0..workers).map(|_| ArrayQueue::new(OUT_BATCHES)).collect(),
            spare: (0..workers).map(|_| ArrayQueue::new(OUT_BATCHES)).collect(),
            inbound: (0..workers).map(|_| ArrayQueue::new(IN_BATCHES)).collect(),
            api: Mutex::new(ApiDaemons::default()),
            view: Mutex::new(SyncView::default()),
        }
    }

    /// The sync parameters workers use now (`None`: no master daemon active).
    #[inline]
    pub fn worker_params(&self) -> Option<SyncParams> {
        self.master.load(Ordering::Relaxed).then_some(self.params)
    }

    /// A copy of what listings show.
    pub fn view(&self) -> SyncView {
        self.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Whether this director may preempt a master (see `engine`).
    pub fn ready(&self) -> bool {
        self.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner).ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap_of(name: &str) -> Result<String, String> {
        match name {
            "lan" | "tap-lan" => Ok("tap-lan".into()),
            "bare" => Err("port bare has no kernel_tap: sync messages go through the exception path".into()),
            _ => Err(format!("{name:?} is not one of lbd's ports")),
        }
    }

    #[test]
    fn defaults_are_lvs_ones_and_bad_values_name_their_field() {
        let d = DaemonSpec::new(&SpecInput { interface: "lan".into(), ..Default::default() }, tap_of).unwrap();
        assert_eq!((d.syncid, d.maxlen, d.group, d.port, d.ttl), (255, 1472, Ipv4Addr::new(224, 0, 0, 81), 8848, 1));
        assert_eq!(d.tap, "tap-lan");
        let e = |i: SpecInput| DaemonSpec::new(&i, tap_of).unwrap_err().to_string();
        let base = || SpecInput { interface: "lan".into(), ..Default::default() };
        assert_eq!(e(SpecInput { interface: String::new(), ..base() }), "mcast_interface: is required (one of lbd's ports)");
        assert_eq!(e(SpecInput { interface: "wan9".into(), ..base() }), "mcast_interface: \"wan9\" is not one of lbd's ports");
        assert!(e(SpecInput { interface: "bare".into(), ..base() }).contains("no kernel_tap"));
        assert_eq!(e(SpecInput { syncid: Some(256), ..base() }), "syncid: 256 is not in 0..=255");
        assert_eq!(e(SpecInput { maxlen: 10, ..base() }), "maxlen: 10 is not in 80..=65507");
        assert_eq!(e(SpecInput { group: "10.0.0.1".into(), ..base() }), "group: 10.0.0.1 is not a multicast address (unicast sync is not supported)");
        assert_eq!(e(SpecInput { port: 70_000, ..base() }), "port: 70000 is not in 1..=65535");
        assert_eq!(e(SpecInput { ttl: 256, ..base() }), "ttl: 256 is not in 1..=255");
        let d = DaemonSpec::new(&SpecInput { syncid: Some(7), maxlen: 9000, group: "239.1.2.3".into(), port: 9000, ttl: 3, ..base() }, tap_of).unwrap();
        assert_eq!((d.syncid, d.maxlen, d.group, d.port, d.ttl), (7, 9000, Ipv4Addr::new(239, 1, 2, 3), 9000, 3));
    }
}
