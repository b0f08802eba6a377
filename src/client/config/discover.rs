//! Finding the config: a file ([`locate_config`]) or, without one, the environment.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Config, ConfigError, ProviderConfig};
use crate::client::error::ClientError;
use crate::config_file::{locate_config, ConfigSource, CONFIG_ENV};

impl Config {
    /// The config used when no file is found: one provider `bedrock` with the key from
    /// `AWS_BEARER_TOKEN_BEDROCK` or `BEDROCK_API_KEY` (else SigV4) and the region from
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingRegion`] when neither region variable is set.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ClientError> {
        let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
        let key = non_empty("AWS_BEARER_TOKEN_BEDROCK").or_else(|| non_empty("BEDROCK_API_KEY"));
        let region = non_empty("AWS_REGION")
            .or_else(|| non_empty("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                ClientError::Config(ConfigError::MissingRegion {
                    provider: "bedrock".into(),
                })
            })?;
        let provider = ProviderConfig {
            name: "bedrock".into(),
            key,
            url: None,
            region,
            region_prefix: true,
            models: BTreeMap::new(),
            ca_file: None,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Err(ClientError::Config(ConfigError::MissingRegion { .. }))
        ));
    }
}
