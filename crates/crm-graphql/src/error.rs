//! Responses, and the one conversion point from store errors to GraphQL errors. No SQL or
//! internal text ever reaches a client: internal errors are logged here and replaced by a
//! generic message.

use apollo_compiler::response::{GraphQLError, JsonMap, JsonValue};
use crm_model::ErrorCode;
use crm_orm::OrmError;
use serde::ser::SerializeMap;

/// Errors building a schema from a Catalog.
#[derive(Debug, thiserror::Error)]
pub enum GraphqlError {
    /// The generated schema would be invalid (a name the Catalog let through that GraphQL does
    /// not accept).
    #[error("the generated schema is invalid: {0}")]
    Schema(String),
}

/// A GraphQL response: `errors` (each with an `extensions.code`), and `data` once execution
/// started (`null` when an error reached the root), absent when the request failed before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// The errors, in the order they were raised.
    pub errors: Vec<GraphQLError>,
    /// The data; `None` with `executed` is `"data": null`.
    pub data: Option<JsonMap>,
    /// Whether execution started (so `data` is in the response, possibly null).
    pub executed: bool,
}

impl serde::Serialize for Response {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if !self.errors.is_empty() {
            m.serialize_entry("errors", &self.errors)?;
        }
        if self.executed {
            m.serialize_entry("data", &self.data)?;
        }
        m.end()
    }
}

impl Response {
    /// A response of errors only: the request failed before execution.
    #[must_use]
    pub fn from_errors(errors: Vec<GraphQLError>) -> Response {
        Response { errors, data: None, executed: false }
    }
    /// The code of the first error, if any.
    #[must_use]
    pub fn first_code(&self) -> Option<&str> {
        self.errors.first().and_then(code_of)
    }
}

/// The `extensions.code` of an error.
#[must_use]
pub fn code_of(e: &GraphQLError) -> Option<&str> {
    e.extensions.get("code").and_then(JsonValue::as_str)
}

/// An error with this message and code, outside any field.
#[must_use]
pub fn coded(message: &str, code: ErrorCode) -> GraphQLError {
    let mut extensions = JsonMap::new();
    extensions.insert("code", code.as_str().into());
    GraphQLError { message: message.to_owned(), locations: Vec::new(), path: Vec::new(), extensions }
}

/// Converts a store error into a client error with a stable `extensions.code` (and `field` for
/// input errors). Internal errors are logged with their detail and returned as `internal error`.
#[must_use]
pub fn to_graphql_error(e: &OrmError) -> GraphQLError {
    let code = e.code();
    if code == ErrorCode::Internal {
        tracing::error!(error = %e, "internal error while resolving a GraphQL field");
    }
    let mut err = coded(&e.client_message(), code);
    if let Some(f) = e.field() {
        err.extensions.insert("field", f.into());
    }
    if e.commit_unknown() {
        // The client cannot tell otherwise whether its mutation took effect.
        err.extensions.insert("committed", "unknown".into());
    }
    err
}

/// Whether `response` failed only because the database (or a dependency) is unavailable: it has
/// errors and all of them carry `UNAVAILABLE`, so the request as a whole can be retried.
#[must_use]
pub fn only_unavailable(response: &Response) -> bool {
    !response.errors.is_empty() && response.errors.iter().all(|e| code_of(e) == Some(ErrorCode::Unavailable.as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn internal_errors_are_censored() {
        let e = OrmError::invariant("SELECT secret FROM t");
        let g = to_graphql_error(&e);
        assert_eq!(g.message, "internal error");
        assert_eq!(code_of(&g), Some("INTERNAL"));
    }

    #[test]
    fn a_response_has_data_once_executed() {
        let before = Response::from_errors(vec![coded("bad", ErrorCode::BadUserInput)]);
        assert_eq!(
            serde_json::to_value(&before).unwrap(),
            serde_json::json!({"errors": [{"message": "bad", "extensions": {"code": "BAD_USER_INPUT"}}]})
        );
        let nulled = Response { executed: true, ..before };
        assert_eq!(serde_json::to_value(&nulled).unwrap()["data"], serde_json::Value::Null);
    }
}
