//! The official `anthropic` Python SDK's `AnthropicBedrock` client (and boto3 for
//! `count_tokens`, which that client does not offer on Bedrock), pointed at the built-in
//! server and at the gateway in front of it: streaming and not, text, tool use with a
//! second turn, thinking with its signature, `count_tokens`, a mid-stream exception,
//! throttling.
//!
//! Directly, the SDK signs with SigV4 and the server verifies the signature. Through the
//! gateway (`bedrock-converse proxy` over HTTPS, as botocore requires for a bearer token),
//! the SDK sends a client key (`api_key`, `Authorization: Bearer`) and the gateway signs
//! upstream with SigV4, which the server verifies: the deployment where no developer
//! holds AWS credentials.
//!
//! Needs the SDKs (`python_with_sdks()`): skipped with a message without them, a failure
//! when `CI` is set.

#![cfg(feature = "server")]

use bedrock_converse::server::{MockBedrock, MockBedrockHandle, Operation, Scenario};
use serde_json::Value;

mod common;
use common::{python_with_sdks, run_python};

const AKID: &str = "AKIDPYTHONINVOKE";
const SECRET: &str = "python-invoke-secret";

/// The `AnthropicBedrock` client and the boto3 `bedrock-runtime` client of every script,
/// from the environment: SigV4 with `AKID`/`SECRET`, or the gateway's client key
/// `API_KEY` over HTTPS trusting `CA`.
const PRELUDE: &str = r#"
import json, os, sys
import anthropic
import boto3
from anthropic import AnthropicBedrock

if os.environ.get("API_KEY"):
    client = AnthropicBedrock(
        base_url=os.environ["BASE_URL"],
        api_key=os.environ["API_KEY"],
        aws_region="us-east-1",
        max_retries=int(os.environ.get("MAX_RETRIES", "0")),
        http_client=anthropic.DefaultHttpxClient(verify=os.environ["CA"]),
    )
    os.environ["AWS_BEARER_TOKEN_BEDROCK"] = os.environ["API_KEY"]
    runtime = boto3.client("bedrock-runtime", endpoint_url=os.environ["BASE_URL"],
                           region_name="us-east-1", verify=os.environ["CA"])
else:
    client = AnthropicBedrock(
        base_url=os.environ["BASE_URL"],
        aws_access_key=os.environ["AKID"],
        aws_secret_key=os.environ["SECRET"],
        aws_region="us-east-1",
        max_retries=int(os.environ.get("MAX_RETRIES", "0")),
    )
    runtime = boto3.client("bedrock-runtime", endpoint_url=os.environ["BASE_URL"],
                           region_name="us-east-1", aws_access_key_id=os.environ["AKID"],
                           aws_secret_access_key=os.environ["SECRET"])
USER = [{"role": "user", "content": "Hello from Python"}]

def out(value):
    print(json.dumps(value))
"#;

/// Where a script's SDK clients point.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The built-in server itself.
    Server,
    /// `bedrock-converse proxy` (HTTPS, client keys) in front of it.
    #[cfg(feature = "proxy")]
    Gateway,
}

/// Every target this build can run.
const TARGETS: &[Target] = &[
    Target::Server,
    #[cfg(feature = "proxy")]
    Target::Gateway,
];

/// The built-in server, verifying SigV4 with `AKID`/`SECRET`, and what the scripts
/// reach it through.
struct Setup {
    server: MockBedrockHandle,
    #[cfg(feature = "proxy")]
    gateway: Option<(common::Gateway, tls::TestCertificate)>,
}

async fn start(target: Target) -> Setup {
    let server = MockBedrock::builder()
        .sigv4_credentials(AKID, SECRET)
        .start()
        .await
        .expect("server");
    match target {
        Target::Server => Setup {
            server,
            #[cfg(feature = "proxy")]
            gateway: None,
        },
        #[cfg(feature = "proxy")]
        Target::Gateway => {
            let gateway = tls::gateway_in_front_of(&server).await;
            Setup {
                server,
                gateway: Some(gateway),
            }
        }
    }
}

impl Setup {
    /// The environment of a script: its base URL and credentials.
    fn env(&self) -> Vec<(&'static str, String)> {
        #[cfg(feature = "proxy")]
        if let Some((gateway, cert)) = &self.gateway {
            return vec![
                ("BASE_URL", format!("https://127.0.0.1:{}", gateway.addr.port())),
                ("API_KEY", tls::CLIENT_KEY.to_owned()),
                ("CA", cert.ca_path()),
                ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ];
        }
        vec![
            ("BASE_URL", self.server.endpoint()),
            ("AKID", AKID.to_owned()),
            ("SECRET", SECRET.to_owned()),
        ]
    }

    async fn shutdown(self) {
        #[cfg(feature = "proxy")]
        drop(self.gateway);
        self.server.shutdown().await.expect("shutdown");
    }
}

/// The gateway over HTTPS in front of the server, signing upstream with SigV4.
#[cfg(feature = "proxy")]
mod tls {
    use std::path::PathBuf;

    use bedrock_converse::client::{Auth, AwsCredentials, Secret};
    use bedrock_converse::proxy::{ClientKey, ProxyConfig, TlsSettings};
    use bedrock_converse::server::{self_signed_pem, MockBedrockHandle};

    use super::common::Gateway;
    use super::{AKID, SECRET};

    pub(super) const CLIENT_KEY: &str = "python-invoke-client-key";

    /// A self-signed certificate for `127.0.0.1` in a directory of its own, removed on drop.
    pub(super) struct TestCertificate(PathBuf);

    impl TestCertificate {
        fn new() -> TestCertificate {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("bc-invoke-python-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let (cert, key) = self_signed_pem().expect("certificate");
            std::fs::write(dir.join("cert.pem"), cert).expect("write");
            std::fs::write(dir.join("key.pem"), key).expect("write");
            TestCertificate(dir)
        }

        /// The certificate a client trusts.
        pub(super) fn ca_path(&self) -> String {
            self.0.join("cert.pem").to_string_lossy().into_owned()
        }
    }

    impl Drop for TestCertificate {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub(super) async fn gateway_in_front_of(server: &MockBedrockHandle) -> (Gateway, TestCertificate) {
        let cert = TestCertificate::new();
        let upstream = Auth::SigV4 {
            credentials: AwsCredentials {
                access_key_id: AKID.to_owned(),
                secret_access_key: Secret::new(SECRET),
                session_token: None,
            },
            region: "us-east-1".to_owned(),
        };
        let keys = vec![ClientKey {
            id: "python".to_owned(),
            secret: CLIENT_KEY.to_owned(),
        }];
        let mut config = ProxyConfig::new(server.url(), upstream, keys);
        config.tls = Some(TlsSettings::new(cert.0.join("cert.pem"), cert.0.join("key.pem")));
        (Gateway::start(config).await, cert)
    }
}

/// Runs `PRELUDE` + `script` against `setup`'s target (off the runtime's threads, which
/// serve the requests) and parses the JSON it prints last.
async fn python(setup: &Setup, script: &str, extra: &[(&'static str, &'static str)]) -> Option<Value> {
    let interpreter = python_with_sdks()?;
    let script = format!("{PRELUDE}\n{script}");
    let mut env = setup.env();
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let stdout = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_python(&interpreter, &script, &env)
    })
    .await
    .expect("python task");
    let last = stdout.lines().last().expect("the script prints its result");
    Some(serde_json::from_str(last).expect("JSON result"))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_unary_and_streaming() {
    for &target in TARGETS {
        eprintln!("target: {target:?}");
        let setup = start(target).await;
        let server = &setup.server;
        let script = r#"
m = client.messages.create(model="anthropic.mock.text", max_tokens=256, messages=USER)
pieces = []
with client.messages.stream(model="us.anthropic.mock.text", max_tokens=256, messages=USER) as s:
    for text in s.text_stream:
        pieces.append(text)
    final = s.get_final_message()
out({"unary": m.model_dump(), "pieces": pieces, "final": final.model_dump()})
"#;
        let Some(result) = python(&setup, script, &[]).await else {
            return;
        };
        let unary_text = str_at(&result, "/unary/content/0/text");
        assert!(
            unary_text.starts_with("You said: \"Hello from Python\"."),
            "{result}"
        );
        assert_eq!(str_at(&result, "/unary/stop_reason"), "end_turn");
        assert!(u64_at(&result, "/unary/usage/input_tokens") > 0);
        assert!(str_at(&result, "/unary/id").starts_with("msg_bdrk_"));
        let pieces: Vec<&str> = result["pieces"]
            .as_array()
            .expect("pieces")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(pieces.len() > 10, "the text arrives in pieces: {pieces:?}");
        assert_eq!(pieces.concat(), unary_text);
        assert_eq!(str_at(&result, "/final/content/0/text"), unary_text);
        assert_eq!(str_at(&result, "/final/stop_reason"), "end_turn");
        assert_eq!(
            u64_at(&result, "/final/usage/output_tokens"),
            u64_at(&result, "/unary/usage/output_tokens")
        );
        let ops: Vec<Option<Operation>> = server.requests().iter().map(|r| r.operation).collect();
        assert_eq!(
            ops,
            [
                Some(Operation::InvokeModel),
                Some(Operation::InvokeModelWithResponseStream)
            ]
        );
        let first = server.requests().into_iter().next().expect("recorded");
        assert_eq!(first.status, 200, "the SigV4 signature verified");
        let body = first.json().expect("json body");
        assert!(
            body["anthropic_version"].is_string(),
            "the SDK sets anthropic_version"
        );
        assert!(body.get("model").is_none());
        setup.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_use_with_a_second_turn() {
    for &target in TARGETS {
        eprintln!("target: {target:?}");
        let setup = start(target).await;
        let script = r#"
tools = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
messages = [{"role": "user", "content": "Weather in Paris?"}]
fragments = []
with client.messages.stream(model="anthropic.mock.tools", max_tokens=256, messages=messages, tools=tools) as s:
    for event in s:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            fragments.append(event.delta.partial_json)
    first = s.get_final_message()
calls = [b for b in first.content if b.type == "tool_use"]
messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
messages.append({"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": c.id, "content": "21 degrees"} for c in calls]})
second = client.messages.create(model="anthropic.mock.tools", max_tokens=256, messages=messages, tools=tools)
out({"first": first.model_dump(), "fragments": fragments,
     "calls": [{"id": c.id, "name": c.name, "input": c.input} for c in calls],
     "second": second.model_dump()})
"#;
        let Some(result) = python(&setup, script, &[]).await else {
            return;
        };
        assert_eq!(str_at(&result, "/first/stop_reason"), "tool_use");
        assert_eq!(str_at(&result, "/calls/0/name"), "get_weather");
        assert_eq!(
            result.pointer("/calls/0/input"),
            Some(&serde_json::json!({"city": "Paris"}))
        );
        assert!(str_at(&result, "/calls/0/id").starts_with("toolu_bdrk_"));
        assert!(
            result["fragments"].as_array().is_some_and(|f| f.len() > 1),
            "{result}"
        );
        assert_eq!(str_at(&result, "/second/stop_reason"), "end_turn");
        let answer = str_at(&result, "/second/content/0/text");
        assert!(answer.contains("`get_weather` returned 21 degrees"), "{answer}");
        setup.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_with_signature() {
    for &target in TARGETS {
        eprintln!("target: {target:?}");
        let setup = start(target).await;
        let script = r#"
kinds = []
with client.messages.stream(model="anthropic.mock.reasoning", max_tokens=2048, messages=USER,
                            thinking={"type": "enabled", "budget_tokens": 1024}) as s:
    for event in s:
        if event.type == "content_block_delta":
            kinds.append(event.delta.type)
    final = s.get_final_message()
# The thinking block goes back with its signature in the next turn.
follow = USER + [{"role": "assistant", "content": [b.model_dump() for b in final.content]},
                 {"role": "user", "content": "And then?"}]
again = client.messages.create(model="anthropic.mock.reasoning", max_tokens=2048, messages=follow,
                               thinking={"type": "enabled", "budget_tokens": 1024})
out({"kinds": sorted(set(kinds)), "final": final.model_dump(), "again": again.model_dump()})
"#;
        let Some(result) = python(&setup, script, &[]).await else {
            return;
        };
        let kinds: Vec<&str> = result["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(kinds, ["signature_delta", "text_delta", "thinking_delta"]);
        assert_eq!(str_at(&result, "/final/content/0/type"), "thinking");
        assert!(str_at(&result, "/final/content/0/thinking").contains("Hello from Python"));
        assert!(!str_at(&result, "/final/content/0/signature").is_empty());
        assert_eq!(str_at(&result, "/final/content/1/type"), "text");
        assert_eq!(str_at(&result, "/again/content/0/type"), "thinking");
        assert!(str_at(&result, "/again/content/0/thinking").contains("And then?"));
        setup.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_through_boto3_matches_invoke() {
    for &target in TARGETS {
        eprintln!("target: {target:?}");
        let setup = start(target).await;
        let server = &setup.server;
        // `AnthropicBedrock` has no token counting on Bedrock ("not supported in Bedrock
        // yet"): boto3's `count_tokens` is the official client of the route.
        let script = r#"
try:
    client.messages.count_tokens(model="anthropic.mock.text", messages=USER)
    sdk = "supported"
except anthropic.AnthropicError as e:
    sdk = str(e)
rt = runtime
body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": USER}).encode()
counted = rt.count_tokens(modelId="anthropic.mock.text", input={"invokeModel": {"body": body}})
invoked = rt.invoke_model(modelId="anthropic.mock.text", body=body)
message = json.loads(invoked["body"].read())
headers = invoked["ResponseMetadata"]["HTTPHeaders"]
converse = rt.count_tokens(modelId="anthropic.mock.text",
                           input={"converse": {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}})
out({"sdk": sdk, "counted": counted["inputTokens"], "usage": message["usage"],
     "header": headers.get("x-amzn-bedrock-input-token-count"), "converse": converse["inputTokens"],
     "body_len": len(body)})
"#;
        let Some(result) = python(&setup, script, &[]).await else {
            return;
        };
        let counted = u64_at(&result, "/counted");
        assert_eq!(counted, u64_at(&result, "/usage/input_tokens"), "{result}");
        assert_eq!(counted, u64_at(&result, "/body_len") / 4);
        assert_eq!(str_at(&result, "/header"), counted.to_string());
        assert!(u64_at(&result, "/converse") >= 1);
        assert!(
            str_at(&result, "/sdk") == "supported" || str_at(&result, "/sdk").contains("not supported"),
            "{result}"
        );
        assert!(server
            .requests()
            .iter()
            .any(|r| r.operation == Some(Operation::CountTokens) && r.status == 200));
        setup.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mid_stream_exception_reaches_the_sdk_after_the_text() {
    for &target in TARGETS {
        eprintln!("target: {target:?}");
        let setup = start(target).await;
        let script = r#"
pieces, error = [], None
try:
    with client.messages.stream(model="anthropic.mock.exception", max_tokens=256, messages=USER) as s:
        for text in s.text_stream:
            pieces.append(text)
except anthropic.APIError as e:
    error = {"class": type(e).__name__, "message": str(e), "body": getattr(e, "body", None)}
out({"pieces": pieces, "error": error})
"#;
        let Some(result) = python(&setup, script, &[]).await else {
            return;
        };
        let text: String = result["pieces"]
            .as_array()
            .expect("pieces")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(text.starts_with("Let me start answering"), "{result}");
        let error = &result["error"];
        assert!(error.is_object(), "the SDK raised: {result}");
        assert_eq!(
            str_at(error, "/body/error/type"),
            "modelStreamErrorException",
            "{result}"
        );
        assert!(str_at(error, "/message").contains("unexpected error"), "{result}");
        setup.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_a_rate_limit_error_and_the_sdk_retries_it() {
    for &target in TARGETS {
        eprintln!("target: {target:?}");
        let setup = start(target).await;
        let server = &setup.server;
        let script = r#"
results = {}
try:
    client.messages.create(model="anthropic.mock.throttling-exception", max_tokens=64, messages=USER)
except anthropic.RateLimitError as e:
    results["unary"] = {"status": e.status_code, "message": str(e)}
try:
    with client.messages.stream(model="anthropic.mock.throttling-exception", max_tokens=64, messages=USER) as s:
        for _ in s.text_stream:
            pass
except anthropic.APIError as e:
    results["stream"] = getattr(e, "body", None)
retrying = client.with_options(max_retries=2)
ok = retrying.messages.create(model="anthropic.mock.throttle-then-ok", max_tokens=64, messages=USER)
results["retried"] = ok.content[0].text
out(results)
"#;
        let Some(result) = python(&setup, script, &[]).await else {
            return;
        };
        assert_eq!(u64_at(&result, "/unary/status"), 429, "{result}");
        assert!(
            str_at(&result, "/unary/message").contains("Too many tokens"),
            "{result}"
        );
        assert_eq!(
            str_at(&result, "/stream/error/type"),
            "throttlingException",
            "{result}"
        );
        assert!(str_at(&result, "/retried").starts_with("You said"), "{result}");
        assert_eq!(
            server.scenario_count(Scenario::ThrottleThenOk),
            3,
            "two 429s, then the answer"
        );
        setup.shutdown().await;
    }
}
