//! Typed values and their checks. Inputs arrive as JSON (from GraphQL, the REST API, files or
//! tests); [`parse`] turns one into a [`Value`] of the field's type, [`validate`] applies the
//! field's checks. Both name the field in their error.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::error::ValueError;
use crate::names::ModelName;

/// Longest text accepted in any field unless a check says otherwise (characters).
pub const MAX_TEXT: usize = 1_000_000;
/// Most significant digits in a decimal.
pub const MAX_DECIMAL_DIGITS: usize = 38;

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Text of any text type, select option.
    Text(String),
    /// Decimal in canonical text form.
    Decimal(String),
    /// Date.
    Date(NaiveDate),
    /// Instant in UTC.
    DateTime(DateTime<Utc>),
    /// A record id.
    Uuid(Uuid),
    /// JSON document.
    Json(Json),
    /// Multi-select options or tags.
    List(Vec<String>),
    /// Amount (decimal text) and ISO currency.
    Money {
        /// Decimal amount.
        amount: String,
        /// ISO 4217 code.
        currency: String,
    },
    /// A polymorphic reference.
    Ref {
        /// Target model.
        model: ModelName,
        /// Target id.
        id: Uuid,
    },
}

impl Value {
    /// True for [`Value::Null`].
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The value as JSON, in the form clients read and write.
    #[must_use]
    pub fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Bool(b) => Json::Bool(*b),
            Self::Int(i) => Json::from(*i),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Self::Text(s) | Self::Decimal(s) => Json::String(s.clone()),
            Self::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
            Self::DateTime(t) => Json::String(format_datetime(t)),
            Self::Uuid(u) => Json::String(u.to_string()),
            Self::Json(j) => j.clone(),
            Self::List(l) => Json::Array(l.iter().cloned().map(Json::String).collect()),
            Self::Money { amount, currency } => {
                serde_json::json!({ "amount": amount, "currency": currency })
            }
            Self::Ref { model, id } => {
                serde_json::json!({ "type": model.as_str(), "id": id.to_string() })
            }
        }
    }
}

/// The one text form of instants: RFC 3339, UTC, microseconds, `Z`. Fixed width, so it sorts as
/// text in chronological order (SQLite stores it so).
#[must_use]
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Checks a decimal literal and returns it in canonical form (no `+`, no leading zeros).
///
/// # Errors
/// When the text is not a plain decimal number of at most 38 digits.
pub fn parse_decimal(field: &str, s: &str) -> Result<String, ValueError> {
    let bad = || ValueError::new(field, format!("`{s}` is not a decimal number"));
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if body.contains('.') && frac.is_empty() {
        return Err(bad());
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if int.len() + frac.len() > MAX_DECIMAL_DIGITS {
        return Err(ValueError::new(field, format!("`{s}` has more than {MAX_DECIMAL_DIGITS} digits")));
    }
    let zero = int == "0" && frac.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(t.len());
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Ok(out)
}

/// Why a value with U+0000 is refused, on both backends alike (PostgreSQL can store it in
/// neither `text` nor `jsonb`).
pub const NUL_MESSAGE: &str = "contains a NUL character (U+0000), which cannot be stored";

/// Whether any string of `j` (a JSON object's keys included) contains U+0000.
#[must_use]
pub fn has_nul(j: &Json) -> bool {
    match j {
        Json::String(s) => s.contains('\0'),
        Json::Array(items) => items.iter().any(has_nul),
        Json::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Json::Null | Json::Bool(_) | Json::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    #[test]
    fn decimals_are_canonical() {
        assert_eq!(parse_decimal("x", "0012.50").ok().as_deref(), Some("12.50"));
        assert_eq!(parse_decimal("x", "-0.0").ok().as_deref(), Some("0.0"));
        assert_eq!(parse_decimal("x", "+7").ok().as_deref(), Some("7"));
        assert!(parse_decimal("x", "1e5").is_err());
        assert!(parse_decimal("x", "12.").is_err());
        assert!(parse_decimal("x", "").is_err());
        assert!(parse_decimal("x", &"9".repeat(39)).is_err());
    }

    #[test]
    fn datetimes_sort_as_text() {
        let a = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc));
        let b = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5+00:00").map(|t| t.with_timezone(&Utc));
        let (Ok(a), Ok(b)) = (a, b) else { panic!("parse") };
        assert_eq!(format_datetime(&a), "2026-01-02T03:04:05.000000Z");
        assert!(format_datetime(&a) < format_datetime(&b));
    }
}
