//! The JSON object of a page row, written by the reader from the row's columns.
//!
//! A page statement selects each value of a row as a text column; the reader writes the
//! object around them. PostgreSQL builds a JSON object per row at about half the speed it reads
//! the same columns (`json_build_object` resolves each argument's type on every call), while
//! writing the object here costs a few hundred nanoseconds. Nested relations and structured
//! values (money, polymorphic references, JSON fields) still come as JSON built by the
//! database, one column each. Pure: no database here.

use std::fmt::{self, Write as _};

use crm_model::ScalarType;

/// How a column's text becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Text, written as a JSON string.
    Text,
    /// A number's text: written as is when it is a JSON number, as a string otherwise (a
    /// floating-point `NaN` or `Infinity`, as PostgreSQL's own JSON does).
    Number,
    /// JSON text (booleans, JSON fields, nested objects and lists), written as is.
    Json,
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
    pub fn write<'v>(&self, mut values: impl Iterator<Item = Option<&'v str>>) -> Result<String, ShapeMismatch> {
        let mut out = String::with_capacity(self.parts.iter().map(|(p, _)| p.len() + 24).sum::<usize>() + 2);
        for (prefix, part) in &self.parts {
            out.push_str(prefix);
            match part {
                Part::Literal(json) => out.push_str(json),
                Part::Column(cell) => match values.next().ok_or(ShapeMismatch)? {
                    None => out.push_str("null"),
                    Some(v) => write_value(&mut out, *cell, v),
                },
            }
        }
        out.push_str(if self.parts.is_empty() { "{}" } else { "}" });
        Ok(out)
    }
}

/// The cursor keys of a page row (its ordering keys' values, then its id) as the JSON array a
/// cursor carries: one column each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyShape(Vec<Cell>);

impl KeyShape {
    /// Adds a key column.
    pub fn push(&mut self, cell: Cell) {
        self.0.push(cell);
    }

    /// The number of key columns (none when no cursor is wanted).
    #[must_use]
    pub fn columns(&self) -> usize {
        self.0.len()
    }

    /// Writes the keys' JSON array from the next [`Self::columns`] values.
    ///
    /// # Errors
    /// Fewer values than key columns.
    pub fn write<'v>(&self, values: &mut impl Iterator<Item = Option<&'v str>>) -> Result<String, ShapeMismatch> {
        let mut out = String::with_capacity(16 + 40 * self.0.len());
        out.push('[');
        for (i, cell) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match values.next().ok_or(ShapeMismatch)? {
                None => out.push_str("null"),
                Some(v) => write_value(&mut out, *cell, v),
            }
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

fn write_value(out: &mut String, cell: Cell, v: &str) {
    match cell {
        Cell::Json => out.push_str(v),
        Cell::Number if is_json_number(v) => out.push_str(v),
        Cell::Text | Cell::Number => write_string(out, v),
    }
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

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped (as
/// PostgreSQL's `escape_json` does), everything else as is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
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
        k.push(Cell::Text);
        k.push(Cell::Number);
        k.push(Cell::Text);
        let mut values = [Some("2026-01-01T00:00:00.000000Z"), None, Some("0191"), Some("rest")].into_iter();
        assert_eq!(k.write(&mut values).unwrap(), r#"["2026-01-01T00:00:00.000000Z",null,"0191"]"#);
        assert_eq!(values.next(), Some(Some("rest")), "the row's columns follow the keys'");
        assert_eq!(k.write(&mut std::iter::empty()), Err(ShapeMismatch));
        assert_eq!(k.columns(), 3);
    }

    #[test]
    fn debug_names_keys_and_cells() {
        assert_eq!(format!("{:?}", shape()), r#"{"id":text, "score":number, "account":json, "__typename"="Lead", "name":text}"#);
    }
}
