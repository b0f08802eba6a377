//! Config-file plumbing shared by the client and the gateway (crate-private): JSON with
//! comments, `${env:VAR}` expansion, and where the config file is found.
//!
//! The format is the configuration format of the Bedrock provider of the
//! [ECA editor](https://github.com/editor-code-assistant/eca) (see
//! [`crate::client::config`]): a JSON file with `//` and `/* */` comments and trailing
//! commas, whose strings may name environment variables. Nothing here knows the client's
//! or the gateway's error types: each maps [`UnsetEnvVar`] into its own.

mod discovery;
mod env;
mod jsonc;

pub use discovery::{home_dir, locate_config, ConfigSource, CONFIG_ENV};
// The gateway expands single strings; the client whole JSON values.
#[cfg(feature = "proxy")]
pub(crate) use env::expand_env;
pub(crate) use env::{expand_env_value, UnsetEnvVar};
pub use jsonc::strip_json_comments;
