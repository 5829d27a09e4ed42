//! `_search`: case- and accent-insensitive matching with the same meaning on both backends.
//!
//! Every model with searchable fields has a column `crm_search`: its searchable fields joined by
//! spaces, folded (Latin letters with diacritics to their base letters, then lower case). The store
//! writes it with the row, folded here by [`fold`] (an insert carries it; an update that changes a
//! searchable field rewrites it from the row as updated), so the column costs the database nothing
//! per row and the schema holds no expression (stock `sqlite3` could not parse the hundred nested
//! `replace()` calls of the generated column of earlier versions). The search term is folded the
//! same way, split into words, and every word must occur in the column (`LIKE '%word%'`).
//!
//! A migration fills the column of rows written before it existed (or before the model's
//! searchable fields changed) with one UPDATE computing the same fold in SQL ([`fold_sql`]), the
//! way custom searchable fields are folded inline by the reads.
//!
//! Typos: a word of four or more letters also matches text one edit away (a letter replaced,
//! two neighbours swapped, a letter missing; from five letters, one letter too many), through
//! `LIKE` patterns with `_` wildcards, so the meaning is the same on both backends and partial
//! words still match.
//!
//! Differences left: rows filled by a migration's UPDATE and custom searchable fields are folded by
//! the database, whose `lower()` folds the case of every script on PostgreSQL and only ASCII on
//! SQLite (letters of the fold table are folded on both); what the store writes is folded here, the
//! same on both backends.

use crm_model::{Model, OrgId, Value};
use sea_query::{Alias, CaseStatement, Expr, ExprTrait, Query};
use uuid::Uuid;

use super::Built;
use crate::sql::dialect::Dialect;

/// The search column of a model's table.
pub const SEARCH_COLUMN: &str = "crm_search";

/// Lower-case letters with diacritics (and ligatures) and what they fold to.
#[rustfmt::skip]
const FOLD: &[(char, &str)] = &[
    ('à', "a"), ('á', "a"), ('â', "a"), ('ã', "a"), ('ä', "a"), ('å', "a"), ('ā', "a"), ('ă', "a"), ('ą', "a"),
    ('ç', "c"), ('ć', "c"), ('ĉ', "c"), ('ċ', "c"), ('č', "c"),
    ('ď', "d"), ('đ', "d"), ('ð', "d"),
    ('è', "e"), ('é', "e"), ('ê', "e"), ('ë', "e"), ('ē', "e"), ('ĕ', "e"), ('ė', "e"), ('ę', "e"), ('ě', "e"),
    ('ĝ', "g"), ('ğ', "g"), ('ġ', "g"), ('ģ', "g"),
    ('ĥ', "h"), ('ħ', "h"),
    ('ì', "i"), ('í', "i"), ('î', "i"), ('ï', "i"), ('ĩ', "i"), ('ī', "i"), ('ĭ', "i"), ('į', "i"),
    ('ĵ', "j"), ('ķ', "k"),
    ('ĺ', "l"), ('ļ', "l"), ('ľ', "l"), ('ŀ', "l"), ('ł', "l"),
    ('ñ', "n"), ('ń', "n"), ('ņ', "n"), ('ň', "n"),
    ('ò', "o"), ('ó', "o"), ('ô', "o"), ('õ', "o"), ('ö', "o"), ('ø', "o"), ('ō', "o"), ('ŏ', "o"), ('ő', "o"),
    ('ŕ', "r"), ('ŗ', "r"), ('ř', "r"),
    ('ś', "s"), ('ŝ', "s"), ('ş', "s"), ('š', "s"), ('ș', "s"),
    ('ţ', "t"), ('ť', "t"), ('ŧ', "t"), ('ț', "t"),
    ('ù', "u"), ('ú', "u"), ('û', "u"), ('ü', "u"), ('ũ', "u"), ('ū', "u"), ('ŭ', "u"), ('ů', "u"), ('ű', "u"), ('ų', "u"),
    ('ŵ', "w"), ('ý', "y"), ('ÿ', "y"), ('ŷ', "y"),
    ('ź', "z"), ('ż', "z"), ('ž', "z"),
    ('ß', "ss"), ('æ', "ae"), ('œ', "oe"), ('þ', "th"),
];

/// Every (letter, replacement) pair the database folds: each table letter and its single-letter
/// upper case.
fn pairs() -> Vec<(char, &'static str)> {
    let mut out = Vec::with_capacity(FOLD.len() * 2);
    for &(c, to) in FOLD {
        out.push((c, to));
        let mut up = c.to_uppercase();
        if let (Some(u), None) = (up.next(), up.next())
            && u != c
        {
            out.push((u, to));
        }
    }
    out
}

/// Folds a search term as the database folds the column: table letters to their base letters,
/// everything else lower-cased.
#[must_use]
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        let lc = c.to_lowercase().next().unwrap_or(c);
        match FOLD.iter().find(|(f, _)| *f == lc) {
            Some((_, to)) => out.push_str(to),
            None => out.extend(c.to_lowercase()),
        }
    }
    out
}

fn escape(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len() + 2);
    for c in chars {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

/// The `LIKE` patterns (escape `\`) a folded search word matches: the word itself anywhere, and
/// for words of four letters or more every pattern one edit away (see the module doc).
#[must_use]
pub fn patterns(word: &str) -> Vec<String> {
    let w: Vec<char> = word.chars().collect();
    let n = w.len();
    let mut out = vec![format!("%{}%", escape(&w))];
    if n < 4 {
        return out;
    }
    let mut push = |p: String| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for i in 0..n {
        let (head, tail) = (w.get(..i).unwrap_or_default(), w.get(i + 1..).unwrap_or_default());
        // One letter replaced.
        push(format!("%{}_{}%", escape(head), escape(tail)));
        // One letter missing from the word as typed (typed one letter too many).
        if n >= 5 {
            push(format!("%{}{}%", escape(head), escape(tail)));
        }
        // Two neighbours swapped.
        if i + 1 < n {
            let mut t = w.clone();
            t.swap(i, i + 1);
            push(format!("%{}%", escape(&t)));
        }
        // One letter left out while typing.
        if i > 0 {
            push(format!("%{}_{}%", escape(head), escape(w.get(i..).unwrap_or_default())));
        }
    }
    out
}

/// The words of a folded term.
#[must_use]
pub fn words(term: &str) -> Vec<String> {
    fold(term).split_whitespace().map(str::to_owned).collect()
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The folded text of the SQL text expressions `parts`, joined by spaces (none when empty).
#[must_use]
pub fn fold_sql(d: Dialect, parts: &[String]) -> Option<String> {
    if parts.is_empty() {
        return None;
    }
    let src = parts.iter().map(|p| format!("coalesce({p}, '')")).collect::<Vec<_>>().join(" || ' ' || ");
    let pairs = pairs();
    Some(match d {
        Dialect::Postgres => {
            // translate() maps one letter to one letter; the ligatures take a replace() each.
            let (single, multi): (Vec<_>, Vec<_>) = pairs.iter().partition(|(_, to)| to.len() == 1);
            let from: String = single.iter().map(|(c, _)| *c).collect();
            let to: String = single.iter().map(|(_, t)| *t).collect();
            let mut e = format!("translate({src}, {}, {})", sql_str(&from), sql_str(&to));
            for (c, t) in multi {
                e = format!("replace({e}, {}, {})", sql_str(&c.to_string()), sql_str(t));
            }
            format!("lower({e})")
        }
        Dialect::Sqlite => {
            let mut e = format!("lower({src})");
            for (c, t) in &pairs {
                e = format!("replace({e}, {}, {})", sql_str(&c.to_string()), sql_str(t));
            }
            e
        }
    })
}

/// Whether `m`'s table has the search column: it has searchable fields of its own columns.
#[must_use]
pub fn has_column(m: &Model) -> bool {
    !m.custom && m.searchable().any(|f| !f.custom)
}

/// The column definition of the search column (written by the store, see the module doc).
#[must_use]
pub fn column_def(m: &Model) -> Option<String> {
    has_column(m).then(|| format!("\"{SEARCH_COLUMN}\" TEXT"))
}

/// The search column's value of a row whose searchable columns hold `value(column)` (none: null).
pub fn text<'v>(m: &Model, mut value: impl FnMut(&str) -> Option<&'v str>) -> String {
    let parts: Vec<&str> = m.searchable().filter(|f| !f.custom).map(|f| value(f.column.as_str()).unwrap_or("")).collect();
    fold(&parts.join(" "))
}

/// The searchable columns of rows `ids` of the tenant's `m`, joined as [`text`] joins them but
/// not folded: `(id, text)` pairs for the store to fold after an update.
#[must_use]
pub fn unfolded(d: Dialect, m: &Model, org: &OrgId, ids: &[Uuid]) -> Built {
    let parts: Vec<String> = m.searchable().filter(|f| !f.custom).map(|f| format!("coalesce(\"{}\", '')", f.column)).collect();
    let joined = if parts.is_empty() { "''".to_owned() } else { parts.join(" || ' ' || ") };
    let stmt = Query::select()
        .expr(Expr::cust("CAST(\"id\" AS TEXT)"))
        .expr(Expr::cust(joined))
        .from(Alias::new(m.table.as_str()))
        .cond_where(Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str())).and(d.ids_in(ids)))
        .to_owned();
    d.build(&stmt)
}

/// Sets the search column of the tenant's rows of `m`: `(id, folded text)` pairs, one statement
/// (none for no pairs). Not a write of the record: version and stamps stay.
#[must_use]
pub fn fill(d: Dialect, m: &Model, org: &OrgId, rows: &[(Uuid, String)]) -> Option<Built> {
    if rows.is_empty() {
        return None;
    }
    let mut case = CaseStatement::new();
    for (id, text) in rows {
        case = case.case(Expr::col(Alias::new("id")).eq(d.bind(&Value::Uuid(*id))), d.bind(&Value::Text(text.clone())));
    }
    let stmt = Query::update()
        .table(Alias::new(m.table.as_str()))
        .value(Alias::new(SEARCH_COLUMN), case.finally(Expr::col(Alias::new(SEARCH_COLUMN))))
        .cond_where(
            Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str())).and(d.ids_in(&rows.iter().map(|(i, _)| *i).collect::<Vec<_>>())),
        )
        .to_owned();
    Some(d.build(&stmt))
}

/// The migration's refill of `m`'s search column over every row of every tenant, folded by the
/// database (none without the column).
#[must_use]
pub fn refill(d: Dialect, m: &Model) -> Option<String> {
    if !has_column(m) {
        return None;
    }
    let cols: Vec<String> = m.searchable().filter(|f| !f.custom).map(|f| format!("\"{}\"", f.column)).collect();
    let expr = fold_sql(d, &cols)?;
    Some(format!("UPDATE \"{}\" SET \"{SEARCH_COLUMN}\" = {expr}", m.table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_accents() {
        assert_eq!(fold("José GARCÍA-Müller"), "jose garcia-muller");
        assert_eq!(fold("Straße Œuvre ÆON"), "strasse oeuvre aeon");
        assert_eq!(words("  Zoë   Ångström "), vec!["zoe", "angstrom"]);
    }

    #[test]
    fn typo_patterns() {
        assert_eq!(patterns("jo"), ["%jo%"]);
        let p = patterns("jonh");
        for want in ["%jonh%", "%john%", "%jo_h%", "%jon_h%"] {
            assert!(p.contains(&want.to_owned()), "{want} in {p:?}");
        }
        assert!(patterns("smiith").contains(&"%smith%".to_owned()));
        assert_eq!(patterns("50%_x").first().map(String::as_str), Some("%50\\%\\_x%"));
    }
}
