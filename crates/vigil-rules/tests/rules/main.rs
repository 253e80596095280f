//! vigil-rules through its public API: load Falco rules, evaluate synthetic Vigil events.

mod common;
mod errors;
mod fields;
mod fuzz;
mod language;
mod operators;
mod outputs;
