//! JSON with comments: `//` and `/* */` comments and trailing commas, removed so that
//! serde_json can parse the rest.
//!
//! A small hand-written lexer rather than a crate or a parser combinator: the
//! `json_comments` crate (0.2.2, its latest release) strips comments but keeps trailing
//! commas, which configs of the ECA editor use; `jsonc-parser` parses into its own tree,
//! so config numbers would no longer go through serde_json (`float_roundtrip`) and errors
//! would no longer carry serde_json's line and column; `nom` would add a dependency for a
//! three-state scanner whose one subtle rule (a comma is trailing only when blanks and
//! comments separate it from `}` or `]`) stays ours to write either way.

/// Removes `//` and `/* */` comments (outside strings) and trailing commas before `}`
/// or `]`. Comments become spaces (newlines kept) so parse errors keep their line and
/// column. An unterminated block comment runs to the end.
///
/// # Examples
///
/// ```
/// use bedrock_converse::client::config::strip_json_comments;
/// let json = strip_json_comments("{\"a\": \"http://x\", // c\n \"b\": [1, 2,], /* d */}");
/// let v: serde_json::Value = serde_json::from_str(&json).unwrap();
/// assert_eq!(v["a"], "http://x");
/// assert_eq!(v["b"][1], 2);
/// ```
pub fn strip_json_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    // Index in `out` of the last comma outside a string with only blanks after it.
    let mut pending_comma: Option<usize> = None;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                pending_comma = None;
                let end = string_end(bytes, i);
                out.extend_from_slice(bytes.get(i..end).unwrap_or_default());
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end =
                    memchr::memchr(b'\n', bytes.get(i..).unwrap_or_default()).map_or(bytes.len(), |n| i + n);
                out.resize(out.len() + (end - i), b' ');
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = block_comment_end(bytes, i);
                let comment = bytes.get(i..end).unwrap_or_default();
                out.extend(comment.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
                i = end;
            }
            b',' => {
                pending_comma = Some(out.len());
                out.push(b',');
                i += 1;
            }
            b'}' | b']' => {
                if let Some(slot) = pending_comma.take().and_then(|at| out.get_mut(at)) {
                    *slot = b' ';
                }
                out.push(b);
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                out.push(b);
                i += 1;
            }
            _ => {
                pending_comma = None;
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced, and strings were copied whole, so the text is still
    // UTF-8; the fallback is never taken.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The index just past the string that opens at `start` (its closing quote), or the end
/// of the text when it is unterminated.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&c) = bytes.get(i) {
        i += 1;
        if c == b'\\' {
            i += 1;
        } else if c == b'"' {
            break;
        }
    }
    i.min(bytes.len())
}

/// The index just past the `*/` closing the block comment that opens at `start`, or the
/// end of the text when it is unterminated.
fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    let body = bytes.get(start + 2..).unwrap_or_default();
    match memchr::memmem::find(body, b"*/") {
        Some(n) => start + 2 + n + 2,
        None => bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn comments_inside_strings_are_kept() {
        let s = strip_json_comments(r#"{"u": "a//b/*c*/", "e": "q\"//x"} // tail"#);
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["u"], "a//b/*c*/");
        assert_eq!(v["e"], "q\"//x");
    }

    #[test]
    fn trailing_commas_and_block_comments() {
        let s = strip_json_comments("{\"a\": [1, /* x */ 2, ], \"b\": {\"c\": 1, // y\n }, }");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"][1], 2);
        assert_eq!(v["b"]["c"], 1);
    }

    #[test]
    fn comma_not_trailing_is_kept() {
        let s = strip_json_comments("[1, 2]");
        assert_eq!(s, "[1, 2]");
        // `[,]` is not rescued into valid JSON beyond the trailing comma rule.
        assert!(serde_json::from_str::<Value>(&strip_json_comments("[1,,]")).is_err());
    }

    #[test]
    fn positions_are_kept() {
        let text = "{/* a\nb */ \"k\": 1, // c\n\"m\": [1,\n],\n}";
        let s = strip_json_comments(text);
        assert_eq!(s.len(), text.len());
        assert_eq!(s, "{    \n     \"k\": 1,     \n\"m\": [1 \n] \n}");
    }

    #[test]
    fn unterminated_pieces_run_to_the_end() {
        assert_eq!(strip_json_comments("[1] /* open\n"), "[1]        \n");
        assert_eq!(strip_json_comments("[1] // open"), "[1]        ");
        assert_eq!(strip_json_comments(r#"["a\"#), r#"["a\"#);
        assert_eq!(strip_json_comments("/*/"), "   ");
    }
}
