//! Lossless JSON for kernel byte strings (paths, argv, comm), which need not be UTF-8.
//!
//! A valid UTF-8 value is written as a plain JSON string. Otherwise the field holds a readable
//! lossy string (invalid bytes become U+FFFD) and a sibling field `<name>_b64` holds the exact
//! bytes in standard base64. Consumers that need exact bytes read `_b64` when it is present.

use std::borrow::Cow;

use base64::Engine as _;

pub fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// The `_b64` companion of `b`, present only when `b` is not valid UTF-8.
pub fn b64_if_needed(b: &[u8]) -> Option<String> {
    std::str::from_utf8(b)
        .is_err()
        .then(|| base64::engine::general_purpose::STANDARD.encode(b))
}

/// For a list (argv): the `_b64` companion holds every element when any is not UTF-8.
pub fn b64_list_if_needed(items: &[Vec<u8>]) -> Option<Vec<String>> {
    items
        .iter()
        .any(|b| std::str::from_utf8(b).is_err())
        .then(|| {
            items
                .iter()
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
                .collect()
        })
}
