//! `evt.arg.NAME`, `evt.rawarg.NAME` and `evt.args`.
//!
//! Names are Vigil's (the keys of the `file` and `syscall.args` JSON objects) plus Falco's
//! names where they differ (`sig`, `domain`, `dev`/`dir`/`type` for mount, `uargs` ...), so
//! upstream rules read the same values. `evt.arg` renders enums and flags by name
//! (`PTRACE_ATTACH`, `O_WRONLY|O_CREAT`); both the name and the number compare equal.

use std::borrow::Cow;
use std::fmt::Write as _;

use vigil_abi::*;
use vigil_events::{names, Event, File, Syscall};

use crate::extract::{ip_text, named, result, two_paths, Ev};
use crate::value::Val;

/// The value of argument `name` of the event, `None` when it has none by that name.
pub(crate) fn arg<'e>(ev: &'e Ev<'_>, name: &str, raw: bool) -> Option<Val<'e>> {
    match ev.ctx.event {
        Event::File(f) => file_arg(ev, f, name, raw),
        Event::Syscall(s) => syscall_arg(s, name, raw),
        Event::Exec(e) => match name {
            "filename" => Some(Val::borrowed(&e.exe)),
            "exe" => Some(Val::borrowed(e.args.first().unwrap_or(&e.exe))),
            "args" => Some(Val::owned(e.args.get(1..).unwrap_or(&[]).join(&b' '))),
            "cwd" => Some(Val::borrowed(&e.cwd)),
            "res" => Some(Val::Int(0)),
            _ => None,
        },
        Event::Exit(x) => match name {
            "ret" => x.code.map(|c| Val::Int(i64::from(c))),
            "sig" => x.signal.map(|s| {
                let n = u64::from(s);
                if raw {
                    Val::Int(i64::from(s))
                } else {
                    named(i64::from(s), names::signal(n))
                }
            }),
            "core" => Some(Val::Bool(x.core_dumped)),
            _ => None,
        },
        // Falco's connect, accept and close: `res`, and `tuple` (`cip:cport->sip:sport`).
        Event::Conn(_) => match name {
            "res" => Some(Val::Int(result(ev.ctx.event))),
            "tuple" => ev.fd_name(),
            _ => None,
        },
        Event::Fork(_)
        | Event::Capture(_)
        | Event::Enforce(_)
        | Event::Cgroup(_)
        | Event::Udp(_)
        | Event::Dns(_)
        | Event::Http(_)
        | Event::Drop(_) => None,
    }
}

fn file_arg<'e>(ev: &'e Ev<'_>, f: &'e File, name: &str, raw: bool) -> Option<Val<'e>> {
    let symlink = f.op == VIGIL_FOP_SYMLINK;
    match name {
        "res" => Some(Val::Int(f.result)),
        "fd" => {
            f.fd.map(i64::from)
                .or_else(|| (f.op == VIGIL_FOP_OPEN).then_some(f.result))
                .map(Val::Int)
        }
        "dirfd" | "olddirfd" | "olddir" | "linkdirfd" => Some(Val::Int(i64::from(f.dirfd))),
        "newdirfd" | "newdir" => two_paths(f).then(|| Val::Int(i64::from(f.dirfd2))),
        "name" | "path" | "pathname" | "filename" => ev.file_path().map(Val::borrowed),
        "oldpath" if two_paths(f) => ev.file_path().map(Val::borrowed),
        "newpath" => ev.second_path().map(Val::borrowed),
        "target" if symlink => Some(Val::borrowed(&f.path)),
        "linkpath" if symlink => ev.file_path().map(Val::borrowed),
        "flags" if f.op == VIGIL_FOP_OPEN && !raw => Some(Val::Named(
            i64::from(f.flags),
            Cow::Owned(names::open_flags(f.flags).join("|")),
        )),
        "flags" => Some(Val::Int(i64::from(f.flags))),
        "mode" if has_mode(f) => Some(if raw {
            Val::Int(i64::from(f.mode))
        } else {
            Val::Named(
                i64::from(f.mode & 0o7777),
                Cow::Owned(format!("{:04o}", f.mode & 0o7777)),
            )
        }),
        "uid" if f.op == VIGIL_FOP_CHOWN && f.uid != u32::MAX => Some(Val::Int(i64::from(f.uid))),
        "gid" if f.op == VIGIL_FOP_CHOWN && f.gid != u32::MAX => Some(Val::Int(i64::from(f.gid))),
        "length" | "len" if f.op == VIGIL_FOP_TRUNCATE => Some(Val::Int(f.length)),
        _ => None,
    }
}

/// Modes are reported where vigil-export reports them.
fn has_mode(f: &File) -> bool {
    match f.op {
        VIGIL_FOP_OPEN => f.flags & 0o100 != 0 || f.flags & 0o20200000 == 0o20200000,
        VIGIL_FOP_MKDIR | VIGIL_FOP_CHMOD => true,
        _ => false,
    }
}

/// Falco's argument names that differ from Vigil's, per syscall.
fn alias(id: u32, name: &str) -> &str {
    match (id, name) {
        (VIGIL_SYS_KILL | VIGIL_SYS_TKILL | VIGIL_SYS_TGKILL, "sig") => "signal",
        (VIGIL_SYS_TGKILL, "pid") => "tgid",
        (VIGIL_SYS_SOCKET, "domain") => "family",
        (VIGIL_SYS_SOCKET, "proto") => "protocol",
        (VIGIL_SYS_MOUNT, "dev") => "source",
        (VIGIL_SYS_MOUNT, "dir") => "target",
        (VIGIL_SYS_MOUNT, "type") => "fstype",
        (VIGIL_SYS_UMOUNT2, "name") => "target",
        (VIGIL_SYS_INIT_MODULE | VIGIL_SYS_FINIT_MODULE, "uargs") => "params",
        (VIGIL_SYS_INIT_MODULE, "length") => "len",
        (VIGIL_SYS_CAPSET, "cap_effective") => "effective",
        (VIGIL_SYS_CAPSET, "cap_permitted") => "permitted",
        (VIGIL_SYS_CAPSET, "cap_inheritable") => "inheritable",
        (VIGIL_SYS_EXECVEAT, "pathname" | "filename") => "path",
        (VIGIL_SYS_CHROOT, "name" | "filename") => "path",
        _ => name,
    }
}

fn syscall_arg<'e>(s: &'e Syscall, name: &str, raw: bool) -> Option<Val<'e>> {
    let name = alias(s.syscall, name);
    let (arg_names, str_names) = names::syscall_args(s.syscall);
    if name == "res" {
        return Some(Val::Int(s.result));
    }
    if let Some(i) = arg_names.iter().position(|n| *n == name && !n.is_empty()) {
        let v = s.args[i];
        let n = v as i64;
        if raw {
            return Some(Val::Int(n));
        }
        return Some(match (s.syscall, name) {
            (VIGIL_SYS_PTRACE, "request") => named(n, names::ptrace_request(v)),
            (VIGIL_SYS_KILL | VIGIL_SYS_TKILL | VIGIL_SYS_TGKILL, "signal") => {
                named(n, names::signal(v))
            }
            (VIGIL_SYS_PRCTL, "option") => named(n, names::prctl_option(v)),
            (VIGIL_SYS_BPF, "cmd") => named(n, names::bpf_cmd(v)),
            (VIGIL_SYS_SOCKET | VIGIL_SYS_DUP2 | VIGIL_SYS_DUP3, "family") => {
                named(n, names::family(v))
            }
            (VIGIL_SYS_IO_URING_SUBMIT, "opcode") => named(n, names::io_uring_op(v)),
            (VIGIL_SYS_UNSHARE | VIGIL_SYS_CLONE | VIGIL_SYS_CLONE3, "flags")
            | (VIGIL_SYS_SETNS, "nstype") => {
                Val::Named(n, Cow::Owned(names::namespaces(v).join("|")))
            }
            _ => Val::Int(n),
        });
    }
    if let Some(i) = str_names.iter().position(|n| *n == name && !n.is_empty()) {
        let bytes = &s.strs[i];
        return Some(if name == "peer_addr" {
            Val::owned(ip_text(bytes).into_bytes())
        } else {
            Val::borrowed(bytes)
        });
    }
    let [a0, a1, a2, a3, ..] = s.args;
    let text = |v: Option<&'static str>| v.map(Val::text);
    match (s.syscall, name) {
        (VIGIL_SYS_PTRACE, "request_name") => text(names::ptrace_request(a0)),
        (VIGIL_SYS_KILL | VIGIL_SYS_TKILL, "signal_name") => text(names::signal(a1)),
        (VIGIL_SYS_TGKILL, "signal_name") => text(names::signal(a2)),
        (VIGIL_SYS_PRCTL, "option_name") => text(names::prctl_option(a0)),
        (VIGIL_SYS_BPF, "cmd_name") => text(names::bpf_cmd(a0)),
        (VIGIL_SYS_SOCKET, "family_name") => text(names::family(a0)),
        (VIGIL_SYS_DUP2 | VIGIL_SYS_DUP3, "family_name") => text(names::family(a3)),
        (VIGIL_SYS_IO_URING_SUBMIT, "opcode_name") => text(names::io_uring_op(a0)),
        (VIGIL_SYS_UNSHARE | VIGIL_SYS_CLONE | VIGIL_SYS_CLONE3, "namespaces") => {
            Some(Val::owned(names::namespaces(a0).join("|").into_bytes()))
        }
        (VIGIL_SYS_SETNS, "namespaces") => {
            Some(Val::owned(names::namespaces(a1).join("|").into_bytes()))
        }
        (VIGIL_SYS_EXECVEAT, "empty_path") => Some(Val::Bool(a1 & 0x1000 != 0)),
        _ => None,
    }
}

/// `evt.args`: every argument as `name=value`, space separated, in Vigil's names.
pub(crate) fn all_args(ev: &Ev<'_>) -> String {
    let keys: Vec<&str> = match ev.ctx.event {
        Event::Exec(_) => vec!["filename", "exe", "args", "cwd"],
        Event::Exit(_) => vec!["ret", "sig", "core"],
        Event::Conn(_) => vec!["res", "tuple"],
        Event::Fork(_)
        | Event::Capture(_)
        | Event::Enforce(_)
        | Event::Cgroup(_)
        | Event::Udp(_)
        | Event::Dns(_)
        | Event::Http(_)
        | Event::Drop(_) => vec![],
        Event::File(f) => {
            let mut k = vec!["res", "fd"];
            k.extend(match f.op {
                VIGIL_FOP_RENAME | VIGIL_FOP_LINK => &["oldpath", "newpath", "flags"][..],
                VIGIL_FOP_SYMLINK => &["target", "linkpath"][..],
                _ => &["name", "flags", "mode", "uid", "gid", "length"][..],
            });
            k
        }
        Event::Syscall(s) => {
            let (a, st) = names::syscall_args(s.syscall);
            let mut k = vec!["res"];
            k.extend(a.iter().chain(st).filter(|n| !n.is_empty()));
            k
        }
    };
    let mut out = String::new();
    for k in keys {
        if let Some(v) = arg(ev, k, false) {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{k}=");
            v.write_text(&mut out);
        }
    }
    out
}
