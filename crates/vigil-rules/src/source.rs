//! Where things are in the rules file text, for error messages.
//!
//! serde_yaml gives values without positions, so the text is scanned: top-level sequence
//! entries (`- rule: ...`) give each item's line, and a position inside a condition string is
//! mapped back to the file by walking the condition's characters through the source lines,
//! which works for plain, quoted, folded (`>`) and literal (`|`) scalars. When the walk
//! disagrees with the text (an unusual escape), callers fall back to the item's line.

/// Line numbers (1-based) of the top-level sequence entries of every document, in order.
pub(crate) fn item_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut seq_col: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("---") || line.starts_with("...") {
            seq_col = None;
            continue;
        }
        let trimmed = line.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('%') {
            continue;
        }
        let col = line.len() - trimmed.len();
        let entry = trimmed == "-" || trimmed.starts_with("- ") || trimmed.starts_with("-\t");
        match seq_col {
            None if entry => {
                seq_col = Some(col);
                out.push(n + 1);
            }
            Some(c) if entry && col == c => out.push(n + 1),
            _ => {}
        }
    }
    out
}

/// The line of each of `count` items: from the scan when it found exactly that many entries,
/// otherwise the first line at or after the previous item that mentions the item's name.
pub(crate) fn assign_lines(text: &str, names: &[Option<String>]) -> Vec<usize> {
    let scanned = item_lines(text);
    if scanned.len() == names.len() {
        return scanned;
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut prev = 1;
    names
        .iter()
        .map(|name| {
            if let Some(name) = name {
                if let Some(i) = (prev - 1..lines.len()).find(|i| lines[*i].contains(name.as_str()))
                {
                    prev = i + 1;
                }
            }
            prev
        })
        .collect()
}

/// The 1-based column of the first key of the item starting at `line` (after `- `).
pub(crate) fn item_column(text: &str, line: usize) -> usize {
    text.lines()
        .nth(line.saturating_sub(1))
        .map_or(1, key_column)
}

/// The 1-based column of the first key on an item's first line.
pub(crate) fn key_column(l: &str) -> usize {
    let after_dash = l.trim_start().strip_prefix('-').unwrap_or(l.trim_start());
    let key = after_dash.trim_start();
    l[..l.len() - key.len()].chars().count() + 1
}

/// Maps byte `offset` of `value` (the scalar under `key` in the item spanning `lines`) to a
/// (line, column) of the file, both 1-based.
pub(crate) fn locate(
    text: &str,
    lines: (usize, usize),
    key: &str,
    value: &str,
    offset: usize,
) -> Option<(usize, usize)> {
    let src: Vec<&str> = text.lines().collect();
    let (start, end) = (lines.0.max(1), lines.1.min(src.len() + 1));
    let prefix = format!("{key}:");
    let key_line = (start..end).find(|l| {
        let t = src[l - 1].trim_start();
        let t = t.strip_prefix("- ").map_or(t, str::trim_start);
        t.starts_with(&prefix)
    })?;
    // Source cursor: (line index 0-based, byte in line).
    let first = src[key_line - 1];
    let mut line = key_line - 1;
    let mut byte = first.find(&prefix)? + prefix.len();
    let rest = first[byte..].trim_start();
    byte = first.len() - rest.len();
    let mut quote = None;
    if rest.starts_with(['>', '|']) {
        line += 1;
        byte = 0;
    } else if rest.starts_with(['"', '\'']) {
        quote = rest.chars().next();
        byte += 1;
    }
    let target = value
        .char_indices()
        .find(|(i, c)| *i >= offset && !c.is_whitespace())
        .map(|(i, _)| i);
    let mut last = (line, byte);
    for (i, c) in value.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        // Advance to the next non-blank source character.
        loop {
            let l = src.get(line)?;
            match l[byte..].chars().next() {
                None => {
                    line += 1;
                    byte = 0;
                    if line + 1 >= end {
                        return None;
                    }
                }
                Some(s) if s.is_whitespace() => byte += s.len_utf8(),
                Some('\\') if quote == Some('"') && c != '\\' => byte += 1,
                Some('\'')
                    if quote == Some('\'') && c == '\'' && l[byte + 1..].starts_with('\'') =>
                {
                    byte += 1;
                    break;
                }
                Some(s) if s == c => break,
                Some(_) => return None,
            }
        }
        if Some(i) == target {
            return Some((line + 1, src[line][..byte].chars().count() + 1));
        }
        byte += c.len_utf8();
        last = (line, byte);
    }
    // The offset is past the last non-blank character: point just after it.
    Some((last.0 + 1, src.get(last.0)?[..last.1].chars().count() + 1))
}

/// 1-based character column of byte `offset` in `s`.
pub(crate) fn column_of(s: &str, offset: usize) -> usize {
    let mut o = offset.min(s.len());
    while !s.is_char_boundary(o) {
        o -= 1;
    }
    s[..o].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# comment
- list: a
  items: [x, y]

- macro: m
  condition: proc.name = x
- rule: R
  desc: d
  condition: >
    evt.type = execve and
    proc.name in (a, b
  output: o
  priority: INFO
- rule: Q
  condition: \"proc.name = 'x' and oops\"
";

    #[test]
    fn finds_items() {
        assert_eq!(item_lines(DOC), [2, 5, 7, 14]);
        assert_eq!(
            item_lines("---\n- a: 1\n---\n  - b: 2\n  - c: 3\n"),
            [2, 4, 5]
        );
        assert_eq!(item_column(DOC, 7), 3);
    }

    #[test]
    fn maps_condition_offsets() {
        let folded = "evt.type = execve and proc.name in (a, b\n";
        let off = folded.find("in (").unwrap();
        assert_eq!(
            locate(DOC, (7, 14), "condition", folded, off),
            Some((11, 15))
        );
        // Past the end: just after the last character.
        assert_eq!(
            locate(DOC, (7, 14), "condition", folded, folded.len()),
            Some((11, 23))
        );
        let quoted = "proc.name = 'x' and oops";
        let off = quoted.find("oops").unwrap();
        assert_eq!(
            locate(DOC, (14, 16), "condition", quoted, off),
            Some((15, 35))
        );
        let plain = "proc.name = x";
        assert_eq!(locate(DOC, (5, 7), "condition", plain, 12), Some((6, 26)));
        assert_eq!(locate(DOC, (5, 7), "condition", "other text", 0), None);
        assert_eq!(column_of("aé b", 4), 4);
    }
}
