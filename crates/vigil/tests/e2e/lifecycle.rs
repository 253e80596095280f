//! Fork, thread creation and exit (code, signal, lifetime); the agent's own activity is never
//! reported; `--events` filters what is printed.

use std::process::Command;

use crate::harness::*;

#[test]
fn fork_and_exit_carry_parent_code_and_signal() {
    if !require_root() {
        return;
    }
    let cg = TestCgroup::new();
    let agent = Agent::start(&[]);
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", "/bin/true & wait; exit 7"]);
    cg.enter(&mut sh);
    let mut sh = sh.spawn().unwrap();
    let sh_pid = sh.id();
    assert_eq!(sh.wait().unwrap().code(), Some(7));

    let mut sleeper = Command::new("/bin/sleep");
    sleeper.arg("30");
    cg.enter(&mut sleeper);
    let mut sleeper = sleeper.spawn().unwrap();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    let done = agent.stop();
    let forks = in_cgroup(&done.events, "fork", cg.id);
    let child_fork = forks
        .iter()
        .find(|f| f["fork"]["parent_pid"] == sh_pid)
        .unwrap_or_else(|| panic!("no fork by the shell in {forks:#?}"));
    assert_eq!(child_fork["fork"]["thread"], false);
    assert_eq!(child_fork["process"]["ppid"], sh_pid);
    assert_eq!(child_fork["ancestry"][0]["pid"], sh_pid);
    let child = child_fork["process"]["pid"].as_u64().unwrap() as u32;

    let exits = in_cgroup(&done.events, "exit", cg.id);
    let exit_of = |pid: u32| {
        exits
            .iter()
            .find(|e| e["process"]["pid"] == pid)
            .unwrap_or_else(|| panic!("no exit of {pid} in {exits:#?}"))
    };
    let sh_exit = exit_of(sh_pid);
    assert_eq!(sh_exit["exit"]["code"], 7);
    assert!(sh_exit["exit"]["signal"].is_null());
    assert!(sh_exit["exit"]["lifetime_ns"].as_u64().unwrap() > 0);
    assert_eq!(
        sh_exit["process"]["exe"],
        std::fs::canonicalize("/bin/sh").unwrap().to_str().unwrap()
    );
    assert_eq!(exit_of(child)["exit"]["code"], 0);
    assert_eq!(
        exit_of(child)["process"]["exe"],
        std::fs::canonicalize("/bin/true")
            .unwrap()
            .to_str()
            .unwrap()
    );
    let killed = exit_of(sleeper.id());
    assert_eq!(killed["exit"]["signal"], 9);
    assert!(killed["exit"]["code"].is_null());
    assert_eq!(killed["exit"]["core_dumped"], false);
}

#[test]
fn threads_are_reported_only_when_enabled() {
    if !require_root() {
        return;
    }
    let spawn_thread = || {
        std::thread::spawn(|| {
            // SAFETY: gettid has no preconditions.
            unsafe { libc::gettid() as u32 }
        })
        .join()
        .unwrap()
    };
    let agent = Agent::start_with_config(Some("threads: true\n"), &[]);
    let tid = spawn_thread();
    let done = agent.stop();
    let me = std::process::id();
    let f = done
        .events
        .iter()
        .find(|e| e["kind"] == "fork" && e["process"]["tid"] == tid)
        .unwrap_or_else(|| panic!("no thread fork for tid {tid}"));
    assert_eq!(f["fork"]["thread"], true);
    assert_eq!(f["process"]["pid"], me);

    let agent = Agent::start(&[]);
    let tid = spawn_thread();
    let done = agent.stop();
    assert!(
        !done.events.iter().any(|e| e["process"]["tid"] == tid),
        "threads are off by default"
    );
}

#[test]
fn the_agent_never_reports_itself_and_events_filter_applies() {
    if !require_root() {
        return;
    }
    let cg = TestCgroup::new();
    let agent = Agent::start(&["--events", "exec"]);
    let mut cmd = Command::new("/bin/true");
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());
    let done = agent.stop();
    assert!(
        done.events.iter().all(|e| e["kind"] == "exec"),
        "only exec was asked for"
    );
    assert_eq!(in_cgroup(&done.events, "exec", cg.id).len(), 1);
    assert!(by_pid(&done.events, "exec", done.pid).is_empty());
    assert!(
        done.events.iter().all(|e| e["process"]["pid"] != done.pid),
        "the agent reported itself"
    );
    let kinds = done.final_stats["kinds"].as_array().unwrap();
    let exit = kinds.iter().find(|k| k["kind"] == "exit").unwrap();
    assert!(
        exit["filtered_output"].as_u64().unwrap() >= 1,
        "exits were seen and counted as filtered"
    );
    assert!(
        done.stderr.contains("stats: exec[generated="),
        "exit summary in the log"
    );
}

#[test]
fn a_failing_output_loses_counted_events_and_the_others_keep_flowing() {
    if !require_root() {
        return;
    }
    let cg = TestCgroup::new();
    let agent = Agent::start(&["--output", "file:/dev/full"]);
    let mut cmd = Command::new("/bin/true");
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());
    let done = agent.stop();
    assert_eq!(
        in_cgroup(&done.events, "exec", cg.id).len(),
        1,
        "the healthy output got it"
    );
    let kinds = done.final_stats["kinds"].as_array().unwrap();
    let exec = kinds.iter().find(|k| k["kind"] == "exec").unwrap();
    assert!(exec["dropped_sink_error"].as_u64().unwrap() >= 1, "{exec}");
    assert!(
        done.stderr.contains("write failed, events lost"),
        "{}",
        done.stderr
    );
}

/// Fairness: a cgroup flooding file events spends its own budget, not the others'.
#[test]
fn a_noisy_cgroup_is_held_to_its_budget_and_a_quiet_one_loses_nothing() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("w");
    std::fs::create_dir(&watched).unwrap();
    std::fs::write(watched.join("f"), "x").unwrap();
    let config = format!(
        "file:\n  watch: [{}/]\nbudget:\n  events_per_sec: 200\n  burst: 200\nsyscalls: false\nnetwork: {{enabled: false}}\n",
        watched.display()
    );
    let agent = Agent::start_with_config(Some(&config), &["--events", "file"]);
    let noisy = TestCgroup::new();
    let quiet = TestCgroup::new();
    // The noisy one: ~1 s of shell redirections, each an open of the watched file (no exec).
    let mut flood = std::process::Command::new("/bin/sh");
    flood.arg("-c").arg(format!(
        "end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do i=0; while [ $i -lt 500 ]; do : < {0}/f; i=$((i+1)); done; done",
        watched.display()
    ));
    noisy.enter(&mut flood);
    let mut flood = flood.spawn().unwrap();
    // The quiet one, meanwhile: 50 opens (no exec), well within its own budget.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut calm = std::process::Command::new("/bin/sh");
    calm.arg("-c").arg(format!(
        "i=0; while [ $i -lt 50 ]; do : < {0}/f; i=$((i+1)); done",
        watched.display()
    ));
    quiet.enter(&mut calm);
    assert!(calm.status().unwrap().success());
    assert!(flood.wait().unwrap().success());
    let done = agent.stop();

    let opens = |cg: &TestCgroup| {
        in_cgroup(&done.events, "file", cg.id)
            .into_iter()
            .filter(|e| {
                e["file"]["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/w/f"))
            })
            .count()
    };
    assert_eq!(opens(&quiet), 50, "the quiet cgroup lost nothing");
    let noisy_seen = opens(&noisy);
    let drops = done.final_stats["budget_drops"]
        .as_array()
        .expect("budget_drops in the final stats")
        .iter()
        .find(|d| d["cgroup_id"] == noisy.id)
        .map(|d| d["dropped"].as_u64().unwrap())
        .expect("the noisy cgroup lost events to its budget");
    assert!(drops > 0);
    // About 2 s at 200/s plus the burst: far fewer than it produced.
    assert!(noisy_seen <= 1000, "noisy events delivered: {noisy_seen}");
    assert!(done.final_stats["budget_drops"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["cgroup_id"] != quiet.id));
    let file = done.final_stats["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "file")
        .unwrap();
    assert!(file["dropped_budget"].as_u64().unwrap() >= drops);
}
