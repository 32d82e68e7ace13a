//! `lbd`: the director daemon. Poll-mode worker lcores own NIC queues; the director answers
//! ARP and ICMP echo for its own addresses and passes other traffic to the kernel through a
//! TAP exception interface per port.
#![forbid(unsafe_code)]

mod api;
mod cli;
mod config;
mod control;
mod daemon;
mod kernel_link;
mod metrics;
mod notify;
mod services;
mod shared;
mod stats;
mod sync;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.check {
        if let Err(e) = lb_logging::init("lbd", cli.log_level.as_deref()) {
            eprintln!("lbd: {e}");
            return ExitCode::from(2);
        }
    }
    let cfg = match config::Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lbd: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        match daemon::load_services(&cfg) {
            Ok(l) => {
                for n in &l.notes {
                    println!("note: {n}");
                }
                println!("services: {}", l.table.services().len());
            }
            Err(e) => {
                eprintln!("lbd: invalid configuration: services: {e}");
                return ExitCode::from(2);
            }
        }
        println!("lbd: configuration {} is valid", cli.config.display());
        println!("EAL arguments: {}", daemon::eal_builder(&cfg).args().join(" "));
        return ExitCode::SUCCESS;
    }
    match daemon::run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
