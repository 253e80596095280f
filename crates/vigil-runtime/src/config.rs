//! `runtime:` configuration: serde as written, then [`RuntimeConfig::validate`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Which runtimes to ask, where, and how the cache behaves. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub containerd: ContainerdConfig,
    pub podman: PodmanConfig,
    /// Containers whose metadata is kept (default 4096); past it the oldest entry is dropped.
    pub capacity: usize,
    /// After a lookup that found nothing or failed, the same container is not looked up again
    /// for this many seconds (default 10).
    pub retry_secs: u64,
    /// Longest one lookup may take, connection included (default 2000 ms, 1 – 60000).
    pub timeout_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            containerd: ContainerdConfig::default(),
            podman: PodmanConfig::default(),
            capacity: 4096,
            retry_secs: 10,
            timeout_ms: 2000,
        }
    }
}

/// containerd's gRPC API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerdConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `/run/containerd/containerd.sock`.
    pub socket: PathBuf,
    /// Namespaces searched first, in order (default `k8s.io`, `moby`, `default`). The namespace
    /// of a `/<ns>/<id>` cgroup path is tried before them, and when none has the container,
    /// every other namespace containerd lists.
    pub namespaces: Vec<String>,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: "/run/containerd/containerd.sock".into(),
            namespaces: ["k8s.io", "moby", "default"].map(String::from).to_vec(),
        }
    }
}

/// Podman's REST API (`podman system service`, or systemd's `podman.socket`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodmanConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `/run/podman/podman.sock` (root's service).
    pub socket: PathBuf,
}

impl Default for PodmanConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: "/run/podman/podman.sock".into(),
        }
    }
}

/// A configuration value that cannot work, named by its key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("runtime.capacity must be at least 1")]
    Capacity,
    #[error("runtime.timeout_ms {0}: must be 1 – 60000")]
    Timeout(u64),
    #[error("runtime.{0}.socket {1:?}: must be an absolute path")]
    Socket(&'static str, PathBuf),
    #[error("runtime.containerd.namespaces: {0:?} is not a containerd namespace name")]
    Namespace(String),
}

impl RuntimeConfig {
    /// Checks what serde cannot: ranges, absolute socket paths, namespace names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 {
            return Err(ConfigError::Capacity);
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(ConfigError::Timeout(self.timeout_ms));
        }
        for (key, socket) in [
            ("containerd", &self.containerd.socket),
            ("podman", &self.podman.socket),
        ] {
            if !socket.is_absolute() {
                return Err(ConfigError::Socket(key, socket.clone()));
            }
        }
        if let Some(ns) = self
            .containerd
            .namespaces
            .iter()
            .find(|ns| !is_namespace_name(ns))
        {
            return Err(ConfigError::Namespace(ns.clone()));
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub(crate) fn retry(&self) -> Duration {
        Duration::from_secs(self.retry_secs)
    }
}

/// containerd's identifier rule (its `identifiers.Validate`), which namespace names follow:
/// at most 76 characters, alphanumeric runs joined by single `.`, `_` or `-`.
pub(crate) fn is_namespace_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 76
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.windows(2)
            .all(|w| w[0].is_ascii_alphanumeric() || w[1].is_ascii_alphanumeric())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c: RuntimeConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(c, RuntimeConfig::default());
        c.validate().unwrap();
        let c: RuntimeConfig = serde_yaml::from_str(
            "containerd:\n  namespaces: [tenant-a]\npodman:\n  enabled: false\n",
        )
        .unwrap();
        assert_eq!(c.containerd.namespaces, ["tenant-a"]);
        assert!(c.containerd.enabled && !c.podman.enabled);
        let e = serde_yaml::from_str::<RuntimeConfig>("containerd:\n  sock: /x\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `sock`"), "{e}");
    }

    #[test]
    fn validation() {
        let bad = |f: fn(&mut RuntimeConfig)| {
            let mut c = RuntimeConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.capacity = 0), ConfigError::Capacity);
        assert_eq!(bad(|c| c.timeout_ms = 0), ConfigError::Timeout(0));
        assert_eq!(
            bad(|c| c.podman.socket = "podman.sock".into()),
            ConfigError::Socket("podman", "podman.sock".into())
        );
        for ns in ["", "-a", "a-", "a--b", "a/b", "k8s io"] {
            let mut c = RuntimeConfig::default();
            c.containerd.namespaces = vec![ns.into()];
            assert_eq!(c.validate(), Err(ConfigError::Namespace(ns.into())));
        }
        assert!(is_namespace_name("k8s.io") && is_namespace_name("a_b-c.d"));
    }
}
