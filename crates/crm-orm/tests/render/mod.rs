//! Rendering of built statements for snapshots, and the structural checks every snapshotted
//! statement passes: placeholders numbered in order and matching the values, the tenant bound
//! as a parameter, no user-supplied string in the SQL text.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::items_after_statements)] // test code: small counts and literal expectations, one future awaited at a time

use std::fmt::Write as _;

use crm_orm::Dialect;
use crm_orm::sql::Built;
use sea_query::SelectStatement;

pub struct Rendered {
    pub dialect: Dialect,
    pub sql: String,
    pub values: Vec<sea_query::Value>,
}

/// A statement built by the builder, rendered.
pub fn render(d: Dialect, stmt: &SelectStatement) -> Rendered {
    rendered(d, d.build(stmt))
}

/// A built statement, rendered.
pub fn rendered(d: Dialect, (sql, values): Built) -> Rendered {
    Rendered { dialect: d, sql, values: values.0.0 }
}

fn placeholder(d: Dialect, i: usize) -> String {
    match d {
        Dialect::Sqlite => format!("?{i}"),
        Dialect::Postgres => format!("${i}"),
    }
}

impl Rendered {
    /// The SQL followed by one line per bound value.
    pub fn text(&self) -> String {
        let mut out = self.sql.clone();
        out.push_str("\n-- params\n");
        for (i, v) in self.values.iter().enumerate() {
            writeln!(out, "{} = {v:?}", placeholder(self.dialect, i + 1)).unwrap();
        }
        out
    }

    /// Byte offsets and 1-based value indices of the placeholders, in order of appearance.
    pub fn placeholders(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let bytes = self.sql.as_bytes();
        let mut in_literal = false;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'\'' {
                in_literal = !in_literal;
            } else if !in_literal {
                match (self.dialect, c) {
                    (Dialect::Sqlite, b'?') => out.push((i, out.len() + 1)),
                    (Dialect::Postgres, b'$') => {
                        let digits: String = self.sql[i + 1..].chars().take_while(char::is_ascii_digit).collect();
                        assert!(!digits.is_empty(), "a `$` that is not a placeholder in:\n{}", self.sql);
                        out.push((i, digits.parse().unwrap()));
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        assert!(!in_literal, "unterminated literal in:\n{}", self.sql);
        out
    }

    /// Placeholders match the values one to one, numbered in order of appearance (a statement
    /// that sets the tenant itself, `Dialect::in_session`, sets it from the last two first).
    pub fn check_placeholders(&self) {
        let mut seen: Vec<usize> = self.placeholders().into_iter().map(|(_, n)| n).collect();
        if self.sql.starts_with("WITH \"crm_session\"") && seen.len() >= 2 {
            seen.rotate_left(2);
        }
        let expected: Vec<usize> = (1..=self.values.len()).collect();
        assert_eq!(seen, expected, "placeholders do not match the {} values in:\n{}", self.values.len(), self.sql);
    }

    /// The value bound at the placeholder that follows `needle`.
    pub fn value_after(&self, needle: &str) -> Option<&sea_query::Value> {
        let pos = self.sql.find(needle)? + needle.len();
        let (_, n) = self.placeholders().into_iter().find(|(p, _)| *p == pos)?;
        self.values.get(n - 1)
    }

    /// The root table is confined to `org` by a bound parameter, and every other table in the
    /// statement is linked to its parent row's tenant.
    pub fn check_tenant(&self, org: &str) {
        let root = self.value_after("\"t0\".\"org_id\" = ");
        assert_eq!(
            root,
            Some(&sea_query::Value::String(Some(org.to_owned()))),
            "the root tenant predicate is missing or not bound to {org} in:\n{}",
            self.sql
        );
        // `"table" AS "tN"` with N > 0: a joined tenant table (derived tables are `) AS "tN"`).
        let mut rest = self.sql.as_str();
        while let Some(i) = rest.find("\" AS \"t") {
            let after = &rest[i + "\" AS \"".len()..];
            let alias: String = after.chars().take_while(|c| *c != '"').collect();
            if alias != "t0" {
                let link = format!("\"{alias}\".\"org_id\" = \"t");
                assert!(self.sql.contains(&link), "table `{alias}` is not linked to its parent's tenant in:\n{}", self.sql);
            }
            rest = after;
        }
    }

    /// A statement without table aliases (a write, an event, a metadata row) is confined to
    /// `org`: every `"org_id" = …` predicate compares with a placeholder bound to `org`, and a
    /// statement without one (an insert) binds `org` among its values.
    pub fn check_tenant_bound(&self, org: &str) {
        let tenant = sea_query::Value::String(Some(org.to_owned()));
        let needle = "\"org_id\" = ";
        let mut found = false;
        let mut from = 0;
        while let Some(i) = self.sql[from..].find(needle) {
            let pos = from + i + needle.len();
            from = pos;
            if self.sql[pos..].starts_with('"') {
                continue; // a joined table linked to its parent row's tenant
            }
            let (_, n) = self
                .placeholders()
                .into_iter()
                .find(|(p, _)| *p == pos)
                .unwrap_or_else(|| panic!("`org_id` compared with something else than a parameter in:\n{}", self.sql));
            assert_eq!(self.values.get(n - 1), Some(&tenant), "`org_id` not bound to {org} in:\n{}", self.sql);
            found = true;
        }
        if !found {
            assert!(self.sql.contains("\"org_id\""), "no tenant column in:\n{}", self.sql);
            assert!(self.values.contains(&tenant), "the tenant {org} is not bound in:\n{}", self.sql);
        }
    }

    /// No user-supplied string is written into the SQL text (as given or lower-cased, as the
    /// `LIKE` patterns are), and every literal is a static template or a validated JSON key (or
    /// its SQLite path).
    pub fn check_no_inline(&self, user: &[String]) {
        for s in user {
            assert!(!self.sql.contains(s.as_str()), "user input `{s}` is inlined in:\n{}", self.sql);
            assert!(!self.sql.contains(&s.to_lowercase()), "user input `{s}` (lower-cased) is inlined in:\n{}", self.sql);
        }
        const STATIC: &[&str] = &[
            "\\",
            "UTC",
            "YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"",
            "YYYY-MM-DD",
            "[]",
            "true",
            "false",
            "",
            "on",
            "crm.org_id",
            "crm.read_orgs",
            "crm.platform",
            " ",
        ];
        let mut parts = self.sql.split('\'');
        parts.next();
        for (i, lit) in parts.enumerate() {
            if i % 2 == 1 {
                continue; // text between literals
            }
            // A validated JSON key, or the SQLite JSON path of one (`$.key`).
            let name = lit.strip_prefix("$.").unwrap_or(lit);
            let key = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            assert!(key || STATIC.contains(&lit), "unexpected literal '{lit}' in:\n{}", self.sql);
        }
    }

    /// All checks of a statement run as a principal of `org`.
    pub fn check(&self, org: &str, user: &[String]) {
        self.check_placeholders();
        self.check_tenant(org);
        self.check_no_inline(user);
    }
}
