//! The default ruleset on real triggers: each rule fires for its trigger with the right output
//! fields, alerts have Falco's shape, and a benign workload raises nothing.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::*;

/// Alerts of `rule` in the agent's output.
fn alerts<'a>(events: &'a [Value], rule: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "alert" && e["rule"] == rule)
        .collect()
}

/// The one alert of `rule` whose output field `field` equals `value`; panics with context.
fn alert_with<'a>(events: &'a [Value], rule: &str, field: &str, value: &str) -> &'a Value {
    let all = alerts(events, rule);
    all.iter()
        .copied()
        .find(|a| a["output_fields"][field] == value)
        .unwrap_or_else(|| {
            panic!("no `{rule}` alert with {field}={value}; alerts of that rule: {all:#?}")
        })
}

fn copy_as(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = test_program(dir, OsStr::new(name));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn execution_rules_fire_on_their_triggers() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = dir.path().join("nginx");
    std::fs::copy("/bin/sh", &server).unwrap();
    let agent = Agent::start(&["--events", "exec"]);

    let run = |cmd: &mut Command| assert!(cmd.status().unwrap().success());
    run(Command::new(&server).args(["-c", "/bin/sh -c true; true"]));
    let nc = copy_as(dir.path(), "nc");
    run(Command::new(&nc).args(["-e", "/bin/sh", "127.0.0.1", "9"]));
    run(&mut Command::new(copy_as(dir.path(), "sudo")));
    run(Command::new(copy_as(dir.path(), "find")).args(["/", "-name", "id_rsa"]));
    run(Command::new(copy_as(dir.path(), "shred")).arg("-u"));
    // Fileless: execute a memfd holding /bin/true.
    // SAFETY: memfd_create with a valid C string; the fd is inherited by the child.
    let fd = unsafe { libc::memfd_create(c"vigil-rules".as_ptr(), 0) };
    let body = std::fs::read("/bin/true").unwrap();
    // SAFETY: writing our own buffer to our own fd.
    assert_eq!(
        unsafe { libc::write(fd, body.as_ptr().cast(), body.len()) },
        body.len() as isize
    );
    run(&mut Command::new(format!("/proc/self/fd/{fd}")));
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };

    let done = agent.stop();
    let ev = &done.events;
    let a = alert_with(
        ev,
        "Shell spawned by a server process",
        "proc.pname",
        "nginx",
    );
    assert_eq!(a["priority"], "Warning");
    assert_eq!(a["source"], "syscall");
    assert!(
        a["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "T1059.004"),
        "{a}"
    );
    assert!(
        a["output"]
            .as_str()
            .unwrap()
            .starts_with("Shell spawned by server nginx"),
        "{a}"
    );
    // The alert names the event it came from.
    let exec = ev
        .iter()
        .find(|e| e["kind"] == "exec" && e["id"] == a["event_id"])
        .expect("the alert's event");
    assert_eq!(exec["process"]["pid"], a["pid"]);

    alert_with(
        ev,
        "Netcat remote code execution",
        "proc.cmdline",
        "nc -e /bin/sh 127.0.0.1 9",
    );
    alert_with(ev, "Sudo use", "proc.cmdline", "sudo");
    alert_with(
        ev,
        "Search for private keys or passwords",
        "proc.cmdline",
        "find / -name id_rsa",
    );
    alert_with(ev, "Bulk data removal", "proc.cmdline", "shred -u");
    alert_with(
        ev,
        "Execution from a temporary directory",
        "proc.exepath",
        nc.to_str().unwrap(),
    );
    alert_with(
        ev,
        "Fileless execution",
        "proc.exepath",
        "/memfd:vigil-rules",
    );
}

#[test]
fn file_rules_fire_on_their_triggers() {
    if !require_root() {
        return;
    }
    let me = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let home = format!("/home/vigil-e2e-{me}");
    let bin = format!("/usr/local/bin/vigil-e2e-{me}");
    let lib = format!("/usr/local/lib/vigil-e2e-{me}.so");
    let log = format!("/var/log/vigil-e2e-{me}.log");
    let cron = format!("/etc/cron.d/vigil-e2e-{me}");
    let agent = Agent::start(&["--events", "none"]);

    std::fs::File::open("/etc/shadow").unwrap();
    std::fs::create_dir_all(format!("{home}/.ssh")).unwrap();
    std::fs::write(format!("{home}/.ssh/id_rsa"), "key").unwrap();
    std::fs::read(format!("{home}/.ssh/id_rsa")).unwrap();
    std::fs::remove_dir_all(&home).unwrap();
    // A minimal system has no cron: then the directory is made, and removed again.
    let cron_dir_existed = Path::new("/etc/cron.d").is_dir();
    std::fs::create_dir_all("/etc/cron.d").unwrap();
    for p in [&bin, &lib, &cron] {
        std::fs::write(p, "x").unwrap();
        std::fs::remove_file(p).unwrap();
    }
    if !cron_dir_existed {
        std::fs::remove_dir("/etc/cron.d").unwrap();
    }
    std::fs::write(&log, "old lines").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    std::fs::remove_file(&log).unwrap();
    let hist = dir.path().join(".bash_history");
    std::fs::write(&hist, "ls").unwrap();
    std::fs::remove_file(&hist).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", dir.path().join("innocent")).unwrap();
    std::fs::write(dir.path().join("authorized_keys"), "ssh-ed25519 AAAA").unwrap();
    std::fs::write(dir.path().join(".bashrc"), "alias ls=rm").unwrap();
    // Opening for writing is the trigger; nothing is written to these.
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/kernel/core_pattern")
        .unwrap();
    let preload_existed = Path::new("/etc/ld.so.preload").exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open("/etc/ld.so.preload")
        .unwrap();
    if !preload_existed {
        std::fs::remove_file("/etc/ld.so.preload").unwrap();
    }

    let done = agent.stop();
    let ev = &done.events;
    assert!(
        ev.iter().all(|e| e["kind"] == "alert"),
        "--events none writes alerts only"
    );
    let a = alert_with(ev, "Read sensitive file", "fd.name", "/etc/shadow");
    assert_eq!(a["pid"], me);
    assert_eq!(a["output_fields"]["user.name"], "root");
    alert_with(
        ev,
        "Read private key or cloud credentials",
        "fd.name",
        &format!("{home}/.ssh/id_rsa"),
    );
    alert_with(ev, "Write below binary directory", "fd.name", &bin);
    alert_with(ev, "Write below library directory", "fd.name", &lib);
    alert_with(ev, "Modify cron configuration", "fd.name", &cron);
    alert_with(ev, "Clear log activities", "fd.name", &log);
    alert_with(
        ev,
        "Delete or clear shell history",
        "fd.name",
        hist.to_str().unwrap(),
    );
    alert_with(
        ev,
        "Link to sensitive file",
        "evt.arg.target",
        "/etc/shadow",
    );
    alert_with(
        ev,
        "Modify SSH authorized keys",
        "fd.name",
        dir.path().join("authorized_keys").to_str().unwrap(),
    );
    alert_with(
        ev,
        "Modify shell profile",
        "fd.name",
        dir.path().join(".bashrc").to_str().unwrap(),
    );
    alert_with(
        ev,
        "Write to release_agent or core_pattern",
        "fd.name",
        "/proc/sys/kernel/core_pattern",
    );
    alert_with(ev, "Modify ld.so.preload", "fd.name", "/etc/ld.so.preload");
}

#[test]
fn privilege_and_kernel_rules_fire_on_their_triggers() {
    if !require_root() {
        return;
    }
    let me = std::process::id();
    let cg = TestCgroup::new();
    let agent = Agent::start(&["--events", "none"]);

    // ptrace attach to a child.
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    // SAFETY: PTRACE_SEIZE of our own child; it is killed right after.
    assert_eq!(
        unsafe { libc::ptrace(0x4206, sleeper.id() as libc::pid_t, 0, 0) },
        0
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // PTRACE_TRACEME in a child before exec (it then stops at exec and is killed).
    let mut traced = Command::new("/bin/true");
    // SAFETY: ptrace(2) is async-signal-safe.
    unsafe {
        traced.pre_exec(|| {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            Ok(())
        });
    }
    let mut traced = traced.spawn().unwrap();
    traced.kill().unwrap();
    traced.wait().unwrap();
    // A non-root process that becomes root (ambient CAP_SETUID lets it).
    let mut escalate = Command::new("setpriv");
    escalate.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+setuid,+setgid",
        "--ambient-caps=+setuid,+setgid",
        "/usr/bin/setpriv",
        "--reuid=0",
        "--regid=0",
        "--clear-groups",
        "/bin/true",
    ]);
    cg.enter(&mut escalate);
    assert!(escalate.status().unwrap().success());
    // A user namespace created by nobody; capset by setpriv.
    let mut userns = Command::new("setpriv");
    userns.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "unshare",
        "--user",
        "/bin/true",
    ]);
    cg.enter(&mut userns);
    assert!(userns.status().unwrap().success());
    // A set-user-ID root copy of /bin/true, run by nobody.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let suid = copy_as(dir.path(), "vigil-suid");
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let mut run_suid = Command::new("setpriv");
    run_suid
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&suid);
    cg.enter(&mut run_suid);
    assert!(run_suid.status().unwrap().success());
    // A packet socket, and a trivial BPF program loaded by this test process.
    // SAFETY: plain socket(2)/close(2).
    let s = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    assert!(s >= 0);
    // SAFETY: closing our socket.
    unsafe { libc::close(s) };
    load_trivial_bpf_program();

    let done = agent.stop();
    let ev = &done.events;
    alert_with(
        ev,
        "PTRACE attach to another process",
        "evt.arg.request",
        "PTRACE_SEIZE",
    );
    assert!(alerts(ev, "PTRACE_TRACEME")
        .iter()
        .any(|a| a["output_fields"]["proc.pname"].is_string()));
    let esc = alerts(ev, "Non-root process set its user or group to root");
    assert!(
        esc.iter()
            .any(|a| a["cgroup_id"] == cg.id && a["output_fields"]["user.uid"] == 65534),
        "{esc:#?}"
    );
    let ns = alerts(ev, "Unprivileged user namespace");
    assert!(ns.iter().any(|a| a["cgroup_id"] == cg.id), "{ns:#?}");
    let cap = alerts(ev, "Capabilities changed with capset");
    assert!(
        cap.iter()
            .any(|a| a["cgroup_id"] == cg.id && a["output_fields"]["proc.name"] == "setpriv"),
        "{cap:#?}"
    );
    assert!(alerts(ev, "Packet socket created")
        .iter()
        .any(|a| a["pid"] == me));
    let s = alert_with(
        ev,
        "Setuid binary executed by a non-root user",
        "proc.exepath",
        suid.to_str().unwrap(),
    );
    assert_eq!(
        (
            s["output_fields"]["user.ruid"].as_u64(),
            s["output_fields"]["user.uid"].as_u64()
        ),
        (Some(65534), Some(0))
    );
    assert!(alerts(ev, "bpf program loaded by an unexpected process")
        .iter()
        .any(|a| a["pid"] == me));
}

/// BPF_PROG_LOAD of "r0 = 0; exit" as a socket filter.
fn load_trivial_bpf_program() {
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = c"GPL";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // BPF_PROG_TYPE_SOCKET_FILTER
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    // SAFETY: attr points to a valid bpf_attr prefix whose pointers outlive the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 5, attr.as_ptr(), attr.len()) };
    assert!(
        fd >= 0,
        "BPF_PROG_LOAD failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: closing the program fd we own.
    unsafe { libc::close(fd as i32) };
}

#[test]
fn network_rules_fire_on_real_connections() {
    if !require_root() {
        return;
    }
    // 45700 is in miner_ports; 2222 is not 22. Both listen so the connects complete.
    let miner = std::net::TcpListener::bind("127.0.0.1:45700").unwrap();
    let sshd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ssh_port = sshd.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    // A script's comm is its file name: `ssh` connecting from bash itself.
    let script = |name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, "#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/$1\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let agent = Agent::start(&["--events", "connection"]);
    let run = |cmd: &mut Command| assert!(cmd.status().unwrap().success());
    run(Command::new(script("xmrig")).arg("45700"));
    run(Command::new(script("ssh")).arg(ssh_port.to_string()));
    let done = agent.stop();
    drop((miner, sshd));
    let a = alert_with(
        &done.events,
        "Connection to crypto-mining pool port",
        "proc.name",
        "xmrig",
    );
    assert_eq!(a["priority"], "Critical");
    assert!(a["output_fields"]["fd.name"]
        .as_str()
        .unwrap()
        .ends_with("->127.0.0.1:45700"));
    let ssh = alerts(&done.events, "SSH to a non-standard port");
    let to_port = format!("->127.0.0.1:{ssh_port}");
    assert!(
        ssh.iter().any(|a| a["output_fields"]["fd.name"]
            .as_str()
            .is_some_and(|n| n.ends_with(&to_port))),
        "{ssh:#?}"
    );
}

#[test]
fn a_reverse_shell_is_detected() {
    if !require_root() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cg = TestCgroup::new();
    let agent = Agent::start(&["--events", "none"]);
    let mut child = Command::new("/bin/true");
    child.stdout(Stdio::null());
    cg.enter(&mut child);
    // SAFETY: socket/connect/dup2 are async-signal-safe; the address is built before fork.
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    unsafe {
        child.pre_exec(move || {
            let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
            if s < 0 || libc::connect(s, (&addr as *const libc::sockaddr_in).cast(), len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::dup2(s, 1);
            Ok(())
        });
    }
    assert!(child.status().unwrap().success());
    let done = agent.stop();
    let a = alert_with(
        &done.events,
        "Reverse shell",
        "fd.name",
        &format!("127.0.0.1:{port}"),
    );
    assert_eq!(a["priority"], "Critical");
    assert_eq!(a["cgroup_id"], cg.id);
}

#[test]
fn a_benign_workload_raises_no_alert() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.c"), "int main(void) { return 0; }\n").unwrap();
    let cg = TestCgroup::new();
    let agent = Agent::start(&["--events", "none"]);
    let script = format!(
        "set -e; cd {d}; for i in 1 2 3; do echo $i > n.txt; done; cat n.txt; ls -la /etc > /dev/null; \
         cat /etc/hostname /etc/passwd > /dev/null; dpkg -l > /dev/null; \
         (cc -o hello hello.c || gcc -o hello hello.c); mkdir -p out && cp hello.c out/ && rm -r out; \
         grep -c main hello.c; sort n.txt | uniq > /dev/null; date > /dev/null; id > /dev/null",
        d = dir.path().display()
    );
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", &script]).stdout(Stdio::null());
    cg.enter(&mut sh);
    assert!(sh.status().unwrap().success());
    // Local HTTP-like traffic from the test's own sockets.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    std::io::Write::write_all(&mut c, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let done = agent.stop();
    let raised: Vec<&Value> = done
        .events
        .iter()
        .filter(|e| e["kind"] == "alert" && e["cgroup_id"] == cg.id)
        .collect();
    assert!(raised.is_empty(), "benign workload raised: {raised:#?}");
}

fn vigil(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn rules_check_lists_every_rule_with_the_reason_it_is_disabled() {
    if !require_root() {
        return;
    }
    let out = vigil(&["rules", "check", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = |name: &str| {
        r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    assert_eq!(rule("Read sensitive file")["enabled"], true);
    // This kernel has no module support, so those syscalls cannot be observed.
    let module = rule("Kernel module load");
    assert_eq!(module["enabled"], false);
    assert!(
        module["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("init_module"),
        "{module}"
    );
    assert!(r["enabled"].as_u64().unwrap() >= 30);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "- rule: broken\n  desc: x\n  condition: proc.name = (\n  output: x\n  priority: INFO\n",
    )
    .unwrap();
    let out = vigil(&["rules", "check", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.yaml:") && err.contains("broken"), "{err}");
}

/// Waits until `pred` holds for the agent's log, or panics after a minute (no timing asserted).
fn wait_for_log(agent: &Agent, what: &str, pred: impl Fn(&str) -> bool) {
    for _ in 0..600 {
        if pred(&agent.stderr()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("agent log never showed {what}:\n{}", agent.stderr());
}

#[test]
fn a_broken_rules_file_keeps_the_previous_rules_and_a_fixed_one_is_picked_up() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("custom.yaml");
    let rule = |name: &str, exe: &str| {
        format!("- rule: {name}\n  desc: test\n  condition: evt.type = execve and proc.name = {exe}\n  output: ran %proc.name\n  priority: NOTICE\n")
    };
    std::fs::write(&rules, rule("First", "vigil-first")).unwrap();
    let first = copy_as(dir.path(), "vigil-first");
    let second = copy_as(dir.path(), "vigil-second");
    let agent = Agent::start(&["--events", "none", "--rules", rules.to_str().unwrap()]);
    let pid = agent_pid(&agent);
    assert!(Command::new(&first).status().unwrap().success());

    std::fs::write(&rules, "- rule: [unclosed\n").unwrap();
    // SAFETY: signalling the agent we started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    wait_for_log(&agent, "the reload error", |l| {
        l.contains("rules not reloaded")
    });
    assert!(Command::new(&first).status().unwrap().success());

    std::fs::write(&rules, rule("Second", "vigil-second")).unwrap();
    wait_for_log(&agent, "the second load", |l| {
        l.matches("rules loaded").count() >= 2
    });
    assert!(Command::new(&second).status().unwrap().success());
    let done = agent.stop();
    assert_eq!(
        alerts(&done.events, "First").len(),
        2,
        "before and after the broken file"
    );
    assert_eq!(alerts(&done.events, "Second").len(), 1);
    let err = done
        .stderr
        .lines()
        .find(|l| l.contains("rules not reloaded"))
        .unwrap();
    assert!(
        err.contains("custom.yaml:") && err.contains("YAML"),
        "the error names the location: {err}"
    );
}

fn agent_pid(agent: &Agent) -> i32 {
    agent.pid() as i32
}

#[test]
fn a_recording_replays_through_rules_offline() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("session.vigil");
    let sudo = copy_as(dir.path(), "sudo");
    let mut recorder = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["record", "--out", rec.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(recorder.stderr.take().unwrap()));
    assert!(
        lines.any(|l| l.unwrap().contains("ready")),
        "recorder never became ready"
    );
    assert!(Command::new(&sudo).arg("-l").status().unwrap().success());
    // SAFETY: signalling the recorder we started.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    std::thread::spawn(move || lines.for_each(drop));
    assert!(recorder.wait().unwrap().success());

    let out = vigil(&["rules", "test", "--events", rec.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let a = alerts
        .iter()
        .find(|a| a["rule"] == "Sudo use" && a["output_fields"]["proc.cmdline"] == "sudo -l")
        .unwrap_or_else(|| panic!("no replayed sudo alert in {alerts:#?}"));
    // Ancestry came from the recorded /proc seed: the test process is the parent.
    assert_eq!(
        a["output_fields"]["proc.pname"]
            .as_str()
            .map(|s| !s.is_empty()),
        Some(true)
    );
}
