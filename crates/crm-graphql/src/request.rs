//! What a request carries into the resolvers ([`RequestCtx`]), and how a resolver reports an
//! error.

use std::sync::Arc;

use async_graphql::dynamic::ResolverContext;
use crm_orm::{Access, OrmError, Store};

use crate::error::to_graphql_error;

/// What a request carries into the resolvers: the store and the caller's resolved access.
#[derive(Clone)]
pub struct RequestCtx {
    /// The store to run on (serving the caller's tenant's catalog).
    pub store: Store,
    /// The caller's tenant and grants.
    pub access: Access,
    /// The tenant's metadata version the request's schema reflects.
    pub metadata_version: u64,
    /// Where a metadata change made by this request is noted, so this server's next request of
    /// the tenant uses the new schema at once.
    pub(crate) versions: Arc<crate::versions::Versions>,
}

pub(crate) type GqlResult<T> = async_graphql::Result<T>;

pub(crate) fn err(e: &OrmError) -> async_graphql::Error {
    to_graphql_error(e)
}

pub(crate) fn bad(path: &str, message: impl Into<String>) -> OrmError {
    OrmError::BadInput { path: path.to_owned(), message: message.into() }
}

pub(crate) fn request<'a>(ctx: &ResolverContext<'a>) -> GqlResult<&'a RequestCtx> {
    ctx.data::<RequestCtx>().map_err(|_| err(&OrmError::invariant("request context missing")))
}
