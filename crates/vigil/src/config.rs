//! The agent's YAML configuration: raw (as written, unknown keys rejected) then validated.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// As written in the file. Every field is optional; defaults are documented in docs/config.md.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    ancestry_depth: Option<usize>,
    process_table_capacity: Option<usize>,
    args_max: Option<u32>,
    ringbuf_bytes: Option<u32>,
    wakeup_bytes: Option<u32>,
    flush_interval_ms: Option<u64>,
    stats_interval_secs: Option<u64>,
    threads: Option<bool>,
    file: Option<RawFileConfig>,
    syscalls: Option<bool>,
    network: Option<RawNetworkConfig>,
    enforcement: Option<RawEnforcementConfig>,
    budget: Option<RawBudgetConfig>,
    kubernetes: Option<RawKubernetesConfig>,
    api: Option<RawApiConfig>,
    metrics: Option<RawMetricsConfig>,
    latency: Option<RawLatencyConfig>,
    anomaly: Option<vigil_anomaly::Config>,
    otlp: Option<vigil_otlp::OtlpConfig>,
    runtime: Option<vigil_runtime::RuntimeConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatencyConfig {
    syscalls: Option<Vec<vigil_bpf::latency::SyscallClass>>,
    runq: Option<bool>,
    block: Option<bool>,
    window_secs: Option<u64>,
}

/// Latency histograms aggregated in the kernel per cgroup (docs/latency.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyConfig {
    /// Syscall classes measured (`file`, `network`, `other`); empty: no per-syscall hooks at all.
    pub syscalls: Vec<vigil_bpf::latency::SyscallClass>,
    pub runq: bool,
    pub block: bool,
    /// Length of a latency window: what the API shows and the anomaly detector judges.
    pub window_secs: u64,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            // Two more programs on every syscall of the machine: opt in.
            syscalls: Vec::new(),
            runq: true,
            block: true,
            window_secs: 10,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiConfig {
    tokens: Option<Vec<vigil_export::auth::TokenConfig>>,
    stream_buffer: Option<usize>,
    recent_alerts: Option<usize>,
}

/// The HTTP API (served with `--api ADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Bearer tokens and the namespaces each may see; empty: no authentication.
    pub tokens: Vec<vigil_export::auth::TokenConfig>,
    /// Messages a live stream subscriber may fall behind before it skips (with a counted gap).
    pub stream_buffer: usize,
    /// Alerts replayed to a new alert subscriber.
    pub recent_alerts: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            stream_buffer: 4096,
            recent_alerts: 256,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetricsConfig {
    max_series: Option<usize>,
    bpf_stats: Option<bool>,
}

/// Prometheus metrics (`/metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Series kept per metric family; the rest are refused and counted.
    pub max_series: usize,
    /// Have the kernel time every BPF program run (costs two clock reads per run) for the
    /// per-program run time and count metrics.
    pub bpf_stats: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            max_series: 500,
            bpf_stats: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetesConfig {
    enabled: Option<bool>,
    kubeconfig: Option<std::path::PathBuf>,
    node_name: Option<String>,
    grace_secs: Option<u64>,
}

/// Pod metadata from the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    /// Default: when a kubeconfig is given or the agent runs in a pod (in-cluster).
    pub enabled: bool,
    /// `None`: in-cluster configuration (service account).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Watch only this node's pods; default `NODE_NAME` from the environment, else none.
    pub node_name: Option<String>,
    /// How long a deleted pod's metadata stays attached to late events.
    pub grace_secs: u64,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            enabled: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            kubeconfig: None,
            node_name: std::env::var("NODE_NAME").ok(),
            grace_secs: 60,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudgetConfig {
    events_per_sec: Option<u32>,
    burst: Option<u32>,
}

/// The per-cgroup event budget (fairness between containers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetConfig {
    /// File, syscall and capture records per second per cgroup; 0: no budget.
    pub events_per_sec: u32,
    /// What a cgroup may send at once after a quiet period.
    pub burst: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            events_per_sec: 50_000,
            burst: 100_000,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnforcementConfig {
    pin_dir: Option<std::path::PathBuf>,
    kills_per_sec: Option<u32>,
    allow: Option<Vec<String>>,
}

/// In-kernel enforcement (rules with an `action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcementConfig {
    /// bpffs directory holding the pinned maps and links.
    pub pin_dir: std::path::PathBuf,
    /// Kills per second, all rules together; beyond that, kills are reported, not done.
    pub kills_per_sec: u32,
    /// Executables (exact paths, or prefixes ending in `/`) never killed.
    pub allow: Vec<String>,
}

impl Default for EnforcementConfig {
    fn default() -> Self {
        Self {
            pin_dir: vigil_bpf::enforce::DEFAULT_PIN_DIR.into(),
            kills_per_sec: 20,
            allow: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetworkConfig {
    enabled: Option<bool>,
    capture_bytes: Option<u32>,
    http: Option<bool>,
    flow_interval_secs: Option<u64>,
}

/// The network sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub enabled: bool,
    /// Payload bytes captured per DNS/HTTP message (0: no DNS/HTTP events).
    pub capture_bytes: u32,
    /// HTTP/1.x detection in TCP payloads. Off by default: it puts two records per request
    /// through the ring buffer, which a busy server pays for (docs/benchmarks.md).
    pub http: bool,
    /// How often UDP flows and packet drops are read from the kernel and reported.
    pub flow_interval_secs: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            capture_bytes: vigil_abi::VIGIL_CAPTURE_MAX,
            http: false,
            flow_interval_secs: 10,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileConfig {
    enabled: Option<bool>,
    watch: Option<Vec<String>>,
    ignore: Option<Vec<String>>,
    watch_writes: Option<Vec<String>>,
}

/// The file sensor and its in-kernel path filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    pub enabled: bool,
    /// Prefixes under which reads are reported too (directories end with `/`).
    pub watch: Vec<Vec<u8>>,
    /// Prefixes under which nothing is reported, modifications included.
    pub ignore: Vec<Vec<u8>>,
    /// Prefixes under which modifications are reported even inside an ignored tree.
    pub watch_writes: Vec<Vec<u8>>,
}

impl Default for FileConfig {
    fn default() -> Self {
        let v = |l: &[&str]| l.iter().map(|s| s.as_bytes().to_vec()).collect();
        Self {
            enabled: true,
            // Credentials, keys and configuration: reading them is worth knowing.
            watch: v(&[
                "/etc/",
                "/root/",
                "/home/",
                "/boot/",
                "/run/secrets/",
                "/var/run/secrets/",
            ]),
            // Read by every dynamically linked exec, or pseudo files written all the time.
            ignore: v(&[
                "/etc/ld.so.cache",
                "/etc/localtime",
                "/proc/",
                "/sys/",
                "/dev/",
            ]),
            // Kernel knobs and cgroup files whose writes are container escapes (core_pattern,
            // release_agent) or tampering, inside the ignored pseudo filesystems.
            watch_writes: v(&["/proc/sys/", "/sys/fs/cgroup/", "/sys/kernel/"]),
        }
    }
}

/// Validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Ancestors listed per event.
    pub ancestry_depth: usize,
    /// Processes kept in the table before evicting.
    pub process_table_capacity: usize,
    /// argv bytes captured per exec (at most 8192).
    pub args_max: u32,
    /// Ring buffer size (power of two, at least 64 KiB).
    pub ringbuf_bytes: u32,
    /// Pending bytes that wake the consumer early.
    pub wakeup_bytes: u32,
    /// Longest time an event waits in the ring buffer.
    pub flush_interval_ms: u64,
    /// Period of the stats log line (0: only at exit).
    pub stats_interval_secs: u64,
    /// Report thread creation as fork events.
    pub threads: bool,
    pub file: FileConfig,
    /// Load the security-syscall sensor.
    pub syscalls: bool,
    pub network: NetworkConfig,
    pub enforcement: EnforcementConfig,
    pub budget: BudgetConfig,
    pub kubernetes: KubernetesConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
    pub latency: LatencyConfig,
    pub anomaly: vigil_anomaly::Config,
    /// Export to an OpenTelemetry collector (docs/otlp.md); `None`: no export.
    pub otlp: Option<vigil_otlp::OtlpConfig>,
    /// Container metadata from the runtimes' APIs (docs/identity.md).
    pub runtime: vigil_runtime::RuntimeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ancestry_depth: 8,
            process_table_capacity: 65_536,
            args_max: vigil_abi::VIGIL_ARGS_MAX,
            ringbuf_bytes: 8 << 20,
            wakeup_bytes: 256 << 10,
            flush_interval_ms: 100,
            stats_interval_secs: 60,
            threads: false,
            file: FileConfig::default(),
            syscalls: true,
            network: NetworkConfig::default(),
            enforcement: EnforcementConfig::default(),
            budget: BudgetConfig::default(),
            kubernetes: KubernetesConfig::default(),
            api: ApiConfig::default(),
            metrics: MetricsConfig::default(),
            latency: LatencyConfig::default(),
            anomaly: vigil_anomaly::Config::default(),
            otlp: None,
            runtime: vigil_runtime::RuntimeConfig::default(),
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str(text)?
        };
        let d = Config::default();
        let c = Config {
            ancestry_depth: raw.ancestry_depth.unwrap_or(d.ancestry_depth),
            process_table_capacity: raw
                .process_table_capacity
                .unwrap_or(d.process_table_capacity),
            args_max: raw.args_max.unwrap_or(d.args_max),
            ringbuf_bytes: raw.ringbuf_bytes.unwrap_or(d.ringbuf_bytes),
            wakeup_bytes: raw.wakeup_bytes.unwrap_or(d.wakeup_bytes),
            flush_interval_ms: raw.flush_interval_ms.unwrap_or(d.flush_interval_ms),
            stats_interval_secs: raw.stats_interval_secs.unwrap_or(d.stats_interval_secs),
            threads: raw.threads.unwrap_or(d.threads),
            file: file_config(raw.file.unwrap_or_default(), d.file)?,
            syscalls: raw.syscalls.unwrap_or(d.syscalls),
            network: {
                let n = raw.network.unwrap_or_default();
                NetworkConfig {
                    enabled: n.enabled.unwrap_or(d.network.enabled),
                    capture_bytes: n.capture_bytes.unwrap_or(d.network.capture_bytes),
                    http: n.http.unwrap_or(d.network.http),
                    flow_interval_secs: n
                        .flow_interval_secs
                        .unwrap_or(d.network.flow_interval_secs),
                }
            },
            kubernetes: {
                let k = raw.kubernetes.unwrap_or_default();
                KubernetesConfig {
                    enabled: k
                        .enabled
                        .unwrap_or(k.kubeconfig.is_some() || d.kubernetes.enabled),
                    kubeconfig: k.kubeconfig,
                    node_name: k.node_name.or(d.kubernetes.node_name),
                    grace_secs: k.grace_secs.unwrap_or(d.kubernetes.grace_secs),
                }
            },
            budget: {
                let b = raw.budget.unwrap_or_default();
                BudgetConfig {
                    events_per_sec: b.events_per_sec.unwrap_or(d.budget.events_per_sec),
                    burst: b.burst.unwrap_or(d.budget.burst),
                }
            },
            api: {
                let a = raw.api.unwrap_or_default();
                ApiConfig {
                    tokens: a.tokens.unwrap_or_default(),
                    stream_buffer: a.stream_buffer.unwrap_or(d.api.stream_buffer),
                    recent_alerts: a.recent_alerts.unwrap_or(d.api.recent_alerts),
                }
            },
            latency: {
                let l = raw.latency.unwrap_or_default();
                LatencyConfig {
                    syscalls: l.syscalls.unwrap_or(d.latency.syscalls),
                    runq: l.runq.unwrap_or(d.latency.runq),
                    block: l.block.unwrap_or(d.latency.block),
                    window_secs: l.window_secs.unwrap_or(d.latency.window_secs),
                }
            },
            anomaly: raw.anomaly.unwrap_or_default(),
            otlp: raw.otlp,
            runtime: raw.runtime.unwrap_or_default(),
            metrics: {
                let m = raw.metrics.unwrap_or_default();
                MetricsConfig {
                    max_series: m.max_series.unwrap_or(d.metrics.max_series),
                    bpf_stats: m.bpf_stats.unwrap_or(d.metrics.bpf_stats),
                }
            },
            enforcement: {
                let e = raw.enforcement.unwrap_or_default();
                EnforcementConfig {
                    pin_dir: e.pin_dir.unwrap_or(d.enforcement.pin_dir),
                    kills_per_sec: e.kills_per_sec.unwrap_or(d.enforcement.kills_per_sec),
                    allow: e.allow.unwrap_or(d.enforcement.allow),
                }
            },
        };
        if !(16..=1 << 20).contains(&c.api.stream_buffer) {
            bail!(
                "api.stream_buffer: {} is outside 16..=1048576",
                c.api.stream_buffer
            );
        }
        if c.api.recent_alerts > 10_000 {
            bail!("api.recent_alerts: {} is above 10000", c.api.recent_alerts);
        }
        if !(1..=3600).contains(&c.latency.window_secs) {
            bail!(
                "latency.window_secs: {} is outside 1..=3600",
                c.latency.window_secs
            );
        }
        c.anomaly.validate()?;
        if let Some(o) = &c.otlp {
            o.check()?;
        }
        c.runtime.validate()?;
        if c.metrics.max_series == 0 {
            bail!("metrics.max_series: must be at least 1");
        }
        vigil_export::auth::Auth::from_config(&c.api.tokens).map_err(anyhow::Error::msg)?;
        if c.budget.events_per_sec > 0 && c.budget.burst == 0 {
            bail!("budget.burst: must be at least 1 when budget.events_per_sec is set");
        }
        if !c.enforcement.pin_dir.starts_with("/sys/fs/bpf/") {
            bail!(
                "enforcement.pin_dir: `{}` must be below /sys/fs/bpf/",
                c.enforcement.pin_dir.display()
            );
        }
        if let Some(p) = c.enforcement.allow.iter().find(|p| !p.starts_with('/')) {
            bail!("enforcement.allow: `{p}` must be an absolute path");
        }
        if c.network.capture_bytes > vigil_abi::VIGIL_CAPTURE_MAX {
            bail!(
                "network.capture_bytes: {} is above {}",
                c.network.capture_bytes,
                vigil_abi::VIGIL_CAPTURE_MAX
            );
        }
        if !(1..=3600).contains(&c.network.flow_interval_secs) {
            bail!(
                "network.flow_interval_secs: {} is outside 1..=3600",
                c.network.flow_interval_secs
            );
        }
        if c.args_max == 0 || c.args_max > vigil_abi::VIGIL_ARGS_MAX {
            bail!(
                "args_max: {} is outside 1..={}",
                c.args_max,
                vigil_abi::VIGIL_ARGS_MAX
            );
        }
        if !c.ringbuf_bytes.is_power_of_two() || c.ringbuf_bytes < 64 << 10 {
            bail!(
                "ringbuf_bytes: {} must be a power of two of at least 65536",
                c.ringbuf_bytes
            );
        }
        if c.wakeup_bytes == 0 || c.wakeup_bytes > c.ringbuf_bytes / 2 {
            bail!(
                "wakeup_bytes: {} must be between 1 and half of ringbuf_bytes",
                c.wakeup_bytes
            );
        }
        if !(1..=10_000).contains(&c.flush_interval_ms) {
            bail!(
                "flush_interval_ms: {} is outside 1..=10000",
                c.flush_interval_ms
            );
        }
        if c.process_table_capacity < 1024 {
            bail!(
                "process_table_capacity: {} is below 1024",
                c.process_table_capacity
            );
        }
        if c.ancestry_depth > 64 {
            bail!("ancestry_depth: {} is above 64", c.ancestry_depth);
        }
        Ok(c)
    }
}

fn file_config(raw: RawFileConfig, d: FileConfig) -> Result<FileConfig> {
    let prefixes =
        |key: &str, list: Option<Vec<String>>, default: Vec<Vec<u8>>| -> Result<Vec<Vec<u8>>> {
            let Some(list) = list else { return Ok(default) };
            for p in &list {
                if !p.starts_with('/') || p.len() > vigil_abi::VIGIL_PREFIX_MAX as usize {
                    bail!(
                        "file.{key}: `{p}` must be an absolute path of at most {} bytes",
                        vigil_abi::VIGIL_PREFIX_MAX
                    );
                }
            }
            Ok(list.into_iter().map(String::into_bytes).collect())
        };
    Ok(FileConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        watch: prefixes("watch", raw.watch, d.watch)?,
        ignore: prefixes("ignore", raw.ignore, d.ignore)?,
        watch_writes: prefixes("watch_writes", raw.watch_writes, d.watch_writes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn values_override_defaults() {
        let c = Config::parse("ancestry_depth: 3\nthreads: true\n").unwrap();
        assert_eq!((c.ancestry_depth, c.threads), (3, true));
    }

    #[test]
    fn unknown_keys_name_their_location() {
        let e = format!(
            "{:#}",
            Config::parse("ancestry_depth: 3\nbogus: 1\n").unwrap_err()
        );
        assert!(e.contains("bogus") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn file_filter_prefixes() {
        let c = Config::parse("file:\n  watch: [/srv/]\n").unwrap();
        assert_eq!(c.file.watch, vec![b"/srv/".to_vec()]);
        assert_eq!(c.file.ignore, FileConfig::default().ignore);
        let e = format!(
            "{:#}",
            Config::parse("file:\n  ignore: [tmp/]\n").unwrap_err()
        );
        assert!(e.contains("file.ignore") && e.contains("tmp/"), "{e}");
        assert!(Config::parse("file:\n  wach: []\n").is_err());
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert!(
            format!("{:#}", Config::parse("ringbuf_bytes: 1000").unwrap_err())
                .contains("ringbuf_bytes")
        );
        assert!(format!("{:#}", Config::parse("args_max: 0").unwrap_err()).contains("args_max"));
        let e = format!(
            "{:#}",
            Config::parse("network:\n  capture_bytes: 9999\n").unwrap_err()
        );
        assert!(e.contains("network.capture_bytes"), "{e}");
    }

    #[test]
    fn enforcement_section() {
        let c = Config::parse(
            "enforcement:\n  pin_dir: /sys/fs/bpf/t\n  kills_per_sec: 3\n  allow: [/usr/sbin/]\n",
        )
        .unwrap();
        assert_eq!(c.enforcement.kills_per_sec, 3);
        assert_eq!(c.enforcement.allow, vec!["/usr/sbin/".to_string()]);
        let e = format!(
            "{:#}",
            Config::parse("enforcement:\n  pin_dir: /tmp/x\n").unwrap_err()
        );
        assert!(e.contains("enforcement.pin_dir"), "{e}");
        assert!(Config::parse("enforcement:\n  allow: [sbin]\n").is_err());
    }

    #[test]
    fn network_section() {
        let c = Config::parse("network:\n  enabled: false\n  flow_interval_secs: 1\n").unwrap();
        assert!(!c.network.enabled);
        assert_eq!(c.network.flow_interval_secs, 1);
        assert_eq!(c.network.capture_bytes, 512);
        assert!(!c.network.http, "HTTP capture is opt-in");
        assert!(
            Config::parse("network:\n  http: true\n")
                .unwrap()
                .network
                .http
        );
        assert!(Config::parse("network:\n  capture: 1\n").is_err());
    }
}
