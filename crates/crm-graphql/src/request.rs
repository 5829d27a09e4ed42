//! What a client sends ([`Request`]), and what a request carries into the resolvers
//! ([`RequestCtx`]).

use std::sync::Arc;

use crm_orm::{Access, OrmError, Store};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// The variables of a request: a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Variables(Map<String, Json>);

impl Variables {
    /// The variables of a JSON object; anything else is no variables.
    #[must_use]
    pub fn from_json(v: Json) -> Variables {
        match v {
            Json::Object(m) => Variables(m),
            _ => Variables::default(),
        }
    }
    /// The variables as a JSON object.
    #[must_use]
    pub fn as_map(&self) -> &Map<String, Json> {
        &self.0
    }
}

/// A GraphQL request as clients send it (`{"query", "operationName", "variables"}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The document.
    pub query: String,
    /// The operation to run, when the document has several.
    #[serde(default)]
    pub operation_name: Option<String>,
    /// The variables' values.
    #[serde(default, deserialize_with = "null_as_default")]
    pub variables: Variables,
}

fn null_as_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Variables, D::Error> {
    Ok(Option::<Variables>::deserialize(d)?.unwrap_or_default())
}

impl Request {
    /// A request of `query` without variables.
    #[must_use]
    pub fn new(query: impl Into<String>) -> Request {
        Request { query: query.into(), operation_name: None, variables: Variables::default() }
    }
    /// With these variables.
    #[must_use]
    pub fn variables(mut self, variables: Variables) -> Request {
        self.variables = variables;
        self
    }
    /// With this operation.
    #[must_use]
    pub fn operation_name(mut self, name: impl Into<String>) -> Request {
        self.operation_name = Some(name.into());
        self
    }
}

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
    /// Where attachments' bytes are kept (none: uploads and downloads are unavailable).
    pub(crate) files: Option<Arc<crm_engines::files::Files>>,
}

pub(crate) fn bad(path: &str, message: impl Into<String>) -> OrmError {
    OrmError::BadInput { path: path.to_owned(), message: message.into() }
}
