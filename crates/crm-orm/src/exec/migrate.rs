//! Migrations: the system migrations (`migrations/<backend>`), then every model's table, made or
//! extended from the DDL the statement layer writes ([`crate::sql::ddl`]).

use std::collections::HashMap;

use super::Store;
use super::pool::{Db, ExecutorSource, Tx};
use crate::error::{OrmError, Result};
use crate::sql::dialect::Dialect;
use crate::sql::{ddl, locks, search, write};

impl Store {
    /// Whether the database answers and the system migrations are applied.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn ready(&self) -> Result<bool> {
        let mut c = self.acquire().await?;
        let n = c.ex().scalar_i64(ddl::migrations_applied(self.dialect())).await;
        Ok(n.unwrap_or(0) > 0)
    }

    /// Applies the system migrations (`migrations/<backend>`) and creates or extends the table of
    /// every model of the Catalog. Idempotent; never drops anything. On PostgreSQL it also enables
    /// and forces row-level security on every model table.
    ///
    /// # Errors
    /// When a migration or DDL statement fails.
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(p) => sqlx::migrate!("../../migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("../../migrations/postgres").run(p).await?,
        }
        let d = self.dialect();
        let mut tx = self.begin().await?;
        tx.ex().execute_some(locks::no_statement_timeout(d)).await?;
        tx.ex().execute_some(locks::migration(d)).await?;
        // Each table's DDL is fingerprinted; a table whose DDL is unchanged is not touched, so
        // a restart (or a second instance starting) takes no locks on live tables.
        let known: HashMap<String, String> = tx.ex().text_pairs(ddl::migrated_tables(d)).await?.into_iter().collect();
        let mut changed = Vec::new();
        for m in self.catalog.models() {
            let mut statements = vec![ddl::create_table(d, &self.catalog, m)];
            statements.extend(ddl::indexes(m));
            statements.extend(ddl::track_triggers(d, m));
            if d == Dialect::Postgres {
                statements.extend(ddl::foreign_keys(&self.catalog, m));
                statements.extend(ddl::row_level_security(m));
            }
            let hash = ddl::fingerprint(&statements);
            if known.get(m.table.as_str()) != Some(&hash) {
                changed.push((m, statements, hash));
            }
        }
        // Tables first (PostgreSQL foreign keys need their targets), then the rest.
        for (m, statements, _) in &changed {
            if let Some(create) = statements.first() {
                tx.ex().raw(create.clone()).await?;
            }
            if tx.ex().scalar_i64(ddl::generated_search_column(d, m.table.as_str())).await? > 0 {
                tx.ex().raw(ddl::ungenerate_search_column(d, m.table.as_str())).await?;
            }
            let existing = tx.ex().texts(ddl::list_columns(d, m.table.as_str())).await?;
            for stmt in ddl::add_columns(d, m, &existing) {
                tx.ex().raw(stmt).await?;
            }
            // A required field added to a table with rows: its default fills them, or the
            // migration stops (a null in a required field would reach clients as an error).
            let added: Vec<&crm_model::Field> =
                m.stored().filter(|f| !f.system && f.required && !existing.iter().any(|c| c == f.column.as_str())).collect();
            if added.is_empty() {
                continue;
            }
            owner_rls(&mut tx, d, m.table.as_str(), true).await?;
            for f in added {
                if let Some(v) = &f.default {
                    tx.ex().execute(write::fill_column(d, m, f, v)).await?;
                } else {
                    let missing = tx.ex().scalar_i64(write::count_missing(d, m, f)).await?;
                    if missing > 0 {
                        return Err(OrmError::Config(format!(
                            "{}.{} is a new required field but {missing} existing row(s) have no value: give it a default (which fills them) or make it optional",
                            m.name, f.name
                        )));
                    }
                }
            }
            owner_rls(&mut tx, d, m.table.as_str(), false).await?;
        }
        for (m, statements, hash) in &changed {
            for stmt in statements.iter().skip(1) {
                tx.ex().raw(stmt.clone()).await?;
            }
            tx.ex().execute(ddl::record_migrated(d, m, hash, chrono::Utc::now())?).await?;
        }
        // The search column, filled for rows written before it existed or before the model's
        // searchable fields changed (new rows get it from the store).
        for m in self.catalog.models() {
            let Some(refill) = search::refill(d, m) else { continue };
            let hash = ddl::fingerprint(std::slice::from_ref(&refill));
            if known.get(&ddl::search_key(m)) != Some(&hash) {
                owner_rls(&mut tx, d, m.table.as_str(), true).await?;
                tx.ex().raw(refill).await?;
                owner_rls(&mut tx, d, m.table.as_str(), false).await?;
                tx.ex().execute(ddl::record_search_filled(d, m, &hash, chrono::Utc::now())?).await?;
            }
        }
        tx.commit().await?;
        if !changed.is_empty() {
            self.schema.changed();
        }
        Ok(())
    }
}

/// Lifts row-level security on `table` for the migrating role, or puts it back (see
/// [`ddl::owner_rls`]).
async fn owner_rls(tx: &mut Tx, d: Dialect, table: &str, lifted: bool) -> Result<()> {
    if let Some(sql) = ddl::owner_rls(d, table, lifted) {
        tx.ex().raw(sql).await?;
    }
    Ok(())
}
