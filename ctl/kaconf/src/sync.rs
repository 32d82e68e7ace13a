//! `global_defs { lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N]
//! [group ADDR] }`: LVS session sync, as keepalived 2.2 writes it.
//!
//! The two positional words come first, then the options in any order, each at most once.
//! Out-of-range values are errors naming the option (`id 300 is not in 0..=255`), never
//! clamped. The instance named must be a `vrrp_instance` of the same configuration
//! ([`check_instance`], once every block is read). keepalived's older per-instance
//! `lvs_sync_daemon_interface` is refused with the statement to write instead.

use std::net::Ipv4Addr;

use crate::error::{Error, ErrorKind, Pos};
use crate::model::{LvsSyncDaemon, VrrpInstance};
use crate::tree::{Arg, Node};
use crate::value;

/// The option words.
pub(crate) const OPTIONS: &[&str] = &["id", "maxlen", "port", "ttl", "group"];

/// What to write instead of `lvs_sync_daemon_interface`.
const INSTEAD: &str = "`lvs_sync_daemon INTERFACE VRRP_INSTANCE` in global_defs";

/// Parses `lvs_sync_daemon ...`; also returns where its VRRP_INSTANCE is written, for
/// [`check_instance`].
pub(crate) fn lvs_sync_daemon(n: &Node) -> Result<(LvsSyncDaemon, Pos), Error> {
    n.no_block()?;
    let positional = |i: usize, what: &str| match n.args.get(i) {
        Some(a) if !OPTIONS.contains(&a.text.as_str()) => Ok(a),
        _ => Err(n.err(ErrorKind::MissingArgument { what: what.into() })),
    };
    let interface = positional(0, "INTERFACE")?;
    let instance = positional(1, "VRRP_INSTANCE")?;
    let mut d = LvsSyncDaemon {
        interface: crate::convert::parse(n, interface, value::name)?,
        vrrp_instance: crate::convert::parse(n, instance, value::name)?,
        syncid: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = n.args[2..].iter();
    while let Some(opt) = rest.next() {
        let Some(&name) = OPTIONS.iter().find(|o| **o == opt.text) else {
            let expected = OPTIONS.join(", ");
            let option = opt.text.clone();
            return Err(n.arg_err(opt, ErrorKind::UnknownOption { option, expected }));
        };
        if seen.contains(&name) {
            let option = name.to_owned();
            return Err(n.arg_err(opt, ErrorKind::DuplicateOption { option }));
        }
        seen.push(name);
        let Some(arg) = rest.next() else {
            let what = format!("value of {name}");
            return Err(n.arg_err(opt, ErrorKind::MissingArgument { what }));
        };
        let bad = |why| {
            let value = arg.text.clone();
            n.arg_err(
                arg,
                ErrorKind::BadOption {
                    option: name,
                    value,
                    why,
                },
            )
        };
        match name {
            "id" => d.syncid = Some(number(arg, 0, 255).map_err(bad)?),
            "maxlen" => d.maxlen = Some(number(arg, 80, 65_507).map_err(bad)?),
            "port" => d.port = Some(number(arg, 1, 65_535).map_err(bad)?),
            "ttl" => d.ttl = Some(number(arg, 1, 255).map_err(bad)?),
            _ => d.group = Some(multicast(&arg.text).map_err(bad)?),
        }
    }
    Ok((d, n.arg_pos(instance)))
}

/// A decimal integer in `min..=max`, as the type of the field it goes to.
fn number<T: TryFrom<u64>>(arg: &Arg, min: u64, max: u64) -> Result<T, String> {
    let range = || format!("is not in {min}..={max}");
    let n = value::uint(&arg.text, min, max).map_err(|_| range())?;
    T::try_from(n).map_err(|_| range())
}

fn multicast(text: &str) -> Result<Ipv4Addr, String> {
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err("is an IPv6 address (not supported yet)".into());
    }
    let ip = value::ipv4(text).map_err(|why| format!("is {why}"))?;
    if !ip.is_multicast() {
        return Err("must be a multicast address (unicast sync is not supported yet)".into());
    }
    Ok(ip)
}

/// The daemon's VRRP_INSTANCE names a `vrrp_instance` of the configuration (call once every
/// block is read: the instance may come after `global_defs`).
pub(crate) fn check_instance(
    d: &LvsSyncDaemon,
    at: &Pos,
    instances: &[VrrpInstance],
) -> Result<(), Error> {
    if instances.iter().any(|vi| vi.name == d.vrrp_instance) {
        return Ok(());
    }
    let name = d.vrrp_instance.clone();
    Err(at.error("lvs_sync_daemon", ErrorKind::UndefinedVrrpInstance { name }))
}

/// The error for keepalived's deprecated `lvs_sync_daemon_interface` (in `vrrp_instance` or
/// `global_defs`).
pub(crate) fn deprecated_interface(n: &Node) -> Error {
    n.err(ErrorKind::Deprecated {
        instead: INSTEAD.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(text: &str) -> Arg {
        Arg {
            text: text.into(),
            quoted: false,
            line: 1,
            column: 1,
        }
    }

    #[test]
    fn numbers_name_their_range() {
        assert_eq!(number::<u8>(&arg("255"), 0, 255), Ok(255));
        assert_eq!(number::<u16>(&arg("64"), 64, 65_507), Ok(64));
        for bad in ["256", "-1", "x", "", "1.5"] {
            assert_eq!(
                number::<u8>(&arg(bad), 0, 255),
                Err("is not in 0..=255".into())
            );
        }
    }

    #[test]
    fn groups_are_multicast() {
        assert_eq!(multicast("239.1.2.3"), Ok(Ipv4Addr::new(239, 1, 2, 3)));
        assert!(multicast("10.0.0.1").unwrap_err().contains("multicast"));
        assert_eq!(multicast("x"), Err("is not an IPv4 address".into()));
    }
}
