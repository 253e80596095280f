//! vigil-rules through its public API: load Falco rules, evaluate synthetic Vigil events.

mod common;
mod enforce;
mod errors;
mod fields;
mod fuzz;
mod language;
mod network;
mod operators;
mod outputs;
