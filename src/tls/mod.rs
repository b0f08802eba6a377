//! TLS termination shared by the gateway (feature `proxy`) and the built-in server
//! (feature `server`): PEM certificate chain and key files, reloaded when they change
//! (mtime polled on an interval) or on SIGHUP, served with rustls and the `ring`
//! provider (the one reqwest already compiles).
//!
//! ```text
//! TlsSettings (paths) ──load──► TlsCertificate ──► ServerConfig (ALPN h2, http/1.1)
//!                                   ▲  resolver: the current CertifiedKey, swapped whole
//!   watcher task: mtime changed or SIGHUP ─► reload ─► ok: swap │ error: keep the old, log
//! ```
//!
//! A reload only changes what *new* handshakes see; connections already open keep the
//! session they negotiated.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Default interval between two looks at the files' modification times.
pub(crate) const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Default time a client has to complete the TLS handshake.
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a certificate or key file could not be used. Each variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no PEM `CERTIFICATE` block, or a block that is not valid PEM.
    #[error("TLS certificate file {path} holds no valid PEM certificate: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The file holds no PEM private key (PKCS#8, PKCS#1 or SEC1), or an invalid one.
    #[error("TLS key file {path} holds no valid PEM private key: {reason}")]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the key (an unsupported algorithm) or it does not match the
    /// certificate.
    #[error("TLS key {key} does not fit certificate {cert}: {reason}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// A self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    SelfSigned(String),
}

/// Where the certificate chain and key are, and how they are watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How often the files' modification times are compared (SIGHUP reloads at once).
    /// Default 10 s.
    pub reload_interval: Duration,
    /// How long a client may take to complete the handshake. Default 10 s.
    pub handshake_timeout: Duration,
}

impl TlsSettings {
    /// Settings for these files with the default intervals.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> TlsSettings {
        TlsSettings {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

// ===== impl TlsCertificate =====

/// A loaded certificate and key that new handshakes use; when built from files, it can
/// be reloaded in place ([`TlsCertificate::reload`], or the watcher the servers start).
/// Cheap to clone: clones share the certificate.
#[derive(Clone)]
pub struct TlsCertificate {
    current: Arc<Current>,
    files: Option<TlsSettings>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCertificate")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// The key new handshakes get, and the files' mtimes when it was read.
struct Current {
    key: RwLock<Arc<CertifiedKey>>,
    stamp: RwLock<Option<(SystemTime, SystemTime)>>,
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Current")
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

impl TlsCertificate {
    /// Reads the certificate chain and key of `settings`.
    ///
    /// # Errors
    ///
    /// A [`TlsError`] naming the file that cannot be read or used.
    pub fn load(settings: &TlsSettings) -> Result<TlsCertificate, TlsError> {
        let stamp = stamp(settings);
        let key = read_files(&settings.cert_file, &settings.key_file)?;
        Ok(TlsCertificate {
            current: Arc::new(Current {
                key: RwLock::new(key),
                stamp: RwLock::new(stamp),
            }),
            files: Some(settings.clone()),
            handshake_timeout: settings.handshake_timeout,
        })
    }

    /// A certificate from PEM text (no files, nothing to reload).
    ///
    /// # Errors
    ///
    /// A [`TlsError`] (with the path `<memory>`) when the PEM is not usable.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsCertificate, TlsError> {
        let memory = Path::new("<memory>");
        let key = certified_key(cert_pem, key_pem, memory, memory)?;
        Ok(TlsCertificate {
            current: Arc::new(Current {
                key: RwLock::new(key),
                stamp: RwLock::new(None),
            }),
            files: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Re-reads the files. On success new handshakes get the new certificate; on
    /// failure the old one stays.
    ///
    /// # Errors
    ///
    /// The [`TlsError`] of the new files (the certificate in use is unchanged).
    pub fn reload(&self) -> Result<(), TlsError> {
        let Some(files) = &self.files else {
            return Ok(());
        };
        let stamp = stamp(files);
        let key = read_files(&files.cert_file, &files.key_file)?;
        *self.current.key.write().unwrap_or_else(|p| p.into_inner()) = key;
        *self.current.stamp.write().unwrap_or_else(|p| p.into_inner()) = stamp;
        Ok(())
    }

    /// Whether a file's modification time differs from the one last read.
    fn changed(&self) -> bool {
        let Some(files) = &self.files else {
            return false;
        };
        let now = stamp(files);
        now.is_some() && now != *self.current.stamp.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The rustls server config with ALPN `protocols` (most preferred first).
    pub(crate) fn server_config(&self, protocols: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            // Not input-dependent: ring supports both default versions (TLS 1.2, 1.3).
            .expect("the ring provider supports TLS 1.2 and 1.3");
        let mut config = builder
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone());
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// Starts the watcher on the current runtime: it reloads when a file's mtime
    /// changes (looked at every `reload_interval`) and on SIGHUP, logs what it did, and
    /// ends when every clone of this certificate is gone.
    pub(crate) fn watch(&self) {
        let Some(files) = self.files.clone() else {
            return;
        };
        let weak: Weak<Current> = Arc::downgrade(&self.current);
        let handshake_timeout = self.handshake_timeout;
        // Registered before this returns, so a SIGHUP sent after serving began is seen.
        let mut hangup = hangup_signal();
        tokio::spawn(async move {
            let interval = files.reload_interval.max(Duration::from_millis(10));
            loop {
                let forced = tokio::select! {
                    () = tokio::time::sleep(interval) => false,
                    () = next_hangup(&mut hangup) => true,
                };
                let Some(current) = weak.upgrade() else {
                    return;
                };
                let cert = TlsCertificate {
                    current,
                    files: Some(files.clone()),
                    handshake_timeout,
                };
                if forced || cert.changed() {
                    match cert.reload() {
                        Ok(()) => {
                            tracing::info!(cert = %files.cert_file.display(), "TLS certificate reloaded")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "TLS reload failed; the previous certificate stays in use")
                        }
                    }
                }
            }
        });
    }

    /// The handshake deadline.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending::<()>().await
}

/// The modification times of both files, if both can be read.
fn stamp(files: &TlsSettings) -> Option<(SystemTime, SystemTime)> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((mtime(&files.cert_file)?, mtime(&files.key_file)?))
}

fn read_files(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    certified_key(&read(cert)?, &read(key)?, cert, key)
}

/// The chain and key, checked to belong together.
fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert_path.to_owned(),
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::PrivateKey {
        path: key_path.to_owned(),
        reason: e.to_string(),
    })?;
    let mismatch = |e: rustls::Error| TlsError::Mismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        reason: e.to_string(),
    };
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(mismatch)?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(mismatch)?;
    Ok(Arc::new(certified))
}

// ===== the handshake =====

/// Completes the server side of a handshake on `io` within the certificate's
/// handshake timeout.
pub(crate) async fn accept<IO>(
    acceptor: &tokio_rustls::TlsAcceptor,
    io: IO,
    timeout: Duration,
) -> std::io::Result<tokio_rustls::server::TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, acceptor.accept(io)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

// ===== self-signed certificates (the built-in server) =====

/// A self-signed certificate for `localhost` and `127.0.0.1`, for tests: the
/// certificate (which a client trusts as its CA) and the key, both PEM.
///
/// # Errors
///
/// [`TlsError::SelfSigned`] when generation fails.
#[cfg(feature = "server")]
pub fn self_signed_pem() -> Result<(String, String), TlsError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    Ok((generated.cert.pem(), generated.key_pair.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_typed_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("bc-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, "not pem").unwrap();
        std::fs::write(&key, "not pem").unwrap();
        let err = TlsCertificate::load(&TlsSettings::new(&cert, &key)).unwrap_err();
        assert!(
            matches!(&err, TlsError::Certificate { path, .. } if *path == cert),
            "{err}"
        );
        let missing = dir.join("missing.pem");
        let err = TlsCertificate::load(&TlsSettings::new(&missing, &key)).unwrap_err();
        assert!(
            matches!(&err, TlsError::Read { path, .. } if *path == missing),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
