//! `lb-slowpath`: health checks for lbd's real servers, with keepalived's semantics.
#![forbid(unsafe_code)]

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// What lb-slowpath takes from lbd.toml: the services file, the API socket, the data ports.
type FromLbdToml = (Option<PathBuf>, Option<PathBuf>, Vec<lb_slowpath::netif::Port>);

/// Where lbd's services file and API socket are, and its ports, from lbd.toml (only those keys
/// are read; lbd itself validates the rest).
fn from_lbd_toml(path: &Path) -> Result<FromLbdToml, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let v: toml::Table = text.parse().map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.to_string().lines().next().unwrap_or_default()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let get = |key: &str| -> Result<Option<PathBuf>, String> {
        match v.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(dir.join(s))),
            Some(other) => Err(format!("{}: {key}: expected a path string, found {}", path.display(), other.type_str())),
        }
    };
    Ok((get("services")?, get("api_socket")?, lb_slowpath::netif::ports_from_lbd_toml(&v)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let toml = if cli.services.is_some() && cli.socket.is_some() && !cli.config.exists() {
        Ok((None, None, Vec::new()))
    } else {
        from_lbd_toml(&cli.config)
    };
    let (services, socket, ports) = match toml {
        Ok(x) => x,
        Err(e) => {
            eprintln!("lb-slowpath: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(services) = cli.services.or(services) else {
        eprintln!("lb-slowpath: no services file: set `services` in {} or give --services", cli.config.display());
        return ExitCode::from(2);
    };
    let socket = cli.socket.or(socket).unwrap_or_else(|| PathBuf::from(lb_api::DEFAULT_SOCKET));
    let conf = match kaconf::load(&services) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lb-slowpath: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        let checks = conf.virtual_servers.iter().flat_map(|v| &v.real_servers).filter(|r| r.check.is_some()).count();
        println!("lb-slowpath: {}: valid; {checks} real server(s) with a health check; lbd at {}", services.display(), socket.display());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = lb_logging::init("lb-slowpath", cli.log_level.as_deref()) {
        eprintln!("lb-slowpath: {e}");
        return ExitCode::from(2);
    }
    // Every check in flight holds a socket: 10,000 checks need more descriptors than the usual
    // soft limit of 1024. Raise it to the hard limit (as nginx and keepalived do).
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 4096 => tracing::warn!("only {n} file descriptors; many concurrent checks will fail (raise LimitNOFILE)"),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the file-descriptor limit: {e}"),
    }
    let seed = cli.seed.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(0)));
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let opts = lb_slowpath::run::Options { socket, seed, ports };
    match rt.block_on(lb_slowpath::run::run(opts, conf)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
