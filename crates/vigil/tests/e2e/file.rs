//! File events: every operation with its success and failure, the exact `file` object a user
//! reads (path resolution, flags, mode, ids, length, fd, dirfd), and the in-kernel path filter.
//!
//! The calls are made from the test process itself with raw syscalls, so that the syscall
//! reported is exactly the one made; events are matched by pid and by paths under a fresh
//! temporary directory. Relative paths against a cwd are made by children, since the test
//! process must not chdir (tests share it).

use std::ffi::{c_long, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::*;

/// NUL-terminated copy of a path.
pub fn cs(p: impl AsRef<OsStr>) -> CString {
    CString::new(p.as_ref().as_bytes()).unwrap()
}

/// A raw syscall's return as the kernel gave it: the value, or -errno.
pub fn ret(r: c_long) -> i64 {
    if r == -1 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        r
    }
}

/// The temporary directory as the kernel names it (symlinks resolved), as a string.
pub fn real(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// `libc::syscall` with every argument widened to a full register (`c_long`: ints are
/// sign-extended, pointers kept), returning the value or -errno. The caller's `unsafe` block
/// vouches for the pointers.
macro_rules! sys {
    ($nr:expr $(, $arg:expr)* $(,)?) => {
        $crate::file::ret(libc::syscall($nr $(, $arg as ::std::ffi::c_long)*))
    };
}
pub(crate) use sys;

const AT_FDCWD: i32 = libc::AT_FDCWD;

fn open_dir(p: &str) -> i32 {
    let p = cs(p);
    // SAFETY: a valid C string; the fd is closed by the caller.
    let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    assert!(
        fd >= 0,
        "opening the directory: {}",
        std::io::Error::last_os_error()
    );
    fd
}

fn close(fd: i64) {
    if fd >= 0 {
        // SAFETY: closing an fd this test opened.
        unsafe { libc::close(fd as i32) };
    }
}

/// The `file` objects of the file events of process `pid`.
fn files(events: &[Value], pid: u32) -> Vec<&Value> {
    by_pid(events, "file", pid)
        .into_iter()
        .map(|e| &e["file"])
        .collect()
}

/// The one `file` object among `files` that `pred` selects.
fn the<'a>(files: &[&'a Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    let hits: Vec<&Value> = files.iter().copied().filter(|f| pred(f)).collect();
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one event for {what}, found {hits:#?}"
    );
    hits[0]
}

/// The one event of `syscall` on `given` (the path exactly as passed).
fn call<'a>(files: &[&'a Value], syscall: &str, given: &str) -> &'a Value {
    the(files, &format!("{syscall}({given})"), |f| {
        f["syscall"] == syscall && f["path_given"] == given
    })
}

/// Whether any event at all (any process) names `path` as its path or second path.
fn mentions(events: &[Value], path: &str) -> bool {
    events.iter().any(|e| {
        e["kind"] == "file" && (e["file"]["path"] == path || e["file"]["new_path"] == path)
    })
}

fn errno_name(r: i64) -> Value {
    match -r {
        r if r <= 0 => Value::Null,
        2 => "ENOENT".into(),
        9 => "EBADF".into(),
        17 => "EEXIST".into(),
        18 => "EXDEV".into(),
        22 => "EINVAL".into(),
        39 => "ENOTEMPTY".into(),
        95 => "EOPNOTSUPP".into(),
        other => panic!("test does not expect errno {other}"),
    }
}

#[test]
fn open_creat_openat2_and_tmpfile_report_flags_mode_result_and_dirfd() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = real(tmp.path());
    std::fs::write(format!("{d}/existing.txt"), b"x").unwrap();
    let dirfd = open_dir(&d);
    let agent = Agent::start(&[]);

    let p_open = format!("{d}/open.txt");
    let p_creat = format!("{d}/creat.txt");
    let p_missing = format!("{d}/no-such-dir/x.txt");
    let p_existing = format!("{d}/existing.txt");
    let (c_open, c_creat, c_missing, c_existing, c_dir) = (
        cs(&p_open),
        cs(&p_creat),
        cs(&p_missing),
        cs(&p_existing),
        cs(&d),
    );
    let wr_creat_trunc = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    let rdwr_creat_excl = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how_append = OpenHow {
        flags: (libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND) as u64,
        mode: 0o640,
        resolve: 0,
    };
    let how_beneath = OpenHow {
        flags: (libc::O_WRONLY | libc::O_CREAT) as u64,
        mode: 0o600,
        resolve: libc::RESOLVE_BENEATH,
    };
    let how_size = std::mem::size_of::<OpenHow>();
    // SAFETY: raw file syscalls on valid C strings and structs that outlive the calls.
    let [r_open, r_open_missing, r_openat, r_openat_again, r_creat] = unsafe {
        [
            sys!(libc::SYS_open, c_open.as_ptr(), wr_creat_trunc, 0o644),
            sys!(
                libc::SYS_open,
                c_missing.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT,
                0o644
            ),
            sys!(
                libc::SYS_openat,
                dirfd,
                c"openat-rel.txt".as_ptr(),
                rdwr_creat_excl,
                0o600
            ),
            sys!(
                libc::SYS_openat,
                dirfd,
                c"openat-rel.txt".as_ptr(),
                rdwr_creat_excl,
                0o600
            ),
            sys!(libc::SYS_creat, c_creat.as_ptr(), 0o755),
        ]
    };
    // SAFETY: as above.
    let [r_how, r_beneath, r_tmp, r_ro] = unsafe {
        [
            sys!(
                libc::SYS_openat2,
                dirfd,
                c"openat2-rel.txt".as_ptr(),
                &how_append as *const OpenHow,
                how_size
            ),
            sys!(
                libc::SYS_openat2,
                dirfd,
                c"../vigil-escape.txt".as_ptr(),
                &how_beneath as *const OpenHow,
                how_size
            ),
            sys!(
                libc::SYS_openat,
                AT_FDCWD,
                c_dir.as_ptr(),
                libc::O_RDWR | libc::O_TMPFILE,
                0o600
            ),
            // Read-only below an unwatched prefix: filtered in the kernel.
            sys!(
                libc::SYS_openat,
                AT_FDCWD,
                c_existing.as_ptr(),
                libc::O_RDONLY
            ),
        ]
    };
    // Read-only below /etc/ (watched by default), and of /etc/ld.so.cache (ignored by default:
    // the longer prefix wins over /etc/).
    // SAFETY: as above.
    let (r_passwd, r_ldcache) = unsafe {
        (
            sys!(
                libc::SYS_openat,
                AT_FDCWD,
                c"/etc/passwd".as_ptr(),
                libc::O_RDONLY
            ),
            sys!(
                libc::SYS_openat,
                AT_FDCWD,
                c"/etc/ld.so.cache".as_ptr(),
                libc::O_RDONLY
            ),
        )
    };
    for fd in [
        r_open, r_openat, r_creat, r_how, r_tmp, r_ro, r_passwd, r_ldcache,
    ] {
        assert!(fd >= 0, "setup call failed: {fd}");
        close(fd);
    }
    close(dirfd.into());
    assert_eq!((r_open_missing, r_openat_again, r_beneath), (-2, -17, -18));

    let done = agent.stop();
    let f = files(&done.events, std::process::id());
    assert_eq!(
        *call(&f, "open", &p_open),
        json!({"op": "open", "syscall": "open", "result": r_open, "error": null,
               "path": p_open, "path_given": p_open,
               "flags": ["O_WRONLY", "O_CREAT", "O_TRUNC"], "flags_raw": 0o1101, "mode": "0644"})
    );
    assert_eq!(
        *call(&f, "open", &p_missing),
        json!({"op": "open", "syscall": "open", "result": -2, "error": "ENOENT",
               "path": p_missing, "path_given": p_missing,
               "flags": ["O_WRONLY", "O_CREAT"], "flags_raw": 0o101, "mode": "0644"})
    );
    let openat: Vec<&Value> = f
        .iter()
        .copied()
        .filter(|e| e["path_given"] == "openat-rel.txt")
        .collect();
    let openat_json = |result: i64| {
        json!({"op": "open", "syscall": "openat", "result": result, "error": errno_name(result),
               "path": format!("{d}/openat-rel.txt"), "path_given": "openat-rel.txt",
               "flags": ["O_RDWR", "O_CREAT", "O_EXCL", "O_CLOEXEC"],
               "flags_raw": rdwr_creat_excl, "mode": "0600", "dirfd": dirfd})
    };
    assert_eq!(
        openat,
        [&openat_json(r_openat), &openat_json(-17)],
        "openat with a dirfd, then the same with O_EXCL failing"
    );
    assert_eq!(
        *call(&f, "creat", &p_creat),
        json!({"op": "open", "syscall": "creat", "result": r_creat, "error": null,
               "path": p_creat, "path_given": p_creat,
               "flags": ["O_WRONLY", "O_CREAT", "O_TRUNC"], "flags_raw": 0o1101, "mode": "0755"})
    );
    assert_eq!(
        *call(&f, "openat2", "openat2-rel.txt"),
        json!({"op": "open", "syscall": "openat2", "result": r_how, "error": null,
               "path": format!("{d}/openat2-rel.txt"), "path_given": "openat2-rel.txt",
               "flags": ["O_WRONLY", "O_CREAT", "O_APPEND"], "flags_raw": 0o2101,
               "mode": "0640", "dirfd": dirfd})
    );
    // `..` is resolved lexically: the escape attempt names the parent of the directory.
    let parent = Path::new(&d).parent().unwrap().to_str().unwrap();
    assert_eq!(
        *call(&f, "openat2", "../vigil-escape.txt"),
        json!({"op": "open", "syscall": "openat2", "result": -18, "error": "EXDEV",
               "path": format!("{parent}/vigil-escape.txt"), "path_given": "../vigil-escape.txt",
               "flags": ["O_WRONLY", "O_CREAT"], "flags_raw": 0o101, "mode": "0600",
               "dirfd": dirfd})
    );
    assert_eq!(
        *call(&f, "openat", &d),
        json!({"op": "open", "syscall": "openat", "result": r_tmp, "error": null,
               "path": d, "path_given": d,
               "flags": ["O_RDWR", "O_TMPFILE"], "flags_raw": 0o20200002, "mode": "0600"})
    );
    assert_eq!(
        *call(&f, "openat", "/etc/passwd"),
        json!({"op": "open", "syscall": "openat", "result": r_passwd, "error": null,
               "path": "/etc/passwd", "path_given": "/etc/passwd",
               "flags": ["O_RDONLY"], "flags_raw": 0})
    );
    assert!(
        !mentions(&done.events, &p_existing),
        "a read-only open of an unwatched path is filtered"
    );
    assert!(
        !mentions(&done.events, "/etc/ld.so.cache"),
        "the ignored /etc/ld.so.cache wins over the watched /etc/"
    );
}

#[test]
fn unlink_rename_mkdir_rmdir_link_and_symlink_with_their_failures() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = real(tmp.path());
    for name in ["f1", "f2", "a", "x", "full/inner"] {
        let p = Path::new(&d).join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }
    let dirfd = open_dir(&d);
    let p = |name: &str| format!("{d}/{name}");
    let c = |name: &str| cs(p(name));
    let (m1, m2, full, f1, f2, missing, a, b, x, hard, sl) = (
        c("m1"),
        c("m2"),
        c("full"),
        c("f1"),
        c("f2"),
        c("missing"),
        c("a"),
        c("b"),
        c("x"),
        c("hard"),
        c("sl"),
    );
    let agent = Agent::start(&[]);
    // SAFETY: raw file syscalls on valid C strings that outlive the calls.
    let r: Vec<i64> = unsafe {
        vec![
            sys!(libc::SYS_mkdir, m1.as_ptr(), 0o750),
            sys!(libc::SYS_mkdir, m1.as_ptr(), 0o750),
            sys!(libc::SYS_mkdirat, dirfd, c"m2-rel".as_ptr(), 0o700),
            sys!(libc::SYS_mkdir, m2.as_ptr(), 0o755),
            sys!(libc::SYS_rmdir, m2.as_ptr()),
            sys!(libc::SYS_rmdir, full.as_ptr()),
            sys!(
                libc::SYS_unlinkat,
                dirfd,
                c"m2-rel".as_ptr(),
                libc::AT_REMOVEDIR
            ),
            sys!(libc::SYS_unlink, f1.as_ptr()),
            sys!(libc::SYS_unlink, missing.as_ptr()),
            sys!(libc::SYS_unlinkat, AT_FDCWD, f2.as_ptr(), 0),
            sys!(libc::SYS_rename, a.as_ptr(), b.as_ptr()),
            sys!(libc::SYS_rename, missing.as_ptr(), b.as_ptr()),
            sys!(
                libc::SYS_renameat,
                dirfd,
                c"b".as_ptr(),
                dirfd,
                c"c".as_ptr()
            ),
            sys!(
                libc::SYS_renameat2,
                dirfd,
                c"c".as_ptr(),
                AT_FDCWD,
                x.as_ptr(),
                libc::RENAME_NOREPLACE
            ),
            sys!(libc::SYS_link, x.as_ptr(), hard.as_ptr()),
            sys!(libc::SYS_link, x.as_ptr(), hard.as_ptr()),
            sys!(
                libc::SYS_linkat,
                dirfd,
                c"x".as_ptr(),
                dirfd,
                c"hard2".as_ptr(),
                0
            ),
            sys!(
                libc::SYS_symlink,
                c"../anything/at-all".as_ptr(),
                sl.as_ptr()
            ),
            sys!(libc::SYS_symlink, c"other".as_ptr(), sl.as_ptr()),
            sys!(
                libc::SYS_symlinkat,
                c"/etc/shadow".as_ptr(),
                dirfd,
                c"sl-rel".as_ptr()
            ),
        ]
    };
    close(dirfd.into());
    // Each call's result, in order: the failures are the ones the test means to fail.
    assert_eq!(
        r,
        [0, -17, 0, 0, 0, -39, 0, 0, -2, 0, 0, -2, 0, -17, 0, -17, 0, 0, -17, 0]
    );

    let done = agent.stop();
    let f = files(&done.events, std::process::id());
    let plain = |op: &str, syscall: &str, result: i64, name: &str| {
        json!({"op": op, "syscall": syscall, "result": result, "error": errno_name(result),
               "path": p(name), "path_given": p(name), "flags_raw": 0})
    };
    let mkdirs: Vec<&Value> = f
        .iter()
        .copied()
        .filter(|e| e["path_given"] == p("m1"))
        .collect();
    let mkdir_m1 = |result: i64| {
        let mut v = plain("mkdir", "mkdir", result, "m1");
        v["mode"] = "0750".into();
        v
    };
    assert_eq!(mkdirs, [&mkdir_m1(0), &mkdir_m1(-17)]);
    assert_eq!(
        *call(&f, "mkdirat", "m2-rel"),
        json!({"op": "mkdir", "syscall": "mkdirat", "result": 0, "error": null,
               "path": p("m2-rel"), "path_given": "m2-rel", "flags_raw": 0, "mode": "0700",
               "dirfd": dirfd})
    );
    assert_eq!(
        *call(&f, "rmdir", &p("m2")),
        plain("rmdir", "rmdir", 0, "m2")
    );
    assert_eq!(
        *call(&f, "rmdir", &p("full")),
        plain("rmdir", "rmdir", -39, "full")
    );
    assert_eq!(
        *call(&f, "unlinkat", "m2-rel"),
        json!({"op": "rmdir", "syscall": "unlinkat", "result": 0, "error": null,
               "path": p("m2-rel"), "path_given": "m2-rel", "flags_raw": libc::AT_REMOVEDIR,
               "dirfd": dirfd}),
        "unlinkat with AT_REMOVEDIR is an rmdir"
    );
    assert_eq!(
        *call(&f, "unlink", &p("f1")),
        plain("unlink", "unlink", 0, "f1")
    );
    assert_eq!(
        *call(&f, "unlink", &p("missing")),
        plain("unlink", "unlink", -2, "missing")
    );
    assert_eq!(
        *call(&f, "unlinkat", &p("f2")),
        plain("unlink", "unlinkat", 0, "f2")
    );

    let two = |op: &str, syscall: &str, result: i64, from: &str, to: &str| {
        json!({"op": op, "syscall": syscall, "result": result, "error": errno_name(result),
               "path": p(from), "path_given": p(from), "new_path": p(to),
               "new_path_given": p(to), "flags_raw": 0})
    };
    assert_eq!(
        *call(&f, "rename", &p("a")),
        two("rename", "rename", 0, "a", "b")
    );
    assert_eq!(
        *call(&f, "rename", &p("missing")),
        two("rename", "rename", -2, "missing", "b")
    );
    assert_eq!(
        *call(&f, "renameat", "b"),
        json!({"op": "rename", "syscall": "renameat", "result": 0, "error": null,
               "path": p("b"), "path_given": "b", "new_path": p("c"), "new_path_given": "c",
               "flags_raw": 0, "dirfd": dirfd})
    );
    assert_eq!(
        *call(&f, "renameat2", "c"),
        json!({"op": "rename", "syscall": "renameat2", "result": -17, "error": "EEXIST",
               "path": p("c"), "path_given": "c", "new_path": p("x"), "new_path_given": p("x"),
               "flags_raw": libc::RENAME_NOREPLACE, "dirfd": dirfd})
    );
    let links: Vec<&Value> = f
        .iter()
        .copied()
        .filter(|e| e["syscall"] == "link")
        .collect();
    assert_eq!(
        links,
        [
            &two("link", "link", 0, "x", "hard"),
            &two("link", "link", -17, "x", "hard")
        ]
    );
    assert_eq!(
        *call(&f, "linkat", "x"),
        json!({"op": "link", "syscall": "linkat", "result": 0, "error": null,
               "path": p("x"), "path_given": "x", "new_path": p("hard2"),
               "new_path_given": "hard2", "flags_raw": 0, "dirfd": dirfd})
    );
    // symlink: `path` is the link, `target` the string stored in it, never resolved.
    let symlinks: Vec<&Value> = f
        .iter()
        .copied()
        .filter(|e| e["syscall"] == "symlink")
        .collect();
    assert_eq!(
        symlinks,
        [
            &json!({"op": "symlink", "syscall": "symlink", "result": 0, "error": null,
                    "path": p("sl"), "path_given": p("sl"), "target": "../anything/at-all",
                    "flags_raw": 0}),
            &json!({"op": "symlink", "syscall": "symlink", "result": -17, "error": "EEXIST",
                    "path": p("sl"), "path_given": p("sl"), "target": "other", "flags_raw": 0}),
        ]
    );
    // symlinkat(target, newdirfd, linkpath): the link is relative to newdirfd, the second
    // argument; `dirfd` must name it like for every other relative path.
    assert_eq!(
        *call(&f, "symlinkat", "sl-rel"),
        json!({"op": "symlink", "syscall": "symlinkat", "result": 0, "error": null,
               "path": p("sl-rel"), "path_given": "sl-rel", "target": "/etc/shadow",
               "flags_raw": 0, "dirfd": dirfd})
    );
}

#[test]
fn chmod_chown_and_truncate_report_mode_ids_length_and_fd() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = real(tmp.path());
    let p = |name: &str| format!("{d}/{name}");
    std::fs::write(p("f"), b"0123456789").unwrap();
    std::os::unix::fs::symlink("f", p("ln")).unwrap();
    let dirfd = open_dir(&d);
    let (f, ln, missing) = (cs(p("f")), cs(p("ln")), cs(p("missing")));
    // SAFETY: opening our own file.
    let (rw, ro) = unsafe {
        (
            libc::open(f.as_ptr(), libc::O_RDWR),
            libc::open(f.as_ptr(), libc::O_RDONLY),
        )
    };
    assert!(rw >= 0 && ro >= 0);
    let nobody = 65534;
    let agent = Agent::start(&[]);
    // SAFETY: raw file syscalls on valid C strings and our own fds.
    let r: Vec<i64> = unsafe {
        vec![
            sys!(libc::SYS_chmod, f.as_ptr(), 0o600),
            sys!(libc::SYS_chmod, missing.as_ptr(), 0o600),
            sys!(libc::SYS_fchmod, rw, 0o640),
            sys!(libc::SYS_fchmod, 9999, 0o640),
            sys!(libc::SYS_fchmodat, dirfd, c"f".as_ptr(), 0o644),
            sys!(
                libc::SYS_fchmodat2,
                AT_FDCWD,
                ln.as_ptr(),
                0o600,
                libc::AT_SYMLINK_NOFOLLOW
            ),
            sys!(libc::SYS_chown, f.as_ptr(), nobody, nobody),
            sys!(libc::SYS_chown, missing.as_ptr(), nobody, nobody),
            sys!(libc::SYS_lchown, ln.as_ptr(), nobody, nobody),
            sys!(libc::SYS_fchown, rw, nobody, -1),
            sys!(
                libc::SYS_fchownat,
                dirfd,
                c"ln".as_ptr(),
                -1,
                nobody,
                libc::AT_SYMLINK_NOFOLLOW
            ),
            sys!(libc::SYS_truncate, f.as_ptr(), 100),
            sys!(libc::SYS_truncate, missing.as_ptr(), 1),
            sys!(libc::SYS_ftruncate, rw, 7),
            sys!(libc::SYS_ftruncate, ro, 3),
        ]
    };
    close(rw.into());
    close(ro.into());
    close(dirfd.into());
    // Each call's result, in order: the failures are the ones the test means to fail
    // (ftruncate of a read-only fd is EINVAL).
    assert_eq!(r, [0, -2, 0, -9, 0, -95, 0, -2, 0, 0, 0, 0, -2, 0, -22]);

    let done = agent.stop();
    let fs = files(&done.events, std::process::id());
    let by_path = |syscall: &str, result: i64, name: &str, extra: Value| {
        let mut v = json!({"op": "", "syscall": syscall, "result": result,
                           "error": errno_name(result), "path": p(name),
                           "path_given": p(name), "flags_raw": 0});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    // chmod family
    let chmods: Vec<&Value> = fs
        .iter()
        .copied()
        .filter(|e| e["syscall"] == "chmod")
        .collect();
    assert_eq!(
        chmods,
        [
            &by_path("chmod", 0, "f", json!({"op": "chmod", "mode": "0600"})),
            &by_path(
                "chmod",
                -2,
                "missing",
                json!({"op": "chmod", "mode": "0600"})
            ),
        ]
    );
    // fd-based calls: `path` is the file behind the fd, read from the kernel.
    assert_eq!(
        *the(&fs, "fchmod(rw)", |e| e["syscall"] == "fchmod"
            && e["fd"] == rw),
        by_path(
            "fchmod",
            0,
            "f",
            json!({"op": "chmod", "mode": "0640", "fd": rw})
        )
    );
    let bad = the(&fs, "fchmod(9999)", |e| {
        e["syscall"] == "fchmod" && e["fd"] == 9999
    });
    assert_eq!(
        (&bad["op"], &bad["result"], &bad["error"], &bad["mode"]),
        (&json!("chmod"), &json!(-9), &json!("EBADF"), &json!("0640"))
    );
    assert_eq!(
        *call(&fs, "fchmodat", "f"),
        json!({"op": "chmod", "syscall": "fchmodat", "result": 0, "error": null,
               "path": p("f"), "path_given": "f", "flags_raw": 0, "mode": "0644",
               "dirfd": dirfd})
    );
    assert_eq!(
        *call(&fs, "fchmodat2", &p("ln")),
        by_path(
            "fchmodat2",
            -95,
            "ln",
            json!({"op": "chmod", "mode": "0600", "flags_raw": libc::AT_SYMLINK_NOFOLLOW})
        ),
        "a symlink's mode cannot be changed"
    );
    // chown family: ids 65534, absent when -1 (unchanged).
    let chowns: Vec<&Value> = fs
        .iter()
        .copied()
        .filter(|e| e["syscall"] == "chown")
        .collect();
    let ids = json!({"op": "chown", "uid": 65534, "gid": 65534});
    assert_eq!(
        chowns,
        [
            &by_path("chown", 0, "f", ids.clone()),
            &by_path("chown", -2, "missing", ids.clone())
        ]
    );
    assert_eq!(
        *call(&fs, "lchown", &p("ln")),
        by_path("lchown", 0, "ln", ids)
    );
    assert_eq!(
        *the(&fs, "fchown", |e| e["syscall"] == "fchown"),
        by_path(
            "fchown",
            0,
            "f",
            json!({"op": "chown", "uid": 65534, "fd": rw})
        )
    );
    assert_eq!(
        *call(&fs, "fchownat", "ln"),
        json!({"op": "chown", "syscall": "fchownat", "result": 0, "error": null,
               "path": p("ln"), "path_given": "ln", "flags_raw": libc::AT_SYMLINK_NOFOLLOW,
               "gid": 65534, "dirfd": dirfd})
    );
    // truncate family
    let truncates: Vec<&Value> = fs
        .iter()
        .copied()
        .filter(|e| e["syscall"] == "truncate")
        .collect();
    assert_eq!(
        truncates,
        [
            &by_path("truncate", 0, "f", json!({"op": "truncate", "length": 100})),
            &by_path(
                "truncate",
                -2,
                "missing",
                json!({"op": "truncate", "length": 1})
            ),
        ]
    );
    let ftruncates: Vec<&Value> = fs
        .iter()
        .copied()
        .filter(|e| e["syscall"] == "ftruncate")
        .collect();
    assert_eq!(
        ftruncates,
        [
            &by_path(
                "ftruncate",
                0,
                "f",
                json!({"op": "truncate", "length": 7, "fd": rw})
            ),
            &by_path(
                "ftruncate",
                -22,
                "f",
                json!({"op": "truncate", "length": 3, "fd": ro})
            ),
        ]
    );
    let meta = std::fs::symlink_metadata(p("f")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid(), meta.len()), (65534, 65534, 7));
}

#[test]
fn relative_paths_resolve_against_the_callers_cwd_and_dotdot_lexically() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = real(tmp.path());
    for sub in ["sub/x", "sub2"] {
        std::fs::create_dir_all(format!("{d}/{sub}")).unwrap();
    }
    let sub = format!("{d}/sub");
    let subfd = open_dir(&sub);
    let agent = Agent::start(&[]);

    let run = |prog: &str, args: &[&str], cwd: &str| {
        let mut child = Command::new(prog)
            .args(args)
            .current_dir(cwd)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(child.wait().unwrap().success(), "{prog} {args:?}");
        pid
    };
    let touch = run("touch", &["rel.txt"], &sub);
    let mkdir = run("mkdir", &["../up-dir"], &sub);
    let rm = run("rm", &["./x/../rel.txt"], &sub);
    // A shell that changes directory itself before its child creates the file.
    let sh = run("/bin/sh", &["-c", "cd sub2 && touch rel2.txt"], &d);
    // In-process: relative to a dirfd, going up.
    // SAFETY: raw openat on a valid C string and our own dirfd.
    let r_up = unsafe {
        sys!(
            libc::SYS_openat,
            subfd,
            c"../dirfd-up.txt".as_ptr(),
            libc::O_WRONLY | libc::O_CREAT,
            0o644
        )
    };
    assert!(r_up >= 0);
    close(r_up);
    close(subfd.into());

    let done = agent.stop();
    let created = the(&files(&done.events, touch), "touch rel.txt", |e| {
        e["path_given"] == "rel.txt"
    });
    assert_eq!(
        (&created["op"], &created["path"], created.get("dirfd")),
        (&json!("open"), &json!(format!("{sub}/rel.txt")), None)
    );
    assert!(created["result"].as_i64().unwrap() >= 0);
    let made = the(&files(&done.events, mkdir), "mkdir ../up-dir", |e| {
        e["op"] == "mkdir"
    });
    assert_eq!(
        (&made["path"], &made["path_given"], &made["result"]),
        (
            &json!(format!("{d}/up-dir")),
            &json!("../up-dir"),
            &json!(0)
        )
    );
    let removed = the(&files(&done.events, rm), "rm ./x/../rel.txt", |e| {
        e["op"] == "unlink"
    });
    assert_eq!(
        (&removed["path"], &removed["path_given"], &removed["result"]),
        (
            &json!(format!("{sub}/rel.txt")),
            &json!("./x/../rel.txt"),
            &json!(0)
        )
    );
    // The shell's touch may be the shell itself (exec of the last command) or its child.
    let rel2 = format!("{d}/sub2/rel2.txt");
    let shell_made: Vec<&Value> = done
        .events
        .iter()
        .filter(|e| e["kind"] == "file" && e["file"]["path"] == rel2.as_str())
        .collect();
    assert_eq!(shell_made.len(), 1, "{shell_made:#?}");
    assert_eq!(shell_made[0]["file"]["path_given"], "rel2.txt");
    let pid = shell_made[0]["process"]["pid"].as_u64().unwrap() as u32;
    assert!(pid == sh || shell_made[0]["process"]["ppid"] == sh);
    assert_eq!(
        *call(
            &files(&done.events, std::process::id()),
            "openat",
            "../dirfd-up.txt"
        ),
        json!({"op": "open", "syscall": "openat", "result": r_up, "error": null,
               "path": format!("{d}/dirfd-up.txt"), "path_given": "../dirfd-up.txt",
               "flags": ["O_WRONLY", "O_CREAT"], "flags_raw": 0o101, "mode": "0644",
               "dirfd": subfd})
    );
}

/// The watch/ignore configuration for a filter test under `d`.
fn filter_config(d: &str) -> String {
    format!(
        "file:\n  watch: [\"{d}/watched/\", \"{d}/ignored/but-watched/\"]\n  \
         ignore: [\"{d}/ignored/\", \"{d}/watched/ignored/\"]\n  \
         watch_writes: [\"{d}/ignored/writes/\"]\n"
    )
}

fn openat(path: &str, flags: i32) -> i64 {
    let c = cs(path);
    // SAFETY: raw openat on a valid C string.
    let r = unsafe { sys!(libc::SYS_openat, AT_FDCWD, c.as_ptr(), flags, 0o644) };
    close(r);
    r
}

#[test]
fn reads_are_reported_only_when_watched_and_nothing_when_ignored() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = real(tmp.path());
    let p = |name: &str| format!("{d}/{name}");
    for dir in [
        "plain",
        "watched/ignored",
        "ignored/but-watched",
        "ignored/writes",
    ] {
        std::fs::create_dir_all(p(dir)).unwrap();
    }
    for file in [
        "plain/r.txt",
        "watched/w.txt",
        "watched/ignored/s.txt",
        "ignored/moved.txt",
    ] {
        std::fs::write(p(file), b"x").unwrap();
    }
    let agent = Agent::start_with_config(Some(&filter_config(&d)), &[]);

    const N: u64 = 64;
    for _ in 0..N {
        assert!(openat(&p("plain/r.txt"), libc::O_RDONLY) >= 0);
    }
    let r_watched = openat(&p("watched/w.txt"), libc::O_RDONLY);
    let r_watched_missing = openat(&p("watched/missing.txt"), libc::O_RDONLY);
    assert!(openat(&p("watched/ignored/s.txt"), libc::O_RDONLY) >= 0);
    let r_write = openat(&p("plain/r.txt"), libc::O_WRONLY);
    assert!(openat(&p("ignored/x.txt"), libc::O_WRONLY | libc::O_CREAT) >= 0);
    std::fs::create_dir(p("ignored/sub")).unwrap();
    std::fs::remove_file(p("ignored/x.txt")).unwrap();
    let r_rewatched = openat(
        &p("ignored/but-watched/y.txt"),
        libc::O_WRONLY | libc::O_CREAT,
    );
    let r_rewatched_read = openat(&p("ignored/but-watched/y.txt"), libc::O_RDONLY);
    // watch_writes inside an ignored tree: modifications are reported, reads are not.
    let r_carved = openat(&p("ignored/writes/w.txt"), libc::O_WRONLY | libc::O_CREAT);
    assert!(openat(&p("ignored/writes/w.txt"), libc::O_RDONLY) >= 0);
    // Moving a file out of an ignored tree is reported: either path qualifies.
    std::fs::rename(p("ignored/moved.txt"), p("plain/moved.txt")).unwrap();
    // A symlink is judged by the link's path only, never by its target.
    std::os::unix::fs::symlink(p("plain/r.txt"), p("ignored/ln")).unwrap();
    std::os::unix::fs::symlink(p("ignored/secret"), p("plain/ln")).unwrap();

    let done = agent.stop();
    let me = std::process::id();
    let fs = files(&done.events, me);
    assert!(
        !done.events.iter().any(|e| e["kind"] == "file"
            && e["file"]["path"] == p("plain/r.txt")
            && e["file"]["flags"] == json!(["O_RDONLY"])),
        "no read-only open of the unwatched file is reported"
    );
    let file_stats = done.final_stats["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "file")
        .unwrap();
    assert!(
        file_stats["filtered_kernel"].as_u64().unwrap() >= N,
        "the {N} filtered reads are counted: {file_stats}"
    );
    let read = |result: i64, name: &str| {
        json!({"op": "open", "syscall": "openat", "result": result, "error": errno_name(result),
               "path": p(name), "path_given": p(name), "flags": ["O_RDONLY"], "flags_raw": 0})
    };
    assert!(r_watched >= 0);
    assert_eq!(
        *call(&fs, "openat", &p("watched/w.txt")),
        read(r_watched, "watched/w.txt")
    );
    assert_eq!(r_watched_missing, -2);
    assert_eq!(
        *call(&fs, "openat", &p("watched/missing.txt")),
        read(-2, "watched/missing.txt"),
        "failed reads of watched paths are reported too"
    );
    assert!(
        !mentions(&done.events, &p("watched/ignored/s.txt")),
        "an ignored prefix inside a watched one wins"
    );
    let write = call(&fs, "openat", &p("plain/r.txt"));
    assert_eq!(
        (&write["flags"], &write["result"]),
        (&json!(["O_WRONLY"]), &json!(r_write))
    );
    for ignored in ["ignored/x.txt", "ignored/sub", "ignored/ln"] {
        assert!(
            !mentions(&done.events, &p(ignored)),
            "{ignored} is below an ignored prefix"
        );
    }
    let rewatched: Vec<&Value> = fs
        .iter()
        .copied()
        .filter(|e| e["path"] == p("ignored/but-watched/y.txt"))
        .collect();
    assert_eq!(
        rewatched.iter().map(|e| &e["flags"]).collect::<Vec<_>>(),
        [&json!(["O_WRONLY", "O_CREAT"]), &json!(["O_RDONLY"])],
        "a watched prefix inside an ignored one wins"
    );
    assert_eq!(
        (&rewatched[0]["result"], &rewatched[1]["result"]),
        (&json!(r_rewatched), &json!(r_rewatched_read))
    );
    let carved: Vec<&Value> = fs
        .iter()
        .copied()
        .filter(|e| e["path"] == p("ignored/writes/w.txt"))
        .collect();
    assert_eq!(
        carved
            .iter()
            .map(|e| (&e["flags"], &e["result"]))
            .collect::<Vec<_>>(),
        [(&json!(["O_WRONLY", "O_CREAT"]), &json!(r_carved))],
        "watch_writes reports the create below an ignored prefix, not the read"
    );
    let moved = the(&fs, "rename out of ignored/", |e| {
        e["op"] == "rename" && e["path"] == p("ignored/moved.txt")
    });
    assert_eq!(
        (&moved["new_path"], &moved["result"]),
        (&json!(p("plain/moved.txt")), &json!(0))
    );
    let link = the(&fs, "symlink in plain/", |e| {
        e["op"] == "symlink" && e["path"] == p("plain/ln")
    });
    assert_eq!(link["target"], p("ignored/secret"));
}

/// The filter must decide on the path the event reports (absolute, `.`, `..` and `//`
/// resolved), or a reader of a watched file escapes it by naming it differently.
#[test]
fn the_filter_decides_on_the_resolved_path() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = real(tmp.path());
    let p = |name: &str| format!("{d}/{name}");
    for dir in ["plain", "watched", "ignored"] {
        std::fs::create_dir_all(p(dir)).unwrap();
    }
    std::fs::write(p("watched/w.txt"), b"x").unwrap();
    let rootfd = open_dir("/");
    let agent = Agent::start_with_config(Some(&filter_config(&d)), &[]);

    let dotdot = p("plain/../watched/w.txt");
    let doubled = format!("{d}//watched/w.txt");
    let dotted = format!("{d}/./watched/w.txt");
    for given in [&dotdot, &doubled, &dotted] {
        assert!(openat(given, libc::O_RDONLY) >= 0);
    }
    // Relative to "/" (a process whose cwd is /, or a dirfd on /).
    let rel_to_root = p("watched/w.txt")[1..].to_owned();
    let c = cs(&rel_to_root);
    // SAFETY: raw openat on a valid C string and our own dirfd.
    let r = unsafe { sys!(libc::SYS_openat, rootfd, c.as_ptr(), libc::O_RDONLY) };
    assert!(r >= 0);
    close(r);
    let cat = Command::new("cat")
        .arg(&rel_to_root)
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(cat.success());
    // And the other way: a write below an ignored prefix named through an unignored one.
    let hidden = p("plain/../ignored/z.txt");
    assert!(openat(&hidden, libc::O_WRONLY | libc::O_CREAT) >= 0);
    close(rootfd.into());

    let done = agent.stop();
    let watched: Vec<&Value> = done
        .events
        .iter()
        .filter(|e| e["kind"] == "file" && e["file"]["path"] == p("watched/w.txt"))
        .map(|e| &e["file"])
        .collect();
    let mut missing = Vec::new();
    for given in [&dotdot, &doubled, &dotted, &rel_to_root] {
        let n = watched
            .iter()
            .filter(|f| f["path_given"] == given.as_str())
            .count();
        // The in-process openat and cat both read rel_to_root.
        let want = if **given == rel_to_root { 2 } else { 1 };
        if n != want {
            missing.push(format!("read of {given}: {n} events, want {want}"));
        }
    }
    if mentions(&done.events, &p("ignored/z.txt")) {
        missing.push(format!(
            "write of {hidden} reported although below {d}/ignored/"
        ));
    }
    assert!(
        missing.is_empty(),
        "the filter judged the path as given, not as resolved:\n{}",
        missing.join("\n")
    );
}
