//! Rules in the agent: which files, what this node can observe, loading with the last good set
//! kept on error, and the change check that drives reloads.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use vigil_bpf::SensorReport;
use vigil_enrich::UserDb;
use vigil_rules::{LoadOptions, NameLookup, RuleFile, RuleSet};

/// The built-in default ruleset (rules/vigil-default.yaml), used when no `--rules` is given.
pub const DEFAULT_RULES: &str = include_str!("../../../rules/vigil-default.yaml");
const DEFAULT_NAME: &str = "<built-in>/vigil-default.yaml";

/// Where rules come from, and when they were last read.
#[derive(Debug)]
pub struct RuleSource {
    paths: Vec<PathBuf>,
    mtimes: Vec<Option<SystemTime>>,
    observable: HashSet<String>,
}

impl RuleSource {
    pub fn new(paths: Vec<PathBuf>, observable: HashSet<String>) -> Self {
        Self {
            mtimes: Vec::new(),
            paths,
            observable,
        }
    }

    /// Reads and compiles every file. On error nothing changes: the caller keeps its rules.
    pub fn load(&mut self) -> Result<RuleSet> {
        // Remembered even when the load fails, so a broken file is reported once, not every check.
        self.mtimes = self.current_mtimes();
        let files = read_files(&self.paths)?;
        let observable = self.observable.clone();
        vigil_rules::load(&files, &LoadOptions { observable }).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// True when a rule file was modified, created or removed since the last load.
    pub fn changed(&self) -> bool {
        !self.paths.is_empty() && self.current_mtimes() != self.mtimes
    }

    fn current_mtimes(&self) -> Vec<Option<SystemTime>> {
        self.paths
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The files' text; the built-in ruleset when `paths` is empty.
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<RuleFile>> {
    if paths.is_empty() {
        return Ok(vec![RuleFile {
            name: DEFAULT_NAME.into(),
            text: DEFAULT_RULES.into(),
        }]);
    }
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading rules {}", p.display()))?;
            Ok(RuleFile {
                name: p.display().to_string(),
                text,
            })
        })
        .collect()
}

/// `evt.type` names the loaded programs can produce; `dns`, `http`: those payloads are captured.
pub fn observable(reports: &[SensorReport], dns: bool, http: bool) -> HashSet<String> {
    let mut out = HashSet::new();
    for r in reports {
        for p in &r.programs {
            let names: &[&str] = match p.as_str() {
                "vigil_tcp_state" => &["connect"],
                "vigil_tcp_destroy" => &["close"],
                "vigil_accept" | "vigil_accept4" => &["accept"],
                "vigil_skb_egress" | "vigil_skb_ingress" => match (dns, http) {
                    (true, true) => &["udp_flow", "dns", "http"],
                    (true, false) => &["udp_flow", "dns"],
                    (false, _) => &["udp_flow"],
                },
                "vigil_kfree_skb" => &["packet_drop"],
                _ => &[],
            };
            if !names.is_empty() {
                out.extend(names.iter().map(|n| n.to_string()));
                continue;
            }
            let name = match p.as_str() {
                "vigil_exec" => "execve",
                "vigil_fork" => "clone",
                "vigil_exit" => "procexit",
                "vigil_sys_umount" => "umount2",
                "vigil_sys_enter_execveat" => continue,
                p => match p
                    .strip_prefix("vigil_file_")
                    .or_else(|| p.strip_prefix("vigil_sys_"))
                {
                    Some(s) => s,
                    None => continue,
                },
            };
            out.insert(name.to_string());
        }
    }
    out
}

/// Names for one rule evaluation: users and groups from the host's files, IPs from DNS answers.
#[derive(Debug)]
pub struct EvalNames<'a> {
    pub users: &'a Names,
    pub ips: &'a vigil_net::names::NameCache,
}

impl NameLookup for EvalNames<'_> {
    fn user(&self, uid: u32) -> Option<&str> {
        self.users.user(uid)
    }

    fn group(&self, gid: u32) -> Option<&str> {
        self.users.group(gid)
    }

    fn ip_name(&self, ip: &std::net::IpAddr, time_ns: u64) -> Option<&str> {
        self.ips.lookup(ip, time_ns)
    }
}

/// User and group names for rules, from the host's files.
#[derive(Debug)]
pub struct Names(pub UserDb);

impl NameLookup for Names {
    fn user(&self, uid: u32) -> Option<&str> {
        self.0.user(uid)
    }

    fn group(&self, gid: u32) -> Option<&str> {
        self.0.group(gid)
    }
}
