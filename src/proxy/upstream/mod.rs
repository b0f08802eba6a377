//! The upstream call: the forwarded headers, the SigV4 signature, the first-byte
//! timeout, redirects refused, and an upstream body read whole within a cap and the
//! memory budget. The client itself is `pool.rs` (a pool of our own; HTTP/1 of our own
//! in `h1.rs`, the connection driven by the response body; HTTP/2 by hyper's connection
//! API), and the configured upstream is parsed once (`target.rs`).

mod h1;
mod pool;
mod response;
mod target;

pub(super) use pool::UpstreamClient;
pub(super) use response::{UpstreamError, UpstreamResponse};
pub(super) use target::Target;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use bytes::{Bytes, BytesMut};
use tokio::sync::OwnedSemaphorePermit;

use super::admission::{reserve, Admitted};
use super::log::upstream_fault;
use super::operation::Operation;
use super::{error_response, invoke, Proxy, Refused, Rejection};

/// The headers sent upstream besides the signature: `content-type: application/json`
/// on the Converse routes; on the invoke routes the service model's request headers,
/// as the client sent them, and no others.
pub(super) fn upstream_request_headers(
    proxy: &Proxy,
    headers: &HeaderMap,
    operation: Operation,
) -> Result<Vec<(header::HeaderName, String)>, Refused> {
    match operation {
        Operation::Converse | Operation::ConverseStream => {
            Ok(vec![(header::CONTENT_TYPE, "application/json".to_owned())])
        }
        Operation::Invoke(_) => invoke::forwarded_headers(headers, operation)
            .inspect_err(|_| proxy.inner.metrics.reject(Rejection::InvalidHeader)),
    }
}

/// Sends the admitted request upstream (to its model and operation) and takes the
/// response head; a failure to get one is counted and logged here, and returned for
/// the caller to answer in its own dialect.
pub(super) async fn send_admitted(
    admitted: &Admitted,
    headers: &[(header::HeaderName, String)],
    body: Bytes,
) -> Result<UpstreamResponse, UpstreamFailure> {
    let proxy = &admitted.guard.proxy;
    let inner = &proxy.inner;
    let (key_id, model_id) = (&admitted.key_id, &admitted.model_id);
    tracing::debug!(
        key_id,
        model_id,
        operation = admitted.operation.path_suffix(),
        "forwarding"
    );
    send_upstream(proxy, model_id, admitted.operation, headers, body)
        .await
        .inspect_err(|failure| {
            inner.metrics.upstream_error(&failure.error_type);
            tracing::warn!(
                key_id,
                model_id,
                error_type = failure.error_type,
                detail = failure.detail,
                "upstream request failed"
            );
        })
}

/// The `x-amzn-errortype` of an upstream response, cleaned of its namespace suffix.
pub(super) fn upstream_error_type(upstream: &UpstreamResponse) -> Option<String> {
    upstream
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(clean_error_type)
}

/// Sends the request upstream and takes the response head; a failure to get one, or a
/// redirect, is the answer to send instead. Upstream errors are counted and logged here.
pub(super) async fn call_upstream(
    admitted: &Admitted,
    headers: &[(header::HeaderName, String)],
    body: Bytes,
) -> Result<UpstreamResponse, Refused> {
    let upstream = send_admitted(admitted, headers, body).await.map_err(|failure| {
        Box::new(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &failure.error_type,
            failure.message,
        ))
    })?;
    let status = upstream.status();
    if status.is_redirection() {
        // Never followed (see `Proxy::new`), and not passed on: the client would follow it.
        let message = format!(
            "upstream answered HTTP {}, a redirect; redirects are not followed",
            status.as_u16()
        );
        return Err(bad_gateway(admitted, "Redirect", &message, &message));
    }
    if !status.is_success() {
        let error_type = upstream_error_type(&upstream).unwrap_or_else(|| format!("Http{}", status.as_u16()));
        admitted.guard.proxy.inner.metrics.upstream_error(&error_type);
        let (key_id, model_id) = (&admitted.key_id, &admitted.model_id);
        tracing::info!(
            key_id,
            model_id,
            status = status.as_u16(),
            error_type,
            "upstream error"
        );
    }
    Ok(upstream)
}

/// Why an upstream body could not be buffered.
pub(super) enum ReadError {
    Budget,
    Broken(String),
}

/// Reads a whole upstream body within `cap` bytes and the memory budget.
pub(super) async fn read_capped(
    proxy: &Proxy,
    mut upstream: UpstreamResponse,
    cap: usize,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ReadError> {
    let budget = &proxy.inner.budget;
    let mut held = None;
    let mut body = BytesMut::new();
    // A declared length within the cap is reserved at once.
    let mut reserved = 0;
    if let Some(len) = upstream.content_length().and_then(|l| usize::try_from(l).ok()) {
        if len <= cap {
            if !reserve(budget, &mut held, len) {
                return Err(ReadError::Budget);
            }
            reserved = len;
            body.reserve(len);
        }
    }
    while let Some(chunk) = upstream
        .chunk()
        .await
        .map_err(|e| ReadError::Broken(e.to_string()))?
    {
        let grown = body.len().saturating_add(chunk.len());
        if grown > cap {
            return Err(ReadError::Broken(format!("the body exceeds {cap} bytes")));
        }
        if grown > reserved {
            if !reserve(budget, &mut held, grown - reserved) {
                return Err(ReadError::Budget);
            }
            reserved = grown;
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), held))
}

/// An upstream fault answered with a Bedrock-shaped 502 carrying `message`.
pub(super) fn bad_gateway(admitted: &Admitted, kind: &str, detail: &str, message: &str) -> Refused {
    upstream_fault(admitted, kind, detail);
    Box::new(error_response(
        StatusCode::BAD_GATEWAY,
        "ServiceUnavailableException",
        message,
    ))
}

/// `x-amzn-errortype` without its namespace suffix (`ValidationException:http://...`).
fn clean_error_type(raw: &str) -> String {
    let no_suffix = raw.split(':').next().unwrap_or(raw);
    no_suffix.rsplit('#').next().unwrap_or(no_suffix).to_owned()
}

/// An upstream call that produced no response: the type and message the client sees
/// (no upstream address in them) and the detail for the log.
pub(super) struct UpstreamFailure {
    pub(super) error_type: String,
    pub(super) message: &'static str,
    pub(super) detail: String,
}

/// Sends the request upstream, signed, and waits for the response head (bounded by the
/// first-byte timeout).
pub(super) async fn send_upstream(
    proxy: &Proxy,
    model_id: &str,
    operation: Operation,
    forwarded: &[(header::HeaderName, String)],
    body: Bytes,
) -> Result<UpstreamResponse, UpstreamFailure> {
    let config = &proxy.inner.config;
    let Some(target) = proxy.inner.target.as_ref() else {
        return Err(unreachable_upstream(UpstreamError::BadUrl.to_string()));
    };
    let path = target.path(model_id, operation.path_suffix());
    let signature = sign(&config.upstream_auth, target, &path, forwarded, &body)?;
    let mut request = HeaderMap::with_capacity(forwarded.len() + signature.len() + 2);
    for (name, value) in forwarded {
        request.append(name, header_value(value.clone())?);
    }
    for (name, value) in signature {
        request.append(name, header_value(value)?);
    }
    if !request.contains_key(header::ACCEPT) {
        request.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    let send = proxy.inner.upstream.post_to(target, path, request, body);
    match tokio::time::timeout(config.timeouts.first_byte, send).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(unreachable_upstream(e.to_string())),
        Err(_) => Err(UpstreamFailure {
            error_type: "ServiceUnavailableException".to_owned(),
            message: "the upstream sent no response in time",
            detail: format!(
                "no response head within {} ms",
                config.timeouts.first_byte.as_millis()
            ),
        }),
    }
}

/// The upstream could not be reached (`detail` says why, for the log).
fn unreachable_upstream(detail: String) -> UpstreamFailure {
    UpstreamFailure {
        error_type: "ServiceUnavailableException".to_owned(),
        message: "the upstream could not be reached",
        detail,
    }
}

/// The signature's headers of `POST path` to `target` with `forwarded` and `body`: the
/// forwarded headers are signed too, so that none can be changed on the way. SigV4's
/// plain case is signed from the target's parts (no URL built or parsed); anything
/// else goes through [`Auth::headers`](crate::client::Auth::headers) with the whole URL.
fn sign(
    auth: &crate::client::Auth,
    target: &Target,
    path: &str,
    forwarded: &[(header::HeaderName, String)],
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, UpstreamFailure> {
    let signed: Vec<(&str, &str)> = forwarded
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut request = crate::client::RequestToSign {
        method: "POST",
        url: "",
        headers: &signed,
        body,
        time: std::time::SystemTime::now(),
    };
    if let crate::client::Auth::SigV4 { credentials, region } = auth {
        // A `host` among the forwarded ones would be the general signer's to sign.
        if !forwarded.iter().any(|(name, _)| name == header::HOST) {
            let plain = crate::client::sigv4::sign_plain(credentials, region, &request, target.host(), path);
            if let Some(headers) = plain {
                return Ok(headers);
            }
        }
    }
    let url = target.url(path);
    request.url = &url;
    auth.headers(&request).map_err(|e| UpstreamFailure {
        error_type: "SigningFailed".to_owned(),
        message: "the gateway could not sign the upstream request",
        detail: e.to_string(),
    })
}

/// A header value for the upstream request (the forwarded ones were checked to be
/// visible ASCII, the signature's are).
fn header_value(value: String) -> Result<HeaderValue, UpstreamFailure> {
    HeaderValue::from_maybe_shared(Bytes::from(value)).map_err(|_| UpstreamFailure {
        error_type: "ServiceUnavailableException".to_owned(),
        message: "the upstream request could not be built",
        detail: "a header value is not valid in HTTP".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_cleaned() {
        assert_eq!(
            clean_error_type("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            "ValidationException"
        );
        assert_eq!(
            clean_error_type("aws.protocols#ThrottlingException"),
            "ThrottlingException"
        );
    }
}
