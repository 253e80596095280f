//! Container identity from the first event: real containers from a tiny busybox rootfs, started
//! with runc in cgroups named as Docker and the kubelet (systemd driver) name them, and by
//! containerd's `ctr` (a private daemon) and Podman (cgroupfs manager) themselves.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// A bundle whose container runs `args` in cgroup `cgroups_path`, removed on drop.
pub(crate) struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    pub(crate) fn new(cgroups_path: &str, args: &[&str]) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        busybox_rootfs(&dir.path().join("rootfs"));
        let spec = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .status()
            .expect("runc is installed (scripts/deps.sh)");
        assert!(spec.success());
        let path = dir.path().join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        config["linux"]["cgroupsPath"] = cgroups_path.into();
        std::fs::write(&path, config.to_string()).unwrap();
        Bundle { dir }
    }

    /// The container's root filesystem, as the host sees it.
    pub(crate) fn rootfs(&self) -> std::path::PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Runs the container to completion (runc creates and removes its cgroup).
    pub(crate) fn run(&self, name: &str) -> String {
        let out = Command::new("runc")
            .args(["run", "--bundle"])
            .arg(self.dir.path())
            .arg(name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "runc run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A tiny root filesystem at `rootfs`: busybox-static and a few applets in /bin.
fn busybox_rootfs(rootfs: &Path) {
    for d in ["bin", "proc", "dev", "sys", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "true", "echo", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/hostname"), "vigil-test\n").unwrap();
}

pub(crate) fn random_hex64() -> String {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The exec of the container's marker command (`sh -c '...marker...'`: not the exec of a client
/// such as `ctr run ... sh -c ...` on the host), and every event in the same cgroup.
fn container_events<'a>(events: &'a [Value], marker: &str) -> (&'a Value, Vec<&'a Value>) {
    let exec = events
        .iter()
        .find(|e| {
            e["kind"] == "exec"
                && e["process"]["args"].as_array().is_some_and(|a| {
                    a.first().is_some_and(|x| x == "sh")
                        && a.iter()
                            .any(|x| x.as_str().is_some_and(|x| x.contains(marker)))
                })
        })
        .unwrap_or_else(|| panic!("no exec with {marker}"));
    let cg = &exec["cgroup_id"];
    let same: Vec<&Value> = events
        .iter()
        .filter(|e| &e["cgroup_id"] == cg && e["kind"] != "alert")
        .collect();
    (exec, same)
}

pub(crate) fn require_runc() -> bool {
    require_tools(&["runc"])
}

/// Every program of `names` is installed; outside CI a missing one skips, inside CI it fails.
fn require_tools(names: &[&str]) -> bool {
    for name in names {
        if ["/usr/sbin", "/usr/bin"]
            .iter()
            .any(|d| Path::new(d).join(name).exists())
        {
            continue;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing: scripts/deps.sh installs it"
        );
        eprintln!("skipping: {name} is not installed");
        return false;
    }
    true
}

#[test]
fn a_short_lived_docker_style_container_is_attributed_from_its_first_event() {
    if !require_root() || !require_runc() {
        return;
    }
    let id = random_hex64();
    let marker = format!("vigil-marker-{}", &id[..8]);
    let bundle = Bundle::new(
        &format!("/system.slice/docker-{id}.scope"),
        &["sh", "-c", &format!("echo {marker}; cat /etc/hostname")],
    );
    let agent = Agent::start(&["--events", "exec,exit,fork"]);
    let out = bundle.run(&format!("vigil-{}", &id[..12]));
    assert!(out.contains("vigil-test"), "{out}");
    let done = agent.stop();

    let (exec, same) = container_events(&done.events, &marker);
    assert_eq!(exec["container"]["id"], id, "{exec:#}");
    assert_eq!(exec["container"]["runtime"], "docker");
    // The container's whole life: the marker shell, its `cat`, and their exits.
    let cat = same
        .iter()
        .find(|e| e["kind"] == "exec" && e["process"]["args"][0] == "cat")
        .expect("the cat inside the container");
    assert_eq!(cat["container"]["id"], id);
    assert!(same.iter().any(|e| e["kind"] == "exit"));
    let unattributed: Vec<_> = same
        .iter()
        .filter(|e| e["container"]["id"] != id.as_str())
        .collect();
    assert!(unattributed.is_empty(), "{unattributed:#?}");
    // Host processes carry no container.
    let host = done
        .events
        .iter()
        .find(|e| e["kind"] == "exec" && e["cgroup_id"] == 1)
        .or_else(|| done.events.iter().find(|e| e["container"].is_null()));
    assert!(host.is_some_and(|e| e.get("container").is_none()));
}

#[test]
fn a_kubernetes_pod_container_carries_its_pod_uid_and_rules_see_it() {
    if !require_root() || !require_runc() {
        return;
    }
    let id = random_hex64();
    let uid = "3f7c1e2a-5b6d-4c8e-9f0a-1b2c3d4e5f60";
    let marker = format!("vigil-marker-{}", &id[..8]);
    let slice = format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_"));
    // The kubelet's systemd-driver layout, created by runc's cgroupfs driver from this path.
    let bundle = Bundle::new(
        &format!("/kubepods.slice/kubepods-burstable.slice/{slice}/cri-containerd-{id}.scope"),
        &["sh", "-c", &format!("echo {marker}; true")],
    );
    let agent = Agent::start(&["--events", "exec"]);
    bundle.run(&format!("vigil-{}", &id[..12]));
    let done = agent.stop();

    let (exec, _) = container_events(&done.events, &marker);
    let c = &exec["container"];
    assert_eq!(c["id"], id, "{exec:#}");
    assert_eq!(c["runtime"], "containerd");
    assert_eq!(c["pod_uid"], uid);
    assert_eq!(c["qos"], "Burstable");
    // `container.id` is the short id in rules and alerts, as in Falco; the runtime's own
    // setup of the container (namespaces, mounts by runc) raises nothing.
    let setup_alerts: Vec<_> = done
        .events
        .iter()
        .filter(|e| {
            e["kind"] == "alert"
                && e["output_fields"]["container.id"] == id[..12]
                && e["output_fields"]["proc.name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("runc"))
        })
        .collect();
    assert!(setup_alerts.is_empty(), "{setup_alerts:#?}");
}

/// Everything the container ran, in its own cgroup, is attributed to it: `id`, `runtime`.
fn assert_whole_life(same: &[&Value], id: &str, runtime: &str) {
    let cat = same
        .iter()
        .find(|e| e["kind"] == "exec" && e["process"]["args"][0] == "cat")
        .expect("the cat inside the container");
    assert_eq!(cat["container"]["id"], id, "{cat:#}");
    assert!(same.iter().any(|e| e["kind"] == "exit"));
    let unattributed: Vec<_> = same
        .iter()
        .filter(|e| e["container"]["id"] != id || e["container"]["runtime"] != runtime)
        .collect();
    assert!(unattributed.is_empty(), "{unattributed:#?}");
}

const MARKER_RULE: &str = "Exec with the test marker";

/// A rule on every exec whose command line holds `marker`: the runtime's client on the host, and
/// the container's shell.
fn marker_rule(marker: &str) -> String {
    format!(
        "- rule: {MARKER_RULE}\n  desc: test\n  condition: evt.type = execve and proc.cmdline contains {marker}\n  output: marker in %container.id (%container.full_id, %container.type)\n  priority: NOTICE\n"
    )
}

/// The rule saw the container's shell (`exec`) with `container.id` the first 12 characters of
/// `id`, and the host processes with the marker as `host`.
fn assert_rule_saw(events: &[Value], exec: &Value, id: &str, runtime: &str) {
    let alerts: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "alert" && e["rule"] == MARKER_RULE)
        .collect();
    let (inside, outside): (Vec<&Value>, Vec<&Value>) = alerts
        .iter()
        .copied()
        .partition(|a| a["pid"] == exec["process"]["pid"]);
    assert_eq!(inside.len(), 1, "{alerts:#?}");
    let f = &inside[0]["output_fields"];
    let short: String = id.chars().take(12).collect();
    assert_eq!(f["container.id"], short.as_str(), "{f:#}");
    assert_eq!(f["container.full_id"], id);
    assert_eq!(f["container.type"], runtime);
    assert!(!outside.is_empty(), "the client's own exec: {alerts:#?}");
    for a in outside {
        assert_eq!(a["output_fields"]["container.id"], "host", "{a:#}");
    }
}

/// `cmd`'s output, killing it after `secs` seconds (a hung runtime must not hang the suite).
fn output_within(cmd: &mut Command, secs: u64) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(secs)).is_err() {
            // SAFETY: plain kill(2) on our own child, not yet reaped (the waiter has not sent).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    assert!(
        out.status.code().is_some(),
        "{cmd:?} did not finish within {secs} s (killed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A private containerd: its own root, state, socket and config under a temp dir, so a system
/// containerd (if any) is not touched. Stopped and removed on drop.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = d.join("config.toml");
        // No CRI plugin (it wants CNI and a sandbox image), and the `opt` plugin's directory
        // (/opt/containerd by default) in the temp dir.
        std::fs::write(
            &config,
            format!(
                "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{}\"\n",
                d.join("opt").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--state")
            .arg(d.join("state"))
            .arg("--address")
            .arg(d.join("c.sock"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning containerd");
        let mut c = Containerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.child.try_wait().unwrap() {
                panic!("containerd exited with {status}:\n{}", c.log());
            }
            if c.dir.path().join("c.sock").exists()
                && c.ctr()
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer on its socket within 30 s:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr` talking to this containerd, in the `default` namespace.
    fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.dir.path().join("c.sock"))
            .args(["--namespace", "default"]);
        cmd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_ctr_container_of_a_private_containerd_is_attributed_from_its_first_event() {
    if !require_root() || !require_tools(&["runc", "containerd", "ctr"]) {
        return;
    }
    let containerd = Containerd::start();
    let d = containerd.dir.path();
    let rootfs = d.join("rootfs");
    busybox_rootfs(&rootfs);
    let tag = random_hex64()[..8].to_string();
    // A ctr id is any name the user picks; with cgroupfs, containerd puts the container in
    // `/<namespace>/<id>`, here `/default/vigil-ctr-<tag>`.
    let name = format!("vigil-ctr-{tag}");
    let marker = format!("vigil-marker-{tag}");
    let rules = d.join("rules.yaml");
    std::fs::write(&rules, marker_rule(&marker)).unwrap();
    let agent = Agent::start(&[
        "--events",
        "exec,exit,fork",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    // `--rootfs`: a directory, no image and no snapshotter. No image config means no PATH
    // either. The FIFOs and runc's state go to the temp dir too.
    let mut run = containerd.ctr();
    run.args(["run", "--rm", "--runtime", "io.containerd.runc.v2"])
        .args(["--env", "PATH=/bin"])
        .arg("--fifo-dir")
        .arg(d.join("fifo"))
        .arg("--runc-root")
        .arg(d.join("runc"))
        .arg("--rootfs")
        .arg(&rootfs)
        .arg(&name)
        .args(["sh", "-c", &format!("echo {marker}; cat /etc/hostname")]);
    let out = output_within(&mut run, 120);
    assert!(
        out.status.success(),
        "ctr run: {}\ncontainerd:\n{}",
        String::from_utf8_lossy(&out.stderr),
        containerd.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&marker) && stdout.contains("vigil-test"),
        "{stdout}"
    );
    let done = agent.stop();

    let (exec, same) = container_events(&done.events, &marker);
    assert_eq!(exec["container"]["id"], name.as_str(), "{exec:#}");
    assert_eq!(exec["container"]["runtime"], "containerd");
    assert!(exec["container"].get("pod_uid").is_none(), "{exec:#}");
    assert_whole_life(&same, &name, "containerd");
    assert_rule_saw(&done.events, exec, &name, "containerd");
    // The shim that runs runc and waits for the container is a host process, in containerd's
    // cgroup.
    assert_host_only(&done.events, "/containerd-shim-runc-v2", exec);
}

/// Every event of the program whose path ends in `exe_suffix` (at least its exec) carries no
/// container and is outside the container of `exec`.
fn assert_host_only(events: &[Value], exe_suffix: &str, exec: &Value) {
    let of: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["kind"] != "alert"
                && e["process"]["exe"]
                    .as_str()
                    .is_some_and(|x| x.ends_with(exe_suffix))
        })
        .collect();
    assert!(
        of.iter().any(|e| e["kind"] == "exec"),
        "no exec of {exe_suffix}: {of:#?}"
    );
    for e in &of {
        assert!(e.get("container").is_none(), "{e:#}");
        assert_ne!(e["cgroup_id"], exec["cgroup_id"], "{e:#}");
    }
}

/// Podman with its own storage, state and temp dirs, runc and the cgroupfs manager. Leftover
/// containers and the dirs are removed on drop.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--events-backend", "none"])
            .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
            // runc's state in the temp dir rather than /run/runc.
            .arg("--runtime-flag")
            .arg(format!("root={}", d.join("runc").display()));
        cmd
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .args(["rm", "--all", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn a_podman_container_is_attributed_from_its_first_event_and_conmon_is_not() {
    if !require_root() || !require_tools(&["runc", "podman", "conmon"]) {
        return;
    }
    let podman = Podman::new();
    let d = podman.dir.path();
    let rootfs = d.join("rootfs");
    busybox_rootfs(&rootfs);
    let cidfile = d.join("cid");
    let marker = format!("vigil-marker-{}", &random_hex64()[..8]);
    let rules = d.join("rules.yaml");
    std::fs::write(&rules, marker_rule(&marker)).unwrap();
    let agent = Agent::start(&[
        "--events",
        "exec,exit,fork",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    // `--rootfs`: a directory, no image. The ulimits: Podman's defaults for root (nofile and
    // nproc 1048576) are above the hard limits of a machine whose root lacks
    // CAP_SYS_RESOURCE, and runc then fails with "error setting rlimit type 7: operation not
    // permitted".
    let mut run = podman.cmd();
    run.args(["run", "--rm", "--network", "none"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .arg("--cidfile")
        .arg(&cidfile)
        .arg("--rootfs")
        .arg(&rootfs)
        .args(["sh", "-c", &format!("echo {marker}; cat /etc/hostname")]);
    let out = output_within(&mut run, 120);
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = agent.stop();
    let id = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    // Podman names the container's host after its short id.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&marker) && stdout.contains(&id[..12]),
        "{stdout}"
    );

    let (exec, same) = container_events(&done.events, &marker);
    assert_eq!(exec["container"]["id"], id.as_str(), "{exec:#}");
    assert_eq!(exec["container"]["runtime"], "podman");
    assert_whole_life(&same, &id, "podman");
    assert_rule_saw(&done.events, exec, &id, "podman");
    // conmon, the monitor Podman starts next to the container, runs on the host in a cgroup of
    // its own (`/libpod_parent/conmon` on a pure cgroup v2 host, its launcher's on a hybrid
    // one): it is not the container.
    assert_host_only(&done.events, "/conmon", exec);
}

#[test]
fn a_ctr_container_is_named_by_containerd_s_api() {
    if !require_root() || !require_tools(&["runc", "containerd", "ctr"]) {
        return;
    }
    let containerd = Containerd::start();
    let d = containerd.dir.path();
    let rootfs = d.join("rootfs");
    busybox_rootfs(&rootfs);
    let tag = random_hex64()[..8].to_string();
    let name = format!("vigil-ctr-meta-{tag}");
    let marker = format!("vigil-marker-{tag}");
    let config = format!(
        "runtime:\n  containerd:\n    socket: {}\n    namespaces: [default]\nnetwork: {{enabled: false}}\n",
        d.join("c.sock").display()
    );
    let agent = Agent::start_with_config(Some(&config), &["--events", "exec,exit"]);
    let mut run = containerd.ctr();
    run.args(["run", "--rm", "--runtime", "io.containerd.runc.v2"])
        .args(["--env", "PATH=/bin", "--label", "team=blue"])
        .arg("--fifo-dir")
        .arg(d.join("fifo"))
        .arg("--runc-root")
        .arg(d.join("runc"))
        .arg("--rootfs")
        .arg(&rootfs)
        .arg(&name)
        // Events after the first moments carry what containerd says (the lookup takes ms).
        .args([
            "sh",
            "-c",
            &format!("echo {marker}; sleep 1; cat /etc/hostname"),
        ]);
    let out = output_within(&mut run, 120);
    assert!(
        out.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = agent.stop();
    let cat = done
        .events
        .iter()
        .find(|e| {
            // busybox re-executes itself for applets (comm `exe`): the exit names the applet.
            e["kind"] == "exit"
                && e["container"]["id"] == name.as_str()
                && e["process"]["comm"] == "cat"
        })
        .unwrap_or_else(|| {
            let mine: Vec<_> = done
                .events
                .iter()
                .filter(|e| e["container"]["id"] == name.as_str())
                .map(|e| (&e["kind"], &e["process"]["comm"], &e["container"]))
                .collect();
            panic!("no cat exit in the container; its events: {mine:?}")
        });
    assert_eq!(cat["container"]["name"], name.as_str(), "{cat:#}");
    assert!(cat["container"].get("image").is_none(), "no image: {cat:#}");
}
