//! `lb-gen-docs OUTDIR`: writes what the Debian package ships beside the binaries, generated
//! from the sources so that none of it can drift from the programs:
//!
//! - `man8/lbd.8`, `man8/lb-slowpath.8`: clap_mangen from the clap definitions (the files
//!   below are the programs' own `cli.rs`, included as they are);
//! - `man5/lbd.toml.5`: the configuration block of lbd's documentation (what `lbd --help`
//!   prints);
//! - `man8/lbctl.8`: lbctl's usage text (what `lbctl --help` prints);
//! - `completions/lbctl`: lbctl's bash completion, from its option table (tested against its
//!   parser in ctl/lbctl/src/usage_tests.rs).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;

#[allow(dead_code)]
#[path = "../../../fastpath/lbd/src/cli.rs"]
mod lbd_cli;
#[allow(dead_code)]
#[path = "../../../ctl/lbctl/src/usage.rs"]
mod lbctl_usage;
#[allow(dead_code)]
#[path = "../../../slowpath/src/cli.rs"]
mod slowpath_cli;

mod roff_text;

use roff_text::{escape, preformatted};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where lbd's documentation starts and ends its configuration block.
const CONFIG_START: &str = "Configuration (TOML), with defaults:";
const CONFIG_END: &str = "Signals:";

/// lbd's long help cut in three: the introduction, the configuration block, the rest.
fn lbd_doc_parts() -> Result<(String, String, String), String> {
    let cmd = lbd_cli::Cli::command();
    let text = cmd.get_long_about().ok_or("lbd's command has no long help")?.to_string();
    let start = text.find(CONFIG_START).ok_or_else(|| format!("lbd's help lost its {CONFIG_START:?} line (fastpath/lbd/src/cli.rs)"))?;
    let end = text[start..].find(CONFIG_END).map(|i| start + i).ok_or_else(|| format!("lbd's help lost its {CONFIG_END:?} paragraph after the configuration"))?;
    let config = text[start + CONFIG_START.len()..end].trim_matches('\n');
    // The block is indented by two spaces in the doc comment; the page indents it itself.
    let config: Vec<&str> = config.lines().map(|l| l.strip_prefix("  ").unwrap_or(l)).collect();
    Ok((text[..start].trim().to_owned(), config.join("\n"), text[end..].trim().to_owned()))
}

fn see_also(pages: &[&str]) -> String {
    format!(".SH \"SEE ALSO\"\n{}\n", pages.iter().map(|p| escape(p)).collect::<Vec<_>>().join(",\n"))
}

fn files_section(items: &[(&str, &str)]) -> String {
    let mut s = String::from(".SH FILES\n");
    for (path, what) in items {
        s.push_str(&format!(".TP\n.I {}\n{}\n", escape(path), escape(what)));
    }
    s
}

fn render(man: &clap_mangen::Man) -> Result<String, String> {
    let mut buf = Vec::new();
    man.render(&mut buf).map_err(|e| e.to_string())?;
    String::from_utf8(buf).map_err(|e| e.to_string())
}

/// lbd.8: clap_mangen with the configuration block replaced by a pointer to lbd.toml(5).
fn lbd_8() -> Result<String, String> {
    let (intro, _, rest) = lbd_doc_parts()?;
    // Paragraphs of their own in the page (one line each in the doc comment).
    let rest = rest.replace("\nUnder systemd", "\n\nUnder systemd").replace("\nExit codes:", "\n\nExit codes:");
    let about = format!(
        "{intro}\n\nThe configuration (EAL, data ports, workers, the control API) is a TOML file, {} unless --config says otherwise; every setting is described in lbd.toml(5). Virtual services come from the keepalived.conf it names (services).\n\n{rest}",
        lbd_cli::DEFAULT_CONFIG
    );
    let cmd = lbd_cli::Cli::command().long_about(about);
    let mut page = render(&clap_mangen::Man::new(cmd).section("8").manual("System Administration").source(format!("lbd {VERSION}")))?;
    page.push_str(&files_section(&[
        (lbd_cli::DEFAULT_CONFIG, "The daemon's configuration (lbd.toml(5))."),
        ("/etc/lbd/keepalived.conf", "Virtual services, real servers, health checks and VRRP, in keepalived's syntax (named by services in lbd.toml)."),
        ("/run/lbd/lbd.sock", "The control API (gRPC lb.v1) used by lbctl(8) and lb-slowpath(8) (api_socket)."),
        ("/lib/systemd/system/lbd.service", "The systemd unit (Type=notify; systemctl reload lbd sends SIGHUP)."),
    ]));
    page.push_str(&see_also(&["lbd.toml(5)", "lb-slowpath(8)", "lbctl(8)", "keepalived.conf(5)", "ipvsadm(8)"]));
    Ok(page)
}

/// lbd.toml.5: the configuration block of lbd's documentation, as it stands.
fn lbd_toml_5() -> Result<String, String> {
    let (_, config, _) = lbd_doc_parts()?;
    let mut s = format!(".TH LBD.TOML 5 \"\" \"lbd {VERSION}\" \"File Formats\"\n");
    s.push_str(".SH NAME\nlbd.toml \\- configuration of the lbd load\\-balancer director\n");
    s.push_str(&format!(".SH SYNOPSIS\n{}\n", escape(lbd_cli::DEFAULT_CONFIG)));
    s.push_str(".SH DESCRIPTION\n");
    s.push_str(&escape(
        "lbd(8) reads its own settings from this TOML file: the DPDK EAL, the data ports, the worker lcores, session timeouts and sync, the SYN proxy and the control API. Virtual services, real servers and health checks are not here: they come from the keepalived.conf named by services (keepalived's syntax). lb-slowpath(8) reads services, api_socket and the ports from the same file.",
    ));
    s.push_str("\n.PP\n");
    s.push_str(&escape("Validate a file with lbd --check --config FILE: it prints the EAL arguments the file produces and the number of services, and exits 2 naming the file and field of the first error. Unknown keys are errors."));
    s.push_str("\n.SH SETTINGS\n");
    s.push_str(&escape("Every key with its default (or an example value for optional keys) and what it means. Keys before the first [section] header are top-level; [[port]] is repeated, one section per data port."));
    s.push('\n');
    s.push_str(&preformatted(&config));
    s.push_str(".SH RELOADING\n");
    s.push_str(&escape("SIGHUP (systemctl reload lbd, lbctl reload) re-reads the services file and applies the difference; lb-slowpath follows within a second. A change to lbd.toml itself takes effect at the next start (systemctl restart lbd)."));
    s.push('\n');
    s.push_str(&see_also(&["lbd(8)", "lb-slowpath(8)", "lbctl(8)", "keepalived.conf(5)"]));
    Ok(s)
}

/// lb-slowpath.8: clap_mangen as it is.
fn lb_slowpath_8() -> Result<String, String> {
    let cmd = slowpath_cli::Cli::command();
    let mut page = render(&clap_mangen::Man::new(cmd).section("8").manual("System Administration").source(format!("lbd {VERSION}")))?;
    page.push_str(&files_section(&[
        (slowpath_cli::DEFAULT_CONFIG, "lbd's configuration: services, api_socket and the ports are read from it."),
        ("/lib/systemd/system/lb-slowpath.service", "The systemd unit, ordered after lbd.service."),
    ]));
    page.push_str(&see_also(&["lbd(8)", "lbd.toml(5)", "lbctl(8)", "keepalived.conf(5)", "keepalived(8)"]));
    Ok(page)
}

/// lbctl.8: lbctl's usage text.
fn lbctl_8() -> String {
    let help = lbctl_usage::HELP;
    let (first, body) = help.split_once('\n').unwrap_or((help, ""));
    let about = first.split_once(" - ").map_or(first, |(_, a)| a);
    let mut s = format!(".TH LBCTL 8 \"\" \"lbd {VERSION}\" \"System Administration\"\n");
    s.push_str(&format!(".SH NAME\nlbctl \\- {}\n", escape(about)));
    s.push_str(".SH SYNOPSIS\n.B lbctl\n[\\fIglobal options\\fR] \\fIipvsadm\\-command\\fR [\\fIoptions\\fR]\n.br\n.B lbctl\n[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIverb\\fR] [\\fIarguments\\fR]\n");
    s.push_str(".SH DESCRIPTION\n");
    s.push_str(&escape("lbctl drives a running lbd(8) over its gRPC API: ipvsadm's spellings and layouts (-Ln, -A, -a, -S, -R, --set, --start-daemon) and noun-verb commands. What follows is lbctl --help."));
    s.push('\n');
    s.push_str(&preformatted(body.trim_matches('\n')));
    s.push_str(".SH ENVIRONMENT\n");
    for (var, what) in [
        ("LBCTL_SOCKET", "lbd's API socket when --socket is not given."),
        ("LBCTL_SERVER", "lbd's TCP API (host:port) when neither --server nor --socket is given."),
        ("LBCTL_TOKEN", "The bearer token for the TCP API when --token is not given."),
    ] {
        s.push_str(&format!(".TP\n.B {var}\n{}\n", escape(what)));
    }
    s.push_str(&files_section(&[("/run/lbd/lbd.sock", "lbd's API socket (api_socket in lbd.toml).")]));
    s.push_str(&see_also(&["lbd(8)", "lbd.toml(5)", "lb-slowpath(8)", "ipvsadm(8)"]));
    s
}

/// Every generated file, by path relative to the output directory.
fn files() -> Result<Vec<(&'static str, String)>, String> {
    Ok(vec![
        ("man8/lbd.8", lbd_8()?),
        ("man8/lb-slowpath.8", lb_slowpath_8()?),
        ("man8/lbctl.8", lbctl_8()),
        ("man5/lbd.toml.5", lbd_toml_5()?),
        ("completions/lbctl", lbctl_usage::bash_completion()),
    ])
}

fn write_all(out: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for (rel, text) in files()? {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = &args[..] else {
        eprintln!("usage: lb-gen-docs OUTDIR   (writes man8/, man5/ and completions/ under OUTDIR)");
        return ExitCode::from(2);
    };
    match write_all(Path::new(out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lb-gen-docs: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests;
