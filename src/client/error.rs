//! [`ClientError`]: the one error type of the client layer, in the rustls shape: a top
//! enum whose variants wrap focused `#[non_exhaustive]` sub-enums.
//!
//! ```text
//! ClientError
//! ├── Config(ConfigError)        caller mistakes: the config file, parameters, model ids
//! ├── Auth(AuthError)            no credentials; SigV4 could not sign
//! ├── HttpClient(reqwest::Error) the HTTP client could not be built
//! ├── Transport(TransportError)  connect, body broke off, timeouts (with their phase), redirects
//! ├── Service(ServiceError)      a non-success HTTP status with the service's error type
//! ├── Response(ResponseError)    a reply too large, not JSON, or cut short
//! ├── EventStream(..)            layer 1: bytes that are not event-stream frames
//! ├── Stream(..)                 layer 2: the ConverseStream protocol, stream exceptions
//! └── Invoke(..)                 the invoke protocol, invoke-stream exceptions
//! ```
//!
//! The gateway's config (`proxy::ProxyConfig`, feature `proxy`)
//! reports its mistakes with the same [`ConfigError`].

use std::path::PathBuf;
use std::time::Duration;

use crate::converse::StreamError;
use crate::eventstream::EventStreamError;
use crate::invoke::InvokeError;

/// Everything that can go wrong in the client layer.
///
/// Caller mistakes ([`ConfigError`]) are kept apart from failures of the peer
/// ([`ServiceError`], [`ResponseError`], broken streams) and of the network
/// ([`TransportError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The config or a request parameter is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No credentials, or the request could not be signed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The HTTP client could not be built (TLS backend, invalid options).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The network failed: connect, a broken body, a deadline, a redirect.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Bedrock (or the proxy) answered with a non-success HTTP status.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The reply was too large, not the expected JSON, or ended early.
    #[error(transparent)]
    Response(#[from] ResponseError),
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
}

// ===== ConfigError =====

/// A mistake of the caller: the config file (client or proxy), a request parameter, a
/// model id.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file (or a file it names) could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config text is not valid JSON (after comments and trailing commas are removed).
    #[error("invalid config{}: line {line}, column {column}: {message}", path_suffix(.path))]
    Syntax {
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
    Invalid {
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
    /// A model id that cannot be one URL path segment: empty, `.` or `..` (URL
    /// normalisation would drop it or climb out of `/model/`).
    #[error("invalid model id {model_id:?}: it must not be empty, `.` or `..`")]
    InvalidModelId {
        /// The model id as it would be sent.
        model_id: String,
    },
}

// ===== AuthError =====

/// No credentials were found, or SigV4 could not sign the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Neither a key nor AWS credentials were found.
    #[error("no credentials: configure a key, or AWS credentials ({searched})")]
    MissingCredentials {
        /// Where the lookup searched.
        searched: CredentialSources,
    },
    /// The URL to sign does not parse.
    #[error("SigV4 signing failed: invalid URL: {source}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What the URI parser said.
        source: http::uri::InvalidUri,
    },
    /// The URL to sign has no host (the `host` header is signed).
    #[error("SigV4 signing failed: the URL {url} has no host")]
    UrlWithoutHost {
        /// The URL.
        url: String,
    },
    /// The signing parameters are incomplete.
    #[error("SigV4 signing failed: {0}")]
    SigningParams(#[source] aws_sigv4::sign::v4::signing_params::BuildError),
    /// The signer refused the request.
    #[error("SigV4 signing failed: {0}")]
    Signer(#[source] aws_sigv4::http_request::SigningError),
    /// A signed or key header is not a valid HTTP header value.
    #[error("SigV4 signing failed: {name} is not a valid header value")]
    InvalidHeaderValue {
        /// The header (`authorization`, `x-amz-security-token`, ...).
        name: &'static str,
    },
}

/// Where a credential lookup searched, for [`AuthError::MissingCredentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSources {
    /// The environment and the shared credentials file (no key was asked for).
    AwsOnly,
    /// The config's key, the environment and the shared credentials file.
    KeyAndAws,
    /// The provider's key and its AWS credentials, when a request was about to be sent.
    ProviderKeyAndAws,
}

impl std::fmt::Display for CredentialSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialSources::AwsOnly => {
                "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and no matching profile in the shared \
                 credentials file"
            }
            CredentialSources::KeyAndAws => {
                "no key in the config, no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, no matching \
                 profile in the shared credentials file"
            }
            CredentialSources::ProviderKeyAndAws => {
                "no key for this provider and no AWS credentials (AWS_ACCESS_KEY_ID, ~/.aws/credentials)"
            }
        })
    }
}

// ===== TransportError =====

/// The network failed between the client and the endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
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
        /// Which deadline: the phase of the call it bounds.
        kind: TimeoutKind,
        /// The configured limit.
        after: Duration,
    },
    /// The endpoint answered with a redirect (3xx). Bedrock never redirects, and
    /// following one would send the prompt and the credentials elsewhere: never followed.
    #[error("HTTP {status}: the endpoint answered with a redirect, which is not followed")]
    Redirect {
        /// The HTTP status (301, 302, 303, 307, 308).
        status: u16,
    },
}

/// Which timeout fired: the phase of the call it bounds.
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

// ===== ServiceError =====

/// Bedrock (or the proxy) answered with a non-success HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}{}{}", error_type_suffix(.error_type), message_suffix(.message))]
#[non_exhaustive]
pub struct ServiceError {
    /// The HTTP status.
    pub status: u16,
    /// The error type, from `x-amzn-errortype` or the body's `__type`, cleaned
    /// (`ThrottlingException`, `ValidationException`, ...).
    pub error_type: Option<String>,
    /// The message from the JSON body (`message` / `Message`), or the raw body text.
    pub message: Option<String>,
    /// The `x-amzn-requestid` header, when sent.
    pub request_id: Option<String>,
}

impl ServiceError {
    /// Whether a fresh attempt could succeed: throttling, 5xx, `ModelNotReadyException`.
    pub fn is_retryable(&self) -> bool {
        self.status == 429
            || self.status >= 500
            || matches!(
                self.error_type.as_deref(),
                Some(
                    "ThrottlingException"
                        | "ModelNotReadyException"
                        | "ServiceUnavailableException"
                        | "InternalServerException"
                        | "TooManyRequestsException"
                )
            )
    }
}

// ===== ResponseError =====

/// The reply arrived but is not what the call needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
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
    /// The 200 body is not the expected JSON (a Converse response, a count).
    #[error("cannot parse the Converse response: {0}")]
    Json(#[source] serde_json::Error),
    /// The stream ended before `messageStop` (connection closed early).
    #[error("the stream ended before messageStop")]
    Truncated,
}

// ===== impl ClientError =====

impl ClientError {
    /// The HTTP status, for [`ClientError::Service`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Service(e) => Some(e.status),
            _ => None,
        }
    }

    /// Which deadline passed, for a [`TransportError::Timeout`].
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        match self {
            ClientError::Transport(TransportError::Timeout { kind, .. }) => Some(*kind),
            _ => None,
        }
    }

    /// The service's error type (`ThrottlingException`, ...): from an HTTP error or a
    /// stream exception.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            ClientError::Service(e) => e.error_type.as_deref(),
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
            ClientError::Service(e) => e.is_retryable(),
            ClientError::Transport(TransportError::Connect { .. }) => true,
            ClientError::Transport(TransportError::Timeout { kind, .. }) => {
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
