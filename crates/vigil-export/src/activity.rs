//! The `file` and `syscall` objects of file and security-syscall events (docs/events.md).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};
use vigil_abi::*;
use vigil_events::{names, paths, File, Syscall};

use crate::text::{b64_if_needed, lossy};

#[derive(Serialize)]
pub struct FileOut {
    op: &'static str,
    syscall: &'static str,
    result: i64,
    error: Option<&'static str>,
    /// Absolute, resolved lexically against `base` (docs/events.md).
    path: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_b64: Option<String>,
    /// As the process passed it.
    path_given: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_given_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path_given: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<Vec<&'static str>>,
    flags_raw: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dirfd: Option<i32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

fn owned(b: &[u8]) -> Cow<'static, str> {
    Cow::Owned(lossy(b).into_owned())
}

pub fn file(f: &File) -> FileOut {
    let symlink = f.op == VIGIL_FOP_SYMLINK;
    let two_paths = matches!(f.op, VIGIL_FOP_RENAME | VIGIL_FOP_LINK);
    // symlink(target, linkpath): the event is about the link; the target is only a string.
    let (given, base) = if symlink {
        (&f.path2, &f.base2)
    } else {
        (&f.path, &f.base)
    };
    let resolved = paths::resolve(base, given);
    let new_resolved = two_paths.then(|| paths::resolve(&f.base2, &f.path2));
    let has_mode = match f.op {
        VIGIL_FOP_OPEN => f.flags & 0o100 != 0 || f.flags & 0o20200000 == 0o20200000,
        VIGIL_FOP_MKDIR | VIGIL_FOP_CHMOD => true,
        _ => false,
    };
    let relative = given.first() != Some(&b'/') && f.fd.is_none();
    FileOut {
        op: names::file_op(f.op),
        syscall: names::syscall(f.syscall),
        result: f.result,
        error: names::errno(f.result),
        path_b64: b64_if_needed(&resolved),
        path: owned(&resolved),
        path_given_b64: b64_if_needed(given),
        path_given: owned(given),
        new_path_b64: new_resolved.as_deref().and_then(b64_if_needed),
        new_path: new_resolved.as_deref().map(|p| lossy(p).into_owned()),
        new_path_given: two_paths.then(|| lossy(&f.path2).into_owned()),
        target: symlink.then(|| lossy(&f.path).into_owned()),
        target_b64: if symlink {
            b64_if_needed(&f.path)
        } else {
            None
        },
        flags: (f.op == VIGIL_FOP_OPEN).then(|| names::open_flags(f.flags)),
        flags_raw: f.flags,
        mode: has_mode.then(|| format!("{:04o}", f.mode & 0o7777)),
        uid: (f.op == VIGIL_FOP_CHOWN && f.uid != u32::MAX).then_some(f.uid),
        gid: (f.op == VIGIL_FOP_CHOWN && f.gid != u32::MAX).then_some(f.gid),
        length: (f.op == VIGIL_FOP_TRUNCATE).then_some(f.length),
        fd: f.fd,
        dirfd: {
            let d = if symlink { f.dirfd2 } else { f.dirfd };
            (relative && d != -100).then_some(d)
        },
        truncated: f.truncated,
    }
}

#[derive(Serialize)]
pub struct SyscallOut {
    name: &'static str,
    result: i64,
    error: Option<&'static str>,
    args: Map<String, Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

pub fn syscall(s: &Syscall) -> SyscallOut {
    let (arg_names, str_names) = names::syscall_args(s.syscall);
    let mut args = Map::new();
    for (name, v) in arg_names.iter().zip(s.args) {
        if !name.is_empty() {
            args.insert((*name).into(), arg_value(name, v));
        }
    }
    for (name, bytes) in str_names.iter().zip(&s.strs) {
        if name.is_empty() || (bytes.is_empty() && s.syscall == VIGIL_SYS_PRCTL) {
            continue;
        }
        let value = if *name == "peer_addr" {
            ip(bytes)
        } else {
            lossy(bytes).into_owned()
        };
        args.insert((*name).into(), Value::from(value));
        if let Some(b) = b64_if_needed(bytes).filter(|_| *name != "peer_addr") {
            args.insert(format!("{name}_b64"), Value::from(b));
        }
    }
    let [a0, a1, a2, a3, ..] = s.args;
    let mut named = |key: &str, v: Option<&'static str>| {
        if let Some(v) = v {
            args.insert(key.into(), Value::from(v));
        }
    };
    match s.syscall {
        VIGIL_SYS_PTRACE => named("request_name", names::ptrace_request(a0)),
        VIGIL_SYS_KILL | VIGIL_SYS_TKILL => named("signal_name", names::signal(a1)),
        VIGIL_SYS_TGKILL => named("signal_name", names::signal(a2)),
        VIGIL_SYS_PRCTL => named("option_name", names::prctl_option(a0)),
        VIGIL_SYS_BPF => named("cmd_name", names::bpf_cmd(a0)),
        VIGIL_SYS_SOCKET => named("family_name", names::family(a0)),
        VIGIL_SYS_DUP2 | VIGIL_SYS_DUP3 => named("family_name", names::family(a3)),
        VIGIL_SYS_IO_URING_SUBMIT => named("opcode_name", names::io_uring_op(a0)),
        _ => {}
    }
    match s.syscall {
        VIGIL_SYS_UNSHARE | VIGIL_SYS_CLONE | VIGIL_SYS_CLONE3 => {
            args.insert("namespaces".into(), Value::from(names::namespaces(a0)));
        }
        VIGIL_SYS_SETNS => {
            args.insert("namespaces".into(), Value::from(names::namespaces(a1)));
        }
        VIGIL_SYS_EXECVEAT => {
            // AT_EMPTY_PATH: the fd itself is executed (fileless when it is a memfd).
            args.insert("empty_path".into(), Value::from(a1 & 0x1000 != 0));
        }
        _ => {}
    }
    let _ = a2;
    SyscallOut {
        name: names::syscall(s.syscall),
        result: s.result,
        error: names::errno(s.result),
        args,
        truncated: s.truncated,
    }
}

/// Arguments are raw 64-bit registers; C `int` arguments (pids, fds, signals) are read as
/// signed 32-bit so that `kill(-pgid)` and `AT_FDCWD` show as negative numbers, and ids
/// (`uid_t`, `gid_t`) as unsigned 32-bit.
fn arg_value(name: &str, v: u64) -> Value {
    const INTS: &[&str] = &[
        "pid", "tid", "tgid", "fd", "dirfd", "oldfd", "newfd", "signal", "nstype",
    ];
    const IDS: &[&str] = &[
        "uid", "gid", "ruid", "euid", "suid", "rgid", "egid", "sgid", "fsuid", "fsgid",
    ];
    if INTS.contains(&name) {
        Value::from(i64::from(v as u32 as i32))
    } else if IDS.contains(&name) {
        Value::from(v as u32)
    } else {
        Value::from(v)
    }
}

/// A raw IPv4 (4 bytes) or IPv6 (16 bytes) address as text.
fn ip(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => String::new(),
    }
}
