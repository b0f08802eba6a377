//! Model names of the dialect routes: resolved as the client resolves them, and listed
//! at `GET /v1/models`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{json_response, Dialect, DialectRoute, Proxy};
use crate::client::request::build_body;
use crate::client::{ClientError, ConfigError, Endpoint};
use crate::proxy::ProxyConfig;
use crate::translate::{ApiError, ConverseRequest, ErrorClass};

/// The model a client's model name stands for.
#[derive(Debug)]
pub(super) struct Target {
    /// The Bedrock model id (alias resolved, region prefix applied).
    pub(super) model_id: String,
    /// The alias's `extraPayload` (empty for a raw id).
    pub(super) extra_payload: Map<String, Value>,
}

/// The model a client's model name stands for, exactly as the client resolves it
/// ([`Config::resolve_model`](crate::client::Config::resolve_model)): `<provider>/<alias>`,
/// `<alias>`, or a raw Bedrock id (sent as written), then the provider's region prefix.
///
/// # Errors
///
/// A 400 naming `model` when the name is empty or cannot be one path segment.
pub(super) fn resolve(config: &ProxyConfig, model: &str) -> Result<Target, ApiError> {
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
    Ok(Target {
        model_id,
        extra_payload: resolved.extra_payload,
    })
}

/// The Converse body sent upstream. With an `extraPayload`, the translated request is
/// deep-merged over it exactly as the client merges a request's parameters over the
/// model's ([`build_body`]: shorthand keys such as `temperature` or `top_k` put in
/// Converse shape first, the request's values win, `stream` is never sent, and
/// `inferenceConfig.maxTokens` defaults to 1024 when neither sets it).
///
/// # Errors
///
/// A 400 naming the parameter when the merged body fails the client's checks (a
/// `temperature` outside 0..=1, say).
pub(super) fn converse_body(
    converse: &ConverseRequest,
    extra_payload: &Map<String, Value>,
) -> Result<Bytes, ApiError> {
    if extra_payload.is_empty() {
        return Ok(Bytes::from(converse.to_json()));
    }
    // Through the JSON text, so that an `f32` reads back as written (`0.7`, not
    // `0.699999988079071`).
    let json = converse.to_json();
    let mut over = serde_json::from_slice::<Map<String, Value>>(&json).unwrap_or_default();
    let messages = over
        .remove("messages")
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let merged = build_body(extra_payload, &over, messages).map_err(|e| {
        let param = match &e {
            ClientError::Config(ConfigError::InvalidParameter { name, .. }) => Some(name.clone()),
            _ => None,
        };
        ApiError {
            class: ErrorClass::InvalidRequest,
            message: format!("the request merged with the model's extraPayload: {e}"),
            param,
        }
    })?;
    Ok(Bytes::from(merged.body.to_string()))
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
            resolve(&c, "bedrock/sonnet").unwrap().model_id,
            "us-east-1.anthropic.claude-3-sonnet"
        );
        assert_eq!(
            resolve(&c, "sonnet").unwrap().model_id,
            "us-east-1.anthropic.claude-3-sonnet"
        );
        assert_eq!(resolve(&c, "tools").unwrap().model_id, "us.mock.tools");
        assert_eq!(resolve(&c, "mock.text").unwrap().model_id, "us-east-1.mock.text");
        let arn = "arn:aws:bedrock:us-east-1:1:inference-profile/us.x";
        assert_eq!(resolve(&c, arn).unwrap().model_id, arn);
        assert_eq!(model_names(&c), ["bedrock/sonnet", "bedrock/tools"]);
    }

    #[test]
    fn bad_names_name_the_model_field() {
        let c = ProxyConfig::new(
            "http://127.0.0.1:9/model/",
            Auth::Bearer(crate::client::Secret::new("k")),
            Vec::new(),
        );
        assert_eq!(resolve(&c, "anthropic.x").unwrap().model_id, "anthropic.x");
        for bad in ["", "..", "bedrock/.."] {
            let err = resolve(&c, bad).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("model"), "{bad:?}");
        }
    }

    #[test]
    fn an_alias_extra_payload_is_merged_under_the_request() {
        let translated = crate::translate::openai::translate_request(
            br#"{"model": "m", "temperature": 0.7, "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 50}"#,
        )
        .unwrap();
        let extra = json!({"temperature": 0.2, "top_k": 200, "stream": false,
            "additionalModelRequestFields": {"x": 1}, "guardrailConfig": {"guardrailIdentifier": "g"}});
        let Value::Object(extra) = extra else {
            unreachable!()
        };
        let body = converse_body(&translated.converse, &extra).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["inferenceConfig"]["temperature"], 0.7, "{body}");
        assert_eq!(body["inferenceConfig"]["maxTokens"], 50, "{body}");
        assert_eq!(
            body["additionalModelRequestFields"],
            json!({"x": 1, "top_k": 200})
        );
        assert_eq!(body["guardrailConfig"]["guardrailIdentifier"], "g");
        assert_eq!(body["messages"][0]["content"][0]["text"], "Hi");
        assert!(body.get("stream").is_none(), "{body}");
        // No extraPayload: the translated bytes as they are.
        let plain = converse_body(&translated.converse, &Map::new()).unwrap();
        assert_eq!(plain, translated.converse.to_json());
    }

    #[test]
    fn a_merge_the_client_would_refuse_is_a_400_naming_the_parameter() {
        let translated = crate::translate::openai::translate_request(
            br#"{"model": "m", "messages": [{"role": "user", "content": "Hi"}]}"#,
        )
        .unwrap();
        let Value::Object(extra) = json!({"temperature": 3.0}) else {
            unreachable!()
        };
        let err = converse_body(&translated.converse, &extra).unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidRequest);
        assert_eq!(err.param.as_deref(), Some("temperature"), "{err:?}");
    }
}
