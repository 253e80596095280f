//! Starts and stops the agent, makes test cgroups, and spawns children inside them.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Root is required; outside CI a non-root run skips, inside CI it fails.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI=true and not root: end-to-end tests need root"
    );
    eprintln!("skipping: not root");
    false
}

/// A running `vigil run` writing JSON lines to a file of its own.
pub struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

/// What an agent left behind once stopped.
pub struct Finished {
    pub events: Vec<Value>,
    pub stderr: String,
    pub final_stats: Value,
    pub pid: u32,
}

impl Agent {
    pub fn start(extra: &[&str]) -> Agent {
        Self::start_with_config(None, extra)
    }

    pub fn start_with_config(config: Option<&str>, extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.json");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.arg("run")
            .arg("--output")
            .arg(format!("file:{}", out.display()));
        if let Some(c) = config {
            let p = dir.path().join("vigil.yaml");
            std::fs::write(&p, c).unwrap();
            cmd.arg("--config").arg(p);
        }
        cmd.args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("VIGIL_LOG", "info");
        let mut child = cmd.spawn().expect("spawning vigil");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = tx.send(());
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!(
                "agent never became ready; stderr:\n{}",
                stderr.lock().unwrap()
            );
        }
        Agent { child, dir, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The API address of an agent started with `--api 127.0.0.1:0`.
    pub fn api_addr(&self) -> String {
        let log = self.stderr();
        log.lines()
            .find_map(|l| l.split("api listening on http://").nth(1))
            .unwrap_or_else(|| panic!("no api address in {log}"))
            .trim()
            .to_string()
    }

    /// SIGINT, wait for the drain, and parse everything it wrote.
    pub fn stop(mut self) -> Finished {
        let pid = self.child.id();
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        // Detaching waits an RCU grace period per tracepoint: seconds, more on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "agent did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50)); // let the stderr reader finish
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(
            status.success(),
            "agent exited with {status}; stderr:\n{stderr}"
        );
        let text = std::fs::read_to_string(self.dir.path().join("events.json")).unwrap_or_default();
        let events = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
            .collect();
        let stats = stderr
            .lines()
            .find_map(|l| l.strip_prefix("vigil: final stats "))
            .unwrap_or_else(|| panic!("no final stats line in:\n{stderr}"));
        let final_stats: Value = serde_json::from_str(stats).unwrap();
        for k in final_stats["kinds"].as_array().unwrap() {
            // Nothing is lost silently: what the kernel generated was received or counted.
            let generated = k["generated"].as_u64().unwrap();
            let received = k["received"].as_u64().unwrap();
            let dropped = k["dropped_ringbuf_full"].as_u64().unwrap();
            assert_eq!(generated, received + dropped, "accounting for {k}");
        }
        Finished {
            events,
            stderr,
            final_stats,
            pid,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh cgroup v2 directory, removed on drop. Its inode number is its cgroup id.
pub struct TestCgroup {
    pub path: PathBuf,
    pub id: u64,
    procs: CString,
}

impl TestCgroup {
    pub fn new() -> TestCgroup {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = cgroup2_root();
        let path = root.join(format!(
            "vigil-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let id = std::fs::metadata(&path).unwrap().ino();
        let procs = CString::new(path.join("cgroup.procs").to_str().unwrap()).unwrap();
        TestCgroup { path, id, procs }
    }

    /// `cmd` will join this cgroup between fork and exec, so its exec already belongs to it.
    pub fn enter(&self, cmd: &mut Command) {
        let procs = self.procs.clone();
        // SAFETY: the hook only calls async-signal-safe syscalls on pre-built buffers.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if n != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Processes may take a moment to leave after being reaped.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
        .expect("cgroup2 is mounted")
}

/// A private copy of /bin/true under `dir` named `name`, so its exe path is known exactly.
pub fn test_program(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy("/bin/true", &p).unwrap();
    p
}

/// Events of `kind` whose process ran in cgroup `id`.
pub fn in_cgroup<'a>(events: &'a [Value], kind: &str, id: u64) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["cgroup_id"] == id)
        .collect()
}

pub fn by_pid<'a>(events: &'a [Value], kind: &str, pid: u32) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["process"]["pid"] == pid)
        .collect()
}

/// `vigil probe --json`, parsed; it must succeed.
pub fn probe_json() -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["probe", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn self_exe() -> String {
    std::fs::read_link("/proc/self/exe")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Waits for `child` (bounded: killed and a panic past `timeout`), collecting its piped
/// stdout and stderr on threads so that a chatty child cannot block on a full pipe.
pub fn wait_output(mut child: std::process::Child, timeout: Duration) -> std::process::Output {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Held by tests that load the CPUs on purpose (floods) and by tests that measure latency, so
/// that the two never run at the same time (the suite runs two tests at once).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
