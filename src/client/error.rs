//! [`ClientError`]: the one error type of the client layer.

use std::path::PathBuf;
use std::time::Duration;

use crate::converse::StreamError;
use crate::eventstream::EventStreamError;
use crate::invoke::InvokeError;

/// Everything that can go wrong in the client layer: configuration, request building,
/// credentials, HTTP, the event stream and the service's own errors.
///
/// Caller mistakes (config, parameters) are kept apart from failures of the peer
/// (HTTP status, exceptions, broken streams) and of the network (connect, timeouts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config text is not valid JSON (after comments and trailing commas are removed).
    #[error("invalid config{}: line {line}, column {column}: {message}", path_suffix(.path))]
    ConfigSyntax {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// A config value has the wrong type or an impossible value.
    #[error("invalid config value at {field}: {reason}")]
    ConfigInvalid {
        /// Where, e.g. `providers.bedrock.models.sonnet.modelName`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// `${env:VAR}` names a variable that is not set and has no default.
    #[error("environment variable {var} is not set (referenced as ${{env:{var}}} at {field})")]
    EnvVarUnset {
        /// The variable.
        var: String,
        /// The config field that references it.
        field: String,
    },
    /// No Bedrock provider matches the model id.
    #[error("no Bedrock provider for model {model:?} (providers with \"api\": \"bedrock\": {known:?})")]
    UnknownProvider {
        /// The model id as given.
        model: String,
        /// The Bedrock providers the config has.
        known: Vec<String>,
    },
    /// A provider has no region (needed for the endpoint and for SigV4).
    #[error("provider {provider} has no region (set \"region\" or AWS_REGION)")]
    MissingRegion {
        /// The provider name.
        provider: String,
    },
    /// A request parameter is out of range or has the wrong type.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter (`temperature`, `max_tokens`, ...).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Neither a key nor AWS credentials were found.
    #[error("no credentials: configure a key, or AWS credentials ({0})")]
    MissingCredentials(String),
    /// SigV4 signing failed.
    #[error("SigV4 signing failed: {0}")]
    Signing(String),
    /// The HTTP client could not be built (TLS backend, invalid options).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The connection failed before any response arrived.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The endpoint.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The body broke off after the response started (reset, truncated chunked body, ...).
    #[error("the response body broke off: {0}")]
    Body(#[source] reqwest::Error),
    /// A deadline passed.
    #[error("timed out ({kind}) after {after:?}")]
    Timeout {
        /// Which deadline.
        kind: TimeoutKind,
        /// The configured limit.
        after: Duration,
    },
    /// Bedrock (or the proxy) answered with a non-success HTTP status.
    #[error("HTTP {status}{}{}", error_type_suffix(.error_type), message_suffix(.message))]
    Service {
        /// The HTTP status.
        status: u16,
        /// The error type, from `x-amzn-errortype` or the body's `__type`, cleaned
        /// (`ThrottlingException`, `ValidationException`, ...).
        error_type: Option<String>,
        /// The message from the JSON body (`message` / `Message`), or the raw body text.
        message: Option<String>,
        /// The `x-amzn-requestid` header, when sent.
        request_id: Option<String>,
    },
    /// The endpoint answered with a redirect (3xx). Bedrock never redirects, and
    /// following one would send the prompt and the credentials elsewhere: never followed.
    #[error("HTTP {status}: the endpoint answered with a redirect, which is not followed")]
    Redirect {
        /// The HTTP status (301, 302, 303, 307, 308).
        status: u16,
    },
    /// A model id that cannot be one URL path segment: empty, `.` or `..` (URL
    /// normalisation would drop it or climb out of `/model/`).
    #[error("invalid model id {model_id:?}: it must not be empty, `.` or `..`")]
    InvalidModelId {
        /// The model id as it would be sent.
        model_id: String,
    },
    /// A streamed reply assembled more text, tool input and reasoning than
    /// [`ClientOptions::max_assembled_len`](super::ClientOptions::max_assembled_len).
    #[error("the streamed reply exceeds max_assembled_len ({limit} bytes)")]
    AssembledTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The `/converse` body is larger than [`ClientOptions::max_body_len`](super::ClientOptions::max_body_len).
    #[error("the response body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The 200 body of `/converse` is not a Converse response.
    #[error("cannot parse the Converse response: {0}")]
    ResponseJson(#[source] serde_json::Error),
    /// The stream's bytes are not valid event-stream frames.
    #[error("invalid event stream: {0}")]
    EventStream(#[from] EventStreamError),
    /// The stream's frames broke the ConverseStream protocol, or carried an exception
    /// (`throttlingException`, `modelStreamErrorException`, ...).
    #[error("{0}")]
    Stream(#[from] StreamError),
    /// An `InvokeModelWithResponseStream` body broke the invoke protocol, or carried an
    /// exception frame (`throttlingException`, `modelStreamErrorException`, ...); the
    /// partial message stays with the [`InvokeStream`](super::InvokeStream).
    #[error("{0}")]
    Invoke(#[from] InvokeError),
    /// The stream ended before `messageStop` (connection closed early).
    #[error("the stream ended before messageStop")]
    Truncated,
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Establishing the TCP/TLS connection.
    Connect,
    /// Waiting for the response head after the request was sent.
    FirstByte,
    /// The gap between two chunks of a streaming body.
    Idle,
    /// The whole call, retries included.
    Total,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::FirstByte => "first byte",
            TimeoutKind::Idle => "idle gap between frames",
            TimeoutKind::Total => "total",
        })
    }
}

impl ClientError {
    /// The HTTP status, for [`ClientError::Service`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's error type (`ThrottlingException`, ...): from an HTTP error or a
    /// stream exception.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            ClientError::Service { error_type, .. } => error_type.as_deref(),
            ClientError::Stream(StreamError::Service(e)) => Some(e.kind.as_str()),
            ClientError::Stream(StreamError::Incomplete(i)) => i.exception.as_ref().map(|e| e.kind.as_str()),
            ClientError::Invoke(InvokeError::Service(e)) => Some(e.kind.as_str()),
            ClientError::Invoke(InvokeError::Incomplete(i)) => i.exception.as_ref().map(|e| e.kind.as_str()),
            _ => None,
        }
    }

    /// Whether a fresh attempt could succeed: throttling, 5xx, `ModelNotReadyException`,
    /// connection failures and first-byte timeouts. The retry loop consults this only
    /// while no stream data has reached the caller.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Service {
                status, error_type, ..
            } => {
                *status == 429
                    || *status >= 500
                    || matches!(
                        error_type.as_deref(),
                        Some(
                            "ThrottlingException"
                                | "ModelNotReadyException"
                                | "ServiceUnavailableException"
                                | "InternalServerException"
                                | "TooManyRequestsException"
                        )
                    )
            }
            ClientError::Connect { .. } => true,
            ClientError::Timeout { kind, .. } => {
                matches!(kind, TimeoutKind::Connect | TimeoutKind::FirstByte)
            }
            _ => false,
        }
    }
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

fn error_type_suffix(t: &Option<String>) -> String {
    t.as_ref().map(|t| format!(" {t}")).unwrap_or_default()
}

fn message_suffix(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}
