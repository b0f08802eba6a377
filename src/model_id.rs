//! Model ids as one path segment (crate-private), shared by the client, the built-in
//! server and the gateway: the one encoding set and the one dot-segment rule.
//!
//! Bedrock's routes put the model id in the path (`/model/{modelId}/converse`). The
//! official SDKs encode it as a URI label: everything but the RFC 3986 unreserved
//! characters is percent-encoded (`:` becomes `%3A`, `/` becomes `%2F`). The ids `""`,
//! `.` and `..` cannot be sent at all: URL parsers remove or resolve dot segments, and
//! `%2e` is a dot too, so `/model/../converse` would reach `/converse`.

use percent_encoding::{utf8_percent_encode, AsciiSet, PercentEncode, NON_ALPHANUMERIC};

/// Everything but the RFC 3986 unreserved characters, as the SDKs' label encoding.
pub(crate) const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Whether `model_id` (decoded) can stand as one path segment: not empty, not `.` or `..`.
// The mock server alone only encodes ids (its router never sees a dot segment).
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) fn is_segment(model_id: &str) -> bool {
    !matches!(model_id, "" | "." | "..")
}

/// `model_id` percent-encoded as one path segment.
pub(crate) fn encode(model_id: &str) -> PercentEncode<'_> {
    utf8_percent_encode(model_id, ENCODE_SET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_the_empty_id_are_not_segments() {
        for bad in ["", ".", ".."] {
            assert!(!is_segment(bad), "{bad:?}");
        }
        for ok in ["...", ".a", "a.", "us.anthropic.claude-v2:0", "%2e"] {
            assert!(is_segment(ok), "{ok:?}");
        }
    }

    #[test]
    fn encodes_as_the_sdks_do() {
        assert_eq!(
            encode("us.anthropic.claude-3-haiku-20240307-v1:0").to_string(),
            "us.anthropic.claude-3-haiku-20240307-v1%3A0"
        );
        assert_eq!(
            encode("arn:aws:bedrock:x/y").to_string(),
            "arn%3Aaws%3Abedrock%3Ax%2Fy"
        );
        assert_eq!(encode("a~b_c-d").to_string(), "a~b_c-d");
    }
}
