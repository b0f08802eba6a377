//! SigV4 for the requests this crate makes, without the general signer's allocations:
//! one canonical request built in one `String`, no `format!`, and the signing key
//! derived once per day, region and secret (it depends on nothing else) and kept per
//! thread, with its HMAC state (the key's two padded blocks already hashed).
//!
//! Only the plain case is signed here: an absolute path of unreserved characters, `/`
//! and `%XX` escapes, no dot segments or `//`, no query, header names given once and
//! values of visible ASCII without leading, trailing or doubled spaces, and none of the
//! headers the general signer leaves out or adds itself. Anything else returns `None`
//! and [`aws_sigv4`] signs it; a test checks that both give the same headers.

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::SystemTime;

use hmac::{digest::FixedOutput, Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::auth::{AwsCredentials, RequestToSign, SIGNING_SERVICE};

/// The signing key of one day, region and secret.
struct CachedKey {
    secret: String,
    region: String,
    date: [u8; 8],
    /// HMAC with `key`, its padded key blocks hashed: cloned per signature.
    mac: Hmac<Sha256>,
}

thread_local! {
    static SIGNING_KEY: RefCell<Option<CachedKey>> = const { RefCell::new(None) };
}

/// Headers the general signer leaves out of the signature or sets itself: a request
/// that carries one is signed by it.
const NOT_PLAIN: [&str; 7] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// The `authorization`, `x-amz-date` and (for temporary credentials)
/// `x-amz-security-token` headers of `request` to `path` with `host` (as sent), or
/// `None` when it is not the plain case.
pub(crate) fn sign_plain(
    credentials: &AwsCredentials,
    region: &str,
    request: &RequestToSign<'_>,
    host: &str,
    path: &str,
) -> Option<Vec<(&'static str, String)>> {
    if !plain_path(path) || !plain_value(host) || !plain_value(request.method) {
        return None;
    }
    let token = credentials.session_token.as_ref().map(|t| t.expose());
    if token.is_some_and(|t| !plain_value(t)) {
        return None;
    }
    let amz = timestamp(request.time)?;
    // Both ASCII digits and `T`, `Z`.
    let amz_date = std::str::from_utf8(&amz).ok()?;
    let headers = signed_headers(request.headers, host, amz_date, token)?;
    let signed = signed_names(&headers);
    let canonical = canonical_request(request.method, path, &headers, &signed, request.body);
    let authorization = authorization(credentials, region, amz_date, &canonical, &signed)?;
    let mut out = Vec::with_capacity(3);
    out.push(("authorization", authorization));
    out.push(("x-amz-date", amz_date.to_owned()));
    if let Some(token) = token {
        out.push(("x-amz-security-token", token.to_owned()));
    }
    Some(out)
}

/// The signed headers, lowercased and sorted: `host`, the request's, `x-amz-date` and
/// `x-amz-security-token`; `None` when a request header is not the plain case (a name
/// that is not a token, given twice, or one the general signer treats itself; a value
/// it would change).
fn signed_headers<'a>(
    given: &'a [(&'a str, &'a str)],
    host: &'a str,
    amz_date: &'a str,
    token: Option<&'a str>,
) -> Option<Vec<(Cow<'a, str>, &'a str)>> {
    let mut headers: Vec<(Cow<'a, str>, &'a str)> = Vec::with_capacity(given.len() + 3);
    headers.push((Cow::Borrowed("host"), host));
    for &(name, value) in given {
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        if name.is_empty() || !name.bytes().all(is_token) || NOT_PLAIN.contains(&&*name) {
            return None;
        }
        if !plain_value(value) || headers.iter().any(|(n, _)| *n == name) {
            return None;
        }
        headers.push((name, value));
    }
    headers.push((Cow::Borrowed("x-amz-date"), amz_date));
    if let Some(token) = token {
        headers.push((Cow::Borrowed("x-amz-security-token"), token));
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    Some(headers)
}

/// The `SignedHeaders` list: the names, `;`-separated.
fn signed_names(headers: &[(Cow<'_, str>, &str)]) -> String {
    let mut signed = String::with_capacity(headers.iter().map(|(n, _)| n.len() + 1).sum());
    for (i, (name, _)) in headers.iter().enumerate() {
        if i > 0 {
            signed.push(';');
        }
        signed.push_str(name);
    }
    signed
}

/// The canonical request: method, path (double-encoded), no query, the headers, their
/// names, the body's SHA-256.
fn canonical_request(
    method: &str,
    path: &str,
    headers: &[(Cow<'_, str>, &str)],
    signed: &str,
    body: &[u8],
) -> String {
    let mut canonical = String::with_capacity(256 + path.len());
    canonical.push_str(method);
    canonical.push('\n');
    // Double-encoded, as for every service but S3: only `%` changes in a plain path.
    for c in path.chars() {
        match c {
            '%' => canonical.push_str("%25"),
            c => canonical.push(c),
        }
    }
    canonical.push_str("\n\n");
    for (name, value) in headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(signed);
    canonical.push('\n');
    push_hex(&mut canonical, &Sha256::digest(body));
    canonical
}

/// The `authorization` header: the string to sign (timestamp, scope, the canonical
/// request's SHA-256) signed with the day's key.
fn authorization(
    credentials: &AwsCredentials,
    region: &str,
    amz_date: &str,
    canonical: &str,
    signed: &str,
) -> Option<String> {
    let date = amz_date.get(..8)?;
    let scope_len = date.len() + region.len() + SIGNING_SERVICE.len() + 15;
    let mut to_sign = String::with_capacity(34 + amz_date.len() + scope_len + 64);
    to_sign.push_str("AWS4-HMAC-SHA256\n");
    to_sign.push_str(amz_date);
    to_sign.push('\n');
    let scope_at = to_sign.len();
    for part in [date, "/", region, "/", SIGNING_SERVICE, "/aws4_request"] {
        to_sign.push_str(part);
    }
    let scope_end = to_sign.len();
    to_sign.push('\n');
    push_hex(&mut to_sign, &Sha256::digest(canonical.as_bytes()));
    let scope = to_sign.get(scope_at..scope_end)?;
    let mut mac = signing_mac(credentials.secret_access_key.expose(), region, date);
    mac.update(to_sign.as_bytes());
    let signature: [u8; 32] = mac.finalize_fixed().into();
    let mut authorization =
        String::with_capacity(110 + credentials.access_key_id.len() + scope.len() + signed.len());
    for part in [
        "AWS4-HMAC-SHA256 Credential=",
        &credentials.access_key_id,
        "/",
        scope,
        ", SignedHeaders=",
        signed,
        ", Signature=",
    ] {
        authorization.push_str(part);
    }
    push_hex(&mut authorization, &signature);
    Some(authorization)
}

/// What the cached signing key for `date` (`YYYYMMDD`) signs the empty string to:
/// equal keys, equal answers.
#[cfg(test)]
fn signing_key(secret: &str, region: &str, date: &str) -> [u8; 32] {
    with_signing_key(secret, region, date, |c| c.mac.clone().finalize_fixed().into())
}

/// HMAC keyed with the signing key for `date`, from the thread's cache when it is the
/// same day, region and secret.
fn signing_mac(secret: &str, region: &str, date: &str) -> Hmac<Sha256> {
    with_signing_key(secret, region, date, |c| c.mac.clone())
}

/// `read` of the thread's cached signing key, derived first unless it is the one for
/// the same day, region and secret.
fn with_signing_key<T>(secret: &str, region: &str, date: &str, read: impl FnOnce(&CachedKey) -> T) -> T {
    SIGNING_KEY.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(c) = cache.as_ref() {
            if c.date.as_slice() == date.as_bytes() && c.region == region && c.secret == secret {
                return read(c);
            }
        }
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, region.as_bytes());
        let k_service = hmac(&k_region, SIGNING_SERVICE.as_bytes());
        let key = hmac(&k_service, b"aws4_request");
        let mut day = [0u8; 8];
        day.copy_from_slice(date.as_bytes().get(..8).unwrap_or(b"00000000"));
        let mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
        read(cache.insert(CachedKey {
            secret: secret.to_owned(),
            region: region.to_owned(),
            date: day,
            mac,
        }))
    })
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize_fixed().into()
}

/// Appends `bytes` in lowercase hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// `YYYYMMDDTHHMMSSZ` of `time` (UTC; its first 8 bytes are the date); `None` before
/// 1970 or past 9999.
fn timestamp(time: SystemTime) -> Option<[u8; 16]> {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let days = i64::try_from(secs / 86_400).ok()?;
    let rest = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    let mut out = *b"00000000T000000Z";
    // Each in range: a year of four digits (checked), the rest of two.
    let fields = [
        (0, 4, u64::try_from(year).ok()?),
        (4, 2, u64::try_from(month).ok()?),
        (6, 2, u64::try_from(day).ok()?),
        (9, 2, rest / 3_600),
        (11, 2, rest % 3_600 / 60),
        (13, 2, rest % 60),
    ];
    for (at, width, mut value) in fields {
        for slot in out.get_mut(at..at + width)?.iter_mut().rev() {
            // A digit: `value % 10` is below 10.
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    Some(out)
}

/// An absolute path of unreserved characters, `/` and `%XX`, no dot segments, no `//`.
fn plain_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') || path.contains("//") {
        return false;
    }
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return false;
    }
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let escape = bytes.get(i + 1..i + 3);
            if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~/".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Visible ASCII and single inner spaces: what the general signer would not change.
fn plain_value(value: &str) -> bool {
    !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.contains("  ")
        && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
