//! `vigil rules check` and `vigil rules test`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;
use vigil_enrich::{ProcessTable, UserDb};
use vigil_events::{decode, Event};
use vigil_export::alert::render_alert;
use vigil_export::json::{Clock, Context};
use vigil_rules::{EvalContext, LoadOptions, RuleSet};

use crate::cli::RulesCommand;
use crate::record::{self, Frame};
use crate::rules::{read_files, Names};

pub fn rules(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Check { paths, json } => check(&paths, json),
        RulesCommand::Test { rules, events } => test(&rules, &events),
    }
}

/// What this node observes: from a real load of the sensors when possible (root), else every
/// event type Vigil knows, with a note.
fn observable() -> std::collections::HashSet<String> {
    vigil_bpf::mounts::ensure();
    let previous = vigil_bpf::quiet_libbpf();
    let sensors = vigil_bpf::Sensors::load(&vigil_bpf::SensorConfig::default());
    vigil_bpf::restore_libbpf(previous);
    match sensors {
        Ok(s) => crate::rules::observable(s.reports(), true, true),
        Err(e) => {
            eprintln!("vigil: note: sensors could not be loaded ({e}); assuming every event type is observable");
            vigil_rules::all_event_types()
                .iter()
                .map(|s| s.to_string())
                .collect()
        }
    }
}

fn load(paths: &[PathBuf]) -> Result<RuleSet> {
    let files = read_files(paths)?;
    vigil_rules::load(
        &files,
        &LoadOptions {
            observable: observable(),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

fn check(paths: &[PathBuf], as_json: bool) -> Result<()> {
    let set = load(paths)?;
    if as_json {
        let rules: Vec<_> = set
            .rules()
            .iter()
            .map(|r| {
                json!({"name": r.name, "file": r.file, "line": r.line, "enabled": r.enabled,
                       "disabled_reason": r.disabled_reason, "priority": r.priority, "tags": r.tags,
                       "warnings": r.warnings,
                       "enforcement": r.enforcement.map(|(action, mode, hook)|
                           json!({"action": action, "mode": mode, "hook": hook}))})
            })
            .collect();
        let out =
            json!({"rules": rules, "enabled": set.enabled_count(), "warnings": set.warnings()});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for r in set.rules() {
        match &r.disabled_reason {
            None if r.enabled => match r.enforcement {
                Some((action, mode, hook)) => println!(
                    "enabled   {}:{}  {}  (enforced in kernel: {action} on {hook}, {mode})",
                    r.file, r.line, r.name
                ),
                None => println!("enabled   {}:{}  {}", r.file, r.line, r.name),
            },
            None => println!(
                "disabled  {}:{}  {}  (enabled: false)",
                r.file, r.line, r.name
            ),
            Some(why) => println!("disabled  {}:{}  {}  ({why})", r.file, r.line, r.name),
        }
        for w in &r.warnings {
            println!("          warning: {w}");
        }
    }
    for w in set.warnings() {
        println!("warning: {w}");
    }
    println!(
        "{} of {} rules enabled",
        set.enabled_count(),
        set.rules().len()
    );
    Ok(())
}

/// Replays a recording: the table is seeded and kept as the agent would, then every event is
/// evaluated; alerts are printed as the agent writes them.
fn test(rule_paths: &[PathBuf], recording: &Path) -> Result<()> {
    let files = read_files(rule_paths)?;
    let all = vigil_rules::all_event_types()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let set = vigil_rules::load(&files, &LoadOptions { observable: all })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let names = Names(UserDb::load(Path::new("/")));
    let mut table = ProcessTable::new(1 << 20);
    let clock = Clock::now();
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut alerts, mut line, mut id, mut count) = (Vec::new(), Vec::new(), 0u64, 0usize);
    let mut out = std::io::stdout().lock();
    for frame in record::read(recording)? {
        let rec = match frame? {
            Frame::Seed(p) => {
                table.insert(*p);
                continue;
            }
            Frame::Record(r) => r,
        };
        let Ok(event) = decode(&rec) else { continue };
        id += 1;
        let is_exit = matches!(event, Event::Exit(_));
        if !is_exit {
            table.apply(&event);
        }
        let proc = table.get(event.header().tgid);
        let ancestry = table.ancestry(proc.map_or(0, |p| p.ppid), 8);
        alerts.clear();
        set.evaluate(
            &EvalContext {
                event: &event,
                proc,
                ancestry: &ancestry,
                names: &names,
                container: None,
                pod: None,
            },
            &mut alerts,
        );
        let ctx = Context {
            host: &host,
            clock: &clock,
            id,
            ip_names: &|_| None,
            container: None,
            pod: None,
        };
        for a in &alerts {
            line.clear();
            render_alert(a, &event, "none", &ctx, &mut line);
            std::io::Write::write_all(&mut out, &line)?;
            count += 1;
        }
        if is_exit {
            table.apply(&event);
        }
    }
    eprintln!("vigil: {id} events replayed, {count} alerts");
    Ok(())
}
