//! The client against a hostile endpoint (issue 8), over loopback: redirects, dot-segment
//! model ids, and a reply that never stops growing.

#![cfg(all(feature = "client", feature = "server"))]

use std::sync::atomic::Ordering;

use bedrock_converse::client::Secret;
use bedrock_converse::client::{
    Auth, AwsCredentials, BedrockClient, ClientError, ClientOptions, Config, ConfigError, RequestParams,
    ResponseError, TransportError,
};
use bedrock_converse::converse::Message;
use bedrock_converse::server::MockBedrock;

mod common;
use common::{redirecting, witness};

const SESSION_TOKEN: &str = "client-session-token-must-stay-home";

fn config(url: &str, region_prefix: bool) -> Config {
    let text = format!(
        r#"{{"providers": {{"bedrock": {{"api": "bedrock", "url": "{url}", "region": "us-east-1",
            "regionPrefix": {region_prefix}, "models": {{"m": {{"modelName": "mock.text"}}}}}}}}}}"#
    );
    Config::parse_with_env(&text, &|_| None).unwrap()
}

fn sigv4() -> Auth {
    Auth::SigV4 {
        credentials: AwsCredentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: Secret::new("secret"),
            session_token: Some(Secret::new(SESSION_TOKEN)),
        },
        region: "us-east-1".to_owned(),
    }
}

/// Old code: reqwest's default policy followed a 307 to another host and re-sent the
/// prompt with `x-amz-security-token` (it strips only `Authorization`).
#[tokio::test]
async fn redirects_are_a_typed_error_and_never_followed() {
    let (elsewhere, contacts) = witness().await;
    for status in [301u16, 302, 303, 307, 308] {
        let (addr, hits) = redirecting(status, format!("http://{elsewhere}/steal")).await;
        let client = BedrockClient::builder(config(&format!("http://{addr}/model/"), true))
            .auth("bedrock", sigv4())
            .build()
            .unwrap();
        let messages = [Message::user("the secret prompt")];
        let err = client
            .converse("bedrock/m", &messages, &RequestParams::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Transport(TransportError::Redirect { status: s }) if s == status),
            "{err:?}"
        );
        assert!(err.to_string().contains(&status.to_string()), "{err}");
        let err = client
            .converse_stream("bedrock/m", &messages, &RequestParams::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Transport(TransportError::Redirect { status: s }) if s == status),
            "{err:?}"
        );
        // Not retried either: one request per call.
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
    assert_eq!(
        contacts.load(Ordering::SeqCst),
        0,
        "the redirect target was never contacted"
    );
}

/// Old code: `.` is not label-encoded, so `..` (with `regionPrefix: false`) was sent
/// and the URL parser walked out of `/model/`.
#[tokio::test]
async fn dot_segment_model_ids_are_refused_before_sending() {
    let (witness_addr, contacts) = witness().await;
    let client = BedrockClient::builder(config(&format!("http://{witness_addr}/v1/model/"), false))
        .auth("bedrock", Auth::Bearer(Secret::new("k")))
        .build()
        .unwrap();
    for id in [".", ".."] {
        let model = format!("bedrock/{id}");
        let err = client
            .converse(&model, &[Message::user("x")], &RequestParams::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Config(ConfigError::InvalidModelId { model_id }) if model_id == id),
            "{err:?}"
        );
        let err = client.endpoint(&model, true).unwrap_err();
        assert!(
            matches!(err, ClientError::Config(ConfigError::InvalidModelId { .. })),
            "{err:?}"
        );
    }
    assert_eq!(contacts.load(Ordering::SeqCst), 0);
}

/// Old code: only the block count was capped; an endless stream grew the assembled
/// text without bound (`chat` by about 1.7 MiB/s).
#[tokio::test]
async fn the_assembled_reply_is_capped() {
    let server = MockBedrock::builder()
        .bearer_key("k")
        .long_deltas(20_000)
        .start()
        .await
        .unwrap();
    let text = format!(
        r#"{{"providers": {{"bedrock": {{"api": "bedrock", "key": "k", "url": "{}", "region": "us-east-1"}}}}}}"#,
        server.url()
    );
    let config = Config::parse_with_env(&text, &|_| None).unwrap();
    let options = ClientOptions {
        max_assembled_len: 64 * 1024,
        ..ClientOptions::default()
    };
    let client = BedrockClient::builder(config.clone())
        .options(options)
        .build()
        .unwrap();
    let stream = client
        .converse_stream(
            "bedrock/mock.long",
            &[Message::user("x")],
            &RequestParams::default(),
        )
        .await
        .unwrap();
    let (err, partial) = stream.into_response().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Response(ResponseError::AssembledTooLarge { limit: 65536 })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_assembled_len"), "{err}");
    let kept = partial.text().len();
    assert!(kept <= 64 * 1024 + 16 * 1024, "kept {kept}");
    // The default is generous: the same reply assembles whole.
    let whole = BedrockClient::builder(config)
        .build()
        .unwrap()
        .send_request(
            "bedrock/mock.long",
            &[Message::user("x")],
            &RequestParams::default(),
        )
        .await
        .unwrap();
    assert!(whole.text().len() > 64 * 1024, "{}", whole.text().len());
}
