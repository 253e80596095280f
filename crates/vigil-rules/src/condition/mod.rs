//! Falco condition syntax: the tree, the lexer and the parser.

pub(crate) mod ast;
mod lex;
mod parser;

pub use lex::SyntaxError;
pub(crate) use parser::{parse, parse_field_prefix};
