//! The file endpoints of signed URLs (see `crm_engines::files`): `PUT /files/{token}` receives
//! an attachment's bytes, `GET /files/{token}` serves them. The token is the credential: no
//! bearer token is needed (so an `<img src>` or a plain download works), and it grants one
//! operation on one attachment until it expires.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_engines::files::FileError;
use serde_json::json;

use crate::AppState;
use crate::http::{Outcome, error_response};

fn error(e: &FileError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match e {
        FileError::Store(inner) => inner.client_message(),
        other => other.to_string(),
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR || matches!(e, FileError::Storage(_)) {
        tracing::error!(error = %e, source = ?std::error::Error::source(e).map(ToString::to_string), "a file request failed");
    }
    error_response(status, e.code(), &message)
}

/// `PUT /files/{token}`: the bytes of an upload URL's attachment.
pub(crate) async fn upload(State(state): State<AppState>, Path(token): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let files = &state.0.files;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let mut body = body.into_data_stream();
    let received = files.receive(&state.0.store, &token, content_type, &mut body).await;
    if received.is_err() {
        // Read what the client is still sending (up to the size limit) before answering, so it
        // gets the answer instead of a connection reset mid-upload.
        let mut left = files.options().max_size;
        while let Some(Ok(chunk)) = futures::StreamExt::next(&mut body).await {
            left = left.saturating_sub(chunk.len() as u64);
            if left == 0 {
                break;
            }
        }
    }
    match received {
        Ok(done) => {
            let mut resp = (StatusCode::OK, axum::Json(json!({ "id": done.id, "size": done.size, "sha256": done.sha256 }))).into_response();
            resp.extensions_mut().insert(Outcome("OK".to_owned()));
            resp
        }
        Err(e) => error(&e),
    }
}

/// `GET /files/{token}`: a download URL's file, as an attachment (never rendered as a page).
pub(crate) async fn download(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let (grant, bytes) = match state.0.files.open(&token).await {
        Ok(found) => found,
        Err(e) => return error(&e),
    };
    let mut resp = Response::new(Body::from_stream(bytes.0));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&grant.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(grant.size));
    if let Ok(v) = HeaderValue::from_str(&disposition(&grant.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    resp.extensions_mut().insert(Outcome("OK".to_owned()));
    resp
}

/// `attachment; filename="<ASCII>"; filename*=UTF-8''<percent-encoded>` (RFC 6266).
fn disposition(name: &str) -> String {
    let ascii: String = name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn file_names_are_quoted_and_encoded() {
        assert_eq!(disposition("report.pdf"), "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
        assert_eq!(
            disposition("Angebot \"Q4\" ü.pdf"),
            "attachment; filename=\"Angebot _Q4_ _.pdf\"; filename*=UTF-8''Angebot%20%22Q4%22%20%C3%BC.pdf"
        );
        assert_eq!(disposition("a\r\nb"), "attachment; filename=\"a__b\"; filename*=UTF-8''a%0D%0Ab");
    }
}
