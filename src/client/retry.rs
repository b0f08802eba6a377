//! Retries and error responses: the backoff policy and reading a failed HTTP response
//! into [`ServiceError`].
//!
//! Retried (while nothing has reached the caller): HTTP 429 and 5xx,
//! `ThrottlingException`, `ModelNotReadyException`, `ServiceUnavailableException`,
//! `InternalServerException`, connection failures, connect and first-byte timeouts, and
//! for streams, failures before the first event (an in-stream throttling exception, a
//! body that ends or stalls before its first frame). Never retried: 4xx other than 429
//! (validation, auth), anything after stream data was handed to the caller.

use std::time::Duration;

use serde_json::Value;

use super::error::{ClientError, ServiceError};
use crate::error_type::clean_error_type;

/// Exponential backoff with jitter.
///
/// The delay before retry `n` (1-based) is `min(max_delay, base_delay * 2^(n-1))`, of
/// which the upper half is randomized ("equal jitter": never less than half).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. `1` disables retries. Default 3.
    pub max_attempts: u32,
    /// The first delay. Default 200 ms.
    pub base_delay: Duration,
    /// The largest delay. Default 10 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (1 for the first retry), jitter included.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let full = self.base_delay.saturating_mul(1u32 << exp).min(self.max_delay);
        let half = full / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=jitter_nanos))
    }
}

/// Builds [`ServiceError`] from a failed response's status, headers and body.
/// The type comes from `x-amzn-errortype`, else the body's `__type` or `code`; the
/// message from the body's `message` or `Message`, else the body text (cut at 1 KiB).
pub(crate) fn service_error(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ClientError {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let from_body = |keys: &[&str]| {
        let obj = json.as_ref()?.as_object()?;
        keys.iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .map(str::to_string)
    };
    let error_type = header("x-amzn-errortype")
        .map(|t| clean_error_type(t).to_string())
        .or_else(|| from_body(&["__type", "code", "Code"]).map(|t| clean_error_type(&t).to_string()))
        .filter(|t| !t.is_empty());
    let message = from_body(&["message", "Message", "errorMessage"]).or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            None
        } else {
            Some(text.chars().take(1024).collect())
        }
    });
    ClientError::Service(ServiceError {
        status,
        error_type,
        message,
        request_id: header("x-amzn-requestid").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d2 = p.delay(2);
            assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200));
            let d9 = p.delay(9);
            assert!(d9 >= Duration::from_millis(150) && d9 <= Duration::from_millis(300));
        }
        assert!(p.delay(u32::MAX) <= Duration::from_millis(300));
    }

    #[test]
    fn service_error_from_header_and_body() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            http::HeaderValue::from_static("ValidationException:http://internal.amazon.com/coral/x/"),
        );
        h.insert("x-amzn-requestid", http::HeaderValue::from_static("rid"));
        let e = service_error(400, &h, br#"{"message":"bad input"}"#);
        match e {
            ClientError::Service(ServiceError {
                status,
                error_type,
                message,
                request_id,
            }) => {
                assert_eq!(status, 400);
                assert_eq!(error_type.as_deref(), Some("ValidationException"));
                assert_eq!(message.as_deref(), Some("bad input"));
                assert_eq!(request_id.as_deref(), Some("rid"));
            }
            other => panic!("{other:?}"),
        }
        let e = service_error(
            403,
            &http::HeaderMap::new(),
            br#"{"Message":"Auth failed","__type":"a#AccessDeniedException"}"#,
        );
        assert_eq!(e.error_type(), Some("AccessDeniedException"));
        assert!(e.to_string().contains("Auth failed"));
        let e = service_error(502, &http::HeaderMap::new(), b"<html>bad gateway</html>");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("bad gateway"));
    }
}
