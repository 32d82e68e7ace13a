//! Ethernet ports (ethdev): configuration, queues, bursts, link and statistics.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;

use crate::error::{strerror, Error, Result};
use crate::mbuf::{consume_front, fill_back, Burst};
use crate::mempool::Mempool;

/// An ethdev port number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A queue number on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);

/// RSS hash types we ask for (DPDK's RTE_ETH_RSS_* bits; the C macros are not bindgen-visible).
mod rss {
    pub const IPV4: u64 = 1 << 2;
    pub const FRAG_IPV4: u64 = 1 << 3;
    pub const NONFRAG_IPV4_TCP: u64 = 1 << 4;
    pub const NONFRAG_IPV4_UDP: u64 = 1 << 5;
    pub const WANTED: u64 = IPV4 | FRAG_IPV4 | NONFRAG_IPV4_TCP | NONFRAG_IPV4_UDP;
}

/// How to set a port up.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// Receive queues (one per worker that polls this port).
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue.
    pub rx_desc: u16,
    /// Descriptors per transmit queue.
    pub tx_desc: u16,
    /// Spread receive traffic over the queues by hash where the device supports it.
    pub rss: bool,
    /// MTU to set, if any.
    pub mtu: Option<u16>,
    /// Receive frames for any destination MAC.
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig { rx_queues: 1, tx_queues: 1, rx_desc: 1024, tx_desc: 1024, rss: true, mtu: None, promiscuous: false }
    }
}

/// What a port's driver reports about itself.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss_offloads: u64,
    pub min_mtu: u16,
    pub max_mtu: u16,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// Basic port counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Packets the hardware dropped because no receive descriptor was free.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// A port, found by name. Control operations take `&self`; they are meant for one control
/// thread. Data-path access is through the [`RxQueue`]/[`TxQueue`] handles `configure` returns.
#[derive(Debug, Clone)]
pub struct Port {
    id: PortId,
    name: String,
}

fn check(rc: i32, port: &Port, op: &'static str) -> Result<()> {
    if rc < 0 {
        Err(Error::Port { port: port.id.0, name: port.name.clone(), op, msg: strerror(rc) })
    } else {
        Ok(())
    }
}

impl Port {
    /// The port a device name (the vdev name before its first comma) refers to.
    pub fn by_name(name: &str) -> Result<Port> {
        let c = CString::new(name).map_err(|_| Error::Nul { what: "port name", value: name.into() })?;
        let mut id: u16 = 0;
        // SAFETY: `c` is NUL-terminated; `id` is a valid out-pointer for the call's duration.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc < 0 {
            return Err(Error::NoSuchPort(name.into()));
        }
        Ok(Port { id: PortId(id), name: name.into() })
    }

    /// Every port the EAL knows, in id order.
    pub fn all() -> Vec<Port> {
        let mut out = Vec::new();
        for id in 0..u16::try_from(dpdk_sys::RTE_MAX_ETHPORTS).unwrap_or(u16::MAX) {
            // SAFETY: any u16 is an acceptable argument; the call only checks a table.
            if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
                continue;
            }
            let mut buf = [0 as std::ffi::c_char; 64];
            // SAFETY: buf is a writable 64-byte buffer (RTE_ETH_NAME_MAX_LEN) for the name.
            if unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) } == 0 {
                // SAFETY: on success the buffer holds a NUL-terminated name.
                let name = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
                out.push(Port { id: PortId(id), name });
            }
        }
        out
    }

    /// The port number.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Driver facts: queue limits, RSS support, MTU range.
    pub fn info(&self) -> Result<PortInfo> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: `info` is a valid out-struct for the call.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id.0, &mut info) };
        check(rc, self, "rte_eth_dev_info_get")?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: the driver name is a static NUL-terminated string owned by the driver.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
        })
    }

    /// Configures queues (receive buffers come from `pool`) and returns one handle per queue.
    /// Call before `start`. Each handle is meant to be moved to the lcore that polls it.
    pub fn configure(&self, conf: &PortConfig, pool: &Mempool) -> Result<(Vec<RxQueue>, Vec<TxQueue>)> {
        let info = self.info()?;
        if conf.rx_queues == 0 || conf.rx_queues > info.max_rx_queues {
            return Err(Error::PortUnsupported {
                port: self.id.0,
                name: self.name.clone(),
                what: format!("{} rx queues requested, driver {} supports 1..={}", conf.rx_queues, info.driver, info.max_rx_queues),
            });
        }
        if conf.tx_queues == 0 || conf.tx_queues > info.max_tx_queues {
            return Err(Error::PortUnsupported {
                port: self.id.0,
                name: self.name.clone(),
                what: format!("{} tx queues requested, driver {} supports 1..={}", conf.tx_queues, info.driver, info.max_tx_queues),
            });
        }
        let mut eth_conf = dpdk_sys::rte_eth_conf::default();
        let rss_hf = rss::WANTED & info.rss_offloads;
        if conf.rss && conf.rx_queues > 1 && rss_hf != 0 {
            eth_conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            eth_conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: `eth_conf` is a valid, fully initialised configuration that outlives the call.
        let rc = unsafe { dpdk_sys::rte_eth_dev_configure(self.id.0, conf.rx_queues, conf.tx_queues, &eth_conf) };
        check(rc, self, "rte_eth_dev_configure")?;
        let (mut rxd, mut txd) = (conf.rx_desc, conf.tx_desc);
        // SAFETY: valid out-pointers; the driver clamps the counts to what it supports.
        let rc = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id.0, &mut rxd, &mut txd) };
        check(rc, self, "rte_eth_dev_adjust_nb_rx_tx_desc")?;
        // SAFETY: querying the socket of a valid port has no preconditions.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id.0) };
        let socket = u32::try_from(socket).unwrap_or(u32::MAX);
        let mut rx = Vec::new();
        for q in 0..conf.rx_queues {
            // SAFETY: the port is configured with enough queues; a null conf means driver
            // defaults; the pool is a live pktmbuf pool that is never freed.
            let rc = unsafe { dpdk_sys::rte_eth_rx_queue_setup(self.id.0, q, rxd, socket, std::ptr::null(), pool.as_ptr()) };
            check(rc, self, "rte_eth_rx_queue_setup")?;
            rx.push(RxQueue { port: self.id.0, queue: q, _not_sync: PhantomData });
        }
        let mut tx = Vec::new();
        for q in 0..conf.tx_queues {
            // SAFETY: as above; a null conf means driver defaults.
            let rc = unsafe { dpdk_sys::rte_eth_tx_queue_setup(self.id.0, q, txd, socket, std::ptr::null()) };
            check(rc, self, "rte_eth_tx_queue_setup")?;
            tx.push(TxQueue { port: self.id.0, queue: q, _not_sync: PhantomData });
        }
        if let Some(mtu) = conf.mtu {
            self.set_mtu(mtu)?;
        }
        if conf.promiscuous {
            self.set_promiscuous(true)?;
        }
        Ok((rx, tx))
    }

    /// Starts the port.
    pub fn start(&self) -> Result<()> {
        // SAFETY: starting a configured port; DPDK validates its state.
        check(unsafe { dpdk_sys::rte_eth_dev_start(self.id.0) }, self, "rte_eth_dev_start")
    }

    /// Stops the port. Its queue handles must no longer be polled.
    pub fn stop(&self) -> Result<()> {
        // SAFETY: stopping a port; DPDK validates its state.
        check(unsafe { dpdk_sys::rte_eth_dev_stop(self.id.0) }, self, "rte_eth_dev_stop")
    }

    /// Closes a stopped port and releases its resources.
    pub fn close(&self) -> Result<()> {
        // SAFETY: closing a port; DPDK validates its state.
        check(unsafe { dpdk_sys::rte_eth_dev_close(self.id.0) }, self, "rte_eth_dev_close")
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: `addr` is a valid out-struct.
        let rc = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id.0, &mut addr) };
        check(rc, self, "rte_eth_macaddr_get")?;
        Ok(addr.addr_bytes)
    }

    /// Sets the port's MAC address.
    pub fn set_mac(&self, mac: [u8; 6]) -> Result<()> {
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: `addr` is valid for the call.
        let rc = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.id.0, &mut addr) };
        check(rc, self, "rte_eth_dev_default_mac_addr_set")
    }

    /// The MTU.
    pub fn mtu(&self) -> Result<u16> {
        let mut mtu = 0u16;
        // SAFETY: valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_mtu(self.id.0, &mut mtu) };
        check(rc, self, "rte_eth_dev_get_mtu")?;
        Ok(mtu)
    }

    /// Sets the MTU.
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        // SAFETY: plain value argument.
        check(unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id.0, mtu) }, self, "rte_eth_dev_set_mtu")
    }

    /// Turns promiscuous mode on or off.
    pub fn set_promiscuous(&self, on: bool) -> Result<()> {
        // SAFETY: plain value argument.
        let rc = unsafe {
            if on {
                dpdk_sys::rte_eth_promiscuous_enable(self.id.0)
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(self.id.0)
            }
        };
        check(rc, self, "rte_eth_promiscuous_enable/disable")
    }

    /// Link state, without waiting.
    pub fn link(&self) -> Result<LinkStatus> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: `link` is a valid out-struct.
        let rc = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id.0, &mut link) };
        check(rc, self, "rte_eth_link_get_nowait")?;
        Ok(LinkStatus { up: link.link_status() != 0, speed_mbps: link.link_speed, full_duplex: link.link_duplex() != 0 })
    }

    /// Counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: `s` is a valid out-struct.
        let rc = unsafe { dpdk_sys::rte_eth_stats_get(self.id.0, &mut s) };
        check(rc, self, "rte_eth_stats_get")?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Resets the counters.
    pub fn reset_stats(&self) -> Result<()> {
        // SAFETY: plain value argument.
        check(unsafe { dpdk_sys::rte_eth_stats_reset(self.id.0) }, self, "rte_eth_stats_reset")
    }
}

/// A receive queue. `Send` (move it to its lcore) but not `Sync`: exactly one lcore polls it.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> PortId {
        PortId(self.port)
    }

    /// The queue number.
    pub fn queue(&self) -> QueueId {
        QueueId(self.queue)
    }

    /// Receives up to the burst's free space; returns how many arrived.
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        fill_back(burst, |ptrs, room| {
            let room = u16::try_from(room).unwrap_or(u16::MAX);
            // SAFETY: `ptrs` has room for `room` pointers; this queue handle is unique to the
            // calling lcore, so no other thread polls the same queue. Returned mbufs are ours.
            usize::from(unsafe { dpdk_sys::shim_rx_burst(self.port, self.queue, ptrs, room) })
        })
    }
}

/// What a transmit did with a burst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxResult {
    /// Handed to the driver.
    pub sent: usize,
    /// Not accepted by the driver, freed.
    pub dropped: usize,
}

/// A transmit queue. `Send` but not `Sync`: exactly one lcore transmits on it.
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    /// The port this queue belongs to.
    pub fn port(&self) -> PortId {
        PortId(self.port)
    }

    /// The queue number.
    pub fn queue(&self) -> QueueId {
        QueueId(self.queue)
    }

    /// Transmits the whole burst; what the driver does not take is freed and counted. The
    /// burst is empty afterwards.
    pub fn tx_burst(&mut self, burst: &mut Burst) -> TxResult {
        let sent = self.tx_burst_retain(burst);
        let dropped = burst.len();
        burst.clear();
        TxResult { sent, dropped }
    }

    /// Transmits what the driver takes and leaves the rest, in order, in the burst.
    pub fn tx_burst_retain(&mut self, burst: &mut Burst) -> usize {
        consume_front(burst, |ptrs, n| {
            let n = u16::try_from(n).unwrap_or(u16::MAX);
            // SAFETY: `ptrs` holds `n` owned mbufs; the driver takes ownership of the first
            // `sent`, which consume_front forgets. This handle is unique to the calling lcore.
            usize::from(unsafe { dpdk_sys::shim_tx_burst(self.port, self.queue, ptrs, n) })
        })
    }
}
