//! The crm-platform server: configuration, CLI and HTTP. Also a library, so the service can be
//! embedded ([`run`]) and tested on port 0.
#![forbid(unsafe_code)]

pub mod auth;

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
use crm_orm::{Engine, EngineOptions, OrmError, Policy};
use serde_json::json;
use tokio::net::TcpListener;

use crate::auth::{Authenticator, DevKey, Oidc, OidcSettings, Secret};

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
    /// The OpenID provider (ZITADEL) issuer URL, exactly as in its tokens. Without it the server
    /// runs in development mode: it signs its own tokens (`crm-server dev-token`) with a key in the
    /// data directory and listens on loopback only.
    #[arg(long, env = "CRM_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The ZITADEL project id: required in every token's `aud`; its role claim gives the roles.
    #[arg(long, env = "CRM_OIDC_PROJECT_ID")]
    pub oidc_project_id: Option<String>,
    /// Client id for token introspection (opaque tokens).
    #[arg(long, env = "CRM_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Client secret for token introspection (never printed).
    #[arg(long, env = "CRM_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Clock leeway for token times, in seconds (at most 30).
    #[arg(long, env = "CRM_OIDC_LEEWAY_SECS", default_value_t = 30)]
    pub oidc_leeway_secs: u64,
    /// In development mode, allow a non-loopback listen address anyway.
    #[arg(long, env = "CRM_DEV_ALLOW_REMOTE", default_value_t = false)]
    pub dev_allow_remote: bool,
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
    auth: Authenticator,
}

impl AppState {
    /// State for `engine` with the authentication and limits of `config`: OpenID provider
    /// discovery when an issuer is configured, else development mode (refused on a non-loopback
    /// address unless allowed).
    ///
    /// # Errors
    /// Incomplete OIDC settings, an unreachable provider, development mode exposed.
    pub async fn new(engine: Arc<Engine>, config: &Config) -> Result<AppState, ServerError> {
        let auth = match &config.oidc_issuer {
            Some(issuer) => {
                let project_id = config
                    .oidc_project_id
                    .clone()
                    .ok_or_else(|| ServerError::Config("--oidc-project-id is required with --oidc-issuer".to_owned()))?;
                let introspection = match (&config.oidc_client_id, &config.oidc_client_secret) {
                    (Some(id), Some(secret)) => Some((id.clone(), Secret(secret.clone()))),
                    (None, None) => None,
                    _ => return Err(ServerError::Config("give both --oidc-client-id and --oidc-client-secret, or neither".to_owned())),
                };
                let settings = OidcSettings {
                    issuer: issuer.clone(),
                    project_id,
                    introspection,
                    leeway: std::time::Duration::from_secs(config.oidc_leeway_secs),
                };
                Authenticator::Oidc(Arc::new(Oidc::discover(settings).await.map_err(ServerError::Config)?))
            }
            None => {
                if !config.listen.ip().is_loopback() && !config.dev_allow_remote {
                    return Err(ServerError::Config(format!(
                        "development mode (no --oidc-issuer) listens on loopback only, not {}; configure an issuer or pass --dev-allow-remote",
                        config.listen
                    )));
                }
                tracing::warn!(
                    "DEVELOPMENT MODE: no OpenID provider configured; the server accepts tokens it signs itself (`crm-server dev-token`). Never use this in production"
                );
                Authenticator::Dev(DevKey::load_or_create(&config.data_dir)?)
            }
        };
        let options = SchemaOptions { max_depth: config.max_depth, max_complexity: config.max_complexity, introspection: true };
        Ok(AppState { engine, api: Arc::new(Api::new(options, Policy::default_roles())), auth })
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

async fn graphql(State(state): State<AppState>, headers: HeaderMap, body: Result<Json<Request>, JsonRejection>) -> Response {
    // Authentication comes before anything else is looked at.
    let principal = match state.auth.authenticate(&headers).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
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
