//! Bedrock error types as clients should see them (crate-private): the service sends
//! `x-amzn-errortype` and `__type` with a namespace or a URL attached
//! (`ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/`,
//! `com.amazon.coral.service#ThrottlingException`); the SDKs keep only the name.

/// The bare error type: the part before the first `:`, after the last `#`, trimmed.
pub(crate) fn clean_error_type(raw: &str) -> &str {
    let before_colon = raw.split(':').next().unwrap_or(raw);
    let after_hash = before_colon.rsplit('#').next().unwrap_or(before_colon);
    after_hash.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_urls_are_dropped() {
        assert_eq!(
            clean_error_type("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            "ValidationException"
        );
        assert_eq!(
            clean_error_type("com.amazon.coral.service#ThrottlingException"),
            "ThrottlingException"
        );
        assert_eq!(
            clean_error_type("aws.protocols#ThrottlingException"),
            "ThrottlingException"
        );
        assert_eq!(
            clean_error_type(" ModelNotReadyException "),
            "ModelNotReadyException"
        );
        assert_eq!(clean_error_type(""), "");
    }
}
