//! The Bedrock runtime operations the gateway forwards, and what differs between them:
//! the path, the request headers passed on, the response headers returned, and whether
//! the answer is an event stream.

use crate::invoke::{Route, FORWARDED_REQUEST_HEADERS, RETURNED_RESPONSE_HEADERS};

/// Response headers copied from upstream on the Converse routes.
const CONVERSE_RESPONSE_HEADERS: [&str; 4] = [
    "content-type",
    "x-amzn-requestid",
    "x-amzn-errortype",
    "x-amzn-bedrock-trace",
];

/// Response headers every invoke route returns besides the model's own
/// ([`RETURNED_RESPONSE_HEADERS`]): the request id, and the error type SDKs read an
/// error response by.
const INVOKE_ENVELOPE_HEADERS: [&str; 2] = ["x-amzn-requestid", "x-amzn-errortype"];

/// One forwarded operation: `POST /model/{modelId}/{path_suffix}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operation {
    /// `Converse`.
    Converse,
    /// `ConverseStream`.
    ConverseStream,
    /// `InvokeModel`, `InvokeModelWithResponseStream` or `CountTokens`.
    Invoke(Route),
}

impl Operation {
    /// Every operation, in the order the metrics list them.
    pub(crate) const ALL: [Operation; 5] = [
        Operation::Converse,
        Operation::ConverseStream,
        Operation::Invoke(Route::InvokeModel),
        Operation::Invoke(Route::InvokeModelWithResponseStream),
        Operation::Invoke(Route::CountTokens),
    ];

    /// The last path segment (also the `operation` label of the metrics).
    pub(crate) fn path_suffix(self) -> &'static str {
        match self {
            Operation::Converse => "converse",
            Operation::ConverseStream => "converse-stream",
            Operation::Invoke(route) => route.path_suffix(),
        }
    }

    /// Whether a successful answer is an event stream.
    pub(crate) fn is_streaming(self) -> bool {
        match self {
            Operation::Converse => false,
            Operation::ConverseStream => true,
            Operation::Invoke(route) => route.is_streaming(),
        }
    }

    /// The client request headers passed upstream as they came (besides the body).
    /// None on the Converse routes: their body is always JSON.
    pub(crate) fn forwarded_request_headers(self) -> &'static [&'static str] {
        match self {
            Operation::Converse | Operation::ConverseStream => &[],
            Operation::Invoke(_) => &FORWARDED_REQUEST_HEADERS,
        }
    }

    /// The upstream response headers returned to the client.
    pub(crate) fn returned_response_headers(self) -> impl Iterator<Item = &'static str> {
        let (first, second): (&'static [&'static str], &'static [&'static str]) = match self {
            Operation::Converse | Operation::ConverseStream => (&CONVERSE_RESPONSE_HEADERS, &[]),
            Operation::Invoke(_) => (&RETURNED_RESPONSE_HEADERS, &INVOKE_ENVELOPE_HEADERS),
        };
        first.iter().chain(second).copied()
    }

    /// Its index in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        Operation::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Ordered as [`Operation::ALL`] lists them (the metrics' order).
impl Ord for Operation {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index().cmp(&other.index())
    }
}

impl PartialOrd for Operation {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_own_path_and_index() {
        for (i, op) in Operation::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        let suffixes: std::collections::BTreeSet<_> =
            Operation::ALL.iter().map(|o| o.path_suffix()).collect();
        assert_eq!(suffixes.len(), Operation::ALL.len());
    }

    #[test]
    fn invoke_routes_return_the_model_headers_and_the_envelope() {
        let op = Operation::Invoke(Route::InvokeModelWithResponseStream);
        let names: Vec<_> = op.returned_response_headers().collect();
        assert!(names.contains(&"X-Amzn-Bedrock-Content-Type"));
        assert!(names.contains(&"x-amzn-errortype"));
        assert_eq!(op.forwarded_request_headers().len(), 8);
        assert!(Operation::Converse.forwarded_request_headers().is_empty());
    }
}
