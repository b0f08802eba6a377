//! Writing JSON and SSE straight into a caller's buffer: string escaping, integers and
//! base64 without an intermediate `String`, so a translated event costs no allocation
//! once the buffer has grown to its working size.

use base64::Engine as _;
use bytes::BufMut;

/// `\uXXXX` for control characters; `0` means "copy the byte".
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a JSON string literal, quotes included.
pub(crate) fn json_str<B: BufMut>(buf: &mut B, s: &str) {
    buf.put_u8(b'"');
    json_str_body(buf, s);
    buf.put_u8(b'"');
}

/// Writes the escaped contents of `s` (no quotes).
///
/// Runs without anything to escape (most of a model's text) are found eight bytes at a
/// time and written with one copy each.
pub(crate) fn json_str_body<B: BufMut>(buf: &mut B, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = first_special(bytes, start);
        let Some(&b) = bytes.get(i) else { break };
        // `i` and `start` sit on ASCII bytes (or the ends), so the slice is whole characters.
        buf.put_slice(bytes.get(start..i).unwrap_or_default());
        let esc = ESCAPE[usize::from(b)];
        if esc == b'u' {
            buf.put_slice(b"\\u00");
            buf.put_u8(HEX[usize::from(b >> 4)]);
            buf.put_u8(HEX[usize::from(b & 0xf)]);
        } else {
            buf.put_u8(b'\\');
            buf.put_u8(esc);
        }
        start = i + 1;
    }
    buf.put_slice(bytes.get(start..).unwrap_or_default());
}

/// Where the first byte JSON escapes (`"`, `\`, a control character) is in `bytes`,
/// at or after `from`; `bytes.len()` when there is none.
fn first_special(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether any byte of `w` is zero (exact as a yes/no, whatever the other bytes).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let mut at = from;
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_ne_bytes(*word);
        // A byte below 0x20, `"` or `\`: `w - 0x20..` borrows out of a byte below 0x20
        // exactly as `w - 0x01..` does out of a zero byte.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
        if control || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\'))) {
            break;
        }
        at += 8;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    rest.iter()
        .position(|&b| ESCAPE[usize::from(b)] != 0)
        .map_or(bytes.len(), |p| at + p)
}

/// Writes `n` in decimal.
pub(crate) fn uint<B: BufMut>(buf: &mut B, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[at..]);
}

/// Writes `data` as standard padded base64 inside quotes, in stack-sized pieces.
pub(crate) fn base64_str<B: BufMut>(buf: &mut B, data: &[u8]) {
    // 768 input bytes (a multiple of 3: no padding mid-way) become 1024 characters.
    let mut out = [0u8; 1024];
    buf.put_u8(b'"');
    for piece in data.chunks(768) {
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(piece, &mut out)
            .unwrap_or(0);
        buf.put_slice(&out[..n]);
    }
    buf.put_u8(b'"');
}

/// Writes `value` with serde_json (for the rare, structured parts of an event).
pub(crate) fn json_value<B: BufMut, T: serde::Serialize + ?Sized>(buf: &mut B, value: &T) {
    // Serializing our own types into memory cannot fail; `null` keeps the JSON whole if
    // it ever did.
    if serde_json::to_writer(buf.writer(), value).is_err() {
        buf.put_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "",
            "plain",
            "a\"b\\c",
            "line\nbreak\r\t",
            "\u{1}\u{1f}\u{7f}é✓🦀",
            "\u{8}\u{c}",
            "eight by eight, then \"quoted\" and\\slashed\u{1f} \u{7f}\u{80}ÿ at the end\n",
            "a long run of plain text with nothing to escape in it at all, over several words",
        ] {
            let mut buf = Vec::new();
            json_str(&mut buf, s);
            assert_eq!(String::from_utf8(buf).unwrap(), serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn finds_each_special_byte_wherever_it_sits_in_a_word() {
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for len in [1usize, 7, 8, 9, 16, 23] {
                for at in 0..len {
                    let mut s: String = "aé~ \u{7f}ÿ".chars().cycle().take(len).collect();
                    let byte = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
                    s.insert(byte, special);
                    let mut buf = Vec::new();
                    json_str(&mut buf, &s);
                    assert_eq!(
                        String::from_utf8(buf).unwrap(),
                        serde_json::to_string(&s).unwrap(),
                        "{s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn integers_and_base64() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut buf = Vec::new();
            uint(&mut buf, n);
            assert_eq!(buf, n.to_string().into_bytes());
        }
        for len in [0usize, 1, 2, 3, 767, 768, 769, 2000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut buf = Vec::new();
            base64_str(&mut buf, &data);
            let want = format!("\"{}\"", base64::engine::general_purpose::STANDARD.encode(&data));
            assert_eq!(String::from_utf8(buf).unwrap(), want);
        }
    }
}
