//! HTTP plumbing around the routes: request ids, the request span, the timeout, the panic
//! catcher, CORS, metrics recording, GraphQL-shaped error bodies and the GraphiQL page.

use std::any::Any;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, body::Body};
use base64::Engine as _;
use crm_model::ErrorCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Span;

use crate::metrics::ANONYMOUS;
use crate::{AppState, ServerError};

/// The request id header: echoed when the client sent a usable one, else a new UUIDv7.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-sent request id kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The outcome label of a response for the metrics (an error code, `ok`, `timeout`); set as a
/// response extension by whoever knows it.
#[derive(Debug, Clone)]
pub(crate) struct Outcome(pub(crate) String);

/// Where the GraphQL handler leaves the operation name for the metrics layer, so that a request
/// cut off by the timeout still counts under its operation.
#[derive(Debug, Clone, Default)]
pub(crate) struct OperationSlot(Arc<OnceLock<String>>);

impl OperationSlot {
    pub(crate) fn set(&self, operation: String) {
        let _ = self.0.set(operation);
    }

    fn get(&self) -> &str {
        self.0.get().map_or(ANONYMOUS, String::as_str)
    }
}

/// The request id of the current request (a request extension).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A GraphQL-shaped error response: `{"errors": [{"message", "extensions": {"code"}}]}`.
pub(crate) fn gql_error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    error_response(status, code.as_str(), message)
}

/// A response with status `status` and one error in the GraphQL shape with `extensions.code`
/// `code`; an `UNAVAILABLE` one also says when to retry.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let mut resp = (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))).into_response();
    if code == ErrorCode::Unavailable.as_str() {
        retry_after(&mut resp);
    }
    resp.extensions_mut().insert(Outcome(code.to_owned()));
    resp
}

/// Seconds a client should wait before retrying an unavailable answer.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;

/// Marks `resp` as retryable: `Retry-After` (see [`RETRY_AFTER_SECS`]).
pub(crate) fn retry_after(resp: &mut Response) {
    resp.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(RETRY_AFTER_SECS));
}

/// Whether the request declares its body as JSON (`application/json`, or the GraphQL-over-HTTP
/// `application/graphql-response+json`; parameters such as `charset` allowed). Anything else is
/// refused before the body is read: a browser may send `text/plain` or a form across origins
/// without a preflight, so only JSON bodies are ever acted on.
pub(crate) fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let media = v.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json") || media.eq_ignore_ascii_case("application/graphql-response+json")
}

/// The answer to a body that is not declared as JSON: 415 with code `BAD_USER_INPUT`.
pub(crate) fn not_json() -> Response {
    gql_error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::BadUserInput,
        "the request body must be JSON, sent with `content-type: application/json`",
    )
}

fn usable_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_REQUEST_ID_LEN && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:;=+/@".contains(c))
}

/// Gives every request an `x-request-id` (the client's when usable: at most 128 characters of
/// letters, digits and `-_.:;=+/@`; else a new UUIDv7) and puts it on the response.
pub(crate) async fn request_id(mut req: Request, next: Next) -> Response {
    let id = match req.headers().get(&X_REQUEST_ID).filter(|v| usable_request_id(v)) {
        Some(v) => v.clone(),
        None => match HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()) {
            Ok(v) => v,
            Err(_) => HeaderValue::from_static("unknown"),
        },
    };
    req.headers_mut().insert(X_REQUEST_ID, id.clone());
    req.extensions_mut().insert(RequestId(id.to_str().unwrap_or_default().to_owned()));
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(X_REQUEST_ID, id);
    resp
}

/// The span every log line of a request is written in: the request id, method, path, and the
/// GraphQL operation once known.
pub(crate) fn make_span(req: &axum::http::Request<Body>) -> Span {
    let id = req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        route = %route,
        // A signed file URL is a credential: its token is not logged.
        path = %if req.uri().path().starts_with("/files/") { "/files/<token>" } else { req.uri().path() },
        operation = tracing::field::Empty,
        org = tracing::field::Empty,
        sub = tracing::field::Empty,
    )
}

/// The access log: one line per request when it is answered, in the request's span (id, method,
/// route, operation, and the tenant and user once authenticated), with the status, the outcome
/// (`ok`, an error code, `timeout`) and the latency.
pub(crate) fn log_response(resp: &Response, latency: Duration, _span: &Span) {
    let outcome = resp.extensions().get::<Outcome>().map_or(if resp.status().is_success() { "ok" } else { "error" }, |o| o.0.as_str());
    tracing::info!(status = resp.status().as_u16(), outcome, latency_ms = latency.as_secs_f64() * 1000.0, "request answered");
}

/// Cuts a request off after the configured time: 503 with code `LIMIT_EXCEEDED`. The handler's
/// future is dropped, so an unfinished database transaction rolls back; a mutation may still
/// have committed just before the limit.
pub(crate) async fn timeout(State(limit): State<Option<Duration>>, req: Request, next: Next) -> Response {
    let Some(limit) = limit else { return next.run(req).await };
    if let Ok(resp) = tokio::time::timeout(limit, next.run(req)).await {
        resp
    } else {
        tracing::warn!(limit_secs = limit.as_secs_f64(), "request timed out");
        let mut resp = gql_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::LimitExceeded,
            &format!("the request took longer than the server's limit of {} s", limit.as_secs_f64()),
        );
        resp.extensions_mut().insert(Outcome("timeout".to_owned()));
        resp
    }
}

/// The answer to a panic in a handler: 500 with code `INTERNAL` and no detail (the panic is
/// logged, in the request's span).
#[allow(clippy::needless_pass_by_value)] // the signature tower-http's panic catcher calls
pub(crate) fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| err.downcast_ref::<String>().cloned());
    tracing::error!(panic = detail.as_deref().unwrap_or("(not a string)"), "request handler panicked");
    gql_error(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error")
}

/// The CORS layer for `origins` (validated by [`crate::Config::validate`]); `None` without origins.
pub(crate) fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, ServerError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| ServerError::Config(format!("CORS origin `{o}` is not a header value"))))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("x-org-id"), X_REQUEST_ID])
            .expose_headers([X_REQUEST_ID])
            .max_age(Duration::from_mins(10)),
    ))
}

/// Records every request in the metrics: the HTTP counter, and for `POST /graphql` the GraphQL
/// counter and latency histogram under the operation the handler names in its [`OperationSlot`].
pub(crate) async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = req.method().clone();
    let slot = (route.as_deref() == Some("/graphql") && method == Method::POST).then(|| {
        let slot = OperationSlot::default();
        req.extensions_mut().insert(slot.clone());
        slot
    });
    let metrics = state.metrics();
    let _in_flight = metrics.start();
    let started = Instant::now();
    // The handler runs on this task, so the store's statements are counted here.
    let (resp, db) = crm_orm::count_db_use(next.run(req)).await;
    let elapsed = started.elapsed();
    metrics.record_http(route.as_deref(), &method, resp.status());
    if let Some(slot) = slot {
        let outcome = match resp.extensions().get::<Outcome>() {
            Some(o) => o.0.clone(),
            None if resp.status().is_success() => "ok".to_owned(),
            None => format!("{}xx", resp.status().as_u16() / 100),
        };
        metrics.record_graphql(slot.get(), &outcome, elapsed, db);
    }
    resp
}

const GRAPHIQL_SCRIPT: &str = r#"
(function () {
  var url = window.location.origin + window.location.pathname;
  var help = [
    '# crm-platform GraphQL API.',
    '#',
    '# Every request needs a bearer token: open the Headers tab below and',
    '# replace <token> in the Authorization header (development mode:',
    '# `crm-server dev-token`). Add "X-Org-Id" there to pick a tenant.',
    '# Headers are not saved in the browser.',
    '',
    'query Leads {',
    '  leads(first: 10) {',
    '    name',
    '  }',
    '}',
    ''
  ].join('\n');
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  var initial = JSON.stringify({ Authorization: 'Bearer <token>' }, null, 2);
  var current = '';
  // The schema is loaded with the headers' token: once one is entered (or changed), a new
  // fetcher makes GraphiQL introspect again, so the docs and completion appear without a reload.
  function render(headers) {
    var parsed = {};
    try { parsed = JSON.parse(headers || '{}'); } catch (e) { return; }
    var token = parsed.Authorization || parsed.authorization || '';
    if (token === current) { return; }
    current = token;
    var entered = token !== '' && token.indexOf('<token>') < 0;
    root.render(React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: url, headers: entered ? parsed : {} }),
      // No schema (and no introspection, which would fail) until a token is entered.
      schema: entered ? undefined : null,
      defaultQuery: help,
      defaultHeaders: initial,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
      onEditHeaders: render
    }));
  }
  render(initial);
})();
"#;

/// The GraphiQL page: GraphiQL 3.8.3 and React 18.2.0 served from the binary ([`GRAPHIQL_ASSETS`],
/// so an air-gapped install has it), pinned by subresource integrity all the same; the inline
/// script is allowed by its hash in the page's Content-Security-Policy.
static GRAPHIQL_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>crm-platform GraphiQL</title>
<link rel="stylesheet" href="/graphql/assets/graphiql.min.css" integrity="sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM" crossorigin="anonymous">
<style>body {{ margin: 0; height: 100vh; overflow: hidden; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL (needs JavaScript)…</div>
<script src="/graphql/assets/react.production.min.js" integrity="sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8" crossorigin="anonymous"></script>
<script src="/graphql/assets/react-dom.production.min.js" integrity="sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh" crossorigin="anonymous"></script>
<script src="/graphql/assets/graphiql.min.js" integrity="sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie" crossorigin="anonymous"></script>
<script>{GRAPHIQL_SCRIPT}</script>
</body>
</html>
"#
    )
});

static GRAPHIQL_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(GRAPHIQL_SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; script-src 'self' 'sha256-{hash}'; style-src 'self' 'unsafe-inline'; \
         font-src data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// The files of the GraphiQL page, embedded (`assets/graphiql/`, unchanged from their npm
/// packages; their licenses in `LICENSES` there): name, content type, bytes.
const GRAPHIQL_ASSETS: &[(&str, &str, &[u8])] = &[
    ("react.production.min.js", "text/javascript; charset=utf-8", include_bytes!("../assets/graphiql/react.production.min.js")),
    ("react-dom.production.min.js", "text/javascript; charset=utf-8", include_bytes!("../assets/graphiql/react-dom.production.min.js")),
    ("graphiql.min.js", "text/javascript; charset=utf-8", include_bytes!("../assets/graphiql/graphiql.min.js")),
    ("graphiql.min.css", "text/css; charset=utf-8", include_bytes!("../assets/graphiql/graphiql.min.css")),
    ("LICENSES", "text/plain; charset=utf-8", include_bytes!("../assets/graphiql/LICENSES")),
];

/// `GET /graphql/assets/{name}`: a file of the GraphiQL page, cached for a year (its name changes
/// with its version).
pub(crate) async fn graphiql_asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let Some((_, content_type, bytes)) = GRAPHIQL_ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut resp = (*bytes).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// `GET /graphql`: the GraphiQL IDE.
pub(crate) fn graphiql() -> Response {
    let mut resp = Html(GRAPHIQL_PAGE.as_str()).into_response();
    let headers = resp.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&GRAPHIQL_CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}
