//! Command-line interface. The names here are stable: scripts and later issues build on them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use vigil_events::Kind;
use vigil_export::sink::Target;

/// Vigil: eBPF visibility and in-kernel protection for Linux hosts and Kubernetes nodes.
#[derive(Debug, Parser)]
#[command(name = "vigil", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the sensors and stream events until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Record a session (process table seed and raw kernel records) for offline replay.
    Record {
        /// The recording to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// YAML configuration file (see docs/config.md).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Check rule files, or replay a recording through them.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Report which hooks, helpers and sensors work on this kernel, and why not.
    Probe {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the service map (who talks to whom) of a running agent started with `--api`.
    Map {
        /// The agent's API address (`vigil run --api ADDR`).
        #[arg(long, value_name = "ADDR")]
        api: SocketAddr,
        /// Bearer token, when the agent's API has `api.tokens`.
        #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the map as JSON (as served at /api/v1/map).
        #[arg(long, conflicts_with = "dot")]
        json: bool,
        /// Print the map in Graphviz DOT.
        #[arg(long)]
        dot: bool,
    },
    /// Print the live events or alerts of a running agent started with `--api`.
    Events(EventsArgs),
    /// A live per-workload table (events, syscalls, latency, connections, drops, alerts) of a
    /// running agent started with `--api`.
    Top(TopArgs),
    /// Show or remove the enforcement pinned in the kernel (it outlives the agent).
    #[command(subcommand)]
    Enforce(EnforceCommand),
    /// Print the version and the BPF ABI version.
    Version,
}

/// `vigil events`: filters are comma-separated lists; a tenant token only ever sees its namespaces.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The agent's API address (`vigil run --api ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub api: SocketAddr,
    /// Bearer token, when the agent's API has `api.tokens`.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Alerts instead of events; without --follow, the recent alerts.
    #[arg(long)]
    pub alerts: bool,
    /// Keep printing as they happen.
    #[arg(long, short)]
    pub follow: bool,
    /// Stop after this many (events without --follow: 20).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Event kinds (exec, file, connection, ...).
    #[arg(long, value_delimiter = ',', conflicts_with = "alerts")]
    pub kind: Vec<String>,
    /// Alert rules (exact names).
    #[arg(long, value_delimiter = ',', requires = "alerts")]
    pub rule: Vec<String>,
    /// The least severe alert priority shown (e.g. warning).
    #[arg(long, requires = "alerts")]
    pub priority: Option<String>,
    /// Container ids (or their first 12 characters).
    #[arg(long, value_delimiter = ',')]
    pub container: Vec<String>,
    /// Kubernetes namespaces.
    #[arg(long, value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// Pod names.
    #[arg(long, value_delimiter = ',')]
    pub pod: Vec<String>,
    /// One JSON object per line, as the agent writes them.
    #[arg(long)]
    pub json: bool,
}

/// `vigil top`: rates are the deltas between two refreshes; latency is the agent's last window.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// The agent's API address (`vigil run --api ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub api: SocketAddr,
    /// Bearer token, when the agent's API has `api.tokens`.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    /// The column rows are sorted by (descending).
    #[arg(long, value_enum, default_value_t = crate::top::SortKey::Rate)]
    pub sort: crate::top::SortKey,
    /// The latency metric shown in P50/P99 (key `m` cycles them): syscall_file, syscall_net,
    /// syscall_other, runq, block_io, tcp_rtt, tcp_connect, dns, http.
    #[arg(long, value_name = "METRIC", default_value = "runq",
          value_parser = crate::top::parse_metric)]
    pub metric: vigil_anomaly::Metric,
    /// Print one table (two samples `--interval` apart, for the rates) and the recent alerts as
    /// plain text, and exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Subcommand)]
pub enum EnforceCommand {
    /// List the rules in force, their hooks and counters, read from the pins.
    Status {
        /// YAML configuration file (for `enforcement.pin_dir`).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every pinned rule: nothing is enforced any more (until an agent installs rules).
    Clear {
        /// YAML configuration file (for `enforcement.pin_dir`).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load rule files and list every rule as enabled, or disabled with the reason.
    Check {
        /// Rule files (YAML, Falco syntax); none: the built-in default ruleset.
        paths: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay a recording (`vigil record`) through rules and print the alerts as JSON lines.
    Test {
        /// Rule files; none: the built-in default ruleset.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// The recording.
        #[arg(long, value_name = "FILE")]
        events: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where to write events as JSON lines: `stdout` or `file:PATH` (repeatable).
    #[arg(long = "output", value_name = "TARGET", default_value = "stdout")]
    pub outputs: Vec<Target>,
    /// Event kinds to write: a comma list (exec,fork,exit,file,syscall,connection,udp,dns,
    /// http,drop), `all`, or `none` (alerts only).
    #[arg(long, value_name = "KINDS", default_value = "all", value_parser = parse_kinds)]
    pub events: KindSet,
    /// YAML configuration file (see docs/config.md).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Serve the HTTP API (/healthz, /readyz, /api/v1/map) on this address, e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    pub api: Option<SocketAddr>,
    /// Rule files (Falco syntax), repeatable; replaces the built-in default ruleset.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Also write a recording of the session (see `vigil record`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// The set of kinds selected with `--events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSet(pub Vec<Kind>);

impl KindSet {
    pub fn contains(&self, k: Kind) -> bool {
        self.0.contains(&k)
    }
}

fn parse_kinds(s: &str) -> Result<KindSet, String> {
    match s {
        "all" => {
            let all = Kind::ALL.iter().copied().filter(|k| k.writable());
            return Ok(KindSet(all.collect()));
        }
        "none" => return Ok(KindSet(Vec::new())),
        _ => {}
    }
    let mut kinds = Vec::new();
    for name in s.split(',').map(str::trim) {
        let k = Kind::from_name(name)
            .filter(|k| k.writable())
            .ok_or_else(|| {
                let known: Vec<_> = Kind::ALL
                    .iter()
                    .filter(|k| k.writable())
                    .map(|k| k.name())
                    .collect();
                format!(
                    "unknown event kind `{name}` (known: {}, or `all`)",
                    known.join(", ")
                )
            })?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    Ok(KindSet(kinds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            parse_kinds("exec, exit").unwrap().0,
            vec![Kind::Exec, Kind::Exit]
        );
        assert_eq!(parse_kinds("all").unwrap().0.len(), Kind::ALL.len() - 3);
        assert!(parse_kinds("capture").is_err());
        assert!(parse_kinds("exec,bogus").unwrap_err().contains("bogus"));
    }

    #[test]
    fn outputs() {
        let cli = Cli::try_parse_from([
            "vigil",
            "run",
            "--output",
            "stdout",
            "--output",
            "file:/tmp/x",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert_eq!(
            a.outputs,
            vec![Target::Stdout, Target::File("/tmp/x".into())]
        );
        assert!(Cli::try_parse_from(["vigil", "run", "--output", "file:"]).is_err());
    }
}
