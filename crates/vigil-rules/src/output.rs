//! Rule output templates: `%field` and `%field[arg]` (and transformers such as
//! `%tolower(proc.name)`) are replaced by the field's value, `<NA>` when it is missing.

use std::collections::BTreeMap;

use crate::compile::Compiler;
use crate::condition::parse_field_prefix;
use crate::eval::FieldExpr;
use crate::extract::Ev;

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    /// `key` is the field as written; `field` is `None` when Vigil cannot fill it.
    Field {
        key: String,
        field: Option<FieldExpr>,
    },
}

/// A compiled output format.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Compiles `format`; fields Vigil does not support are reported in `warnings` and render
    /// as `<NA>` (the rule still loads: its condition is what matters for detection).
    pub fn new(format: &str, warnings: &mut Vec<String>) -> Template {
        let format = format.trim_end();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = format;
        while let Some(i) = rest.find('%') {
            text.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            // Falco allows a width before the field (`%12proc.name`); Vigil ignores it.
            let spec = after.trim_start_matches(|c: char| c.is_ascii_digit());
            match parse_field_prefix(spec) {
                Some((f, used)) => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    let key = spec[..used].to_string();
                    let field = match Compiler::output_field(&f) {
                        Ok(fe) => Some(fe),
                        Err(e) => {
                            warnings.push(format!("output: {e}; shown as <NA>"));
                            None
                        }
                    };
                    parts.push(Part::Field { key, field });
                    rest = &spec[used..];
                }
                None => {
                    text.push('%');
                    rest = after;
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Template { parts }
    }

    /// The message and the value of every field it names (JSON `null` when missing).
    pub fn render(&self, ev: &Ev<'_>) -> (String, BTreeMap<String, serde_json::Value>) {
        let mut out = String::new();
        let mut fields = BTreeMap::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { key, field } => {
                    let v = field.as_ref().and_then(|f| f.first(ev));
                    match &v {
                        Some(v) => v.write_text(&mut out),
                        None => out.push_str("<NA>"),
                    }
                    fields.insert(
                        key.clone(),
                        v.map_or(serde_json::Value::Null, |v| v.to_json()),
                    );
                }
            }
        }
        (out, fields)
    }
}
