//! Event kinds as users name them (`--events exec,fork`), tied to the ABI numbers.

use vigil_abi::{VIGIL_EV_EXEC, VIGIL_EV_EXIT, VIGIL_EV_FILE, VIGIL_EV_FORK, VIGIL_EV_SYSCALL};

/// The kinds of event Vigil reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Exec,
    Fork,
    Exit,
    File,
    Syscall,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Exec,
        Kind::Fork,
        Kind::Exit,
        Kind::File,
        Kind::Syscall,
    ];

    /// The name used in JSON (`"kind"`), on the command line and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Fork => "fork",
            Kind::Exit => "exit",
            Kind::File => "file",
            Kind::Syscall => "syscall",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The ABI number (`enum vigil_event_kind`).
    pub fn abi(self) -> u32 {
        match self {
            Kind::Exec => VIGIL_EV_EXEC,
            Kind::Fork => VIGIL_EV_FORK,
            Kind::Exit => VIGIL_EV_EXIT,
            Kind::File => VIGIL_EV_FILE,
            Kind::Syscall => VIGIL_EV_SYSCALL,
        }
    }

    pub fn from_abi(n: u32) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.abi() == n)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
