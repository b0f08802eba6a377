//! The ECA provider config: JSON with comments, `${env:VAR}` expansion, model aliases,
//! and where the config is found.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::ClientError;

/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "BEDROCK_CONVERSE_CONFIG";

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
    /// Whether `<region>.` is put before model ids (the seed's URL form). Default `true`;
    /// ids that already carry a cross-region prefix, and ARNs, are never prefixed.
    pub region_prefix: bool,
    /// The model aliases.
    pub models: BTreeMap<String, ModelConfig>,
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
    /// Parses config text, expanding `${env:VAR}` from the process environment.
    ///
    /// # Errors
    ///
    /// [`ClientError::ConfigSyntax`], [`ClientError::ConfigInvalid`],
    /// [`ClientError::EnvVarUnset`].
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
    /// [`ClientError::ConfigRead`], and as [`Config::parse`].
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClientError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse_inner(&text, env, Some(path))
    }

    fn parse_inner(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        path: Option<&Path>,
    ) -> Result<Config, ClientError> {
        let json = strip_json_comments(text);
        let root: Value = serde_json::from_str(&json).map_err(|e| ClientError::ConfigSyntax {
            path: path.map(Path::to_path_buf),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
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

    /// The config used when no file is found: one provider `bedrock` with the key from
    /// `AWS_BEARER_TOKEN_BEDROCK` or `BEDROCK_API_KEY` (else SigV4) and the region from
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`).
    ///
    /// # Errors
    ///
    /// [`ClientError::MissingRegion`] when neither region variable is set.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ClientError> {
        let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
        let key = non_empty("AWS_BEARER_TOKEN_BEDROCK").or_else(|| non_empty("BEDROCK_API_KEY"));
        let region = non_empty("AWS_REGION")
            .or_else(|| non_empty("AWS_DEFAULT_REGION"))
            .ok_or_else(|| ClientError::MissingRegion {
                provider: "bedrock".into(),
            })?;
        let provider = ProviderConfig {
            name: "bedrock".into(),
            key,
            url: None,
            region,
            region_prefix: true,
            models: BTreeMap::new(),
        };
        let mut providers = BTreeMap::new();
        providers.insert("bedrock".to_string(), provider);
        Ok(Config { providers })
    }

    /// Finds the config per [`locate_config`] and loads it. A `~/.config/eca/config.json`
    /// without any Bedrock provider falls back to [`Config::from_env`].
    ///
    /// # Errors
    ///
    /// As [`Config::load`] and [`Config::from_env`].
    pub fn discover(
        explicit: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, ClientError> {
        match locate_config(explicit, env, home, &|p| p.is_file()) {
            ConfigSource::File(path) => {
                let config = Config::load(&path, env)?;
                // An ECA config found in the home directory may configure other
                // providers only; the environment is then the Bedrock config.
                let implicit = explicit.is_none() && env(CONFIG_ENV).filter(|p| !p.is_empty()).is_none();
                if config.providers.is_empty() && implicit {
                    return Config::from_env(env);
                }
                Ok(config)
            }
            ConfigSource::Environment => Config::from_env(env),
        }
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
    /// [`ClientError::UnknownProvider`] when no provider fits.
    pub fn resolve_model(&self, model: &str) -> Result<ResolvedModel<'_>, ClientError> {
        let (provider, rest) = match model.split_once('/') {
            Some((p, rest)) if self.providers.contains_key(p) => (self.providers.get(p), rest),
            _ => (self.default_provider(), model),
        };
        let Some(provider) = provider else {
            return Err(ClientError::UnknownProvider {
                model: model.to_string(),
                known: self.providers.keys().cloned().collect(),
            });
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

    fn from_json(name: &str, block: &Map<String, Value>, field: &str) -> Result<ProviderConfig, ClientError> {
        let key = opt_string(block, "key", field)?.filter(|k| !k.is_empty());
        let url = opt_string(block, "url", field)?.filter(|u| !u.is_empty());
        let region = opt_string(block, "region", field)?
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ClientError::MissingRegion {
                provider: name.to_string(),
            })?;
        if !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid(
                &format!("{field}.region"),
                "a region is letters, digits and '-'",
            ));
        }
        let region_prefix = opt_bool(block, "regionPrefix", field)?.unwrap_or(true);
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
        })
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
            },
            None => ResolvedModel {
                provider: self,
                alias: None,
                model_name: alias_or_id.to_string(),
                extra_payload: Map::new(),
                region_prefix: self.region_prefix,
            },
        }
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
        Ok(ModelConfig {
            model_name,
            extra_payload,
            region_prefix,
        })
    }
}

fn invalid(field: &str, reason: &str) -> ClientError {
    ClientError::ConfigInvalid {
        field: field.to_string(),
        reason: reason.to_string(),
    }
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

// ===== config discovery =====

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A config file.
    File(PathBuf),
    /// No file: [`Config::from_env`].
    Environment,
}

/// Picks the config source: `explicit` (`--config FILE`), else `$BEDROCK_CONVERSE_CONFIG`,
/// else `<home>/.config/eca/config.json` when `exists` says it does, else the environment.
///
/// Pure: the environment, home directory and file test are passed in.
pub fn locate_config(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    exists: &dyn Fn(&Path) -> bool,
) -> ConfigSource {
    if let Some(p) = explicit {
        return ConfigSource::File(p.to_path_buf());
    }
    if let Some(p) = env(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return ConfigSource::File(PathBuf::from(p));
    }
    if let Some(home) = home {
        let p = home.join(".config").join("eca").join("config.json");
        if exists(&p) {
            return ConfigSource::File(p);
        }
    }
    ConfigSource::Environment
}

/// The home directory from `HOME` (or `USERPROFILE`).
pub fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME")
        .or_else(|| env("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

// ===== JSON with comments =====

/// Removes `//` and `/* */` comments (outside strings) and trailing commas before `}`
/// or `]`. Comments become spaces (newlines kept) so parse errors keep their line and
/// column. An unterminated block comment runs to the end.
///
/// # Examples
///
/// ```
/// use bedrock_converse::client::config::strip_json_comments;
/// let json = strip_json_comments("{\"a\": \"http://x\", // c\n \"b\": [1, 2,], /* d */}");
/// let v: serde_json::Value = serde_json::from_str(&json).unwrap();
/// assert_eq!(v["a"], "http://x");
/// assert_eq!(v["b"][1], 2);
/// ```
pub fn strip_json_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    // Index in `out` of the last comma outside a string with only blanks after it.
    let mut pending_comma: Option<usize> = None;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                pending_comma = None;
                let start = i;
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += 1;
                    if c == b'\\' {
                        i += 1;
                    } else if c == b'"' {
                        break;
                    }
                }
                out.extend_from_slice(bytes.get(start..i.min(bytes.len())).unwrap_or_default());
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while let Some(&c) = bytes.get(i) {
                    if c == b'\n' {
                        break;
                    }
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.extend_from_slice(b"  ");
                i += 2;
                while let Some(&c) = bytes.get(i) {
                    if c == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        out.extend_from_slice(b"  ");
                        i += 2;
                        break;
                    }
                    out.push(if c == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
            }
            b',' => {
                pending_comma = Some(out.len());
                out.push(b',');
                i += 1;
            }
            b'}' | b']' => {
                if let Some(at) = pending_comma.take() {
                    if let Some(slot) = out.get_mut(at) {
                        *slot = b' ';
                    }
                }
                out.push(b);
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                out.push(b);
                i += 1;
            }
            _ => {
                pending_comma = None;
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced or removed, and strings were copied whole, so the
    // text is still UTF-8; the fallback is never taken.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// ===== ${env:VAR} =====

/// Expands `${env:VAR}` and `${env:VAR:default}` in one string. `field` names the config
/// field for the error.
///
/// # Errors
///
/// [`ClientError::EnvVarUnset`] for an unset variable without a default.
///
/// # Examples
///
/// ```
/// use bedrock_converse::client::config::expand_env;
/// let env = |v: &str| (v == "HOST").then(|| "proxy".to_string());
/// assert_eq!(expand_env("https://${env:HOST}/${env:P:model}/", &env, "url")?, "https://proxy/model/");
/// assert!(expand_env("${env:MISSING}", &env, "key").is_err());
/// # Ok::<(), bedrock_converse::client::ClientError>(())
/// ```
pub fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>, field: &str) -> Result<String, ClientError> {
    const OPEN: &str = "${env:";
    if !s.contains(OPEN) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(OPEN) {
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        let inner_start = &tail[OPEN.len()..];
        let Some(close) = inner_start.find('}') else {
            // Unterminated: kept literally.
            out.push_str(tail);
            return Ok(out);
        };
        let inner = &inner_start[..close];
        let (var, default) = match inner.split_once(':') {
            Some((v, d)) => (v, Some(d)),
            None => (inner, None),
        };
        match env(var) {
            Some(value) => out.push_str(&value),
            None => match default {
                Some(d) => out.push_str(d),
                None => {
                    return Err(ClientError::EnvVarUnset {
                        var: var.to_string(),
                        field: field.to_string(),
                    })
                }
            },
        }
        rest = &inner_start[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_env_value(
    v: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    field: &str,
) -> Result<(), ClientError> {
    match v {
        Value::String(s) if s.contains("${env:") => *s = expand_env(s, env, field)?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env_value(item, env, &format!("{field}[{i}]"))?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                expand_env_value(item, env, &format!("{field}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_inside_strings_are_kept() {
        let s = strip_json_comments(r#"{"u": "a//b/*c*/", "e": "q\"//x"} // tail"#);
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["u"], "a//b/*c*/");
        assert_eq!(v["e"], "q\"//x");
    }

    #[test]
    fn trailing_commas_and_block_comments() {
        let s = strip_json_comments("{\"a\": [1, /* x */ 2, ], \"b\": {\"c\": 1, // y\n }, }");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"][1], 2);
        assert_eq!(v["b"]["c"], 1);
    }

    #[test]
    fn comma_not_trailing_is_kept() {
        let s = strip_json_comments("[1, 2]");
        assert_eq!(s, "[1, 2]");
        // `[,]` is not rescued into valid JSON beyond the trailing comma rule.
        assert!(serde_json::from_str::<Value>(&strip_json_comments("[1,,]")).is_err());
    }

    #[test]
    fn env_default_may_contain_colons() {
        let env = |_: &str| None;
        assert_eq!(
            expand_env("${env:U:http://x:1}", &env, "f").unwrap(),
            "http://x:1"
        );
    }

    #[test]
    fn env_error_names_variable() {
        let env = |_: &str| None;
        let err = expand_env("a ${env:NOPE} b", &env, "providers.b.key").unwrap_err();
        match err {
            ClientError::EnvVarUnset { var, field } => {
                assert_eq!(var, "NOPE");
                assert_eq!(field, "providers.b.key");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn locate_order() {
        let env_with = |v: &'static str| move |n: &str| (n == CONFIG_ENV).then(|| v.to_string());
        let none = |_: &str| None;
        let home = Path::new("/h");
        let yes = |_: &Path| true;
        let no = |_: &Path| false;
        assert_eq!(
            locate_config(Some(Path::new("/x.json")), &env_with("/e.json"), Some(home), &yes),
            ConfigSource::File("/x.json".into())
        );
        assert_eq!(
            locate_config(None, &env_with("/e.json"), Some(home), &yes),
            ConfigSource::File("/e.json".into())
        );
        assert_eq!(
            locate_config(None, &none, Some(home), &yes),
            ConfigSource::File("/h/.config/eca/config.json".into())
        );
        assert_eq!(
            locate_config(None, &none, Some(home), &no),
            ConfigSource::Environment
        );
        assert_eq!(locate_config(None, &none, None, &yes), ConfigSource::Environment);
    }

    #[test]
    fn eca_config_without_bedrock_falls_back_to_env() {
        let home = std::env::temp_dir().join(format!("bedrock-converse-discover-{}", std::process::id()));
        let dir = home.join(".config").join("eca");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        std::fs::write(
            &file,
            r#"{"providers": {"openai": {"api": "openai"}}} // no bedrock"#,
        )
        .unwrap();
        let env = |n: &str| (n == "AWS_REGION").then(|| "ap-south-1".to_string());
        let c = Config::discover(None, &env, Some(&home)).unwrap();
        assert_eq!(c.default_provider().unwrap().region, "ap-south-1");
        // Named explicitly, the same file is taken as it is.
        let c = Config::discover(Some(&file), &env, Some(&home)).unwrap();
        assert!(c.providers.is_empty());
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn from_env_key_order() {
        let env = |n: &str| match n {
            "AWS_BEARER_TOKEN_BEDROCK" => Some("t1".to_string()),
            "BEDROCK_API_KEY" => Some("t2".to_string()),
            "AWS_REGION" => Some("eu-west-1".to_string()),
            _ => None,
        };
        let c = Config::from_env(&env).unwrap();
        let p = c.default_provider().unwrap();
        assert_eq!(p.key.as_deref(), Some("t1"));
        assert_eq!(p.region, "eu-west-1");
        let env2 = |n: &str| (n == "BEDROCK_API_KEY").then(|| "t2".to_string());
        assert!(matches!(
            Config::from_env(&env2),
            Err(ClientError::MissingRegion { .. })
        ));
    }

    #[test]
    fn other_providers_ignored_and_not_expanded() {
        let text = r#"{"providers": {
            "openai": {"api": "openai", "key": "${env:UNSET_OPENAI}"},
            "aws": {"api": "bedrock", "region": "us-east-1"}
        }}"#;
        let c = Config::parse_with_env(text, &|_| None).unwrap();
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
        let c = Config::parse_with_env(text, &|_| None).unwrap();
        let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x";
        assert_eq!(c.resolve_model(arn).unwrap().model_name, arn);
        let m = c.resolve_model(&format!("bedrock/{arn}")).unwrap();
        assert_eq!(m.model_name, arn);
    }
}
