//! The Hygraph-style GraphQL API of a Catalog: schema generation (async-graphql dynamic schema),
//! resolvers that compile each root field into one engine read, and the single place engine
//! errors become client errors. No HTTP here: crm-server carries requests in and out.
#![forbid(unsafe_code)]

mod cache;
mod error;
mod resolve;
mod schema;

use std::sync::Arc;

pub use async_graphql::dynamic::Schema;
pub use async_graphql::{Request, Response, Variables};
pub use cache::{SchemaCache, SchemaKey};
use crm_orm::{Engine, Policy, Principal};
pub use error::{GraphqlError, classify, to_graphql_error};
pub use resolve::RequestCtx;
pub use schema::{SchemaOptions, build_schema};

/// The API service: schema cache + role policy. One per server; cheap to share.
#[derive(Debug)]
pub struct Api {
    cache: SchemaCache,
    policy: Arc<Policy>,
}

impl Api {
    /// A service building schemas with `options` and authorizing with `policy`.
    #[must_use]
    pub fn new(options: SchemaOptions, policy: Policy) -> Self {
        Api { cache: SchemaCache::new(options), policy: Arc::new(policy) }
    }

    /// The schema cache.
    #[must_use]
    pub fn cache(&self) -> &SchemaCache {
        &self.cache
    }

    /// Executes `request` as `principal` on `engine`'s catalog. Every error of the response has an
    /// `extensions.code`.
    pub async fn execute(&self, engine: &Engine, principal: &Principal, request: Request) -> Response {
        let key = SchemaKey { tenant: None, version: 0 };
        let schema = match self.cache.get_or_build(&key, || engine.catalog().clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not build the GraphQL schema");
                let mut errors = vec![async_graphql::ServerError::new("internal error", None)];
                if let Some(err) = errors.first_mut() {
                    err.extensions.get_or_insert_with(Default::default).set("code", "INTERNAL");
                }
                return Response::from_errors(errors);
            }
        };
        let access = match engine.access(&self.policy, principal).await {
            Ok(a) => a,
            Err(e) => {
                let err = to_graphql_error(&e);
                return Response::from_errors(vec![err.into_server_error(async_graphql::Pos::default())]);
            }
        };
        let rc = RequestCtx { engine: engine.clone(), access };
        let mut response = schema.execute(request.data(rc)).await;
        classify(&mut response.errors);
        response
    }
}
