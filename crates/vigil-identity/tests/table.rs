use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use vigil_identity::{IdentityTable, Runtime, TableStats, MAX_SEED_DEPTH};

const ID: &str = "4f6c3a1e9b2d8c7f0a5e6b1d2c3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f";
const UID_: &str = "8b1c2f4e_3a5d_4c6b_9e7f_0a1b2c3d4e5f";
const SEC: u64 = 1_000_000_000;

fn docker(id: &str) -> String {
    format!("/system.slice/docker-{id}.scope")
}

fn hex_id(n: u64) -> String {
    format!("{n:064x}")
}

#[test]
fn insert_and_get() {
    let mut t = IdentityTable::new(8, Duration::from_secs(5));
    assert!(t.is_empty());
    let e = t.insert(100, &docker(ID));
    assert_eq!(e.path, docker(ID));
    assert_eq!(e.container.as_ref().unwrap().runtime, Runtime::Docker);
    t.insert(1, "/");
    t.insert(2, "/system.slice/ssh.service");
    assert_eq!(t.len(), 3);
    assert_eq!(t.container(100).unwrap().id, ID);
    assert_eq!(t.get(2).unwrap().path, "/system.slice/ssh.service");
    assert_eq!(t.get(2).unwrap().container, None);
    assert_eq!(t.container(2), None);
    assert_eq!(t.get(3), None);
}

#[test]
fn insert_replaces() {
    let mut t = IdentityTable::new(2, Duration::from_secs(5));
    t.insert(7, "/system.slice/ssh.service");
    t.insert(7, &docker(ID));
    assert_eq!(t.len(), 1);
    assert_eq!(t.get(7).unwrap().path, docker(ID));
    assert_eq!(t.container(7).unwrap().runtime, Runtime::Docker);
    // Replacing at capacity evicts nothing.
    t.insert(8, "/a");
    t.insert(8, "/b");
    t.insert(7, "/c");
    assert_eq!(t.len(), 2);
    assert_eq!(t.evictions(), 0);
}

#[test]
fn bounded_evicts_oldest_insert() {
    let mut t = IdentityTable::new(3, Duration::from_secs(5));
    for id in 1..=3 {
        t.insert(id, &format!("/s{id}"));
    }
    // Re-inserting 1 makes it the newest.
    t.insert(1, "/s1");
    t.insert(4, "/s4");
    assert_eq!(t.len(), 3);
    assert_eq!(t.evictions(), 1);
    assert!(t.get(2).is_none(), "the oldest insert went");
    assert!(t.get(1).is_some() && t.get(3).is_some() && t.get(4).is_some());
    for id in 5..1005 {
        t.insert(id, &docker(&hex_id(id)));
        assert!(t.len() <= 3);
    }
    assert_eq!(t.len(), 3);
    assert_eq!(t.evictions(), 1001);
    assert_eq!(t.container(1004).unwrap().id, hex_id(1004));
}

#[test]
fn capacity_at_least_one() {
    let mut t = IdentityTable::new(0, Duration::ZERO);
    assert_eq!(t.capacity(), 1);
    t.insert(1, "/a");
    t.insert(2, "/b");
    assert_eq!(t.len(), 1);
    assert_eq!(t.get(2).unwrap().path, "/b");
    assert_eq!(t.evictions(), 1);
}

#[test]
fn remove_is_immediate() {
    let mut t = IdentityTable::new(4, Duration::from_secs(5));
    t.insert(1, &docker(ID));
    let e = t.remove(1).unwrap();
    assert_eq!(e.path, docker(ID));
    assert!(t.get(1).is_none());
    assert!(t.remove(1).is_none());
    assert!(t.is_empty());
}

#[test]
fn retire_keeps_for_the_grace_period() {
    let mut t = IdentityTable::new(8, Duration::from_secs(10));
    t.insert(1, &docker(ID));
    t.insert(2, "/system.slice/ssh.service");
    let t0 = 1_000 * SEC;
    assert!(t.retire(1, t0));
    assert!(!t.retire(99, t0), "unknown id");
    assert!(t.is_retired(1));
    assert!(!t.is_retired(2));

    // Still attributed during the grace period.
    assert_eq!(t.expire(t0 + 9 * SEC), 0);
    assert_eq!(t.container(1).unwrap().id, ID);

    // Retiring again does not extend the deadline.
    assert!(t.retire(1, t0 + 9 * SEC));
    assert_eq!(t.expire(t0 + 10 * SEC - 1), 0);
    assert_eq!(t.expire(t0 + 10 * SEC), 1);
    assert!(t.get(1).is_none());
    assert!(t.get(2).is_some(), "live entries never expire");
    assert_eq!(t.expire(u64::MAX), 0);
    assert_eq!(
        t.stats(),
        TableStats {
            len: 1,
            retired: 0,
            capacity: 8,
            evictions: 0,
            expired: 1,
        }
    );
}

#[test]
fn expire_in_deadline_order() {
    let mut t = IdentityTable::new(8, Duration::from_secs(1));
    for id in 1..=5 {
        t.insert(id, &format!("/s{id}"));
    }
    t.retire(3, 30 * SEC);
    t.retire(1, 10 * SEC);
    t.retire(2, 20 * SEC);
    assert_eq!(t.stats().retired, 3);
    assert_eq!(t.expire(21 * SEC), 2);
    assert!(t.get(1).is_none() && t.get(2).is_none());
    assert!(t.is_retired(3));
    assert_eq!(t.expire(31 * SEC), 1);
    assert_eq!(t.len(), 2);
}

#[test]
fn reinsert_revives_a_retired_id() {
    let mut t = IdentityTable::new(4, Duration::from_secs(1));
    t.insert(5, &docker(ID));
    t.retire(5, 0);
    // The id comes back (a new cgroup with the same id): live again, never expired.
    t.insert(5, "/system.slice/new.service");
    assert!(!t.is_retired(5));
    assert_eq!(t.expire(u64::MAX), 0);
    assert_eq!(t.get(5).unwrap().path, "/system.slice/new.service");
    assert_eq!(t.get(5).unwrap().container, None);
}

#[test]
fn remove_of_a_retired_entry() {
    let mut t = IdentityTable::new(4, Duration::from_secs(1));
    t.insert(5, &docker(ID));
    t.retire(5, 0);
    assert!(t.remove(5).is_some());
    assert_eq!(t.stats().retired, 0);
    assert_eq!(t.expire(u64::MAX), 0);
}

#[test]
fn eviction_prefers_retired_entries() {
    let mut t = IdentityTable::new(3, Duration::from_secs(60));
    t.insert(1, "/oldest");
    t.insert(2, "/b");
    t.insert(3, "/c");
    t.retire(3, 0);
    t.retire(2, 5 * SEC);
    t.insert(4, "/d");
    assert!(t.get(1).is_some(), "the live entry stays although oldest");
    assert!(
        t.get(3).is_none(),
        "the retired entry nearest its deadline goes first"
    );
    assert!(t.get(2).is_some());
    t.insert(5, "/e");
    assert!(t.get(2).is_none());
    t.insert(6, "/f");
    assert!(t.get(1).is_none(), "then the oldest insert");
    assert_eq!(t.evictions(), 3);
    assert_eq!(t.stats().retired, 0);
}

#[test]
fn huge_grace_saturates() {
    let mut t = IdentityTable::new(2, Duration::MAX);
    t.insert(1, "/a");
    t.retire(1, u64::MAX - 1);
    assert_eq!(t.expire(u64::MAX - 1), 0);
    assert_eq!(t.expire(u64::MAX), 1);
}

#[test]
fn namespaces_of_the_table() {
    let mut t = IdentityTable::with_namespaces(4, Duration::ZERO, ["myns".to_owned()]);
    t.insert(1, "/myns/web");
    t.insert(2, "/default/web");
    assert_eq!(t.container(1).unwrap().runtime, Runtime::Containerd);
    assert_eq!(t.container(1).unwrap().id, "web");
    assert_eq!(t.container(2), None);
    let mut d = IdentityTable::new(4, Duration::ZERO);
    assert_eq!(
        d.insert(2, "/default/web").container.as_ref().unwrap().id,
        "web"
    );
}

// ---- seed_from_dir ----

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "vigil-identity-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

#[test]
fn seed_from_a_cgroup_like_tree() {
    let tmp = TempDir::new();
    let root = &tmp.0;
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    let dirs = [
        "system.slice/ssh.service".to_owned(),
        format!("system.slice/docker-{ID}.scope"),
        format!("{pod}/cri-containerd-{ID}.scope"),
        "user.slice/user-1000.slice/session-3.scope".to_owned(),
    ];
    for d in &dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    // cgroup interface files and a symbolic link are not cgroups.
    fs::write(root.join("cgroup.procs"), "1\n").unwrap();
    fs::write(root.join("system.slice/cgroup.procs"), "").unwrap();
    std::os::unix::fs::symlink(root.join("system.slice"), root.join("link")).unwrap();

    let mut t = IdentityTable::new(64, Duration::from_secs(5));
    let n = t.seed_from_dir(root).unwrap();
    // root, system.slice, ssh.service, docker scope, kubepods.slice, burstable, pod,
    // cri-containerd scope, user.slice, user-1000.slice, session-3.scope
    assert_eq!(n, 11);
    assert_eq!(t.len(), 11);

    assert_eq!(t.get(ino(root)).unwrap().path, "/");
    assert_eq!(
        t.get(ino(&root.join("system.slice/ssh.service")))
            .unwrap()
            .path,
        "/system.slice/ssh.service"
    );
    let d = t
        .container(ino(&root.join(format!("system.slice/docker-{ID}.scope"))))
        .unwrap();
    assert_eq!((d.runtime, d.id.as_str()), (Runtime::Docker, ID));
    let c = t
        .container(ino(&root.join(format!("{pod}/cri-containerd-{ID}.scope"))))
        .unwrap();
    assert_eq!(c.runtime, Runtime::Containerd);
    assert_eq!(
        c.pod_uid.as_deref(),
        Some("8b1c2f4e-3a5d-4c6b-9e7f-0a1b2c3d4e5f")
    );
    assert!(t.get(ino(&root.join("cgroup.procs"))).is_none());
    assert!(t.get(ino(&root.join("link"))).is_none());
}

#[test]
fn seed_depth_is_bounded() {
    let tmp = TempDir::new();
    let mut deep = tmp.0.clone();
    let mut inos = vec![ino(&deep)];
    for i in 1..=MAX_SEED_DEPTH + 3 {
        deep.push(format!("d{i}"));
        fs::create_dir(&deep).unwrap();
        inos.push(ino(&deep));
    }
    let mut t = IdentityTable::new(64, Duration::ZERO);
    assert_eq!(t.seed_from_dir(&tmp.0).unwrap(), MAX_SEED_DEPTH + 1);
    for (depth, i) in inos.iter().enumerate() {
        assert_eq!(
            t.get(*i).is_some(),
            depth <= MAX_SEED_DEPTH,
            "depth {depth}"
        );
    }
    let last = t.get(inos[MAX_SEED_DEPTH]).unwrap();
    assert_eq!(last.path.matches('/').count(), MAX_SEED_DEPTH);
    assert!(last.path.ends_with(&format!("/d{MAX_SEED_DEPTH}")));
}

#[test]
fn seed_past_capacity_evicts() {
    let tmp = TempDir::new();
    for i in 0..20 {
        fs::create_dir(tmp.0.join(format!("c{i}"))).unwrap();
    }
    let mut t = IdentityTable::new(8, Duration::ZERO);
    assert_eq!(t.seed_from_dir(&tmp.0).unwrap(), 21);
    assert_eq!(t.len(), 8);
    assert_eq!(t.evictions(), 13);
}

#[test]
fn seed_errors_only_for_the_root() {
    let tmp = TempDir::new();
    let mut t = IdentityTable::new(8, Duration::ZERO);
    assert!(t.seed_from_dir(&tmp.0.join("missing")).is_err());
    let file = tmp.0.join("file");
    fs::write(&file, "").unwrap();
    assert!(t.seed_from_dir(&file).is_err());
    assert!(t.is_empty());
}

#[test]
fn seed_the_real_cgroup_mount_when_there_is_one() {
    // Read-only; skipped quietly where /sys/fs/cgroup is not a readable cgroup v2 mount.
    let root = Path::new("/sys/fs/cgroup");
    if !root.join("cgroup.controllers").exists() {
        return;
    }
    let mut t = IdentityTable::new(1 << 20, Duration::ZERO);
    let n = t.seed_from_dir(root).unwrap();
    assert!(n >= 1);
    // The root cgroup's id is its inode number (1 when this is the host's hierarchy).
    assert_eq!(t.get(ino(root)).unwrap().path, "/");
}
