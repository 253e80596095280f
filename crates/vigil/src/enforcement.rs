//! Rules with actions, put in force in the kernel, and what the kernel reports back; plus
//! `vigil enforce status|clear`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use vigil_abi::{
    VIGIL_HOOK_BIND, VIGIL_HOOK_CONNECT, VIGIL_HOOK_EXEC, VIGIL_HOOK_OPEN_WRITE, VIGIL_HOOK_SENDMSG,
};
use vigil_bpf::enforce::{self, EnforceRule, EnforceSettings, Enforcement, Leftovers, PathEntry};
use vigil_events::enforce::{Enforce, Outcome};
use vigil_events::net::{ConnPhase, Role};
use vigil_events::{Conn, Event, Exec, File, Header, Kind, UdpFlow};
use vigil_rules::enforce::{Hook, Mode, PathMatch, Plan, L4};
use vigil_rules::RuleSet;

use crate::config::EnforcementConfig;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

fn path(p: &PathMatch) -> PathEntry {
    match p {
        PathMatch::Exact(b) => PathEntry::Exact(b.clone()),
        PathMatch::Prefix(b) => PathEntry::Prefix(b.clone()),
    }
}

/// A plan as the kernel maps encode it.
pub fn kernel_rule(p: &Plan) -> EnforceRule {
    EnforceRule {
        name: p.rule.clone(),
        hook: match p.hook {
            Hook::Connect => VIGIL_HOOK_CONNECT,
            Hook::Sendmsg => VIGIL_HOOK_SENDMSG,
            Hook::Bind => VIGIL_HOOK_BIND,
            Hook::Exec => VIGIL_HOOK_EXEC,
            Hook::OpenWrite => VIGIL_HOOK_OPEN_WRITE,
        },
        audit: p.mode == Mode::Audit,
        nets: p.nets.iter().map(|n| (n.addr, n.prefix)).collect(),
        ports: p.ports.clone(),
        protocol: p.protocol.map(|l| match l {
            L4::Tcp => IPPROTO_TCP,
            L4::Udp => IPPROTO_UDP,
        }),
        paths: p.paths.iter().map(path).collect(),
        uids: p.uids.clone(),
        exe: p.exe.iter().map(path).collect(),
        scoped: p.scoped(),
    }
}

pub fn settings(cfg: &EnforcementConfig) -> EnforceSettings {
    EnforceSettings {
        pin_dir: cfg.pin_dir.clone(),
        kills_per_sec: cfg.kills_per_sec,
        allow: cfg
            .allow
            .iter()
            .map(|p| {
                if p.ends_with('/') {
                    PathEntry::Prefix(p.as_bytes().to_vec())
                } else {
                    PathEntry::Exact(p.as_bytes().to_vec())
                }
            })
            .collect(),
    }
}

/// Makes the kernel enforce exactly `set`'s plans: installs a new generation, or clears the
/// pins when the rules have no action. On error the previous enforcement stays in force.
pub fn apply(set: &RuleSet, cfg: &EnforcementConfig) -> Result<(Option<Enforcement>, Leftovers)> {
    let plans = set.enforcement();
    if plans.is_empty() {
        let n = enforce::clear(&cfg.pin_dir)
            .with_context(|| format!("removing enforcement pinned at {}", cfg.pin_dir.display()))?;
        if n > 0 {
            tracing::info!("no rule has an action: enforcement removed");
        }
        return Ok((None, Leftovers::default()));
    }
    let rules: Vec<EnforceRule> = plans.iter().map(kernel_rule).collect();
    let (e, leftovers) = Enforcement::install(&rules, &settings(cfg))
        .context("putting enforcement rules in force")?;
    tracing::info!(
        rules = rules.len(),
        generation = e.generation(),
        pinned = %cfg.pin_dir.display(),
        "enforcement in force"
    );
    Ok((Some(e), leftovers))
}

/// The event a report stands for, so that the rule's output fields can be filled in.
pub fn event_for(r: &Enforce) -> Event {
    let header = |kind| Header {
        kind,
        ..r.header.clone()
    };
    let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let addr = r.addr.unwrap_or(unspecified);
    match r.hook {
        VIGIL_HOOK_EXEC => Event::Exec(Exec {
            header: header(Kind::Exec),
            start_time_ns: 0,
            ppid: 0,
            uid: r.uid,
            gid: 0,
            euid: r.uid,
            egid: 0,
            loginuid: None,
            tty_dev: 0,
            comm: r.comm.clone(),
            exe: r.path.clone(),
            exe_truncated: false,
            cwd: Vec::new(),
            cwd_truncated: false,
            args: Vec::new(),
            args_truncated: false,
            argc: 0,
        }),
        VIGIL_HOOK_OPEN_WRITE => Event::File(File {
            header: header(Kind::File),
            result: 0,
            syscall: vigil_abi::VIGIL_SYS_OPENAT,
            op: vigil_abi::VIGIL_FOP_OPEN,
            flags: 1,
            mode: 0,
            dirfd: -100,
            dirfd2: -100,
            fd: None,
            uid: r.uid,
            gid: 0,
            length: 0,
            path: r.path.clone(),
            base: Vec::new(),
            path2: Vec::new(),
            base2: Vec::new(),
            truncated: false,
            read_failed: false,
            unfiltered: false,
        }),
        _ if r.protocol == IPPROTO_UDP && r.hook != VIGIL_HOOK_BIND => Event::Udp(UdpFlow {
            header: header(Kind::Udp),
            netns: 0,
            cookie: 0,
            // Rules take the lower port of a flow as the server's: the local end must not win.
            local: SocketAddr::new(unspecified.ip(), u16::MAX),
            remote: addr,
            ipv6: addr.is_ipv6(),
            packets_sent: 0,
            bytes_sent: 0,
            packets_received: 0,
            bytes_received: 0,
            first_ns: r.header.time_ns,
            last_ns: r.header.time_ns,
            comm: r.comm.clone(),
        }),
        hook => {
            let bind = hook == VIGIL_HOOK_BIND;
            Event::Conn(Conn {
                header: header(Kind::Connection),
                phase: if bind {
                    ConnPhase::Accept
                } else {
                    ConnPhase::ConnectFailed
                },
                role: if bind { Role::Server } else { Role::Client },
                cookie: 0,
                netns: 0,
                local: if bind { addr } else { unspecified },
                remote: if bind { unspecified } else { addr },
                ipv6: addr.is_ipv6(),
                connect_latency_ns: None,
                duration_ns: 0,
                bytes_sent: 0,
                bytes_received: 0,
                segs_out: 0,
                segs_in: 0,
                srtt_us: 0,
                retransmits: 0,
                resets_sent: 0,
                resets_received: 0,
                sk_err: if r.outcome == Outcome::Denied {
                    libc::EPERM as u32
                } else {
                    0
                },
                close_reason: None,
                comm: r.comm.clone(),
            })
        }
    }
}

/// `vigil enforce status`: what is pinned, read without an agent.
pub fn status(pin_dir: &Path, json: bool) -> Result<()> {
    let s = enforce::status(pin_dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let Some(s) = s else {
        println!("nothing enforced (no pins under {})", pin_dir.display());
        return Ok(());
    };
    println!(
        "generation {} pinned at {}; hooks: {}",
        s.generation,
        s.pin_dir.display(),
        s.hooks.join(", ")
    );
    println!(
        "entries: {} network, {} path",
        s.network_entries, s.path_entries
    );
    println!(
        "since install: denied={} killed={} audited={} kill_rate_limited={} protected={} reports_lost={}",
        s.denied, s.killed, s.audited, s.rate_limited, s.protected, s.reports_lost
    );
    for r in &s.rules {
        println!(
            "  [{:>2}] {:<10} {:<5} {:<7} {}",
            r.id, r.hook, r.action, r.mode, r.name
        );
    }
    Ok(())
}

/// `vigil enforce clear`: removes every pin; nothing is enforced any more.
pub fn clear(pin_dir: &Path) -> Result<()> {
    let n = enforce::clear(pin_dir)
        .with_context(|| format!("removing pins under {}", pin_dir.display()))?;
    if n == 0 {
        println!("nothing was enforced");
    } else {
        println!("enforcement removed ({n} generation(s) unpinned)");
    }
    Ok(())
}
