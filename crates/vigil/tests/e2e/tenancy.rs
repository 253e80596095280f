//! Multi-tenancy: API tokens map to Kubernetes namespaces, and each tenant's stream shows only
//! its own pods' events — never another tenant's and never the host's. Pods come from recorded
//! Kubernetes API responses (see kube.rs); their containers are real runc containers.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;
use crate::identity::{random_hex64, require_runc, Bundle};
use crate::kube::{serve, NODE};

fn pod(namespace: &str, name: &str, uid: &str, container_id: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid, "resourceVersion": "10",
            "labels": {"app": name}
        },
        "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "busybox:1"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "containerID": format!("containerd://{container_id}"),
                "image": "busybox:1", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {}}
            }]
        }
    })
}

const ADMIN: &str = "admin-token-0123456789abcdef";
const TOKEN_A: &str = "tenant-a-token-0123456789abcdef";
const TOKEN_B: &str = "tenant-b-token-0123456789abcdef";

/// `vigil events --follow --json` with a token, read as it comes.
struct Stream {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Stream {
    fn start(addr: &str, token: &str, extra: &[&str]) -> Stream {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["events", "--api", addr, "--follow", "--json"])
            .args(extra)
            .env("VIGIL_TOKEN", token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(serde_json::from_str(&l).unwrap());
            }
        });
        Stream { child, lines }
    }

    fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

fn http_status(addr: &str, path: &str, token: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

fn has_marker(e: &Value, marker: &str) -> bool {
    e["process"]["args"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x.as_str().is_some_and(|x| x.contains(marker)))
    })
}

#[test]
fn each_tenant_sees_only_its_namespaces() {
    if !require_root() || !require_runc() {
        return;
    }
    let (id_a, id_b) = (random_hex64(), random_hex64());
    let uid_a = "1a1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f";
    let uid_b = "2b1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f";
    let port = serve(json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "100"},
        "items": [pod("team-a", "web-a", uid_a, &id_a), pod("team-b", "web-b", uid_b, &id_b)]
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n"
        ),
    )
    .unwrap();
    let config = format!(
        "kubernetes:\n  kubeconfig: {}\n  node_name: {NODE}\nnetwork: {{enabled: false}}\napi:\n  tokens:\n  - {{name: ops, token: {ADMIN}}}\n  - {{name: team-a, token: {TOKEN_A}, namespaces: [team-a]}}\n  - {{name: team-b, token: {TOKEN_B}, namespaces: [team-b]}}\n",
        kubeconfig.display()
    );
    let agent = Agent::start_with_config(Some(&config), &["--api", "127.0.0.1:0"]);
    let addr = agent.api_addr();

    // Without a valid token nothing but the probes answers; a tenant cannot read node metrics.
    assert_eq!(http_status(&addr, "/api/v1/events", None), 401);
    assert_eq!(
        http_status(&addr, "/api/v1/events", Some("not-a-valid-token-at-all")),
        401
    );
    assert_eq!(http_status(&addr, "/metrics", Some(TOKEN_A)), 403);
    assert_eq!(http_status(&addr, "/metrics", Some(ADMIN)), 200);
    assert_eq!(http_status(&addr, "/healthz", None), 200);

    let a = Stream::start(&addr, TOKEN_A, &["--kind", "exec"]);
    // Asking for the other tenant's namespace gives nothing of it.
    let a_peeking = Stream::start(&addr, TOKEN_A, &["--kind", "exec", "--namespace", "team-b"]);
    let b = Stream::start(&addr, TOKEN_B, &["--kind", "exec"]);
    let admin = Stream::start(&addr, ADMIN, &["--kind", "exec"]);
    // Let the pod list arrive and the streams connect.
    std::thread::sleep(Duration::from_millis(2000));
    let run = |id: &str, uid: &str, marker: &str| {
        let slice = format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_"));
        Bundle::new(
            &format!("/kubepods.slice/kubepods-besteffort.slice/{slice}/cri-containerd-{id}.scope"),
            &["sh", "-c", &format!("echo {marker}; true")],
        )
        .run(&format!("vigil-{}", &id[..12]));
    };
    let (marker_a, marker_b) = (
        format!("mark-a-{}", &id_a[..8]),
        format!("mark-b-{}", &id_b[..8]),
    );
    run(&id_a, uid_a, &marker_a);
    run(&id_b, uid_b, &marker_b);
    // A host process: no tenant's.
    let host_marker = format!("mark-host-{}", &id_a[..8]);
    std::process::Command::new("sh")
        .args(["-c", &format!("echo {host_marker} > /dev/null")])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (a, a_peeking, b, admin) = (a.stop(), a_peeking.stop(), b.stop(), admin.stop());
    agent.stop();

    let namespaces = |v: &[Value]| {
        let mut ns: Vec<String> = v
            .iter()
            .map(|e| {
                e["pod"]["namespace"]
                    .as_str()
                    .unwrap_or("<host>")
                    .to_string()
            })
            .collect();
        ns.sort();
        ns.dedup();
        ns
    };
    assert!(
        a.iter().any(|e| has_marker(e, &marker_a)),
        "tenant a saw {} events",
        a.len()
    );
    assert_eq!(namespaces(&a), ["team-a"]);
    assert!(
        b.iter().any(|e| has_marker(e, &marker_b)),
        "tenant b saw {} events",
        b.len()
    );
    assert_eq!(namespaces(&b), ["team-b"]);
    assert!(a_peeking.is_empty(), "{a_peeking:?}");
    for m in [&marker_a, &marker_b, &host_marker] {
        assert!(admin.iter().any(|e| has_marker(e, m)), "admin misses {m}");
    }
}

/// The pod-level cgroup the kubelet makes before a pod's containers; removed on drop.
struct PodCgroup(std::path::PathBuf);

impl PodCgroup {
    fn new(uid: &str) -> PodCgroup {
        let root = if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup"
        };
        let p = std::path::Path::new(root).join(format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice",
            uid.replace('-', "_")
        ));
        std::fs::create_dir_all(&p).unwrap();
        PodCgroup(p)
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn enforcement_scoped_to_a_namespace_acts_only_on_its_pods() {
    if !require_root() || !require_runc() {
        return;
    }
    let (id_a, id_b) = (random_hex64(), random_hex64());
    let uid_a = "3c1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f";
    let uid_b = "4d1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f";
    let port = serve(json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "100"},
        "items": [pod("team-a", "web-a", uid_a, &id_a), pod("team-b", "web-b", uid_b, &id_b)]
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n"
        ),
    )
    .unwrap();
    // A program path nothing else on the machine runs (a busybox in a directory of its own:
    // called as `busybox`, it runs the applet named by its first argument).
    let victim = format!("/bin/victim-{}/busybox", &id_a[..8]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Victim in team-a\n  desc: test\n  condition: evt.type = execve and proc.exepath = {victim} and k8s.ns.name = team-a\n  output: victim killed in %k8s.ns.name\n  priority: CRITICAL\n  action: kill\n"
        ),
    )
    .unwrap();
    let pin_dir = format!("/sys/fs/bpf/vigil-test-scope-{}", std::process::id());
    let config = format!(
        "kubernetes:\n  kubeconfig: {}\n  node_name: {NODE}\nnetwork: {{enabled: false}}\nsyscalls: false\nenforcement:\n  pin_dir: {pin_dir}\n",
        kubeconfig.display()
    );
    let config_path = dir.path().join("vigil.yaml");
    std::fs::write(&config_path, &config).unwrap();
    let clear = || {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["enforce", "clear", "--config"])
            .arg(&config_path)
            .output();
    };
    struct Cleanup<F: Fn()>(F);
    impl<F: Fn()> Drop for Cleanup<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _cleanup = Cleanup(clear);
    // As the kubelet does, the pods' cgroups exist before their containers.
    let (_pod_a, _pod_b) = (PodCgroup::new(uid_a), PodCgroup::new(uid_b));
    let agent = Agent::start_with_config(
        Some(&config),
        &["--events", "exec", "--rules", rules.to_str().unwrap()],
    );
    // The pod list arrives and the scopes are written within the agent's next second.
    std::thread::sleep(Duration::from_millis(2500));
    let run = |id: &str, uid: &str| {
        let slice = format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_"));
        let b = Bundle::new(
            &format!("/kubepods.slice/kubepods-besteffort.slice/{slice}/cri-containerd-{id}.scope"),
            &["sh", "-c", &format!("{victim} true; echo rc=$?")],
        );
        let target = b.rootfs().join(victim.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy("/bin/busybox", target).unwrap();
        b.run(&format!("vigil-{}", &id[..12]))
    };
    let out_a = run(&id_a, uid_a);
    let out_b = run(&id_b, uid_b);
    let done = agent.stop();
    assert!(
        out_a.contains("rc=137"),
        "team-a's victim is killed: {out_a}"
    );
    assert!(out_b.contains("rc=0"), "team-b's victim runs: {out_b}");
    let alerts: Vec<&Value> = done
        .events
        .iter()
        .filter(|e| e["kind"] == "alert" && e["rule"] == "Victim in team-a")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["action"], "killed");
    assert_eq!(alerts[0]["output"], "victim killed in team-a");
}
