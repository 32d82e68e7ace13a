//! Address ownership: which VIPs and local addresses this director serves now, as lb-slowpath's
//! VRRP decides (`SetOwnership`), with the VRRP instances' states for listings. Like health it
//! is state, not configuration.
//!
//! Every address starts owned, so an lbd without lb-slowpath answers and forwards as before.
//! What lb-slowpath says is kept per address whether or not the address is a VIP or local
//! address today: it survives configuration changes, and a VIP or local address configured
//! later starts in the state last set for it (a backup must not answer ARP for a new VIP even
//! for one poll pass). The fast path sees it as [`fastpath::service::AddrState::owned`] in the
//! service table's address map, which every publication fills from here.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use fastpath::service::AddrKind;

use super::health::now_unix_ms;
use super::{Control, ControlError};

/// Most addresses lbd records ownership for (VIPs, local addresses and addresses it does not
/// serve yet).
pub const MAX_ADDRESSES: usize = 65_536;
/// Most VRRP instances lbd keeps statuses for.
pub const MAX_INSTANCES: usize = 4096;

/// A VRRP instance's state (keepalived's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VrrpState {
    Init,
    Backup,
    Master,
    Fault,
}

impl VrrpState {
    /// "MASTER", "BACKUP", "FAULT", "INIT".
    pub fn name(self) -> &'static str {
        match self {
            VrrpState::Master => "MASTER",
            VrrpState::Backup => "BACKUP",
            VrrpState::Fault => "FAULT",
            VrrpState::Init => "INIT",
        }
    }

    /// By name (as [`VrrpState::name`] spells it, any case).
    pub fn from_name(s: &str) -> Option<VrrpState> {
        [VrrpState::Master, VrrpState::Backup, VrrpState::Fault, VrrpState::Init].into_iter().find(|v| v.name().eq_ignore_ascii_case(s))
    }

    /// Every state, in the order metrics list them.
    pub const ALL: [VrrpState; 4] = [VrrpState::Master, VrrpState::Backup, VrrpState::Fault, VrrpState::Init];
}

/// A VRRP instance as lb-slowpath last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub state: VrrpState,
    pub priority: u32,
    pub effective_priority: u32,
    /// The current master (empty when unknown).
    pub master_addr: Option<Ipv4Addr>,
    /// When it entered `state` (wall clock, Unix ms).
    pub since_ms: i64,
    pub transitions: u64,
    pub interface: String,
    pub vrid: u8,
    pub addresses: Vec<String>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub auth_errors: u64,
    pub other_errors: u64,
    pub sync_group: String,
}

/// What lbd was told about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrOwner {
    pub owned: bool,
    /// The VRRP instance that decides it (empty when none was named).
    pub instance: String,
    /// When `owned` last changed (wall clock, Unix ms).
    pub since_ms: i64,
    pub source: String,
}

/// One address in a `SetOwnership` batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipUpdate {
    pub addr: Ipv4Addr,
    pub owned: bool,
    pub instance: String,
}

/// What a `SetOwnership` batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnershipOutcome {
    /// The published generation (unchanged when no address changed state).
    pub generation: u64,
    /// Addresses whose owned state changed.
    pub changed: u32,
    /// Addresses named that are neither a VIP nor a local address (recorded all the same).
    pub unknown: Vec<String>,
}

/// One address as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrView {
    pub addr: Ipv4Addr,
    /// `None`: lbd does not serve it (yet).
    pub kind: Option<AddrKind>,
    pub owned: bool,
    pub instance: String,
}

/// Ownership of addresses and the VRRP instances' statuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// What was set, by address; an address not here is owned.
    pub addrs: BTreeMap<Ipv4Addr, AddrOwner>,
    pub instances: BTreeMap<String, VrrpInstance>,
}

impl Ownership {
    /// What was set for `ip`, if anything (`None` means owned).
    pub fn owned(&self, ip: Ipv4Addr) -> Option<bool> {
        self.addrs.get(&ip).map(|a| a.owned)
    }

    /// "(vrrp VI_1 MASTER)" for log lines, or "" without an instance.
    fn why(&self, instance: &str) -> String {
        match self.instances.get(instance) {
            _ if instance.is_empty() => String::new(),
            Some(i) => format!(" (vrrp {instance} {})", i.state.name()),
            None => format!(" (vrrp {instance})"),
        }
    }
}

/// Checks a batch as a whole before anything is applied; errors name the field.
fn validate(addrs: &[OwnershipUpdate], instances: &[VrrpInstance]) -> Result<(), ControlError> {
    for (i, u) in addrs.iter().enumerate() {
        if let Some(j) = addrs[..i].iter().position(|o| o.addr == u.addr) {
            return Err(ControlError::invalid(format!("addresses[{i}].addr"), format!("{} is also addresses[{j}]", u.addr)));
        }
        if u.addr.is_unspecified() || u.addr.is_broadcast() || u.addr.is_multicast() {
            return Err(ControlError::invalid(format!("addresses[{i}].addr"), format!("{} cannot be a VIP or local address", u.addr)));
        }
        name_ok(&format!("addresses[{i}].instance"), &u.instance, true)?;
    }
    if instances.len() > MAX_INSTANCES {
        return Err(ControlError::invalid("instances", format!("{} instances; the limit is {MAX_INSTANCES}", instances.len())));
    }
    for (i, v) in instances.iter().enumerate() {
        name_ok(&format!("instances[{i}].name"), &v.name, false)?;
        if instances[..i].iter().any(|o| o.name == v.name) {
            return Err(ControlError::invalid(format!("instances[{i}].name"), format!("{:?} is given twice", v.name)));
        }
        if v.addresses.len() > MAX_ADDRESSES {
            return Err(ControlError::invalid(format!("instances[{i}].addresses"), format!("{} addresses; the limit is {MAX_ADDRESSES}", v.addresses.len())));
        }
    }
    Ok(())
}

/// A VRRP instance name: 1..=64 printable ASCII characters (empty allowed where `optional`).
fn name_ok(field: &str, s: &str, optional: bool) -> Result<(), ControlError> {
    if (s.is_empty() && !optional) || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ControlError::invalid(field, format!("{s:?} is not an instance name (1 to 64 printable characters, no spaces)")));
    }
    Ok(())
}

impl Control {
    /// Applies a batch of address ownerships and VRRP instance statuses (from lb-slowpath): all
    /// of it or, when a value is invalid, none of it. Addresses not named keep their state;
    /// with `replace_instances` the instances given are the whole set, and ownerships recorded
    /// under an instance no longer listed are forgotten (those addresses are owned again).
    /// Addresses lbd does not serve are listed in `unknown` and recorded. A new snapshot is
    /// published only when an address the fast path serves changed state.
    pub fn set_ownership(&self, addrs: &[OwnershipUpdate], instances: Vec<VrrpInstance>, replace_instances: bool, source: &str) -> Result<OwnershipOutcome, ControlError> {
        validate(addrs, &instances)?;
        let source = if source.is_empty() { "api" } else { source };
        let now = now_unix_ms();
        let mut run = self.lock();
        let table = self.shared.services.load_full();
        let mut next = run.owner.clone();
        let mut log = Vec::new();
        for v in &instances {
            let before = next.instances.get(&v.name).map(|o| o.state);
            if before != Some(v.state) {
                log.push(format!("vrrp: {} {} -> {} (priority {}) [{source}]", v.name, before.map_or("-", VrrpState::name), v.state.name(), v.effective_priority));
            }
        }
        if replace_instances {
            next.instances = instances.into_iter().map(|v| (v.name.clone(), v)).collect();
        } else {
            next.instances.extend(instances.into_iter().map(|v| (v.name.clone(), v)));
        }
        if next.instances.len() > MAX_INSTANCES {
            return Err(ControlError::invalid("instances", format!("lbd would hold {} instances; the limit is {MAX_INSTANCES}", next.instances.len())));
        }
        let mut out = OwnershipOutcome::default();
        let mut note = |addr: Ipv4Addr, owned: bool, why: String| {
            out.changed += 1;
            let stray = if table.addr_kind(addr).is_some() { "" } else { " (not a VIP or local address here)" };
            log.push(format!("ownership: {addr} {}{why}{stray} [{source}]", if owned { "owned" } else { "not owned" }));
        };
        if replace_instances {
            // Ownerships decided by an instance that no longer exists: back to the default.
            let gone: Vec<(Ipv4Addr, String)> = next
                .addrs
                .iter()
                .filter(|(ip, a)| !a.instance.is_empty() && !next.instances.contains_key(&a.instance) && !addrs.iter().any(|u| u.addr == **ip))
                .map(|(ip, a)| (*ip, a.instance.clone()))
                .collect();
            for (ip, instance) in gone {
                if next.addrs.remove(&ip).is_some_and(|a| !a.owned) {
                    note(ip, true, format!(" (vrrp {instance} is gone)"));
                }
            }
        }
        for u in addrs {
            let was = next.owned(u.addr).unwrap_or(true);
            if was != u.owned {
                note(u.addr, u.owned, next.why(&u.instance));
            }
            let e = next.addrs.entry(u.addr).or_insert_with(|| AddrOwner { owned: u.owned, instance: String::new(), since_ms: now, source: String::new() });
            if was != u.owned {
                e.since_ms = now;
            }
            e.owned = u.owned;
            e.instance.clone_from(&u.instance);
            e.source = source.to_owned();
        }
        out.unknown = addrs.iter().filter(|u| table.addr_kind(u.addr).is_none()).map(|u| u.addr.to_string()).collect();
        if next.addrs.len() > MAX_ADDRESSES {
            return Err(ControlError::invalid("addresses", format!("lbd would hold {} addresses; the limit is {MAX_ADDRESSES}", next.addrs.len())));
        }
        let conf = run.conf.clone();
        let health = run.health.clone();
        let before = std::mem::replace(&mut run.owner, next);
        let change = match self.publish(&mut run, &conf, &health) {
            Ok(c) => c,
            Err(e) => {
                run.owner = before;
                return Err(e);
            }
        };
        drop(run);
        for l in log {
            tracing::info!("{l}");
        }
        out.generation = change.generation;
        Ok(out)
    }

    /// The recorded ownership and instance statuses.
    pub fn ownership(&self) -> Ownership {
        self.lock().owner.clone()
    }

    /// The VRRP instances, and every VIP and local address the published table serves plus
    /// every other address lb-slowpath named, with its state, in address order.
    pub fn vrrp(&self) -> (Vec<VrrpInstance>, Vec<AddrView>) {
        let owner = self.ownership();
        let table = self.shared.services.load_full();
        let mut views: Vec<AddrView> = table
            .addresses()
            .into_iter()
            .map(|(addr, a)| AddrView { addr, kind: Some(a.kind), owned: a.owned, instance: owner.addrs.get(&addr).map(|o| o.instance.clone()).unwrap_or_default() })
            .collect();
        for (addr, o) in &owner.addrs {
            if table.addr_kind(*addr).is_none() {
                views.push(AddrView { addr: *addr, kind: None, owned: o.owned, instance: o.instance.clone() });
            }
        }
        views.sort_by_key(|v| v.addr);
        (owner.instances.into_values().collect(), views)
    }
}
