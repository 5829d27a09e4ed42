//! Filters decided in memory: a record the engines hold (about to be written) tested against a
//! rule's condition as the statement layer's SQL would test the stored row, three-valued logic
//! included. What cannot be decided the same way in memory (relations, search, text order,
//! case folding beyond ASCII, a field not given) is left to the database: `None`.

use crm_model::Value;

use super::filter::{Filter, FilterOp, Operand};

/// SQL's truth values: `None` is unknown (a comparison with NULL).
type Truth = Option<bool>;

/// Whether the record whose fields `value` gives (`None` for a field not known in memory)
/// matches `filter`, as a `WHERE` would decide it; `None` when that cannot be decided in memory.
#[must_use]
pub fn matches(filter: &Filter, value: &dyn Fn(&str) -> Option<Value>) -> Option<bool> {
    truth(filter, value).map(|t| t == Some(true))
}

fn truth(filter: &Filter, value: &dyn Fn(&str) -> Option<Value>) -> Option<Truth> {
    Some(match filter {
        Filter::True => Some(true),
        Filter::False => Some(false),
        Filter::And(items) => {
            let mut out = Some(true);
            for i in items {
                match truth(i, value)? {
                    Some(false) => out = Some(false),
                    None if out == Some(true) => out = None,
                    _ => {}
                }
            }
            out
        }
        Filter::Or(items) => {
            let mut out = Some(false);
            for i in items {
                match truth(i, value)? {
                    Some(true) => out = Some(true),
                    None if out == Some(false) => out = None,
                    _ => {}
                }
            }
            out
        }
        // The statement layer writes NOT as "is not true".
        Filter::Not(inner) => Some(truth(inner, value)? != Some(true)),
        Filter::Cmp { field, op, value: operand } => compare(&value(field.as_str())?, *op, operand)?,
        Filter::ToOne { .. } | Filter::ToMany { .. } | Filter::Search(_) => return None,
    })
}

/// `a = b` as SQL decides it for two non-null values of one field; `None` when not decidable here.
fn equal(a: &Value, b: &Value) -> Option<bool> {
    Some(match (a, b) {
        (Value::Text(x), Value::Text(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Uuid(x), Value::Uuid(y)) => x == y,
        (Value::Date(x), Value::Date(y)) => x == y,
        (Value::DateTime(x), Value::DateTime(y)) => x == y,
        _ => return None,
    })
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare(v: &Value, op: FilterOp, operand: &Operand) -> Option<Truth> {
    use FilterOp as O;
    let not_true = |t: Truth| Some(t != Some(true));
    Some(match (op, operand) {
        (O::Eq, Operand::One(Value::Null)) => Some(v.is_null()),
        (O::Not, Operand::One(Value::Null)) => Some(!v.is_null()),
        (O::Eq | O::Not, Operand::One(x)) => {
            let eq = if v.is_null() { None } else { Some(equal(v, x)?) };
            if op == O::Eq { eq } else { not_true(eq) }
        }
        (O::In | O::NotIn, Operand::Many(xs)) => {
            let listed = if v.is_null() {
                if xs.iter().any(Value::is_null) { Some(true) } else { None }
            } else {
                let mut hit = false;
                for x in xs.iter().filter(|x| !x.is_null()) {
                    hit |= equal(v, x)?;
                }
                Some(hit)
            };
            if op == O::In { listed } else { not_true(listed) }
        }
        (O::Contains | O::NotContains | O::StartsWith | O::NotStartsWith | O::EndsWith | O::NotEndsWith, Operand::One(Value::Text(p))) => {
            let hit = match v {
                Value::Null => None,
                // Case-insensitive as ILIKE: decided here only where both backends fold alike.
                Value::Text(s) if s.is_ascii() && p.is_ascii() => {
                    let (s, p) = (s.to_ascii_lowercase(), p.to_ascii_lowercase());
                    Some(match op {
                        O::Contains | O::NotContains => s.contains(&p),
                        O::StartsWith | O::NotStartsWith => s.starts_with(&p),
                        _ => s.ends_with(&p),
                    })
                }
                _ => return None,
            };
            if matches!(op, O::Contains | O::StartsWith | O::EndsWith) { hit } else { not_true(hit) }
        }
        (O::Lt | O::Lte | O::Gt | O::Gte, Operand::One(x)) => {
            if v.is_null() || x.is_null() {
                None
            } else {
                let o = order(v, x)?;
                Some(match op {
                    O::Lt => o.is_lt(),
                    O::Lte => o.is_le(),
                    O::Gt => o.is_gt(),
                    _ => o.is_ge(),
                })
            }
        }
        (O::ContainsAll | O::ContainsNone, Operand::Many(xs)) if xs.is_empty() => Some(true),
        (O::ContainsSome, Operand::Many(xs)) if xs.is_empty() => Some(false),
        (O::ContainsAll | O::ContainsSome | O::ContainsNone, Operand::Many(xs)) => {
            let Value::List(items) = v else { return None };
            let mut wanted = Vec::with_capacity(xs.len());
            for x in xs {
                let Value::Text(t) = x else { return None };
                wanted.push(t);
            }
            let has = |t: &String| items.contains(t);
            Some(match op {
                O::ContainsAll => wanted.iter().all(|t| has(t)),
                O::ContainsSome => wanted.iter().any(|t| has(t)),
                _ => !wanted.iter().any(|t| has(t)),
            })
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crm_model::standard::standard_catalog;
    use serde_json::json;

    use super::*;

    fn decide(filter: &serde_json::Value, record: &[(&str, Value)]) -> Option<bool> {
        let cat = standard_catalog().unwrap();
        let m = cat.model("SocialEvent").unwrap();
        let f = Filter::parse(&cat, m, filter).unwrap();
        matches(&f, &|name| record.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()))
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn equality_membership_and_text_match_as_sql_does() {
        let dm = [("kind", text("DM")), ("platform", text("x")), ("text", text("Pricing, please")), ("url", Value::Null)];
        assert_eq!(decide(&json!({ "kind": "DM" }), &dm), Some(true));
        assert_eq!(decide(&json!({ "kind": "MENTION" }), &dm), Some(false));
        assert_eq!(decide(&json!({ "kind_in": ["DM", "REPLY"], "platform": "x" }), &dm), Some(true));
        assert_eq!(decide(&json!({ "text_contains": "PRICING" }), &dm), Some(true), "case-insensitive like ILIKE");
        assert_eq!(decide(&json!({ "OR": [{ "kind": "POST" }, { "text_starts_with": "pri" }] }), &dm), Some(true));
        assert_eq!(decide(&json!({ "NOT": { "kind": "DM" } }), &dm), Some(false));
        assert_eq!(decide(&json!({}), &dm), Some(true), "no condition matches everything");
    }

    #[test]
    fn null_is_unknown_and_negations_are_not_true() {
        let r = [("kind", text("DM")), ("url", Value::Null), ("text", Value::Null)];
        assert_eq!(decide(&json!({ "url": null }), &r), Some(true));
        assert_eq!(decide(&json!({ "url_not": null }), &r), Some(false));
        assert_eq!(decide(&json!({ "text_contains": "x" }), &r), Some(false), "NULL ILIKE … is unknown: no match");
        assert_eq!(decide(&json!({ "text_not_contains": "x" }), &r), Some(true), "NOT is `is not true`");
        assert_eq!(decide(&json!({ "NOT": { "text_contains": "x" } }), &r), Some(true));
        assert_eq!(decide(&json!({ "text_not": "x" }), &r), Some(true));
    }

    #[test]
    fn what_memory_cannot_decide_goes_to_the_database() {
        let r = [("kind", text("DM")), ("text", text("Grüße"))];
        assert_eq!(decide(&json!({ "text_contains": "GRÜ" }), &r), None, "case folding beyond ASCII");
        assert_eq!(decide(&json!({ "externalId": "e1" }), &r), None, "a field not given");
        assert_eq!(decide(&json!({ "contact": { "firstName": "Ada" } }), &r), None, "a relation");
        assert_eq!(decide(&json!({ "_search": "pricing" }), &r), None);
    }
}
