//! [`TranslateError`] (a dialect request the layer refuses) and [`ApiError`], the
//! dialect-neutral error that each dialect writes as its own error JSON or SSE event.

use std::fmt;

use crate::converse::{ExceptionKind, StreamError};

/// Why a dialect request could not become a Converse request. Always the client's
/// fault: each dialect answers it with HTTP 400 and names [`field`](Self::field).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// The body is not JSON of the request's shape.
    #[error("invalid request body: {source}")]
    InvalidJson {
        /// What serde_json says (it includes the line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A field asks for something Bedrock cannot do (`n > 1`, `logprobs`, audio
    /// output, ...); honouring the rest and dropping it would change the answer.
    #[error("{field}: {reason}")]
    Unsupported {
        /// The field, as a path into the request (`messages[2].content[0].image_url`).
        field: String,
        /// What is not supported.
        reason: &'static str,
    },
    /// A field has a value the dialect itself does not allow.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as a path into the request.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl TranslateError {
    /// The request field at fault, if one can be named.
    pub fn field(&self) -> Option<&str> {
        match self {
            TranslateError::InvalidJson { .. } => None,
            TranslateError::Unsupported { field, .. } | TranslateError::Invalid { field, .. } => Some(field),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: &'static str) -> TranslateError {
        TranslateError::Unsupported {
            field: field.into(),
            reason,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> TranslateError {
        TranslateError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What kind of failure an [`ApiError`] is; each dialect maps it to its HTTP status and
/// error `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The request is wrong (400).
    InvalidRequest,
    /// Missing or bad credentials (401).
    Authentication,
    /// Not allowed (403).
    PermissionDenied,
    /// No such model or resource (404).
    NotFound,
    /// The request body is too large (413).
    RequestTooLarge,
    /// Throttled (429).
    RateLimited,
    /// The model or service is overloaded or unavailable (503; Anthropic's 529).
    Overloaded,
    /// The model took too long (408 from Bedrock; 504 here).
    Timeout,
    /// The model failed while answering (Bedrock's 424 `ModelErrorException`,
    /// `modelStreamErrorException`, a malformed model output).
    ModelError,
    /// Anything else on the server side (500).
    Server,
}

impl ErrorClass {
    /// Whether the same request may succeed later (rate limits, overload, timeouts,
    /// server errors).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited | ErrorClass::Overloaded | ErrorClass::Timeout | ErrorClass::Server
        )
    }

    /// The class of a Bedrock HTTP error, from its status and, when known, its error type
    /// (the `x-amzn-errortype` header or the body's `__type`, with or without the
    /// `:http://...` suffix).
    pub fn from_bedrock(status: u16, error_type: Option<&str>) -> ErrorClass {
        let name = error_type.map(|t| {
            let t = t.split(':').next().unwrap_or(t);
            t.rsplit('#').next().unwrap_or(t)
        });
        match name {
            Some("ValidationException") => return ErrorClass::InvalidRequest,
            Some("AccessDeniedException") => return ErrorClass::PermissionDenied,
            Some("UnrecognizedClientException") | Some("InvalidSignatureException") => {
                return ErrorClass::Authentication
            }
            Some("ResourceNotFoundException") => return ErrorClass::NotFound,
            Some("ThrottlingException") | Some("ServiceQuotaExceededException") => {
                return ErrorClass::RateLimited
            }
            Some("ServiceUnavailableException") | Some("ModelNotReadyException") => {
                return ErrorClass::Overloaded
            }
            Some("ModelTimeoutException") => return ErrorClass::Timeout,
            Some("ModelErrorException") | Some("ModelStreamErrorException") => return ErrorClass::ModelError,
            Some("InternalServerException") => return ErrorClass::Server,
            _ => {}
        }
        match status {
            400 | 422 => ErrorClass::InvalidRequest,
            401 => ErrorClass::Authentication,
            403 => ErrorClass::PermissionDenied,
            404 => ErrorClass::NotFound,
            413 => ErrorClass::RequestTooLarge,
            429 => ErrorClass::RateLimited,
            408 | 504 => ErrorClass::Timeout,
            424 => ErrorClass::ModelError,
            503 | 529 => ErrorClass::Overloaded,
            400..=499 => ErrorClass::InvalidRequest,
            _ => ErrorClass::Server,
        }
    }
}

/// An error to report to a dialect client: a class and a message, plus the request
/// field at fault when there is one.
///
/// Build it from a [`TranslateError`], a Bedrock HTTP error ([`ApiError::from_bedrock`])
/// or a stream failure ([`ApiError::from_stream_error`]); write it with the dialect's
/// `error_json` (a whole response) or its stream writer's `error` (an SSE event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What kind of failure.
    pub class: ErrorClass,
    /// The message for the client.
    pub message: String,
    /// The request field at fault (OpenAI's `param`).
    pub param: Option<String>,
}

impl ApiError {
    /// An error of `class` with `message`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> ApiError {
        ApiError {
            class,
            message: message.into(),
            param: None,
        }
    }

    /// A Bedrock HTTP error: its status, its error type if the caller has it
    /// (`x-amzn-errortype`), and its body (`{"message": "..."}`; the body's `__type` is
    /// read when `error_type` is `None`).
    pub fn from_bedrock(status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default, alias = "Message")]
            message: Option<String>,
            #[serde(default, rename = "__type")]
            r#type: Option<String>,
        }
        let parsed: Option<Body> = serde_json::from_slice(body).ok();
        let body_type = parsed.as_ref().and_then(|b| b.r#type.clone());
        let class = ErrorClass::from_bedrock(status, error_type.or(body_type.as_deref()));
        let message = parsed
            .and_then(|b| b.message)
            .unwrap_or_else(|| match std::str::from_utf8(body) {
                Ok(text) if !text.trim().is_empty() => text.trim().chars().take(1000).collect(),
                _ => format!("Bedrock answered HTTP {status}"),
            });
        ApiError::new(class, message)
    }

    /// A stream that failed: an exception frame Bedrock sent inside the HTTP 200 stream,
    /// or a stream the assembler could not make sense of.
    pub fn from_stream_error(err: &StreamError) -> ApiError {
        match err {
            StreamError::Service(e) => {
                let class = match e.kind {
                    ExceptionKind::Throttling => ErrorClass::RateLimited,
                    ExceptionKind::ServiceUnavailable => ErrorClass::Overloaded,
                    ExceptionKind::InternalServer => ErrorClass::Server,
                    ExceptionKind::Validation => ErrorClass::InvalidRequest,
                    ExceptionKind::ModelStreamError => ErrorClass::ModelError,
                    ExceptionKind::ModelTimeout => ErrorClass::Timeout,
                    _ => ErrorClass::Server,
                };
                ApiError::new(class, e.to_string())
            }
            StreamError::Incomplete(inc) => match &inc.exception {
                Some(e) => ApiError::from_stream_error(&StreamError::Service(e.clone())),
                None => ApiError::new(ErrorClass::Server, err.to_string()),
            },
            other => ApiError::new(ErrorClass::Server, other.to_string()),
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.class.is_retryable()
    }
}

impl From<&TranslateError> for ApiError {
    fn from(e: &TranslateError) -> ApiError {
        ApiError {
            class: ErrorClass::InvalidRequest,
            message: e.to_string(),
            param: e.field().map(str::to_owned),
        }
    }
}

impl From<TranslateError> for ApiError {
    fn from(e: TranslateError) -> ApiError {
        ApiError::from(&e)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.class, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_errors_classify() {
        let e = ApiError::from_bedrock(400, None, br#"{"message":"bad input"}"#);
        assert_eq!(
            (e.class, e.message.as_str()),
            (ErrorClass::InvalidRequest, "bad input")
        );
        let e = ApiError::from_bedrock(
            400,
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            b"{}",
        );
        assert_eq!(e.class, ErrorClass::RateLimited);
        assert!(e.is_retryable());
        let e = ApiError::from_bedrock(
            500,
            None,
            br#"{"__type":"com.amazon#ModelTimeoutException","Message":"slow"}"#,
        );
        assert_eq!((e.class, e.message.as_str()), (ErrorClass::Timeout, "slow"));
        assert_eq!(
            ApiError::from_bedrock(503, None, b"").class,
            ErrorClass::Overloaded
        );
        assert_eq!(ApiError::from_bedrock(418, None, b"teapot").message, "teapot");
    }
}
