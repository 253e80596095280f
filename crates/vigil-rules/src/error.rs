//! Load errors. A rules file set with any of these fails to load as a whole, so the agent keeps
//! the rules it had; each error names the file, line and column and what is wrong.

use std::fmt;

use crate::condition::SyntaxError;
use crate::matcher::MatcherError;

/// Every hard error found while loading, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// One error at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The item it is about (`rule 'Shell in container'`), when there is one.
    pub item: Option<String>,
    pub kind: ErrorKind,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(item) = &self.item {
            write!(f, "{item}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("YAML syntax error: {0}")]
    Yaml(String),
    #[error("a rules file must be a YAML sequence of items")]
    NotASequence,
    #[error("each item must be a mapping")]
    NotAMapping,
    #[error("missing required key '{0}'")]
    MissingKey(&'static str),
    #[error("'{key}' must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("invalid priority '{0}' (expected one of emergency, alert, critical, error, warning, notice, informational/info, debug)")]
    Priority(String),
    #[error("condition: {kind} (condition column {column})")]
    Syntax { kind: SyntaxError, column: usize },
    #[error("condition: macro '{name}' is not defined (condition column {column})")]
    UndefinedMacro { name: String, column: usize },
    #[error("condition: list '{name}' is not defined (condition column {column})")]
    UndefinedList { name: String, column: usize },
    #[error("condition: {error} (condition column {column})")]
    Matcher { error: MatcherError, column: usize },
    #[error("macro '{0}' uses itself (through {1})")]
    MacroCycle(String, String),
    #[error("list '{0}' contains itself (through {1})")]
    ListCycle(String, String),
    #[error("the condition is too large or nests too deeply once macros and lists are expanded")]
    TooLarge,
    #[error("cannot {how} {kind} '{name}': no {kind} of that name is defined before this item")]
    NotDefined {
        how: &'static str,
        kind: &'static str,
        name: String,
    },
    #[error("'append: true' and 'override' cannot be used together")]
    AppendAndOverride,
    #[error("'override' cannot {how} '{key}'")]
    BadOverride { key: String, how: String },
    #[error("'override' names '{0}' but the item has no '{0}'")]
    OverrideWithoutKey(String),
    #[error("key '{0}' is given without an entry for it under 'override'")]
    KeyWithoutOverride(String),
    #[error("an appended rule must have 'condition' or 'exceptions'")]
    EmptyAppend,
    /// A rule with an `action` whose condition the kernel cannot check. `part` is the test as
    /// written, when the problem is one test; `column` its column in the condition text.
    #[error("cannot enforce in the kernel: {}", enforce_message(.part, .reason, .column))]
    Enforce {
        part: Option<String>,
        reason: String,
        column: Option<usize>,
    },
    #[error("exception '{name}': {problem}")]
    Exception {
        name: String,
        problem: ExceptionProblem,
    },
}

fn enforce_message(part: &Option<String>, reason: &str, column: &Option<usize>) -> String {
    let mut s = match part {
        Some(p) => format!("\"{p}\" ({reason})"),
        None => reason.to_string(),
    };
    if let Some(c) = column {
        s.push_str(&format!(" (condition column {c})"));
    }
    s
}

/// What is wrong with a rule exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExceptionProblem {
    #[error("'fields' is missing")]
    NoFields,
    #[error("'fields' and 'comps' must both be lists or both be single values")]
    ShapeMismatch,
    #[error("'fields' has {fields} entries but 'comps' has {comps}")]
    CompsLength { fields: usize, comps: usize },
    #[error("'{0}' is not a comparison operator")]
    BadComp(String),
    #[error("with a single field, 'comps' must be in, pmatch or intersects (or a modifier form), not '{0}'")]
    SingleFieldComp(String),
    #[error("value {index} has {got} entries but 'fields' has {fields}")]
    TupleLength {
        index: usize,
        got: usize,
        fields: usize,
    },
    #[error("value {0} must be a string with a single field")]
    NotAString(usize),
    #[error("value {0} must be a list (one entry per field)")]
    NotATuple(usize),
    #[error("cannot change 'fields' or 'comps' of an existing exception, only add values")]
    Redefined,
    #[error("{0}")]
    Value(MatcherError),
}
