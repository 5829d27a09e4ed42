//! The crm-platform server: configuration, CLI and HTTP. Also a library, so the service can be
//! embedded ([`run`]) and tested on port 0.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use crm_model::standard::standard_catalog;
use crm_orm::{Engine, EngineOptions, OrmError};
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
}

/// Connects the engine with the standard catalog.
///
/// # Errors
/// Bad URL, unreachable database, a role that bypasses row-level security.
pub async fn connect(config: &Config) -> Result<Engine, ServerError> {
    let catalog = Arc::new(standard_catalog()?);
    let url = config.resolved_database_url()?;
    let opts = EngineOptions { max_connections: config.db_max_connections, ..EngineOptions::default() };
    Ok(Engine::connect(&url, catalog, opts).await?)
}

#[derive(Clone)]
struct AppState(Arc<Engine>);

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(AppState(engine)): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match engine.ready().await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "migrations pending" }))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database unreachable" })))
        }
    }
}

/// The HTTP routes.
pub fn app(engine: Arc<Engine>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(AppState(engine))
}

/// Serves on `listener` until `shutdown` completes.
///
/// # Errors
/// When the listener fails.
pub async fn run(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    axum::serve(listener, app(engine)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
