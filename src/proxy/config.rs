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
//!     "timeouts": { "connectMs": 5000, "firstByteMs": 60000, "idleMs": 60000, "totalMs": 900000 }
//!   }
//! }
//! ```
//!
//! The upstream is the provider's `url` (or the AWS endpoint of its `region`). With the
//! provider's `key` set, upstream requests carry `Authorization: Bearer <key>`;
//! without, they are SigV4-signed (service `bedrock`) from the usual AWS credential
//! sources.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use crate::client::auth::Auth;
use crate::client::config::Config;
use crate::client::endpoint::base_url;
use crate::client::ClientError;
use crate::config_file::{expand_env, home_dir, strip_json_comments};
use crate::eventstream::Limits;

/// How a model id is encoded in the upstream path: as the official SDKs encode a URI
/// label (`:` becomes `%3A`, `/` becomes `%2F`).
pub(crate) const MODEL_ID_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

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

/// Upstream timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyTimeouts {
    /// TCP and TLS connect.
    pub connect: Duration,
    /// From sending the request to the response head.
    pub first_byte: Duration,
    /// Longest gap between upstream body chunks before the stream is ended.
    pub idle: Duration,
    /// The whole upstream request, body included.
    pub total: Duration,
}

impl Default for ProxyTimeouts {
    fn default() -> Self {
        ProxyTimeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(15 * 60),
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
    /// Upstream timeouts.
    pub timeouts: ProxyTimeouts,
}

impl ProxyConfig {
    /// Default request body cap: 20 MiB (Bedrock accepts images and documents inline).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 20 * 1024 * 1024;
    /// Default concurrent stream cap.
    pub const DEFAULT_MAX_CONCURRENT_STREAMS: usize = 512;

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
        }
    }

    /// Reads the `proxy` block and its upstream provider from config text.
    ///
    /// # Errors
    ///
    /// Config errors ([`ClientError::ConfigSyntax`], [`ClientError::ConfigInvalid`],
    /// [`ClientError::EnvVarUnset`]), and [`ClientError::MissingCredentials`] when the
    /// upstream needs SigV4 and no credentials are found.
    pub fn from_config_text(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProxyConfig, ClientError> {
        let config = Config::parse_with_env(text, env)?;
        let stripped = strip_json_comments(text);
        let root: Value = serde_json::from_str(&stripped).map_err(|e| ClientError::ConfigSyntax {
            path: None,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let invalid = |reason: String| ClientError::ConfigInvalid {
            field: "proxy".to_owned(),
            reason,
        };
        let block = root
            .get("proxy")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("no `proxy` block".to_owned()))?;
        let provider = match block.get("provider").and_then(Value::as_str) {
            Some(name) => config
                .providers
                .get(name)
                .ok_or_else(|| ClientError::UnknownProvider {
                    model: name.to_owned(),
                    known: config.providers.keys().cloned().collect(),
                })?,
            None => config
                .default_provider()
                .ok_or_else(|| invalid("no bedrock provider to forward to".to_owned()))?,
        };
        let upstream_auth = Auth::resolve(
            provider.key.as_deref(),
            &provider.region,
            env,
            home_dir(env).as_deref(),
        )?;
        let mut client_keys = Vec::new();
        if let Some(keys) = block.get("clientKeys").and_then(Value::as_object) {
            for (id, secret) in keys {
                let secret = secret
                    .as_str()
                    .ok_or_else(|| invalid(format!("clientKeys.{id} must be a string")))?;
                let secret = expand_env(secret, env, &format!("proxy.clientKeys.{id}"))?;
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
        let mut out = ProxyConfig::new(base_url(provider), upstream_auth, client_keys);
        if let Some(listen) = block.get("listen").and_then(Value::as_str) {
            out.listen = expand_env(listen, env, "proxy.listen")?;
        }
        let number = |v: Option<&Value>, name: &str| -> Result<Option<u64>, ClientError> {
            match v {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| invalid(format!("{name} must be a non-negative integer"))),
            }
        };
        if let Some(n) = number(block.get("maxBodyBytes"), "maxBodyBytes")? {
            out.max_body_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number(block.get("maxConcurrentStreams"), "maxConcurrentStreams")? {
            out.max_concurrent_streams = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        }
        if let Some(t) = block.get("timeouts") {
            let ms = |name: &str, default: Duration| -> Result<Duration, ClientError> {
                Ok(number(t.get(name), name)?.map_or(default, Duration::from_millis))
            };
            let d = ProxyTimeouts::default();
            out.timeouts = ProxyTimeouts {
                connect: ms("connectMs", d.connect)?,
                first_byte: ms("firstByteMs", d.first_byte)?,
                idle: ms("idleMs", d.idle)?,
                total: ms("totalMs", d.total)?,
            };
        }
        Ok(out)
    }

    /// The upstream URL for a model id (as decoded from the request path) and operation.
    pub fn upstream_url(&self, model_id: &str, operation: &str) -> String {
        let encoded = percent_encoding::utf8_percent_encode(model_id, MODEL_ID_ENCODE_SET);
        format!("{}{encoded}/{operation}", self.upstream_base)
    }
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
