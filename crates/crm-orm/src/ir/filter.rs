//! Filters: the where of a read, as typed data, parsed from its JSON form against the catalog.

use crate::error::{OrmError, Result};
use crm_model::{Catalog, Field, FieldKind, FieldName, Model, ModelName, ScalarType, TypeClass, Value, input};
use serde_json::Value as Json;
use uuid::Uuid;

/// Scalar filter operators with their API suffix: the one list both the schema generator and the
/// parser read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `f`: equal (or `IS NULL` for null).
    Eq,
    /// `f_not`: not equal (nulls included; `f_not: null` is `IS NOT NULL`).
    Not,
    /// `f_in`.
    In,
    /// `f_not_in` (nulls included).
    NotIn,
    /// `f_contains`, case-insensitive.
    Contains,
    /// `f_not_contains`.
    NotContains,
    /// `f_starts_with`, case-insensitive.
    StartsWith,
    /// `f_not_starts_with`.
    NotStartsWith,
    /// `f_ends_with`, case-insensitive.
    EndsWith,
    /// `f_not_ends_with`.
    NotEndsWith,
    /// `f_lt`.
    Lt,
    /// `f_lte`.
    Lte,
    /// `f_gt`.
    Gt,
    /// `f_gte`.
    Gte,
    /// `f_contains_all` (lists).
    ContainsAll,
    /// `f_contains_some` (lists).
    ContainsSome,
    /// `f_contains_none` (lists).
    ContainsNone,
}

impl FilterOp {
    /// Every operator.
    pub const ALL: [Self; 17] = [
        Self::Eq,
        Self::Not,
        Self::In,
        Self::NotIn,
        Self::Contains,
        Self::NotContains,
        Self::StartsWith,
        Self::NotStartsWith,
        Self::EndsWith,
        Self::NotEndsWith,
        Self::Lt,
        Self::Lte,
        Self::Gt,
        Self::Gte,
        Self::ContainsAll,
        Self::ContainsSome,
        Self::ContainsNone,
    ];

    /// The suffix appended to the field name in `WhereInput`.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Eq => "",
            Self::Not => "_not",
            Self::In => "_in",
            Self::NotIn => "_not_in",
            Self::Contains => "_contains",
            Self::NotContains => "_not_contains",
            Self::StartsWith => "_starts_with",
            Self::NotStartsWith => "_not_starts_with",
            Self::EndsWith => "_ends_with",
            Self::NotEndsWith => "_not_ends_with",
            Self::Lt => "_lt",
            Self::Lte => "_lte",
            Self::Gt => "_gt",
            Self::Gte => "_gte",
            Self::ContainsAll => "_contains_all",
            Self::ContainsSome => "_contains_some",
            Self::ContainsNone => "_contains_none",
        }
    }

    /// Whether the operator applies to a type family.
    #[must_use]
    pub fn applies_to(self, class: TypeClass) -> bool {
        use FilterOp as O;
        match class {
            TypeClass::String => !matches!(self, O::Lt | O::Lte | O::Gt | O::Gte | O::ContainsAll | O::ContainsSome | O::ContainsNone),
            TypeClass::Ordered => matches!(self, O::Eq | O::Not | O::In | O::NotIn | O::Lt | O::Lte | O::Gt | O::Gte),
            TypeClass::Boolean | TypeClass::Json => matches!(self, O::Eq | O::Not),
            TypeClass::Enum => matches!(self, O::Eq | O::Not | O::In | O::NotIn),
            TypeClass::List => matches!(self, O::ContainsAll | O::ContainsSome | O::ContainsNone),
        }
    }

    /// Whether the operator matches text (contains / starts / ends, and their negations).
    #[must_use]
    pub fn is_text_match(self) -> bool {
        matches!(self, Self::Contains | Self::NotContains | Self::StartsWith | Self::NotStartsWith | Self::EndsWith | Self::NotEndsWith)
    }

    /// Whether the operand is a list.
    #[must_use]
    pub fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn | Self::ContainsAll | Self::ContainsSome | Self::ContainsNone)
    }

    /// Splits `email_not_contains` into (`email`, `NotContains`).
    #[must_use]
    pub fn split(key: &str) -> Option<(&str, Self)> {
        match key.split_once('_') {
            None => Some((key, Self::Eq)),
            Some((field, _)) => {
                let rest = &key[field.len()..];
                Self::ALL.iter().find(|op| op.suffix() == rest).map(|op| (field, *op))
            }
        }
    }
}

/// Quantifiers of to-many relation filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantifier {
    /// `r_some`: at least one related record matches.
    Some,
    /// `r_every`: every related record matches (true when there are none).
    Every,
    /// `r_none`: no related record matches.
    None,
}

impl Quantifier {
    /// Every quantifier.
    pub const ALL: [Self; 3] = [Self::Some, Self::Every, Self::None];
    /// The API suffix.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Some => "_some",
            Self::Every => "_every",
            Self::None => "_none",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// One value.
    One(Value),
    /// A list (`_in`, `_contains_all`, …).
    Many(Vec<Value>),
}

/// A filter over one model's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every row.
    True,
    /// No row (what an absent grant compiles to).
    False,
    /// All of.
    And(Vec<Filter>),
    /// Any of.
    Or(Vec<Filter>),
    /// The complement (rows for which the inner filter is not true).
    Not(Box<Filter>),
    /// A comparison of a stored field.
    Cmp {
        /// The field.
        field: FieldName,
        /// The operator.
        op: FilterOp,
        /// The typed operand.
        value: Operand,
    },
    /// The to-one relation's target matches (`account: {...}`); `None` means the reference is null.
    ToOne {
        /// The to-one field.
        field: FieldName,
        /// Filter on the target, or `None` for `account: null`.
        filter: Option<Box<Filter>>,
    },
    /// A to-many relation quantified (`contacts_some: {...}`).
    ToMany {
        /// The to-many field.
        field: FieldName,
        /// some / every / none.
        quantifier: Quantifier,
        /// Filter on the targets.
        filter: Box<Filter>,
    },
    /// Case-insensitive match of a term across the searchable fields.
    Search(String),
}

impl Filter {
    /// The records whose id is one of `ids`.
    ///
    /// # Errors
    /// Never in practice (`id` is a valid field name); typed so callers never unwrap.
    pub fn ids(ids: &[Uuid]) -> Result<Filter> {
        Ok(Filter::Cmp {
            field: FieldName::new("id").map_err(|e| OrmError::invariant(e.to_string()))?,
            op: FilterOp::In,
            value: Operand::Many(ids.iter().map(|u| Value::Uuid(*u)).collect()),
        })
    }

    /// AND with simplification (`True` vanishes, `False` absorbs).
    #[must_use]
    pub fn and(items: Vec<Filter>) -> Filter {
        let mut out = Vec::with_capacity(items.len());
        for f in items {
            match f {
                Filter::True => {}
                Filter::False => return Filter::False,
                Filter::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Filter::True,
            1 => out.pop().unwrap_or(Filter::True),
            _ => Filter::And(out),
        }
    }

    /// OR with simplification (`False` vanishes, `True` absorbs).
    #[must_use]
    pub fn or(items: Vec<Filter>) -> Filter {
        let mut out = Vec::with_capacity(items.len());
        for f in items {
            match f {
                Filter::False => {}
                Filter::True => return Filter::True,
                Filter::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Filter::False,
            1 => out.pop().unwrap_or(Filter::False),
            _ => Filter::Or(out),
        }
    }

    /// A comparison of `field` with one JSON value (typed against the model).
    ///
    /// # Errors
    /// Unknown field, operator not applicable, badly typed value.
    pub fn cmp(model: &Model, field: &str, op: FilterOp, value: &Json) -> Result<Filter> {
        parse_cmp(model, field, op, value, field)
    }

    /// Parses a `WhereInput` in its JSON form against `model`.
    ///
    /// # Errors
    /// Unknown keys, operators that do not apply, badly typed values; the error names the path.
    pub fn parse(catalog: &Catalog, model: &Model, input: &Json) -> Result<Filter> {
        parse_where(catalog, model, input, "where", 0)
    }
}

/// Deepest nesting of a where input (AND/OR/NOT and relations) accepted.
pub const MAX_FILTER_DEPTH: usize = 16;

fn parse_where(catalog: &Catalog, model: &Model, input: &Json, path: &str, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(OrmError::bad(path, format!("filters nest deeper than {MAX_FILTER_DEPTH} levels")));
    }
    let obj = match input {
        Json::Null => return Ok(Filter::True),
        Json::Object(o) => o,
        _ => return Err(OrmError::bad(path, "expected an object")),
    };
    let mut items = Vec::with_capacity(obj.len());
    for (key, val) in obj {
        let p = format!("{path}.{key}");
        match key.as_str() {
            "AND" | "OR" | "NOT" => {
                let list: Vec<&Json> = match val {
                    Json::Array(a) => a.iter().collect(),
                    Json::Null => Vec::new(),
                    one => vec![one],
                };
                let parsed = list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| parse_where(catalog, model, v, &format!("{p}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                items.push(match key.as_str() {
                    "AND" => Filter::and(parsed),
                    "OR" => Filter::or(parsed),
                    _ => Filter::Not(Box::new(Filter::and(parsed))),
                });
            }
            "_search" => match val {
                Json::String(s) if s.contains('\0') => return Err(OrmError::bad(p, crm_model::value::NUL_MESSAGE)),
                Json::String(s) if !s.trim().is_empty() => items.push(Filter::Search(s.trim().to_owned())),
                Json::String(_) | Json::Null => {}
                _ => return Err(OrmError::bad(p, "expected a string")),
            },
            _ => items.push(parse_entry(catalog, model, key, val, &p, depth)?),
        }
    }
    Ok(Filter::and(items))
}

fn parse_entry(catalog: &Catalog, model: &Model, key: &str, val: &Json, path: &str, depth: usize) -> Result<Filter> {
    // Relation quantifiers first: `contacts_some`.
    for q in Quantifier::ALL {
        if let Some(name) = key.strip_suffix(q.suffix())
            && let Some(f) = model.field(name)
            && let FieldKind::ToMany { target, .. } = &f.kind
        {
            let t = target_model(catalog, target, path)?;
            let inner = parse_where(catalog, t, val, path, depth + 1)?;
            return Ok(Filter::ToMany { field: f.name.clone(), quantifier: q, filter: Box::new(inner) });
        }
    }
    if let Some(f) = model.field(key)
        && let FieldKind::ToOne { target, .. } = &f.kind
    {
        if val.is_null() {
            return Ok(Filter::ToOne { field: f.name.clone(), filter: None });
        }
        let t = target_model(catalog, target, path)?;
        let inner = parse_where(catalog, t, val, path, depth + 1)?;
        return Ok(Filter::ToOne { field: f.name.clone(), filter: Some(Box::new(inner)) });
    }
    let Some((name, op)) = FilterOp::split(key) else {
        return Err(OrmError::bad(path, format!("unknown filter `{key}` on {}", model.name)));
    };
    parse_cmp(model, name, op, val, path)
}

pub(super) fn target_model<'c>(catalog: &'c Catalog, target: &ModelName, path: &str) -> Result<&'c Model> {
    catalog.model(target.as_str()).map(AsRef::as_ref).ok_or_else(|| OrmError::bad(path, format!("unknown model `{target}`")))
}

fn field_class(f: &Field) -> Option<TypeClass> {
    match &f.kind {
        FieldKind::Scalar(t) => Some(t.class()),
        // A to-one compares its id; a polymorphic reference null or one reference.
        FieldKind::ToOne { .. } => Some(TypeClass::Enum),
        FieldKind::Polymorphic { .. } => Some(TypeClass::Json),
        FieldKind::ToMany { .. } => None,
    }
}

fn parse_cmp(model: &Model, name: &str, op: FilterOp, val: &Json, path: &str) -> Result<Filter> {
    let f = model.field(name).ok_or_else(|| OrmError::bad(path, format!("unknown field `{name}` on {}", model.name)))?;
    let class =
        field_class(f).ok_or_else(|| OrmError::bad(path, format!("`{name}` is a to-many relation: use {name}_some / _every / _none")))?;
    if !op.applies_to(class) {
        return Err(OrmError::bad(path, format!("operator `{}{}` does not apply to `{name}`", name, op.suffix())));
    }
    let typed = |j: &Json| -> Result<Value> {
        match (&f.kind, j) {
            // List operators take single options / tags.
            (FieldKind::Scalar(ScalarType::MultiSelect(_) | ScalarType::Tags), Json::String(s)) => Ok(Value::Text(s.clone())),
            (FieldKind::Scalar(ScalarType::MultiSelect(_) | ScalarType::Tags), _) => Err(OrmError::bad(path, "list filters take strings")),
            // Text matching on an id takes any part of its text form.
            (FieldKind::Scalar(ScalarType::Id), Json::String(s)) if op.is_text_match() => Ok(Value::Text(s.clone())),
            (FieldKind::Polymorphic { .. }, Json::Null) => Ok(Value::Null),
            (FieldKind::Polymorphic { .. }, Json::Object(_)) if matches!(op, FilterOp::Eq | FilterOp::Not) => {
                input::parse(f, j).map_err(|e| OrmError::bad(path, e.reason))
            }
            (FieldKind::Polymorphic { .. }, _) => {
                Err(OrmError::bad(path, "a polymorphic reference compares with null or a {type, id} reference"))
            }
            (FieldKind::Scalar(ScalarType::Json), Json::Null) => Ok(Value::Null),
            (FieldKind::Scalar(ScalarType::Json), _) => Err(OrmError::bad(path, "a JSON field can only be compared with null")),
            _ => input::parse(f, j).map_err(|e| OrmError::bad(path, e.reason)),
        }
    };
    let value = if op.takes_list() {
        let Json::Array(items) = val else {
            return Err(OrmError::bad(path, "expected a list"));
        };
        Operand::Many(items.iter().map(typed).collect::<Result<_>>()?)
    } else {
        let v = typed(val)?;
        if v.is_null() && !matches!(op, FilterOp::Eq | FilterOp::Not) {
            return Err(OrmError::bad(path, "only equality compares with null"));
        }
        Operand::One(v)
    };
    Ok(Filter::Cmp { field: f.name.clone(), op, value })
}
