//! `vigil top` over a real agent: a busy runc container's row, in tmux and with `--once`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::identity::{random_hex64, require_runc, Bundle};

/// tmux is installed; outside CI a missing one skips, inside CI it fails.
fn require_tmux() -> bool {
    if Path::new("/usr/bin/tmux").exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tmux is missing: scripts/deps.sh installs it"
    );
    eprintln!("skipping: tmux is not installed");
    false
}

/// A container running in the background under runc; killed and removed on drop.
struct Running {
    name: String,
    run: Option<JoinHandle<String>>,
}

impl Running {
    fn start(bundle: Bundle, name: &str) -> Running {
        let n = name.to_string();
        let run = std::thread::spawn(move || bundle.run(&n));
        Running {
            name: name.to_string(),
            run: Some(run),
        }
    }

    /// SIGTERM to the container's shell, which traps it and exits 0.
    fn stop(mut self) {
        let status = Command::new("runc")
            .args(["kill", &self.name, "TERM"])
            .status()
            .unwrap();
        assert!(status.success(), "runc kill {}", self.name);
        let run = self.run.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !run.is_finished() {
            assert!(Instant::now() < deadline, "the container did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        run.join().expect("runc run succeeded");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.run.is_some() {
            let _ = Command::new("runc")
                .args(["delete", "--force", &self.name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A tmux server of the test's own (its own socket and configuration), killed on drop.
struct Tmux {
    socket: PathBuf,
    config: PathBuf,
}

impl Tmux {
    /// A detached 200x50 session `top` running `script` with sh; the pane stays after the
    /// script exits so that the test can read how it ended.
    fn start(dir: &Path, script: &str) -> Tmux {
        let path = dir.join("run.sh");
        std::fs::write(&path, script).unwrap();
        let t = Tmux {
            socket: dir.join("tmux.sock"),
            config: dir.join("tmux.conf"),
        };
        std::fs::write(&t.config, "set -g remain-on-exit on\n").unwrap();
        let cmd = format!("sh {}", path.display());
        t.ok(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "200",
            "-y",
            "50",
            &cmd,
        ]);
        t
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-t", "top"])
    }

    /// Polls the pane until `pred` holds on its text (bounded), and returns that text.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "never saw {what}; pane:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Presses `q` and checks that `vigil top` exited 0 and left the terminal as it found it:
    /// the main screen back (none of the table on it), cooked mode (the script's `stty` after
    /// it). Then closes the session.
    fn quit_and_check_restored(&self) {
        self.ok(&["send-keys", "-t", "top", "q"]);
        // vigil's own exit status is in the script's output: tmux does not always learn the
        // shell's (it may see the pty close first).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let how = self.ok(&["display", "-p", "-t", "top", "#{pane_dead} #{alternate_on}"]);
            if how.starts_with("1 ") {
                assert_eq!(how.trim(), "1 0", "dead, alternate screen");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "vigil top did not quit on q ({how}):\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // With the history: tmux may scroll the pane by a line to say that it is dead.
        let s = self.ok(&["capture-pane", "-p", "-S", "-", "-t", "top"]);
        assert!(s.contains("vigil-top-exit=0"), "{s}");
        assert!(
            !s.contains("WORKLOAD"),
            "the table was left on the main screen:\n{s}"
        );
        for mode in ["icanon", "echo", "isig"] {
            assert!(
                s.lines().any(|l| l.trim() == mode),
                "{mode} not restored:\n{s}"
            );
        }
        self.ok(&["kill-session", "-t", "top"]);
        assert!(!self.cmd(&["has-session", "-t", "top"]).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The script a tmux pane runs: `vigil top ARGS`, its exit status, then the tty's modes.
fn top_script(args: &str) -> String {
    format!(
        "'{}' top {args}\necho vigil-top-exit=$?\nstty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo|isig)$'\n",
        env!("CARGO_BIN_EXE_vigil")
    )
}

/// The fields of the table line of `workload` in `text`, if there is one.
fn row<'a>(text: &'a str, workload: &str) -> Option<Vec<&'a str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&workload))
}

/// EVENTS and EV/S of a row (`WORKLOAD EVENTS EV/S ...`); EV/S is `-` before a second sample.
fn events_and_rate(f: &[&str]) -> (u64, f64) {
    let rate = f[2].strip_suffix('k').map_or_else(
        || f[2].parse().unwrap_or(0.0),
        |k| k.parse::<f64>().unwrap() * 1e3,
    );
    (f[1].parse().unwrap(), rate)
}

#[test]
fn top_shows_a_busy_container_live_in_tmux_and_once() {
    if !require_root() || !require_runc() || !require_tmux() {
        return;
    }
    let id = random_hex64();
    let short = &id[..12];
    // Docker's cgroup layout: the workload key is the container id's first 12 characters.
    let bundle = Bundle::new(
        &format!("/system.slice/docker-{id}.scope"),
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do cat /etc/hostname >/dev/null; busybox sleep 0.1; done",
        ],
    );
    // Short latency windows, so the container's run-queue latency shows up soon.
    let agent = Agent::start_with_config(
        Some("latency:\n  window_secs: 2\n"),
        &["--api", "127.0.0.1:0"],
    );
    let api = agent.api_addr();
    let container = Running::start(bundle, &format!("vigil-top-{short}"));

    // --once: a plain table with the container's row, its events counted, a rate over the
    // second between the two samples, and the p50/p99 of its run-queue latency (the default
    // metric: it wakes up ten times a second). The agent publishes workloads periodically
    // and latency per complete window: retry.
    let deadline = Instant::now() + Duration::from_secs(60);
    let once = loop {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["top", "--api", &api, "--interval", "1", "--once"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            if let Some(f) = row(&text, short) {
                let (events, rate) = events_and_rate(&f);
                if events > 0 && rate > 0.0 && f[5] != "-" && f[6] != "-" {
                    break text;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no busy row with latency for {short}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let header = once.lines().nth(1).unwrap();
    assert!(
        header.split_whitespace().eq([
            "WORKLOAD", "EVENTS", "EV/S*", "EV%", "SYSC/S", "P50", "P99", "CONNS", "DROPS",
            "ALERTS"
        ]),
        "{once}"
    );
    assert!(once.contains("\nRECENT ALERTS\n"), "{once}");
    assert!(
        once.lines()
            .next()
            .unwrap()
            .contains("latency runq (last 2 s window)"),
        "{once}"
    );
    let f = row(&once, short).unwrap();
    for p in [f[5], f[6]] {
        assert!(
            ["us", "ms", "s"]
                .iter()
                .any(|u| p.strip_suffix(u).is_some_and(|n| n.parse::<f64>().is_ok())),
            "{once}"
        );
    }

    // Full screen in tmux: the row appears with events, then twice refreshed with a rate.
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        dir.path(),
        &top_script(&format!("--api {api} --interval 1")),
    );
    let screen = tmux.wait_for(&format!("a busy row for {short}"), |s| {
        row(s, short).is_some_and(|f| {
            let (events, rate) = events_and_rate(&f);
            events > 0 && rate > 0.0
        })
    });
    assert!(screen.contains("RECENT ALERTS"), "{screen}");
    assert!(screen.contains("updated "), "{screen}");
    // `e` sorts by EVENTS: the header marks it.
    tmux.ok(&["send-keys", "-t", "top", "e"]);
    tmux.wait_for("the EVENTS column sorted", |s| s.contains("EVENTS*"));
    tmux.quit_and_check_restored();

    container.stop();
    agent.stop();
}

#[test]
fn top_without_an_agent_says_so_and_keeps_retrying() {
    if !require_tmux() {
        return;
    }
    // A port nothing listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["top", "--api", &addr.to_string(), "--once"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("connecting to the agent's API at {addr}")),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        dir.path(),
        &top_script(&format!("--api {addr} --interval 1")),
    );
    tmux.wait_for("the error line", |s| {
        s.contains(&format!("connecting to the agent's API at {addr}"))
            && s.contains("(retrying every 1 s)")
            && s.contains("alert stream:")
    });
    tmux.quit_and_check_restored();
}
