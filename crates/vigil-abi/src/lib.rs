//! Rust mirror of `bpf/abi/vigil_abi.h`, the kernel/user contract.
//!
//! `generated.rs` is produced from the BTF of the compiled BPF object by
//! `cargo run -p vigil-bpf --bin gen-abi`; a test in vigil-bpf fails when it drifts.
#![no_std]

/// A struct's layout as Rust sees it: checked field by field against BTF.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

mod generated;
pub use generated::*;
