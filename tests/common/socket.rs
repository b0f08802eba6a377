//! Clients that stop reading: a raw HTTP/1.1 request sent on a socket with a small
//! receive buffer, the socket then never read, so the server's writes back up; and an
//! HTTP/2 client whose unread streams shut their own windows. Included with
//! `#[path = "common/socket.rs"] mod socket;` by the files that use it.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// A whole `POST` request for `path` with `Authorization: Bearer <key>` and a JSON
/// `body`, as HTTP/1.1 bytes.
pub(crate) fn post_request(path: &str, key: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Connects to `addr` with a 4 KiB receive buffer and sends `request`; the socket, which
/// the caller keeps open and never reads.
pub(crate) async fn send_and_never_read(addr: SocketAddr, request: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("receive buffer");
    let mut tcp = socket.connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("request");
    tcp
}

/// An HTTP/2 (prior knowledge) client with small stream windows and a large connection
/// window: a response it does not read shuts its own stream's window and leaves the
/// connection room for other streams.
pub(crate) fn http2_small_stream_windows() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .http2_initial_stream_window_size(65_535)
        .http2_initial_connection_window_size(16 << 20)
        .build()
        .expect("HTTP/2 client")
}
