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

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use crm_model::{ModelName, OrgId};
use crm_orm::{Access, Event, EventWork, Filter, Op, OrmError, Read, Store, TxCtx, TxFuture, TxWork};
use futures::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::rows::{Attachment, Record};

/// The consumer name of the object removal.
pub const CONSUMER: &str = "files";

/// Limits and lifetimes of files.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// The largest file accepted, in bytes.
    pub max_size: u64,
    /// The media types accepted (`image/png`; `image/*` for a family; `*/*` for any).
    pub content_types: Vec<String>,
    /// How long an upload URL stays valid.
    pub upload_ttl: Duration,
    /// How long a download URL stays valid.
    pub download_ttl: Duration,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            max_size: 25 * 1024 * 1024,
            content_types: DEFAULT_CONTENT_TYPES.iter().map(|s| (*s).to_owned()).collect(),
            upload_ttl: Duration::from_mins(15),
            download_ttl: Duration::from_mins(5),
        }
    }
}

/// What is accepted unless configured otherwise: images, PDF, text and CSV, office documents,
/// archives, audio and video. Not HTML or SVG (active content, even served as a download).
pub const DEFAULT_CONTENT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/json",
    "application/zip",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "audio/mpeg",
    "audio/mp4",
    "video/mp4",
    "video/quicktime",
];

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

/// Files: the object store, the URL signing key, the limits and the public address links start
/// with.
pub struct Files {
    objects: Arc<dyn ObjectStore>,
    key: Vec<u8>,
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

/// What a signed URL grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `put` or `get`.
    pub op: String,
    /// The tenant.
    pub org: String,
    /// The attachment.
    pub id: Uuid,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// The size, bytes.
    pub size: u64,
    /// The media type.
    #[serde(rename = "type")]
    pub content_type: String,
    /// The file name (downloads are served with it).
    pub name: String,
}

/// Why a file request failed; each maps to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A signed URL that is malformed, tampered with, or for another operation.
    #[error("the link is not valid")]
    BadLink,
    /// A signed URL past its expiry.
    #[error("the link has expired")]
    Expired,
    /// The attachment or its object does not exist (any more).
    #[error("no such file")]
    NotFound,
    /// The body is larger than declared.
    #[error("the body is larger than the declared {0} bytes")]
    TooLarge(u64),
    /// The body is smaller than declared.
    #[error("the body has {got} bytes, {declared} were declared")]
    Incomplete {
        /// Bytes declared.
        declared: u64,
        /// Bytes received.
        got: u64,
    },
    /// The `Content-Type` differs from the declared one.
    #[error("the content type must be `{0}`, as declared")]
    WrongType(String),
    /// The attachment already has its bytes.
    #[error("the file was already uploaded")]
    AlreadyUploaded,
    /// The object store failed (retryable).
    #[error("file storage is unavailable")]
    Storage(#[source] object_store::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] OrmError),
}

impl FileError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            FileError::BadLink | FileError::Expired => 403,
            FileError::NotFound => 404,
            FileError::TooLarge(_) => 413,
            FileError::Incomplete { .. } => 400,
            FileError::WrongType(_) => 415,
            FileError::AlreadyUploaded => 409,
            FileError::Storage(_) => 503,
            FileError::Store(e) if e.code() == crm_model::ErrorCode::Unavailable => 503,
            FileError::Store(_) => 500,
        }
    }

    /// A stable code for clients (as GraphQL's `extensions.code`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            FileError::BadLink => "INVALID_LINK",
            FileError::Expired => "LINK_EXPIRED",
            FileError::NotFound => "NOT_FOUND",
            FileError::TooLarge(_) => "TOO_LARGE",
            FileError::Incomplete { .. } => "INCOMPLETE",
            FileError::WrongType(_) => "WRONG_CONTENT_TYPE",
            FileError::AlreadyUploaded => "CONFLICT",
            FileError::Storage(_) => "UNAVAILABLE",
            FileError::Store(e) if e.code() == crm_model::ErrorCode::Unavailable => "UNAVAILABLE",
            FileError::Store(_) => "INTERNAL",
        }
    }
}

/// The media type without parameters, lower case (`Text/Plain; charset=utf-8` → `text/plain`).
#[must_use]
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn bad(path: &str, message: impl Into<String>) -> OrmError {
    OrmError::BadInput { path: path.to_owned(), message: message.into() }
}

impl Files {
    /// Files kept in `objects`, links signed with `key` (at least 32 bytes) and starting with
    /// `base_url`.
    ///
    /// # Errors
    /// A key shorter than 32 bytes.
    pub fn new(objects: Arc<dyn ObjectStore>, key: &[u8], opts: FileOptions, base_url: &str) -> Result<Files, String> {
        if key.len() < 32 {
            return Err("the file signing key must have at least 32 bytes".to_owned());
        }
        Ok(Files { objects, key: key.to_vec(), opts, base_url: base_url.trim_end_matches('/').to_owned() })
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

    fn accepts(&self, content_type: &str) -> bool {
        self.opts.content_types.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            allowed == "*/*"
                || allowed == content_type
                || allowed.strip_suffix("/*").is_some_and(|family| content_type.split('/').next() == Some(family))
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// The token of a signed URL granting `grant`.
    #[must_use]
    pub fn sign(&self, grant: &Grant) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// What `token` grants for `op`, if it is genuine, for `op` and not expired.
    ///
    /// # Errors
    /// [`FileError::BadLink`], [`FileError::Expired`].
    pub fn verify(&self, token: &str, op: &str) -> Result<Grant, FileError> {
        let (payload, tag) = token.split_once('.').ok_or(FileError::BadLink)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| FileError::BadLink)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).map_err(|_| FileError::BadLink)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| FileError::BadLink)?;
        let grant: Grant = serde_json::from_slice(&bytes).map_err(|_| FileError::BadLink)?;
        if grant.op != op {
            return Err(FileError::BadLink);
        }
        if grant.exp < Utc::now().timestamp() {
            return Err(FileError::Expired);
        }
        Ok(grant)
    }

    fn url(&self, token: &str) -> String {
        format!("{}/files/{token}", self.base_url)
    }

    fn expiry(ttl: Duration) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5))
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
        if !content_type.contains('/') || !self.accepts(&content_type) {
            return Err(bad("contentType", format!("`{content_type}` files are not accepted here")));
        }
        let size = i64::try_from(req.size).map_err(|_| bad("size", "too large"))?;
        let work = StartUpload { req: UploadRequest { content_type: content_type.clone(), ..req }, size };
        let (id, name) = store.transaction(caller, &work).await?;
        let expires_at = Self::expiry(self.opts.upload_ttl);
        let grant = Grant {
            op: "put".to_owned(),
            org: caller.org().as_str().to_owned(),
            id,
            exp: expires_at.timestamp(),
            size: work.req.size,
            content_type: content_type.clone(),
            name,
        };
        Ok(Upload { id, url: self.url(&self.sign(&grant)), method: "PUT", content_type, expires_at })
    }

    /// Signs a download URL for attachment `id`, if the caller may read it and the record it is
    /// attached to, and it is `READY`.
    ///
    /// # Errors
    /// `NOT_FOUND` for an attachment (or its record) the caller cannot read, `BAD_USER_INPUT`
    /// for one still `PENDING`; database failures.
    pub async fn download_link(&self, store: &Store, caller: &Access, id: Uuid) -> Result<Link, OrmError> {
        let model = store.catalog().model(Attachment::MODEL).cloned().ok_or_else(|| OrmError::missing_model(Attachment::MODEL))?;
        let mut read = Read::new(&model);
        read.filter = Filter::ids(&[id])?;
        let row = store.read(&caller.scope(store.catalog(), &model.name, Op::Read, read)?).await?.rows.into_iter().next();
        let not_found = || OrmError::NotFound(format!("no Attachment with id {id}"));
        let a = Attachment::decode(row.ok_or_else(not_found)?)?;
        let subject = a.subject.ok_or_else(not_found)?;
        if !readable(store, caller, &subject.model, subject.id).await? {
            return Err(not_found());
        }
        if a.status != "READY" {
            return Err(bad("id", "the file has not been uploaded yet"));
        }
        let expires_at = Self::expiry(self.opts.download_ttl);
        let grant = Grant {
            op: "get".to_owned(),
            org: caller.org().as_str().to_owned(),
            id,
            exp: expires_at.timestamp(),
            size: u64::try_from(a.size).unwrap_or(0),
            content_type: a.content_type,
            name: a.file_name,
        };
        Ok(Link { url: self.url(&self.sign(&grant)), expires_at })
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
        match pending(&store, &system, grant.id).await? {
            None => return Err(FileError::NotFound),
            Some(false) => return Err(FileError::AlreadyUploaded),
            Some(true) => {}
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

/// Whether record `id` of `model` is one the caller may read.
async fn readable(store: &Store, caller: &Access, model: &str, id: Uuid) -> Result<bool, OrmError> {
    let Some(m) = store.catalog().model(model).cloned() else { return Ok(false) };
    if !caller.allows(&m.name, Op::Read) {
        return Ok(false);
    }
    let mut read = Read::new(&m);
    read.filter = Filter::ids(&[id])?;
    read.select = crm_orm::Selection {
        fields: vec![crm_model::FieldName::new("id").map_err(|e| OrmError::invariant(e.to_string()))?],
        ..Default::default()
    };
    Ok(!store.read(&caller.scope(store.catalog(), &m.name, Op::Read, read)?).await?.rows.is_empty())
}

/// Whether attachment `id` waits for its bytes (`None`: it does not exist, or is in the trash).
async fn pending(store: &Store, system: &Access, id: Uuid) -> Result<Option<bool>, OrmError> {
    let model = store.catalog().model(Attachment::MODEL).cloned().ok_or_else(|| OrmError::missing_model(Attachment::MODEL))?;
    let mut read = Read::new(&model);
    read.filter = Filter::ids(&[id])?;
    let row = store.read(&system.scope(store.catalog(), &model.name, Op::Read, read)?).await?.rows.into_iter().next();
    Ok(row.map(Attachment::decode).transpose()?.map(|a| a.status == "PENDING"))
}

/// Creates the `PENDING` attachment after the caller's checks; returns its id and file name.
struct StartUpload {
    req: UploadRequest,
    size: i64,
}

impl TxWork for StartUpload {
    type Output = (Uuid, String);
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, (Uuid, String)> {
        Box::pin(async move {
            let attachment = tx.model(Attachment::MODEL)?;
            if !tx.caller().allows(&attachment.name, Op::Create) {
                return Err(OrmError::Forbidden("not allowed to create Attachment".to_owned()));
            }
            let r = &self.req;
            let target = ModelName::new(r.subject_model.as_str())
                .map_err(|_| bad("subject.type", format!("`{}` is not a model", r.subject_model)))?;
            let Ok(subject) = tx.model(target.as_str()) else {
                return Err(bad("subject.type", format!("`{target}` is not a model")));
            };
            let not_found = || OrmError::NotFound(format!("subject: no {target} with id {}", r.subject_id));
            if !tx.caller().allows(&subject.name, Op::Read) {
                return Err(not_found());
            }
            let q = tx.caller_targets(&subject, Op::Read, Filter::ids(&[r.subject_id])?, Filter::True)?;
            if tx.caller_ids(&q).await?.is_empty() {
                return Err(not_found());
            }
            let input = json!({
                "subject": { "type": target.as_str(), "id": r.subject_id },
                "fileName": r.file_name,
                "contentType": r.content_type,
                "size": self.size,
                "status": "PENDING",
                "uploadedBy": tx.caller().actor(),
            });
            let id = tx.create(Attachment::MODEL, &input).await?;
            Ok((id, r.file_name.clone()))
        })
    }
}

/// Makes a `PENDING` attachment `READY`; false when it is no longer there or not pending.
struct MarkReady {
    id: Uuid,
    sha256: String,
}

impl TxWork for MarkReady {
    type Output = bool;
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, bool> {
        Box::pin(async move {
            let model = tx.model(Attachment::MODEL)?;
            tx.lock(&model, self.id).await?;
            let filter = Filter::and(vec![Filter::ids(&[self.id])?, Filter::parse(tx.catalog(), &model, &json!({ "status": "PENDING" }))?]);
            if tx.find_fields(&model, filter, &["id"], 1).await?.is_empty() {
                return Ok(false);
            }
            tx.update(Attachment::MODEL, self.id, &json!({ "status": "READY", "sha256": self.sha256 })).await?;
            Ok(true)
        })
    }
}

/// The outbox consumer deleting the objects of destroyed attachments.
#[derive(Debug)]
pub struct RemoveObjects(pub Arc<Files>);

impl EventWork for RemoveObjects {
    fn handle<'a>(&'a self, _tx: &'a mut TxCtx<'_>, event: &'a Event) -> TxFuture<'a, ()> {
        Box::pin(async move {
            if event.model != Attachment::MODEL || !event.kind.ends_with(".destroyed") {
                return Ok(());
            }
            match self.0.objects.delete(&object_key(&event.org, event.record_id)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(OrmError::Dependency(format!("file storage: {e}"))),
            }
        })
    }
}

/// The JSON form of an upload, for the API.
#[must_use]
pub fn upload_json(u: &Upload) -> Json {
    serde_json::to_value(u).unwrap_or(Json::Null)
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
        assert!(f.accepts("image/png") && f.accepts("image/webp") && f.accepts("application/pdf"));
        assert!(!f.accepts("text/html") && !f.accepts("application/pdfx") && !f.accepts("imagex/png"));
        assert!(files(&["*/*"]).accepts("text/html"));
        let defaults = files(&[]);
        assert!(!defaults.accepts("text/html") && !defaults.accepts("image/svg+xml"), "no active content by default");
        assert_eq!(essence("Application/PDF; charset=binary"), "application/pdf");
    }
}
