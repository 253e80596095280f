//! Workload scopes of enforcement rules (`k8s.ns.name`, `k8s.pod.label[key]`), resolved to
//! cgroup ids in the kernel's `vigil_enf_workload` map and kept in step with pod churn.
//!
//! The kernel looks a task's cgroup and its ancestors up, so the entry of a pod's own cgroup
//! (made by the kubelet before any of the pod's containers) covers the containers from their
//! first exec; container cgroups get entries too, for runtimes that do not nest them.

use std::collections::HashMap;

use vigil_bpf::enforce::Enforcement;
use vigil_identity::{pod_cgroup_uid, IdentityTable, PodMeta};
use vigil_kube::PodCache;
use vigil_rules::enforce::Plan;
use vigil_rules::RuleSet;

#[derive(Debug, Default)]
pub struct Scopes {
    /// The scoped plans of the rules in force, with their kernel rule ids.
    plans: Vec<(u32, Plan)>,
    /// What the kernel map holds now.
    written: HashMap<u64, u64>,
    /// Map writes that failed (the map full, say), counted for the log.
    pub failures: u64,
}

impl Scopes {
    /// The scopes of `set`'s enforcement, for a freshly installed generation (whose map is
    /// empty).
    pub fn new(set: Option<&RuleSet>) -> Self {
        let plans = set
            .map(|s| s.enforcement())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.scoped())
            .map(|(i, p)| (i as u32, p.clone()))
            .collect();
        Self {
            plans,
            ..Default::default()
        }
    }

    /// The scoped rules (bits) a pod is in.
    fn mask(&self, pod: &PodMeta) -> u64 {
        self.plans
            .iter()
            .filter(|(_, p)| p.in_scope(&pod.namespace, &pod.labels))
            .fold(0, |m, (id, _)| m | (1u64 << id))
    }

    /// Brings the kernel map in line with the pods known now.
    pub fn sync(&mut self, enf: &Enforcement, identity: &IdentityTable, pods: Option<&PodCache>) {
        let Some(pods) = pods.filter(|_| !self.plans.is_empty()) else {
            return;
        };
        let mut want: HashMap<u64, u64> = HashMap::new();
        for (cgroup, entry) in identity.iter() {
            let pod = match &entry.container {
                Some(c) => c
                    .pod_uid
                    .as_deref()
                    .and_then(|u| pods.get(u))
                    .or_else(|| pods.by_container(&c.id)),
                None => pod_cgroup_uid(&entry.path).and_then(|u| pods.get(&u)),
            };
            let mask = pod.map_or(0, |p| self.mask(&p));
            if mask != 0 {
                want.insert(cgroup, mask);
            }
        }
        let gone: Vec<u64> = self
            .written
            .keys()
            .filter(|c| !want.contains_key(c))
            .copied()
            .collect();
        for cgroup in gone {
            self.write(enf, cgroup, 0);
        }
        for (cgroup, mask) in want {
            if self.written.get(&cgroup) != Some(&mask) {
                self.write(enf, cgroup, mask);
            }
        }
    }

    fn write(&mut self, enf: &Enforcement, cgroup: u64, mask: u64) {
        match enf.set_workload(cgroup, mask) {
            Ok(()) if mask == 0 => {
                self.written.remove(&cgroup);
            }
            Ok(()) => {
                self.written.insert(cgroup, mask);
            }
            Err(e) => {
                self.failures += 1;
                if self.failures.is_power_of_two() {
                    tracing::warn!(cgroup, "writing a workload scope: {e}");
                }
            }
        }
    }
}
