//! Pod metadata from the Kubernetes API: no API server can run here, so the test serves
//! recorded responses (a PodList, then an open watch) in the real API's JSON shape on loopback,
//! and points the agent at it with a kubeconfig. A runc container in the pod's cgroup must get
//! the pod's namespace, name, labels and owner on its events, and rules must see them.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;
use crate::identity::{random_hex64, require_runc, Bundle};

pub(crate) const NODE: &str = "node-1";

fn pod_list(uid: &str, container_id: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "100"},
        "items": [{
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-7c9d8f6b5-x2x4q",
                "namespace": "shop",
                "uid": uid,
                "resourceVersion": "99",
                "creationTimestamp": "2026-11-26T00:00:00Z",
                "labels": {"app": "web", "pod-template-hash": "7c9d8f6b5"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c9d8f6b5",
                    "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": {
                "nodeName": NODE,
                "containers": [{"name": "app", "image": "registry.example/web:1.4"}]
            },
            "status": {
                "phase": "Running",
                "podIP": "10.244.0.7",
                "podIPs": [{"ip": "10.244.0.7"}],
                "containerStatuses": [{
                    "name": "app",
                    "containerID": format!("containerd://{container_id}"),
                    "image": "registry.example/web:1.4",
                    "imageID": "registry.example/web@sha256:00",
                    "ready": true, "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": "2026-11-26T00:00:01Z"}}
                }]
            }
        }]
    })
}

/// Answers the list with `list`, and holds every watch open with no event.
pub(crate) fn serve(list: Value) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = list.to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut out = conn;
                if request.contains("watch=true") {
                    let _ = out.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    );
                    std::thread::sleep(Duration::from_secs(120));
                } else {
                    let _ = write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
        }
    });
    port
}

#[test]
fn events_of_a_pod_container_carry_its_namespace_name_labels_and_owner() {
    if !require_root() || !require_runc() {
        return;
    }
    let id = random_hex64();
    let uid = "5d1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f";
    let port = serve(pod_list(uid, &id));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n"
        ),
    )
    .unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: Exec in the shop namespace\n  desc: test\n  condition: evt.type = execve and k8s.ns.name = shop and k8s.pod.label[app] = web\n  output: exec in %k8s.ns.name/%k8s.pod.name (container=%container.name image=%container.image cmd=%proc.cmdline)\n  priority: NOTICE\n",
    )
    .unwrap();
    let config = format!(
        "kubernetes:\n  kubeconfig: {}\n  node_name: {NODE}\nnetwork: {{enabled: false}}\n",
        kubeconfig.display()
    );
    let agent = Agent::start_with_config(
        Some(&config),
        &["--events", "exec", "--rules", rules.to_str().unwrap()],
    );
    let marker = format!("vigil-marker-{}", &id[..8]);
    let slice = format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_"));
    let bundle = Bundle::new(
        &format!("/kubepods.slice/kubepods-besteffort.slice/{slice}/cri-containerd-{id}.scope"),
        &["sh", "-c", &format!("echo {marker}; true")],
    );
    // The watch is up once the list was answered; give it a moment to fill the cache.
    std::thread::sleep(Duration::from_millis(1500));
    bundle.run(&format!("vigil-{}", &id[..12]));
    let done = agent.stop();

    let exec = done
        .events
        .iter()
        .find(|e| {
            e["kind"] == "exec"
                && e["process"]["args"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.as_str().is_some_and(|x| x.contains(&marker)))
                })
        })
        .expect("the container's exec");
    let pod = &exec["pod"];
    assert_eq!(pod["namespace"], "shop", "{exec:#}");
    assert_eq!(pod["name"], "web-7c9d8f6b5-x2x4q");
    assert_eq!(pod["uid"], uid);
    assert_eq!(pod["labels"]["app"], "web");
    assert_eq!(pod["owner"]["kind"], "Deployment");
    assert_eq!(pod["owner"]["name"], "web");
    assert_eq!(exec["container"]["name"], "app");
    assert_eq!(exec["container"]["image"], "registry.example/web:1.4");
    assert_eq!(exec["container"]["pod_uid"], uid);

    let alert = done
        .events
        .iter()
        .find(|e| e["kind"] == "alert" && e["rule"] == "Exec in the shop namespace")
        .expect("the rule on k8s.ns.name and k8s.pod.label[app] fired");
    assert_eq!(
        alert["output_fields"]["k8s.pod.name"],
        "web-7c9d8f6b5-x2x4q"
    );
    assert_eq!(
        alert["output_fields"]["container.image"],
        "registry.example/web:1.4"
    );
}
