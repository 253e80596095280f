//! Container identity from the first event: real containers started with runc from a tiny
//! busybox rootfs, in cgroups named as Docker and the kubelet (systemd driver) name them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

/// A bundle whose container runs `args` in cgroup `cgroups_path`, removed on drop.
pub(crate) struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    pub(crate) fn new(cgroups_path: &str, args: &[&str]) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "cat", "true", "echo"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(rootfs.join("etc/hostname"), "vigil-test\n").unwrap();
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

pub(crate) fn random_hex64() -> String {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The exec of the container's marker command, and every event in the same cgroup.
fn container_events<'a>(events: &'a [Value], marker: &str) -> (&'a Value, Vec<&'a Value>) {
    let exec = events
        .iter()
        .find(|e| {
            e["kind"] == "exec"
                && e["process"]["args"].as_array().is_some_and(|a| {
                    a.iter()
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
    if Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "runc is missing: scripts/deps.sh installs it"
    );
    eprintln!("skipping: runc is not installed");
    false
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
