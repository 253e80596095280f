//! A rule with an `action` → a [`Plan`] for the kernel, or a load error at the part of its
//! condition the kernel cannot check.
//!
//! Works on the condition as written, macros inlined and lists expanded, so that every error
//! points at a test in the file. The condition must be a conjunction: `and` of terms, each one
//! test or an `or` of tests that fill the same part of the plan (merged into one list); `not`
//! is refused, and so are exceptions with values (they are a `not`). The `evt.type` terms pick
//! the hook; every other term fills one list of the plan, and two terms on the same list are
//! intersected.

use crate::compile::{Failure, Origin, RuleCx};
use crate::condition::ast::{Check, Expr, Modifier, Op, Rhs};
use crate::enforce::{Action, Hook, Net, PathMatch, Plan, L4};
use crate::error::ErrorKind;
use crate::exception::{self, ExceptionError};
use crate::fields::{self, End, Field, Level, ProcAttr};
use crate::value::{self, parse_int, parse_ip};

/// Every `evt.type` that selects a hook, for messages.
const HOOK_TYPES: &str =
    "connect, sendto, sendmsg, sendmmsg, bind, execve, execveat, open, openat, openat2, creat";

/// Fields some hook can enforce: a test on one of these in the wrong kind of rule reads
/// "cannot be enforced on ... rules", any other "is not available in the kernel".
const KERNEL_FIELDS: &[&str] = &[
    "evt.type",
    "evt.dir",
    "evt.is_open_write",
    "fd.sip",
    "fd.rip",
    "fd.snet",
    "fd.rnet",
    "fd.sport",
    "fd.rport",
    "fd.lport",
    "fd.lip",
    "fd.lnet",
    "fd.l4proto",
    "fd.name",
    "fd.nameraw",
    "fs.path.name",
    "fd.directory",
    "proc.exepath",
    "proc.exe",
    "user.uid",
    "k8s.ns.name",
];

/// What a rule of `hook` can test, for messages.
fn enforceable(hook: Hook) -> &'static str {
    match hook {
        Hook::Connect | Hook::Sendmsg => {
            "evt.type, fd.sip/fd.rip/fd.snet/fd.rnet, fd.sport/fd.rport, fd.l4proto, user.uid, \
             proc.exepath, k8s.ns.name, k8s.pod.label[key]"
        }
        Hook::Bind => {
            "evt.type, fd.lport/fd.sport, fd.lip/fd.lnet/fd.sip/fd.snet, fd.l4proto, user.uid, \
             proc.exepath, k8s.ns.name, k8s.pod.label[key]"
        }
        Hook::Exec => {
            "evt.type, proc.exepath/proc.exe (the executed file), user.uid, k8s.ns.name, \
             k8s.pod.label[key]"
        }
        Hook::OpenWrite => {
            "evt.type, evt.is_open_write, fd.name, fd.directory, user.uid, proc.exepath, \
             k8s.ns.name, k8s.pod.label[key]"
        }
    }
}

/// One test of the condition and the text it is written in.
#[derive(Clone, Copy)]
struct Atom<'a> {
    check: &'a Check,
    origin: Origin<'a>,
}

impl Atom<'_> {
    /// The field as written (`proc.aname[2]`).
    fn field(&self) -> String {
        self.check.field.display_name()
    }
}

/// `text[start..end]` with blanks collapsed and the parentheses it opens closed.
fn excerpt(text: &str, start: usize, end: usize) -> String {
    let s = text.get(start..end.max(start)).unwrap_or("");
    let mut s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let open = s
        .matches('(')
        .count()
        .saturating_sub(s.matches(')').count());
    s.push_str(&")".repeat(open));
    s
}

/// Where an expression starts and ends in its text.
fn extent(e: &Expr) -> (usize, usize) {
    match e {
        Expr::Check(c) => (c.pos, c.end),
        Expr::Macro { name, pos } => (*pos, pos + name.len()),
        Expr::Not { inner, pos } => (*pos, extent(inner).1),
        Expr::And(kids) | Expr::Or(kids) => {
            let first = kids.first().map_or((0, 0), extent);
            let last = kids.last().map_or((0, 0), extent);
            (first.0, last.1)
        }
    }
}

fn enforce_kind(part: Option<String>, reason: String) -> ErrorKind {
    ErrorKind::Enforce {
        part,
        reason,
        column: None,
    }
}

/// An error at an atom.
fn fail(rc: &RuleCx<'_, '_>, atom: Atom<'_>, reason: impl Into<String>) -> Failure {
    let c = atom.check;
    let part = excerpt(atom.origin.text(), c.pos, c.end);
    rc.hard(atom.origin, c.pos, enforce_kind(Some(part), reason.into()))
}

/// An error at an expression that is not one atom.
fn fail_expr(rc: &RuleCx<'_, '_>, e: &Expr, origin: Origin<'_>, reason: &str) -> Failure {
    let (start, end) = extent(e);
    let part = excerpt(origin.text(), start, end);
    rc.hard(origin, start, enforce_kind(Some(part), reason.into()))
}

/// An error about the rule's condition as a whole, at its start.
fn fail_rule(rc: &RuleCx<'_, '_>, reason: String) -> Failure {
    rc.hard(Origin::Rule(&rc.rule.cond), 0, enforce_kind(None, reason))
}

const NOT: &str = "`not` cannot be enforced: the kernel maps list what to match, not what to \
                   exclude; narrow the other tests instead";

/// The `and` terms of the condition, each a list of alternatives.
fn conjuncts<'a>(
    rc: &mut RuleCx<'a, '_>,
    e: &'a Expr,
    origin: Origin<'a>,
    out: &mut Vec<Vec<Atom<'a>>>,
) -> Result<(), Failure> {
    rc.enter()?;
    match e {
        Expr::And(kids) => {
            for k in kids {
                conjuncts(rc, k, origin, out)?;
            }
        }
        Expr::Or(kids) => {
            let mut alternatives = Vec::new();
            for k in kids {
                disjuncts(rc, k, origin, &mut alternatives)?;
            }
            out.push(alternatives);
        }
        Expr::Not { .. } => return Err(fail_expr(rc, e, origin, NOT)),
        Expr::Macro { name, pos } => {
            let (body, inner) = rc.macro_body(name, *pos, origin)?;
            rc.push_macro(name);
            let r = conjuncts(rc, body, inner, out);
            rc.pop_macro();
            r?;
        }
        Expr::Check(check) => out.push(vec![Atom { check, origin }]),
    }
    rc.leave();
    Ok(())
}

/// The alternatives of an `or`: tests only.
fn disjuncts<'a>(
    rc: &mut RuleCx<'a, '_>,
    e: &'a Expr,
    origin: Origin<'a>,
    out: &mut Vec<Atom<'a>>,
) -> Result<(), Failure> {
    rc.enter()?;
    match e {
        Expr::Or(kids) => {
            for k in kids {
                disjuncts(rc, k, origin, out)?;
            }
        }
        Expr::And(_) => {
            let reason = "`or` between `and`s cannot be enforced: in the kernel, `or` can only \
                          join tests of the same field; write one rule per alternative";
            return Err(fail_expr(rc, e, origin, reason));
        }
        Expr::Not { .. } => return Err(fail_expr(rc, e, origin, NOT)),
        Expr::Macro { name, pos } => {
            let (body, inner) = rc.macro_body(name, *pos, origin)?;
            rc.push_macro(name);
            let r = disjuncts(rc, body, inner, out);
            rc.pop_macro();
            r?;
        }
        Expr::Check(check) => out.push(Atom { check, origin }),
    }
    rc.leave();
    Ok(())
}

/// What one test contributes to the plan.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// `evt.dir = <`: always true in Vigil.
    Dir,
    /// `evt.is_open_write = true`.
    OpenWrite,
    Nets(Vec<Net>),
    Ports(Vec<u16>),
    Proto(Vec<L4>),
    Paths(Vec<PathMatch>),
    Uids(Vec<u32>),
    Exe(Vec<PathMatch>),
    /// `k8s.ns.name`.
    Namespaces(Vec<String>),
    /// `k8s.pod.label[key]`: (key, allowed values).
    Label(String, Vec<String>),
}

impl Part {
    /// What it restricts, for messages.
    fn what(&self, hook: Hook) -> &'static str {
        match self {
            Part::Dir => "evt.dir",
            Part::OpenWrite => "evt.is_open_write",
            Part::Nets(_) if hook == Hook::Bind => "the local address",
            Part::Nets(_) => "the destination address",
            Part::Ports(_) if hook == Hook::Bind => "the port bound",
            Part::Ports(_) => "the destination port",
            Part::Proto(_) => "fd.l4proto",
            Part::Paths(_) if hook == Hook::Exec => "the executed file",
            Part::Paths(_) => "the opened file",
            Part::Uids(_) => "user.uid",
            Part::Exe(_) => "proc.exepath",
            Part::Namespaces(_) => "k8s.ns.name",
            Part::Label(..) => "k8s.pod.label",
        }
    }

    /// Adds the alternatives of `other`, which restricts the same thing.
    fn union(&mut self, other: Part) {
        match (self, other) {
            (Part::Nets(a), Part::Nets(b)) => a.extend(b),
            (Part::Ports(a), Part::Ports(b)) => a.extend(b),
            (Part::Proto(a), Part::Proto(b)) => a.extend(b),
            (Part::Paths(a), Part::Paths(b)) | (Part::Exe(a), Part::Exe(b)) => a.extend(b),
            (Part::Uids(a), Part::Uids(b)) => a.extend(b),
            (Part::Namespaces(a), Part::Namespaces(b)) => a.extend(b),
            (Part::Label(ka, a), Part::Label(kb, b)) if *ka == kb => a.extend(b),
            _ => {}
        }
    }
}

/// The lists being built; `None` is "any".
#[derive(Default)]
struct Acc {
    open_write: bool,
    nets: Option<Vec<Net>>,
    ports: Option<Vec<u16>>,
    proto: Option<Vec<L4>>,
    paths: Option<Vec<PathMatch>>,
    uids: Option<Vec<u32>>,
    exe: Option<Vec<PathMatch>>,
    namespaces: Option<Vec<String>>,
    labels: Vec<(String, Vec<String>)>,
}

impl Acc {
    /// Requires `part` too; `false` when nothing is left to match.
    fn and(&mut self, part: Part) -> bool {
        fn meet<T: PartialEq + Clone>(slot: &mut Option<Vec<T>>, new: Vec<T>) -> bool {
            let v = match slot.take() {
                None => new,
                Some(old) => old.into_iter().filter(|x| new.contains(x)).collect(),
            };
            let ok = !v.is_empty();
            *slot = Some(v);
            ok
        }
        fn meet_paths(slot: &mut Option<Vec<PathMatch>>, new: Vec<PathMatch>) -> bool {
            let v = match slot.take() {
                None => new,
                Some(old) => {
                    let mut v = Vec::new();
                    for a in &old {
                        for b in &new {
                            if a.within(b) {
                                v.push(a.clone());
                            } else if b.within(a) {
                                v.push(b.clone());
                            }
                        }
                    }
                    minimal_paths(v)
                }
            };
            let ok = !v.is_empty();
            *slot = Some(v);
            ok
        }
        match part {
            Part::Dir => true,
            Part::OpenWrite => {
                self.open_write = true;
                true
            }
            Part::Nets(new) => {
                let v = match self.nets.take() {
                    None => new,
                    Some(old) => {
                        let mut v = Vec::new();
                        for a in &old {
                            for b in &new {
                                if a.covers(b) {
                                    v.push(*b);
                                } else if b.covers(a) {
                                    v.push(*a);
                                }
                            }
                        }
                        minimal_nets(v)
                    }
                };
                let ok = !v.is_empty();
                self.nets = Some(v);
                ok
            }
            Part::Ports(new) => meet(&mut self.ports, new),
            Part::Proto(new) => meet(&mut self.proto, new),
            Part::Uids(new) => meet(&mut self.uids, new),
            Part::Paths(new) => meet_paths(&mut self.paths, new),
            Part::Exe(new) => meet_paths(&mut self.exe, new),
            Part::Namespaces(new) => meet(&mut self.namespaces, new),
            Part::Label(key, new) => match self.labels.iter_mut().find(|(k, _)| *k == key) {
                Some((_, old)) => {
                    old.retain(|v| new.contains(v));
                    !old.is_empty()
                }
                None => {
                    self.labels.push((key, new));
                    true
                }
            },
        }
    }
}

/// Without duplicates, first occurrence kept.
fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Without the networks another one covers.
fn minimal_nets(v: Vec<Net>) -> Vec<Net> {
    let v = dedup(v);
    v.iter()
        .filter(|n| !v.iter().any(|m| m != *n && m.covers(n)))
        .copied()
        .collect()
}

/// Without the path tests another one covers.
fn minimal_paths(v: Vec<PathMatch>) -> Vec<PathMatch> {
    let v = dedup(v);
    v.iter()
        .filter(|p| !v.iter().any(|q| q != *p && p.within(q)))
        .cloned()
        .collect()
}

/// The plan of a rule with `action`.
pub(crate) fn plan<'a>(
    rc: &mut RuleCx<'a, '_>,
    expr: &'a Expr,
    action: Action,
) -> Result<Plan, Failure> {
    let r = rc.rule;
    let mut terms = Vec::new();
    conjuncts(rc, expr, Origin::Rule(&r.cond), &mut terms)?;
    for ex in &r.exceptions {
        let reason = match exception::condition(ex) {
            Ok(None) => continue,
            Ok(Some(_)) => format!(
                "exception '{}' cannot be enforced: an exception is a `not`, and the kernel maps \
                 list what to match, not what to exclude",
                ex.name
            ),
            Err(ExceptionError::Field(e)) => format!("exception '{}': {e}", ex.name),
            Err(ExceptionError::Shape(problem)) => {
                let kind = ErrorKind::Exception {
                    name: ex.name.clone(),
                    problem,
                };
                return Err(rc.hard(Origin::Exception, 0, kind));
            }
        };
        return Err(rc.hard_at_rule(enforce_kind(None, reason)));
    }

    let (hook, types, type_atom) = hook(rc, &terms)?;
    if hook.action() != action {
        let reason = format!(
            "action {action} applies to {} rules; this {} rule can take action {}",
            match action {
                Action::Deny => "connect, sendto/sendmsg and bind",
                Action::Kill => "execve and open-for-writing",
            },
            hook.rule_kind(),
            hook.action()
        );
        let kind = enforce_kind(None, reason);
        return Err(rc.hard_at_key(r.action_span, "action", action.as_str(), kind));
    }

    let mut acc = Acc::default();
    for term in &terms {
        if term.iter().any(is_type) {
            continue;
        }
        let mut merged: Option<Part> = None;
        for atom in term {
            let part = lower(rc, hook, *atom)?;
            match &mut merged {
                None => merged = Some(part),
                Some(m)
                    if std::mem::discriminant(m) == std::mem::discriminant(&part)
                        && !matches!((&*m, &part), (Part::Label(a, _), Part::Label(b, _)) if a != b) =>
                {
                    m.union(part)
                }
                Some(m) => {
                    let reason = format!(
                        "`or` can only join tests of the same field in the kernel, not {} and {}; \
                         write one rule per alternative",
                        m.what(hook),
                        part.what(hook)
                    );
                    return Err(fail(rc, *atom, reason));
                }
            }
        }
        let Some(part) = merged else { continue };
        let what = part.what(hook);
        if !acc.and(part) {
            let reason = format!(
                "never matches together with the other tests of {what}: nothing is left to \
                 enforce"
            );
            return Err(fail(rc, term[0], reason));
        }
    }

    let paths = acc.paths.take().map(minimal_paths);
    match hook {
        Hook::Exec | Hook::OpenWrite if paths.is_none() => {
            let reason = if hook == Hook::Exec {
                "an execve rule must name the executed files (proc.exepath =, in, startswith or \
                 pmatch): killing every program start is too broad"
            } else {
                "an open rule must name the files (fd.name =, in, startswith or pmatch, or \
                 fd.directory =): killing every write is too broad"
            };
            return Err(fail_rule(rc, reason.into()));
        }
        Hook::OpenWrite if !acc.open_write && !types.iter().all(|t| t == "creat") => {
            let reason = "an open rule must be limited to opens for writing: add \
                          `evt.is_open_write = true`";
            return Err(fail(rc, type_atom, reason));
        }
        _ => {}
    }
    let protocol = match hook {
        Hook::Sendmsg => Some(L4::Udp),
        Hook::Connect | Hook::Bind => match acc.proto.map(dedup).as_deref() {
            Some([one]) => Some(*one),
            _ => None,
        },
        Hook::Exec | Hook::OpenWrite => None,
    };
    Ok(Plan {
        rule: r.name.clone(),
        priority: r.priority,
        output: r.output.clone(),
        action,
        mode: r.mode,
        hook,
        nets: acc.nets.map(minimal_nets).unwrap_or_default(),
        ports: acc.ports.map(dedup).unwrap_or_default(),
        protocol,
        paths: paths.unwrap_or_default(),
        uids: acc.uids.map(dedup).unwrap_or_default(),
        exe: acc.exe.map(minimal_paths).unwrap_or_default(),
        namespaces: acc.namespaces.map(dedup).unwrap_or_default(),
        pod_labels: acc.labels.into_iter().map(|(k, v)| (k, dedup(v))).collect(),
    })
}

fn is_type(a: &Atom<'_>) -> bool {
    a.check.field.name == "evt.type"
}

/// The hook the `evt.type` terms select, the types left once they are intersected, and the
/// first `evt.type` test.
fn hook<'a>(
    rc: &mut RuleCx<'a, '_>,
    terms: &[Vec<Atom<'a>>],
) -> Result<(Hook, Vec<String>, Atom<'a>), Failure> {
    let mut types: Option<Vec<(String, Atom<'a>)>> = None;
    let mut first = None;
    for term in terms {
        let Some(t) = term.iter().find(|a| is_type(a)) else {
            continue;
        };
        first.get_or_insert(*t);
        let mut names = Vec::new();
        for atom in term {
            if !is_type(atom) {
                let reason = format!(
                    "`or` can only join tests of the same field in the kernel, not evt.type and \
                     {}; write one rule per alternative",
                    atom.field()
                );
                return Err(fail(rc, *atom, reason));
            }
            for n in type_names(rc, *atom)? {
                names.push((n, *atom));
            }
        }
        let left: Vec<(String, Atom<'a>)> = match types.take() {
            None => names,
            Some(old) => old
                .into_iter()
                .filter(|(n, _)| names.iter().any(|(m, _)| m == n))
                .collect(),
        };
        if left.is_empty() {
            let reason = "the evt.type tests exclude every type: the rule can never match";
            return Err(fail(rc, term[0], reason));
        }
        types = Some(left);
    }
    let (Some(types), Some(first)) = (types, first) else {
        return Err(fail_rule(
            rc,
            format!("the condition must select what to enforce with evt.type ({HOOK_TYPES})"),
        ));
    };
    let mut hook: Option<(Hook, &str)> = None;
    for (name, atom) in &types {
        let Some(h) = Hook::of_type(name) else {
            let reason = format!(
                "evt.type {name} cannot be enforced in the kernel; enforceable: {HOOK_TYPES}"
            );
            return Err(fail(rc, *atom, reason));
        };
        match hook {
            None => hook = Some((h, name)),
            Some((other, other_name)) if other != h => {
                let reason = format!(
                    "evt.types {other_name} and {name} need different kernel hooks ({other} and \
                     {h}): write one rule per hook"
                );
                return Err(fail(rc, *atom, reason));
            }
            Some(_) => {}
        }
    }
    let hook = hook.map_or(Hook::Exec, |(h, _)| h);
    let names = dedup(types.into_iter().map(|(n, _)| n).collect());
    Ok((hook, names, first))
}

/// The names an `evt.type` test allows.
fn type_names(rc: &mut RuleCx<'_, '_>, atom: Atom<'_>) -> Result<Vec<String>, Failure> {
    let c = atom.check;
    let plain = c.field.arg.is_none()
        && c.field.transformers.is_empty()
        && c.field.unsupported_transformer.is_none()
        && c.modifier == Modifier::None;
    let names = match (&c.rhs, c.op) {
        (Rhs::Value(v), Op::Eq) if plain => vec![v.text.clone()],
        (Rhs::List(_) | Rhs::ListName(_), Op::In | Op::Intersects) if plain => {
            rc.list_items(&c.rhs, atom.origin)?
        }
        _ => {
            let reason = "evt.type is enforced with = or in only: name the types";
            return Err(fail(rc, atom, reason));
        }
    };
    Ok(names
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect())
}

/// The values of a test with `=`, `in` or `intersects` (with any list expanded).
fn values(rc: &mut RuleCx<'_, '_>, atom: Atom<'_>) -> Result<Vec<Vec<u8>>, Failure> {
    match &atom.check.rhs {
        Rhs::Value(v) => Ok(vec![v.text.clone()]),
        rhs @ (Rhs::List(_) | Rhs::ListName(_)) => rc.list_items(rhs, atom.origin),
        Rhs::None | Rhs::Field(_) => Ok(Vec::new()),
    }
}

/// How path values are turned into [`PathMatch`]es.
#[derive(Clone, Copy, PartialEq)]
enum PathOp {
    Exact,
    Prefix,
    /// `pmatch`: the path or anything below it.
    Below,
    /// `fd.directory =`: anything below the directory.
    Dir,
}

/// One test → its part of the plan.
fn lower(rc: &mut RuleCx<'_, '_>, hook: Hook, atom: Atom<'_>) -> Result<Part, Failure> {
    let c = atom.check;
    let f = &c.field;
    let name = atom.field();
    if let Some(t) = f
        .transformers
        .first()
        .or(f.unsupported_transformer.as_ref())
    {
        return Err(fail(
            rc,
            atom,
            format!("{t}() cannot be enforced in the kernel"),
        ));
    }
    let field = match fields::resolve(&f.name, f.arg.as_deref()) {
        Ok(field) => field,
        Err(e) => return Err(fail(rc, atom, e.to_string())),
    };
    let kind = hook.rule_kind();
    let list = enforceable(hook);
    let not_here = || {
        if f.name.starts_with("container.") || f.name.starts_with("k8s.") {
            format!(
                "{name} cannot scope enforcement; the kernel scopes rules by workload with \
                 k8s.ns.name and k8s.pod.label[key] (= or in)"
            )
        } else if hook == Hook::OpenWrite
            && matches!(f.name.as_str(), "fd.num" | "fd.typechar" | "fd.type")
        {
            format!(
                "{name} is only known once the open has returned, and the kernel acts before; \
                 Falco's open_write macro tests it: write `evt.type in (open, openat, openat2) \
                 and evt.is_open_write = true` instead"
            )
        } else if matches!(f.name.as_str(), "evt.res" | "evt.rawres" | "evt.failed") {
            format!(
                "{name} is the call's result, only known once it has returned, and the kernel \
                 acts before; enforceable on {kind} rules: {list}"
            )
        } else if matches!(f.name.as_str(), "fd.ip" | "fd.net" | "fd.port") {
            format!(
                "{name} matches either end of the socket; name the end (enforceable on {kind} \
                 rules: {list})"
            )
        } else if f.name == "user.name" {
            "user.name is not available in the kernel: use user.uid".to_string()
        } else if KERNEL_FIELDS.contains(&f.name.as_str()) && f.arg.is_none() {
            format!("{name} cannot be enforced on {kind} rules; enforceable on them: {list}")
        } else {
            format!("{name} is not available in the kernel; enforceable on {kind} rules: {list}")
        }
    };
    let network = hook.is_network();
    let dest = |end: End| matches!(end, End::Server | End::Remote);
    let local = |end: End| matches!(end, End::Server | End::Local);
    let target = match field {
        Field::EvtDir => Target::EvtDir,
        Field::EvtIsOpenWrite if hook == Hook::OpenWrite => Target::OpenWrite,
        Field::FdIp(end) if network && (hook == Hook::Bind && local(end)) => Target::Nets,
        Field::FdIp(end) if network && (hook != Hook::Bind && dest(end)) => Target::Nets,
        Field::FdPort(end) if network && (hook == Hook::Bind && local(end)) => Target::Ports,
        Field::FdPort(end) if network && (hook != Hook::Bind && dest(end)) => Target::Ports,
        Field::FdL4Proto if network => Target::Proto,
        Field::Proc(ProcAttr::ExePath, Level::Nth(0)) if hook == Hook::Exec => Target::Paths,
        Field::Proc(ProcAttr::ExePath, Level::Nth(0)) => Target::Exe,
        Field::Proc(ProcAttr::Exe, Level::Nth(0)) if hook == Hook::Exec => Target::Paths,
        Field::FdName if hook == Hook::OpenWrite => Target::Paths,
        Field::FdDirectory if hook == Hook::OpenWrite => Target::Directory,
        Field::UserUid => Target::Uids,
        Field::K8sNsName => Target::Namespaces,
        Field::K8sPodLabel(_) => Target::Label,
        _ => return Err(fail(rc, atom, not_here())),
    };
    if matches!(c.rhs, Rhs::Field(_)) {
        let reason = "comparing two fields cannot be enforced in the kernel";
        return Err(fail(rc, atom, reason));
    }
    let set_ops = matches!(c.op, Op::Eq | Op::In | Op::Intersects) && c.modifier == Modifier::None;
    let path_op = match (c.op, c.modifier) {
        (Op::Eq | Op::In | Op::Intersects, Modifier::None) | (Op::Eq, Modifier::AnyOf) => {
            Some(PathOp::Exact)
        }
        (Op::StartsWith, Modifier::None | Modifier::AnyOf) => Some(PathOp::Prefix),
        (Op::Pmatch, Modifier::None) => Some(PathOp::Below),
        _ => None,
    };
    let op_error = |allowed: &str| {
        let op = match c.modifier {
            Modifier::None => c.op.name().to_string(),
            m => format!("{} {}", c.op.name(), modifier_name(m)),
        };
        format!("{op} cannot be enforced on {name}; use {allowed}")
    };
    let values = values(rc, atom)?;
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    Ok(match target {
        Target::EvtDir => match (c.op, values.as_slice()) {
            (Op::Eq, [v]) if v == b"<" => Part::Dir,
            (Op::Eq, [v]) if v == b">" => {
                return Err(fail(
                    rc,
                    atom,
                    "evt.dir is always < in Vigil: this never matches",
                ));
            }
            _ => return Err(fail(rc, atom, op_error("evt.dir = <"))),
        },
        Target::OpenWrite => match (c.op, values.as_slice()) {
            (Op::Eq, [v]) if v.eq_ignore_ascii_case(b"true") => Part::OpenWrite,
            _ => {
                let reason = "enforce it as `evt.is_open_write = true`";
                return Err(fail(rc, atom, reason));
            }
        },
        Target::Nets => {
            if !set_ops {
                return Err(fail(rc, atom, op_error("= or in (addresses or networks)")));
            }
            let mut nets = Vec::new();
            for v in &values {
                match parse_net(v) {
                    Some(n) => nets.push(n),
                    None => {
                        let reason = format!("'{}' is not an IP address or network", text(v));
                        return Err(fail(rc, atom, reason));
                    }
                }
            }
            Part::Nets(nets)
        }
        Target::Ports => {
            if !set_ops {
                return Err(fail(rc, atom, op_error("= or in (port numbers)")));
            }
            let mut ports = Vec::new();
            for v in &values {
                match parse_int(v).and_then(|p| u16::try_from(p).ok()) {
                    Some(p) => ports.push(p),
                    None => {
                        let reason = format!("'{}' is not a port number", text(v));
                        return Err(fail(rc, atom, reason));
                    }
                }
            }
            Part::Ports(ports)
        }
        Target::Proto => {
            if !set_ops {
                return Err(fail(rc, atom, op_error("= or in (tcp, udp)")));
            }
            let mut protos = Vec::new();
            for v in &values {
                match v.to_ascii_lowercase().as_slice() {
                    b"tcp" => protos.push(L4::Tcp),
                    b"udp" => protos.push(L4::Udp),
                    _ => {
                        let reason =
                            format!("fd.l4proto '{}' cannot be enforced: tcp or udp", text(v));
                        return Err(fail(rc, atom, reason));
                    }
                }
            }
            if hook == Hook::Sendmsg && !protos.contains(&L4::Udp) {
                let reason = "sendto/sendmsg are enforced on UDP sockets only (TCP sends are not \
                              hooked: deny the connect instead)";
                return Err(fail(rc, atom, reason));
            }
            Part::Proto(protos)
        }
        Target::Namespaces | Target::Label => {
            if !set_ops {
                return Err(fail(rc, atom, op_error("= or in (names)")));
            }
            let v: Vec<String> = values.iter().map(|v| text(v)).collect();
            match (target, &field) {
                (Target::Label, Field::K8sPodLabel(key)) => Part::Label(key.clone(), v),
                _ => Part::Namespaces(v),
            }
        }
        Target::Uids => {
            if !set_ops {
                return Err(fail(rc, atom, op_error("= or in (numeric uids)")));
            }
            let mut uids = Vec::new();
            for v in &values {
                match parse_int(v).and_then(|u| u32::try_from(u).ok()) {
                    Some(u) => uids.push(u),
                    None => {
                        let reason = format!("'{}' is not a numeric uid", text(v));
                        return Err(fail(rc, atom, reason));
                    }
                }
            }
            Part::Uids(uids)
        }
        Target::Paths | Target::Exe | Target::Directory => {
            let op = match (target, path_op) {
                (Target::Directory, Some(PathOp::Exact)) => PathOp::Dir,
                (Target::Directory, _) => {
                    return Err(fail(rc, atom, op_error("= or in (directories)")));
                }
                (_, Some(op)) => op,
                (_, None) => {
                    return Err(fail(
                        rc,
                        atom,
                        op_error("=, in, startswith or pmatch (paths)"),
                    ));
                }
            };
            let argv0 = f.name == "proc.exe";
            let mut paths = Vec::new();
            for v in &values {
                if !v.starts_with(b"/") {
                    let reason = if argv0 {
                        format!(
                            "proc.exe is argv[0], and the kernel checks the executed file: \
                             values must be absolute paths, not '{}' (or use proc.exepath)",
                            text(v)
                        )
                    } else {
                        format!(
                            "the kernel compares resolved absolute paths: '{}' is not one",
                            text(v)
                        )
                    };
                    return Err(fail(rc, atom, reason));
                }
                let under = |p: &[u8]| {
                    let mut p = p.to_vec();
                    if !p.ends_with(b"/") {
                        p.push(b'/');
                    }
                    PathMatch::Prefix(p)
                };
                match op {
                    PathOp::Exact => paths.push(PathMatch::Exact(v.clone())),
                    PathOp::Prefix => paths.push(PathMatch::Prefix(v.clone())),
                    PathOp::Below => {
                        paths.push(PathMatch::Exact(v.clone()));
                        paths.push(under(v));
                    }
                    PathOp::Dir => paths.push(under(v)),
                }
            }
            if target == Target::Exe {
                Part::Exe(paths)
            } else {
                Part::Paths(paths)
            }
        }
    })
}

/// Which part of the plan a field fills.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    EvtDir,
    OpenWrite,
    Nets,
    Ports,
    Proto,
    Paths,
    /// `fd.directory`: paths below it.
    Directory,
    Uids,
    Exe,
    /// `k8s.ns.name`: the workload scope.
    Namespaces,
    /// `k8s.pod.label[key]`: the workload scope.
    Label,
}

fn modifier_name(m: Modifier) -> &'static str {
    match m {
        Modifier::None => "",
        Modifier::OneOf => "oneof",
        Modifier::AnyOf => "anyof",
        Modifier::AllOf => "allof",
    }
}

/// An address (`10.0.0.1`, `::1`) or network (`10.0.0.0/8`); IPv4-mapped IPv6 as IPv4, host
/// bits cleared.
fn parse_net(v: &[u8]) -> Option<Net> {
    let (addr, prefix) = match value::Net::parse(v) {
        Some(n) => (n.addr(), n.prefix()),
        None => {
            let ip = parse_ip(v)?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let addr = match addr {
        std::net::IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            std::net::IpAddr::V4((u32::from(a) & mask).into())
        }
        std::net::IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            std::net::IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    Some(Net { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_parse_and_normalise() {
        let n = |s: &str| parse_net(s.as_bytes()).map(|n| n.to_string());
        assert_eq!(n("10.1.2.3/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(n("10.1.2.3").as_deref(), Some("10.1.2.3/32"));
        assert_eq!(n("::ffff:10.1.2.3").as_deref(), Some("10.1.2.3/32"));
        assert_eq!(n("::ffff:10.0.0.0/104").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(n("fd00::1/8").as_deref(), Some("fd00::/8"));
        assert_eq!(n("[::1]").as_deref(), Some("::1/128"));
        assert_eq!(n("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(n("10.0.0.0/33"), None);
        assert_eq!(n("host"), None);
    }

    #[test]
    fn minimal_lists() {
        let net = |s: &str| parse_net(s.as_bytes()).unwrap();
        assert_eq!(
            minimal_nets(vec![
                net("10.1.0.0/16"),
                net("10.0.0.0/8"),
                net("10.0.0.0/8")
            ]),
            [net("10.0.0.0/8")]
        );
        let p = |s: &str| PathMatch::Prefix(s.as_bytes().to_vec());
        let e = |s: &str| PathMatch::Exact(s.as_bytes().to_vec());
        assert_eq!(
            minimal_paths(vec![e("/tmp/a"), p("/tmp/"), e("/etc/x"), p("/tmp/b/")]),
            [p("/tmp/"), e("/etc/x")]
        );
        assert_eq!(excerpt("not (a or\n   b", 0, 14), "not (a or b)");
    }
}
