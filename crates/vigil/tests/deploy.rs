//! The deployment files in deploy/: every Kubernetes manifest is a strict k8s-openapi object,
//! the DaemonSet and the systemd unit grant exactly what `vigil probe --json` says the agent
//! needs, and the DaemonSet's container, run by runc as containerd would run it (private mount
//! and cgroup namespaces, the host's PID and network namespaces, those capabilities only, a
//! read-only root), starts every sensor, sees the host's processes and enforces a kill rule.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// Root is required; outside CI a non-root run skips, inside CI it fails.
fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI=true and not root: this test needs root"
    );
    eprintln!("skipping: not root");
    false
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every YAML document in deploy/kubernetes, as JSON, with the file it came from.
fn documents() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push((name.clone(), v));
        }
    }
    out
}

fn one<T: DeserializeOwned>(kind: &str) -> T {
    let docs: Vec<Value> = documents()
        .into_iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(docs.len(), 1, "one {kind} in deploy/kubernetes");
    serde_json::from_value(docs[0].clone()).unwrap()
}

/// The document through its k8s-openapi type and back, or why it is not one.
fn typed(doc: &Value) -> Result<Value, String> {
    fn via<T: DeserializeOwned + serde::Serialize>(doc: &Value) -> Result<Value, String> {
        let t: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(&t).map_err(|e| e.to_string())
    }
    match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
        (Some("v1"), Some("Namespace")) => via::<Namespace>(doc),
        (Some("v1"), Some("ServiceAccount")) => via::<ServiceAccount>(doc),
        (Some("v1"), Some("ConfigMap")) => via::<ConfigMap>(doc),
        (Some("apps/v1"), Some("DaemonSet")) => via::<DaemonSet>(doc),
        (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRole")) => via::<ClusterRole>(doc),
        (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRoleBinding")) => {
            via::<ClusterRoleBinding>(doc)
        }
        (v, k) => Err(format!(
            "apiVersion {v:?} kind {k:?}: not known to this test"
        )),
    }
}

/// Where `typed` (the document after its type) differs from `doc`: a field the type does not
/// have vanishes, a value of the wrong shape changes.
fn first_difference(doc: &Value, typed: &Value, path: &str) -> Option<String> {
    match (doc, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    None => return Some(format!("{p}: not a field of the Kubernetes type")),
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &p) {
                            return Some(d);
                        }
                    }
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| format!("{path}.{k}: added by the Kubernetes type"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]"))),
        _ if doc == typed => None,
        _ => Some(format!("{path}: {doc} reads as {typed}")),
    }
}

fn strict(doc: &Value) -> Result<(), String> {
    let t = typed(doc)?;
    match first_difference(doc, &t, "") {
        Some(d) => Err(d),
        None => Ok(()),
    }
}

#[test]
fn manifests_are_strict_kubernetes_objects() {
    let docs = documents();
    let kinds: BTreeSet<&str> = docs
        .iter()
        .filter_map(|(_, d)| d["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "Namespace",
            "ServiceAccount"
        ])
    );
    for (file, doc) in &docs {
        if let Err(e) = strict(doc) {
            panic!("{file}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]);
        }
    }
    // The check itself: a misspelled field and a wrong type are caught, with their path.
    let ds = &docs
        .iter()
        .find(|(_, d)| d["kind"] == "DaemonSet")
        .unwrap()
        .1;
    let mut bad = ds.clone();
    bad["spec"]["template"]["spec"]["hostPid"] = json!(true);
    assert_eq!(
        strict(&bad).unwrap_err(),
        ".spec.template.spec.hostPid: not a field of the Kubernetes type"
    );
    let mut ds = ds.clone();
    ds["spec"]["template"]["spec"]["hostPID"] = json!("yes");
    assert!(strict(&ds).unwrap_err().contains("expected a boolean"));
}

#[test]
fn configmap_carries_the_default_rules() {
    let cm: ConfigMap = one("ConfigMap");
    let data = cm.data.unwrap();
    let default = std::fs::read_to_string(repo().join("rules/vigil-default.yaml")).unwrap();
    assert!(
        data["vigil-default.yaml"] == default,
        "deploy/kubernetes/configmap.yaml differs from rules/vigil-default.yaml: run deploy/kubernetes/sync-rules.sh"
    );
    // Every rule file the container is given loads (a load error would stop the agent).
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["rules".to_string(), "check".into()];
    for key in ["vigil-default.yaml", "local.yaml"] {
        let p = dir.path().join(key);
        std::fs::write(&p, &data[key]).unwrap();
        args.push(p.to_string_lossy().into_owned());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vigil probe --json`'s requirements.
#[derive(Debug, Deserialize)]
struct Requirements {
    capabilities: Vec<Cap>,
    filesystems: Vec<Fs>,
    host_namespaces: Vec<Named>,
    optional: Vec<Cap>,
    #[serde(default)]
    unreadable: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Cap {
    name: String,
    held: bool,
}

#[derive(Debug, Deserialize)]
struct Fs {
    path: String,
    fs: String,
    writable: bool,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

fn requirements() -> Requirements {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["probe", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r: Requirements = serde_json::from_value(report["requirements"].clone()).unwrap();
    assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);
    // As root, the probe holds every capability it lists (else its test of them is wrong).
    for c in &r.capabilities {
        assert!(c.held, "{} not held by root", c.name);
    }
    r
}

fn agent_container(spec: &PodSpec) -> &Container {
    assert_eq!(spec.containers.len(), 1);
    assert!(spec.init_containers.is_none());
    &spec.containers[0]
}

/// hostPath volumes as (host path, mount path, read-only).
fn host_mounts(spec: &PodSpec) -> Vec<(String, String, bool)> {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let c = agent_container(spec);
    c.volume_mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            let v = volumes.iter().find(|v| v.name == m.name).unwrap();
            let h = v.host_path.as_ref()?;
            Some((
                h.path.clone(),
                m.mount_path.clone(),
                m.read_only == Some(true),
            ))
        })
        .collect()
}

/// The port of `--api ADDR` in the container's arguments.
fn api_port(c: &Container) -> u16 {
    let args = c.args.as_deref().unwrap_or_default();
    let i = args
        .iter()
        .position(|a| a == "--api")
        .expect("--api in args");
    args[i + 1].rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn daemonset_grants_exactly_the_requirements() {
    if !require_root() {
        return;
    }
    let need = requirements();
    let ds: DaemonSet = one("DaemonSet");
    let template = ds.spec.unwrap().template;
    let annotations = template.metadata.unwrap().annotations.unwrap();
    let spec = template.spec.unwrap();
    let c = agent_container(&spec);

    let sc = c.security_context.as_ref().unwrap();
    assert_ne!(
        sc.privileged,
        Some(true),
        "not privileged: the capabilities say what"
    );
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    let granted: BTreeSet<String> = caps
        .add
        .iter()
        .flatten()
        .map(|c| format!("CAP_{c}"))
        .collect();
    let wanted: BTreeSet<String> = need.capabilities.iter().map(|c| c.name.clone()).collect();
    assert_eq!(granted, wanted, "capabilities: manifest vs vigil probe");
    assert!(need.optional.iter().all(|o| !granted.contains(&o.name)));

    let ns: BTreeSet<&str> = need
        .host_namespaces
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(spec.host_pid == Some(true), ns.contains("pid"), "hostPID");
    assert_eq!(
        spec.host_network == Some(true),
        ns.contains("net"),
        "hostNetwork"
    );
    assert_ne!(spec.host_ipc, Some(true));

    // Each filesystem from the host at the same path, writable only if it must be. /proc
    // comes with the host PID namespace (the runtime mounts a procfs of it). A requirement
    // below a mount is met by it (cgroup v2 at /sys/fs/cgroup/unified on a hybrid host).
    let mounts = host_mounts(&spec);
    for (host, at, _) in &mounts {
        assert_eq!(host, at, "hostPath {host} mounted at the same path");
    }
    for f in &need.filesystems {
        if f.fs == "proc" {
            assert_eq!(f.path, "/proc");
            assert!(ns.contains("pid"));
            continue;
        }
        let m = mounts
            .iter()
            .filter(|(host, _, _)| f.path == *host || f.path.starts_with(&format!("{host}/")))
            .max_by_key(|(host, _, _)| host.len())
            .unwrap_or_else(|| panic!("{} ({}) is not mounted from the host", f.path, f.fs));
        assert_eq!(!m.2, f.writable, "{}: writable is {}", f.path, f.writable);
    }
    for (host, _, _) in &mounts {
        assert!(
            need.filesystems
                .iter()
                .any(|f| f.path == *host || f.path.starts_with(&format!("{host}/"))),
            "hostPath {host} is mounted but not required"
        );
    }

    // The probes and the Prometheus annotation point at the API.
    let port = api_port(c);
    let named: BTreeMap<String, i32> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.container_port))
        .collect();
    for (what, probe, path) in [
        ("startup", &c.startup_probe, "/healthz"),
        ("liveness", &c.liveness_probe, "/healthz"),
        ("readiness", &c.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
        let get = get.unwrap_or_else(|| panic!("{what} probe: httpGet"));
        assert_eq!(get.path.as_deref(), Some(path), "{what} probe");
        let p = match &get.port {
            IntOrString::Int(p) => *p,
            IntOrString::String(name) => named[name],
        };
        assert_eq!(p, i32::from(port), "{what} probe port");
    }
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
}

/// A container given to runc, deleted on drop.
struct Runc {
    state: tempfile::TempDir,
    id: String,
}

impl Runc {
    fn cmd(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(self.state.path());
        c
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = self.cmd().args(["delete", "--force", &self.id]).output();
    }
}

/// The OCI runtime configuration containerd would give the DaemonSet's container (the parts
/// that matter to the agent), with its files from `config_dir` and `--api` on `api`.
fn oci_config(spec: &PodSpec, rootfs: &Path, config_dir: &Path, api: &str) -> Value {
    let c = agent_container(spec);
    let sc = c.security_context.as_ref().unwrap();
    let caps: Vec<String> = sc
        .capabilities
        .as_ref()
        .and_then(|c| c.add.clone())
        .unwrap_or_default()
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    let mut args = entrypoint();
    args.extend(c.args.clone().unwrap_or_default());
    let i = args.iter().position(|a| a == "--api").unwrap();
    args[i + 1] = api.to_string();
    let mut env = vec!["PATH=/usr/bin:/bin".to_string()];
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                let field = &from.field_ref.as_ref().unwrap().field_path;
                assert_eq!(field, "spec.nodeName");
                "vigil-test-node".into()
            }
            (None, None) => String::new(),
        };
        env.push(format!("{}={value}", e.name));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    for m in c.volume_mounts.iter().flatten() {
        let v = volumes.iter().find(|v| v.name == m.name).unwrap();
        let source = match (&v.host_path, &v.config_map) {
            (Some(h), _) => PathBuf::from(&h.path),
            (None, Some(_)) => config_dir.to_path_buf(),
            _ => panic!(
                "volume {}: only hostPath and configMap are known here",
                v.name
            ),
        };
        let mut options = vec!["rbind"];
        if m.read_only == Some(true) {
            options.push("ro");
        }
        mounts.push(json!({"destination": m.mount_path, "type": "bind",
                           "source": source, "options": options}));
    }
    let mut namespaces = vec![
        json!({"type": "mount"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        // containerd gives every non-privileged container its own on cgroup v2.
        json!({"type": "cgroup"}),
    ];
    if spec.host_pid != Some(true) {
        namespaces.push(json!({"type": "pid"}));
    }
    if spec.host_network != Some(true) {
        namespaces.push(json!({"type": "network"}));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": sc.run_as_user.unwrap_or(0), "gid": 0},
            "args": args,
            "env": env,
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": sc.allow_privilege_escalation == Some(false),
        },
        "root": {"path": rootfs, "readonly": sc.read_only_root_filesystem == Some(true)},
        "hostname": "vigil-test",
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    })
}

/// The image's ENTRYPOINT (deploy/container/Containerfile): the DaemonSet gives only args.
fn entrypoint() -> Vec<String> {
    let file = std::fs::read_to_string(repo().join("deploy/container/Containerfile")).unwrap();
    let line = file.lines().find_map(|l| l.strip_prefix("ENTRYPOINT "));
    serde_json::from_str(line.expect("an ENTRYPOINT")).unwrap()
}

/// A root filesystem like the image's: the agent binary where the entrypoint runs it, and the
/// shared libraries it links.
fn rootfs(at: &Path) {
    let bin = Path::new(env!("CARGO_BIN_EXE_vigil"));
    let dst = at.join(entrypoint()[0].trim_start_matches('/'));
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(bin, dst).unwrap();
    let ldd = Command::new("ldd").arg(bin).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dst = at.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(lib, dst).unwrap();
    }
    for d in ["proc", "sys", "dev", "etc"] {
        std::fs::create_dir_all(at.join(d)).unwrap();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn daemonset_container_runs_in_runc() {
    if !require_root() {
        return;
    }
    let ds: DaemonSet = one("DaemonSet");
    let spec = ds.spec.unwrap().template.spec.unwrap();
    let c = agent_container(&spec);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    rootfs(&root);
    // The ConfigMap's files, laid out as its items say.
    let config_dir = dir.path().join("config");
    let cm: ConfigMap = one("ConfigMap");
    let data = cm.data.unwrap();
    let volumes = spec.volumes.as_deref().unwrap();
    let items = volumes
        .iter()
        .find_map(|v| v.config_map.as_ref())
        .and_then(|c| c.items.clone())
        .unwrap();
    // Enforcement from inside the container: the site rules get a kill rule for a program of
    // this test's own, pinned in a directory of this test's own (cleared on drop).
    let payload_dir = tempfile::tempdir().unwrap();
    let payload = payload_dir.path().canonicalize().unwrap().join("payload");
    std::fs::copy("/bin/true", &payload).unwrap();
    let pins = Pins {
        dir: PathBuf::from(format!("/sys/fs/bpf/vigil-deploy-{}", std::process::id())),
        config: config_dir.join("config.yaml"),
    };
    let mut files = data.clone();
    let default_pins = format!("pin_dir: {}", "/sys/fs/bpf/vigil/enforce");
    assert!(files["config.yaml"].contains(&default_pins));
    files.insert(
        "config.yaml".into(),
        files["config.yaml"].replace(&default_pins, &format!("pin_dir: {}", pins.dir.display())),
    );
    files.insert("local.yaml".into(), kill_rule(&payload));
    for item in items {
        let p = config_dir.join(&item.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &files[&item.key]).unwrap();
    }
    pins.clear();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let config = oci_config(&spec, &root, &config_dir, &format!("127.0.0.1:{port}"));
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();

    let runc = Runc {
        state: tempfile::tempdir().unwrap(),
        id: format!("vigil-deploy-{}", std::process::id()),
    };
    let mut child = runc
        .cmd()
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&runc.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runc (Debian package runc) must be installed");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("vigil: ready") {
                let _ = tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let stdout = child.stdout.take().unwrap();
    let events = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .filter(|e| e["kind"] == "exec" || e["kind"] == "alert")
            .collect::<Vec<_>>()
    });
    let Ok(ready) = rx.recv_timeout(Duration::from_secs(90)) else {
        let _ = runc.cmd().args(["kill", &runc.id, "KILL"]).output();
        panic!("the container never became ready:\n{}", log.join().unwrap());
    };
    assert!(
        ready.contains("sensors=process,file,syscalls,net "),
        "every sensor attached: {ready}"
    );
    let get = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        let path = p.as_ref().unwrap().http_get.as_ref().unwrap().path.clone();
        http_get(port, &path.unwrap())
    };
    assert!(get(&c.readiness_probe).starts_with("HTTP/1.1 200"));
    assert!(get(&c.liveness_probe).starts_with("HTTP/1.1 200"));

    // A host process started now is seen with its host pid and its parent (this test, read
    // from /proc at the agent's start). Its exec record is in the ring buffer before it exits,
    // and the agent drains the buffer on SIGTERM.
    let mut host = Command::new("/bin/true").spawn().unwrap();
    let pid = host.id();
    host.wait().unwrap();
    let mut killed = Command::new(&payload).spawn().unwrap();
    let killed_pid = killed.id();
    let status = killed.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");

    let kill = runc
        .cmd()
        .args(["kill", &runc.id, "TERM"])
        .output()
        .unwrap();
    assert!(kill.status.success(), "{kill:?}");
    let exit = child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(exit.success(), "agent exited with {exit}:\n{log}");
    assert!(log.contains("vigil: final stats"), "{log}");
    // The kill rule outlives the agent: it stays pinned on the host.
    let status = pins.vigil(&["enforce", "status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["rules"][0]["name"], KILL_RULE, "{status:#}");
    let events = events.join().unwrap();
    let alert = events
        .iter()
        .find(|e| e["kind"] == "alert" && e["rule"] == KILL_RULE)
        .unwrap_or_else(|| panic!("no `{KILL_RULE}` alert"));
    assert_eq!(alert["action"], "killed", "{alert:#}");
    assert_eq!(alert["pid"], killed_pid, "{alert:#}");
    let exec = events
        .iter()
        .find(|e| e["kind"] == "exec" && e["process"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no exec of pid {pid} among {} execs", events.len()));
    assert_eq!(exec["process"]["exe"], "/usr/bin/true");
    assert_eq!(exec["ancestry"][0]["pid"], std::process::id());
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(exec["ancestry"][0]["exe"], me.to_string_lossy().as_ref());
}

const KILL_RULE: &str = "Deploy test kill";

/// A rule file that kills `exe` when it is executed.
fn kill_rule(exe: &Path) -> String {
    format!(
        "- rule: {KILL_RULE}\n  desc: the deployment test's payload\n  \
         condition: evt.type = execve and proc.exepath = \"{}\"\n  \
         output: killed %proc.exepath\n  priority: CRITICAL\n  action: kill\n",
        exe.display()
    )
}

/// An enforcement pin directory and the agent configuration naming it. On drop,
/// `vigil enforce clear` removes whatever is still pinned there (after a panic too).
struct Pins {
    dir: PathBuf,
    config: PathBuf,
}

impl Pins {
    fn vigil(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "vigil {args:?}: {out:?}");
        out
    }

    fn clear(&self) {
        self.vigil(&["enforce", "clear"]);
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["enforce", "clear", "--config"])
            .arg(&self.config)
            .output();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `Key=value` settings of the [Service] section.
fn service_settings(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = "";
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']');
            continue;
        }
        if section == "Service" {
            let (k, v) = line.split_once('=').unwrap();
            out.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    out
}

#[test]
fn systemd_unit_grants_exactly_the_requirements() {
    if !require_root() {
        return;
    }
    let need = requirements();
    let path = repo().join("deploy/systemd/vigil.service");
    let unit = std::fs::read_to_string(&path).unwrap();
    let s = service_settings(&unit);
    let set = |k: &str| -> BTreeSet<String> {
        s[k].iter()
            .flat_map(|v| v.split_whitespace())
            .map(str::to_string)
            .collect()
    };
    let wanted: BTreeSet<String> = need.capabilities.iter().map(|c| c.name.clone()).collect();
    assert_eq!(set("CapabilityBoundingSet"), wanted);
    assert_eq!(set("AmbientCapabilities"), wanted);
    assert_eq!(s["ProtectSystem"], ["strict"]);
    assert_eq!(s["NoNewPrivileges"], ["yes"]);
    assert!(
        !s.contains_key("ProtectProc"),
        "the agent reads every process's /proc"
    );
    assert!(
        !s.contains_key("User"),
        "root: tracefs and /proc need uid 0"
    );
    let writable = set("ReadWritePaths");
    for f in need.filesystems.iter().filter(|f| f.writable) {
        assert!(
            writable.contains(&f.path),
            "{} must be in ReadWritePaths",
            f.path
        );
    }

    // systemd's own check, on a copy that runs the binary under test. Unknown keys are only
    // warnings to it: any output fails.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("vigil.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/vigil", env!("CARGO_BIN_EXE_vigil")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian package systemd) must be installed");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
