//! The dataset: per tenant 10,000 accounts, 30,000 contacts (three per account) and 100,000
//! leads (at scale 1; `--scale` multiplies), spread over five statuses, about 2% of them in the trash.
//! Deterministic: ids and timestamps derive from the tenant and row number. Written with one
//! `INSERT … SELECT` per table and tenant, straight into the tables the server created.

use sqlx::{PgPool, SqlitePool};

/// Rows per tenant.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub accounts: i64,
    pub contacts: i64,
    pub leads: i64,
}

impl Sizes {
    pub fn at(scale: f64) -> Sizes {
        #[allow(clippy::cast_possible_truncation)]
        let n = |base: f64| ((base * scale).round() as i64).max(10);
        Sizes { accounts: n(10_000.0), contacts: n(30_000.0), leads: n(100_000.0) }
    }
}

pub const TENANTS: usize = 10;
pub const STATUSES: [&str; 5] = ["NEW", "QUALIFIED", "CONTACTED", "CONVERTED", "REJECTED"];

pub fn org(t: usize) -> String {
    format!("bench{t}")
}

/// The `k`-th id (1-based) of kind `kind` in tenant `t`, as PostgreSQL and SQLite both write it.
pub fn id(t: usize, kind: u32, k: i64) -> String {
    format!("{t:08x}-{kind:04x}-4000-8000-{k:012x}")
}

const MARK: &str = "CREATE TABLE IF NOT EXISTS bench_seed (sizes TEXT NOT NULL)";

fn mark(s: Sizes) -> String {
    format!("{TENANTS}x{}/{}/{}", s.accounts, s.contacts, s.leads)
}

/// Seeds PostgreSQL through a role that bypasses row-level security, unless already seeded at
/// these sizes; then analyzes and vacuums so plans and index-only scans see the real data.
pub async fn postgres(admin: &PgPool, s: Sizes) -> sqlx::Result<bool> {
    sqlx::query(MARK).execute(admin).await?;
    let have: Option<String> = sqlx::query_scalar("SELECT sizes FROM bench_seed").fetch_optional(admin).await?;
    if have.as_deref() == Some(mark(s).as_str()) {
        return Ok(false);
    }
    for table in ["leads", "contacts", "accounts", "bench_seed"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(admin).await?;
    }
    let uuid =
        |kind: u32, k: &str| format!("(lpad(to_hex($1::int), 8, '0') || '-{kind:04x}-4000-8000-' || lpad(to_hex({k}), 12, '0'))::uuid");
    let at = |n: &str| format!("(TIMESTAMPTZ '2026-06-01 00:00:00+00' - ((i * 7919) % {n}) * INTERVAL '1 second')");
    for t in 0..TENANTS {
        let o = org(t);
        sqlx::query("INSERT INTO crm_tenants (org_id, created_at) VALUES ($1, now()) ON CONFLICT DO NOTHING")
            .bind(&o)
            .execute(admin)
            .await?;
        #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
        let ti = t as i32;
        let accounts = format!(
            "INSERT INTO accounts (org_id, id, created_at, updated_at, version, name, domain, industry, size) \
             SELECT $2, {id}, {at}, {at}, 1, 'Account ' || i, 'a' || i || '.example.com', 'Industry ' || (i % 20), \
             (ARRAY['MICRO','SMALL','MEDIUM','LARGE','ENTERPRISE'])[1 + i % 5] FROM generate_series(1, $3::bigint) i",
            id = uuid(1, "i"),
            at = at("$3")
        );
        sqlx::query(sqlx::AssertSqlSafe(accounts)).bind(ti).bind(&o).bind(s.accounts).execute(admin).await?;
        let contacts = format!(
            "INSERT INTO contacts (org_id, id, created_at, updated_at, version, first_name, last_name, email, account_id) \
             SELECT $2, {id}, {at}, {at}, 1, 'First' || i, 'Last' || i, 'c' || i || '@example.com', {acc} \
             FROM generate_series(1, $3::bigint) i",
            id = uuid(2, "i"),
            at = at("$3"),
            acc = uuid(1, &format!("(1 + (i - 1) % {})", s.accounts))
        );
        sqlx::query(sqlx::AssertSqlSafe(contacts)).bind(ti).bind(&o).bind(s.contacts).execute(admin).await?;
        let leads = format!(
            "INSERT INTO leads (org_id, id, created_at, updated_at, version, deleted_at, name, email, company, source, status, score, account_id) \
             SELECT $2, {id}, {at}, {at}, 1, CASE WHEN i % 47 = 0 THEN {at} END, 'Lead ' || i, 'l' || i || '@example.com', \
             'Company ' || (i % 1000), (ARRAY['WEB','SOCIAL','REFERRAL','EVENT','EMAIL'])[1 + i % 5], \
             (ARRAY['NEW','QUALIFIED','CONTACTED','CONVERTED','REJECTED'])[1 + i % 5], i % 101, \
             CASE WHEN i % 3 = 0 THEN {acc} END FROM generate_series(1, $3::bigint) i",
            id = uuid(3, "i"),
            at = at("$3"),
            acc = uuid(1, &format!("(1 + (i - 1) % {})", s.accounts))
        );
        sqlx::query(sqlx::AssertSqlSafe(leads)).bind(ti).bind(&o).bind(s.leads).execute(admin).await?;
        eprintln!("  seeded {o}");
    }
    sqlx::query("INSERT INTO bench_seed (sizes) VALUES ($1)").bind(mark(s)).execute(admin).await?;
    for table in ["leads", "contacts", "accounts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(admin).await?;
    }
    Ok(true)
}

/// Seeds SQLite the same way (a recursive CTE for the row numbers).
pub async fn sqlite(pool: &SqlitePool, s: Sizes) -> sqlx::Result<bool> {
    sqlx::query(MARK).execute(pool).await?;
    let have: Option<String> = sqlx::query_scalar("SELECT sizes FROM bench_seed").fetch_optional(pool).await?;
    if have.as_deref() == Some(mark(s).as_str()) {
        return Ok(false);
    }
    for table in ["leads", "contacts", "accounts", "bench_seed"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(pool).await?;
    }
    let uuid = |kind: u32, k: &str| format!("printf('%08x-{kind:04x}-4000-8000-%012x', ?1, {k})");
    let at =
        |n: &str| format!("(strftime('%Y-%m-%dT%H:%M:%S', '2026-06-01 00:00:00', '-' || ((i * 7919) % {n}) || ' seconds') || '.000000Z')");
    let series = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?3) ";
    for t in 0..TENANTS {
        let o = org(t);
        sqlx::query("INSERT OR IGNORE INTO crm_tenants (org_id, created_at) VALUES (?1, '2026-06-01T00:00:00.000000Z')")
            .bind(&o)
            .execute(pool)
            .await?;
        #[allow(clippy::cast_possible_wrap)]
        let ti = t as i64;
        let mut tx = pool.begin().await?;
        let accounts = format!(
            "{series}INSERT INTO accounts (org_id, id, created_at, updated_at, version, name, domain, industry, size) \
             SELECT ?2, {id}, {at}, {at}, 1, 'Account ' || i, 'a' || i || '.example.com', 'Industry ' || (i % 20), \
             CASE i % 5 WHEN 0 THEN 'MICRO' WHEN 1 THEN 'SMALL' WHEN 2 THEN 'MEDIUM' WHEN 3 THEN 'LARGE' ELSE 'ENTERPRISE' END FROM s",
            id = uuid(1, "i"),
            at = at("?3")
        );
        sqlx::query(sqlx::AssertSqlSafe(accounts)).bind(ti).bind(&o).bind(s.accounts).execute(&mut *tx).await?;
        let contacts = format!(
            "{series}INSERT INTO contacts (org_id, id, created_at, updated_at, version, first_name, last_name, email, account_id) \
             SELECT ?2, {id}, {at}, {at}, 1, 'First' || i, 'Last' || i, 'c' || i || '@example.com', {acc} FROM s",
            id = uuid(2, "i"),
            at = at("?3"),
            acc = uuid(1, &format!("(1 + (i - 1) % {})", s.accounts))
        );
        sqlx::query(sqlx::AssertSqlSafe(contacts)).bind(ti).bind(&o).bind(s.contacts).execute(&mut *tx).await?;
        let leads = format!(
            "{series}INSERT INTO leads (org_id, id, created_at, updated_at, version, deleted_at, name, email, company, source, status, score, account_id) \
             SELECT ?2, {id}, {at}, {at}, 1, CASE WHEN i % 47 = 0 THEN {at} END, 'Lead ' || i, 'l' || i || '@example.com', \
             'Company ' || (i % 1000), CASE i % 5 WHEN 0 THEN 'WEB' WHEN 1 THEN 'SOCIAL' WHEN 2 THEN 'REFERRAL' WHEN 3 THEN 'EVENT' ELSE 'EMAIL' END, \
             CASE i % 5 WHEN 0 THEN 'NEW' WHEN 1 THEN 'QUALIFIED' WHEN 2 THEN 'CONTACTED' WHEN 3 THEN 'CONVERTED' ELSE 'REJECTED' END, i % 101, \
             CASE WHEN i % 3 = 0 THEN {acc} END FROM s",
            id = uuid(3, "i"),
            at = at("?3"),
            acc = uuid(1, &format!("(1 + (i - 1) % {})", s.accounts))
        );
        sqlx::query(sqlx::AssertSqlSafe(leads)).bind(ti).bind(&o).bind(s.leads).execute(&mut *tx).await?;
        tx.commit().await?;
        eprintln!("  seeded {o}");
    }
    sqlx::query("INSERT INTO bench_seed (sizes) VALUES (?1)").bind(mark(s)).execute(pool).await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(true)
}
