//! Files attached to records: the `Attachment` model's bytes, kept in an object store (a local
//! directory by default, S3-compatible storage in production) under a key of the tenant
//! (`orgs/<org>/attachments/<id>`).
//!
//! The flow: [`Files::start_upload`] (the `startAttachmentUpload` mutation) checks the caller may
//! create attachments and read the record they attach to, checks the declared size and media
//! type against the limits, creates the `Attachment` (`PENDING`) and answers with a **signed
//! upload URL**; the client PUTs the bytes there ([`Files::receive`]: exactly the declared size
//! and type, hashed on the way, then the record becomes `READY`). [`Files::download_link`] (the
//! `attachmentDownload` query) signs a short-lived download URL for a `READY` attachment the
//! caller may read, whose record the caller may read too; [`Files::open`] serves it.
//!
//! A signed URL is a capability: an HMAC-SHA256 over the tenant, the attachment, the operation,
//! the expiry and what is served (size, type, name), under the server's file signing key. The
//! upload endpoint therefore acts in that one tenant as the platform (it was authorized when
//! the URL was signed), on that one attachment.
//!
//! An attachment destroyed (itself, or with the record it is attached to: the reference
//! cascades) has its object deleted by the [`CONSUMER`] outbox consumer ([`RemoveObjects`]);
//! one moved to the trash keeps it, so a restore brings the file back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use crm_model::OrgId;
use crm_orm::{Access, Event, EventWork, Op, OrmError, Read, Store, TxCtx, TxFuture};
use futures::{Stream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::rows::{Attachment, Record};

mod grant;
mod limits;
mod storage;
mod work;

pub use grant::{FileError, Grant, Signer};
pub use limits::{DEFAULT_CONTENT_TYPES, FileOptions, essence};
pub use storage::{Location, object_key, object_store};
use work::{MarkReady, StartUpload};

/// The consumer name of the object removal.
pub const CONSUMER: &str = "files";

/// Files: the object store, the URL signing key, the limits and the public address links start
/// with.
pub struct Files {
    objects: Arc<dyn ObjectStore>,
    signer: Signer,
    opts: FileOptions,
    /// `https://crm.example.com`: links are `<base>/files/<token>`.
    base_url: String,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("objects", &self.objects.to_string())
            .field("opts", &self.opts)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// What a caller asks to upload.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    /// The record attached to.
    pub subject_model: String,
    /// Its id.
    pub subject_id: Uuid,
    /// The file's name.
    pub file_name: String,
    /// The media type.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
}

/// A signed upload URL for a new attachment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    /// The attachment (`PENDING` until the bytes arrive).
    pub id: Uuid,
    /// Where to PUT the bytes.
    pub url: String,
    /// `PUT`.
    pub method: &'static str,
    /// The `Content-Type` header the PUT must carry.
    pub content_type: String,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
}

/// A signed download URL.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The URL (a GET, no credentials needed until it expires).
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

pub(super) fn bad(path: &str, message: impl Into<String>) -> OrmError {
    OrmError::BadInput { path: path.to_owned(), message: message.into() }
}

impl Files {
    /// Files kept in `objects`, links signed with `key` (at least 32 bytes) and starting with
    /// `base_url`.
    ///
    /// # Errors
    /// A key shorter than 32 bytes.
    pub fn new(objects: Arc<dyn ObjectStore>, key: &[u8], opts: FileOptions, base_url: &str) -> Result<Files, String> {
        Ok(Files { objects, signer: Signer::new(key)?, opts, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    /// The object store.
    #[must_use]
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// The limits.
    #[must_use]
    pub fn options(&self) -> &FileOptions {
        &self.opts
    }

    /// The token of a signed URL granting `grant`.
    #[must_use]
    pub fn sign(&self, grant: &Grant) -> String {
        self.signer.sign(grant)
    }

    /// What `token` grants for `op` (see [`Signer::verify`]).
    ///
    /// # Errors
    /// [`FileError::BadLink`], [`FileError::Expired`].
    pub fn verify(&self, token: &str, op: &str) -> Result<Grant, FileError> {
        self.signer.verify(token, op)
    }

    /// Creates a `PENDING` attachment on the caller's behalf and signs its upload URL. The
    /// caller must be allowed to create attachments and to read the record attached to; the
    /// size and type must be within the limits.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a size or type outside the limits or an unknown model, `NOT_FOUND`
    /// for a record the caller cannot read, `FORBIDDEN` without the right to create attachments;
    /// database failures.
    pub async fn start_upload(&self, store: &Store, caller: &Access, req: UploadRequest) -> Result<Upload, OrmError> {
        if req.size > self.opts.max_size {
            return Err(bad("size", format!("{} bytes is above the limit of {} bytes", req.size, self.opts.max_size)));
        }
        let content_type = essence(&req.content_type);
        if !content_type.contains('/') || !self.opts.accepts(&content_type) {
            return Err(bad("contentType", format!("`{content_type}` files are not accepted here")));
        }
        let size = i64::try_from(req.size).map_err(|_| bad("size", "too large"))?;
        // Twice the URL's lifetime: an upload that started just before its URL expired has had
        // as long again to finish.
        let abandoned_before =
            Utc::now() - chrono::Duration::from_std(self.opts.upload_ttl.saturating_mul(2)).unwrap_or(chrono::Duration::minutes(30));
        let work = StartUpload { req: UploadRequest { content_type: content_type.clone(), ..req }, size, abandoned_before };
        let (id, name) = store.transaction(caller, &work).await?;
        let grant = Grant::new("put", caller.org(), id, work.req.size, &content_type, name);
        let Link { url, expires_at } = self.issue(grant, self.opts.upload_ttl);
        Ok(Upload { id, url, method: "PUT", content_type, expires_at })
    }

    /// The signed URL of `grant`, valid for `ttl` from now.
    fn issue(&self, mut grant: Grant, ttl: Duration) -> Link {
        let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5));
        grant.exp = expires_at.timestamp();
        Link { url: format!("{}/files/{}", self.base_url, self.sign(&grant)), expires_at }
    }

    /// Signs a download URL for attachment `id`, if the caller may read it and the record it is
    /// attached to, and it is `READY`.
    ///
    /// # Errors
    /// `NOT_FOUND` for an attachment (or its record) the caller cannot read, `BAD_USER_INPUT`
    /// for one still `PENDING`; database failures.
    pub async fn download_link(&self, store: &Store, caller: &Access, id: Uuid) -> Result<Link, OrmError> {
        let not_found = || OrmError::NotFound(format!("no Attachment with id {id}"));
        let a = Attachment::decode(one(store, caller, Attachment::MODEL, id).await?.ok_or_else(not_found)?)?;
        let subject = a.subject.ok_or_else(not_found)?;
        if one(store, caller, &subject.model, subject.id).await?.is_none() {
            return Err(not_found());
        }
        if a.status != Attachment::READY {
            return Err(bad("id", "the file has not been uploaded yet"));
        }
        let grant = Grant::new("get", caller.org(), id, u64::try_from(a.size).unwrap_or(0), &a.content_type, a.file_name);
        Ok(self.issue(grant, self.opts.download_ttl))
    }

    /// Receives the bytes of an upload URL's attachment: exactly the declared size, with the
    /// declared `Content-Type`, while the attachment is `PENDING`; stores them and makes the
    /// attachment `READY` with their SHA-256. A failed upload leaves no object and the
    /// attachment `PENDING` (the URL can be used again until it expires). What is left of `body`
    /// after a refusal is the caller's to drain or drop.
    ///
    /// # Errors
    /// See [`FileError`].
    pub async fn receive<S, E>(&self, store: &Store, token: &str, content_type: Option<&str>, body: &mut S) -> Result<Received, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let grant = self.verify(token, "put")?;
        if content_type.map(essence).as_deref() != Some(grant.content_type.as_str()) {
            return Err(FileError::WrongType(grant.content_type));
        }
        // The signed grant is the authorization (checked when it was signed): the platform acts
        // in its one tenant, on its one attachment.
        let org = OrgId::new(grant.org.clone()).map_err(|_| FileError::BadLink)?;
        let (_, catalog) = store.tenant_catalog(&org).await?;
        let store = store.with_catalog(catalog);
        let system = store.cross_tenant_platform_work().system_access(org, "system:files");
        // Live (not destroyed, not in the trash) and still waiting for its bytes.
        match one(&store, &system, Attachment::MODEL, grant.id).await?.map(Attachment::decode).transpose()? {
            None => return Err(FileError::NotFound),
            Some(a) if a.status != Attachment::PENDING => return Err(FileError::AlreadyUploaded),
            Some(_) => {}
        }
        let key = object_key(&grant.org, grant.id);
        let sha256 = self.write_object(&key, &grant, body).await?;
        let done = store.transaction(&system, &MarkReady { id: grant.id, sha256: sha256.clone() }).await;
        match done {
            Ok(true) => Ok(Received { id: grant.id, size: grant.size, sha256 }),
            Ok(false) => {
                // Destroyed (or completed by another upload) meanwhile: the object is not ours
                // to keep.
                let _ = self.objects.delete(&key).await;
                Err(FileError::NotFound)
            }
            Err(e) => Err(FileError::Store(e)),
        }
    }

    async fn write_object<S, E>(&self, key: &ObjectPath, grant: &Grant, body: &mut S) -> Result<String, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        // The media type is the record's (and the download grant's), not the object's: the local
        // directory keeps no attributes.
        let mut out = object_store::buffered::BufWriter::new(Arc::clone(&self.objects), key.clone());
        let mut hash = Sha256::new();
        let mut got: u64 = 0;
        let failed = loop {
            match body.next().await {
                None => break None,
                Some(Err(e)) => {
                    tracing::info!(error = %e, "an upload's body failed");
                    break Some(FileError::Incomplete { declared: grant.size, got });
                }
                Some(Ok(chunk)) => {
                    got += chunk.len() as u64;
                    if got > grant.size {
                        break Some(FileError::TooLarge(grant.size));
                    }
                    hash.update(&chunk);
                    if let Err(e) = out.put(chunk).await {
                        break Some(FileError::Storage(e));
                    }
                }
            }
        };
        let failed = failed.or_else(|| (got != grant.size).then_some(FileError::Incomplete { declared: grant.size, got }));
        if let Some(e) = failed {
            let _ = out.abort().await;
            return Err(e);
        }
        out.shutdown().await.map_err(|e| FileError::Storage(object_store::Error::Generic { store: "files", source: Box::new(e) }))?;
        Ok(hex::encode(hash.finalize()))
    }

    /// Opens the object a download URL grants.
    ///
    /// # Errors
    /// [`FileError::BadLink`], [`FileError::Expired`], [`FileError::NotFound`] for an object no
    /// longer there, [`FileError::Storage`].
    pub async fn open(&self, token: &str) -> Result<(Grant, Download), FileError> {
        let grant = self.verify(token, "get")?;
        let got = match self.objects.get(&object_key(&grant.org, grant.id)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Err(FileError::NotFound),
            Err(e) => return Err(FileError::Storage(e)),
        };
        Ok((grant, Download(got.into_stream())))
    }
}

/// The bytes of a download, as a stream.
pub struct Download(pub futures::stream::BoxStream<'static, object_store::Result<Bytes>>);

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Download")
    }
}

/// A completed upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// The attachment.
    pub id: Uuid,
    /// Bytes stored.
    pub size: u64,
    /// Their SHA-256, hex.
    pub sha256: String,
}

/// Record `id` of `model` as `access` may read it (none: no such model, no read grant, or no
/// such record in its scope).
async fn one(store: &Store, access: &Access, model: &str, id: Uuid) -> Result<Option<serde_json::Value>, OrmError> {
    let Some(m) = store.catalog().model(model).cloned() else { return Ok(None) };
    if !access.allows(&m.name, Op::Read) {
        return Ok(None);
    }
    let read = Read::by_id(&m, id)?;
    Ok(store.read(&access.scope(store.catalog(), &m.name, Op::Read, read)?).await?.rows.into_iter().next())
}

/// The outbox consumer deleting the objects of destroyed attachments.
#[derive(Debug)]
pub struct RemoveObjects(pub Arc<Files>);

impl EventWork for RemoveObjects {
    fn handle<'a>(&'a self, _tx: &'a mut TxCtx<'_>, event: &'a Event) -> TxFuture<'a, ()> {
        Box::pin(async move {
            if event.kind != crm_orm::event_type(Attachment::MODEL, crm_orm::EventKind::Destroyed) {
                return Ok(());
            }
            match self.0.objects.delete(&object_key(&event.org, event.record_id)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(OrmError::Dependency(format!("file storage: {e}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn files(types: &[&str]) -> Files {
        let mut opts = FileOptions::default();
        if !types.is_empty() {
            opts.content_types = types.iter().map(|s| (*s).to_owned()).collect();
        }
        Files::new(object_store("memory://").unwrap(), &[7u8; 32], opts, "https://crm.example.com/").unwrap()
    }

    fn grant(op: &str, exp: i64) -> Grant {
        Grant {
            op: op.to_owned(),
            org: "acme".to_owned(),
            id: Uuid::nil(),
            exp,
            size: 3,
            content_type: "text/plain".to_owned(),
            name: "a.txt".to_owned(),
        }
    }

    #[test]
    fn a_link_grants_its_operation_until_it_expires() {
        let f = files(&[]);
        let later = Utc::now().timestamp() + 60;
        assert_eq!(f.verify(&f.sign(&grant("get", later)), "get").unwrap(), grant("get", later));
        assert!(matches!(f.verify(&f.sign(&grant("get", later)), "put"), Err(FileError::BadLink)), "a download link does not upload");
        assert!(matches!(f.verify(&f.sign(&grant("get", Utc::now().timestamp() - 1)), "get"), Err(FileError::Expired)));
        let other = Files::new(object_store("memory://").unwrap(), &[8u8; 32], FileOptions::default(), "x").unwrap();
        assert!(matches!(f.verify(&other.sign(&grant("get", later)), "get"), Err(FileError::BadLink)), "another key's link");
        for bad in ["", ".", "abc", "abc.def", "eyJ9.AAAA"] {
            assert!(matches!(f.verify(bad, "get"), Err(FileError::BadLink)), "{bad}");
        }
        assert!(Files::new(object_store("memory://").unwrap(), &[1u8; 31], FileOptions::default(), "x").is_err(), "short keys refused");
    }

    #[test]
    fn media_types_match_exactly_or_by_family() {
        let f = files(&["image/*", "application/pdf"]);
        assert!(f.options().accepts("image/png") && f.options().accepts("image/webp") && f.options().accepts("application/pdf"));
        assert!(!f.options().accepts("text/html") && !f.options().accepts("application/pdfx") && !f.options().accepts("imagex/png"));
        assert!(files(&["*/*"]).options().accepts("text/html"));
        let defaults = files(&[]);
        assert!(!defaults.options().accepts("text/html") && !defaults.options().accepts("image/svg+xml"), "no active content by default");
        assert_eq!(essence("Application/PDF; charset=binary"), "application/pdf");
    }
}
