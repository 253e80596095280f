//! Enrichment state kept in user space: the process table (ancestry for every event, including
//! processes that started before the agent). Container and pod identity will join here.

mod procfs;
mod table;
mod users;

pub use procfs::{clock_ticks, read_process};
pub use table::{Ancestor, Image, ProcInfo, ProcessTable, TableStats};
pub use users::UserDb;
