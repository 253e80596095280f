//! Names for the numbers in file and syscall events: syscalls, operations, flags, errnos,
//! signals. Only what Vigil reports; unknown values are shown as numbers by the caller.

use vigil_abi::*;

/// The syscall name (Linux spelling, as Falco's `evt.type` uses it).
pub fn syscall(id: u32) -> &'static str {
    match id {
        VIGIL_SYS_OPEN => "open",
        VIGIL_SYS_OPENAT => "openat",
        VIGIL_SYS_OPENAT2 => "openat2",
        VIGIL_SYS_CREAT => "creat",
        VIGIL_SYS_UNLINK => "unlink",
        VIGIL_SYS_UNLINKAT => "unlinkat",
        VIGIL_SYS_RENAME => "rename",
        VIGIL_SYS_RENAMEAT => "renameat",
        VIGIL_SYS_RENAMEAT2 => "renameat2",
        VIGIL_SYS_MKDIR => "mkdir",
        VIGIL_SYS_MKDIRAT => "mkdirat",
        VIGIL_SYS_RMDIR => "rmdir",
        VIGIL_SYS_CHMOD => "chmod",
        VIGIL_SYS_FCHMOD => "fchmod",
        VIGIL_SYS_FCHMODAT => "fchmodat",
        VIGIL_SYS_FCHMODAT2 => "fchmodat2",
        VIGIL_SYS_CHOWN => "chown",
        VIGIL_SYS_LCHOWN => "lchown",
        VIGIL_SYS_FCHOWN => "fchown",
        VIGIL_SYS_FCHOWNAT => "fchownat",
        VIGIL_SYS_LINK => "link",
        VIGIL_SYS_LINKAT => "linkat",
        VIGIL_SYS_SYMLINK => "symlink",
        VIGIL_SYS_SYMLINKAT => "symlinkat",
        VIGIL_SYS_TRUNCATE => "truncate",
        VIGIL_SYS_FTRUNCATE => "ftruncate",
        VIGIL_SYS_PTRACE => "ptrace",
        VIGIL_SYS_SETUID => "setuid",
        VIGIL_SYS_SETGID => "setgid",
        VIGIL_SYS_SETREUID => "setreuid",
        VIGIL_SYS_SETREGID => "setregid",
        VIGIL_SYS_SETRESUID => "setresuid",
        VIGIL_SYS_SETRESGID => "setresgid",
        VIGIL_SYS_SETFSUID => "setfsuid",
        VIGIL_SYS_SETFSGID => "setfsgid",
        VIGIL_SYS_CAPSET => "capset",
        VIGIL_SYS_UNSHARE => "unshare",
        VIGIL_SYS_SETNS => "setns",
        VIGIL_SYS_CLONE => "clone",
        VIGIL_SYS_CLONE3 => "clone3",
        VIGIL_SYS_MOUNT => "mount",
        VIGIL_SYS_UMOUNT2 => "umount2",
        VIGIL_SYS_CHROOT => "chroot",
        VIGIL_SYS_PIVOT_ROOT => "pivot_root",
        VIGIL_SYS_MEMFD_CREATE => "memfd_create",
        VIGIL_SYS_EXECVEAT => "execveat",
        VIGIL_SYS_BPF => "bpf",
        VIGIL_SYS_SOCKET => "socket",
        VIGIL_SYS_DUP2 => "dup2",
        VIGIL_SYS_DUP3 => "dup3",
        VIGIL_SYS_KILL => "kill",
        VIGIL_SYS_TKILL => "tkill",
        VIGIL_SYS_TGKILL => "tgkill",
        VIGIL_SYS_PRCTL => "prctl",
        VIGIL_SYS_INIT_MODULE => "init_module",
        VIGIL_SYS_FINIT_MODULE => "finit_module",
        VIGIL_SYS_IO_URING_SUBMIT => "io_uring_submit",
        _ => "unknown",
    }
}

/// Argument names of a security syscall, in `args[]` order ("" = not reported), and the names
/// of its string slots.
pub fn syscall_args(id: u32) -> (&'static [&'static str], &'static [&'static str]) {
    match id {
        VIGIL_SYS_PTRACE => (&["request", "pid"], &[]),
        VIGIL_SYS_SETUID => (&["uid"], &[]),
        VIGIL_SYS_SETGID => (&["gid"], &[]),
        VIGIL_SYS_SETREUID => (&["ruid", "euid"], &[]),
        VIGIL_SYS_SETREGID => (&["rgid", "egid"], &[]),
        VIGIL_SYS_SETRESUID => (&["ruid", "euid", "suid"], &[]),
        VIGIL_SYS_SETRESGID => (&["rgid", "egid", "sgid"], &[]),
        VIGIL_SYS_SETFSUID => (&["fsuid"], &[]),
        VIGIL_SYS_SETFSGID => (&["fsgid"], &[]),
        VIGIL_SYS_CAPSET => (&["effective", "permitted", "inheritable"], &[]),
        VIGIL_SYS_UNSHARE => (&["flags"], &[]),
        VIGIL_SYS_SETNS => (&["fd", "nstype"], &[]),
        VIGIL_SYS_CLONE | VIGIL_SYS_CLONE3 => (&["flags"], &[]),
        VIGIL_SYS_MOUNT => (&["", "", "", "flags"], &["source", "target", "fstype"]),
        VIGIL_SYS_UMOUNT2 => (&["", "flags"], &["target"]),
        VIGIL_SYS_CHROOT => (&[], &["path"]),
        VIGIL_SYS_PIVOT_ROOT => (&[], &["new_root", "put_old"]),
        VIGIL_SYS_MEMFD_CREATE => (&["", "flags"], &["name"]),
        VIGIL_SYS_EXECVEAT => (&["dirfd", "flags"], &["path"]),
        VIGIL_SYS_BPF => (&["cmd"], &[]),
        VIGIL_SYS_SOCKET => (&["family", "type", "protocol"], &[]),
        VIGIL_SYS_DUP2 | VIGIL_SYS_DUP3 => (
            &["oldfd", "newfd", "flags", "family", "peer_port"],
            &["peer_addr"],
        ),
        VIGIL_SYS_KILL => (&["pid", "signal"], &[]),
        VIGIL_SYS_TKILL => (&["tid", "signal"], &[]),
        VIGIL_SYS_TGKILL => (&["tgid", "tid", "signal"], &[]),
        VIGIL_SYS_PRCTL => (&["option", "arg2", "arg3"], &["name"]),
        VIGIL_SYS_INIT_MODULE => (&["", "len"], &["", "params"]),
        VIGIL_SYS_FINIT_MODULE => (&["fd", "", "flags"], &["", "params"]),
        VIGIL_SYS_IO_URING_SUBMIT => (&["opcode", "user_data"], &[]),
        _ => (&[], &[]),
    }
}

/// The file operation, whichever syscall performed it.
pub fn file_op(op: u32) -> &'static str {
    match op {
        VIGIL_FOP_OPEN => "open",
        VIGIL_FOP_UNLINK => "unlink",
        VIGIL_FOP_RENAME => "rename",
        VIGIL_FOP_MKDIR => "mkdir",
        VIGIL_FOP_RMDIR => "rmdir",
        VIGIL_FOP_CHMOD => "chmod",
        VIGIL_FOP_CHOWN => "chown",
        VIGIL_FOP_LINK => "link",
        VIGIL_FOP_SYMLINK => "symlink",
        VIGIL_FOP_TRUNCATE => "truncate",
        _ => "unknown",
    }
}

/// open(2) flags as names: the access mode first, then the others Vigil's users ask about.
pub fn open_flags(flags: u32) -> Vec<&'static str> {
    let mut out = vec![match flags & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        _ => "O_RDWR",
    }];
    const FLAGS: &[(u32, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o40000, "O_DIRECT"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ];
    // O_TMPFILE includes O_DIRECTORY's bit.
    if flags & 0o20200000 == 0o20200000 {
        out.push("O_TMPFILE");
    }
    for (bit, name) in FLAGS {
        if flags & bit != 0 && !(*bit == 0o200000 && out.contains(&"O_TMPFILE")) {
            out.push(name);
        }
    }
    out
}

/// CLONE_NEW* namespace flags present in `flags` (clone, clone3, unshare, setns).
pub fn namespaces(flags: u64) -> Vec<&'static str> {
    const NS: &[(u64, &str)] = &[
        (0x0002_0000, "CLONE_NEWNS"),
        (0x0200_0000, "CLONE_NEWCGROUP"),
        (0x0400_0000, "CLONE_NEWUTS"),
        (0x0800_0000, "CLONE_NEWIPC"),
        (0x1000_0000, "CLONE_NEWUSER"),
        (0x2000_0000, "CLONE_NEWPID"),
        (0x4000_0000, "CLONE_NEWNET"),
        (0x0000_0080, "CLONE_NEWTIME"),
    ];
    NS.iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// errno name for a negative syscall result.
pub fn errno(result: i64) -> Option<&'static str> {
    if result >= 0 {
        return None;
    }
    Some(match -result {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        26 => "ETXTBSY",
        28 => "ENOSPC",
        30 => "EROFS",
        31 => "EMLINK",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        95 => "EOPNOTSUPP",
        6 => "ENXIO",
        7 => "E2BIG",
        8 => "ENOEXEC",
        10 => "ECHILD",
        19 => "ENODEV",
        25 => "ENOTTY",
        27 => "EFBIG",
        29 => "ESPIPE",
        32 => "EPIPE",
        34 => "ERANGE",
        75 => "EOVERFLOW",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        115 => "EINPROGRESS",
        122 => "EDQUOT",
        _ => "EOTHER",
    })
}

/// Signal name (x86-64/generic numbering).
pub fn signal(sig: u64) -> Option<&'static str> {
    const SIGS: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| SIGS.get(i))
        .copied()
}

/// ptrace request name for the requests attackers use.
pub fn ptrace_request(req: u64) -> Option<&'static str> {
    Some(match req {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        13 => "PTRACE_SETREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        0x4206 => "PTRACE_SEIZE",
        _ => return None,
    })
}

/// prctl option name for the options Vigil reports.
pub fn prctl_option(opt: u64) -> Option<&'static str> {
    Some(match opt {
        4 => "PR_SET_DUMPABLE",
        15 => "PR_SET_NAME",
        22 => "PR_SET_SECCOMP",
        24 => "PR_CAPBSET_DROP",
        35 => "PR_SET_MM",
        36 => "PR_SET_CHILD_SUBREAPER",
        38 => "PR_SET_NO_NEW_PRIVS",
        47 => "PR_CAP_AMBIENT",
        0x5961_6d61 => "PR_SET_PTRACER",
        _ => return None,
    })
}

/// bpf(2) command name.
pub fn bpf_cmd(cmd: u64) -> Option<&'static str> {
    const CMDS: [&str; 10] = [
        "BPF_MAP_CREATE",
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
        "BPF_PROG_LOAD",
        "BPF_OBJ_PIN",
        "BPF_OBJ_GET",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
    ];
    usize::try_from(cmd).ok().and_then(|c| CMDS.get(c)).copied()
}

/// Socket family name.
pub fn family(f: u64) -> Option<&'static str> {
    Some(match f {
        1 => "AF_UNIX",
        2 => "AF_INET",
        10 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        _ => return None,
    })
}

/// io_uring opcode name for the opcodes that touch files and the network.
pub fn io_uring_op(op: u64) -> Option<&'static str> {
    Some(match op {
        0 => "IORING_OP_NOP",
        1 => "IORING_OP_READV",
        2 => "IORING_OP_WRITEV",
        13 => "IORING_OP_ACCEPT",
        16 => "IORING_OP_CONNECT",
        18 => "IORING_OP_OPENAT",
        19 => "IORING_OP_CLOSE",
        22 => "IORING_OP_READ",
        23 => "IORING_OP_WRITE",
        26 => "IORING_OP_SEND",
        27 => "IORING_OP_RECV",
        28 => "IORING_OP_OPENAT2",
        35 => "IORING_OP_RENAMEAT",
        36 => "IORING_OP_UNLINKAT",
        37 => "IORING_OP_MKDIRAT",
        38 => "IORING_OP_SYMLINKAT",
        39 => "IORING_OP_LINKAT",
        45 => "IORING_OP_SOCKET",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_names() {
        assert_eq!(open_flags(0), ["O_RDONLY"]);
        assert_eq!(open_flags(0o1101), ["O_WRONLY", "O_CREAT", "O_TRUNC"]);
        assert_eq!(open_flags(0o20200002), ["O_RDWR", "O_TMPFILE"]);
        assert_eq!(
            namespaces(0x4000_0000 | 0x0002_0000),
            ["CLONE_NEWNS", "CLONE_NEWNET"]
        );
        assert_eq!(errno(-2), Some("ENOENT"));
        assert_eq!(errno(3), None);
        assert_eq!(signal(9), Some("SIGKILL"));
        assert_eq!(signal(0), None);
        assert_eq!(syscall(VIGIL_SYS_RENAMEAT2), "renameat2");
    }
}
