//! A tenant out and in, exactly (`crm-server export` / `import`): cross-tenant platform work
//! ([`CrossTenant`]), for operator commands only. An export reads the tenant's custom
//! definitions, its records (by model, in [`model_order`](crate::sql::transfer::model_order),
//! trashed ones too, with ids, stamps and versions) and its logs page by page; an [`Import`]
//! writes them into an empty tenant in one transaction, so a failed or truncated import leaves
//! nothing behind. Nothing an import writes runs hooks or makes events: the records are as they
//! were, not written anew.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_model::{Catalog, Field, FieldKind, Model, ModelName, OrgId, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use super::meta::{extension_of, load};
use super::platform::CrossTenant;
use super::pool::{ExecutorSource, Tx};
use crate::error::{OrmError, Result, decode_json};
use crate::sql::dialect::Dialect;
use crate::sql::metadata::Definition;
use crate::sql::tenants;
use crate::sql::transfer::{self, Log};
use crate::sql::write::{self, Restored, Sets};

impl CrossTenant {
    /// A platform transaction set to `org`, so row-level security admits its rows of every table.
    async fn tenant_tx(&self, org: &OrgId) -> Result<Tx> {
        let mut tx = self.0.platform_tx().await?;
        tx.ex().set_orgs(true, org, &[]).await?;
        Ok(tx)
    }

    /// The catalog `org` sees (the base one extended with its active definitions).
    ///
    /// # Errors
    /// Database failures.
    pub async fn tenant_catalog(&self, org: &OrgId) -> Result<Arc<Catalog>> {
        Ok(self.0.tenant_catalog(org).await?.1)
    }

    /// Every stored definition of `org`, inactive ones included, in declaration order.
    ///
    /// # Errors
    /// Database failures.
    pub async fn export_definitions(&self, org: &OrgId) -> Result<Vec<Definition>> {
        let mut tx = self.tenant_tx(org).await?;
        load(self.0.dialect(), tx.ex(), org).await
    }

    /// How many records of `model` `org` has (trashed ones included).
    ///
    /// # Errors
    /// Database failures.
    pub async fn count_records(&self, org: &OrgId, model: &Model) -> Result<i64> {
        let mut tx = self.tenant_tx(org).await?;
        tx.ex().scalar_i64(transfer::count_records(self.0.dialect(), model, org)).await
    }

    /// Up to `limit` records of `model` of `org` after id `after`, by id: every stored field.
    ///
    /// # Errors
    /// Database failures.
    pub async fn export_records(
        &self,
        catalog: &Catalog,
        org: &OrgId,
        model: &Model,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Json>> {
        let stmt = transfer::records_page(self.0.dialect(), catalog, model, org, after, limit)?;
        let mut tx = self.tenant_tx(org).await?;
        let rows = tx.ex().texts(stmt).await?;
        rows.iter().map(|t| decode_json("exported record", t)).collect()
    }

    /// How many entries of `log` `org` has.
    ///
    /// # Errors
    /// Database failures.
    pub async fn count_log(&self, org: &OrgId, log: &Log) -> Result<i64> {
        let mut tx = self.tenant_tx(org).await?;
        tx.ex().scalar_i64(transfer::count_log(self.0.dialect(), log, org)).await
    }

    /// Up to `limit` entries of `log` of `org` after position `after` (their `seq`), oldest first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn export_log(&self, org: &OrgId, log: &Log, after: i64, limit: u32) -> Result<Vec<Json>> {
        let stmt = transfer::log_page(self.0.dialect(), log, org, after, limit)?;
        let mut tx = self.tenant_tx(org).await?;
        let rows = tx.ex().texts(stmt).await?;
        rows.iter().map(|t| decode_json("exported log entry", t)).collect()
    }

    /// Starts an import into `org`, which must have no records and no definitions.
    ///
    /// # Errors
    /// `CONFLICT` for a tenant with data; database failures.
    pub async fn import(&self, org: &OrgId) -> Result<Import> {
        let d = self.0.dialect();
        let mut tx = self.tenant_tx(org).await?;
        if !load(d, tx.ex(), org).await?.is_empty() {
            return Err(OrmError::Referenced(format!("tenant {org} has custom definitions: import into an empty tenant")));
        }
        for m in self.0.base.models() {
            if tx.ex().scalar_i64(transfer::has_records(d, m, org)).await? > 0 {
                return Err(OrmError::Referenced(format!("tenant {org} has {} records: import into an empty tenant", m.name)));
            }
        }
        tx.ex().execute(tenants::register(d, org, None, Utc::now())?).await?;
        Ok(Import {
            d,
            tx,
            org: org.clone(),
            base: Arc::clone(&self.0.base),
            catalog: Arc::clone(&self.0.base),
            seen: HashSet::new(),
            deferred: Vec::new(),
            logs_started: false,
            records: 0,
        })
    }
}

/// An import in progress (see [`CrossTenant::import`]): definitions first, then records model by
/// model, then logs; [`Import::finish`] commits. Dropped unfinished, it changes nothing.
pub struct Import {
    d: Dialect,
    tx: Tx,
    org: OrgId,
    base: Arc<Catalog>,
    catalog: Arc<Catalog>,
    /// Models whose records came already.
    seen: HashSet<ModelName>,
    /// References to records not there yet when their record was inserted: (model, field,
    /// record, target), set before the logs.
    deferred: Vec<(Arc<Model>, Field, Uuid, Uuid)>,
    logs_started: bool,
    records: u64,
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import").field("org", &self.org).field("records", &self.records).finish_non_exhaustive()
    }
}

fn time(row: &Json, key: &str, path: &str) -> Result<Option<DateTime<Utc>>> {
    match row.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| OrmError::bad(format!("{path}.{key}"), "expected an RFC 3339 instant"))?
                .with_timezone(&Utc),
        )),
        Some(_) => Err(OrmError::bad(format!("{path}.{key}"), "expected an RFC 3339 instant")),
    }
}

fn text(row: &Json, key: &str) -> Option<String> {
    row.get(key).and_then(Json::as_str).map(str::to_owned)
}

impl Import {
    /// The tenant's definitions, as exported: stored as they were, and the catalog records are
    /// read against extended with the active ones.
    ///
    /// # Errors
    /// A bad definition; database failures.
    pub async fn definitions(&mut self, defs: &[Definition]) -> Result<()> {
        if defs.is_empty() {
            return Ok(());
        }
        for def in defs {
            self.tx.ex().execute(transfer::restore_definition(self.d, &self.org, def)?).await?;
        }
        self.tx.ex().execute(tenants::bump_metadata_version(self.d, &self.org)).await?;
        let (cat, skipped) = self.base.extend_lenient(&extension_of(defs));
        if let Some(e) = skipped.into_iter().next() {
            return Err(OrmError::Metadata(e));
        }
        self.catalog = Arc::new(cat);
        Ok(())
    }

    /// The catalog records are read against.
    #[must_use]
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Records of `model`, as exported (every stored field). A to-one reference to a model whose
    /// records have not come yet (or to this model) is set in a second pass.
    ///
    /// # Errors
    /// An unknown model, a value of the wrong form (`BAD_USER_INPUT` naming `path`), database
    /// failures (a duplicate id, a reference to a record that is not there).
    pub async fn records(&mut self, model: &str, rows: &[Json], path: &str) -> Result<()> {
        let m = self.catalog.model(model).cloned().ok_or_else(|| OrmError::bad(path, format!("unknown model `{model}`")))?;
        let mut restored = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let id =
                row.get("id").and_then(Json::as_str).and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(|| OrmError::bad(&p, "no id"))?;
            let mut sets = Sets::default();
            for f in m.stored().filter(|f| !f.system) {
                let value = match row.get(f.name.as_str()) {
                    None | Some(Json::Null) => Value::Null,
                    Some(j) => crm_model::input::parse(f, j).map_err(|e| OrmError::bad(format!("{p}.{}", f.name), e.reason))?,
                };
                if let (FieldKind::ToOne { target, .. }, Value::Uuid(t)) = (&f.kind, &value)
                    && !f.required
                    && (*target == m.name || !self.seen.contains(target))
                {
                    self.deferred.push((Arc::clone(&m), f.clone(), id, *t));
                    sets.add(self.d, f, &Value::Null);
                    continue;
                }
                sets.add(self.d, f, &value);
            }
            let created_at = time(row, "createdAt", &p)?.ok_or_else(|| OrmError::bad(&p, "no createdAt"))?;
            restored.push(Restored {
                id,
                created_at,
                updated_at: time(row, "updatedAt", &p)?.unwrap_or(created_at),
                created_by: text(row, "createdBy"),
                updated_by: text(row, "updatedBy"),
                version: row.get("version").and_then(Json::as_i64).ok_or_else(|| OrmError::bad(&p, "no version"))?,
                deleted_at: time(row, "deletedAt", &p)?,
                sets,
            });
        }
        self.records += restored.len() as u64;
        for stmt in write::restore_many(self.d, &m, &self.org, restored)? {
            self.tx.ex().execute(stmt).await?;
        }
        self.seen.insert(m.name.clone());
        Ok(())
    }

    /// Sets the deferred references, then clears what the triggers logged while records went in
    /// (the exported logs replace it).
    async fn settle(&mut self) -> Result<()> {
        if self.logs_started {
            return Ok(());
        }
        self.logs_started = true;
        for (m, f, id, target) in std::mem::take(&mut self.deferred) {
            self.tx.ex().execute(write::restore_reference(self.d, &m, &f, &self.org, id, target)).await?;
        }
        for log in transfer::LOGS.iter().filter(|l| l.table != "crm_audit") {
            self.tx.ex().execute(transfer::clear_log(self.d, log, &self.org)).await?;
        }
        Ok(())
    }

    /// Entries of log `table`, as exported, oldest first.
    ///
    /// # Errors
    /// An unknown log, a value of the wrong form, database failures.
    pub async fn log(&mut self, table: &str, rows: &[Json], path: &str) -> Result<()> {
        let log = transfer::log(table).ok_or_else(|| OrmError::bad(path, format!("unknown log `{table}`")))?;
        self.settle().await?;
        if let Some(stmt) = transfer::restore_log(self.d, log, &self.org, rows, path)? {
            self.tx.ex().execute(stmt).await?;
        }
        Ok(())
    }

    /// Commits the import; returns how many records went in.
    ///
    /// # Errors
    /// Database failures (nothing is imported then).
    pub async fn finish(mut self) -> Result<u64> {
        self.settle().await?;
        self.tx.commit().await?;
        Ok(self.records)
    }
}
