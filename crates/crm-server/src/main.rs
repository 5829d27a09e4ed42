//! `crm-server`: `serve` (the default) and `migrate`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use crm_server::auth::DevKey;
use crm_server::{AppState, Config, ServerError, connect, run};

#[derive(Parser)]
#[command(name = "crm-server", version, about = "The crm-platform server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Apply system migrations and create or extend the model tables, then exit.
    Migrate,
    /// Migrate, then serve HTTP (the default).
    Serve,
    /// Print a development access token (development mode only: no --oidc-issuer), signed with
    /// the key in the data directory.
    DevToken {
        /// The tenant (organization id).
        #[arg(long, default_value = "dev")]
        org: String,
        /// The user id (`sub`).
        #[arg(long, default_value = "dev")]
        sub: String,
        /// Roles in the tenant, comma-separated.
        #[arg(long, default_value = "admin", value_delimiter = ',')]
        roles: Vec<String>,
        /// Further tenants the same roles are granted in (choose one with `X-Org-Id`).
        #[arg(long, value_delimiter = ',')]
        also_org: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl_secs: u64,
    },
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

async fn main_inner(cli: Cli) -> Result<(), ServerError> {
    if let Some(Command::DevToken { org, sub, roles, also_org, ttl_secs }) = &cli.command {
        if cli.config.oidc_issuer.is_some() {
            return Err(ServerError::Config("dev-token is for development mode; an OpenID provider is configured".to_owned()));
        }
        let key = DevKey::load_or_create(&cli.config.data_dir)?;
        let token = key.token(sub, org, roles, also_org, std::time::Duration::from_secs(*ttl_secs)).map_err(ServerError::Config)?;
        println!("{token}");
        return Ok(());
    }
    let engine = connect(&cli.config).await?;
    engine.migrate().await?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::DevToken { .. } => Ok(()),
        Command::Serve => {
            let state = AppState::new(Arc::new(engine), &cli.config).await?;
            let listener = tokio::net::TcpListener::bind(cli.config.listen).await?;
            tracing::info!(addr = %listener.local_addr()?, "listening");
            run(state, listener, shutdown_signal()).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    match main_inner(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "crm-server failed");
            eprintln!("crm-server: {e}");
            ExitCode::FAILURE
        }
    }
}
