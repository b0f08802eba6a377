//! The pool against a hand-written HTTP/1 upstream that counts its connections.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use axum::http::HeaderValue;

/// How the test upstream answers each request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// `content-length` body, connection kept.
    KeepAlive,
    /// `connection: close` after the body.
    Close,
    /// A chunked body of three chunks, connection kept.
    Chunked,
}

/// A loopback listener that serves each connection it accepts with `serve`, on a task
/// of its own; its `scheme://` URL of `/model/m/converse` and the count of connections
/// it accepted.
async fn counting_upstream<F, Fut>(scheme: &str, serve: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{scheme}://{}/model/m/converse", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp));
        }
    });
    (url, accepted)
}

/// A loopback upstream that answers every request with `answer`; its URL and the count
/// of connections it accepted.
async fn upstream(answer: Answer) -> (String, Arc<AtomicUsize>) {
    counting_upstream("http", move |mut tcp| async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: its head, then its 2-byte body.
                    let Ok(n) = tcp.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    if buf.len() < end + 4 + 2 {
                        continue;
                    }
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    assert!(head.starts_with("post /model/m/converse http/1.1"), "{head}");
                    assert!(head.contains("\r\nhost: 127.0.0.1:"), "{head}");
                    assert!(head.contains("\r\ncontent-length: 2"), "{head}");
                    buf.drain(..end + 4 + 2);
                    let reply: &[u8] = match answer {
                        Answer::KeepAlive => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                        Answer::Close => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
                        Answer::Chunked => {
                            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n2\r\nll\r\n1\r\no\r\n0\r\n\r\n"
                        }
                    };
                    if tcp.write_all(reply).await.is_err() {
                        return;
                    }
                    if matches!(answer, Answer::Close) {
                        return;
                    }
                }
    })
    .await
}

async fn body_of(client: &UpstreamClient, url: &str) -> Vec<u8> {
    posted(client, url, HeaderMap::new(), b"{}").await
}

/// POSTs `body` with `headers` to `url`; the 200 answer's body, read to its end.
async fn posted(client: &UpstreamClient, url: &str, headers: HeaderMap, body: &'static [u8]) -> Vec<u8> {
    let mut response = client.post(url, headers, Bytes::from_static(body)).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut text = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.extend_from_slice(&chunk);
    }
    text
}

/// A connection goes back to the pool once its body is read, unless the upstream said
/// `connection: close`: (answer, requests, connections the upstream accepted).
#[tokio::test]
async fn a_connection_is_reused_once_its_body_is_read_unless_the_upstream_closes_it() {
    for (answer, requests, connections) in [
        (Answer::KeepAlive, 5, 1),
        (Answer::Chunked, 5, 1),
        (Answer::Close, 3, 3),
    ] {
        let (url, accepted) = upstream(answer).await;
        let client = UpstreamClient::new(Duration::from_secs(5));
        for _ in 0..requests {
            assert_eq!(body_of(&client, &url).await, b"hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), connections, "{answer:?}");
    }
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let (url, accepted) = upstream(Answer::Chunked).await;
    let client = UpstreamClient::new(Duration::from_secs(5));
    let response = client
        .post(&url, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    drop(response);
    assert_eq!(body_of(&client, &url).await, b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn urls_that_are_not_http_are_refused() {
    let client = UpstreamClient::new(Duration::from_secs(5));
    for url in ["ftp://127.0.0.1/x", "/relative", "http:///x"] {
        let got = client.post(url, HeaderMap::new(), Bytes::new()).await;
        assert!(matches!(got, Err(UpstreamError::BadUrl)), "{url}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_an_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = UpstreamClient::new(Duration::from_secs(5));
    let got = client
        .post(
            &format!("http://127.0.0.1:{port}/x"),
            HeaderMap::new(),
            Bytes::new(),
        )
        .await;
    assert!(matches!(got, Err(UpstreamError::Connect(_))));
}

// ===== over TLS =====

/// A self-signed certificate, and a client that trusts it.
#[cfg(feature = "server")]
fn trusted() -> (crate::tls::TlsCertificate, UpstreamClient) {
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};
    let (cert, key) = crate::server::self_signed_pem().unwrap();
    let root = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let tls = crate::tls::TlsCertificate::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    (tls, UpstreamClient::trusting(Duration::from_secs(5), vec![root]))
}

#[cfg(feature = "server")]
#[tokio::test]
async fn https_upstreams_speak_http1_when_alpn_offers_only_that() {
    let (tls, client) = trusted();
    let server = crate::server::MockBedrock::builder()
        .tls(tls)
        .start()
        .await
        .unwrap();
    let url = format!("{}mock.text/converse", server.url());
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let body = br#"{"messages":[{"role":"user","content":[{"text":"over tls"}]}]}"#;
    for _ in 0..2 {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let text = posted(&client, &url, headers, body).await;
        assert!(String::from_utf8_lossy(&text).contains("over tls"));
    }
    assert!(lock(&client.inner.shared).is_empty());
    assert_eq!(lock(&client.inner.idle).len(), 1);
}

#[cfg(feature = "server")]
#[tokio::test]
async fn https_upstreams_that_offer_h2_get_one_shared_http2_connection() {
    use hyper_util::server::conn::auto;
    let (tls, client) = trusted();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config(&[b"h2"]));
    let (url, accepted) = counting_upstream("https", move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            let stream = acceptor.accept(tcp).await.unwrap();
            let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
                // The version and the authority it came with, as the body.
                let seen = format!(
                    "{:?} {}",
                    request.version(),
                    request.uri().authority().map_or("", |a| a.as_str())
                );
                Ok::<_, std::convert::Infallible>(axum::http::Response::new(Body::from(seen)))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await;
    let authority = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let text = body_of(&client, &url).await;
        assert_eq!(String::from_utf8_lossy(&text), format!("HTTP/2.0 {authority}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
