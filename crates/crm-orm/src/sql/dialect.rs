//! Everything that differs between SQLite and PostgreSQL, in one place: column types, value
//! binding, JSON construction, list operators, the tenant setting for row-level security, and
//! how database errors are recognised. The rest of the store is one code path.

use crm_model::{OrgId, ScalarType, Value};
use sea_query::{Expr, PostgresQueryBuilder, SqliteQueryBuilder};
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use uuid::Uuid;

use crate::error::{OrmError, Result};

/// The two supported backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Embedded SQLite (bundled).
    Sqlite,
    /// PostgreSQL (production, row-level security).
    Postgres,
}

/// Largest number of key/value pairs put in one JSON constructor call (PostgreSQL functions take
/// at most 100 arguments); larger objects are merged from chunks.
const JSON_CHUNK: usize = 48;

/// The `ORDER BY` template of an aggregate over `(expr, descending)` keys: ascending nulls
/// last, descending nulls first (the pages' order).
fn ordering(order: &[(Expr, bool)]) -> String {
    let keys: Vec<&str> = order.iter().map(|(_, desc)| if *desc { "{} DESC NULLS FIRST" } else { "{} ASC NULLS LAST" }).collect();
    keys.join(", ")
}

/// How a custom value's key is put in a statement (see [`Dialect::custom_value_keyed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// As a bound parameter.
    Bound,
    /// Written into the SQL text.
    Written,
}

impl Dialect {
    /// Renders a statement to SQL and bound values.
    ///
    /// On PostgreSQL the `LIMIT` and `OFFSET` values are written into the SQL as numbers: with
    /// a bound limit, the generic plan of a prepared statement is costed for an unknown row count
    /// and never chosen, so every execution would be planned anew.
    pub fn build<S: SqlxBinder>(self, stmt: &S) -> (String, SqlxValues) {
        match self {
            Dialect::Sqlite => stmt.build_sqlx(SqliteQueryBuilder),
            Dialect::Postgres => inline_page_bounds(stmt.build_sqlx(PostgresQueryBuilder)),
        }
    }

    /// A read statement that sets the caller's tenant for row-level security itself, so a read
    /// is one round trip (PostgreSQL; SQLite has no row-level security and gets `built` as is).
    ///
    /// The settings are made transaction-local by a materialized CTE, and the statement runs as
    /// a `LATERAL` subquery that refers to it: PostgreSQL can only join that as a nested loop
    /// with the CTE outside, so the settings are made before any row of `built` is read; they
    /// end with the statement's implicit transaction, so nothing stays on the pooled
    /// connection. `OFFSET 0` keeps the subquery from being flattened. Rows keep `built`'s
    /// order (one outer row).
    #[must_use]
    pub fn in_session(self, (sql, mut values): (String, SqlxValues), org: &OrgId, read_orgs: &[OrgId]) -> (String, SqlxValues) {
        if self == Dialect::Sqlite {
            return (sql, values);
        }
        let n = values.0.0.len();
        let sql = format!(
            "WITH \"crm_session\" AS MATERIALIZED (SELECT set_config('crm.org_id', ${}, true) AS \"o\", set_config('crm.read_orgs', ${}, true) AS \"r\") \
             SELECT \"crm_q\".* FROM \"crm_session\", LATERAL (SELECT * FROM ({sql}) AS \"crm_s\" WHERE \"crm_session\".\"r\" IS NOT NULL OFFSET 0) AS \"crm_q\"",
            n + 1,
            n + 2
        );
        values.0.0.push(sea_query::Value::String(Some(org.as_str().to_owned())));
        values.0.0.push(sea_query::Value::String(Some(read_orgs_setting(org, read_orgs))));
        (sql, values)
    }

    /// A custom expression: `{}` in `template` stands for the next of `exprs`, rendered with this
    /// backend's placeholders. Only static templates written in this crate are passed here.
    #[must_use]
    pub fn cust(self, template: &str, exprs: Vec<Expr>) -> Expr {
        Expr::cust_with_exprs(self.placeholders(template), exprs)
    }

    /// `template` with each `{}` replaced by this backend's next placeholder (`?`, or `$1`, `$2`, …).
    fn placeholders(self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 8);
        let mut n = 0usize;
        let mut rest = template;
        while let Some(i) = rest.find("{}") {
            out.push_str(&rest[..i]);
            n += 1;
            match self {
                Dialect::Sqlite => out.push('?'),
                Dialect::Postgres => {
                    out.push('$');
                    out.push_str(&n.to_string());
                }
            }
            rest = &rest[i + 2..];
        }
        out.push_str(rest);
        out
    }

    /// A statement written as a static template: `{}` in `template` stands for the next of
    /// `values`, rendered with this backend's placeholders (`?` or `$n`). For the few statements
    /// sea-query has no form for (a recursive CTE, a configuration call); only static templates
    /// written in this crate are passed here.
    #[must_use]
    pub fn statement(self, template: &str, values: Vec<sea_query::Value>) -> (String, SqlxValues) {
        (self.placeholders(template), SqlxValues(sea_query::Values(values)))
    }

    /// The SQL type of a column holding `ty`.
    #[must_use]
    pub fn column_type(self, ty: &ScalarType) -> &'static str {
        match (self, ty) {
            (Dialect::Sqlite, ScalarType::Int | ScalarType::Boolean) => "INTEGER",
            (Dialect::Sqlite, ScalarType::Float) => "REAL",
            (Dialect::Sqlite, ScalarType::Decimal | ScalarType::Money { .. }) => "NUMERIC",
            (Dialect::Sqlite, _) => "TEXT",
            (Dialect::Postgres, ScalarType::Int) => "BIGINT",
            (Dialect::Postgres, ScalarType::Boolean) => "BOOLEAN",
            (Dialect::Postgres, ScalarType::Float) => "DOUBLE PRECISION",
            (Dialect::Postgres, ScalarType::Decimal | ScalarType::Money { .. }) => "NUMERIC",
            (Dialect::Postgres, ScalarType::Date) => "DATE",
            (Dialect::Postgres, ScalarType::DateTime) => "TIMESTAMPTZ",
            (Dialect::Postgres, ScalarType::Id) => "UUID",
            (Dialect::Postgres, ScalarType::Json | ScalarType::Tags | ScalarType::MultiSelect(_)) => "JSONB",
            (Dialect::Postgres, _) => "TEXT",
        }
    }

    /// A custom field's value read from the row's JSON document `doc` (key: the field's API
    /// name), typed as a column of `ty` would be, for filters, ordering, cursors and aggregates:
    /// numbers compare as numbers, instants as instants. Lists and JSON stay JSON. `guard` (the
    /// `object` column and the object's name) makes PostgreSQL cast only rows of that custom
    /// object: other objects in the shared table may keep other types under the same key.
    #[must_use]
    pub fn custom_value(self, doc: Expr, key: &str, ty: &ScalarType, guard: Option<(Expr, &str)>) -> Expr {
        self.custom_value_keyed(doc, key, ty, guard, KeyForm::Bound)
    }

    /// [`Dialect::custom_value`] with the key (and the object's name) in `form`: bound, so that
    /// tenants whose custom fields differ only in name share one statement text (and so the
    /// database's prepared statements and plans); or written, where the statement must repeat
    /// the expression identically (`GROUP BY` and the grouped value in the select list).
    #[must_use]
    pub fn custom_value_keyed(self, doc: Expr, key: &str, ty: &ScalarType, guard: Option<(Expr, &str)>, form: KeyForm) -> Expr {
        let text = |s: String| match form {
            KeyForm::Bound => Expr::val(s),
            // API names are letters and digits; doubled quotes keep anything else a literal.
            KeyForm::Written => Expr::cust(format!("'{}'", s.replace('\'', "''"))),
        };
        let sqlite_path = |suffix: &str| text(format!("$.{key}{suffix}"));
        let k = || text(key.to_owned());
        match (self, ty) {
            (Dialect::Sqlite, ScalarType::Json | ScalarType::Tags | ScalarType::MultiSelect(_)) => {
                self.cust("({} -> {})", vec![doc, sqlite_path("")])
            }
            (Dialect::Sqlite, ScalarType::Decimal) => self.cust("CAST({} ->> {} AS NUMERIC)", vec![doc, sqlite_path("")]),
            (Dialect::Sqlite, ScalarType::Money { .. }) => self.cust("CAST({} ->> {} AS NUMERIC)", vec![doc, sqlite_path(".amount")]),
            (Dialect::Sqlite, _) => self.cust("({} ->> {})", vec![doc, sqlite_path("")]),
            (Dialect::Postgres, ScalarType::Json | ScalarType::Tags | ScalarType::MultiSelect(_)) => {
                self.cust("({} -> {})", vec![doc, k()])
            }
            (Dialect::Postgres, ty) => {
                // Each type is stored as one JSON type, and the cast only runs on a value of that
                // type: a value left by a request still on an older definition reads as null
                // instead of failing the statement.
                let (json_type, cast) = match ty {
                    ScalarType::Int => ("number", "::bigint"),
                    ScalarType::Float => ("number", "::double precision"),
                    ScalarType::Boolean => ("boolean", "::boolean"),
                    ScalarType::Decimal | ScalarType::Money { .. } => ("string", "::numeric"),
                    ScalarType::Date => ("string", "::date"),
                    ScalarType::DateTime => ("string", "::timestamptz"),
                    ScalarType::Id => ("string", "::uuid"),
                    _ => ("string", ""),
                };
                if cast.is_empty() {
                    return self.cust("({} ->> {})", vec![doc, k()]);
                }
                let (typ, txt) = match ty {
                    ScalarType::Money { .. } => ("{} -> {} -> 'amount'", "{} -> {} ->> 'amount'"),
                    _ => ("{} -> {}", "{} ->> {}"),
                };
                let e = self.cust(
                    &format!("(CASE WHEN jsonb_typeof({typ}) = '{json_type}' THEN ({txt}){cast} END)"),
                    vec![doc.clone(), k(), doc, k()],
                );
                match guard {
                    Some((col, name)) => self.cust("(CASE WHEN {} = {} THEN {} END)", vec![col, text(name.to_owned()), e]),
                    None => e,
                }
            }
        }
    }

    /// A custom field's value as clients read it: the JSON stored under `key` (values are stored
    /// in their client form). The key is bound (see [`Dialect::custom_value`]).
    #[must_use]
    pub fn custom_json(self, doc: Expr, key: &str) -> Expr {
        match self {
            Dialect::Sqlite => self.cust("json({} -> {})", vec![doc, Expr::val(format!("$.{key}"))]),
            Dialect::Postgres => self.cust("({} -> {})", vec![doc, Expr::val(key.to_owned())]),
        }
    }

    /// `doc` with custom values set and removed: `changes` maps field names to their stored JSON,
    /// `null` removing the key. Whole values are replaced (a JSON field is not merged into).
    #[must_use]
    pub fn custom_patch(self, doc: Expr, changes: &serde_json::Map<String, serde_json::Value>) -> Expr {
        let removed: Vec<&String> = changes.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k).collect();
        let set: serde_json::Map<String, serde_json::Value> =
            changes.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
        match self {
            Dialect::Sqlite => {
                let mut e = self.cust("COALESCE({}, json_object())", vec![doc]);
                if !removed.is_empty() {
                    let paths: Vec<String> = removed.iter().map(|k| format!("'$.{k}'")).collect();
                    e = self.cust(&format!("json_remove({{}}, {})", paths.join(", ")), vec![e]);
                }
                if !set.is_empty() {
                    let mut args = vec![e];
                    let mut template = "json_set({}".to_owned();
                    for (k, v) in set {
                        template.push_str(&format!(", '$.{k}', json({{}})"));
                        args.push(Expr::val(v.to_string()));
                    }
                    template.push(')');
                    e = self.cust(&template, args);
                }
                e
            }
            Dialect::Postgres => {
                let mut template = "(COALESCE({}, jsonb_build_object())".to_owned();
                for k in removed {
                    template.push_str(&format!(" - '{k}'"));
                }
                template.push(')');
                let mut args = vec![doc];
                if !set.is_empty() {
                    template.push_str(" || {}");
                    args.push(Expr::val(sea_query::Value::Json(Some(Box::new(serde_json::Value::Object(set))))));
                }
                self.cust(&format!("({template})"), args)
            }
        }
    }

    /// The text of a custom field (for `_search`), as SQL text.
    #[must_use]
    pub fn custom_text_sql(self, doc: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("({doc} ->> '$.{key}')"),
            Dialect::Postgres => format!("({doc} ->> '{key}')"),
        }
    }

    /// The SQL type of a record id column.
    #[must_use]
    pub fn id_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "TEXT",
            Dialect::Postgres => "UUID",
        }
    }

    /// A bound value. Decimals are cast to NUMERIC; instants, dates and ids are bound natively on
    /// PostgreSQL and as fixed-format text on SQLite (where they sort as text).
    #[must_use]
    pub fn bind(self, v: &Value) -> Expr {
        use sea_query::Value as Q;
        match (self, v) {
            (_, Value::Null) => Expr::cust("NULL"),
            (_, Value::Bool(b)) => Expr::val(Q::Bool(Some(*b))),
            (_, Value::Int(i)) => Expr::val(Q::BigInt(Some(*i))),
            (_, Value::Float(f)) => Expr::val(Q::Double(Some(*f))),
            (_, Value::Text(s)) => Expr::val(Q::String(Some(s.clone()))),
            (_, Value::Decimal(s) | Value::Money { amount: s, .. }) => {
                self.cust("CAST({} AS NUMERIC)", vec![Expr::val(Q::String(Some(s.clone())))])
            }
            (Dialect::Postgres, Value::Date(d)) => Expr::val(Q::ChronoDate(Some(*d))),
            (Dialect::Sqlite, Value::Date(d)) => Expr::val(Q::String(Some(d.format("%Y-%m-%d").to_string()))),
            (Dialect::Postgres, Value::DateTime(t)) => Expr::val(Q::ChronoDateTimeUtc(Some(*t))),
            (Dialect::Sqlite, Value::DateTime(t)) => Expr::val(Q::String(Some(crm_model::value::format_datetime(t)))),
            (Dialect::Postgres, Value::Uuid(u) | Value::Ref { id: u, .. }) => Expr::val(Q::Uuid(Some(*u))),
            (Dialect::Sqlite, Value::Uuid(u) | Value::Ref { id: u, .. }) => Expr::val(Q::String(Some(u.to_string()))),
            (Dialect::Postgres, Value::Json(_) | Value::List(_)) => Expr::val(Q::Json(Some(Box::new(v.to_json())))),
            (Dialect::Sqlite, Value::Json(_) | Value::List(_)) => Expr::val(Q::String(Some(v.to_json().to_string()))),
        }
    }

    /// Column `id` (no table alias) is one of `ids`, a long list as one array parameter on
    /// PostgreSQL (see [`Dialect::is_in`]).
    #[must_use]
    pub fn ids_in(self, ids: &[Uuid]) -> Expr {
        let values: Vec<Value> = ids.iter().map(|i| Value::Uuid(*i)).collect();
        self.is_in(Expr::col(sea_query::Alias::new("id")), &values.iter().collect::<Vec<_>>())
    }

    /// `col IN (values)`. On PostgreSQL a long list of ids, texts or integers is one array
    /// parameter, `col = ANY(CAST((SELECT CAST(? AS uuid[])) AS uuid[]))`: under the store's generic plans an `IN` list of
    /// hundreds of parameters is compared with every row of the tenant one value at a time, while
    /// an array lets the planner probe the index once per value (a batch's 500 ids: 93 ms → 7 ms).
    /// `values` are not null.
    #[must_use]
    pub fn is_in(self, col: Expr, values: &[&Value]) -> Expr {
        /// Lists at least this long become one array parameter.
        const ARRAY_AT: usize = 16;
        let kind = |v: &Value| match v {
            Value::Uuid(_) => Some("uuid[]"),
            Value::Text(_) => Some("text[]"),
            Value::Int(_) => Some("bigint[]"),
            _ => None,
        };
        let array_type = values.first().and_then(|v| kind(v)).filter(|t| values.iter().all(|v| kind(v) == Some(*t)));
        match array_type {
            Some(ty) if self == Dialect::Postgres && values.len() >= ARRAY_AT => {
                // The text form of a PostgreSQL array: every element quoted, `"` and `\` escaped.
                let mut literal = String::from("{");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        literal.push(',');
                    }
                    let text = match v {
                        Value::Uuid(u) => u.to_string(),
                        Value::Int(n) => n.to_string(),
                        Value::Text(s) => s.clone(),
                        _ => String::new(),
                    };
                    literal.push('"');
                    literal.push_str(&text.replace('\\', "\\\\").replace('"', "\\\""));
                    literal.push('"');
                }
                literal.push('}');
                // Cast once (an init plan), not once per row compared; the outer cast keeps `ANY`
                // an array comparison rather than one over a subquery's rows.
                self.cust(&format!("{{}} = ANY(CAST((SELECT CAST({{}} AS {ty})) AS {ty}))"), vec![col, Expr::val(literal)])
            }
            _ => sea_query::ExprTrait::is_in(col, values.iter().map(|v| self.bind(v))),
        }
    }

    /// A string literal for a JSON key. Keys are field names or GraphQL aliases; anything else is
    /// refused rather than quoted.
    ///
    /// # Errors
    /// When `key` is not a plain identifier.
    pub fn key(self, key: &str) -> Result<Expr> {
        let ok = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && key.len() <= 128;
        if !ok {
            return Err(OrmError::bad("selection", format!("`{key}` is not a valid result key")));
        }
        Ok(Expr::cust(format!("'{key}'")))
    }

    /// The JSON form of a column of type `ty` (as clients read it). `extra` is the second column
    /// of money (currency) and polymorphic references (type).
    #[must_use]
    pub fn json_value(self, ty: Option<&ScalarType>, col: Expr, extra: Option<Expr>) -> Expr {
        match (self, ty, extra) {
            (_, Some(ScalarType::Money { .. }), Some(cur)) => {
                let obj = self.object_call(vec![
                    (Expr::cust("'amount'"), self.json_value(Some(&ScalarType::Decimal), col.clone(), None)),
                    (Expr::cust("'currency'"), cur),
                ]);
                self.cust("CASE WHEN {} IS NULL THEN NULL ELSE {} END", vec![col, obj])
            }
            (_, None, Some(ty_col)) => {
                let obj = self.object_call(vec![(Expr::cust("'type'"), ty_col), (Expr::cust("'id'"), col.clone())]);
                self.cust("CASE WHEN {} IS NULL THEN NULL ELSE {} END", vec![col, obj])
            }
            // Same text on both backends: PostgreSQL keeps the scale (12.50), SQLite does not.
            (Dialect::Postgres, Some(ScalarType::Decimal), _) => self.cust("CAST(trim_scale({}) AS TEXT)", vec![col]),
            (Dialect::Sqlite, Some(ScalarType::Decimal), _) => self.cust("CAST({} AS TEXT)", vec![col]),
            (Dialect::Sqlite, Some(ScalarType::Boolean), _) => {
                self.cust("CASE WHEN {} IS NULL THEN NULL WHEN {} THEN json('true') ELSE json('false') END", vec![col.clone(), col])
            }
            (Dialect::Sqlite, Some(ScalarType::Json | ScalarType::Tags | ScalarType::MultiSelect(_)), _) => {
                self.cust("json({})", vec![col])
            }
            (Dialect::Postgres, Some(ScalarType::DateTime), _) => {
                self.cust("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", vec![col])
            }
            (_, _, _) => col,
        }
    }

    fn object_call(self, pairs: Vec<(Expr, Expr)>) -> Expr {
        let f = match self {
            Dialect::Sqlite => "json_object",
            Dialect::Postgres => "json_build_object",
        };
        let args: Vec<Expr> = pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
        let template = format!("{f}({})", vec!["{}"; args.len()].join(", "));
        self.cust(&template, args)
    }

    /// A JSON object from key/value pairs, chunked so any number of fields fits.
    #[must_use]
    pub fn object(self, mut pairs: Vec<(Expr, Expr)>) -> Expr {
        if pairs.len() <= JSON_CHUNK {
            return self.object_call(pairs);
        }
        let mut chunks = Vec::new();
        while !pairs.is_empty() {
            let rest = pairs.split_off(pairs.len().min(JSON_CHUNK));
            chunks.push(std::mem::replace(&mut pairs, rest));
        }
        match self {
            Dialect::Sqlite => {
                let parts: Vec<Expr> = chunks.into_iter().map(|c| self.object_call(c)).collect();
                let n = parts.len().saturating_sub(1);
                let template = format!("{}{{}}{}", "json_patch({}, ".repeat(n), ")".repeat(n));
                self.cust(&template, parts)
            }
            Dialect::Postgres => {
                let parts: Vec<Expr> = chunks
                    .into_iter()
                    .map(|c| {
                        let args: Vec<Expr> = c.into_iter().flat_map(|(k, v)| [k, v]).collect();
                        self.cust(&format!("jsonb_build_object({})", vec!["{}"; args.len()].join(", ")), args)
                    })
                    .collect();
                let template = format!("({})::json", vec!["{}"; parts.len()].join(" || "));
                self.cust(&template, parts)
            }
        }
    }

    /// A JSON array of expressions (cursor keys).
    #[must_use]
    pub fn array(self, items: Vec<Expr>) -> Expr {
        let f = match self {
            Dialect::Sqlite => "json_array",
            Dialect::Postgres => "json_build_array",
        };
        self.cust(&format!("{f}({})", vec!["{}"; items.len()].join(", ")), items)
    }

    /// The text form of a JSON expression, as the row decoder reads it.
    #[must_use]
    pub fn json_text(self, e: Expr) -> Expr {
        match self {
            Dialect::Sqlite => e,
            Dialect::Postgres => self.cust("CAST({} AS TEXT)", vec![e]),
        }
    }

    /// The text column of a row value whose JSON expression (from [`Self::json_value`]) is
    /// `json`, of a stored scalar of type `ty` (`None` for anything whose expression is JSON):
    /// read as [`crate::row::Cell::of`] says. A PostgreSQL date is written as JSON writes it
    /// (ISO), whatever the session's `DateStyle`.
    #[must_use]
    pub fn cell_text(self, ty: Option<&ScalarType>, json: Expr) -> Expr {
        match (self, ty) {
            (Dialect::Postgres, Some(ScalarType::Date)) => self.cust("to_char({}, 'YYYY-MM-DD')", vec![json]),
            // Already text (`to_char`, `trim_scale` as text).
            (Dialect::Postgres, Some(ScalarType::DateTime | ScalarType::Decimal)) => json,
            _ => self.cust("CAST({} AS TEXT)", vec![json]),
        }
    }

    /// A nested JSON value from a scalar subquery, usable inside an object.
    #[must_use]
    pub fn nested(self, sub: Expr) -> Expr {
        match self {
            Dialect::Sqlite => self.cust("json({})", vec![sub]),
            Dialect::Postgres => sub,
        }
    }

    /// The aggregate turning a subquery column of JSON objects into a JSON array (`[]` when empty).
    #[must_use]
    pub fn agg(self, col: Expr) -> Expr {
        match self {
            Dialect::Sqlite => self.cust("COALESCE(json_group_array(json({})), json('[]'))", vec![col]),
            Dialect::Postgres => self.cust("COALESCE(json_agg({}), '[]'::json)", vec![col]),
        }
    }

    /// Like [`Self::agg`], with the array in the given order: `(expr, descending)` pairs, nulls
    /// last ascending and first descending, as page ordering does.
    #[must_use]
    pub fn agg_ordered(self, col: Expr, order: Vec<(Expr, bool)>) -> Expr {
        let keys = ordering(&order);
        let mut args = vec![col];
        args.extend(order.into_iter().map(|(e, _)| e));
        match self {
            Dialect::Sqlite => self.cust(&format!("COALESCE(json_group_array(json({{}}) ORDER BY {keys}), json('[]'))"), args),
            Dialect::Postgres => self.cust(&format!("COALESCE(json_agg({{}} ORDER BY {keys}), '[]'::json)"), args),
        }
    }

    /// A PostgreSQL text array of `items` (each text), one related record's values.
    #[must_use]
    pub fn text_array(self, items: Vec<Expr>) -> Expr {
        // The brackets come as expressions: sea-query reads a bracket in a template as a quote
        // and would leave the placeholders inside unfilled.
        let n = items.len();
        let mut args = Vec::with_capacity(n + 2);
        args.push(Expr::cust("["));
        args.extend(items);
        args.push(Expr::cust("]"));
        self.cust(&format!("ARRAY {{}} {} {{}}", vec!["{}"; n].join(", ")), args)
    }

    /// The two-dimensional PostgreSQL array of a subquery column of [`Self::text_array`]s, in
    /// the given order like [`Self::agg_ordered`] (`NULL` when there is no row).
    #[must_use]
    pub fn array_agg_ordered(self, col: Expr, order: Vec<(Expr, bool)>) -> Expr {
        let keys = ordering(&order);
        let mut args = vec![col];
        args.extend(order.into_iter().map(|(e, _)| e));
        self.cust(&format!("array_agg({{}} ORDER BY {keys})"), args)
    }

    /// A numeric aggregate as a float (`SUM`, `AVG`, `MIN`, `MAX` over `col`).
    #[must_use]
    pub fn float_agg(self, func: &str, col: Expr) -> Expr {
        let ty = match self {
            Dialect::Sqlite => "REAL",
            Dialect::Postgres => "DOUBLE PRECISION",
        };
        self.cust(&format!("CAST({func}({{}}) AS {ty})"), vec![col])
    }

    /// The list elements of a JSON array column (`FROM` item with column `v`).
    fn each(self) -> (&'static str, &'static str) {
        match self {
            Dialect::Sqlite => ("json_each({}) AS e", "e.value"),
            Dialect::Postgres => ("jsonb_array_elements_text({}) AS e(v)", "e.v"),
        }
    }

    /// `col` contains at least one of `items` (`EXISTS` over the elements).
    #[must_use]
    pub fn list_some(self, col: Expr, items: Vec<Expr>) -> Expr {
        let (from, v) = self.each();
        let n = items.len();
        let mut args = vec![col];
        args.extend(items);
        self.cust(&format!("EXISTS (SELECT 1 FROM {from} WHERE {v} IN ({}))", vec!["{}"; n].join(", ")), args)
    }

    /// `col` contains every one of `items` (distinct matches counted).
    #[must_use]
    pub fn list_all(self, col: Expr, items: Vec<Expr>) -> Expr {
        let (from, v) = self.each();
        let n = items.len();
        let mut args = vec![col];
        args.extend(items);
        self.cust(&format!("(SELECT COUNT(DISTINCT {v}) FROM {from} WHERE {v} IN ({})) = {n}", vec!["{}"; n].join(", ")), args)
    }

    /// Case-insensitive `LIKE` with `\` as escape: both sides go through the database's own
    /// `lower()`, so they fold alike (Unicode on PostgreSQL, ASCII on SQLite); `pattern` is escaped.
    #[must_use]
    pub fn ilike(self, col: Expr, pattern: String) -> Expr {
        self.cust("lower({}) LIKE lower({}) ESCAPE '\\'", vec![col, Expr::val(sea_query::Value::String(Some(pattern)))])
    }

    /// `(e) IS NOT TRUE`: the two-valued complement, so negations include rows where `e` is null.
    #[must_use]
    pub fn is_not_true(self, e: Expr) -> Expr {
        self.cust("({}) IS NOT TRUE", vec![e])
    }

    /// Seconds from instant `from` to instant `to` (both stored instants), as a float.
    #[must_use]
    pub fn seconds_between(self, from: Expr, to: Expr) -> Expr {
        match self {
            Dialect::Postgres => self.cust("EXTRACT(EPOCH FROM ({} - {}))::float8", vec![to, from]),
            Dialect::Sqlite => self.cust("((julianday({}) - julianday({})) * 86400.0)", vec![to, from]),
        }
    }
}

/// PostgreSQL SQL with the unsigned values bound after `LIMIT` and `OFFSET` written as numbers,
/// the other placeholders renumbered. sea-query numbers placeholders in the order they appear,
/// each once, and quotes no `$` outside them in the statements this crate builds.
fn inline_page_bounds((sql, values): (String, SqlxValues)) -> (String, SqlxValues) {
    if !sql.contains("LIMIT $") && !sql.contains("OFFSET $") {
        return (sql, values);
    }
    let old = values.0.0;
    let mut kept = Vec::with_capacity(old.len());
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    while let Some(i) = rest.find('$') {
        let (before, tail) = rest.split_at(i);
        out.push_str(before);
        let after = tail.get(1..).unwrap_or_default();
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let Some(k) = after.get(..digits).and_then(|d| d.parse::<usize>().ok()) else {
            out.push('$');
            rest = after;
            continue;
        };
        let value = k.checked_sub(1).and_then(|i| old.get(i));
        let bound = out.ends_with("LIMIT ") || out.ends_with("OFFSET ");
        match (bound, value) {
            (true, Some(sea_query::Value::BigUnsigned(Some(n)))) => out.push_str(&n.to_string()),
            (_, Some(v)) => {
                kept.push(v.clone());
                out.push('$');
                out.push_str(&kept.len().to_string());
            }
            (_, None) => out.push_str(tail.get(..=digits).unwrap_or_default()),
        }
        rest = after.get(digits..).unwrap_or_default();
    }
    out.push_str(rest);
    (out, SqlxValues(sea_query::Values(kept)))
}

/// The value of `crm.read_orgs`: the caller's tenant, then the further tenants its reads cover.
#[must_use]
pub fn read_orgs_setting(org: &OrgId, further: &[OrgId]) -> String {
    let mut out = String::with_capacity(org.as_str().len() * (1 + further.len()) + further.len());
    out.push_str(org.as_str());
    for o in further {
        out.push(',');
        out.push_str(o.as_str());
    }
    out
}

/// A deterministic index or constraint name within PostgreSQL's 63-byte limit.
#[must_use]
pub fn index_name(prefix: &str, table: &str, column: &str) -> String {
    let full = format!("{prefix}_{table}_{column}");
    if full.len() <= 60 {
        return full;
    }
    // FNV-1a keeps long names distinct after truncation.
    let mut h: u32 = 0x811c_9dc5;
    for b in full.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{}_{h:08x}", full.get(..50).unwrap_or(&full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_bounds_become_numbers_and_placeholders_are_renumbered() {
        use sea_query::Value as V;
        let values = SqlxValues(sea_query::Values(vec![
            V::String(Some("a".to_owned())),
            V::BigUnsigned(Some(1)),
            V::String(Some("b".to_owned())),
            V::BigUnsigned(Some(21)),
            V::BigUnsigned(Some(40)),
        ]));
        let sql = "SELECT x FROM t WHERE o = $1 AND (SELECT y FROM u LIMIT $2) = $3 ORDER BY x LIMIT $4 OFFSET $5".to_owned();
        let (sql, values) = inline_page_bounds((sql, values));
        assert_eq!(sql, "SELECT x FROM t WHERE o = $1 AND (SELECT y FROM u LIMIT 1) = $2 ORDER BY x LIMIT 21 OFFSET 40");
        assert_eq!(values.0.0, vec![V::String(Some("a".to_owned())), V::String(Some("b".to_owned()))]);
    }

    #[test]
    fn in_session_appends_the_settings() {
        let org = OrgId::new("org-a").unwrap_or_else(|e| unreachable!("{e}"));
        let child = OrgId::new("org-b").unwrap_or_else(|e| unreachable!("{e}"));
        let built = ("SELECT 1 WHERE $1".to_owned(), SqlxValues(sea_query::Values(vec![sea_query::Value::Bool(Some(true))])));
        let (sql, values) = Dialect::Postgres.in_session(built.clone(), &org, std::slice::from_ref(&child));
        assert!(sql.starts_with("WITH \"crm_session\" AS MATERIALIZED (SELECT set_config('crm.org_id', $2, true)"), "{sql}");
        assert!(sql.contains("set_config('crm.read_orgs', $3, true)") && sql.contains("(SELECT 1 WHERE $1)"), "{sql}");
        assert_eq!(values.0.0.get(2), Some(&sea_query::Value::String(Some("org-a,org-b".to_owned()))));
        assert_eq!(Dialect::Sqlite.in_session(built.clone(), &org, &[]).0, built.0);
    }
}
