//! The command line (`serve`, `migrate`, `tenant`, `dev-token`, `seed-demo`, `check-config`,
//! `sdl`), as a library: [`Server`] runs it with models of the embedding program's own next to the
//! standard ones, so a program that adds models in Rust keeps the whole CLI.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use crm_model::ModelDef;

use crate::authentication::DevKey;
use crate::{App, Config, ServerError, connect_with, init_logging, serve};

/// The `crm-server` command line, with models of the program's own.
///
/// ```no_run
/// use crm_model::{FieldDef as F, ModelDef};
///
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     let project = ModelDef::new("Project").field(F::text("name").required().searchable());
///     crm_server::Server::new().model(project).run().await
/// }
/// ```
#[derive(Debug, Default, Clone)]
pub struct Server {
    models: Vec<ModelDef>,
}

impl Server {
    /// The standard models only (what `crm-server` serves).
    #[must_use]
    pub fn new() -> Server {
        Server::default()
    }

    /// Adds a model, served to every tenant next to the standard ones (and any `--models`
    /// files), with its own table.
    #[must_use]
    pub fn model(mut self, def: ModelDef) -> Server {
        self.models.push(def);
        self
    }

    /// Adds models (see [`Server::model`]).
    #[must_use]
    pub fn models(mut self, defs: impl IntoIterator<Item = ModelDef>) -> Server {
        self.models.extend(defs);
        self
    }

    /// Runs the command line of the process's arguments: flags, environment and configuration
    /// file, logging, then the command. Errors are printed; the exit code says how it went.
    pub async fn run(self) -> ExitCode {
        self.run_from(std::env::args_os()).await
    }

    /// Like [`Server::run`], with the given arguments (the first is the program's name).
    pub async fn run_from(self, args: impl IntoIterator<Item = OsString>) -> ExitCode {
        let cli = match parse_cli(args) {
            Ok(cli) => cli,
            Err(e) => {
                eprintln!("crm-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        init_logging(cli.config.log_format);
        match main_inner(cli, &self.models).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "crm-server failed");
                eprintln!("crm-server: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

const AFTER_HELP: &str = "\
Configuration: each option is a flag, an environment variable (shown) and a key of the TOML file
given by --config / CRM_CONFIG (the long name with `_`, e.g. `max_depth = 10`). Precedence: flags,
then environment variables, then the file, then the defaults. Secrets are never printed.
Options go before the command: `crm-server --listen 127.0.0.1:9000 serve`. See docs/CONFIG.md.";

#[derive(Parser)]
#[command(name = "crm-server", version, about = "The crm-platform server", after_help = AFTER_HELP)]
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
    /// Register a tenant (organization id), optionally as a child of another: roles with
    /// `descendants` (such as `parent_admin`) in the parent then read the child's data.
    Tenant {
        /// The tenant's organization id.
        #[arg(long)]
        org: String,
        /// The parent tenant's organization id.
        #[arg(long)]
        parent: Option<String>,
    },
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
    /// Print the effective configuration as the TOML file `--config` accepts (secrets left out),
    /// or fail on a setting the server would refuse; then exit.
    CheckConfig,
    /// Print the GraphQL schema (SDL) a tenant is served, its custom fields and objects
    /// included, for code generators that do not introspect.
    Sdl {
        /// The tenant (organization id); the schema without custom definitions by default.
        #[arg(long, default_value = "dev")]
        org: String,
    },
    /// Write a tenant's metadata and data as NDJSON: custom definitions, every record (trashed
    /// ones too) with its id, stamps and version, the property history, stage transitions and
    /// audit log. Attachments' bytes stay in the file storage.
    Export {
        /// The tenant.
        #[arg(long)]
        org: String,
        /// The file to write; standard output by default.
        #[arg(long, short)]
        out: Option<std::path::PathBuf>,
    },
    /// Read an export into an empty tenant, exactly as exported, in one transaction (a failed or
    /// truncated import changes nothing).
    Import {
        /// The export file; `-` for standard input.
        file: std::path::PathBuf,
        /// The tenant to import into; the file's by default.
        #[arg(long)]
        org: Option<String>,
    },
    /// Fills a tenant with demo data (members, rules, accounts, contacts, leads through their
    /// stages, tickets, social events); a tenant that already has members is left alone.
    SeedDemo {
        /// The tenant (the dev-token default).
        #[arg(long, default_value = "dev")]
        org: String,
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

async fn main_inner(cli: Cli, models: &[ModelDef]) -> Result<(), ServerError> {
    if let Some(Command::CheckConfig) = &cli.command {
        cli.config.check()?;
        crate::catalog(&cli.config, models)?;
        print!("{}", cli.config.to_toml());
        return Ok(());
    }
    if let Some(Command::DevToken { org, sub, roles, also_org, ttl_secs }) = &cli.command {
        if cli.config.oidc_issuer.is_some() {
            return Err(ServerError::Config("dev-token is for development mode; an OpenID provider is configured".to_owned()));
        }
        let key = DevKey::load_or_create(&cli.config.data_dir)?;
        let token = key.token(sub, org, roles, also_org, std::time::Duration::from_secs(*ttl_secs)).map_err(ServerError::Config)?;
        println!("{token}");
        return Ok(());
    }
    let store = connect_with(&cli.config, models).await?;
    store.migrate().await?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::DevToken { .. } | Command::CheckConfig => Ok(()),
        Command::Sdl { org } => {
            let org = crm_model::OrgId::new(&org).map_err(|e| ServerError::Config(e.to_string()))?;
            let api = crm_graphql::Api::new(cli.config.schema_options(), cli.config.policy());
            let (_, built) = api.schema_for(&store, &org).await.map_err(|e| ServerError::Config(format!("the schema of {org}: {e}")))?;
            print!("{}", crm_graphql::types::sdl(&built.schema));
            Ok(())
        }
        Command::SeedDemo { org } => {
            let org = crm_model::OrgId::new(&org).map_err(|e| ServerError::Config(e.to_string()))?;
            match crate::seed::seed_demo(&store, &org).await? {
                Some(seeded) => {
                    println!("tenant {org} seeded:");
                    for (model, n) in seeded.records {
                        println!("  {model:<14} {n}");
                    }
                    println!("start the server (`cargo run -p crm-server`) to let the workers qualify leads and deliver webhooks");
                }
                None => println!("tenant {org} already has data; nothing seeded"),
            }
            Ok(())
        }
        Command::Export { org, out } => {
            let org = crm_model::OrgId::new(&org).map_err(|e| ServerError::Config(e.to_string()))?;
            let n = if let Some(path) = out {
                let file = std::fs::File::create(&path).map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
                let mut w = std::io::BufWriter::new(file);
                let n = crate::transfer::export(&store, &org, &mut w).await?;
                eprintln!("tenant {org}: {n} records exported to {}", path.display());
                n
            } else {
                let stdout = std::io::stdout();
                let mut w = std::io::BufWriter::new(stdout.lock());
                crate::transfer::export(&store, &org, &mut w).await?
            };
            tracing::info!(org = %org, records = n, "exported");
            Ok(())
        }
        Command::Import { file, org } => {
            let org = org.map(|o| crm_model::OrgId::new(&o)).transpose().map_err(|e| ServerError::Config(e.to_string()))?;
            let done = if file.as_os_str() == "-" {
                let stdin = std::io::stdin();
                crate::transfer::import(&store, org.as_ref(), &mut stdin.lock(), None).await?
            } else {
                let f = std::fs::File::open(&file).map_err(|e| ServerError::Config(format!("{}: {e}", file.display())))?;
                let size = f.metadata().ok().map(|m| m.len());
                crate::transfer::import(&store, org.as_ref(), &mut std::io::BufReader::new(f), size).await?
            };
            println!("imported {} records and {} log entries", done.records, done.logs);
            Ok(())
        }
        Command::Tenant { org, parent } => {
            let org = crm_model::OrgId::new(&org).map_err(|e| ServerError::Config(e.to_string()))?;
            let parent = parent.map(|p| crm_model::OrgId::new(&p)).transpose().map_err(|e| ServerError::Config(e.to_string()))?;
            store.register_tenant(&org, parent.as_ref()).await?;
            println!("tenant {org} registered{}", parent.map(|p| format!(" under {p}")).unwrap_or_default());
            Ok(())
        }
        Command::Serve => {
            let state = App::new(cli.config.clone()).store(Arc::new(store)).migrate(false).build().await?;
            let bind = |addr: std::net::SocketAddr| async move {
                tokio::net::TcpListener::bind(addr).await.map_err(|e| ServerError::Config(format!("cannot listen on {addr}: {e}")))
            };
            let listener = bind(cli.config.listen).await?;
            tracing::info!(addr = %listener.local_addr()?, "listening");
            let metrics_listener = match cli.config.metrics_listen {
                Some(addr) => {
                    let l = bind(addr).await?;
                    tracing::info!(addr = %l.local_addr()?, "metrics listening");
                    Some(l)
                }
                None => None,
            };
            serve(state, listener, metrics_listener, shutdown_signal()).await
        }
    }
}

/// Flags and environment (clap), then the configuration file under them.
fn parse_cli(args: impl IntoIterator<Item = OsString>) -> Result<Cli, ServerError> {
    let matches = Cli::command().get_matches_from(args);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.config = cli.config.resolve(&matches)?;
    Ok(cli)
}
