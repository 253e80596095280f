//! Loading a rule set and evaluating it on events.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use vigil_events::Event;

use crate::collect::{self, collect, RuleDef};
use crate::compile::{Compiler, Failure};
use crate::context::EvalContext;
use crate::enforce::{Action, Hook, Mode, Plan};
use crate::error::{ErrorKind, LoadError};
use crate::eval::Node;
use crate::extract::Ev;
use crate::index::{place, Placement};
use crate::output::Template;
use crate::priority::Priority;
use crate::{document, evtype};

/// A rules file's text; the caller reads it (this crate does no I/O).
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// Shown in errors and warnings, e.g. the path.
    pub name: String,
    pub text: String,
}

/// What this node can see.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The `evt.type` names this node's running sensors produce (a subset of
    /// [`crate::all_event_types`]; an alias such as `accept4` counts as what it stands for).
    /// Rules that only match other types are disabled.
    pub observable: HashSet<String>,
}

/// A rule as loaded, enabled or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub enabled: bool,
    /// Why the rule does not run, when it does not.
    pub disabled_reason: Option<String>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub desc: String,
    pub warnings: Vec<String>,
    /// Set for an enabled rule with an `action`: the kernel enforces it (or audits it, in
    /// [`Mode::Audit`]) and reports its matches; [`RuleSet::evaluate`] skips it. Its plan is in
    /// [`RuleSet::enforcement`].
    pub enforcement: Option<(Action, Mode, Hook)>,
}

/// A rule that matched an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub rule: String,
    pub priority: Priority,
    /// The rule's output with its fields filled in.
    pub output: String,
    /// Every field the output names, `null` when missing for this event.
    pub output_fields: BTreeMap<String, serde_json::Value>,
    pub tags: Vec<String>,
    /// Falco's event source; always `syscall`.
    pub source: &'static str,
}

#[derive(Debug)]
struct Compiled {
    cond: Node,
    output: Template,
    /// Index into `RuleSet::infos`.
    info: usize,
}

/// Loaded rules, indexed by event type, and the plans of the rules the kernel enforces.
#[derive(Debug)]
pub struct RuleSet {
    infos: Vec<RuleInfo>,
    compiled: Vec<Compiled>,
    /// Type id → indices into `compiled`, in file order.
    by_type: Vec<Vec<usize>>,
    plans: Vec<Plan>,
    /// Per plan: its output template and its index into `infos`.
    plan_outputs: Vec<(Template, usize)>,
    warnings: Vec<String>,
}

/// Loads `files` in order (later files append to and override earlier ones). Any hard error in
/// any file fails the whole load.
pub fn load(files: &[RuleFile], opts: &LoadOptions) -> Result<RuleSet, LoadError> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut items = Vec::new();
    for (i, f) in files.iter().enumerate() {
        items.extend(document::read(
            i,
            &f.name,
            &f.text,
            &mut errors,
            &mut warnings,
        ));
    }
    if !errors.is_empty() {
        return Err(LoadError { errors });
    }
    let defs = collect(files, items, &mut errors);
    if !errors.is_empty() {
        return Err(LoadError { errors });
    }
    let compiler = Compiler::new(files, &defs, &mut errors);
    let mut set = RuleSet {
        infos: Vec::new(),
        compiled: Vec::new(),
        by_type: vec![Vec::new(); evtype::id_count()],
        plans: Vec::new(),
        plan_outputs: Vec::new(),
        warnings,
    };
    for r in &defs.rules {
        let mut info = info(files, r);
        let source = r.source.as_deref().unwrap_or("syscall");
        if let Some(action) = r.action {
            let output = Template::new(&r.output, &mut info.warnings);
            if source != "syscall" {
                let reason = format!("source {source} cannot be enforced: only syscall rules can");
                let kind = ErrorKind::Enforce {
                    part: None,
                    reason,
                    column: None,
                };
                errors.push(collect::at(
                    files,
                    r.span,
                    format!("rule '{}'", r.name),
                    kind,
                ));
            } else {
                match compiler.enforcement(r, action) {
                    Ok(plan) => {
                        if info.enabled {
                            info.enforcement = Some((plan.action, plan.mode, plan.hook));
                            info.warnings.extend(broad(&plan));
                            set.plans.push(plan);
                            set.plan_outputs.push((output, set.infos.len()));
                        }
                    }
                    Err(Failure::Hard(d)) => errors.push(*d),
                    Err(Failure::Reported) => {}
                    // Lowering reports every problem as a hard error.
                    Err(Failure::Soft(reason)) => {
                        let kind = ErrorKind::Enforce {
                            part: None,
                            reason,
                            column: None,
                        };
                        errors.push(collect::at(
                            files,
                            r.span,
                            format!("rule '{}'", r.name),
                            kind,
                        ));
                    }
                }
            }
            let at = format!("{}:{}: rule '{}'", info.file, info.line, info.name);
            set.warnings
                .extend(info.warnings.iter().map(|w| format!("{at}: {w}")));
            set.infos.push(info);
            continue;
        }
        if r.mode != Mode::Enforce {
            info.warnings
                .push("'mode' has no effect on a rule without 'action'".into());
        }
        if source != "syscall" {
            disable(&mut info, format!("source {source} is not supported"));
            set.infos.push(info);
            continue;
        }
        let output = Template::new(&r.output, &mut info.warnings);
        match compiler.rule(r) {
            Ok(cond) => match place(&cond, &opts.observable) {
                Placement::Disabled(reason) => disable(&mut info, reason),
                Placement::Ids(ids, warning) => {
                    info.warnings.extend(warning);
                    if info.enabled {
                        for id in ids {
                            set.by_type[id].push(set.compiled.len());
                        }
                        set.compiled.push(Compiled {
                            cond,
                            output,
                            info: set.infos.len(),
                        });
                    }
                }
            },
            Err(Failure::Hard(d)) => errors.push(*d),
            Err(Failure::Reported) => {}
            Err(Failure::Soft(reason)) => disable(&mut info, reason),
        }
        let at = format!("{}:{}: rule '{}'", info.file, info.line, info.name);
        set.warnings
            .extend(info.warnings.iter().map(|w| format!("{at}: {w}")));
        set.infos.push(info);
    }
    if !errors.is_empty() {
        return Err(LoadError { errors });
    }
    Ok(set)
}

fn info(files: &[crate::RuleFile], r: &RuleDef) -> RuleInfo {
    RuleInfo {
        name: r.name.clone(),
        file: files[r.span.file].name.clone(),
        line: r.span.lines.0,
        enabled: r.enabled,
        disabled_reason: (!r.enabled).then(|| "disabled in the rules file (enabled: false)".into()),
        priority: r.priority,
        tags: r.tags.clone(),
        desc: r.desc.clone(),
        warnings: Vec::new(),
        enforcement: None,
    }
}

/// A warning for a network plan that applies to every call of every process.
fn broad(plan: &Plan) -> Option<String> {
    let unscoped = plan.nets.is_empty()
        && plan.ports.is_empty()
        && plan.uids.is_empty()
        && plan.exe.is_empty()
        && plan.paths.is_empty();
    unscoped.then(|| {
        format!(
            "action {} applies to every {} of every process",
            plan.action,
            plan.hook.rule_kind()
        )
    })
}

/// Disables a rule; an explicit `enabled: false` stays the reason shown.
fn disable(info: &mut RuleInfo, reason: String) {
    if info.enabled {
        info.enabled = false;
        info.disabled_reason = Some(reason);
    }
}

impl RuleSet {
    /// Every rule, enabled or not, in file order.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.infos
    }

    /// Rules that run: evaluated in user space or enforced in the kernel.
    pub fn enabled_count(&self) -> usize {
        self.compiled.len() + self.plans.len()
    }

    /// The plans of the enabled rules with an `action`, in file order. A plan's index here
    /// identifies it for this load. These rules are enforced in the kernel only.
    pub fn enforcement(&self) -> &[Plan] {
        &self.plans
    }

    /// The alert for a match of plan `plan` (an index into [`Self::enforcement`]) that the
    /// kernel reported, with the rule's output rendered on `ctx` (the event the agent built
    /// from the kernel's report). `None` for an index out of range.
    pub fn enforcement_alert(&self, plan: usize, ctx: &EvalContext<'_>) -> Option<Alert> {
        let (output, info) = self.plan_outputs.get(plan)?;
        let info = &self.infos[*info];
        let ev = Ev::new(ctx);
        let (output, output_fields) = output.render(&ev);
        Some(Alert {
            rule: info.name.clone(),
            priority: info.priority,
            output,
            output_fields,
            tags: info.tags.clone(),
            source: "syscall",
        })
    }

    /// Warnings of the whole load (unknown keys, ignored items, per-rule warnings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Appends an alert for every enabled rule that matches the event, in file order. `capture`
    /// records (raw payloads, internal to the agent) match no rule. Rules with an `action` are
    /// not evaluated here: the kernel enforces them and reports their matches
    /// ([`Self::enforcement_alert`]), so evaluating them too would report every match twice.
    pub fn evaluate(&self, ctx: &EvalContext<'_>, out: &mut Vec<Alert>) {
        if matches!(
            ctx.event,
            Event::Capture(_) | Event::Enforce(_) | Event::Cgroup(_)
        ) {
            return;
        }
        let ev = Ev::new(ctx);
        for &i in &self.by_type[ev.type_id] {
            let rule = &self.compiled[i];
            if !rule.cond.eval(&ev) {
                continue;
            }
            let info = &self.infos[rule.info];
            let (output, output_fields) = rule.output.render(&ev);
            out.push(Alert {
                rule: info.name.clone(),
                priority: info.priority,
                output,
                output_fields,
                tags: info.tags.clone(),
                source: "syscall",
            });
        }
    }

    /// The `evt.type` names at least one enabled rule can fire on: sensors for other types are
    /// not needed by the rules.
    pub fn event_types(&self) -> Vec<&'static str> {
        (0..evtype::id_count())
            .filter(|id| !self.by_type[*id].is_empty())
            .map(evtype::name_of)
            .filter(|n| *n != "unknown")
            .collect()
    }
}
