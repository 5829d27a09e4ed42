//! The outbox at scale: write throughput and idle cost with millions of processed events kept,
//! against an empty outbox on the same machine in the same run.
//!
//! For each database given with `--full N=URL` the outbox is seeded (once; reused by later runs)
//! with N events over 1,000 tenants, every one already processed by both consumers, as after
//! days of traffic within the retention period. Then, alternately on the empty database
//! (`--empty URL`) and each full one, with the workers running: eight writers create leads for
//! `--secs` (each lead's `lead.created` qualifies it through an automation rule, so the consumers
//! work too). At the end, with the workers running and nothing to do, the CPU the process (and,
//! with `--pg-pid`, the PostgreSQL cluster's processes) uses over `--idle-secs`, and how long a
//! consumer's look for work takes.
//!
//! `scripts/outbox-bench` runs it on a throwaway PostgreSQL and on SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a measuring program: arithmetic on counts and durations far inside the casts' range
#![allow(clippy::missing_panics_doc, clippy::too_many_lines)] // it stops at the first failure

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crm_engines::{Engines, WorkerOptions, Workers};
use crm_model::OrgId;
use crm_model::standard::standard_catalog;
use crm_orm::{Access, Store, StoreOptions};
use crm_test_kit::Creates;
use serde_json::json;
use sqlx::Connection;

const SEED_TENANTS: u64 = 1000;
const WRITERS: usize = 8;

struct Args {
    empty: String,
    full: Vec<(u64, String)>,
    secs: f64,
    rounds: usize,
    idle_secs: f64,
    pg_pid: Option<u32>,
}

fn args() -> Args {
    let mut a = Args { empty: String::new(), full: Vec::new(), secs: 5.0, rounds: 3, idle_secs: 10.0, pg_pid: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--empty" => a.empty = value(),
            "--full" => {
                let v = value();
                let (n, url) = v.split_once('=').expect("--full N=URL");
                a.full.push((n.replace('_', "").parse().expect("N"), url.to_owned()));
            }
            "--secs" => a.secs = value().parse().unwrap(),
            "--rounds" => a.rounds = value().parse().unwrap(),
            "--idle-secs" => a.idle_secs = value().parse().unwrap(),
            "--pg-pid" => a.pg_pid = Some(value().parse().unwrap()),
            "--help" | "-h" => {
                println!("outbox_scale --empty URL --full N=URL [--full N=URL] [--secs 5] [--rounds 3] [--idle-secs 10] [--pg-pid PID]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.empty.is_empty() && !a.full.is_empty(), "--empty URL and --full N=URL are required (see --help)");
    a
}

/// Seeds `n` processed events over [`SEED_TENANTS`] tenants, unless the database has them.
async fn seed(url: &str, n: u64) {
    let postgres = url.starts_with("postgres");
    let at = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let stmts: Vec<String> = if postgres {
        let mut v = vec!["CREATE TABLE IF NOT EXISTS bench_seeded (n BIGINT NOT NULL)".to_owned()];
        v.push("SELECT set_config('crm.platform', 'on', true)".to_owned());
        let chunk = 1_000_000;
        let mut from = 1;
        while from <= n {
            let to = std::cmp::min(from + chunk - 1, n);
            v.push(format!(
                "INSERT INTO crm_outbox (org_id, event_id, type, model, record_id, actor, at, payload) \
                 SELECT 'seed-' || (g % {SEED_TENANTS}), gen_random_uuid(), 'lead.updated', 'Lead', gen_random_uuid(), 'seed', '{at}', \
                 jsonb_build_object('before', jsonb_build_object('name', 'lead ' || g, 'note', repeat('b', 150)), \
                                    'after', jsonb_build_object('name', 'lead ' || g, 'note', repeat('a', 150))) \
                 FROM generate_series({from}, {to}) g"
            ));
            from = to + 1;
        }
        v.push(
            "INSERT INTO crm_outbox_heads (org_id, last_seq) SELECT org_id, MAX(seq) FROM crm_outbox WHERE org_id LIKE 'seed-%' GROUP BY org_id \
             ON CONFLICT (org_id) DO UPDATE SET last_seq = EXCLUDED.last_seq"
                .to_owned(),
        );
        v.push(
            "INSERT INTO crm_event_cursors (consumer, org_id, last_seq, updated_at) \
             SELECT c.consumer, h.org_id, h.last_seq, now() FROM crm_outbox_heads h CROSS JOIN (VALUES ('automation'), ('webhooks')) AS c(consumer) \
             WHERE h.org_id LIKE 'seed-%' ON CONFLICT (consumer, org_id) DO UPDATE SET last_seq = EXCLUDED.last_seq"
                .to_owned(),
        );
        v.push(format!("INSERT INTO bench_seeded (n) VALUES ({n})"));
        v
    } else {
        let mut v = vec!["CREATE TABLE IF NOT EXISTS bench_seeded (n INTEGER NOT NULL)".to_owned()];
        let chunk = 1_000_000;
        let mut from = 1;
        while from <= n {
            let to = std::cmp::min(from + chunk - 1, n);
            v.push(format!(
                "WITH RECURSIVE g(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM g WHERE i < {to}), \
                 u(i, h, r) AS (SELECT i, lower(hex(randomblob(16))), lower(hex(randomblob(16))) FROM g) \
                 INSERT INTO crm_outbox (org_id, event_id, type, model, record_id, actor, at, payload) \
                 SELECT 'seed-' || (i % {SEED_TENANTS}), \
                   substr(h,1,8) || '-' || substr(h,9,4) || '-' || substr(h,13,4) || '-' || substr(h,17,4) || '-' || substr(h,21,12), \
                   'lead.updated', 'Lead', \
                   substr(r,1,8) || '-' || substr(r,9,4) || '-' || substr(r,13,4) || '-' || substr(r,17,4) || '-' || substr(r,21,12), \
                   'seed', '{at}', \
                   json_object('before', json_object('name', 'lead ' || i, 'note', printf('%.150c', 'b')), \
                               'after', json_object('name', 'lead ' || i, 'note', printf('%.150c', 'a'))) \
                 FROM u"
            ));
            from = to + 1;
        }
        v.push(
            "INSERT INTO crm_outbox_heads (org_id, last_seq) SELECT org_id, MAX(seq) FROM crm_outbox WHERE org_id LIKE 'seed-%' GROUP BY org_id \
             ON CONFLICT (org_id) DO UPDATE SET last_seq = excluded.last_seq"
                .to_owned(),
        );
        v.push(format!(
            "INSERT INTO crm_event_cursors (consumer, org_id, last_seq, updated_at) \
             SELECT c.consumer, h.org_id, h.last_seq, '{at}' FROM crm_outbox_heads h CROSS JOIN (SELECT 'automation' AS consumer UNION ALL SELECT 'webhooks') AS c \
             WHERE h.org_id LIKE 'seed-%' ON CONFLICT (consumer, org_id) DO UPDATE SET last_seq = excluded.last_seq"
        ));
        v.push(format!("INSERT INTO bench_seeded (n) VALUES ({n})"));
        v
    };
    let t = Instant::now();
    // The same steps on either backend's connection type.
    macro_rules! run {
        ($conn:ty, $analyze:expr) => {{
            let mut c = <$conn>::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(stmts[0].clone())).execute(&mut c).await.unwrap();
            let have: Vec<i64> = sqlx::query_scalar("SELECT n FROM bench_seeded").fetch_all(&mut c).await.unwrap();
            if have.first().copied().unwrap_or(0) as u64 >= n {
                return;
            }
            let mut tx = c.begin().await.unwrap();
            for (i, s) in stmts.iter().enumerate().skip(1) {
                sqlx::raw_sql(sqlx::AssertSqlSafe(s.clone())).execute(&mut *tx).await.unwrap();
                eprintln!("  seeding: step {i} of {} ({:.0?})", stmts.len() - 1, t.elapsed());
            }
            tx.commit().await.unwrap();
            sqlx::raw_sql($analyze).execute(&mut c).await.unwrap();
        }};
    }
    if postgres {
        run!(sqlx::PgConnection, "VACUUM ANALYZE crm_outbox");
    } else {
        run!(sqlx::SqliteConnection, "ANALYZE");
    }
    eprintln!("  seeded {n} processed events in {:.0?}", t.elapsed());
}

struct Db {
    label: String,
    store: Store,
    writers: Vec<Access>,
    rates: Vec<f64>,
}

async fn open(label: String, url: &str) -> Db {
    let url = if url.starts_with("sqlite:") && !url.contains('?') { format!("{url}?mode=rwc") } else { url.to_owned() };
    let store = Engines::install(&Store::connect(&url, Arc::new(standard_catalog().unwrap()), StoreOptions::default()).await.unwrap());
    store.migrate().await.unwrap();
    let platform = store.cross_tenant_platform_work();
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let org = OrgId::new(format!("w-{}", uuid::Uuid::now_v7().simple())).unwrap();
        let access = platform.system_access(org, "bench");
        let rule =
            json!({ "name": "Qualify", "event": "lead.created", "condition": { "status": "NEW" }, "set": { "status": "QUALIFIED" } });
        store.transaction(&access, &Creates(vec![("AutomationRule", rule)])).await.unwrap();
        writers.push(access);
    }
    Db { label, store, writers, rates: Vec::new() }
}

fn opts() -> WorkerOptions {
    WorkerOptions::default()
}

/// Writes/s over `secs` with the workers running, then waits until they have caught up.
async fn write_round(db: &mut Db, secs: f64) {
    let workers = Workers::start(db.store.clone(), opts());
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for access in db.writers.clone() {
        let (store, done) = (db.store.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < until {
                store.transaction(&access, &Creates(vec![("Lead", json!({ "name": format!("lead {i}") }))])).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    let t = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    db.rates.push(rate);
    caught_up(&db.store).await;
    workers.stop().await;
}

async fn caught_up(store: &Store) {
    let platform = store.cross_tenant_platform_work();
    let t = Instant::now();
    loop {
        let a = platform.lag("automation", &[]).await.unwrap().events;
        let w = platform.lag("webhooks", &[]).await.unwrap().events;
        if a == 0 && w == 0 {
            return;
        }
        assert!(t.elapsed() < Duration::from_mins(5), "the consumers did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// CPU seconds used so far by process `pid`, and (with `children`) by its child processes.
fn cpu_secs(pid: u32, children: bool) -> f64 {
    let ticks = |p: &str| -> u64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { return 0 };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0 };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state ppid … utime (14th field of the line) stime (15th).
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    let ppid = |p: &str| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    let mut total = ticks(&pid.to_string());
    if children {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.chars().all(|c| c.is_ascii_digit()) && ppid(&name) == Some(pid) {
                total += ticks(&name);
            }
        }
    }
    total as f64 / 100.0 // USER_HZ: 100 on Linux
}

async fn idle(db: &Db, secs: f64, pg_pid: Option<u32>) -> (f64, Option<f64>, f64) {
    let workers = Workers::start(db.store.clone(), opts());
    tokio::time::sleep(Duration::from_secs(2)).await;
    caught_up(&db.store).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let me = std::process::id();
    let (a, pa) = (cpu_secs(me, false), pg_pid.map(|p| cpu_secs(p, true)));
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (b, pb) = (cpu_secs(me, false), pg_pid.map(|p| cpu_secs(p, true)));
    workers.stop().await;
    // A consumer's look for work when there is none (what each wake-up and sweep costs).
    let platform = db.store.cross_tenant_platform_work();
    let mut looks = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        assert!(platform.pending_events("automation", 100, &[], "").await.unwrap().is_empty());
        looks.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    looks.sort_by(f64::total_cmp);
    let pct = |d: f64| 100.0 * d / secs;
    (pct(b - a), pa.zip(pb).map(|(a, b)| pct(b - a)), looks[looks.len() / 2])
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let a = args();
    let mut dbs = vec![open("empty outbox".to_owned(), &a.empty).await];
    for (n, url) in &a.full {
        dbs.push(open(format!("{n} processed events"), url).await);
        eprintln!("seeding {url} with {n} processed events (once)");
        seed(url, *n).await;
    }
    println!("{:?}, {WRITERS} writers, {} rounds of {:.1} s, each database in turn", dbs[0].store.dialect(), a.rounds, a.secs);
    for r in 0..a.rounds {
        for db in &mut dbs {
            write_round(db, a.secs).await;
            eprintln!("  round {r}: {}: {:.0} writes/s", db.label, db.rates.last().unwrap());
        }
    }
    let base = median(&dbs[0].rates);
    println!("| outbox | writes/s (median) | vs empty | idle CPU, server | idle CPU, PostgreSQL | a consumer's look |");
    println!("|---|---|---|---|---|---|");
    for db in &dbs {
        let (me, pg, look) = idle(db, a.idle_secs, a.pg_pid).await;
        let m = median(&db.rates);
        println!(
            "| {} | {m:.0} | {:.2}x | {me:.2}% of a core | {} | {look:.2} ms |",
            db.label,
            m / base,
            pg.map_or_else(|| "-".to_owned(), |p| format!("{p:.2}% of a core"))
        );
    }
}
