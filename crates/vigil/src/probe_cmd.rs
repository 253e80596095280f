//! `vigil probe`: what this kernel can do for Vigil, and why not.

use anyhow::Result;
use vigil_bpf::probe::{self, Check, Status};

pub fn probe(json: bool) -> Result<()> {
    vigil_bpf::route_libbpf_logs();
    let r = probe::run();
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("kernel {}", r.kernel);
    println!("\nfilesystems");
    for m in &r.mounts {
        println!("  {:<10} {:<28} {}", m.fs, m.path, m.state);
    }
    section("hooks", &r.hooks);
    section("helpers", &r.helpers);
    section("sensors", &r.sensors);
    section("capabilities", &r.capabilities);
    requirements(&r.requirements);
    Ok(())
}

/// What a deployment must grant (deploy/ does), and whether this process has it now.
fn requirements(r: &probe::Requirements) {
    println!("\nrequirements (granted by deploy/; see docs/deployment.md)");
    for c in &r.capabilities {
        let held = if c.held { "held" } else { "MISSING" };
        println!("  {held:<12} {:<18} {}", c.name, c.why);
    }
    for f in &r.filesystems {
        let access = if f.writable {
            "read-write"
        } else {
            "read-only"
        };
        println!("  {access:<12} {:<18} {} ({})", f.path, f.why, f.fs);
    }
    for c in &r.optional {
        let held = if c.held { "held" } else { "optional" };
        println!("  {held:<12} {:<18} {}", c.name, c.why);
    }
    for n in &r.host_namespaces {
        println!("  {:<12} {:<18} {}", "host ns", n.name, n.why);
    }
    for u in &r.unreadable {
        println!("  {:<12} {u}", "FAILED");
    }
}

fn section(title: &str, checks: &[Check]) {
    println!("\n{title}");
    for c in checks {
        let s = match c.status {
            Status::Supported => "supported",
            Status::Unsupported => "UNSUPPORTED",
            Status::Failed => "FAILED",
        };
        println!("  {s:<12} {:<18} {}", c.name, c.detail);
    }
}
