//! The seed document's examples, verbatim: its config blocks (JSON with comments, as
//! printed), its generated URLs, the `build-endpoint` examples, the stream default and
//! the parameter defaults.

#![cfg(feature = "client")]

use bedrock_converse::client::request::{build_request, RequestParams};
use bedrock_converse::client::{build_endpoint, ClientError, Config, ConfigError, Endpoint, ProviderConfig};
use bedrock_converse::converse::Message;
use serde_json::{json, Value};

mod common;

/// `${env:BEDROCK_API_KEY}` resolves to this in every test.
const KEY: &str = "seed-test-key";

fn env(name: &str) -> Option<String> {
    (name == "BEDROCK_API_KEY").then(|| KEY.to_string())
}

fn parse(text: &str) -> Config {
    match Config::parse_with_env(text, &env) {
        Ok(c) => c,
        Err(e) => panic!("seed config does not parse: {e}\n{text}"),
    }
}

use common::seed::{CONFIG_AUTH_DIRECT, CONFIG_AUTH_PROXY, CONFIG_EU_WEST_1, CONFIG_PROXY, CONFIG_US_WEST_2};

/// The URL a seed model is called at, with its own stream default.
fn url(config: &Config, model: &str) -> String {
    let m = config
        .resolve_model(model)
        .unwrap_or_else(|e| panic!("{model}: {e}"));
    Endpoint::for_model(&m, m.stream_default()).display
}

#[test]
fn seed_config_proxy_parses_and_generates_the_seed_urls() {
    let c = parse(CONFIG_PROXY);
    let p = c.default_provider().expect("provider");
    assert_eq!(p.key.as_deref(), Some(KEY));
    assert_eq!(p.region, "us-east-1");
    assert_eq!(p.models.len(), 3);
    // "Generated URLs:" (the seed abbreviates the base as `https://api.company.com/...`).
    let sonnet = url(&c, "bedrock/claude-3-sonnet");
    let haiku = url(&c, "bedrock/claude-3-haiku");
    assert_eq!(
        sonnet,
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/\
         us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse-stream"
    );
    assert_eq!(
        haiku,
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/\
         us-east-1.anthropic.claude-3-haiku-20240307-v1:0/converse"
    );
    for (full, abbreviated) in [
        (
            &sonnet,
            "https://api.company.com/.../us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse-stream",
        ),
        (
            &haiku,
            "https://api.company.com/.../us-east-1.anthropic.claude-3-haiku-20240307-v1:0/converse",
        ),
    ] {
        let (head, tail) = abbreviated.split_once("/.../").expect("abbreviation");
        assert!(
            full.starts_with(head) && full.ends_with(tail),
            "{full} vs {abbreviated}"
        );
    }
    // Opus streams by default too.
    assert!(url(&c, "bedrock/claude-3-opus").ends_with("/converse-stream"));
}

#[test]
fn seed_config_regions_generated_urls() {
    for (config, model, expected) in [
        (
            CONFIG_US_WEST_2,
            "bedrock/claude-3-sonnet",
            "https://bedrock-runtime.us-west-2.amazonaws.com/model/us-west-2.anthropic.claude-3-sonnet-20240229-v1:0/converse-stream",
        ),
        (
            CONFIG_EU_WEST_1,
            "bedrock/cohere-command-r",
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu-west-1.cohere.command-r-v1:0/converse",
        ),
    ] {
        assert_eq!(url(&parse(config), model), expected);
    }
}

#[test]
fn seed_url_configuration_patterns() {
    // Custom proxy URL: both operations.
    let proxy = ProviderConfig::new("bedrock", "us-east-1")
        .with_url("https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/");
    let id = "anthropic.claude-3-sonnet-20240229-v1:0";
    assert_eq!(
        build_endpoint(&proxy, id, false),
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse"
    );
    assert_eq!(
        build_endpoint(&proxy, id, true),
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse-stream"
    );
    // Standard AWS endpoint (`{"region": "us-east-1" // No url specified }`).
    let fragment = r#"{
  "region": "us-east-1"
  // No url specified
}"#;
    let stripped = bedrock_converse::client::config::strip_json_comments(fragment);
    let v: Value = serde_json::from_str(&stripped).expect("fragment parses");
    let region = v["region"].as_str().expect("region");
    let aws = ProviderConfig::new("bedrock", region);
    assert_eq!(
        build_endpoint(&aws, id, false),
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse"
    );
    // The URL fragment `{"url": "..."}` parses as written too.
    let v: Value = serde_json::from_str(
        r#"{
  "url": "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/"
}"#,
    )
    .expect("fragment parses");
    assert_eq!(v["url"], proxy.url.as_deref().unwrap_or_default());
}

#[test]
fn seed_build_endpoint_examples() {
    let proxy = ProviderConfig::new("bedrock", "us-east-1").with_url("https://proxy.example.com/model/");
    assert_eq!(
        build_endpoint(&proxy, "anthropic.claude-3-sonnet-20240229-v1:0", false),
        "https://proxy.example.com/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse"
    );
    let aws = ProviderConfig::new("bedrock", "eu-west-1");
    assert_eq!(
        build_endpoint(&aws, "cohere.command-r-v1:0", true),
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu-west-1.cohere.command-r-v1:0/converse-stream"
    );
}

#[test]
fn seed_auth_configs_parse() {
    let c = parse(CONFIG_AUTH_PROXY);
    let p = c.default_provider().expect("provider");
    assert_eq!(
        p.url.as_deref(),
        Some("https://your-proxy.example.com/api/bedrock/")
    );
    assert_eq!(p.key.as_deref(), Some(KEY));
    assert_eq!(
        url(&c, "bedrock/anthropic.claude-3-sonnet-20240229-v1:0"),
        "https://your-proxy.example.com/api/bedrock/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse-stream"
    );
    let c = parse(CONFIG_AUTH_DIRECT);
    let p = c.default_provider().expect("provider");
    assert!(p.url.is_none());
    assert_eq!(p.region, "us-east-1");
}

#[test]
fn seed_key_env_var_unset_is_named() {
    let err = Config::parse_with_env(CONFIG_US_WEST_2, &|_| None).expect_err("unset");
    match err {
        ClientError::Config(ConfigError::EnvVarUnset { var, .. }) => assert_eq!(var, "BEDROCK_API_KEY"),
        other => panic!("{other:?}"),
    }
    assert!(Config::parse_with_env(CONFIG_US_WEST_2, &|_| None)
        .map(|_| ())
        .unwrap_err()
        .to_string()
        .contains("BEDROCK_API_KEY"));
}

#[test]
fn seed_stream_defaults() {
    let c = parse(CONFIG_PROXY);
    for (model, stream) in [
        ("bedrock/claude-3-sonnet", true),
        ("bedrock/claude-3-opus", true),
        ("bedrock/claude-3-haiku", false),
    ] {
        let m = c.resolve_model(model).expect("model");
        assert_eq!(m.stream_default(), stream, "{model}");
        let req = build_request(&m, &[Message::user("hi")], &RequestParams::default()).expect("request");
        assert_eq!(req.stream, stream, "{model}");
        assert!(req.body.get("stream").is_none(), "stream is never sent");
    }
    let c = parse(CONFIG_EU_WEST_1);
    assert!(!c
        .resolve_model("bedrock/cohere-command-r")
        .expect("model")
        .stream_default());
    let c = parse(CONFIG_US_WEST_2);
    assert!(c
        .resolve_model("bedrock/claude-3-sonnet")
        .expect("model")
        .stream_default());
}

#[test]
fn seed_request_examples() {
    let c = parse(CONFIG_PROXY);
    let sonnet = c.resolve_model("bedrock/claude-3-sonnet").expect("model");
    let messages = [Message::user("hi")];
    let request = |model, params: RequestParams| build_request(model, &messages, &params).expect("request");
    // (provider/request bedrock-config messages {:temperature 0.7})
    let r = request(
        &sonnet,
        RequestParams {
            temperature: Some(0.7),
            ..Default::default()
        },
    );
    assert!(r.stream);
    // {:temperature 0.7 :stream false}
    let r = request(
        &sonnet,
        RequestParams {
            temperature: Some(0.7),
            stream: Some(false),
            ..Default::default()
        },
    );
    assert!(!r.stream);
    assert_eq!(
        Endpoint::for_model(&sonnet, r.stream).display,
        "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse"
    );
    // {:tools [tool-spec] :temperature 0.7 :top_k 200 :stream true}
    let tool = json!({"name": "get_weather", "description": "Weather of a city",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}});
    let r = request(
        &sonnet,
        RequestParams {
            tools: vec![tool.clone()],
            temperature: Some(0.7),
            top_k: Some(200),
            stream: Some(true),
            ..Default::default()
        },
    );
    assert!(r.stream);
    assert_eq!(
        r.body["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );
    assert_eq!(
        r.body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["type"],
        "object"
    );
    assert_eq!(r.body["additionalModelRequestFields"]["top_k"], 200);
    // {:tools [tool-spec] :temperature 0.7 :stream false}
    let haiku = c.resolve_model("bedrock/claude-3-haiku").expect("model");
    let r = request(
        &haiku,
        RequestParams {
            tools: vec![tool],
            temperature: Some(0.7),
            stream: Some(false),
            ..Default::default()
        },
    );
    assert!(!r.stream);
    assert_eq!(
        r.body["inferenceConfig"]["temperature"], 0.7,
        "per-request params override extraPayload"
    );
}

#[test]
fn seed_parameter_defaults_and_mapping() {
    let c = parse(CONFIG_PROXY);
    let messages = [Message::user("hi")];
    let body = |model: &str, params: RequestParams| {
        let m = c.resolve_model(model).expect("model");
        build_request(&m, &messages, &params).expect("request").body
    };
    // Sonnet: temperature 0.7 and top_k 200 from extraPayload; max_tokens default 1024.
    let b = body("bedrock/claude-3-sonnet", RequestParams::default());
    assert_eq!(
        b["inferenceConfig"],
        json!({"temperature": 0.7, "maxTokens": 1024})
    );
    assert_eq!(b["additionalModelRequestFields"], json!({"top_k": 200}));
    assert_eq!(
        b["messages"],
        json!([{"role": "user", "content": [{"text": "hi"}]}])
    );
    // Opus: max_tokens 2048 from extraPayload.
    let b = body("bedrock/claude-3-opus", RequestParams::default());
    assert_eq!(
        b["inferenceConfig"],
        json!({"temperature": 0.5, "maxTokens": 2048})
    );
    assert!(
        b.get("additionalModelRequestFields").is_none(),
        "top_k is only sent when configured"
    );
    // Haiku: `stream` consumed, temperature 0.3.
    let b = body("bedrock/claude-3-haiku", RequestParams::default());
    assert_eq!(
        b["inferenceConfig"],
        json!({"temperature": 0.3, "maxTokens": 1024})
    );
    // stopSequences go to inferenceConfig; per-request values override.
    let b = body(
        "bedrock/claude-3-opus",
        RequestParams {
            stop_sequences: Some(vec!["END".into()]),
            max_tokens: Some(100),
            temperature: Some(0.0),
            ..Default::default()
        },
    );
    assert_eq!(
        b["inferenceConfig"],
        json!({"temperature": 0.0, "maxTokens": 100, "stopSequences": ["END"]})
    );
    // temperature is validated (0.0 to 1.0).
    let m = c.resolve_model("bedrock/claude-3-opus").expect("model");
    let err = build_request(
        &m,
        &messages,
        &RequestParams {
            temperature: Some(1.01),
            ..Default::default()
        },
    )
    .expect_err("out of range");
    assert!(
        matches!(err, ClientError::Config(ConfigError::InvalidParameter { ref name, .. }) if name == "temperature"),
        "{err:?}"
    );
    // Model ids: `bedrock/<alias>`; an unknown alias is the raw model id.
    let raw = c.resolve_model("bedrock/anthropic.claude-v2").expect("model");
    assert_eq!(raw.model_name, "anthropic.claude-v2");
    assert!(raw.alias.is_none());
}
