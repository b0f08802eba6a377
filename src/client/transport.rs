//! Sending: the retry loop, one signed request, and bounded body reads with the idle
//! timeout.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::auth::{Auth, RequestToSign};
use super::endpoint::Endpoint;
use super::error::{AuthError, ClientError, CredentialSources, ResponseError, TimeoutKind, TransportError};
use super::{retry, BedrockClient};

/// A response received with a success status, before its body is read.
pub(super) struct Head {
    pub(super) response: reqwest::Response,
}

impl BedrockClient {
    /// Sends with retries until a success status (or a final error).
    /// `attempt` counts attempts across calls (the first is 1); it is left at the
    /// number of the attempt that succeeded or failed last.
    pub(super) async fn send(
        &self,
        endpoint: &Endpoint,
        auth: Option<&Auth>,
        body: Bytes,
        headers: &[(&'static str, &str)],
        attempt: &mut u32,
    ) -> Result<Head, ClientError> {
        let policy = self.inner.options.retry;
        loop {
            let attempt_no = *attempt;
            let err = match self.send_once(endpoint, auth, body.clone(), headers).await {
                Ok(response) if response.status().is_redirection() => {
                    let status = response.status().as_u16();
                    tracing::debug!(status, "redirect refused");
                    return Err(ClientError::Transport(TransportError::Redirect { status }));
                }
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(
                        status = response.status().as_u16(),
                        attempt = attempt_no,
                        "response"
                    );
                    return Ok(Head { response });
                }
                Ok(response) => self.read_error(response).await,
                Err(e) => e,
            };
            if err.is_retryable() && attempt_no < policy.max_attempts.max(1) {
                let delay = policy.delay(attempt_no);
                tracing::debug!(error = %err, attempt = attempt_no, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                *attempt += 1;
                continue;
            }
            tracing::debug!(error = %err, attempt = attempt_no, "request failed");
            return Err(err);
        }
    }

    async fn send_once(
        &self,
        endpoint: &Endpoint,
        auth: Option<&Auth>,
        body: Bytes,
        headers: &[(&'static str, &str)],
    ) -> Result<reqwest::Response, ClientError> {
        let given = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let accept = given("accept").unwrap_or(if endpoint.stream {
            "application/vnd.amazon.eventstream"
        } else {
            "application/json"
        });
        let content_type = given("content-type").unwrap_or("application/json");
        let auth = auth.ok_or_else(|| {
            ClientError::Auth(AuthError::MissingCredentials {
                searched: CredentialSources::ProviderKeyAndAws,
            })
        })?;
        let signed = [("content-type", content_type)];
        let auth_headers = auth.headers(&RequestToSign {
            method: "POST",
            url: &endpoint.wire,
            headers: &signed,
            body: &body,
            time: (self.inner.clock)(),
        })?;
        let mut req = self
            .inner
            .http
            .post(&endpoint.wire)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, accept);
        for (name, value) in headers {
            if !name.eq_ignore_ascii_case("accept") && !name.eq_ignore_ascii_case("content-type") {
                req = req.header(*name, *value);
            }
        }
        for (name, value) in auth_headers {
            let mut value =
                http::HeaderValue::from_str(&value).map_err(|_| AuthError::InvalidHeaderValue { name })?;
            value.set_sensitive(true);
            req = req.header(name, value);
        }
        let send = req.body(body).send();
        let first_byte = self.inner.options.timeouts.first_byte;
        match tokio::time::timeout(first_byte, send).await {
            Err(_) => Err(ClientError::Transport(TransportError::Timeout {
                kind: TimeoutKind::FirstByte,
                after: first_byte,
            })),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if e.is_timeout() && e.is_connect() => {
                Err(ClientError::Transport(TransportError::Timeout {
                    kind: TimeoutKind::Connect,
                    after: self.inner.options.timeouts.connect,
                }))
            }
            Ok(Err(e)) => Err(ClientError::Transport(TransportError::Connect {
                url: endpoint.display.clone(),
                source: e.without_url(),
            })),
        }
    }

    /// Reads an error response (bounded) into [`ServiceError`](super::error::ServiceError).
    async fn read_error(&self, response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match self.read_body_limited(response, 64 << 10).await {
            Ok(b) => b,
            Err(_) => Bytes::new(),
        };
        let err = retry::service_error(status, &headers, &body);
        tracing::debug!(
            status,
            error_type = err.error_type().unwrap_or(""),
            "error response"
        );
        err
    }

    /// Reads a `/converse` body; more than `max_body_len` bytes is an error.
    pub(super) async fn read_body(&self, response: reqwest::Response) -> Result<Bytes, ClientError> {
        let limit = self.inner.options.max_body_len;
        let body = self.read_body_limited(response, limit.saturating_add(1)).await?;
        if body.len() > limit {
            return Err(ClientError::Response(ResponseError::BodyTooLarge { limit }));
        }
        Ok(body)
    }

    /// Reads a whole body with the idle timeout between chunks, up to `limit` bytes
    /// (the rest is not read).
    async fn read_body_limited(
        &self,
        response: reqwest::Response,
        limit: usize,
    ) -> Result<Bytes, ClientError> {
        let idle = self.inner.options.timeouts.idle;
        let mut body = response.bytes_stream();
        let mut out = bytes::BytesMut::new();
        loop {
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => {
                    return Err(ClientError::Transport(TransportError::Timeout {
                        kind: TimeoutKind::Idle,
                        after: idle,
                    }))
                }
                Ok(None) => return Ok(out.freeze()),
                Ok(Some(Err(e))) => {
                    return Err(ClientError::Transport(TransportError::Body(e.without_url())))
                }
                Ok(Some(Ok(chunk))) => {
                    let room = limit.saturating_sub(out.len());
                    out.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    if out.len() >= limit {
                        return Ok(out.freeze());
                    }
                }
            }
        }
    }
}

/// Runs `call`, ending it with a total-timeout error once `deadline` passes.
pub(super) async fn within_deadline<T>(
    deadline: Option<(Duration, Instant)>,
    call: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match deadline {
        Some((after, at)) => tokio::time::timeout_at(at, call)
            .await
            .unwrap_or(Err(ClientError::Transport(TransportError::Timeout {
                kind: TimeoutKind::Total,
                after,
            }))),
        None => call.await,
    }
}
