//! Where attachments' bytes are kept: an object store from a URL, and the tenant's key of each
//! attachment.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use uuid::Uuid;

/// Where files are kept, from a URL: `file:///var/lib/crm/files` (or a plain path) for a local
/// directory, `s3://bucket[/prefix]` for S3-compatible storage (endpoint, region and credentials
/// from the standard `AWS_*` environment variables, e.g. `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`),
/// `memory://` for tests.
///
/// # Errors
/// An unsupported scheme, a directory that cannot be made, bad S3 settings.
pub fn object_store(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    if url == "memory://" {
        return Ok(Arc::new(object_store::memory::InMemory::new()));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let s3 =
            object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).build().map_err(|e| format!("files at {url}: {e}"))?;
        let store: Arc<dyn ObjectStore> = Arc::new(s3);
        return Ok(if prefix.trim_matches('/').is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix.trim_matches('/')))
        });
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    if dir.contains("://") {
        return Err(format!("files at {url}: use file://, s3:// or a directory path"));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("files at {dir}: {e}"))?;
    let local = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| format!("files at {dir}: {e}"))?;
    Ok(Arc::new(local))
}

/// The object key of attachment `id` of `org`.
#[must_use]
pub fn object_key(org: &str, id: Uuid) -> ObjectPath {
    ObjectPath::from_iter(["orgs", org, "attachments", &id.to_string()])
}
