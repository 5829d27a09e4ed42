//! `crm-server`: `serve` (the default) and `migrate`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
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
    let engine = connect(&cli.config).await?;
    engine.migrate().await?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            let state = AppState::new(Arc::new(engine), &cli.config)?;
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
