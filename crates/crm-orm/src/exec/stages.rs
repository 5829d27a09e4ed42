//! Funnel and time-in-stage statistics of a stage field, from its transition log.

use serde::Serialize;

use super::Store;
use super::pool::ExecutorSource;
use crate::authorization::Scoped;
use crate::error::{OrmError, Result, decode_json};
use crate::ir::Op;
use crate::ir::{Filter, StageQuery};
use crate::sql::stages::{self, StayRow};
use crate::sql::{Builder, in_session};

/// Stage statistics of one stage field, from its transition log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStats {
    /// Per stage of `order`: how many live records got at least that far (their furthest stage
    /// in `order` is it or a later one).
    pub reached: Vec<(String, i64)>,
    /// Per stage (every stage seen): stays completed, their average length in seconds, and
    /// records in the stage now.
    pub stays: Vec<StageStay>,
}

/// Time spent in one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStay {
    /// The stage.
    pub stage: String,
    /// Stays that ended (the record moved on).
    pub completed: i64,
    /// Their average length.
    pub average_seconds: Option<f64>,
    /// Records in the stage now.
    pub current: i64,
}

impl Store {
    /// Funnel and time-in-stage statistics of a stage field over the live records the caller may
    /// read (trashed ones left out), in the funnel order of the query.
    ///
    /// # Errors
    /// An unknown model; database failures.
    pub async fn stage_stats(&self, q: &Scoped<StageQuery>) -> Result<StageStats> {
        let access = &q.access;
        let (model, field) = (q.query.model.as_str(), q.query.field.as_str());
        let order: Vec<&str> = q.query.order.iter().map(String::as_str).collect();
        let m = self.catalog.model(model).cloned().ok_or_else(|| OrmError::bad("model", format!("unknown model `{model}`")))?;
        let d = self.dialect();
        // The live records the caller may read: tenant, trash and row rule from the one scope.
        let live = || Builder::new(d, &self.catalog, access, self.limits).visible_ids(&m, &Filter::True, Op::Read);
        let furthest = stages::furthest(d, access.org(), &m, field, &order, live()?);
        let stays = stages::stays(d, access.org(), &m, field, live()?)?;
        let mut conn = self.acquire().await?;
        let rows = conn.ex().ids(in_session(d, &furthest, access)).await?;
        let mut reached = Vec::with_capacity(order.len());
        for (i, s) in order.iter().enumerate() {
            let i = i64::try_from(i).map_err(|e| OrmError::invariant(e.to_string()))?;
            let n = rows.iter().filter(|(_, f)| *f >= i).count();
            reached.push(((*s).to_owned(), i64::try_from(n).map_err(|e| OrmError::invariant(e.to_string()))?));
        }
        let mut out = Vec::new();
        for text in conn.ex().texts(in_session(d, &stays, access)).await? {
            let row: StayRow = decode_json("stage row", &text)?;
            out.push(StageStay {
                stage: row.stage,
                completed: count(row.completed),
                average_seconds: row.average_seconds,
                current: count(row.current),
            });
        }
        out.sort_by_key(|s| order.iter().position(|o| *o == s.stage).unwrap_or(usize::MAX));
        Ok(StageStats { reached, stays: out })
    }
}

/// A count summed by the database (a whole number, typed as a float by one backend).
#[allow(clippy::cast_possible_truncation)] // a sum of ones: a whole number far below 2^53
fn count(sum: f64) -> i64 {
    sum.round() as i64
}
