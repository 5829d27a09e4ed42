//! The tenant benchmark: many tenants (10,000 by default), each with three custom fields of its
//! own on Lead (named and typed after the tenant: no two tenants share a schema) and 20 leads,
//! served by the real server over HTTP. Each tenant asks for its leads with its own fields. The
//! requests go round-robin over the first 50 tenants, then over all of them (the cold round, in
//! which every tenant's schema is derived and its plan learnt; the second, in which its read is
//! compiled; then as long again warm), then over the 50 again; at concurrency 8, on PostgreSQL and SQLite. It prints the throughput and latency of
//! each phase, the ratio of the all-tenant phases to the 50-tenant ones (same run, same
//! machine), the server's resident memory after each phase, and what `/metrics` says about the
//! schema cache.
//!
//! `scripts/tenant-bench` (see docs/ARCHITECTURE.md#many-tenants), or by hand:
//! `cargo build --release -p crm-server --bin crm-server --example tenants && target/release/examples/tenants --pg URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::cast_precision_loss, clippy::indexing_slicing)]
#![allow(
    clippy::cast_possible_wrap,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::missing_panics_doc,
    clippy::print_stdout
)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use crm_model::standard::standard_catalog;
use crm_model::{OrgId, RoleName};
use crm_orm::{MetaChange, Policy, Principal, Store, StoreOptions};
use serde_json::{Value as Json, json};
use server::Server;

#[path = "common/server.rs"]
mod server;

#[derive(Parser, Debug)]
#[command(about = "crm-server serving many tenants with schemas of their own")]
struct Args {
    /// PostgreSQL URL of an ordinary role (what the server connects as); leave out to skip.
    #[arg(long)]
    pg: Option<String>,
    /// Also run on SQLite (a file in the work directory).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sqlite: bool,
    /// Where the server's data directories and the SQLite file live.
    #[arg(long, default_value = "target/tenants")]
    dir: PathBuf,
    /// The server binary.
    #[arg(long, default_value = "target/release/crm-server")]
    server: PathBuf,
    /// Tenants, each with three custom fields on Lead.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Tenants of the small phase.
    #[arg(long, default_value_t = 50)]
    few: usize,
    /// Leads per tenant.
    #[arg(long, default_value_t = 20)]
    leads: usize,
    /// Seconds of each timed phase (the cold round takes what it takes).
    #[arg(long, default_value_t = 15.0)]
    secs: f64,
    /// Concurrent requests.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Server database connections.
    #[arg(long, default_value_t = 16)]
    db_connections: u32,
}

fn org(t: usize) -> String {
    format!("tb{t}")
}

/// Tenant `t`'s three custom fields: names and types of its own.
fn fields(t: usize) -> [(String, &'static str); 3] {
    let types = ["text", "int", "select", "date", "boolean", "decimal"];
    [0, 1, 2].map(|i| (format!("f{t}x{i}"), types[(t + i) % types.len()]))
}

/// A value of a custom field of type `ty`.
fn value(ty: &str, i: usize) -> Json {
    match ty {
        "int" => json!(i),
        "select" => json!(if i.is_multiple_of(2) { "A" } else { "B" }),
        "date" => json!("2026-06-01"),
        "boolean" => json!(i.is_multiple_of(2)),
        "decimal" => json!(format!("{i}.50")),
        _ => json!(format!("value {i}")),
    }
}

/// The question tenant `t` asks.
fn query(t: usize) -> String {
    let [a, b, c] = fields(t).map(|(n, _)| n);
    format!("{{ leads(first: 20, orderBy: createdAt_DESC) {{ id name status {a} {b} {c} }} }}")
}

/// Defines every tenant's fields and writes its leads, unless done before for these sizes.
async fn seed(url: &str, args: &Args) {
    let catalog = Arc::new(standard_catalog().unwrap());
    let store = Store::connect(url, Arc::clone(&catalog), StoreOptions { max_connections: 8, ..StoreOptions::default() }).await.unwrap();
    store.migrate().await.unwrap();
    let mark = format!("{}x{}", args.tenants, args.leads);
    // Leads are written directly, through a role that bypasses row-level security on PostgreSQL.
    let raw = Raw::connect(&url.replacen("://crm:crm@", "://postgres@", 1)).await;
    raw.execute("CREATE TABLE IF NOT EXISTS tenant_bench_seed (sizes TEXT NOT NULL)", &[]).await;
    // Seeded before for fewer tenants (with as many leads): only the rest is seeded now.
    let have = raw.seeded().await;
    let from = match have.as_deref().and_then(|h| h.split_once('x')) {
        None => 0,
        Some((t, l)) if l == args.leads.to_string() && t.parse::<usize>().is_ok_and(|t| t <= args.tenants) => t.parse().unwrap_or(0),
        Some(_) => panic!("{url} was seeded for other sizes ({have:?}): remove it first"),
    };
    if from == args.tenants {
        return;
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, catalog, raw, next) = (store.clone(), Arc::clone(&catalog), raw.clone(), Arc::clone(&next));
        let (tenants, leads) = (args.tenants, args.leads);
        tasks.push(tokio::spawn(async move {
            let policy = Policy::default_roles();
            loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= tenants {
                    break;
                }
                let p = Principal { sub: "seed".into(), org_id: OrgId::new(org(t)).unwrap(), roles: vec![RoleName::new("admin").unwrap()] };
                let access = crm_orm::access(&catalog, &policy, &p);
                for (name, ty) in fields(t) {
                    let mut def = json!({"name": name, "type": ty});
                    if ty == "select" {
                        def["options"] = json!(["A", "B"]);
                    }
                    let change = MetaChange::CreateField { model: "Lead".into(), def: serde_json::from_value(def).unwrap() };
                    store.define(&access.scope_metadata(change).unwrap()).await.unwrap();
                }
                let names = fields(t);
                for i in 0..leads {
                    let custom: serde_json::Map<String, Json> = names.iter().map(|(n, ty)| (n.clone(), value(ty, i))).collect();
                    let id = format!("{t:08x}-0003-4000-8000-{i:012x}");
                    let at = format!("2026-06-01T00:{:02}:{:02}.000000Z", i / 60, i % 60);
                    let sql = match raw {
                        Raw::Pg(_) => {
                            "INSERT INTO leads (org_id, id, created_at, updated_at, version, name, status, custom) \
                             VALUES ($1, $2::uuid, $3::timestamptz, $3::timestamptz, 1, $4, 'NEW', $5::jsonb)"
                        }
                        Raw::Sqlite(_) => {
                            "INSERT INTO leads (org_id, id, created_at, updated_at, version, name, status, custom) VALUES ($1, $2, $3, $3, 1, $4, 'NEW', $5)"
                        }
                    };
                    raw.execute(sql, &[org(t), id, at, format!("Lead {i}"), Json::Object(custom).to_string()]).await;
                }
                if t % 1000 == 999 {
                    eprintln!("  seeded {} tenants", t + 1);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    raw.execute("DELETE FROM tenant_bench_seed", &[]).await;
    raw.execute("INSERT INTO tenant_bench_seed (sizes) VALUES ($1)", &[mark]).await;
    eprintln!("  seeded in {:.0} s", started.elapsed().as_secs_f64());
}

/// The database the seed writes leads into directly.
#[derive(Clone)]
enum Raw {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Raw {
    async fn connect(url: &str) -> Raw {
        if url.starts_with("postgres") {
            Raw::Pg(sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(url).await.unwrap())
        } else {
            Raw::Sqlite(sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(url).await.unwrap())
        }
    }

    /// Runs `sql` with text parameters (`$1`…, which SQLite reads as well).
    async fn execute(&self, sql: &'static str, params: &[String]) {
        match self {
            Raw::Pg(p) => {
                let mut q = sqlx::query(sql);
                for v in params {
                    q = q.bind(v.clone());
                }
                q.execute(p).await.unwrap();
            }
            Raw::Sqlite(p) => {
                let mut q = sqlx::query(sql);
                for v in params {
                    q = q.bind(v.clone());
                }
                q.execute(p).await.unwrap();
            }
        }
    }

    async fn seeded(&self) -> Option<String> {
        let sql = "SELECT sizes FROM tenant_bench_seed";
        match self {
            Raw::Pg(p) => sqlx::query_scalar(sql).fetch_optional(p).await.unwrap(),
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_optional(p).await.unwrap(),
        }
    }
}

async fn start_server(args: &Args, url: &str, data: &Path) -> Server {
    let mut cmd = Command::new(&args.server);
    cmd.env("RUST_LOG", "warn")
        .env_remove("CRM_CONFIG")
        .args(["--database-url", url, "--data-dir"])
        .arg(data)
        .args(["--db-max-connections", &args.db_connections.to_string()])
        .args(["--max-tenant-schemas", &args.tenants.to_string()]);
    server::start(cmd, &args.server).await
}

/// Resident and peak resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok())
    };
    (kib("VmRSS:").unwrap_or(0.0) / 1024.0, kib("VmHWM:").unwrap_or(0.0) / 1024.0)
}

/// What one phase measured.
struct Phase {
    requests: usize,
    errors: usize,
    elapsed: f64,
    latencies: Vec<Duration>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.max(1e-9)
    }
    fn ms(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Requests from `c` tasks, the `n`-th to tenant `tenant_of(n)`, until `secs` pass or `limit`
/// requests were sent.
async fn drive(
    client: &reqwest::Client,
    server: &Server,
    tokens: &Arc<Vec<String>>,
    c: usize,
    secs: f64,
    limit: usize,
    tenant_of: Arc<dyn Fn(usize) -> usize + Send + Sync>,
) -> Phase {
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let url = Arc::new(format!("{}/graphql", server.base));
    let mut handles = Vec::new();
    for _ in 0..c {
        let (client, tokens, counter, url, tenant_of) =
            (client.clone(), Arc::clone(tokens), Arc::clone(&counter), Arc::clone(&url), Arc::clone(&tenant_of));
        handles.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                let t = tenant_of(n);
                let body = json!({ "query": query(t) }).to_string();
                let at = Instant::now();
                let resp =
                    client.post(url.as_str()).bearer_auth(&tokens[t]).header("content-type", "application/json").body(body).send().await;
                let ok = match resp {
                    Ok(r) if r.status().is_success() => {
                        let v: Json = r.json().await.unwrap_or(Json::Null);
                        v.get("errors").is_none() && v["data"]["leads"].as_array().is_some_and(|l| !l.is_empty())
                    }
                    _ => false,
                };
                lat.push(at.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut phase = Phase { requests: 0, errors: 0, elapsed: 0.0, latencies: Vec::new() };
    for h in handles {
        let (lat, errors) = h.await.unwrap();
        phase.requests += lat.len();
        phase.errors += errors;
        phase.latencies.extend(lat);
    }
    phase.elapsed = started.elapsed().as_secs_f64();
    phase
}

async fn run_backend(args: &Args, name: &str, url: &str, data: PathBuf) {
    eprintln!("{name}: seeding {} tenants…", args.tenants);
    seed(url, args).await;
    std::fs::create_dir_all(&data).unwrap();
    let key = crm_server::authentication::DevKey::load_or_create(&data).unwrap();
    let tokens: Vec<String> =
        (0..args.tenants).map(|t| key.token("bench", &org(t), &["admin".to_owned()], &[], Duration::from_hours(24)).unwrap()).collect();
    let tokens = Arc::new(tokens);
    let server = start_server(args, url, &data).await;
    let pid = server.child.id();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let (few, all, c, secs) = (args.few, args.tenants, args.concurrency, args.secs);
    // Warm the small phase's tenants (their schemas, plans, connections).
    drive(&client, &server, &tokens, c, 60.0, few * 2, Arc::new(move |n| n % few)).await;
    let few1 = drive(&client, &server, &tokens, c, secs, usize::MAX, Arc::new(move |n| n % few)).await;
    let rss_few = rss_mib(pid);
    let cold = drive(&client, &server, &tokens, c, 3600.0, all, Arc::new(move |n| n % all)).await;
    // The second visit to each tenant compiles its read (its plan was learnt in the first).
    let second = drive(&client, &server, &tokens, c, 3600.0, all, Arc::new(move |n| n % all)).await;
    let warm = drive(&client, &server, &tokens, c, secs, usize::MAX, Arc::new(move |n| n % all)).await;
    let rss_all = rss_mib(pid);
    let few2 = drive(&client, &server, &tokens, c, secs, usize::MAX, Arc::new(move |n| n % few)).await;
    let base = f64::midpoint(few1.rate(), few2.rate());
    println!("\n### {name}: {all} tenants with three custom fields each, concurrency {c}\n");
    println!("| phase | requests | req/s | vs {few} tenants | p50 ms | p99 ms | errors | server RSS after (peak) MiB |");
    println!("|---|---|---|---|---|---|---|---|");
    let row = |label: &str, p: &Phase, rss: Option<(f64, f64)>| {
        let rss = rss.map_or(String::new(), |(now, peak)| format!("{now:.0} ({peak:.0})"));
        println!(
            "| {label} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {rss} |",
            p.requests,
            p.rate(),
            p.rate() / base.max(1e-9),
            p.ms(0.5),
            p.ms(0.99),
            p.errors
        );
    };
    row(&format!("{few} tenants"), &few1, Some(rss_few));
    row(&format!("all {all}, cold round (every schema derived)"), &cold, None);
    row(&format!("all {all}, second round"), &second, None);
    row(&format!("all {all}, warm"), &warm, Some(rss_all));
    row(&format!("{few} tenants again"), &few2, Some(rss_mib(pid)));
    let metrics = client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    println!();
    for l in metrics.lines().filter(|l| l.starts_with("crm_schema_") || l.starts_with("crm_tenant_throttled")) {
        println!("    {l}");
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir).unwrap();
    if let Some(url) = &args.pg {
        run_backend(&args, "PostgreSQL", url, args.dir.join("pg-data")).await;
    }
    if args.sqlite {
        let file = args.dir.join(format!("tenants-{}.db", args.tenants));
        let url = format!("sqlite://{}?mode=rwc", file.display());
        run_backend(&args, "SQLite", &url, args.dir.join("sqlite-data")).await;
    }
}
