//! Micro-benchmark: loads 40 Falco-style rules and evaluates 1,000,000 synthetic events.
//!
//! `cargo run --release -p vigil-rules --example bench [events]`

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use vigil_abi::*;
use vigil_enrich::{Ancestor, Image, ProcInfo};
use vigil_events::{Event, Exec, Exit, File, Fork, Header, Kind, Syscall};
use vigil_rules::{all_event_types, load, EvalContext, LoadOptions, NameLookup, RuleFile};

const HEAD: &str = r#"
- list: shell_binaries
  items: [ash, bash, csh, ksh, sh, tcsh, zsh, dash]
- list: sensitive_file_names
  items: [/etc/shadow, /etc/sudoers, /etc/pam.conf, /etc/security/pwquality.conf]
- list: bin_dirs
  items: [/bin, /sbin, /usr/bin, /usr/sbin]
- list: package_mgmt_binaries
  items: [rpm, dpkg, apt, apt-get, yum, dnf, pip, npm]
- list: network_tools
  items: [nc, ncat, netcat, socat, nmap, tcpdump]
- macro: spawned_process
  condition: (evt.type in (execve, execveat) and evt.dir=<)
- macro: open_write
  condition: (evt.type in (open,openat,openat2) and evt.is_open_write=true and fd.typechar='f' and fd.num>=0)
- macro: open_read
  condition: (evt.type in (open,openat,openat2) and evt.is_open_read=true and fd.typechar='f' and fd.num>=0)
- macro: shell_procs
  condition: proc.name in (shell_binaries)
- macro: bin_dir
  condition: (fd.directory in (bin_dirs))
- macro: sensitive_files
  condition: (fd.name startswith /etc and (fd.name in (sensitive_file_names) or fd.directory in (/etc/sudoers.d, /etc/pam.d)))
- macro: container
  condition: (container.id != host)
- macro: interactive
  condition: ((proc.aname=sshd and proc.name != sshd) or proc.name=systemd-logind or proc.name=login)
- macro: package_mgmt_procs
  condition: proc.name in (package_mgmt_binaries)
"#;

/// Rules with the shapes Falco's default rules have.
fn rules() -> String {
    let mut s = HEAD.to_string();
    let conds = [
        "spawned_process and shell_procs and proc.pname in (nginx, httpd, apache2, node)",
        "spawned_process and proc.name in (network_tools) and not user.name = root",
        "spawned_process and proc.cmdline contains \"base64 -d\"",
        "spawned_process and proc.exepath startswith /dev/shm",
        "spawned_process and proc.exepath startswith /tmp and proc.aname[2] = cron",
        "spawned_process and proc.is_exe_from_memfd = true",
        "spawned_process and proc.name = sudo and proc.args icontains \"--preserve-env\"",
        "spawned_process and proc.cmdline regex '.*(curl|wget) .*[|] *(ba)?sh.*'",
        "spawned_process and package_mgmt_procs and container",
        "spawned_process and proc.tty != 0 and container",
        "spawned_process and interactive and proc.name in (gdb, strace, ltrace)",
        "spawned_process and proc.exepath glob '/home/*/.cache/*'",
        "open_write and bin_dir and not package_mgmt_procs",
        "open_write and sensitive_files and not proc.name in (passwd, chpasswd, useradd)",
        "open_read and sensitive_files and not proc.name in (sshd, login, sudo, su)",
        "open_write and fd.name pmatch (/etc/cron.d, /var/spool/cron)",
        "open_write and fd.filename in (.bashrc, .bash_profile, .profile, .zshrc)",
        "open_write and fd.name startswith /root/.ssh",
        "open_write and fd.name endswith authorized_keys",
        "open_read and fd.name in (/proc/kcore, /dev/mem)",
        "open_write and fd.directory = /etc/systemd/system",
        "open_write and fd.name contains /.git/hooks/",
        "evt.type in (unlink, unlinkat) and fd.name pmatch (/var/log)",
        "evt.type in (rename, renameat, renameat2) and fd.name endswith .bash_history",
        "evt.type in (unlink, unlinkat) and fd.name endswith .bash_history",
        "evt.type in (chmod, fchmod, fchmodat) and evt.arg.mode contains 4",
        "evt.type in (symlink, symlinkat) and evt.arg.target in (sensitive_file_names)",
        "evt.type in (link, linkat) and evt.arg.target in (sensitive_file_names)",
        "evt.type = ptrace and evt.arg.request in (PTRACE_ATTACH, PTRACE_POKETEXT)",
        "evt.type = ptrace and evt.arg.request = PTRACE_TRACEME",
        "evt.type in (setuid, setresuid) and evt.arg.uid = 0 and not user.uid = 0",
        "evt.type = unshare and evt.arg.flags contains CLONE_NEWUSER",
        "evt.type = mount and not proc.name in (mount, systemd)",
        "evt.type in (dup2, dup3) and evt.rawres in (0, 1, 2) and fd.type in (ipv4, ipv6)",
        "evt.type = memfd_create and proc.name in (shell_binaries)",
        "evt.type in (init_module, finit_module)",
        "evt.type = bpf and evt.arg.cmd = BPF_PROG_LOAD and not proc.name = systemd",
        "evt.type = procexit and evt.arg.sig = SIGSEGV and proc.name in (shell_binaries)",
        "evt.type = clone and proc.aname = sshd and proc.name = nc",
        "proc.name = xmrig or proc.cmdline contains stratum+tcp",
    ];
    for (i, c) in conds.iter().enumerate() {
        let _ = write!(
            s,
            "- rule: Rule {i}\n  desc: d\n  condition: {}\n  output: \"proc=%proc.name cmd=%proc.cmdline file=%fd.name parent=%proc.pname\"\n  priority: WARNING\n",
            serde_json::to_string(c).unwrap()
        );
    }
    s
}

fn header(kind: Kind, n: u32) -> Header {
    Header {
        kind,
        time_ns: u64::from(n) * 1000,
        pid: 1000 + n % 50,
        tgid: 1000 + n % 50,
        cgroup_id: 1,
    }
}

fn file(n: u32, syscall: u32, op: u32, path: &str, flags: u32) -> Event {
    Event::File(File {
        header: header(Kind::File, n),
        result: 3,
        syscall,
        op,
        flags,
        mode: 0o644,
        dirfd: -100,
        dirfd2: -100,
        fd: None,
        uid: u32::MAX,
        gid: u32::MAX,
        length: 0,
        path: path.into(),
        base: Vec::new(),
        path2: Vec::new(),
        base2: Vec::new(),
        truncated: false,
        read_failed: false,
        unfiltered: false,
    })
}

/// A mix like a busy host's: file activity dominates, then process events, then security
/// syscalls; about 3% of events raise an alert.
fn events() -> Vec<Event> {
    let comms = ["bash", "nginx", "python3", "cron", "sshd", "curl"];
    // One path in ten is one the rules watch.
    let paths = [
        "/tmp/x.txt",
        "/home/u/notes.md",
        "/var/lib/dpkg/status",
        "/var/cache/apt/pkgcache.bin",
        "/home/u/.cache/pip/x",
        "/tmp/build/out.o",
        "/run/user/1000/bus",
        "/var/tmp/y",
        "/etc/hosts",
        "/usr/bin/ls",
    ];
    (0..1000u32)
        .map(|n| {
            let comm = comms[(n / 10) as usize % comms.len()];
            let path = paths[(n / 10) as usize % paths.len()];
            match n % 10 {
                0 | 1 => Event::Exec(Exec {
                    header: header(Kind::Exec, n),
                    start_time_ns: 0,
                    ppid: 1,
                    uid: 1000,
                    gid: 1000,
                    euid: 1000,
                    egid: 1000,
                    loginuid: Some(1000),
                    tty_dev: 0,
                    comm: comm.into(),
                    exe: format!("/usr/bin/{comm}").into_bytes(),
                    exe_truncated: false,
                    cwd: b"/home/u".to_vec(),
                    cwd_truncated: false,
                    args: vec![comm.into(), b"-c".to_vec(), b"echo hello world".to_vec()],
                    args_truncated: false,
                    argc: 3,
                }),
                2..=4 => file(n, VIGIL_SYS_OPENAT, VIGIL_FOP_OPEN, path, 0o1101),
                5 => file(n, VIGIL_SYS_OPENAT, VIGIL_FOP_OPEN, path, 0),
                6 => file(n, VIGIL_SYS_UNLINKAT, VIGIL_FOP_UNLINK, path, 0),
                7 => Event::Fork(Fork {
                    header: header(Kind::Fork, n),
                    start_time_ns: 0,
                    parent_pid: 1,
                    parent_tgid: 1,
                    thread: false,
                    comm: comm.into(),
                }),
                8 => Event::Exit(Exit {
                    header: header(Kind::Exit, n),
                    start_time_ns: 0,
                    ppid: 1,
                    code: Some(0),
                    signal: None,
                    core_dumped: false,
                    comm: comm.into(),
                    exe: None,
                    exe_truncated: false,
                }),
                _ => Event::Syscall(Syscall {
                    header: header(Kind::Syscall, n),
                    result: 0,
                    syscall: [VIGIL_SYS_SETUID, VIGIL_SYS_KILL, VIGIL_SYS_PTRACE][n as usize % 3],
                    args: [16, 15, 0, 0, 0, 0],
                    strs: [b"none".to_vec(), b"/mnt".to_vec(), b"tmpfs".to_vec()],
                    truncated: false,
                    read_failed: false,
                }),
            }
        })
        .collect()
}

struct Names;

impl NameLookup for Names {
    fn user(&self, uid: u32) -> Option<&str> {
        (uid == 0).then_some("root")
    }

    fn group(&self, _gid: u32) -> Option<&str> {
        None
    }
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let opts = LoadOptions {
        observable: all_event_types().iter().map(|s| s.to_string()).collect(),
    };
    let files = [RuleFile {
        name: "bench.yaml".into(),
        text: rules(),
    }];
    let t = Instant::now();
    let rs = load(&files, &opts).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "loaded {} rules ({} enabled) in {:.2} ms",
        rs.rules().len(),
        rs.enabled_count(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let image = |comm: &str| {
        Arc::new(Image {
            exe: format!("/usr/bin/{comm}").into_bytes(),
            args: vec![comm.into(), b"--flag".to_vec()],
            comm: comm.into(),
            cwd: b"/".to_vec(),
            ..Image::default()
        })
    };
    let proc = ProcInfo {
        tgid: 1000,
        ppid: 900,
        start_time_ns: 0,
        image: image("bash"),
        uid: 1000,
        gid: 1000,
        euid: 1000,
        egid: 1000,
        loginuid: Some(1000),
        tty_dev: 0,
        cgroup_id: 1,
        exited: false,
    };
    let ancestry = [
        Ancestor {
            pid: 900,
            image: image("sshd"),
        },
        Ancestor {
            pid: 800,
            image: image("sshd"),
        },
        Ancestor {
            pid: 1,
            image: image("systemd"),
        },
    ];
    let events = events();
    let mut alerts = Vec::new();
    let mut fired = 0usize;
    let t = Instant::now();
    for i in 0..total {
        let ctx = EvalContext {
            event: &events[i % events.len()],
            proc: Some(&proc),
            ancestry: &ancestry,
            names: &Names,
            container: None,
            pod: None,
        };
        rs.evaluate(&ctx, &mut alerts);
        fired += alerts.len();
        alerts.clear();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{total} events in {secs:.3} s: {:.0} events/s, {fired} alerts",
        total as f64 / secs
    );
}
