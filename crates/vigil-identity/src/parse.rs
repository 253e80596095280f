//! cgroup v2 path -> container identity.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The container a cgroup belongs to, as far as its path tells.
///
/// This is what the path *claims*: cgroup names are chosen by whoever creates the cgroup, and a
/// user with a delegated subtree (rootless runtimes, `user@UID.service`) can create any name
/// under it. Confirming a claim needs the runtime's API (not done, see `docs/identity.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerRef {
    pub runtime: Runtime,
    /// The container id as the runtime names it: 64 lowercase hex digits for Docker, Podman,
    /// CRI-O and the CRI (Kubernetes); with `ctr`, any containerd identifier the user gave
    /// (`/<namespace>/<id>` paths).
    pub id: String,
    /// The Kubernetes pod UID with dashes (`8b1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f`), or the
    /// 32-hex-digit hash a static pod has instead; only for containers directly inside a
    /// `kubepods` pod cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The pod's QoS class, from the kubepods level the pod cgroup sits under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<Qos>,
    /// Name, image and labels from the runtime's API, once the agent has them (the path does
    /// not say).
    #[serde(skip)]
    pub meta: Option<std::sync::Arc<RuntimeMeta>>,
}

/// What a container runtime's API says of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuntimeMeta {
    pub name: String,
    /// Empty when the runtime recorded none (a container made from a bare root filesystem).
    pub image: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The container runtime a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Containerd,
    CriO,
    Docker,
    Podman,
    /// A container whose path does not say which runtime made it: Kubernetes with the cgroupfs
    /// driver names containerd's and dockershim's containers by their bare id.
    Unknown,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kubernetes QoS class, spelled as in a pod's `status.qosClass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "Guaranteed",
            Qos::Burstable => "Burstable",
            Qos::BestEffort => "BestEffort",
        }
    }
}

impl fmt::Display for Qos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The containerd namespaces [`parse`] accepts in `/<namespace>/<id>` paths.
///
/// `default` is `ctr`'s and `nerdctl`'s, `k8s.io` the CRI plugin's (a sandbox created without a
/// cgroup parent lands in `/k8s.io/<id>`), `moby` Docker's.
pub const DEFAULT_CONTAINERD_NAMESPACES: &[&str] = &["default", "k8s.io", "moby"];

/// What [`parse_with`] cannot know from the path alone.
#[derive(Debug, Clone, Copy)]
pub struct Hints<'a> {
    /// containerd namespaces: a path `/<ns>/<id>` is a containerd container only when `<ns>` is
    /// one of these (its first component, exactly). containerd's default cgroup path is
    /// `/<namespace>/<id>` and `ctr` accepts any identifier as `<id>`, so without the list any
    /// two-level cgroup would look like a container.
    pub containerd_namespaces: &'a [&'a str],
}

impl Default for Hints<'static> {
    fn default() -> Self {
        Hints {
            containerd_namespaces: DEFAULT_CONTAINERD_NAMESPACES,
        }
    }
}

/// [`parse_with`] with the default hints ([`DEFAULT_CONTAINERD_NAMESPACES`]).
pub fn parse(path: &str) -> Option<ContainerRef> {
    parse_with(path, &Hints::default())
}

/// The container a cgroup belongs to, from its path relative to the cgroup v2 root (`/` first or
/// not; empty components are skipped). `None` for host cgroups, pod and QoS levels, container
/// monitors (conmon) and anything not recognised.
///
/// Components are read from the root down and the **first** (outermost) one that names a
/// container decides; everything below it belongs to that container (the `container`
/// sub-cgroup crun creates inside a scope, a systemd inside the container, Docker in Docker).
/// The outermost is the one the host's runtime created: a process inside a container with a
/// delegated cgroup can create sub-cgroups with any name, but never outside its own subtree, so
/// it cannot pass itself off as another container by naming a sub-cgroup after it.
///
/// A component names a container when it is (`<id>` 64 lowercase hex digits unless said
/// otherwise):
///
/// | Component | Runtime | Where it comes from |
/// |---|---|---|
/// | `cri-containerd-<id>.scope` | containerd | CRI plugin, systemd driver |
/// | `crio-<id>.scope`, `crio-<id>` | CRI-O | systemd driver; cgroupfs driver |
/// | `docker-<id>.scope` | Docker | systemd driver (also cri-dockerd) |
/// | `libpod-<id>.scope`, `libpod-<id>` | Podman | systemd; cgroupfs |
/// | `libpod-payload-<id>` | Podman | `--cgroups=split` (Quadlet's default) |
/// | `nerdctl-<id>.scope` | containerd | nerdctl, systemd driver |
/// | `<id>` directly under `/docker` | Docker | cgroupfs driver (`/docker/<id>`) |
/// | `<id>` directly under a cgroupfs pod (`.../kubepods/[burstable/]pod<uid>/<id>`) | unknown | Kubernetes, cgroupfs driver |
/// | `<name>` directly under `/<ns>` with `<ns>` in [`Hints::containerd_namespaces`] | containerd | containerd's default (`ctr run`); `<name>` any containerd identifier |
///
/// `libpod-conmon-<id>[.scope]` and `crio-conmon-<id>[.scope]` are the runtimes' monitors, not
/// the container: met before any container, they make the answer `None`.
///
/// The pod UID and QoS class are filled in when the container's parent is a pod cgroup:
/// `<prefix>-pod<uid_with_underscores>.slice` inside `<prefix>.slice` (systemd driver, with
/// `<prefix>` ending in `kubepods`, `kubepods-burstable` or `kubepods-besteffort`, so the
/// kubelet's `--cgroup-root` may add levels, as kind does), or `pod<uid>` inside `kubepods`,
/// `kubepods/burstable` or `kubepods/besteffort` (cgroupfs driver).
///
/// Linear in the length of the path; never panics, whatever the input.
pub fn parse_with(path: &str, hints: &Hints<'_>) -> Option<ContainerRef> {
    parse_impl(path, |ns| hints.containerd_namespaces.contains(&ns))
}

/// [`parse_with`] with the namespace test as a function, so that the table can keep owned names.
pub(crate) fn parse_impl(path: &str, is_namespace: impl Fn(&str) -> bool) -> Option<ContainerRef> {
    // The three nearest ancestors of the current component: parent, grandparent, great-grandparent.
    let mut anc: [&str; 3] = [""; 3];
    for (depth, comp) in path.split('/').filter(|c| !c.is_empty()).enumerate() {
        let found = match classify(comp) {
            Kind::Monitor => return None,
            Kind::Container(runtime, id) => Some((runtime, id)),
            Kind::Other if is_hex64(comp) => {
                if depth == 1 && anc[0] == "docker" {
                    Some((Runtime::Docker, comp))
                } else if pod_of(&anc).is_some() {
                    Some((Runtime::Unknown, comp))
                } else if depth == 1 && is_namespace(anc[0]) {
                    Some((Runtime::Containerd, comp))
                } else {
                    None
                }
            }
            Kind::Other => {
                if depth == 1 && is_namespace(anc[0]) && is_containerd_identifier(comp) {
                    Some((Runtime::Containerd, comp))
                } else {
                    None
                }
            }
        };
        if let Some((runtime, id)) = found {
            let pod = pod_of(&anc);
            return Some(ContainerRef {
                runtime,
                id: id.to_owned(),
                pod_uid: pod.as_ref().map(|p| p.0.clone()),
                qos: pod.map(|p| p.1),
                meta: None,
            });
        }
        anc = [comp, anc[0], anc[1]];
    }
    None
}

/// The pod UID of a Kubernetes pod-level cgroup (`.../kubepods-besteffort-pod<uid>.slice`,
/// `.../kubepods/burstable/pod<uid>`): the cgroup the kubelet makes before any of the pod's
/// containers, so a scope keyed by it is in place before their first exec.
pub fn pod_cgroup_uid(path: &str) -> Option<String> {
    let mut comps = path.rsplit('/').filter(|c| !c.is_empty());
    let anc = [
        comps.next()?,
        comps.next().unwrap_or(""),
        comps.next().unwrap_or(""),
    ];
    pod_of(&anc).map(|(uid, _)| uid)
}

enum Kind<'a> {
    /// The component names this container.
    Container(Runtime, &'a str),
    /// A runtime's monitor process (conmon), next to the container, not in it.
    Monitor,
    Other,
}

/// Container scopes of the systemd driver: `<prefix>-<id>.scope`.
const SCOPES: &[(&str, Runtime)] = &[
    ("cri-containerd-", Runtime::Containerd),
    ("crio-", Runtime::CriO),
    ("docker-", Runtime::Docker),
    ("libpod-", Runtime::Podman),
    ("nerdctl-", Runtime::Containerd),
];

/// Container directories of the cgroupfs driver (and CRI-O's sandbox cgroup): `<prefix><id>`.
const DIRS: &[(&str, Runtime)] = &[
    ("crio-", Runtime::CriO),
    ("libpod-", Runtime::Podman),
    ("libpod-payload-", Runtime::Podman),
];

const MONITORS: &[&str] = &["crio-conmon-", "libpod-conmon-"];

fn classify(comp: &str) -> Kind<'_> {
    for prefix in MONITORS {
        if let Some(rest) = comp.strip_prefix(prefix) {
            if is_hex64(rest.strip_suffix(".scope").unwrap_or(rest)) {
                return Kind::Monitor;
            }
        }
    }
    let (stem, table) = match comp.strip_suffix(".scope") {
        Some(stem) => (stem, SCOPES),
        None => (comp, DIRS),
    };
    for &(prefix, runtime) in table {
        if let Some(id) = stem.strip_prefix(prefix) {
            if is_hex64(id) {
                return Kind::Container(runtime, id);
            }
        }
    }
    Kind::Other
}

/// The pod UID and QoS class when `anc[0]` (the parent of the component being looked at) is a
/// Kubernetes pod cgroup, checked against its own parents.
fn pod_of(anc: &[&str; 3]) -> Option<(String, Qos)> {
    let [pod, parent, grandparent] = *anc;
    if let Some(stem) = pod.strip_suffix(".slice") {
        // systemd driver: `<prefix>-pod<uid>.slice` in `<prefix>.slice`, where systemd has
        // escaped the UID's dashes (its hierarchy separator) to underscores.
        let dash = stem.rfind("-pod")?;
        let (prefix, raw) = (&stem[..dash], &stem[dash + "-pod".len()..]);
        if raw.contains('-') || parent.strip_suffix(".slice") != Some(prefix) {
            return None;
        }
        let qos = systemd_qos(prefix)?;
        let uid = raw.replace('_', "-");
        return is_pod_uid(&uid).then_some((uid, qos));
    }
    // cgroupfs driver: `pod<uid>` in `kubepods`, `kubepods/burstable` or `kubepods/besteffort`.
    let uid = pod.strip_prefix("pod")?;
    if !is_pod_uid(uid) {
        return None;
    }
    let qos = match (parent, grandparent) {
        ("kubepods", _) => Qos::Guaranteed,
        ("burstable", "kubepods") => Qos::Burstable,
        ("besteffort", "kubepods") => Qos::BestEffort,
        _ => return None,
    };
    Some((uid.to_owned(), qos))
}

/// QoS from the name of the slice a pod slice sits in, without `.slice`: `kubepods` (or
/// `<root>-kubepods` with a `--cgroup-root`) for Guaranteed, `...kubepods-burstable`,
/// `...kubepods-besteffort`.
fn systemd_qos(prefix: &str) -> Option<Qos> {
    let ends = |name: &str| prefix == name || prefix.ends_with(&format!("-{name}"));
    if ends("kubepods") {
        Some(Qos::Guaranteed)
    } else if ends("kubepods-burstable") {
        Some(Qos::Burstable)
    } else if ends("kubepods-besteffort") {
        Some(Qos::BestEffort)
    } else {
        None
    }
}

/// 64 lowercase hex digits: the id Docker, Podman, CRI-O and the CRI give a container.
pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A Kubernetes pod UID: a UUID (8-4-4-4-12 lowercase hex), or the 32 hex digits of a static
/// pod's (the hash of its manifest).
fn is_pod_uid(s: &str) -> bool {
    if s.len() == 32 {
        return is_lower_hex(s);
    }
    let groups: [usize; 5] = [8, 4, 4, 4, 12];
    let mut parts = s.split('-');
    for len in groups {
        match parts.next() {
            Some(p) if p.len() == len && is_lower_hex(p) => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

/// containerd's identifier rule (`identifiers.Validate`): at most 76 characters, alphanumeric
/// runs separated by single `.`, `_` or `-`, starting and ending alphanumeric.
pub(crate) fn is_containerd_identifier(s: &str) -> bool {
    if s.is_empty() || s.len() > 76 {
        return false;
    }
    let mut prev_sep = true; // no separator first
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => prev_sep = false,
            b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex64() {
        assert!(is_hex64(&"a".repeat(64)));
        assert!(!is_hex64(&"a".repeat(63)));
        assert!(!is_hex64(&"A".repeat(64)));
        assert!(!is_hex64(&"g".repeat(64)));
    }

    #[test]
    fn pod_cgroups() {
        let uid = "5d1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f";
        assert_eq!(
            pod_cgroup_uid(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod5d1c2f4e_3a5d_4c6b_9e7f_0a1b2c3d4e5f.slice"
            )
            .as_deref(),
            Some(uid)
        );
        assert_eq!(
            pod_cgroup_uid(&format!("/kubepods/burstable/pod{uid}")).as_deref(),
            Some(uid)
        );
        assert_eq!(pod_cgroup_uid(&format!("/kubepods/pod{uid}/abc")), None);
        assert_eq!(pod_cgroup_uid("/"), None);
        assert_eq!(pod_cgroup_uid("/system.slice"), None);
    }

    #[test]
    fn pod_uids() {
        assert!(is_pod_uid("8b1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f"));
        assert!(is_pod_uid("b53dfa9e2dc9b890f7fadb2770857b03"));
        assert!(!is_pod_uid("8b1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5"));
        assert!(!is_pod_uid("8b1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f-"));
        assert!(!is_pod_uid("8b1c2f4e_3a5d_4c6b_9e7f_0a1b2c3d4e5f"));
        assert!(!is_pod_uid("8B1C2F4E-3A5D-4C6B-9E7F-0A1B2C3D4E5F"));
        assert!(!is_pod_uid(""));
    }

    #[test]
    fn containerd_identifiers() {
        for ok in ["mycontainer", "a", "web-1", "my.ctr_2", &"x".repeat(76)] {
            assert!(is_containerd_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a..b",
            "a b",
            "ä",
            "a/b",
            &"x".repeat(77),
        ] {
            assert!(!is_containerd_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn qos_prefixes() {
        assert_eq!(systemd_qos("kubepods"), Some(Qos::Guaranteed));
        assert_eq!(systemd_qos("kubelet-kubepods"), Some(Qos::Guaranteed));
        assert_eq!(systemd_qos("kubepods-burstable"), Some(Qos::Burstable));
        assert_eq!(
            systemd_qos("kubelet-kubepods-besteffort"),
            Some(Qos::BestEffort)
        );
        assert_eq!(systemd_qos("notkubepods"), None);
        assert_eq!(systemd_qos("kubepods-other"), None);
        assert_eq!(systemd_qos("machine"), None);
    }
}
