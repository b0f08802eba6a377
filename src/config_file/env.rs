//! `${env:VAR}` and `${env:VAR:default}` in config strings.

use std::fmt;

use serde_json::Value;

/// The text that opens a reference.
const OPEN: &str = "${env:";

/// A `${env:VAR}` reference to an unset variable without a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnsetEnvVar {
    /// The variable's name.
    pub(crate) var: String,
    /// The config field that named it (`providers.bedrock.key`).
    pub(crate) field: String,
}

impl fmt::Display for UnsetEnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {} (named by {}) is not set",
            self.var, self.field
        )
    }
}

impl std::error::Error for UnsetEnvVar {}

/// Expands `${env:VAR}` and `${env:VAR:default}` in one string (the default runs to the
/// closing `}` and may contain `:`). An unterminated reference is kept as it is. `field`
/// names the config field for the error.
pub(crate) fn expand_env(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    field: &str,
) -> Result<String, UnsetEnvVar> {
    if !s.contains(OPEN) {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((before, tail)) = rest.split_once(OPEN) {
        out.push_str(before);
        let Some((reference, after)) = tail.split_once('}') else {
            // Unterminated: kept literally.
            out.push_str(OPEN);
            out.push_str(tail);
            return Ok(out);
        };
        let (var, default) = match reference.split_once(':') {
            Some((var, default)) => (var, Some(default)),
            None => (reference, None),
        };
        match (env(var), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(UnsetEnvVar {
                    var: var.to_owned(),
                    field: field.to_owned(),
                })
            }
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands every string inside `v` (objects and arrays walked), naming each string's
/// path under `field` in errors (`providers.b.models.m.extraPayload.tags[0]`).
pub(crate) fn expand_env_value(
    v: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    field: &str,
) -> Result<(), UnsetEnvVar> {
    match v {
        Value::String(s) if s.contains(OPEN) => *s = expand_env(s, env, field)?,
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

    fn host(v: &str) -> Option<String> {
        (v == "HOST").then(|| "proxy".to_owned())
    }

    #[test]
    fn references_and_defaults() {
        assert_eq!(
            expand_env("https://${env:HOST}/${env:P:model}/", &host, "url").unwrap(),
            "https://proxy/model/"
        );
        assert_eq!(expand_env("plain", &host, "url").unwrap(), "plain");
        assert_eq!(
            expand_env("${env:HOST}${env:HOST}", &host, "url").unwrap(),
            "proxyproxy"
        );
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
    fn unterminated_is_kept() {
        assert_eq!(expand_env("a ${env:HOST", &host, "f").unwrap(), "a ${env:HOST");
        assert_eq!(
            expand_env("${env:HOST} ${env:X", &host, "f").unwrap(),
            "proxy ${env:X"
        );
    }

    #[test]
    fn env_error_names_variable() {
        let env = |_: &str| None;
        let err = expand_env("a ${env:NOPE} b", &env, "providers.b.key").unwrap_err();
        assert_eq!(err.var, "NOPE");
        assert_eq!(err.field, "providers.b.key");
    }

    #[test]
    fn values_are_walked_with_their_paths() {
        let mut v = serde_json::json!({"a": ["x", "${env:HOST}"], "b": {"c": "${env:HOST}"}, "n": 1});
        expand_env_value(&mut v, &host, "root").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": ["x", "proxy"], "b": {"c": "proxy"}, "n": 1})
        );
        let mut v = serde_json::json!({"a": [1, {"k": "${env:NOPE}"}]});
        let err = expand_env_value(&mut v, &host, "root").unwrap_err();
        assert_eq!(err.field, "root.a[1].k");
    }
}
