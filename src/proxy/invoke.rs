//! The native-body routes: `POST /model/{modelId}/invoke`, `/invoke-with-response-stream`
//! and `/count-tokens`, forwarded by the same pipeline as the Converse routes (client
//! keys, limits, signing, timeouts, metrics, usage logs). What differs is here: which
//! request headers go upstream, and where a buffered answer's usage is.
//!
//! ```text
//! client ──Bearer, native body──► forward ──SigV4, same body, the 8 service-model headers──► Bedrock
//!        ◄── model headers, body / validated chunk frames ──┘  └─ UsageReader (per key, per route)
//! ```

use axum::extract::{Path, Request, State};
use axum::http::header::HeaderName;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::converse::TokenUsage;
use crate::invoke::{AnthropicUsage, InvokeResponseHeaders, Route};

use super::operation::Operation;
use super::{error_response, forward, Proxy};

pub(super) async fn invoke_model(
    State(proxy): State<Proxy>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    forward(proxy, model_id, request, Operation::Invoke(Route::InvokeModel)).await
}

pub(super) async fn invoke_model_with_response_stream(
    State(proxy): State<Proxy>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    let operation = Operation::Invoke(Route::InvokeModelWithResponseStream);
    forward(proxy, model_id, request, operation).await
}

pub(super) async fn count_tokens(
    State(proxy): State<Proxy>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    forward(proxy, model_id, request, Operation::Invoke(Route::CountTokens)).await
}

/// The client's headers among those `operation` forwards, as sent; no others. A header
/// sent twice, or whose value is not visible ASCII (it could not be signed as sent), is
/// refused with a 400 `ValidationException` that names it.
pub(super) fn forwarded_headers(
    headers: &HeaderMap,
    operation: Operation,
) -> Result<Vec<(HeaderName, String)>, Box<Response>> {
    let mut out = Vec::new();
    for &name in operation.forwarded_request_headers() {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else {
            continue;
        };
        let value = match (value.to_str(), values.next()) {
            (Ok(v), None) => v,
            (_, Some(_)) => return Err(invalid_header(name, "is sent more than once")),
            (Err(_), None) => return Err(invalid_header(name, "is not visible ASCII")),
        };
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        out.push((name, value.to_owned()));
    }
    Ok(out)
}

fn invalid_header(name: &str, why: &str) -> Box<Response> {
    Box::new(error_response(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        &format!("the {name} header {why}; this gateway forwards it only once, as text"),
    ))
}

/// The usage of a buffered answer of `route`: `InvokeModel`'s token-count headers (the
/// service's own count), else the `usage` of an Anthropic body; `CountTokens`'s
/// `inputTokens`.
pub(super) fn buffered_usage(
    route: Route,
    headers: &InvokeResponseHeaders,
    body: &[u8],
) -> Option<TokenUsage> {
    let (input, output) = match route {
        Route::CountTokens => (count_tokens_answer(body)?, 0),
        _ => match (headers.input_token_count, headers.output_token_count) {
            (Some(input), Some(output)) => (input, output),
            _ => {
                let u = anthropic_body_usage(body)?;
                (u.input_tokens, u.output_tokens)
            }
        },
    };
    Some(TokenUsage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input.saturating_add(output),
        ..TokenUsage::default()
    })
}

/// `inputTokens` of a `CountTokens` answer.
fn count_tokens_answer(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<crate::invoke::CountTokensResponse>(body)
        .ok()
        .map(|r| r.input_tokens)
}

/// `usage` of an Anthropic Messages body.
fn anthropic_body_usage(body: &[u8]) -> Option<AnthropicUsage> {
    #[derive(serde::Deserialize)]
    struct Body {
        usage: Option<AnthropicUsage>,
    }
    serde_json::from_slice::<Body>(body).ok()?.usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_service_model_headers_are_forwarded() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("x-amzn-bedrock-trace", HeaderValue::from_static("ENABLED"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("authorization", HeaderValue::from_static("Bearer k"));
        let op = Operation::Invoke(Route::InvokeModelWithResponseStream);
        let out = forwarded_headers(&h, op).unwrap_or_default();
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "x-amzn-bedrock-trace"]);
        h.append("accept", HeaderValue::from_static("a"));
        h.append("accept", HeaderValue::from_static("b"));
        assert!(forwarded_headers(&h, op).is_err());
    }

    #[test]
    fn buffered_usage_prefers_the_headers() {
        let body = br#"{"id":"m","usage":{"input_tokens":3,"output_tokens":4}}"#;
        let none = InvokeResponseHeaders::default();
        let u = buffered_usage(Route::InvokeModel, &none, body).map(|u| (u.input_tokens, u.output_tokens));
        assert_eq!(u, Some((3, 4)));
        let headers = InvokeResponseHeaders {
            input_token_count: Some(5),
            output_token_count: Some(6),
            ..Default::default()
        };
        let u = buffered_usage(Route::InvokeModel, &headers, body).map(|u| (u.input_tokens, u.output_tokens));
        assert_eq!(u, Some((5, 6)));
        let u = buffered_usage(Route::CountTokens, &none, br#"{"inputTokens":12}"#).map(|u| u.input_tokens);
        assert_eq!(u, Some(12));
    }
}
