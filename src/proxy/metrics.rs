//! Proxy counters, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::operation::Operation;

/// Why the proxy refused a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization: Bearer` header, more than one, or a malformed one (401).
    MissingKey,
    /// A key that is not configured (403).
    UnknownKey,
    /// Not one of the forwarded routes (404).
    NotFound,
    /// Request body over the cap (413).
    BodyTooLarge,
    /// Concurrent stream cap reached (429).
    TooManyStreams,
    /// The request body did not arrive within the request-body timeout (408).
    BodyTimeout,
    /// The request body broke off: client disconnect, bad chunked encoding (400).
    BodyReadFailed,
    /// A model id that cannot be one path segment: empty, `.` or `..` (400).
    InvalidModelId,
    /// The buffered-bodies budget is spent (503).
    MemoryBudget,
    /// A dialect request (`/v1/chat/completions`, `/v1/messages`) that cannot become a
    /// Converse request: invalid, or a field the gateway cannot honour (400).
    Untranslatable,
    /// A forwarded request header the gateway cannot pass on: repeated, or not
    /// visible ASCII (400).
    InvalidHeader,
}

impl Rejection {
    const ALL: [Rejection; 11] = [
        Rejection::MissingKey,
        Rejection::UnknownKey,
        Rejection::NotFound,
        Rejection::BodyTooLarge,
        Rejection::TooManyStreams,
        Rejection::BodyTimeout,
        Rejection::BodyReadFailed,
        Rejection::InvalidModelId,
        Rejection::MemoryBudget,
        Rejection::Untranslatable,
        Rejection::InvalidHeader,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::MissingKey => "missing_key",
            Rejection::UnknownKey => "unknown_key",
            Rejection::NotFound => "not_found",
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::TooManyStreams => "too_many_streams",
            Rejection::BodyTimeout => "body_timeout",
            Rejection::BodyReadFailed => "body_read_failed",
            Rejection::InvalidModelId => "invalid_model_id",
            Rejection::MemoryBudget => "memory_budget",
            Rejection::Untranslatable => "untranslatable",
            Rejection::InvalidHeader => "invalid_header",
        }
    }
}

/// A route of the clients' dialects, counted in `bedrock_proxy_dialect_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectRoute {
    /// `POST /v1/chat/completions` (OpenAI).
    ChatCompletions,
    /// `POST /v1/messages` (Anthropic).
    Messages,
    /// `GET /v1/models`.
    Models,
}

impl DialectRoute {
    const ALL: [DialectRoute; 3] = [
        DialectRoute::ChatCompletions,
        DialectRoute::Messages,
        DialectRoute::Models,
    ];

    /// The route's path.
    pub fn path(self) -> &'static str {
        match self {
            DialectRoute::ChatCompletions => "/v1/chat/completions",
            DialectRoute::Messages => "/v1/messages",
            DialectRoute::Models => "/v1/models",
        }
    }
}

/// Why the gateway cut a stream it was forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCut {
    /// The client left the reply unread for longer than the idle timeout.
    SlowReader,
    /// The whole request took longer than the total timeout.
    Total,
}

impl StreamCut {
    const ALL: [StreamCut; 2] = [StreamCut::SlowReader, StreamCut::Total];

    fn label(self) -> &'static str {
        match self {
            StreamCut::SlowReader => "slow_reader",
            StreamCut::Total => "total_timeout",
        }
    }
}

/// Why the accept loop closed a client connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionClose {
    /// The connection cap was reached: closed as soon as accepted.
    OverCap,
    /// No complete request head within the header-read timeout.
    HeaderTimeout,
    /// No request in flight for the keep-alive idle timeout.
    Idle,
    /// The TLS handshake failed or did not finish within its timeout.
    TlsHandshake,
    /// A write to the client stayed pending for the idle timeout: it reads nothing.
    SlowReader,
}

impl ConnectionClose {
    const ALL: [ConnectionClose; 5] = [
        ConnectionClose::OverCap,
        ConnectionClose::HeaderTimeout,
        ConnectionClose::Idle,
        ConnectionClose::TlsHandshake,
        ConnectionClose::SlowReader,
    ];

    fn label(self) -> &'static str {
        match self {
            ConnectionClose::OverCap => "over_cap",
            ConnectionClose::HeaderTimeout => "header_timeout",
            ConnectionClose::Idle => "idle",
            ConnectionClose::TlsHandshake => "tls_handshake",
            ConnectionClose::SlowReader => "slow_reader",
        }
    }
}

/// The proxy's counters. Cheap to update from many tasks (relaxed atomics; the error
/// map takes a lock only when an upstream error happens).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; Operation::ALL.len()],
    streams_in_flight: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
    dialect_requests: [AtomicU64; DialectRoute::ALL.len()],
    cut: [AtomicU64; StreamCut::ALL.len()],
    connections_open: AtomicU64,
    connections_closed: [AtomicU64; ConnectionClose::ALL.len()],
    upstream_errors: Mutex<BTreeMap<String, u64>>,
    /// Input and output tokens by client key id and operation (key ids come from the
    /// config, so the map is bounded).
    key_tokens: Mutex<BTreeMap<String, BTreeMap<Operation, [u64; 2]>>>,
}

impl Metrics {
    pub(crate) fn request(&self, operation: Operation) {
        self.requests[operation.index()].fetch_add(1, Relaxed);
    }

    /// Requests accepted for forwarding to this operation (`converse`,
    /// `invoke-with-response-stream`, ...: the last path segment) so far.
    pub fn requests(&self, operation: &str) -> u64 {
        Operation::ALL
            .iter()
            .find(|o| o.path_suffix() == operation)
            .map_or(0, |o| self.requests[o.index()].load(Relaxed))
    }

    pub(crate) fn dialect_request(&self, route: DialectRoute) {
        if let Some(i) = DialectRoute::ALL.iter().position(|r| *r == route) {
            self.dialect_requests[i].fetch_add(1, Relaxed);
        }
    }

    /// Authenticated requests to this dialect route so far.
    pub fn dialect_requests(&self, route: DialectRoute) -> u64 {
        DialectRoute::ALL
            .iter()
            .position(|r| *r == route)
            .map_or(0, |i| self.dialect_requests[i].load(Relaxed))
    }

    pub(crate) fn reject(&self, why: Rejection) {
        if let Some(i) = Rejection::ALL.iter().position(|r| *r == why) {
            self.rejected[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn cut(&self, why: StreamCut) {
        if let Some(i) = StreamCut::ALL.iter().position(|r| *r == why) {
            self.cut[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_ended(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    pub(crate) fn connection_closed(&self, why: ConnectionClose) {
        if let Some(i) = ConnectionClose::ALL.iter().position(|r| *r == why) {
            self.connections_closed[i].fetch_add(1, Relaxed);
        }
    }

    /// Client connections open now.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Relaxed)
    }

    /// Client connections the gateway closed for this reason so far.
    pub fn connections_closed(&self, why: ConnectionClose) -> u64 {
        ConnectionClose::ALL
            .iter()
            .position(|r| *r == why)
            .map_or(0, |i| self.connections_closed[i].load(Relaxed))
    }

    /// Streams the gateway cut for this reason so far.
    pub fn cuts(&self, why: StreamCut) -> u64 {
        StreamCut::ALL
            .iter()
            .position(|r| *r == why)
            .map_or(0, |i| self.cut[i].load(Relaxed))
    }

    pub(crate) fn stream_started(&self) {
        self.streams_in_flight.fetch_add(1, Relaxed);
    }

    pub(crate) fn stream_ended(&self) {
        self.streams_in_flight.fetch_sub(1, Relaxed);
    }

    pub(crate) fn forwarded(&self, frames: u64, bytes: u64) {
        self.frames.fetch_add(frames, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts the tokens upstream reported for one request of `key_id` to `operation`.
    pub(crate) fn tokens(&self, key_id: &str, operation: Operation, input: u64, output: u64) {
        self.input_tokens.fetch_add(input, Relaxed);
        self.output_tokens.fetch_add(output, Relaxed);
        let mut map = self.key_tokens.lock().unwrap_or_else(|p| p.into_inner());
        // The key's id is copied only the first time it is counted.
        let per_key = match map.get_mut(key_id) {
            Some(per_key) => per_key,
            None => map.entry(key_id.to_owned()).or_default(),
        };
        let counts = per_key.entry(operation).or_default();
        counts[0] = counts[0].saturating_add(input);
        counts[1] = counts[1].saturating_add(output);
    }

    /// Input and output tokens counted for client key `key_id` on `operation` (the last
    /// path segment) so far.
    pub fn key_tokens(&self, key_id: &str, operation: &str) -> (u64, u64) {
        let map = self.key_tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key_id)
            .and_then(|per_key| per_key.iter().find(|(o, _)| o.path_suffix() == operation))
            .map_or((0, 0), |(_, [i, o])| (*i, *o))
    }

    pub(crate) fn upstream_error(&self, kind: &str) {
        let mut map = self.upstream_errors.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(kind.to_owned()).or_default() += 1;
    }

    /// Streams being forwarded right now.
    pub fn streams_in_flight(&self) -> u64 {
        self.streams_in_flight.load(Relaxed)
    }

    /// Frames forwarded so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Relaxed)
    }

    /// Upstream errors of this kind so far.
    pub fn upstream_errors(&self, kind: &str) -> u64 {
        let map = self.upstream_errors.lock().unwrap_or_else(|p| p.into_inner());
        map.get(kind).copied().unwrap_or(0)
    }

    /// Requests the proxy refused for this reason so far.
    pub fn rejected(&self, why: Rejection) -> u64 {
        Rejection::ALL
            .iter()
            .position(|r| *r == why)
            .map_or(0, |i| self.rejected[i].load(Relaxed))
    }

    /// All counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Exposition(String::with_capacity(2048));
        self.render_requests(&mut out);
        self.render_traffic(&mut out);
        self.render_refusals(&mut out);
        self.render_connections(&mut out);
        out.0
    }

    /// Requests by operation and by dialect route, and the streams in flight.
    fn render_requests(&self, out: &mut Exposition) {
        out.family(
            "bedrock_proxy_requests_total",
            "counter",
            "Requests accepted for forwarding, by operation.",
            Operation::ALL
                .iter()
                .zip(&self.requests)
                .map(|(o, c)| (Label("operation", o.path_suffix()), c.load(Relaxed))),
        );
        out.family(
            "bedrock_proxy_dialect_requests_total",
            "counter",
            "Authenticated requests to the OpenAI and Anthropic routes, by route.",
            DialectRoute::ALL
                .iter()
                .zip(&self.dialect_requests)
                .map(|(r, c)| (Label("route", r.path()), c.load(Relaxed))),
        );
        out.single(
            "bedrock_proxy_streams_in_flight",
            "gauge",
            "Upstream requests being forwarded now.",
            self.streams_in_flight.load(Relaxed),
        );
    }

    /// Frames, bytes and tokens forwarded.
    fn render_traffic(&self, out: &mut Exposition) {
        out.single(
            "bedrock_proxy_frames_total",
            "counter",
            "Event-stream frames validated and forwarded.",
            self.frames.load(Relaxed),
        );
        out.single(
            "bedrock_proxy_bytes_total",
            "counter",
            "Event-stream bytes validated and forwarded.",
            self.bytes.load(Relaxed),
        );
        out.family(
            "bedrock_proxy_tokens_total",
            "counter",
            "Tokens reported by upstream usage, by kind.",
            [
                (Label("kind", "input"), self.input_tokens.load(Relaxed)),
                (Label("kind", "output"), self.output_tokens.load(Relaxed)),
            ],
        );
        out.family(
            "bedrock_proxy_key_tokens_total",
            "counter",
            "Tokens reported by upstream usage, by client key, operation and kind.",
            self.key_token_samples(),
        );
    }

    /// Refusals, streams cut, and upstream failures, by reason.
    fn render_refusals(&self, out: &mut Exposition) {
        out.family(
            "bedrock_proxy_rejected_total",
            "counter",
            "Requests refused by the proxy, by reason.",
            Rejection::ALL
                .iter()
                .zip(&self.rejected)
                .map(|(r, c)| (Label("reason", r.label()), c.load(Relaxed))),
        );
        out.family(
            "bedrock_proxy_streams_cut_total",
            "counter",
            "Streams the proxy cut itself, by reason.",
            StreamCut::ALL
                .iter()
                .zip(&self.cut)
                .map(|(r, c)| (Label("reason", r.label()), c.load(Relaxed))),
        );
        let errors: Vec<(String, u64)> = {
            let map = self.upstream_errors.lock().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .map(|(k, v)| (format!("{{type=\"{}\"}}", escape_label(k)), *v))
                .collect()
        };
        out.family(
            "bedrock_proxy_upstream_errors_total",
            "counter",
            "Upstream failures, by error type.",
            errors,
        );
    }

    /// Client connections open and closed.
    fn render_connections(&self, out: &mut Exposition) {
        out.single(
            "bedrock_proxy_connections_open",
            "gauge",
            "Client connections open now.",
            self.connections_open.load(Relaxed),
        );
        out.family(
            "bedrock_proxy_connections_closed_total",
            "counter",
            "Client connections the proxy closed itself, by reason.",
            ConnectionClose::ALL
                .iter()
                .zip(&self.connections_closed)
                .map(|(r, c)| (Label("reason", r.label()), c.load(Relaxed))),
        );
    }
}

/// Prometheus text being written.
struct Exposition(String);

impl Exposition {
    /// A metric family: its `HELP` and `TYPE` lines, then one line per sample.
    fn family<L: std::fmt::Display>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, u64)>,
    ) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help, [("", value)]);
    }
}

/// One label, written as `{name="value"}` (values here are fixed, known-safe strings).
struct Label(&'static str, &'static str);

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{{}=\"{}\"}}", self.0, self.1)
    }
}

impl Metrics {
    /// The samples of `bedrock_proxy_key_tokens_total`.
    fn key_token_samples(&self) -> Vec<(String, u64)> {
        let map = self.key_tokens.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(map.len() * 2);
        let all = map
            .iter()
            .flat_map(|(key, per_key)| per_key.iter().map(move |op| (key, op)));
        for (key, (operation, counts)) in all {
            for (kind, n) in ["input", "output"].into_iter().zip(counts) {
                let labels = format!(
                    "{{key=\"{}\",operation=\"{}\",kind=\"{kind}\"}}",
                    escape_label(key),
                    operation.path_suffix()
                );
                out.push((labels, *n));
            }
        }
        out
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request(Operation::ConverseStream);
        m.tokens(
            "team-a",
            Operation::Invoke(crate::invoke::Route::InvokeModel),
            3,
            4,
        );
        m.reject(Rejection::UnknownKey);
        m.upstream_error("ThrottlingException");
        m.forwarded(3, 300);
        let text = m.render();
        assert!(text.contains("bedrock_proxy_requests_total{operation=\"converse-stream\"} 1\n"));
        assert!(text.contains("bedrock_proxy_rejected_total{reason=\"unknown_key\"} 1\n"));
        assert!(text.contains("bedrock_proxy_upstream_errors_total{type=\"ThrottlingException\"} 1\n"));
        assert!(text.contains("bedrock_proxy_frames_total 3\n"));
        assert!(text.contains(
            "bedrock_proxy_key_tokens_total{key=\"team-a\",operation=\"invoke\",kind=\"output\"} 4\n"
        ));
        assert_eq!(m.key_tokens("team-a", "invoke"), (3, 4));
        assert_eq!(m.requests("converse-stream"), 1);
        assert!(text.contains("# TYPE bedrock_proxy_streams_in_flight gauge\n"));
    }
}
