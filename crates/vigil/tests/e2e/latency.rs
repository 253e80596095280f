//! Latency telemetry end to end: per-container histograms from the kernel, the workload view
//! of the API, and the anomaly detector's alerts on real injected latency.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::identity::random_hex64;

/// A host process in a Docker-style container cgroup (`system.slice/docker-<id>.scope`, which
/// the agent attributes to container `<id>`), sleeping 1 ms per round with `select` (or 8 ms
/// while `<dir>/slow` exists) until `<dir>/stop`: one `pselect6` per round is the whole of its
/// "other" syscall class, so the latency under test is exactly the sleep.
struct Sleeper {
    cgroup: std::path::PathBuf,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Sleeper {
    fn start(id: &str) -> Sleeper {
        let cgroup = std::path::Path::new("/sys/fs/cgroup/unified")
            .join("system.slice")
            .join(format!("docker-{id}.scope"));
        let cgroup = if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
            cgroup
        } else {
            std::path::Path::new("/sys/fs/cgroup/system.slice").join(format!("docker-{id}.scope"))
        };
        std::fs::create_dir_all(&cgroup).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let procs = std::ffi::CString::new(cgroup.join("cgroup.procs").to_str().unwrap()).unwrap();
        let mut cmd = std::process::Command::new("perl");
        cmd.args([
            "-e",
            &format!("until (-e '{d}/stop') {{ select(undef, undef, undef, -e '{d}/slow' ? 0.008 : 0.001) }}"),
        ]);
        // SAFETY: only async-signal-safe calls on pre-built buffers between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("perl (perl-base) is installed");
        Sleeper { cgroup, dir, child }
    }

    fn set(&self, name: &str, on: bool) {
        let p = self.dir.path().join(name);
        if on {
            std::fs::write(p, "").unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.path().join("stop"), "");
        let _ = self.child.wait();
        for _ in 0..100 {
            if std::fs::remove_dir(&self.cgroup).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn anomaly_alerts<'a>(events: &'a [Value], workload: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            e["kind"] == "alert"
                && e["source"] == "latency"
                && e["output_fields"]["vigil.workload"] == workload
        })
        .collect()
}

#[test]
fn injected_latency_raises_one_anomaly_then_one_recovery_and_a_steady_workload_none() {
    if !require_root() {
        return;
    }
    // Only the metric under test (run-queue latency follows whatever else the machine runs), and
    // no flood beside it.
    let _exclusive = exclusive();
    let config = "latency:\n  window_secs: 1\n  syscalls: [other]\n  runq: false\n  block: false\nanomaly:\n  warmup_windows: 6\n  min_samples: 20\n  trigger_windows: 3\n  recover_windows: 3\n  band_rel_floor: 2.0\nnetwork: {enabled: false}\n";
    let agent =
        Agent::start_with_config(Some(config), &["--events", "none", "--api", "127.0.0.1:0"]);
    let addr = agent.api_addr();
    let (slow_id, steady_id) = (random_hex64(), random_hex64());
    let slow = Sleeper::start(&slow_id);
    let steady = Sleeper::start(&steady_id);
    // Warm-up and a steady stretch, then 8x slower sleeps for a few windows, then normal again.
    std::thread::sleep(Duration::from_secs(12));
    slow.set("slow", true);
    std::thread::sleep(Duration::from_secs(6));
    slow.set("slow", false);
    std::thread::sleep(Duration::from_secs(8));

    // The API shows each container as a workload with its syscall latency of the last window.
    let workloads: Value = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /api/v1/workloads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        serde_json::from_str(r.split_once("\r\n\r\n").unwrap().1).unwrap()
    };
    drop((slow, steady));
    let done = agent.stop();

    let (slow_key, steady_key) = (&slow_id[..12], &steady_id[..12]);
    let row = workloads["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"] == steady_key)
        .unwrap_or_else(|| panic!("no row for {steady_key}: {workloads}"));
    let other = &row["latency"]["syscall_other"];
    assert!(other["count"].as_u64().unwrap() >= 20, "{row}");
    // Every "other" syscall of the steady sleeper is its 1 ms select (a loaded machine adds
    // timer slack and scheduling delay to the tail, not to the median).
    let p50 = other["p50_us"].as_u64().unwrap();
    assert!((1000..2500).contains(&p50), "{row}");
    assert!(other["p99_us"].as_u64().unwrap() >= p50, "{row}");
    assert!(row["events"].as_u64().unwrap() > 0);

    let alerts = anomaly_alerts(&done.events, slow_key);
    let summary: Vec<(&Value, &Value, &Value)> = alerts
        .iter()
        .map(|a| {
            (
                &a["rule"],
                &a["output_fields"]["vigil.metric"],
                &a["output"],
            )
        })
        .collect();
    let of = |rule: &str| {
        alerts
            .iter()
            .filter(|a| a["rule"] == rule && a["output_fields"]["vigil.metric"] == "syscall_other")
            .count()
    };
    assert_eq!(of("Latency anomaly"), 1, "{summary:?}");
    assert_eq!(of("Latency recovered"), 1, "{summary:?}");
    let anomaly = alerts
        .iter()
        .find(|a| {
            a["rule"] == "Latency anomaly" && a["output_fields"]["vigil.metric"] == "syscall_other"
        })
        .unwrap();
    assert_eq!(anomaly["priority"], "Warning");
    assert!(
        anomaly["output_fields"]["vigil.current_us"]
            .as_u64()
            .unwrap()
            >= 8000,
        "{anomaly}"
    );
    let steady = anomaly_alerts(&done.events, steady_key);
    assert!(
        steady.is_empty(),
        "{:?}",
        steady.iter().map(|a| &a["output"]).collect::<Vec<_>>()
    );
}

/// One transfer of `bytes` from the client namespace to the server; the client socket's cookie.
fn transfer(lab: &crate::netlab::NetLab, cg: &TestCgroup, port: u16, bytes: usize) -> u64 {
    let to = lab.srv.addr(false, port);
    let mut server = lab.srv.helper(
        None,
        &[
            "tcp-server",
            &format!("listen={to}"),
            &format!("read={bytes}"),
            "write=0",
            "close=after-eof",
        ],
    );
    server.msg("listening");
    let mut client = lab.cli.helper(
        Some(cg),
        &[
            "tcp-client",
            &format!("connect={to}"),
            &format!("send={bytes}"),
            "read=0",
            "close=first",
        ],
    );
    let c = client.msg("connected");
    client.msg("done");
    server.msg("closed");
    client.finish();
    server.finish();
    c["cookie"].as_u64().unwrap()
}

#[test]
fn tcp_rtt_rises_when_the_test_throttles_its_veth() {
    if !require_root() {
        return;
    }
    let agent = Agent::start(&["--events", "connection"]);
    let lab = crate::netlab::NetLab::new();
    let cg = TestCgroup::new();
    const BYTES: usize = 400_000;
    let free = transfer(&lab, &cg, 7101, BYTES);
    // 4 Mbit/s leaving the client: the 400 kB queue behind the shaper is what the RTT sees.
    lab.cli.run(
        "tc",
        &[
            "qdisc",
            "add",
            "dev",
            &lab.cli.dev,
            "root",
            "handle",
            "1:",
            "htb",
            "default",
            "10",
        ],
    );
    lab.cli.run(
        "tc",
        &[
            "class",
            "add",
            "dev",
            &lab.cli.dev,
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            "4mbit",
            "burst",
            "16k",
        ],
    );
    let throttled = transfer(&lab, &cg, 7102, BYTES);
    let done = agent.stop();
    let rtt = |cookie: u64| {
        done.events
            .iter()
            .find(|e| {
                e["kind"] == "connection"
                    && e["connection"]["phase"] == "close"
                    && e["connection"]["cookie"] == cookie
            })
            .and_then(|e| e["connection"]["srtt_us"].as_u64())
            .unwrap_or_else(|| panic!("no close event with an RTT for cookie {cookie}"))
    };
    let (free, throttled) = (rtt(free), rtt(throttled));
    assert!(
        throttled > 10 * free.max(100),
        "RTT free {free} us, throttled {throttled} us"
    );
}
