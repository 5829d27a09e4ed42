//! What files are accepted: the size limit, the media types, how long signed URLs live.

use std::time::Duration;

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

impl FileOptions {
    /// Whether `content_type` (an [`essence`]) is one of the accepted media types.
    #[must_use]
    pub fn accepts(&self, content_type: &str) -> bool {
        self.content_types.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            allowed == "*/*"
                || allowed == content_type
                || allowed.strip_suffix("/*").is_some_and(|family| content_type.split('/').next() == Some(family))
        })
    }
}

/// The media type without parameters, lower case (`Text/Plain; charset=utf-8` → `text/plain`).
#[must_use]
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}
