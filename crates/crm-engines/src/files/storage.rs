//! Where attachments' bytes are kept: an object store from a URL, and the tenant's key of each
//! attachment.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use uuid::Uuid;

/// Where files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Directory(std::path::PathBuf),
    /// An S3-compatible bucket, under a key prefix (endpoint, region and credentials from the
    /// standard `AWS_*` environment variables, e.g. `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix (empty: none).
        prefix: String,
    },
    /// In memory (tests).
    Memory,
}

impl Location {
    /// The location a URL names: `file:///var/lib/crm/files` or a plain path,
    /// `s3://bucket[/prefix]`, `memory://`.
    ///
    /// # Errors
    /// Another scheme, a bucket-less S3 URL.
    pub fn parse(url: &str) -> Result<Location, String> {
        if url == "memory://" {
            return Ok(Location::Memory);
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{url}: no bucket"));
            }
            return Ok(Location::S3 { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() });
        }
        let dir = url.strip_prefix("file://").unwrap_or(url);
        if dir.contains("://") || dir.is_empty() {
            return Err(format!("{url}: use file://, s3:// or a directory path"));
        }
        Ok(Location::Directory(dir.into()))
    }

    /// The object store of this location (a directory is made when missing).
    ///
    /// # Errors
    /// A directory that cannot be made, bad S3 settings.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>, String> {
        match self {
            Location::Memory => Ok(Arc::new(object_store::memory::InMemory::new())),
            Location::S3 { bucket, prefix } => {
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| format!("files in s3://{bucket}: {e}"))?;
                let store: Arc<dyn ObjectStore> = Arc::new(s3);
                Ok(if prefix.is_empty() { store } else { Arc::new(object_store::prefix::PrefixStore::new(store, prefix.as_str())) })
            }
            Location::Directory(dir) => {
                let at = |e: &dyn std::fmt::Display| format!("files at {}: {e}", dir.display());
                std::fs::create_dir_all(dir).map_err(|e| at(&e))?;
                Ok(Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| at(&e))?))
            }
        }
    }
}

/// The object store a URL names (see [`Location::parse`]).
///
/// # Errors
/// As [`Location::parse`] and [`Location::open`].
pub fn object_store(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    Location::parse(url)?.open()
}

/// The object key of attachment `id` of `org`.
#[must_use]
pub fn object_key(org: &str, id: Uuid) -> ObjectPath {
    ObjectPath::from_iter(["orgs", org, "attachments", &id.to_string()])
}
