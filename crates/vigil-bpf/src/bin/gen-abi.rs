//! Regenerates `crates/vigil-abi/src/generated.rs` from the compiled BPF object's BTF.

use std::path::Path;

fn main() {
    let src = match vigil_bpf::abi_gen::generate(vigil_bpf::PROCESS_OBJECT) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gen-abi: {e}");
            std::process::exit(1);
        }
    };
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vigil-abi/src/generated.rs");
    if let Err(e) = std::fs::write(&dest, src) {
        eprintln!("gen-abi: writing {}: {e}", dest.display());
        std::process::exit(1);
    }
    println!("wrote {}", dest.display());
}
