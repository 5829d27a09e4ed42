//! The crm-platform server: configuration, CLI and HTTP. Also a library, so the service can be
//! embedded ([`App`], [`run`]) and tested on port 0.
//!
//! Routes: `POST /graphql` (JSON in/out, bearer token required), `GET /graphql` (GraphiQL),
//! `/healthz`, `/readyz`, `/metrics` (Prometheus text; on its own listener with
//! `--metrics-listen`). Every response carries an `x-request-id`; every log line of a request is
//! written in its span. Layers, outermost first: request id, trace span, metrics, CORS (when
//! configured), panic catcher (500 `INTERNAL`), timeout (503 `LIMIT_EXCEEDED`), body limit
//! (413 `LIMIT_EXCEEDED`).
#![forbid(unsafe_code)]

mod admission;
mod attachments;
pub mod authentication;
mod cli;
mod config;
mod files;
mod http;
mod live;
pub mod metrics;
mod rest;
pub mod seed;
pub mod transfer;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router, middleware};
use crm_graphql::{Api, Request};
use crm_model::standard::standard_models;
use crm_model::{Catalog, ModelDef};
use crm_orm::{OrmError, Principal, Store, StoreOptions};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

use crate::authentication::{AuthError, Authenticator, DevKey, Oidc};
pub use crate::cli::Server;
pub use crate::config::{BODY_LIMIT, Config, DEFAULT_LISTEN, LogFormat, REQUEST_TIMEOUT_SECS, redact_url};
use crate::http::{OperationSlot, Outcome, gql_error};
pub use crate::http::{RequestId, X_REQUEST_ID};
use crate::metrics::Metrics;

/// Server start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// IO (data directory, listener).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The store (database, migrations, metadata).
    #[error(transparent)]
    Orm(#[from] OrmError),
    /// The database could not be reached or used at start (the address with its password hidden).
    #[error("database {url}: {reason}")]
    Database {
        /// The database URL, its password replaced by `***`.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Metadata did not resolve.
    #[error(transparent)]
    Metadata(#[from] crm_model::MetadataError),
    /// A configuration the server refuses to run with.
    #[error("configuration: {0}")]
    Config(String),
}

/// Connects the store with the standard catalog (and the `--models` files).
///
/// # Errors
/// As [`connect_with`].
pub async fn connect(config: &Config) -> Result<Store, ServerError> {
    connect_with(config, &[]).await
}

/// Connects the store serving [`catalog`]`(config, models)`, with the CRM engines installed.
///
/// # Errors
/// A model that does not resolve or a `--models` file that cannot be read, a bad URL, an
/// unreachable database, a role that bypasses row-level security.
pub async fn connect_with(config: &Config, models: &[ModelDef]) -> Result<Store, ServerError> {
    let catalog = Arc::new(catalog(config, models)?);
    let url = config.resolved_database_url()?;
    let opts = StoreOptions {
        max_connections: config.db_max_connections,
        limits: crm_orm::Limits { default_page: config.default_page_size, max_page: config.max_page_size },
        acquire_timeout: std::time::Duration::from_millis(config.db_acquire_timeout_ms.max(1)),
        statement_timeout: (config.db_statement_timeout_ms > 0).then(|| std::time::Duration::from_millis(config.db_statement_timeout_ms)),
    };
    // Said before the first connection, so a database that does not answer is never silence;
    // the pool gives up after the acquire timeout and the error names the address.
    let shown = redact_url(&url);
    tracing::info!(database = %shown, "connecting to the database");
    let wait = opts.acquire_timeout;
    let store = match tokio::time::timeout(wait + Duration::from_secs(1), Store::connect(&url, catalog, opts)).await {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => return Err(ServerError::Database { url: shown, reason: e.to_string() }),
        Err(_) => return Err(ServerError::Database { url: shown, reason: format!("no answer within {} ms", wait.as_millis()) }),
    };
    // The CRM engines' write hook (rule validation, tagging, routing) runs in every write.
    Ok(crm_engines::Engines::install_with(&store, config.egress()?))
}

/// The models the server serves every tenant: the standard ones, then `models` (declared in Rust
/// by the program embedding the server), then the `*.model.json` files of `--models` in the order
/// of their names. Each file holds one model in the JSON form of [`ModelDef`] (the form the
/// runtime metadata API takes).
///
/// # Errors
/// A file that cannot be read or is not a model (the error names the file), a model that does
/// not resolve (a name taken twice, a relation to a model that does not exist, …).
pub fn catalog(config: &Config, models: &[ModelDef]) -> Result<Catalog, ServerError> {
    let mut defs = standard_models();
    defs.extend_from_slice(models);
    if let Some(dir) = &config.models {
        let read_dir = std::fs::read_dir(dir).map_err(|e| ServerError::Config(format!("--models {}: {e}", dir.display())))?;
        let mut files: Vec<std::path::PathBuf> = read_dir
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".model.json")))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
            let def: ModelDef =
                serde_json::from_str(&text).map_err(|e| ServerError::Config(format!("{}: not a model: {e}", path.display())))?;
            tracing::info!(model = %def.name, file = %path.display(), "model from --models");
            defs.push(def);
        }
    }
    Ok(crm_model::resolve(&defs)?)
}

/// Sets up logging to standard output in `format`, at the level `RUST_LOG` gives (default
/// `info`). Does nothing when a subscriber is already installed.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file or collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = match format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).try_init(),
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(true).with_span_list(true).try_init(),
    };
}

/// HTTP settings taken from the configuration.
struct HttpSettings {
    body_limit: usize,
    timeout: Option<Duration>,
    cors: Option<CorsLayer>,
    /// `/metrics` on the main router (no separate metrics listener configured).
    metrics_on_main: bool,
}

struct Shared {
    store: Arc<Store>,
    api: Arc<Api>,
    auth: Authenticator,
    http: HttpSettings,
    metrics: Metrics,
    /// Per-tenant admission of requests (fairness between tenants).
    admission: admission::Admission,
    routes: Option<Router<AppState>>,
    /// The tenants' live change feeds (subscriptions).
    feeds: Arc<crm_engines::live::Feeds>,
    /// Event workers to run while serving, if any.
    workers: Option<crm_engines::WorkerOptions>,
    /// Attachments' storage and URL signing.
    files: Arc<crm_engines::files::Files>,
}

/// What the HTTP handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `store` with the authentication, limits and HTTP settings of `config`: OpenID
    /// provider discovery when an issuer is configured, else development mode (refused on a
    /// non-loopback address unless allowed).
    ///
    /// # Errors
    /// Incomplete OIDC settings, an unreachable provider, development mode exposed, an invalid
    /// CORS origin.
    pub async fn new(store: Arc<Store>, config: &Config) -> Result<AppState, ServerError> {
        AppState::with_routes(store, config, None).await
    }

    async fn with_routes(store: Arc<Store>, config: &Config, routes: Option<Router<AppState>>) -> Result<AppState, ServerError> {
        config.check()?;
        let http = HttpSettings {
            body_limit: config.body_limit,
            timeout: config.request_timeout(),
            cors: http::cors_layer(&config.cors_origins)?,
            metrics_on_main: config.metrics_listen.is_none(),
        };
        // `check` refused what cannot run; the settings are the checked ones.
        let auth = if let Some(settings) = config.oidc()? {
            Authenticator::Oidc(Arc::new(Oidc::discover(settings).await.map_err(ServerError::Config)?))
        } else {
            tracing::warn!(
                "DEVELOPMENT MODE: no OpenID provider configured; the server accepts tokens it signs itself (`crm-server dev-token`). Never use this in production"
            );
            Authenticator::Dev(DevKey::load_or_create(&config.data_dir)?)
        };
        let files = Arc::new(config.files()?);
        let api = Arc::new(
            Api::new(config.schema_options(), config.policy())
                .with_metadata_refresh(std::time::Duration::from_millis(config.metadata_refresh_ms))
                .with_schema_capacity(config.max_tenant_schemas)
                .with_files(Arc::clone(&files)),
        );
        let egress = config.egress()?;
        let workers = config.workers.then(|| crm_engines::WorkerOptions {
            poll: Duration::from_millis(config.worker_poll_ms.max(10)),
            orgs: config.worker_orgs.clone(),
            delivery: crm_engines::webhooks::DeliveryOptions { egress, ..Default::default() },
            retention: (config.event_retention_hours > 0).then(|| Duration::from_hours(config.event_retention_hours)),
            relay: config.nats_url.clone().map(|url| crm_engines::relay::RelayOptions {
                url,
                stream: config.nats_stream.clone(),
                prefix: config.nats_subject_prefix.clone(),
                duplicate_window: Duration::from_secs(config.nats_duplicate_window_secs.max(1)),
                ..crm_engines::relay::RelayOptions::default()
            }),
            files: Some(Arc::clone(&files)),
            ..crm_engines::WorkerOptions::default()
        });
        let admission = admission::Admission::new(config.tenant_concurrency);
        Ok(AppState(Arc::new(Shared {
            store,
            api,
            auth,
            http,
            metrics: Metrics::default(),
            admission,
            routes,
            feeds: Arc::default(),
            workers,
            files,
        })))
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<Store> {
        &self.0.store
    }

    /// The request metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The HTTP service: [`app`] of this state.
    pub fn router(&self) -> Router {
        app(self.clone())
    }
}

/// Builds an [`AppState`]: connects and migrates the database unless given a store, sets up
/// authentication, and optionally adds routes of the embedding program (served under the same
/// layers).
///
/// ```no_run
/// # async fn demo() -> Result<(), crm_server::ServerError> {
/// let config = crm_server::Config { data_dir: "/tmp/crm".into(), ..Default::default() };
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let state = crm_server::App::new(config).build().await?;
/// crm_server::run(state, listener, std::future::pending()).await
/// # }
/// ```
pub struct App {
    config: Config,
    models: Vec<ModelDef>,
    store: Option<Arc<Store>>,
    migrate: bool,
    routes: Option<Router<AppState>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("config", &self.config).field("migrate", &self.migrate).finish_non_exhaustive()
    }
}

impl App {
    /// A builder for `config`.
    #[must_use]
    pub fn new(config: Config) -> App {
        App { config, models: Vec::new(), store: None, migrate: true, routes: None }
    }

    /// Adds models declared in Rust, served next to the standard ones (see [`catalog`]). Not
    /// used when given a store: the store's catalog is served.
    #[must_use]
    pub fn models(mut self, models: impl IntoIterator<Item = ModelDef>) -> App {
        self.models.extend(models);
        self
    }

    /// Uses `store` instead of connecting to the configured database.
    #[must_use]
    pub fn store(mut self, store: Arc<Store>) -> App {
        self.store = Some(store);
        self
    }

    /// Whether [`App::build`] applies migrations (default: yes; they are idempotent).
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> App {
        self.migrate = migrate;
        self
    }

    /// Extra routes served next to the server's own, under the same layers (request id, timeout,
    /// metrics…). They must not overlap the server's routes.
    #[must_use]
    pub fn routes(mut self, routes: Router<AppState>) -> App {
        self.routes = Some(routes);
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connects (unless given a store), migrates (unless told not to) and builds the state.
    ///
    /// # Errors
    /// See [`connect`] and [`AppState::new`].
    pub async fn build(self) -> Result<AppState, ServerError> {
        let store = match self.store {
            Some(e) => e,
            None => Arc::new(connect_with(&self.config, &self.models).await?),
        };
        if self.migrate {
            store.migrate().await?;
        }
        AppState::with_routes(store, &self.config, self.routes).await
    }

    /// Builds, then serves on `listener` (and on `--metrics-listen` when configured) until
    /// `shutdown` completes.
    ///
    /// # Errors
    /// See [`App::build`]; a metrics address that cannot be bound.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let metrics_listen = self.config.metrics_listen;
        let state = self.build().await?;
        let metrics_listener = match metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        serve(state, listener, metrics_listener, shutdown).await
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database: a load balancer gets its answer within it,
/// whatever the database does.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match tokio::time::timeout(READY_TIMEOUT, state.0.store.ready()).await {
        Ok(Ok(true)) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Ok(false)) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "migrations pending" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database unreachable" })))
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database not answering" })))
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut text = state.metrics().render();
    let schemas = state.0.api.cache().stats();
    text.push_str("# HELP crm_schema_builds_total GraphQL schemas built (a tenant's, at a metadata version, or the shared one).\n# TYPE crm_schema_builds_total counter\n");
    text.push_str(&format!("crm_schema_builds_total {}\n", schemas.builds));
    text.push_str(
        "# HELP crm_schema_build_seconds_total Time spent building GraphQL schemas.\n# TYPE crm_schema_build_seconds_total counter\n",
    );
    text.push_str(&format!("crm_schema_build_seconds_total {:.6}\n", Duration::from_micros(schemas.build_micros).as_secs_f64()));
    text.push_str(
        "# HELP crm_schema_cache_hits_total Requests served by a schema already built.\n# TYPE crm_schema_cache_hits_total counter\n",
    );
    text.push_str(&format!("crm_schema_cache_hits_total {}\n", schemas.hits));
    text.push_str("# HELP crm_schema_cache_evictions_total Tenant schemas dropped for room (--max-tenant-schemas).\n# TYPE crm_schema_cache_evictions_total counter\n");
    text.push_str(&format!("crm_schema_cache_evictions_total {}\n", schemas.evictions));
    text.push_str("# HELP crm_schema_cache_entries GraphQL schemas cached now.\n# TYPE crm_schema_cache_entries gauge\n");
    text.push_str(&format!("crm_schema_cache_entries {}\n", schemas.entries));
    text.push_str(
        "# HELP crm_schema_cache_bytes Estimated bytes the cached tenant schemas and catalogs hold beyond the shared schema.\n# TYPE crm_schema_cache_bytes gauge\n",
    );
    text.push_str(&format!("crm_schema_cache_bytes {}\n", schemas.bytes));
    text.push_str("# HELP crm_db_statement_timeouts_total Statements cancelled for running past --db-statement-timeout-ms.\n# TYPE crm_db_statement_timeouts_total counter\n");
    text.push_str(&format!("crm_db_statement_timeouts_total {}\n", crm_orm::statement_timeouts()));
    text.push_str(&worker_metrics(&crm_engines::stats::snapshot()));
    let (size, idle) = state.0.store.pool_stats();
    text.push_str("# HELP crm_db_pool_connections Database connections open.\n# TYPE crm_db_pool_connections gauge\n");
    text.push_str(&format!("crm_db_pool_connections {size}\n"));
    text.push_str("# HELP crm_db_pool_idle_connections Open database connections not in use.\n# TYPE crm_db_pool_idle_connections gauge\n");
    text.push_str(&format!("crm_db_pool_idle_connections {idle}\n"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// The workers' series (see `crm_engines::stats`), in the Prometheus text format.
fn worker_metrics(s: &crm_engines::stats::Snapshot) -> String {
    let mut text = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in rows {
            text.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    let per = |f: &dyn Fn(&crm_engines::stats::ConsumerSnapshot) -> String| {
        s.consumers.iter().map(|c| (format!("{{consumer=\"{}\"}}", c.name), f(c))).collect::<Vec<_>>()
    };
    family(
        "crm_outbox_events_handled_total",
        "counter",
        "Outbox events a consumer handled (its effects and position committed).",
        per(&|c| c.handled.to_string()),
    );
    family(
        "crm_outbox_events_failed_total",
        "counter",
        "Attempts at outbox events that failed (retried, up to 3 times).",
        per(&|c| c.failed.to_string()),
    );
    family(
        "crm_outbox_events_passed_over_total",
        "counter",
        "Outbox events a consumer passed over after repeated failures.",
        per(&|c| c.passed_over.to_string()),
    );
    family(
        "crm_outbox_lag_events",
        "gauge",
        "Outbox events a consumer has not handled yet (measured every few seconds while it works).",
        per(&|c| c.lag_events.to_string()),
    );
    family(
        "crm_outbox_lag_seconds",
        "gauge",
        "Age of the oldest outbox event a consumer has not handled yet.",
        per(&|c| format!("{:.3}", c.lag_seconds)),
    );
    family(
        "crm_webhook_deliveries_total",
        "counter",
        "Webhook delivery attempts by outcome: delivered (2xx), retried (failed, tried again later), given_up.",
        vec![
            ("{outcome=\"delivered\"}".to_owned(), s.delivered.to_string()),
            ("{outcome=\"retried\"}".to_owned(), s.retried.to_string()),
            ("{outcome=\"given_up\"}".to_owned(), s.given_up.to_string()),
        ],
    );
    family(
        "crm_retention_deleted_total",
        "counter",
        "Rows retention deleted: processed outbox events and finished webhook deliveries older than --event-retention-hours.",
        vec![
            ("{table=\"outbox\"}".to_owned(), s.events_purged.to_string()),
            ("{table=\"deliveries\"}".to_owned(), s.deliveries_purged.to_string()),
        ],
    );
    text
}

/// The outcome label of an authentication failure (the code its response carries).
pub(crate) fn auth_outcome(e: &AuthError) -> &'static str {
    e.code().as_str()
}

/// The authenticated caller of a request: an extractor that runs before the body is read (axum
/// runs extractors of the request's parts first). Without valid credentials the request is
/// answered with the authentication error (401, or 403 for a tenant the token grants nothing
/// in), and nothing else of it is looked at.
pub struct Authenticated(pub Principal);

impl axum::extract::FromRequestParts<AppState> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let principal = state.0.auth.authenticate(&parts.headers).await;
        if let Ok(p) = &principal {
            // The access log names the tenant and the user of every authenticated request.
            tracing::Span::current().record("org", tracing::field::display(&p.org_id)).record("sub", tracing::field::display(&p.sub));
        }
        principal.map(Authenticated).map_err(|e| {
            let outcome = auth_outcome(&e);
            let mut resp = e.into_response();
            resp.extensions_mut().insert(Outcome(outcome.to_owned()));
            resp
        })
    }
}

/// An authenticated caller admitted to work: the tenant has a place free (see
/// [`admission`]). A request of a tenant at its limit is answered 429 `LIMIT_EXCEEDED` with
/// `Retry-After`, before its body is read; the place is held until this value is dropped, so a
/// handler keeps it whole for the request's work (a closure capturing only `principal` would free
/// the place at once).
pub struct Admitted {
    /// The caller.
    pub principal: Principal,
    /// The tenant's place, held while this value lives.
    pub(crate) place: admission::Admitted,
}

impl axum::extract::FromRequestParts<AppState> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        match state.0.admission.admit(&principal.org_id) {
            admission::Admitted::Full { limit } => {
                state.0.metrics.throttled();
                let mut resp = gql_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    crm_model::ErrorCode::LimitExceeded,
                    &format!("this tenant has {limit} requests working already (the limit); retry later"),
                );
                http::retry_after(&mut resp);
                Err(resp)
            }
            place @ admission::Admitted::Yes(_) => Ok(Admitted { principal, place }),
        }
    }
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions (graphql-transport-ws), else GraphiQL.
async fn graphql_get(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let upgrade = req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return http::graphiql();
    }
    let (mut parts, _) = req.into_parts();
    match <axum::extract::ws::WebSocketUpgrade as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws.protocols([live::PROTOCOL]).on_upgrade(move |socket| live::connection(state, socket)),
        Err(rejection) => rejection.into_response(),
    }
}

async fn graphql(
    State(state): State<AppState>,
    Admitted { principal, place: _place }: Admitted,
    slot: Option<Extension<OperationSlot>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let state = &state.0;
    // Only an authenticated request's body is read at all, and only when declared as JSON.
    if !http::declares_json(&headers) {
        return http::not_json();
    }
    let Ok(bytes) = axum::body::to_bytes(body, state.http.body_limit).await else {
        return gql_error(StatusCode::PAYLOAD_TOO_LARGE, crm_model::ErrorCode::LimitExceeded, "the request body is too large");
    };
    let request: Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return gql_error(
                StatusCode::BAD_REQUEST,
                crm_model::ErrorCode::BadUserInput,
                &format!("expected a GraphQL request as JSON: {e}"),
            );
        }
    };
    let operation = metrics::operation_label(request.operation_name.as_deref(), &request.query);
    tracing::Span::current().record("operation", operation.as_str());
    if let Some(Extension(slot)) = slot {
        slot.set(operation);
    }
    let response = match state.api.answer(&state.store, &principal, request).await {
        // A planned operation's body, as the plan wrote it.
        crm_graphql::Answer::Planned(body) => {
            let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            resp.extensions_mut().insert(Outcome("ok".to_owned()));
            return resp;
        }
        crm_graphql::Answer::Executed(response) => response,
    };
    let outcome = match response.errors.first() {
        None => "ok".to_owned(),
        Some(e) => crm_graphql::code_of(e).unwrap_or("error").to_owned(),
    };
    // Nothing but unavailability: the request as a whole can be retried (503, `Retry-After`).
    let unavailable = crm_graphql::only_unavailable(&response);
    let mut resp = Json(response).into_response();
    if unavailable {
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        http::retry_after(&mut resp);
    }
    resp.extensions_mut().insert(Outcome(outcome));
    resp
}

/// The HTTP service of `state`: its routes (and the embedder's, see [`App::routes`]) under the
/// server's layers.
pub fn app(state: AppState) -> Router {
    let s = &state.0;
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/graphql", get(graphql_get).post(graphql))
        .route("/graphql/assets/{name}", get(http::graphiql_asset))
        .route("/files/{token}", get(attachments::download).put(attachments::upload));
    router = router
        .route("/api/leads/tag", axum::routing::post(rest::tag))
        .route("/api/leads/route", axum::routing::post(rest::route))
        .route("/api/reports/summary", get(rest::summary))
        .route("/api/social/events", axum::routing::post(rest::social));
    if s.http.metrics_on_main {
        router = router.route("/metrics", get(metrics_text));
    }
    if let Some(extra) = &s.routes {
        router = router.merge(extra.clone());
    }
    let mut router = router
        .layer(DefaultBodyLimit::max(s.http.body_limit))
        .layer(middleware::from_fn_with_state(s.http.timeout, http::timeout))
        .layer(CatchPanicLayer::custom(http::panic_response));
    if let Some(cors) = &s.http.cors {
        router = router.layer(cors.clone());
    }
    router
        .layer(middleware::from_fn_with_state(state.clone(), http::track))
        .layer(TraceLayer::new_for_http().make_span_with(http::make_span).on_response(http::log_response))
        .layer(middleware::from_fn(http::request_id))
        .with_state(state)
}

/// The metrics service (`GET /metrics`), for a separate listener.
pub fn metrics_app(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics_text)).with_state(state)
}

/// Serves on `listener` until `shutdown` completes.
///
/// # Errors
/// When the listener fails.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve(state, listener, None, shutdown).await
}

/// Serves [`app`] on `listener` and, when given, [`metrics_app`] on `metrics_listener`, until
/// `shutdown` completes (both stop gracefully).
///
/// # Errors
/// When a listener fails.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let workers = state.0.workers.clone().map(|o| crm_engines::Engines::start_workers(&state.0.store, o));
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let main = axum::serve(listener, app(state.clone())).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let main = async move { main.await.map_err(ServerError::from) };
    let metrics = async move {
        if let Some(l) = metrics_listener {
            axum::serve(l, metrics_app(state))
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await?;
        }
        Ok::<(), ServerError>(())
    };
    let served = tokio::try_join!(main, metrics);
    if let Some(w) = workers {
        w.stop().await;
    }
    served?;
    Ok(())
}
