//! Conversion of a Kubernetes `Pod` into the flat [`PodMeta`] that events carry.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Label that the Deployment controller puts on a ReplicaSet's pods; its value is
/// also the suffix of the ReplicaSet's name.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

pub use vigil_identity::{ContainerMeta, Owner, PodMeta};

/// Strip the `<runtime>://` prefix of a `containerStatuses[].containerID`.
pub fn strip_runtime_prefix(id: &str) -> &str {
    match id.find("://") {
        Some(i) => &id[i + 3..],
        None => id,
    }
}

/// The owning workload of a pod, from its `ownerReferences` (no API calls).
///
/// The reference with `controller: true` is preferred, else the first one.
/// A pod owned by a ReplicaSet is reported as owned by the Deployment that (most
/// likely) owns that ReplicaSet: the Deployment controller names its ReplicaSets
/// `<deployment>-<pod-template-hash>` and labels their pods with
/// `pod-template-hash=<hash>`, so when the pod carries that label and the
/// ReplicaSet's name ends with `-<hash>`, the Deployment is the name without the
/// suffix. This is a heuristic: a bare ReplicaSet (not created by a Deployment)
/// whose pods were hand-labelled the same way would be misreported. Without the
/// label, or when the name does not end with it, the ReplicaSet itself is reported.
pub fn owner_of(pod: &Pod) -> Option<Owner> {
    let refs = pod.metadata.owner_references.as_deref()?;
    let r = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or_else(|| refs.first())?;
    if r.kind == "ReplicaSet" {
        let hash = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH));
        if let Some(hash) = hash.filter(|h| !h.is_empty()) {
            if let Some(deploy) = r
                .name
                .strip_suffix(hash.as_str())
                .and_then(|s| s.strip_suffix('-'))
                .filter(|s| !s.is_empty())
            {
                return Some(Owner {
                    kind: "Deployment".to_string(),
                    name: deploy.to_string(),
                });
            }
        }
    }
    Some(Owner {
        kind: r.kind.clone(),
        name: r.name.clone(),
    })
}

/// Flatten a pod; `None` when it has no uid (never the case for API objects).
pub fn pod_meta(pod: &Pod) -> Option<PodMeta> {
    let md = &pod.metadata;
    let uid = md.uid.clone().filter(|u| !u.is_empty())?;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();

    let mut ips: Vec<IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if ips.is_empty() {
        if let Some(ip) = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|s| s.parse().ok())
        {
            ips.push(ip);
        }
    }

    let mut containers = Vec::new();
    let mut add =
        |name: &str, spec_image: Option<&str>, statuses: Option<&Vec<ContainerStatus>>| {
            let st = statuses.and_then(|v| v.iter().find(|s| s.name == name));
            let id = st
                .and_then(|s| s.container_id.as_deref())
                .map(strip_runtime_prefix)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let image = st
                .map(|s| s.image.as_str())
                .filter(|s| !s.is_empty())
                .or(spec_image)
                .unwrap_or_default()
                .to_string();
            containers.push(ContainerMeta {
                name: name.to_string(),
                id,
                image,
            });
        };
    if let Some(spec) = spec {
        let init_st = status.and_then(|s| s.init_container_statuses.as_ref());
        let st = status.and_then(|s| s.container_statuses.as_ref());
        let eph_st = status.and_then(|s| s.ephemeral_container_statuses.as_ref());
        for c in spec.init_containers.iter().flatten() {
            add(&c.name, c.image.as_deref(), init_st);
        }
        for c in &spec.containers {
            add(&c.name, c.image.as_deref(), st);
        }
        for c in spec.ephemeral_containers.iter().flatten() {
            add(&c.name, c.image.as_deref(), eph_st);
        }
    } else if let Some(status) = status {
        // No spec (should not happen): take what the statuses report.
        for list in [
            &status.init_container_statuses,
            &status.container_statuses,
            &status.ephemeral_container_statuses,
        ] {
            for s in list.iter().flatten() {
                add(&s.name, None, list.as_ref());
            }
        }
    }

    Some(PodMeta {
        uid,
        namespace: md.namespace.clone().unwrap_or_default(),
        name: md.name.clone().unwrap_or_default(),
        labels: md.labels.clone().unwrap_or_default(),
        owner: owner_of(pod),
        node: spec.and_then(|s| s.node_name.clone()),
        ips,
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn oref(kind: &str, name: &str, controller: Option<bool>) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: format!("u-{name}"),
            controller,
            block_owner_deletion: None,
        }
    }

    fn pod_with(owners: Vec<OwnerReference>, hash: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some("u".into()),
                labels: hash.map(|h| [(POD_TEMPLATE_HASH.to_string(), h.to_string())].into()),
                owner_references: Some(owners),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn owner(kind: &str, name: &str) -> Option<Owner> {
        Some(Owner {
            kind: kind.into(),
            name: name.into(),
        })
    }

    #[test]
    fn replicaset_to_deployment() {
        let p = pod_with(
            vec![oref("ReplicaSet", "web-7c9d8f6b5", Some(true))],
            Some("7c9d8f6b5"),
        );
        assert_eq!(owner_of(&p), owner("Deployment", "web"));
        let p = pod_with(
            vec![oref("ReplicaSet", "my-api-v2-5d4f", Some(true))],
            Some("5d4f"),
        );
        assert_eq!(owner_of(&p), owner("Deployment", "my-api-v2"));
    }

    #[test]
    fn replicaset_kept_when_heuristic_does_not_apply() {
        // No pod-template-hash label: a bare ReplicaSet.
        let p = pod_with(vec![oref("ReplicaSet", "web-7c9d8f6b5", Some(true))], None);
        assert_eq!(owner_of(&p), owner("ReplicaSet", "web-7c9d8f6b5"));
        // Label does not match the name's suffix.
        let p = pod_with(
            vec![oref("ReplicaSet", "web-7c9d8f6b5", Some(true))],
            Some("abc"),
        );
        assert_eq!(owner_of(&p), owner("ReplicaSet", "web-7c9d8f6b5"));
        // Suffix without the dash, or nothing left.
        let p = pod_with(
            vec![oref("ReplicaSet", "web7c9d8f6b5", Some(true))],
            Some("7c9d8f6b5"),
        );
        assert_eq!(owner_of(&p), owner("ReplicaSet", "web7c9d8f6b5"));
        let p = pod_with(vec![oref("ReplicaSet", "-abc", Some(true))], Some("abc"));
        assert_eq!(owner_of(&p), owner("ReplicaSet", "-abc"));
        let p = pod_with(vec![oref("ReplicaSet", "x", Some(true))], Some(""));
        assert_eq!(owner_of(&p), owner("ReplicaSet", "x"));
    }

    #[test]
    fn controller_reference_preferred() {
        let p = pod_with(
            vec![
                oref("ConfigMap", "cm", None),
                oref("StatefulSet", "db", Some(true)),
            ],
            None,
        );
        assert_eq!(owner_of(&p), owner("StatefulSet", "db"));
        let p = pod_with(vec![oref("Job", "backup-29000000", Some(false))], None);
        assert_eq!(owner_of(&p), owner("Job", "backup-29000000"));
        assert_eq!(owner_of(&pod_with(vec![], None)), None);
        assert_eq!(owner_of(&Pod::default()), None);
    }

    #[test]
    fn runtime_prefix() {
        assert_eq!(strip_runtime_prefix("containerd://abc"), "abc");
        assert_eq!(strip_runtime_prefix("docker://abc"), "abc");
        assert_eq!(strip_runtime_prefix("cri-o://abc"), "abc");
        assert_eq!(strip_runtime_prefix("abc"), "abc");
    }

    #[test]
    fn pending_pod_and_no_uid() {
        assert!(pod_meta(&Pod::default()).is_none());
        let mut p = pod_with(vec![], None);
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![k8s_openapi::api::core::v1::Container {
                name: "app".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        let m = pod_meta(&p).unwrap();
        assert_eq!(m.containers.len(), 1);
        assert_eq!(m.containers[0].id, None);
        assert_eq!(m.containers[0].image, "busybox");
        assert!(m.ips.is_empty());
        assert_eq!(m.container_ids().count(), 0);
    }
}
