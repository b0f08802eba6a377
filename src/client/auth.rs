//! Authentication: `Authorization: Bearer <key>` when a key is configured, else AWS
//! SigV4 (service `bedrock`) with credentials from the environment or the shared
//! credentials file.
//!
//! Credential lookup order (as the SDKs, minus SSO / IMDS / process providers):
//!
//! 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 2. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//!    `~/.aws/credentials`), profile `AWS_PROFILE` (else `default`).
//!
//! Secrets never appear in `Debug` output or logs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use super::error::{AuthError, ClientError, CredentialSources};

/// The SigV4 service name of Bedrock runtime.
pub(crate) const SIGNING_SERVICE: &str = "bedrock";

/// A secret string: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Static AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id (not secret, but kept out of logs all the same).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &"***")
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl AwsCredentials {
    /// Static credentials from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else from the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile `AWS_PROFILE` or
    /// `default`), with the home directory from `env` (`HOME`).
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingCredentials`] when none are found.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<AwsCredentials, ClientError> {
        let home = super::config::home_dir(env);
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        find_credentials(env, home.as_deref(), &read).ok_or_else(|| {
            ClientError::Auth(AuthError::MissingCredentials {
                searched: CredentialSources::AwsOnly,
            })
        })
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer <key>` (ECA's proxy pattern, Bedrock API keys).
    Bearer(Secret),
    /// SigV4 with static credentials.
    SigV4 {
        /// The credentials.
        credentials: AwsCredentials,
        /// The signing region.
        region: String,
    },
}

impl Auth {
    /// Bearer when `key` is set, else SigV4 with credentials found via `env` and `home`.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingCredentials`] when there is no key and no credentials.
    pub fn resolve(
        key: Option<&str>,
        region: &str,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Auth, ClientError> {
        if let Some(key) = key {
            return Ok(Auth::Bearer(Secret::new(key)));
        }
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        match find_credentials(env, home, &read) {
            Some(credentials) => Ok(Auth::SigV4 {
                credentials,
                region: region.to_string(),
            }),
            None => Err(ClientError::Auth(AuthError::MissingCredentials {
                searched: CredentialSources::KeyAndAws,
            })),
        }
    }

    /// The headers to add to a request: `authorization` and, for SigV4, `x-amz-date`
    /// and `x-amz-security-token`. The request's `headers` are its other headers that
    /// are to be signed (e.g. `content-type`); `host` is derived from its `url`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Auth`] when the URL cannot be signed.
    pub fn headers(&self, request: &RequestToSign<'_>) -> Result<Vec<(&'static str, String)>, ClientError> {
        match self {
            Auth::Bearer(key) => Ok(vec![("authorization", format!("Bearer {}", key.expose()))]),
            Auth::SigV4 { credentials, region } => sign_sigv4(credentials, region, request),
        }
    }
}

/// The parts of an HTTP request that [`Auth::headers`] covers.
#[derive(Clone, Copy)]
pub struct RequestToSign<'a> {
    /// The method (`POST`).
    pub method: &'a str,
    /// The URL exactly as sent (percent-encoded path).
    pub url: &'a str,
    /// The request's other headers that are to be signed (e.g. `content-type`).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
    /// The signing time.
    pub time: SystemTime,
}

impl fmt::Debug for RequestToSign<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body is left out, as h2 leaves payloads out.
        f.debug_struct("RequestToSign")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("time", &self.time)
            .finish()
    }
}

/// Signs a request with SigV4 (service `bedrock`) and returns the headers to add:
/// `authorization`, `x-amz-date`, and `x-amz-security-token` for temporary credentials.
///
/// `url` must be exactly the URL sent (percent-encoded path); the path is double-encoded
/// in the canonical request, as the SDKs do for every service but S3. The `host` header
/// is signed as `host[:port]` (default ports left out, as HTTP clients send it) unless
/// `headers` has one.
///
/// # Errors
///
/// [`ClientError::Auth`] for a URL without a host, or a signer failure.
pub fn sigv4_headers(
    credentials: &AwsCredentials,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, ClientError> {
    let request = RequestToSign {
        method,
        url,
        headers,
        body,
        time,
    };
    sign_sigv4(credentials, region, &request)
}

/// [`sigv4_headers`] of a [`RequestToSign`].
fn sign_sigv4(
    credentials: &AwsCredentials,
    region: &str,
    request: &RequestToSign<'_>,
) -> Result<Vec<(&'static str, String)>, ClientError> {
    let RequestToSign { url, headers, .. } = *request;
    let uri: http::Uri = url.parse().map_err(|source| AuthError::InvalidUrl {
        url: url.to_string(),
        source,
    })?;
    let host = uri
        .host()
        .ok_or_else(|| AuthError::UrlWithoutHost { url: url.to_string() })?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let host_header = match uri.port_u16() {
        Some(p) if p != default_port => format!("{host}:{p}"),
        _ => host.to_string(),
    };
    let has_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
    if !has_host && uri.query().is_none() {
        let path = uri.path();
        if let Some(out) = super::sigv4::sign_plain(credentials, region, request, &host_header, path) {
            return Ok(out);
        }
    }
    sign_general(credentials, region, request, &host_header, has_host)
}

/// [`sign_sigv4`] by `aws_sigv4`, for what `sigv4::sign_plain` does not sign.
pub(super) fn sign_general(
    credentials: &AwsCredentials,
    region: &str,
    request: &RequestToSign<'_>,
    host_header: &str,
    has_host: bool,
) -> Result<Vec<(&'static str, String)>, ClientError> {
    let RequestToSign {
        method,
        url,
        headers,
        body,
        time,
    } = *request;
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
    if !has_host {
        all.push(("host", host_header));
    }
    all.extend_from_slice(headers);

    let identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials.session_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "bedrock-converse",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(AuthError::SigningParams)?
        .into();
    let signable = SignableRequest::new(method, url, all.into_iter(), SignableBody::Bytes(body))
        .map_err(AuthError::Signer)?;
    let (instructions, _signature) = sign(signable, &params).map_err(AuthError::Signer)?.into_parts();
    let mut out = Vec::new();
    for (name, value) in instructions.headers() {
        let name: &'static str = match name.to_ascii_lowercase().as_str() {
            "authorization" => "authorization",
            "x-amz-date" => "x-amz-date",
            "x-amz-security-token" => "x-amz-security-token",
            "x-amz-content-sha256" => "x-amz-content-sha256",
            _ => continue,
        };
        out.push((name, value.to_string()));
    }
    Ok(out)
}

// ===== credentials =====

/// Finds static AWS credentials: the environment, then the shared credentials file.
/// Pure: `env`, `home` and `read_file` are passed in.
pub(crate) fn find_credentials(
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    read_file: &dyn Fn(&Path) -> Option<String>,
) -> Option<AwsCredentials> {
    let non_empty = |n: &str| env(n).filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) = (non_empty("AWS_ACCESS_KEY_ID"), non_empty("AWS_SECRET_ACCESS_KEY")) {
        return Some(AwsCredentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: non_empty("AWS_SESSION_TOKEN").map(Secret::new),
        });
    }
    let path = match non_empty("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => PathBuf::from(p),
        None => home?.join(".aws").join("credentials"),
    };
    let text = read_file(&path)?;
    let profile = non_empty("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    credentials_from_ini(&text, &profile)
}

/// Reads one profile's static credentials from shared-credentials INI text.
pub(crate) fn credentials_from_ini(text: &str, profile: &str) -> Option<AwsCredentials> {
    let mut in_profile = false;
    let mut id = None;
    let mut secret = None;
    let mut token = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            // `[profile name]` is the config-file spelling; accept it too.
            let name = section.strip_prefix("profile ").map(str::trim).unwrap_or(section);
            in_profile = name == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some(AwsCredentials {
        access_key_id: id.filter(|s| !s.is_empty())?,
        secret_access_key: Secret::new(secret.filter(|s| !s.is_empty())?),
        session_token: token.filter(|s| !s.is_empty()).map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_profiles() {
        let ini = "# c\n[default]\naws_access_key_id=A\naws_secret_access_key=B\n\n\
                   [work]\n aws_access_key_id = C \n aws_secret_access_key = D\n aws_session_token = T\n";
        let d = credentials_from_ini(ini, "default").unwrap();
        assert_eq!(
            (d.access_key_id.as_str(), d.secret_access_key.expose()),
            ("A", "B")
        );
        assert!(d.session_token.is_none());
        let w = credentials_from_ini(ini, "work").unwrap();
        assert_eq!(w.access_key_id, "C");
        assert_eq!(w.session_token.as_ref().map(Secret::expose), Some("T"));
        assert!(credentials_from_ini(ini, "none").is_none());
    }

    #[test]
    fn env_first_then_file() {
        let env = |n: &str| match n {
            "AWS_ACCESS_KEY_ID" => Some("E".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("S".to_string()),
            _ => None,
        };
        let read = |_: &Path| Some("[default]\naws_access_key_id=F\naws_secret_access_key=G\n".to_string());
        assert_eq!(
            find_credentials(&env, Some(Path::new("/h")), &read)
                .unwrap()
                .access_key_id,
            "E"
        );
        let env2 = |n: &str| (n == "AWS_PROFILE").then(|| "default".to_string());
        let read2 = |p: &Path| {
            assert_eq!(p, Path::new("/h/.aws/credentials"));
            Some("[default]\naws_access_key_id=F\naws_secret_access_key=G\n".to_string())
        };
        assert_eq!(
            find_credentials(&env2, Some(Path::new("/h")), &read2)
                .unwrap()
                .access_key_id,
            "F"
        );
        assert!(find_credentials(&|_| None, None, &read).is_none());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = AwsCredentials {
            access_key_id: "AKIDSECRET".into(),
            secret_access_key: Secret::new("topsecret"),
            session_token: Some(Secret::new("tok")),
        };
        let s = format!(
            "{:?}",
            Auth::SigV4 {
                credentials: c,
                region: "r".into()
            }
        );
        assert!(
            !s.contains("topsecret") && !s.contains("tok\"") && !s.contains("AKIDSECRET"),
            "{s}"
        );
        let s = format!("{:?}", Auth::Bearer(Secret::new("bearer-key")));
        assert!(!s.contains("bearer-key"));
    }

    #[test]
    fn sigv4_signs_host_with_port() {
        let c = AwsCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("s"),
            session_token: Some(Secret::new("t")),
        };
        let h = sigv4_headers(
            &c,
            "us-east-1",
            "POST",
            "http://127.0.0.1:8080/model/us-east-1.a%3A0/converse",
            &[("content-type", "application/json")],
            b"{}",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let auth = &h.iter().find(|(n, _)| *n == "authorization").unwrap().1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/19700101/us-east-1/bedrock/aws4_request"));
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert!(h.iter().any(|(n, v)| *n == "x-amz-security-token" && v == "t"));
        assert!(sigv4_headers(&c, "r", "POST", "/no/host", &[], b"", SystemTime::UNIX_EPOCH).is_err());
    }
}

#[cfg(test)]
mod examples {
    #[test]
    fn credentials_from_ini_examples() {
        use super::credentials_from_ini;
        let ini = "[default]\naws_access_key_id = AKID\naws_secret_access_key = s3cr3t\n";
        let c = credentials_from_ini(ini, "default").unwrap();
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!(c.secret_access_key.expose(), "s3cr3t");
    }
}
