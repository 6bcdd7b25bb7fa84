//! duet: a DHCPv6 server (RFC 8415) that runs as an RFC 8156 failover pair.
//!
//! This binary is the IO shell around `duet-core`: configuration, sockets,
//! the lease store, the control API and the command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use duet::{ctl, serve};
use duet_core::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// duet — a DHCPv6 server that runs as a failover pair (RFC 8415, RFC 8156).
#[derive(Debug, Parser)]
#[command(name = "duet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a server in the foreground (logs to stderr; SIGTERM/SIGINT stop it
    /// cleanly after the in-flight batch is durable and answered).
    Serve {
        /// The configuration file (TOML, see INTERFACE.md).
        #[arg(long, short)]
        config: PathBuf,
        /// Log filter, e.g. `info`, `debug`, `duet=debug` (default: $RUST_LOG or info).
        #[arg(long)]
        log: Option<String>,
    },
    /// Validate a configuration without starting: exit 0, or exit 1 printing
    /// every error with its key path.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Ask a running server (through its control socket, found from the
    /// same configuration file).
    Ctl {
        /// The server's configuration file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(subcommand)]
        what: CtlCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// This server and each failover relationship.
    Status {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every binding in the lease database.
    Leases {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|errs| anyhow::anyhow!("{} has errors:\n{errs}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, log } => {
            init_logging(log.as_deref());
            load_config(&config).and_then(serve::run)
        }
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} subnet(s), {} failover relationship(s))",
                    file.display(),
                    cfg.subnets.len(),
                    cfg.failover.len()
                );
                Ok(())
            }
            Err(errs) => {
                for e in &errs.0 {
                    println!("{e}");
                }
                return ExitCode::from(1);
            }
        },
        Command::Ctl { config, what } => load_config(&config).and_then(|cfg| {
            let socket = cfg.control.socket.clone();
            match what {
                CtlCommand::Status { json } => ctl::status(&socket, json),
                CtlCommand::Leases { json } => ctl::leases(&socket, json),
            }
            .with_context(|| format!("duet ctl (control socket {})", socket.display()))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet: {e:#}");
            ExitCode::from(2)
        }
    }
}
