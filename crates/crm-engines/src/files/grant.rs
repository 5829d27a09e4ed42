//! Signed URLs: what one grants (an operation on one attachment of one tenant until an expiry),
//! its token (the grant and an HMAC-SHA256 over it under the server's file signing key), and
//! why a file request fails.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use crm_orm::OrmError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

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

impl Grant {
    /// A grant of `op` on attachment `id` of `org`, serving `size` bytes of `content_type` named
    /// `name`; its expiry is set when it is issued.
    #[must_use]
    pub fn new(op: &str, org: &crm_model::OrgId, id: Uuid, size: u64, content_type: &str, name: String) -> Grant {
        Grant { op: op.to_owned(), org: org.as_str().to_owned(), id, exp: 0, size, content_type: content_type.to_owned(), name }
    }
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

/// Signs and checks the tokens of signed URLs with the file signing key.
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

impl Signer {
    /// A signer with `key` (at least 32 bytes).
    ///
    /// # Errors
    /// A shorter key.
    pub fn new(key: &[u8]) -> Result<Signer, String> {
        if key.len() < 32 {
            return Err("the file signing key must have at least 32 bytes".to_owned());
        }
        Ok(Signer { key: key.to_vec() })
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
}
