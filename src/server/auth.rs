//! `Authorization` checks: Bedrock API keys (bearer) and SigV4.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::http::{HeaderMap, Method, Uri};

use super::{Config, SigV4Check};

/// Why a request was refused: the error type, and the body to send (403).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Denied {
    pub(crate) error_type: &'static str,
    /// The JSON body.
    pub(crate) body: String,
}

impl Denied {
    fn message(error_type: &'static str, message: &str) -> Denied {
        Denied {
            error_type,
            body: serde_json::json!({ "message": message }).to_string(),
        }
    }
}

/// Checks the `Authorization` header against the configuration.
pub(crate) fn check(
    config: &Config,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Denied> {
    if config.bearer_key.is_none() && config.sigv4.is_none() {
        return Ok(());
    }
    let Some(value) = headers.get(::http::header::AUTHORIZATION) else {
        return Err(Denied::message(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let value = value.to_str().unwrap_or_default().trim();
    if let Some(token) = strip_prefix_ignore_case(value, "Bearer ") {
        return match &config.bearer_key {
            Some(key) if key == token.trim() => Ok(()),
            // Bedrock writes this one with a capital `M`.
            _ => Err(Denied {
                error_type: "AccessDeniedException",
                body: serde_json::json!({
                    "Message": "Authentication failed: Please make sure your API Key is valid."
                })
                .to_string(),
            }),
        };
    }
    if let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256 ") {
        let Some(check) = &config.sigv4 else {
            return Err(Denied::message(
                "AccessDeniedException",
                "SigV4 requests are not accepted by this server; use an API key (Authorization: Bearer).",
            ));
        };
        let parsed = SigV4Header::parse(rest).ok_or_else(|| {
            Denied::message(
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
            )
        })?;
        return match check {
            SigV4Check::AnyWellFormed => Ok(()),
            SigV4Check::Credentials {
                access_key_id,
                secret_access_key,
            } => {
                if parsed.access_key_id != access_key_id {
                    return Err(Denied::message(
                        "UnrecognizedClientException",
                        "The security token included in the request is invalid.",
                    ));
                }
                verify(&parsed, secret_access_key, method, uri, headers, body)
            }
        };
    }
    Err(Denied::message(
        "IncompleteSignatureException",
        &format!(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization={}",
            value.split(' ').next().unwrap_or_default()
        ),
    ))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// The parts of `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug)]
struct SigV4Header<'a> {
    access_key_id: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> SigV4Header<'a> {
    fn parse(rest: &'a str) -> Option<SigV4Header<'a>> {
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => {}
            }
        }
        let mut scope = credential?.split('/');
        let access_key_id = scope.next()?;
        let _date = scope.next()?;
        let region = scope.next()?;
        let service = scope.next()?;
        if scope.next()? != "aws4_request" || access_key_id.is_empty() {
            return None;
        }
        let signature = signature?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(SigV4Header {
            access_key_id,
            region,
            service,
            signed_headers: signed?.split(';').collect(),
            signature,
        })
    }
}

fn invalid_signature() -> Denied {
    Denied::message(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}

/// Recomputes the signature with aws-sigv4 over exactly the signed headers.
fn verify(
    parsed: &SigV4Header<'_>,
    secret: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Denied> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};

    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let time = header("x-amz-date").and_then(parse_amz_date).ok_or_else(|| {
        Denied::message(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    })?;
    let host = header("host").ok_or_else(invalid_signature)?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let full_uri = format!("http://{host}{path_and_query}");
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &parsed.signed_headers {
        // The signer adds these itself from the parameters.
        if matches!(*name, "x-amz-date" | "x-amz-security-token") {
            continue;
        }
        for value in headers.get_all(*name) {
            signed.push((name, value.to_str().map_err(|_| invalid_signature())?));
        }
    }
    let body = match header("x-amz-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => SignableBody::UnsignedPayload,
        _ => SignableBody::Bytes(body),
    };
    let request = SignableRequest::new(method.as_str(), full_uri, signed.into_iter(), body)
        .map_err(|_| invalid_signature())?;
    let credentials = aws_credential_types::Credentials::new(
        parsed.access_key_id,
        secret,
        header("x-amz-security-token").map(str::to_owned),
        None,
        "mock-bedrock",
    );
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(parsed.region)
        .name(parsed.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| invalid_signature())?
        .into();
    let output = sign(request, &params).map_err(|_| invalid_signature())?;
    if output.signature() == parsed.signature {
        Ok(())
    } else {
        Err(invalid_signature())
    }
}

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3_600 + mi * 60 + sec).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date() {
        let t = parse_amz_date("20150830T123600Z").expect("date");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok(),
            Some(1_440_938_160)
        );
        assert!(parse_amz_date("2015-08-30").is_none());
    }

    #[test]
    fn parses_header() {
        let header = format!(
            "Credential=AKID/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            "a".repeat(64)
        );
        let h = SigV4Header::parse(&header).expect("parse");
        assert_eq!(h.access_key_id, "AKID");
        assert_eq!(h.region, "us-east-1");
        assert_eq!(h.service, "bedrock");
        assert_eq!(h.signed_headers, ["host", "x-amz-date"]);
    }
}
