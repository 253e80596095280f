//! In-kernel enforcement: the generic programs of `enforce.bpf.c`, the maps that encode the
//! rules in force, and their pins in bpffs, which keep them in force while no agent runs.
//!
//! Each install loads a fresh object, fills its maps, attaches the hooks the rules need and pins
//! everything under `<pin dir>/<generation>/`; only then are older generations unpinned (their
//! links go away with their last pin), so protection never lapses during a reload or restart.

use std::collections::{HashMap, HashSet};
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject, RingBufferBuilder};
use vigil_abi::{
    EnfCfg, EnfNetKey, EnfProc, EnfRule, PrefixKey, VIGIL_DIM_EXE, VIGIL_DIM_UID,
    VIGIL_DIM_WORKLOAD, VIGIL_ENF_NAME_MAX, VIGIL_ENF_PATH_MAX, VIGIL_ENF_RULES_MAX,
    VIGIL_HOOK_BIND, VIGIL_HOOK_CONNECT, VIGIL_HOOK_EXEC, VIGIL_HOOK_OPEN_WRITE,
    VIGIL_HOOK_SENDMSG,
};

use crate::skel::enforce::{EnforceSkel, EnforceSkelBuilder};

/// Where enforcement is pinned unless configured otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/vigil/enforce";

/// A path condition: the whole path, or everything below a prefix (plain bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathEntry {
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
}

impl PathEntry {
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            PathEntry::Exact(p) => path == p.as_slice(),
            PathEntry::Prefix(p) => path.starts_with(p),
        }
    }
}

/// One rule as the kernel enforces it. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforceRule {
    pub name: String,
    /// `enum vigil_enf_hook`.
    pub hook: u32,
    pub audit: bool,
    /// Destination (connect, sendmsg) or local (bind) networks: address and prefix length.
    pub nets: Vec<(IpAddr, u8)>,
    pub ports: Vec<u16>,
    /// IPPROTO_TCP or IPPROTO_UDP; `None`: both.
    pub protocol: Option<u8>,
    /// Exec: the executed file; open for writing: the opened file.
    pub paths: Vec<PathEntry>,
    pub uids: Vec<u32>,
    /// The acting process's executable (network and open rules).
    pub exe: Vec<PathEntry>,
    /// Limited to some workloads: in force only in the cgroups [`Enforcement::set_workload`]
    /// names for it (and below them).
    pub scoped: bool,
}

/// Settings that are not rules.
#[derive(Debug, Clone)]
pub struct EnforceSettings {
    pub pin_dir: PathBuf,
    /// Kills allowed per second, all rules together; beyond, kills are reported, not done.
    pub kills_per_sec: u32,
    /// Executables never killed or denied.
    pub allow: Vec<PathEntry>,
}

/// Why enforcement could not be installed. The previous generation, if any, stays in force.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error("{0} rules with actions; at most {max} can be enforced at once", max = VIGIL_ENF_RULES_MAX)]
    TooManyRules(usize),
    #[error("rule `{rule}`: {what}")]
    Rule { rule: String, what: String },
    #[error("{stage}: {source}")]
    Bpf {
        stage: String,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn bpf(stage: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> EnforceError {
    let stage = stage.into();
    move |source| EnforceError::Bpf { stage, source }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnforceError + '_ {
    move |source| EnforceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Records an earlier generation left in its ring buffer (produced while no agent read them),
/// with the names of that generation's rules.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub records: Vec<Vec<u8>>,
    pub names: HashMap<(u32, u32), String>,
}

/// Enforcement installed by this agent.
pub struct Enforcement {
    skel: EnforceSkel<'static>,
    generation: u32,
    dir: PathBuf,
}

impl std::fmt::Debug for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcement")
            .field("generation", &self.generation)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn storage() -> &'static mut MaybeUninit<OpenObject> {
    Box::leak(Box::new(MaybeUninit::uninit()))
}

impl Enforcement {
    /// Puts `rules` in force and returns what earlier generations left unread. On error,
    /// whatever was in force before stays in force.
    pub fn install(
        rules: &[EnforceRule],
        settings: &EnforceSettings,
    ) -> Result<(Enforcement, Leftovers), EnforceError> {
        if rules.len() > VIGIL_ENF_RULES_MAX as usize {
            return Err(EnforceError::TooManyRules(rules.len()));
        }
        let old = generations(&settings.pin_dir);
        let generation = old.iter().map(|(g, _)| *g).max().unwrap_or(0) + 1;
        let open = EnforceSkelBuilder::default()
            .open(storage())
            .map_err(bpf("opening the enforcement object"))?;
        let mut skel = open
            .load()
            .map_err(bpf("loading the enforcement programs"))?;
        fill(&skel, rules, settings, generation)?;
        let links = attach(&mut skel, rules)?;

        let dir = settings.pin_dir.join(generation.to_string());
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let pinned = pin_all(&mut skel, links, &dir);
        if let Err(e) = pinned {
            let _ = remove_generation(&dir);
            return Err(e);
        }
        // The new generation is in force: drain and retire the older ones.
        let mut leftovers = Leftovers::default();
        for (g, path) in old {
            drain(g, &path, &mut leftovers);
            remove_generation(&path).map_err(io(&path))?;
        }
        Ok((
            Enforcement {
                skel,
                generation,
                dir,
            },
            leftovers,
        ))
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Puts the scoped rules `mask` (bit = rule id) in force for `cgroup_id` and every cgroup
    /// below it; 0 removes the entry.
    pub fn set_workload(&self, cgroup_id: u64, mask: u64) -> Result<(), libbpf_rs::Error> {
        let map = &self.skel.maps.vigil_enf_workload;
        if mask == 0 {
            match map.delete(&cgroup_id.to_ne_bytes()) {
                Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            map.update(&cgroup_id.to_ne_bytes(), &mask.to_ne_bytes(), MapFlags::ANY)
        }
    }

    /// Adds this generation's ring buffer (enforcement reports) to a consumer.
    pub fn add_ring_buffer<'s, 'cb>(
        &'s self,
        builder: &mut RingBufferBuilder<'s, 'cb>,
        cb: impl FnMut(&[u8]) -> i32 + 'cb,
    ) -> Result<(), libbpf_rs::Error>
    where
        'cb: 's,
    {
        builder.add(&self.skel.maps.vigil_enf_events, cb)?;
        Ok(())
    }

    /// Outcome counters: `[lost to a full ring buffer, denied, killed, audit, rate limited,
    /// protected]`.
    pub fn stats(&self) -> Result<[u64; 6], libbpf_rs::Error> {
        outcome_stats(&self.skel.maps.vigil_enf_stats)
    }
}

fn outcome_stats(map: &impl MapCore) -> Result<[u64; 6], libbpf_rs::Error> {
    let mut out = [0u64; 6];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = crate::sensors::sum_percpu(map, i as u32)?;
    }
    Ok(out)
}

/// Generations pinned under `dir`: (number, directory).
fn generations(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    out.sort();
    out
}

fn remove_generation(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        std::fs::remove_file(e.path())?;
    }
    std::fs::remove_dir(dir)
}

/// Removes every pinned generation: nothing is enforced any more. Returns how many there were.
pub fn clear(pin_dir: &Path) -> std::io::Result<usize> {
    let old = generations(pin_dir);
    for (_, path) in &old {
        remove_generation(path)?;
    }
    Ok(old.len())
}

/// One rule of a pinned generation, as `vigil enforce status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleStatus {
    pub id: u32,
    pub name: String,
    pub hook: &'static str,
    pub action: &'static str,
    pub mode: &'static str,
}

/// What is in force, read from the pins alone (no agent needed).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub pin_dir: PathBuf,
    pub generation: u32,
    pub rules: Vec<RuleStatus>,
    /// Attached hooks (pinned links).
    pub hooks: Vec<String>,
    pub network_entries: usize,
    pub path_entries: usize,
    pub denied: u64,
    pub killed: u64,
    pub audited: u64,
    pub rate_limited: u64,
    pub protected: u64,
    pub reports_lost: u64,
}

pub fn hook_name(hook: u32) -> &'static str {
    match hook {
        VIGIL_HOOK_CONNECT => "connect",
        VIGIL_HOOK_SENDMSG => "sendmsg",
        VIGIL_HOOK_BIND => "bind",
        VIGIL_HOOK_EXEC => "exec",
        VIGIL_HOOK_OPEN_WRITE => "open_write",
        _ => "unknown",
    }
}

fn read_rules(rules: &MapHandle) -> Vec<(u32, EnfRule)> {
    (0..VIGIL_ENF_RULES_MAX)
        .filter_map(|id| {
            let v = rules.lookup(&id.to_ne_bytes(), MapFlags::ANY).ok()??;
            let r = EnfRule::read(&v)?;
            (r.in_use != 0).then_some((id, r))
        })
        .collect()
}

fn rule_name(r: &EnfRule) -> String {
    let end = r.name.iter().position(|b| *b == 0).unwrap_or(r.name.len());
    String::from_utf8_lossy(&r.name[..end]).into_owned()
}

/// The newest pinned generation under `pin_dir`, if any.
pub fn status(pin_dir: &Path) -> Result<Option<Status>, EnforceError> {
    let Some((generation, dir)) = generations(pin_dir).pop() else {
        return Ok(None);
    };
    let open = |name: &str| {
        let p = dir.join(name);
        MapHandle::from_pinned_path(&p).map_err(bpf(format!("opening {}", p.display())))
    };
    let rules = read_rules(&open("vigil_enf_rules")?)
        .into_iter()
        .map(|(id, r)| RuleStatus {
            id,
            name: rule_name(&r),
            hook: hook_name(u32::from(r.hook)),
            action: if r.kill != 0 { "kill" } else { "deny" },
            mode: if r.audit != 0 { "audit" } else { "enforce" },
        })
        .collect();
    let mut hooks: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("link_").map(str::to_string)
        })
        .collect();
    hooks.sort();
    let count = |name: &str| -> Result<usize, EnforceError> { Ok(open(name)?.keys().count()) };
    let path_entries =
        count("vigil_enf_exec_path")? + count("vigil_enf_write_path")? + count("vigil_enf_exe")?;
    let s = outcome_stats(&open("vigil_enf_stats")?).map_err(bpf("reading counters"))?;
    Ok(Some(Status {
        pin_dir: pin_dir.to_path_buf(),
        generation,
        rules,
        hooks,
        network_entries: count("vigil_enf_net")?,
        path_entries,
        reports_lost: s[0],
        denied: s[1],
        killed: s[2],
        audited: s[3],
        rate_limited: s[4],
        protected: s[5],
    }))
}

/// Reads what an older generation's ring buffer still holds.
fn drain(generation: u32, dir: &Path, out: &mut Leftovers) {
    let (Ok(ring), Ok(rules)) = (
        MapHandle::from_pinned_path(dir.join("vigil_enf_events")),
        MapHandle::from_pinned_path(dir.join("vigil_enf_rules")),
    ) else {
        return;
    };
    for (id, r) in read_rules(&rules) {
        out.names.insert((generation, id), rule_name(&r));
    }
    let records = std::cell::RefCell::new(Vec::new());
    {
        let mut b = RingBufferBuilder::new();
        let added = b
            .add(&ring, |rec: &[u8]| {
                records.borrow_mut().push(rec.to_vec());
                0
            })
            .is_ok();
        if added {
            if let Ok(rb) = b.build() {
                let _ = rb.consume();
            }
        }
    }
    out.records.extend(records.into_inner());
}

fn bit(id: usize) -> u64 {
    1u64 << id
}

/// `prefixlen` covers hook, protocol and port (32 bits) plus the address bits.
fn net_key(hook: u32, proto: u8, port: u16, net: Option<(IpAddr, u8)>) -> EnfNetKey {
    let mut addr = [0u8; 16];
    let bits = match net {
        None => 0,
        Some((IpAddr::V4(v4), p)) => {
            addr[10] = 0xff;
            addr[11] = 0xff;
            addr[12..].copy_from_slice(&v4.octets());
            96 + u32::from(p.min(32))
        }
        Some((IpAddr::V6(v6), p)) => {
            addr = v6.octets();
            u32::from(p.min(128))
        }
    };
    EnfNetKey {
        prefixlen: 32 + bits,
        hook: hook as u8,
        protocol: proto,
        port: port.to_be(),
        addr: masked(addr, bits),
    }
}

fn masked(mut addr: [u8; 16], bits: u32) -> [u8; 16] {
    for (i, b) in addr.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i as u32 * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    addr
}

/// A trie key for a path condition: exact paths carry their NUL, prefixes do not.
fn path_key(p: &PathEntry) -> Result<(u32, Vec<u8>), String> {
    let (bytes, nul) = match p {
        PathEntry::Exact(b) => (b, true),
        PathEntry::Prefix(b) => (b, false),
    };
    let len = bytes.len() + usize::from(nul);
    if len > VIGIL_ENF_PATH_MAX as usize {
        return Err(format!(
            "path `{}` is longer than the {} bytes the kernel matches",
            String::from_utf8_lossy(bytes),
            VIGIL_ENF_PATH_MAX - 1
        ));
    }
    let mut data = bytes.clone();
    if nul {
        data.push(0);
    }
    Ok(((len * 8) as u32, data))
}

fn path_key_bytes(prefixlen: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(PrefixKey::SIZE);
    b.extend(prefixlen.to_ne_bytes());
    b.extend(data);
    b.resize(PrefixKey::SIZE, 0);
    b
}

/// A longest-prefix-match trie returns one entry: each entry's mask must also carry the bits of
/// every shorter entry that covers it. Entries: (prefix bits, key bytes) -> mask.
fn fold_ancestors<K: Clone + Eq + std::hash::Hash>(
    entries: &HashMap<K, u64>,
    ancestors: impl Fn(&K) -> Vec<K>,
) -> HashMap<K, u64> {
    entries
        .iter()
        .map(|(k, m)| {
            let folded = ancestors(k)
                .iter()
                .filter_map(|a| entries.get(a))
                .fold(*m, |acc, x| acc | x);
            (k.clone(), folded)
        })
        .collect()
}

fn fill(
    skel: &EnforceSkel<'_>,
    rules: &[EnforceRule],
    settings: &EnforceSettings,
    generation: u32,
) -> Result<(), EnforceError> {
    let maps = &skel.maps;
    let mut cfg = EnfCfg::zeroed();
    let mut uids: HashMap<u32, u64> = HashMap::new();
    let mut nets: HashMap<(u32, u8, u16, [u8; 16], u32), u64> = HashMap::new();
    let mut tries: [HashMap<(u32, Vec<u8>), u64>; 3] = Default::default(); // exe, exec, write
    for (id, r) in rules.iter().enumerate() {
        let err = |what: String| EnforceError::Rule {
            rule: r.name.clone(),
            what,
        };
        let mut name = [0u8; VIGIL_ENF_NAME_MAX as usize];
        let n = r.name.len().min(name.len() - 1);
        name[..n].copy_from_slice(&r.name.as_bytes()[..n]);
        let rule = EnfRule {
            hook: r.hook as u8,
            kill: u8::from(matches!(r.hook, VIGIL_HOOK_EXEC | VIGIL_HOOK_OPEN_WRITE)),
            audit: u8::from(r.audit),
            in_use: 1,
            name,
        };
        maps.vigil_enf_rules
            .update(&(id as u32).to_ne_bytes(), &rule.bytes(), MapFlags::ANY)
            .map_err(bpf("writing the rule table"))?;
        if r.audit {
            cfg.audit |= bit(id);
        }
        if r.uids.is_empty() {
            cfg.any[VIGIL_DIM_UID as usize] |= bit(id);
        }
        for u in &r.uids {
            *uids.entry(*u).or_default() |= bit(id);
        }
        if r.exe.is_empty() || r.hook == VIGIL_HOOK_EXEC {
            cfg.any[VIGIL_DIM_EXE as usize] |= bit(id);
        }
        if !r.scoped {
            cfg.any[VIGIL_DIM_WORKLOAD as usize] |= bit(id);
        }
        for p in &r.exe {
            let k = path_key(p).map_err(err)?;
            *tries[0].entry(k).or_default() |= bit(id);
        }
        match r.hook {
            VIGIL_HOOK_EXEC | VIGIL_HOOK_OPEN_WRITE => {
                let t = if r.hook == VIGIL_HOOK_EXEC { 1 } else { 2 };
                for p in &r.paths {
                    let k = path_key(p).map_err(err)?;
                    *tries[t].entry(k).or_default() |= bit(id);
                }
            }
            hook => {
                let protos: Vec<u8> = r.protocol.map_or(vec![0], |p| vec![p]);
                let ports: Vec<u16> = if r.ports.is_empty() {
                    vec![0]
                } else {
                    r.ports.clone()
                };
                let addrs: Vec<Option<(IpAddr, u8)>> = if r.nets.is_empty() {
                    vec![None]
                } else {
                    r.nets.iter().copied().map(Some).collect()
                };
                // A UDP socket connected to the destination sends without naming it, and the
                // sendmsg hook only sees sends that name one: deny its connect() as well.
                let hooks: &[u32] = if hook == VIGIL_HOOK_SENDMSG {
                    &[VIGIL_HOOK_SENDMSG, VIGIL_HOOK_CONNECT]
                } else {
                    &[hook]
                };
                for &hook in hooks {
                    for &proto in &protos {
                        for &port in &ports {
                            for &a in &addrs {
                                let k = net_key(hook, proto, port, a);
                                *nets
                                    .entry((hook, proto, port, k.addr, k.prefixlen))
                                    .or_default() |= bit(id);
                            }
                        }
                    }
                }
            }
        }
    }
    // Network entries: ancestors share (hook, protocol, port) and cover the address.
    let folded = fold_ancestors(&nets, |&(hook, proto, port, addr, plen)| {
        (32..plen)
            .map(|p| (hook, proto, port, masked(addr, p - 32), p))
            .collect()
    });
    for ((hook, proto, port, addr, plen), mask) in folded {
        let k = EnfNetKey {
            prefixlen: plen,
            hook: hook as u8,
            protocol: proto,
            port: port.to_be(),
            addr,
        };
        maps.vigil_enf_net
            .update(&k.bytes(), &mask.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("writing network entries"))?;
    }
    let trie_maps = [
        &maps.vigil_enf_exe,
        &maps.vigil_enf_exec_path,
        &maps.vigil_enf_write_path,
    ];
    for (entries, map) in tries.iter().zip(trie_maps) {
        let folded = fold_ancestors(entries, |(plen, data): &(u32, Vec<u8>)| {
            (0..*plen / 8)
                .map(|n| (n * 8, data[..n as usize].to_vec()))
                .collect()
        });
        for ((plen, data), mask) in folded {
            map.update(
                &path_key_bytes(plen, &data),
                &mask.to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(bpf("writing path entries"))?;
        }
    }
    for p in &settings.allow {
        let (plen, data) = path_key(p).map_err(|what| EnforceError::Rule {
            rule: "enforcement.allow".into(),
            what,
        })?;
        maps.vigil_enf_allow
            .update(&path_key_bytes(plen, &data), &[1], MapFlags::ANY)
            .map_err(bpf("writing the allow-list"))?;
    }
    for (uid, mask) in uids {
        maps.vigil_enf_uid
            .update(&uid.to_ne_bytes(), &mask.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("writing uid scopes"))?;
    }
    seed_processes(skel, rules, settings)?;
    let (tgid, start) = self_identity();
    cfg.agent_tgid = tgid;
    cfg.agent_start_ns = start;
    cfg.generation = generation;
    cfg.kills_per_sec = settings.kills_per_sec;
    maps.vigil_enf_cfg
        .update(&0u32.to_ne_bytes(), &cfg.bytes(), MapFlags::ANY)
        .map_err(bpf("writing the settings"))?;
    Ok(())
}

/// Tags processes that were running before the install (exec tags the rest as they start).
fn seed_processes(
    skel: &EnforceSkel<'_>,
    rules: &[EnforceRule],
    settings: &EnforceSettings,
) -> Result<(), EnforceError> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Ok(());
    };
    for e in dir.flatten() {
        let Some(tgid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(exe) = std::fs::read_link(e.path().join("exe")) else {
            continue;
        };
        let exe = std::os::unix::ffi::OsStrExt::as_bytes(exe.as_os_str());
        let mut tags = EnfProc::zeroed();
        for (id, r) in rules.iter().enumerate() {
            if r.hook != VIGIL_HOOK_EXEC && r.exe.iter().any(|p| p.matches(exe)) {
                tags.exe_mask |= bit(id);
            }
        }
        tags.protected_ = u8::from(settings.allow.iter().any(|p| p.matches(exe)));
        if tags.exe_mask != 0 || tags.protected_ != 0 {
            skel.maps
                .vigil_enf_procs
                .update(&tgid.to_ne_bytes(), &tags.bytes(), MapFlags::ANY)
                .map_err(bpf("tagging running processes"))?;
        }
    }
    Ok(())
}

/// This process's tgid and start time (CLOCK_BOOTTIME ns, as the kernel's task start_time).
fn self_identity() -> (u32, u64) {
    let tgid = std::process::id();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Field 22 (starttime, clock ticks since boot), counted after the ")" that ends comm.
    let ticks = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (tgid, ticks * (1_000_000_000 / hz))
}

/// Attaches the hooks the rules need (a hook no rule uses costs nothing).
fn attach(
    skel: &mut EnforceSkel<'_>,
    rules: &[EnforceRule],
) -> Result<Vec<(&'static str, Link)>, EnforceError> {
    let mut hooks: HashSet<u32> = rules.iter().map(|r| r.hook).collect();
    if hooks.contains(&VIGIL_HOOK_SENDMSG) {
        hooks.insert(VIGIL_HOOK_CONNECT); // see `fill`: connected UDP sockets
    }
    let mut links = Vec::new();
    let progs = &skel.progs;
    if hooks.iter().any(|h| {
        matches!(
            *h,
            VIGIL_HOOK_CONNECT | VIGIL_HOOK_SENDMSG | VIGIL_HOOK_BIND
        )
    }) {
        let root = crate::mounts::cgroup2_mount().ok_or_else(|| EnforceError::Rule {
            rule: "(network rules)".into(),
            what: "cgroup v2 is not mounted".into(),
        })?;
        let dir = std::fs::File::open(&root).map_err(io(&root))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        let cgroup_progs = [
            (VIGIL_HOOK_CONNECT, "connect4", &progs.vigil_enf_connect4),
            (VIGIL_HOOK_CONNECT, "connect6", &progs.vigil_enf_connect6),
            (VIGIL_HOOK_SENDMSG, "sendmsg4", &progs.vigil_enf_sendmsg4),
            (VIGIL_HOOK_SENDMSG, "sendmsg6", &progs.vigil_enf_sendmsg6),
            (VIGIL_HOOK_BIND, "bind4", &progs.vigil_enf_bind4),
            (VIGIL_HOOK_BIND, "bind6", &progs.vigil_enf_bind6),
        ];
        for (hook, name, prog) in cgroup_progs {
            if hooks.contains(&hook) {
                let l = prog
                    .attach_cgroup(fd)
                    .map_err(bpf(format!("attaching cgroup/{name}")))?;
                links.push((name, l));
            }
        }
    }
    let traced = [
        ("exec", &progs.vigil_enf_exec),
        ("exit", &progs.vigil_enf_exit),
    ];
    for (name, prog) in traced {
        links.push((
            name,
            prog.attach().map_err(bpf(format!("attaching {name}")))?,
        ));
    }
    if hooks.contains(&VIGIL_HOOK_OPEN_WRITE) {
        let opens = [
            ("openat", &progs.vigil_enf_openat),
            ("open", &progs.vigil_enf_open),
            ("creat", &progs.vigil_enf_creat),
            ("openat2", &progs.vigil_enf_openat2),
        ];
        for (name, prog) in opens {
            // Not every architecture has every open syscall (arm64 has no open or creat).
            let section = prog.section().to_string_lossy().into_owned();
            if crate::probe::hook_missing(&section).is_some() {
                continue;
            }
            links.push((
                name,
                prog.attach().map_err(bpf(format!("attaching {name}")))?,
            ));
        }
    }
    Ok(links)
}

fn pin_all(
    skel: &mut EnforceSkel<'_>,
    links: Vec<(&'static str, Link)>,
    dir: &Path,
) -> Result<(), EnforceError> {
    for mut m in skel.object_mut().maps_mut() {
        let name = m.name().to_string_lossy().into_owned();
        if name.starts_with("vigil_enf_") {
            m.pin(dir.join(&name))
                .map_err(bpf(format!("pinning {name}")))?;
        }
    }
    for (name, mut l) in links {
        l.pin(dir.join(format!("link_{name}")))
            .map_err(bpf(format!("pinning link {name}")))?;
    }
    Ok(())
}
