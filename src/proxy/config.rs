//! The proxy's configuration: a `proxy` block beside `providers` in the same
//! JSON-with-comments file.
//!
//! ```text
//! {
//!   "providers": { "bedrock": { "api": "bedrock", "region": "us-east-1" } },
//!   "proxy": {
//!     "listen": "127.0.0.1:8080",
//!     "provider": "bedrock",                  // optional: the upstream provider
//!     "clientKeys": { "team-a": "${env:TEAM_A_KEY}" },
//!     "maxBodyBytes": 20971520,               // optional, default 20 MiB
//!     "maxConcurrentStreams": 512,            // optional
//!     "maxBufferedBytes": 268435456,          // optional: all buffered bodies together, 256 MiB
//!     "metricsListen": "127.0.0.1:9100",      // optional: /metrics there, not on `listen`
//!     "metricsKey": "${env:METRICS_KEY}",     // optional: else /metrics takes a client key
//!     "tls": { "certFile": "/etc/gw/cert.pem", "keyFile": "/etc/gw/key.pem",   // optional: HTTPS
//!              "reloadIntervalMs": 10000, "handshakeTimeoutMs": 10000 },
//!     "timeouts": { "connectMs": 5000, "firstByteMs": 60000, "idleMs": 60000, "totalMs": 900000,
//!                   "requestBodyMs": 60000 },
//!     "connections": { "max": 512, "headerReadTimeoutMs": 10000, "keepAliveIdleMs": 60000,
//!                      "http2MaxConcurrentStreams": 32, "http2MaxPendingAcceptResetStreams": 20,
//!                      "http2MaxLocalErrorResetStreams": 64, "maxHeaderListBytes": 65536 }
//!   }
//! }
//! ```
//!
//! The upstream is the provider's `url` (or the AWS endpoint of its `region`). With the
//! provider's `key` set, upstream requests carry `Authorization: Bearer <key>`;
//! without, they are SigV4-signed (service `bedrock`) from the usual AWS credential
//! sources.

use std::time::Duration;

use serde_json::Value;

use crate::client::config::{Config, ProviderConfig};
use crate::client::endpoint::base_url;
use crate::client::Auth;
use crate::client::{ClientError, ConfigError};
use crate::config_file::{expand_env, home_dir, strip_json_comments};
use crate::eventstream::Limits;
use crate::tls::TlsSettings;

/// One client key: an id for logs and metrics, and the secret clients present.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// The key's name (logged; never the secret).
    pub id: String,
    /// The bearer token clients send.
    pub secret: String,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Timeouts of a forwarded request: the client's upload, then the upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyTimeouts {
    /// Reading the client's whole request body, from the moment it took a stream slot
    /// (past it: 408). Default 60 s.
    pub request_body: Duration,
    /// TCP and TLS connect.
    pub connect: Duration,
    /// From sending the request to the response head.
    pub first_byte: Duration,
    /// Longest gap between upstream body chunks before the stream is ended, and the
    /// longest a client may leave a streamed reply unread before it is cut.
    pub idle: Duration,
    /// The whole forwarded request, the streamed reply included, whether or not the
    /// client reads it.
    pub total: Duration,
}

impl Default for ProxyTimeouts {
    fn default() -> Self {
        ProxyTimeouts {
            request_body: Duration::from_secs(60),
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(15 * 60),
        }
    }
}

/// Limits on client connections, enforced by the accept loop and hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open client connections at most; past it a new connection is accepted and closed
    /// at once. Default 512 (below the common 1,024 open-files limit, with room for
    /// upstream connections).
    pub max_connections: usize,
    /// From accepting a connection (HTTP/1: from waiting for each request head) until
    /// its request head is complete; past it the connection is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a connection with no request in flight stays open. Default 60 s.
    pub keep_alive_idle: Duration,
    /// HTTP/2 streams at once on one connection. Default 32.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 streams reset by the client before they were served, at most at once
    /// (the rapid-reset flood). Default 20.
    pub http2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the gateway reset for protocol errors before it closes the
    /// connection. Default 64.
    pub http2_max_local_error_reset_streams: usize,
    /// Largest request header block (HTTP/2 header list, CONTINUATION frames included;
    /// HTTP/1 read buffer). Default 64 KiB.
    pub max_header_list_bytes: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            keep_alive_idle: Duration::from_secs(60),
            http2_max_concurrent_streams: 32,
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 64,
            max_header_list_bytes: 64 * 1024,
        }
    }
}

/// Everything the gateway needs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where to listen (`127.0.0.1:8080`).
    pub listen: String,
    /// Upstream base, ending in `/model/` (or the provider's `url`).
    pub upstream_base: String,
    /// Upstream authentication: a bearer key, or SigV4 credentials.
    pub upstream_auth: Auth,
    /// Keys clients may present.
    pub client_keys: Vec<ClientKey>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Most upstream requests at once; past it clients get 429.
    pub max_concurrent_streams: usize,
    /// Frame limits for validating upstream streams.
    pub limits: Limits,
    /// Request timeouts.
    pub timeouts: ProxyTimeouts,
    /// Client connection limits.
    pub connections: ConnectionLimits,
    /// All request and response bodies buffered at once, in bytes; past it new
    /// requests get 503. Default 256 MiB.
    pub max_buffered_bytes: usize,
    /// Where `/metrics` is served instead of the client port (`None`: on the client
    /// port, behind a key).
    pub metrics_listen: Option<String>,
    /// The bearer key `/metrics` takes on the client port (`None`: any client key).
    pub metrics_key: Option<String>,
    /// HTTPS on the client port: the certificate and key files (`None`: plain HTTP).
    pub tls: Option<TlsSettings>,
    /// The upstream provider alone, as a client [`Config`]: the model aliases and region
    /// prefix the dialect routes (`/v1/chat/completions`, `/v1/messages`) resolve model
    /// names with, exactly as the client does ([`Config::resolve_model`]).
    /// [`ProxyConfig::new`] sets a provider `bedrock` with no aliases and no region
    /// prefix: model names are then Bedrock ids, sent as written.
    pub models: Config,
}

impl ProxyConfig {
    /// Default request body cap: 20 MiB (Bedrock accepts images and documents inline).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 20 * 1024 * 1024;
    /// Default concurrent stream cap.
    pub const DEFAULT_MAX_CONCURRENT_STREAMS: usize = 512;
    /// Default budget for buffered bodies: 256 MiB.
    pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 256 * 1024 * 1024;

    /// A config with defaults for everything but the upstream and the client keys.
    pub fn new(upstream_base: impl Into<String>, upstream_auth: Auth, client_keys: Vec<ClientKey>) -> Self {
        let mut upstream_base = upstream_base.into();
        if !upstream_base.ends_with('/') {
            upstream_base.push('/');
        }
        ProxyConfig {
            listen: "127.0.0.1:8080".to_owned(),
            upstream_base,
            upstream_auth,
            client_keys,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_concurrent_streams: Self::DEFAULT_MAX_CONCURRENT_STREAMS,
            limits: Limits::default(),
            timeouts: ProxyTimeouts::default(),
            connections: ConnectionLimits::default(),
            max_buffered_bytes: Self::DEFAULT_MAX_BUFFERED_BYTES,
            metrics_listen: None,
            metrics_key: None,
            tls: None,
            models: Config::with_provider(ProviderConfig {
                region_prefix: false,
                ..ProviderConfig::new("bedrock", "us-east-1")
            }),
        }
    }

    /// Reads the `proxy` block and its upstream provider from config text.
    ///
    /// # Errors
    ///
    /// Config errors ([`ConfigError::Syntax`], [`ConfigError::Invalid`],
    /// [`ConfigError::EnvVarUnset`]), and [`AuthError::MissingCredentials`](crate::client::AuthError::MissingCredentials) when the
    /// upstream needs SigV4 and no credentials are found.
    pub fn from_config_text(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProxyConfig, ClientError> {
        let config = Config::parse_with_env(text, env)?;
        let root = parse_root(text)?;
        let block = ProxyBlock::of(&root, env)?;
        let provider = block.upstream(&config)?;
        let upstream_auth = Auth::resolve(
            provider.key.as_deref(),
            &provider.region,
            env,
            home_dir(env).as_deref(),
        )?;
        let mut out = ProxyConfig::new(base_url(provider), upstream_auth, block.client_keys()?);
        out.models = Config::with_provider(provider.clone());
        block.apply_settings(&mut out)?;
        Ok(out)
    }

    /// Whether a model id (as decoded from the request path) may be forwarded: not
    /// empty, and not a dot segment (`.`, `..`), which URL parsers remove or resolve
    /// (`/model/../converse` is `/converse`) even when percent-encoded.
    pub fn model_id_allowed(model_id: &str) -> bool {
        crate::model_id::is_segment(model_id)
    }

    /// The upstream URL for a model id (as decoded from the request path) and operation.
    pub fn upstream_url(&self, model_id: &str, operation: &str) -> String {
        // Encoded as the official SDKs encode a URI label (`:` is `%3A`, `/` is `%2F`);
        // the dot-segment ids were refused before ([`ProxyConfig::model_id_allowed`]).
        let encoded = crate::model_id::encode(model_id);
        format!("{}{encoded}/{operation}", self.upstream_base)
    }
}

// ===== reading the `proxy` block =====

/// The config text as JSON (comments stripped).
fn parse_root(text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(&strip_json_comments(text)).map_err(|e| {
        ClientError::Config(ConfigError::Syntax {
            path: None,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    })
}

/// A config error in the `proxy` block.
fn invalid(reason: String) -> ClientError {
    ClientError::Config(ConfigError::Invalid {
        field: "proxy".to_owned(),
        reason,
    })
}

/// A member that must be a non-negative integer when present.
fn number(value: Option<&Value>, name: &str) -> Result<Option<u64>, ClientError> {
    match value {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} must be a non-negative integer"))),
    }
}

/// A member of `object` in milliseconds, `default` when absent.
fn millis(object: &Value, name: &str, default: Duration) -> Result<Duration, ClientError> {
    Ok(number(object.get(name), name)?.map_or(default, Duration::from_millis))
}

/// A count member of `object`, `default` when absent, at least 1.
fn count(object: &Value, name: &str, default: u64) -> Result<u64, ClientError> {
    Ok(number(object.get(name), name)?.unwrap_or(default).max(1))
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn saturating_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The `proxy` block being read, and the environment its `${env:}` references read.
struct ProxyBlock<'a> {
    members: &'a serde_json::Map<String, Value>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> ProxyBlock<'a> {
    /// The `proxy` block of the config's root object.
    fn of(root: &'a Value, env: &'a dyn Fn(&str) -> Option<String>) -> Result<ProxyBlock<'a>, ClientError> {
        let members = root
            .get("proxy")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("no `proxy` block".to_owned()))?;
        Ok(ProxyBlock { members, env })
    }

    /// The provider requests are forwarded to: `provider`, else the default one.
    fn upstream<'c>(&self, config: &'c Config) -> Result<&'c ProviderConfig, ClientError> {
        match self.members.get("provider").and_then(Value::as_str) {
            Some(name) => config.providers.get(name).ok_or_else(|| {
                ClientError::Config(ConfigError::UnknownProvider {
                    model: name.to_owned(),
                    known: config.providers.keys().cloned().collect(),
                })
            }),
            None => config
                .default_provider()
                .ok_or_else(|| invalid("no bedrock provider to forward to".to_owned())),
        }
    }

    /// `clientKeys`: at least one, each a non-empty string once expanded.
    fn client_keys(&self) -> Result<Vec<ClientKey>, ClientError> {
        let mut client_keys = Vec::new();
        if let Some(keys) = self.members.get("clientKeys").and_then(Value::as_object) {
            for (id, secret) in keys {
                let secret = secret
                    .as_str()
                    .ok_or_else(|| invalid(format!("clientKeys.{id} must be a string")))?;
                let secret = expand_env(secret, self.env, &format!("proxy.clientKeys.{id}"))?;
                if secret.is_empty() {
                    return Err(invalid(format!("clientKeys.{id} is empty")));
                }
                client_keys.push(ClientKey {
                    id: id.clone(),
                    secret,
                });
            }
        }
        if client_keys.is_empty() {
            return Err(invalid("`clientKeys` must name at least one key".to_owned()));
        }
        Ok(client_keys)
    }

    /// A string member, `${env:}` expanded, if present.
    fn expanded(&self, name: &str) -> Result<Option<String>, ClientError> {
        let Some(raw) = self.members.get(name).and_then(Value::as_str) else {
            return Ok(None);
        };
        Ok(Some(expand_env(raw, self.env, &format!("proxy.{name}"))?))
    }

    /// A number member of the block, if present.
    fn number(&self, name: &str) -> Result<Option<u64>, ClientError> {
        number(self.members.get(name), name)
    }

    /// The optional settings, over the defaults of [`ProxyConfig::new`].
    fn apply_settings(&self, out: &mut ProxyConfig) -> Result<(), ClientError> {
        if let Some(listen) = self.expanded("listen")? {
            out.listen = listen;
        }
        if let Some(n) = self.number("maxBodyBytes")? {
            out.max_body_bytes = saturating_usize(n);
        }
        if let Some(n) = self.number("maxConcurrentStreams")? {
            out.max_concurrent_streams = saturating_usize(n).max(1);
        }
        if let Some(t) = self.members.get("timeouts") {
            out.timeouts = timeouts(t)?;
        }
        if let Some(n) = self.number("maxBufferedBytes")? {
            out.max_buffered_bytes = saturating_usize(n);
        }
        out.metrics_listen = self.expanded("metricsListen")?;
        if let Some(key) = self.expanded("metricsKey")? {
            if key.is_empty() {
                return Err(invalid("metricsKey is empty".to_owned()));
            }
            out.metrics_key = Some(key);
        }
        if let Some(t) = self.members.get("tls") {
            out.tls = Some(tls_settings(t, self.env)?);
        }
        if let Some(c) = self.members.get("connections") {
            out.connections = connection_limits(c)?;
        }
        Ok(())
    }
}

/// The `proxy.timeouts` block, over [`ProxyTimeouts::default`].
fn timeouts(block: &Value) -> Result<ProxyTimeouts, ClientError> {
    let d = ProxyTimeouts::default();
    Ok(ProxyTimeouts {
        request_body: millis(block, "requestBodyMs", d.request_body)?,
        connect: millis(block, "connectMs", d.connect)?,
        first_byte: millis(block, "firstByteMs", d.first_byte)?,
        idle: millis(block, "idleMs", d.idle)?,
        total: millis(block, "totalMs", d.total)?,
    })
}

/// The `proxy.connections` block, over [`ConnectionLimits::default`].
fn connection_limits(block: &Value) -> Result<ConnectionLimits, ClientError> {
    let d = ConnectionLimits::default();
    // The defaults are small constants: `usize as u64` is lossless.
    Ok(ConnectionLimits {
        max_connections: saturating_usize(count(block, "max", d.max_connections as u64)?),
        header_read_timeout: millis(block, "headerReadTimeoutMs", d.header_read_timeout)?,
        keep_alive_idle: millis(block, "keepAliveIdleMs", d.keep_alive_idle)?,
        http2_max_concurrent_streams: saturating_u32(count(
            block,
            "http2MaxConcurrentStreams",
            u64::from(d.http2_max_concurrent_streams),
        )?),
        http2_max_pending_accept_reset_streams: saturating_usize(count(
            block,
            "http2MaxPendingAcceptResetStreams",
            d.http2_max_pending_accept_reset_streams as u64,
        )?),
        http2_max_local_error_reset_streams: saturating_usize(count(
            block,
            "http2MaxLocalErrorResetStreams",
            d.http2_max_local_error_reset_streams as u64,
        )?),
        max_header_list_bytes: saturating_u32(count(
            block,
            "maxHeaderListBytes",
            u64::from(d.max_header_list_bytes),
        )?),
    })
}

/// The `proxy.tls` block: `certFile`, `keyFile` (both required, `${env:}` expanded),
/// `reloadIntervalMs`, `handshakeTimeoutMs`.
fn tls_settings(block: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<TlsSettings, ClientError> {
    let invalid = |field: &str, reason: &str| {
        ClientError::Config(ConfigError::Invalid {
            field: format!("proxy.tls.{field}"),
            reason: reason.to_owned(),
        })
    };
    if !block.is_object() {
        return Err(invalid("", "must be an object with certFile and keyFile"));
    }
    let path = |name: &str| -> Result<String, ClientError> {
        let raw = block
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(name, "a file path is required"))?;
        let expanded = expand_env(raw, env, &format!("proxy.tls.{name}"))?;
        if expanded.is_empty() {
            return Err(invalid(name, "is empty"));
        }
        Ok(expanded)
    };
    let mut settings = TlsSettings::new(path("certFile")?, path("keyFile")?);
    let ms = |name: &str, default: Duration| -> Result<Duration, ClientError> {
        match block.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(Duration::from_millis)
                .ok_or_else(|| invalid(name, "must be a non-negative integer")),
        }
    };
    settings.reload_interval = ms("reloadIntervalMs", settings.reload_interval)?;
    settings.handshake_timeout = ms("handshakeTimeoutMs", settings.handshake_timeout)?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{
      "providers": { "bedrock": { "api": "bedrock", "key": "${env:UP}", "url": "http://127.0.0.1:9/model", "region": "us-east-1" } },
      // the gateway
      "proxy": {
        "listen": "127.0.0.1:0",
        "clientKeys": { "alice": "${env:ALICE}", "bob": "${env:BOB:bob-default}" },
        "maxConcurrentStreams": 4,
        "timeouts": { "idleMs": 250 }
      }
    }"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "UP" => Some("upstream-key".into()),
            "ALICE" => Some("alice-key".into()),
            _ => None,
        }
    }

    #[test]
    fn reads_the_proxy_block() {
        let c = ProxyConfig::from_config_text(TEXT, &env).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.upstream_base, "http://127.0.0.1:9/model/");
        assert!(matches!(&c.upstream_auth, Auth::Bearer(k) if k.expose() == "upstream-key"));
        let keys: Vec<_> = c
            .client_keys
            .iter()
            .map(|k| (k.id.as_str(), k.secret.as_str()))
            .collect();
        assert_eq!(keys, [("alice", "alice-key"), ("bob", "bob-default")]);
        assert_eq!(c.max_concurrent_streams, 4);
        assert_eq!(c.timeouts.idle, Duration::from_millis(250));
        assert_eq!(c.timeouts.connect, ProxyTimeouts::default().connect);
        assert_eq!(
            c.upstream_url("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "converse-stream"),
            "http://127.0.0.1:9/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream"
        );
        assert!(!format!("{:?}", c).contains("alice-key"));
        assert_eq!(c.tls, None);
    }

    #[test]
    fn reads_the_tls_block() {
        let text = TEXT.replace(
            r#""maxConcurrentStreams": 4,"#,
            r#""maxConcurrentStreams": 4, "tls": { "certFile": "/c.pem", "keyFile": "${env:KEYF:/k.pem}", "reloadIntervalMs": 50 },"#,
        );
        let tls = ProxyConfig::from_config_text(&text, &env).unwrap().tls.unwrap();
        assert_eq!(tls.cert_file, std::path::Path::new("/c.pem"));
        assert_eq!(tls.key_file, std::path::Path::new("/k.pem"));
        assert_eq!(tls.reload_interval, Duration::from_millis(50));
        let no_key = TEXT.replace(
            r#""maxConcurrentStreams": 4,"#,
            r#""maxConcurrentStreams": 4, "tls": { "certFile": "/c.pem" },"#,
        );
        let err = ProxyConfig::from_config_text(&no_key, &env).unwrap_err();
        assert!(err.to_string().contains("proxy.tls.keyFile"), "{err}");
    }

    #[test]
    fn missing_keys_and_unset_env_are_errors() {
        let no_keys = TEXT.replace(
            r#""clientKeys": { "alice": "${env:ALICE}", "bob": "${env:BOB:bob-default}" },"#,
            "",
        );
        assert!(ProxyConfig::from_config_text(&no_keys, &env).is_err());
        let err =
            ProxyConfig::from_config_text(TEXT, &|n| (n != "ALICE").then(|| env(n)).flatten()).unwrap_err();
        assert!(err.to_string().contains("ALICE"), "{err}");
    }
}
