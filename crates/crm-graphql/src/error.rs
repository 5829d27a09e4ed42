//! The one conversion point from store errors to GraphQL errors, and the classification of the
//! errors async-graphql raises itself (parse, validation, limits). No SQL or internal text ever
//! reaches a client: internal errors are logged here and replaced by a generic message.

use async_graphql::{ErrorExtensionValues, ServerError};
use crm_model::ErrorCode;
use crm_orm::OrmError;

/// Errors building a schema from a Catalog.
#[derive(Debug, thiserror::Error)]
pub enum GraphqlError {
    /// The generated schema was refused by async-graphql (a name the Catalog let through that
    /// GraphQL does not accept).
    #[error("the generated schema is invalid: {0}")]
    Schema(String),
}

/// Converts a store error into a client error with a stable `extensions.code` (and `field` for
/// input errors). Internal errors are logged with their detail and returned as `internal error`.
#[must_use]
pub fn to_graphql_error(e: &OrmError) -> async_graphql::Error {
    let code = e.code();
    if code == ErrorCode::Internal {
        tracing::error!(error = %e, "internal error while resolving a GraphQL field");
    }
    let mut err = async_graphql::Error::new(e.client_message());
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code.as_str());
    if let Some(f) = e.field() {
        ext.set("field", f);
    }
    if e.commit_unknown() {
        // The client cannot tell otherwise whether its mutation took effect.
        ext.set("committed", "unknown");
    }
    err.extensions = Some(ext);
    err
}

/// Gives every error of a response a code. Resolver errors already carry one; errors raised by
/// async-graphql before execution (syntax, validation, depth and complexity limits) get
/// `BAD_USER_INPUT` or `LIMIT_EXCEEDED`; anything else raised during execution is internal and
/// its text is replaced.
pub fn classify(errors: &mut [ServerError]) {
    for e in errors {
        let has_code = e.extensions.as_ref().is_some_and(|x| x.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if !e.path.is_empty() {
            tracing::error!(error = %e.message, "unclassified execution error");
            "internal error".clone_into(&mut e.message);
            ErrorCode::Internal
        } else if is_limit(&e.message) {
            ErrorCode::LimitExceeded
        } else {
            ErrorCode::BadUserInput
        };
        e.extensions.get_or_insert_with(ErrorExtensionValues::default).set("code", code.as_str());
    }
}

/// Whether `response` failed only because the database (or a dependency) is unavailable: it has
/// errors and all of them carry `UNAVAILABLE`, so the request as a whole can be retried.
#[must_use]
pub fn only_unavailable(response: &async_graphql::Response) -> bool {
    !response.errors.is_empty()
        && response.errors.iter().all(|e| {
            let code = e.extensions.as_ref().and_then(|x| x.get("code"));
            matches!(code, Some(async_graphql::Value::String(c)) if c == ErrorCode::Unavailable.as_str())
        })
}

fn is_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["too deep", "too complex", "recursion depth", "too many directives", "too large"].iter().any(|p| m.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_censored() {
        let e = OrmError::invariant("SELECT secret FROM t");
        let g = to_graphql_error(&e);
        assert_eq!(g.message, "internal error");
    }

    #[test]
    fn request_errors_are_classified() {
        let mut errs =
            vec![ServerError::new("Query is nested too deep.", None), ServerError::new("Unknown field \"x\" on type \"Query\".", None)];
        classify(&mut errs);
        let codes: Vec<String> = errs
            .iter()
            .map(|e| e.extensions.as_ref().and_then(|x| x.get("code")).map(std::string::ToString::to_string).unwrap_or_default())
            .collect();
        assert_eq!(codes, vec!["\"LIMIT_EXCEEDED\"", "\"BAD_USER_INPUT\""]);
    }
}
