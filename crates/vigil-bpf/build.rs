//! Compiles every `bpf/progs/*.bpf.c` with clang into a libbpf-rs skeleton embedded in the crate.
//! The object is also kept in OUT_DIR so the ABI generator and layout test can read its BTF.

use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const PROGS: &[&str] = &[
    "process", "file", "syscalls", "net", "enforce", "probe", "latency",
];

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let includes = ["include", "abi", "lib"].map(|d| format!("-I{}", root.join(d).display()));
    for prog in PROGS {
        let src = root.join("progs").join(format!("{prog}.bpf.c"));
        SkeletonBuilder::new()
            .source(&src)
            .obj(out.join(format!("{prog}.bpf.o")))
            .clang_args(
                includes
                    .iter()
                    .map(String::as_str)
                    .chain(["-Wall", "-Werror"]),
            )
            .build_and_generate(out.join(format!("{prog}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
    }
    println!("cargo:rerun-if-changed={}", root.display());
}
