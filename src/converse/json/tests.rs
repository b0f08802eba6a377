//! The fast paths against serde_json and naive readers, on hand-made and generated payloads.

use super::*;
use crate::converse::event::{BlockDeltaWire, BlockStopWire};
use proptest::prelude::*;

/// Asserts that `refuses` holds for every payload.
fn refused_by(refuses: impl Fn(&[u8]) -> bool, payloads: &[&[u8]]) {
    for p in payloads {
        assert!(refuses(p), "{}", String::from_utf8_lossy(p));
    }
}

fn delta_event_typed(payload: &[u8]) -> Option<(u32, ContentBlockDelta<'_>)> {
    delta_event(payload).and_then(|(i, d)| Some((i, d.to_delta()?)))
}

fn compact_delta_typed(payload: &[u8]) -> Option<(u32, ContentBlockDelta<'_>)> {
    compact_delta(payload).and_then(|(i, d)| Some((i, d.to_delta()?)))
}

fn serde_delta(payload: &[u8]) -> Option<serde_json::Value> {
    let w: BlockDeltaWire<'_> = serde_json::from_slice(payload).ok()?;
    Some(serde_json::json!({"i": w.index, "d": serde_json::to_value(&w.delta.0).ok()?}))
}

fn fast_delta(payload: &[u8]) -> Option<serde_json::Value> {
    let (index, delta) = delta_event_typed(payload)?;
    Some(serde_json::json!({"i": index, "d": serde_json::to_value(&delta).ok()?}))
}

#[test]
fn common_shapes() {
    let (i, d) = delta_event_typed(br#"{"contentBlockIndex":2,"delta":{"text":"hi"},"p":"abc"}"#).unwrap();
    assert_eq!(i, 2);
    assert!(matches!(d, ContentBlockDelta::Text(Cow::Borrowed("hi"))));
    let (_, d) = delta_event_typed(
        br#"{"p":"a", "contentBlockIndex" : 0 , "delta":{"toolUse":{"input":"{\"x\": 7}"}}}"#,
    )
    .unwrap();
    assert!(matches!(d, ContentBlockDelta::ToolUseInput(Cow::Owned(ref s)) if s == "{\"x\": 7}"));
    let (_, d) = delta_event_typed(
        br#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"\ud83d\ude00\u00e9"}}}"#,
    )
    .unwrap();
    assert!(matches!(d, ContentBlockDelta::ReasoningText(Cow::Owned(ref s)) if s == "😀é"));
    assert_eq!(stop_event(br#"{"contentBlockIndex":7,"p":"abcdefgh"}"#), Some(7));
    // Strings longer than the one-pass scan.
    let long = "x".repeat(100);
    let p = format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"{long}\n{long}"}}}}"#);
    let (_, d) = delta_event_typed(p.as_bytes()).unwrap();
    assert!(matches!(d, ContentBlockDelta::Text(Cow::Owned(ref s)) if *s == format!("{long}\n{long}")));
    let p = format!("{{\"contentBlockIndex\":0,\"delta\":{{\"text\":\"{long}\x01\"}}}}");
    assert!(delta_event_typed(p.as_bytes()).is_none());
    let p = format!("{{\"contentBlockIndex\":0,\"delta\":{{\"text\":\"a\\n{long}\x01\"}}}}");
    assert!(delta_event_typed(p.as_bytes()).is_none());
    // Left to serde_json:
    refused_by(
        |p| delta_event_typed(p).is_none(),
        &[
            &br#"{"contentBlockIndex":01,"delta":{"text":"a"}}"#[..],
            br#"{"contentBlockIndex":1.0,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":1,"delta":{"text":"a"},"contentBlockIndex":2}"#,
            br#"{"contentBlockIndex":1,"delta":{"text":"\ud800"}}"#,
            b"{\"contentBlockIndex\":1,\"delta\":{\"text\":\"a\x01\"}}",
            br#"{"contentBlockIndex":1,"delta":{"image":{}}}"#,
            br#"{"contentBlockIndex":1,"delta":{"text":"a"}} x"#,
            br#"{"contentBlockIndex":4294967296,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":1,"delta":{"text":"a"},"q":1}"#,
        ],
    );
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just(" ".to_owned()),
        Just("\"contentBlockIndex\"".to_owned()),
        Just("\"delta\"".to_owned()),
        Just("\"text\"".to_owned()),
        Just("\"toolUse\"".to_owned()),
        Just("\"input\"".to_owned()),
        Just("\"reasoningContent\"".to_owned()),
        Just("\"signature\"".to_owned()),
        Just("\"p\"".to_owned()),
        Just("0".to_owned()),
        Just("12".to_owned()),
        Just("-1".to_owned()),
        Just("null".to_owned()),
        "\"([a-z \\\\\"/é😀]|\\\\[nrtbf/\"\\\\]|\\\\u[0-9a-fA-F]{4}|\\\\ud83d\\\\ude00){0,6}\"",
    ]
}

/// A well-formed delta payload, written with random whitespace and key order.
fn well_formed() -> impl Strategy<Value = String> {
    let s = "\"([a-z /é😀]|\\\\[nrtbf/\"\\\\]|\\\\u00[0-9a-f]{2}|\\\\ud83d\\\\ude00)*\"";
    (
        0u32..5000,
        prop_oneof![
            s.prop_map(|v| format!(r#"{{"text":{v}}}"#)),
            s.prop_map(|v| format!(r#"{{"toolUse":{{"input":{v}}}}}"#)),
            s.prop_map(|v| format!(r#"{{"reasoningContent":{{"text":{v}}}}}"#)),
            s.prop_map(|v| format!(r#"{{"reasoningContent":{{"signature":{v}}}}}"#)),
        ],
        proptest::option::of("[a-zA-Z0-9]{0,40}"),
        any::<bool>(),
        "[ \n\t]{0,2}",
    )
        .prop_map(|(i, d, p, swap, ws)| {
            let mut members = vec![
                format!("\"contentBlockIndex\"{ws}:{i}"),
                format!("\"delta\":{ws}{d}"),
            ];
            if swap {
                members.reverse();
            }
            if let Some(p) = p {
                members.insert(1, format!("\"p\":\"{p}\""));
            }
            format!("{{{ws}{}{ws}}}", members.join(&format!("{ws},")))
        })
}

/// `scan` written the obvious way.
fn scan_naive(rest: &[u8]) -> Option<usize> {
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'"' | b'\\' => return Some(i),
            0..=0x1f => return None,
            _ => {}
        }
    }
    None
}

#[test]
fn compact_shapes_take_the_compact_path() {
    let (i, d) = compact_delta_typed(br#"{"contentBlockIndex":12,"delta":{"text":"hi"},"p":"abc"}"#).unwrap();
    assert_eq!(i, 12);
    assert!(matches!(d, ContentBlockDelta::Text(Cow::Borrowed("hi"))));
    let (_, d) =
        compact_delta_typed(br#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":"}},"p":"ab"}"#)
            .unwrap();
    assert!(matches!(d, ContentBlockDelta::ToolUseInput(Cow::Owned(ref s)) if s == "{\"a\":"));
    let (_, d) =
        compact_delta_typed(br#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"r"}}}"#).unwrap();
    assert!(matches!(d, ContentBlockDelta::ReasoningText(Cow::Borrowed("r"))));
    let (_, d) =
        compact_delta_typed(br#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"s"}}}"#)
            .unwrap();
    assert!(matches!(
        d,
        ContentBlockDelta::ReasoningSignature(Cow::Borrowed("s"))
    ));
    assert_eq!(
        compact_stop(br#"{"contentBlockIndex":4294967295,"p":"abcdefghijklmnop"}"#),
        Some(u32::MAX)
    );
    assert_eq!(compact_stop(br#"{"contentBlockIndex":0}"#), Some(0));
    // Not compact (whitespace, other order, odd padding or index): left to the
    // general reader or to serde_json.
    refused_by(
        |p| compact_delta_typed(p).is_none(),
        &[
            &br#"{"contentBlockIndex":0,"delta":{"text":"a"} }"#[..],
            br#"{"contentBlockIndex":0,"p":"x","delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x\"}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x"y"}"#,
            b"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"a\"},\"p\":\"abcdefgh\x01\"}",
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x"}}"#,
            br#"{"contentBlockIndex":00,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":4294967296,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"}"#,
        ],
    );
}

#[test]
fn compact_strings_end_where_a_forward_reader_says() {
    // Quotes, braces and padding-like text inside the string itself.
    for p in [
        &br#"{"contentBlockIndex":0,"delta":{"text":"a\"},\"p\":\"b"}}"#[..],
        br#"{"contentBlockIndex":0,"delta":{"text":"x\",\"p\":\"y"},"p":"abc"}"#,
        br#"{"contentBlockIndex":0,"delta":{"text":"\\"},"p":"abc"}"#,
        br#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{\"a\":\"}}\"}"}},"p":"ab"}"#,
        br#"{"contentBlockIndex":0,"delta":{"text":""}}"#,
    ] {
        let fast = compact_delta_typed(p).map(|(i, d)| serde_json::json!({"i": i, "d": d}));
        assert!(fast.is_some(), "{}", String::from_utf8_lossy(p));
        assert_eq!(fast, serde_delta(p), "{}", String::from_utf8_lossy(p));
    }
    // The quote found from the end is not the string's end: decoding refuses.
    refused_by(
        |p| compact_delta_typed(p).is_none(),
        &[
            &br#"{"contentBlockIndex":0,"delta":{"text":"a\"},"p":"x"}"#[..],
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"b"}}"#,
        ],
    );
}

/// Compact-looking payloads with odd indexes, paddings and endings.
fn compact_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("0".to_owned()),
            Just("01".to_owned()),
            Just("4294967296".to_owned()),
            "[0-9]{1,11}"
        ],
        prop_oneof![
            Just(r#""text":"#.to_owned()),
            Just(r#""toolUse":{"input":"#.to_owned()),
            Just(r#""reasoningContent":{"text":"#.to_owned()),
            Just(r#""reasoningContent":{"signature":"#.to_owned()),
        ],
        "\"([a-z\\\"é\u{1}]|\\[nu\"])*\"",
        prop_oneof![
            Just("}".to_owned()),
            Just("}}".to_owned()),
            Just("}}}".to_owned())
        ],
        proptest::option::of("[a-z0-9\"\\\u{0}-\u{1f}é}]{0,20}"),
        prop_oneof![Just(String::new()), Just("}".to_owned()), Just(" ".to_owned())],
    )
        .prop_map(|(i, kind, value, close, p, end)| {
            let p = p.map(|p| format!(r#","p":"{p}""#)).unwrap_or_default();
            format!(r#"{{"contentBlockIndex":{i},"delta":{{{kind}{value}{close}{p}}}{end}"#)
        })
}

proptest! {
    #[test]
    fn compact_accepts_only_what_serde_accepts(payload in compact_like()) {
        if let Some((index, delta)) = compact_delta_typed(payload.as_bytes()) {
            let fast = serde_json::json!({"i": index, "d": serde_json::to_value(&delta).unwrap()});
            prop_assert_eq!(Some(fast), serde_delta(payload.as_bytes()), "{}", payload);
        }
        let stop = payload.replacen(r#","delta":{"#, "", 1);
        if let Some(i) = compact_stop(stop.as_bytes()) {
            let w: Result<BlockStopWire, _> = serde_json::from_slice(stop.as_bytes());
            prop_assert_eq!(w.ok().map(|w| w.index), Some(i), "{}", stop);
        }
    }

    #[test]
    fn special_at_matches_naive(bytes in proptest::collection::vec(
        prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(b'a')], 0..40),
        lead in 0usize..20) {
        let mut long = vec![b'x'; lead];
        long.extend_from_slice(&bytes);
        let naive = long.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(long.len());
        prop_assert_eq!(special_at(&long), naive);
    }

    #[test]
    fn last_special_matches_naive(bytes in proptest::collection::vec(
        prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(b'a'), Just(0x21), Just(0x5d)], 0..40),
        tail in 0usize..20) {
        let mut long = bytes.clone();
        long.extend(std::iter::repeat(b'x').take(tail));
        for b in [&bytes, &long] {
            let naive = b.iter().rposition(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(last_special(b), naive);
        }
    }

    #[test]
    fn scan_matches_naive(bytes in proptest::collection::vec(
        prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(b'a')], 0..80)) {
        prop_assert_eq!(scan(&bytes), scan_naive(&bytes));
        let mut long = vec![b'x'; 37];
        long.extend_from_slice(&bytes);
        prop_assert_eq!(scan(&long), scan_naive(&long));
    }

    #[test]
    fn agrees_with_serde_on_well_formed(payload in well_formed()) {
        let fast = fast_delta(payload.as_bytes());
        prop_assert!(fast.is_some(), "{}", payload);
        prop_assert_eq!(fast, serde_delta(payload.as_bytes()));
    }

    #[test]
    fn accepts_only_what_serde_accepts(pieces in proptest::collection::vec(piece(), 0..24)) {
        let payload = pieces.concat();
        if let Some(fast) = fast_delta(payload.as_bytes()) {
            prop_assert_eq!(Some(fast), serde_delta(payload.as_bytes()), "{}", payload);
        }
        if let Some(i) = stop_event(payload.as_bytes()) {
            let w: Result<BlockStopWire, _> = serde_json::from_slice(payload.as_bytes());
            prop_assert_eq!(w.ok().map(|w| w.index), Some(i), "{}", payload);
        }
    }
}
