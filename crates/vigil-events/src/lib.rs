//! Pure decoding of ring-buffer records into typed events. No I/O; every length in a record is
//! checked against the bytes actually received before it is used.

mod decode;
mod kind;

pub use decode::{decode, DecodeError};
pub use kind::Kind;

/// Raw bytes from the kernel (paths, argv, comm): not necessarily UTF-8.
pub type Bytes = Vec<u8>;

/// Fields every record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// CLOCK_BOOTTIME nanoseconds.
    pub time_ns: u64,
    /// Thread id of the subject.
    pub pid: u32,
    /// Process id (thread-group id) of the subject.
    pub tgid: u32,
    pub cgroup_id: u64,
}

/// A program image was executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub header: Header,
    pub start_time_ns: u64,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// `None` when the kernel has no audit support, or the process has no login session.
    pub loginuid: Option<u32>,
    /// (major << 20) | minor of the controlling terminal, 0 if none.
    pub tty_dev: u32,
    pub comm: Bytes,
    pub exe: Bytes,
    pub exe_truncated: bool,
    pub cwd: Bytes,
    pub cwd_truncated: bool,
    pub args: Vec<Bytes>,
    pub args_truncated: bool,
    /// The real argument count, even when `args` is truncated.
    pub argc: u32,
}

/// A process or thread was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    pub header: Header,
    pub start_time_ns: u64,
    pub parent_pid: u32,
    pub parent_tgid: u32,
    pub thread: bool,
    pub comm: Bytes,
}

/// The last thread of a process exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub header: Header,
    pub start_time_ns: u64,
    pub ppid: u32,
    /// The exit status when the process exited normally.
    pub code: Option<u8>,
    /// The terminating signal when a signal killed it.
    pub signal: Option<u8>,
    pub core_dumped: bool,
    pub comm: Bytes,
}

/// Any decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Exec(Exec),
    Fork(Fork),
    Exit(Exit),
}

impl Event {
    pub fn header(&self) -> &Header {
        match self {
            Event::Exec(e) => &e.header,
            Event::Fork(e) => &e.header,
            Event::Exit(e) => &e.header,
        }
    }
}
