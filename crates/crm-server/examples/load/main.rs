//! The load benchmark: the real server over HTTP against the raw-SQL ceiling, in one interleaved
//! run, on PostgreSQL and SQLite.
//!
//! It seeds 10 tenants (1M leads, 100k accounts, 300k contacts at `--scale 1`), starts the
//! `crm-server` binary, and for each question (see `queries.rs`) at each concurrency alternates
//! a phase of hand-written prepared SQL (the ceiling: explicit `org_id`, rows only, through the
//! same driver) with a phase of GraphQL requests to the server. It prints requests per second,
//! p50/p99 latency, CPU per request of the server process and of the database, SQL statements
//! and round trips per request (the server's own counters), and the ratio to the ceiling (over the run, and per
//! round: each round pairs a ceiling phase with the server phase right after it).
//!
//! Run it with `scripts/load-bench` (see docs/ARCHITECTURE.md#performance), or by hand:
//! `cargo build --release -p crm-server --bin crm-server --example load && target/release/examples/load --pg URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::cast_precision_loss, clippy::indexing_slicing)]
#![allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

mod queries;
mod seed;
#[path = "../common/server.rs"]
mod server;
mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use queries::{Q, body, raw_sql, status, tenant};
use seed::{Sizes, TENANTS, org};
use serde_json::Value as Json;
use server::Server;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

#[derive(Parser, Debug)]
#[command(about = "crm-server under load against the raw-SQL ceiling")]
struct Args {
    /// PostgreSQL URL of an ordinary role (what the server connects as); leave out to skip.
    #[arg(long)]
    pg: Option<String>,
    /// PostgreSQL URL of a role that bypasses row-level security (seeding and the ceiling);
    /// defaults to `--pg` with the user `postgres`.
    #[arg(long)]
    pg_admin: Option<String>,
    /// Also run on SQLite (a file in the work directory).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sqlite: bool,
    /// Where the server's data directories and the SQLite file live.
    #[arg(long, default_value = "target/load")]
    dir: PathBuf,
    /// The server binary.
    #[arg(long, default_value = "target/release/crm-server")]
    server: PathBuf,
    /// Dataset size: 1 is 1M leads, 100k accounts, 300k contacts over 10 tenants.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Rounds: each round runs every phase once (ceiling, then server).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Concurrencies.
    #[arg(long, value_delimiter = ',', default_value = "16,1")]
    concurrency: Vec<usize>,
    /// Questions (Q1..Q7 or their names); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Server database connections (the ceiling uses one per concurrent task).
    #[arg(long, default_value_t = 16)]
    db_connections: u32,
}

/// One backend's handles.
enum Raw {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

fn server_cmd(args: &Args, url: &str, data: &std::path::Path) -> Command {
    let mut c = Command::new(&args.server);
    c.env("RUST_LOG", "warn")
        .env_remove("CRM_CONFIG")
        .arg("--database-url")
        .arg(url)
        .arg("--data-dir")
        .arg(data)
        .arg("--db-max-connections")
        .arg(args.db_connections.to_string());
    c
}

async fn start_server(args: &Args, url: &str, data: &std::path::Path) -> Server {
    server::start(server_cmd(args, url, data), &args.server).await
}

/// What one phase measured.
#[derive(Debug, Default, Clone)]
struct Phase {
    requests: usize,
    errors: usize,
    elapsed: f64,
    latencies: Vec<Duration>,
    server_cpu: f64,
    db_cpu: f64,
    statements: f64,
    round_trips: f64,
}

impl Phase {
    fn add(&mut self, o: Phase) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.elapsed += o.elapsed;
        self.latencies.extend(o.latencies);
        self.server_cpu += o.server_cpu;
        self.db_cpu += o.db_cpu;
        self.statements += o.statements;
        self.round_trips += o.round_trips;
    }
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.max(1e-9)
    }
    fn per_req_ms(&self, secs: f64) -> f64 {
        secs * 1000.0 / (self.requests.max(1) as f64)
    }
}

/// Runs `work(n)` from `c` tasks until `secs` pass; `n` counts requests across tasks.
async fn drive<F, Fut>(c: usize, secs: f64, work: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let work = Arc::new(work);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut handles = Vec::new();
    for _ in 0..c {
        let work = Arc::clone(&work);
        let counter = Arc::clone(&counter);
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = Instant::now();
                if !work(n).await {
                    errors += 1;
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut phase = Phase::default();
    for h in handles {
        let (lat, errors) = h.await.unwrap();
        phase.requests += lat.len();
        phase.errors += errors;
        phase.latencies.extend(lat);
    }
    phase.elapsed = started.elapsed().as_secs_f64();
    phase
}

/// Per tenant and status, the keys of the 9,980th row in Q1's order: the page-500 boundary.
struct Boundaries {
    /// GraphQL cursors, by (tenant, status).
    cursors: HashMap<(usize, &'static str), String>,
    /// (`created_at`, id) as text, by (tenant, status).
    keys: HashMap<(usize, &'static str), (String, String)>,
}

const DEEP_SKIP: usize = 9_979;

async fn boundaries(server: &Server, tokens: &[String], raw: &Raw, sizes: Sizes) -> Boundaries {
    let client = reqwest::Client::new();
    let mut cursors = HashMap::new();
    let mut keys = HashMap::new();
    // At small scales page 500 does not exist: take the deepest row a status has.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let skip = DEEP_SKIP.min((sizes.leads as usize / 5).saturating_sub(30));
    for (t, token) in tokens.iter().enumerate() {
        for s in seed::STATUSES {
            let q = format!(
                "{{ leadsConnection(where: {{status: {s}}}, orderBy: createdAt_DESC, first: 1, skip: {skip}) {{ edges {{ cursor node {{ id }} }} }} }}"
            );
            let resp: Json = client
                .post(format!("{}/graphql", server.base))
                .bearer_auth(token)
                .json(&serde_json::json!({ "query": q }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let cursor = resp.pointer("/data/leadsConnection/edges/0/cursor").and_then(Json::as_str);
            let cursor = cursor.unwrap_or_else(|| panic!("no deep cursor: {resp}")).to_owned();
            cursors.insert((t, s), cursor);
            let tail =
                "FROM leads WHERE org_id = $1 AND status = $2 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $3";
            #[allow(clippy::cast_possible_wrap)]
            let k: (String, String) = match raw {
                Raw::Pg(p) => {
                    let sql = format!(
                        "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), CAST(id AS TEXT) {tail}"
                    );
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org(t)).bind(s).bind(skip as i64).fetch_one(p).await.unwrap()
                }
                Raw::Sqlite(p) => {
                    let sql = sqlite_sql(&format!("SELECT created_at, id {tail}"));
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org(t)).bind(s).bind(skip as i64).fetch_one(p).await.unwrap()
                }
            };
            keys.insert((t, s), k);
        }
    }
    Boundaries { cursors, keys }
}

/// The SQLite form of a statement: `$n` -> `?n`, no casts to `uuid`.
fn sqlite_sql(sql: &str) -> String {
    numbered(&sql.replace("::uuid", ""))
}

/// `$n` -> `?n` (SQLite numbers its parameters that way).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

async fn raw_once(raw: &Raw, q: Q, n: usize, b: &Boundaries, sql: &str) -> bool {
    let t = tenant(n);
    let o = org(t);
    let s = status(n);
    macro_rules! run {
        ($pool:expr, $ts:expr, $uuid:expr) => {{
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(o);
            query = match q {
                Q::Write => query.bind(($uuid)(seed::id(t, 3, queries::lead_no(n)))).bind((n % 101) as i64),
                Q::Page500 => {
                    let (at, id) = &b.keys[&(t, s)];
                    query.bind(s).bind(($ts)(at.clone())).bind(($uuid)(id.clone()))
                }
                Q::Nested => query,
                _ => query.bind(s),
            };
            match query.fetch_all($pool).await {
                Ok(rows) => q == Q::Count || q == Q::Write || !rows.is_empty(),
                Err(e) => {
                    eprintln!("raw {}: {e}", q.name());
                    false
                }
            }
        }};
    }
    match raw {
        Raw::Pg(p) => run!(p, |s: String| chrono::DateTime::parse_from_rfc3339(&s).unwrap().with_timezone(&chrono::Utc), |s: String| {
            uuid::Uuid::parse_str(&s).unwrap()
        }),
        Raw::Sqlite(p) => run!(p, |s: String| s, |s: String| s),
    }
}

async fn metrics(client: &reqwest::Client, server: &Server) -> HashMap<String, stats::OpCounters> {
    let text = client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    stats::parse_metrics(&text)
}

#[allow(clippy::too_many_arguments)]
async fn server_phase(
    client: &reqwest::Client,
    server: &Server,
    tokens: &Arc<Vec<String>>,
    b: &Arc<Boundaries>,
    q: Q,
    c: usize,
    secs: f64,
    pg: bool,
) -> Phase {
    let before = metrics(client, server).await;
    let (cpu0, db0) = (stats::cpu_of(server.child.id()), if pg { stats::cpu_of_postgres() } else { 0.0 });
    let url = Arc::new(format!("{}/graphql", server.base));
    let (client2, tokens2, b2) = (client.clone(), Arc::clone(tokens), Arc::clone(b));
    let mut phase = drive(c, secs, move |n| {
        let client = client2.clone();
        let url = Arc::clone(&url);
        let t = tenant(n);
        let token = tokens2[t].clone();
        let cursor = (q == Q::Page500).then(|| b2.cursors[&(t, status(n))].clone());
        async move {
            let body = body(q, t, n, cursor.as_deref());
            let Ok(resp) = client.post(url.as_str()).bearer_auth(token).header("content-type", "application/json").body(body).send().await
            else {
                return false;
            };
            let ok = resp.status().is_success();
            let Ok(bytes) = resp.bytes().await else { return false };
            let ok = ok && !bytes.windows(9).any(|w| w == b"\"errors\":");
            if !ok {
                eprintln!("{}: {}", q.name(), String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>());
            }
            ok
        }
    })
    .await;
    phase.server_cpu = stats::cpu_of(server.child.id()) - cpu0;
    phase.db_cpu = if pg { stats::cpu_of_postgres() - db0 } else { 0.0 };
    let after = metrics(client, server).await;
    let (a, z) = (before.get(q.name()).copied().unwrap_or_default(), after.get(q.name()).copied().unwrap_or_default());
    phase.statements = z.statements - a.statements;
    phase.round_trips = z.round_trips - a.round_trips;
    phase
}

async fn raw_phase(raw: &Arc<Raw>, b: &Arc<Boundaries>, q: Q, c: usize, secs: f64, pg: bool) -> Phase {
    let db0 = if pg { stats::cpu_of_postgres() } else { 0.0 };
    let self0 = stats::cpu_of(std::process::id());
    let sql: Arc<str> = if pg { raw_sql(q, true).into() } else { sqlite_sql(raw_sql(q, false)).into() };
    let (raw2, b2) = (Arc::clone(raw), Arc::clone(b));
    let mut phase = drive(c, secs, move |n| {
        let (raw, b, sql) = (Arc::clone(&raw2), Arc::clone(&b2), Arc::clone(&sql));
        async move { raw_once(&raw, q, n, &b, &sql).await }
    })
    .await;
    phase.db_cpu = if pg { stats::cpu_of_postgres() - db0 } else { 0.0 };
    // On SQLite the database runs inside the client: its CPU is the client process's.
    phase.server_cpu = if pg { 0.0 } else { stats::cpu_of(std::process::id()) - self0 };
    phase
}

fn report_header(backend: &str) {
    println!("\n## {backend}\n");
    println!(
        "| question | c | crm req/s | raw req/s | crm/raw | per round: median (min–max) | crm p50 ms | crm p99 ms | raw p50 ms | raw p99 ms | server CPU ms/req | db CPU ms/req crm | db CPU ms/req raw | statements/req | round trips/req | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

fn report(q: Q, c: usize, mut crm: Phase, mut raw: Phase, pairs: &mut [f64], pg: bool) {
    pairs.sort_by(f64::total_cmp);
    let pair = |i: usize| pairs.get(i).copied().unwrap_or(f64::NAN);
    let rounds = format!("{:.2} ({:.2}–{:.2})", pair(pairs.len() / 2), pair(0), pair(pairs.len().saturating_sub(1)));
    crm.latencies.sort();
    raw.latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let per = |x: f64, n: usize| x / (n.max(1) as f64);
    println!(
        "| {} | {c} | {:.0} | {:.0} | **{:.2}** | {rounds} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {} | {} | {:.2} | {:.2} | {} |",
        q.name(),
        crm.rate(),
        raw.rate(),
        crm.rate() / raw.rate().max(1e-9),
        ms(stats::percentile(&crm.latencies, 0.5)),
        ms(stats::percentile(&crm.latencies, 0.99)),
        ms(stats::percentile(&raw.latencies, 0.5)),
        ms(stats::percentile(&raw.latencies, 0.99)),
        crm.per_req_ms(crm.server_cpu),
        if pg { format!("{:.3}", crm.per_req_ms(crm.db_cpu)) } else { "in server".to_owned() },
        if pg { format!("{:.3}", raw.per_req_ms(raw.db_cpu)) } else { format!("{:.3} (in client)", raw.per_req_ms(raw.server_cpu)) },
        per(crm.statements, crm.requests),
        per(crm.round_trips, crm.requests),
        crm.errors + raw.errors,
    );
}

async fn run_backend(args: &Args, name: &str, url: &str, raw: Raw, data: PathBuf, sizes: Sizes, questions: &[Q]) {
    let pg = matches!(raw, Raw::Pg(_));
    let key = crm_server::authentication::DevKey::load_or_create(&data).unwrap();
    let tokens: Vec<String> =
        (0..TENANTS).map(|t| key.token("bench", &org(t), &["admin".to_owned()], &[], Duration::from_hours(24)).unwrap()).collect();
    let tokens = Arc::new(tokens);
    let server = start_server(args, url, &data).await;
    let raw = Arc::new(raw);
    let b = Arc::new(boundaries(&server, &tokens, &raw, sizes).await);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    report_header(name);
    for &q in questions {
        for &c in &args.concurrency {
            // Warm both paths (plans, caches, pools) before measuring.
            let _ = raw_phase(&raw, &b, q, c, args.secs.min(1.0) / 2.0, pg).await;
            let _ = server_phase(&client, &server, &tokens, &b, q, c, args.secs.min(1.0) / 2.0, pg).await;
            let (mut crm, mut ceiling) = (Phase::default(), Phase::default());
            // Each round pairs a ceiling phase with the server phase right after it: on a shared
            // machine a burst of other load hits both of a pair, so the pairs' ratios say more
            // than the totals do.
            let mut pairs = Vec::with_capacity(args.rounds);
            for _ in 0..args.rounds {
                let r = raw_phase(&raw, &b, q, c, args.secs, pg).await;
                let s = server_phase(&client, &server, &tokens, &b, q, c, args.secs, pg).await;
                pairs.push(s.rate() / r.rate().max(1e-9));
                ceiling.add(r);
                crm.add(s);
            }
            report(q, c, crm, ceiling, &mut pairs, pg);
        }
    }
    drop(server);
}

fn migrate(args: &Args, url: &str, data: &std::path::Path) {
    let status = server_cmd(args, url, data).arg("migrate").stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "crm-server migrate failed");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let sizes = Sizes::at(args.scale);
    let questions: Vec<Q> = if args.only.is_empty() {
        Q::ALL.to_vec()
    } else {
        args.only.iter().map(|s| Q::parse(s).unwrap_or_else(|| panic!("unknown question {s}"))).collect()
    };
    std::fs::create_dir_all(&args.dir).unwrap();
    let dir = std::fs::canonicalize(&args.dir).unwrap();
    println!(
        "# load: {} tenants x ({} accounts, {} contacts, {} leads); {} s x {} rounds per phase; server: {}",
        TENANTS,
        sizes.accounts,
        sizes.contacts,
        sizes.leads,
        args.secs,
        args.rounds,
        args.server.display()
    );
    if let Some(url) = &args.pg {
        let admin = args.pg_admin.clone().unwrap_or_else(|| {
            let (scheme, rest) = url.split_once("://").unwrap();
            let host = rest.split_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://postgres@{host}")
        });
        let data = dir.join("pg");
        migrate(&args, url, &data);
        let pool = PgPoolOptions::new().max_connections(32).connect(&admin).await.unwrap();
        let t = Instant::now();
        if seed::postgres(&pool, sizes).await.unwrap() {
            eprintln!("PostgreSQL seeded in {:.0} s", t.elapsed().as_secs_f64());
        }
        // As autovacuum would have by now after the previous run's writes: statistics and the
        // visibility map (index-only counts) up to date.
        for table in ["leads", "contacts", "accounts"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(&pool).await.unwrap();
        }
        run_backend(&args, "PostgreSQL", url, Raw::Pg(pool), data, sizes, &questions).await;
    }
    if args.sqlite {
        let data = dir.join("sqlite");
        let file = dir.join("bench.db");
        let url = format!("sqlite://{}", file.display());
        migrate(&args, &url, &data);
        let opts = SqliteConnectOptions::new()
            .filename(&file)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(16).connect_with(opts).await.unwrap();
        let t = Instant::now();
        if seed::sqlite(&pool, sizes).await.unwrap() {
            eprintln!("SQLite seeded in {:.0} s", t.elapsed().as_secs_f64());
        }
        run_backend(&args, "SQLite", &url, Raw::Sqlite(pool), data, sizes, &questions).await;
    }
}
