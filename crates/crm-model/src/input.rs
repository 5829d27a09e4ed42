//! Input values: a field's JSON input parsed into a [`Value`] of its type, and the field's checks
//! applied to a value about to be written.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::catalog::{Field, FieldKind, ScalarType};
use crate::error::ValueError;
use crate::value::{MAX_TEXT, NUL_MESSAGE, Value, has_nul, parse_decimal};

fn type_name(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

fn expected(field: &Field, what: &str, got: &Json) -> ValueError {
    ValueError::new(field.name.as_str(), format!("expected {what}, got {}", type_name(got)))
}

fn parse_datetime(field: &Field, s: &str) -> Result<DateTime<Utc>, ValueError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| ValueError::new(field.name.as_str(), datetime_hint(s)))
}

/// Why `s` is not an instant, and what is expected: a local time without an offset and a bare
/// date are told apart (the instant they mean depends on a time zone the server cannot guess).
fn datetime_hint(s: &str) -> String {
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .any(|f| chrono::NaiveDateTime::parse_from_str(s, f).is_ok());
    if local {
        return format!(
            "`{s}` is not an RFC 3339 date-time: it has no time zone offset; add one, e.g. `Z` for UTC or `+02:00` (`2026-03-01T09:30:00Z`)"
        );
    }
    if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
        return format!("`{s}` is not an RFC 3339 date-time: it is a date; give a time and an offset (`{s}T00:00:00Z`)");
    }
    format!("`{s}` is not an RFC 3339 date-time (a date, a time and an offset: `2026-03-01T09:30:00Z`)")
}

fn parse_scalar(field: &Field, ty: &ScalarType, j: &Json) -> Result<Value, ValueError> {
    let name = field.name.as_str();
    match (ty, j) {
        (ScalarType::Text | ScalarType::LongText | ScalarType::Email | ScalarType::Phone | ScalarType::Url, Json::String(s)) => {
            Ok(Value::Text(s.clone()))
        }
        (ScalarType::Id, Json::String(s)) => {
            Uuid::parse_str(s).map(Value::Uuid).map_err(|_| ValueError::new(name, format!("`{s}` is not a valid id")))
        }
        (ScalarType::Int, Json::Number(n)) => {
            n.as_i64().map(Value::Int).ok_or_else(|| ValueError::new(name, format!("{n} is not a 64-bit integer")))
        }
        (ScalarType::Float, Json::Number(n)) => {
            n.as_f64().filter(|f| f.is_finite()).map(Value::Float).ok_or_else(|| expected(field, "a finite number", j))
        }
        (ScalarType::Decimal, Json::String(s)) => parse_decimal(name, s).map(Value::Decimal),
        (ScalarType::Decimal, Json::Number(n)) => parse_decimal(name, &n.to_string()).map(Value::Decimal),
        (ScalarType::Money { .. }, Json::Object(o)) => {
            let amount = match o.get("amount") {
                Some(Json::String(s)) => parse_decimal(name, s)?,
                Some(Json::Number(n)) => parse_decimal(name, &n.to_string())?,
                _ => return Err(ValueError::new(name, "money needs an `amount` (decimal)")),
            };
            let currency = match o.get("currency") {
                Some(Json::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => c.clone(),
                _ => {
                    return Err(ValueError::new(name, "money needs a `currency` (ISO 4217 code such as EUR)"));
                }
            };
            if o.len() > 2 {
                return Err(ValueError::new(name, "money takes only `amount` and `currency`"));
            }
            Ok(Value::Money { amount, currency })
        }
        // A bare amount compares against the amount of a money field (filters).
        (ScalarType::Money { .. }, Json::String(s)) => parse_decimal(name, s).map(Value::Decimal),
        (ScalarType::Money { .. }, Json::Number(n)) => parse_decimal(name, &n.to_string()).map(Value::Decimal),
        (ScalarType::Boolean, Json::Bool(b)) => Ok(Value::Bool(*b)),
        (ScalarType::Date, Json::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Value::Date)
            .map_err(|_| ValueError::new(name, format!("`{s}` is not a date (YYYY-MM-DD)"))),
        (ScalarType::DateTime, Json::String(s)) => parse_datetime(field, s).map(Value::DateTime),
        (ScalarType::Select(opts), Json::String(s)) => {
            if opts.iter().any(|o| o.as_str() == s) {
                Ok(Value::Text(s.clone()))
            } else {
                Err(ValueError::new(name, format!("`{s}` is not one of the options")))
            }
        }
        (ScalarType::MultiSelect(opts), Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Json::String(s) if opts.iter().any(|o| o.as_str() == s) => {
                        if !out.contains(s) {
                            out.push(s.clone());
                        }
                    }
                    _ => {
                        return Err(ValueError::new(name, format!("{i} is not one of the options")));
                    }
                }
            }
            Ok(Value::List(out))
        }
        (ScalarType::Tags, Json::Array(items)) => {
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Json::String(s) if !s.trim().is_empty() && s.len() <= 200 => {
                        let t = s.trim().to_owned();
                        if !out.contains(&t) {
                            out.push(t);
                        }
                    }
                    _ => {
                        return Err(ValueError::new(name, "tags are non-empty strings of at most 200 bytes"));
                    }
                }
            }
            Ok(Value::List(out))
        }
        (ScalarType::Json, j) => Ok(Value::Json(j.clone())),
        (ty, j) => Err(expected(field, type_label(ty), j)),
    }
}

fn type_label(ty: &ScalarType) -> &'static str {
    match ty {
        ScalarType::Text | ScalarType::LongText | ScalarType::Email | ScalarType::Phone | ScalarType::Url => "a string",
        ScalarType::Id => "an id",
        ScalarType::Int => "an integer",
        ScalarType::Float => "a number",
        ScalarType::Decimal => "a decimal (string)",
        ScalarType::Money { .. } => "money ({amount, currency})",
        ScalarType::Boolean => "a boolean",
        ScalarType::Date => "a date (YYYY-MM-DD)",
        ScalarType::DateTime => "a date-time (RFC 3339)",
        ScalarType::Select(_) => "one of the options",
        ScalarType::MultiSelect(_) | ScalarType::Tags => "a list of strings",
        ScalarType::Json => "JSON",
    }
}

/// Parses a JSON input into a value of `field`'s type. `null` gives [`Value::Null`] (whether null
/// is allowed is [`validate`]'s and the writer's business). To-one relations take an id,
/// polymorphic references `{"type": "Lead", "id": "…"}`.
///
/// # Errors
/// When the JSON has the wrong shape for the type, names an unknown option, or is not a valid id,
/// date or decimal.
pub fn parse(field: &Field, j: &Json) -> Result<Value, ValueError> {
    if j.is_null() {
        return Ok(Value::Null);
    }
    let name = field.name.as_str();
    if has_nul(j) {
        return Err(ValueError::new(name, NUL_MESSAGE));
    }
    match &field.kind {
        FieldKind::Scalar(ty) => parse_scalar(field, ty, j),
        FieldKind::ToOne { .. } => match j {
            Json::String(s) => Uuid::parse_str(s).map(Value::Uuid).map_err(|_| ValueError::new(name, format!("`{s}` is not a valid id"))),
            _ => Err(expected(field, "an id", j)),
        },
        FieldKind::Polymorphic { targets, .. } => {
            let (Some(Json::String(t)), Some(Json::String(id))) = (j.get("type"), j.get("id")) else {
                return Err(ValueError::new(name, "expected {\"type\": <model>, \"id\": <id>}"));
            };
            let model = if targets.is_empty() {
                // Any model: whether it exists is checked on write.
                crate::ModelName::new(t.as_str()).map_err(|_| ValueError::new(name, format!("`{t}` is not a model")))?
            } else {
                targets
                    .iter()
                    .find(|m| m.as_str() == t)
                    .cloned()
                    .ok_or_else(|| ValueError::new(name, format!("`{t}` is not an allowed target")))?
            };
            let id = Uuid::parse_str(id).map_err(|_| ValueError::new(name, format!("`{id}` is not a valid id")))?;
            Ok(Value::Ref { model, id })
        }
        FieldKind::ToMany { .. } => Err(ValueError::new(name, "a to-many relation has no value of its own")),
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

fn valid_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let body = s.strip_prefix('+').unwrap_or(s);
    (5..=20).contains(&digits) && body.chars().all(|c| c.is_ascii_digit() || " -().".contains(c))
}

fn valid_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !s.chars().any(char::is_whitespace) && host.chars().all(|c| c.is_alphanumeric() || ".-:[]@".contains(c))
        }
        None => false,
    }
}

fn decimal_as_f64(s: &str) -> f64 {
    s.parse::<f64>().unwrap_or(f64::NAN)
}

/// Applies `field`'s checks to a value about to be written: formats of email, phone and URL,
/// length, range and pattern. Null passes (required-ness is checked by the writer).
///
/// # Errors
/// The first failed check, naming the field.
pub fn validate(field: &Field, v: &Value) -> Result<(), ValueError> {
    let name = field.name.as_str();
    let c = &field.checks;
    match (field.scalar(), v) {
        (_, Value::Null) => Ok(()),
        (Some(ty), Value::Text(s)) => {
            let chars = s.chars().count();
            if chars > MAX_TEXT {
                return Err(ValueError::new(name, format!("longer than {MAX_TEXT} characters")));
            }
            match ty {
                ScalarType::Email if !valid_email(s) => {
                    return Err(ValueError::new(name, format!("`{s}` is not a valid e-mail address")));
                }
                ScalarType::Phone if !valid_phone(s) => {
                    return Err(ValueError::new(name, format!("`{s}` is not a valid phone number")));
                }
                ScalarType::Url if !valid_url(s) => {
                    return Err(ValueError::new(name, format!("`{s}` is not a valid http(s) URL")));
                }
                _ => {}
            }
            if let Some(min) = c.min_length
                && chars < min as usize
            {
                return Err(ValueError::new(name, format!("shorter than {min} characters")));
            }
            if let Some(max) = c.max_length
                && chars > max as usize
            {
                return Err(ValueError::new(name, format!("longer than {max} characters")));
            }
            if let Some(re) = &c.pattern
                && !re.is_match(s)
            {
                return Err(ValueError::new(name, "does not match the required pattern"));
            }
            Ok(())
        }
        (Some(_), Value::Int(_) | Value::Float(_) | Value::Decimal(_) | Value::Money { .. }) => {
            #[allow(clippy::cast_precision_loss)]
            let x = match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                Value::Decimal(s) | Value::Money { amount: s, .. } => decimal_as_f64(s),
                _ => return Ok(()),
            };
            if let Some(min) = c.min
                && x < min
            {
                return Err(ValueError::new(name, format!("must be at least {min}")));
            }
            if let Some(max) = c.max
                && x > max
            {
                return Err(ValueError::new(name, format!("must be at most {max}")));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(valid_email("ada@example.com"));
        assert!(valid_email("a.b+c@sub.example.org"));
        assert!(!valid_email("ada@"));
        assert!(!valid_email("ada.example.com"));
        assert!(!valid_email("ada@example"));
        assert!(!valid_email("a b@example.com"));
        assert!(valid_phone("+49 (30) 123-4567"));
        assert!(!valid_phone("12"));
        assert!(!valid_phone("call me"));
        assert!(valid_url("https://example.com/a?b=c"));
        assert!(!valid_url("ftp://example.com"));
        assert!(!valid_url("https:// bad"));
    }
}
