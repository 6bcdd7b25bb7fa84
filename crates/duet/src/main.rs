//! duet: a DHCPv6 server (RFC 8415) that runs as an RFC 8156 failover pair.
//!
//! This binary is the IO shell around `duet-core`: configuration, sockets,
//! the lease store, the control API and the command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use duet::{ctl, demo, serve, tls};
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
    /// Create a CA and one certificate + key per server name for the
    /// partner link: DIR/ca.crt, DIR/ca.key, DIR/NAME.crt, DIR/NAME.key
    /// (PEM, keys mode 0600). Existing files are never replaced.
    Tls {
        #[command(subcommand)]
        what: TlsCommand,
    },
    /// The embedded default: a primary and a secondary on loopback with fresh
    /// certificates in a temporary directory, simulated clients, the primary
    /// killed and restarted, every step printed; exits 0 only if every client
    /// kept its lease and no binding was duplicated.
    Demo {
        /// Keep the temporary directory (configs, stores, logs) afterwards.
        #[arg(long)]
        keep: bool,
        /// Number of simulated clients.
        #[arg(long, default_value_t = 8)]
        clients: u32,
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
enum TlsCommand {
    /// Generate the CA and the per-server certificates.
    Init {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Server names, comma-separated (each becomes a certificate's DNS name).
        #[arg(long, value_delimiter = ',')]
        names: Vec<String>,
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
    /// Declare the partner of relationship NAME down (RFC 8156 §8.4). Only
    /// when the partner is really not running: both serving in PARTNER-DOWN
    /// can hand one address to two clients.
    PartnerDown {
        /// The relationship name.
        name: String,
    },
    /// Planned maintenance: hand relationship NAME's clients over to the
    /// partner. This server stops answering them, sends every pending
    /// update and waits until the partner has acknowledged all of them,
    /// then tells the partner, which serves everyone at once
    /// (partner-down). This server then stays out until it is restarted or
    /// resumed, and recovers from the partner. Needs normal with the partner
    /// connected, and a partner that supports it (duet does).
    Handover {
        /// The relationship name.
        name: String,
        /// Give up (and serve on) if the partner has not acknowledged
        /// everything by then, seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// After a handover: take part in relationship NAME again, recovering
    /// from the partner.
    Resume {
        /// The relationship name.
        name: String,
    },
    /// Put into service a server that has never reached its partner (a new
    /// deployment whose partner is not there yet, or a server rebuilt with
    /// an empty store whose partner is gone): recover → partner-down (RFC
    /// 8156 §8.3.2). If the store was lost, clients may still hold leases
    /// it granted that this server no longer knows (docs/operations.md).
    Commission {
        /// The relationship name.
        name: String,
        /// Required: you have checked that the partner is not running.
        #[arg(long)]
        confirm: bool,
    },
    /// The partner died while recovering and will not come back with its
    /// store: stop waiting for its recovery (no MCLT cap, the partner's
    /// prefixes after MCLT), entering partner-down if not yet.
    PartnerLost {
        /// The relationship name.
        name: String,
        /// Required: you have checked that the partner is not running.
        #[arg(long)]
        confirm: bool,
    },
}

/// Refuses a command that needs `--confirm` without it.
fn confirmed(confirm: bool, what: &str) -> anyhow::Result<()> {
    if confirm {
        Ok(())
    } else {
        anyhow::bail!(
            "{what} assumes the partner is not running; check that it is not, then run the command again with --confirm"
        )
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
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
        Command::Tls {
            what: TlsCommand::Init { out, names },
        } => tls::init(&out, &names).map(|()| {
            println!(
                "wrote {}/ca.crt, ca.key and a certificate + key for {}",
                out.display(),
                names.join(", ")
            );
        }),
        Command::Demo { keep, clients } => demo::run(keep, clients),
        Command::Ctl { config, what } => load_config(&config).and_then(|cfg| {
            let socket = cfg.control.socket.clone();
            match what {
                CtlCommand::Status { json } => ctl::status(&socket, json),
                CtlCommand::Leases { json } => ctl::leases(&socket, json),
                CtlCommand::PartnerDown { name } => ctl::partner_down(&socket, &name),
                CtlCommand::Handover { name, timeout } => {
                    ctl::command(&socket, &name, "handover", &format!("?timeout={timeout}"))
                }
                CtlCommand::Resume { name } => ctl::command(&socket, &name, "resume", ""),
                CtlCommand::Commission { name, confirm } => confirmed(confirm, "commission")
                    .and_then(|()| ctl::command(&socket, &name, "commission", "")),
                CtlCommand::PartnerLost { name, confirm } => confirmed(confirm, "partner-lost")
                    .and_then(|()| ctl::command(&socket, &name, "partner-lost", "")),
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
