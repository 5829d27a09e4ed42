//! The Hygraph-style GraphQL API of a Catalog: the schema as data (apollo-compiler), derived per
//! tenant from the shared one; validation and spec-compliant execution (apollo-compiler's);
//! root fields that each compile into one store read or write; and the single place store
//! errors become client errors. No HTTP here: crm-server carries requests in and out.
#![forbid(unsafe_code)]

mod args;
mod cache;
mod connection;
mod documents;
mod engines;
mod error;
mod exec;
pub mod guard;
mod live;
mod lru;
mod meta;
mod options;
mod plan;
mod request;
mod resolve;
mod selection;
pub mod types;
mod versions;

use std::sync::Arc;
use std::time::Duration;

use apollo_compiler::ExecutableDocument;
pub use apollo_compiler::Schema;
pub use apollo_compiler::response::GraphQLError;
use apollo_compiler::validation::Valid;
pub use cache::{BuildError, Built, CacheStats, DEFAULT_SCHEMA_CAPACITY, SchemaCache, SchemaKey};
use crm_orm::{Policy, Principal, Store};
pub use error::{GraphqlError, Response, code_of, coded, only_unavailable, to_graphql_error};
pub use live::Live;
pub use options::SchemaOptions;
pub use plan::DEFAULT_PLAN_CAPACITY;
pub use request::{Request, RequestCtx, Variables};
pub use versions::Versions;

/// The API service: schema cache, tenants' metadata versions and role policy. One per server;
/// cheap to share.
#[derive(Debug)]
pub struct Api {
    cache: SchemaCache,
    /// The document guard's limits, applied to every request before validation.
    limits: guard::DocumentLimits,
    /// Whether introspection is served.
    introspection: bool,
    /// Parses of documents the guard accepted, by text.
    documents: documents::DocumentCache,
    /// Documents validated against a schema, by schema and text.
    validated: lru::Lru<(SchemaKey, Arc<str>), Arc<Valid<ExecutableDocument>>>,
    /// Operations answered without the executor.
    plans: plan::Plans,
    /// Accesses resolved before, by (tenant, metadata version, roles, subject): an access is
    /// a function of those (and the policy), except for roles reading descendant tenants,
    /// which are looked up for every request.
    accesses: lru::Lru<(crm_model::OrgId, u64, String, String), crm_orm::Access>,
    policy: Arc<Policy>,
    versions: Arc<Versions>,
    /// Attachments' storage, when the server has one.
    files: Option<Arc<crm_engines::files::Files>>,
}

/// How long a tenant's metadata version is trusted before it is read again by default: the
/// longest another server instance keeps serving a tenant's previous schema after a change.
pub const DEFAULT_METADATA_REFRESH: Duration = Duration::from_secs(1);

/// Accesses kept (see [`Api`]).
const ACCESS_CAPACITY: usize = 16_384;

/// What [`Api::answer`] returns.
#[derive(Debug)]
pub enum Answer {
    /// The executor's response.
    Executed(Response),
    /// The response body of a planned operation (JSON, no errors).
    Planned(String),
}

/// The principal's roles, sorted: part of a plan's key.
fn roles_key(principal: &Principal) -> String {
    let mut roles: Vec<&str> = principal.roles.iter().map(crm_model::RoleName::as_str).collect();
    roles.sort_unstable();
    roles.join(",")
}

fn internal_response() -> Response {
    Response::from_errors(vec![coded("internal error", crm_model::ErrorCode::Internal)])
}

/// Validated documents kept by default.
const VALIDATED_CAPACITY: usize = 2048;

impl Api {
    /// A service building schemas with `options` and authorizing with `policy`.
    #[must_use]
    pub fn new(options: SchemaOptions, policy: Policy) -> Self {
        Api {
            limits: options.document_limits(),
            introspection: options.introspection,
            documents: documents::DocumentCache::new(documents::DEFAULT_DOCUMENT_CAPACITY),
            validated: lru::Lru::new(VALIDATED_CAPACITY),
            plans: plan::Plans::new(plan::DEFAULT_PLAN_CAPACITY, plan::DEFAULT_STATEMENT_CAPACITY),
            accesses: lru::Lru::new(ACCESS_CAPACITY),
            cache: SchemaCache::new(),
            policy: Arc::new(policy),
            versions: Arc::new(Versions::new(DEFAULT_METADATA_REFRESH)),
            files: None,
        }
    }

    /// Serves attachments' uploads and downloads from `files`.
    #[must_use]
    pub fn with_files(mut self, files: Arc<crm_engines::files::Files>) -> Self {
        self.files = Some(files);
        self
    }

    /// Keeps at most `capacity` tenant schemas in the cache (least recently used evicted first).
    #[must_use]
    pub fn with_schema_capacity(mut self, capacity: usize) -> Self {
        self.cache = self.cache.with_capacity(capacity);
        self
    }

    /// The compiled reads kept: one per
    /// planned root field, principal and value of its structural variables.
    #[must_use]
    pub fn compiled_reads(&self) -> usize {
        self.plans.compiled_reads()
    }

    /// Sets how long a tenant's metadata version is trusted before it is read again.
    #[must_use]
    pub fn with_metadata_refresh(mut self, refresh: Duration) -> Self {
        self.versions = Arc::new(Versions::new(refresh));
        self
    }

    /// The schema cache.
    #[must_use]
    pub fn cache(&self) -> &SchemaCache {
        &self.cache
    }

    /// The schema and catalog `org` is served at its current metadata version: the shared base
    /// schema for tenants without custom definitions, the tenant's own otherwise.
    ///
    /// # Errors
    /// The version or the definitions could not be read, or the schema could not be built.
    pub async fn schema_for(&self, store: &Store, org: &crm_model::OrgId) -> Result<(u64, cache::Built), cache::BuildError> {
        let version = self.versions.current(store, org).await?;
        let key = SchemaKey::of(org, version);
        let built =
            self.cache.get_or_build(&key, store.base_catalog(), || async { store.tenant_catalog(org).await.map(|(_, c)| c) }).await?;
        Ok((version, built))
    }

    /// The store serving `principal`'s tenant (its catalog) and the principal's access there:
    /// what a non-GraphQL endpoint (REST) needs to act exactly as GraphQL would.
    ///
    /// # Errors
    /// The tenant's catalog could not be read (`Internal`), database failures.
    pub async fn prepare(&self, store: &Store, principal: &Principal) -> Result<(Store, crm_orm::Access), crm_orm::OrmError> {
        let (_, built) = self.schema_for(store, &principal.org_id).await.map_err(|e| crm_orm::OrmError::invariant(e.to_string()))?;
        let store = store.with_catalog(built.catalog);
        let access = store.access(&self.policy, principal).await?;
        Ok((store, access))
    }

    /// The access of `principal` on `store`'s catalog (the tenant's at metadata `version`).
    async fn access(&self, store: &Store, principal: &Principal, version: u64, roles: &str) -> Result<crm_orm::Access, crm_orm::OrmError> {
        if self.policy.reads_descendants(&principal.roles) {
            return store.access(&self.policy, principal).await;
        }
        let key = (principal.org_id.clone(), version, roles.to_owned(), principal.sub.clone());
        if let Some(a) = self.accesses.get(&key) {
            return Ok(a);
        }
        let a = store.access(&self.policy, principal).await?;
        self.accesses.insert(key, a.clone());
        Ok(a)
    }

    /// Executes `request` as `principal` on the catalog of the principal's tenant. Every error of
    /// the response has an `extensions.code`.
    pub async fn execute(&self, store: &Store, principal: &Principal, request: Request) -> Response {
        match self.answer(store, principal, request).await {
            Answer::Executed(r) => r,
            Answer::Planned(body) => planned_response(&body),
        }
    }

    /// Like [`Api::execute`], with the answer of a planned operation as the response body
    /// itself (JSON), not decoded into a [`Response`]: what the server sends.
    pub async fn answer(&self, store: &Store, principal: &Principal, request: Request) -> Answer {
        let (version, built) = match self.schema_for(store, &principal.org_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, org = %principal.org_id, "could not build the tenant's GraphQL schema");
                return Answer::Executed(match e {
                    cache::BuildError::Store(e) => Response::from_errors(vec![to_graphql_error(&e)]),
                    cache::BuildError::Schema(_) => internal_response(),
                });
            }
        };
        let cache::Built { schema, catalog, .. } = built;
        let store = store.with_catalog(Arc::clone(&catalog));
        let roles = roles_key(principal);
        let access = match self.access(&store, principal, version, &roles).await {
            Ok(a) => a,
            Err(e) => return Answer::Executed(Response::from_errors(vec![to_graphql_error(&e)])),
        };
        let rc = RequestCtx { store, access, metadata_version: version, versions: Arc::clone(&self.versions), files: self.files.clone() };
        // A plan: no executor. Plans are learnt from documents the guard accepted, by their
        // text, so a plan's document needs no guarding again. A miss, or a plan that leaves the
        // request to the executor, runs it; a success teaches the plans.
        let schema_key = SchemaKey::of(&principal.org_id, version);
        if let Some(plan) = self.plans.get(&schema_key, &roles, &request.query, request.operation_name.as_deref())
            && let Some(body) = plan.run(&self.plans, &rc, &schema, &request.variables).await
        {
            return Answer::Planned(body);
        }
        // The document guard, before anything else looks at the document: parsed once here (the
        // parse is kept for plans), refused in linear time when too large, deep or costly. A
        // document seen before and accepted is neither parsed nor guarded again.
        let kept = match self.documents.get(&request.query) {
            Some(doc) => Some(doc),
            None => match async_graphql::parser::parse_query(&request.query) {
                Ok(doc) => {
                    if let Err(refusal) = guard::check(&doc, &self.limits) {
                        return Answer::Executed(Response::from_errors(vec![refusal.into_error()]));
                    }
                    self.documents.insert(&request.query, &doc);
                    Some(Arc::new(doc))
                }
                // Syntax errors are reported by validation, with their locations.
                Err(_) => None,
            },
        };
        let doc = match self.validate(&schema_key, &schema, &request.query) {
            Ok(doc) => doc,
            Err(response) => return Answer::Executed(response),
        };
        let errors = exec::FieldErrors::default();
        let ctx = exec::Ctx { rc: &rc, cat: &catalog, schema: &schema, errors: &errors, default_page: rc.store.limits().default_page };
        let response = exec::execute(&ctx, &doc, request.operation_name.as_deref(), &request.variables, self.introspection).await;
        if response.errors.is_empty()
            && let Some(parsed) = kept
        {
            self.plans.learn(&schema_key, &schema, &catalog, &roles, &request.query, request.operation_name.as_deref(), &parsed);
        }
        Answer::Executed(response)
    }

    /// `query` validated against `schema` (kept by schema and text), or the response of its
    /// errors.
    pub(crate) fn validate(
        &self,
        key: &SchemaKey,
        schema: &Valid<Schema>,
        query: &str,
    ) -> Result<Arc<Valid<ExecutableDocument>>, Response> {
        let k = (key.clone(), Arc::<str>::from(query));
        if let Some(doc) = self.validated.get(&k) {
            return Ok(doc);
        }
        match ExecutableDocument::parse_and_validate(schema, query, "request.graphql") {
            Ok(doc) => {
                let doc = Arc::new(doc);
                self.validated.insert(k, Arc::clone(&doc));
                Ok(doc)
            }
            Err(with) => Err(exec::invalid(&with.errors)),
        }
    }
}

/// A planned answer's body as a [`Response`].
fn planned_response(body: &str) -> Response {
    #[derive(serde::Deserialize)]
    struct Body {
        data: Option<apollo_compiler::response::JsonMap>,
    }
    match serde_json::from_str::<Body>(body) {
        Ok(b) => Response { errors: Vec::new(), data: b.data, executed: true },
        Err(e) => {
            tracing::error!(error = %e, "a planned answer is not a GraphQL response");
            internal_response()
        }
    }
}
