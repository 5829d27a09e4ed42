//! Authorization: the single place where tenant, role and row rules are combined.
//!
//! [`authorize`] is the only constructor of [`Scoped`], and the executor only accepts `Scoped`
//! queries, so no query reaches the database without the tenant predicate. A role with no grant
//! for a model compiles to [`Filter::False`]: absence of a rule never means "allow".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crm_model::{Catalog, FieldKind, FieldName, Model, ModelName, OrgId, RoleName, ScalarType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{OrmError, Result};
use crate::ir::{Filter, FilterOp, Op, Operand};

/// Who is asking: the subject, the tenant the request acts in, and the roles there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id (ZITADEL `sub`).
    pub sub: String,
    /// The tenant.
    pub org_id: OrgId,
    /// Roles in that tenant.
    pub roles: Vec<RoleName>,
}

/// Which rows a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RowRule {
    /// Rows whose owner is the caller (a member with the caller's `sub`).
    Own,
    /// Rows owned by the caller or by nobody.
    OwnOrUnassigned,
    /// Every row of the tenant.
    All,
}

/// Row rules per operation; `None` is no grant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grant {
    /// Read.
    #[serde(default)]
    pub read: Option<RowRule>,
    /// Create.
    #[serde(default)]
    pub create: Option<RowRule>,
    /// Update.
    #[serde(default)]
    pub update: Option<RowRule>,
    /// Delete (to the trash) and restore.
    #[serde(default)]
    pub delete: Option<RowRule>,
    /// Destroy for good.
    #[serde(default)]
    pub destroy: Option<RowRule>,
}

impl Grant {
    /// Everything on every row.
    pub const ALL: Grant = Grant {
        read: Some(RowRule::All),
        create: Some(RowRule::All),
        update: Some(RowRule::All),
        delete: Some(RowRule::All),
        destroy: Some(RowRule::All),
    };
    /// Read every row.
    pub const READ: Grant = Grant { read: Some(RowRule::All), create: None, update: None, delete: None, destroy: None };

    fn get(self, op: Op) -> Option<RowRule> {
        match op {
            Op::Read => self.read,
            Op::Create => self.create,
            Op::Update => self.update,
            Op::Delete => self.delete,
            Op::Destroy => self.destroy,
        }
    }
    fn union(self, o: Grant) -> Grant {
        Grant {
            read: self.read.max(o.read),
            create: self.create.max(o.create),
            update: self.update.max(o.update),
            delete: self.delete.max(o.delete),
            destroy: self.destroy.max(o.destroy),
        }
    }
}

/// Fields a role may not read or write on one model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRules {
    /// Fields never returned to, filtered or ordered by, or searched by this role.
    #[serde(default)]
    pub deny_read: Vec<FieldName>,
    /// Fields this role may not set.
    #[serde(default)]
    pub deny_write: Vec<FieldName>,
}

/// One role: a grant for every model unless a model has its own, and field denials per model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolePolicy {
    /// Grant for models not listed.
    #[serde(default)]
    pub default: Grant,
    /// Grants per model.
    #[serde(default)]
    pub models: HashMap<ModelName, Grant>,
    /// Field denials per model.
    #[serde(default)]
    pub fields: HashMap<ModelName, FieldRules>,
    /// Whether this role's reads also cover the tenant's descendant tenants (child tenants,
    /// their children, …). Writes stay in the tenant itself.
    #[serde(default)]
    pub descendants: bool,
    /// Whether this role reads the audit log (deletions, restores, destructions, metadata changes).
    #[serde(default)]
    pub audit: bool,
    /// Whether this role defines the tenant's metadata: custom fields and custom objects.
    #[serde(default)]
    pub metadata: bool,
}

/// Roles and their grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Policy {
    /// Grants per role name.
    pub roles: HashMap<RoleName, RolePolicy>,
}

impl Policy {
    /// The default roles: `admin` (everything), `sales` (read all; write records they own or that
    /// are unassigned; members, rules and routing decisions read only; no webhooks), `viewer`
    /// (read only; no webhooks).
    #[must_use]
    pub fn default_roles() -> Policy {
        let mut roles = HashMap::new();
        if let Ok(admin) = RoleName::new("admin") {
            roles.insert(admin, RolePolicy { default: Grant::ALL, audit: true, metadata: true, ..RolePolicy::default() });
        }
        if let Ok(parent) = RoleName::new("parent_admin") {
            roles.insert(parent, RolePolicy { default: Grant::READ, descendants: true, ..RolePolicy::default() });
        }
        // Webhooks carry signing secrets: administrators only.
        let no_webhooks = || ModelName::new("Webhook").map(|m| HashMap::from([(m, Grant::default())])).unwrap_or_default();
        if let Ok(viewer) = RoleName::new("viewer") {
            roles.insert(viewer, RolePolicy { default: Grant::READ, models: no_webhooks(), ..RolePolicy::default() });
        }
        if let Ok(sales) = RoleName::new("sales") {
            let own = Some(RowRule::OwnOrUnassigned);
            let mut models = no_webhooks();
            // Members, the engines' rules and their decisions are read-only for sales.
            for name in ["Member", "TagRule", "TagAssignment", "RoutingRule", "Assignment", "AutomationRule", "IngestionRule"] {
                if let Ok(m) = ModelName::new(name) {
                    models.insert(m, Grant::READ);
                }
            }
            if let Ok(m) = ModelName::new("SocialEvent") {
                models.insert(
                    m,
                    Grant { read: Some(RowRule::All), create: Some(RowRule::All), update: Some(RowRule::All), ..Grant::default() },
                );
            }
            roles.insert(
                sales,
                RolePolicy {
                    default: Grant { read: Some(RowRule::All), create: own, update: own, delete: own, destroy: None },
                    models,
                    ..RolePolicy::default()
                },
            );
        }
        Policy { roles }
    }

    /// Whether any of `roles` reads descendant tenants.
    #[must_use]
    pub fn reads_descendants(&self, roles: &[RoleName]) -> bool {
        roles.iter().filter_map(|r| self.roles.get(r)).any(|rp| rp.descendants)
    }

    /// Whether any of `roles` defines metadata.
    #[must_use]
    pub fn defines(&self, roles: &[RoleName]) -> bool {
        roles.iter().filter_map(|r| self.roles.get(r)).any(|rp| rp.metadata)
    }

    /// Whether any of `roles` reads the audit log.
    #[must_use]
    pub fn audits(&self, roles: &[RoleName]) -> bool {
        roles.iter().filter_map(|r| self.roles.get(r)).any(|rp| rp.audit)
    }

    fn grant_for(&self, roles: &[RoleName], model: &ModelName) -> Grant {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .map(|rp| rp.models.get(model).copied().unwrap_or(rp.default))
            .fold(Grant::default(), Grant::union)
    }

    /// The fields of `model` denied to a principal with `roles`: denied only when every role of
    /// theirs that has a policy denies it (roles add up).
    fn denials_for(&self, roles: &[RoleName], model: &ModelName) -> Denials {
        let mut read: Option<HashSet<FieldName>> = None;
        let mut write: Option<HashSet<FieldName>> = None;
        // Only roles that grant something on the model count: a role without access to it
        // cannot lift another role's denials there.
        let granting = roles.iter().filter_map(|r| self.roles.get(r)).filter(|rp| {
            let g = rp.models.get(model).copied().unwrap_or(rp.default);
            g != Grant::default()
        });
        for rp in granting {
            let rules = rp.fields.get(model);
            let r: HashSet<FieldName> = rules.map(|f| f.deny_read.iter().cloned().collect()).unwrap_or_default();
            let w: HashSet<FieldName> = rules.map(|f| f.deny_write.iter().cloned().collect()).unwrap_or_default();
            read = Some(match read {
                None => r,
                Some(prev) => prev.intersection(&r).cloned().collect(),
            });
            write = Some(match write {
                None => w,
                Some(prev) => prev.intersection(&w).cloned().collect(),
            });
        }
        Denials { read: read.unwrap_or_default(), write: write.unwrap_or_default() }
    }
}

/// Fields denied to the caller on one model.
#[derive(Debug, Clone, Default)]
struct Denials {
    read: HashSet<FieldName>,
    write: HashSet<FieldName>,
}

/// The caller's resolved access, carried by every [`Scoped`] query: the tenant and the row
/// predicate of each model and operation.
#[derive(Debug, Clone)]
pub struct Access {
    org: OrgId,
    actor: String,
    grants: Arc<HashMap<ModelName, Grant>>,
    denials: Arc<HashMap<ModelName, Denials>>,
    /// Further tenants reads cover (descendants, for parent roles); empty for everyone else.
    read_orgs: Arc<Vec<OrgId>>,
    /// May read the audit log.
    audit: bool,
    /// May define custom fields and objects.
    define: bool,
}

impl Access {
    /// The tenant every statement is confined to.
    #[must_use]
    pub fn org(&self) -> &OrgId {
        &self.org
    }
    /// Whether the caller may define the tenant's metadata (custom fields and objects).
    #[must_use]
    pub fn defines(&self) -> bool {
        self.define
    }
    /// Whether the caller may read the audit log.
    #[must_use]
    pub fn audits(&self) -> bool {
        self.audit
    }
    /// Further tenants the caller's reads cover (descendant tenants of a parent role).
    #[must_use]
    pub fn read_orgs(&self) -> &[OrgId] {
        &self.read_orgs
    }
    /// The fields of `model` the caller may not read.
    pub(crate) fn denied_reads(&self, model: &ModelName) -> Vec<&FieldName> {
        self.denials.get(model).map(|d| d.read.iter().collect()).unwrap_or_default()
    }
    /// Whether the caller may read `field` of `model` (no role denial), for clients rendering
    /// forms from metadata.
    #[must_use]
    pub fn reads_field(&self, model: &ModelName, field: &str) -> bool {
        self.allows(model, Op::Read) && !self.denials.get(model).is_some_and(|d| d.read.iter().any(|f| f.as_str() == field))
    }
    /// Whether the caller may write `field` of `model` (no role denial; the model's own grants
    /// still apply per record).
    #[must_use]
    pub fn writes_field(&self, model: &ModelName, field: &str) -> bool {
        !self.denials.get(model).is_some_and(|d| d.write.iter().any(|f| f.as_str() == field))
    }
    /// Only the store, which looked the descendants up, widens reads.
    pub(crate) fn with_descendants(mut self, orgs: Vec<OrgId>) -> Access {
        self.read_orgs = Arc::new(orgs);
        self
    }
    /// The acting subject (written to `createdBy` / `updatedBy`).
    #[must_use]
    pub fn actor(&self) -> &str {
        &self.actor
    }
    /// Whether `op` on `model` is granted at all.
    #[must_use]
    pub fn allows(&self, model: &ModelName, op: Op) -> bool {
        self.grants.get(model).and_then(|g| g.get(op)).is_some()
    }

    /// Whether `op` on `model` can succeed for some record: a grant whose row rule a record can
    /// meet (own records need an owner field), and for a create, write access to every required
    /// field without a default. What a form-rendering client asks before offering the action.
    #[must_use]
    pub fn can(&self, model: &Model, op: Op) -> bool {
        if !self.allows(&model.name, op) || matches!(self.predicate(model, op), Filter::False) {
            return false;
        }
        op != Op::Create
            || model
                .fields
                .values()
                .all(|f| f.system || !f.required || f.default.is_some() || self.writes_field(&model.name, f.name.as_str()))
    }
    /// The row predicate of `op` on `model`: `True` for all rows, an owner filter for own rows,
    /// `False` with no grant. Together with the tenant predicate the SQL builder always adds,
    /// this is the whole scope.
    #[must_use]
    pub fn predicate(&self, model: &Model, op: Op) -> Filter {
        let rule = self.grants.get(&model.name).and_then(|g| g.get(op));
        match rule {
            None => Filter::False,
            Some(RowRule::All) => Filter::True,
            Some(RowRule::Own) => self.own(model),
            Some(RowRule::OwnOrUnassigned) => {
                let unassigned = model.owner.as_ref().and_then(|o| model.field(o.as_str())).map(|f| match &f.kind {
                    FieldKind::ToOne { .. } => Filter::ToOne { field: f.name.clone(), filter: None },
                    _ => Filter::Cmp { field: f.name.clone(), op: FilterOp::Eq, value: Operand::One(crm_model::Value::Null) },
                });
                Filter::or(vec![self.own(model), unassigned.unwrap_or(Filter::False)])
            }
        }
    }

    /// Rows owned by the caller: the owner field is the caller's `sub` (text owner) or points at
    /// the member whose `sub` is the caller's. A model without an owner has no own rows.
    fn own(&self, model: &Model) -> Filter {
        let Some(f) = model.owner.as_ref().and_then(|o| model.field(o.as_str())) else {
            return Filter::False;
        };
        let sub = crm_model::Value::Text(self.actor.clone());
        match &f.kind {
            FieldKind::ToOne { .. } => {
                let by_sub = crm_model::FieldName::new("sub").map_or(Filter::False, |sub_field| Filter::Cmp {
                    field: sub_field,
                    op: FilterOp::Eq,
                    value: Operand::One(sub),
                });
                Filter::ToOne { field: f.name.clone(), filter: Some(Box::new(by_sub)) }
            }
            FieldKind::Scalar(ScalarType::Text) => Filter::Cmp { field: f.name.clone(), op: FilterOp::Eq, value: Operand::One(sub) },
            _ => Filter::False,
        }
    }
}

/// What a query reads and writes, field by field: checked against the caller's field denials by
/// [`Access::scope`], so a denied field is never returned, filtered, ordered, searched or written.
pub trait FieldUse {
    /// Fails with `Forbidden` on the first denied field the query uses.
    ///
    /// # Errors
    /// `Forbidden` naming the field.
    fn check_fields(&self, catalog: &Catalog, check: &FieldCheck<'_>) -> Result<()>;
}

/// The field check handed to [`FieldUse::check_fields`].
pub struct FieldCheck<'a> {
    access: &'a Access,
}

impl FieldCheck<'_> {
    /// `field` of `model` may be read.
    ///
    /// # Errors
    /// `Forbidden` when it is denied.
    pub fn read(&self, model: &ModelName, field: &str) -> Result<()> {
        match self.access.denials.get(model) {
            Some(d) if d.read.iter().any(|f| f.as_str() == field) => {
                Err(OrmError::Forbidden(format!("the field `{field}` of {model} is not readable with your roles")))
            }
            _ => Ok(()),
        }
    }
    /// `field` of `model` may be written.
    ///
    /// # Errors
    /// `Forbidden` when it is denied.
    pub fn write(&self, model: &ModelName, field: &str) -> Result<()> {
        match self.access.denials.get(model) {
            Some(d) if d.write.iter().any(|f| f.as_str() == field) => {
                Err(OrmError::Forbidden(format!("the field `{field}` of {model} is not writable with your roles")))
            }
            _ => Ok(()),
        }
    }
}

/// A query that passed [`authorize`]: the only thing the executor runs. Fields are private and
/// there is no public constructor besides [`authorize`].
#[derive(Debug, Clone)]
pub struct Scoped<Q> {
    pub(crate) access: Access,
    pub(crate) query: Q,
    pub(crate) tenant_predicate: bool,
}

impl<Q> Scoped<Q> {
    /// The query.
    pub fn query(&self) -> &Q {
        &self.query
    }
    /// The caller's access.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// TEST ONLY: the same query without the `org_id` predicate in its SQL, so a test can prove
    /// that PostgreSQL row-level security alone keeps other tenants' rows out. Compiled only with
    /// the `test-bypass` feature, which nothing but the test suite enables.
    #[cfg(feature = "test-bypass")]
    #[must_use]
    pub fn danger_without_tenant_predicate(mut self) -> Self {
        self.tenant_predicate = false;
        self
    }
}

/// Resolves the caller's access once: the tenant plus the grant of every model of `catalog` for
/// the principal's roles. A request builds this once and scopes each of its queries with
/// [`Access::scope`].
#[must_use]
pub fn access(catalog: &Catalog, policy: &Policy, principal: &Principal) -> Access {
    let grants: HashMap<ModelName, Grant> =
        catalog.models().map(|m| (m.name.clone(), policy.grant_for(&principal.roles, &m.name))).collect();
    let denials: HashMap<ModelName, Denials> = catalog
        .models()
        .map(|m| (m.name.clone(), policy.denials_for(&principal.roles, &m.name)))
        .filter(|(_, d)| !d.read.is_empty() || !d.write.is_empty())
        .collect();
    Access {
        org: principal.org_id.clone(),
        actor: principal.sub.clone(),
        grants: Arc::new(grants),
        denials: Arc::new(denials),
        read_orgs: Arc::new(Vec::new()),
        audit: policy.audits(&principal.roles),
        define: policy.defines(&principal.roles),
    }
}

impl Access {
    /// The access of the platform's own engines (tagging, routing, workers) acting in `org`:
    /// every operation on every model of `catalog`, confined to that one tenant like any other
    /// access. `actor` is written to `createdBy`/`updatedBy` (e.g. `system:routing`, or the
    /// user on whose request the store acts).
    /// Outside crm-orm it is reached only through [`crate::CrossTenant::system_access`].
    #[must_use]
    pub(crate) fn system(catalog: &Catalog, org: OrgId, actor: impl Into<String>) -> Access {
        let all = Grant::ALL;
        Access {
            org,
            actor: actor.into(),
            grants: Arc::new(catalog.models().map(|m| (m.name.clone(), all)).collect()),
            denials: Arc::new(HashMap::new()),
            read_orgs: Arc::new(Vec::new()),
            audit: false,
            define: false,
        }
    }

    /// Checks that `op` on `model` is granted at all and returns `query` scoped to the caller's
    /// tenant and row rules.
    ///
    /// # Errors
    /// `Forbidden` when no role grants `op` on `model`; `BadInput` for an unknown model.
    pub fn scope<Q: FieldUse>(&self, catalog: &Catalog, model: &ModelName, op: Op, query: Q) -> Result<Scoped<Q>> {
        if catalog.model(model.as_str()).is_none() {
            return Err(OrmError::bad("model", format!("unknown model `{model}`")));
        }
        if !self.allows(model, op) {
            let op_name = json!(op);
            return Err(OrmError::Forbidden(format!("not allowed to {} {model}", op_name.as_str().unwrap_or("access"))));
        }
        if !self.denials.is_empty() {
            query.check_fields(catalog, &FieldCheck { access: self })?;
        }
        Ok(Scoped { access: self.clone(), query, tenant_predicate: true })
    }

    /// Scopes a change or read of the tenant's own metadata (custom fields and objects, see
    /// [`crate::Store::define`]) to the caller's tenant.
    ///
    /// # Errors
    /// `Forbidden` without a role that defines metadata.
    pub fn scope_metadata<Q>(&self, query: Q) -> Result<Scoped<Q>> {
        if !self.define {
            return Err(OrmError::Forbidden("defining metadata is for administrators".to_owned()));
        }
        Ok(Scoped { access: self.clone(), query, tenant_predicate: true })
    }

    /// Scopes a query that spans models (such as [`crate::ir::Locate`]) to the caller's tenant;
    /// the executor applies each model's read rule itself and skips models without a grant.
    #[must_use]
    pub fn scope_tenant<Q>(&self, query: Q) -> Scoped<Q> {
        Scoped { access: self.clone(), query, tenant_predicate: true }
    }
}

/// Checks that `principal` may perform `op` on `model` at all and returns the query scoped to the
/// principal's tenant and row rules.
///
/// # Errors
/// `Forbidden` when no role of the principal grants `op` on `model`; `BadInput` for an unknown
/// model.
pub fn authorize<Q: FieldUse>(
    catalog: &Catalog,
    policy: &Policy,
    principal: &Principal,
    model: &ModelName,
    op: Op,
    query: Q,
) -> Result<Scoped<Q>> {
    access(catalog, policy, principal).scope(catalog, model, op, query)
}
