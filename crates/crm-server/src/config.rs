//! Configuration: command-line flags, `CRM_*` environment variables and an optional TOML file.
//!
//! Precedence, highest first: flags, environment variables, the file (`--config` / `CRM_CONFIG`),
//! built-in defaults. [`Config`] is a `clap::Args` (so `--help` documents every option with its
//! variable); [`Config::resolve`] then fills whatever the command line and environment left at its
//! default from the file, using clap's record of where each value came from. The file is read with
//! `deny_unknown_fields`, so a misspelt key is an error rather than a silently ignored setting.
//!
//! Secrets (`oidc_client_secret`, the password in `database_url`) are never printed: `Debug`
//! redacts them, and file errors never quote a secret's value.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};

use crate::ServerError;

/// Largest request body accepted by default, in bytes (`--body-limit`).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Default request timeout in seconds (`--request-timeout-secs`).
pub const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Default listen address (`--listen`).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// How log lines are written (to standard output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; the request span (`request{id=… method=… path=…}`) prefixes each line.
    #[default]
    Text,
    /// One JSON object per line, with the request span's fields under `span`/`spans`.
    Json,
}

/// Server configuration. Each option is a flag, a `CRM_*` environment variable and a key of the
/// TOML file (`--config`); see `docs/CONFIG.md`. A `Config` may also be built in code (embedding,
/// tests): start from [`Config::default`].
#[derive(Clone, clap::Args)]
pub struct Config {
    /// TOML configuration file: keys are the long option names with `_` (`max_depth = 10`);
    /// flags and environment variables override it. Unknown keys are an error.
    #[arg(long = "config", env = "CRM_CONFIG", value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Database URL: `sqlite://…` or `postgres://…` (its password is never printed). Also read from
    /// `DATABASE_URL` when `CRM_DATABASE_URL` is unset. Default: a SQLite file in the data directory.
    #[arg(long, env = "CRM_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Directory for the embedded database and local state.
    #[arg(long, env = "CRM_DATA_DIR", default_value = "data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Directory of installation-wide models, one `*.model.json` file each (a `ModelDef` in the
    /// JSON form the runtime metadata API takes): served to every tenant next to the standard
    /// models, with their own tables. None: the standard models (and those given in Rust).
    #[arg(long, env = "CRM_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, env = "CRM_LISTEN", default_value_t = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Largest database pool.
    #[arg(long, env = "CRM_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// How long a request waits for a database connection, in milliseconds; past it the request
    /// fails as `UNAVAILABLE` (HTTP 503, `Retry-After`).
    #[arg(long, env = "CRM_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub db_acquire_timeout_ms: u64,
    /// The longest a statement may run on PostgreSQL, in milliseconds (0: no limit); past it the
    /// statement is cancelled and the request fails as `UNAVAILABLE`. Migrations are exempt.
    #[arg(long, env = "CRM_DB_STATEMENT_TIMEOUT_MS", default_value_t = 30_000)]
    pub db_statement_timeout_ms: u64,
    /// Requests one tenant may have working at once (0: no limit); beyond it a request is refused
    /// with `LIMIT_EXCEEDED` (HTTP 429, `Retry-After`), so no tenant can take every connection.
    #[arg(long, env = "CRM_TENANT_CONCURRENCY", default_value_t = 8)]
    pub tenant_concurrency: usize,
    /// The OpenID provider (ZITADEL) issuer URL, exactly as in its tokens. Without it the server
    /// runs in development mode: it signs its own tokens (`crm-server dev-token`) with a key in the
    /// data directory and listens on loopback only.
    #[arg(long, env = "CRM_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// The ZITADEL project id: required in every token's `aud`; its role claim gives the roles.
    #[arg(long, env = "CRM_OIDC_PROJECT_ID", value_name = "ID")]
    pub oidc_project_id: Option<String>,
    /// Client id for token introspection (opaque tokens).
    #[arg(long, env = "CRM_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// Client secret for token introspection (never printed).
    #[arg(long, env = "CRM_OIDC_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub oidc_client_secret: Option<String>,
    /// Clock leeway for token times, in seconds (at most 30).
    #[arg(long, env = "CRM_OIDC_LEEWAY_SECS", default_value_t = 30, value_name = "SECS")]
    pub oidc_leeway_secs: u64,
    /// In development mode, allow a non-loopback listen address anyway.
    #[arg(long, env = "CRM_DEV_ALLOW_REMOTE", default_value_t = false)]
    pub dev_allow_remote: bool,
    /// Rows per page when a query gives no `first`/`last`.
    #[arg(long, env = "CRM_DEFAULT_PAGE_SIZE", default_value_t = 10, value_name = "ROWS")]
    pub default_page_size: u32,
    /// Largest `first`/`last` accepted (`LIMIT_EXCEEDED` beyond).
    #[arg(long, env = "CRM_MAX_PAGE_SIZE", default_value_t = 100, value_name = "ROWS")]
    pub max_page_size: u32,
    /// Deepest GraphQL selection accepted (`LIMIT_EXCEEDED` beyond).
    #[arg(long, env = "CRM_MAX_DEPTH", default_value_t = 15)]
    pub max_depth: usize,
    /// Most selections one GraphQL request may make, fragments expanded (`LIMIT_EXCEEDED` beyond).
    #[arg(long, env = "CRM_MAX_COMPLEXITY", default_value_t = 2000)]
    pub max_complexity: usize,
    /// Most aliased fields one GraphQL request may use, fragments expanded (`LIMIT_EXCEEDED` beyond).
    #[arg(long, env = "CRM_MAX_ALIASES", default_value_t = 100)]
    pub max_aliases: usize,
    /// Most nodes (selections, arguments, directives, fragments) a GraphQL document may be
    /// written with (`LIMIT_EXCEEDED` beyond).
    #[arg(long, env = "CRM_MAX_QUERY_NODES", default_value_t = 5000)]
    pub max_query_nodes: usize,
    /// A browser origin allowed to call the API cross-origin (`https://app.example.com`);
    /// repeatable, or a comma-separated list in the variable; `*` allows any origin. None: no CORS
    /// headers at all.
    #[arg(long = "cors-origin", env = "CRM_CORS_ORIGINS", value_delimiter = ',', value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Largest request body, in bytes (413 `LIMIT_EXCEEDED` beyond).
    #[arg(long, env = "CRM_BODY_LIMIT", default_value_t = BODY_LIMIT, value_name = "BYTES")]
    pub body_limit: usize,
    /// Longest a request may take, in seconds (503 `LIMIT_EXCEEDED` beyond); 0: no limit.
    #[arg(long, env = "CRM_REQUEST_TIMEOUT_SECS", default_value_t = REQUEST_TIMEOUT_SECS, value_name = "SECS")]
    pub request_timeout_secs: u64,
    /// How long a tenant's metadata version is trusted before it is read again, in milliseconds:
    /// the longest another server instance serves a tenant's previous schema after a metadata
    /// change (the instance that made it switches at once).
    #[arg(long, env = "CRM_METADATA_REFRESH_MS", default_value_t = 1000, value_name = "MS")]
    pub metadata_refresh_ms: u64,
    /// Run the event workers in this process (automation rules such as lead qualification,
    /// webhook fan-out and delivery). Any number of instances may run them over one database.
    #[arg(long, env = "CRM_WORKERS", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub workers: bool,
    /// How long an idle worker waits before looking for new events, in milliseconds.
    #[arg(long, env = "CRM_WORKER_POLL_MS", default_value_t = 200, value_name = "MS")]
    pub worker_poll_ms: u64,
    /// How long processed events (the outbox, record timelines) and finished webhook deliveries
    /// are kept, in hours; an event a consumer has not passed is kept however old. 0: forever.
    #[arg(long, env = "CRM_EVENT_RETENTION_HOURS", default_value_t = 168, value_name = "HOURS")]
    pub event_retention_hours: u64,
    /// Publish committed events to this NATS server's JetStream (`nats://host:4222`). None: events
    /// stay in the database (webhooks and the workers still get them).
    #[arg(long, env = "CRM_NATS_URL", value_name = "URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream events are published to (created when missing).
    #[arg(long, env = "CRM_NATS_STREAM", default_value = "CRM", value_name = "NAME")]
    pub nats_stream: String,
    /// The first token of the events' subjects: `<prefix>.<org>.<Model>.<op>`.
    #[arg(long, env = "CRM_NATS_SUBJECT_PREFIX", default_value = "crm", value_name = "TOKEN")]
    pub nats_subject_prefix: String,
    /// The stream's duplicate window when the server creates it, in seconds: a re-sent event
    /// (after a crash) within it is stored once.
    #[arg(long, env = "CRM_NATS_DUPLICATE_WINDOW_SECS", default_value_t = 120, value_name = "SECS")]
    pub nats_duplicate_window_secs: u64,
    /// Only handle these tenants' events (repeatable, or comma-separated): how worker processes
    /// can be split by tenant. None: every tenant.
    #[arg(long = "worker-org", env = "CRM_WORKER_ORGS", value_delimiter = ',', value_name = "ORG")]
    pub worker_orgs: Vec<String>,
    /// A network webhooks may be delivered to although it is internal (loopback, private,
    /// link-local…), such as `10.20.0.0/16` or `127.0.0.1/32`; repeatable, or comma-separated.
    /// None: webhooks go to public addresses only.
    #[arg(long = "webhook-allow", env = "CRM_WEBHOOK_ALLOW", value_delimiter = ',', value_name = "NETWORK")]
    pub webhook_allow: Vec<String>,
    /// Most tenant schemas (tenants with custom fields or objects) kept built in memory, the
    /// least recently used evicted first; each takes a few MiB. Tenants without custom
    /// definitions share one schema.
    #[arg(long, env = "CRM_MAX_TENANT_SCHEMAS", default_value_t = crm_graphql::DEFAULT_SCHEMA_CAPACITY, value_name = "N")]
    pub max_tenant_schemas: usize,
    /// Log format: `text` or `json` (one object per line). The level comes from `RUST_LOG`
    /// (default `info`).
    #[arg(long, env = "CRM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// Serve `/metrics` on this separate address only (keep it private). Without it `/metrics` is
    /// served on `--listen`.
    #[arg(long, env = "CRM_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Where attachments' bytes are kept: a directory (`file:///var/lib/crm/files` or a path) or
    /// S3-compatible storage (`s3://bucket[/prefix]`, with endpoint, region and credentials from
    /// the standard `AWS_*` variables: `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`). None: `<data-dir>/files`.
    #[arg(long, env = "CRM_FILES_URL", value_name = "URL")]
    pub files_url: Option<String>,
    /// The key signing file upload and download URLs (at least 32 characters; the same on every
    /// server of an installation). None: a random key kept in `<data-dir>/files.key`.
    #[arg(long, env = "CRM_FILES_SIGNING_KEY", value_name = "KEY", hide_env_values = true)]
    pub files_signing_key: Option<String>,
    /// The largest attachment accepted, in bytes.
    #[arg(long, env = "CRM_MAX_FILE_SIZE", default_value_t = 25 * 1024 * 1024, value_name = "BYTES")]
    pub max_file_size: u64,
    /// The media types attachments may have (`image/png`, `image/*`, `*/*`); repeatable, or
    /// comma-separated. None: images, PDF, text, CSV, JSON, office documents, ZIP, audio and
    /// video (not HTML or SVG).
    #[arg(long = "file-type", env = "CRM_FILE_TYPES", value_delimiter = ',', value_name = "TYPE")]
    pub file_types: Vec<String>,
    /// The address clients reach this server at (`https://crm.example.com`), which signed file
    /// URLs start with. None: `http://<listen>`.
    #[arg(long, env = "CRM_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Roles and their grants, from the file's `[roles]` table only: each role given there
    /// replaces (or adds to) the default roles `admin`, `sales`, `viewer` and `parent_admin`.
    #[arg(skip)]
    pub roles: Option<crm_orm::Policy>,
}

impl Default for Config {
    /// The built-in defaults, as `--help` shows them (no file, no environment).
    fn default() -> Self {
        Config {
            config_file: None,
            database_url: None,
            data_dir: PathBuf::from("data"),
            models: None,
            listen: DEFAULT_LISTEN,
            db_max_connections: 10,
            db_acquire_timeout_ms: 5000,
            db_statement_timeout_ms: 30_000,
            tenant_concurrency: 8,
            oidc_issuer: None,
            oidc_project_id: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_leeway_secs: 30,
            dev_allow_remote: false,
            default_page_size: 10,
            max_page_size: 100,
            max_depth: 15,
            max_complexity: 2000,
            max_aliases: 100,
            max_query_nodes: 5000,
            cors_origins: Vec::new(),
            body_limit: BODY_LIMIT,
            request_timeout_secs: REQUEST_TIMEOUT_SECS,
            metadata_refresh_ms: 1000,
            workers: true,
            worker_poll_ms: 200,
            worker_orgs: Vec::new(),
            event_retention_hours: 168,
            nats_url: None,
            nats_stream: "CRM".to_owned(),
            nats_subject_prefix: "crm".to_owned(),
            nats_duplicate_window_secs: 120,
            webhook_allow: Vec::new(),
            max_tenant_schemas: crm_graphql::DEFAULT_SCHEMA_CAPACITY,
            log_format: LogFormat::Text,
            metrics_listen: None,
            files_url: None,
            files_signing_key: None,
            max_file_size: 25 * 1024 * 1024,
            file_types: Vec::new(),
            public_url: None,
            roles: None,
        }
    }
}

/// The TOML file: every key optional, unknown keys refused. Not `Debug` (it holds secrets).
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    models: Option<PathBuf>,
    listen: Option<SocketAddr>,
    db_max_connections: Option<u32>,
    db_acquire_timeout_ms: Option<u64>,
    db_statement_timeout_ms: Option<u64>,
    tenant_concurrency: Option<usize>,
    oidc_issuer: Option<String>,
    oidc_project_id: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
    oidc_leeway_secs: Option<u64>,
    dev_allow_remote: Option<bool>,
    default_page_size: Option<u32>,
    max_page_size: Option<u32>,
    max_depth: Option<usize>,
    max_complexity: Option<usize>,
    max_aliases: Option<usize>,
    max_query_nodes: Option<usize>,
    cors_origins: Option<Vec<String>>,
    body_limit: Option<usize>,
    request_timeout_secs: Option<u64>,
    metadata_refresh_ms: Option<u64>,
    workers: Option<bool>,
    worker_poll_ms: Option<u64>,
    worker_orgs: Option<Vec<String>>,
    event_retention_hours: Option<u64>,
    nats_url: Option<String>,
    nats_stream: Option<String>,
    nats_subject_prefix: Option<String>,
    nats_duplicate_window_secs: Option<u64>,
    webhook_allow: Option<Vec<String>>,
    max_tenant_schemas: Option<usize>,
    log_format: Option<LogFormat>,
    metrics_listen: Option<SocketAddr>,
    files_url: Option<String>,
    files_signing_key: Option<String>,
    max_file_size: Option<u64>,
    file_types: Option<Vec<String>>,
    public_url: Option<String>,
    roles: Option<crm_orm::Policy>,
}

/// File keys whose values are never quoted in an error message.
const SECRET_KEYS: [&str; 3] = ["oidc_client_secret", "database_url", "files_signing_key"];

impl FileConfig {
    fn load(path: &Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("cannot read the configuration file {}: {e}", path.display())))?;
        FileConfig::parse(&text).map_err(|e| ServerError::Config(format!("file {}: {e}", path.display())))
    }

    /// Parses the file text. The error names the line and the problem, never the file's text
    /// itself (toml's `Display` would quote the line, which may hold a secret).
    fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str::<FileConfig>(text).map_err(|e| {
            let Some(span) = e.span() else { return e.message().to_owned() };
            let start = span.start.min(text.len());
            let line_no = text.get(..start).map_or(0, |t| t.matches('\n').count()) + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or_default();
            let key = line.split('=').next().unwrap_or_default().trim().trim_matches('"');
            if SECRET_KEYS.contains(&key) {
                format!("line {line_no}: invalid value for `{key}` (not shown)")
            } else {
                format!("line {line_no}: {}", e.message().trim_end())
            }
        })
    }
}

impl Config {
    /// The role policy in effect: the default roles, with the file's `[roles]` replacing or adding
    /// roles by name.
    #[must_use]
    pub fn policy(&self) -> crm_orm::Policy {
        let mut p = crm_orm::Policy::default_roles();
        if let Some(extra) = &self.roles {
            p.roles.extend(extra.roles.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        p
    }

    /// Parses `args` (the program name first) and the environment, then applies the file and
    /// validates: what `crm-server` does at start-up, for embedding and tests.
    ///
    /// # Errors
    /// Bad flags (the message is clap's, `--help` included), an unreadable or invalid file, an
    /// invalid value.
    pub fn try_parse_args<I, T>(args: I) -> Result<Config, ServerError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Config::augment_args(clap::Command::new("crm-server"));
        let matches = command.try_get_matches_from(args).map_err(|e| ServerError::Config(e.to_string()))?;
        let config = Config::from_arg_matches(&matches).map_err(|e| ServerError::Config(e.to_string()))?;
        config.resolve(&matches)
    }

    /// Completes a configuration parsed from `matches` (which must come from a command that
    /// flattens [`Config`]): options the command line and environment did not set take the TOML
    /// file's value when it has one (`DATABASE_URL` counts as environment); then [`Config::validate`].
    ///
    /// # Errors
    /// An unreadable or invalid file, an invalid value.
    pub fn resolve(mut self, matches: &ArgMatches) -> Result<Config, ServerError> {
        let explicit = |id: &str| {
            matches.ids().any(|i| i.as_str() == id)
                && matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
        };
        let mut database_url_set = explicit("database_url");
        if !database_url_set && let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            self.database_url = Some(url);
            database_url_set = true;
        }
        if let Some(path) = self.config_file.clone() {
            let file = FileConfig::load(&path)?;
            let keep = |id: &str| if id == "database_url" { database_url_set } else { explicit(id) };
            self.apply_file(file, keep);
        }
        self.validate()?;
        Ok(self)
    }

    /// Takes every value of `file` whose option `keep` does not claim.
    fn apply_file(&mut self, file: FileConfig, keep: impl Fn(&str) -> bool) {
        macro_rules! take {
            (opt $($field:ident),*) => {$(
                if let Some(v) = file.$field && !keep(stringify!($field)) {
                    self.$field = Some(v);
                }
            )*};
            (val $($field:ident),*) => {$(
                if let Some(v) = file.$field && !keep(stringify!($field)) {
                    self.$field = v;
                }
            )*};
        }
        take!(opt database_url, models, oidc_issuer, oidc_project_id, oidc_client_id, oidc_client_secret, metrics_listen, nats_url);
        take!(opt files_url, files_signing_key, public_url);
        take!(val max_file_size, file_types);
        take!(val data_dir, listen, db_max_connections, db_acquire_timeout_ms, db_statement_timeout_ms, tenant_concurrency, oidc_leeway_secs, dev_allow_remote, default_page_size, max_page_size);
        take!(val max_depth, max_complexity, max_aliases, max_query_nodes, cors_origins, body_limit, request_timeout_secs, metadata_refresh_ms, max_tenant_schemas, log_format);
        take!(val workers, worker_poll_ms, worker_orgs, webhook_allow, event_retention_hours, nats_stream, nats_subject_prefix, nats_duplicate_window_secs);
        if let Some(roles) = file.roles {
            self.roles = Some(roles);
        }
    }

    /// Checks values no type can: CORS origins, the body limit.
    ///
    /// # Errors
    /// The first invalid value, named.
    pub fn validate(&self) -> Result<(), ServerError> {
        self.egress()?;
        for origin in &self.cors_origins {
            check_origin(origin).map_err(|why| ServerError::Config(format!("CORS origin `{origin}`: {why}")))?;
        }
        if self.body_limit == 0 {
            return Err(ServerError::Config("the body limit must be at least 1 byte".to_owned()));
        }
        Ok(())
    }

    /// Every check of the configuration that needs no network: [`Config::validate`], then what
    /// the server would refuse when it starts (an issuer without a project id, half of the
    /// introspection credentials, development mode on a non-loopback address without
    /// `--dev-allow-remote`). `check-config` fails on the same.
    ///
    /// # Errors
    /// The first setting the server would refuse.
    pub fn check(&self) -> Result<(), ServerError> {
        self.validate()?;
        crate::http::cors_layer(&self.cors_origins)?;
        self.file_settings()?;
        if self.oidc()?.is_none() && !self.listen.ip().is_loopback() && !self.dev_allow_remote {
            return Err(ServerError::Config(format!(
                "development mode (no --oidc-issuer) listens on loopback only, not {}; configure an issuer or pass --dev-allow-remote",
                self.listen
            )));
        }
        Ok(())
    }

    /// The file settings, checked without touching storage: where files go, the signing key's
    /// length, the public URL's form.
    ///
    /// # Errors
    /// A storage URL of another scheme, a short key, a public URL that is not http(s).
    pub fn file_settings(&self) -> Result<(crm_engines::files::Location, crm_engines::files::FileOptions, String), ServerError> {
        let location = match &self.files_url {
            Some(u) => crm_engines::files::Location::parse(u).map_err(|e| ServerError::Config(format!("--files-url {e}")))?,
            None => crm_engines::files::Location::Directory(self.data_dir.join("files")),
        };
        if self.files_signing_key.as_ref().is_some_and(|k| k.len() < 32) {
            return Err(ServerError::Config("--files-signing-key: at least 32 characters".to_owned()));
        }
        let public = if let Some(u) = &self.public_url {
            u.trim_end_matches('/').to_owned()
        } else {
            let host = if self.listen.ip().is_unspecified() { "127.0.0.1".to_owned() } else { self.listen.ip().to_string() };
            let host = if self.listen.is_ipv6() && !self.listen.ip().is_unspecified() { format!("[{host}]") } else { host };
            format!("http://{host}:{}", self.listen.port())
        };
        if !(public.starts_with("http://") || public.starts_with("https://")) {
            return Err(ServerError::Config(format!("--public-url {public}: an http:// or https:// address")));
        }
        let mut opts = crm_engines::files::FileOptions { max_size: self.max_file_size, ..Default::default() };
        if !self.file_types.is_empty() {
            if let Some(t) = self.file_types.iter().find(|t| !t.contains('/')) {
                return Err(ServerError::Config(format!("--file-type {t}: a media type such as image/png or image/*")));
            }
            opts.content_types.clone_from(&self.file_types);
        }
        Ok((location, opts, public))
    }

    /// The files service of these settings: opens the storage (making the directory) and loads
    /// or makes the signing key.
    ///
    /// # Errors
    /// As [`Config::file_settings`]; storage that cannot be opened; the key file.
    pub fn files(&self) -> Result<crm_engines::files::Files, ServerError> {
        let (location, opts, public) = self.file_settings()?;
        if let crm_engines::files::Location::Directory(dir) = &location {
            // A local directory is private to the server's user, like the data directory.
            crate::files::private_dir(dir).map_err(|e| ServerError::Config(format!("files at {}: {e}", dir.display())))?;
        }
        let objects = location.open().map_err(ServerError::Config)?;
        let key = match &self.files_signing_key {
            Some(k) => k.clone().into_bytes(),
            None => crate::files::secret(&self.data_dir, "files.key")
                .map_err(|e| ServerError::Config(format!("{}: {e}", self.data_dir.join("files.key").display())))?,
        };
        crm_engines::files::Files::new(objects, &key, opts, &public).map_err(ServerError::Config)
    }

    /// The OpenID provider's settings (none: development mode).
    ///
    /// # Errors
    /// An issuer without a project id, half of the introspection credentials.
    pub fn oidc(&self) -> Result<Option<crate::authentication::OidcSettings>, ServerError> {
        let introspection = match (&self.oidc_client_id, &self.oidc_client_secret) {
            (Some(id), Some(secret)) => Some((id.clone(), crate::authentication::Secret(secret.clone()))),
            (None, None) => None,
            _ => return Err(ServerError::Config("give both --oidc-client-id and --oidc-client-secret, or neither".to_owned())),
        };
        let Some(issuer) = &self.oidc_issuer else { return Ok(None) };
        let project_id = self
            .oidc_project_id
            .clone()
            .ok_or_else(|| ServerError::Config("--oidc-project-id is required with --oidc-issuer".to_owned()))?;
        Ok(Some(crate::authentication::OidcSettings {
            issuer: issuer.clone(),
            project_id,
            introspection,
            leeway: Duration::from_secs(self.oidc_leeway_secs),
        }))
    }

    /// The effective configuration as the TOML file `--config` accepts: every key with its value,
    /// unset ones and secrets as comments (a secret is given by its environment variable or a
    /// file of its own, and never printed).
    #[must_use]
    pub fn to_toml(&self) -> String {
        use toml::Value as V;
        let text = |s: &str| Some(V::String(s.to_owned()));
        let int = |n: u64| Some(V::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
        let list = |l: &[String]| Some(V::Array(l.iter().map(|s| V::String(s.clone())).collect()));
        let usize_ = |n: usize| int(n as u64);
        let mut lines = vec!["# crm-server check-config: the effective configuration (flags, environment, file, defaults)".to_owned()];
        let secret_url = self.database_url.as_deref().is_some_and(|u| redact_url(u) != u);
        let entries: Vec<(&str, Option<V>)> = vec![
            ("database_url", if secret_url { None } else { self.database_url.as_deref().and_then(text) }),
            ("data_dir", text(&self.data_dir.to_string_lossy())),
            ("models", self.models.as_ref().and_then(|m| text(&m.to_string_lossy()))),
            ("listen", text(&self.listen.to_string())),
            ("db_max_connections", int(u64::from(self.db_max_connections))),
            ("db_acquire_timeout_ms", int(self.db_acquire_timeout_ms)),
            ("db_statement_timeout_ms", int(self.db_statement_timeout_ms)),
            ("tenant_concurrency", usize_(self.tenant_concurrency)),
            ("oidc_issuer", self.oidc_issuer.as_deref().and_then(text)),
            ("oidc_project_id", self.oidc_project_id.as_deref().and_then(text)),
            ("oidc_client_id", self.oidc_client_id.as_deref().and_then(text)),
            ("oidc_client_secret", None),
            ("oidc_leeway_secs", int(self.oidc_leeway_secs)),
            ("dev_allow_remote", Some(V::Boolean(self.dev_allow_remote))),
            ("default_page_size", int(u64::from(self.default_page_size))),
            ("max_page_size", int(u64::from(self.max_page_size))),
            ("max_depth", usize_(self.max_depth)),
            ("max_complexity", usize_(self.max_complexity)),
            ("max_aliases", usize_(self.max_aliases)),
            ("max_query_nodes", usize_(self.max_query_nodes)),
            ("cors_origins", list(&self.cors_origins)),
            ("body_limit", usize_(self.body_limit)),
            ("request_timeout_secs", int(self.request_timeout_secs)),
            ("metadata_refresh_ms", int(self.metadata_refresh_ms)),
            ("max_tenant_schemas", usize_(self.max_tenant_schemas)),
            (
                "log_format",
                text(match self.log_format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }),
            ),
            ("metrics_listen", self.metrics_listen.map(|a| V::String(a.to_string()))),
            ("workers", Some(V::Boolean(self.workers))),
            ("worker_poll_ms", int(self.worker_poll_ms)),
            ("worker_orgs", list(&self.worker_orgs)),
            ("webhook_allow", list(&self.webhook_allow)),
            ("event_retention_hours", int(self.event_retention_hours)),
            ("nats_url", self.nats_url.as_deref().and_then(text)),
            ("nats_stream", text(&self.nats_stream)),
            ("nats_subject_prefix", text(&self.nats_subject_prefix)),
            ("nats_duplicate_window_secs", int(self.nats_duplicate_window_secs)),
            ("files_url", self.files_url.as_deref().and_then(text)),
            ("files_signing_key", None),
            ("max_file_size", int(self.max_file_size)),
            ("file_types", list(&self.file_types)),
            ("public_url", self.public_url.as_deref().and_then(text)),
        ];
        for (key, value) in entries {
            lines.push(match (key, value) {
                (_, Some(v)) => format!("{key} = {v}"),
                ("database_url", None) if secret_url => {
                    format!(
                        "# database_url: {} (holds a password: give it by CRM_DATABASE_URL)",
                        self.database_url.as_deref().map(redact_url).unwrap_or_default()
                    )
                }
                ("oidc_client_secret", None) if self.oidc_client_secret.is_some() => {
                    "# oidc_client_secret: set (a secret: give it by CRM_OIDC_CLIENT_SECRET)".to_owned()
                }
                ("files_signing_key", None) if self.files_signing_key.is_some() => {
                    "# files_signing_key: set (a secret: give it by CRM_FILES_SIGNING_KEY)".to_owned()
                }
                (_, None) => format!("# {key}: not set"),
            });
        }
        if let Some(roles) = &self.roles {
            lines.push(format!("# [roles]: {} roles from the configuration file (not repeated here)", roles.roles.len()));
        }
        lines.join("\n") + "\n"
    }

    /// The request timeout; `None` when disabled (0).
    #[must_use]
    pub fn request_timeout(&self) -> Option<Duration> {
        (self.request_timeout_secs > 0).then(|| Duration::from_secs(self.request_timeout_secs))
    }

    /// Where webhooks may be delivered: public addresses plus the `--webhook-allow` networks.
    ///
    /// # Errors
    /// An allow-list entry that is not an address or network.
    pub fn egress(&self) -> Result<std::sync::Arc<crm_engines::egress::Egress>, ServerError> {
        crm_engines::egress::Egress::with_allowed(&self.webhook_allow)
            .map(std::sync::Arc::new)
            .map_err(|e| ServerError::Config(format!("--webhook-allow: {e}")))
    }

    /// The GraphQL limits of the configuration.
    #[must_use]
    pub fn schema_options(&self) -> crm_graphql::SchemaOptions {
        crm_graphql::SchemaOptions {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
            max_nodes: self.max_query_nodes,
            introspection: true,
        }
    }

    /// The SQLite URL in the data directory unless a database URL is configured. The directory
    /// is made private (`0700`) and the database file `0600`.
    ///
    /// # Errors
    /// When the data directory cannot be created.
    pub fn resolved_database_url(&self) -> std::io::Result<String> {
        if let Some(u) = &self.database_url {
            return Ok(u.clone());
        }
        // The database and its WAL are private to the server's user (SQLite gives the WAL and
        // shared-memory files the database file's mode).
        crate::files::private_dir(&self.data_dir)?;
        let db = self.data_dir.join("crm.db");
        crate::files::private_file(&db)?;
        for side in ["crm.db-wal", "crm.db-shm"] {
            let p = self.data_dir.join(side);
            if p.exists() {
                crate::files::private_file(&p)?;
            }
        }
        Ok(format!("sqlite://{}", db.display()))
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after; or `*`.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")).ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err("must be scheme://host[:port] with no path (no trailing slash)");
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) {
        return Err("contains characters an origin cannot");
    }
    Ok(())
}

/// `url` with the password of its user info and any `password`-like query parameter replaced by
/// `***`. Anything unparsable is shown as is only when it cannot hold user info.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') || url.contains("password") { "***".to_owned() } else { url.to_owned() };
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            format!("{path}?{}{fragment}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("token") || k == "pwd" || k == "pass" || k == "sslkey"
}

struct Redacted<'a>(&'a str);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Debug for Config {
    /// Every option, with the client secret as `***` and the database URL's password redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let database_url = self.database_url.as_deref().map(redact_url);
        f.debug_struct("Config")
            .field("config_file", &self.config_file)
            .field("database_url", &database_url)
            .field("data_dir", &self.data_dir)
            .field("models", &self.models)
            .field("listen", &self.listen)
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_ms", &self.db_acquire_timeout_ms)
            .field("db_statement_timeout_ms", &self.db_statement_timeout_ms)
            .field("tenant_concurrency", &self.tenant_concurrency)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("oidc_project_id", &self.oidc_project_id)
            .field("oidc_client_id", &self.oidc_client_id)
            .field("oidc_client_secret", &self.oidc_client_secret.as_ref().map(|_| Redacted("***")))
            .field("oidc_leeway_secs", &self.oidc_leeway_secs)
            .field("dev_allow_remote", &self.dev_allow_remote)
            .field("workers", &self.workers)
            .field("worker_poll_ms", &self.worker_poll_ms)
            .field("worker_orgs", &self.worker_orgs)
            .field("event_retention_hours", &self.event_retention_hours)
            .field("nats_url", &self.nats_url)
            .field("nats_stream", &self.nats_stream)
            .field("nats_subject_prefix", &self.nats_subject_prefix)
            .field("nats_duplicate_window_secs", &self.nats_duplicate_window_secs)
            .field("webhook_allow", &self.webhook_allow)
            .field("default_page_size", &self.default_page_size)
            .field("max_page_size", &self.max_page_size)
            .field("max_depth", &self.max_depth)
            .field("max_complexity", &self.max_complexity)
            .field("max_aliases", &self.max_aliases)
            .field("max_query_nodes", &self.max_query_nodes)
            .field("cors_origins", &self.cors_origins)
            .field("body_limit", &self.body_limit)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("metadata_refresh_ms", &self.metadata_refresh_ms)
            .field("max_tenant_schemas", &self.max_tenant_schemas)
            .field("log_format", &self.log_format)
            .field("metrics_listen", &self.metrics_listen)
            .field("files_url", &self.files_url)
            .field("files_signing_key", &self.files_signing_key.as_ref().map(|_| Redacted("***")))
            .field("max_file_size", &self.max_file_size)
            .field("file_types", &self.file_types)
            .field("public_url", &self.public_url)
            .field("roles", &self.roles.as_ref().map(|p| p.roles.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(redact_url("postgres://crm:s3cret@db:5432/crm"), "postgres://crm:***@db:5432/crm");
        assert_eq!(redact_url("postgres://crm@db/crm"), "postgres://crm@db/crm");
        assert_eq!(
            redact_url("postgres://u:p%40ss@h/db?sslmode=require&password=x#f"),
            "postgres://u:***@h/db?sslmode=require&password=***#f"
        );
        assert_eq!(redact_url("sqlite://data/crm.db"), "sqlite://data/crm.db");
        assert_eq!(redact_url("user:pw@host"), "***");
    }

    #[test]
    fn origins() {
        assert!(check_origin("https://app.example.com").is_ok());
        assert!(check_origin("http://127.0.0.1:5173").is_ok());
        assert!(check_origin("*").is_ok());
        assert!(check_origin("https://app.example.com/").is_err());
        assert!(check_origin("app.example.com").is_err());
        assert!(check_origin("https://a b").is_err());
    }

    #[test]
    fn file_errors_never_quote_secrets() {
        let e = FileConfig::parse("max_depth = 3\noidc_client_secret = 12345\n").err().unwrap();
        assert!(e.contains("line 2") && !e.contains("12345"), "{e}");
        let e = FileConfig::parse("oidc_client_secrett = \"hunter2\"\n").err().unwrap();
        assert!(e.contains("oidc_client_secrett") && !e.contains("hunter2"), "{e}");
        let e = FileConfig::parse("database_url = \"postgres://u:hunter2@h/db\n").err().unwrap();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
