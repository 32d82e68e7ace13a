//! `lbctl`: control of the lbd director over its gRPC API, with ipvsadm's habits.
#![forbid(unsafe_code)]

mod args;
mod json;
mod laddr;
mod names;
mod rules;
mod run;
mod sync;
mod table;
mod top;
// The option table in there is read by the tests and by packaging/gen (lbctl.8, completion).
#[cfg_attr(not(test), allow(dead_code))]
mod usage;
#[cfg(test)]
mod usage_tests;
mod vrrp;

use std::process::ExitCode;

use lb_api::Target;

use crate::args::Command;
use crate::run::CliError;
use crate::usage::HELP;

fn target(g: &args::Globals) -> Result<Target, args::UsageError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let token = g.token.clone().or_else(|| env("LBCTL_TOKEN"));
    if let Some(server) = g.server.clone().or_else(|| if g.socket.is_none() { env("LBCTL_SERVER") } else { None }) {
        let ca = g.ca.clone().or_else(|| env("LBCTL_CA")).map(Into::into);
        // `https://host:port` asks for TLS (and so needs the CA); `http://` or none for clear text
        // unless a CA is given.
        if server.starts_with("https://") && ca.is_none() {
            return Err(args::UsageError(format!("--server {server}: TLS needs --ca FILE (or LBCTL_CA), the CA that signed lbd's api_tls_cert")));
        }
        let addr = server.strip_prefix("https://").or_else(|| server.strip_prefix("http://")).unwrap_or(&server).to_owned();
        return Ok(Target::Tcp { addr, token, ca });
    }
    Ok(Target::Unix(g.socket.clone().or_else(|| env("LBCTL_SOCKET")).unwrap_or_else(|| lb_api::DEFAULT_SOCKET.into()).into()))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match args::parse(&argv) {
        Err(e) => Err(CliError::Usage(e)),
        Ok((_, Command::Help)) => run::emit(HELP),
        Ok((_, Command::Version)) => run::emit(&format!("lbctl {}\n", env!("CARGO_PKG_VERSION"))),
        Ok((g, cmd)) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Err(e) => Err(CliError::Io(format!("cannot start the runtime: {e}"))),
            Ok(rt) => rt.block_on(async {
                let mut client = lb_api::connect(&target(&g)?).await?;
                run::run(&g, cmd, &mut client).await
            }),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            if code != 0 {
                eprintln!("lbctl: {e}");
                if matches!(e, CliError::Usage(_)) {
                    eprintln!("Try 'lbctl --help'.");
                }
            }
            ExitCode::from(code)
        }
    }
}
