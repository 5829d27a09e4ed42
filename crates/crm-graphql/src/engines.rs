//! The CRM engines in the API: re-tagging and routing leads on demand, social ingestion, the
//! summary report and webhook deliveries. Each runs with the caller's access: on-demand work
//! touches only the records the caller may update, reports read under the caller's scope.

use crm_engines::ingest::{Ingest, SocialInput};
use crm_engines::routing::RouteLeads;
use crm_engines::rows::Record;
use crm_engines::tagging::Retag;
use crm_orm::{Deliveries, Op, OrmError};
use serde_json::{Value as Json, json};

use crate::request::bad;

fn to_json<T: serde::Serialize>(v: &T) -> Result<Json, OrmError> {
    serde_json::to_value(v).map_err(|e| OrmError::invariant(e.to_string()))
}

/// The future of an engine operation's JSON result.
pub(crate) type JsonFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value, crm_orm::OrmError>> + Send + 'a>>;

pub(crate) fn tag_leads(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let filter = args.get("where").cloned().filter(|w| !w.is_null()).unwrap_or_else(|| json!({}));
        to_json(&rc.store.transaction(&rc.access, &Retag { filter }).await?)
    })
}

pub(crate) fn route_leads(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let filter = args.get("where").cloned().filter(|w| !w.is_null()).unwrap_or_else(|| json!({}));
        let at = match args.get("at").and_then(Json::as_str) {
            Some(s) => {
                Some(chrono::DateTime::parse_from_rfc3339(s).map_err(|_| bad("at", "not an ISO 8601 instant"))?.with_timezone(&chrono::Utc))
            }
            None => None,
        };
        let reassign = args.get("reassign").and_then(Json::as_bool).unwrap_or(false);
        to_json(&rc.store.transaction(&rc.access, &RouteLeads { filter, reassign, at }).await?)
    })
}

pub(crate) fn ingest(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let events: Vec<SocialInput> = serde_json::from_value(args.get("events").cloned().unwrap_or(Json::Null))
            .map_err(|e| bad("events", format!("not a list of social events: {e}")))?;
        to_json(&rc.store.transaction(&rc.access, &Ingest { events }).await?)
    })
}

pub(crate) fn summary(rc: &crate::RequestCtx, _: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move { crm_engines::reports::summary(&rc.store, &rc.access).await })
}

/// `webhookDeliveries(webhook:, first:)`.
pub(crate) fn deliveries(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let model =
            rc.store.catalog().model(crm_engines::rows::Webhook::MODEL).cloned().ok_or_else(|| bad("webhook", "no webhooks here"))?;
        let webhook = match args.get("webhook").and_then(Json::as_str) {
            Some(s) => Some(uuid::Uuid::parse_str(s).map_err(|_| bad("webhook", "not an id"))?),
            None => None,
        };
        let first = args.get("first").and_then(Json::as_u64).map_or(50, |n| u32::try_from(n).unwrap_or(u32::MAX));
        let rows = rc.store.deliveries(&rc.access.scope(rc.store.catalog(), &model.name, Op::Read, Deliveries { webhook, first })?).await?;
        to_json(&rows)
    })
}

fn files(rc: &crate::RequestCtx) -> Result<&crm_engines::files::Files, OrmError> {
    rc.files.as_deref().ok_or_else(|| OrmError::Dependency("file storage is not configured on this server".to_owned()))
}

/// `startAttachmentUpload(subject:, fileName:, contentType:, size:)`.
pub(crate) fn start_upload(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let files = files(rc)?;
        let text = |k: &str| args.get(k).and_then(Json::as_str).map(str::to_owned).ok_or_else(|| bad(k, "required"));
        let subject = args.get("subject").ok_or_else(|| bad("subject", "required"))?;
        let subject_model = subject.get("type").and_then(Json::as_str).ok_or_else(|| bad("subject.type", "required"))?.to_owned();
        let subject_id = subject
            .get("id")
            .and_then(Json::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(|| bad("subject.id", "not an id"))?;
        let size = args.get("size").and_then(Json::as_u64).ok_or_else(|| bad("size", "a number of bytes (0 or more)"))?;
        let req = crm_engines::files::UploadRequest {
            subject_model,
            subject_id,
            file_name: text("fileName")?,
            content_type: text("contentType")?,
            size,
        };
        to_json(&files.start_upload(&rc.store, &rc.access, req).await?)
    })
}

/// `attachmentDownload(id:)`.
pub(crate) fn download(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let files = files(rc)?;
        let id = args.get("id").and_then(Json::as_str).and_then(|s| uuid::Uuid::parse_str(s).ok()).ok_or_else(|| bad("id", "not an id"))?;
        to_json(&files.download_link(&rc.store, &rc.access, id).await?)
    })
}
