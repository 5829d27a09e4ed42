//! Request metrics in the Prometheus text exposition format (version 0.0.4), written by hand.
//!
//! - `crm_graphql_requests_total{operation,outcome}` and the histogram
//!   `crm_graphql_request_duration_seconds{operation,outcome}` for `POST /graphql`. `operation` is
//!   the GraphQL operation name (`operationName`, else the name of the document's first operation),
//!   `anonymous` for unnamed operations and requests whose body was not read (not authenticated,
//!   not JSON), `invalid` for a name that is not a GraphQL name, and `other` once
//!   [`MAX_OPERATIONS`] distinct names have been seen. `outcome` is `ok`, the first error's
//!   `extensions.code` (`UNAUTHENTICATED`, `FORBIDDEN`, `BAD_USER_INPUT`, `LIMIT_EXCEEDED`,
//!   `INTERNAL`, …), `timeout`, or the HTTP status class (`4xx`) when there is no code.
//! - `crm_graphql_db_statements_total{operation,outcome}` and
//!   `crm_graphql_db_round_trips_total{operation,outcome}`: what those requests asked of the
//!   database (round trips add transactions' `BEGIN` and `COMMIT` to the statements).
//! - `crm_http_requests_total{route,method,status}` for every request; `route` is the matched route
//!   (`/graphql`) or `unmatched`, so it is bounded by the routes.
//! - `crm_http_requests_in_flight`, `crm_metrics_label_overflow_total`, `crm_build_info{version}`.
//! - `crm_tenant_throttled_total`: requests refused by their tenant's `--tenant-concurrency`.
//!
//! The handler of `/metrics` adds the schema cache's counters (`crm_schema_*`) and the database
//! pool's gauges (`crm_db_pool_*`).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};

/// Most distinct operation names labelled; later names count as `other`.
pub const MAX_OPERATIONS: usize = 200;
/// Most distinct outcomes labelled; later ones count as `other`.
const MAX_OUTCOMES: usize = 64;
/// Longest operation name kept as a label.
const MAX_NAME_LEN: usize = 128;
/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The operation label of an unnamed operation or an unread request.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    buckets: [u64; BUCKETS.len() + 1],
    count: u64,
    sum: f64,
    statements: u64,
    round_trips: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        let slot = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        if let Some(b) = self.buckets.get_mut(slot) {
            *b += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Series {
    operations: HashSet<String>,
    outcomes: HashSet<String>,
    graphql: BTreeMap<(String, String), Histogram>,
    http: BTreeMap<(String, &'static str, u16), u64>,
}

impl Series {
    /// `value` if already known or there is room for it, else `other`.
    fn admit(set: &mut HashSet<String>, cap: usize, value: &str, overflow: &AtomicU64) -> String {
        if set.contains(value) {
            return value.to_owned();
        }
        if set.len() < cap {
            set.insert(value.to_owned());
            return value.to_owned();
        }
        overflow.fetch_add(1, Ordering::Relaxed);
        "other".to_owned()
    }
}

/// The server's metrics. One per [`crate::AppState`]; cheap to update (one short lock).
#[derive(Default)]
pub struct Metrics {
    series: Mutex<Series>,
    in_flight: AtomicI64,
    overflow: AtomicU64,
    /// Requests refused because their tenant had its limit of requests working.
    throttled: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Counts a request as in flight until dropped.
pub(crate) struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        // A panic while holding the lock leaves consistent counters: keep going.
        self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Records one GraphQL request. `operation` should come from [`operation_label`]; both labels
    /// are capped here.
    pub fn record_graphql(&self, operation: &str, outcome: &str, elapsed: Duration, db: crm_orm::DbUse) {
        let outcome = if is_label_word(outcome) { outcome } else { "other" };
        let mut s = self.lock();
        let op = Series::admit(&mut s.operations, MAX_OPERATIONS, operation, &self.overflow);
        let outcome = Series::admit(&mut s.outcomes, MAX_OUTCOMES, outcome, &self.overflow);
        let h = s.graphql.entry((op, outcome)).or_default();
        h.observe(elapsed.as_secs_f64());
        h.statements += db.statements;
        h.round_trips += db.round_trips;
    }

    /// Records one HTTP request on `route` (a matched route pattern, or `None`).
    /// Counts a request refused by its tenant's limit.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_http(&self, route: Option<&str>, method: &Method, status: StatusCode) {
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            _ => "other",
        };
        let route = route.unwrap_or("unmatched").to_owned();
        *self.lock().http.entry((route, method, status.as_u16())).or_default() += 1;
    }

    /// The exposition text (`text/plain; version=0.0.4`).
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let s = self.lock();
        header(&mut out, "crm_graphql_requests_total", "counter", "GraphQL requests (POST /graphql) by operation name and outcome.");
        for ((op, outcome), h) in &s.graphql {
            let _ = writeln!(out, "crm_graphql_requests_total{{operation=\"{}\",outcome=\"{}\"}} {}", esc(op), esc(outcome), h.count);
        }
        header(
            &mut out,
            "crm_graphql_request_duration_seconds",
            "histogram",
            "Time to answer a GraphQL request, by operation name and outcome.",
        );
        for ((op, outcome), h) in &s.graphql {
            let labels = format!("operation=\"{}\",outcome=\"{}\"", esc(op), esc(outcome));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(out, "crm_graphql_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "crm_graphql_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "crm_graphql_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "crm_graphql_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        header(
            &mut out,
            "crm_graphql_db_statements_total",
            "counter",
            "SQL statements sent for GraphQL requests, by operation name and outcome.",
        );
        for ((op, outcome), h) in &s.graphql {
            let _ =
                writeln!(out, "crm_graphql_db_statements_total{{operation=\"{}\",outcome=\"{}\"}} {}", esc(op), esc(outcome), h.statements);
        }
        header(
            &mut out,
            "crm_graphql_db_round_trips_total",
            "counter",
            "Database round trips (statements, BEGIN, COMMIT) of GraphQL requests, by operation name and outcome.",
        );
        for ((op, outcome), h) in &s.graphql {
            let _ = writeln!(
                out,
                "crm_graphql_db_round_trips_total{{operation=\"{}\",outcome=\"{}\"}} {}",
                esc(op),
                esc(outcome),
                h.round_trips
            );
        }
        header(&mut out, "crm_http_requests_total", "counter", "HTTP requests by matched route, method and status code.");
        for ((route, method, status), n) in &s.http {
            let _ = writeln!(out, "crm_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}", esc(route));
        }
        drop(s);
        header(
            &mut out,
            "crm_tenant_throttled_total",
            "counter",
            "Requests refused because their tenant had --tenant-concurrency requests working.",
        );
        let _ = writeln!(out, "crm_tenant_throttled_total {}", self.throttled.load(Ordering::Relaxed));
        header(&mut out, "crm_http_requests_in_flight", "gauge", "HTTP requests being answered.");
        let _ = writeln!(out, "crm_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        header(
            &mut out,
            "crm_metrics_label_overflow_total",
            "counter",
            "Observations labelled `other` because a label reached its cap of distinct values.",
        );
        let _ = writeln!(out, "crm_metrics_label_overflow_total {}", self.overflow.load(Ordering::Relaxed));
        header(&mut out, "crm_build_info", "gauge", "The server's version.");
        let _ = writeln!(out, "crm_build_info{{version=\"{}\"}} 1", esc(env!("CARGO_PKG_VERSION")));
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the exposition format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A short word of letters, digits and `_` (error codes, `ok`, `4xx`).
fn is_label_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A GraphQL name (`/[_A-Za-z][_0-9A-Za-z]*/`) short enough to be a label.
fn is_graphql_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= MAX_NAME_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The operation label of a request: its `operationName`, else the name of the first operation
/// the document defines, else `anonymous`; `invalid` when the name is not a GraphQL name.
#[must_use]
pub fn operation_label(operation_name: Option<&str>, query: &str) -> String {
    let name = match operation_name.filter(|n| !n.is_empty()) {
        Some(n) => Some(n),
        None => first_operation_name(query),
    };
    match name {
        None => ANONYMOUS.to_owned(),
        Some(n) if is_graphql_name(n) => n.to_owned(),
        Some(_) => "invalid".to_owned(),
    }
}

/// The name of the first operation defined in a GraphQL document, by a lexical scan (comments,
/// strings and fragment definitions skipped). `None` for an anonymous first operation (`{ … }`,
/// `query { … }`, `query ($x: …)`) or when no operation is found.
fn first_operation_name(doc: &str) -> Option<&str> {
    let b = doc.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut in_fragment = false;
    let mut after_keyword = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'#' => {
                while b.get(i).is_some_and(|c| *c != b'\n' && *c != b'\r') {
                    i += 1;
                }
            }
            b'"' => {
                if b.get(i..i + 3) == Some(b"\"\"\"".as_slice()) {
                    i += 3;
                    while i < b.len() && b.get(i..i + 3) != Some(b"\"\"\"".as_slice()) {
                        i += if b.get(i) == Some(&b'\\') { 2 } else { 1 };
                    }
                    i += 3;
                } else {
                    i += 1;
                    while let Some(&c) = b.get(i) {
                        i += 1;
                        match c {
                            b'\\' => i += 1,
                            b'"' | b'\n' => break,
                            _ => {}
                        }
                    }
                }
                continue;
            }
            b'{' => {
                if depth == 0 && !in_fragment {
                    return None;
                }
                in_fragment = false;
                depth += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            b'(' | b'@' if depth == 0 && after_keyword => return None,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    i += 1;
                }
                let word = doc.get(start..i)?;
                if depth == 0 && !in_fragment {
                    if after_keyword {
                        return Some(word);
                    }
                    match word {
                        "query" | "mutation" | "subscription" => after_keyword = true,
                        "fragment" => in_fragment = true,
                        _ => {}
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn operation_names() {
        assert_eq!(operation_label(None, "{ leads { name } }"), "anonymous");
        assert_eq!(operation_label(None, "query { leads { name } }"), "anonymous");
        assert_eq!(operation_label(None, "query ($n: Int) { leads(first: $n) { name } }"), "anonymous");
        assert_eq!(operation_label(None, "query ListLeads { leads { name } }"), "ListLeads");
        assert_eq!(operation_label(None, "query ListLeads($n: Int) { leads { name } }"), "ListLeads");
        assert_eq!(operation_label(None, "  # query Fake\n mutation Add { createLead(data: {name: \"{ x\"}) { id } }"), "Add");
        assert_eq!(operation_label(None, "fragment F on Lead { name } query Q { leads { ...F } }"), "Q");
        assert_eq!(operation_label(None, "\"\"\"doc { \"\"\" query Doc { a }"), "Doc");
        assert_eq!(operation_label(Some("Chosen"), "query A { a } query Chosen { b }"), "Chosen");
        assert_eq!(operation_label(Some("not a name"), "query A { a }"), "invalid");
        assert_eq!(operation_label(None, ""), "anonymous");
        assert_eq!(operation_label(None, "query"), "anonymous");
    }

    #[test]
    fn labels_are_capped() {
        let m = Metrics::default();
        for i in 0..MAX_OPERATIONS + 50 {
            m.record_graphql(&format!("Op{i}"), "ok", Duration::from_millis(3), crm_orm::DbUse::default());
        }
        m.record_graphql("Op0", "ok", Duration::from_millis(3), crm_orm::DbUse::default());
        let text = m.render();
        let series = text.lines().filter(|l| l.starts_with("crm_graphql_requests_total{")).count();
        assert_eq!(series, MAX_OPERATIONS + 1, "200 names and `other`");
        assert!(text.contains("crm_graphql_requests_total{operation=\"other\",outcome=\"ok\"} 50"), "{text}");
        assert!(text.contains("crm_graphql_requests_total{operation=\"Op0\",outcome=\"ok\"} 2"));
        assert!(text.contains("crm_metrics_label_overflow_total 50"));
    }

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.record_graphql("A", "ok", Duration::from_millis(2), crm_orm::DbUse::default());
        m.record_graphql("A", "ok", Duration::from_millis(200), crm_orm::DbUse::default());
        m.record_graphql("A", "weird code!", Duration::from_mins(1), crm_orm::DbUse::default());
        let text = m.render();
        assert!(text.contains("crm_graphql_request_duration_seconds_bucket{operation=\"A\",outcome=\"ok\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("crm_graphql_request_duration_seconds_bucket{operation=\"A\",outcome=\"ok\",le=\"0.25\"} 2"));
        assert!(text.contains("crm_graphql_request_duration_seconds_bucket{operation=\"A\",outcome=\"ok\",le=\"+Inf\"} 2"));
        assert!(text.contains("crm_graphql_request_duration_seconds_count{operation=\"A\",outcome=\"ok\"} 2"));
        assert!(text.contains("crm_graphql_request_duration_seconds_bucket{operation=\"A\",outcome=\"other\",le=\"30\"} 0"));
        assert!(text.contains("crm_graphql_request_duration_seconds_bucket{operation=\"A\",outcome=\"other\",le=\"+Inf\"} 1"));
    }
}
