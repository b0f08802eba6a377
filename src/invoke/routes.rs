//! The three native-body routes of the Bedrock Runtime service model
//! (`bedrock-runtime-service-2.json`, API version 2023-09-30): their paths, the HTTP
//! header bindings of their request and response members, and their typed shapes.
//!
//! ```text
//! POST /model/{modelId}/invoke                        InvokeModel                    body ─► body
//! POST /model/{modelId}/invoke-with-response-stream   InvokeModelWithResponseStream  body ─► event stream of chunks
//! POST /model/{modelId}/count-tokens                  CountTokens                    {"input":{...}} ─► {"inputTokens":N}
//! ```

use serde::{Deserialize, Serialize};

use crate::converse::Blob;

// ===== header names =====

/// `Content-Type`: the request body's type (`contentType`), and the `InvokeModel`
/// response body's type.
pub const CONTENT_TYPE: &str = "Content-Type";
/// `Accept`: the response body type asked of `InvokeModel` (`accept`).
pub const ACCEPT: &str = "Accept";
/// `X-Amzn-Bedrock-Accept`: the chunk payload type asked of
/// `InvokeModelWithResponseStream` (its `accept` member).
pub const BEDROCK_ACCEPT: &str = "X-Amzn-Bedrock-Accept";
/// `X-Amzn-Bedrock-Trace`: `ENABLED`, `DISABLED` or `ENABLED_FULL` (guardrail trace).
pub const TRACE: &str = "X-Amzn-Bedrock-Trace";
/// `X-Amzn-Bedrock-GuardrailIdentifier`.
pub const GUARDRAIL_IDENTIFIER: &str = "X-Amzn-Bedrock-GuardrailIdentifier";
/// `X-Amzn-Bedrock-GuardrailVersion`.
pub const GUARDRAIL_VERSION: &str = "X-Amzn-Bedrock-GuardrailVersion";
/// `X-Amzn-Bedrock-PerformanceConfig-Latency`: `standard` or `optimized` (request
/// and response).
pub const PERFORMANCE_CONFIG_LATENCY: &str = "X-Amzn-Bedrock-PerformanceConfig-Latency";
/// `X-Amzn-Bedrock-Service-Tier`: `priority`, `default`, `flex` or `reserved`
/// (request and response).
pub const SERVICE_TIER: &str = "X-Amzn-Bedrock-Service-Tier";
/// `X-Amzn-Bedrock-Request-Metadata`: JSON request metadata (`requestMetadata`).
pub const REQUEST_METADATA: &str = "X-Amzn-Bedrock-Request-Metadata";
/// `X-Amzn-Bedrock-ProjectIdentifier` (`projectIdentifier`).
pub const PROJECT_IDENTIFIER: &str = "X-Amzn-Bedrock-ProjectIdentifier";
/// `X-Amzn-Bedrock-Content-Type`: the chunk payload type of an
/// `InvokeModelWithResponseStream` response (its `contentType` member; the HTTP
/// `Content-Type` is `application/vnd.amazon.eventstream`).
pub const BEDROCK_CONTENT_TYPE: &str = "X-Amzn-Bedrock-Content-Type";

/// `X-Amzn-Bedrock-Input-Token-Count`. Not in the service model: the service sends it
/// on `InvokeModel` responses (read by LiteLLM and the AWS SDK users from the raw
/// response headers).
pub const INPUT_TOKEN_COUNT: &str = "X-Amzn-Bedrock-Input-Token-Count";
/// `X-Amzn-Bedrock-Output-Token-Count`. Not in the service model (as [`INPUT_TOKEN_COUNT`]).
pub const OUTPUT_TOKEN_COUNT: &str = "X-Amzn-Bedrock-Output-Token-Count";
/// `X-Amzn-Bedrock-Invocation-Latency` (milliseconds). Not in the service model.
pub const INVOCATION_LATENCY: &str = "X-Amzn-Bedrock-Invocation-Latency";
/// `X-Amzn-Bedrock-Cache-Read-Input-Token-Count`. Not in the service model.
pub const CACHE_READ_INPUT_TOKEN_COUNT: &str = "X-Amzn-Bedrock-Cache-Read-Input-Token-Count";
/// `X-Amzn-Bedrock-Cache-Write-Input-Token-Count`. Not in the service model.
pub const CACHE_WRITE_INPUT_TOKEN_COUNT: &str = "X-Amzn-Bedrock-Cache-Write-Input-Token-Count";

/// The request headers a gateway forwards on the invoke routes: the union of the
/// header members of `InvokeModelRequest` and `InvokeModelWithResponseStreamRequest`
/// that issue 12 names. The service model also binds [`REQUEST_METADATA`] and
/// [`PROJECT_IDENTIFIER`] (see [`Route::request_headers`]).
pub const FORWARDED_REQUEST_HEADERS: [&str; 8] = [
    CONTENT_TYPE,
    ACCEPT,
    BEDROCK_ACCEPT,
    TRACE,
    GUARDRAIL_IDENTIFIER,
    GUARDRAIL_VERSION,
    PERFORMANCE_CONFIG_LATENCY,
    SERVICE_TIER,
];

/// The response headers a gateway returns on the invoke routes: the service model's
/// response header members, and the token-count and latency headers the service sends.
pub const RETURNED_RESPONSE_HEADERS: [&str; 9] = [
    CONTENT_TYPE,
    BEDROCK_CONTENT_TYPE,
    PERFORMANCE_CONFIG_LATENCY,
    SERVICE_TIER,
    INPUT_TOKEN_COUNT,
    OUTPUT_TOKEN_COUNT,
    INVOCATION_LATENCY,
    CACHE_READ_INPUT_TOKEN_COUNT,
    CACHE_WRITE_INPUT_TOKEN_COUNT,
];

// ===== impl Route =====

/// One of the three routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /model/{modelId}/invoke`.
    InvokeModel,
    /// `POST /model/{modelId}/invoke-with-response-stream`.
    InvokeModelWithResponseStream,
    /// `POST /model/{modelId}/count-tokens`.
    CountTokens,
}

impl Route {
    /// All three.
    pub const ALL: [Route; 3] = [
        Route::InvokeModel,
        Route::InvokeModelWithResponseStream,
        Route::CountTokens,
    ];

    /// The operation name in the service model.
    pub fn operation(self) -> &'static str {
        match self {
            Route::InvokeModel => "InvokeModel",
            Route::InvokeModelWithResponseStream => "InvokeModelWithResponseStream",
            Route::CountTokens => "CountTokens",
        }
    }

    /// The last path segment, after `/model/{modelId}/`.
    pub fn path_suffix(self) -> &'static str {
        match self {
            Route::InvokeModel => "invoke",
            Route::InvokeModelWithResponseStream => "invoke-with-response-stream",
            Route::CountTokens => "count-tokens",
        }
    }

    /// The route of a request path `/model/{modelId}/{suffix}`, with the model id as it
    /// appears in the path (still percent-encoded). `None` for any other path.
    ///
    /// ```
    /// use bedrock_converse::invoke::Route;
    ///
    /// assert_eq!(
    ///     Route::from_path("/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream"),
    ///     Some(("anthropic.claude-3-haiku-20240307-v1%3A0", Route::InvokeModelWithResponseStream)),
    /// );
    /// assert_eq!(Route::from_path("/model/m/converse"), None);
    /// ```
    pub fn from_path(path: &str) -> Option<(&str, Route)> {
        let rest = path.strip_prefix("/model/")?;
        let (model, suffix) = rest.rsplit_once('/')?;
        if model.is_empty() || model.contains('/') {
            return None;
        }
        let route = Route::ALL.into_iter().find(|r| r.path_suffix() == suffix)?;
        Some((model, route))
    }

    /// The header that carries the `accept` member: [`ACCEPT`] on `InvokeModel`,
    /// [`BEDROCK_ACCEPT`] on the stream (whose HTTP `Accept` is the event stream's).
    /// `None` for `CountTokens`, which binds no header.
    pub fn accept_header(self) -> Option<&'static str> {
        match self {
            Route::InvokeModel => Some(ACCEPT),
            Route::InvokeModelWithResponseStream => Some(BEDROCK_ACCEPT),
            Route::CountTokens => None,
        }
    }

    /// The request header members of the operation's input shape.
    pub fn request_headers(self) -> &'static [&'static str] {
        const INVOKE: [&str; 9] = invoke_request_headers(ACCEPT);
        const STREAM: [&str; 9] = invoke_request_headers(BEDROCK_ACCEPT);
        match self {
            Route::InvokeModel => &INVOKE,
            Route::InvokeModelWithResponseStream => &STREAM,
            // The body is JSON; the model binds no header.
            Route::CountTokens => &[],
        }
    }

    /// The response header members of the operation's output shape.
    pub fn response_headers(self) -> &'static [&'static str] {
        match self {
            Route::InvokeModel => &[CONTENT_TYPE, PERFORMANCE_CONFIG_LATENCY, SERVICE_TIER],
            Route::InvokeModelWithResponseStream => {
                &[BEDROCK_CONTENT_TYPE, PERFORMANCE_CONFIG_LATENCY, SERVICE_TIER]
            }
            Route::CountTokens => &[],
        }
    }

    /// Whether the response is an event stream.
    pub fn is_streaming(self) -> bool {
        self == Route::InvokeModelWithResponseStream
    }
}

/// The header members the two invoke operations share, in the service model's order,
/// with `accept` bound to `accept`.
const fn invoke_request_headers(accept: &'static str) -> [&'static str; 9] {
    [
        CONTENT_TYPE,
        accept,
        TRACE,
        GUARDRAIL_IDENTIFIER,
        GUARDRAIL_VERSION,
        PERFORMANCE_CONFIG_LATENCY,
        SERVICE_TIER,
        REQUEST_METADATA,
        PROJECT_IDENTIFIER,
    ]
}

// ===== header enums =====

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value the service model does not list, as sent.
            Other(String),
        }

        impl $name {
            /// The header value.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(s) => s,
                }
            }

            /// Reads a header value.
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $($wire => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }
    };
}

wire_enum! {
    /// `X-Amzn-Bedrock-Trace` (the `Trace` enum).
    Trace {
        /// `ENABLED`.
        Enabled = "ENABLED",
        /// `DISABLED`.
        Disabled = "DISABLED",
        /// `ENABLED_FULL`.
        EnabledFull = "ENABLED_FULL",
    }
}

wire_enum! {
    /// `X-Amzn-Bedrock-PerformanceConfig-Latency` (the `PerformanceConfigLatency` enum).
    PerformanceConfigLatency {
        /// `standard`.
        Standard = "standard",
        /// `optimized`.
        Optimized = "optimized",
    }
}

wire_enum! {
    /// `X-Amzn-Bedrock-Service-Tier` (the `ServiceTierType` enum).
    ServiceTierType {
        /// `priority`.
        Priority = "priority",
        /// `default`.
        Default = "default",
        /// `flex`.
        Flex = "flex",
        /// `reserved`.
        Reserved = "reserved",
    }
}

// ===== requests =====

/// `InvokeModelRequest` and `InvokeModelWithResponseStreamRequest`: the two share
/// every member; only `accept` is bound to a different header ([`ACCEPT`] or
/// [`BEDROCK_ACCEPT`]). `body` is the model's native request JSON, sent as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeModelRequest {
    /// The model id, inference profile or ARN (the `{modelId}` path label, not encoded).
    pub model_id: String,
    /// The native request body.
    pub body: bytes::Bytes,
    /// `contentType` (default `application/json`).
    pub content_type: Option<String>,
    /// `accept`.
    pub accept: Option<String>,
    /// `trace`.
    pub trace: Option<Trace>,
    /// `guardrailIdentifier`.
    pub guardrail_identifier: Option<String>,
    /// `guardrailVersion`.
    pub guardrail_version: Option<String>,
    /// `performanceConfigLatency`: the latency mode asked for.
    pub performance_config_latency: Option<PerformanceConfigLatency>,
    /// `serviceTier`: the tier asked for.
    pub service_tier: Option<ServiceTierType>,
    /// `requestMetadata` (a JSON object, as text).
    pub request_metadata: Option<String>,
    /// `projectIdentifier`.
    pub project_identifier: Option<String>,
}

impl InvokeModelRequest {
    /// A request for `model_id` with this native body.
    pub fn new(model_id: impl Into<String>, body: impl Into<bytes::Bytes>) -> Self {
        InvokeModelRequest {
            model_id: model_id.into(),
            body: body.into(),
            ..Default::default()
        }
    }

    /// The HTTP headers of the members that are set, for `route` (which decides where
    /// `accept` goes; `CountTokens` binds none).
    ///
    /// ```
    /// use bedrock_converse::invoke::{InvokeModelRequest, Route, ServiceTierType};
    ///
    /// let mut req = InvokeModelRequest::new("anthropic.claude", &b"{}"[..]);
    /// req.accept = Some("application/json".into());
    /// req.service_tier = Some(ServiceTierType::Flex);
    /// let headers = req.headers(Route::InvokeModelWithResponseStream);
    /// assert_eq!(headers, [
    ///     ("Content-Type", "application/json"),
    ///     ("X-Amzn-Bedrock-Accept", "application/json"),
    ///     ("X-Amzn-Bedrock-Service-Tier", "flex"),
    /// ]);
    /// ```
    pub fn headers(&self, route: Route) -> Vec<(&'static str, &str)> {
        route
            .request_headers()
            .iter()
            .filter_map(|&name| self.header_value(name, route).map(|v| (name, v)))
            .collect()
    }

    /// The value of the member bound to header `name` on `route`, when it is set
    /// (`Content-Type` always is: `application/json` by default).
    fn header_value(&self, name: &str, route: Route) -> Option<&str> {
        match name {
            CONTENT_TYPE => Some(self.content_type.as_deref().unwrap_or("application/json")),
            TRACE => self.trace.as_ref().map(Trace::as_str),
            GUARDRAIL_IDENTIFIER => self.guardrail_identifier.as_deref(),
            GUARDRAIL_VERSION => self.guardrail_version.as_deref(),
            PERFORMANCE_CONFIG_LATENCY => self
                .performance_config_latency
                .as_ref()
                .map(PerformanceConfigLatency::as_str),
            SERVICE_TIER => self.service_tier.as_ref().map(ServiceTierType::as_str),
            REQUEST_METADATA => self.request_metadata.as_deref(),
            PROJECT_IDENTIFIER => self.project_identifier.as_deref(),
            _ if Some(name) == route.accept_header() => self.accept.as_deref(),
            _ => None,
        }
    }
}

/// `CountTokensRequest`'s JSON body: `{"input":{"invokeModel":{"body":"<base64>"}}}`
/// or `{"input":{"converse":{...}}}` (the model id is the path label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountTokensRequest {
    /// The request whose input tokens to count.
    pub input: CountTokensInput,
}

/// The `CountTokensInput` union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CountTokensInput {
    /// `invokeModel`: a native body, as `InvokeModel` would get it.
    InvokeModel {
        /// The native request body (base64 in the JSON).
        body: Blob,
    },
    /// `converse`: a Converse-shaped request (`messages`, `system`, `toolConfig`,
    /// `additionalModelRequestFields`), kept as JSON.
    Converse(serde_json::Map<String, serde_json::Value>),
}

/// `CountTokensResponse`: `{"inputTokens":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountTokensResponse {
    /// The number of input tokens the request would use.
    pub input_tokens: u64,
}

// ===== responses =====

/// The header members of an `InvokeModelResponse` or
/// `InvokeModelWithResponseStreamResponse`, and the usage headers the service sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeResponseHeaders {
    /// `contentType`: `Content-Type` on `InvokeModel`, `X-Amzn-Bedrock-Content-Type` on
    /// the stream.
    pub content_type: Option<String>,
    /// `performanceConfigLatency`: the latency mode that served the request.
    pub performance_config_latency: Option<PerformanceConfigLatency>,
    /// `serviceTier`: the tier that served the request.
    pub service_tier: Option<ServiceTierType>,
    /// [`INPUT_TOKEN_COUNT`].
    pub input_token_count: Option<u64>,
    /// [`OUTPUT_TOKEN_COUNT`].
    pub output_token_count: Option<u64>,
    /// [`INVOCATION_LATENCY`], milliseconds.
    pub invocation_latency_ms: Option<u64>,
    /// [`CACHE_READ_INPUT_TOKEN_COUNT`].
    pub cache_read_input_token_count: Option<u64>,
    /// [`CACHE_WRITE_INPUT_TOKEN_COUNT`].
    pub cache_write_input_token_count: Option<u64>,
}

impl InvokeResponseHeaders {
    /// Reads the headers of a `route` response (names compared case-insensitively;
    /// values that are not text, or counts that are not numbers, are skipped).
    ///
    /// ```
    /// use bedrock_converse::invoke::{InvokeResponseHeaders, Route};
    ///
    /// let h = InvokeResponseHeaders::from_headers(Route::InvokeModel, [
    ///     ("content-type", &b"application/json"[..]),
    ///     ("x-amzn-bedrock-input-token-count", b"14"),
    ///     ("x-amzn-bedrock-output-token-count", b"36"),
    ///     ("x-amzn-bedrock-invocation-latency", b"926"),
    /// ]);
    /// assert_eq!((h.input_token_count, h.output_token_count), (Some(14), Some(36)));
    /// assert_eq!(h.content_type.as_deref(), Some("application/json"));
    /// ```
    pub fn from_headers<'h>(route: Route, headers: impl IntoIterator<Item = (&'h str, &'h [u8])>) -> Self {
        let content_type_header = if route.is_streaming() {
            BEDROCK_CONTENT_TYPE
        } else {
            CONTENT_TYPE
        };
        let mut out = InvokeResponseHeaders::default();
        for (name, value) in headers {
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            let value = value.trim();
            let count = || value.parse::<u64>().ok();
            let is = |h: &str| name.eq_ignore_ascii_case(h);
            if is(content_type_header) {
                out.content_type = Some(value.to_owned());
            } else if is(PERFORMANCE_CONFIG_LATENCY) {
                out.performance_config_latency = Some(PerformanceConfigLatency::from_wire(value));
            } else if is(SERVICE_TIER) {
                out.service_tier = Some(ServiceTierType::from_wire(value));
            } else if is(INPUT_TOKEN_COUNT) {
                out.input_token_count = count();
            } else if is(OUTPUT_TOKEN_COUNT) {
                out.output_token_count = count();
            } else if is(INVOCATION_LATENCY) {
                out.invocation_latency_ms = count();
            } else if is(CACHE_READ_INPUT_TOKEN_COUNT) {
                out.cache_read_input_token_count = count();
            } else if is(CACHE_WRITE_INPUT_TOKEN_COUNT) {
                out.cache_write_input_token_count = count();
            }
        }
        out
    }
}

/// `InvokeModelResponse`: the native response body and its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeModelResponse {
    /// The native response body (for Anthropic models, an
    /// [`AnthropicMessage`](super::AnthropicMessage) as JSON).
    pub body: bytes::Bytes,
    /// The headers.
    pub headers: InvokeResponseHeaders,
}

impl InvokeModelResponse {
    /// The body as an Anthropic Messages response (for `anthropic.*` models).
    ///
    /// # Errors
    ///
    /// serde_json's error when the body is not that JSON.
    pub fn anthropic_message(&self) -> Result<super::AnthropicMessage, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}
