//! Root tests of the latency sensor: real programs on this kernel, real processes in test cgroups
//! whose syscall, run-queue and block latencies the test itself controls, and the C bucket math
//! checked value by value against `vigil_net::hist`.
//!
//! Workloads run in a process cloned straight into its test cgroup from `Command`'s pre-exec
//! hook (async-signal-safe syscalls only); it exits without exec, so its syscalls are exactly the
//! ones written here. The root tests take one lock, as CPU hogs would disturb sleeps.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use vigil_bpf::latency::{Latency, LatencyConfig, LatencySample, Metric, SyscallClass};
use vigil_net::hist::{bucket_index, bucket_upper, LogHist, BUCKET_COUNT};

/// Root tests must not silently pass without root under CI.
fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI=true and not root: these tests need root"
    );
    eprintln!("skipping: not root");
    false
}

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cgroup v2 directory of this test, removed on drop.
struct TestCgroup {
    path: PathBuf,
    id: u64,
}

impl TestCgroup {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = vigil_bpf::mounts::cgroup2_root().join(format!(
            "vigil-latency-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let id = std::fs::metadata(&path).unwrap().ino();
        TestCgroup { path, id }
    }

    /// Runs `work` in a process born in this cgroup (clone3 with CLONE_INTO_CGROUP, so no
    /// write to cgroup.procs is measured with it); returns once it has exited. `work` must only
    /// make async-signal-safe calls: it runs in a fork of this multi-threaded test.
    fn run(&self, mut work: impl FnMut() + Send + Sync + 'static) {
        /// `CLONE_INTO_CGROUP` from linux/sched.h (libc declares it as a c_int).
        const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
        let dir = std::fs::File::open(&self.path).expect("open the cgroup directory");
        let cgroup = dir.as_raw_fd() as u64;
        let mut cmd = Command::new("/bin/true");
        // SAFETY: the hook (in the forked child) makes async-signal-safe syscalls only and ends
        // with _exit; the grandchild it clones runs `work` and ends with _exit too.
        unsafe {
            cmd.pre_exec(move || {
                let mut args: libc::clone_args = std::mem::zeroed();
                args.flags = CLONE_INTO_CGROUP;
                args.exit_signal = libc::SIGCHLD as u64;
                args.cgroup = cgroup;
                let pid = libc::syscall(
                    libc::SYS_clone3,
                    &args as *const libc::clone_args,
                    std::mem::size_of::<libc::clone_args>(),
                );
                if pid == 0 {
                    work();
                    libc::_exit(0);
                }
                let mut status = 0;
                if pid < 0 || libc::waitpid(pid as libc::pid_t, &mut status, 0) < 0 {
                    libc::_exit(100);
                }
                libc::_exit(if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    100
                })
            });
        }
        // spawn returns once the child has exited (it never execs).
        let status = cmd.spawn().expect("fork").wait().expect("wait");
        drop(dir);
        assert!(status.success(), "workload failed: {status}");
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn sleep_ms(ms: i64) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: ms * 1_000_000,
    };
    // SAFETY: a valid timespec; no remainder wanted.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

fn sample(samples: &[LatencySample], cgroup_id: u64, metric: Metric) -> Option<&LatencySample> {
    samples
        .iter()
        .find(|s| s.cgroup_id == cgroup_id && s.metric == metric)
}

/// Samples in buckets `lo..=hi`.
fn in_buckets(s: &LatencySample, lo: usize, hi: usize) -> u64 {
    s.buckets[lo..=hi.min(BUCKET_COUNT - 1)].iter().sum()
}

/// The kernel's counts as a LogHist (each sample at its bucket's upper bound), for quantiles.
fn hist(s: Option<&LatencySample>) -> LogHist {
    let mut h = LogHist::new();
    for (i, n) in s
        .map(|s| s.buckets.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        h.record_n(bucket_upper(i), *n);
    }
    h
}

fn load(cfg: &LatencyConfig) -> Latency {
    vigil_bpf::mounts::ensure();
    let mut l = Latency::load(cfg).expect("the verifier accepts the latency programs");
    l.attach().expect("the latency programs attach");
    l
}

fn states(l: &Latency) -> Vec<(&str, &str)> {
    l.reports()
        .iter()
        .map(|r| (r.name, r.state.as_str()))
        .collect()
}

#[test]
fn kernel_bucket_math_equals_vigil_net() {
    // Every bucket's bounds, their neighbours, and the extremes.
    let mut values: Vec<u64> = vec![0, 1, 2, 3, 4, 5, 1 << 39, 1 << 40, (1 << 40) + 1, u64::MAX];
    for i in 0..BUCKET_COUNT - 1 {
        let hi = bucket_upper(i);
        values.extend([hi.saturating_sub(1), hi, hi + 1]);
    }
    let dir = std::env::temp_dir().join(format!("vigil-hist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("hist.c");
    let exe = dir.join("hist");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include \"hist.h\"\n\
         int main(void) { unsigned long long v; \
         while (scanf(\"%llu\", &v) == 1) printf(\"%u\\n\", hist__bucket(v)); return 0; }\n",
    )
    .unwrap();
    let bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let cc = Command::new("cc")
        .arg(format!("-I{}", bpf.join("lib").display()))
        .arg(format!("-I{}", bpf.join("abi").display()))
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .args([&exe, &src])
        .output()
        .expect("a C compiler (cc) builds the host copy of hist.h");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let input: String = values.iter().map(|v| format!("{v}\n")).collect();
    let mut child = Command::new(&exe)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let c: Vec<usize> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(c.len(), values.len());
    for (v, got) in values.iter().zip(c) {
        assert_eq!(got, bucket_index(*v), "bucket of {v}");
    }
    assert_eq!(BUCKET_COUNT, vigil_abi::VIGIL_LAT_BUCKETS as usize);
}

#[test]
fn syscall_latencies_land_in_their_class_buckets() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let l = load(&LatencyConfig {
        runq: false,
        block: false,
        ..LatencyConfig::default()
    });
    assert_eq!(
        states(&l),
        [
            ("latency-syscalls", "attached"),
            ("latency-runq", "disabled"),
            ("latency-block", "disabled")
        ]
    );

    // A 20 ms nanosleep: class "other".
    let sleeper = TestCgroup::new();
    sleeper.run(|| sleep_ms(20));
    // A pipe read that a child releases after 50 ms: class "file".
    let reader = TestCgroup::new();
    reader.run(|| {
        let mut fds = [0; 2];
        // SAFETY: pipe, fork, write, read, waitpid and _exit on local buffers.
        unsafe {
            if libc::pipe(fds.as_mut_ptr()) != 0 {
                libc::_exit(101);
            }
            let pid = libc::fork();
            if pid == 0 {
                sleep_ms(50);
                libc::write(fds[1], b"x".as_ptr().cast(), 1);
                libc::_exit(0);
            }
            let mut b = 0u8;
            if libc::read(fds[0], (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(102);
            }
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    });

    let samples = l.read().expect("reading the histograms");
    let other = sample(&samples, sleeper.id, Metric::SyscallOther).expect("sleeper: other");
    let b20 = bucket_index(20_000);
    assert_eq!(
        in_buckets(other, b20 - 1, b20 + 1),
        1,
        "one nanosleep of 20 ms: {other:?}"
    );
    assert_eq!(
        in_buckets(other, b20 + 2, BUCKET_COUNT - 1),
        0,
        "nothing slower: {other:?}"
    );
    assert!(other.sum_us >= 20_000, "{other:?}");
    assert_eq!(other.count, other.buckets.iter().sum::<u64>());
    assert!(sample(&samples, sleeper.id, Metric::SyscallFile).is_none());

    let file = sample(&samples, reader.id, Metric::SyscallFile).expect("reader: file");
    let b50 = bucket_index(50_000);
    assert_eq!(
        in_buckets(file, b50 - 1, b50 + 1),
        1,
        "one pipe read of 50 ms: {file:?}"
    );
    assert_eq!(
        in_buckets(file, b50 + 2, BUCKET_COUNT - 1),
        0,
        "nothing slower: {file:?}"
    );
    assert_eq!(
        file.count, 2,
        "the read, and the grandchild's write: {file:?}"
    );
    assert!(sample(&samples, reader.id, Metric::SyscallNet).is_none());

    // A removed cgroup's histograms can be dropped at once.
    l.forget(sleeper.id).unwrap();
    let after = l.read().unwrap();
    assert!(after.iter().all(|s| s.cgroup_id != sleeper.id));
    assert!(sample(&after, reader.id, Metric::SyscallFile).is_some());
    assert_eq!(l.losses().unwrap(), [0, 0, 0]);
}

#[test]
fn classes_that_are_off_are_not_measured() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let l = load(&LatencyConfig {
        syscall_classes: vec![SyscallClass::File],
        runq: false,
        block: false,
        ..LatencyConfig::default()
    });
    let cg = TestCgroup::new();
    cg.run(|| sleep_ms(5));
    let samples = l.read().unwrap();
    assert!(sample(&samples, cg.id, Metric::SyscallOther).is_none());
    // The same workload with every class on: measured.
    drop(l);
    let l = load(&LatencyConfig {
        runq: false,
        block: false,
        ..LatencyConfig::default()
    });
    cg.run(|| sleep_ms(5));
    let samples = l.read().unwrap();
    assert_eq!(
        sample(&samples, cg.id, Metric::SyscallOther).map(|s| s.count),
        Some(1)
    );
}

/// Busy-loops pinned to CPU 0 until CLOCK_MONOTONIC reaches `until`.
fn hog(until: libc::timespec) {
    // SAFETY: sched_setaffinity and clock_gettime (vDSO) on local values.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            libc::_exit(103);
        }
        let mut now: libc::timespec = std::mem::zeroed();
        loop {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            if (now.tv_sec, now.tv_nsec) >= (until.tv_sec, until.tv_nsec) {
                break;
            }
        }
    }
}

/// Runs `n` CPU hogs on CPU 0 in `cg` for about `secs` seconds, all at once.
fn hogs(cg: &TestCgroup, n: usize, secs: i64) {
    let mut until = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut until) };
    until.tv_sec += secs;
    // Each spawn blocks until its child exits: one thread per hog.
    std::thread::scope(|s| {
        for _ in 0..n {
            s.spawn(|| cg.run(move || hog(until)));
        }
    });
}

#[test]
fn run_queue_latency_rises_when_two_hogs_share_a_cpu() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let l = load(&LatencyConfig {
        syscall_classes: vec![],
        runq: true,
        block: false,
        ..LatencyConfig::default()
    });
    assert_eq!(
        states(&l),
        [
            ("latency-syscalls", "disabled"),
            ("latency-runq", "attached"),
            ("latency-block", "disabled")
        ]
    );
    let one = TestCgroup::new();
    hogs(&one, 1, 2);
    let two = TestCgroup::new();
    hogs(&two, 2, 2);
    let samples = l.read().unwrap();
    let h1 = hist(sample(&samples, one.id, Metric::RunQueue));
    let h2 = hist(sample(&samples, two.id, Metric::RunQueue));
    let q = |h: &LogHist, p| h.quantile(p).unwrap_or(0);
    eprintln!(
        "run queue, one hog: n={} p50={} p99={} sum={}us; two hogs: n={} p50={} p99={} sum={}us",
        h1.count(),
        q(&h1, 0.5),
        q(&h1, 0.99),
        h1.sum(),
        h2.count(),
        q(&h2, 0.5),
        q(&h2, 0.99),
        h2.sum()
    );
    // Two hogs on one CPU take turns: each waits about a time slice (ms) every time it runs.
    assert!(h2.count() >= 20, "two hogs must wait their turns: {h2:?}");
    // p99 is not compared: alone, the hog's worst waits are whatever else (a build) ran on
    // CPU 0, which a shared machine does not bound.
    assert!(
        q(&h2, 0.5) >= 1_000 && q(&h2, 0.5) > 2 * q(&h1, 0.5),
        "p50 with two hogs {} vs one {}",
        q(&h2, 0.5),
        q(&h1, 0.5)
    );
    assert!(
        h2.sum() > h1.sum() * 3 / 2,
        "time spent waiting with two hogs {} us vs one {} us",
        h2.sum(),
        h1.sum()
    );
}

/// A loop device over a file on disk, detached and removed on drop.
struct LoopDevice {
    dev: PathBuf,
    file: PathBuf,
}

impl LoopDevice {
    fn new(bytes: usize) -> Self {
        let file = PathBuf::from(format!("/var/tmp/vigil-latency-{}.img", std::process::id()));
        std::fs::write(&file, vec![0x5a; bytes]).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show", "--direct-io=on"])
            .arg(&file)
            .output()
            .expect("losetup (util-linux) runs");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        LoopDevice { dev, file }
    }

    /// Reads completed, from /sys/block/<dev>/stat (the kernel's own count).
    fn reads_completed(&self) -> u64 {
        let name = self.dev.file_name().unwrap().to_str().unwrap();
        let stat = std::fs::read_to_string(format!("/sys/block/{name}/stat")).unwrap();
        stat.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

#[test]
fn block_io_latency_counts_each_direct_read() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    const READS: usize = 16;
    const BLOCK: usize = 4096;
    let dev = LoopDevice::new(READS * BLOCK);
    let l = load(&LatencyConfig {
        syscall_classes: vec![],
        runq: false,
        block: true,
        ..LatencyConfig::default()
    });
    let block = l
        .reports()
        .iter()
        .find(|r| r.name == "latency-block")
        .unwrap();
    assert_eq!(block.state, "attached");
    assert!(
        block.programs.iter().any(|p| p == "vigil_lat_block_start"),
        "requests are charged to their submitter here: {block:?}"
    );

    let cg = TestCgroup::new();
    let path = CString::new(dev.dev.clone().into_os_string().into_vec()).unwrap();
    let layout = std::alloc::Layout::from_size_align(BLOCK, BLOCK).unwrap();
    // SAFETY: a non-zero size; freed below.
    let buf = unsafe { std::alloc::alloc(layout) } as usize;
    assert_ne!(buf, 0);
    let before = dev.reads_completed();
    cg.run(move || {
        // SAFETY: open/pread/close with an aligned buffer of BLOCK bytes allocated before fork.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECT);
            if fd < 0 {
                libc::_exit(104);
            }
            for i in 0..READS {
                let off = (i * BLOCK) as libc::off_t;
                if libc::pread(fd, buf as *mut libc::c_void, BLOCK, off) != BLOCK as isize {
                    libc::_exit(105);
                }
            }
            libc::close(fd);
        }
    });
    let kernel_reads = dev.reads_completed() - before;
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(buf as *mut u8, layout) };

    let samples = l.read().unwrap();
    let s = sample(&samples, cg.id, Metric::Block).expect("block sample for the test cgroup");
    eprintln!(
        "block: {kernel_reads} reads on {}: {s:?}",
        dev.dev.display()
    );
    assert_eq!(kernel_reads, READS as u64, "the device saw each read once");
    assert_eq!(s.count, READS as u64, "one sample per read: {s:?}");
    assert!(
        s.buckets[0] < s.count,
        "latencies are not all under 1 µs: {s:?}"
    );
    assert!(s.sum_us > 0, "{s:?}");
    assert_eq!(l.losses().unwrap(), [0, 0, 0]);
}
