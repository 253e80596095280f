//! Event kinds as users name them (`--events exec,fork`), tied to the ABI numbers.

use vigil_abi::{
    VIGIL_EV_CAPTURE, VIGIL_EV_CGROUP, VIGIL_EV_CONN, VIGIL_EV_ENFORCE, VIGIL_EV_EXEC,
    VIGIL_EV_EXIT, VIGIL_EV_FILE, VIGIL_EV_FORK, VIGIL_EV_SYSCALL,
};

/// The kinds of event Vigil handles. Most are kernel records; `udp`, `dns`, `http` and `drop`
/// are made in user space (from maps and captured payloads), and `capture` is internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Exec,
    Fork,
    Exit,
    File,
    Syscall,
    Connection,
    /// Raw DNS/HTTP payload from the kernel: consumed by the pipeline, never written.
    Capture,
    Udp,
    Dns,
    Http,
    Drop,
    /// An enforcement report: written as an alert, never as an event line.
    Enforce,
    /// A cgroup created or removed: feeds identity, never written.
    Cgroup,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Exec,
        Kind::Fork,
        Kind::Exit,
        Kind::File,
        Kind::Syscall,
        Kind::Connection,
        Kind::Capture,
        Kind::Udp,
        Kind::Dns,
        Kind::Http,
        Kind::Drop,
        Kind::Enforce,
        Kind::Cgroup,
    ];

    /// The name used in JSON (`"kind"`), on the command line and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Fork => "fork",
            Kind::Exit => "exit",
            Kind::File => "file",
            Kind::Syscall => "syscall",
            Kind::Connection => "connection",
            Kind::Capture => "capture",
            Kind::Udp => "udp",
            Kind::Dns => "dns",
            Kind::Http => "http",
            Kind::Drop => "drop",
            Kind::Enforce => "enforce",
            Kind::Cgroup => "cgroup",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Kinds a user can ask to have written (`--events`).
    pub fn writable(self) -> bool {
        !matches!(self, Kind::Capture | Kind::Enforce | Kind::Cgroup)
    }

    /// The ABI number (`enum vigil_event_kind`) of kinds the kernel sends as records.
    pub fn abi(self) -> Option<u32> {
        match self {
            Kind::Exec => Some(VIGIL_EV_EXEC),
            Kind::Fork => Some(VIGIL_EV_FORK),
            Kind::Exit => Some(VIGIL_EV_EXIT),
            Kind::File => Some(VIGIL_EV_FILE),
            Kind::Syscall => Some(VIGIL_EV_SYSCALL),
            Kind::Connection => Some(VIGIL_EV_CONN),
            Kind::Capture => Some(VIGIL_EV_CAPTURE),
            Kind::Enforce => Some(VIGIL_EV_ENFORCE),
            Kind::Cgroup => Some(VIGIL_EV_CGROUP),
            Kind::Udp | Kind::Dns | Kind::Http | Kind::Drop => None,
        }
    }

    pub fn from_abi(n: u32) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.abi() == Some(n))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
