//! The REST endpoints of the small-business design, authenticated and scoped exactly like
//! GraphQL (same token check, same tenant catalog, same access): `POST /api/leads/tag`,
//! `POST /api/leads/route`, `GET /api/reports/summary`, `POST /api/social/events`. Errors have
//! the GraphQL shape: `{"errors": [{"message", "extensions": {"code"}}]}`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use crm_engines::ingest::{Ingest, SocialInput};
use crm_engines::routing::RouteLeads;
use crm_engines::tagging::Retag;
use crm_model::ErrorCode;
use crm_orm::{Access, OrmError, Store};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::http::{Outcome, gql_error};
use crate::{Admitted, AppState};

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::LimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(e: &OrmError) -> Response {
    let code = e.code();
    if code == ErrorCode::Internal {
        tracing::error!(error = %e, "internal error in a REST endpoint");
    }
    gql_error(status_of(code), code, &e.client_message())
}

fn ok(v: Json) -> Response {
    let mut resp = (StatusCode::OK, axum::Json(v)).into_response();
    resp.extensions_mut().insert(Outcome("OK".to_owned()));
    resp
}

/// The authenticated caller's tenant store and access: an extractor, run (after
/// [`Admitted`]) before the body is read.
pub(crate) struct Caller {
    store: Store,
    access: Access,
    /// The tenant's place, held while the request works.
    _place: crate::admission::Admitted,
}

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let Admitted { principal, place } =
            <Admitted as axum::extract::FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        let s = &state.0;
        let (store, access) = s.api.prepare(&s.store, &principal).await.map_err(|e| error(&e))?;
        Ok(Caller { store, access, _place: place })
    }
}

/// The JSON body of a POST endpoint: empty counts as `{}`; a non-empty body must be declared as
/// JSON (see [`crate::http::declares_json`]).
#[allow(clippy::result_large_err)] // the error is the response itself, returned once per request
fn body<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_value(json!({})).map_err(|e| gql_error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, &e.to_string()));
    }
    if !crate::http::declares_json(headers) {
        return Err(crate::http::not_json());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| gql_error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, &format!("bad request body: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TagBody {
    #[serde(default, rename = "where")]
    filter: Option<Json>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    #[serde(default, rename = "where")]
    filter: Option<Json>,
    #[serde(default)]
    reassign: bool,
    #[serde(default)]
    at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SocialBody {
    events: Vec<SocialInput>,
}

/// `POST /api/leads/tag` `{"where": LeadWhere?}`: applies the tag rules to the matching leads
/// the caller may update.
pub(crate) async fn tag(Caller { store, access, _place }: Caller, headers: HeaderMap, bytes: axum::body::Bytes) -> Response {
    let b: TagBody = match body(&headers, &bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let work = Retag { filter: b.filter.unwrap_or_else(|| json!({})) };
    match store.transaction(&access, &work).await {
        Ok(o) => serde_json::to_value(o).map_or_else(|e| error(&OrmError::invariant(e.to_string())), ok),
        Err(e) => error(&e),
    }
}

/// `POST /api/leads/route` `{"where": LeadWhere?, "reassign": bool?, "at": instant?}`: routes the
/// matching leads the caller may update.
pub(crate) async fn route(Caller { store, access, _place }: Caller, headers: HeaderMap, bytes: axum::body::Bytes) -> Response {
    let b: RouteBody = match body(&headers, &bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let work = RouteLeads { filter: b.filter.unwrap_or_else(|| json!({})), reassign: b.reassign, at: b.at };
    match store.transaction(&access, &work).await {
        Ok(d) => ok(json!({ "decisions": d })),
        Err(e) => error(&e),
    }
}

/// `GET /api/reports/summary`.
pub(crate) async fn summary(Caller { store, access, _place }: Caller) -> Response {
    match crm_engines::reports::summary(&store, &access).await {
        Ok(v) => ok(v),
        Err(e) => error(&e),
    }
}

/// `POST /api/social/events` `{"events": [SocialEventInput]}`.
pub(crate) async fn social(Caller { store, access, _place }: Caller, headers: HeaderMap, bytes: axum::body::Bytes) -> Response {
    let b: SocialBody = match body(&headers, &bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match store.transaction(&access, &Ingest { events: b.events }).await {
        Ok(o) => serde_json::to_value(o).map_or_else(|e| error(&OrmError::invariant(e.to_string())), ok),
        Err(e) => error(&e),
    }
}
