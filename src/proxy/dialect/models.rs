//! Model names of the dialect routes: resolved as the client resolves them, and listed
//! at `GET /v1/models`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::{json_response, Dialect, DialectRoute, Proxy};
use crate::client::Endpoint;
use crate::proxy::ProxyConfig;
use crate::translate::{ApiError, ErrorClass};

/// The Bedrock model id a client's model name stands for, exactly as the client
/// resolves it ([`Config::resolve_model`](crate::client::Config::resolve_model)):
/// `<provider>/<alias>`, `<alias>`, or a raw Bedrock id (sent as written), then the
/// provider's region prefix.
///
/// # Errors
///
/// A 400 naming `model` when the name is empty or cannot be one path segment.
pub(super) fn resolve(config: &ProxyConfig, model: &str) -> Result<String, ApiError> {
    let invalid = |message: String| ApiError {
        class: ErrorClass::InvalidRequest,
        message,
        param: Some("model".to_owned()),
    };
    if model.is_empty() {
        return Err(invalid("model: a model name is required".to_owned()));
    }
    let resolved = config
        .models
        .resolve_model(model)
        .map_err(|e| invalid(format!("model: {e}")))?;
    let model_id = Endpoint::for_model(&resolved, true).model_id;
    if !ProxyConfig::model_id_allowed(&model_id) {
        return Err(invalid(format!(
            "model: `{model}` is not a model id (empty, `.` or `..`)"
        )));
    }
    Ok(model_id)
}

/// `GET /v1/models`: the configured aliases, as `<provider>/<alias>`. Anthropic's list
/// shape when the request carries `anthropic-version` or `x-api-key`, OpenAI's
/// otherwise.
pub(in crate::proxy) async fn list_models(State(proxy): State<Proxy>, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("anthropic-version") || headers.contains_key("x-api-key");
    let dialect = if anthropic {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    };
    if let Err(why) = dialect.client_key(&proxy, &headers) {
        return dialect.refuse(&proxy, why);
    }
    proxy.inner.metrics.dialect_request(DialectRoute::Models);
    let ids = model_names(&proxy.inner.config);
    let body = if anthropic {
        anthropic_list(&ids)
    } else {
        openai_list(&ids)
    };
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// `<provider>/<alias>` for every alias of the upstream provider, in name order.
fn model_names(config: &ProxyConfig) -> Vec<String> {
    config
        .models
        .providers
        .values()
        .flat_map(|p| p.models.keys().map(move |alias| format!("{}/{alias}", p.name)))
        .collect()
}

fn openai_list(ids: &[String]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "bedrock"}))
        .collect();
    json!({"object": "list", "data": data})
}

fn anthropic_list(ids: &[String]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(
            |id| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}),
        )
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": ids.first(),
        "last_id": ids.last(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Auth;

    fn config(text: &str) -> ProxyConfig {
        ProxyConfig::from_config_text(text, &|_| None).unwrap()
    }

    const TEXT: &str = r#"{
      "providers": { "bedrock": { "api": "bedrock", "key": "k", "url": "http://127.0.0.1:9/model",
        "region": "us-east-1",
        "models": { "sonnet": { "modelName": "anthropic.claude-3-sonnet" },
                    "tools": { "modelName": "us.mock.tools" } } } },
      "proxy": { "clientKeys": { "a": "a-key" } }
    }"#;

    #[test]
    fn names_resolve_as_the_client_resolves_them() {
        let c = config(TEXT);
        assert_eq!(
            resolve(&c, "bedrock/sonnet").unwrap(),
            "us-east-1.anthropic.claude-3-sonnet"
        );
        assert_eq!(
            resolve(&c, "sonnet").unwrap(),
            "us-east-1.anthropic.claude-3-sonnet"
        );
        assert_eq!(resolve(&c, "tools").unwrap(), "us.mock.tools");
        assert_eq!(resolve(&c, "mock.text").unwrap(), "us-east-1.mock.text");
        let arn = "arn:aws:bedrock:us-east-1:1:inference-profile/us.x";
        assert_eq!(resolve(&c, arn).unwrap(), arn);
        assert_eq!(model_names(&c), ["bedrock/sonnet", "bedrock/tools"]);
    }

    #[test]
    fn bad_names_name_the_model_field() {
        let c = ProxyConfig::new(
            "http://127.0.0.1:9/model/",
            Auth::Bearer(crate::client::Secret::new("k")),
            Vec::new(),
        );
        assert_eq!(resolve(&c, "anthropic.x").unwrap(), "anthropic.x");
        for bad in ["", "..", "bedrock/.."] {
            let err = resolve(&c, bad).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("model"), "{bad:?}");
        }
    }
}
