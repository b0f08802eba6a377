//! The three routes' header bindings and shapes, checked against the Bedrock Runtime
//! service model in `../shared/reference/`, and the usage reader's accounting rules.

use std::path::Path;

use bedrock_converse::converse::Blob;
use bedrock_converse::invoke::{
    CountTokensInput, CountTokensRequest, CountTokensResponse, InvokeModelRequest, InvokeResponseHeaders,
    PerformanceConfigLatency, Route, ServiceTierType, Trace, UsageReader, FORWARDED_REQUEST_HEADERS,
    RETURNED_RESPONSE_HEADERS,
};
use serde_json::{json, Value};

fn service_model() -> Option<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/bedrock-runtime-service-2.json");
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("service model JSON")),
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "{} is missing", path.display());
            eprintln!("note: {} is missing; skipping", path.display());
            None
        }
    }
}

/// The header-bound members of a shape: `locationName`s of members with
/// `"location":"header"`, in the model's order.
fn header_members(model: &Value, shape: &str) -> Vec<String> {
    let members = model["shapes"][shape]["members"].as_object().expect(shape);
    members
        .values()
        .filter(|m| m["location"] == "header")
        .map(|m| m["locationName"].as_str().expect("name").to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn routes_match_the_service_model() {
    let Some(model) = service_model() else { return };
    for route in Route::ALL {
        let op = &model["operations"][route.operation()];
        assert_eq!(op["http"]["method"], "POST", "{route:?}");
        assert_eq!(
            op["http"]["requestUri"].as_str(),
            Some(format!("/model/{{modelId}}/{}", route.path_suffix()).as_str())
        );
        let input = op["input"]["shape"].as_str().expect("input");
        let output = op["output"]["shape"].as_str().expect("output");
        let want_in = sorted(header_members(&model, input));
        let want_out = sorted(header_members(&model, output));
        let have_in = sorted(route.request_headers().iter().map(|s| (*s).to_owned()).collect());
        let have_out = sorted(route.response_headers().iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(have_in, want_in, "{input}");
        assert_eq!(have_out, want_out, "{output}");
    }
    // The stream's exceptions are the model's ResponseStream union minus `chunk`.
    let union = model["shapes"]["ResponseStream"]["members"]
        .as_object()
        .expect("union");
    let mut names: Vec<&str> = union
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "chunk")
        .collect();
    names.sort_unstable();
    let mut ours = bedrock_converse::invoke::STREAM_EXCEPTION_TYPES.to_vec();
    ours.sort_unstable();
    assert_eq!(names, ours);
    assert_eq!(model["shapes"]["PartBody"]["max"], 1_000_000);
}

#[test]
fn forwarded_and_returned_header_lists_come_from_the_model() {
    let Some(model) = service_model() else { return };
    let text = model.to_string();
    for name in FORWARDED_REQUEST_HEADERS {
        assert!(
            text.contains(&format!("\"locationName\":\"{name}\"")),
            "{name} is not in the model"
        );
    }
    // The token-count and latency headers are the service's, not the model's; the
    // others are the model's.
    for name in RETURNED_RESPONSE_HEADERS {
        let in_model = text.contains(&format!("\"locationName\":\"{name}\""));
        let usage_header = name.contains("Token-Count") || name.ends_with("Invocation-Latency");
        assert!(in_model != usage_header, "{name}");
    }
}

#[test]
fn enums_match_the_service_model() {
    let Some(model) = service_model() else { return };
    let values = |shape: &str| -> Vec<String> {
        model["shapes"][shape]["enum"]
            .as_array()
            .expect(shape)
            .iter()
            .map(|v| v.as_str().expect("str").to_owned())
            .collect()
    };
    for v in values("Trace") {
        assert!(!matches!(Trace::from_wire(&v), Trace::Other(_)), "{v}");
        assert_eq!(Trace::from_wire(&v).as_str(), v);
    }
    for v in values("PerformanceConfigLatency") {
        assert!(!matches!(
            PerformanceConfigLatency::from_wire(&v),
            PerformanceConfigLatency::Other(_)
        ));
    }
    for v in values("ServiceTierType") {
        assert!(
            !matches!(ServiceTierType::from_wire(&v), ServiceTierType::Other(_)),
            "{v}"
        );
    }
    assert_eq!(Trace::from_wire("LOUD"), Trace::Other("LOUD".into()));
}

#[test]
fn paths_are_recognised() {
    assert_eq!(
        Route::from_path("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"),
        Some((
            "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0",
            Route::InvokeModel
        ))
    );
    assert_eq!(
        Route::from_path("/model/m/count-tokens"),
        Some(("m", Route::CountTokens))
    );
    for bad in [
        "/model//invoke",
        "/model/a/b/invoke",
        "/model/m/invoke/",
        "/models/m/invoke",
        "/model/m/converse-stream",
        "",
    ] {
        assert_eq!(Route::from_path(bad), None, "{bad}");
    }
}

#[test]
fn request_headers_follow_the_route() {
    let mut req = InvokeModelRequest::new("anthropic.claude", &b"{}"[..]);
    req.accept = Some("application/json".into());
    req.trace = Some(Trace::EnabledFull);
    req.guardrail_identifier = Some("gr1".into());
    req.guardrail_version = Some("DRAFT".into());
    req.performance_config_latency = Some(PerformanceConfigLatency::Optimized);
    assert_eq!(
        req.headers(Route::InvokeModel),
        [
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("X-Amzn-Bedrock-Trace", "ENABLED_FULL"),
            ("X-Amzn-Bedrock-GuardrailIdentifier", "gr1"),
            ("X-Amzn-Bedrock-GuardrailVersion", "DRAFT"),
            ("X-Amzn-Bedrock-PerformanceConfig-Latency", "optimized"),
        ]
    );
    let stream = req.headers(Route::InvokeModelWithResponseStream);
    assert_eq!(stream[1], ("X-Amzn-Bedrock-Accept", "application/json"));
    assert!(req.headers(Route::CountTokens).is_empty());
    // Every header a request can carry is one the route binds.
    for route in [Route::InvokeModel, Route::InvokeModelWithResponseStream] {
        for (name, _) in req.headers(route) {
            assert!(route.request_headers().contains(&name), "{name}");
        }
    }
}

#[test]
fn response_headers_are_read() {
    let h = InvokeResponseHeaders::from_headers(
        Route::InvokeModelWithResponseStream,
        [
            ("content-type", &b"application/vnd.amazon.eventstream"[..]),
            ("X-Amzn-Bedrock-Content-Type", b"application/json"),
            ("x-amzn-bedrock-service-tier", b"flex"),
            ("x-amzn-bedrock-performanceconfig-latency", b"standard"),
            ("x-amzn-bedrock-cache-read-input-token-count", b"12"),
            ("x-amzn-bedrock-input-token-count", b"not a number"),
            ("x-amzn-bedrock-output-token-count", b"\xff"),
        ],
    );
    assert_eq!(h.content_type.as_deref(), Some("application/json"));
    assert_eq!(h.service_tier, Some(ServiceTierType::Flex));
    assert_eq!(
        h.performance_config_latency,
        Some(PerformanceConfigLatency::Standard)
    );
    assert_eq!(h.cache_read_input_token_count, Some(12));
    assert_eq!((h.input_token_count, h.output_token_count), (None, None));
}

#[test]
fn count_tokens_shapes() {
    let req = CountTokensRequest {
        input: CountTokensInput::InvokeModel {
            body: Blob::from(b"{\"a\":1}".to_vec()),
        },
    };
    let v = serde_json::to_value(&req).expect("json");
    assert_eq!(v, json!({"input": {"invokeModel": {"body": "eyJhIjoxfQ=="}}}));
    assert_eq!(
        serde_json::from_value::<CountTokensRequest>(v).expect("back"),
        req
    );
    let conv: CountTokensRequest = serde_json::from_str(
        r#"{"input":{"converse":{"messages":[{"role":"user","content":[{"text":"hi"}]}]}}}"#,
    )
    .expect("converse");
    assert!(matches!(conv.input, CountTokensInput::Converse(ref m) if m.contains_key("messages")));
    let resp: CountTokensResponse = serde_json::from_str(r#"{"inputTokens":42}"#).expect("response");
    assert_eq!(resp.input_tokens, 42);
    assert!(serde_json::from_str::<CountTokensResponse>("{}").is_err());
}

#[test]
fn usage_reader_prefers_invocation_metrics_and_ignores_junk() {
    let mut u = UsageReader::new();
    assert!(!u.has_usage());
    for junk in [
        &b""[..],
        b"\xff",
        b"{",
        br#"{"type":"message_delta","usage":{"output_tokens":"x"}}"#,
    ] {
        u.observe(junk);
    }
    assert!(!u.has_usage());
    u.observe(br#"{"type":"message_start","message":{"id":"m","content":[],"usage":{"input_tokens":30,"cache_read_input_tokens":20,"output_tokens":1}}}"#);
    u.observe(br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\"usage\":{\"output_tokens\":999}"}}"#);
    u.observe(br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#);
    let before = u.usage();
    assert_eq!(
        (
            before.input_tokens,
            before.output_tokens,
            before.cache_read_input_tokens
        ),
        (30, 15, Some(20))
    );
    assert_eq!(before.invocation_latency_ms, None);
    // Key order does not matter (slower path, same answer).
    u.observe(br#"{"amazon-bedrock-invocationMetrics":{"inputTokenCount":50,"outputTokenCount":16,"invocationLatency":700,"firstByteLatency":120},"type":"message_stop"}"#);
    let after = u.usage();
    assert_eq!(
        (
            after.input_tokens,
            after.output_tokens,
            after.first_byte_latency_ms
        ),
        (50, 16, Some(120))
    );
    assert_eq!(after.cache_read_input_tokens, Some(20));
    assert_eq!(u.anthropic_usage().output_tokens, 15);
}
