//! A Falco-compatible rule engine for Vigil's events.
//!
//! [`load`] reads Falco's YAML rules format (lists, macros, rules, exceptions, `append` and
//! `override`) from texts the caller provides, and [`RuleSet::evaluate`] runs the enabled rules
//! on one event with its process-table enrichment. Pure: no I/O, no clocks, no globals beyond
//! immutable tables, so loads and evaluations are deterministic and fuzzable.
//!
//! Falco fields map onto Vigil's events as `vigil-export` presents them (see
//! [`supported_fields`]). A rule that needs something Vigil cannot provide loads disabled, with
//! the reason in [`RuleInfo::disabled_reason`], so that upstream rule files load as a whole.
//!
//! A rule with Vigil's `action:` key is enforced in the kernel instead: its condition is
//! lowered into an [`enforce::Plan`] ([`RuleSet::enforcement`]), or the load fails with the part
//! that the kernel cannot check.

mod args;
mod collect;
mod compile;
mod condition;
mod context;
mod document;
pub mod enforce;
mod error;
mod eval;
mod evtype;
mod exception;
mod extract;
mod fields;
mod glob;
mod index;
mod lower;
mod matcher;
mod output;
mod priority;
mod ruleset;
mod source;
mod value;

pub use condition::SyntaxError;
pub use context::{EvalContext, NameLookup, NoNames};
pub use enforce::{Action, Hook, Mode, Net, PathMatch, Plan, L4};
pub use error::{Diagnostic, ErrorKind, ExceptionProblem, LoadError};
pub use evtype::all_event_types;
pub use fields::{missing_fields, supported_fields};
pub use matcher::MatcherError;
pub use priority::Priority;
pub use ruleset::{load, Alert, LoadOptions, RuleFile, RuleInfo, RuleSet};
