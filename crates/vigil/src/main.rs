//! `vigil`: the agent binary. Glue only: CLI, config, wiring of the crates.

mod cli;
mod client;
mod config;
mod enforcement;
mod events_cmd;
mod map_cmd;
mod metrics;
mod network;
mod pipeline;
mod probe_cmd;
mod record;
mod rules;
mod rules_cmd;
mod run;
mod scopes;
mod stats;
mod top;
mod workloads;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Probe { json } => probe_cmd::probe(json),
        cli::Command::Record { out, config } => run::run(cli::RunArgs {
            outputs: Vec::new(),
            events: cli::KindSet(Vec::new()),
            config,
            api: None,
            rules: Vec::new(),
            record: Some(out),
        }),
        cli::Command::Rules(cmd) => rules_cmd::rules(cmd),
        cli::Command::Map {
            api,
            token,
            json,
            dot,
        } => map_cmd::map(&client::Client::new(api, token), json, dot),
        cli::Command::Events(args) => events_cmd::events(args),
        cli::Command::Top(args) => top::top(args),
        cli::Command::Enforce(cmd) => match cmd {
            cli::EnforceCommand::Status { config, json } => config::Config::load(config.as_deref())
                .and_then(|c| enforcement::status(&c.enforcement.pin_dir, json)),
            cli::EnforceCommand::Clear { config } => config::Config::load(config.as_deref())
                .and_then(|c| enforcement::clear(&c.enforcement.pin_dir)),
        },
        cli::Command::Version => {
            println!(
                "vigil {} (BPF ABI {})",
                env!("CARGO_PKG_VERSION"),
                vigil_abi::VIGIL_ABI_VERSION
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
