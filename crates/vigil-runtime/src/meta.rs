//! What a runtime says about a container, and how the CRI's labels are read.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_identity::Runtime;

/// Label the CRI sets on a Kubernetes container: the container's name in the pod spec.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Labels the CRI sets on every container and sandbox of a pod.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// containerd's CRI plugin: `sandbox` (the pod's pause container) or `container`.
pub const LABEL_CRI_KIND: &str = "io.cri-containerd.kind";

/// A container as its runtime describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    /// The runtime that answered (`containerd` also for a cgroup path of runtime `unknown`).
    pub runtime: Runtime,
    pub id: String,
    /// For a Kubernetes container its name in the pod spec (`io.kubernetes.container.name`);
    /// for Podman the container's name; otherwise the containerd id (which `ctr` users choose).
    pub name: String,
    /// The image reference the container was created from, as the runtime recorded it
    /// (`docker.io/library/nginx:1.27`); empty for a container made from a bare root
    /// filesystem.
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// The containerd namespace the container was found in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod, from the CRI's `io.kubernetes.pod.*` labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// The pod's sandbox (pause) container rather than one of its workload containers.
    pub sandbox: bool,
}

/// A pod as named by the CRI's labels on its containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRef {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

impl ContainerInfo {
    /// A containerd container: name, pod and sandbox flag from the CRI labels when present.
    pub(crate) fn from_containerd(
        id: String,
        namespace: String,
        image: String,
        labels: BTreeMap<String, String>,
    ) -> Self {
        let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
        let pod = match (
            label(LABEL_POD_UID),
            label(LABEL_POD_NAMESPACE),
            label(LABEL_POD_NAME),
        ) {
            (Some(uid), Some(namespace), Some(name)) => Some(PodRef {
                uid,
                namespace,
                name,
            }),
            _ => None,
        };
        let sandbox = labels.get(LABEL_CRI_KIND).is_some_and(|k| k == "sandbox");
        ContainerInfo {
            runtime: Runtime::Containerd,
            name: label(LABEL_CONTAINER_NAME).unwrap_or_else(|| id.clone()),
            id,
            image,
            labels,
            namespace: Some(namespace),
            pod,
            sandbox,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_labels() {
        let labels: BTreeMap<String, String> = [
            (LABEL_CONTAINER_NAME, "web"),
            (LABEL_POD_NAME, "web-7d4b9c-x2x"),
            (LABEL_POD_NAMESPACE, "shop"),
            (LABEL_POD_UID, "3f7c1e2a-5b6d-4c8e-9f0a-1b2c3d4e5f60"),
            (LABEL_CRI_KIND, "container"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let c = ContainerInfo::from_containerd("abc".into(), "k8s.io".into(), "img".into(), labels);
        assert_eq!(c.name, "web");
        let pod = c.pod.unwrap();
        assert_eq!(
            (pod.namespace.as_str(), pod.name.as_str()),
            ("shop", "web-7d4b9c-x2x")
        );
        assert!(!c.sandbox);
    }

    #[test]
    fn plain_and_sandbox() {
        let c = ContainerInfo::from_containerd(
            "my-ctr".into(),
            "default".into(),
            String::new(),
            BTreeMap::new(),
        );
        assert_eq!((c.name.as_str(), c.pod, c.sandbox), ("my-ctr", None, false));
        // A sandbox has the pod labels but no container name; half a pod is no pod.
        let labels: BTreeMap<String, String> = [
            (LABEL_CRI_KIND, "sandbox"),
            (LABEL_POD_NAME, "p"),
            (LABEL_POD_UID, "u"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let c = ContainerInfo::from_containerd("s".into(), "k8s.io".into(), "pause".into(), labels);
        assert!(c.sandbox && c.pod.is_none());
        assert_eq!(c.name, "s");
    }
}
