use vigil_identity::{parse, parse_with, ContainerRef, Hints, Qos, Runtime};

const ID: &str = "4f6c3a1e9b2d8c7f0a5e6b1d2c3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f";
const ID2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const UID: &str = "8b1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f";
const UID_: &str = "8b1c2f4e_3a5d_4c6b_9e7f_0a1b2c3d4e5f";
/// A static pod's UID: the hash of its manifest, no dashes.
const STATIC_UID: &str = "b53dfa9e2dc9b890f7fadb2770857b03";

fn plain(runtime: Runtime, id: &str) -> Option<ContainerRef> {
    Some(ContainerRef {
        runtime,
        id: id.to_owned(),
        pod_uid: None,
        qos: None,
        meta: None,
    })
}

fn in_pod(runtime: Runtime, id: &str, uid: &str, qos: Qos) -> Option<ContainerRef> {
    Some(ContainerRef {
        runtime,
        id: id.to_owned(),
        pod_uid: Some(uid.to_owned()),
        qos: Some(qos),
        meta: None,
    })
}

// ---- Kubernetes, systemd cgroup driver ----

#[test]
fn k8s_systemd_containerd_burstable() {
    let p = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Containerd, ID, UID, Qos::Burstable)
    );
}

#[test]
fn k8s_systemd_crio_besteffort() {
    let p = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope"
    );
    assert_eq!(parse(&p), in_pod(Runtime::CriO, ID, UID, Qos::BestEffort));
}

#[test]
fn k8s_systemd_docker_guaranteed() {
    let p = format!("/kubepods.slice/kubepods-pod{UID_}.slice/docker-{ID}.scope");
    assert_eq!(parse(&p), in_pod(Runtime::Docker, ID, UID, Qos::Guaranteed));
}

#[test]
fn k8s_systemd_guaranteed_containerd() {
    let p = format!("/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope");
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Containerd, ID, UID, Qos::Guaranteed)
    );
}

#[test]
fn k8s_systemd_without_leading_slash() {
    let p = format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Containerd, ID, UID, Qos::Burstable)
    );
}

#[test]
fn k8s_systemd_static_pod_uid() {
    let p = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC_UID}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Containerd, ID, STATIC_UID, Qos::Burstable)
    );
}

#[test]
fn k8s_systemd_kind_cgroup_root() {
    // kind runs the kubelet with --cgroup-root=/kubelet.
    let p = format!(
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Containerd, ID, UID, Qos::BestEffort)
    );
    let g = format!(
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        parse(&g),
        in_pod(Runtime::Containerd, ID, UID, Qos::Guaranteed)
    );
}

#[test]
fn k8s_systemd_crio_crun_container_subcgroup() {
    let p = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{ID}.scope/container"
    );
    assert_eq!(parse(&p), in_pod(Runtime::CriO, ID, UID, Qos::Burstable));
}

#[test]
fn k8s_systemd_crio_conmon_is_not_the_container() {
    let p = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{ID}.scope"
    );
    assert_eq!(parse(&p), None);
}

#[test]
fn k8s_systemd_crio_sandbox_cgroup() {
    // CRI-O's per-sandbox cgroup next to the containers' scopes: named by the sandbox id.
    let p = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{ID2}"
    );
    assert_eq!(parse(&p), in_pod(Runtime::CriO, ID2, UID, Qos::Burstable));
}

#[test]
fn k8s_pod_and_qos_levels_are_not_containers() {
    for p in [
        "/kubepods.slice".to_owned(),
        "/kubepods.slice/kubepods-burstable.slice".to_owned(),
        "/kubepods.slice/kubepods-besteffort.slice".to_owned(),
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"),
        format!("/kubepods.slice/kubepods-pod{UID_}.slice"),
        "/kubepods".to_owned(),
        "/kubepods/burstable".to_owned(),
        format!("/kubepods/burstable/pod{UID}"),
        format!("/kubepods/pod{UID}"),
    ] {
        assert_eq!(parse(&p), None, "{p}");
    }
}

#[test]
fn k8s_systemd_malformed_pod_slice_gives_no_pod() {
    // A pod slice must sit in the slice its name says (systemd enforces it) and carry a
    // well-formed UID; otherwise the container is still found but without a pod.
    for p in [
        // pod slice under the wrong QoS slice
        format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"),
        // UID too short
        format!("/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{ID}.scope", &UID_[..35]),
        // UID with dashes (impossible in a systemd unit name of that shape)
        format!("/kubepods.slice/kubepods-pod{UID}.slice/cri-containerd-{ID}.scope"),
        // not under kubepods
        format!("/system.slice/system-pod{UID_}.slice/cri-containerd-{ID}.scope"),
        // a level between the pod and the container
        format!("/kubepods.slice/kubepods-pod{UID_}.slice/extra.slice/cri-containerd-{ID}.scope"),
    ] {
        assert_eq!(parse(&p), plain(Runtime::Containerd, ID), "{p}");
    }
}

// ---- Kubernetes, cgroupfs driver ----

#[test]
fn k8s_cgroupfs_burstable() {
    let p = format!("/kubepods/burstable/pod{UID}/{ID}");
    assert_eq!(parse(&p), in_pod(Runtime::Unknown, ID, UID, Qos::Burstable));
}

#[test]
fn k8s_cgroupfs_guaranteed() {
    let p = format!("/kubepods/pod{UID}/{ID}");
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Unknown, ID, UID, Qos::Guaranteed)
    );
}

#[test]
fn k8s_cgroupfs_besteffort() {
    let p = format!("/kubepods/besteffort/pod{UID}/{ID}");
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Unknown, ID, UID, Qos::BestEffort)
    );
}

#[test]
fn k8s_cgroupfs_kind_and_static_pod() {
    let p = format!("/kubelet/kubepods/burstable/pod{STATIC_UID}/{ID}");
    assert_eq!(
        parse(&p),
        in_pod(Runtime::Unknown, ID, STATIC_UID, Qos::Burstable)
    );
}

#[test]
fn k8s_cgroupfs_crio_prefix_names_the_runtime() {
    let p = format!("/kubepods/besteffort/pod{UID}/crio-{ID}");
    assert_eq!(parse(&p), in_pod(Runtime::CriO, ID, UID, Qos::BestEffort));
    let conmon = format!("/kubepods/besteffort/pod{UID}/crio-conmon-{ID}");
    assert_eq!(parse(&conmon), None);
}

#[test]
fn k8s_cgroupfs_needs_the_kubepods_shape() {
    for p in [
        format!("/burstable/pod{UID}/{ID}"),
        format!("/kubepods/other/pod{UID}/{ID}"),
        format!("/kubepods/burstable/pod{UID_}/{ID}"),
        format!("/kubepods/burstable/pod{}/{ID}", UID.to_uppercase()),
        format!("/notkubepods/pod{UID}/{ID}"),
        format!("/kubepods/burstable/{ID}"),
    ] {
        assert_eq!(parse(&p), None, "{p}");
    }
}

#[test]
fn k8s_cgroupfs_container_id_must_be_64_hex() {
    for id in [
        &ID[..63],
        &ID.to_uppercase(),
        "mycontainer",
        &format!("{ID}0"),
    ] {
        let p = format!("/kubepods/burstable/pod{UID}/{id}");
        assert_eq!(parse(&p), None, "{p}");
    }
}

// ---- containerd without Kubernetes ----

#[test]
fn containerd_ctr_namespace_paths() {
    assert_eq!(
        parse("/default/mycontainer"),
        plain(Runtime::Containerd, "mycontainer")
    );
    assert_eq!(
        parse(&format!("/k8s.io/{ID}")),
        plain(Runtime::Containerd, ID)
    );
    assert_eq!(parse("moby/redis-1"), plain(Runtime::Containerd, "redis-1"));
    // nerdctl with the cgroupfs driver: containerd's default path, with a 64-hex id.
    assert_eq!(
        parse(&format!("/default/{ID}")),
        plain(Runtime::Containerd, ID)
    );
    // Sub-cgroups still belong to the container.
    assert_eq!(
        parse("/default/mycontainer/sub"),
        plain(Runtime::Containerd, "mycontainer")
    );
}

#[test]
fn containerd_namespace_must_be_known_and_at_the_root() {
    for p in [
        "/myns/mycontainer",
        "/system.slice/default/mycontainer",
        "/default",
        "/default/",
        "/default/bad..name",
        "/default/-lead",
        "/default/sp ace",
        "/Default/mycontainer",
    ] {
        assert_eq!(parse(p), None, "{p}");
    }
    let long = format!("/default/{}", "a".repeat(77));
    assert_eq!(parse(&long), None);
}

#[test]
fn containerd_namespaces_from_hints() {
    let hints = Hints {
        containerd_namespaces: &["myns"],
    };
    assert_eq!(
        parse_with("/myns/web", &hints),
        plain(Runtime::Containerd, "web")
    );
    assert_eq!(parse_with("/default/web", &hints), None);
    let none = Hints {
        containerd_namespaces: &[],
    };
    assert_eq!(parse_with("/default/web", &none), None);
    // Formats that do not depend on the hints are unaffected.
    assert_eq!(
        parse_with(&format!("/system.slice/docker-{ID}.scope"), &none),
        plain(Runtime::Docker, ID)
    );
}

#[test]
fn nerdctl_systemd() {
    assert_eq!(
        parse(&format!("/system.slice/nerdctl-{ID}.scope")),
        plain(Runtime::Containerd, ID)
    );
}

// ---- Docker ----

#[test]
fn docker_systemd() {
    assert_eq!(
        parse(&format!("/system.slice/docker-{ID}.scope")),
        plain(Runtime::Docker, ID)
    );
}

#[test]
fn docker_cgroupfs() {
    assert_eq!(parse(&format!("/docker/{ID}")), plain(Runtime::Docker, ID));
    assert_eq!(parse(&format!("docker/{ID}")), plain(Runtime::Docker, ID));
}

#[test]
fn docker_rootless_systemd() {
    let p = format!("/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope");
    assert_eq!(parse(&p), plain(Runtime::Docker, ID));
}

#[test]
fn docker_cgroupfs_needs_docker_at_the_root_and_a_full_id() {
    for p in [
        format!("/system.slice/docker/{ID}"),
        format!("/docker/{}", &ID[..12]),
        "/docker".to_owned(),
        "/docker/buildkit".to_owned(),
    ] {
        assert_eq!(parse(&p), None, "{p}");
    }
}

#[test]
fn docker_daemon_and_shims_are_host() {
    for p in [
        "/system.slice/docker.service",
        "/system.slice/containerd.service",
        "/system.slice/docker.socket",
        "/system.slice/crio.service",
    ] {
        assert_eq!(parse(p), None, "{p}");
    }
}

// ---- Podman ----

#[test]
fn podman_systemd_rootful() {
    assert_eq!(
        parse(&format!("/machine.slice/libpod-{ID}.scope")),
        plain(Runtime::Podman, ID)
    );
}

#[test]
fn podman_crun_container_subcgroup() {
    assert_eq!(
        parse(&format!("/machine.slice/libpod-{ID}.scope/container")),
        plain(Runtime::Podman, ID)
    );
}

#[test]
fn podman_rootless() {
    let p = format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope");
    assert_eq!(parse(&p), plain(Runtime::Podman, ID));
    assert_eq!(parse(&format!("{p}/container")), plain(Runtime::Podman, ID));
}

#[test]
fn podman_pod_slice() {
    let p = format!("/machine.slice/machine-libpod_pod_{ID2}.slice/libpod-{ID}.scope");
    assert_eq!(parse(&p), plain(Runtime::Podman, ID));
}

#[test]
fn podman_cgroupfs() {
    assert_eq!(
        parse(&format!("/libpod_parent/libpod-{ID}")),
        plain(Runtime::Podman, ID)
    );
    // A pod's containers under the pod's cgroup.
    assert_eq!(
        parse(&format!("/libpod_parent/{ID2}/libpod-{ID}")),
        plain(Runtime::Podman, ID)
    );
}

#[test]
fn podman_quadlet_split() {
    let p = format!("/system.slice/nginx.service/libpod-payload-{ID}");
    assert_eq!(parse(&p), plain(Runtime::Podman, ID));
    let rootless = format!(
        "/user.slice/user-1000.slice/user@1000.service/app.slice/redis.service/libpod-payload-{ID}"
    );
    assert_eq!(parse(&rootless), plain(Runtime::Podman, ID));
    // conmon and the network helpers of a split service.
    assert_eq!(parse("/system.slice/nginx.service/runtime"), None);
    assert_eq!(parse("/system.slice/nginx.service"), None);
}

#[test]
fn podman_conmon_is_not_the_container() {
    for p in [
        format!("/machine.slice/libpod-conmon-{ID}.scope"),
        format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-{ID}.scope"
        ),
        format!("/libpod_parent/libpod-conmon-{ID}"),
        "/libpod_parent/conmon".to_owned(),
        "/libpod_parent".to_owned(),
    ] {
        assert_eq!(parse(&p), None, "{p}");
    }
}

// ---- CRI-O outside Kubernetes ----

#[test]
fn crio_outside_kubernetes() {
    // crictl with a pod sandbox whose cgroup_parent is machine.slice.
    assert_eq!(
        parse(&format!("/machine.slice/crio-{ID}.scope")),
        plain(Runtime::CriO, ID)
    );
    assert_eq!(
        parse(&format!("/machine.slice/crio-conmon-{ID}.scope")),
        None
    );
}

// ---- Nesting ----

#[test]
fn nested_subcgroups_belong_to_the_container() {
    let base = format!("/system.slice/docker-{ID}.scope");
    for sub in [
        "container",
        "init.scope",
        "system.slice/ssh.service",
        "a/b/c/d",
    ] {
        let p = format!("{base}/{sub}");
        assert_eq!(parse(&p), plain(Runtime::Docker, ID), "{p}");
    }
}

#[test]
fn outermost_container_wins() {
    // Docker in Docker, kind: the host's runtime made the outer one.
    let p = format!("/system.slice/docker-{ID}.scope/docker/{ID2}");
    assert_eq!(parse(&p), plain(Runtime::Docker, ID));
    let kind = format!(
        "/system.slice/docker-{ID}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{UID_}.slice/cri-containerd-{ID2}.scope"
    );
    assert_eq!(parse(&kind), plain(Runtime::Docker, ID));
    // A sub-cgroup named like another container, or like conmon, changes nothing.
    let forged = format!("/machine.slice/libpod-{ID}.scope/docker-{ID2}.scope");
    assert_eq!(parse(&forged), plain(Runtime::Podman, ID));
    let hiding = format!("/machine.slice/libpod-{ID}.scope/libpod-conmon-{ID2}.scope");
    assert_eq!(parse(&hiding), plain(Runtime::Podman, ID));
    // A pod slice below a container is not the container's pod.
    let inner =
        format!("/docker/{ID}/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID2}.scope");
    assert_eq!(parse(&inner), plain(Runtime::Docker, ID));
}

// ---- Host ----

#[test]
fn host_paths() {
    for p in [
        "",
        "/",
        "//",
        "/init.scope",
        "/system.slice",
        "/system.slice/ssh.service",
        "/system.slice/systemd-journald.service",
        "/system.slice/system-getty.slice/getty@tty1.service",
        "/user.slice",
        "/user.slice/user-1000.slice/session-3.scope",
        "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-1234.scope",
        "/machine.slice",
        "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope",
        "/machine.slice/systemd-nspawn@web.service",
        "/kubepods.slice/kubepods-burstable.slice",
        "/system.slice/kubelet.service",
    ] {
        assert_eq!(parse(p), None, "{p:?}");
    }
}

#[test]
fn service_names_never_look_like_containers() {
    for p in [
        "/system.slice/docker-compose@web.service",
        "/system.slice/docker-abc.scope",
        &format!("/system.slice/docker-{}.scope", &ID[..63]),
        &format!("/system.slice/docker-{}.scope", ID.to_uppercase()),
        &format!("/system.slice/docker-{ID}.service"),
        &format!("/system.slice/docker-{ID}a.scope"),
        &format!("/system.slice/docker-{ID}.scope.bak"),
        &format!("/system.slice/podman-{ID}.scope"),
        &format!("/system.slice/libpod-{ID}.slice"),
        &format!("/system.slice/{ID}"),
        &format!("/{ID}"),
        "/system.slice/libpod-conmon.scope",
        "/crio-abc",
        "/libpod-123",
    ] {
        assert_eq!(parse(p), None, "{p}");
    }
}

#[test]
fn display() {
    assert_eq!(Runtime::Containerd.to_string(), "containerd");
    assert_eq!(Runtime::CriO.to_string(), "cri-o");
    assert_eq!(Runtime::Docker.to_string(), "docker");
    assert_eq!(Runtime::Podman.to_string(), "podman");
    assert_eq!(Runtime::Unknown.to_string(), "unknown");
    assert_eq!(Qos::Guaranteed.to_string(), "Guaranteed");
    assert_eq!(Qos::Burstable.to_string(), "Burstable");
    assert_eq!(Qos::BestEffort.to_string(), "BestEffort");
}

// ---- Hostile input ----

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whatever `parse` returns must be well-formed.
fn check(path: &str) {
    let Some(c) = parse(path) else { return };
    match c.runtime {
        Runtime::Containerd => assert!(c.id.len() <= 76 && !c.id.is_empty(), "{path:?} -> {c:?}"),
        _ => assert!(
            c.id.len() == 64
                && c.id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{path:?} -> {c:?}"
        ),
    }
    assert_eq!(c.pod_uid.is_some(), c.qos.is_some(), "{path:?}");
    if let Some(uid) = &c.pod_uid {
        assert!(uid.len() == 32 || uid.len() == 36, "{path:?}");
        assert!(!uid.contains('_'), "{path:?}");
    }
    assert!(path.contains(&c.id), "{path:?}");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len)
            .map(|_| match rng.below(4) {
                0 => b'/',
                1 => b"-_.:@\\ \0\n"[rng.below(9)],
                2 => b"0123456789abcdef"[rng.below(16)],
                _ => rng.next() as u8,
            })
            .collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn random_token_paths_never_panic() {
    // Paths built from the pieces the parser looks for, to reach its deeper branches.
    let upper = ID.to_uppercase();
    let tokens: Vec<String> = vec![
        "/".into(),
        "/".into(),
        "kubepods".into(),
        "kubepods.slice".into(),
        "kubepods-burstable".into(),
        "burstable".into(),
        "besteffort".into(),
        "-pod".into(),
        "pod".into(),
        UID.into(),
        UID_.into(),
        STATIC_UID.into(),
        ID.into(),
        ID[..63].into(),
        upper,
        ".slice".into(),
        ".scope".into(),
        "-".into(),
        "_".into(),
        "cri-containerd-".into(),
        "crio-".into(),
        "crio-conmon-".into(),
        "docker".into(),
        "docker-".into(),
        "libpod-".into(),
        "libpod-conmon-".into(),
        "libpod-payload-".into(),
        "nerdctl-".into(),
        "default".into(),
        "k8s.io".into(),
        "é".into(),
        "\u{0}".into(),
        "\u{FFFD}".into(),
    ];
    let mut rng = Rng(42);
    let mut found = 0;
    for _ in 0..50_000 {
        let n = rng.below(14);
        let path: String = (0..n)
            .map(|_| tokens[rng.below(tokens.len())].as_str())
            .collect();
        check(&path);
        if parse(&path).is_some() {
            found += 1;
        }
    }
    assert!(found > 0, "the generator reaches the container branches");
}

#[test]
fn very_long_and_deep_paths() {
    // A long run of components before a container: still found (a container cannot hide by
    // nesting), and in linear time.
    let deep = format!("{}/docker-{ID}.scope", "/a".repeat(200_000));
    assert_eq!(parse(&deep), plain(Runtime::Docker, ID));
    let below = format!("/system.slice/docker-{ID}.scope{}", "/x".repeat(200_000));
    assert_eq!(parse(&below), plain(Runtime::Docker, ID));
    let slashes = "/".repeat(1_000_000);
    assert_eq!(parse(&slashes), None);
    let one = "a".repeat(1_000_000);
    assert_eq!(parse(&one), None);
    let long_scope = format!("/system.slice/docker-{}.scope", "a".repeat(1_000_000));
    assert_eq!(parse(&long_scope), None);
    let long_pod = format!(
        "/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope",
        "_".repeat(100_000)
    );
    assert_eq!(parse(&long_pod), plain(Runtime::CriO, ID));
}

#[test]
fn multibyte_characters_next_to_markers() {
    for p in [
        format!("/kubepods.slice/é-podé.slice/crio-{ID}.scope"),
        format!("/kubepods/burstable/podé/{ID}"),
        "/docker-é.scope".to_owned(),
        format!("/libpod-{}é", &ID[..62]),
        "/é/é".to_owned(),
        format!("/default/é{ID}"),
    ] {
        let _ = parse(&p);
        check(&p);
    }
}
