//! The real S3-compatible server the object-storage tests run against (SeaweedFS,
//! started on 127.0.0.1 by `scripts/s3.sh`), and the rule for a test that finds none.
//!
//! A test asks for it first thing: `let Some(s3) = s3() else { return };`. Its settings
//! are the exports `scripts/s3.sh env` prints (`S3_ENDPOINT`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `S3_BUCKET`, `AWS_ALLOW_HTTP`), each falling
//! back to the value the script uses by default. Without a server the test is skipped
//! with a printed reason; under `CI=true` it fails, as a Kafka test does.

use crate::kafka::{REACHABLE_WITHIN, in_ci, refusing, skip_unless_ci};
use crate::wait::try_eventually;

/// Where the S3 server is and how to sign in: what `scripts/s3.sh env` exports.
#[derive(Clone, PartialEq, Eq)]
pub struct S3 {
    /// `S3_ENDPOINT`, e.g. `http://127.0.0.1:8333`.
    pub endpoint: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_REGION`.
    pub region: String,
    /// `S3_BUCKET`: a bucket that exists.
    pub bucket: String,
    /// `AWS_ALLOW_HTTP`: whether the endpoint is plain HTTP.
    pub allow_http: bool,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Test credentials, but a habit worth keeping: no secret in a message.
        f.debug_struct("S3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl S3 {
    /// The settings from the environment, with `scripts/s3.sh`'s defaults.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let or = |name: &str, default: &str| var(name).unwrap_or_else(|| default.to_owned());
        Self {
            endpoint: or("S3_ENDPOINT", "http://127.0.0.1:8333"),
            access_key_id: or("AWS_ACCESS_KEY_ID", "statestore-test"),
            secret_access_key: or("AWS_SECRET_ACCESS_KEY", "statestore-test-secret"),
            region: or("AWS_REGION", "us-east-1"),
            bucket: or("S3_BUCKET", "statestore-tests"),
            allow_http: or("AWS_ALLOW_HTTP", "true") == "true",
        }
    }

    /// `host:port` of the endpoint.
    pub fn host_port(&self) -> String {
        let rest = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or(rest);
        if authority.contains(':') {
            authority.to_owned()
        } else if self.endpoint.starts_with("https://") {
            format!("{authority}:443")
        } else {
            format!("{authority}:80")
        }
    }
}

/// The S3 server's settings, or `None` after printing why the test is skipped when its
/// endpoint accepts no connection within 5 s; under `CI=true` that fails the test.
#[track_caller]
pub fn s3() -> Option<S3> {
    let s3 = S3::from_env();
    let server = s3.host_port();
    let Err(down) = try_eventually(
        REACHABLE_WITHIN,
        &format!("the S3 server at {server} accepting a connection"),
        || refusing(&server),
    ) else {
        return Some(s3);
    };
    let message = format!(
        "no S3 server reachable at {} (S3_ENDPOINT): {down}; start it with \
         `eval \"$(scripts/s3.sh start)\"`",
        s3.endpoint
    );
    skip_unless_ci(&message, "S3", in_ci());
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_what_the_script_exports() {
        let s3 = S3::from_lookup(|_| None);
        assert_eq!(s3.endpoint, "http://127.0.0.1:8333");
        assert_eq!(s3.host_port(), "127.0.0.1:8333");
        assert_eq!(s3.bucket, "statestore-tests");
        assert!(s3.allow_http);
        assert!(!format!("{s3:?}").contains("secret"));
    }

    #[test]
    fn the_environment_wins() {
        let s3 = S3::from_lookup(|name| match name {
            "S3_ENDPOINT" => Some("https://s3.example".into()),
            "AWS_ALLOW_HTTP" => Some("false".into()),
            _ => None,
        });
        assert_eq!(s3.host_port(), "s3.example:443");
        assert!(!s3.allow_http);
    }

    #[test]
    #[should_panic(expected = "(CI=true: a test needing S3 never skips in CI)")]
    fn under_ci_a_missing_server_fails() {
        skip_unless_ci("no S3 server here", "S3", true);
    }
}
