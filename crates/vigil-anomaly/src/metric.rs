//! What a series measures: the latency metric and the window quantile judged.

use std::fmt;

use serde::Serialize;

/// A latency family with a per-workload histogram. The names are the `vigil.metric` values in
/// alerts and the `metric` label in metrics, so they never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Syscall enter -> exit, file I/O class.
    SyscallFile,
    /// Syscall enter -> exit, network I/O class.
    SyscallNet,
    /// Syscall enter -> exit, every other syscall.
    SyscallOther,
    /// Run-queue latency: wakeup -> on CPU.
    Runq,
    /// Block I/O: issue -> complete.
    BlockIo,
    /// TCP smoothed round-trip time.
    TcpRtt,
    /// TCP connect: SYN sent -> established.
    TcpConnect,
    /// DNS query -> response.
    Dns,
    /// HTTP request -> response.
    Http,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::SyscallFile,
        Metric::SyscallNet,
        Metric::SyscallOther,
        Metric::Runq,
        Metric::BlockIo,
        Metric::TcpRtt,
        Metric::TcpConnect,
        Metric::Dns,
        Metric::Http,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::SyscallFile => "syscall_file",
            Metric::SyscallNet => "syscall_net",
            Metric::SyscallOther => "syscall_other",
            Metric::Runq => "runq",
            Metric::BlockIo => "block_io",
            Metric::TcpRtt => "tcp_rtt",
            Metric::TcpConnect => "tcp_connect",
            Metric::Dns => "dns",
            Metric::Http => "http",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The window quantiles the detector tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantile {
    P50,
    P99,
}

impl Quantile {
    /// Both, in the order the detector stores them.
    pub const ALL: [Quantile; 2] = [Quantile::P50, Quantile::P99];

    pub fn as_str(self) -> &'static str {
        match self {
            Quantile::P50 => "p50",
            Quantile::P99 => "p99",
        }
    }

    /// The fraction passed to [`vigil_net::hist::LogHist::quantile`].
    pub fn fraction(self) -> f64 {
        match self {
            Quantile::P50 => 0.5,
            Quantile::P99 => 0.99,
        }
    }
}

impl fmt::Display for Quantile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_distinct() {
        let names: Vec<String> = Metric::ALL.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            names,
            [
                "syscall_file",
                "syscall_net",
                "syscall_other",
                "runq",
                "block_io",
                "tcp_rtt",
                "tcp_connect",
                "dns",
                "http"
            ]
        );
        for m in Metric::ALL {
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::Value::from(m.as_str())
            );
        }
        assert_eq!(Quantile::P99.to_string(), "p99");
        assert_eq!(serde_json::to_value(Quantile::P50).unwrap(), "p50");
    }
}
