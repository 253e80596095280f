//! Holds one latency-sensor configuration attached until SIGTERM or SIGINT, for
//! `bench/latency.sh`: `latency_hold CONFIG`, printing `ready` once attached.
//!
//! CONFIG is one of: `floor` (an empty program on raw_tp sys_enter and sys_exit: what any
//! program on the syscall hooks costs), `off` (the sensor loaded with every family off),
//! `syscalls` (all three classes), `syscalls-file` (the file class only: other syscalls still run
//! both programs and return early), `runq`, `block`, `all`.

use std::os::fd::{FromRawFd, OwnedFd};

use vigil_bpf::latency::{Latency, LatencyConfig, SyscallClass};

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let none = LatencyConfig {
        syscall_classes: vec![],
        runq: false,
        block: false,
        ..LatencyConfig::default()
    };
    let cfg = match arg.as_str() {
        "floor" => None,
        "off" => Some(none),
        "syscalls" => Some(LatencyConfig {
            syscall_classes: LatencyConfig::default().syscall_classes,
            ..none
        }),
        "syscalls-file" => Some(LatencyConfig {
            syscall_classes: vec![SyscallClass::File],
            ..none
        }),
        "runq" => Some(LatencyConfig { runq: true, ..none }),
        "block" => Some(LatencyConfig {
            block: true,
            ..none
        }),
        "all" => Some(LatencyConfig::default()),
        _ => {
            eprintln!("usage: latency_hold floor|off|syscalls|syscalls-file|runq|block|all");
            std::process::exit(2);
        }
    };
    // Blocked before anything else so that sigwait below receives them.
    let signals = block_signals();
    let _held: Box<dyn std::any::Any> = match cfg {
        None => Box::new(["sys_enter", "sys_exit"].map(|tp| {
            empty_raw_tp(tp).unwrap_or_else(|e| {
                eprintln!("latency_hold: empty program on {tp}: {e}");
                std::process::exit(1)
            })
        })),
        Some(cfg) => match Latency::load(&cfg).and_then(|mut l| l.attach().map(|()| l)) {
            Ok(l) => Box::new(l),
            Err(e) => {
                eprintln!("latency_hold: {e}");
                std::process::exit(1)
            }
        },
    };
    println!("ready");
    let mut sig = 0;
    // SAFETY: a valid signal set and out-pointer.
    unsafe { libc::sigwait(&signals, &mut sig) };
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; the pointers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Loads `r0 = 0; exit` as a raw tracepoint program and attaches it to `tp`; the returned fd
/// holds the attachment.
fn empty_raw_tp(tp: &str) -> std::io::Result<(OwnedFd, OwnedFd)> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
    const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
    // mov64 r0, 0 (0xb7); exit (0x95).
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    let name = std::ffi::CString::new(tp).expect("no NUL");
    let mut load = [0u64; 16];
    load[0] = u64::from(BPF_PROG_TYPE_RAW_TRACEPOINT) | (insns.len() as u64) << 32;
    load[1] = insns.as_ptr() as u64;
    load[2] = license.as_ptr() as u64;
    let prog = bpf(BPF_PROG_LOAD, &load)?;
    let mut open = [0u64; 2];
    open[0] = name.as_ptr() as u64;
    open[1] = prog as u64;
    let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &open)?;
    // SAFETY: both are fresh fds owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(prog), OwnedFd::from_raw_fd(link)) })
}

fn bpf(cmd: libc::c_long, attr: &[u64]) -> std::io::Result<i32> {
    // SAFETY: attr is a zero-padded `union bpf_attr` prefix of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as i32)
}
