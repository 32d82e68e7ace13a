//! MISC_CHECK: a command (run by `/bin/sh -c`, with no input and its output discarded) whose
//! exit code is the verdict; killed when it runs longer than `misc_timeout`.

use std::process::Stdio;
use std::time::Duration;

use crate::health::Outcome;

use super::tcp::secs;

pub(super) async fn run(command: &str, timeout: Duration, dynamic: bool) -> Outcome {
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Down(format!("misc_path {command:?}: cannot start: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => misc_outcome(command, status.code(), dynamic),
        Ok(Err(e)) => Outcome::Down(format!("misc_path {command:?}: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Outcome::Down(format!("misc_path {command:?}: still running after {}; killed", secs(timeout)))
        }
    }
}

/// keepalived's reading of an exit code: 0 up; with `misc_dynamic`, 2..=255 up with weight
/// `code - 2`; anything else (1, a signal) down.
pub fn misc_outcome(command: &str, code: Option<i32>, dynamic: bool) -> Outcome {
    match code {
        Some(0) => Outcome::Up,
        Some(c @ 2..=255) if dynamic => Outcome::UpWithWeight(u32::try_from(c - 2).unwrap_or(0)),
        Some(c) => Outcome::Down(format!("misc_path {command:?}: exit code {c}")),
        None => Outcome::Down(format!("misc_path {command:?}: killed by a signal")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(misc_outcome("c", Some(0), false), Outcome::Up);
        assert_eq!(misc_outcome("c", Some(1), true), Outcome::Down("misc_path \"c\": exit code 1".into()));
        assert_eq!(misc_outcome("c", Some(2), true), Outcome::UpWithWeight(0));
        assert_eq!(misc_outcome("c", Some(7), true), Outcome::UpWithWeight(5));
        assert_eq!(misc_outcome("c", Some(255), true), Outcome::UpWithWeight(253));
        assert_eq!(misc_outcome("c", Some(7), false), Outcome::Down("misc_path \"c\": exit code 7".into()));
        assert_eq!(misc_outcome("c", None, true), Outcome::Down("misc_path \"c\": killed by a signal".into()));
    }

    #[tokio::test]
    async fn runs_commands_and_kills_slow_ones() {
        assert_eq!(run("exit 0", Duration::from_secs(5), false).await, Outcome::Up);
        assert_eq!(run("exit 12", Duration::from_secs(5), true).await, Outcome::UpWithWeight(10));
        let t = std::time::Instant::now();
        let o = run("sleep 5", Duration::from_millis(300), false).await;
        assert_eq!(o, Outcome::Down("misc_path \"sleep 5\": still running after 0.3 s; killed".into()));
        assert!(t.elapsed() < Duration::from_secs(3));
    }
}
