//! Metadata of real containers from real runtimes: a private containerd daemon (`ctr`) and a
//! private Podman service, both with a busybox image built here, and the lookup latency
//! measured from the moment the container's cgroup appears.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_identity::{ContainerRef, Runtime};
use vigil_runtime::{ContainerInfo, MetaCache, Requested, RuntimeConfig};

const IMAGE: &str = "docker.io/vigil/busybox:test";

/// Root is required; outside CI a non-root run skips, inside CI it fails.
fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI=true and not root: these tests need root"
    );
    eprintln!("skipping: not root");
    false
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

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    s[..n].to_string()
}

/// Writes `data` as a blob of an OCI layout and returns its digest (`sha256:...`) and size.
fn blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, data).unwrap();
    let out = run(Command::new("sha256sum").arg(&tmp));
    let hex = out.split_whitespace().next().unwrap().to_string();
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), data.len())
}

/// An OCI image archive of one layer, busybox-static and a few applets, named [`IMAGE`]: what
/// `ctr images import` and `podman load` both read.
fn busybox_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer_tar = dir.join("layer.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer_tar)
        .arg("."));
    let (layer, layer_size) = blob(&layout, &std::fs::read(&layer_tar).unwrap());
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    });
    let (config, config_size) = blob(&layout, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer, "size": layer_size}],
    });
    let (manifest, manifest_size) = blob(&layout, manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest, "size": manifest_size,
                       "annotations": {"io.containerd.image.name": IMAGE,
                                       "org.opencontainers.image.ref.name": IMAGE}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    archive
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `.../unified` on a hybrid
/// host), which is where the agent sees container cgroups appear.
fn cgroup2_mount() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 mount")
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Requests `c` (with its cgroup path) and waits for the lookup; returns what it found and
/// how long it took.
fn lookup(cache: &MetaCache, c: &ContainerRef, path: &str) -> (Arc<ContainerInfo>, Duration) {
    let t0 = Instant::now();
    let r = cache.request_for_path(c, path);
    assert_eq!(r, Requested::Queued, "{c:?}");
    let info = wait_until(
        &format!("metadata of {}", c.id),
        Duration::from_secs(10),
        || {
            let s = cache.stats();
            assert_eq!((s.containerd.failures, s.podman.failures), (0, 0), "{s:#?}");
            cache.get(&c.id)
        },
    );
    (info, t0.elapsed())
}

fn cref(runtime: Runtime, id: &str) -> ContainerRef {
    ContainerRef {
        runtime,
        id: id.into(),
        pod_uid: None,
        qos: None,
        meta: None,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A private containerd: its own root, state, socket and config under a temp dir. Its
/// containers are force-removed, then it is stopped, on drop.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    containers: Vec<(String, String)>,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = d.join("config.toml");
        // No CRI plugin (it wants CNI and a sandbox image); the `opt` plugin's directory in the
        // temp dir.
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
        let mut c = Containerd {
            child,
            dir,
            containers: Vec::new(),
        };
        wait_until("containerd's socket", Duration::from_secs(30), || {
            if let Some(status) = c.child.try_wait().unwrap() {
                panic!("containerd exited with {status}:\n{}", c.log());
            }
            c.ctr("default")
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                .then_some(())
        });
        c
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    fn ctr(&self, ns: &str) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.socket())
            .args(["--namespace", ns]);
        cmd
    }

    /// `ctr run -d` of [`IMAGE`] running `sleep`, started (not waited for).
    fn start_container(&mut self, ns: &str, id: &str, labels: &[(&str, &str)]) -> Child {
        let d = self.dir.path().to_owned();
        let mut cmd = self.ctr(ns);
        cmd.args(["run", "-d", "--runtime", "io.containerd.runc.v2"])
            .arg("--fifo-dir")
            .arg(d.join("fifo"))
            .arg("--runc-root")
            .arg(d.join("runc"));
        for (k, v) in labels {
            cmd.arg("--label").arg(format!("{k}={v}"));
        }
        cmd.args([IMAGE, id, "sleep", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        self.containers.push((ns.to_owned(), id.to_owned()));
        cmd.spawn().expect("spawning ctr run")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for (ns, id) in &self.containers {
            for args in [&["task", "rm", "--force", id][..], &["container", "rm", id]] {
                let _ = self
                    .ctr(ns)
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
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

fn finish(mut child: Child, what: &str) {
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "{what}: {status}: {err}");
}

fn config_for(containerd: Option<&Path>, podman: Option<&Path>) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::default();
    cfg.containerd.enabled = containerd.is_some();
    if let Some(s) = containerd {
        cfg.containerd.socket = s.to_owned();
    }
    cfg.podman.enabled = podman.is_some();
    if let Some(s) = podman {
        cfg.podman.socket = s.to_owned();
    }
    cfg
}

#[test]
fn containerd_gives_name_image_labels_and_the_cri_pod() {
    if !require_root() || !require_tools(&["containerd", "ctr", "runc", "tar", "sha256sum"]) {
        return;
    }
    let mut containerd = Containerd::start();
    let image = busybox_image(containerd.dir.path());
    for ns in ["default", "k8s.io", "tenant-a"] {
        run(containerd.ctr(ns).args(["images", "import"]).arg(&image));
    }
    let (cache, handle) =
        vigil_runtime::spawn(config_for(Some(&containerd.socket()), None)).unwrap();
    let cgroot = cgroup2_mount();

    // A ctr container in `default`: requested the moment its cgroup (`/default/<id>`)
    // appears, as the agent does on `cgroup_mkdir`. The first lookup also connects.
    let mut latencies = Vec::new();
    let mut cold = None;
    for i in 0..6 {
        let id = format!("web-{}", random_hex(8));
        let child = containerd.start_container("default", &id, &[("app", "shop"), ("tier", "web")]);
        let path = format!("/default/{id}");
        wait_until("the container's cgroup", Duration::from_secs(60), || {
            cgroot.join(&path[1..]).exists().then_some(())
        });
        let (info, took) = lookup(&cache, &cref(Runtime::Containerd, &id), &path);
        match i {
            0 => cold = Some(took),
            _ => latencies.push(took),
        }
        assert_eq!(info.runtime, Runtime::Containerd);
        assert_eq!(info.id, id);
        assert_eq!(info.name, id, "a ctr container is named by its id");
        assert_eq!(info.image, IMAGE);
        assert_eq!(info.labels["app"], "shop");
        assert_eq!(info.labels["tier"], "web");
        assert_eq!(info.namespace.as_deref(), Some("default"));
        assert!(info.pod.is_none() && !info.sandbox);
        finish(child, "ctr run");
    }
    eprintln!(
        "containerd lookup after the cgroup appeared: first (connecting) {:?}, then median {:?} (n={})",
        cold.unwrap(),
        median(latencies.clone()),
        latencies.len()
    );

    // A container as the CRI makes it (a 64-hex id in `k8s.io`, its labels), asked as the
    // cgroupfs driver's bare id (`unknown` runtime) without a path.
    let id = random_hex(64);
    let uid = "3f7c1e2a-5b6d-4c8e-9f0a-1b2c3d4e5f60";
    let cri = [
        ("io.kubernetes.container.name", "checkout"),
        ("io.kubernetes.pod.name", "checkout-7d4b9c-x2x8q"),
        ("io.kubernetes.pod.namespace", "shop"),
        ("io.kubernetes.pod.uid", uid),
        ("io.cri-containerd.kind", "container"),
    ];
    finish(containerd.start_container("k8s.io", &id, &cri), "ctr run");
    let c = cref(Runtime::Unknown, &id);
    assert_eq!(cache.request(&c), Requested::Queued);
    let info = wait_until("the CRI container", Duration::from_secs(10), || {
        cache.get(&id)
    });
    assert_eq!(info.name, "checkout");
    assert_eq!(info.image, IMAGE);
    assert_eq!(info.namespace.as_deref(), Some("k8s.io"));
    let pod = info.pod.as_ref().expect("pod from the CRI labels");
    assert_eq!(
        (pod.uid.as_str(), pod.namespace.as_str(), pod.name.as_str()),
        (uid, "shop", "checkout-7d4b9c-x2x8q")
    );
    assert!(!info.sandbox);
    // ctr also copies the image's stop signal into a label.
    let mut got = info.labels.clone();
    got.remove("io.containerd.image.config.stop-signal");
    assert_eq!(got, labels(&cri));

    // A namespace in no list and no path: found through containerd's namespace list.
    let id = format!("batch-{}", random_hex(8));
    finish(
        containerd.start_container("tenant-a", &id, &[("team", "a")]),
        "ctr run",
    );
    assert_eq!(
        cache.request(&cref(Runtime::Containerd, &id)),
        Requested::Queued
    );
    let info = wait_until("the tenant-a container", Duration::from_secs(10), || {
        cache.get(&id)
    });
    assert_eq!(info.namespace.as_deref(), Some("tenant-a"));
    assert_eq!(info.labels["team"], "a");

    // Unknown to containerd: answered, negative-cached, not retried before the delay.
    let ghost = cref(Runtime::Containerd, "no-such-container");
    assert_eq!(cache.request(&ghost), Requested::Queued);
    wait_until("the not-found answer", Duration::from_secs(10), || {
        (cache.stats().containerd.not_found == 1).then_some(())
    });
    assert_eq!(cache.request(&ghost), Requested::Backoff);
    assert!(cache.get("no-such-container").is_none());

    let s = cache.stats();
    assert_eq!(
        (
            s.containerd.lookups,
            s.containerd.found,
            s.containerd.failures
        ),
        (9, 8, 0),
        "{s:#?}"
    );
    assert_eq!((s.known, s.negative, s.pending), (8, 1, 0));
    handle.stop();
}

/// Podman with its own storage, state and temp dirs, runc and the cgroupfs manager, and its
/// REST service on a socket in the temp dir. Containers are removed and the service stopped
/// on drop.
struct Podman {
    dir: tempfile::TempDir,
    service: Option<Child>,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::tempdir().unwrap(),
            service: None,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
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
            .arg("--runtime-flag")
            .arg(format!("root={}", d.join("runc").display()));
        cmd
    }

    /// `podman system service` with no idle timeout, serving this storage.
    fn start_service(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("service.log")).unwrap();
        let child = self
            .cmd()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", self.socket().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning podman system service");
        self.service = Some(child);
        let socket = self.socket();
        wait_until("podman's socket", Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(&socket)
                .ok()
                .map(drop)
        });
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .args(["rm", "--all", "--force", "--time", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut s) = self.service.take() {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(s.id() as i32, libc::SIGTERM) };
            let _ = s.wait();
        }
        // The overlay driver bind-mounts its directory onto itself; the temp dir cannot go
        // while it is mounted.
        let overlay = std::ffi::CString::new(
            self.dir
                .path()
                .join("root/overlay")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a NUL-terminated path; failure (not mounted) is harmless.
        unsafe { libc::umount2(overlay.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn podman_gives_name_image_and_labels() {
    if !require_root() || !require_tools(&["podman", "conmon", "runc", "tar", "sha256sum"]) {
        return;
    }
    let mut podman = Podman::new();
    let image = busybox_image(podman.dir.path());
    run(podman.cmd().args(["load", "-q", "-i"]).arg(&image));
    podman.start_service();
    let (cache, handle) = vigil_runtime::spawn(config_for(None, Some(&podman.socket()))).unwrap();
    // With the cgroupfs manager, containers are `/libpod_parent/libpod-<id>`.
    let cgroot = cgroup2_mount();

    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        let name = format!("vigil-web-{i}-{}", random_hex(6));
        // Created first, so that the id is known before the cgroup appears at start (other
        // Podman containers of this machine share `/libpod_parent`). The ulimits: Podman's
        // defaults for root are above the hard limits of a machine whose root lacks
        // CAP_SYS_RESOURCE (runc then fails setting rlimits).
        let id = run(podman
            .cmd()
            .args(["create", "--network", "none", "--name", &name])
            .args(["--label", "app=shop", "--label", &format!("replica={i}")])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .args([IMAGE, "sleep", "600"]))
        .trim()
        .to_string();
        let child = podman
            .cmd()
            .args(["start", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning podman start");
        let path = format!("/libpod_parent/libpod-{id}");
        wait_until("the container's cgroup", Duration::from_secs(60), || {
            cgroot.join(&path[1..]).exists().then_some(())
        });
        let (info, took) = lookup(&cache, &cref(Runtime::Podman, &id), &path);
        latencies.push(took);
        assert_eq!(info.runtime, Runtime::Podman);
        assert_eq!(info.id, id);
        assert_eq!(info.name, name);
        assert_eq!(info.image, IMAGE);
        assert_eq!(
            info.labels,
            labels(&[("app", "shop"), ("replica", &i.to_string())])
        );
        assert!(info.namespace.is_none() && info.pod.is_none());
        finish(child, "podman start");
        ids.push(id);
    }
    // The same containers again, now running: what the API itself costs, without waiting
    // for Podman to finish starting the container (it holds the container's lock meanwhile).
    let mut running = Vec::new();
    for id in &ids {
        cache.forget(id);
        let path = format!("/libpod_parent/libpod-{id}");
        running.push(lookup(&cache, &cref(Runtime::Podman, id), &path).1);
    }
    eprintln!(
        "podman lookup after the cgroup appeared: first {:?}, median {:?} (n={}); \
         of a running container: median {:?} (n={})",
        latencies[0],
        median(latencies.clone()),
        latencies.len(),
        median(running.clone()),
        running.len()
    );
    let s = cache.stats();
    assert_eq!((s.podman.lookups, s.podman.found), (8, 8), "{s:#?}");
    handle.stop();
}

#[test]
fn unreachable_runtimes_fail_fast_and_are_retried_later() {
    // No root needed: nothing listens on these sockets.
    let dir = tempfile::tempdir().unwrap();
    let (cd, pm) = (
        dir.path().join("containerd.sock"),
        dir.path().join("podman.sock"),
    );
    // A file that is not a socket.
    std::fs::write(&pm, "").unwrap();
    let (cache, handle) = vigil_runtime::spawn(config_for(Some(&cd), Some(&pm))).unwrap();
    let ids = [
        (Runtime::Containerd, "ctr-1".to_string()),
        (Runtime::Podman, random_hex(64)),
    ];
    for (rt, id) in &ids {
        assert_eq!(cache.request(&cref(*rt, id)), Requested::Queued);
    }
    wait_until("both failures", Duration::from_secs(10), || {
        let s = cache.stats();
        (s.containerd.failures == 1 && s.podman.failures == 1).then_some(s)
    });
    for (rt, id) in &ids {
        assert!(cache.get(id).is_none());
        assert_eq!(cache.request(&cref(*rt, id)), Requested::Backoff);
    }
    let s = cache.stats();
    assert!(
        s.podman
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("connecting")),
        "{s:#?}"
    );
    assert!(s.containerd.last_error.is_some(), "{s:#?}");
    // Not looked up at all: no API for Docker and CRI-O containers.
    assert_eq!(
        cache.request(&cref(Runtime::Docker, &random_hex(64))),
        Requested::Unsupported
    );
    // Bad configuration is refused before anything starts.
    let mut bad = RuntimeConfig::default();
    bad.containerd.namespaces = vec!["no/slash".into()];
    let e = vigil_runtime::spawn(bad).unwrap_err();
    assert!(e.to_string().contains("no/slash"), "{e}");
    handle.stop();
}
