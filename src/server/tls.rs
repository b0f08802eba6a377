//! HTTPS for the built-in server: an `axum::serve::Listener` that hands axum
//! connections whose TLS handshake is done. Handshakes run in tasks of their own (with
//! the certificate's timeout), so a slow client does not hold up the others.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use crate::tls::TlsCertificate;

/// ALPN the built-in server offers: HTTP/1.1 only (its axum is built without HTTP/2).
const ALPN: [&[u8]; 1] = [b"http/1.1"];

/// Handshaken connections waiting for axum.
const READY_QUEUE: usize = 64;

/// A listener whose connections are TLS streams.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` and completes handshakes with `certificate` (reloaded when
    /// its files change) until this listener is dropped.
    pub(crate) fn new(listener: TcpListener, addr: SocketAddr, certificate: &TlsCertificate) -> TlsListener {
        certificate.watch();
        let acceptor = tokio_rustls::TlsAcceptor::from(certificate.server_config(&ALPN));
        let timeout = certificate.handshake_timeout();
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = tx.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((tcp, peer)) = accepted else {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                // Small frames must not wait for Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match crate::tls::accept(&acceptor, tcp, timeout).await {
                        Ok(stream) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                    }
                });
            }
        });
        TlsListener { ready, addr }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
