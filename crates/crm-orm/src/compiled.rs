//! Reads as data, and reads compiled once for many requests.
//!
//! A [`ReadStatement`] is what one read sends: the page statement with the plan its rows are
//! written by, and the aggregate statement when one is asked for. It is built by pure code
//! from a [`Scoped`] read (so only an authorized read has one) and run by the store.
//!
//! A [`CompiledRead`] is a read statement whose parameters are tied to the request's
//! arguments: a client sends the same operation over and over with new variables, and building
//! its statement again (IR, scope, SQL text) is most of the server's work per read. Compiling
//! finds, by building the read once more per argument with another value, which parameters
//! each argument becomes and how (a string as itself, an id as a UUID, a number, a boolean);
//! binding the next request's arguments then only writes those parameters. An argument that
//! changes the SQL text or the page plan, or reaches a parameter in any other way (a text
//! pattern, a cursor, a page size), is *structural*: a compiled read serves only requests with
//! the same value of it, and the caller keys its cache by those values. A compiled read also
//! serves only the principal it was built for (tenant, subject and read tenants), checked on
//! every bind.

use std::sync::Arc;

use crm_model::{Catalog, OrgId};
use sea_query::Value as Q;
use sea_query_sqlx::SqlxValues;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::authorization::{Access, Scoped};
use crate::error::Result;
use crate::ir::Read;
use crate::sql::dialect::Dialect;
use crate::sql::{Builder, Limits, PagePlan, cursor_parts, encode_cursor, in_session};

/// One built statement: its SQL text and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sql: Arc<str>,
    values: Vec<Q>,
}

impl Statement {
    pub(crate) fn new((sql, values): (String, SqlxValues)) -> Statement {
        Statement { sql: Arc::from(sql), values: values.0.0 }
    }

    /// The SQL text.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The parameters, in order.
    #[must_use]
    pub fn values(&self) -> &[Q] {
        &self.values
    }

    pub(crate) fn into_built(self) -> (Arc<str>, SqlxValues) {
        (self.sql, SqlxValues(sea_query::Values(self.values)))
    }
}

/// The statements of one read: its page (with how the rows are written) and, when a count or
/// aggregates are asked for, the aggregate alone (run when there is no page, or the page is
/// empty and so carries no aggregate column).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadStatement {
    pub(crate) page: Option<(Statement, Arc<PagePlan>)>,
    pub(crate) aggregate: Option<Statement>,
    pub(crate) cursors: bool,
}

impl ReadStatement {
    /// The statements of `read`: with `session`, each sets the caller's tenant for row-level
    /// security itself (a read on a pooled connection: one round trip, see [`in_session`]). The
    /// aggregate statement is built whenever a count or aggregates are asked for, though it only
    /// runs without a page or when the page is empty (a page row carries the aggregate).
    ///
    /// # Errors
    /// Bad arguments of the read, limits.
    pub fn build(
        d: Dialect,
        cat: &Catalog,
        access: &Access,
        tenant: bool,
        limits: Limits,
        read: &Read,
        session: bool,
    ) -> Result<ReadStatement> {
        let builder = || Builder::with_tenant_predicate(d, cat, access, tenant, limits).in_trash(read.trash);
        let built = |stmt: &sea_query::SelectStatement| Statement::new(if session { in_session(d, stmt, access) } else { d.build(stmt) });
        let wants_aggregate = read.count || !read.aggregates.is_empty();
        let page = if read.rows {
            let (stmt, plan) = builder().select_page(read)?;
            Some((built(&stmt), Arc::new(plan)))
        } else {
            // Only the aggregate: no page is read, but its arguments are still checked.
            builder().check_page(read)?;
            None
        };
        let aggregate = if wants_aggregate { Some(built(&builder().aggregate(read)?)) } else { None };
        Ok(ReadStatement { page, aggregate, cursors: read.rows && read.cursors })
    }

    /// The page statement.
    #[must_use]
    pub fn page(&self) -> Option<&Statement> {
        self.page.as_ref().map(|(s, _)| s)
    }

    /// The aggregate statement.
    #[must_use]
    pub fn aggregate(&self) -> Option<&Statement> {
        self.aggregate.as_ref()
    }

    fn statements(&self) -> impl Iterator<Item = &Statement> {
        self.page.iter().map(|(s, _)| s).chain(&self.aggregate)
    }

    /// Same SQL, plan and parameter count: the statements differ at most in parameter values.
    fn same_shape(&self, other: &ReadStatement) -> bool {
        self.cursors == other.cursors
            && self.aggregate.is_some() == other.aggregate.is_some()
            && match (&self.page, &other.page) {
                (Some((_, a)), Some((_, b))) => a == b,
                (None, None) => true,
                _ => false,
            }
            && self.statements().zip(other.statements()).all(|(a, b)| a.sql == b.sql && a.values.len() == b.values.len())
    }
}

/// Whom a statement was built for: what of an [`Access`] its parameters can depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BuiltFor {
    org: OrgId,
    actor: String,
    read_orgs: Vec<OrgId>,
}

impl BuiltFor {
    fn of(a: &Access) -> BuiltFor {
        BuiltFor { org: a.org().clone(), actor: a.actor().to_owned(), read_orgs: a.read_orgs().to_vec() }
    }

    fn is(&self, a: &Access) -> bool {
        self.org == *a.org() && self.actor == a.actor() && self.read_orgs == a.read_orgs()
    }
}

/// How an argument becomes a parameter: the conversions the builder makes of filter values
/// and of cursor keys, each checked on two values when a read is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// The argument itself.
    Value(Scalar),
    /// Key `index` of a cursor (the cursor's ordering is checked on bind).
    CursorKey(usize, Scalar),
}

/// How a JSON value becomes a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    /// A string as itself (no NUL: the parser refuses those).
    Text,
    /// An id, as a UUID (PostgreSQL).
    Uuid,
    /// An id, as its hyphenated lowercase text (SQLite).
    UuidText,
    /// A 64-bit integer.
    Int,
    /// A finite float.
    Float,
    /// A boolean.
    Bool,
    /// An instant (RFC 3339), as a timestamp (PostgreSQL).
    Instant,
    /// An instant, as its text with microseconds (SQLite).
    InstantText,
    /// A date (`YYYY-MM-DD`) (PostgreSQL).
    Date,
    /// A date, as its text (SQLite).
    DateText,
    /// A decimal (a string or a number), as its normalized text (`CAST(… AS NUMERIC)`).
    Decimal,
}

impl Scalar {
    /// The strictest first: an id, instant, date or decimal whose text is its parameter is
    /// taken as one (a value that is none must not bind: the builder would refuse it), not as a
    /// string.
    const ALL: [Scalar; 11] = [
        Scalar::Uuid,
        Scalar::UuidText,
        Scalar::Instant,
        Scalar::InstantText,
        Scalar::Date,
        Scalar::DateText,
        Scalar::Decimal,
        Scalar::Int,
        Scalar::Float,
        Scalar::Bool,
        Scalar::Text,
    ];

    fn apply(self, j: &Json) -> Option<Q> {
        let instant = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&chrono::Utc));
        let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        match (self, j) {
            (Scalar::Text, Json::String(s)) if !s.contains('\0') => Some(Q::String(Some(s.clone()))),
            (Scalar::Uuid, Json::String(s)) => Uuid::parse_str(s).ok().map(|u| Q::Uuid(Some(u))),
            (Scalar::UuidText, Json::String(s)) => Uuid::parse_str(s).ok().map(|u| Q::String(Some(u.to_string()))),
            (Scalar::Int, Json::Number(n)) => n.as_i64().map(|i| Q::BigInt(Some(i))),
            (Scalar::Float, Json::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(|f| Q::Double(Some(f))),
            (Scalar::Bool, Json::Bool(b)) => Some(Q::Bool(Some(*b))),
            (Scalar::Instant, Json::String(s)) => instant(s).map(|t| Q::ChronoDateTimeUtc(Some(t))),
            (Scalar::InstantText, Json::String(s)) => instant(s).map(|t| Q::String(Some(crm_model::value::format_datetime(&t)))),
            (Scalar::Date, Json::String(s)) => date(s).map(|d| Q::ChronoDate(Some(d))),
            (Scalar::DateText, Json::String(s)) => date(s).map(|d| Q::String(Some(d.format("%Y-%m-%d").to_string()))),
            (Scalar::Decimal, Json::String(s)) => crm_model::value::parse_decimal("", s).ok().map(|d| Q::String(Some(d))),
            (Scalar::Decimal, Json::Number(n)) => crm_model::value::parse_decimal("", &n.to_string()).ok().map(|d| Q::String(Some(d))),
            _ => None,
        }
    }
}

impl Conv {
    /// The conversions that may explain where `j` went: of the value, and of each key when `j`
    /// is a cursor.
    fn candidates(j: &Json) -> Vec<Conv> {
        let mut out: Vec<Conv> = Scalar::ALL.into_iter().map(Conv::Value).collect();
        if let Some((_, keys)) = j.as_str().and_then(cursor_parts) {
            for k in 0..keys.len() {
                out.extend(Scalar::ALL.into_iter().map(|s| Conv::CursorKey(k, s)));
            }
        }
        out
    }

    /// The cursor key this conversion reads.
    fn cursor_key(self) -> Option<usize> {
        match self {
            Conv::CursorKey(k, _) => Some(k),
            Conv::Value(_) => None,
        }
    }

    fn apply(self, j: &Json) -> Option<Q> {
        match self {
            Conv::Value(s) => s.apply(j),
            Conv::CursorKey(k, s) => s.apply(cursor_parts(j.as_str()?)?.1.get(k)?),
        }
    }
}

/// Another value of the same kind as `j`, to see where `j` goes: a different id for an id, the
/// string with a character more, the number plus one, the other boolean, a cursor of the same
/// ordering with each key changed so. `None` for null, lists and objects (always structural).
fn varied(j: &Json) -> Option<Json> {
    if let Some((spec, keys)) = j.as_str().and_then(cursor_parts) {
        let keys: Vec<Json> = keys.iter().map(|k| varied(k).unwrap_or_else(|| k.clone())).collect();
        return Some(Json::String(encode_cursor(&spec, &Json::Array(keys).to_string())));
    }
    match j {
        Json::String(s) => Some(Json::String(if let Ok(u) = Uuid::parse_str(s) {
            let mut b = *u.as_bytes();
            b[15] ^= 1;
            Uuid::from_bytes(b).to_string()
        } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            crm_model::value::format_datetime(&(t.with_timezone(&chrono::Utc) + chrono::Duration::seconds(1)))
        } else if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            d.succ_opt().unwrap_or(d).format("%Y-%m-%d").to_string()
        } else {
            format!("{s}~")
        })),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Some(Json::from(if i < i64::MAX { i + 1 } else { i - 1 })),
            None => n.as_f64().map(|f| Json::from(f + 0.5)),
        },
        Json::Bool(b) => Some(Json::Bool(!b)),
        _ => None,
    }
}

/// A compiled cursor argument: its ordering, and each key's value with whether it is bound.
type CursorShape = (String, Vec<(Json, bool)>);

/// A parameter written from an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    input: usize,
    /// In the aggregate statement (else the page's).
    aggregate: bool,
    position: usize,
    conv: Conv,
}

/// A read compiled for one principal and the values of its structural arguments; see the
/// module documentation.
#[derive(Debug)]
pub struct CompiledRead {
    statement: ReadStatement,
    principal: BuiltFor,
    /// The arguments it was compiled with (the structural ones must match on bind).
    inputs: Vec<Json>,
    structural: Vec<bool>,
    slots: Vec<Slot>,
    /// Per argument that is a cursor bound key by key: its ordering (the builder refuses a
    /// cursor of another) and its keys, with whether each is bound. A bound cursor must have
    /// the same ordering and number of keys, and the same value where a key is not bound (a
    /// null key changes the statement: it is structural).
    cursors: Vec<Option<CursorShape>>,
}

impl CompiledRead {
    /// Compiles the read `build` makes of `inputs` (the request's arguments, in a fixed order).
    /// `build` is called once per argument more (and once again to see that building is
    /// deterministic); `None` when it is not (a parameter taken from the clock).
    ///
    /// # Errors
    /// What building the read of `inputs` fails with (the caller reports it as it would have).
    pub fn compile(
        inputs: &[Json],
        statement_of: impl Fn(&Scoped<Read>) -> Result<ReadStatement>,
        build: impl Fn(&[Json]) -> Result<Scoped<Read>>,
    ) -> Result<Option<CompiledRead>> {
        let made = |ins: &[Json]| -> Result<(ReadStatement, BuiltFor)> {
            let q = build(ins)?;
            Ok((statement_of(&q)?, BuiltFor::of(&q.access)))
        };
        let (base, principal) = made(inputs)?;
        if made(inputs).ok() != Some((base.clone(), principal.clone())) {
            return Ok(None);
        }
        let mut structural = Vec::with_capacity(inputs.len());
        let mut slots = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let found = varied(input).and_then(|other| {
                let mut ins = inputs.to_vec();
                *ins.get_mut(i)? = other.clone();
                match made(&ins) {
                    Ok((alt, who)) if who == principal => slots_of(&base, &alt, i, input, &other),
                    _ => None,
                }
            });
            structural.push(found.is_none());
            slots.extend(found.into_iter().flatten());
        }
        let cursors = (0..inputs.len())
            .map(|i| {
                let bound = |k: usize| slots.iter().any(|s| s.input == i && s.conv.cursor_key() == Some(k));
                let keyed = slots.iter().any(|s| s.input == i && s.conv.cursor_key().is_some());
                let parts = inputs.get(i).and_then(Json::as_str).and_then(cursor_parts);
                parts.filter(|_| keyed).map(|(spec, keys)| (spec, keys.into_iter().enumerate().map(|(k, v)| (v, bound(k))).collect()))
            })
            .collect();
        Ok(Some(CompiledRead { statement: base, principal, inputs: inputs.to_vec(), structural, slots, cursors }))
    }

    /// Which arguments are structural (by position).
    #[must_use]
    pub fn structural(&self) -> &[bool] {
        &self.structural
    }

    /// The read of `inputs` for `access`; `None` when this compiled read does not serve them
    /// (another principal, another value of a structural argument, or an argument this
    /// conversion refuses: the caller builds the read instead, which reports it).
    #[must_use]
    pub fn bind(&self, access: &Access, inputs: &[Json]) -> Option<ReadStatement> {
        if !self.principal.is(access) || inputs.len() != self.inputs.len() {
            return None;
        }
        if self.structural.iter().zip(inputs.iter().zip(&self.inputs)).any(|(s, (a, b))| *s && a != b) {
            return None;
        }
        for (input, cursor) in inputs.iter().zip(&self.cursors) {
            if let Some((spec, base)) = cursor {
                let (s, keys) = cursor_parts(input.as_str()?)?;
                if s != *spec || keys.len() != base.len() || keys.iter().zip(base).any(|(k, (b, bound))| !*bound && k != b) {
                    return None;
                }
            }
        }
        let mut out = self.statement.clone();
        for s in &self.slots {
            let v = s.conv.apply(inputs.get(s.input)?)?;
            let stmt = if s.aggregate { out.aggregate.as_mut()? } else { &mut out.page.as_mut()?.0 };
            *stmt.values.get_mut(s.position)? = v;
        }
        Some(out)
    }
}

/// Where argument `input` went, by comparing the read built with its value `a` and with `b`:
/// every parameter that changed, with a conversion that gives it from both values. `None` when
/// anything else changed, or a parameter changed in a way no conversion explains.
fn slots_of(base: &ReadStatement, alt: &ReadStatement, input: usize, a: &Json, b: &Json) -> Option<Vec<Slot>> {
    if !base.same_shape(alt) {
        return None;
    }
    let mut out = Vec::new();
    let pairs = base.page.iter().map(|(s, _)| (false, s)).chain(base.aggregate.iter().map(|s| (true, s)));
    for ((aggregate, x), y) in pairs.zip(alt.statements()) {
        for (position, (p, q)) in x.values.iter().zip(&y.values).enumerate() {
            if p == q {
                continue;
            }
            let conv = Conv::candidates(a).into_iter().find(|c| c.apply(a).as_ref() == Some(p) && c.apply(b).as_ref() == Some(q))?;
            out.push(Slot { input, aggregate, position, conv });
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(values: Vec<Q>) -> ReadStatement {
        ReadStatement { page: None, aggregate: Some(Statement { sql: Arc::from("SELECT $1, $2"), values }), cursors: false }
    }

    #[test]
    fn a_changed_parameter_is_a_slot_with_the_conversion_that_explains_it() {
        let s = |x: &str| Q::String(Some(x.to_owned()));
        let base = stmt(vec![s("org"), s("NEW")]);
        let alt = stmt(vec![s("org"), s("NEW~")]);
        let slots = slots_of(&base, &alt, 0, &Json::from("NEW"), &Json::from("NEW~"));
        assert_eq!(slots, Some(vec![Slot { input: 0, aggregate: true, position: 1, conv: Conv::Value(Scalar::Text) }]));
        // A pattern made of the value is not the value: structural.
        let pattern = stmt(vec![s("org"), s("%NEW~%")]);
        assert_eq!(slots_of(&base, &pattern, 0, &Json::from("NEW"), &Json::from("NEW~")), None);
        // Other SQL: structural.
        let mut other = alt.clone();
        if let Some(a) = other.aggregate.as_mut() {
            a.sql = Arc::from("SELECT $1, $2 LIMIT 3");
        }
        assert_eq!(slots_of(&base, &other, 0, &Json::from("NEW"), &Json::from("NEW~")), None);
        // An id bound as its text binds only ids.
        let (x, y) = ("6f1c9a4e-2b7d-4c1e-9a3f-0d2e4b6a8c10", "6f1c9a4e-2b7d-4c1e-9a3f-0d2e4b6a8c11");
        let slots = slots_of(&stmt(vec![s("org"), s(x)]), &stmt(vec![s("org"), s(y)]), 0, &Json::from(x), &Json::from(y));
        assert_eq!(slots.and_then(|s| s.first().map(|s| s.conv)), Some(Conv::Value(Scalar::UuidText)));
        assert_eq!(Scalar::UuidText.apply(&Json::from("not-an-id")), None);
    }

    #[test]
    fn ids_numbers_and_booleans_vary_within_their_kind() {
        let id = "6f1c9a4e-2b7d-4c1e-9a3f-0d2e4b6a8c10";
        let v = varied(&Json::from(id)).and_then(|j| j.as_str().map(str::to_owned)).unwrap_or_default();
        assert!(Uuid::parse_str(&v).is_ok() && v != id, "{v}");
        assert_eq!(varied(&Json::from(7)), Some(Json::from(8)));
        assert_eq!(varied(&Json::from(i64::MAX)), Some(Json::from(i64::MAX - 1)));
        assert_eq!(varied(&Json::Bool(true)), Some(Json::Bool(false)));
        assert_eq!(varied(&Json::Null), None);
        assert_eq!(Scalar::Text.apply(&Json::from("a\0b")), None, "NUL is refused as the parser refuses it");
        assert_eq!(Scalar::Float.apply(&Json::from(1)), Some(Q::Double(Some(1.0))));
    }

    #[test]
    fn a_cursor_varies_key_by_key_and_binds_its_keys() {
        let (t, id) = ("2026-03-01T10:00:00.000001Z", "6f1c9a4e-2b7d-4c1e-9a3f-0d2e4b6a8c10");
        let cursor = Json::from(encode_cursor("createdAt:d,id:d", &serde_json::json!([t, id]).to_string()));
        let other = varied(&cursor).unwrap_or_default();
        let (spec, keys) = other.as_str().and_then(cursor_parts).unwrap_or_default();
        assert_eq!(spec, "createdAt:d,id:d");
        assert_eq!(keys, vec![Json::from("2026-03-01T10:00:01.000001Z"), Json::from("6f1c9a4e-2b7d-4c1e-9a3f-0d2e4b6a8c11")]);
        let at = chrono::DateTime::parse_from_rfc3339(t).map(|x| x.with_timezone(&chrono::Utc)).ok();
        assert_eq!(Conv::CursorKey(0, Scalar::Instant).apply(&cursor), Some(Q::ChronoDateTimeUtc(at)));
        assert_eq!(Conv::CursorKey(1, Scalar::Uuid).apply(&cursor), Uuid::parse_str(id).ok().map(|u| Q::Uuid(Some(u))));
        assert_eq!(Conv::CursorKey(2, Scalar::Uuid).apply(&cursor), None, "no third key");
        assert_eq!(Conv::CursorKey(0, Scalar::Instant).apply(&Json::from("not a cursor")), None);
    }
}
