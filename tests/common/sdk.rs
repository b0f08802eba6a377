//! The official Rust SDK, set up as the gateway tests use it. Included with
//! `#[path = "common/sdk.rs"] mod sdk;` by the files that use it, so that the others do
//! not compile the SDK.

/// The official SDK client with a bearer token (`AWS_BEARER_TOKEN_BEDROCK`'s scheme)
/// against `endpoint`.
pub(crate) fn bearer_client(endpoint: String, key: &str) -> aws_sdk_bedrockruntime::Client {
    use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region, Token};
    let conf = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .bearer_token(Token::new(key, None))
        .auth_scheme_preference([aws_smithy_runtime_api::client::auth::http::HTTP_BEARER_AUTH_SCHEME_ID])
        .build();
    aws_sdk_bedrockruntime::Client::from_conf(conf)
}
