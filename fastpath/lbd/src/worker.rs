//! The worker lcore: polls its queues, runs the pipeline, transmits, relays the exception path.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dpdk::{Burst, Mbuf, RxQueue, TxQueue};
use fastpath::{pipeline, Counters, DropReason, Interface, PacketBuf, Verdict};

use crate::stats::WorkerShared;

/// Consecutive empty polls before an idle worker sleeps (when sleeping is enabled).
const IDLE_POLLS_BEFORE_SLEEP: u32 = 512;
/// Loop iterations between counter publications while busy.
const PUBLISH_EVERY: u64 = 1024;

/// One data port as a worker sees it: its own queue pair, and its own queue pair on the
/// port's exception TAP.
#[derive(Debug)]
pub struct WorkerPort {
    pub iface: Interface,
    pub rx: RxQueue,
    pub tx: TxQueue,
    pub tap: Option<(RxQueue, TxQueue)>,
}

/// Everything a worker is given at launch. It is `Send`; the worker's running state is not.
#[derive(Debug)]
pub struct WorkerPlan {
    pub ports: Vec<WorkerPort>,
    pub shared: Arc<WorkerShared>,
    pub stop: Arc<AtomicBool>,
    pub idle_sleep: Duration,
}

/// The running worker: owned by one lcore, never sent elsewhere.
struct Worker {
    plan: WorkerPlan,
    counters: Counters,
    _not_send: PhantomData<*const ()>,
}

/// An mbuf seen through the pipeline's buffer trait.
struct MbufBuf<'a>(&'a mut Mbuf);

impl PacketBuf for MbufBuf<'_> {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n).is_ok()
    }
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n).is_ok()
    }
    fn append(&mut self, n: usize) -> bool {
        self.0.append(n).is_ok()
    }
    fn trim(&mut self, n: usize) -> bool {
        self.0.trim(n).is_ok()
    }
}

/// Runs a worker until the stop flag is raised; returns 0.
pub fn run(plan: WorkerPlan) -> i32 {
    let mut w = Worker { plan, counters: Counters::default(), _not_send: PhantomData };
    w.poll_loop();
    0
}

impl Worker {
    fn poll_loop(&mut self) {
        let (mut loops, mut busy, mut idle) = (0u64, 0u64, 0u32);
        while !self.plan.stop.load(Ordering::Relaxed) {
            loops += 1;
            let mut got = 0;
            for i in 0..self.plan.ports.len() {
                got += self.poll_port(i);
            }
            if got > 0 {
                busy += 1;
                idle = 0;
            } else {
                idle = idle.saturating_add(1);
            }
            if loops % PUBLISH_EVERY == 0 {
                self.plan.shared.publish(&self.counters, loops, busy);
            }
            if idle >= IDLE_POLLS_BEFORE_SLEEP && !self.plan.idle_sleep.is_zero() {
                self.plan.shared.publish(&self.counters, loops, busy);
                std::thread::sleep(self.plan.idle_sleep);
            }
        }
        self.plan.shared.publish(&self.counters, loops, busy);
    }

    /// Polls one port and its exception TAP; returns how many frames were handled.
    fn poll_port(&mut self, i: usize) -> usize {
        let c = &mut self.counters;
        let p = &mut self.plan.ports[i];
        let mut rx = Burst::new();
        let n = p.rx.rx_burst(&mut rx);
        let mut out = Burst::new();
        let mut kernel = Burst::new();
        if n > 0 {
            c.rx += n as u64;
            for mut m in rx.drain(..) {
                let verdict = if m.is_contiguous() {
                    pipeline::process(&mut MbufBuf(&mut m), &p.iface, c)
                } else {
                    Verdict::Drop(DropReason::MultiSegment)
                };
                match verdict {
                    Verdict::TxSamePort => out.push(m),
                    Verdict::ToKernel => kernel.push(m),
                    Verdict::Drop(reason) => c.drop(reason),
                }
            }
            if !out.is_empty() {
                let r = p.tx.tx_burst(&mut out);
                c.tx += r.sent as u64;
                c.add_drops(DropReason::TxFull, r.dropped as u64);
            }
        }
        let mut from_kernel = 0;
        if let Some((tap_rx, tap_tx)) = &mut p.tap {
            if !kernel.is_empty() {
                let r = tap_tx.tx_burst(&mut kernel);
                c.to_kernel += r.sent as u64;
                c.add_drops(DropReason::KernelTxFull, r.dropped as u64);
            }
            from_kernel = tap_rx.rx_burst(&mut out);
            if from_kernel > 0 {
                c.from_kernel += from_kernel as u64;
                let r = p.tx.tx_burst(&mut out);
                c.tx += r.sent as u64;
                c.add_drops(DropReason::FromKernelTxFull, r.dropped as u64);
            }
        } else if !kernel.is_empty() {
            // The pipeline already refuses ToKernel without a TAP; this keeps the count honest.
            c.add_drops(DropReason::NoKernelPath, kernel.len() as u64);
            kernel.clear();
        }
        n + from_kernel
    }
}
