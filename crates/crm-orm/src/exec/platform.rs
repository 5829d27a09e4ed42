//! **Cross-tenant platform work**: what the outbox consumers and the webhook deliverer do across
//! tenants. [`CrossTenant`] is the one handle for it; request paths (GraphQL, REST) never hold
//! one: they reach event data only through [`crate::Scoped`] queries of their own tenant.
//!
//! On PostgreSQL the event tables (`crm_outbox`, `crm_event_cursors`, `crm_deliveries`) and
//! `crm_tenants` have row-level security like every table with `org_id`: the `crm_tenant`
//! policies admit the tenant a connection is set to, and the `crm_platform` policy admits
//! every row only in a transaction that set `crm.platform` to `on` transaction-locally, which
//! only this module (and the store's own tenancy look-ups) does. A request connection, whose
//! settings are its tenant's, sees no other tenant's events, cursors, deliveries or registry row
//! even with a statement that forgot its `org_id` predicate.

use crm_model::OrgId;

use super::Store;
use super::pool::{ExecutorSource, Tx};
use crate::authorization::Access;
use crate::error::Result;
use crate::sql::tenants;

/// The handle of cross-tenant platform work (see the module documentation). Made only by
/// [`Store::cross_tenant_platform_work`]; workers and operator commands hold one, request paths
/// never do.
#[derive(Debug, Clone)]
pub struct CrossTenant(pub(super) Store);

impl Store {
    /// **Cross-tenant platform work** on this store: the outbox consumers' and the webhook
    /// deliverer's operations across tenants. For workers and operator commands only; nothing
    /// that serves a request may call this.
    #[must_use]
    pub fn cross_tenant_platform_work(&self) -> CrossTenant {
        CrossTenant(self.clone())
    }

    /// A transaction in which PostgreSQL's `crm_platform` policies admit every tenant's rows of
    /// the system tables (the flag ends with the transaction).
    pub(super) async fn platform_tx(&self) -> Result<Tx> {
        let mut tx = self.begin().await?;
        tx.ex().execute_some(tenants::platform(self.dialect())).await?;
        Ok(tx)
    }
}

impl CrossTenant {
    /// The store (for work inside one tenant, such as reading a webhook record).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.0
    }

    /// The platform's own access in `org`: every operation on every model of the store's
    /// catalog, confined to that one tenant, writing `actor` to `createdBy`/`updatedBy`. For the
    /// workers, seeding and operator commands; a request acts with its caller's access.
    #[must_use]
    pub fn system_access(&self, org: OrgId, actor: impl Into<String>) -> Access {
        Access::system(&self.0.catalog, org, actor)
    }
}
