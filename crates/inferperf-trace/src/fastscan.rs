//! A validating scanner for the top level of one JSON object, used by the fast paths (merge's
//! byte-level event rewriting): it finds each member's key and value spans in one pass, without
//! allocating, so untouched members can be copied byte for byte.
//!
//! It accepts only what `serde_json` accepts (same grammar: strings without control characters
//! and with valid escapes, numbers without leading zeros, `true`/`false`/`null`, nesting below
//! [`MAX_DEPTH`]) and is stricter in one place: keys with escapes are refused. Whenever it
//! refuses, callers fall back to the general `serde_json` path, which then either handles the
//! input or reports the same error it always did -- so the fast path never changes behaviour.

/// Deepest nesting the scanner follows (serde_json's limit is 128).
pub const MAX_DEPTH: usize = 100;

/// One object member: byte ranges of its key (with the quotes) and of its value, relative to
/// the object's opening brace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Start of the key's opening quote.
    pub key_start: usize,
    /// One past the key's closing quote.
    pub key_end: usize,
    /// Start of the value.
    pub val_start: usize,
    /// One past the value's last byte.
    pub val_end: usize,
}

impl Member {
    /// The key without quotes (keys never contain escapes here).
    pub fn key<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.key_start + 1..self.key_end - 1]
    }

    /// The value's JSON bytes.
    pub fn value<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.val_start..self.val_end]
    }
}

/// Scans `b`, which must be exactly one JSON object (whitespace allowed after it), into
/// `members` (cleared first). Returns false -- leaving `members` unspecified -- when `b` is not
/// valid JSON, or an object key contains an escape, or nesting is too deep.
pub fn scan_object(b: &[u8], members: &mut Vec<Member>) -> bool {
    match scan_object_at(b, 0, members) {
        Some(end) => skip_ws(b, end) == b.len(),
        None => false,
    }
}

/// Like [`scan_object`] for the object starting at `b[start]` (which must be `{`), with any
/// bytes after it: returns the index one past its closing brace. `None` when the object is
/// invalid, refused, or not complete within `b`.
pub fn scan_object_at(b: &[u8], start: usize, members: &mut Vec<Member>) -> Option<usize> {
    members.clear();
    if b.get(start) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_start = i;
        let key_end = skip_string(b, i)?;
        if b[key_start + 1..key_end - 1].contains(&b'\\') {
            return None;
        }
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let val_start = skip_ws(b, i + 1);
        let val_end = skip_value(b, val_start, 1)?;
        members.push(Member {
            key_start: key_start - start,
            key_end: key_end - start,
            val_start: val_start - start,
            val_end: val_end - start,
        });
        i = skip_ws(b, val_end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The first member named `key`.
pub fn find<'m>(b: &[u8], members: &'m [Member], key: &[u8]) -> Option<&'m Member> {
    members.iter().find(|m| m.key(b) == key)
}

/// Index just past any JSON whitespace at `i`.
#[inline]
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i) {
        if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// End of the JSON value starting at `i`, validated; `None` if invalid.
pub fn skip_value(b: &[u8], i: usize, depth: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let mut j = skip_ws(b, i + 1);
            if b.get(j) == Some(&b'}') {
                return Some(j + 1);
            }
            loop {
                if b.get(j) != Some(&b'"') {
                    return None;
                }
                j = skip_ws(b, skip_string(b, j)?);
                if b.get(j) != Some(&b':') {
                    return None;
                }
                j = skip_ws(b, j + 1);
                j = skip_ws(b, skip_value(b, j, depth + 1)?);
                match b.get(j) {
                    Some(b',') => j = skip_ws(b, j + 1),
                    Some(b'}') => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        b'[' => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let mut j = skip_ws(b, i + 1);
            if b.get(j) == Some(&b']') {
                return Some(j + 1);
            }
            loop {
                j = skip_ws(b, skip_value(b, j, depth + 1)?);
                match b.get(j) {
                    Some(b',') => j = skip_ws(b, j + 1),
                    Some(b']') => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        b't' => literal(b, i, b"true"),
        b'f' => literal(b, i, b"false"),
        b'n' => literal(b, i, b"null"),
        b'-' | b'0'..=b'9' => skip_number(b, i),
        _ => None,
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// End of the string whose opening quote is at `i`: no raw control characters, valid escapes
/// (`\u` needs four hex digits; like serde_json, surrogates are checked only when decoding).
pub fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    // Most strings in traces are short: a plain loop beats a SIMD search's setup for them.
    let short_end = b.len().min(j + 32);
    while j < short_end {
        match b[j] {
            b'"' => return Some(j + 1),
            b'\\' => break,
            c if c < 0x20 => return None,
            _ => j += 1,
        }
    }
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', &b[j..])?;
        if b[j..k].iter().any(|&c| c < 0x20) {
            return None;
        }
        if b[k] == b'"' {
            return Some(k + 1);
        }
        match *b.get(k + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j = k + 2,
            b'u' => {
                let hex = b.get(k + 2..k + 6)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                j = k + 6;
            }
            _ => return None,
        }
    }
}

/// End of the number at `i` (JSON grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
pub fn skip_number(b: &[u8], i: usize) -> Option<usize> {
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j)? {
        b'0' => {
            j += 1;
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => j = digits(j + 1),
        _ => return None,
    }
    if b.get(j) == Some(&b'.') {
        let k = digits(j + 1);
        if k == j + 1 {
            return None;
        }
        j = k;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let k = digits(j);
        if k == j {
            return None;
        }
        j = k;
    }
    Some(j)
}

/// A plain non-negative integer literal that fits in an `i64` (serde_json reads these as
/// `Id::Int`); anything else (negative, float, huge, not a number) gives `None`.
#[inline]
pub fn small_uint(v: &[u8]) -> Option<i64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if v.len() > 1 && v[0] == b'0' {
        return None;
    }
    Some(v.iter().fold(0i64, |a, &d| a * 10 + (d - b'0') as i64))
}

/// The contents of a JSON string literal without escapes (`None` for other values or strings
/// with escapes, which need real decoding).
#[inline]
pub fn plain_str(v: &[u8]) -> Option<&str> {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        let inner = &v[1..v.len() - 1];
        if !inner.contains(&b'\\') {
            return std::str::from_utf8(inner).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(s: &str) -> bool {
        let mut m = Vec::new();
        scan_object(s.as_bytes(), &mut m)
    }

    #[test]
    fn agrees_with_serde_json() {
        let cases = [
            r#"{}"#,
            r#"{ }"#,
            r#"{"a":1}"#,
            r#"{ "a" : 1 , "b":[1, 2.5e-3,{"c":null}], "d":"x\"y\u00e9", "e":true,"f":false}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":-0}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":[1}"#,
            r#"{"a":{"b":1]}"#,
            r#"{"a" 1}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}}"#,
            r#"[1]"#,
            r#"{"a":"\ud800"}"#,
        ];
        for c in cases {
            let serde_ok = serde_json::from_str::<serde_json::Value>(c).is_ok()
                || serde_json::from_str::<serde::de::IgnoredAny>(c).is_ok();
            // The scanner may refuse more (escaped keys), never accept more.
            if accepts(c) {
                assert!(serde_ok, "scanner accepted invalid {c:?}");
            }
            if serde_ok && !c.starts_with('[') {
                assert!(accepts(c), "scanner refused valid {c:?}");
            }
        }
    }

    #[test]
    fn member_spans() {
        let s = br#"{ "ph": "X", "args": {"a": [1, 2]} }"#;
        let mut m = Vec::new();
        assert!(scan_object(s, &mut m));
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].key(s), b"ph");
        assert_eq!(m[0].value(s), b"\"X\"");
        assert_eq!(m[1].value(s), br#"{"a": [1, 2]}"#);
        assert_eq!(small_uint(b"123"), Some(123));
        assert_eq!(small_uint(b"-1"), None);
        assert_eq!(plain_str(b"\"cpu_op\""), Some("cpu_op"));
    }

    #[test]
    fn too_deep_is_refused() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(!accepts(&deep));
    }
}
