//! Absolute paths from what a process passed to a syscall, done lexically in user space.
//!
//! The kernel side sends the path as given plus, for a relative path, the absolute directory it
//! is relative to (cwd or dirfd, read at syscall exit). Joining and normalising here is lexical:
//! `..` removes the previous component even when that component is a symlink, so a path through
//! a symlinked directory can differ from what the kernel opened. docs/events.md lists the cases.

use crate::Bytes;

/// `base` + `/` + `given` (or `given` alone when absolute or no base), with `.`, `..` and
/// repeated slashes removed.
pub fn resolve(base: &[u8], given: &[u8]) -> Bytes {
    let mut parts: Vec<&[u8]> = Vec::new();
    let absolute = given.first() == Some(&b'/');
    let inputs: [&[u8]; 2] = if absolute || base.is_empty() {
        [b"", given]
    } else {
        [base, given]
    };
    for comp in inputs.iter().flat_map(|s| s.split(|b| *b == b'/')) {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if !absolute && base.is_empty() {
        // No base to anchor it (the directory could not be read): keep it relative.
        return parts.join(&b'/');
    }
    let mut out = Vec::with_capacity(base.len() + given.len() + 1);
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn joins_and_normalises() {
        assert_eq!(resolve(b"", b"/etc/passwd"), b"/etc/passwd");
        assert_eq!(resolve(b"/home/a", b"x/../y/./z"), b"/home/a/y/z");
        assert_eq!(resolve(b"/", b"etc//shadow"), b"/etc/shadow");
        assert_eq!(resolve(b"/a/b", b"../../../.."), b"/");
        assert_eq!(resolve(b"/tmp", b"/abs"), b"/abs");
        assert_eq!(resolve(b"", b"rel/x"), b"rel/x");
    }
}
