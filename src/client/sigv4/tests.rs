//! The plain-case signer against `aws_sigv4` on the same requests.

use std::time::{Duration, SystemTime};

use super::super::auth::{sign_general, AwsCredentials, RequestToSign, Secret};
use super::*;

fn credentials(token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: token.map(Secret::new),
    }
}

/// Host, path, headers and body of a request.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

fn sorted(mut headers: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    headers.sort();
    headers
}

#[test]
fn plain_requests_are_signed_as_aws_sigv4_signs_them() {
    let times = [
        SystemTime::UNIX_EPOCH,
        SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400), // 2000-02-29
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_599), // 2026-12-31T23:59:59
        SystemTime::UNIX_EPOCH + Duration::from_secs(4_107_542_400), // 2100-03-01
    ];
    let cases: [Case<'_>; 5] = [
        (
            "127.0.0.1:8080",
            "/model/us-east-1.mock.text/converse-stream",
            &[("content-type", "application/json")],
            b"{}",
        ),
        (
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/us.anthropic.claude-3-5%3A0/converse",
            &[("content-type", "application/json")],
            br#"{"messages":[]}"#,
        ),
        (
            "h",
            "/model/a%2Fb/invoke",
            &[
                ("Content-Type", "application/json"),
                ("X-Amzn-Bedrock-Trace", "ENABLED"),
                ("accept", "*/*"),
            ],
            b"",
        ),
        ("h:9", "/", &[], b"x"),
        (
            "h",
            "/model/m~x_y-z.0/count-tokens",
            &[("x-amzn-bedrock-performanceconfig-latency", "standard")],
            b"{\"a\": 1}",
        ),
    ];
    for token in [None, Some("FwoGZXIvYXdzEXAMPLE//token==")] {
        let creds = credentials(token);
        for time in times {
            for (host, path, headers, body) in cases {
                let url = format!("http://{host}{path}");
                let request = RequestToSign {
                    method: "POST",
                    url: &url,
                    headers,
                    body,
                    time,
                };
                for region in ["us-east-1", "eu-west-3"] {
                    let plain = sign_plain(&creds, region, &request, host, path).expect("plain");
                    let general = sign_general(&creds, region, &request, host, false).unwrap();
                    assert_eq!(sorted(plain), sorted(general), "{url} {time:?} {region}");
                }
            }
        }
    }
}

#[test]
fn the_rest_is_left_to_aws_sigv4() {
    let creds = credentials(None);
    let request = |url, headers| RequestToSign {
        method: "POST",
        url,
        headers,
        body: b"",
        time: SystemTime::UNIX_EPOCH,
    };
    for path in ["/a/./b", "/a/../b", "//a", "/a b", "/a:b", "/%zz", "relative"] {
        assert!(
            sign_plain(&creds, "r", &request("http://h/", &[]), "h", path).is_none(),
            "{path}"
        );
    }
    for headers in [
        &[("user-agent", "x")][..],
        &[("content-type", " padded")],
        &[("content-type", "a  b")],
        &[("a", "1"), ("A", "2")],
        &[("x-amz-date", "20000101T000000Z")],
        &[("bad name", "1")],
    ] {
        assert!(
            sign_plain(&creds, "r", &request("http://h/x", headers), "h", "/x").is_none(),
            "{headers:?}"
        );
    }
}

#[test]
fn the_signing_key_is_derived_again_for_another_day_region_or_secret() {
    let a = signing_key("s", "r", "20260101");
    assert_eq!(signing_key("s", "r", "20260101"), a);
    assert_ne!(signing_key("s", "r", "20260102"), a);
    assert_ne!(signing_key("s", "q", "20260101"), a);
    assert_ne!(signing_key("t", "r", "20260101"), a);
    assert_eq!(signing_key("s", "r", "20260101"), a);
}
