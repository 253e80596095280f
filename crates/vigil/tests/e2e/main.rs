//! End-to-end tests: the real agent binary, the real BPF programs, real processes started by the
//! test in a cgroup of its own. Run as root (CI does); under CI=true a missing privilege fails.

mod harness;

mod api;
mod config;
mod enforce;
mod exec;
mod faults;
mod identity;
mod kube;
mod latency;
// Both call the legacy syscalls (open, creat, rename, dup2, ...) that only x86-64 has.
#[cfg(target_arch = "x86_64")]
mod file;
mod lifecycle;
mod net;
mod netlab;
mod prometheus;
mod rules;
mod storm;
#[cfg(target_arch = "x86_64")]
mod syscalls;
mod tenancy;
mod top;
mod ui;
mod webdriver;
