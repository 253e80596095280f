//! Where events go: JSON lines (stdout, files) and the HTTP API.

mod activity;
pub mod alert;
pub mod api;
pub mod json;
mod network;
pub use network::IpNames;
pub mod sink;
mod text;
