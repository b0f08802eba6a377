//! Reading a config: JSON with comments into [`Config`], `${env:VAR}` expanded.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Config, ConfigError, ModelApi, ModelConfig, ProviderConfig};
use crate::client::error::ClientError;
use crate::config_file::{expand_env_value, strip_json_comments, UnsetEnvVar};

impl From<UnsetEnvVar> for ClientError {
    fn from(e: UnsetEnvVar) -> ClientError {
        ClientError::Config(ConfigError::EnvVarUnset {
            var: e.var,
            field: e.field,
        })
    }
}

impl Config {
    /// Parses config text, expanding `${env:VAR}` from the process environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`], [`ConfigError::Invalid`],
    /// [`ConfigError::EnvVarUnset`].
    pub fn parse(text: &str) -> Result<Config, ClientError> {
        Config::parse_with_env(text, &|name| std::env::var(name).ok())
    }

    /// Parses config text, expanding `${env:VAR}` with `env`.
    ///
    /// # Errors
    ///
    /// As [`Config::parse`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bedrock_converse::client::config::Config;
    /// let text = r#"{ "providers": { "bedrock": {
    ///     "api": "bedrock", "key": "${env:KEY}", "region": "us-east-1", // comment
    ///     "models": { "sonnet": { "modelName": "anthropic.claude-3-sonnet-20240229-v1:0" } },
    /// } } }"#;
    /// let config = Config::parse_with_env(text, &|v| (v == "KEY").then(|| "k".to_string()))?;
    /// let model = config.resolve_model("bedrock/sonnet")?;
    /// assert_eq!(model.model_name, "anthropic.claude-3-sonnet-20240229-v1:0");
    /// assert_eq!(model.provider.key.as_deref(), Some("k"));
    /// # Ok::<(), bedrock_converse::client::ClientError>(())
    /// ```
    pub fn parse_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ClientError> {
        Config::parse_inner(text, env, None)
    }

    /// Reads and parses a config file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], and as [`Config::parse`].
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            ClientError::Config(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        })?;
        Config::parse_inner(&text, env, Some(path))
    }

    fn parse_inner(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        path: Option<&Path>,
    ) -> Result<Config, ClientError> {
        let json = strip_json_comments(text);
        let root: Value = serde_json::from_str(&json).map_err(|e| {
            ClientError::Config(ConfigError::Syntax {
                path: path.map(Path::to_path_buf),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })
        })?;
        let Value::Object(root) = root else {
            return Err(invalid("(root)", "expected a JSON object"));
        };
        let mut config = Config::default();
        let Some(providers) = root.get("providers") else {
            return Ok(config);
        };
        let Value::Object(providers) = providers else {
            return Err(invalid("providers", "expected an object"));
        };
        for (name, block) in providers {
            let field = format!("providers.{name}");
            let Value::Object(block) = block else {
                return Err(invalid(&field, "expected an object"));
            };
            if block.get("api").and_then(Value::as_str) != Some("bedrock") {
                continue;
            }
            let mut block = Value::Object(block.clone());
            expand_env_value(&mut block, env, &field)?;
            let Value::Object(block) = block else {
                return Err(invalid(&field, "expected an object"));
            };
            let provider = ProviderConfig::from_json(name, &block, &field)?;
            config.providers.insert(name.clone(), provider);
        }
        Ok(config)
    }
}

impl ProviderConfig {
    fn from_json(name: &str, block: &Map<String, Value>, field: &str) -> Result<ProviderConfig, ClientError> {
        let key = opt_string(block, "key", field)?.filter(|k| !k.is_empty());
        let url = opt_string(block, "url", field)?.filter(|u| !u.is_empty());
        let region = opt_string(block, "region", field)?
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                ClientError::Config(ConfigError::MissingRegion {
                    provider: name.to_string(),
                })
            })?;
        if !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid(
                &format!("{field}.region"),
                "a region is letters, digits and '-'",
            ));
        }
        let region_prefix = opt_bool(block, "regionPrefix", field)?.unwrap_or(true);
        let ca_file = opt_string(block, "caFile", field)?
            .filter(|f| !f.is_empty())
            .map(std::path::PathBuf::from);
        let mut models = BTreeMap::new();
        match block.get("models") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (alias, model) in m {
                    let mfield = format!("{field}.models.{alias}");
                    let Value::Object(model) = model else {
                        return Err(invalid(&mfield, "expected an object"));
                    };
                    models.insert(alias.clone(), ModelConfig::from_json(alias, model, &mfield)?);
                }
            }
            Some(_) => return Err(invalid(&format!("{field}.models"), "expected an object")),
        }
        Ok(ProviderConfig {
            name: name.to_string(),
            key,
            url,
            region,
            region_prefix,
            models,
            ca_file,
        })
    }
}

impl ModelConfig {
    fn from_json(alias: &str, block: &Map<String, Value>, field: &str) -> Result<ModelConfig, ClientError> {
        let model_name = opt_string(block, "modelName", field)?.unwrap_or_else(|| alias.to_string());
        if model_name.is_empty() {
            return Err(invalid(&format!("{field}.modelName"), "must not be empty"));
        }
        let extra_payload = match block.get("extraPayload") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid(&format!("{field}.extraPayload"), "expected an object")),
        };
        let region_prefix = opt_bool(block, "regionPrefix", field)?;
        let api = match opt_string(block, "api", field)? {
            None => ModelApi::default(),
            Some(name) => ModelApi::from_name(&name)
                .ok_or_else(|| invalid(&format!("{field}.api"), "expected \"converse\" or \"invoke\""))?,
        };
        Ok(ModelConfig {
            model_name,
            extra_payload,
            region_prefix,
            api,
        })
    }
}

fn invalid(field: &str, reason: &str) -> ClientError {
    ClientError::Config(ConfigError::Invalid {
        field: field.to_string(),
        reason: reason.to_string(),
    })
}

fn opt_string(block: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, ClientError> {
    match block.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&format!("{field}.{key}"), "expected a string")),
    }
}

fn opt_bool(block: &Map<String, Value>, key: &str, field: &str) -> Result<Option<bool>, ClientError> {
    match block.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(&format!("{field}.{key}"), "expected true or false")),
    }
}
