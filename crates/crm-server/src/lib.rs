//! The crm-platform server: configuration, CLI and HTTP. Also a library, so the service can be
//! embedded ([`run`]) and tested on port 0.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crm_graphql::{Api, Request, SchemaOptions};
use crm_model::standard::standard_catalog;
use crm_model::{OrgId, RoleName};
use crm_orm::{Engine, EngineOptions, OrmError, Policy, Principal};
use serde_json::json;
use tokio::net::TcpListener;

/// Server configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Database URL: `sqlite://…` or `postgres://…`. Default: a SQLite file in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the embedded database and local state.
    #[arg(long, env = "CRM_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest database pool.
    #[arg(long, env = "CRM_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// INSECURE development mode: `POST /graphql` trusts the `x-dev-org`, `x-dev-sub` and
    /// `x-dev-roles` headers (defaults `dev`, `dev`, `admin`) instead of a token. Only allowed on
    /// a loopback address. Without it, `/graphql` refuses every request until authentication is
    /// configured.
    #[arg(long, env = "CRM_INSECURE_DEV", default_value_t = false)]
    pub insecure_dev: bool,
    /// Rows per page when a query gives no `first`/`last`.
    #[arg(long, env = "CRM_DEFAULT_PAGE_SIZE", default_value_t = 10)]
    pub default_page_size: u32,
    /// Largest `first`/`last` accepted (LIMIT_EXCEEDED beyond).
    #[arg(long, env = "CRM_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: u32,
    /// Deepest GraphQL selection accepted (LIMIT_EXCEEDED beyond).
    #[arg(long, env = "CRM_MAX_DEPTH", default_value_t = 15)]
    pub max_depth: usize,
    /// Most fields one GraphQL request may select (LIMIT_EXCEEDED beyond).
    #[arg(long, env = "CRM_MAX_COMPLEXITY", default_value_t = 2000)]
    pub max_complexity: usize,
}

impl Config {
    /// The database URL to use: the configured one, or `sqlite://<data_dir>/crm.db` (the data
    /// directory is created).
    ///
    /// # Errors
    /// When the data directory cannot be created.
    pub fn resolved_database_url(&self) -> std::io::Result<String> {
        if let Some(u) = &self.database_url {
            return Ok(u.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(format!("sqlite://{}", self.data_dir.join("crm.db").display()))
    }
}

/// Server start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// IO (data directory, listener).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The engine (database, migrations, metadata).
    #[error(transparent)]
    Orm(#[from] OrmError),
    /// Metadata did not resolve.
    #[error(transparent)]
    Metadata(#[from] crm_model::MetadataError),
    /// A configuration the server refuses to run with.
    #[error("configuration: {0}")]
    Config(String),
}

/// Connects the engine with the standard catalog.
///
/// # Errors
/// Bad URL, unreachable database, a role that bypasses row-level security.
pub async fn connect(config: &Config) -> Result<Engine, ServerError> {
    let catalog = Arc::new(standard_catalog()?);
    let url = config.resolved_database_url()?;
    let opts = EngineOptions {
        max_connections: config.db_max_connections,
        limits: crm_orm::Limits { default_page: config.default_page_size, max_page: config.max_page_size },
        ..EngineOptions::default()
    };
    Ok(Engine::connect(&url, catalog, opts).await?)
}

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    engine: Arc<Engine>,
    api: Arc<Api>,
    insecure_dev: bool,
}

impl AppState {
    /// State for `engine` with the GraphQL limits of `config`. Refuses development mode on an
    /// address other than loopback.
    ///
    /// # Errors
    /// `--insecure-dev` with a non-loopback listen address.
    pub fn new(engine: Arc<Engine>, config: &Config) -> Result<AppState, ServerError> {
        if config.insecure_dev && !config.listen.ip().is_loopback() {
            return Err(ServerError::Config(format!(
                "--insecure-dev trusts request headers for identity and only listens on loopback, not {}",
                config.listen
            )));
        }
        if config.insecure_dev {
            tracing::warn!(
                "INSECURE DEVELOPMENT MODE: /graphql trusts x-dev-org / x-dev-sub / x-dev-roles headers; never expose this server"
            );
        }
        let options = SchemaOptions { max_depth: config.max_depth, max_complexity: config.max_complexity, introspection: true };
        Ok(AppState { engine, api: Arc::new(Api::new(options, Policy::default_roles())), insecure_dev: config.insecure_dev })
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.engine.ready().await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "migrations pending" }))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database unreachable" })))
        }
    }
}

fn gql_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))).into_response()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The development principal from `x-dev-*` headers.
fn dev_principal(headers: &HeaderMap) -> Result<Principal, String> {
    let org = OrgId::new(header(headers, "x-dev-org").unwrap_or("dev")).map_err(|e| format!("x-dev-org: {e}"))?;
    let sub = header(headers, "x-dev-sub").unwrap_or("dev").to_owned();
    let roles = header(headers, "x-dev-roles")
        .unwrap_or("admin")
        .split(',')
        .map(|r| RoleName::new(r.trim()).map_err(|e| format!("x-dev-roles: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Principal { sub, org_id: org, roles })
}

async fn graphql(State(state): State<AppState>, headers: HeaderMap, body: Result<Json<Request>, JsonRejection>) -> Response {
    if !state.insecure_dev {
        return gql_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authentication is not configured on this server (start it with --insecure-dev for local development)",
        );
    }
    let principal = match dev_principal(&headers) {
        Ok(p) => p,
        Err(e) => return gql_error(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &e),
    };
    let request = match body {
        Ok(Json(r)) => r,
        Err(JsonRejection::BytesRejection(_)) => {
            return gql_error(StatusCode::PAYLOAD_TOO_LARGE, "LIMIT_EXCEEDED", "the request body is too large");
        }
        Err(e) => {
            return gql_error(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &format!("expected a GraphQL request as JSON: {}", e.body_text()));
        }
    };
    let response = state.api.execute(&state.engine, &principal, request).await;
    Json(response).into_response()
}

/// The HTTP routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/graphql", post(graphql))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Serves on `listener` until `shutdown` completes.
///
/// # Errors
/// When the listener fails.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
