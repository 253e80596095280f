//! `vigil-floor`: the physical floor of an eBPF agent. It attaches an empty program (`r0 = N;
//! exit`) to each hook it is given and holds them until killed, so that a benchmark can measure
//! what merely having a program on those hooks costs, before any instruction of a real one.
//!
//! `bench/peers.sh` lists the hooks the agent itself attached (with bpftool, while it runs) and
//! passes them here, so the floor follows the agent's default configuration. Hooks:
//!
//! - `tracepoint:CATEGORY:NAME`: a perf-event tracepoint program, as the agent's
//!   `tracepoint/syscalls/...` ones (which also put every task on the syscall slow path);
//! - `raw_tracepoint:NAME`: a raw tracepoint program. The agent's `tp_btf` programs are
//!   dispatched by the same `bpf_trace_run` path, so this is their floor too (`tp_btf` only adds
//!   typed access to the arguments, checked at load time);
//! - `cgroup:ATTACH:PATH` with ATTACH one of `ingress`, `egress` (cgroup_skb, returning "allow"),
//!   `connect4`, `connect6`, `sendmsg4`, `sendmsg6`, `bind4`, `bind6` (cgroup_sock_addr,
//!   returning "allow"), on the cgroup directory PATH.
//!
//! Every attachment is a BPF link or perf event owned by this process's file descriptors, so the
//! kernel detaches everything when the process exits, however it is killed. It prints
//! `ready N` (N hooks) once all are attached, then sleeps until a signal ends it.

use std::ffi::CString;
use std::io::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;

/// `enum bpf_attach_type` values of the hooks supported here.
const BPF_CGROUP_INET_INGRESS: u32 = 0;
const BPF_CGROUP_INET_EGRESS: u32 = 1;
const BPF_CGROUP_INET4_BIND: u32 = 8;
const BPF_CGROUP_INET6_BIND: u32 = 9;
const BPF_CGROUP_INET4_CONNECT: u32 = 10;
const BPF_CGROUP_INET6_CONNECT: u32 = 11;
const BPF_CGROUP_UDP4_SENDMSG: u32 = 14;
const BPF_CGROUP_UDP6_SENDMSG: u32 = 15;
const BPF_PERF_EVENT: u32 = 41;

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `PERF_ATTR_SIZE_VER0`: the fields up to `config1` are all a tracepoint event needs.
const PERF_ATTR_SIZE_VER0: u32 = 64;

/// The `union bpf_attr` prefix of BPF_PROG_LOAD, up to `expected_attach_type` (the kernel
/// zero-fills the rest).
#[repr(C)]
#[derive(Debug, Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `union bpf_attr` prefix of BPF_RAW_TRACEPOINT_OPEN.
#[repr(C)]
#[derive(Debug)]
struct RawTpOpenAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

/// The `union bpf_attr` prefix of BPF_LINK_CREATE (no type-specific fields are used).
#[repr(C)]
#[derive(Debug)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// `struct perf_event_attr`, version 0 layout (64 bytes).
#[repr(C)]
#[derive(Debug, Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// What one hook needs: the program type and return value of its empty program, and how to
/// attach it.
#[derive(Debug)]
enum Hook {
    Tracepoint {
        category: String,
        name: String,
    },
    RawTracepoint {
        name: String,
    },
    Cgroup {
        attach_type: u32,
        sock_addr: bool,
        path: String,
    },
}

impl Hook {
    fn parse(spec: &str) -> std::result::Result<Hook, String> {
        let mut parts = spec.splitn(3, ':');
        let kind = parts.next().unwrap_or_default();
        let (a, b) = (parts.next(), parts.next());
        match (kind, a, b) {
            ("tracepoint", Some(c), Some(n)) if !c.is_empty() && !n.is_empty() => {
                Ok(Hook::Tracepoint { category: c.into(), name: n.into() })
            }
            ("raw_tracepoint", Some(n), None) if !n.is_empty() => {
                Ok(Hook::RawTracepoint { name: n.into() })
            }
            ("cgroup", Some(attach), Some(path)) if path.starts_with('/') => {
                let (attach_type, sock_addr) = match attach {
                    "ingress" => (BPF_CGROUP_INET_INGRESS, false),
                    "egress" => (BPF_CGROUP_INET_EGRESS, false),
                    "bind4" => (BPF_CGROUP_INET4_BIND, true),
                    "bind6" => (BPF_CGROUP_INET6_BIND, true),
                    "connect4" => (BPF_CGROUP_INET4_CONNECT, true),
                    "connect6" => (BPF_CGROUP_INET6_CONNECT, true),
                    "sendmsg4" => (BPF_CGROUP_UDP4_SENDMSG, true),
                    "sendmsg6" => (BPF_CGROUP_UDP6_SENDMSG, true),
                    _ => return Err(format!("`{spec}`: unsupported cgroup attach type `{attach}`")),
                };
                Ok(Hook::Cgroup { attach_type, sock_addr, path: path.into() })
            }
            _ => Err(format!(
                "`{spec}`: expected tracepoint:CATEGORY:NAME, raw_tracepoint:NAME or cgroup:ATTACH:/PATH"
            )),
        }
    }

    /// Loads the empty program and attaches it; the returned fds hold the attachment.
    fn attach(&self) -> Result<Vec<OwnedFd>> {
        match self {
            Hook::Tracepoint { category, name } => {
                let prog = load(BPF_PROG_TYPE_TRACEPOINT, 0, 0)?;
                let id_path = format!("/sys/kernel/tracing/events/{category}/{name}/id");
                let id: u64 = std::fs::read_to_string(&id_path)?
                    .trim()
                    .parse()
                    .map_err(|e| Error::other(format!("{id_path}: {e}")))?;
                let attr = PerfEventAttr {
                    kind: PERF_TYPE_TRACEPOINT,
                    size: PERF_ATTR_SIZE_VER0,
                    config: id,
                    ..PerfEventAttr::default()
                };
                // pid -1, cpu 0: a tracepoint's BPF program runs on every CPU whatever the
                // event's CPU (as libbpf attaches them).
                // SAFETY: attr is a valid perf_event_attr of the size it declares.
                let fd = unsafe {
                    libc::syscall(
                        libc::SYS_perf_event_open,
                        &attr as *const PerfEventAttr,
                        -1,
                        0,
                        -1,
                        PERF_FLAG_FD_CLOEXEC,
                    )
                };
                let event = owned(fd)?;
                let link = link_create(&prog, &event, BPF_PERF_EVENT)?;
                Ok(vec![prog, event, link])
            }
            Hook::RawTracepoint { name } => {
                let prog = load(BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0)?;
                let cname = CString::new(name.as_str()).map_err(Error::other)?;
                let attr = RawTpOpenAttr {
                    name: cname.as_ptr() as u64,
                    prog_fd: prog.as_raw_fd() as u32,
                    _pad: 0,
                };
                let link = owned(bpf(BPF_RAW_TRACEPOINT_OPEN, &attr))?;
                Ok(vec![prog, link])
            }
            Hook::Cgroup {
                attach_type,
                sock_addr,
                path,
            } => {
                let prog_type = if *sock_addr {
                    BPF_PROG_TYPE_CGROUP_SOCK_ADDR
                } else {
                    BPF_PROG_TYPE_CGROUP_SKB
                };
                // Both return 1: let the packet or the socket operation through.
                let prog = load(prog_type, *attach_type, 1)?;
                let cgroup: OwnedFd = std::fs::File::open(path)?.into();
                let link = link_create(&prog, &cgroup, *attach_type)?;
                Ok(vec![prog, cgroup, link])
            }
        }
    }
}

/// `syscall(SYS_bpf, cmd, attr, sizeof attr)`.
fn bpf<T>(cmd: libc::c_long, attr: &T) -> libc::c_long {
    // SAFETY: attr is a `union bpf_attr` prefix of the size passed; the kernel zero-fills the rest.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    }
}

/// A syscall's returned fd, or its errno.
fn owned(fd: libc::c_long) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads `mov64 r0, ret; exit` as a program of `prog_type`.
fn load(prog_type: u32, expected_attach_type: u32, ret: u32) -> Result<OwnedFd> {
    // mov64 r0, imm (opcode 0xb7, imm in the high 32 bits); exit (0x95).
    let insns: [u64; 2] = [0xb7 | (u64::from(ret) << 32), 0x95];
    let license = c"GPL";
    let mut prog_name = [0u8; 16];
    prog_name[..11].copy_from_slice(b"vigil_floor");
    let attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name,
        expected_attach_type,
        ..ProgLoadAttr::default()
    };
    owned(bpf(BPF_PROG_LOAD, &attr))
}

fn link_create(prog: &OwnedFd, target: &OwnedFd, attach_type: u32) -> Result<OwnedFd> {
    let attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: target.as_raw_fd() as u32,
        attach_type,
        flags: 0,
    };
    owned(bpf(BPF_LINK_CREATE, &attr))
}

fn main() -> ExitCode {
    let specs: Vec<String> = std::env::args().skip(1).collect();
    if specs.is_empty() || specs.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: vigil-floor HOOK...  (tracepoint:CATEGORY:NAME, raw_tracepoint:NAME, cgroup:ATTACH:/PATH)");
        return ExitCode::from(2);
    }
    let mut held = Vec::new();
    for spec in &specs {
        let attached = Hook::parse(spec).and_then(|h| {
            h.attach()
                .map_err(|e| format!("attaching an empty program to {spec}: {e}"))
        });
        match attached {
            Ok(fds) => held.push(fds),
            Err(e) => {
                eprintln!("vigil-floor: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("ready {}", held.len());
    // Held until a signal ends the process; the kernel then detaches everything.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel_abi() {
        // Offsets from include/uapi/linux/bpf.h and perf_event.h.
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(
            std::mem::size_of::<PerfEventAttr>(),
            PERF_ATTR_SIZE_VER0 as usize
        );
        assert_eq!(std::mem::offset_of!(RawTpOpenAttr, prog_fd), 8);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, attach_type), 8);
    }

    #[test]
    fn hook_specs() {
        assert!(matches!(
            Hook::parse("tracepoint:syscalls:sys_exit_openat"),
            Ok(Hook::Tracepoint { .. })
        ));
        assert!(matches!(
            Hook::parse("raw_tracepoint:sched_process_exec"),
            Ok(Hook::RawTracepoint { .. })
        ));
        assert!(matches!(
            Hook::parse("cgroup:egress:/sys/fs/cgroup/unified"),
            Ok(Hook::Cgroup {
                attach_type: BPF_CGROUP_INET_EGRESS,
                sock_addr: false,
                ..
            })
        ));
        assert!(Hook::parse("cgroup:egress:relative").is_err());
        assert!(Hook::parse("cgroup:sock_ops:/x").is_err());
        assert!(Hook::parse("kprobe:do_sys_open").is_err());
        assert!(Hook::parse("tracepoint:syscalls").is_err());
    }
}
