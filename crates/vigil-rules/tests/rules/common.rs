//! Synthetic events, process entries and one-call load/evaluate helpers.

use std::sync::Arc;

use vigil_abi::*;
use vigil_enrich::{Ancestor, Image, ProcInfo};
use vigil_events::{Event, Exec, Exit, File, Fork, Header, Kind, Syscall};
use vigil_rules::{
    all_event_types, load, Alert, EvalContext, LoadError, LoadOptions, NameLookup, RuleFile,
    RuleSet,
};

pub fn header(kind: Kind, tgid: u32) -> Header {
    Header {
        kind,
        time_ns: 5_000_000_000,
        pid: tgid + 1,
        tgid,
        cgroup_id: 1,
    }
}

fn bytes(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// `bash -c id` style exec: comm, resolved exe, argv, cwd.
pub fn exec(comm: &str, exe: &str, args: &[&str], cwd: &str) -> Event {
    Event::Exec(Exec {
        header: header(Kind::Exec, 100),
        start_time_ns: 4_000_000_000,
        ppid: 50,
        uid: 1000,
        gid: 1000,
        euid: 0,
        egid: 0,
        loginuid: Some(1000),
        tty_dev: (136 << 20) | 3,
        comm: comm.into(),
        exe: exe.into(),
        exe_truncated: false,
        cwd: cwd.into(),
        cwd_truncated: false,
        args: bytes(args),
        args_truncated: false,
        argc: args.len() as u32,
    })
}

pub fn fork(comm: &str) -> Event {
    Event::Fork(Fork {
        header: header(Kind::Fork, 100),
        start_time_ns: 4_500_000_000,
        parent_pid: 50,
        parent_tgid: 50,
        thread: false,
        comm: comm.into(),
    })
}

pub fn exit(comm: &str, code: Option<u8>, signal: Option<u8>) -> Event {
    Event::Exit(Exit {
        header: header(Kind::Exit, 100),
        start_time_ns: 4_000_000_000,
        ppid: 1,
        code,
        signal,
        core_dumped: false,
        comm: comm.into(),
    })
}

/// A file event with an absolute path and no second path.
pub fn file(syscall: u32, op: u32, path: &str, flags: u32, result: i64) -> File {
    File {
        header: header(Kind::File, 100),
        result,
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
    }
}

pub fn open(path: &str, flags: u32) -> Event {
    Event::File(file(VIGIL_SYS_OPENAT, VIGIL_FOP_OPEN, path, flags, 3))
}

pub fn syscall(id: u32, args: [u64; 6], strs: [&str; 3], result: i64) -> Event {
    Event::Syscall(Syscall {
        header: header(Kind::Syscall, 100),
        result,
        syscall: id,
        args,
        strs: strs.map(|s| s.as_bytes().to_vec()),
        truncated: false,
        read_failed: false,
    })
}

pub fn image(comm: &str, exe: &str, args: &[&str]) -> Arc<Image> {
    Arc::new(Image {
        exe: exe.into(),
        args: bytes(args),
        cwd: b"/home/u".to_vec(),
        comm: comm.into(),
        ..Image::default()
    })
}

/// The subject's table entry: `bash` run by uid 1000 (euid 0), login session 1000.
pub fn proc_info() -> ProcInfo {
    ProcInfo {
        tgid: 100,
        ppid: 50,
        start_time_ns: 4_000_000_000,
        image: image("bash", "/usr/bin/bash", &["/bin/bash", "-i"]),
        uid: 1000,
        gid: 1000,
        euid: 0,
        egid: 0,
        loginuid: Some(1000),
        tty_dev: 0,
        cgroup_id: 1,
        exited: false,
    }
}

/// Parent `sshd`, grandparent `systemd`.
pub fn ancestry() -> Vec<Ancestor> {
    vec![
        Ancestor {
            pid: 50,
            image: image("sshd", "/usr/sbin/sshd", &["sshd: u@pts/3"]),
        },
        Ancestor {
            pid: 1,
            image: image(
                "systemd",
                "/usr/lib/systemd/systemd",
                &["/sbin/init", "splash"],
            ),
        },
    ]
}

pub struct Names;

impl NameLookup for Names {
    fn user(&self, uid: u32) -> Option<&str> {
        match uid {
            0 => Some("root"),
            1000 => Some("alice"),
            _ => None,
        }
    }

    fn group(&self, gid: u32) -> Option<&str> {
        (gid == 0).then_some("root")
    }
}

pub fn all_types() -> LoadOptions {
    LoadOptions {
        observable: all_event_types().iter().map(|s| s.to_string()).collect(),
    }
}

pub fn try_load(yaml: &str) -> Result<RuleSet, LoadError> {
    load(
        &[RuleFile {
            name: "rules.yaml".into(),
            text: yaml.into(),
        }],
        &all_types(),
    )
}

pub fn load_ok(yaml: &str) -> RuleSet {
    try_load(yaml).unwrap_or_else(|e| panic!("load failed:\n{e}"))
}

/// Alerts for `event` with the standard process entry and ancestry.
pub fn alerts(rs: &RuleSet, event: &Event) -> Vec<Alert> {
    let proc = proc_info();
    let anc = ancestry();
    let ctx = EvalContext {
        event,
        proc: Some(&proc),
        ancestry: &anc,
        names: &Names,
    };
    let mut out = Vec::new();
    rs.evaluate(&ctx, &mut out);
    out
}

pub fn fired(rs: &RuleSet, event: &Event) -> Vec<String> {
    alerts(rs, event).into_iter().map(|a| a.rule).collect()
}

/// A one-rule file with `condition`.
pub fn rule(condition: &str) -> String {
    format!(
        "- rule: R\n  desc: d\n  condition: {}\n  output: o\n  priority: WARNING\n",
        serde_json::to_string(condition).unwrap()
    )
}

/// Whether `condition` matches `event`.
pub fn matches(condition: &str, event: &Event) -> bool {
    let rs = load_ok(&rule(condition));
    assert_eq!(
        rs.enabled_count(),
        1,
        "{condition}: {:?}",
        rs.rules()[0].disabled_reason
    );
    !fired(&rs, event).is_empty()
}
