//! The syntax tree of a Falco condition, before macros and lists are resolved. Positions are
//! byte offsets into the condition text, kept so that later errors can point at the source.

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `not` and its operand; `pos` is where the `not` is written.
    Not {
        inner: Box<Expr>,
        pos: usize,
    },
    /// A bare identifier: a macro reference.
    Macro {
        name: String,
        pos: usize,
    },
    Check(Check),
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub field: FieldRef,
    pub op: Op,
    pub modifier: Modifier,
    pub rhs: Rhs,
    pub pos: usize,
    /// Offset just after the check's last character (0 when built, not parsed).
    pub end: usize,
}

/// A field, possibly with an argument (`proc.aname[2]`) and transformers (`tolower(...)`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldRef {
    pub name: String,
    pub arg: Option<String>,
    /// Applied innermost first.
    pub transformers: Vec<String>,
    /// A transformer form this engine cannot evaluate (several arguments, literals, an index).
    pub unsupported_transformer: Option<String>,
    pub pos: usize,
}

impl FieldRef {
    /// The field as written without transformers: `proc.aname[2]`.
    pub fn display_name(&self) -> String {
        match &self.arg {
            Some(a) => format!("{}[{}]", self.name, a),
            None => self.name.clone(),
        }
    }
}

/// A literal value as written (quotes removed, escapes applied).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Value {
    pub text: Vec<u8>,
    pub pos: usize,
}

/// The right-hand side of a check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rhs {
    /// `exists`.
    None,
    Value(Value),
    /// `( a, b, ... )`; items naming a list are expanded when compiled.
    List(Vec<Value>),
    /// A bare list name after a list operator: `in shell_binaries`.
    ListName(Value),
    /// `val(field)` or a transformer: compare with another field of the same event.
    Field(FieldRef),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Intersects,
    Pmatch,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    Exists,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::Pmatch => "pmatch",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::Exists => "exists",
        }
    }

    /// Parses an operator as written in an exception's `comps`.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "pmatch" => Op::Pmatch,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "bcontains" => Op::BContains,
            "startswith" => Op::StartsWith,
            "bstartswith" => Op::BStartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "regex" => Op::Regex,
            "exists" => Op::Exists,
            _ => return None,
        })
    }

    /// Operators whose right side is a list.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::Pmatch)
    }
}

/// `startswith anyof (...)`: the operator applied to each list item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modifier {
    None,
    /// Exactly one item matches.
    OneOf,
    AnyOf,
    AllOf,
}

impl Modifier {
    pub fn parse(s: &str) -> Option<Modifier> {
        Some(match s {
            "oneof" => Modifier::OneOf,
            "anyof" => Modifier::AnyOf,
            "allof" => Modifier::AllOf,
            _ => return None,
        })
    }
}
