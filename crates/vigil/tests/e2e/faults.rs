//! Faults and hostile input: a kill -9 and restart (process table rebuilt from /proc, pinned
//! enforcement held throughout), a full output file, an OTLP collector that is down and comes
//! back, and names, arguments, binaries and pids chosen to confuse the agent.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::harness::*;
use crate::storm::{kind, proc_state, stat, Flood, Op};

/// A uid nothing on a test machine runs as (enforce.rs uses 47301..47306).
const UID_RESTART: u32 = 47_401;

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(
            v.as_str()
                .unwrap_or_else(|| panic!("not a base64 string: {v}")),
        )
        .unwrap()
}

/// Polls `cond` every 50 ms for at most `secs` (a bound, not a speed expectation).
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private copy of `program` (resolved) named `name`, executable.
fn copy_exe(dir: &Path, program: &str, name: impl AsRef<OsStr>) -> PathBuf {
    let p = dir.join(name.as_ref());
    std::fs::copy(Path::new(program).canonicalize().unwrap(), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A temporary directory under its canonical path (events carry resolved paths).
fn canonical_tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

// ---- kill -9 and restart ----

/// An enforcement pin directory of the test's own, cleared on drop (declare before the agents).
struct Pins {
    _dir: tempfile::TempDir,
    pin_dir: PathBuf,
    config: PathBuf,
    yaml: String,
}

impl Pins {
    fn new() -> Pins {
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/vigil-faults-{}", std::process::id()));
        let yaml = format!(
            "syscalls: false\nfile:\n  enabled: false\nnetwork:\n  enabled: false\n\
             enforcement:\n  pin_dir: {}\n",
            pin_dir.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vigil.yaml");
        std::fs::write(&config, &yaml).unwrap();
        let pins = Pins {
            _dir: dir,
            pin_dir,
            config,
            yaml,
        };
        pins.clear();
        pins
    }

    fn clear(&self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["enforce", "clear", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        self.clear();
        let _ = std::fs::remove_dir(&self.pin_dir);
    }
}

/// connect() to `a` from a child running as `uid`: Ok, or the error connect returned.
fn connect_as(uid: u32, a: SocketAddrV4) -> std::io::Result<()> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let mut cmd = Command::new("/bin/true");
    cmd.uid(uid)
        .gid(uid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: raw socket calls on a prebuilt address (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if s < 0 || libc::connect(s, (&sa as *const libc::sockaddr_in).cast(), len) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // std hands the child's error back from spawn.
    let mut child = cmd.spawn()?;
    child.wait().unwrap();
    Ok(())
}

/// What /proc says about a live process: (ppid, exe, argv).
fn from_proc(pid: u32) -> (u32, String, Vec<String>) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    (ppid.parse().unwrap(), exe.to_str().unwrap().into(), args)
}

fn cgroup_pids(cg: &TestCgroup) -> Vec<u32> {
    std::fs::read_to_string(cg.path.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// A shell in `cg` running two sleepers (copies of sleep, told apart by their arguments).
fn sleepers(cg: &TestCgroup, sleeper: &Path, tag: u32) -> Child {
    let s = sleeper.display();
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(format!("{s} 1000 {tag}1 & {s} 1000 {tag}2 & wait"));
    cg.enter(&mut sh);
    let child = sh.spawn().unwrap();
    let shell = child.id();
    wait_for(10, "the sleepers to start", || {
        cgroup_pids(cg)
            .iter()
            .filter(|p| from_proc_ppid(**p) == Some(shell))
            .count()
            == 2
    });
    child
}

fn from_proc_ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The agent is killed with SIGKILL while exec churn runs and processes come and go, and a new
/// one is started: the processes alive across the restart (started before the first agent, under
/// it, and while none ran) each exit exactly once with the ppid, exe and argv that /proc showed,
/// and a deny rule pinned by the first agent never let a connect through.
#[test]
fn kill_9_and_restart_rebuild_the_process_table_and_enforcement_holds() {
    if !require_root() {
        return;
    }
    let pins = Pins::new();
    let (_tmp, dir) = canonical_tempdir();
    let sleeper = copy_exe(&dir, "/bin/sleep", "vigil-restart-sleeper");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dest = SocketAddrV4::new([127, 0, 0, 1].into(), port);
    let rule = "E2E deny across restarts";
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: {rule}\n  desc: e2e\n  condition: \"evt.type = connect and fd.sip = 127.0.0.1 \
             and fd.sport = {port} and user.uid = {UID_RESTART}\"\n  output: denied\n  \
             priority: CRITICAL\n  action: deny\n"
        ),
    )
    .unwrap();
    let start =
        || Agent::start_with_config(Some(&pins.yaml), &["--rules", rules.to_str().unwrap()]);
    let cg = TestCgroup::new();
    let mut shells = vec![sleepers(&cg, &sleeper, 1)];
    let agent1 = start();
    assert!(
        matches!(connect_as(UID_RESTART, dest), Err(e) if e.raw_os_error() == Some(libc::EPERM)),
        "the rule is in force"
    );

    // A probe every 50 ms from now until the second agent is stopped: every connect denied.
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicU32::new(1));
    let outcomes = Arc::new(Mutex::new(BTreeMap::<(u32, String), u32>::new()));
    let prober = {
        let (stop, phase, outcomes) = (stop.clone(), phase.clone(), outcomes.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed);
                let r = match connect_as(UID_RESTART, dest) {
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => "EPERM".to_string(),
                    other => format!("{other:?}"),
                };
                *outcomes.lock().unwrap().entry((p, r)).or_default() += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let churn_cg = TestCgroup::new();
    // Long enough to go on after the second agent is ready (it takes a few seconds to start).
    let churn = Flood::start(&churn_cg, Op::Exec, &dir, 15.0, Some(300.0));
    shells.push(sleepers(&cg, &sleeper, 2));
    std::thread::sleep(Duration::from_secs(1));

    let pid1 = agent1.pid();
    // SAFETY: kill(2) on the agent this test started.
    assert_eq!(unsafe { libc::kill(pid1 as i32, libc::SIGKILL) }, 0);
    wait_for(10, "the first agent's death", || {
        matches!(proc_state(pid1), None | Some('Z'))
    });
    phase.store(2, Ordering::Relaxed);
    shells.push(sleepers(&cg, &sleeper, 3));
    std::thread::sleep(Duration::from_secs(1));

    phase.store(3, Ordering::Relaxed);
    let agent2 = start();
    phase.store(4, Ordering::Relaxed);
    shells.push(sleepers(&cg, &sleeper, 4));
    let churned = churn.finish();

    // What /proc says, then every test process ends.
    let expected: HashMap<u32, (u32, String, Vec<String>)> = cgroup_pids(&cg)
        .into_iter()
        .map(|p| (p, from_proc(p)))
        .collect();
    assert_eq!(
        expected.len(),
        12,
        "4 shells with 2 sleepers each: {expected:?}"
    );
    for (pid, (_, exe, _)) in &expected {
        if exe.ends_with("vigil-restart-sleeper") {
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
        }
    }
    for mut sh in shells {
        sh.wait().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let done = agent2.stop();
    drop(agent1);

    let outcomes = outcomes.lock().unwrap().clone();
    eprintln!("probes (phase, outcome) -> count: {outcomes:?}");
    for ((p, r), n) in &outcomes {
        assert_eq!(r, "EPERM", "phase {p}: {n} connects were not denied");
    }
    for p in 1..=4 {
        assert!(
            outcomes.keys().any(|(q, _)| *q == p) || p == 3,
            "no probe ran in phase {p} (1: first agent, 2: none, 3: restarting, 4: second)"
        );
    }
    assert!(
        done.events
            .iter()
            .any(|e| e["kind"] == "alert" && e["rule"] == rule && e["action"] == "denied"),
        "denials are reported"
    );

    let exits = in_cgroup(&done.events, "exit", cg.id);
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for e in &exits {
        *seen
            .entry(e["process"]["pid"].as_u64().unwrap() as u32)
            .or_default() += 1;
    }
    let mut exited: Vec<u32> = seen.keys().copied().collect();
    let mut alive: Vec<u32> = expected.keys().copied().collect();
    exited.sort_unstable();
    alive.sort_unstable();
    assert_eq!(exited, alive, "one exit per process that /proc showed");
    assert!(seen.values().all(|n| *n == 1), "duplicated exits: {seen:?}");
    for e in exits {
        let p = &e["process"];
        let pid = p["pid"].as_u64().unwrap() as u32;
        let (ppid, exe, args) = &expected[&pid];
        assert_eq!(p["ppid"], *ppid, "{e}");
        assert_eq!(p["exe"], exe.as_str(), "{e}");
        assert_eq!(p["args"], serde_json::json!(args), "{e}");
        assert_eq!(e["ancestry"][0]["pid"], *ppid, "{e}");
    }

    eprintln!("exec churn across the restart: {churned}");
}

/// Exec churn while an agent starts: every exit it reports of a churned process carries that
/// process's exe, whether its exec was seen, it was read from /proc at the seeding, or (exec'd
/// before the attach, gone before the scan) the exit record brought it.
#[test]
fn processes_born_while_the_agent_starts_keep_their_identity() {
    if !require_root() {
        return;
    }
    let (_tmp, dir) = canonical_tempdir();
    let cg = TestCgroup::new();
    let churn = Flood::start(&cg, Op::Exec, &dir, 12.0, Some(500.0));
    std::thread::sleep(Duration::from_secs(1));
    let agent = Agent::start(&[]);
    let churned = churn.finish();
    let done = agent.stop();
    let true_exe = std::fs::canonicalize("/bin/true").unwrap();
    // The generator's children (not the generator, a child of the test process).
    let exits: Vec<&Value> = in_cgroup(&done.events, "exit", cg.id)
        .into_iter()
        .filter(|e| e["process"]["ppid"] != std::process::id())
        .collect();
    assert!(!exits.is_empty(), "{churned} execs, no exit seen");
    let blank: Vec<&&Value> = exits
        .iter()
        .filter(|e| e["process"]["exe"] != true_exe.to_str().unwrap())
        .collect();
    assert!(
        blank.is_empty(),
        "{} of {} exits without the process's identity, e.g. {}",
        blank.len(),
        exits.len(),
        blank[0]
    );
}

// ---- outputs ----

/// A small tmpfs mounted on a directory of the test's own, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "vigil-test"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `path` (a file it creates) until ENOSPC.
fn fill(path: &Path) {
    let mut f = File::create(path).unwrap();
    let chunk = vec![b'x'; 16 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

fn run_in(cg: &TestCgroup, program: &Path) {
    let mut cmd = Command::new(program);
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());
}

/// A second output on a tmpfs that fills up: its lines are lost and counted, the agent and the
/// other output carry on, and writing resumes once space is freed.
#[test]
fn a_full_output_file_counts_its_losses_and_recovers_when_space_is_freed() {
    if !require_root() {
        return;
    }
    // Room for a few seconds of every exec on a busy host once the filler is removed.
    let fs = Tmpfs::mount("8m");
    let out = fs.path().join("events.json");
    let (_tmp, dir) = canonical_tempdir();
    let before = copy_exe(&dir, "/bin/true", "vigil-full-before");
    let during = copy_exe(&dir, "/bin/true", "vigil-full-during");
    let after = copy_exe(&dir, "/bin/true", "vigil-full-after");
    let cg = TestCgroup::new();
    let agent = Agent::start(&[
        "--events",
        "exec",
        "--output",
        &format!("file:{}", out.display()),
    ]);
    run_in(&cg, &before);
    let filler = fs.path().join("filler");
    fill(&filler);
    let t = Instant::now();
    while !agent.stderr().contains("write failed, events lost") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no write failure logged"
        );
        run_in(&cg, &during);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        proc_state(agent.pid()).is_some_and(|s| s != 'Z'),
        "agent alive"
    );
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..3 {
        run_in(&cg, &after);
        std::thread::sleep(Duration::from_millis(300));
    }
    let done = agent.stop();

    let healthy = in_cgroup(&done.events, "exec", cg.id);
    let text = std::fs::read(&out).unwrap();
    // A batch that failed part-way may have left a cut line, which the next batch follows.
    let written: Vec<Value> = text
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    // Events are told apart by `id`, alerts by the rule and the event that raised them.
    let key = |v: &Value| (v["id"].as_u64(), v["rule"].clone(), v["event_id"].as_u64());
    let keys: std::collections::HashSet<_> = done.events.iter().map(key).collect();
    for w in &written {
        assert!(
            keys.contains(&key(w)),
            "a line of the full output is not one of the other output: {w}"
        );
    }
    let lost = stat(&done, "exec", "dropped_sink_error");
    let kept = in_cgroup(&written, "exec", cg.id).len();
    eprintln!(
        "the test's exec lines: {} on the healthy output, {kept} on the full one; \
         all exec lines lost on the full output: {lost}",
        healthy.len()
    );
    assert!(lost >= 1, "{}", kind(&done, "exec"));
    let all_kept = written.iter().filter(|w| w["kind"] == "exec").count() as u64;
    let all_healthy = done.events.iter().filter(|e| e["kind"] == "exec").count() as u64;
    assert!(
        all_kept + lost >= all_healthy,
        "{all_healthy} exec lines, {all_kept} on the full output + {lost} counted"
    );
    let after_s = after.to_str().unwrap();
    let recovered = written
        .iter()
        .filter(|w| w["kind"] == "exec" && w["process"]["exe"] == after_s)
        .count();
    assert!(
        recovered >= 2,
        "writing resumed once space was freed: {recovered} of 3"
    );
}

/// An output that cannot be opened stops the start with a clear error naming it.
#[test]
fn an_output_that_cannot_be_opened_is_a_startup_error() {
    if !require_root() {
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "run",
            "--output",
            "file:/proc/vigil-no-such-dir/events.json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("vigil: error:") && err.contains("/proc/vigil-no-such-dir/events.json"),
        "{err}"
    );
}

// ---- OTLP ----

/// rotel's agent binary (see crates/vigil-otlp/tests/rotel.rs): `$VIGIL_ROTEL`, or the venv
/// scripts/deps.sh installs. Outside CI a missing rotel skips; in CI it fails.
fn rotel_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIGIL_ROTEL") {
        return Some(PathBuf::from(p));
    }
    let found = std::fs::read_dir("/opt/vigil-rotel/lib")
        .ok()
        .and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true and rotel is missing: scripts/deps.sh installs it into /opt/vigil-rotel"
        );
        eprintln!("skipping: rotel not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// rotel printing every log record it accepts; killed on drop.
struct Rotel {
    child: Child,
    out: PathBuf,
}

impl Rotel {
    fn start(bin: &Path, dir: &Path, grpc: u16, http: u16) -> Rotel {
        let out = dir.join("rotel.out");
        let child = Command::new(bin)
            .arg("start")
            .args(["--exporter", "blackhole", "--debug-log", "logs"])
            .args(["--debug-log-verbosity", "detailed"])
            .arg("--otlp-receiver-traces-disabled")
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"))
            .stdout(File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rotel");
        Rotel { child, out }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The sum of a metric family's samples whose line starts with `prefix`.
fn metric_sum(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Alerts raised while the collector is down wait in the bounded queue; what does not fit is
/// counted; once the collector is up the held alerts arrive, later ones flow, and exported +
/// dropped = raised.
#[test]
fn an_otlp_collector_down_then_back_gets_the_queued_alerts_and_overflow_is_counted() {
    if !require_root() {
        return;
    }
    let Some(rotel) = rotel_bin() else { return };
    let (_tmp, dir) = canonical_tempdir();
    let marker = copy_exe(&dir, "/bin/true", "vigil-otlp-mk");
    let rule = "E2E OTLP marker";
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: {rule}\n  desc: e2e\n  condition: evt.type = execve and proc.name = vigil-otlp-mk\n  \
             output: marker %proc.args\n  priority: WARNING\n"
        ),
    )
    .unwrap();
    let (grpc, http) = (free_port(), free_port());
    let config = format!(
        "syscalls: false\nfile:\n  enabled: false\nnetwork:\n  enabled: false\n\
         otlp:\n  endpoint: http://127.0.0.1:{grpc}\n  protocol: grpc\n  metrics: false\n  \
         queue_size: 4\n  max_batch_size: 2\n  max_batch_delay_ms: 100\n  timeout_secs: 2\n  \
         retry:\n    initial_backoff_ms: 200\n    max_backoff_ms: 1000\n    max_elapsed_secs: 120\n"
    );
    let agent = Agent::start_with_config(
        Some(&config),
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--events",
            "none",
            "--api",
            "127.0.0.1:0",
        ],
    );
    let api = agent.api_addr();
    let raise = |tag: &str| {
        let st = Command::new(&marker).arg(tag).status().unwrap();
        assert!(st.success());
    };
    let metrics = || http_get(&api, "/metrics");
    for i in 0..12 {
        raise(&format!("down-{i}"));
    }
    wait_for(
        30,
        "queue_full drops and retries while the collector is down",
        || {
            let m = metrics();
            metric_sum(&m, "vigil_otlp_logs_dropped_total{cause=\"queue_full\"}") > 0
                && metric_sum(&m, "vigil_otlp_retries_total") > 0
        },
    );
    std::thread::sleep(Duration::from_secs(2));

    let collector = Rotel::start(&rotel, &dir, grpc, http);
    let ours = |out: &str| out.matches(&format!("vigil.rule: Str({rule})")).count();
    wait_for(30, "the held alerts to reach the collector", || {
        ours(&collector.output()) > 0
    });
    for i in 0..3 {
        raise(&format!("up-{i}"));
    }
    wait_for(30, "the alerts raised after recovery", || {
        let out = collector.output();
        (0..3).all(|i| out.contains(&format!("marker up-{i}")))
    });
    let mut last = String::new();
    wait_for(30, "exported + dropped = raised", || {
        last = metrics();
        metric_sum(&last, "vigil_otlp_logs_exported_total")
            + metric_sum(&last, "vigil_otlp_logs_dropped_total")
            == 15
    });
    let out = collector.output();
    let done = agent.stop();
    let raised = done.events.iter().filter(|e| e["rule"] == rule).count();
    assert_eq!(raised, 15, "alert lines");
    let exported = metric_sum(&last, "vigil_otlp_logs_exported_total");
    assert_eq!(
        ours(&out) as u64,
        exported,
        "each exported alert arrived once"
    );
    assert!(
        out.contains("marker down-"),
        "alerts held during the outage arrived after it"
    );
    assert!(last.contains("vigil_otlp_logs_dropped_total{cause=\"queue_full\"}"));
}

// ---- hostile input ----

/// A directory chain of `depth` components of 200 bytes below `base`, deeper than PATH_MAX,
/// built with *at() calls; returns an fd of the deepest directory.
fn deep_dir(base: &Path, depth: usize) -> File {
    let name = CString::new("d".repeat(200)).unwrap();
    let base = CString::new(base.as_os_str().as_bytes()).unwrap();
    // SAFETY: *at() calls on fds owned here and C strings built above.
    unsafe {
        let mut fd = libc::open(base.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
        assert!(fd >= 0);
        for _ in 0..depth {
            assert_eq!(libc::mkdirat(fd, name.as_ptr(), 0o755), 0);
            let next = libc::openat(fd, name.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
            assert!(next >= 0);
            libc::close(fd);
            fd = next;
        }
        File::from_raw_fd(fd)
    }
}

/// Invalid UTF-8 and newlines in the executable's name, its arguments and its working
/// directory, a path far deeper than PATH_MAX, a 1 MiB argv, and a watched file with such a
/// name: every line is valid JSON with the exact bytes in `_b64`, long values are cut and
/// flagged, and the counters agree.
#[test]
fn hostile_names_paths_and_arguments_are_reported_exactly() {
    if !require_root() {
        return;
    }
    let (_tmp, dir) = canonical_tempdir();
    let cg = TestCgroup::new();
    let config = format!("file:\n  watch: [{}/]\n", dir.display());
    let agent = Agent::start_with_config(Some(&config), &[]);

    // Invalid UTF-8 and a newline everywhere.
    let name = OsString::from_vec(b"t\xffst\nnl".to_vec());
    let prog = copy_exe(&dir, "/bin/true", &name);
    let cwd = dir.join(OsStr::from_bytes(b"d\xe9\nx"));
    std::fs::create_dir(&cwd).unwrap();
    let odd = [
        OsString::from_vec(b"\xfe\xff".to_vec()),
        OsString::from("a\nb"),
        OsString::from("plain"),
    ];
    let mut cmd = Command::new(&prog);
    cmd.args(&odd).current_dir(&cwd);
    cg.enter(&mut cmd);
    let odd_child = cmd.spawn().unwrap();
    let odd_pid = odd_child.id();
    assert!(wait_output(odd_child, Duration::from_secs(10))
        .status
        .success());

    // A working directory and an executable 100 components (20 KB) deep.
    let deep = deep_dir(&dir, 100);
    let body = std::fs::read("/bin/true").unwrap();
    let deep_fd = deep.as_raw_fd();
    let deep_name = c"deep-true";
    // SAFETY: openat on our fd; write of our buffer.
    unsafe {
        let f = libc::openat(
            deep_fd,
            deep_name.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o755,
        );
        assert!(f >= 0);
        assert_eq!(
            libc::write(f, body.as_ptr().cast(), body.len()),
            body.len() as isize
        );
        libc::close(f);
    }
    let mut cmd = Command::new("./deep-true");
    cg.enter(&mut cmd);
    // SAFETY: fchdir on an fd this process holds (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || match libc::fchdir(deep_fd) {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
    let deep_child = cmd.spawn().unwrap();
    let deep_pid = deep_child.id();
    assert!(wait_output(deep_child, Duration::from_secs(10))
        .status
        .success());
    drop(deep);

    // 1 MiB of argv: 16 arguments of 64 KiB (each below MAX_ARG_STRLEN).
    let big: Vec<String> = (0..16).map(|i| format!("{i:x}").repeat(65536)).collect();
    let mut cmd = Command::new("/bin/true");
    cmd.args(&big);
    cg.enter(&mut cmd);
    let big_child = cmd.spawn().unwrap();
    let big_pid = big_child.id();
    assert!(wait_output(big_child, Duration::from_secs(10))
        .status
        .success());

    // A watched file whose name is not UTF-8 and has a newline.
    let odd_file = dir.join(OsStr::from_bytes(b"f\xff\n"));
    std::fs::write(&odd_file, "x").unwrap();
    let mut cmd = Command::new("/bin/cat");
    cmd.arg(&odd_file).stdout(Stdio::null());
    cg.enter(&mut cmd);
    let cat = cmd.spawn().unwrap();
    let cat_pid = cat.id();
    assert!(wait_output(cat, Duration::from_secs(10)).status.success());

    let done = agent.stop();
    assert_eq!(done.final_stats["decode_errors"], 0);

    let exec_of = |pid: u32| {
        let e = by_pid(&done.events, "exec", pid);
        assert_eq!(e.len(), 1, "one exec of {pid}");
        e[0].clone()
    };
    let exit_of = |pid: u32| {
        let e = by_pid(&done.events, "exit", pid);
        assert_eq!(e.len(), 1, "one exit of {pid}");
        e[0].clone()
    };

    let e = exec_of(odd_pid);
    for ev in [&e, &exit_of(odd_pid)] {
        let p = &ev["process"];
        assert_eq!(b64(&p["exe_b64"]), prog.as_os_str().as_bytes(), "{ev}");
        assert_eq!(
            p["exe"],
            String::from_utf8_lossy(prog.as_os_str().as_bytes()).as_ref()
        );
        assert_eq!(b64(&p["cwd_b64"]), cwd.as_os_str().as_bytes(), "{ev}");
        let args: Vec<Vec<u8>> = p["args_b64"].as_array().unwrap().iter().map(b64).collect();
        let mut want = vec![prog.as_os_str().as_bytes().to_vec()];
        want.extend(odd.iter().map(|a| a.as_bytes().to_vec()));
        assert_eq!(args, want, "{ev}");
        assert_eq!(p["args"][2], "a\nb");
        assert_eq!(p["args"][3], "plain");
    }
    assert_eq!(b64(&e["process"]["comm_b64"]), name.as_bytes(), "{e}");

    let e = exec_of(deep_pid);
    let p = &e["process"];
    for field in ["exe", "cwd"] {
        let v = p[field].as_str().unwrap();
        assert!(
            v.starts_with('/') && v.len() <= 4095,
            "{field}: {} bytes",
            v.len()
        );
        assert_eq!(
            p[format!("{field}_truncated")],
            true,
            "{field} of the deep exec"
        );
    }
    assert!(p["exe"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{}/deep-true", "d".repeat(200))));
    assert_eq!(exit_of(deep_pid)["process"]["exe_truncated"], true);

    let e = exec_of(big_pid);
    let p = &e["process"];
    assert_eq!(p["argc"], 17);
    assert_eq!(p["args_truncated"], true);
    // args_max counts each argument's NUL; the last, cut argument has none.
    let args = p["args"].as_array().unwrap();
    let kept: usize = args
        .iter()
        .map(|a| a.as_str().unwrap().len())
        .sum::<usize>()
        + args.len()
        - 1;
    assert!(kept <= 8192, "{kept} bytes of argv kept");
    assert!(p["args"][1].as_str().unwrap().starts_with("0000"));

    let opens: Vec<&Value> = by_pid(&done.events, "file", cat_pid)
        .into_iter()
        .filter(|f| f["file"]["path_b64"].is_string())
        .collect();
    assert_eq!(opens.len(), 1, "the open of the odd file");
    assert_eq!(
        b64(&opens[0]["file"]["path_b64"]),
        odd_file.as_os_str().as_bytes()
    );
    assert_eq!(stat(&done, "exec", "read_errors"), 0);
}

/// A binary deleted while it runs, one replaced between two runs, and one replaced while it
/// runs: each process is reported under the path it was executed from, with its own exit code.
#[test]
fn deleted_and_replaced_binaries_keep_their_paths() {
    if !require_root() {
        return;
    }
    let (_tmp, dir) = canonical_tempdir();
    let cg = TestCgroup::new();
    let agent = Agent::start(&[]);
    let run = |program: &Path, args: &[&str]| -> Child {
        let mut cmd = Command::new(program);
        cmd.args(args);
        cg.enter(&mut cmd);
        cmd.spawn().unwrap()
    };

    let vanish = copy_exe(&dir, "/bin/sleep", "vigil-vanish");
    let mut c = run(&vanish, &["1"]);
    let vanish_pid = c.id();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&vanish).unwrap();
    assert!(c.wait().unwrap().success());

    let swap = copy_exe(&dir, "/bin/true", "vigil-swap");
    let mut c = run(&swap, &[]);
    let first = c.id();
    assert_eq!(c.wait().unwrap().code(), Some(0));
    let new = copy_exe(&dir, "/bin/false", "vigil-swap.new");
    std::fs::rename(&new, &swap).unwrap();
    let mut c = run(&swap, &[]);
    let second = c.id();
    assert_eq!(c.wait().unwrap().code(), Some(1));

    let busy = copy_exe(&dir, "/bin/sleep", "vigil-busy");
    let mut c = run(&busy, &["1"]);
    let busy_pid = c.id();
    std::thread::sleep(Duration::from_millis(300));
    let repl = copy_exe(&dir, "/bin/true", "vigil-busy.new");
    std::fs::rename(&repl, &busy).unwrap();
    assert!(c.wait().unwrap().success());
    let mut c = run(&busy, &[]);
    let after = c.id();
    assert!(c.wait().unwrap().success());

    let done = agent.stop();
    let check = |pid: u32, exe: &Path, code: i64| {
        for kind in ["exec", "exit"] {
            let e = by_pid(&done.events, kind, pid);
            assert_eq!(e.len(), 1, "one {kind} of {pid}");
            assert_eq!(e[0]["process"]["exe"], exe.to_str().unwrap(), "{}", e[0]);
        }
        assert_eq!(by_pid(&done.events, "exit", pid)[0]["exit"]["code"], code);
    };
    check(vanish_pid, &vanish, 0);
    check(first, &swap, 0);
    check(second, &swap, 1);
    check(busy_pid, &busy, 0);
    check(after, &busy, 0);
    // The exec of the replaced file is the new program: /bin/sleep would have failed without
    // an argument.
}

/// The clone3 arguments (struct clone_args, CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const REUSES: usize = 200;

/// One pid, 200 times in a row (clone3 with `set_tid`), alternating two programs with the
/// iteration in their argv, each exiting long before the agent reads its exec: every instance
/// has its own exec and exit, with its own program, arguments and exit code, never another's.
#[test]
fn a_reused_pid_never_mixes_two_processes() {
    if !require_root() {
        return;
    }
    let (_tmp, dir) = canonical_tempdir();
    let progs = [
        copy_exe(&dir, "/bin/true", "vigil-reuse-a"),
        copy_exe(&dir, "/bin/false", "vigil-reuse-b"),
    ];
    let cg = TestCgroup::new();
    let agent = Agent::start(&[]);
    // A free pid well inside pid_max.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pid = (pid_max - 2000..pid_max - 2)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let paths: Vec<CString> = progs
        .iter()
        .map(|p| CString::new(p.as_os_str().as_bytes()).unwrap())
        .collect();
    let tags: Vec<CString> = (0..REUSES)
        .map(|i| CString::new(format!("reuse-{i}")).unwrap())
        .collect();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are new and owned here.
    let (mut rd, wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let wr_fd = wr.as_raw_fd();
    let mut cmd = Command::new("/bin/true");
    cg.enter(&mut cmd);
    // SAFETY: raw syscalls only on prebuilt data; ends with _exit, never returns to std.
    unsafe {
        cmd.pre_exec(move || {
            let set_tid = [pid as libc::pid_t];
            let mut ran = [0u8; REUSES];
            for (i, tag) in tags.iter().enumerate() {
                let prog = &paths[i % 2];
                let args = CloneArgs {
                    exit_signal: libc::SIGCHLD as u64,
                    set_tid: set_tid.as_ptr() as u64,
                    set_tid_size: 1,
                    ..CloneArgs::default()
                };
                let r = libc::syscall(
                    libc::SYS_clone3,
                    &args as *const CloneArgs,
                    std::mem::size_of::<CloneArgs>(),
                );
                if r == 0 {
                    let argv = [prog.as_ptr(), tag.as_ptr(), std::ptr::null()];
                    let envp = [std::ptr::null()];
                    libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                    libc::_exit(127);
                }
                let mut status = 0;
                if r > 0 && libc::waitpid(r as libc::pid_t, &mut status, 0) == r as libc::pid_t {
                    ran[i] = 1;
                }
            }
            libc::write(wr_fd, ran.as_ptr().cast(), REUSES);
            libc::_exit(0)
        });
    }
    let gen = cmd.spawn().unwrap();
    drop(wr);
    assert!(wait_output(gen, Duration::from_secs(30)).status.success());
    let mut ran = [0u8; REUSES];
    rd.read_exact(&mut ran).unwrap();
    let done = agent.stop();

    let ran: Vec<usize> = (0..REUSES).filter(|i| ran[*i] == 1).collect();
    eprintln!("pid {pid} reused {} times", ran.len());
    assert!(ran.len() > REUSES / 2, "clone3 set_tid mostly succeeded");
    let execs = by_pid(&done.events, "exec", pid);
    let exits = by_pid(&done.events, "exit", pid);
    assert_eq!(execs.len(), ran.len(), "one exec per instance");
    assert_eq!(exits.len(), ran.len(), "one exit per instance");
    let exit_by_start: HashMap<&str, &Value> = exits
        .iter()
        .map(|e| (e["process"]["start_time"].as_str().unwrap(), *e))
        .collect();
    assert_eq!(
        exit_by_start.len(),
        ran.len(),
        "each instance has its own start_time"
    );
    for (e, i) in execs.iter().zip(&ran) {
        let p = &e["process"];
        let tag = format!("reuse-{i}");
        let exe = progs[i % 2].to_str().unwrap();
        assert_eq!(p["args"], serde_json::json!([exe, tag]), "{e}");
        assert_eq!(p["exe"], exe, "{e}");
        let x = exit_by_start
            .get(p["start_time"].as_str().unwrap())
            .unwrap_or_else(|| panic!("no exit with the start_time of {e}"));
        assert_eq!(x["process"]["exe"], exe, "{x}");
        assert_eq!(x["process"]["args"], serde_json::json!([exe, tag]), "{x}");
        assert_eq!(x["exit"]["code"], (i % 2) as u64, "{x}");
    }
}
