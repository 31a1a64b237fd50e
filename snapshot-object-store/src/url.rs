//! Opening a snapshot store from a URL: `s3://bucket/prefix`, `file:///path`, and with
//! the crate's features `gs://bucket/prefix` and `az://container/prefix`.
//!
//! Credentials come from the usual environment of each service (`AWS_*` for S3:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`,
//! `AWS_ALLOW_HTTP`, ...; `GOOGLE_*`; `AZURE_*`) and from options, which win. Only the
//! URL's scheme, bucket and prefix are ever shown; the URL may not carry a user, a
//! password or a query, so nothing secret can reach a message through it.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};
use state_core::{Error, Result};

use crate::ObjectSnapshotStore;
use crate::config::SnapshotStoreConfig;
use crate::error::map_error;

/// How [`ObjectSnapshotStore::from_url`] connects, beyond the environment.
#[derive(Clone, Default)]
pub struct UrlOptions {
    /// The store's behaviour.
    pub config: SnapshotStoreConfig,
    /// Service options by object_store's names (`endpoint`, `region`,
    /// `access_key_id`, `allow_http`, `connect_timeout`, ...); they win over the
    /// environment. Their values are never shown.
    pub options: Vec<(String, String)>,
    /// How failed requests are retried; object_store's default (10 retries within 3
    /// minutes) when `None`.
    pub retry: Option<RetryConfig>,
}

impl UrlOptions {
    /// Options with `config` and nothing else.
    pub fn new(config: SnapshotStoreConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Adds the service option `key` = `value`.
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    /// Sets the endpoint (an S3-compatible server: `http://127.0.0.1:8333`); plain HTTP
    /// is allowed when the endpoint says `http://`.
    pub fn with_endpoint(self, endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        let http = endpoint.starts_with("http://");
        let with = self.with_option("endpoint", endpoint);
        if http {
            with.with_option("allow_http", "true")
        } else {
            with
        }
    }

    /// At most `max_retries` retries of a failed request, all within `timeout`.
    pub fn with_retries(mut self, max_retries: usize, timeout: Duration) -> Self {
        self.retry = Some(RetryConfig {
            max_retries,
            retry_timeout: timeout,
            ..RetryConfig::default()
        });
        self
    }
}

impl std::fmt::Debug for UrlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.options.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("UrlOptions")
            .field("config", &self.config)
            .field("options", &keys)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A URL taken apart: `<scheme>://<bucket><path>`.
struct Parsed<'a> {
    scheme: &'a str,
    bucket: &'a str,
    path: &'a str,
}

fn parse(url: &str) -> Result<Parsed<'_>> {
    let bad = |why: &str| {
        Error::invalid_input(format!(
            "snapshot store URL {:?}: {why}; expected s3://bucket/prefix, file:///path, \
             gs://bucket/prefix or az://container/prefix",
            shown(url)
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if rest.contains(['?', '#']) {
        return Err(bad("a query or fragment is not allowed"));
    }
    let (bucket, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if bucket.contains('@') {
        return Err(bad(
            "credentials in the URL are not allowed; use the environment",
        ));
    }
    Ok(Parsed {
        scheme,
        bucket,
        path,
    })
}

/// `url` as it may be shown: cut before any `@`, `?` or `#`.
fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if rest.contains('@') => format!("{scheme}://…"),
        _ => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

impl ObjectSnapshotStore {
    /// Opens the snapshot store at `url`: `s3://bucket/prefix` (credentials, region and
    /// endpoint from `AWS_*` and the options), `file:///path` (the directory is
    /// created), and, with the crate's features, `gs://bucket/prefix` and
    /// `az://container/prefix`. Nothing is contacted yet: a missing bucket, refused
    /// credentials or an unreachable endpoint show in the first operation's error.
    pub fn from_url(url: &str, options: UrlOptions) -> Result<Self> {
        let parsed = parse(url)?;
        let (store, base, prefix): (Arc<dyn ObjectStore>, String, &str) = match parsed.scheme {
            "s3" | "s3a" => (
                s3(&parsed, &options)?,
                format!("s3://{}", parsed.bucket),
                parsed.path,
            ),
            "file" => {
                if !parsed.bucket.is_empty() && parsed.bucket != "localhost" {
                    return Err(Error::invalid_input(format!(
                        "snapshot store URL {url:?}: a file URL names no host (file:///path)"
                    )));
                }
                let dir = std::path::Path::new(parsed.path);
                if !dir.is_absolute() {
                    return Err(Error::invalid_input(format!(
                        "snapshot store URL {url:?}: the path must be absolute (file:///path)"
                    )));
                }
                std::fs::create_dir_all(dir).map_err(|err| {
                    Error::from(err)
                        .context(format!("creating snapshot directory {}", dir.display()))
                })?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|err| map_error(err, format!("opening {url}")))?;
                (Arc::new(local), format!("file://{}", parsed.path), "")
            }
            #[cfg(feature = "gcp")]
            "gs" => (
                gcs(&parsed, &options)?,
                format!("gs://{}", parsed.bucket),
                parsed.path,
            ),
            #[cfg(feature = "azure")]
            "az" | "azure" => (
                azure(&parsed, &options)?,
                format!("az://{}", parsed.bucket),
                parsed.path,
            ),
            other => {
                return Err(Error::invalid_input(format!(
                    "snapshot store URL {:?}: scheme {other:?} is not supported by this build \
                     (s3, file{}{})",
                    shown(url),
                    if cfg!(feature = "gcp") { ", gs" } else { "" },
                    if cfg!(feature = "azure") { ", az" } else { "" },
                )));
            }
        };
        let prefix = Path::parse(prefix.trim_matches('/')).map_err(|err| {
            Error::invalid_input(format!(
                "snapshot store URL {:?}: bad prefix: {err}",
                shown(url)
            ))
        })?;
        Self::with_base(store, base, prefix, options.config)
    }
}

fn no_bucket(url: &Parsed<'_>) -> Result<()> {
    if url.bucket.is_empty() {
        return Err(Error::invalid_input(format!(
            "snapshot store URL {}://{}: no bucket",
            url.scheme, url.path
        )));
    }
    Ok(())
}

fn s3(url: &Parsed<'_>, options: &UrlOptions) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    no_bucket(url)?;
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(url.bucket);
    for (key, value) in &options.options {
        let key: AmazonS3ConfigKey = key.parse().map_err(|err| map_error(err, "an S3 option"))?;
        builder = builder.with_config(key, value);
    }
    if let Some(retry) = &options.retry {
        builder = builder.with_retry(retry.clone());
    }
    let store = builder
        .build()
        .map_err(|err| map_error(err, format!("configuring S3 bucket {}", url.bucket)))?;
    Ok(Arc::new(store))
}

#[cfg(feature = "gcp")]
fn gcs(url: &Parsed<'_>, options: &UrlOptions) -> Result<Arc<dyn ObjectStore>> {
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    no_bucket(url)?;
    let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(url.bucket);
    for (key, value) in &options.options {
        let key: GoogleConfigKey = key.parse().map_err(|err| map_error(err, "a GCS option"))?;
        builder = builder.with_config(key, value);
    }
    if let Some(retry) = &options.retry {
        builder = builder.with_retry(retry.clone());
    }
    let store = builder
        .build()
        .map_err(|err| map_error(err, format!("configuring GCS bucket {}", url.bucket)))?;
    Ok(Arc::new(store))
}

#[cfg(feature = "azure")]
fn azure(url: &Parsed<'_>, options: &UrlOptions) -> Result<Arc<dyn ObjectStore>> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    no_bucket(url)?;
    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(url.bucket);
    for (key, value) in &options.options {
        let key: AzureConfigKey = key
            .parse()
            .map_err(|err| map_error(err, "an Azure option"))?;
        builder = builder.with_config(key, value);
    }
    if let Some(retry) = &options.retry {
        builder = builder.with_retry(retry.clone());
    }
    let store = builder
        .build()
        .map_err(|err| map_error(err, format!("configuring Azure container {}", url.bucket)))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_secrets_are_refused_and_never_shown() {
        let err = ObjectSnapshotStore::from_url("s3://key:secret@bucket/x", UrlOptions::default())
            .unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::InvalidInput);
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = ObjectSnapshotStore::from_url("s3://bucket/x?token=abc", UrlOptions::default())
            .unwrap_err();
        assert!(!err.to_string().contains("abc"), "{err}");
    }

    #[test]
    fn unknown_schemes_and_missing_parts_are_named() {
        for (url, what) in [
            ("ftp://host/x", "scheme \"ftp\""),
            ("no-scheme", "no scheme"),
            ("s3:///prefix", "no bucket"),
            ("file://relative", "names no host"),
        ] {
            let err = ObjectSnapshotStore::from_url(url, UrlOptions::default()).unwrap_err();
            assert_eq!(err.kind(), state_core::ErrorKind::InvalidInput, "{url}");
            assert!(err.to_string().contains(what), "{url}: {err}");
        }
    }

    #[test]
    fn an_s3_url_shows_bucket_and_prefix_only() {
        let options = UrlOptions::default()
            .with_option("access_key_id", "AKIDEXAMPLE")
            .with_option("secret_access_key", "very-secret")
            .with_endpoint("http://127.0.0.1:1");
        let store = ObjectSnapshotStore::from_url("s3://bucket/a/b/", options.clone()).unwrap();
        assert_eq!(
            state_core::SnapshotStore::location(&store),
            "s3://bucket/a/b"
        );
        for shown in [format!("{store:?}"), format!("{options:?}")] {
            assert!(
                !shown.contains("very-secret") && !shown.contains("AKIDEXAMPLE"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_file_url_creates_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("snapshots");
        let url = format!("file://{}", root.display());
        let store = ObjectSnapshotStore::from_url(&url, UrlOptions::default()).unwrap();
        assert!(root.is_dir());
        assert_eq!(state_core::SnapshotStore::location(&store), url);
    }
}
