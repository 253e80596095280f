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
    Ok(())
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
