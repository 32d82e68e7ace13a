//! Safe wrappers over the system DPDK: EAL, mempools, owned mbufs, ports and queues,
//! rx/tx bursts into stack arrays, lcore launch.
//!
//! This crate and `dpdk-sys` are the only places in the workspace that contain `unsafe`.
//! Every `unsafe` block states why it is sound in a `// SAFETY:` comment.

mod eal;
mod error;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod ring;

pub use eal::{Eal, EalBuilder};
pub use error::{Error, Result};
pub use lcore::{current_lcore, main_lcore, pause, tsc, tsc_hz, worker_lcores, LaunchHandle, LcoreId};
pub use mbuf::{free_burst, Burst, Mbuf, BURST_SIZE, MBUF_HEADROOM};
pub use mempool::Mempool;
pub use port::{
    LinkStatus, Port, PortConfig, PortId, PortInfo, PortStats, QueueId, RxQueue, TxQueue, TxResult,
};
pub use ring::MbufRing;
