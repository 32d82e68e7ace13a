//! systemd readiness notifications (`Type=notify`, sd_notify(3)): READY=1 once the ports and
//! workers are up, RELOADING=1 … READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM.
//! Without `$NOTIFY_SOCKET` (not started by systemd) every call does nothing.
//!
//! RELOADING=1 carries MONOTONIC_USEC=, which systemd 253 and newer require with it (older
//! ones, Debian 12's 252 included, ignore the field).

use sd_notify::NotifyState;

/// Sends `states`; a failure is reported on stderr and otherwise ignored (the daemon runs on
/// either way; systemd's start timeout tells the operator if READY=1 never arrived).
fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("cannot notify systemd ($NOTIFY_SOCKET): {e}");
    }
}

/// Start-up is complete: ports started, workers launched, the API listening.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(&one_line(status))]);
}

/// A reload begins; [`reloaded`] ends it.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    match NotifyState::monotonic_usec_now() {
        Ok(now) => states.push(now),
        Err(e) => tracing::warn!("cannot read CLOCK_MONOTONIC for systemd: {e}"),
    }
    send(&states);
}

/// A reload ended (applied or refused: the daemon runs on either way).
pub fn reloaded(status: &str) {
    ready(status);
}

/// The daemon is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// STATUS= is one line.
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// The only test touching $NOTIFY_SOCKET (the environment is process-wide).
    #[test]
    fn messages_reach_notify_socket() {
        let dir = std::env::temp_dir().join(format!("lbd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        super::ready("ready: 1 worker\nports: wan");
        assert_eq!(recv(&sock), "READY=1\nSTATUS=ready: 1 worker ports: wan\n");
        super::reloading();
        let m = recv(&sock);
        let usec: u64 = m.strip_prefix("RELOADING=1\nMONOTONIC_USEC=").and_then(|r| r.strip_suffix('\n')).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{m:?}"));
        assert!(usec > 0);
        super::reloaded("reloaded");
        assert_eq!(recv(&sock), "READY=1\nSTATUS=reloaded\n");
        super::stopping();
        assert_eq!(recv(&sock), "STOPPING=1\nSTATUS=stopping\n");
        std::env::remove_var("NOTIFY_SOCKET");
        // Without a socket nothing is sent and nothing fails.
        super::ready("x");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
