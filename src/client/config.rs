//! The provider config: the configuration format of the Bedrock provider of the
//! [ECA editor](https://github.com/editor-code-assistant/eca) ("ECA" below), a code
//! assistant whose Bedrock provider this crate implements. Its documentation (kept in
//! `../shared/seed/`, and called "the seed" in this crate's tests) is the specification of
//! the format, of the endpoint URLs and of the request mapping. JSON with comments,
//! `${env:VAR}` expansion, model aliases, and where the config is found.
//!
//! ```text
//! {
//!   "providers": {
//!     "bedrock": {
//!       "api": "bedrock",
//!       "key": "${env:BEDROCK_API_KEY}",      // optional: Bearer auth (else SigV4)
//!       "url": "https://proxy.example/model/", // optional: else the AWS endpoint
//!       "region": "us-east-1",
//!       "regionPrefix": true,                  // optional, default true
//!       "caFile": "/etc/gw/ca.pem",            // optional: also trust this CA (PEM)
//!       "models": {
//!         "sonnet": {
//!           "modelName": "anthropic.claude-3-sonnet-20240229-v1:0",
//!           "extraPayload": { "temperature": 0.7, "stream": false }
//!         }
//!       }
//!     }
//!   }
//! }
//! ```
//!
//! Comments (`//` and `/* */`, never inside strings) and trailing commas are accepted.
//! Providers whose `api` is not `"bedrock"` are ignored (an ECA config holds other
//! providers too); their `${env:..}` references are not expanded.
//!
//! This module holds the config model and model-id resolution; [`Config::parse`] and
//! [`Config::discover`] (reading and finding the file) are in its two submodules.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::{ClientError, ConfigError};

pub use crate::config_file::{home_dir, locate_config, strip_json_comments, ConfigSource, CONFIG_ENV};

mod discover;
mod parse;

/// A parsed config: the Bedrock providers by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Providers with `"api": "bedrock"`, by name.
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// One `providers.<name>` block. `Debug` leaves the key out.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    /// The provider's name (its key under `providers`).
    pub name: String,
    /// The API key sent as `Authorization: Bearer <key>`; `None` means SigV4.
    pub key: Option<String>,
    /// A proxy base URL; `None` means `https://bedrock-runtime.<region>.amazonaws.com/model/`.
    pub url: Option<String>,
    /// The AWS region (`us-east-1`).
    pub region: String,
    /// Whether `<region>.` is put before model ids (the form of ECA's endpoint URLs). Default `true`;
    /// ids that already carry a cross-region prefix, and ARNs, are never prefixed.
    pub region_prefix: bool,
    /// The model aliases.
    pub models: BTreeMap<String, ModelConfig>,
    /// `caFile`: a PEM file of CA certificates to trust beside the webpki roots (a
    /// gateway with its own certificate). The client's connection pool is shared, so a
    /// client built from this config trusts it for every provider.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("url", &self.url)
            .field("region", &self.region)
            .field("region_prefix", &self.region_prefix)
            .field("models", &self.models)
            .finish()
    }
}

/// One `models.<alias>` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The Bedrock model id (`anthropic.claude-3-sonnet-20240229-v1:0`).
    pub model_name: String,
    /// Parameters merged into every request (`temperature`, `top_k`, `stream`, top-level
    /// Converse keys, ...).
    pub extra_payload: Map<String, Value>,
    /// Overrides the provider's [`ProviderConfig::region_prefix`].
    pub region_prefix: Option<bool>,
    /// `"api"`: the route the CLI's `chat` calls for this model (default Converse).
    pub api: ModelApi,
}

/// A model's `"api"`: which Bedrock route `chat` sends its prompt to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelApi {
    /// `"converse"` (the default): `/converse` and `/converse-stream`.
    #[default]
    Converse,
    /// `"invoke"`: the model's native body on `/invoke` and
    /// `/invoke-with-response-stream` (Anthropic Messages for `anthropic.*` models).
    Invoke,
}

impl ModelApi {
    /// The config value (`converse`, `invoke`).
    pub fn as_str(self) -> &'static str {
        match self {
            ModelApi::Converse => "converse",
            ModelApi::Invoke => "invoke",
        }
    }

    /// The value of a config string, if it names one.
    pub fn from_name(name: &str) -> Option<ModelApi> {
        match name {
            "converse" => Some(ModelApi::Converse),
            "invoke" => Some(ModelApi::Invoke),
            _ => None,
        }
    }
}

/// A model id resolved against the config.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel<'a> {
    /// The provider.
    pub provider: &'a ProviderConfig,
    /// The alias, when the id named one.
    pub alias: Option<&'a str>,
    /// The Bedrock model id to call (before any region prefix).
    pub model_name: String,
    /// The model's `extraPayload` (empty for a raw id).
    pub extra_payload: Map<String, Value>,
    /// Whether to prefix the id with the region.
    pub region_prefix: bool,
    /// The model's `"api"` ([`ModelApi::Converse`] for a raw id).
    pub api: ModelApi,
}

impl ResolvedModel<'_> {
    /// The stream default: `extraPayload.stream` when it is a boolean, else `true`.
    pub fn stream_default(&self) -> bool {
        self.extra_payload
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
}

// ===== impl Config =====

impl Config {
    /// A config of this one provider.
    pub fn with_provider(provider: ProviderConfig) -> Config {
        let mut providers = BTreeMap::new();
        providers.insert(provider.name.clone(), provider);
        Config { providers }
    }

    /// The provider a model id without a known `provider/` prefix goes to: the one named
    /// `bedrock`, else the only one.
    pub fn default_provider(&self) -> Option<&ProviderConfig> {
        self.providers.get("bedrock").or_else(|| {
            if self.providers.len() == 1 {
                self.providers.values().next()
            } else {
                None
            }
        })
    }

    /// Resolves a model id: `<provider>/<alias>` (split on the first `/`), an alias of the
    /// default provider, or a raw Bedrock model id (an unknown alias is sent as is).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownProvider`] when no provider fits.
    pub fn resolve_model(&self, model: &str) -> Result<ResolvedModel<'_>, ClientError> {
        let (provider, rest) = match model.split_once('/') {
            Some((p, rest)) if self.providers.contains_key(p) => (self.providers.get(p), rest),
            _ => (self.default_provider(), model),
        };
        let Some(provider) = provider else {
            return Err(ClientError::Config(ConfigError::UnknownProvider {
                model: model.to_string(),
                known: self.providers.keys().cloned().collect(),
            }));
        };
        Ok(provider.resolve(rest))
    }

    /// The model used when none is given: the default provider's first alias (in name order).
    pub fn default_model(&self) -> Option<String> {
        let provider = self.default_provider()?;
        let alias = provider.models.keys().next()?;
        Some(format!("{}/{alias}", provider.name))
    }
}

// ===== impl ProviderConfig =====

impl ProviderConfig {
    /// A provider with a region and nothing else: the AWS endpoint, SigV4, no aliases.
    pub fn new(name: impl Into<String>, region: impl Into<String>) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            key: None,
            url: None,
            region: region.into(),
            region_prefix: true,
            models: BTreeMap::new(),
            ca_file: None,
        }
    }

    /// Sets the proxy base URL.
    pub fn with_url(mut self, url: impl Into<String>) -> ProviderConfig {
        self.url = Some(url.into());
        self
    }

    /// Sets the Bearer key.
    pub fn with_key(mut self, key: impl Into<String>) -> ProviderConfig {
        self.key = Some(key.into());
        self
    }

    /// Resolves an alias of this provider; an unknown alias is a raw model id.
    pub fn resolve<'a>(&'a self, alias_or_id: &str) -> ResolvedModel<'a> {
        match self.models.get_key_value(alias_or_id) {
            Some((alias, m)) => ResolvedModel {
                provider: self,
                alias: Some(alias.as_str()),
                model_name: m.model_name.clone(),
                extra_payload: m.extra_payload.clone(),
                region_prefix: m.region_prefix.unwrap_or(self.region_prefix),
                api: m.api,
            },
            None => ResolvedModel {
                provider: self,
                alias: None,
                model_name: alias_or_id.to_string(),
                extra_payload: Map::new(),
                region_prefix: self.region_prefix,
                api: ModelApi::Converse,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse_with_env(text, &|_| None).unwrap()
    }

    #[test]
    fn model_api_is_read_and_checked() {
        let c = config(
            r#"{"providers":{"b":{"api":"bedrock","region":"us-east-1","models":{
                "n":{"modelName":"anthropic.x","api":"invoke"},"c":{"modelName":"m"}}}}}"#,
        );
        assert_eq!(c.resolve_model("b/n").unwrap().api, ModelApi::Invoke);
        assert_eq!(c.resolve_model("b/c").unwrap().api, ModelApi::Converse);
        assert_eq!(c.resolve_model("b/raw.id").unwrap().api, ModelApi::Converse);
        let bad = Config::parse_with_env(
            r#"{"providers":{"b":{"api":"bedrock","region":"us-east-1","models":{"n":{"api":"grpc"}}}}}"#,
            &|_| None,
        )
        .unwrap_err();
        assert!(bad.to_string().contains("models.n.api"), "{bad}");
    }

    #[test]
    fn other_providers_ignored_and_not_expanded() {
        let text = r#"{"providers": {
            "openai": {"api": "openai", "key": "${env:UNSET_OPENAI}"},
            "aws": {"api": "bedrock", "region": "us-east-1"}
        }}"#;
        let c = config(text);
        assert_eq!(c.providers.len(), 1);
        let m = c.resolve_model("aws/us.anthropic.claude-x").unwrap();
        assert_eq!(m.model_name, "us.anthropic.claude-x");
        let m = c.resolve_model("anthropic.claude-y").unwrap();
        assert_eq!(m.provider.name, "aws");
        assert_eq!(m.model_name, "anthropic.claude-y");
    }

    #[test]
    fn arn_model_id_goes_to_default_provider() {
        let text = r#"{"providers": {"bedrock": {"api": "bedrock", "region": "us-east-1"}}}"#;
        let c = config(text);
        let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x";
        assert_eq!(c.resolve_model(arn).unwrap().model_name, arn);
        let m = c.resolve_model(&format!("bedrock/{arn}")).unwrap();
        assert_eq!(m.model_name, arn);
    }
}
