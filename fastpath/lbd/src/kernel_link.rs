//! Settings of a kernel interface through rtnetlink (no `ip` binary; socket2 only): the
//! exception path's kernel side gets the port's MAC and is brought up. net_tap does both
//! itself; a virtio_user on vhost-net sets the MAC but leaves the TAP down.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;
const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFF_UP: u32 = 1;

fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// The RTM_NEWLINK request that sets `ifname`'s MAC (when given) and brings it up.
fn request(ifname: &str, mac: Option<[u8; 6]>, seq: u32) -> Vec<u8> {
    let mut m = vec![0u8; 16]; // nlmsghdr, length filled in below
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // ifinfomsg: family AF_UNSPEC, type 0, index 0 (the name selects), flags, change mask.
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&0i32.to_ne_bytes());
    m.extend_from_slice(&IFF_UP.to_ne_bytes());
    m.extend_from_slice(&IFF_UP.to_ne_bytes());
    let mut name = ifname.as_bytes().to_vec();
    name.push(0);
    attr(&mut m, IFLA_IFNAME, &name);
    if let Some(mac) = mac {
        attr(&mut m, IFLA_ADDRESS, &mac);
    }
    let len = u32::try_from(m.len()).unwrap_or(u32::MAX);
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// Sets `ifname`'s MAC to `mac` (when given) and brings it up (as `ip link set dev IFNAME
/// address MAC up`), then checks the MAC the kernel reports.
pub fn set_mac_and_up(ifname: &str, mac: Option<[u8; 6]>) -> Result<(), String> {
    let with = mac.map(|m| format!(" with MAC {}", fmt_mac(m))).unwrap_or_default();
    let fail = |what: &str, e: std::io::Error| format!("cannot set {ifname} up{with}: {what}: {e}");
    let sock = Socket::new(Domain::from(AF_NETLINK), Type::RAW, Some(Protocol::from(NETLINK_ROUTE))).map_err(|e| fail("netlink socket", e))?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| fail("netlink socket", e))?;
    let seq = 1;
    sock.send(&request(ifname, mac, seq)).map_err(|e| fail("RTM_NEWLINK", e))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = (&sock).read(&mut buf).map_err(|e| fail("netlink answer", e))?;
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or_default()) as usize;
            let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap_or_default());
            let got_seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap_or_default());
            if len < 16 || off + len > n {
                break;
            }
            if kind == NLMSG_ERROR && got_seq == seq && len >= 20 {
                let errno = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap_or_default());
                if errno != 0 {
                    return Err(fail("RTM_NEWLINK", std::io::Error::from_raw_os_error(-errno)));
                }
                return mac.map_or(Ok(()), |mac| check_mac(ifname, mac));
            }
            off += len.next_multiple_of(4);
        }
    }
}

/// Waits until no interface named `ifname` exists, for at most `timeout`; the time waited
/// when it went (zero when there was none), `None` when it is still there.
///
/// Why: a virtio_user exception path's TAP is not gone when the lbd that made it exits.
/// vhost-net holds the TAP's file, and the kernel releases that after the process, so a
/// restart (`systemctl restart lbd`) can find the old TAP still there under the same name.
/// Creating the new one then raced the old one's removal: the image test once saw the TAP
/// with a MAC nobody had set right after setting it.
pub fn wait_gone(ifname: &str, timeout: Duration) -> Option<Duration> {
    let path = Path::new("/sys/class/net").join(ifname);
    if !path.exists() {
        return Some(Duration::ZERO);
    }
    let start = std::time::Instant::now();
    while path.exists() {
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(start.elapsed())
}

fn fmt_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Whether the kernel reports `mac` for `ifname`.
fn check_mac(ifname: &str, mac: [u8; 6]) -> Result<(), String> {
    let path = Path::new("/sys/class/net").join(ifname).join("address");
    let have = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if have.trim().eq_ignore_ascii_case(&fmt_mac(mac)) {
        Ok(())
    } else {
        Err(format!("{ifname} has MAC {} instead of the port's {}", have.trim(), fmt_mac(mac)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn flags(ifname: &str) -> u32 {
        let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/flags")).unwrap();
        u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap()
    }

    /// On a TAP created down with another MAC (as virtio_user leaves its kernel side), the
    /// interface ends up with the given MAC and up. Needs root and `ip`; skipped without them.
    #[test]
    fn sets_the_mac_and_brings_the_interface_up() {
        let name = format!("lbdkl{}", std::process::id() % 100_000);
        let made = Command::new("ip").args(["tuntap", "add", "dev", &name, "mode", "tap"]).output();
        if !made.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("skipped: cannot create a TAP ({made:?})");
            return;
        }
        struct Gone(String);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = Command::new("ip").args(["link", "del", "dev", &self.0]).status();
            }
        }
        let _gone = Gone(name.clone());
        assert_eq!(flags(&name) & IFF_UP, 0, "created down");
        let mac = [0x02, 0x5a, 0x01, 0x02, 0x03, 0x04];
        set_mac_and_up(&name, Some(mac)).unwrap();
        assert_eq!(std::fs::read_to_string(format!("/sys/class/net/{name}/address")).unwrap().trim(), "02:5a:01:02:03:04");
        assert_ne!(flags(&name) & IFF_UP, 0, "up");
        // Again while up: the MAC of a TAP can change while it is up.
        set_mac_and_up(&name, Some([0x02, 0, 0, 0, 0, 9])).unwrap();
        assert!(check_mac(&name, [0x02, 0, 0, 0, 0, 9]).is_ok());
        assert!(check_mac(&name, mac).unwrap_err().contains("instead of the port's 02:5a:01:02:03:04"));
        // Without a MAC: only brought up, the MAC stays.
        let _ = Command::new("ip").args(["link", "set", "dev", &name, "down"]).status();
        set_mac_and_up(&name, None).unwrap();
        assert_ne!(flags(&name) & IFF_UP, 0, "up again");
        assert!(check_mac(&name, [0x02, 0, 0, 0, 0, 9]).is_ok());
    }

    #[test]
    fn waits_for_an_interface_to_go() {
        assert_eq!(wait_gone("lbdnosuch1", Duration::from_secs(5)), Some(Duration::ZERO), "none there: no wait");
        assert_eq!(wait_gone("lo", Duration::from_millis(50)), None, "lo stays");
        // A TAP deleted while we wait (root and `ip` needed; skipped without them).
        let name = format!("lbdwg{}", std::process::id() % 100_000);
        if !Command::new("ip").args(["tuntap", "add", "dev", &name, "mode", "tap"]).output().is_ok_and(|o| o.status.success()) {
            eprintln!("skipped the TAP case: cannot create one");
            return;
        }
        let del = {
            let name = name.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                Command::new("ip").args(["link", "del", "dev", &name]).status()
            })
        };
        let waited = wait_gone(&name, Duration::from_secs(10));
        let _ = del.join();
        assert!(waited.is_some_and(|d| d >= Duration::from_millis(90)), "{waited:?}");
    }

    #[test]
    fn unknown_interface_is_an_error() {
        let e = set_mac_and_up("lbdnosuch0", Some([2, 0, 0, 0, 0, 1])).unwrap_err();
        assert!(e.contains("lbdnosuch0") && e.contains("RTM_NEWLINK") && e.contains("No such device"), "{e}");
    }
}
