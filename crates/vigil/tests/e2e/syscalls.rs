//! Security-sensitive syscall events: the exact `syscall` object (name, result, error, args)
//! for privilege changes, namespaces, mounts, chroot, ptrace, signals, prctl, memfd_create,
//! raw and packet sockets, a socket dup'ed onto stdio, bpf, execveat and io_uring; and what is
//! deliberately not reported. Calls come from the test process (matched by pid and, for threads,
//! tid) or from children it spawns (matched by the child's pid).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::file::{cs, real, ret, sys};
use crate::harness::*;

/// The `syscall` objects of the events of process `pid`.
fn calls(events: &[Value], pid: u32) -> Vec<&Value> {
    by_pid(events, "syscall", pid)
        .into_iter()
        .map(|e| &e["syscall"])
        .collect()
}

/// The `syscall` objects named `name` among `calls`.
fn named<'a>(calls: &[&'a Value], name: &str) -> Vec<&'a Value> {
    calls
        .iter()
        .copied()
        .filter(|c| c["name"] == name)
        .collect()
}

/// The only call named `name` among `calls`.
fn only<'a>(calls: &[&'a Value], name: &str) -> &'a Value {
    let hits = named(calls, name);
    assert_eq!(hits.len(), 1, "expected one {name}, found {calls:#?}");
    hits[0]
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// A `sleep 30` killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn new(cmd: &mut Command) -> Sleeper {
        Sleeper(cmd.arg("30").spawn().unwrap())
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tmpfs mounted by the test, detached on drop if the test did not unmount it.
struct Mounted(CString);

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: a valid C string; failure (already unmounted) is fine.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn privilege_namespace_mount_and_chroot_calls_are_reported_with_their_arguments() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = real(tmp.path());
    let mnt = format!("{d}/mnt");
    std::fs::create_dir(&mnt).unwrap();
    let (c_mnt, c_missing) = (cs(&mnt), cs(format!("{d}/missing")));
    let agent = Agent::start(&[]);

    let status = |cmd: &mut Command| {
        let mut child = cmd.spawn().unwrap();
        (child.id(), child.wait().unwrap())
    };
    let (setpriv, st) = status(Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/bin/true",
    ]));
    assert!(st.success());
    let (std_ids, st) = status(Command::new("/bin/true").uid(65534).gid(65534));
    assert!(st.success());
    let mut keep_ids = Command::new("/bin/true");
    // SAFETY: the hook only makes two async-signal-safe syscalls.
    unsafe {
        keep_ids.pre_exec(|| {
            // -1: unchanged. Only the effective ids change.
            if libc::setresgid(u32::MAX, 65534, u32::MAX) != 0
                || libc::setresuid(u32::MAX, 65534, u32::MAX) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (resids, st) = status(&mut keep_ids);
    assert!(st.success());
    let (unshare, st) = status(Command::new("unshare").args(["--uts", "--net", "/bin/true"]));
    assert!(st.success());
    let (chroot_ok, st) = status(Command::new("chroot").args(["/", "/bin/true"]));
    assert!(st.success());
    let (chroot_bad, st) = status(
        Command::new("chroot")
            .args(["/nonexistent-vigil-chroot", "/bin/true"])
            .stderr(Stdio::null()),
    );
    assert!(!st.success());

    let guard = Mounted(c_mnt.clone());
    // SAFETY: mount and umount2 on valid C strings; the guard detaches on early exit.
    let (r_mount, r_umount, r_umount_again, r_mount_missing) = unsafe {
        (
            ret(libc::mount(
                c"none".as_ptr(),
                c_mnt.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=1m".as_ptr().cast(),
            )
            .into()),
            ret(libc::umount2(c_mnt.as_ptr(), 0).into()),
            ret(libc::umount2(c_mnt.as_ptr(), libc::MNT_DETACH).into()),
            ret(libc::mount(
                c"none".as_ptr(),
                c_missing.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
            .into()),
        )
    };
    assert_eq!(
        (r_mount, r_umount, r_umount_again, r_mount_missing),
        (0, 0, -22, -2)
    );

    let done = agent.stop();
    drop(guard);
    let nobody3 = json!({"ruid": 65534, "euid": 65534, "suid": 65534});
    let sp = calls(&done.events, setpriv);
    assert_eq!(
        *only(&sp, "setresuid"),
        json!({"name": "setresuid", "result": 0, "error": null, "args": nobody3})
    );
    assert_eq!(
        *only(&sp, "setresgid"),
        json!({"name": "setresgid", "result": 0, "error": null,
               "args": {"rgid": 65534, "egid": 65534, "sgid": 65534}})
    );
    let capsets = named(&sp, "capset");
    assert!(!capsets.is_empty(), "setpriv sets capabilities: {sp:#?}");
    for c in capsets {
        assert_eq!(c["result"], 0);
        for k in ["effective", "permitted", "inheritable"] {
            assert!(c["args"][k].is_u64(), "{c}");
        }
    }
    let si = calls(&done.events, std_ids);
    assert_eq!(
        *only(&si, "setgid"),
        json!({"name": "setgid", "result": 0, "error": null, "args": {"gid": 65534}})
    );
    assert_eq!(
        *only(&si, "setuid"),
        json!({"name": "setuid", "result": 0, "error": null, "args": {"uid": 65534}})
    );
    let ri = calls(&done.events, resids);
    assert_eq!(
        *only(&ri, "setresuid"),
        json!({"name": "setresuid", "result": 0, "error": null,
               "args": {"ruid": 4294967295u32, "euid": 65534, "suid": 4294967295u32}}),
        "-1 (unchanged) is 4294967295"
    );
    assert_eq!(
        only(&ri, "setresgid")["args"],
        json!({"rgid": 4294967295u32, "egid": 65534, "sgid": 4294967295u32})
    );
    assert_eq!(
        *only(&calls(&done.events, unshare), "unshare"),
        json!({"name": "unshare", "result": 0, "error": null,
               "args": {"flags": libc::CLONE_NEWUTS | libc::CLONE_NEWNET,
                        "namespaces": ["CLONE_NEWUTS", "CLONE_NEWNET"]}})
    );
    assert_eq!(
        *only(&calls(&done.events, chroot_ok), "chroot"),
        json!({"name": "chroot", "result": 0, "error": null, "args": {"path": "/"}})
    );
    assert_eq!(
        *only(&calls(&done.events, chroot_bad), "chroot"),
        json!({"name": "chroot", "result": -2, "error": "ENOENT",
               "args": {"path": "/nonexistent-vigil-chroot"}})
    );
    let me = calls(&done.events, std::process::id());
    let mounts: Vec<&Value> = named(&me, "mount")
        .into_iter()
        .filter(|m| m["args"]["target"].as_str().unwrap().starts_with(&d))
        .collect();
    assert_eq!(
        mounts,
        [
            &json!({"name": "mount", "result": 0, "error": null,
                    "args": {"source": "none", "target": mnt, "fstype": "tmpfs",
                             "flags": libc::MS_NOSUID | libc::MS_NODEV}}),
            &json!({"name": "mount", "result": -2, "error": "ENOENT",
                    "args": {"source": "none", "target": format!("{d}/missing"),
                             "fstype": "tmpfs", "flags": 0}}),
        ]
    );
    let umounts: Vec<&Value> = named(&me, "umount2")
        .into_iter()
        .filter(|m| m["args"]["target"] == mnt.as_str())
        .collect();
    assert_eq!(
        umounts,
        [
            &json!({"name": "umount2", "result": 0, "error": null,
                    "args": {"target": mnt, "flags": 0}}),
            &json!({"name": "umount2", "result": -22, "error": "EINVAL",
                    "args": {"target": mnt, "flags": libc::MNT_DETACH}}),
        ]
    );
}

#[test]
fn ptrace_signals_prctl_and_memfd_are_reported_and_probes_are_not() {
    if !require_root() {
        return;
    }
    let traced = Sleeper::new(&mut Command::new("sleep"));
    let signalled = Sleeper::new(&mut Command::new("sleep"));
    let mut grouped = Command::new("sleep");
    let grouped = Sleeper::new(grouped.process_group(0));
    let agent = Agent::start(&[]);
    let (t, s, g) = (traced.pid(), signalled.pid(), grouped.pid());

    // Calls that must not be reported, from a thread of their own so that its tid tells.
    let quiet_tid = std::thread::spawn(move || {
        let mut name = [0u8; 16];
        // SAFETY: plain syscalls; PR_GET_NAME writes at most 16 bytes.
        unsafe {
            assert_eq!(libc::kill(s, 0), 0);
            assert_eq!(libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()), 0);
            let sock = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(sock >= 0);
            libc::close(sock);
        }
        gettid()
    })
    .join()
    .unwrap();
    let name_tid = std::thread::spawn(|| {
        // SAFETY: PR_SET_NAME with a C string of at most 16 bytes; this thread ends next.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_SET_NAME, c"vigil-name".as_ptr()) },
            0
        );
        gettid()
    })
    .join()
    .unwrap();
    // SAFETY: ptrace, signals and memfd_create on our own children and valid strings.
    let (r_seize, r_peek, r_tkill, r_tgkill, r_kill, r_memfd) = unsafe {
        (
            sys!(libc::SYS_ptrace, 0x4206, t, 0, 0),
            sys!(libc::SYS_ptrace, 2, s, 0, 0),
            sys!(libc::SYS_tkill, s, libc::SIGCONT),
            sys!(libc::SYS_tgkill, s, s, libc::SIGCONT),
            ret(libc::kill(s, libc::SIGTERM).into()),
            ret(libc::memfd_create(
                c"vigil-memfd-probe".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
            .into()),
        )
    };
    assert_eq!(
        (r_seize, r_peek, r_tkill, r_tgkill, r_kill),
        (0, -3, 0, 0, 0)
    );
    assert!(r_memfd >= 0);
    // SAFETY: closing our memfd; signalling the process group of our own child.
    let r_group = unsafe {
        libc::close(r_memfd as i32);
        ret(libc::kill(-g, libc::SIGKILL).into())
    };
    assert_eq!(r_group, 0);

    let done = agent.stop();
    // SIGKILL ends a seized tracee too; these kills come after the agent stopped.
    drop((traced, signalled, grouped));
    let me = calls(&done.events, std::process::id());
    let ptraces: Vec<&Value> = named(&me, "ptrace")
        .into_iter()
        .filter(|c| c["args"]["pid"] == t || c["args"]["pid"] == s)
        .collect();
    assert_eq!(
        ptraces,
        [
            &json!({"name": "ptrace", "result": 0, "error": null,
                    "args": {"request": 0x4206, "request_name": "PTRACE_SEIZE", "pid": t}}),
            &json!({"name": "ptrace", "result": -3, "error": "ESRCH",
                    "args": {"request": 2, "request_name": "PTRACE_PEEKDATA", "pid": s}}),
        ]
    );
    let to = |name: &str, key: &str, pid: i32| -> Vec<&Value> {
        named(&me, name)
            .into_iter()
            .filter(|c| c["args"][key] == pid)
            .collect()
    };
    assert_eq!(
        to("kill", "pid", s),
        [&json!({"name": "kill", "result": 0, "error": null,
                 "args": {"pid": s, "signal": 15, "signal_name": "SIGTERM"}})],
        "kill with signal 0 is not reported"
    );
    assert_eq!(
        to("tkill", "tid", s),
        [&json!({"name": "tkill", "result": 0, "error": null,
                 "args": {"tid": s, "signal": 18, "signal_name": "SIGCONT"}})]
    );
    assert_eq!(
        to("tgkill", "tgid", s),
        [&json!({"name": "tgkill", "result": 0, "error": null,
                 "args": {"tgid": s, "tid": s, "signal": 18, "signal_name": "SIGCONT"}})]
    );
    let memfd: Vec<&Value> = named(&me, "memfd_create")
        .into_iter()
        .filter(|c| c["args"]["name"] == "vigil-memfd-probe")
        .collect();
    assert_eq!(
        memfd,
        [
            &json!({"name": "memfd_create", "result": r_memfd, "error": null,
                 "args": {"name": "vigil-memfd-probe", "flags": 3}})
        ]
    );
    let by_tid = |tid: u32| -> Vec<&Value> {
        done.events
            .iter()
            .filter(|e| e["kind"] == "syscall" && e["process"]["tid"] == tid)
            .map(|e| &e["syscall"])
            .collect()
    };
    let set_name = by_tid(name_tid);
    assert_eq!(set_name.len(), 1, "{set_name:#?}");
    assert_eq!(
        (
            &set_name[0]["name"],
            &set_name[0]["result"],
            &set_name[0]["args"]["option"],
            &set_name[0]["args"]["option_name"],
            &set_name[0]["args"]["name"]
        ),
        (
            &json!("prctl"),
            &json!(0),
            &json!(15),
            &json!("PR_SET_NAME"),
            &json!("vigil-name")
        )
    );
    assert!(
        by_tid(quiet_tid).is_empty(),
        "kill(pid, 0), PR_GET_NAME and an AF_INET stream socket are not reported: {:#?}",
        by_tid(quiet_tid)
    );
    // kill(-pgid, sig) signals a process group: the kernel receives the pid_t -pgid.
    let group_kill: Vec<&Value> = named(&me, "kill")
        .into_iter()
        .filter(|c| {
            // The pid_t, or the register it came in (whatever its upper 32 bits).
            let pid = &c["args"]["pid"];
            let bits = pid.as_i64().or(pid.as_u64().map(|u| u as i64));
            bits.is_some_and(|b| b as i32 == -g)
        })
        .collect();
    assert_eq!(
        group_kill,
        [&json!({"name": "kill", "result": 0, "error": null,
                 "args": {"pid": -g, "signal": 9, "signal_name": "SIGKILL"}})],
        "a negative pid is a process group, reported as the negative number the kernel got"
    );
}

#[test]
fn raw_and_packet_sockets_and_a_socket_dup_onto_stdio_are_reported() {
    if !require_root() {
        return;
    }
    let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = std::net::TcpListener::bind("[::1]:0").ok();
    let agent = Agent::start(&[]);

    // SAFETY: socket(2) with constant arguments; the fds are closed below.
    let (r_packet, r_raw) = unsafe {
        (
            ret(libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            )
            .into()),
            ret(libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMP,
            )
            .into()),
        )
    };
    assert!(r_packet >= 0 && r_raw >= 0, "{r_packet} {r_raw}");
    let quiet_tid = std::thread::spawn(|| {
        // SAFETY: plain socket(2) calls; the fds are closed at once.
        unsafe {
            for (family, ty) in [
                (libc::AF_INET, libc::SOCK_STREAM),
                (libc::AF_UNIX, libc::SOCK_DGRAM),
            ] {
                let s = libc::socket(family, ty, 0);
                assert!(s >= 0);
                libc::close(s);
            }
        }
        gettid()
    })
    .join()
    .unwrap();
    // SAFETY: closing our own sockets.
    unsafe {
        libc::close(r_packet as i32);
        libc::close(r_raw as i32);
    }

    // A child connects to the listener and puts the socket on stdout (dup2) and stderr (dup3),
    // the shape of a reverse shell; its stdin is /dev/null, dup2'ed by std: not a socket.
    let reverse = |addr: std::net::SocketAddr| -> u32 {
        // SAFETY: a zeroed sockaddr_storage is a valid (unspecified) address.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            std::net::SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
                let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as u16;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                std::mem::size_of::<libc::sockaddr_in>()
            }
            std::net::SocketAddr::V6(a) => {
                // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
                let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as u16;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        } as libc::socklen_t;
        let family = i32::from(ss.ss_family);
        let mut cmd = Command::new("/bin/true");
        cmd.stdin(Stdio::null());
        // SAFETY: the hook makes only async-signal-safe syscalls on data built before fork.
        unsafe {
            cmd.pre_exec(move || {
                let s = libc::socket(family, libc::SOCK_STREAM, 0);
                if s < 0
                    || libc::connect(s, &ss as *const _ as *const libc::sockaddr, len) != 0
                    || libc::dup2(s, 1) != 1
                    || libc::dup3(s, 2, libc::O_CLOEXEC) != 2
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        assert!(child.wait().unwrap().success());
        child.id()
    };
    let child4 = reverse(v4.local_addr().unwrap());
    let child6 = v6.as_ref().map(|l| reverse(l.local_addr().unwrap()));

    let done = agent.stop();
    let me = calls(&done.events, std::process::id());
    let sockets: Vec<&Value> = named(&me, "socket")
        .into_iter()
        .filter(|c| c["result"] == r_packet || c["result"] == r_raw)
        .collect();
    assert_eq!(
        sockets,
        [
            &json!({"name": "socket", "result": r_packet, "error": null,
                    "args": {"family": 17, "family_name": "AF_PACKET", "type": 3,
                             "protocol": (libc::ETH_P_ALL as u16).to_be()}}),
            &json!({"name": "socket", "result": r_raw, "error": null,
                    "args": {"family": 2, "family_name": "AF_INET",
                             "type": libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                             "protocol": libc::IPPROTO_ICMP}}),
        ]
    );
    let quiet: Vec<&Value> = done
        .events
        .iter()
        .filter(|e| e["kind"] == "syscall" && e["process"]["tid"] == quiet_tid)
        .collect();
    assert!(
        quiet.is_empty(),
        "ordinary sockets are not reported: {quiet:#?}"
    );

    let check = |pid: u32, family: u32, family_name: &str, port: u16, addr: &str| {
        let dups = calls(&done.events, pid);
        assert_eq!(
            dups.len(),
            2,
            "only the socket dups, not stdin's /dev/null: {dups:#?}"
        );
        let oldfd = &dups[0]["args"]["oldfd"];
        assert!(oldfd.as_u64().unwrap() >= 3);
        let dup = |name: &str, newfd: i32, flags: i32| {
            json!({"name": name, "result": newfd, "error": null,
                   "args": {"oldfd": oldfd, "newfd": newfd, "flags": flags, "family": family,
                            "family_name": family_name, "peer_port": port, "peer_addr": addr}})
        };
        assert_eq!(dups, [&dup("dup2", 1, 0), &dup("dup3", 2, libc::O_CLOEXEC)]);
    };
    check(
        child4,
        2,
        "AF_INET",
        v4.local_addr().unwrap().port(),
        "127.0.0.1",
    );
    if let (Some(pid), Some(l)) = (child6, &v6) {
        check(pid, 10, "AF_INET6", l.local_addr().unwrap().port(), "::1");
    }
}

/// io_uring by hand: one ring of one entry, one IORING_OP_NOP submitted. Returns what
/// io_uring_enter returned (the number of entries submitted).
fn io_uring_nop(user_data: u64) -> i64 {
    #[repr(C)]
    #[derive(Default)]
    struct SqOffsets {
        head: u32,
        tail: u32,
        ring_mask: u32,
        ring_entries: u32,
        flags: u32,
        dropped: u32,
        array: u32,
        resv1: u32,
        user_addr: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct CqOffsets {
        head: u32,
        tail: u32,
        ring_mask: u32,
        ring_entries: u32,
        overflow: u32,
        cqes: u32,
        flags: u32,
        resv1: u32,
        user_addr: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Params {
        sq_entries: u32,
        cq_entries: u32,
        flags: u32,
        sq_thread_cpu: u32,
        sq_thread_idle: u32,
        features: u32,
        wq_fd: u32,
        resv: [u32; 3],
        sq_off: SqOffsets,
        cq_off: CqOffsets,
    }
    const IORING_OFF_SQES: libc::off_t = 0x1000_0000;
    let mut p = Params::default();
    // SAFETY: io_uring_setup with a valid params struct; the ring memory is mapped by the
    // kernel at the offsets it returned, written within those bounds, and unmapped below.
    unsafe {
        let fd = sys!(libc::SYS_io_uring_setup, 1, &mut p as *mut Params);
        assert!(fd >= 0, "io_uring_setup: {fd}");
        let fd = fd as i32;
        let ring_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
        let sqes_len = p.sq_entries as usize * 64;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_SHARED | libc::MAP_POPULATE;
        let ring = libc::mmap(std::ptr::null_mut(), ring_len, prot, flags, fd, 0);
        let sqes = libc::mmap(
            std::ptr::null_mut(),
            sqes_len,
            prot,
            flags,
            fd,
            IORING_OFF_SQES,
        );
        assert!(ring != libc::MAP_FAILED && sqes != libc::MAP_FAILED);
        let ring = ring.cast::<u8>();
        let sqe = sqes.cast::<u8>();
        std::ptr::write_bytes(sqe, 0, 64); // opcode 0: IORING_OP_NOP
        sqe.add(32).cast::<u64>().write(user_data);
        let mask = ring.add(p.sq_off.ring_mask as usize).cast::<u32>().read();
        let tail = &*ring
            .add(p.sq_off.tail as usize)
            .cast::<std::sync::atomic::AtomicU32>();
        let t = tail.load(std::sync::atomic::Ordering::Acquire);
        ring.add(p.sq_off.array as usize)
            .cast::<u32>()
            .add((t & mask) as usize)
            .write(0);
        tail.store(t.wrapping_add(1), std::sync::atomic::Ordering::Release);
        let n = sys!(
            libc::SYS_io_uring_enter,
            fd,
            1,
            0,
            0,
            std::ptr::null::<libc::c_void>(),
            0
        );
        libc::munmap(sqes, sqes_len);
        libc::munmap(ring.cast(), ring_len);
        libc::close(fd);
        n
    }
}

#[test]
fn bpf_execveat_and_io_uring_submissions_are_reported() {
    if !require_root() {
        return;
    }
    // A memfd holding /bin/true, executed by a child through its fd (fileless).
    // SAFETY: memfd_create with a valid name; the fd is ours.
    let memfd = unsafe { libc::memfd_create(c"vigil-execveat".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(memfd >= 0);
    let body = std::fs::read("/bin/true").unwrap();
    // SAFETY: writing our own buffer to our own fd.
    assert_eq!(
        unsafe { libc::write(memfd, body.as_ptr().cast(), body.len()) },
        body.len() as isize
    );
    let agent = Agent::start(&[]);

    let mut attr = [0u8; 128]; // BPF_MAP_TYPE_UNSPEC: rejected
                               // SAFETY: bpf(2) with a buffer of the size passed.
    let r_bpf = unsafe { sys!(libc::SYS_bpf, 0, attr.as_mut_ptr(), attr.len()) };
    assert!(r_bpf < 0);
    let argv = [c"x".as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: execveat of a path that does not exist: it returns, with valid argv/envp.
    let r_exec = unsafe {
        sys!(
            libc::SYS_execveat,
            libc::AT_FDCWD,
            c"/nonexistent/vigil-x".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            0
        )
    };
    assert_eq!(r_exec, -2);
    let mut fileless = Command::new("/bin/true");
    let (argv_addr, envp_addr) = (argv.as_ptr() as usize, envp.as_ptr() as usize);
    // SAFETY: the hook only calls execveat on data built before fork (valid in the child).
    unsafe {
        fileless.pre_exec(move || {
            let _ = sys!(
                libc::SYS_execveat,
                memfd,
                c"".as_ptr(),
                argv_addr,
                envp_addr,
                libc::AT_EMPTY_PATH
            );
            Err(std::io::Error::last_os_error())
        });
    }
    let mut child = fileless.spawn().unwrap();
    let fileless_pid = child.id();
    assert!(child.wait().unwrap().success());
    // SAFETY: closing our memfd.
    unsafe { libc::close(memfd) };
    let uring_tid_and_result = std::thread::spawn(|| (gettid(), io_uring_nop(0x5a5a)))
        .join()
        .unwrap();
    assert_eq!(uring_tid_and_result.1, 1, "one entry submitted");

    let done = agent.stop();
    let me = calls(&done.events, std::process::id());
    let bpf: Vec<&Value> = named(&me, "bpf");
    assert_eq!(
        bpf,
        [&json!({"name": "bpf", "result": r_bpf, "error": "EINVAL",
                 "args": {"cmd": 0, "cmd_name": "BPF_MAP_CREATE"}})]
    );
    let uring: Vec<&Value> = done
        .events
        .iter()
        .filter(|e| e["kind"] == "syscall" && e["process"]["tid"] == uring_tid_and_result.0)
        .map(|e| &e["syscall"])
        .collect();
    assert_eq!(
        uring,
        [
            &json!({"name": "io_uring_submit", "result": 0, "error": null,
                 "args": {"opcode": 0, "opcode_name": "IORING_OP_NOP", "user_data": 0x5a5a}})
        ]
    );
    let failed = only(&me, "execveat");
    assert_eq!(
        (&failed["result"], &failed["error"], &failed["args"]["path"]),
        (&json!(-2), &json!("ENOENT"), &json!("/nonexistent/vigil-x"))
    );
    assert_eq!(
        (&failed["args"]["flags"], &failed["args"]["empty_path"]),
        (&json!(0), &json!(false))
    );
    let mut wrong = Vec::new();
    // dirfd is an int: AT_FDCWD is -100, as in file events.
    if failed["args"]["dirfd"] != -100 {
        wrong.push(format!(
            "failed execveat: dirfd {} for AT_FDCWD",
            failed["args"]["dirfd"]
        ));
    }
    // A successful execveat is one event, the exec (as in Falco): no syscall event as well.
    let ok = named(&calls(&done.events, fileless_pid), "execveat");
    if !ok.is_empty() {
        wrong.push(format!(
            "successful execveat also reported as a syscall: {ok:?}"
        ));
    }
    let execs = by_pid(&done.events, "exec", fileless_pid);
    if !execs.iter().any(|e| {
        e["process"]["exe"]
            .as_str()
            .is_some_and(|x| x.starts_with("/memfd:"))
    }) {
        wrong.push(format!(
            "successful fileless execveat: no exec event of a memfd: {execs:?}"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn probe_reports_module_loading_as_unsupported_on_a_kernel_without_modules() {
    if !require_root() {
        return;
    }
    let r = probe_json();
    let cap = |name: &str| -> &Value {
        r["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no capability {name} in {r:#}"))
    };
    let modules = cap("kernel module loading (init_module, finit_module)");
    assert_eq!(modules["status"], "unsupported", "{modules}");
    assert!(
        modules["detail"].as_str().unwrap().contains("init_module"),
        "{modules}"
    );
    for live in [
        "io_uring submissions",
        "privilege changes (setuid family, capset)",
        "file events (open, unlink, rename, mkdir, chmod, chown, link, symlink, truncate)",
    ] {
        assert_eq!(cap(live)["status"], "supported", "{}", cap(live));
    }
}
