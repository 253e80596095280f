//! Where events go: JSON lines (stdout, files) and the HTTP API.

mod activity;
pub mod alert;
pub mod api;
pub mod auth;
pub mod json;
pub mod metrics;
mod network;
pub use network::IpNames;
pub mod sink;
pub mod stream;
mod text;
pub mod ui;
