//! What events carry about a Kubernetes pod: filled from the Kubernetes API (crate
//! `vigil-kube`), read by the rules and the outputs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

/// What events need to know about a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodMeta {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Owning workload, see `vigil_kube::owner_of` for how it is chosen.
    pub owner: Option<Owner>,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// `status.podIPs` (falls back to `status.podIP`).
    pub ips: Vec<IpAddr>,
    /// Init, regular and ephemeral containers, in that order.
    pub containers: Vec<ContainerMeta>,
}

/// The workload that owns a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerMeta {
    pub name: String,
    /// Runtime container id with the `containerd://` / `docker://` / `cri-o://` prefix
    /// removed; `None` until the container has been created.
    pub id: Option<String>,
    /// Image from the container status if reported, else from the pod spec.
    pub image: String,
}

impl PodMeta {
    /// Ids of the containers that have one.
    pub fn container_ids(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().filter_map(|c| c.id.as_deref())
    }
}
