//! Endpoint URLs: the display form of the ECA editor's Bedrock provider (see
//! [`config`](super::config)) and the percent-encoded form sent on the wire.
//!
//! ```text
//! with "url":    <url>[/]<region>.<modelName>/converse[-stream]
//! without:       https://bedrock-runtime.<region>.amazonaws.com/model/<region>.<modelName>/converse[-stream]
//! ```
//!
//! A model id that already carries a cross-region inference-profile prefix (`us.`, `eu.`,
//! `apac.`, `global.`, ...) or a region (`us-east-1.`), and an ARN, is never prefixed again;
//! `"regionPrefix": false` (per provider or per model) sends ids unprefixed.
//!
//! On the wire the model id is one path segment, percent-encoded the way the AWS SDKs
//! encode an HTTP label: everything but `A-Z a-z 0-9 - . _ ~` (so `:` is `%3A` and `/`
//! is `%2F`). SigV4 signs that encoded path.

use super::config::{ProviderConfig, ResolvedModel};
use super::{ClientError, ConfigError};

/// Cross-region inference profile prefixes (the geography before the first `.`).
const CROSS_REGION_PREFIXES: &[&str] = &[
    "us", "us-gov", "eu", "apac", "ap", "global", "jp", "au", "ca", "sa", "me", "af", "mx", "il",
];

/// The seed's `build-endpoint`: the URL a model is called at, in display form (the model
/// id as written, not percent-encoded). Uses the provider's `regionPrefix` setting.
///
/// # Examples
///
/// ```
/// use bedrock_converse::client::{build_endpoint, ProviderConfig};
/// let proxy = ProviderConfig::new("bedrock", "us-east-1").with_url("https://proxy.example.com/model/");
/// assert_eq!(
///     build_endpoint(&proxy, "anthropic.claude-3-sonnet-20240229-v1:0", false),
///     "https://proxy.example.com/model/us-east-1.anthropic.claude-3-sonnet-20240229-v1:0/converse"
/// );
/// let aws = ProviderConfig::new("bedrock", "eu-west-1");
/// assert_eq!(
///     build_endpoint(&aws, "cohere.command-r-v1:0", true),
///     "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu-west-1.cohere.command-r-v1:0/converse-stream"
/// );
/// ```
pub fn build_endpoint(provider: &ProviderConfig, model_name: &str, stream: bool) -> String {
    Endpoint::new(provider, model_name, provider.region_prefix, stream).display
}

/// A resolved endpoint: both forms of the URL and the pieces SigV4 needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The seed's form, model id as written (for display and logs).
    pub display: String,
    /// The URL sent: the model id percent-encoded as one path segment.
    pub wire: String,
    /// The model id as sent (region prefix applied), not encoded.
    pub model_id: String,
    /// `true` for `/converse-stream`.
    pub stream: bool,
}

impl Endpoint {
    /// Builds the endpoint for `model_name` on `provider`.
    pub fn new(provider: &ProviderConfig, model_name: &str, region_prefix: bool, stream: bool) -> Endpoint {
        let op = if stream { "converse-stream" } else { "converse" };
        Endpoint::for_operation(provider, model_name, region_prefix, op, stream)
    }

    /// The endpoint of another operation of the model (`invoke`,
    /// `invoke-with-response-stream`, `count-tokens`): the same model id and base URL,
    /// `op` as the last path segment; `stream` says whether the answer is an event stream.
    pub fn for_operation(
        provider: &ProviderConfig,
        model_name: &str,
        region_prefix: bool,
        op: &str,
        stream: bool,
    ) -> Endpoint {
        let model_id = prefixed_model_id(&provider.region, model_name, region_prefix);
        let base = base_url(provider);
        let encoded = crate::model_id::encode(&model_id).to_string();
        Endpoint {
            display: format!("{base}{model_id}/{op}"),
            wire: format!("{base}{encoded}/{op}"),
            model_id,
            stream,
        }
    }

    /// The endpoint of a resolved model (its own `regionPrefix` override applied).
    pub fn for_model(model: &ResolvedModel<'_>, stream: bool) -> Endpoint {
        Endpoint::new(model.provider, &model.model_name, model.region_prefix, stream)
    }
}

/// Checks that a model id (as sent, region prefix applied) stays one path segment: the
/// label encoding covers every character but `.`, so the dot segments `.` and `..`,
/// and the empty id, are refused (URL parsers resolve `%2e%2e` like `..`).
///
/// # Errors
///
/// [`ConfigError::InvalidModelId`].
pub(crate) fn check_model_id(model_id: &str) -> Result<(), ClientError> {
    if !crate::model_id::is_segment(model_id) {
        return Err(ClientError::Config(ConfigError::InvalidModelId {
            model_id: model_id.to_owned(),
        }));
    }
    Ok(())
}

/// The base URL ending in `/`: the configured `url`, or the AWS endpoint of the region.
pub(crate) fn base_url(provider: &ProviderConfig) -> String {
    match &provider.url {
        Some(url) if url.ends_with('/') => url.clone(),
        Some(url) => format!("{url}/"),
        None => format!("https://bedrock-runtime.{}.amazonaws.com/model/", provider.region),
    }
}

/// `<region>.<model>` unless prefixing is off, or the id is an ARN or already carries a
/// cross-region or region prefix.
pub(crate) fn prefixed_model_id(region: &str, model_name: &str, region_prefix: bool) -> String {
    if !region_prefix || has_routing_prefix(model_name) {
        model_name.to_string()
    } else {
        format!("{region}.{model_name}")
    }
}

/// Whether a model id is an ARN or starts with a cross-region (`us.`, `global.`, ...) or
/// region (`us-east-1.`) prefix.
pub(crate) fn has_routing_prefix(model_name: &str) -> bool {
    if model_name.starts_with("arn:") {
        return true;
    }
    let Some((first, _)) = model_name.split_once('.') else {
        return false;
    };
    CROSS_REGION_PREFIXES.contains(&first) || looks_like_region(first)
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: letters, `-`, and a final number.
fn looks_like_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .iter()
            .take(parts.len() - 1)
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_label_encoded() {
        let p = ProviderConfig::new("b", "us-east-1");
        let e = Endpoint::new(&p, "anthropic.claude-3-sonnet-20240229-v1:0", true, true);
        assert_eq!(
            e.wire,
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/\
             us-east-1.anthropic.claude-3-sonnet-20240229-v1%3A0/converse-stream"
        );
        let arn = "arn:aws:bedrock:us-east-1:123:inference-profile/us.x";
        let e = Endpoint::new(&p, arn, true, false);
        assert_eq!(e.model_id, arn);
        assert!(e
            .wire
            .ends_with("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x/converse"));
    }

    #[test]
    fn prefixes() {
        for id in [
            "us.a.b",
            "eu.a.b",
            "apac.a",
            "global.anthropic.x",
            "us-gov.a",
            "jp.a",
            "au.a",
            "ca.a",
        ] {
            assert!(has_routing_prefix(id), "{id}");
        }
        for id in ["us-west-2.a", "ap-southeast-2.x", "us-gov-west-1.y"] {
            assert!(has_routing_prefix(id), "{id}");
        }
        for id in [
            "anthropic.claude",
            "cohere.command-r-v1:0",
            "meta.llama3",
            "amazon.nova-pro-v1:0",
            "x",
        ] {
            assert!(!has_routing_prefix(id), "{id}");
        }
    }

    #[test]
    fn region_prefix_settings() {
        let text = r#"{"providers": {"b": {"api": "bedrock", "region": "eu-west-1", "regionPrefix": false,
            "models": {"on": {"modelName": "anthropic.x", "regionPrefix": true},
                       "off": {"modelName": "anthropic.y"}}}}}"#;
        let c = crate::client::Config::parse_with_env(text, &|_| None).unwrap();
        let url = |m: &str| Endpoint::for_model(&c.resolve_model(m).unwrap(), false).display;
        assert!(url("b/on").ends_with("/model/eu-west-1.anthropic.x/converse"));
        assert!(url("b/off").ends_with("/model/anthropic.y/converse"));
        assert!(url("b/raw.id").ends_with("/model/raw.id/converse"));
        // Already routed ids are never prefixed, whatever the setting.
        let p = ProviderConfig::new("b", "us-east-1");
        assert!(build_endpoint(&p, "global.anthropic.z", true)
            .ends_with("/model/global.anthropic.z/converse-stream"));
    }

    #[test]
    fn dot_segment_ids_are_refused() {
        for bad in ["", ".", ".."] {
            assert!(
                matches!(
                    check_model_id(bad),
                    Err(ClientError::Config(ConfigError::InvalidModelId { .. }))
                ),
                "{bad:?}"
            );
        }
        for ok in [
            "...",
            "a..b",
            ".x",
            "us-east-1..",
            "arn:aws:bedrock:us-east-1:1:x/y",
        ] {
            assert!(check_model_id(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn url_without_slash() {
        let p = ProviderConfig::new("b", "us-east-1").with_url("https://p.example/model");
        assert_eq!(
            build_endpoint(&p, "m.x", true),
            "https://p.example/model/us-east-1.m.x/converse-stream"
        );
    }
}

#[cfg(test)]
mod examples {
    #[test]
    fn check_model_id_examples() {
        use super::check_model_id;
        assert!(check_model_id("us.anthropic.claude-v2:0").is_ok());
        assert!(check_model_id("..").is_err());
    }

    #[test]
    fn prefixed_model_id_examples() {
        use super::prefixed_model_id;
        assert_eq!(
            prefixed_model_id("us-east-1", "anthropic.claude-v2", true),
            "us-east-1.anthropic.claude-v2"
        );
        assert_eq!(
            prefixed_model_id("us-east-1", "us.anthropic.claude-v2", true),
            "us.anthropic.claude-v2"
        );
        assert_eq!(
            prefixed_model_id("us-east-1", "anthropic.claude-v2", false),
            "anthropic.claude-v2"
        );
    }
}
