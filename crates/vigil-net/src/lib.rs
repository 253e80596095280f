//! Pure user-space network logic: protocol parsers for the payload the kernel captures, the
//! correlation of requests with responses, the IP -> name cache, and the service map. No I/O.

pub mod dns;
pub mod hist;
pub mod http;
pub mod map;
pub mod names;
pub mod track;
mod types;

pub use types::{ConnPhase, ConnRecord, Direction, NodeKind, Role, Segment, Transport, Workload};
