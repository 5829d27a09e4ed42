//! The questions the benchmark asks, each as a GraphQL request to the server and as the
//! hand-written SQL that answers it best (the ceiling): prepared, explicit `org_id`, rows only.

use serde_json::json;

use crate::seed::{STATUSES, TENANTS, id};

/// One question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Q {
    /// `leads(where:{status}, orderBy: createdAt_DESC, first: 20)`.
    List,
    /// `accounts(first: 20, orderBy: createdAt_DESC) { contacts(first: 5, orderBy: createdAt_DESC) }`.
    Nested,
    /// `leadsConnection(where:{status}) { aggregate { count } }`.
    Count,
    /// Q1 with each lead's account (`account { id name }`).
    ToOne,
    /// Q1 as a connection, first page.
    Page1,
    /// Q1 as a connection, page 500 (after the 9,980th row, by cursor).
    Page500,
    /// A write: `updateLead` of one lead's score.
    Write,
}

impl Q {
    pub const ALL: [Q; 7] = [Q::List, Q::Nested, Q::Count, Q::ToOne, Q::Page1, Q::Page500, Q::Write];

    pub fn name(self) -> &'static str {
        match self {
            Q::List => "Q1_list",
            Q::Nested => "Q2_nested",
            Q::Count => "Q3_count",
            Q::ToOne => "Q4_to_one",
            Q::Page1 => "Q5_page1",
            Q::Page500 => "Q6_page500",
            Q::Write => "Q7_write",
        }
    }

    pub fn parse(s: &str) -> Option<Q> {
        Q::ALL.into_iter().find(|q| q.name().eq_ignore_ascii_case(s) || q.name().split('_').next() == Some(s))
    }
}

const LIST: &str =
    "query Q1_list($s: LeadStatus!) { leads(where: {status: $s}, orderBy: createdAt_DESC, first: 20) { id name email status createdAt } }";
const NESTED: &str = "query Q2_nested { accounts(first: 20, orderBy: createdAt_DESC) { id name contacts(first: 5, orderBy: createdAt_DESC) { id firstName lastName email } } }";
const COUNT: &str = "query Q3_count($s: LeadStatus!) { leadsConnection(where: {status: $s}) { aggregate { count } } }";
const TO_ONE: &str = "query Q4_to_one($s: LeadStatus!) { leads(where: {status: $s}, orderBy: createdAt_DESC, first: 20) { id name status account { id name } } }";
/// Q5 and Q6: the same page query (under the question's operation name).
fn page(name: &str) -> String {
    format!(
        "query {name}($s: LeadStatus!, $after: String) {{ leadsConnection(where: {{status: $s}}, orderBy: createdAt_DESC, first: 20, after: $after) \
         {{ edges {{ cursor node {{ id name email status createdAt }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
}
const WRITE: &str = "mutation Q7_write($id: ID!, $score: Long!) { updateLead(where: {id: $id}, data: {score: $score}) { id score } }";

/// The `n`-th request body of `q` for tenant `t`; `cursor` is the page-500 cursor of the tenant
/// and status (taken from the server before the run).
pub fn body(q: Q, t: usize, n: usize, cursor: Option<&str>) -> String {
    let s = status(n);
    let v = match q {
        Q::List => json!({"query": LIST, "variables": {"s": s}}),
        Q::Nested => json!({"query": NESTED}),
        Q::Count => json!({"query": COUNT, "variables": {"s": s}}),
        Q::ToOne => json!({"query": TO_ONE, "variables": {"s": s}}),
        Q::Page1 => json!({"query": page(q.name()), "variables": {"s": s}}),
        Q::Page500 => json!({"query": page(q.name()), "variables": {"s": s, "after": cursor}}),
        Q::Write => json!({"query": WRITE, "variables": {"id": id(t, 3, lead_no(n)), "score": n % 101}}),
    };
    v.to_string()
}

/// The lead a write touches: a live one (not a multiple of 47) spread over the first 10,000.
pub fn lead_no(n: usize) -> i64 {
    #[allow(clippy::cast_possible_wrap)]
    let k = (n * 7 % 9_973) as i64 + 1;
    if k % 47 == 0 { k + 1 } else { k }
}

/// The hand-written SQL of `q` (PostgreSQL placeholders; SQLite takes `$n` as well).
pub fn raw_sql(q: Q, pg: bool) -> &'static str {
    match (q, pg) {
        (Q::List | Q::Page1, _) => {
            "SELECT id, name, email, status, created_at FROM leads WHERE org_id = $1 AND status = $2 AND deleted_at IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT 21"
        }
        (Q::Page500, _) => {
            "SELECT id, name, email, status, created_at FROM leads WHERE org_id = $1 AND status = $2 AND deleted_at IS NULL \
             AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT 21"
        }
        (Q::Nested, false) => {
            // SQLite has no LATERAL: the five newest contacts per account by a correlated subquery.
            "WITH a AS (SELECT id, name, created_at FROM accounts WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 20) \
             SELECT a.id, a.name, c.id, c.first_name, c.last_name, c.email FROM a LEFT JOIN contacts c ON c.rowid IN \
             (SELECT rowid FROM contacts WHERE org_id = $1 AND account_id = a.id AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 5) \
             ORDER BY a.created_at DESC, a.id DESC, c.created_at DESC, c.id DESC"
        }
        (Q::Nested, true) => {
            "SELECT a.id, a.name, c.id, c.first_name, c.last_name, c.email FROM \
             (SELECT id, name, created_at FROM accounts WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 20) a \
             LEFT JOIN LATERAL (SELECT id, first_name, last_name, email FROM contacts WHERE org_id = $1 AND account_id = a.id \
             AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 5) c ON TRUE ORDER BY a.created_at DESC, a.id DESC"
        }
        (Q::Count, _) => "SELECT COUNT(*) FROM leads WHERE org_id = $1 AND status = $2 AND deleted_at IS NULL",
        (Q::ToOne, _) => {
            "SELECT l.id, l.name, l.status, a.id, a.name FROM \
             (SELECT id, name, status, account_id, created_at FROM leads WHERE org_id = $1 AND status = $2 AND deleted_at IS NULL \
              ORDER BY created_at DESC, id DESC LIMIT 20) l \
             LEFT JOIN accounts a ON a.org_id = $1 AND a.id = l.account_id AND a.deleted_at IS NULL ORDER BY l.created_at DESC, l.id DESC"
        }
        (Q::Write, true) => {
            "UPDATE leads SET score = $3, version = version + 1, updated_at = now() WHERE org_id = $1 AND id = $2::uuid AND deleted_at IS NULL RETURNING id, score"
        }
        (Q::Write, false) => {
            "UPDATE leads SET score = $3, version = version + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ') WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING id, score"
        }
    }
}

/// The tenant of request `n` (requests go round the tenants).
pub fn tenant(n: usize) -> usize {
    n % TENANTS
}

/// The status of request `n` (independent of its tenant).
pub fn status(n: usize) -> &'static str {
    STATUSES[(n / TENANTS) % STATUSES.len()]
}
