//! The configured upstream, parsed once: where its connections go ([`Origin`]), the
//! `host` header that is sent and signed, and the path every request's starts with.
//! A request then costs one path string (the base, the encoded model id, the
//! operation), not a URL parsed, an origin built and a host header formatted again.

use std::fmt::Write as _;

use axum::http::{uri::PathAndQuery, HeaderValue, Uri};
use bytes::Bytes;

use super::response::UpstreamError;

/// Where a connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(super) https: bool,
    /// The host as the URL has it (an IPv6 address in brackets).
    pub(super) host: String,
    pub(super) port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Option<Origin> {
        let https = match uri.scheme_str()? {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let host = uri.host().filter(|h| !h.is_empty())?.to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Origin { https, host, port })
    }

    /// `host[:port]`, the default port left out: what the SigV4 signature signs.
    fn host_header(&self) -> String {
        let default_port = if self.https { 443 } else { 80 };
        if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host without the brackets of an IPv6 address.
    pub(super) fn bare_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }

    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }
}

/// An upstream base URL (`http(s)://host[:port]/prefix/`), parsed once.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    origin: Origin,
    /// `host[:port]` as sent and signed.
    host: String,
    host_value: HeaderValue,
    /// The path of the base URL (`/model/`), to which a request's path is appended.
    base_path: String,
}

impl Target {
    /// The target of `base`, a URL without query or fragment.
    ///
    /// # Errors
    ///
    /// [`UpstreamError::BadUrl`] when `base` is not `http(s)://host...`.
    pub(crate) fn parse(base: &str) -> Result<Target, UpstreamError> {
        let uri: Uri = base.parse().map_err(|_| UpstreamError::BadUrl)?;
        let origin = Origin::of(&uri).ok_or(UpstreamError::BadUrl)?;
        if uri.query().is_some() {
            return Err(UpstreamError::BadUrl);
        }
        let host = origin.host_header();
        let host_value = HeaderValue::from_str(&host).map_err(|_| UpstreamError::BadUrl)?;
        Ok(Target {
            origin,
            host,
            host_value,
            base_path: uri.path().to_owned(),
        })
    }

    /// Where its connections go.
    pub(super) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// `host[:port]`, the default port left out.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The `host` header.
    pub(super) fn host_value(&self) -> HeaderValue {
        self.host_value.clone()
    }

    /// The path of the base URL.
    #[cfg(test)]
    pub(super) fn path_prefix(&self) -> &str {
        &self.base_path
    }

    /// The path of a request to `model_id` (percent-encoded as one segment, as the
    /// SDKs encode a URI label) and `operation`: `/model/{id}/{operation}`.
    pub(crate) fn path(&self, model_id: &str, operation: &str) -> String {
        let mut path = String::with_capacity(self.base_path.len() + model_id.len() + operation.len() + 8);
        path.push_str(&self.base_path);
        // Writing to a `String` cannot fail.
        let _ = write!(path, "{}", crate::model_id::encode(model_id));
        path.push('/');
        path.push_str(operation);
        path
    }

    /// The whole URL of `path` (for logs, and the general signer).
    pub(crate) fn url(&self, path: &str) -> String {
        let scheme = self.origin.scheme();
        let mut url = String::with_capacity(scheme.len() + 3 + self.host.len() + path.len());
        for part in [scheme, "://", self.host.as_str(), path] {
            url.push_str(part);
        }
        url
    }

    /// `path` as a request target.
    ///
    /// # Errors
    ///
    /// [`UpstreamError::BadUrl`] when it is not a valid path.
    pub(super) fn path_and_query(path: String) -> Result<PathAndQuery, UpstreamError> {
        PathAndQuery::from_maybe_shared(Bytes::from(path)).map_err(|_| UpstreamError::BadUrl)
    }

    /// The absolute URI of `path` (HTTP/2 carries the authority in `:authority`).
    pub(super) fn absolute(&self, path: PathAndQuery) -> Result<Uri, UpstreamError> {
        Uri::builder()
            .scheme(self.origin.scheme())
            .authority(self.host.as_str())
            .path_and_query(path)
            .build()
            .map_err(|_| UpstreamError::BadUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_builds_the_urls_the_config_would() {
        let t = Target::parse("http://127.0.0.1:8080/model/").unwrap();
        let path = t.path("us.anthropic.claude-3-5:0", "converse-stream");
        assert_eq!(path, "/model/us.anthropic.claude-3-5%3A0/converse-stream");
        assert_eq!(t.host(), "127.0.0.1:8080");
        assert_eq!(
            t.url(&path),
            "http://127.0.0.1:8080/model/us.anthropic.claude-3-5%3A0/converse-stream"
        );
        let https = Target::parse("https://bedrock-runtime.us-east-1.amazonaws.com:443/model/").unwrap();
        assert_eq!(https.host(), "bedrock-runtime.us-east-1.amazonaws.com");
        assert_eq!(https.origin().port, 443);
        let v6 = Target::parse("http://[::1]:9/").unwrap();
        assert_eq!(v6.host(), "[::1]:9");
        assert_eq!(v6.origin().bare_host(), "::1");
        let uri = v6
            .absolute(Target::path_and_query(v6.path("m", "invoke")).unwrap())
            .unwrap();
        assert_eq!(uri.to_string(), "http://[::1]:9/m/invoke");
    }

    #[test]
    fn bases_that_are_not_http_are_refused() {
        for bad in ["ftp://h/", "/model/", "http:///x", "http://h/?q=1", "not a url"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
