//! The checker against serde_json: whole texts, one-byte mutations, and texts fed in
//! pieces cut anywhere.

use proptest::prelude::*;

use super::{is_one_value, ValueCheck};
use crate::converse::json::string_piece;

fn serde_accepts(s: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

#[test]
fn accepts_values() {
    for s in [
        "{}",
        "[]",
        " {\"a\" : [1, -2.5e+3, 0, 0.0, true, false, null, \"x\\n\\u00e9\\uD83D\\uDE00\"]} ",
        "\"\"",
        "0",
        "-0.1E-9",
        "[[[[{}]]],{\"k\":{\"k\":[]}}]",
        "{\"a\":1,\"b\":{\"c\":\"d\"}}",
        "\t\r\n[1]\n",
        "\"héllo 😀\"",
    ] {
        assert!(is_one_value(s), "{s}");
        assert!(serde_accepts(s), "{s}");
    }
}

#[test]
fn refuses_what_serde_json_refuses() {
    for s in [
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{\"a\":}",
        "{1:2}",
        "[1 2]",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "+1",
        "tru",
        "nul",
        "\"abc",
        "\"a\\x\"",
        "\"a\\u12\"",
        "\"tab\there\"",
        "{} {}",
        "[1]]",
        "[}",
        "{]",
        "\"\\uD83D\"",
        "NaN",
    ] {
        assert!(!is_one_value(s), "{s:?}");
    }
}

#[test]
fn numbers_beyond_f64_defer_to_serde_json() {
    for (text, in_range) in [
        ("1e307", true),
        ("-9.5e307", true),
        ("0.5e308", true),
        ("1e-400", true),
        ("123E305", true),
        // Left to serde_json (which accepts this one): the bound is conservative.
        ("1e308", false),
        ("1e400", false),
        ("1111111E11111111111", false),
        ("[0e999]", false),
        ("{\"a\":10e308}", false),
    ] {
        assert_eq!(is_one_value(text), in_range, "{text}");
        // What the checker accepts, a parse into a value accepts too.
        if in_range {
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok(), "{text}");
        }
    }
    let long = "9".repeat(400);
    assert!(!is_one_value(&long));
    assert!(serde_json::from_str::<serde_json::Value>(&long).is_err());
}

#[test]
fn depth_limit_defers_to_serde_json() {
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert!(!is_one_value(&deep));
    let ok = "[".repeat(128) + &"]".repeat(128);
    assert!(is_one_value(&ok));
}

/// Every prefix, and every one-byte change, of a set of values: whenever the checker
/// accepts, serde_json accepts too; and it accepts every value serde_json accepts
/// that has no lone surrogate and is not too deep.
#[test]
fn agrees_with_serde_json_on_mutations() {
    let seeds = [
        "{\"location\":\"Paris\",\"unit\":\"c\",\"days\":[1,2,3],\"opts\":{\"a\":null,\"b\":true}}",
        "[\"\\\"q\\\"\",\"\\\\\",\"\\/\",\"\\b\\f\\n\\r\\t\",\"\\u0000\",\"\\uD83D\\uDE00\",-1.5e-7,0]",
        " { \"k\" : [ { } , [ ] , \"v\" ] } ",
    ];
    let alphabet = b"{}[]\":,\\ 0123456789-+.eEtrufalsn\tu\x1fD8";
    for seed in seeds {
        let bytes = seed.as_bytes();
        for end in 0..=bytes.len() {
            let Ok(prefix) = std::str::from_utf8(&bytes[..end]) else {
                continue;
            };
            check(prefix);
        }
        for at in 0..bytes.len() {
            for &c in alphabet {
                let mut m = bytes.to_vec();
                m[at] = c;
                if let Ok(s) = std::str::from_utf8(&m) {
                    check(s);
                }
                let mut m = bytes.to_vec();
                m.insert(at, c);
                if let Ok(s) = std::str::from_utf8(&m) {
                    check(s);
                }
                let mut m = bytes.to_vec();
                m.remove(at);
                if let Ok(s) = std::str::from_utf8(&m) {
                    check(s);
                }
            }
        }
    }
}

fn check(s: &str) {
    let ours = is_one_value(s);
    let serde = serde_accepts(s);
    if ours {
        assert!(serde, "accepted what serde_json refuses: {s:?}");
    }
    let lone_surrogate = s.contains("\\uD") || s.contains("\\ud");
    if serde && !lone_surrogate {
        assert!(ours, "refused what serde_json accepts: {s:?}");
    }
}

/// `text` fed in the pieces between `cuts` (moved forward to character boundaries).
fn fed_in_pieces(text: &str, cuts: &[usize]) -> bool {
    let mut check = ValueCheck::new();
    let mut from = 0;
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([text.len()]) {
        let mut cut = cut.min(text.len());
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        if cut > from {
            check.feed(&text[from..cut]);
            from = cut;
        }
    }
    check.accepts()
}

fn string() -> impl Strategy<Value = String> {
    // A raw quote or lone backslash would end the string early: the other invalid
    // pieces (a bad escape, a control character, lone surrogates) stay.
    let piece = string_piece().prop_filter("keeps the string whole", |p| !matches!(*p, "\"" | "\\"));
    prop::collection::vec(piece, 0..6).prop_map(|p| format!("\"{}\"", p.concat()))
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\n\t ", "\r"])
}

/// JSON-like texts: valid values of every kind, written with every escape and
/// some whitespace, with lone surrogates and other refusals mixed in.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
        Just("1e400".to_owned()),
        string(),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            (prop::collection::vec((ws(), inner.clone()), 0..5), ws()).prop_map(|(v, w)| format!(
                "[{w}{}]",
                v.into_iter()
                    .map(|(w, v)| format!("{w}{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            prop::collection::vec((string(), ws(), inner), 0..5).prop_map(|v| {
                let m: Vec<String> = v.into_iter().map(|(k, w, v)| format!("{k}{w}:{w}{v}")).collect();
                format!("{{{}}}", m.join(","))
            }),
        ]
    })
}

/// Whether `text` has an exponent of three digits or more (a number the check may
/// leave to serde_json).
fn long_exponent(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len()).any(|i| {
        let rest = &b[i + 1..];
        let rest = rest
            .strip_prefix(b"-")
            .or_else(|| rest.strip_prefix(b"+"))
            .unwrap_or(rest);
        matches!(b[i], b'e' | b'E') && rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit)
    })
}

/// `text` with at most one byte changed, inserted or removed (when still UTF-8).
fn mutated(text: String, how: u8, at: usize, byte: u8) -> String {
    let mut b = text.clone().into_bytes();
    let at = at % (b.len() + 1);
    match how % 4 {
        0 if at < b.len() => b[at] = byte,
        1 => b.insert(at, byte),
        2 if at < b.len() => {
            b.remove(at);
        }
        _ => {}
    }
    String::from_utf8(b).unwrap_or(text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Fed in pieces cut anywhere (inside strings, right after a backslash, inside
    /// a `\\u` escape or a number), the check answers as fed whole; what it accepts
    /// serde_json parses into a value; and it accepts every value serde_json accepts
    /// but those it leaves to serde_json (lone surrogates, numbers near `f64`'s
    /// range).
    #[test]
    fn pieces_agree_with_whole_and_serde_json(
        text in json_text(),
        (how, at, byte) in (0u8..8, any::<usize>(), prop::sample::select(b"{}[]\":,\\ 0-.eE+tu".to_vec())),
        cuts in prop::collection::vec(0usize..400, 0..12),
    ) {
        let text = mutated(text, how, at, byte);
        let whole = is_one_value(&text);
        prop_assert_eq!(fed_in_pieces(&text, &cuts), whole, "{:?} cut at {:?}", text, cuts);
        let serde = serde_json::from_str::<serde_json::Value>(&text).is_ok();
        if whole {
            prop_assert!(serde, "accepted what serde_json refuses: {:?}", text);
        }
        let deferred = text.contains("\\uD") || long_exponent(&text);
        if serde && !deferred {
            prop_assert!(whole, "refused what serde_json accepts: {:?}", text);
        }
    }
}

#[test]
fn every_cut_of_a_document_agrees() {
    let doc = " {\"k\\\"ey\":[-12.5e+3,0,\"\\uD83D\\uDE00\\u00e9\\n\",true,null,{}],\"x\":false} ";
    assert!(is_one_value(doc));
    for a in 0..=doc.len() {
        for b in a..=doc.len() {
            assert!(fed_in_pieces(doc, &[a, b]), "cut at {a}, {b}");
        }
    }
    let bad = "{\"a\":\"\\uD83D\\u0041\"}";
    for a in 0..=bad.len() {
        assert!(!fed_in_pieces(bad, &[a]), "cut at {a}");
    }
}
