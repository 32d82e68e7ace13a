//! One VRRP instance's state machine (RFC 3768 / RFC 5798 with keepalived 2.2's choices),
//! free of I/O. Time is in microseconds here (the skew is 1/256 of a second); the engine
//! speaks milliseconds to the shell.
//!
//! keepalived behaviours kept (from its `vrrp.c` / `vrrp_scheduler.c`, and measured against
//! keepalived 2.2.7 in a netns):
//! - start in BACKUP with a full Master_Down_Interval, even with `state MASTER`, unless the
//!   priority is 255 (then MASTER at once);
//! - a BACKUP that hears a lower priority discards it (preempting when its timer runs out),
//!   unless `nopreempt`, or `preempt_delay` has not yet run out since the first such advert;
//! - a priority-0 advert makes a BACKUP take over after the skew time;
//! - a MASTER that hears a lower priority (or an equal one from a lower address) answers
//!   with an advert at once; a higher one (or equal from a higher address) makes it BACKUP;
//! - a MASTER that goes to FAULT or stops sends a priority-0 advert.

use std::net::Ipv4Addr;

use super::packet::{self, Packet, Repr, Version};
use super::{Action, Counters, State};

/// Microseconds on the engine's clock.
pub(crate) type Micros = u64;

const SECOND: Micros = 1_000_000;
pub(crate) const MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const OWNER: u8 = 255;

/// What the configuration fixes for an instance.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub name: String,
    pub iface: String,
    pub vrid: u8,
    pub version: Version,
    pub priority: u8,
    pub advert_centis: u16,
    pub nopreempt: bool,
    pub preempt_delay: Option<Micros>,
    pub auth: Option<[u8; 8]>,
    /// Carried in adverts.
    pub vips: Vec<Ipv4Addr>,
    /// Every address the instance owns, by interface: VIPs, excluded VIPs, local addresses.
    pub owned: Vec<(String, Ipv4Addr)>,
    pub src: Ipv4Addr,
    pub peers: Vec<Ipv4Addr>,
    /// `(interface, weight)`: `None` is FAULT while down.
    pub tracks: Vec<(String, Option<i32>)>,
    pub garp_delay: Micros,
    pub garp_repeat: u32,
    pub garp_refresh: Micros,
    pub garp_refresh_repeat: u32,
    pub notify: Notify,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Notify {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    pub generic: Option<String>,
}

impl Notify {
    /// The commands to run on entering `state`, keepalived style: the state's script, then
    /// `notify` with `<kind> "<name>" <STATE> <priority>` appended.
    pub fn commands(&self, kind: &str, name: &str, state: State, priority: u8) -> Vec<String> {
        let own = match state {
            State::Master => &self.master,
            State::Backup => &self.backup,
            State::Fault => &self.fault,
            State::Stopped => &self.stop,
        };
        let mut out: Vec<String> = own.iter().cloned().collect();
        if let Some(n) = &self.generic {
            out.push(format!(
                "{n} {kind} \"{name}\" {} {priority}",
                state.keyword()
            ));
        }
        out
    }
}

/// A transition an instance asks for (the engine applies it, to its sync group too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Master,
    Backup,
}

#[derive(Debug)]
pub(crate) struct Instance {
    pub spec: Spec,
    pub state: State,
    pub since: Micros,
    pub transitions: u64,
    pub master_ip: Option<Ipv4Addr>,
    pub counters: Counters,
    /// Interfaces seen down (the instance's own and tracked ones).
    pub down: Vec<String>,
    /// VRRPv3: the master's interval (centiseconds), learned from its adverts.
    master_centis: u16,
    /// Reduced from 255 after a conflict with another owner.
    base_priority: u8,
    /// BACKUP: when the master is declared down.
    down_at: Option<Micros>,
    /// MASTER: next advert, delayed GARP burst, next refresh burst.
    advert_at: Option<Micros>,
    garp_at: Option<Micros>,
    refresh_at: Option<Micros>,
    /// keepalived's preempt_time: set by the first lower-priority advert.
    preempt_at: Option<Micros>,
    /// Preemption held from outside (lbd's bulk session sync not finished): lower-priority
    /// adverts are obeyed as if `nopreempt`; a master that goes silent is still taken over.
    hold_preempt: bool,
}

impl Instance {
    pub fn new(spec: Spec, now: Micros) -> Instance {
        let mut i = Instance {
            master_centis: spec.advert_centis,
            base_priority: spec.priority,
            spec,
            state: State::Backup,
            since: now,
            transitions: 0,
            master_ip: None,
            counters: Counters::default(),
            down: Vec::new(),
            down_at: None,
            advert_at: None,
            garp_at: None,
            refresh_at: None,
            preempt_at: None,
            hold_preempt: false,
        };
        i.down_at = Some(now + i.master_down());
        i
    }

    /// Holds preemption (or allows it again); returns whether that changed.
    pub fn set_hold_preempt(&mut self, hold: bool) -> bool {
        let changed = self.hold_preempt != hold;
        self.hold_preempt = hold;
        changed
    }

    /// Makes the master-down timer due at `now` (the address owner's start).
    pub fn force_master_timer(&mut self, now: Micros) {
        self.down_at = Some(now);
    }

    /// Priority 255 starts as master at once.
    pub fn wants_master_at_start(&self) -> bool {
        self.base_priority == OWNER
    }

    /// The priority adverts carry: the base plus track weights (keepalived: none for the
    /// owner), kept within 1..=254.
    pub fn effective_priority(&self) -> u8 {
        if self.base_priority == OWNER {
            return OWNER;
        }
        let mut p = i32::from(self.base_priority);
        for (ifname, weight) in &self.spec.tracks {
            let up = !self.down.contains(ifname);
            match *weight {
                Some(w) if w > 0 && up => p += w,
                Some(w) if w < 0 && !up => p += w,
                _ => {}
            }
        }
        u8::try_from(p.clamp(1, 254)).unwrap_or(1)
    }

    /// True while the instance's interface, or a tracked one without a weight, is down.
    pub fn faulty(&self) -> bool {
        self.down.contains(&self.spec.iface)
            || self
                .spec
                .tracks
                .iter()
                .any(|(ifname, w)| w.is_none() && self.down.contains(ifname))
    }

    fn advert_us(&self) -> Micros {
        Micros::from(self.spec.advert_centis) * 10_000
    }

    /// Skew_Time: (256 - priority)/256 s for VRRPv2; × Master_Adver_Interval for VRRPv3.
    pub fn skew(&self) -> Micros {
        let p = 256 - Micros::from(self.effective_priority());
        match self.spec.version {
            Version::V2 => p * SECOND / 256,
            Version::V3 => p * Micros::from(self.master_centis) * 10_000 / 256,
        }
    }

    /// Master_Down_Interval: 3 × Master_Adver_Interval + Skew_Time.
    pub fn master_down(&self) -> Micros {
        let interval = match self.spec.version {
            Version::V2 => self.advert_us(),
            Version::V3 => Micros::from(self.master_centis) * 10_000,
        };
        3 * interval + self.skew()
    }

    pub fn deadline(&self) -> Option<Micros> {
        match self.state {
            State::Backup => self.down_at,
            State::Master => [self.advert_at, self.garp_at, self.refresh_at]
                .into_iter()
                .flatten()
                .min(),
            State::Fault | State::Stopped => None,
        }
    }

    /// An advert of ours with `priority`, one Send per destination.
    pub fn adverts(&mut self, priority: u8, out: &mut Vec<Action>) {
        let repr = Repr {
            version: self.spec.version,
            vrid: self.spec.vrid,
            priority,
            advert_centis: self.spec.advert_centis,
            auth: self.spec.auth,
            addrs: self.spec.vips.clone(),
        };
        let dsts = if self.spec.peers.is_empty() {
            vec![MCAST_GROUP]
        } else {
            self.spec.peers.clone()
        };
        for dst in dsts {
            out.push(Action::Send {
                iface: self.spec.iface.clone(),
                src: self.spec.src,
                dst,
                bytes: repr.to_bytes(self.spec.src, dst),
            });
            self.counters.adverts_sent += 1;
        }
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
    }

    fn garps(&self, count: u32, out: &mut Vec<Action>) {
        let mut by_iface: Vec<(String, Vec<Ipv4Addr>)> = Vec::new();
        for (ifname, a) in &self.spec.owned {
            match by_iface.iter_mut().find(|(i, _)| i == ifname) {
                Some((_, v)) => v.push(*a),
                None => by_iface.push((ifname.clone(), vec![*a])),
            }
        }
        for _ in 0..count {
            for (iface, addrs) in &by_iface {
                out.push(Action::Garp {
                    iface: iface.clone(),
                    addrs: addrs.clone(),
                });
            }
        }
    }

    fn owned(&self, owned: bool) -> Action {
        let mut addrs: Vec<Ipv4Addr> = self.spec.owned.iter().map(|(_, a)| *a).collect();
        addrs.dedup();
        Action::Owned {
            instance: self.spec.name.clone(),
            addrs,
            owned,
        }
    }

    fn enter(&mut self, state: State, now: Micros, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = state;
        self.since = now;
        self.transitions += 1;
        let prio = self.effective_priority();
        out.push(Action::Log(format!(
            "({}) {} -> {} (priority {prio})",
            self.spec.name,
            from.keyword(),
            state.keyword()
        )));
        let commands = self
            .spec
            .notify
            .commands("INSTANCE", &self.spec.name, state, prio);
        out.push(Action::Notify {
            instance: self.spec.name.clone(),
            state,
            commands,
        });
    }

    /// To MASTER: advert first (so the old master drops the addresses), then the
    /// addresses, GARPs, notify (keepalived's order).
    pub fn become_master(&mut self, now: Micros, out: &mut Vec<Action>) {
        if self.state == State::Master || self.faulty() {
            return;
        }
        self.adverts(self.effective_priority(), out);
        self.down_at = None;
        self.preempt_at = None;
        self.master_ip = Some(self.spec.src);
        self.counters.became_master += 1;
        out.push(self.owned(true));
        self.garps(self.spec.garp_repeat, out);
        self.advert_at = Some(now + self.advert_us());
        self.garp_at = (self.spec.garp_delay > 0).then(|| now + self.spec.garp_delay);
        self.refresh_at = (self.spec.garp_refresh > 0).then(|| now + self.spec.garp_refresh);
        self.enter(State::Master, now, out);
    }

    /// To BACKUP (from MASTER or FAULT), with a fresh master-down timer.
    pub fn become_backup(&mut self, now: Micros, out: &mut Vec<Action>) {
        if self.faulty() {
            return;
        }
        let was = self.state;
        self.down_at = Some(now + self.master_down());
        if was == State::Backup {
            return;
        }
        self.leave_master(out);
        self.enter(State::Backup, now, out);
    }

    pub fn become_fault(&mut self, now: Micros, out: &mut Vec<Action>) {
        if matches!(self.state, State::Fault | State::Stopped) {
            return;
        }
        if self.state == State::Master && !self.down.contains(&self.spec.iface) {
            self.adverts(0, out);
        }
        self.leave_master(out);
        self.down_at = None;
        self.master_ip = None;
        self.enter(State::Fault, now, out);
    }

    pub fn stop(&mut self, now: Micros, out: &mut Vec<Action>) {
        if self.state == State::Stopped {
            return;
        }
        if self.state == State::Master {
            self.adverts(0, out);
        }
        self.leave_master(out);
        self.down_at = None;
        self.enter(State::Stopped, now, out);
    }

    fn leave_master(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(self.owned(false));
            self.master_ip = None;
        }
        (self.advert_at, self.garp_at, self.refresh_at) = (None, None, None);
    }

    /// Timers due at `now`; a transition to apply is returned.
    pub fn tick(&mut self, now: Micros, out: &mut Vec<Action>) -> Option<Want> {
        match self.state {
            State::Backup if self.down_at.is_some_and(|t| t <= now) => {
                self.down_at = None;
                Some(Want::Master)
            }
            State::Master => {
                if let Some(t) = self.advert_at.filter(|t| *t <= now) {
                    self.adverts(self.effective_priority(), out);
                    // Keep the cadence; after a long stall, restart it from now.
                    let next = t + self.advert_us();
                    self.advert_at = Some(if next <= now {
                        now + self.advert_us()
                    } else {
                        next
                    });
                }
                if self.garp_at.is_some_and(|t| t <= now) {
                    self.garp_at = None;
                    self.garps(self.spec.garp_repeat, out);
                }
                if let Some(t) = self.refresh_at.filter(|t| *t <= now) {
                    self.garps(self.spec.garp_refresh_repeat, out);
                    let next = t + self.spec.garp_refresh;
                    self.refresh_at = Some(if next <= now {
                        now + self.spec.garp_refresh
                    } else {
                        next
                    });
                }
                None
            }
            _ => None,
        }
    }

    /// A VRRP message for this instance's VRID on its interface.
    pub fn received(
        &mut self,
        now: Micros,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) -> Option<Want> {
        let adv = self.check(src, dst, ttl, bytes, out)?;
        self.counters.adverts_received += 1;
        let ours = self.effective_priority();
        match self.state {
            State::Backup => {
                if adv.priority == 0 {
                    self.counters.priority_zero_received += 1;
                    self.down_at = Some(now + self.skew());
                    return None;
                }
                let hold = match self.spec.preempt_delay {
                    Some(d) if adv.priority < ours => {
                        let at = *self.preempt_at.get_or_insert(now + d);
                        now < at
                    }
                    _ => false,
                };
                self.master_ip = Some(src);
                if self.spec.nopreempt || adv.priority >= ours || hold || self.hold_preempt {
                    if self.spec.version == Version::V3 {
                        self.master_centis = adv.advert_centis;
                    }
                    if adv.priority >= ours {
                        self.preempt_at = None;
                    }
                    self.down_at = Some(now + self.master_down());
                } else {
                    // Lower priority and we preempt: let the down timer run out.
                    self.counters.lower_priority_discarded += 1;
                }
                None
            }
            State::Master => {
                if adv.priority == 0 {
                    self.counters.priority_zero_received += 1;
                    self.adverts(ours, out);
                    return None;
                }
                if adv.priority == ours && src != self.spec.src && ours == OWNER {
                    out.push(Action::Log(format!(
                        "({}) another address owner (priority 255) at {src}: lowering ours to 254",
                        self.spec.name
                    )));
                    self.base_priority = OWNER - 1;
                }
                let ours = self.effective_priority();
                let higher_ip = u32::from(src) > u32::from(self.spec.src);
                if adv.priority < ours || (adv.priority == ours && !higher_ip) {
                    // Force a new election (keepalived without lower_prio_no_advert), and
                    // announce our addresses again (keepalived's garp_lower_prio_repeat, which
                    // defaults to garp_master_repeat): a master that was frozen or cut off
                    // comes back to a segment whose ARP caches point at the other director.
                    self.adverts(ours, out);
                    self.garps(self.spec.garp_repeat, out);
                    None
                } else {
                    if self.spec.version == Version::V3 {
                        self.master_centis = adv.advert_centis;
                    }
                    self.master_ip = Some(src);
                    Some(Want::Backup)
                }
            }
            State::Fault | State::Stopped => None,
        }
    }

    /// keepalived's `vrrp_check_packet`, counting what it refuses.
    fn check(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) -> Option<Repr> {
        let c = &mut self.counters;
        let name = &self.spec.name;
        let mut drop = |counter: &mut u64, why: String| {
            *counter += 1;
            out.push(Action::Refused(format!(
                "({name}) advert from {src} ignored: {why}"
            )));
            None
        };
        let p = match Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(packet::Error::Version(v)) => {
                return drop(&mut c.version_errors, format!("version {v}"))
            }
            Err(e) => return drop(&mut c.packet_errors, e.to_string()),
        };
        if p.version_number() != self.spec.version.number() {
            let why = format!(
                "version {}, ours {}",
                p.version_number(),
                self.spec.version.number()
            );
            return drop(&mut c.version_errors, why);
        }
        if self.spec.peers.is_empty() && ttl != 255 {
            return drop(&mut c.ttl_errors, format!("TTL {ttl}, not 255"));
        }
        let adv = match Repr::parse(&p, src, dst) {
            Ok(r) => r,
            Err(e @ packet::Error::AuthType(_)) => return drop(&mut c.auth_errors, e.to_string()),
            Err(e) => return drop(&mut c.packet_errors, e.to_string()),
        };
        if adv.version == Version::V2 {
            if adv.auth.is_some() != self.spec.auth.is_some() {
                return drop(&mut c.auth_errors, "authentication type mismatch".into());
            }
            if adv.auth != self.spec.auth {
                return drop(&mut c.auth_errors, "wrong password".into());
            }
            if adv.advert_centis != self.spec.advert_centis {
                let why = format!(
                    "advert interval {} s, ours {} s",
                    adv.advert_centis / 100,
                    self.spec.advert_centis / 100
                );
                return drop(&mut c.interval_errors, why);
            }
        }
        let mut theirs = adv.addrs.clone();
        let mut ours = self.spec.vips.clone();
        theirs.sort();
        ours.sort();
        if theirs != ours {
            return drop(
                &mut c.address_list_errors,
                "virtual address list differs".into(),
            );
        }
        Some(adv)
    }
}
