//! The tenant registry: registering tenants, their tree, and the caller's access with the
//! descendant tenants their roles may read.

use crm_model::OrgId;

use super::Store;
use super::pool::ExecutorSource;
use crate::authorization::Access;
use crate::error::{OrmError, Result};
use crate::sql::tenants;

impl Store {
    /// Registers a tenant, under `parent` when given (the parent is registered too). A tenant's
    /// parent can be changed, but never to itself or one of its own descendants.
    ///
    /// # Errors
    /// A cycle (`BadInput`), database failures.
    pub async fn register_tenant(&self, org: &OrgId, parent: Option<&OrgId>) -> Result<()> {
        if let Some(p) = parent {
            if p == org {
                return Err(OrmError::bad("parent", "a tenant cannot be its own parent"));
            }
            self.ensure_tenant(p, None).await?;
            let below = self.descendants(org).await?;
            if below.iter().any(|d| d == p) {
                return Err(OrmError::bad("parent", format!("`{p}` is below `{org}`: that would make a cycle")));
            }
        }
        self.ensure_tenant(org, parent).await?;
        if let Some(p) = parent {
            let mut tx = self.begin().await?;
            tx.ex().set_orgs(true, org, &[]).await?;
            tx.ex().execute(tenants::set_parent(self.dialect(), org, p)).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Every tenant below `org`. The tenant tree spans tenants: the store's own look-up, in a
    /// platform transaction.
    async fn descendants(&self, org: &OrgId) -> Result<Vec<OrgId>> {
        let mut tx = self.platform_tx().await?;
        let orgs = tx.ex().texts(tenants::descendants(self.dialect(), org)).await?;
        tx.commit().await?;
        orgs.into_iter().map(|o| OrgId::new(o).map_err(|e| OrmError::decode("tenant id", e))).collect()
    }

    /// Registers a tenant (idempotent), optionally under a parent tenant.
    ///
    /// # Errors
    /// Database failures, an unknown parent.
    pub async fn ensure_tenant(&self, org: &OrgId, parent: Option<&OrgId>) -> Result<()> {
        let stmt = tenants::register(self.dialect(), org, parent, chrono::Utc::now())?;
        let mut tx = self.begin().await?;
        tx.ex().set_orgs(true, org, &[]).await?;
        tx.ex().execute(stmt).await?;
        tx.commit().await
    }

    /// The caller's access, with the descendant tenants their roles may read (roles with
    /// `descendants: true`, such as `parent_admin`), looked up in `crm_tenants`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn access(&self, policy: &crate::Policy, principal: &crate::Principal) -> Result<Access> {
        let access = crate::authorization::access(&self.catalog, policy, principal);
        if !policy.reads_descendants(&principal.roles) {
            return Ok(access);
        }
        let orgs = self.descendants(&principal.org_id).await?;
        Ok(access.with_descendants(orgs))
    }
}
