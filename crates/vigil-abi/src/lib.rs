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

/// Fixed-width integers read from native-endian bytes.
pub trait Scalar: Copy + Default {
    fn read(b: &[u8]) -> Option<Self>;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn read(b: &[u8]) -> Option<Self> {
                Some(<$t>::from_ne_bytes(b.get(..core::mem::size_of::<$t>())?.try_into().ok()?))
            }
        }
    )*};
}
scalar!(u8, u16, u32, u64, i8, i16, i32, i64);

/// Reads `[T; N]` from the front of `b`; `None` if `b` is too short.
pub fn read_array<T: Scalar, const N: usize>(b: &[u8]) -> Option<[T; N]> {
    let mut out = [T::default(); N];
    let size = core::mem::size_of::<T>();
    for (i, v) in out.iter_mut().enumerate() {
        *v = T::read(b.get(i * size..)?)?;
    }
    Some(out)
}

mod generated;
pub use generated::*;
