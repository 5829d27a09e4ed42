//! The transactions of files: making the `PENDING` attachment on the caller's behalf (and
//! destroying the tenant's attachments whose upload can no longer come), and making it `READY`
//! once its bytes are stored.

use chrono::{DateTime, Utc};
use crm_model::ModelName;
use crm_orm::{Filter, Op, OrmError, Selection, TxCtx, TxFuture, TxWork, Unique, Write};
use serde_json::json;
use uuid::Uuid;

use super::{UploadRequest, bad};
use crate::rows::{Attachment, Record};

/// Most abandoned uploads one start destroys.
const SWEEP: u32 = 100;

/// Creates the `PENDING` attachment after the caller's checks; returns its id and file name.
/// First destroys (up to [`SWEEP`]) the tenant's attachments still `PENDING` that were created
/// before `abandoned_before`: their upload URLs have expired, so their bytes can no longer come.
pub(super) struct StartUpload {
    pub(super) req: UploadRequest,
    pub(super) size: i64,
    pub(super) abandoned_before: DateTime<Utc>,
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
            let stale = json!({ "status": Attachment::PENDING, "createdAt_lt": self.abandoned_before.to_rfc3339() });
            let stale = Filter::parse(tx.catalog(), &attachment, &stale)?;
            for row in tx.find_fields(&attachment, stale, &["id"], SWEEP).await? {
                let id = crate::rows::Id::decode(row)?.id;
                let destroy = Write::Destroy { model: attachment.name.clone(), target: Unique::Id(id) };
                tx.write(&destroy, &Selection::default()).await?;
            }
            let input = json!({
                "subject": { "type": target.as_str(), "id": r.subject_id },
                "fileName": r.file_name,
                "contentType": r.content_type,
                "size": self.size,
                "status": Attachment::PENDING,
                "uploadedBy": tx.caller().actor(),
            });
            let id = tx.create(Attachment::MODEL, &input).await?;
            Ok((id, r.file_name.clone()))
        })
    }
}

/// Makes a `PENDING` attachment `READY`; false when it is no longer there or not pending.
pub(super) struct MarkReady {
    pub(super) id: Uuid,
    pub(super) sha256: String,
}

impl TxWork for MarkReady {
    type Output = bool;
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, bool> {
        Box::pin(async move {
            let model = tx.model(Attachment::MODEL)?;
            tx.lock(&model, self.id).await?;
            let filter = Filter::and(vec![
                Filter::ids(&[self.id])?,
                Filter::parse(tx.catalog(), &model, &json!({ "status": Attachment::PENDING }))?,
            ]);
            if tx.find_fields(&model, filter, &["id"], 1).await?.is_empty() {
                return Ok(false);
            }
            tx.update(Attachment::MODEL, self.id, &json!({ "status": Attachment::READY, "sha256": self.sha256 })).await?;
            Ok(true)
        })
    }
}
