//! Root tests of the kernel side: every program passes this kernel's verifier and attaches, and
//! the Rust ABI mirror matches the compiled object's BTF exactly.

use vigil_bpf::abi_gen::{btf_layouts, generate};
use vigil_bpf::{SensorConfig, Sensors, PROCESS_OBJECT};

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

#[test]
fn every_sensor_passes_the_verifier_and_attaches() {
    if !require_root() {
        return;
    }
    vigil_bpf::mounts::ensure();
    let mut s =
        Sensors::load(&SensorConfig::default()).expect("the verifier accepts every program");
    s.attach().expect("every loaded program attaches");
    let states: Vec<(&str, &str)> = s
        .reports()
        .iter()
        .map(|r| (r.name, r.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("process", "attached"),
            ("file", "attached"),
            ("syscalls", "attached"),
            ("net", "attached")
        ]
    );
    let names = s.program_names();
    for p in [
        "vigil_exec",
        "vigil_fork",
        "vigil_exit",
        "vigil_file_openat",
        "vigil_file_renameat2",
        "vigil_sys_setuid",
        "vigil_sys_mount",
        "vigil_sys_io_uring_submit",
        "vigil_sys_execveat",
        "vigil_sys_enter_execveat",
        "vigil_tcp_state",
        "vigil_tcp_destroy",
        "vigil_accept4",
        "vigil_skb_egress",
        "vigil_skb_ingress",
        "vigil_kfree_skb",
        "vigil_cgroup_mkdir",
        "vigil_cgroup_rmdir",
    ] {
        assert!(names.iter().any(|n| n == p), "{p} not loaded: {names:?}");
    }
    // This kernel has no module support: exactly those hooks are reported unavailable.
    let sys = s.reports().iter().find(|r| r.name == "syscalls").unwrap();
    assert_eq!(sys.unavailable.len(), 2, "{:?}", sys.unavailable);
    assert!(
        sys.unavailable.iter().all(|u| u.contains("init_module")),
        "{:?}",
        sys.unavailable
    );
}

#[test]
fn every_probe_program_gets_a_verdict_and_core_hooks_are_supported() {
    if !require_root() {
        return;
    }
    let r = vigil_bpf::probe::run();
    let status = |name: &str| {
        r.hooks
            .iter()
            .chain(&r.helpers)
            .find(|c| c.name == name)
            .map(|c| c.status)
            .unwrap_or_else(|| panic!("{name} not probed"))
    };
    use vigil_bpf::probe::Status::*;
    for hook in [
        "tp_btf",
        "raw_tp",
        "tracepoint",
        "tc",
        "xdp",
        "cgroup_skb",
        "cgroup_sock_addr",
        "bpf_loop",
        "ringbuf",
    ] {
        assert_eq!(status(hook), Supported, "{hook} must work on this kernel");
    }
    // This kernel is built without kprobes and refuses fentry/LSM: they must read as
    // unsupported (the kernel's answer), never as failed (our bug).
    for hook in ["kprobe", "fentry", "lsm"] {
        assert_ne!(status(hook), Failed, "{hook}");
    }
    assert_eq!(r.sensors[0].status, Supported, "{:?}", r.sensors[0]);
}

#[test]
fn rust_abi_matches_btf_of_the_compiled_object() {
    let btf = btf_layouts(PROCESS_OBJECT).expect("BTF of the process object");
    assert!(!btf.is_empty());
    for s in &btf {
        let rust = vigil_abi::LAYOUTS
            .iter()
            .find(|l| l.name == s.name)
            .unwrap_or_else(|| panic!("struct {} has no Rust mirror: run gen-abi", s.name));
        assert_eq!(rust.size, s.size, "size of {}", s.name);
        let rust_fields: Vec<(String, usize)> = rust
            .fields
            .iter()
            .map(|(n, o)| (n.to_string(), *o))
            .collect();
        assert_eq!(rust_fields, s.fields, "fields and offsets of {}", s.name);
    }
    assert_eq!(
        vigil_abi::LAYOUTS.len(),
        btf.len(),
        "Rust has structs the header no longer has"
    );
}

#[test]
fn committed_abi_mirror_is_up_to_date() {
    let fresh = generate(PROCESS_OBJECT).expect("generating the ABI mirror");
    let committed = include_str!("../../vigil-abi/src/generated.rs");
    assert!(
        fresh == committed,
        "crates/vigil-abi/src/generated.rs is stale: run `cargo run -p vigil-bpf --bin gen-abi`"
    );
}

#[test]
fn enforcement_loads_attaches_pins_and_clears() {
    use vigil_bpf::enforce::{self, EnforceRule, EnforceSettings, Enforcement, PathEntry};
    if !require_root() {
        return;
    }
    vigil_bpf::mounts::ensure();
    let pin_dir = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/vigil-kernel-test-{}",
        std::process::id()
    ));
    let settings = EnforceSettings {
        pin_dir: pin_dir.clone(),
        kills_per_sec: 1,
        allow: vec![PathEntry::Prefix(b"/usr/sbin/".to_vec())],
    };
    // Nothing here can match on this machine: a documentation network and a path that does
    // not exist.
    let rules = vec![
        EnforceRule {
            name: "deny docs net".into(),
            hook: vigil_abi::VIGIL_HOOK_CONNECT,
            audit: false,
            nets: vec![("192.0.2.0".parse().unwrap(), 24)],
            ports: vec![9],
            protocol: Some(6),
            paths: vec![],
            uids: vec![65533],
            exe: vec![PathEntry::Exact(b"/nonexistent/client".to_vec())],
            scoped: false,
        },
        EnforceRule {
            name: "kill nonexistent".into(),
            hook: vigil_abi::VIGIL_HOOK_EXEC,
            audit: true,
            nets: vec![],
            ports: vec![],
            protocol: None,
            paths: vec![PathEntry::Prefix(b"/nonexistent/".to_vec())],
            uids: vec![],
            exe: vec![],
            scoped: true,
        },
    ];
    let (first, _) = Enforcement::install(&rules, &settings).expect("installs");
    let (second, leftovers) = Enforcement::install(&rules, &settings).expect("re-installs");
    // Workload scopes are per generation and can be set and removed.
    second.set_workload(1, 0b10).expect("scope written");
    second.set_workload(1, 0).expect("scope removed");
    second.set_workload(1, 0).expect("removing twice is fine");
    assert_eq!(second.generation(), first.generation() + 1);
    assert!(leftovers.records.is_empty());
    let s = enforce::status(&pin_dir).unwrap().expect("pinned");
    assert_eq!(s.generation, second.generation());
    let names: Vec<(&str, &str, &str)> = s
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.hook, r.mode))
        .collect();
    assert_eq!(
        names,
        [
            ("deny docs net", "connect", "enforce"),
            ("kill nonexistent", "exec", "audit")
        ]
    );
    assert_eq!(s.hooks, ["connect4", "connect6", "exec", "exit"]);
    // One generation pinned: the first was retired by the second.
    assert_eq!(std::fs::read_dir(&pin_dir).unwrap().count(), 1);
    drop((first, second));
    assert!(
        enforce::status(&pin_dir).unwrap().is_some(),
        "pins outlive the objects"
    );
    assert_eq!(enforce::clear(&pin_dir).unwrap(), 1);
    assert!(enforce::status(&pin_dir).unwrap().is_none());
    let _ = std::fs::remove_dir(&pin_dir);
}
