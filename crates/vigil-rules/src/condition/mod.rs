//! Falco condition syntax: the tree, the lexer and the parser.

pub(crate) mod ast;
mod lex;
mod parser;

pub use lex::SyntaxError;
pub(crate) use parser::{parse, parse_field_prefix};

/// A list item written as one quoted string (`'"10.0.0.0/8"'` in YAML, as Falco's
/// `rfc_1918_addresses`): Falco pastes list items into the condition, where the quotes delimit
/// the value. Its unquoted bytes; `None` for an item that is not one quoted string.
pub(crate) fn unquote_item(item: &str) -> Option<Vec<u8>> {
    let t = item.trim();
    let mut lx = lex::Lexer::new(t);
    let v = lx.quoted().ok()??;
    (lx.i == t.len()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::unquote_item;

    #[test]
    fn quoted_list_items() {
        assert_eq!(unquote_item("\"10.0.0.0/8\""), Some(b"10.0.0.0/8".to_vec()));
        assert_eq!(unquote_item("'a b'"), Some(b"a b".to_vec()));
        assert_eq!(unquote_item("\"a\\x41\""), Some(b"aA".to_vec()));
        assert_eq!(unquote_item("/etc/shadow"), None);
        assert_eq!(unquote_item("\"a\" \"b\""), None);
        assert_eq!(unquote_item("\"open"), None);
    }
}
