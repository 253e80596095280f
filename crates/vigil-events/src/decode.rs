//! Record bytes -> [`Event`]. Copies into plain types; never trusts a length it has not checked.

use vigil_abi::{
    CaptureEvent, CgroupEvent, ConnEvent, EnforceEvent, EventHeader, ExecEvent, ExitEvent,
    FileEvent, ForkEvent, SyscallEvent, VIGIL_ABI_VERSION, VIGIL_F_ARGS_TRUNCATED,
    VIGIL_F_CORE_DUMPED, VIGIL_F_CWD_TRUNCATED, VIGIL_F_EXE_TRUNCATED, VIGIL_F_NO_LOGINUID,
    VIGIL_F_PATH_TRUNCATED, VIGIL_F_READ_FAILED, VIGIL_F_THREAD, VIGIL_F_UNFILTERED,
};

use crate::{Bytes, Event, Exec, Exit, File, Fork, Header, Kind, Syscall};

/// Why a record could not be decoded. Each is counted by the caller, never ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {have} bytes is shorter than the {need} its kind needs")]
    TooShort { need: usize, have: usize },
    #[error("unknown event kind {0}")]
    UnknownKind(u16),
    #[error("ABI version {0} (this build understands {VIGIL_ABI_VERSION})")]
    AbiVersion(u16),
    #[error("{what} runs past the end of the record")]
    TailOutOfBounds { what: &'static str },
}

/// Decodes one ring-buffer record.
pub fn decode(rec: &[u8]) -> Result<Event, DecodeError> {
    let h = EventHeader::read(rec).ok_or(DecodeError::TooShort {
        need: EventHeader::SIZE,
        have: rec.len(),
    })?;
    if u32::from(h.abi_version) != VIGIL_ABI_VERSION {
        return Err(DecodeError::AbiVersion(h.abi_version));
    }
    let kind = Kind::from_abi(u32::from(h.kind)).ok_or(DecodeError::UnknownKind(h.kind))?;
    // The header's size is the producer's claim; the ring buffer's length is the truth.
    let rec = rec.get(..h.size as usize).unwrap_or(rec);
    let header = Header {
        kind,
        time_ns: h.time_ns,
        pid: h.pid,
        tgid: h.tgid,
        cgroup_id: h.cgroup_id,
    };
    match kind {
        Kind::Exec => decode_exec(rec, header).map(Event::Exec),
        Kind::File => decode_file(rec, header).map(Event::File),
        Kind::Syscall => decode_syscall(rec, header).map(Event::Syscall),
        Kind::Connection => {
            let e = read_fixed(rec, ConnEvent::read, ConnEvent::SIZE)?;
            Ok(Event::Conn(crate::net::conn(&e, header)))
        }
        Kind::Capture => {
            let e = read_fixed(rec, CaptureEvent::read, CaptureEvent::SIZE)?;
            let payload = Tail(&rec[CaptureEvent::SIZE..]).take(e.captured_len, "payload")?;
            Ok(Event::Capture(crate::net::capture(&e, header, payload)))
        }
        Kind::Cgroup => {
            let e = read_fixed(rec, CgroupEvent::read, CgroupEvent::SIZE)?;
            let path = Tail(&rec[CgroupEvent::SIZE..]).take(e.path_len, "path")?;
            Ok(Event::Cgroup(crate::CgroupChange {
                header,
                id: e.id,
                level: e.level,
                path: path.to_vec(),
                removed: u32::from(e.op) == vigil_abi::VIGIL_CG_RMDIR,
            }))
        }
        Kind::Enforce => {
            let e = read_fixed(rec, EnforceEvent::read, EnforceEvent::SIZE)?;
            let path = Tail(&rec[EnforceEvent::SIZE..]).take(e.path_len, "path")?;
            Ok(Event::Enforce(crate::enforce::enforce(&e, header, path)))
        }
        Kind::Udp | Kind::Dns | Kind::Http | Kind::Drop => Err(DecodeError::UnknownKind(h.kind)),
        Kind::Fork => {
            let e = read_fixed(rec, ForkEvent::read, ForkEvent::SIZE)?;
            Ok(Event::Fork(Fork {
                header,
                start_time_ns: e.start_time_ns,
                parent_pid: e.parent_pid,
                parent_tgid: e.parent_tgid,
                thread: e.flags & VIGIL_F_THREAD != 0,
                comm: cstr(&e.comm),
            }))
        }
        Kind::Exit => {
            let e = read_fixed(rec, ExitEvent::read, ExitEvent::SIZE)?;
            let exe = Tail(&rec[ExitEvent::SIZE..]).take(e.exe_len, "exe")?;
            let signal = (e.exit_code & 0x7f) as u8;
            Ok(Event::Exit(Exit {
                header,
                start_time_ns: e.start_time_ns,
                ppid: e.ppid,
                code: (signal == 0).then_some(((e.exit_code >> 8) & 0xff) as u8),
                signal: (signal != 0).then_some(signal),
                core_dumped: e.flags & VIGIL_F_CORE_DUMPED != 0,
                comm: cstr(&e.comm),
                exe: (!exe.is_empty()).then(|| exe.to_vec()),
                exe_truncated: e.flags & VIGIL_F_EXE_TRUNCATED != 0,
            }))
        }
    }
}

fn read_fixed<T>(rec: &[u8], read: fn(&[u8]) -> Option<T>, size: usize) -> Result<T, DecodeError> {
    read(rec).ok_or(DecodeError::TooShort {
        need: size,
        have: rec.len(),
    })
}

/// Hands out the variable-length tail of a record piece by piece, checking every length.
struct Tail<'a>(&'a [u8]);

impl<'a> Tail<'a> {
    fn take(&mut self, len: u16, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(len);
        if len > self.0.len() {
            return Err(DecodeError::TailOutOfBounds { what });
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }
}

fn decode_file(rec: &[u8], header: Header) -> Result<File, DecodeError> {
    let e = read_fixed(rec, FileEvent::read, FileEvent::SIZE)?;
    let mut tail = Tail(&rec[FileEvent::SIZE..]);
    Ok(File {
        header,
        result: e.result,
        syscall: e.syscall,
        op: e.op,
        flags: e.flags,
        mode: e.mode,
        dirfd: e.dirfd,
        dirfd2: e.dirfd2,
        fd: (e.fd >= 0).then_some(e.fd),
        uid: e.uid,
        gid: e.gid,
        length: e.length,
        path: tail.take(e.path_len, "path")?.to_vec(),
        base: tail.take(e.base_len, "base")?.to_vec(),
        path2: tail.take(e.path2_len, "path2")?.to_vec(),
        base2: tail.take(e.base2_len, "base2")?.to_vec(),
        truncated: e.event_flags & VIGIL_F_PATH_TRUNCATED != 0,
        read_failed: e.event_flags & VIGIL_F_READ_FAILED != 0,
        unfiltered: e.event_flags & VIGIL_F_UNFILTERED != 0,
    })
}

fn decode_syscall(rec: &[u8], header: Header) -> Result<Syscall, DecodeError> {
    let e = read_fixed(rec, SyscallEvent::read, SyscallEvent::SIZE)?;
    let mut tail = Tail(&rec[SyscallEvent::SIZE..]);
    let [a, b, c] = e.str_len;
    Ok(Syscall {
        header,
        result: e.result,
        syscall: e.syscall,
        args: e.args,
        strs: [
            tail.take(a, "str0")?.to_vec(),
            tail.take(b, "str1")?.to_vec(),
            tail.take(c, "str2")?.to_vec(),
        ],
        truncated: e.event_flags & VIGIL_F_PATH_TRUNCATED != 0,
        read_failed: e.event_flags & VIGIL_F_READ_FAILED != 0,
    })
}

fn decode_exec(rec: &[u8], header: Header) -> Result<Exec, DecodeError> {
    let e = read_fixed(rec, ExecEvent::read, ExecEvent::SIZE)?;
    let mut tail = Tail(&rec[ExecEvent::SIZE..]);
    let exe = tail.take(e.exe_len, "exe")?.to_vec();
    let cwd = tail.take(e.cwd_len, "cwd")?.to_vec();
    let args = split_args(tail.take(e.args_len, "args")?);
    Ok(Exec {
        header,
        start_time_ns: e.start_time_ns,
        ppid: e.ppid,
        uid: e.uid,
        gid: e.gid,
        euid: e.euid,
        egid: e.egid,
        loginuid: (e.flags & VIGIL_F_NO_LOGINUID == 0 && e.loginuid != u32::MAX)
            .then_some(e.loginuid),
        tty_dev: e.tty_dev,
        comm: cstr(&e.comm),
        exe,
        exe_truncated: e.flags & VIGIL_F_EXE_TRUNCATED != 0,
        cwd,
        cwd_truncated: e.flags & VIGIL_F_CWD_TRUNCATED != 0,
        args,
        args_truncated: e.flags & VIGIL_F_ARGS_TRUNCATED != 0,
        argc: u32::from(e.args_count),
    })
}

/// argv as the kernel lays it out: NUL-terminated strings back to back. A final string without
/// its NUL (cut by the capture bound) is kept as is.
fn split_args(raw: &[u8]) -> Vec<Bytes> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

/// A fixed-size C string field up to its first NUL.
pub(crate) fn cstr(b: &[u8]) -> Bytes {
    b.split(|c| *c == 0).next().unwrap_or_default().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_abi::{VIGIL_EV_EXEC, VIGIL_EV_EXIT};

    fn header(kind: u32, size: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((kind as u16).to_ne_bytes());
        b.extend((VIGIL_ABI_VERSION as u16).to_ne_bytes());
        b.extend((size as u32).to_ne_bytes());
        b.extend(7u64.to_ne_bytes());
        b.extend(10u32.to_ne_bytes());
        b.extend(10u32.to_ne_bytes());
        b.extend(99u64.to_ne_bytes());
        b
    }

    fn exec_record(exe: &[u8], cwd: &[u8], args: &[u8], flags: u32) -> Vec<u8> {
        let size = ExecEvent::SIZE + exe.len() + cwd.len() + args.len();
        let mut b = header(VIGIL_EV_EXEC, size);
        b.extend(5u64.to_ne_bytes()); // start_time_ns
        for v in [1u32, 1000, 1000, 0, 0, 4242, 0, flags] {
            b.extend(v.to_ne_bytes());
        }
        for v in [exe.len() as u16, cwd.len() as u16, args.len() as u16, 3] {
            b.extend(v.to_ne_bytes());
        }
        b.extend(*b"true\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(b.len(), ExecEvent::SIZE);
        b.extend(exe);
        b.extend(cwd);
        b.extend(args);
        b
    }

    #[test]
    fn exec_with_tail() {
        let rec = exec_record(b"/bin/true", b"/tmp", b"true\0a b\0\xff\xfe\0", 0);
        let Event::Exec(e) = decode(&rec).unwrap() else {
            panic!("not exec")
        };
        assert_eq!(e.exe, b"/bin/true");
        assert_eq!(e.cwd, b"/tmp");
        assert_eq!(
            e.args,
            vec![b"true".to_vec(), b"a b".to_vec(), b"\xff\xfe".to_vec()]
        );
        assert_eq!(e.loginuid, Some(4242));
        assert_eq!(e.comm, b"true");
        assert_eq!(e.header.cgroup_id, 99);
        assert!(!e.args_truncated);
    }

    #[test]
    fn truncated_argv_keeps_partial_last_arg() {
        let rec = exec_record(b"/x", b"/", b"one\0tw", VIGIL_F_ARGS_TRUNCATED);
        let Event::Exec(e) = decode(&rec).unwrap() else {
            panic!("not exec")
        };
        assert_eq!(e.args, vec![b"one".to_vec(), b"tw".to_vec()]);
        assert!(e.args_truncated);
    }

    #[test]
    fn lengths_past_the_record_are_rejected() {
        let mut rec = exec_record(b"/bin/true", b"/", b"", 0);
        rec.truncate(rec.len() - 3);
        assert_eq!(
            decode(&rec),
            Err(DecodeError::TailOutOfBounds { what: "exe" })
        );
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert!(matches!(
            decode(&[1, 2, 3]),
            Err(DecodeError::TooShort { .. })
        ));
        assert_eq!(decode(&header(77, 32)), Err(DecodeError::UnknownKind(77)));
        assert!(matches!(
            decode(&header(VIGIL_EV_EXIT, 32)),
            Err(DecodeError::TooShort { .. })
        ));
    }

    #[test]
    fn exit_status_and_signal() {
        let mut b = header(VIGIL_EV_EXIT, ExitEvent::SIZE);
        b.extend(1u64.to_ne_bytes());
        for v in [1u32, 9 | 0x80, VIGIL_F_CORE_DUMPED, 0] {
            b.extend(v.to_ne_bytes());
        }
        b.extend([0u8; 16]);
        let Event::Exit(e) = decode(&b).unwrap() else {
            panic!("not exit")
        };
        assert_eq!((e.code, e.signal, e.core_dumped), (None, Some(9), true));
        assert_eq!(e.exe, None);
    }

    #[test]
    fn exit_with_the_exe_of_start_up() {
        let exe = b"/usr/bin/true";
        let mut b = header(VIGIL_EV_EXIT, ExitEvent::SIZE + exe.len());
        b.resize(ExitEvent::SIZE, 0);
        let l = &ExitEvent::LAYOUT;
        put(&mut b, l, "exe_len", &(exe.len() as u16).to_ne_bytes());
        put(&mut b, l, "flags", &VIGIL_F_EXE_TRUNCATED.to_ne_bytes());
        b.extend(exe);
        let Event::Exit(e) = decode(&b).unwrap() else {
            panic!("not exit")
        };
        assert_eq!(e.exe.as_deref(), Some(&exe[..]));
        assert!(e.exe_truncated);
        assert_eq!((e.code, e.signal), (Some(0), None));
        b.truncate(b.len() - 1);
        assert_eq!(
            decode(&b),
            Err(DecodeError::TailOutOfBounds { what: "exe" })
        );
    }

    /// Writes `bytes` at the offset of `field` in a record laid out as `layout`.
    fn put(rec: &mut [u8], layout: &vigil_abi::Layout, field: &str, bytes: &[u8]) {
        let off = layout.fields.iter().find(|(n, _)| *n == field).unwrap().1;
        rec[off..off + bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn connection_close_with_counters() {
        use vigil_abi::{VIGIL_CLOSE_PEER, VIGIL_CONN_CLOSE, VIGIL_EV_CONN, VIGIL_ROLE_SERVER};
        let l = &ConnEvent::LAYOUT;
        let mut rec = header(VIGIL_EV_CONN, ConnEvent::SIZE);
        rec.resize(ConnEvent::SIZE, 0);
        put(&mut rec, l, "cookie", &77u64.to_ne_bytes());
        put(&mut rec, l, "bytes_sent", &1000u64.to_ne_bytes());
        put(&mut rec, l, "local_port", &80u16.to_ne_bytes());
        put(&mut rec, l, "remote_port", &40000u16.to_ne_bytes());
        put(&mut rec, l, "phase", &[VIGIL_CONN_CLOSE as u8]);
        put(&mut rec, l, "role", &[VIGIL_ROLE_SERVER as u8]);
        put(&mut rec, l, "family", &[10]);
        put(&mut rec, l, "close_reason", &[VIGIL_CLOSE_PEER as u8]);
        // ::ffff:10.0.0.1 (a dual-stack socket talking IPv4) and fd00::2.
        let mut mapped = [0u8; 16];
        mapped[10..12].copy_from_slice(&[0xff, 0xff]);
        mapped[12..].copy_from_slice(&[10, 0, 0, 1]);
        put(&mut rec, l, "local_addr", &mapped);
        let mut v6 = [0u8; 16];
        v6[0] = 0xfd;
        v6[15] = 2;
        put(&mut rec, l, "remote_addr", &v6);
        let Event::Conn(c) = decode(&rec).unwrap() else {
            panic!("not a connection")
        };
        assert_eq!(c.phase, crate::net::ConnPhase::Close);
        assert_eq!(c.role, crate::net::Role::Server);
        assert_eq!(c.local.to_string(), "10.0.0.1:80");
        assert_eq!(c.remote.to_string(), "[fd00::2]:40000");
        assert_eq!((c.cookie, c.bytes_sent), (77, 1000));
        assert_eq!(c.close_reason, Some(crate::net::CloseReason::PeerClose));
        assert_eq!(c.connect_latency_ns, None);
    }

    #[test]
    fn capture_payload_is_bounded_by_the_record() {
        use vigil_abi::{VIGIL_DIR_EGRESS, VIGIL_EV_CAPTURE};
        let l = &CaptureEvent::LAYOUT;
        let payload = b"GET / HTTP/1.1\r\n";
        let mut rec = header(VIGIL_EV_CAPTURE, CaptureEvent::SIZE + payload.len());
        rec.resize(CaptureEvent::SIZE, 0);
        put(
            &mut rec,
            l,
            "captured_len",
            &(payload.len() as u16).to_ne_bytes(),
        );
        put(&mut rec, l, "payload_len", &900u32.to_ne_bytes());
        put(&mut rec, l, "family", &[2]);
        put(&mut rec, l, "protocol", &[6]);
        put(&mut rec, l, "direction", &[VIGIL_DIR_EGRESS as u8]);
        rec.extend(payload);
        let Event::Capture(c) = decode(&rec).unwrap() else {
            panic!("not a capture")
        };
        assert_eq!(c.payload, payload);
        assert_eq!(c.payload_len, 900);
        assert_eq!(c.direction, crate::net::Direction::Egress);
        assert_eq!(c.transport, crate::net::Transport::Tcp);
        rec.truncate(rec.len() - 1);
        assert_eq!(
            decode(&rec),
            Err(DecodeError::TailOutOfBounds { what: "payload" })
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..600 {
            let mut b = exec_record(b"/a", b"/", b"x\0", 0);
            b.resize(len.min(b.len() + 40), 0);
            for byte in b.iter_mut().skip(32) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *byte = seed as u8;
            }
            let _ = decode(&b);
        }
    }
}
