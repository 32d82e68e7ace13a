//! VRRP (v2, RFC 3768; v3 over IPv4, RFC 5798) with keepalived 2.2's behaviour, free of I/O.
//!
//! [`Vrrp`] holds every `vrrp_instance` and `vrrp_sync_group` of a keepalived.conf. The shell
//! feeds it what it hears and sees, and does what the returned [`Action`]s say:
//!
//! - [`Vrrp::received`]: a VRRP message (the IP payload, protocol 112) heard on an interface,
//!   with the IP header's source, destination (VRRPv3's checksum covers it) and TTL;
//! - [`Vrrp::link`]: an interface went up or down;
//! - [`Vrrp::tick`]: the clock reached [`Vrrp::next_deadline`];
//! - [`Vrrp::shutdown`]: stopping (masters send priority 0, so backups take over after their
//!   skew time instead of the full master-down interval).
//!
//! Time is a millisecond clock ([`Millis`], fake in tests). Timers are kept in microseconds
//! (VRRP's skew is 1/256 s); [`Vrrp::next_deadline`] rounds up, so a timer at 3609.375 ms
//! fires on the tick at 3610.
//!
//! Which addresses an instance owns: its `virtual_ipaddress`, `virtual_ipaddress_excluded`,
//! and (FNAT) the local addresses of the virtual servers whose VIP it holds
//! ([`group::moving_local_addresses`]). [`Action::Owned`] tells lbd to answer ARP for them
//! and forward their traffic, or to stop.

pub mod group;
mod machine;
pub mod packet;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

use machine::{Instance, Micros, Notify, Spec, Want};
use packet::Version;

/// Milliseconds on the shell's monotonic clock.
pub type Millis = u64;

const US_PER_MS: Micros = 1000;

/// An instance's state (keepalived's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Backup,
    Master,
    Fault,
    /// After [`Vrrp::shutdown`].
    Stopped,
}

impl State {
    /// The word keepalived passes to `notify` scripts.
    pub fn keyword(self) -> &'static str {
        match self {
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stopped => "STOP",
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes` (a VRRP message) as IP protocol 112 with TTL 255 from `src` to `dst`
    /// (224.0.0.18, or a unicast peer) on `iface`.
    Send {
        iface: String,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: Vec<u8>,
    },
    /// One gratuitous ARP for each address on `iface` (a burst of N is N actions).
    Garp {
        iface: String,
        addrs: Vec<Ipv4Addr>,
    },
    /// lbd must (or must no longer) answer ARP for and forward to these addresses.
    Owned {
        instance: String,
        addrs: Vec<Ipv4Addr>,
        owned: bool,
    },
    /// Run these shell commands (the state's `notify_*` script, then `notify` with
    /// `INSTANCE|GROUP "<name>" <STATE> <priority>`). `instance` is the sync group's name for
    /// the group's own scripts.
    Notify {
        instance: String,
        state: State,
        commands: Vec<String>,
    },
    Log(String),
    /// An advert refused (bad authentication, TTL, interval, ...): logged rate-limited, since
    /// a misconfigured peer repeats it with every advert.
    Refused(String),
}

/// What an instance refused or did, keepalived's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub became_master: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    /// Wrong password, or authentication type mismatch (keepalived's auth_failure,
    /// authtype_mismatch, invalid_authtype).
    pub auth_errors: u64,
    pub version_errors: u64,
    /// VRRPv2 advert interval differing from ours (keepalived drops these).
    pub interval_errors: u64,
    pub ttl_errors: u64,
    pub address_list_errors: u64,
    /// Truncated, bad checksum, bad type.
    pub packet_errors: u64,
    /// Lower priority adverts discarded while preempting.
    pub lower_priority_discarded: u64,
}

/// One instance as `lbctl` would show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub state: State,
    /// With track weights.
    pub priority: u8,
    /// The master's address as last heard (ours while master).
    pub master_ip: Option<Ipv4Addr>,
    /// When the current state began.
    pub since: Millis,
    pub transitions: u64,
    pub counters: Counters,
}

/// Every VRRP instance and sync group of a configuration.
#[derive(Debug)]
pub struct Vrrp {
    instances: Vec<Instance>,
    /// Sync groups: (name, member indexes, notify scripts).
    groups: Vec<(String, Vec<usize>, Notify)>,
    /// Messages for a VRID no instance has on that interface.
    unknown_vrid: u64,
}

impl Vrrp {
    /// Builds every instance. `primary_ip` gives an interface's primary address, the advert
    /// source when the instance names none. Instances start in BACKUP (priority 255: MASTER at
    /// once: call [`Vrrp::tick`] with the same `now`).
    pub fn new(
        cfg: &kaconf::Config,
        now: Millis,
        primary_ip: &dyn Fn(&str) -> Option<Ipv4Addr>,
    ) -> Result<Vrrp, String> {
        let laddrs = group::moving_local_addresses(cfg)?;
        let now_us = now * US_PER_MS;
        let mut instances = Vec::new();
        for vi in &cfg.vrrp_instances {
            let spec = spec(vi, laddrs.get(&vi.name).map(Vec::as_slice), primary_ip)?;
            let mut inst = Instance::new(spec, now_us);
            if inst.wants_master_at_start() {
                inst.force_master_timer(now_us);
            }
            instances.push(inst);
        }
        let mut groups = Vec::new();
        for g in &cfg.vrrp_sync_groups {
            let mut members = Vec::new();
            for m in &g.group {
                let i = instances
                    .iter()
                    .position(|vi| vi.spec.name == *m)
                    .ok_or_else(|| format!("vrrp_sync_group {}: no vrrp_instance {m}", g.name))?;
                members.push(i);
            }
            let notify = Notify {
                master: g.notify_master.clone(),
                backup: g.notify_backup.clone(),
                fault: g.notify_fault.clone(),
                stop: g.notify_stop.clone(),
                generic: g.notify.clone(),
            };
            groups.push((g.name.clone(), members, notify));
        }
        Ok(Vrrp {
            instances,
            groups,
            unknown_vrid: 0,
        })
    }

    /// Holds preemption in every instance (see `Instance::set_hold_preempt`); returns whether
    /// that changed anything.
    pub fn hold_preemption(&mut self, hold: bool) -> bool {
        let mut changed = false;
        for i in &mut self.instances {
            changed |= i.set_hold_preempt(hold);
        }
        changed
    }

    /// A VRRP message heard on `iface` from `src` to `dst` with `ttl`.
    pub fn received(
        &mut self,
        now: Millis,
        iface: &str,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        bytes: &[u8],
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(&vrid) = bytes.get(1) else {
            return out;
        };
        let found = self
            .instances
            .iter()
            .position(|i| i.spec.iface == iface && i.spec.vrid == vrid);
        let Some(i) = found else {
            self.unknown_vrid += 1;
            return out;
        };
        if self.instances[i].spec.src == src {
            return out; // our own multicast, looped back
        }
        let now = now * US_PER_MS;
        if let Some(want) = self.instances[i].received(now, src, dst, ttl, bytes, &mut out) {
            self.apply(i, want, now, &mut out);
        }
        out
    }

    /// `iface` went up or down: instances tracking it (or on it) go to FAULT or recover.
    pub fn link(&mut self, now: Millis, iface: &str, up: bool) -> Vec<Action> {
        let now = now * US_PER_MS;
        let mut out = Vec::new();
        for inst in &mut self.instances {
            inst.down.retain(|d| d != iface);
            if !up {
                inst.down.push(iface.to_owned());
            }
        }
        self.settle_faults(now, &mut out);
        out
    }

    /// Runs the timers due at `now`.
    pub fn tick(&mut self, now: Millis) -> Vec<Action> {
        let now = now * US_PER_MS;
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            if let Some(want) = self.instances[i].tick(now, &mut out) {
                self.apply(i, want, now, &mut out);
            }
        }
        out
    }

    /// The earliest timer, rounded up to a millisecond.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.instances
            .iter()
            .filter_map(Instance::deadline)
            .min()
            .map(|us| us.div_ceil(US_PER_MS))
    }

    /// Stops every instance: masters send a priority-0 advert and release their addresses.
    pub fn shutdown(&mut self, now: Millis) -> Vec<Action> {
        let now = now * US_PER_MS;
        let mut out = Vec::new();
        for inst in &mut self.instances {
            inst.stop(now, &mut out);
        }
        out
    }

    pub fn status(&self) -> Vec<InstanceStatus> {
        self.instances
            .iter()
            .map(|i| InstanceStatus {
                name: i.spec.name.clone(),
                state: i.state,
                priority: i.effective_priority(),
                master_ip: i.master_ip,
                since: i.since / US_PER_MS,
                transitions: i.transitions,
                counters: i.counters,
            })
            .collect()
    }

    /// Messages heard for a VRID that no instance has on that interface.
    pub fn unknown_vrid(&self) -> u64 {
        self.unknown_vrid
    }

    fn group_of(&self, i: usize) -> Option<usize> {
        self.groups.iter().position(|(_, m, _)| m.contains(&i))
    }

    /// Applies an instance's wish to it and to the rest of its sync group.
    fn apply(&mut self, i: usize, want: Want, now: Micros, out: &mut Vec<Action>) {
        let members = match self.group_of(i) {
            Some(g) => self.groups[g].1.clone(),
            None => vec![i],
        };
        // A group with a faulty member stays in FAULT.
        if want == Want::Master && members.iter().any(|&m| self.instances[m].faulty()) {
            return;
        }
        let before = out.len();
        for &m in &members {
            match want {
                Want::Master => self.instances[m].become_master(now, out),
                Want::Backup => self.instances[m].become_backup(now, out),
            }
        }
        let state = match want {
            Want::Master => State::Master,
            Want::Backup => State::Backup,
        };
        self.group_notify(i, state, before, out);
    }

    /// FAULT for instances (and their groups) with a fault; BACKUP for those recovered.
    fn settle_faults(&mut self, now: Micros, out: &mut Vec<Action>) {
        for i in 0..self.instances.len() {
            let members = match self.group_of(i) {
                Some(g) => self.groups[g].1.clone(),
                None => vec![i],
            };
            let faulty = members.iter().any(|&m| self.instances[m].faulty());
            let before = out.len();
            let inst = &mut self.instances[i];
            match (faulty, inst.state) {
                (true, State::Backup | State::Master) => inst.become_fault(now, out),
                (false, State::Fault) => inst.become_backup(now, out),
                _ => continue,
            }
            let state = self.instances[i].state;
            if members.first() == Some(&i) {
                self.group_notify(i, state, before, out);
            }
        }
    }

    /// The sync group's own notify scripts, when its members changed state.
    fn group_notify(&self, i: usize, state: State, before: usize, out: &mut Vec<Action>) {
        let Some(g) = self.group_of(i) else {
            return;
        };
        if out.len() == before {
            return;
        }
        let (name, members, notify) = &self.groups[g];
        let prio = self.instances[members[0]].effective_priority();
        let commands = notify.commands("GROUP", name, state, prio);
        if !commands.is_empty() {
            out.push(Action::Notify {
                instance: name.clone(),
                state,
                commands,
            });
        }
    }
}

fn spec(
    vi: &kaconf::VrrpInstance,
    laddrs: Option<&[(String, Ipv4Addr)]>,
    primary_ip: &dyn Fn(&str) -> Option<Ipv4Addr>,
) -> Result<Spec, String> {
    let version = match vi.version() {
        3 => Version::V3,
        _ => Version::V2,
    };
    let src = match vi.src_ip() {
        Some(ip) => ip,
        None => primary_ip(&vi.interface).ok_or_else(|| {
            format!(
                "vrrp_instance {}: interface {} has no IPv4 address for the adverts \
                 (set unicast_src_ip)",
                vi.name, vi.interface
            )
        })?,
    };
    let secs = |d: Option<std::time::Duration>, default: std::time::Duration| {
        Micros::try_from(d.unwrap_or(default).as_micros()).unwrap_or(Micros::MAX)
    };
    let mut owned: Vec<(String, Ipv4Addr)> = Vec::new();
    for v in vi
        .virtual_ipaddress
        .iter()
        .chain(&vi.virtual_ipaddress_excluded)
    {
        let dev = v.dev.clone().unwrap_or_else(|| vi.interface.clone());
        owned.push((dev, v.addr.ip()));
    }
    owned.extend(laddrs.unwrap_or_default().iter().cloned());
    Ok(Spec {
        name: vi.name.clone(),
        iface: vi.interface.clone(),
        vrid: vi.virtual_router_id,
        version,
        priority: vi.priority,
        advert_centis: vi.advert_centis(),
        nopreempt: vi.nopreempt,
        preempt_delay: vi
            .preempt_delay
            .filter(|d| !d.is_zero())
            .map(|d| secs(Some(d), d)),
        auth: vi
            .authentication
            .as_ref()
            .filter(|_| version == Version::V2)
            .map(|a| packet::auth_data(&a.auth_pass)),
        vips: vi.virtual_ipaddress.iter().map(|v| v.addr.ip()).collect(),
        owned,
        src,
        peers: vi.unicast_peer.clone(),
        tracks: vi
            .track_interface
            .iter()
            .map(|t| (t.name.clone(), t.weight))
            .collect(),
        garp_delay: secs(vi.garp_master_delay, kaconf::DEFAULT_GARP_MASTER_DELAY),
        garp_repeat: vi
            .garp_master_repeat
            .unwrap_or(kaconf::DEFAULT_GARP_MASTER_REPEAT),
        garp_refresh: secs(vi.garp_master_refresh, std::time::Duration::ZERO),
        garp_refresh_repeat: vi
            .garp_master_refresh_repeat
            .unwrap_or(kaconf::DEFAULT_GARP_MASTER_REFRESH_REPEAT),
        notify: Notify {
            master: vi.notify_master.clone(),
            backup: vi.notify_backup.clone(),
            fault: vi.notify_fault.clone(),
            stop: vi.notify_stop.clone(),
            generic: vi.notify.clone(),
        },
    })
}
