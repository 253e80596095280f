//! Pure decoding of ring-buffer records into typed events. No I/O; every length in a record is
//! checked against the bytes actually received before it is used.

mod decode;
pub mod enforce;
pub mod filter;
mod kind;
pub mod names;
pub mod net;
pub mod paths;

pub use decode::{decode, DecodeError};
pub use enforce::Enforce;
pub use kind::Kind;
pub use net::{Capture, Conn, Dns, Http, PacketDrop, UdpFlow};

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
    /// The exe the kernel held at exit: only while the agent seeds its table at start, where
    /// it may not know the image (docs/events.md, "Processes older than the agent").
    pub exe: Option<Bytes>,
    pub exe_truncated: bool,
}

/// A file operation at syscall exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub header: Header,
    /// The syscall's return value: an fd or 0, or -errno.
    pub result: i64,
    /// `enum vigil_syscall`.
    pub syscall: u32,
    /// `enum vigil_file_op`.
    pub op: u32,
    pub flags: u32,
    pub mode: u32,
    pub dirfd: i32,
    pub dirfd2: i32,
    /// For fchmod/fchown/ftruncate: the fd whose path is `path`.
    pub fd: Option<i32>,
    pub uid: u32,
    pub gid: u32,
    pub length: i64,
    /// As the process gave it (fd-based calls: the fd's resolved path).
    pub path: Bytes,
    /// The directory `path` is relative to (cwd or dirfd); empty when `path` is absolute.
    pub base: Bytes,
    pub path2: Bytes,
    pub base2: Bytes,
    pub truncated: bool,
    pub read_failed: bool,
    /// The kernel could not judge the path (it needs normalising): the filter applies in user
    /// space (see [`filter::PathFilter`]).
    pub unfiltered: bool,
}

/// A security-sensitive syscall at exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    pub header: Header,
    pub result: i64,
    /// `enum vigil_syscall`.
    pub syscall: u32,
    pub args: [u64; 6],
    pub strs: [Bytes; 3],
    pub truncated: bool,
    pub read_failed: bool,
}

/// Any decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Exec(Exec),
    Fork(Fork),
    Exit(Exit),
    File(File),
    Syscall(Syscall),
    Conn(Conn),
    Capture(Capture),
    Udp(UdpFlow),
    Dns(Dns),
    Http(Http),
    Drop(PacketDrop),
    Enforce(Enforce),
    Cgroup(CgroupChange),
}

/// A cgroup v2 directory was created or removed: the id -> path mapping behind identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupChange {
    pub header: Header,
    /// The cgroup's id (its directory's inode).
    pub id: u64,
    pub level: u32,
    /// Relative to the cgroup v2 root, starting with `/`.
    pub path: Bytes,
    pub removed: bool,
}

impl Event {
    pub fn header(&self) -> &Header {
        match self {
            Event::Exec(e) => &e.header,
            Event::Fork(e) => &e.header,
            Event::Exit(e) => &e.header,
            Event::File(e) => &e.header,
            Event::Syscall(e) => &e.header,
            Event::Conn(e) => &e.header,
            Event::Capture(e) => &e.header,
            Event::Udp(e) => &e.header,
            Event::Dns(e) => &e.header,
            Event::Http(e) => &e.header,
            Event::Drop(e) => &e.header,
            Event::Enforce(e) => &e.header,
            Event::Cgroup(e) => &e.header,
        }
    }
}
