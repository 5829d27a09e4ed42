//! `_search`: case- and accent-insensitive matching with the same meaning on both backends.
//!
//! Every model with searchable fields has a generated column `crm_search`: its searchable fields
//! joined by spaces, folded by the database (Latin letters with diacritics to their base letters,
//! then lower case). The search term is folded the same way here, split into words, and every word
//! must occur in the column (`LIKE '%word%'`). The database maintains the column itself (STORED on
//! PostgreSQL, VIRTUAL on SQLite), so existing rows are covered the moment it is added.
//!
//! Typos: a word of four or more letters also matches text one edit away (a letter replaced,
//! two neighbours swapped, a letter missing; from five letters, one letter too many), through
//! `LIKE` patterns with `_` wildcards, so the meaning is the same on both backends and partial
//! words still match.
//!
//! Differences left: PostgreSQL's `lower()` folds the case of every script, SQLite's only ASCII
//! (letters of the fold table are folded on both).

use crm_model::Model;

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

/// The SQL expression computing the search column of `m` (none without searchable fields).
/// Custom searchable fields are not part of it (their values live in a JSON document the column
/// cannot follow per tenant); the SQL builder folds them inline with [`fold_sql`].
#[must_use]
pub fn column_expr(d: Dialect, m: &Model) -> Option<String> {
    let cols: Vec<String> = m.searchable().filter(|f| !f.custom).map(|f| format!("\"{}\"", f.column)).collect();
    fold_sql(d, &cols)
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

/// The column definition of the search column (generated, maintained by the database).
#[must_use]
pub fn column_def(d: Dialect, m: &Model) -> Option<String> {
    let expr = column_expr(d, m)?;
    let storage = match d {
        // SQLite can only add VIRTUAL generated columns to an existing table.
        Dialect::Sqlite => "VIRTUAL",
        Dialect::Postgres => "STORED",
    };
    Some(format!("\"{SEARCH_COLUMN}\" TEXT GENERATED ALWAYS AS ({expr}) {storage}"))
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
