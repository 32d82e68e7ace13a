//! What a `[[port]]` sits on (a DPDK vdev or a PCI NIC) and how its exception path to the
//! kernel is built (a `net_tap` or `virtio_user` on vhost-net). Pure functions: nothing here
//! touches DPDK, so the choices are tested without it.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// `exception` in a `[[port]]`: which driver carries the exception path to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExceptionSetting {
    /// virtio-user where /dev/vhost-net can be opened, a TAP otherwise.
    #[default]
    Auto,
    /// `virtio_user` on vhost-net (the kernel's vhost thread moves the frames); refused at
    /// start when /dev/vhost-net cannot be opened.
    VirtioUser,
    /// `net_tap` (DPDK reads and writes the TAP itself).
    Tap,
}

/// The exception path a port got at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionKind {
    Tap,
    VirtioUser,
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExceptionKind::Tap => "tap",
            ExceptionKind::VirtioUser => "virtio-user",
        })
    }
}

/// The vhost-net device virtio-user's kernel backend needs.
pub const VHOST_NET: &str = "/dev/vhost-net";

/// Whether the vhost-net device at `path` can be opened for reading and writing (as
/// virtio_user will), or why not.
pub fn vhost_net_usable(path: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new().read(true).write(true).open(path).map(drop).map_err(|e| e.to_string())
}

/// The exception path for a port given its setting and whether vhost-net is usable (the
/// result of [`vhost_net_usable`] on `vhost_net`): the kind and why it was chosen, or why the
/// port cannot start.
pub fn choose_exception(setting: ExceptionSetting, vhost_net: &Path, usable: Result<(), String>) -> Result<(ExceptionKind, String), String> {
    let dev = vhost_net.display();
    match (setting, usable) {
        (ExceptionSetting::Tap, _) => Ok((ExceptionKind::Tap, "exception = \"tap\"".into())),
        (ExceptionSetting::VirtioUser, Ok(())) => Ok((ExceptionKind::VirtioUser, format!("exception = \"virtio-user\", {dev} is usable"))),
        (ExceptionSetting::VirtioUser, Err(e)) => Err(format!(
            "exception = \"virtio-user\" needs {dev}, which cannot be opened ({e}); load vhost_net or use exception = \"tap\" or \"auto\""
        )),
        (ExceptionSetting::Auto, Ok(())) => Ok((ExceptionKind::VirtioUser, format!("auto: {dev} is usable"))),
        (ExceptionSetting::Auto, Err(e)) => Ok((ExceptionKind::Tap, format!("auto: {dev} cannot be opened ({e})"))),
    }
}

/// The device arguments of port `index`'s exception path: a kernel interface named `ifname`
/// carrying `mac` (the port's), with `queues` queue pairs (one per worker). Both drivers set
/// the kernel interface's MAC from `mac=` (net_tap at creation, virtio_user when it starts);
/// without one (a port whose MAC is all zeroes, as net_ring's) both pick a random one.
pub fn exception_devargs(kind: ExceptionKind, index: usize, ifname: &str, mac: Option<&str>, queues: u16) -> String {
    let mac = mac.map(|m| format!(",mac={m}")).unwrap_or_default();
    match kind {
        ExceptionKind::Tap => format!("net_tap_exc{index},iface={ifname}{mac}"),
        // `virtio_user` is the driver's alias; the `_exc` suffix keeps the name clear of a
        // data port's own `virtio_userN` vdev.
        ExceptionKind::VirtioUser => format!("virtio_user_exc{index},path={VHOST_NET},iface={ifname}{mac},queues={queues},queue_size=1024"),
    }
}

/// The DPDK device name of the exception path's port (the devargs up to the first comma).
pub fn exception_device(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or(devargs)
}

/// A PCI address in DPDK's spelling (`0000:00:04.0`, lowercase: the name of its ethdev and
/// what `-a` takes). The domain may be left out (`00:04.0`).
pub fn normalize_pci(addr: &str) -> Result<String, String> {
    let bad = || format!("{addr:?} is not a PCI address (domain:bus:device.function, e.g. 0000:00:04.0)");
    let hex = |s: &str, max_digits: usize| -> Option<u32> {
        if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    };
    let (rest, function) = addr.trim().rsplit_once('.').ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (domain, bus, device) = match parts.as_slice() {
        [d, b, dev] => (hex(d, 8).ok_or_else(bad)?, *b, *dev),
        [b, dev] => (0, *b, *dev),
        _ => return Err(bad()),
    };
    let bus = hex(bus, 2).ok_or_else(bad)?;
    let device = hex(device, 2).filter(|&d| d <= 0x1f).ok_or_else(bad)?;
    let function = hex(function, 1).filter(|&f| f <= 7).ok_or_else(bad)?;
    Ok(format!("{domain:04x}:{bus:02x}:{device:02x}.{function:x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_validated_and_normalised() {
        assert_eq!(normalize_pci("0000:00:04.0").unwrap(), "0000:00:04.0");
        assert_eq!(normalize_pci("00:1F.7").unwrap(), "0000:00:1f.7");
        assert_eq!(normalize_pci(" 0001:AB:00.3 ").unwrap(), "0001:ab:00.3");
        assert_eq!(normalize_pci("10000:00:04.0").unwrap(), "10000:00:04.0");
        for bad in ["", "0000:00:04", "0000:00:20.0", "0000:00:04.8", "0000:000:04.0", "0000:00:04.0.1", "eth0", "0000:00:0g.0", "a:b:c:d.0", "net_ring0", "0000:00:04.-1"] {
            let e = normalize_pci(bad).unwrap_err();
            assert!(e.contains("is not a PCI address") && e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
        }
    }

    #[test]
    fn exception_choice() {
        let dev = Path::new("/dev/vhost-net");
        let missing = || Err("No such file or directory (os error 2)".to_owned());
        assert_eq!(choose_exception(ExceptionSetting::Auto, dev, missing()).unwrap().0, ExceptionKind::Tap);
        assert_eq!(choose_exception(ExceptionSetting::Auto, dev, Ok(())).unwrap().0, ExceptionKind::VirtioUser);
        assert_eq!(choose_exception(ExceptionSetting::Tap, dev, Ok(())).unwrap().0, ExceptionKind::Tap);
        assert_eq!(choose_exception(ExceptionSetting::VirtioUser, dev, Ok(())).unwrap().0, ExceptionKind::VirtioUser);
        let e = choose_exception(ExceptionSetting::VirtioUser, dev, missing()).unwrap_err();
        assert!(e.contains("virtio-user") && e.contains("/dev/vhost-net") && e.contains("No such file"), "{e}");
        let (_, why) = choose_exception(ExceptionSetting::Auto, dev, missing()).unwrap();
        assert!(why.contains("/dev/vhost-net") && why.contains("auto"), "{why}");
    }

    /// A device that does not exist is not usable, so auto picks the TAP (as on machines
    /// without vhost_net, like the development VMs).
    #[test]
    fn auto_picks_tap_without_vhost_net() {
        let dev = Path::new("/nonexistent/vhost-net");
        let usable = vhost_net_usable(dev);
        assert!(usable.as_ref().is_err_and(|e| e.contains("No such file")), "{usable:?}");
        assert_eq!(choose_exception(ExceptionSetting::Auto, dev, usable).unwrap().0, ExceptionKind::Tap);
        // And on this machine, the real device decides the same way the check says.
        let real = Path::new(VHOST_NET);
        let want = if vhost_net_usable(real).is_ok() { ExceptionKind::VirtioUser } else { ExceptionKind::Tap };
        assert_eq!(choose_exception(ExceptionSetting::Auto, real, vhost_net_usable(real)).unwrap().0, want);
    }

    #[test]
    fn exception_devargs_per_driver() {
        let mac = "02:00:00:00:00:01";
        let tap = exception_devargs(ExceptionKind::Tap, 0, "tap-wan", Some(mac), 2);
        assert_eq!(tap, "net_tap_exc0,iface=tap-wan,mac=02:00:00:00:00:01");
        assert_eq!(exception_device(&tap), "net_tap_exc0");
        let vu = exception_devargs(ExceptionKind::VirtioUser, 1, "tap-lan", Some(mac), 2);
        assert_eq!(vu, "virtio_user_exc1,path=/dev/vhost-net,iface=tap-lan,mac=02:00:00:00:00:01,queues=2,queue_size=1024");
        assert_eq!(exception_device(&vu), "virtio_user_exc1");
        assert_eq!(exception_devargs(ExceptionKind::Tap, 2, "t", None, 1), "net_tap_exc2,iface=t");
        assert_eq!(exception_devargs(ExceptionKind::VirtioUser, 2, "t", None, 1), "virtio_user_exc2,path=/dev/vhost-net,iface=t,queues=1,queue_size=1024");
    }
}
