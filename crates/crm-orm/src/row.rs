//! The JSON object of a page row, written by the reader from the row's columns.
//!
//! A page statement selects each value of a row as a text column; the reader writes the
//! object around them. PostgreSQL builds a JSON object per row at about half the speed it reads
//! the same columns (`json_build_object` resolves each argument's type on every call), while
//! writing the object here costs a few hundred nanoseconds. Nested relations and structured
//! values (money, polymorphic references, JSON fields) come as JSON built by the database, one
//! column each; on PostgreSQL a related record or list of records comes as a text array of
//! its values (`array_agg` of `ARRAY[…]`, several times cheaper than `json_agg` of
//! `json_build_object`), written as JSON here too. Pure: no database here.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use crm_model::ScalarType;

/// How a column's text becomes a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text, written as a JSON string.
    Text,
    /// A number's text: written as is when it is a JSON number, as a string otherwise (a
    /// floating-point `NaN` or `Infinity`, as PostgreSQL's own JSON does).
    Number,
    /// JSON text (booleans, JSON fields, nested objects and lists), written as is.
    Json,
    /// A PostgreSQL text array of one record's values (`{a,"b c",NULL}`), written as the
    /// object of this shape.
    Row(Box<RowShape>),
    /// A PostgreSQL two-dimensional text array, a record's values per row, written as the list
    /// of objects of this shape (`NULL`, no record, is the empty list).
    Rows(Box<RowShape>),
}

impl Cell {
    /// How a stored scalar of type `ty` reads, as [`crate::Dialect::cell_text`] selects it.
    #[must_use]
    pub fn of(ty: &ScalarType) -> Cell {
        match ty {
            ScalarType::Int | ScalarType::Float => Cell::Number,
            ScalarType::Boolean | ScalarType::Json | ScalarType::Tags | ScalarType::MultiSelect(_) | ScalarType::Money { .. } => Cell::Json,
            _ => Cell::Text,
        }
    }
}

/// One entry of a row object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// The value of the next column.
    Column(Cell),
    /// A value known when the statement is built (`__typename`), as JSON text.
    Literal(String),
}

/// The shape of a page row's JSON object: its keys in order, and where each value comes from.
/// The statement selects one column per [`Cell`] entry, in this order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RowShape {
    /// Each entry: the JSON text written before its value (`{"id":`, `,"name":`) and the value.
    parts: Vec<(String, Part)>,
}

impl RowShape {
    /// Adds a key whose value is the next column.
    pub fn column(&mut self, key: &str, cell: Cell) {
        let prefix = self.prefix(key);
        self.parts.push((prefix, Part::Column(cell)));
    }

    /// Adds a key with a constant JSON value.
    pub fn literal(&mut self, key: &str, json: String) {
        let prefix = self.prefix(key);
        self.parts.push((prefix, Part::Literal(json)));
    }

    fn prefix(&self, key: &str) -> String {
        let mut p = String::with_capacity(key.len() + 4);
        p.push(if self.parts.is_empty() { '{' } else { ',' });
        write_string(&mut p, key);
        p.push(':');
        p
    }

    /// The number of value columns.
    #[must_use]
    pub fn columns(&self) -> usize {
        self.parts.iter().filter(|(_, p)| matches!(p, Part::Column(_))).count()
    }

    /// Writes the row object from its value columns, in order (`None` for SQL `NULL`).
    ///
    /// # Errors
    /// The shape wants more columns than `values` gives (a statement built for another shape).
    pub fn write<'v>(&self, values: impl Iterator<Item = Option<&'v str>>) -> Result<String, ShapeMismatch> {
        let mut out = String::with_capacity(self.parts.iter().map(|(p, _)| p.len() + 24).sum::<usize>() + 2);
        self.write_into(&mut out, values)?;
        Ok(out)
    }

    /// Like [`Self::write`], appending to `out`.
    fn write_into<'v>(&self, out: &mut String, mut values: impl Iterator<Item = Option<&'v str>>) -> Result<(), ShapeMismatch> {
        for (prefix, part) in &self.parts {
            out.push_str(prefix);
            match part {
                Part::Literal(json) => out.push_str(json),
                Part::Column(cell) => write_value(out, cell, values.next().ok_or(ShapeMismatch)?)?,
            }
        }
        out.push_str(if self.parts.is_empty() { "{}" } else { "}" });
        Ok(())
    }
}

/// The cursor keys of a page row (its ordering keys' values, then its id) as the JSON array a
/// cursor carries. A key the row already selects (the same expression) is read from the row's
/// column; any other has a column of its own, before the row's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyShape(Vec<Key>);

/// Where a cursor key's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// The next of the keys' own columns.
    Column(Cell),
    /// The row's value column of this index.
    RowColumn(usize, Cell),
}

impl KeyShape {
    /// Adds a key with a column of its own.
    pub fn column(&mut self, cell: Cell) {
        self.0.push(Key::Column(cell));
    }

    /// Adds a key read from the row's value column `index`.
    pub fn row_column(&mut self, index: usize, cell: Cell) {
        self.0.push(Key::RowColumn(index, cell));
    }

    /// Whether no key is wanted (no cursor selected).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of the keys' own columns.
    #[must_use]
    pub fn columns(&self) -> usize {
        self.0.iter().filter(|k| matches!(k, Key::Column(_))).count()
    }

    /// Writes the keys' JSON array from their own columns' values (`own`, in order) and the
    /// row's value columns (`row`).
    ///
    /// # Errors
    /// Fewer values than the shape reads.
    pub fn write(&self, own: &[Option<&str>], row: &[Option<&str>]) -> Result<String, ShapeMismatch> {
        let mut out = String::with_capacity(16 + 40 * self.0.len());
        out.push('[');
        let mut own = own.iter();
        for (i, key) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let (v, cell) = match key {
                Key::Column(cell) => (own.next(), cell),
                Key::RowColumn(j, cell) => (row.get(*j), cell),
            };
            write_value(&mut out, cell, *v.ok_or(ShapeMismatch)?)?;
        }
        out.push(']');
        Ok(out)
    }
}

/// A compact form for plan snapshots: `{id:text, score:number, account:json, __typename=…}`.
impl fmt::Debug for RowShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (prefix, part)) in self.parts.iter().enumerate() {
            let key = prefix.trim_start_matches(['{', ',']).trim_end_matches(':');
            if i > 0 {
                f.write_str(", ")?;
            }
            match part {
                Part::Column(Cell::Row(shape)) => write!(f, "{key}:row{shape:?}")?,
                Part::Column(Cell::Rows(shape)) => write!(f, "{key}:rows{shape:?}")?,
                Part::Column(cell) => write!(f, "{key}:{}", format!("{cell:?}").to_lowercase())?,
                Part::Literal(json) => write!(f, "{key}={json}")?,
            }
        }
        f.write_str("}")
    }
}

/// A row had fewer columns than its shape wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeMismatch;

/// Writes one value (`None` for SQL `NULL`) as `cell` says.
fn write_value(out: &mut String, cell: &Cell, v: Option<&str>) -> Result<(), ShapeMismatch> {
    let Some(v) = v else {
        out.push_str(if matches!(cell, Cell::Rows(_)) { "[]" } else { "null" });
        return Ok(());
    };
    match cell {
        Cell::Json => out.push_str(v),
        Cell::Number if is_json_number(v) => out.push_str(v),
        Cell::Text | Cell::Number => write_string(out, v),
        Cell::Row(shape) => shape.write_into(out, items(&parse_array(v)?)?)?,
        Cell::Rows(shape) => {
            out.push('[');
            for (i, row) in parse_array(v)?.iter().enumerate() {
                let Item::Array(row) = row else { return Err(ShapeMismatch) };
                if i > 0 {
                    out.push(',');
                }
                shape.write_into(out, items(row)?)?;
            }
            out.push(']');
        }
    }
    Ok(())
}

/// The values of a one-dimensional array.
fn items<'s>(row: &'s [Item<'_>]) -> Result<impl Iterator<Item = Option<&'s str>>, ShapeMismatch> {
    if row.iter().any(|i| matches!(i, Item::Array(_))) {
        return Err(ShapeMismatch);
    }
    Ok(row.iter().map(|i| match i {
        Item::Text(t) => Some(t.as_ref()),
        _ => None,
    }))
}

/// Whether `s` is a number in JSON's grammar (`-? int frac? exp?`).
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// The escape of each byte in a JSON string: 0 for none, `u` for `\u00XX`, else the letter
/// after the backslash. (Built at compile time: an index out of range would fail the build.)
#[allow(clippy::indexing_slicing)]
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped (as
/// PostgreSQL's `escape_json` does), everything else as is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let esc = ESCAPE.get(usize::from(b)).copied().unwrap_or(0);
        if esc == 0 {
            continue;
        }
        out.push_str(&s[start..i]);
        if esc == b'u' {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push('\\');
            out.push(char::from(esc));
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A PostgreSQL array's text form (`{a,"b c",NULL}`, `{{1,2},{3,4}}`), as written by
/// `array_out` for text elements: its elements, each `None` for `NULL` or its text (unquoted
/// and unescaped), or a nested array.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item<'a> {
    Null,
    Text(Cow<'a, str>),
    Array(Vec<Item<'a>>),
}

fn parse_array(s: &str) -> Result<Vec<Item<'_>>, ShapeMismatch> {
    let mut p = ArrayParser { s, i: 0 };
    let items = p.array()?;
    if p.i == s.len() { Ok(items) } else { Err(ShapeMismatch) }
}

struct ArrayParser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> ArrayParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn array(&mut self) -> Result<Vec<Item<'a>>, ShapeMismatch> {
        if self.peek() != Some(b'{') {
            return Err(ShapeMismatch);
        }
        self.i += 1;
        let mut items = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(items);
        }
        loop {
            items.push(match self.peek() {
                Some(b'{') => Item::Array(self.array()?),
                Some(b'"') => Item::Text(self.quoted()?),
                Some(_) => self.bare(),
                None => return Err(ShapeMismatch),
            });
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(ShapeMismatch),
            }
        }
    }

    fn quoted(&mut self) -> Result<Cow<'a, str>, ShapeMismatch> {
        self.i += 1;
        let start = self.i;
        let b = self.s.as_bytes();
        let mut owned: Option<String> = None;
        let mut run = start;
        while let Some(&c) = b.get(self.i) {
            match c {
                b'"' => {
                    let text = match owned {
                        None => Cow::Borrowed(&self.s[start..self.i]),
                        Some(mut o) => {
                            o.push_str(&self.s[run..self.i]);
                            Cow::Owned(o)
                        }
                    };
                    self.i += 1;
                    return Ok(text);
                }
                b'\\' => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&self.s[run..self.i]);
                    self.i += 1;
                    run = self.i;
                    // The escaped character is kept (it may be a multi-byte one: skip it whole).
                    let ch = self.s[self.i..].chars().next().ok_or(ShapeMismatch)?;
                    self.i += ch.len_utf8();
                }
                _ => self.i += 1,
            }
        }
        Err(ShapeMismatch)
    }

    fn bare(&mut self) -> Item<'a> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b',' || c == b'}' {
                break;
            }
            self.i += 1;
        }
        let text = &self.s[start..self.i];
        if text.eq_ignore_ascii_case("NULL") { Item::Null } else { Item::Text(Cow::Borrowed(text)) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    fn shape() -> RowShape {
        let mut s = RowShape::default();
        s.column("id", Cell::Text);
        s.column("score", Cell::Number);
        s.column("account", Cell::Json);
        s.literal("__typename", "\"Lead\"".to_owned());
        s.column("name", Cell::Text);
        s
    }

    #[test]
    fn writes_the_object_in_shape_order() {
        let row = shape().write([Some("a1"), Some("12"), Some(r#"{"id":"x"}"#), Some("Ada")].into_iter()).unwrap();
        assert_eq!(row, r#"{"id":"a1","score":12,"account":{"id":"x"},"__typename":"Lead","name":"Ada"}"#);
    }

    #[test]
    fn nulls_and_missing_columns() {
        let row = shape().write([None, None, None, None].into_iter()).unwrap();
        assert_eq!(
            serde_json::from_str::<Json>(&row).unwrap(),
            json!({"id": null, "score": null, "account": null, "__typename": "Lead", "name": null})
        );
        assert_eq!(shape().write([Some("a")].into_iter()), Err(ShapeMismatch));
        assert_eq!(RowShape::default().write(std::iter::empty()).unwrap(), "{}");
        assert_eq!(shape().columns(), 4);
    }

    #[test]
    fn text_is_escaped_as_json() {
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \u{0} é 🦀 </script>";
        let mut s = RowShape::default();
        s.column("k\"ey", Cell::Text);
        let row = s.write([Some(nasty)].into_iter()).unwrap();
        assert_eq!(serde_json::from_str::<Json>(&row).unwrap(), json!({"k\"ey": nasty}));
        assert!(row.contains("\\u0007") && row.contains("\\u0000"), "{row}");
    }

    #[test]
    fn numbers_that_json_cannot_hold_become_strings() {
        let mut s = RowShape::default();
        s.column("n", Cell::Number);
        for (text, want) in [
            ("0", json!(0)),
            ("-12", json!(-12)),
            ("3.25", json!(3.25)),
            ("1e+20", json!(1e20)),
            ("-1.5E-7", json!(-1.5e-7)),
            ("NaN", json!("NaN")),
            ("Infinity", json!("Infinity")),
            ("-Infinity", json!("-Infinity")),
            ("01", json!("01")),
            ("1.", json!("1.")),
            (".5", json!(".5")),
            ("1e", json!("1e")),
            ("", json!("")),
            ("-", json!("-")),
        ] {
            let row = s.write([Some(text)].into_iter()).unwrap();
            assert_eq!(serde_json::from_str::<Json>(&row).unwrap(), json!({"n": want}), "{text}");
        }
    }

    #[test]
    fn cursor_keys_are_a_json_array() {
        let mut k = KeyShape::default();
        k.column(Cell::Text);
        k.column(Cell::Number);
        k.row_column(1, Cell::Text);
        let row = [Some("Ada"), Some("0191")];
        assert_eq!(k.write(&[Some("2026-01-01T00:00:00.000000Z"), None], &row).unwrap(), r#"["2026-01-01T00:00:00.000000Z",null,"0191"]"#);
        assert_eq!(k.columns(), 2);
        assert!(!k.is_empty() && KeyShape::default().is_empty());
        assert_eq!(k.write(&[Some("x")], &row), Err(ShapeMismatch), "an own column is missing");
        assert_eq!(k.write(&[Some("x"), None], &row[..1]), Err(ShapeMismatch), "the row's column is missing");
    }

    #[test]
    fn postgres_arrays_are_read_back() {
        fn text(s: &str) -> Item<'_> {
            Item::Text(Cow::Borrowed(s))
        }
        let got = parse_array(r#"{a,"b c",NULL,"NULL","","q\"x\\y",é}"#).unwrap();
        assert_eq!(
            got,
            vec![text("a"), text("b c"), Item::Null, text("NULL"), text(""), Item::Text(Cow::Owned("q\"x\\y".to_owned())), text("é")]
        );
        assert_eq!(
            parse_array("{{1,2},{3,NULL}}").unwrap(),
            vec![Item::Array(vec![text("1"), text("2")]), Item::Array(vec![text("3"), Item::Null])]
        );
        assert_eq!(parse_array("{}").unwrap(), vec![]);
        for bad in ["", "{", "{a", "{\"a}", "{a}x", "a", "{a,}x"] {
            assert_eq!(parse_array(bad), Err(ShapeMismatch), "{bad}");
        }
    }

    #[test]
    fn related_records_from_arrays() {
        let mut contact = RowShape::default();
        contact.column("id", Cell::Text);
        contact.column("score", Cell::Number);
        contact.column("name", Cell::Text);
        let mut account = RowShape::default();
        account.column("name", Cell::Text);
        account.column("contacts", Cell::Rows(Box::new(contact.clone())));
        let mut s = RowShape::default();
        s.column("account", Cell::Row(Box::new(account)));
        s.column("contacts", Cell::Rows(Box::new(contact)));
        // The account's contacts are an array inside the account's array: quoted and escaped.
        let account_text = r#"{"Acme, Inc.","{{c1,3,\"Ada \\\"A\\\"\"},{c2,NULL,NULL}}"}"#;
        let row = s.write([Some(account_text), None].into_iter()).unwrap();
        let want = json!({
            "account": {"name": "Acme, Inc.", "contacts": [{"id": "c1", "score": 3, "name": "Ada \"A\""}, {"id": "c2", "score": null, "name": null}]},
            "contacts": []
        });
        assert_eq!(serde_json::from_str::<Json>(&row).unwrap(), want);
        let row = s.write([None, Some("{{c3,1,Bo}}")].into_iter()).unwrap();
        assert_eq!(
            serde_json::from_str::<Json>(&row).unwrap(),
            json!({"account": null, "contacts": [{"id": "c3", "score": 1, "name": "Bo"}]})
        );
        // A malformed or misshapen array is an error, not a wrong object.
        assert_eq!(s.write([Some("{a"), None].into_iter()), Err(ShapeMismatch));
        assert_eq!(s.write([None, Some("{c3,1,Bo}")].into_iter()), Err(ShapeMismatch));
    }

    #[test]
    fn debug_names_keys_and_cells() {
        assert_eq!(format!("{:?}", shape()), r#"{"id":text, "score":number, "account":json, "__typename"="Lead", "name":text}"#);
    }
}
