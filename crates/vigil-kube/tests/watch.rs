//! End-to-end: the watcher against a loopback fake of the pods API serving
//! responses in the real API's JSON shape.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use vigil_kube::{spawn_watcher, Owner, PodCache, PodMeta, WatchConfig};

const NODE: &str = "node-1";

fn hex64(seed: u8) -> String {
    (0..32)
        .map(|i| format!("{:02x}", seed.wrapping_add(i)))
        .collect()
}

/// A Pod object as the API server returns it.
fn pod(
    name: &str,
    uid: &str,
    ip: &str,
    labels: Value,
    owner: Option<(&str, &str)>,
    cid: &str,
) -> Value {
    let owners = match owner {
        Some((kind, oname)) => json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": oname,
            "uid": format!("owner-{oname}"), "controller": true, "blockOwnerDeletion": true
        }]),
        None => json!([]),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": uid,
            "resourceVersion": "0",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": labels,
            "ownerReferences": owners
        },
        "spec": {
            "nodeName": NODE,
            "containers": [{"name": "app", "image": "nginx:1.27"}]
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "containerStatuses": [{
                "name": "app",
                "containerID": format!("containerd://{cid}"),
                "image": "docker.io/library/nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:0000",
                "ready": true,
                "restartCount": 0,
                "started": true,
                "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}
            }]
        }
    })
}

#[derive(Default)]
struct Inner {
    rv: u64,
    pods: BTreeMap<String, Value>,
    /// (resourceVersion, watch event line)
    events: Vec<(u64, String)>,
    /// Raw query strings of all requests, in order.
    requests: Vec<String>,
    /// Answer this many list requests with HTTP 500 first.
    fail_lists: u32,
}

/// A tiny in-memory pods API: list returns the current pods at the current
/// resourceVersion; watch replays the events after the requested
/// resourceVersion, then streams new ones, holding the response open for
/// `hold` (then ending it, as the API server does at timeoutSeconds).
struct Fake {
    inner: Mutex<Inner>,
    changed: tokio::sync::watch::Sender<u64>,
    hold: Duration,
}

impl Fake {
    fn new(hold: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            inner: Mutex::new(Inner {
                rv: 100,
                ..Default::default()
            }),
            changed: tokio::sync::watch::channel(100).0,
            hold,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Change state: `ADDED`/`MODIFIED` store the pod, `DELETED` removes it; each is a watch event.
    fn event(&self, kind: &str, mut pod: Value) {
        let mut g = self.lock();
        g.rv += 1;
        let rv = g.rv;
        pod["metadata"]["resourceVersion"] = json!(rv.to_string());
        let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
        if kind == "DELETED" {
            g.pods.remove(&uid);
        } else {
            g.pods.insert(uid, pod.clone());
        }
        let line = json!({"type": kind, "object": pod}).to_string();
        g.events.push((rv, line));
        drop(g);
        self.changed.send_replace(rv);
    }

    /// Add a pod without an event (state before the client's first list).
    fn seed(&self, pod: Value) {
        let mut g = self.lock();
        g.rv += 1;
        let mut pod = pod;
        pod["metadata"]["resourceVersion"] = json!(g.rv.to_string());
        let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
        g.pods.insert(uid, pod);
    }

    fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn watch_requests(&self) -> usize {
        self.requests().iter().filter(|q| is_watch(q)).count()
    }
}

fn param<'a>(q: &'a str, key: &str) -> Option<&'a str> {
    q.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn is_watch(q: &str) -> bool {
    matches!(param(q, "watch"), Some("true" | "1"))
}

async fn pods_handler(State(fake): State<Arc<Fake>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let mut g = fake.lock();
    g.requests.push(q.clone());
    if !is_watch(&q) {
        if g.fail_lists > 0 {
            g.fail_lists -= 1;
            let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500});
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                status.to_string(),
            )
                .into_response();
        }
        let list = json!({
            "apiVersion": "v1",
            "kind": "PodList",
            "metadata": {"resourceVersion": g.rv.to_string()},
            "items": g.pods.values().cloned().collect::<Vec<_>>(),
        });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            list.to_string(),
        )
            .into_response();
    }
    drop(g);
    let from: u64 = param(&q, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let deadline = tokio::time::Instant::now() + fake.hold;
    let rx = fake.changed.subscribe();
    // Each stream item is the batch of event lines after `cursor`; waits for changes until `deadline`.
    let stream =
        futures::stream::unfold((fake, rx, from), move |(fake, mut rx, cursor)| async move {
            loop {
                let batch: Vec<(u64, String)> = fake
                    .lock()
                    .events
                    .iter()
                    .filter(|(rv, _)| *rv > cursor)
                    .cloned()
                    .collect();
                if let Some((last, _)) = batch.last() {
                    let last = *last;
                    let body: String = batch.into_iter().map(|(_, l)| l + "\n").collect();
                    return Some((Ok::<_, std::io::Error>(body), (fake, rx, last)));
                }
                match tokio::time::timeout_at(deadline, rx.changed()).await {
                    Ok(Ok(())) => continue,
                    _ => return None,
                }
            }
        });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

struct Server {
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn start(fake: Arc<Fake>) -> Server {
    let app = Router::new()
        .route("/api/v1/pods", get(pods_handler))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://127.0.0.1:{port}
users:
- name: nobody
  user: {{}}
contexts:
- name: fake
  context:
    cluster: fake
    user: nobody
current-context: fake
"
        ),
    )
    .unwrap();
    Server {
        _dir: dir,
        kubeconfig,
    }
}

/// Poll `f` until it returns `Some`, at most `limit`.
async fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn labels(cache: &PodCache, uid: &str) -> Option<BTreeMap<String, String>> {
    cache.get(uid).map(|p| p.labels.clone())
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn list_watch_modify_delete_reuse() {
    let fake = Fake::new(Duration::from_secs(60));
    let cid_a = hex64(0x10);
    let cid_b = hex64(0x80);
    let web = pod(
        "web-7c9d8f6b5-x2k4p",
        "uid-web-a",
        "10.42.0.17",
        json!({"app": "web", "pod-template-hash": "7c9d8f6b5"}),
        Some(("ReplicaSet", "web-7c9d8f6b5")),
        &cid_a,
    );
    fake.seed(web.clone());
    fake.seed(pod(
        "agent-abcde",
        "uid-agent",
        "10.42.0.3",
        json!({"app": "agent"}),
        Some(("DaemonSet", "agent")),
        &cid_b,
    ));
    let srv = start(fake.clone()).await;
    let grace = Duration::from_millis(1500);
    let (cache, handle) = spawn_watcher(WatchConfig {
        kubeconfig: Some(srv.kubeconfig.clone()),
        node_name: Some(NODE.into()),
        grace,
    })
    .expect("spawn watcher");

    // After the list.
    let p = wait_for("initial list", WAIT, || cache.get("uid-web-a")).await;
    assert_eq!(p.namespace, "shop");
    assert_eq!(p.name, "web-7c9d8f6b5-x2k4p");
    assert_eq!(p.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        p.owner,
        Some(Owner {
            kind: "Deployment".into(),
            name: "web".into()
        })
    );
    assert_eq!(p.node.as_deref(), Some(NODE));
    assert_eq!(p.ips, vec!["10.42.0.17".parse::<IpAddr>().unwrap()]);
    assert_eq!(p.containers.len(), 1);
    assert_eq!(p.containers[0].name, "app");
    assert_eq!(p.containers[0].id.as_deref(), Some(cid_a.as_str()));
    assert_eq!(p.containers[0].image, "docker.io/library/nginx:1.27");
    let by_c = cache.by_container(&cid_a).expect("by container id");
    assert_eq!(by_c.uid, "uid-web-a");
    let agent = cache.by_container(&cid_b).expect("agent by container id");
    assert_eq!(
        agent.owner,
        Some(Owner {
            kind: "DaemonSet".into(),
            name: "agent".into()
        })
    );
    assert_eq!(cache.len(), 2);
    assert!(cache
        .by_container("containerd://".to_string().as_str())
        .is_none());
    assert!(cache.get("uid-nope").is_none());

    // What the client sent.
    wait_for("watch request", WAIT, || {
        (fake.watch_requests() > 0).then_some(())
    })
    .await;
    let reqs = fake.requests();
    eprintln!("requests seen by the fake API: {reqs:#?}");
    let list_q = reqs.iter().find(|q| !is_watch(q)).unwrap();
    assert_eq!(
        param(list_q, "fieldSelector"),
        Some("spec.nodeName%3Dnode-1")
    );
    let watch_q = reqs.iter().find(|q| is_watch(q)).unwrap();
    assert_eq!(
        param(watch_q, "fieldSelector"),
        Some("spec.nodeName%3Dnode-1")
    );
    assert!(param(watch_q, "resourceVersion").is_some());

    // MODIFIED changes labels.
    let mut web2 = web.clone();
    web2["metadata"]["labels"]["version"] = json!("v2");
    fake.event("MODIFIED", web2.clone());
    let l = wait_for("MODIFIED applied", WAIT, || {
        labels(&cache, "uid-web-a").filter(|l| l.contains_key("version"))
    })
    .await;
    assert_eq!(l.get("version").map(String::as_str), Some("v2"));
    assert_eq!(cache.len(), 2);

    // DELETED: readable for the grace, then gone.
    let deleted_at = Instant::now();
    fake.event("DELETED", web2);
    wait_for("DELETED seen", WAIT, || {
        (cache.stats().tombstoned == 1).then_some(())
    })
    .await;
    // A new pod reusing the deleted pod's IP is a different entry.
    let cid_c = hex64(0xc0);
    fake.event(
        "ADDED",
        pod(
            "web-7c9d8f6b5-q9w8e",
            "uid-web-c",
            "10.42.0.17",
            json!({"app": "web", "pod-template-hash": "7c9d8f6b5"}),
            Some(("ReplicaSet", "web-7c9d8f6b5")),
            &cid_c,
        ),
    );
    let c = wait_for("ADDED pod", WAIT, || cache.get("uid-web-c")).await;
    let within_grace = deleted_at.elapsed() < grace;
    let a = cache.get("uid-web-a");
    if within_grace {
        let a = a.expect("deleted pod still readable within grace");
        assert_eq!(a.ips, c.ips);
        assert_ne!(a.uid, c.uid);
        assert_eq!(a.name, "web-7c9d8f6b5-x2k4p");
        assert_eq!(
            cache.by_container(&cid_a).map(|p| p.uid.clone()).as_deref(),
            Some("uid-web-a")
        );
    } else {
        eprintln!(
            "warning: machine too slow to check the grace window ({:?})",
            deleted_at.elapsed()
        );
    }
    assert_eq!(c.name, "web-7c9d8f6b5-q9w8e");
    assert_eq!(
        c.owner,
        Some(Owner {
            kind: "Deployment".into(),
            name: "web".into()
        })
    );
    assert_eq!(
        cache.by_container(&cid_c).map(|p| p.uid.clone()).as_deref(),
        Some("uid-web-c")
    );

    wait_for("grace to end", grace + WAIT, || {
        cache.get("uid-web-a").is_none().then_some(())
    })
    .await;
    assert!(
        deleted_at.elapsed() >= grace,
        "deleted pod dropped before its grace: {:?}",
        deleted_at.elapsed()
    );
    assert!(cache.by_container(&cid_a).is_none());
    assert!(cache.get("uid-web-c").is_some());
    assert!(cache.get("uid-agent").is_some());
    assert_eq!(cache.len(), 2);
    // The background prune frees the entry too.
    wait_for("prune", WAIT, || (cache.stats().expired == 1).then_some(())).await;

    let s = cache.stats();
    eprintln!("stats: {s:?}");
    assert!(s.synced);
    assert_eq!(s.live, 2);
    assert_eq!(s.tombstoned, 0);
    assert_eq!(s.deleted, 1);
    assert_eq!(s.watch_errors, 0);
    assert_eq!(s.containers, 2);
    handle.stop();
}

#[tokio::test]
async fn recovers_from_errors_and_ended_watches() {
    // Watches end shortly after replaying, and the first two lists fail with 500.
    let fake = Fake::new(Duration::from_millis(200));
    fake.lock().fail_lists = 2;
    let cid = hex64(0x33);
    let p = pod(
        "db-0",
        "uid-db-0",
        "10.42.0.9",
        json!({"app": "db"}),
        Some(("StatefulSet", "db")),
        &cid,
    );
    fake.seed(p.clone());
    let srv = start(fake.clone()).await;
    let (cache, handle) = spawn_watcher(WatchConfig {
        kubeconfig: Some(srv.kubeconfig.clone()),
        node_name: None,
        grace: Duration::from_secs(60),
    })
    .expect("spawn watcher");

    let got = wait_for("list after errors", WAIT, || cache.get("uid-db-0")).await;
    assert_eq!(
        got.owner,
        Some(Owner {
            kind: "StatefulSet".into(),
            name: "db".into()
        })
    );
    let s = cache.stats();
    assert!(s.watch_errors >= 2, "{s:?}");
    assert!(s.last_error.is_some());
    assert!(s.synced);
    let list_q = fake.requests().into_iter().find(|q| !is_watch(q)).unwrap();
    assert_eq!(param(&list_q, "fieldSelector"), None);

    // Let at least one watch end, then change the pod: the re-watch picks it up.
    wait_for("watch re-issued", WAIT, || {
        (fake.watch_requests() >= 2).then_some(())
    })
    .await;
    let mut p2 = p.clone();
    p2["metadata"]["labels"]["role"] = json!("primary");
    fake.event("MODIFIED", p2);
    wait_for("MODIFIED after re-watch", WAIT, || {
        labels(&cache, "uid-db-0").filter(|l| l.get("role").map(String::as_str) == Some("primary"))
    })
    .await;
    assert_eq!(cache.len(), 1);
    handle.stop();
}

#[test]
fn bad_kubeconfig_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = spawn_watcher(WatchConfig {
        kubeconfig: Some(missing),
        ..WatchConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("kubeconfig"), "{err}");
    assert_eq!(WatchConfig::default().grace, Duration::from_secs(60));
}

#[test]
fn pod_meta_is_serializable() {
    fn is_ser<T: serde::Serialize>() {}
    is_ser::<PodMeta>();
}
