//! Field values on each kind of event, as vigil-export presents the same event.

use vigil_abi::*;
use vigil_events::Event;
use vigil_rules::EvalContext;

use crate::common::*;

/// The text the output template renders for `field` (`<NA>` when missing).
fn value(field: &str, event: &Event) -> String {
    let yaml = format!(
        "- rule: R\n  desc: d\n  condition: proc.pid exists or not proc.pid exists\n  output: \"%{field}\"\n  priority: INFO\n"
    );
    let rs = load_ok(&yaml);
    assert!(
        rs.rules()[0].warnings.is_empty(),
        "{:?}",
        rs.rules()[0].warnings
    );
    let a = alerts(&rs, event);
    assert_eq!(a.len(), 1);
    a[0].output.clone()
}

#[track_caller]
fn check(event: &Event, expected: &[(&str, &str)]) {
    for (field, want) in expected {
        assert_eq!(value(field, event), *want, "{field}");
    }
}

#[test]
fn exec_event() {
    let e = exec("bash", "/usr/bin/bash", &["/bin/bash", "-c", "id"], "/tmp");
    check(
        &e,
        &[
            ("evt.type", "execve"),
            ("evt.dir", "<"),
            ("evt.res", "SUCCESS"),
            ("evt.rawres", "0"),
            ("evt.failed", "false"),
            ("evt.time", "5000000000"),
            ("evt.source", "syscall"),
            ("evt.arg.filename", "/usr/bin/bash"),
            (
                "evt.args",
                "filename=/usr/bin/bash exe=/bin/bash args=-c id cwd=/tmp",
            ),
            ("proc.pid", "100"),
            ("proc.tid", "101"),
            ("thread.tid", "101"),
            ("proc.ppid", "50"),
            ("proc.name", "bash"),
            ("proc.exe", "/bin/bash"),
            ("proc.exepath", "/usr/bin/bash"),
            ("proc.cmdline", "bash -c id"),
            ("proc.args", "-c id"),
            ("proc.exeline", "/bin/bash -c id"),
            ("proc.cwd", "/tmp/"),
            ("proc.tty", &((136u32 << 20) | 3).to_string()),
            ("proc.loginuid", "1000"),
            ("proc.duration", "1000000000"),
            ("proc.is_exe_from_memfd", "false"),
            ("proc.pname", "sshd"),
            ("proc.pexe", "sshd: u@pts/3"),
            ("proc.pexepath", "/usr/sbin/sshd"),
            ("proc.pcmdline", "sshd"),
            ("proc.aname[0]", "bash"),
            ("proc.aname[1]", "sshd"),
            ("proc.aname[2]", "systemd"),
            ("proc.aname[3]", "<NA>"),
            ("proc.apid[2]", "1"),
            ("proc.aexepath[2]", "/usr/lib/systemd/systemd"),
            ("proc.acmdline[2]", "systemd splash"),
            ("user.uid", "0"),
            ("user.name", "root"),
            ("user.loginuid", "1000"),
            ("user.loginname", "alice"),
            ("group.gid", "0"),
            ("group.name", "root"),
            ("fd.name", "<NA>"),
            ("container.id", "host"),
            ("k8s.pod.label[app]", "<NA>"),
        ],
    );
}

#[test]
fn any_ancestor_matches() {
    let e = exec("bash", "/usr/bin/bash", &["bash"], "/");
    assert!(matches("proc.aname = systemd", &e));
    assert!(matches("proc.aname in (cron, sshd)", &e));
    assert!(
        !matches("proc.aname = bash", &e),
        "the subject is not an ancestor"
    );
    assert!(matches("proc.aname[2] = systemd", &e));
    assert!(!matches("proc.aname[1] = systemd", &e));
    assert!(matches("proc.aname startswith sys", &e));
    assert!(matches("proc.apid = 1", &e));
    assert!(!matches("proc.aname[9] exists", &e));
}

#[test]
fn file_events() {
    let mut f = file(VIGIL_SYS_OPENAT, VIGIL_FOP_OPEN, "x/../shadow", 0o1101, 5);
    f.base = b"/etc".to_vec();
    let e = Event::File(f);
    check(
        &e,
        &[
            ("evt.type", "openat"),
            ("fd.name", "/etc/shadow"),
            ("fd.nameraw", "/etc/shadow"),
            ("fs.path.nameraw", "x/../shadow"),
            ("fd.directory", "/etc"),
            ("fd.filename", "shadow"),
            ("fd.typechar", "f"),
            ("fd.type", "file"),
            ("fd.num", "5"),
            ("evt.arg.flags", "O_WRONLY|O_CREAT|O_TRUNC"),
            ("evt.rawarg.flags", "577"),
            ("evt.arg.mode", "0644"),
            ("evt.arg.fd", "5"),
            ("evt.arg.name", "/etc/shadow"),
            ("evt.is_open_write", "true"),
            ("evt.is_open_read", "false"),
            ("evt.is_open_create", "true"),
            ("evt.is_open_exec", "false"),
            ("proc.name", "bash"),
            ("proc.cmdline", "bash -i"),
            ("proc.ppid", "50"),
        ],
    );
    assert!(matches("evt.arg.flags contains O_CREAT", &e));
    assert!(matches("evt.rawarg.flags = 577", &e));
    assert!(matches("evt.arg.flags = 577", &e));
    assert!(matches("fd.name pmatch (/etc)", &e));
    let failed = Event::File(file(
        VIGIL_SYS_UNLINKAT,
        VIGIL_FOP_UNLINK,
        "/etc/passwd",
        0,
        -13,
    ));
    check(
        &failed,
        &[
            ("evt.type", "unlinkat"),
            ("evt.res", "EACCES"),
            ("evt.rawres", "-13"),
            ("evt.failed", "true"),
            ("evt.is_open_read", "false"),
            ("fd.num", "<NA>"),
        ],
    );
    let mut rename = file(VIGIL_SYS_RENAMEAT2, VIGIL_FOP_RENAME, "/tmp/a", 0, 0);
    rename.path2 = b"b".to_vec();
    rename.base2 = b"/root".to_vec();
    check(
        &Event::File(rename),
        &[
            ("fd.name", "/tmp/a"),
            ("evt.arg.oldpath", "/tmp/a"),
            ("evt.arg.newpath", "/root/b"),
            ("fs.path.source", "/tmp/a"),
            ("fs.path.target", "/root/b"),
        ],
    );
    let mut link = file(VIGIL_SYS_SYMLINKAT, VIGIL_FOP_SYMLINK, "/etc/shadow", 0, 0);
    link.path2 = b"/tmp/s".to_vec();
    check(
        &Event::File(link),
        &[
            ("fd.name", "/tmp/s"),
            ("evt.arg.target", "/etc/shadow"),
            ("evt.arg.linkpath", "/tmp/s"),
            ("fs.path.source", "/etc/shadow"),
        ],
    );
}

#[test]
fn syscall_events() {
    let ptrace = syscall(VIGIL_SYS_PTRACE, [16, 4242, 0, 0, 0, 0], ["", "", ""], 0);
    check(
        &ptrace,
        &[
            ("evt.type", "ptrace"),
            ("evt.arg.request", "PTRACE_ATTACH"),
            ("evt.rawarg.request", "16"),
            ("evt.arg.request_name", "PTRACE_ATTACH"),
            ("evt.arg.pid", "4242"),
            ("evt.args", "res=0 request=PTRACE_ATTACH pid=4242"),
        ],
    );
    assert!(matches("evt.arg.request = PTRACE_ATTACH", &ptrace));
    assert!(matches("evt.arg.request = 16", &ptrace));
    assert!(matches(
        "evt.arg.request in (PTRACE_POKETEXT, PTRACE_ATTACH)",
        &ptrace
    ));
    assert!(!matches("evt.arg.request = PTRACE_TRACEME", &ptrace));
    let kill = syscall(VIGIL_SYS_KILL, [1, 9, 0, 0, 0, 0], ["", "", ""], 0);
    check(
        &kill,
        &[
            ("evt.arg.sig", "SIGKILL"),
            ("evt.arg.signal_name", "SIGKILL"),
        ],
    );
    let unshare = syscall(
        VIGIL_SYS_UNSHARE,
        [0x1000_0000 | 0x2_0000, 0, 0, 0, 0, 0],
        ["", "", ""],
        0,
    );
    check(&unshare, &[("evt.arg.flags", "CLONE_NEWNS|CLONE_NEWUSER")]);
    assert!(matches("evt.arg.flags contains CLONE_NEWUSER", &unshare));
    let mount = syscall(
        VIGIL_SYS_MOUNT,
        [0, 0, 0, 7, 0, 0],
        ["none", "/mnt", "tmpfs"],
        -1,
    );
    check(
        &mount,
        &[
            ("evt.arg.source", "none"),
            ("evt.arg.dev", "none"),
            ("evt.arg.dir", "/mnt"),
            ("evt.arg.type", "tmpfs"),
            ("evt.arg.flags", "7"),
            ("evt.res", "EPERM"),
            ("fd.name", "<NA>"),
        ],
    );
    let socket = syscall(VIGIL_SYS_SOCKET, [17, 3, 0, 0, 0, 0], ["", "", ""], 4);
    assert!(matches("evt.arg.domain contains AF_PACKET", &socket));
    let dup = syscall(
        VIGIL_SYS_DUP2,
        [3, 1, 0, 2, 4444, 0],
        ["\u{a}\u{0}\u{0}\u{1}", "", ""],
        1,
    );
    check(
        &dup,
        &[
            ("evt.type", "dup2"),
            ("evt.rawres", "1"),
            ("fd.name", "10.0.0.1:4444"),
            ("fd.rip", "10.0.0.1"),
            ("fd.rport", "4444"),
            ("fd.type", "ipv4"),
            ("fd.typechar", "4"),
            ("fd.sockfamily", "ip"),
            ("fd.num", "1"),
            ("evt.arg.peer_addr", "10.0.0.1"),
            ("evt.arg.family", "AF_INET"),
        ],
    );
    assert!(matches(
        "evt.type in (dup, dup2, dup3) and evt.rawres in (0, 1, 2) and fd.type in (\"ipv4\", \"ipv6\")",
        &dup
    ));
    let memfd = syscall(
        VIGIL_SYS_EXECVEAT,
        [3, 0x1000, 0, 0, 0, 0],
        ["", "", ""],
        -2,
    );
    check(
        &memfd,
        &[("evt.arg.empty_path", "true"), ("evt.arg.dirfd", "3")],
    );
}

#[test]
fn fork_and_exit_events() {
    check(
        &fork("bash"),
        &[
            ("evt.type", "clone"),
            ("proc.name", "bash"),
            ("proc.ppid", "50"),
            ("proc.exepath", "/usr/bin/bash"),
            ("proc.duration", "500000000"),
        ],
    );
    check(
        &exit("worker", None, Some(11)),
        &[
            ("evt.type", "procexit"),
            ("proc.name", "worker"),
            ("proc.ppid", "1"),
            ("evt.arg.sig", "SIGSEGV"),
            ("evt.arg.ret", "<NA>"),
            ("proc.duration", "1000000000"),
        ],
    );
}

#[test]
fn unknown_process_fields_are_missing() {
    let e = Event::File(file(VIGIL_SYS_OPENAT, VIGIL_FOP_OPEN, "/etc/x", 1, 3));
    let rs = load_ok(
        "- rule: R\n  desc: d\n  condition: fd.name = /etc/x\n  output: \"%proc.exepath %user.uid %proc.pname %fd.name\"\n  priority: INFO\n",
    );
    let ctx = EvalContext {
        event: &e,
        proc: None,
        ancestry: &[],
        names: &vigil_rules::NoNames,
        container: None,
        pod: None,
    };
    let mut out = Vec::new();
    rs.evaluate(&ctx, &mut out);
    assert_eq!(out[0].output, "<NA> <NA> <NA> /etc/x");
}
