//! Deterministic scenarios for the latency anomaly detector: synthetic but realistic windows
//! (seeded, lognormal jitter) fed through the public API.

mod bench;
mod bounds;
mod gen;
mod scenarios;
