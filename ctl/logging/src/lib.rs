//! Logging for lbd and lb-slowpath through `tracing`.
//!
//! - **Where**: the systemd journal when the process runs as a systemd service whose stderr is
//!   the journal (`JOURNAL_STREAM` names stderr's device and inode, as systemd documents), else
//!   human-readable lines on stderr: `lbd: message key=value`, with `warning: `, `error: `,
//!   `debug: ` or `trace: ` after the program name for the levels other than info.
//!   `LBD_LOG_OUTPUT=stderr|journald` overrides the choice.
//! - **What**: `--log-level`, else `LBD_LOG`, else `RUST_LOG`, else `info`: an `EnvFilter`
//!   directive (`debug`, `info,lbd::api=debug`, ...). A bare level keeps the libraries the
//!   daemons use (h2, hyper, tonic, ...) at `warn`.
//! - **How often**: [`RateLimit`] and [`RateLimited`] let a message that can repeat every poll or
//!   period through at most once an interval, saying how often it was not logged meanwhile.
//!
//! Command-line output (`--check`, lbctl's listings, invalid configuration at start) is not
//! logging and stays on stdout/stderr as before.
#![forbid(unsafe_code)]

mod format;
mod ratelimit;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub use format::{capture, Capture, Human};
pub use ratelimit::{RateLimit, RateLimited, Repeated};

/// Environment variable read for the filter before `RUST_LOG`.
pub const ENV_FILTER: &str = "LBD_LOG";
/// Environment variable that forces the output: `stderr` or `journald`.
pub const ENV_OUTPUT: &str = "LBD_LOG_OUTPUT";
/// The filter when none is given.
pub const DEFAULT_FILTER: &str = "info";
/// Libraries kept at `warn` when the filter is a bare level (their debug output is per frame).
const QUIET: &[&str] = &["h2", "hyper", "hyper_util", "tonic", "tower", "rustls", "tokio_util"];

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stderr,
    Journald,
}

/// The filter directive in force and where it came from (for error messages).
pub fn filter_spec(cli: Option<&str>, env: impl Fn(&str) -> Option<String>) -> (String, &'static str) {
    if let Some(s) = cli {
        return (s.to_owned(), "--log-level");
    }
    for var in [ENV_FILTER, "RUST_LOG"] {
        if let Some(s) = env(var).filter(|s| !s.trim().is_empty()) {
            return (s, if var == ENV_FILTER { ENV_FILTER } else { "RUST_LOG" });
        }
    }
    (DEFAULT_FILTER.to_owned(), "the default")
}

/// Parses a filter directive; a bare level (`debug`) keeps the chatty libraries at `warn`.
pub fn parse_filter(spec: &str) -> Result<EnvFilter, String> {
    let spec = spec.trim();
    let bare = !spec.contains(['=', ',']) && spec.parse::<tracing::level_filters::LevelFilter>().is_ok();
    let full = if bare { std::iter::once(spec.to_owned()).chain(QUIET.iter().map(|l| format!("{l}=warn"))).collect::<Vec<_>>().join(",") } else { spec.to_owned() };
    EnvFilter::builder().parse(&full).map_err(|e| format!("{spec:?}: {e}"))
}

/// Whether stderr is the journal: `JOURNAL_STREAM` is `DEV:INO` of the stream systemd
/// connected, and stderr is still that stream (not redirected by a wrapper).
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else { return false };
    let (Ok(dev), Ok(ino)) = (dev.trim().parse::<u64>(), ino.trim().parse::<u64>()) else { return false };
    stderr_dev_ino().is_ok_and(|(d, i)| d == dev && i == ino)
}

fn stderr_dev_ino() -> io::Result<(u64, u64)> {
    let fd = io::stderr().as_fd().try_clone_to_owned()?;
    let m = std::fs::File::from(fd).metadata()?;
    Ok((m.dev(), m.ino()))
}

/// The output chosen from the environment (see the module documentation).
pub fn choose_output(env: impl Fn(&str) -> Option<String>) -> Output {
    match env(ENV_OUTPUT).as_deref().map(str::trim) {
        Some("journald" | "journal") => Output::Journald,
        Some("stderr") => Output::Stderr,
        _ if stderr_is_journal(env("JOURNAL_STREAM").as_deref()) => Output::Journald,
        _ => Output::Stderr,
    }
}

/// Installs the global subscriber for program `prog` (`lbd`, `lb-slowpath`). `level` is the
/// `--log-level` argument. Returns the output in use; an invalid filter is an error naming
/// where it came from. The journal falling back to stderr is logged as a warning.
pub fn init(prog: &'static str, level: Option<&str>) -> Result<Output, String> {
    let env = |k: &str| std::env::var(k).ok();
    let (spec, from) = filter_spec(level, env);
    let filter = parse_filter(&spec).map_err(|e| format!("invalid log filter from {from}: {e}"))?;
    let mut output = choose_output(env);
    let mut fallback = None;
    let journald = if output == Output::Journald {
        match tracing_journald::layer() {
            Ok(l) => Some(l.with_syslog_identifier(prog.to_owned())),
            Err(e) => {
                fallback = Some(e);
                output = Output::Stderr;
                None
            }
        }
    } else {
        None
    };
    let stderr = (output == Output::Stderr).then(|| tracing_subscriber::fmt::layer().event_format(Human::new(prog)).with_writer(io::stderr));
    tracing_subscriber::registry().with(filter).with(journald).with(stderr).try_init().map_err(|e| format!("cannot install the logger: {e}"))?;
    if let Some(e) = fallback {
        tracing::warn!("cannot log to the journal ({e}); logging to stderr");
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_filter_comes_from_the_flag_then_lbd_log_then_rust_log() {
        assert_eq!(filter_spec(Some("debug"), env_of(&[("LBD_LOG", "warn")])), ("debug".into(), "--log-level"));
        assert_eq!(filter_spec(None, env_of(&[("LBD_LOG", "warn"), ("RUST_LOG", "trace")])), ("warn".into(), "LBD_LOG"));
        assert_eq!(filter_spec(None, env_of(&[("LBD_LOG", " "), ("RUST_LOG", "trace")])), ("trace".into(), "RUST_LOG"));
        assert_eq!(filter_spec(None, env_of(&[])), ("info".into(), "the default"));
    }

    #[test]
    fn a_bare_level_quiets_the_libraries_and_bad_directives_are_refused() {
        let f = parse_filter("debug").unwrap().to_string();
        assert!(f.contains("h2=warn") && f.contains("debug"), "{f}");
        let f = parse_filter("info,lbd::api=debug").unwrap().to_string();
        assert!(!f.contains("h2"), "{f}");
        assert!(parse_filter("lbd=loud").is_err());
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        let (dev, ino) = stderr_dev_ino().unwrap();
        assert!(stderr_is_journal(Some(&format!("{dev}:{ino}"))));
        assert!(!stderr_is_journal(Some(&format!("{dev}:{}", ino + 1))));
        assert_eq!(choose_output(env_of(&[("JOURNAL_STREAM", "1:2")])), Output::Stderr);
        assert_eq!(choose_output(env_of(&[("LBD_LOG_OUTPUT", "journald")])), Output::Journald);
        assert_eq!(choose_output(env_of(&[("LBD_LOG_OUTPUT", "stderr"), ("JOURNAL_STREAM", "1:2")])), Output::Stderr);
    }
}
