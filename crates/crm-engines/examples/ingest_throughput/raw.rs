//! The ceiling: the rows a batch of the benchmark writes, written with hand-written SQL on the same
//! tables (same indexes, triggers, foreign keys and row-level security) by a program that knows
//! everything in advance. One read for the known events (idempotency needs it), then one
//! multi-row INSERT per table (500 rows at most) with every value bound, the round-robin pointer
//! moved once, one outbox row per record with its state as payload, the tenant's outbox head
//! moved: no other read, no check, no update of a record after its insert.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crm_engines::ingest::SocialInput;
use serde_json::{Value as Json, json};
use sqlx::{Connection, PgConnection, SqliteConnection};
use uuid::Uuid;

/// A bound value (a null is written as `NULL` in the statement).
enum P {
    T(String),
    U(Uuid),
    At(DateTime<Utc>),
    I(i64),
    J(Json),
    N,
}

impl P {
    fn text(s: &str) -> P {
        P::T(s.to_owned())
    }
    fn json(&self) -> Json {
        match self {
            P::T(s) => json!(s),
            P::U(u) => json!(u.to_string()),
            P::At(t) => json!(crm_model::value::format_datetime(t)),
            P::I(i) => json!(i),
            P::J(j) => j.clone(),
            P::N => Json::Null,
        }
    }
}

pub enum Raw {
    Pg(PgConnection),
    Lite(SqliteConnection),
}

/// One table's rows.
struct Table {
    name: &'static str,
    model: &'static str,
    cols: Vec<&'static str>,
    ids: Vec<Uuid>,
    rows: Vec<Vec<P>>,
}

impl Table {
    fn new(name: &'static str, model: &'static str, cols: &[&'static str]) -> Table {
        let mut all = vec!["org_id", "id", "created_at", "updated_at", "created_by", "updated_by", "version"];
        all.extend_from_slice(cols);
        Table { name, model, cols: all, ids: Vec::new(), rows: Vec::new() }
    }
    /// A row: the system columns, then `values` in the order of `cols`.
    fn push(&mut self, org: &str, id: Uuid, at: DateTime<Utc>, values: Vec<P>) {
        let mut row = vec![P::text(org), P::U(id), P::At(at), P::At(at), P::text("bench"), P::text("bench"), P::I(1)];
        row.extend(values);
        self.ids.push(id);
        self.rows.push(row);
    }
}

impl Raw {
    pub async fn connect(url: &str) -> Raw {
        if url.starts_with("sqlite:") {
            Raw::Lite(SqliteConnection::connect(url).await.unwrap())
        } else {
            Raw::Pg(PgConnection::connect(url).await.unwrap())
        }
    }

    async fn plain(&mut self, sql: &'static str) {
        match self {
            Raw::Pg(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(|_| ()).unwrap(),
            Raw::Lite(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(|_| ()).unwrap(),
        }
    }

    async fn exec(&mut self, sql: &str, params: &[&P]) {
        match self {
            Raw::Pg(c) => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for p in params {
                    q = match p {
                        P::T(s) => q.bind(s.clone()),
                        P::U(u) => q.bind(*u),
                        P::At(t) => q.bind(*t),
                        P::I(i) => q.bind(*i),
                        P::J(j) => q.bind(sqlx::types::Json(j.clone())),
                        P::N => q,
                    };
                }
                q.execute(&mut *c).await.unwrap();
            }
            Raw::Lite(c) => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for p in params {
                    q = match p {
                        P::T(s) => q.bind(s.clone()),
                        P::U(u) => q.bind(u.to_string()),
                        P::At(t) => q.bind(crm_model::value::format_datetime(t)),
                        P::I(i) => q.bind(*i),
                        P::J(j) => q.bind(j.to_string()),
                        P::N => q,
                    };
                }
                q.execute(&mut *c).await.unwrap();
            }
        }
    }

    fn pg(&self) -> bool {
        matches!(self, Raw::Pg(_))
    }

    async fn insert(&mut self, table: &str, cols: &[&str], rows: &[Vec<P>]) {
        for chunk in rows.chunks(500) {
            let mut sql =
                format!("INSERT INTO \"{table}\" ({}) VALUES ", cols.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "));
            let mut params = Vec::new();
            for (i, row) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 { "(" } else { ", (" });
                for (j, p) in row.iter().enumerate() {
                    if j > 0 {
                        sql.push_str(", ");
                    }
                    if matches!(p, P::N) {
                        sql.push_str("NULL");
                        continue;
                    }
                    params.push(p);
                    if self.pg() {
                        sql.push_str(&format!("${}", params.len()));
                    } else {
                        sql.push('?');
                    }
                }
                sql.push(')');
            }
            self.exec(&sql, &params).await;
        }
    }

    /// Reads the ids of the tenant's rows of `table` (members, rules) for the ceiling's decisions.
    pub async fn ids(&mut self, org: &str, table: &str) -> Vec<Uuid> {
        let sql = format!("SELECT CAST(id AS TEXT) FROM \"{table}\" WHERE org_id = {} ORDER BY id", if self.pg() { "$1" } else { "?" });
        let rows: Vec<String> = match self {
            Raw::Pg(c) => {
                let mut tx = c.begin().await.unwrap();
                sqlx::query("SELECT set_config('crm.org_id', $1, true), set_config('crm.read_orgs', $1, true)")
                    .bind(org)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let r = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                r
            }
            Raw::Lite(c) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(&mut *c).await.unwrap(),
        };
        rows.iter().map(|s| Uuid::parse_str(s).unwrap()).collect()
    }
}

/// What the ceiling knows across batches.
pub struct Known {
    pub org: String,
    pub members: Vec<Uuid>,
    pub tag_rule: Uuid,
    pub routing_rule: Uuid,
    pub next_member: usize,
    pub authors: HashMap<String, Uuid>,
    pub threads: HashMap<String, (Option<Uuid>, Option<Uuid>)>,
}

/// The known events of a batch: one read (all a batch of duplicates needs).
async fn known_events(raw: &mut Raw, org: &str, events: &[SocialInput]) {
    let pg = raw.pg();
    // The known events: one read.
    let ids: Vec<P> = events.iter().map(|e| P::T(e.external_id.clone())).collect();
    let list = (0..ids.len()).map(|i| if pg { format!("${}", i + 3) } else { "?".to_owned() }).collect::<Vec<_>>().join(", ");
    let known = format!(
        "SELECT id FROM social_events WHERE org_id = {} AND platform = {} AND external_id IN ({list})",
        if pg { "$1" } else { "?" },
        if pg { "$2" } else { "?" }
    );
    let mut params = vec![P::text(org), P::text("x")];
    params.extend(ids);
    raw.exec(&known, &params.iter().collect::<Vec<_>>()).await;
}

/// A batch of duplicates as the ceiling handles it: the known events read in a transaction.
pub async fn duplicates(raw: &mut Raw, org: &str, events: &[SocialInput]) {
    let pg = raw.pg();
    raw.plain(if pg { "BEGIN" } else { "BEGIN IMMEDIATE" }).await;
    if pg {
        raw.exec("SELECT set_config('crm.org_id', $1, true), set_config('crm.read_orgs', $1, true)", &[&P::text(org)]).await;
    }
    known_events(raw, org, events).await;
    raw.plain("COMMIT").await;
}

/// Writes one batch as the ceiling does, in one transaction.
pub async fn batch(raw: &mut Raw, k: &mut Known, events: &[SocialInput]) {
    let at = Utc::now();
    let org = k.org.clone();
    let pg = raw.pg();
    raw.plain(if pg { "BEGIN" } else { "BEGIN IMMEDIATE" }).await;
    if pg {
        raw.exec("SELECT set_config('crm.org_id', $1, true), set_config('crm.read_orgs', $1, true)", &[&P::text(&org)]).await;
        raw.exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 7215))", &[&P::text(&org)]).await;
    }
    known_events(raw, &org, events).await;

    let mut contacts = Table::new("contacts", "Contact", &["first_name", "last_name", "social_handles", "crm_search"]);
    let mut leads = Table::new("leads", "Lead", &["name", "source", "status", "tags", "owner_id", "contact_id", "crm_search"]);
    let mut tickets = Table::new("tickets", "Ticket", &["subject", "description", "status", "priority", "contact_id", "crm_search"]);
    let mut social = Table::new(
        "social_events",
        "SocialEvent",
        &[
            "platform",
            "kind",
            "external_id",
            "thread",
            "author_handle",
            "text",
            "occurred_at",
            "contact_id",
            "lead_id",
            "ticket_id",
            "crm_search",
        ],
    );
    let mut activities =
        Table::new("activities", "Activity", &["kind", "subject_type", "subject_id", "title", "body", "occurred_at", "crm_search"]);
    let mut tags = Table::new("tag_assignments", "TagAssignment", &["lead_id", "tag", "rule_id"]);
    let mut assignments = Table::new("assignments", "Assignment", &["lead_id", "member_id", "rule_id", "strategy", "reason"]);
    for e in events {
        let key = format!("{}:{}", e.platform, e.author_handle.to_lowercase());
        let contact = *k.authors.entry(key.clone()).or_insert_with(|| {
            let id = Uuid::now_v7();
            let name = e.author_name.clone().unwrap_or_default();
            let (first, last) = name.rsplit_once(' ').unwrap_or(("", &name));
            let search = crm_orm::sql::search::fold(&format!("{first} {last} "));
            contacts.push(&org, id, at, vec![P::text(first), P::text(last), P::J(json!([key])), P::T(search)]);
            id
        });
        let thread = e.thread.clone().unwrap_or_else(|| e.external_id.clone());
        let link = *k.threads.entry(thread).or_insert_with(|| match e.kind.as_str() {
            "DM" => {
                let id = Uuid::now_v7();
                let member = k.members[k.next_member % k.members.len()];
                k.next_member += 1;
                let name = e.author_name.clone().unwrap_or_default();
                let search = crm_orm::sql::search::fold(&format!("{name}  "));
                leads.push(
                    &org,
                    id,
                    at,
                    vec![
                        P::text(&name),
                        P::text("SOCIAL"),
                        P::text("NEW"),
                        P::J(json!(["social"])),
                        P::U(member),
                        P::U(contact),
                        P::T(search),
                    ],
                );
                tags.push(&org, Uuid::now_v7(), at, vec![P::U(id), P::text("social"), P::U(k.tag_rule)]);
                assignments.push(
                    &org,
                    Uuid::now_v7(),
                    at,
                    vec![P::U(id), P::U(member), P::U(k.routing_rule), P::text("ROUND_ROBIN"), P::text("rule rr: round robin")],
                );
                (Some(id), None)
            }
            "MENTION" => {
                let id = Uuid::now_v7();
                let text = e.text.clone().unwrap_or_default();
                let search = crm_orm::sql::search::fold(&format!("{text} {text}"));
                tickets.push(
                    &org,
                    id,
                    at,
                    vec![P::T(text.clone()), P::T(text), P::text("OPEN"), P::text("NORMAL"), P::U(contact), P::T(search)],
                );
                (None, Some(id))
            }
            _ => (None, None),
        });
        let (lead, ticket) = link;
        let opt = |u: Option<Uuid>| u.map_or(P::N, P::U);
        let search = crm_orm::sql::search::fold(&format!("{} {}", e.author_handle, e.text.clone().unwrap_or_default()));
        social.push(
            &org,
            Uuid::now_v7(),
            at,
            vec![
                P::T(e.platform.clone()),
                P::T(e.kind.clone()),
                P::T(e.external_id.clone()),
                P::T(e.thread.clone().unwrap_or_else(|| e.external_id.clone())),
                P::T(e.author_handle.clone()),
                P::T(e.text.clone().unwrap_or_default()),
                P::At(at),
                P::U(contact),
                opt(lead),
                opt(ticket),
                P::T(search),
            ],
        );
        let (subject_type, subject) = match (lead, ticket) {
            (Some(l), _) => ("Lead", l),
            (None, Some(t)) => ("Ticket", t),
            _ => ("Contact", contact),
        };
        let title = format!("{} on {} from {}", e.kind, e.platform, e.author_handle);
        let body = e.text.clone().unwrap_or_default();
        let search = crm_orm::sql::search::fold(&format!("{title} {body}"));
        activities.push(
            &org,
            Uuid::now_v7(),
            at,
            vec![P::text("SOCIAL"), P::text(subject_type), P::U(subject), P::T(title), P::T(body), P::At(at), P::T(search)],
        );
    }
    // One outbox row per record: its state as payload.
    let mut outbox: Vec<Vec<P>> = Vec::new();
    for t in [&contacts, &leads, &tickets, &social, &activities, &tags, &assignments] {
        for (record, row) in t.ids.iter().zip(&t.rows) {
            let after: serde_json::Map<String, Json> = t.cols.iter().zip(row).map(|(c, p)| ((*c).to_owned(), p.json())).collect();
            outbox.push(vec![
                P::text(&org),
                P::U(Uuid::now_v7()),
                P::T(format!("{}.created", t.model)),
                P::text(t.model),
                P::U(*record),
                P::text("bench"),
                P::At(at),
                P::J(json!({ "before": null, "after": after })),
            ]);
        }
    }
    for t in [&contacts, &leads, &tickets, &social, &activities, &tags, &assignments] {
        raw.insert(t.name, &t.cols, &t.rows).await;
    }
    let last = k.members[(k.next_member + k.members.len() - 1) % k.members.len()];
    let rule = P::U(k.routing_rule);
    if pg {
        raw.exec(
            "UPDATE routing_rules SET last_assigned_id = $1, version = version + 1 WHERE org_id = $2 AND id = $3",
            &[&P::U(last), &P::text(&org), &rule],
        )
        .await;
    } else {
        raw.exec(
            "UPDATE routing_rules SET last_assigned_id = ?, version = version + 1 WHERE org_id = ? AND id = ?",
            &[&P::U(last), &P::text(&org), &rule],
        )
        .await;
    }
    raw.insert("crm_outbox", &["org_id", "event_id", "type", "model", "record_id", "actor", "at", "payload"], &outbox).await;
    let head = if pg {
        "INSERT INTO crm_outbox_heads (org_id, last_seq) SELECT org_id, MAX(seq) FROM crm_outbox WHERE org_id = $1 GROUP BY org_id \
         ON CONFLICT (org_id) DO UPDATE SET last_seq = EXCLUDED.last_seq"
    } else {
        "INSERT INTO crm_outbox_heads (org_id, last_seq) SELECT org_id, MAX(seq) FROM crm_outbox WHERE org_id = ? GROUP BY org_id \
         ON CONFLICT (org_id) DO UPDATE SET last_seq = excluded.last_seq"
    };
    raw.exec(head, &[&P::text(&org)]).await;
    raw.plain("COMMIT").await;
}
