//! Embedding the gateway's validating pass-through in your own axum service.
//!
//! Your service does its own routing and auth; `validate_body` checks every upstream
//! event-stream frame and forwards the same bytes, ending a corrupt, failed or idle
//! upstream with a well-formed `exception` frame. Here the upstream is the built-in
//! Bedrock server, so this runs with no AWS account:
//!
//! `cargo run --example embed_passthrough`

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bedrock_converse::eventstream::Limits;
use bedrock_converse::proxy::{validate_body, StreamSummary};
use bedrock_converse::server::MockBedrock;

#[derive(Clone)]
struct Upstream {
    http: reqwest::Client,
    base: String, // e.g. https://bedrock-runtime.us-east-1.amazonaws.com/model/
    key: String,
}

async fn converse_stream(
    State(up): State<Upstream>,
    Path(model): Path<String>,
    body: Bytes,
) -> Result<Response, String> {
    // Sign here for real AWS (see `bedrock_converse::client::sigv4_headers`).
    let upstream = up
        .http
        .post(format!("{}{model}/converse-stream", up.base))
        .bearer_auth(&up.key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = upstream.status();
    let on_end = |s: StreamSummary| {
        println!(
            "[gateway] {} frames, {} bytes, usage {:?}, end {:?}",
            s.frames, s.bytes, s.usage, s.end
        );
    };
    let body = validate_body(
        upstream.bytes_stream(),
        Limits::default(),
        Duration::from_secs(30),
        on_end,
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/vnd.amazon.eventstream")
        .body(Body::from_stream(body))
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bedrock = MockBedrock::builder().bearer_key("upstream-key").start().await?;
    let upstream = Upstream {
        http: reqwest::Client::new(),
        base: bedrock.url(),
        key: "upstream-key".into(),
    };
    let app = Router::new()
        .route("/model/{model}/converse-stream", post(converse_stream))
        .with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A client of your gateway.
    let body = r#"{"messages":[{"role":"user","content":[{"text":"hello through the gateway"}]}]}"#;
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/model/us-east-1.mock.text/converse-stream"))
        .body(body)
        .send()
        .await?;
    let bytes = response.bytes().await?;
    println!("[client] {} validated bytes", bytes.len());
    bedrock.shutdown().await?;
    Ok(())
}
