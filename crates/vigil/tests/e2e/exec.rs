//! Exec events: exact argv, executable path, cwd, parent, credentials, cgroup, ancestry,
//! truncation and byte-exact non-UTF-8 values.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::Value;

use crate::harness::*;

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

#[test]
fn exec_reports_argv_exe_cwd_parent_ids_and_cgroup() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = test_program(dir.path(), OsStr::new("vigil-exec-probe"));
    let cg = TestCgroup::new();
    let agent = Agent::start(&[]);

    let mut cmd = Command::new(&prog);
    cmd.arg0("probe-argv0")
        .args(["hello world", "--flag=1", ""])
        .current_dir(dir.path());
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());

    // Drop to nobody after joining the cgroup (joining needs root): setpriv then execs prog.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut as_nobody = Command::new("setpriv");
    as_nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&prog)
        .arg("nobody");
    cg.enter(&mut as_nobody);
    assert!(as_nobody.status().unwrap().success());

    let done = agent.stop();
    let execs: Vec<_> = in_cgroup(&done.events, "exec", cg.id)
        .into_iter()
        .filter(|e| e["process"]["exe"] == prog.to_str().unwrap())
        .collect();
    assert_eq!(execs.len(), 2, "{execs:#?}");
    let p = &execs[0]["process"];
    assert_eq!(p["exe"], prog.to_str().unwrap());
    assert_eq!(
        p["args"],
        serde_json::json!(["probe-argv0", "hello world", "--flag=1", ""])
    );
    assert_eq!(p["argc"], 4);
    assert_eq!(p["args_truncated"], false);
    assert_eq!(p["cwd"], dir.path().to_str().unwrap());
    assert_eq!(p["ppid"], std::process::id());
    assert_eq!(p["comm"], "vigil-exec-prob"); // the kernel keeps 15 bytes of the file name
    assert_eq!(
        (p["uid"].as_u64(), p["euid"].as_u64(), p["gid"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    assert!(p["tty"].is_null(), "no controlling terminal in tests");
    assert_eq!(execs[0]["ancestry"][0]["pid"], std::process::id());
    assert_eq!(execs[0]["ancestry"][0]["exe"], self_exe());
    assert!(execs[0]["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(execs[0]["time"].as_str().unwrap().ends_with('Z'));

    let n = &execs[1]["process"];
    assert_eq!(
        (n["uid"].as_u64(), n["euid"].as_u64()),
        (Some(65534), Some(65534))
    );
    assert_eq!(
        (n["gid"].as_u64(), n["egid"].as_u64()),
        (Some(65534), Some(65534))
    );
}

#[test]
fn ancestry_covers_a_parent_that_started_before_the_agent() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = test_program(dir.path(), OsStr::new("late-child"));
    let cg = TestCgroup::new();
    // The shell waits for a line on stdin, then runs the child: it exists before the agent.
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(format!("read x; {} from-parent", prog.display()))
        .stdin(Stdio::piped());
    cg.enter(&mut sh);
    let mut parent = sh.spawn().unwrap();
    let agent = Agent::start(&[]);
    use std::io::Write;
    parent.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(parent.wait().unwrap().success());

    let done = agent.stop();
    let exec = in_cgroup(&done.events, "exec", cg.id)
        .into_iter()
        .find(|e| e["process"]["args"][1] == "from-parent")
        .unwrap_or_else(|| panic!("no exec of the child in {:#?}", done.events.len()));
    let shell = std::fs::canonicalize("/bin/sh").unwrap();
    let a = &exec["ancestry"];
    assert_eq!(a[0]["pid"], parent.id());
    assert_eq!(a[0]["exe"], shell.to_str().unwrap());
    assert_eq!(a[1]["pid"], std::process::id());
    assert_eq!(a[1]["exe"], self_exe());
}

#[test]
fn argv_over_the_bound_is_truncated_and_flagged() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = test_program(dir.path(), OsStr::new("long-argv"));
    let cg = TestCgroup::new();
    let agent = Agent::start_with_config(Some("args_max: 256\n"), &[]);
    let args: Vec<String> = (0..100).map(|i| format!("arg-{i:05}")).collect();
    let mut cmd = Command::new(&prog);
    cmd.args(&args);
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());

    let done = agent.stop();
    let execs = in_cgroup(&done.events, "exec", cg.id);
    let p = &execs[0]["process"];
    assert_eq!(p["args_truncated"], true);
    assert_eq!(p["argc"], 101);
    let got: Vec<&str> = p["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let captured: usize = got.iter().map(|a| a.len() + 1).sum();
    assert!(
        captured <= 257,
        "captured {captured} bytes of argv with args_max 256"
    );
    assert_eq!(got[0], prog.to_str().unwrap());
    // Every complete argument is exact; only the last may be cut.
    for (g, want) in got[1..got.len() - 1].iter().zip(&args) {
        assert_eq!(g, want);
    }
}

#[test]
fn non_utf8_paths_and_argv_survive_byte_for_byte() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"prog-\xff\xfe-bin");
    let prog = test_program(dir.path(), name);
    let cg = TestCgroup::new();
    let agent = Agent::start(&[]);
    let odd_arg = OsStr::from_bytes(b"\x80caf\xc3\xa9\xff");
    let mut cmd = Command::new(&prog);
    cmd.arg(odd_arg).arg("plain");
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());

    let done = agent.stop();
    let execs = in_cgroup(&done.events, "exec", cg.id);
    let p = &execs[0]["process"];
    assert_eq!(b64(&p["exe_b64"]), prog.as_os_str().as_bytes());
    assert!(
        p["exe"].as_str().unwrap().contains('\u{fffd}'),
        "readable lossy form alongside"
    );
    let args: Vec<Vec<u8>> = p["args_b64"].as_array().unwrap().iter().map(b64).collect();
    assert_eq!(
        args,
        vec![
            prog.as_os_str().as_bytes().to_vec(),
            odd_arg.as_bytes().to_vec(),
            b"plain".to_vec()
        ]
    );
    assert_eq!(p["args"][2], "plain");
}

#[test]
fn fileless_exec_of_a_memfd_is_reported_as_such() {
    if !require_root() {
        return;
    }
    let cg = TestCgroup::new();
    let agent = Agent::start(&[]);
    let name = c"vigil-fileless";
    // SAFETY: memfd_create with a valid C string; the fd is inherited by the child (no CLOEXEC).
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(fd >= 0);
    let body = std::fs::read("/bin/true").unwrap();
    // SAFETY: writing our own buffer to our own fd.
    assert_eq!(
        unsafe { libc::write(fd, body.as_ptr().cast(), body.len()) },
        body.len() as isize
    );
    let mut cmd = Command::new(format!("/proc/self/fd/{fd}"));
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };

    let done = agent.stop();
    let execs = in_cgroup(&done.events, "exec", cg.id);
    assert_eq!(
        execs[0]["process"]["exe"], "/memfd:vigil-fileless",
        "{:#?}",
        execs[0]
    );
}
